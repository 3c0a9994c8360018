/* Headers pollfwd binds, plus real-symbol wrappers for DPDK's static-inline functions and
 * macros (bindgen cannot see those). Every wrapper is named pf_<what it wraps>. */
#include <stdio.h>
#include <string.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_version.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>
#include <rte_bus_vdev.h>
#include <rte_pdump.h>
#include <rte_telemetry.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_fib.h>
#include <rte_rib.h>
#include <rte_fib6.h>
#include <rte_rib6.h>
#include <rte_acl.h>
#include <rte_vect.h>
#include <rte_meter.h>

/* rte_ip_frag (for the fragmentation benchmark that compares DPDK's fragmenters with the
 * forward stage's own). The mbufs start at the IPv4 header. */
int pf_ipv4_fragment_packet(struct rte_mbuf *pkt_in, struct rte_mbuf **out, uint16_t n,
                            uint16_t mtu, struct rte_mempool *direct, struct rte_mempool *indirect);
int pf_ipv4_fragment_copy_nonseg(struct rte_mbuf *pkt_in, struct rte_mbuf **out, uint16_t n,
                                 uint16_t mtu, struct rte_mempool *direct);
/* rte_pktmbuf_prepend (any number of segments): NULL if the headroom is too small. */
char *pf_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);

int pf_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **pkts, unsigned int n);
struct rte_mbuf *pf_pktmbuf_alloc(struct rte_mempool *mp);
void pf_pktmbuf_free(struct rte_mbuf *m);
void pf_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n);
unsigned int pf_ring_sp_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n);
unsigned int pf_ring_sc_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n);
unsigned int pf_ring_count(const struct rte_ring *r);
unsigned int pf_ring_free_count(const struct rte_ring *r);
unsigned int pf_ring_get_capacity(const struct rte_ring *r);
uint64_t pf_rdtsc(void);
unsigned int pf_lcore_id(void);
int pf_errno(void);
void pf_pause(void);
int pf_lpm_lookup_bulk(const struct rte_lpm *lpm, const uint32_t *ips, uint32_t *next_hops, unsigned int n);
int pf_lpm_lookup(const struct rte_lpm *lpm, uint32_t ip, uint32_t *next_hop);
const uint32_t *pf_lpm_tbl24(const struct rte_lpm *lpm);
const uint32_t *pf_lpm_tbl8(const struct rte_lpm *lpm);
/* The arrays of an rte_fib DIR24_8 table (struct dir24_8_tbl is internal to DPDK) and the
 * fields fib.rs checks them against; 0, or -EINVAL when the table is not DIR24_8. */
struct pf_dir24_8 {
    const uint32_t *tbl24;
    const uint32_t *tbl8;
    uint32_t number_tbl8s;
    uint32_t nh_sz;
    uint64_t def_nh;
};
int pf_fib_dir24_8(struct rte_fib *fib, struct pf_dir24_8 *out);
enum rte_color pf_meter_srtcm_color_blind_check(struct rte_meter_srtcm *m, struct rte_meter_srtcm_profile *p, uint64_t time, uint32_t pkt_len);
enum rte_color pf_meter_srtcm_color_aware_check(struct rte_meter_srtcm *m, struct rte_meter_srtcm_profile *p, uint64_t time, uint32_t pkt_len, enum rte_color pkt_color);
enum rte_color pf_meter_trtcm_color_blind_check(struct rte_meter_trtcm *m, struct rte_meter_trtcm_profile *p, uint64_t time, uint32_t pkt_len);
enum rte_color pf_meter_trtcm_color_aware_check(struct rte_meter_trtcm *m, struct rte_meter_trtcm_profile *p, uint64_t time, uint32_t pkt_len, enum rte_color pkt_color);
uint32_t pf_mempool_size(const struct rte_mempool *mp);
const char *pf_mempool_name(const struct rte_mempool *mp);
int pf_mempool_socket(const struct rte_mempool *mp);

/* Fields of opaque or bitfield-laden structs pollfwd reads off the data path. */
struct pf_dev_info {
    char driver_name[64];
    uint16_t max_rx_queues;
    uint16_t max_tx_queues;
    uint16_t rx_desc_max;
    uint16_t tx_desc_max;
    uint64_t flow_type_rss_offloads;
    uint32_t max_mtu;
    uint32_t min_mtu;
    uint32_t speed_capa;
    uint64_t rx_offload_capa;
    uint64_t tx_offload_capa;
};
int pf_dev_info(uint16_t port, struct pf_dev_info *out);
struct pf_link { uint32_t speed; uint8_t up; uint8_t full_duplex; uint8_t autoneg; };
int pf_link(uint16_t port, struct pf_link *out);
uint64_t pf_rss_ip_tcp_udp(void);
uint64_t pf_rx_offload_vlan_strip(void);
uint64_t pf_tx_offload_vlan_insert(void);
