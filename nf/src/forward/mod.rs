//! The forward stage: an IPv4 and IPv6 router.
//!
//! Per IPv4 packet: validate (RFC 1812 5.2.2, the wire module's parser), filter martians
//! (5.3.7), look the destination up in `rte_fib` (DIR24_8), then deliver locally (ICMP echo reply, UDP ->
//! port unreachable, the rest consumed), send ICMP time exceeded / destination unreachable
//! (rate-limited), or decrement the TTL (RFC 1624 checksum update), rewrite the MACs to the
//! egress port and the next hop, and transmit. ARP is answered and learnt here; next hops are
//! resolved by ARP, packets waiting for an answer are parked in a small per-worker queue.
//! IPv6 (RFC 8200, 4291, 4443) the same way with `rte_fib6`, the hop limit, Packet Too Big,
//! and neighbour discovery (RFC 4861) instead of ARP ([`v6`], `nd`).
//!
//! Files: this one (parameters, shared state, counters, the stage and its control messages),
//! `fast` (the fast loop over plain IPv4 packets routed like the one before), `chained` (its
//! counterpart for bursts whose metadata earlier stages filled in), `fast6` (its
//! IPv6 counterpart: a bulk FIB lookup per run of IPv6 frames, an IPv6 route memo), `slow` (the
//! general path, local delivery and ICMP errors), `park` (ARP in the stage and packets parked
//! for ARP or neighbour discovery), [`v6`] (the IPv6 path), `nd` (neighbour discovery);
//! [`ipv4`] (address classes), [`arp`] and [`icmp`] (the messages, built with the wire
//! module), [`neigh`] (the shared lock-free neighbour tables), [`table`] (routes, interfaces,
//! the FIB), [`table6`] (IPv6 routes, the FIB), [`ecmp`] (next-hop groups of
//! multipath routes and the flow hash).

pub mod arp;
pub mod ecmp;
pub mod icmp;
pub mod ipv4;
pub mod neigh;
pub mod table;
pub mod table6;

mod chained;
mod fast;
mod fast6;
pub mod frag;
mod multipath;
mod nd;
mod park;
pub mod punt;
mod ra;
mod slow;
pub mod v6;

use std::any::Any;
use std::sync::{Arc, Mutex};

use dpdk::{BURST_MAX, Mbuf};
use pollfwd_pipeline::counters::Counter;
use pollfwd_pipeline::{DropReason, Stage, StageCtx, Verdict};

use crate::wire::ether;
use neigh::{NeighTable, NeighTable6, NeighTiming};
use park::{Held, Parked};
use slow::Bucket;
use table::{FwdTable, Iface, Prefix};

/// Tunables of the stage (the `[forward]` configuration section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FwdParams {
    /// A learnt neighbour is used this long after its last confirmation, seconds.
    pub arp_timeout_s: u64,
    /// Interval between ARP requests for one neighbour, milliseconds.
    pub arp_retry_ms: u64,
    /// Unanswered requests before a neighbour is failed.
    pub arp_retries: u32,
    /// Packets each worker may park while their next hop resolves.
    pub arp_queue: usize,
    /// ICMP errors per second (all workers together; 0 = never send errors).
    pub icmp_errors_per_s: u32,
    /// Broadcast ARP requests (resolving new or unanswered next hops) per second, all workers
    /// together, in bursts of up to [`ARP_BURST`] per worker; refreshes of resolved
    /// neighbours are not limited (at most one per neighbour per retry interval anyway).
    pub arp_requests_per_s: u32,
    /// ICMP errors sent back to back before the rate applies.
    pub icmp_burst: u32,
    /// Neighbour table slots.
    pub neighbor_capacity: usize,
    /// ECMP: both directions of a flow take the same member of a next-hop group (the flow
    /// hash is symmetric, [`ecmp::flow_hash4`]).
    pub ecmp_symmetric: bool,
}

impl Default for FwdParams {
    fn default() -> Self {
        FwdParams {
            arp_timeout_s: 300,
            arp_retry_ms: 1000,
            arp_retries: 3,
            arp_queue: 64,
            icmp_errors_per_s: 100,
            arp_requests_per_s: 1000,
            icmp_burst: 10,
            neighbor_capacity: 4096,
            ecmp_symmetric: false,
        }
    }
}

/// An address range the appliance answers ARP for without owning it (proxy ARP, e.g. a NAT
/// pool), on one port or on every port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyArp {
    pub prefix: Prefix,
    pub port: Option<u16>,
}

/// A neighbour from the configuration: never aged, never overwritten by ARP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticNeighbor {
    pub ip: u32,
    pub mac: [u8; 6],
    pub port: u16,
}

/// An IPv6 neighbour from the configuration: never aged, never overwritten by neighbour
/// discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticNeighbor6 {
    pub ip: u128,
    pub mac: [u8; 6],
    pub port: u16,
}

/// Counters of one worker's forward stage (single writer: that worker).
#[derive(Debug, Default)]
pub struct FwdStats {
    pub arp_requests_sent: Counter,
    pub arp_replies_sent: Counter,
    pub arp_learned: Counter,
    /// ARP senders not learned: not on the receiving port's subnet (another port's neighbour,
    /// or a spoofed address), or a static neighbour.
    pub arp_not_learned: Counter,
    pub echo_replies_sent: Counter,
    pub icmp_errors_sent: Counter,
    /// ICMP errors not sent because of the rate limit.
    pub icmp_rate_limited: Counter,
    /// Packets parked waiting for ARP.
    pub held: Counter,
    /// Parked packets sent once their next hop answered.
    pub released: Counter,
    /// Parked packets freed because their next hop did not answer in time.
    pub held_expired: Counter,
    /// New neighbours that found no free slot in the table.
    pub neigh_table_full: Counter,
    /// ARP requests due but not sent: over `arp_requests_per_s`.
    pub arp_rate_limited: Counter,
    /// Packets the stage could not build (mbuf pool empty).
    pub alloc_failed: Counter,
    /// Datagrams bigger than their egress MTU sent as fragments (DF clear).
    pub fragmented: Counter,
    /// Fragments sent for them (the first one included: the original packet, cut).
    pub fragments_sent: Counter,
    /// ICMP "fragmentation needed" sent (DF set, bigger than the egress MTU; the datagram is
    /// dropped as `frag_needed`, the error subject to the rate limit like the others).
    pub frag_needed_sent: Counter,
    /// TCP SYNs and SYN-ACKs whose MSS option was lowered to a port's `mss_clamp`.
    pub mss_clamped: Counter,
    /// IPv6 Neighbor Solicitations sent (resolving or refreshing a next hop).
    pub ns_sent: Counter,
    /// IPv6 Neighbor Advertisements sent (answers to solicitations for the box).
    pub na_sent: Counter,
    /// IPv6 neighbours learnt or updated from neighbour discovery.
    pub nd_learned: Counter,
    /// Neighbour discovery senders not learnt: off the receiving interface's link, the box's
    /// own address, or a static neighbour.
    pub nd_not_learned: Counter,
    /// ICMPv6 Packet Too Big sent (also counted in `icmp_errors_sent`).
    pub too_big_sent: Counter,
    /// IPv6 router advertisements sent (periodic and solicited).
    pub ra_sent: Counter,
}

impl FwdStats {
    /// (name, value) of every counter, for listings.
    pub fn values(&self) -> [(&'static str, u64); 23] {
        [
            ("arp_requests_sent", self.arp_requests_sent.get()),
            ("arp_replies_sent", self.arp_replies_sent.get()),
            ("arp_learned", self.arp_learned.get()),
            ("arp_not_learned", self.arp_not_learned.get()),
            ("echo_replies_sent", self.echo_replies_sent.get()),
            ("icmp_errors_sent", self.icmp_errors_sent.get()),
            ("icmp_rate_limited", self.icmp_rate_limited.get()),
            ("held", self.held.get()),
            ("released", self.released.get()),
            ("held_expired", self.held_expired.get()),
            ("neigh_table_full", self.neigh_table_full.get()),
            ("arp_rate_limited", self.arp_rate_limited.get()),
            ("alloc_failed", self.alloc_failed.get()),
            ("fragmented", self.fragmented.get()),
            ("fragments_sent", self.fragments_sent.get()),
            ("frag_needed_sent", self.frag_needed_sent.get()),
            ("mss_clamped", self.mss_clamped.get()),
            ("ns_sent", self.ns_sent.get()),
            ("na_sent", self.na_sent.get()),
            ("nd_learned", self.nd_learned.get()),
            ("nd_not_learned", self.nd_not_learned.get()),
            ("too_big_sent", self.too_big_sent.get()),
            ("ra_sent", self.ra_sent.get()),
        ]
    }
}

/// Per port id: what the stage needs to know about an interface.
#[derive(Debug, Clone, Copy, Default)]
struct PortInfo {
    present: bool,
    mac: [u8; 6],
    addr: u32,
    subnet: Option<Prefix>,
}

/// Per port id: the interface's IPv6 addresses and router advertisements.
#[derive(Debug, Clone, Default)]
struct PortInfo6 {
    /// The link-local address (None: no IPv6 on the interface).
    link_local: Option<u128>,
    /// Global addresses and prefix lengths.
    addrs: Vec<(u128, u8)>,
    /// Router advertisements: the prefix options to send (None: no advertisements), and
    /// the MTU to advertise.
    ra: Option<Vec<crate::wire::ndp::Prefix>>,
    mtu: u16,
}

/// What every worker's forward stage shares: interfaces, proxy ARP ranges, the neighbour
/// tables, parameters, and a registry of per-worker counters for the control side.
pub struct FwdShared {
    pub neigh: NeighTable,
    /// IPv6 neighbours (neighbour discovery).
    pub neigh6: NeighTable6,
    pub ifaces: Vec<Iface>,
    /// Proxy ARP ranges the stages start with (a [`SetProxy`] replaces a stage's copy).
    pub proxy: Arc<[ProxyArp]>,
    pub params: FwdParams,
    pub tsc_hz: u64,
    ports: Vec<PortInfo>,
    ports6: Vec<PortInfo6>,
    /// Any interface address: the ICMP source on a port that has none.
    fallback_addr: Option<u32>,
    /// Any global IPv6 interface address: the ICMPv6 source on a port that has none.
    fallback_addr6: Option<u128>,
    /// Router advertisements per port id (when the next unsolicited one is due, the last
    /// sent), claimed by whichever worker gets there first.
    ra: ra::RaClock,
    stats: Mutex<Vec<(usize, Arc<FwdStats>)>>,
    /// The punt path: which interfaces have a Linux TAP ([`punt`]).
    punt: punt::PuntShared,
}

impl FwdShared {
    /// Builds the shared state; fails if a static neighbour does not fit in the table.
    pub fn new(
        ifaces: Vec<Iface>,
        proxy: Vec<ProxyArp>,
        neighbors: &[StaticNeighbor],
        neighbors6: &[StaticNeighbor6],
        params: FwdParams,
        tsc_hz: u64,
    ) -> Result<FwdShared, String> {
        let timing = NeighTiming::new(
            params.arp_timeout_s,
            params.arp_retry_ms,
            params.arp_retries,
            tsc_hz,
        );
        let neigh = NeighTable::new(params.neighbor_capacity, timing);
        for n in neighbors {
            if !neigh.add_static(n.ip, n.mac, n.port) {
                return Err(format!(
                    "neighbour table full adding static {}",
                    std::net::Ipv4Addr::from(n.ip)
                ));
            }
        }
        let neigh6 = NeighTable6::new(params.neighbor_capacity, timing);
        for n in neighbors6 {
            if !neigh6.add_static(n.ip, n.mac, n.port) {
                return Err(format!(
                    "neighbour table full adding static {}",
                    std::net::Ipv6Addr::from(n.ip)
                ));
            }
        }
        let max = ifaces
            .iter()
            .map(|i| i.port as usize + 1)
            .max()
            .unwrap_or(0);
        let mut ports = vec![PortInfo::default(); max];
        for i in &ifaces {
            ports[i.port as usize] = PortInfo {
                present: true,
                mac: i.mac,
                addr: i.addr.map(|a| a.0).unwrap_or(0),
                subnet: i.subnet(),
            };
        }
        let mut ports6 = vec![PortInfo6::default(); max];
        for i in &ifaces {
            ports6[i.port as usize] = PortInfo6 {
                link_local: i.link_local(),
                addrs: i.addr6.clone(),
                ra: i.ra.then(|| ra::prefixes(&i.addr6)),
                mtu: i.mtu,
            };
        }
        let fallback_addr = ifaces.iter().find_map(|i| i.addr.map(|a| a.0));
        let fallback_addr6 = ifaces.iter().find_map(|i| i.addr6.first().map(|a| a.0));
        let ra = ra::RaClock::new(max);
        Ok(FwdShared {
            ra,
            neigh,
            neigh6,
            ports6,
            fallback_addr6,
            ifaces,
            proxy: proxy.into(),
            params,
            tsc_hz,
            ports,
            fallback_addr,
            stats: Mutex::new(Vec::new()),
            punt: Default::default(),
        })
    }

    /// Takes over what a running predecessor knows: its learnt neighbours (static ones come
    /// from this one's configuration) and its registry of worker counters. Used by reloads.
    pub fn inherit(&mut self, old: &FwdShared) {
        self.neigh.import(&old.neigh);
        self.neigh6.import(&old.neigh6);
        let st = old.stats();
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = st;
        self.inherit_punt(old);
    }

    /// Counters of every worker's stage, with the worker index (control side).
    pub fn stats(&self) -> Vec<(usize, Arc<FwdStats>)> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    #[inline]
    fn port(&self, p: u16) -> Option<&PortInfo> {
        self.ports.get(p as usize).filter(|i| i.present)
    }

    /// Whether `ip` is one of the appliance's interface addresses.
    fn is_own(&self, ip: u32) -> bool {
        self.ports
            .iter()
            .any(|p| p.present && p.addr == ip && ip != 0)
    }

    /// The link-local address of `port` (None: no IPv6 there).
    fn link_local(&self, port: u16) -> Option<u128> {
        self.ports6.get(port as usize).and_then(|p| p.link_local)
    }

    /// Every IPv6 address of `port`: link-local, then the global ones.
    fn v6_addrs(&self, port: u16) -> impl Iterator<Item = u128> + '_ {
        let p = self.ports6.get(port as usize);
        p.and_then(|p| p.link_local)
            .into_iter()
            .chain(p.into_iter().flat_map(|p| p.addrs.iter().map(|a| a.0)))
    }

    /// Whether `ip` is in one of `port`'s IPv6 subnets.
    fn on_link6(&self, port: u16, ip: u128) -> bool {
        self.ports6.get(port as usize).is_some_and(|p| {
            p.addrs
                .iter()
                .any(|&(a, l)| table6::Prefix6::new(a, l).contains(ip))
        })
    }

    /// Whether `ip` is one of the box's IPv6 addresses (global or link-local).
    fn is_own6(&self, ip: u128) -> bool {
        self.ports6
            .iter()
            .any(|p| p.link_local == Some(ip) || p.addrs.iter().any(|a| a.0 == ip))
    }

    /// Source address for ICMPv6 errors out of `port` to `dst` (RFC 4443 2.2): the port's
    /// link-local address when `dst` is link-local, else its first global address, else any
    /// global address of the box, else its link-local one.
    fn source6_for(&self, port: u16, dst: u128) -> Option<u128> {
        let p = self.ports6.get(port as usize)?;
        if crate::wire::ipv6::is_link_local(dst) {
            return p.link_local;
        }
        p.addrs
            .first()
            .map(|a| a.0)
            .or(self.fallback_addr6)
            .or(p.link_local)
    }

    /// Source address for packets the appliance sends out of `port`.
    fn source_for(&self, port: u16) -> Option<u32> {
        match self.port(port) {
            Some(p) if p.addr != 0 => Some(p.addr),
            _ => self.fallback_addr,
        }
    }
}

/// A new configuration for the stage (a reload): routes and everything shared. The stage
/// gives back the `Install` it replaced. A route change alone sends an `Arc<FwdTable>`.
pub struct Install {
    pub table: Arc<FwdTable>,
    pub shared: Arc<FwdShared>,
}

/// A new proxy ARP list for the stage (e.g. NAT's outside addresses changed with a static
/// mapping), built on the control side. The stage gives back the list it replaced.
pub struct SetProxy(pub Arc<[ProxyArp]>);

/// One worker's forward stage.
pub struct Forward {
    table: Arc<FwdTable>,
    shared: Arc<FwdShared>,
    /// Proxy ARP ranges in force (from `shared`, or the last [`SetProxy`]).
    proxy: Arc<[ProxyArp]>,
    stats: Arc<FwdStats>,
    /// Egress MAC per port id (copied from the shared interfaces: no pointer chase per packet).
    port_mac: Vec<[u8; 6]>,
    /// Largest frame (egress MTU + Ethernet header) per port id; `u32::MAX` for a port the
    /// stage does not know (no limit).
    port_frame_max: Vec<u32>,
    /// MSS clamp per port id, 0 for none ([`Iface::mss_clamp`]).
    port_mss: Vec<u16>,
    /// Whether any port has an MSS clamp: without one, the fast loop never looks at TCP.
    mss_any: bool,
    /// Whether any interface sends router advertisements.
    ra_any: bool,
    held: Vec<Held>,
    /// Packets parked during the current burst, waiting for the runtime to hand them over.
    adopting: std::collections::VecDeque<Parked>,
    /// An ARP answer arrived in this burst: send what it unblocks once the burst is decided.
    release_due: bool,
    hold_ticks: u64,
    bucket: Bucket,
    /// Broadcast ARP requests ([`FwdParams::arp_requests_per_s`]).
    arp_bucket: Bucket,
    ident: u16,
    /// The route memo, kept between bursts (see [`Memo`]).
    memo: Memo,
    memo_ticks: u64,
    /// ARP taught the stage something while it handled the current packet: the memo is
    /// forgotten before the next one ([`Forward::one`]).
    memo_stale: bool,
    /// The punt path's rate limit and counters ([`punt`]).
    punt: punt::PuntWorker,
    /// The IPv6 route memo, kept between bursts like `memo` ([`fast6::Memo6`]).
    memo6: fast6::Memo6,
    /// The IPv6 fast loop's working space.
    scratch6: Box<fast6::Scratch6>,
    /// This worker's index (its slot in the next-hop groups' counters).
    worker: usize,
    /// Bursts go through [`Forward::one`] packet by packet, without the fast loops
    /// ([`Forward::general_path_only`]).
    general_only: bool,
    /// The multipath route memo, kept between bursts like `memo` ([`multipath::GroupMemo`]).
    gmemo: multipath::GroupMemo,
}

/// Egress MAC per port id.
fn port_macs(shared: &FwdShared) -> Vec<[u8; 6]> {
    let mut v = vec![[0u8; 6]; shared.ports.len()];
    for i in &shared.ifaces {
        v[i.port as usize] = i.mac;
    }
    v
}

/// Largest frame per port id: the egress MTU plus the Ethernet header.
fn port_frame_max(shared: &FwdShared) -> Vec<u32> {
    let mut v = vec![u32::MAX; shared.ports.len()];
    for i in &shared.ifaces {
        v[i.port as usize] = i.mtu as u32 + ether::HEADER_LEN as u32;
    }
    v
}

/// MSS clamp per port id, 0 for none.
fn port_mss(shared: &FwdShared) -> Vec<u16> {
    let mut v = vec![0u16; shared.ports.len()];
    for i in &shared.ifaces {
        v[i.port as usize] = i.mss_clamp.unwrap_or(0);
    }
    v
}

/// How long a packet may wait for ARP: long enough for every retry to be answered.
fn hold_ticks(shared: &FwdShared) -> u64 {
    let t = shared.neigh.timing();
    t.retry * t.retries as u64
}

/// How long a neighbour lookup serves later bursts, TSC ticks ([`MEMO_MS`]).
fn memo_ticks(shared: &FwdShared) -> u64 {
    shared.tsc_hz / 1000 * MEMO_MS
}

impl Forward {
    /// The stage of worker `worker`, sharing `shared` and the current `table`.
    pub fn new(shared: Arc<FwdShared>, table: Arc<FwdTable>, worker: usize) -> Forward {
        let stats = Arc::new(FwdStats::default());
        shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((worker, stats.clone()));
        Forward {
            table,
            stats,
            port_mac: port_macs(&shared),
            port_frame_max: port_frame_max(&shared),
            port_mss: port_mss(&shared),
            mss_any: shared.ifaces.iter().any(|i| i.mss_clamp.is_some()),
            ra_any: shared.ifaces.iter().any(|i| i.ra),
            held: Vec::with_capacity(shared.params.arp_queue),
            adopting: std::collections::VecDeque::with_capacity(BURST_MAX),
            release_due: false,
            hold_ticks: hold_ticks(&shared),
            bucket: Bucket::EMPTY,
            arp_bucket: Bucket::EMPTY,
            ident: (worker as u16).wrapping_mul(0x1000),
            memo: Memo::EMPTY,
            memo_ticks: memo_ticks(&shared),
            memo_stale: false,
            punt: punt::PuntWorker::new(&shared, worker),
            memo6: fast6::Memo6::EMPTY,
            scratch6: fast6::Scratch6::new(),
            worker,
            proxy: shared.proxy.clone(),
            shared,
            general_only: false,
            gmemo: multipath::GroupMemo::EMPTY,
        }
    }

    /// Makes bursts take the general path packet by packet, without the fast loops (`fast`,
    /// `chained`, `multipath`; a burst from a port with VLAN sub-interfaces, tags and all,
    /// still takes `fast`'s): the reference those loops are tested against. Not for
    /// production use: the result is the same, only slower.
    #[doc(hidden)]
    pub fn general_path_only(&mut self, on: bool) {
        self.general_only = on;
    }

    /// Whether the appliance answers ARP for `ip` on `port`: the port's own address or a proxy
    /// range for that port (or for every port).
    fn answers_arp(&self, port: u16, ip: u32) -> bool {
        if self
            .shared
            .port(port)
            .is_some_and(|p| p.addr != 0 && p.addr == ip)
        {
            return true;
        }
        self.proxy
            .iter()
            .any(|x| x.prefix.contains(ip) && x.port.is_none_or(|p| p == port))
    }

    /// This worker's counters.
    pub fn stats(&self) -> Arc<FwdStats> {
        self.stats.clone()
    }

    /// This worker's punt counters.
    pub fn punt_stats(&self) -> Arc<punt::PuntStats> {
        self.punt.stats.clone()
    }

    #[inline]
    fn src_mac(&self, port: u16) -> [u8; 6] {
        self.port_mac
            .get(port as usize)
            .copied()
            .unwrap_or_default()
    }

    /// The largest frame `port` takes (its MTU plus the Ethernet header; no limit for a port
    /// the stage does not know).
    #[inline]
    fn frame_max(&self, port: u16) -> u32 {
        self.port_frame_max
            .get(port as usize)
            .copied()
            .unwrap_or(u32::MAX)
    }

    /// The MSS clamp for a segment from `in_port` to `out_port`: the smaller of the two ports'
    /// clamps, 0 when neither has one. (Subtracting 1 makes "none" the largest value; clamps
    /// are at least 536.)
    #[inline]
    fn mss_for(&self, in_port: u16, out_port: u16) -> u16 {
        let c = |p: u16| self.port_mss.get(p as usize).copied().unwrap_or(0);
        c(in_port)
            .wrapping_sub(1)
            .min(c(out_port).wrapping_sub(1))
            .wrapping_add(1)
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }
}

/// A next-hop id no lookup returns (ids are 31-bit; a miss is [`dpdk::fib::MISS`]).
const NO_HOP: u32 = u32::MAX - 1;

/// The last next hop routed to and the Ethernet addresses (destination, source) to write;
/// `hop`: the next-hop id of the route that led there when it goes through a gateway (else
/// [`NO_HOP`]); `born`: when the neighbour was looked up. It outlives a burst for at most
/// [`MEMO_MS`] (a changed neighbour MAC shows within that time) and is forgotten when the
/// stage gets a new table or learns from ARP.
#[derive(Clone, Copy)]
struct Memo {
    hop: u32,
    nh: u32,
    port: u16,
    macs: [u8; 12],
    born: u64,
}

impl Memo {
    const EMPTY: Memo = Memo {
        hop: NO_HOP,
        nh: 0,
        port: u16::MAX,
        macs: [0; 12],
        born: 0,
    };
}

/// How long a neighbour lookup serves later bursts, milliseconds.
const MEMO_MS: u64 = 1;

/// Broadcast ARP requests a worker may send back to back before `arp_requests_per_s` applies.
pub const ARP_BURST: u32 = 16;

impl Stage for Forward {
    fn name(&self) -> &'static str {
        "forward"
    }

    fn changes_length(&self) -> bool {
        false
    }

    /// The fast path reads every packet's length anyway: the runtime's receive pass is
    /// spared (chains without metadata, where forward comes first).
    fn counts_rx_bytes(&self) -> bool {
        true
    }

    /// Bursts from ports with VLAN sub-interfaces come as received: the fast loop forwards a
    /// frame tagged for a sub-interface to a tagged sub-interface with its L2 header
    /// rewritten in place, and gives any other frame to the runtime's receive work first
    /// (`fast::tagged_run`).
    fn takes_tagged(&self) -> bool {
        true
    }

    /// The stage parses every packet it has no parse for and fills the metadata in itself
    /// where its slow paths read it (see `slow::fill_meta`).
    fn needs_meta(&self) -> bool {
        false
    }

    fn process(&mut self, ctx: &mut StageCtx<'_>, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) {
        let n = pkts.len().min(verdicts.len());
        let mut memo = if ctx.now.wrapping_sub(self.memo.born) < self.memo_ticks {
            self.memo
        } else {
            Memo::EMPTY
        };
        if ctx.now.wrapping_sub(self.gmemo.born) >= self.memo_ticks {
            self.gmemo.hop = NO_HOP;
        }
        if self.general_only && ctx.tagged.is_none() {
            let bytes = pkts[..n].iter().map(|m| m.pkt_len() as u64).sum();
            for (i, v) in verdicts[..n].iter_mut().enumerate() {
                *v = self.one(ctx, pkts, i, &mut memo);
            }
            if !ctx.meta_valid {
                ctx.report_rx_bytes(bytes);
            }
        } else if ctx.meta_valid {
            self.process_meta(ctx, pkts, &mut verdicts[..n], &mut memo);
        } else {
            self.process_fast(ctx, pkts, &mut verdicts[..n], &mut memo);
        }
        self.memo = memo;
        if self.release_due {
            self.release_due = false;
            self.release(ctx);
        }
    }

    fn adopt(&mut self, m: Mbuf) {
        // Called once per packet given `Verdict::Held`, in burst order: the queue of this
        // burst's parked packets lines up with it. The vector has its capacity reserved.
        if let Some(p) = self.adopting.pop_front() {
            self.held.push(Held {
                m,
                nh: p.nh,
                port: p.port,
                deadline: p.deadline,
            });
        }
    }

    fn housekeeping(&mut self, ctx: &mut StageCtx<'_>) {
        if !self.held.is_empty() {
            self.release(ctx);
        }
        if self.ra_any {
            self.ra_tick(ctx);
        }
    }

    fn shutdown(&mut self, ctx: &mut StageCtx<'_>) {
        // Packets still parked for ARP: freed here, and counted.
        if !self.held.is_empty() {
            ctx.count_drop(DropReason::Shutdown, self.held.len() as u32);
            self.held.clear();
        }
    }

    fn control(
        &mut self,
        msg: Box<dyn Any + Send>,
    ) -> Result<Box<dyn Any + Send>, Box<dyn Any + Send>> {
        // Whatever changes, route ids and neighbours are looked up afresh.
        self.memo = Memo::EMPTY;
        self.gmemo = multipath::GroupMemo::EMPTY;
        self.memo6 = fast6::Memo6::EMPTY;
        let msg = match msg.downcast::<Arc<FwdTable>>() {
            Ok(t) => return Ok(Box::new(std::mem::replace(&mut self.table, *t))),
            Err(m) => m,
        };
        let msg = match msg.downcast::<SetProxy>() {
            Ok(p) => {
                let old = std::mem::replace(&mut self.proxy, p.0);
                return Ok(Box::new(SetProxy(old)));
            }
            Err(m) => m,
        };
        let mut ins = msg.downcast::<Install>()?;
        // A reload allocates here, on the worker, between two bursts (never per packet).
        self.port_mac = port_macs(&ins.shared);
        self.port_frame_max = port_frame_max(&ins.shared);
        self.port_mss = port_mss(&ins.shared);
        self.mss_any = ins.shared.ifaces.iter().any(|i| i.mss_clamp.is_some());
        self.ra_any = ins.shared.ifaces.iter().any(|i| i.ra);
        self.hold_ticks = hold_ticks(&ins.shared);
        self.memo_ticks = memo_ticks(&ins.shared);
        self.bucket.ready = false;
        self.arp_bucket.ready = false;
        self.punt.reset();
        if self.held.capacity() < ins.shared.params.arp_queue {
            self.held
                .reserve_exact(ins.shared.params.arp_queue - self.held.len());
        }
        std::mem::swap(&mut self.table, &mut ins.table);
        std::mem::swap(&mut self.shared, &mut ins.shared);
        self.proxy = self.shared.proxy.clone();
        Ok(ins)
    }
}
