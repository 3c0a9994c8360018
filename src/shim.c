/* Real symbols for DPDK's static-inline functions; see shim.h. Each is a plain call-through:
 * called per burst from Rust, never per packet. */
/* rte_ipv4_fragment_copy_nonseg_packet is experimental in 22.11. */
#define ALLOW_EXPERIMENTAL_API 1
#include "shim.h"
#include <rte_ip_frag.h>

int pf_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **pkts, unsigned int n)
{ return rte_pktmbuf_alloc_bulk(mp, pkts, n); }
struct rte_mbuf *pf_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
void pf_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
void pf_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n) { rte_pktmbuf_free_bulk(pkts, n); }
unsigned int pf_ring_sp_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n)
{ return rte_ring_sp_enqueue_burst(r, objs, n, NULL); }
unsigned int pf_ring_sc_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n)
{ return rte_ring_sc_dequeue_burst(r, objs, n, NULL); }
unsigned int pf_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }
unsigned int pf_ring_free_count(const struct rte_ring *r) { return rte_ring_free_count(r); }
unsigned int pf_ring_get_capacity(const struct rte_ring *r) { return rte_ring_get_capacity(r); }
uint64_t pf_rdtsc(void) { return rte_rdtsc(); }
unsigned int pf_lcore_id(void) { return rte_lcore_id(); }
int pf_errno(void) { return rte_errno; }
void pf_pause(void) { rte_pause(); }
int pf_lpm_lookup_bulk(const struct rte_lpm *lpm, const uint32_t *ips, uint32_t *next_hops, unsigned int n)
{ return rte_lpm_lookup_bulk(lpm, ips, next_hops, n); }
int pf_lpm_lookup(const struct rte_lpm *lpm, uint32_t ip, uint32_t *next_hop)
{ return rte_lpm_lookup((struct rte_lpm *)lpm, ip, next_hop); }
/* Where a table's tbl24 and tbl8 arrays are (struct rte_lpm is opaque to Rust): read once when
 * the table is created, for the inline lookup in lpm.rs (rte_lpm_lookup's steps, inlinable). */
const uint32_t *pf_lpm_tbl24(const struct rte_lpm *lpm) { return (const uint32_t *)lpm->tbl24; }
const uint32_t *pf_lpm_tbl8(const struct rte_lpm *lpm) { return (const uint32_t *)lpm->tbl8; }
/* DPDK 22.11's struct dir24_8_tbl (lib/fib/dir24_8.h, not installed): the data-plane part
 * rte_fib_get_dp returns for an RTE_FIB_DIR24_8 table. fib.rs checks what is read through it
 * (entry width, tbl8 count, the default next hop in tbl24's first and last entries) when a
 * table is created, and refuses the table when it does not match. */
struct pf_dir24_8_tbl {
    uint32_t number_tbl8s;
    uint32_t rsvd_tbl8s;
    uint32_t cur_tbl8s;
    enum rte_fib_dir24_8_nh_sz nh_sz;
    uint64_t def_nh;
    uint64_t *tbl8;
    uint64_t *tbl8_idxes;
    uint64_t tbl24[0] __rte_cache_aligned;
};
int pf_fib_dir24_8(struct rte_fib *fib, struct pf_dir24_8 *out)
{
    struct pf_dir24_8_tbl *dp = rte_fib_get_dp(fib);
    if (dp == NULL)
        return -EINVAL;
    out->tbl24 = (const uint32_t *)dp->tbl24;
    out->tbl8 = (const uint32_t *)dp->tbl8;
    out->number_tbl8s = dp->number_tbl8s;
    out->nh_sz = (uint32_t)dp->nh_sz;
    out->def_nh = dp->def_nh;
    return 0;
}
enum rte_color pf_meter_srtcm_color_blind_check(struct rte_meter_srtcm *m, struct rte_meter_srtcm_profile *p, uint64_t time, uint32_t pkt_len)
{ return rte_meter_srtcm_color_blind_check(m, p, time, pkt_len); }
enum rte_color pf_meter_srtcm_color_aware_check(struct rte_meter_srtcm *m, struct rte_meter_srtcm_profile *p, uint64_t time, uint32_t pkt_len, enum rte_color c)
{ return rte_meter_srtcm_color_aware_check(m, p, time, pkt_len, c); }
enum rte_color pf_meter_trtcm_color_blind_check(struct rte_meter_trtcm *m, struct rte_meter_trtcm_profile *p, uint64_t time, uint32_t pkt_len)
{ return rte_meter_trtcm_color_blind_check(m, p, time, pkt_len); }
enum rte_color pf_meter_trtcm_color_aware_check(struct rte_meter_trtcm *m, struct rte_meter_trtcm_profile *p, uint64_t time, uint32_t pkt_len, enum rte_color c)
{ return rte_meter_trtcm_color_aware_check(m, p, time, pkt_len, c); }
uint32_t pf_mempool_size(const struct rte_mempool *mp) { return mp->size; }
const char *pf_mempool_name(const struct rte_mempool *mp) { return mp->name; }
int pf_mempool_socket(const struct rte_mempool *mp) { return mp->socket_id; }

int pf_dev_info(uint16_t port, struct pf_dev_info *out)
{
    struct rte_eth_dev_info info;
    int rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    if (info.driver_name)
        snprintf(out->driver_name, sizeof(out->driver_name), "%s", info.driver_name);
    out->max_rx_queues = info.max_rx_queues;
    out->max_tx_queues = info.max_tx_queues;
    out->rx_desc_max = info.rx_desc_lim.nb_max;
    out->tx_desc_max = info.tx_desc_lim.nb_max;
    out->flow_type_rss_offloads = info.flow_type_rss_offloads;
    out->max_mtu = info.max_mtu;
    out->min_mtu = info.min_mtu;
    out->speed_capa = info.speed_capa;
    out->rx_offload_capa = info.rx_offload_capa;
    out->tx_offload_capa = info.tx_offload_capa;
    return 0;
}
int pf_link(uint16_t port, struct pf_link *out)
{
    struct rte_eth_link l;
    int rc = rte_eth_link_get_nowait(port, &l);
    if (rc != 0)
        return rc;
    out->speed = l.link_speed;
    out->up = l.link_status;
    out->full_duplex = l.link_duplex;
    out->autoneg = l.link_autoneg;
    return 0;
}
uint64_t pf_rss_ip_tcp_udp(void) { return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP; }
uint64_t pf_rx_offload_vlan_strip(void) { return RTE_ETH_RX_OFFLOAD_VLAN_STRIP; }
uint64_t pf_tx_offload_vlan_insert(void) { return RTE_ETH_TX_OFFLOAD_VLAN_INSERT; }

int pf_ipv4_fragment_packet(struct rte_mbuf *pkt_in, struct rte_mbuf **out, uint16_t n,
                            uint16_t mtu, struct rte_mempool *direct, struct rte_mempool *indirect)
{
    return rte_ipv4_fragment_packet(pkt_in, out, n, mtu, direct, indirect);
}

int pf_ipv4_fragment_copy_nonseg(struct rte_mbuf *pkt_in, struct rte_mbuf **out, uint16_t n,
                                 uint16_t mtu, struct rte_mempool *direct)
{
    return rte_ipv4_fragment_copy_nonseg_packet(pkt_in, out, n, mtu, direct);
}

char *pf_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
    return rte_pktmbuf_prepend(m, len);
}
