//! The forward stage: an IPv4 router.
//!
//! Per burst: validate (RFC 1812 5.2.2, shared parser), filter martians (5.3.7), look every
//! destination up at once in `rte_lpm`, then per packet: deliver locally (ICMP echo reply,
//! UDP -> port unreachable, the rest consumed), send ICMP time exceeded / destination
//! unreachable (rate-limited), or decrement the TTL (RFC 1624 checksum update), rewrite the
//! MACs to the egress port and the next hop, and transmit. ARP is answered and learnt here;
//! next hops are resolved by ARP, packets waiting for an answer are parked in a small
//! per-worker queue.
//!
//! Files: [`ipv4`] (rewrites, address classes), [`arp`], [`icmp`], [`neigh`] (the shared
//! lock-free neighbour table), [`table`] (routes, interfaces, the LPM table).

pub mod arp;
pub mod icmp;
pub mod ipv4;
pub mod neigh;
pub mod table;

use std::any::Any;
use std::sync::{Arc, Mutex};

use dpdk::meta::flags;
use dpdk::{BURST_MAX, Mbuf, PktMeta};
use pollfwd_pipeline::counters::Counter;
use pollfwd_pipeline::{DropReason, Stage, StageCtx, Verdict};

use crate::parse;
use crate::wire::{self, ether, proto};
use dpdk::lpm::RouteKey;
use icmp::IcmpError;
use neigh::{Lookup, NeighTable, NeighTiming};
use table::{FwdTable, Hop, Iface, Prefix};

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
    /// ICMP errors sent back to back before the rate applies.
    pub icmp_burst: u32,
    /// Neighbour table slots.
    pub neighbor_capacity: usize,
}

impl Default for FwdParams {
    fn default() -> Self {
        FwdParams {
            arp_timeout_s: 300,
            arp_retry_ms: 1000,
            arp_retries: 3,
            arp_queue: 64,
            icmp_errors_per_s: 100,
            icmp_burst: 10,
            neighbor_capacity: 4096,
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

/// Counters of one worker's forward stage (single writer: that worker).
#[derive(Debug, Default)]
pub struct FwdStats {
    pub arp_requests_sent: Counter,
    pub arp_replies_sent: Counter,
    pub arp_learned: Counter,
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
    /// Packets the stage could not build (mbuf pool empty).
    pub alloc_failed: Counter,
}

impl FwdStats {
    /// (name, value) of every counter, for listings.
    pub fn values(&self) -> [(&'static str, u64); 11] {
        [
            ("arp_requests_sent", self.arp_requests_sent.get()),
            ("arp_replies_sent", self.arp_replies_sent.get()),
            ("arp_learned", self.arp_learned.get()),
            ("echo_replies_sent", self.echo_replies_sent.get()),
            ("icmp_errors_sent", self.icmp_errors_sent.get()),
            ("icmp_rate_limited", self.icmp_rate_limited.get()),
            ("held", self.held.get()),
            ("released", self.released.get()),
            ("held_expired", self.held_expired.get()),
            ("neigh_table_full", self.neigh_table_full.get()),
            ("alloc_failed", self.alloc_failed.get()),
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

/// What every worker's forward stage shares: interfaces, proxy ARP ranges, the neighbour
/// table, parameters, and a registry of per-worker counters for the control side.
pub struct FwdShared {
    pub neigh: NeighTable,
    pub ifaces: Vec<Iface>,
    /// Proxy ARP ranges the stages start with (a [`SetProxy`] replaces a stage's copy).
    pub proxy: Arc<[ProxyArp]>,
    pub params: FwdParams,
    pub tsc_hz: u64,
    ports: Vec<PortInfo>,
    /// Any interface address: the ICMP source on a port that has none.
    fallback_addr: Option<u32>,
    stats: Mutex<Vec<(usize, Arc<FwdStats>)>>,
}

impl FwdShared {
    /// Builds the shared state; fails if a static neighbour does not fit in the table.
    pub fn new(
        ifaces: Vec<Iface>,
        proxy: Vec<ProxyArp>,
        neighbors: &[StaticNeighbor],
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
        let fallback_addr = ifaces.iter().find_map(|i| i.addr.map(|a| a.0));
        Ok(FwdShared {
            neigh,
            ifaces,
            proxy: proxy.into(),
            params,
            tsc_hz,
            ports,
            fallback_addr,
            stats: Mutex::new(Vec::new()),
        })
    }

    /// Takes over what a running predecessor knows: its learnt neighbours (static ones come
    /// from this one's configuration) and its registry of worker counters. Used by reloads.
    pub fn inherit(&mut self, old: &FwdShared) {
        self.neigh.import(&old.neigh);
        let st = old.stats();
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = st;
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

/// A packet parked while ARP resolves its next hop (already TTL-decremented).
struct Held {
    m: Mbuf,
    nh: u32,
    port: u16,
    deadline: u64,
}

/// Where a packet given [`Verdict::Held`] waits until the runtime hands it over ([`Stage::adopt`]).
struct Parked {
    nh: u32,
    port: u16,
    deadline: u64,
}

/// Token bucket for ICMP errors: `cost` ticks per message, at most `cap` ticks banked.
struct Bucket {
    tokens: u64,
    last: u64,
    cost: u64,
    cap: u64,
    ready: bool,
}

impl Bucket {
    fn take(&mut self, ctx: &StageCtx<'_>, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return false;
        }
        if !self.ready {
            // Each worker gets an equal share of the rate; the burst is per worker too.
            let per = (rate as u64).div_ceil(ctx.workers.max(1) as u64);
            self.cost = (ctx.tsc_hz / per).max(1);
            self.cap = self.cost * burst.max(1) as u64;
            self.tokens = self.cap;
            self.last = ctx.now;
            self.ready = true;
        }
        let add = ctx.now.saturating_sub(self.last);
        self.last = ctx.now;
        self.tokens = (self.tokens.saturating_add(add)).min(self.cap);
        if self.tokens >= self.cost {
            self.tokens -= self.cost;
            true
        } else {
            false
        }
    }
}

/// One worker's forward stage.
pub struct Forward {
    table: Arc<FwdTable>,
    shared: Arc<FwdShared>,
    /// Proxy ARP ranges in force (from `shared`, or the last [`SetProxy`]).
    proxy: Arc<[ProxyArp]>,
    stats: Arc<FwdStats>,
    /// Egress MAC per port id (copied from the shared interfaces: no pointer chase per packet).
    port_mac: Vec<[u8; 6]>,
    held: Vec<Held>,
    /// Packets parked during the current burst, waiting for the runtime to hand them over.
    adopting: std::collections::VecDeque<Parked>,
    /// An ARP answer arrived in this burst: send what it unblocks once the burst is decided.
    release_due: bool,
    hold_ticks: u64,
    bucket: Bucket,
    ident: u16,
    /// The route memo, kept between bursts (see [`Memo`]).
    memo: Memo,
    memo_ticks: u64,
    /// ARP taught the stage something while it handled the current packet: the memo is
    /// forgotten before the next one ([`Forward::one`]).
    memo_stale: bool,
}

/// Egress MAC per port id.
fn port_macs(shared: &FwdShared) -> Vec<[u8; 6]> {
    let mut v = vec![[0u8; 6]; shared.ports.len()];
    for i in &shared.ifaces {
        v[i.port as usize] = i.mac;
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

/// Result of the per-packet classification before the route lookup.
enum Pre {
    Done(Verdict),
    /// Destination address and L3 offset.
    Lookup(u32, u16),
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
            held: Vec::with_capacity(shared.params.arp_queue),
            adopting: std::collections::VecDeque::with_capacity(BURST_MAX),
            release_due: false,
            hold_ticks: hold_ticks(&shared),
            bucket: Bucket {
                tokens: 0,
                last: 0,
                cost: 1,
                cap: 1,
                ready: false,
            },
            ident: (worker as u16).wrapping_mul(0x1000),
            memo: Memo::EMPTY,
            memo_ticks: memo_ticks(&shared),
            memo_stale: false,
            proxy: shared.proxy.clone(),
            shared,
        }
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

    #[inline]
    fn src_mac(&self, port: u16) -> [u8; 6] {
        self.port_mac
            .get(port as usize)
            .copied()
            .unwrap_or_default()
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// Validation and local checks before the route lookup.
    #[inline(always)]
    fn pre(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf) -> Pre {
        let meta = m.meta();
        let (src, dst, l3) = if meta.flags & (flags::PARSED | flags::IPV4)
            == flags::PARSED | flags::IPV4
        {
            (meta.src_ip, meta.dst_ip, meta.l3_off)
        } else {
            let d = m.data();
            if ether::Frame::new_checked(d).is_ok_and(|e| e.ethertype() == ether::EtherType::Arp) {
                return Pre::Done(self.arp(ctx, m));
            }
            match parse::parse_ipv4_frame(d, m.pkt_len() as usize) {
                Ok(p) => {
                    p.write(m.meta_mut());
                    (p.src_ip, p.dst_ip, p.l3_off)
                }
                Err(r) => return Pre::Done(Verdict::Drop(r)),
            }
        };
        if ipv4::bad_source(src) {
            return Pre::Done(Verdict::Drop(DropReason::Ipv4BadSource));
        }
        if ipv4::bad_destination(dst) {
            return Pre::Done(Verdict::Drop(DropReason::Ipv4BadDest));
        }
        if dst == ipv4::LIMITED_BROADCAST {
            return Pre::Done(Verdict::Drop(DropReason::ForUs));
        }
        Pre::Lookup(dst, l3)
    }

    /// An ARP frame arrived: learn, answer, or drop it with a reason.
    #[cold]
    #[inline(never)]
    fn arp(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf) -> Verdict {
        let in_port = m.meta().in_port;
        let Some(a) = arp::parse(m.data()) else {
            return Verdict::Drop(DropReason::ArpInvalid);
        };
        let Some(pi) = self.shared.port(in_port).copied() else {
            return Verdict::Drop(DropReason::ArpInvalid);
        };
        let for_us = self.answers_arp(in_port, a.tpa);
        let mut learned = false;
        // RFC 826 "Packet Reception": merge the sender into an existing entry; add it when we
        // are the target. Never learn our own addresses (a conflict) or 0.0.0.0 (RFC 5227
        // probes), and only add senders on the port's connected subnet.
        if a.spa != 0 && !self.shared.is_own(a.spa) {
            let on_link = pi.subnet.is_some_and(|s| s.contains(a.spa));
            let create = for_us && on_link && !a.is_gratuitous();
            if self
                .shared
                .neigh
                .learn(a.spa, a.sha, in_port, ctx.now, create)
            {
                self.stats.arp_learned.add(1);
                learned = true;
                self.memo_stale = true;
            }
        }
        if a.op == wire::arp::op::REQUEST && for_us && !a.is_gratuitous() {
            arp::reply_in_place(m.data_mut(), &a, pi.mac);
            self.stats.arp_replies_sent.add(1);
            return Verdict::Tx(in_port);
        }
        // A reply (or request we do not answer) addressed to us was consumed; anything else is
        // irrelevant to the appliance (even if it refreshed an entry on the way).
        if learned && !self.held.is_empty() {
            self.release_due = true;
        }
        if for_us {
            Verdict::Drop(DropReason::ForUs)
        } else {
            Verdict::Drop(DropReason::ArpInvalid)
        }
    }

    /// Sends a request for `target` out of `port` (broadcast, or unicast to `dst` to refresh).
    fn send_arp_request(
        &mut self,
        ctx: &mut StageCtx<'_>,
        port: u16,
        target: u32,
        dst: Option<[u8; 6]>,
    ) {
        let Some(pi) = self.shared.port(port).copied() else {
            return;
        };
        // The sender address: the port's own, else any of the appliance's (RFC 826 needs one;
        // 0.0.0.0 would make it an RFC 5227 probe that hosts do not learn from).
        let src = self.shared.source_for(port).unwrap_or(0);
        let Some(mut r) = ctx.pool.alloc() else {
            self.stats.alloc_failed.add(1);
            return;
        };
        if !r.set_len(arp::MIN_FRAME as u16) {
            return;
        }
        arp::build_request(r.data_mut(), pi.mac, src, target, dst.unwrap_or([0xff; 6]));
        self.stats.arp_requests_sent.add(1);
        ctx.send(r, port);
    }

    /// Sends an ICMP error about `m` back out of its ingress port, if RFC 1812 allows one and
    /// the rate limit has a token. The source is the ingress interface's address (RFC 1812
    /// 4.3.2.4), or `from` for errors about datagrams addressed to the appliance itself (RFC
    /// 1122 3.2.2: the address the datagram was sent to).
    #[cold]
    #[inline(never)]
    fn icmp_error(&mut self, ctx: &mut StageCtx<'_>, m: &Mbuf, kind: IcmpError, from: Option<u32>) {
        let l3 = m.meta().l3_off as usize;
        let in_port = m.meta().in_port;
        if !icmp::error_allowed(m.data(), l3) {
            return;
        }
        let p = self.shared.params;
        if !self.bucket.take(ctx, p.icmp_errors_per_s, p.icmp_burst) {
            self.stats.icmp_rate_limited.add(1);
            return;
        }
        let (Some(pi), Some(src)) = (
            self.shared.port(in_port).copied(),
            from.or_else(|| self.shared.source_for(in_port)),
        ) else {
            return;
        };
        let Some(mut e) = ctx.pool.alloc() else {
            self.stats.alloc_failed.add(1);
            return;
        };
        let max = (ether::HEADER_LEN + icmp::MAX_ERROR_DATAGRAM) as u16;
        if !e.set_len(max) {
            return;
        }
        let ident = self.next_ident();
        let n = icmp::build_error(e.data_mut(), m.data(), l3, kind, pi.mac, src, ident);
        e.set_len(n as u16);
        self.stats.icmp_errors_sent.add(1);
        ctx.send(e, in_port);
    }

    /// A packet to one of the appliance's addresses.
    #[cold]
    #[inline(never)]
    fn local(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf) -> Verdict {
        let meta = *m.meta();
        if meta.flags & flags::FRAG != 0 {
            return Verdict::Drop(DropReason::ForUs);
        }
        match meta.proto {
            proto::ICMP => {
                let Some(pi) = self.shared.port(meta.in_port).copied() else {
                    return Verdict::Drop(DropReason::ForUs);
                };
                if icmp::echo_reply_in_place(m.data_mut(), meta.l3_off as usize, pi.mac) {
                    self.stats.echo_replies_sent.add(1);
                    Verdict::Tx(meta.in_port)
                } else {
                    Verdict::Drop(DropReason::ForUs)
                }
            }
            // No UDP service listens on the appliance: port unreachable ends a traceroute
            // aimed at the appliance itself (RFC 1122 3.2.2.1).
            proto::UDP => {
                self.icmp_error(ctx, m, IcmpError::PortUnreachable, Some(meta.dst_ip));
                Verdict::Drop(DropReason::ForUs)
            }
            _ => Verdict::Drop(DropReason::ForUs),
        }
    }

    /// Parks `pkts[i]` until `nh` answers ARP (sending a request when one is due), or drops it.
    fn resolve(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        i: usize,
        nh: u32,
        port: u16,
        miss: Lookup,
    ) -> Verdict {
        let neigh = &self.shared.neigh;
        let slot = match miss {
            // Learnt by another worker since the lookup: nothing to wait for.
            Lookup::Hit { mac, .. } => {
                let src = self.src_mac(port);
                set_macs(pkts[i].data_mut(), &mac, &src);
                pkts[i].meta_mut().out_port = port;
                return Verdict::Tx(port);
            }
            Lookup::Unresolved { failed: true, .. } => {
                return Verdict::Drop(DropReason::NeighborUnresolved);
            }
            Lookup::Unresolved { slot, .. } => slot,
            Lookup::Absent => match neigh.insert(nh, port) {
                Some(s) => s,
                None => {
                    self.stats.neigh_table_full.add(1);
                    return Verdict::Drop(DropReason::NeighborUnresolved);
                }
            },
        };
        if self.shared.neigh.claim_request(slot, ctx.now) {
            self.send_arp_request(ctx, port, nh, None);
        }
        self.park(ctx, nh, port)
            .unwrap_or(Verdict::Drop(DropReason::NeighborUnresolved))
    }

    /// Parks the packet being routed in the wait queue for `nh`: it gets [`Verdict::Held`]
    /// and the runtime hands it back through [`Stage::adopt`] once this burst is processed.
    /// `None` if the queue is full (the packet stays in the burst).
    fn park(&mut self, ctx: &StageCtx<'_>, nh: u32, port: u16) -> Option<Verdict> {
        if self.held.len() + self.adopting.len() >= self.shared.params.arp_queue {
            return None;
        }
        self.adopting.push_back(Parked {
            nh,
            port,
            deadline: ctx.now + self.hold_ticks,
        });
        self.stats.held.add(1);
        Some(Verdict::Held)
    }

    /// Whether packets to `nh` are parked on this worker (waiting, or parked in this burst).
    #[inline]
    fn parked_for(&self, nh: u32) -> bool {
        self.held.iter().any(|h| h.nh == nh) || self.adopting.iter().any(|p| p.nh == nh)
    }

    /// Sends parked packets whose next hop resolved, in arrival order; frees the ones past
    /// their deadline or whose neighbour failed, and re-asks for the others when due.
    fn release(&mut self, ctx: &mut StageCtx<'_>) {
        let mut i = 0;
        while i < self.held.len() {
            let (nh, port, deadline) = {
                let h = &self.held[i];
                (h.nh, h.port, h.deadline)
            };
            match self.shared.neigh.lookup(nh, ctx.now) {
                Lookup::Hit { mac, .. } => {
                    let mut h = self.held.remove(i);
                    let src = self.src_mac(port);
                    set_macs(h.m.data_mut(), &mac, &src);
                    self.stats.released.add(1);
                    ctx.send(h.m, port);
                    continue;
                }
                Lookup::Unresolved { failed, slot } if !failed && ctx.now < deadline => {
                    if self.shared.neigh.claim_request(slot, ctx.now) {
                        self.send_arp_request(ctx, port, nh, None);
                    }
                    i += 1;
                }
                _ => {
                    drop(self.held.remove(i));
                    self.stats.held_expired.add(1);
                    ctx.count_drop(DropReason::NeighborHeldExpired, 1);
                }
            }
        }
    }

    /// A burst whose metadata nothing reads ([`StageCtx::meta_valid`] false: this stage
    /// alone, or after stages that do not read it). The common packet — a plain IPv4 frame
    /// (no options, good checksum, no martian address) routed like the packet before it
    /// through a gateway (`memo`), unicast, TTL > 1 — is checked and rewritten in place with a
    /// few loads and stores; any other packet takes [`Forward::one`], which explains it with
    /// its exact reason (and fills in the metadata its slow paths read).
    ///
    /// The fast loop keeps everything it needs in locals (the LPM table's pointer, the memo's
    /// route as a tbl24 entry to compare with, the MACs to write): stores to packet bytes
    /// would otherwise make the compiler reload them for every packet. It leaves the loop
    /// for a packet it cannot decide, and comes back with the memo that packet left.
    ///
    /// When every packet leaves on the same port, the whole burst gets that verdict
    /// ([`StageCtx::verdict_all`]), which spares the runtime a pass over the verdicts.
    #[inline(always)]
    fn process_fast(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        memo: &mut Memo,
    ) {
        let n = verdicts.len();
        // Fast packets get `Tx(memo.port)`: the burst stays uniform while every slow verdict,
        // and every memo port a later fast packet may use, equals the first verdict.
        let mut first = (memo.hop != NO_HOP).then_some(Verdict::Tx(memo.port));
        let mut same = true;
        // The burst's bytes as received, for the runtime (see `Stage::counts_rx_bytes`).
        let mut rx_bytes = 0u64;
        let mut i = 0;
        loop {
            {
                let lpm = self.table.lpm_view();
                let key = if memo.hop != NO_HOP {
                    lpm.key(memo.hop)
                } else {
                    RouteKey::NONE
                };
                let macs = memo.macs;
                let start = i;
                for m in &mut pkts[i..n] {
                    let pkt_len = m.pkt_len();
                    let d = m.data_mut();
                    let frame_len = (pkt_len as usize).max(d.len());
                    let Some(h) = d.first_chunk_mut::<{ wire::ipv4::WORDS_LEN }>() else {
                        break;
                    };
                    // Every field below comes from four loads of the header.
                    let w = wire::ipv4::Words::load(h);
                    // Unicast destination MAC, TTL > 1, no martian (first octets), plain
                    // IPv4, and the destination's tbl24 entry is the memo's route.
                    if ether::is_group(h[0])
                        || w.ttl() <= 1
                        || martian(w.src_octet(), w.dst_octet())
                        || !w.is_plain(frame_len)
                        || !lpm.routes_to(w.dst(), key)
                    {
                        break;
                    }
                    w.store_ttl_decremented(h);
                    ether::Frame::new_unchecked(&mut h[..]).set_addrs(&macs);
                    rx_bytes += pkt_len as u64;
                    i += 1;
                }
                // One store loop for the run's verdicts rather than one store in each round.
                verdicts[start..i].fill(Verdict::Tx(memo.port));
            }
            if i >= n {
                break;
            }
            // Counted before the slow path can change the packet.
            rx_bytes += pkts[i].pkt_len() as u64;
            let v = self.one(ctx, pkts, i, memo);
            verdicts[i] = v;
            let f = *first.get_or_insert(v);
            same &= v == f && (memo.hop == NO_HOP || Verdict::Tx(memo.port) == f);
            i += 1;
        }
        if same && let Some(f) = first {
            ctx.verdict_all(f);
        }
        ctx.report_rx_bytes(rx_bytes);
    }

    /// One packet the general way: validate (the metadata's parse when there is one),
    /// look the destination up, route.
    #[inline(always)]
    fn one(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        i: usize,
        memo: &mut Memo,
    ) -> Verdict {
        if !ctx.meta_valid {
            fill_meta(ctx, &mut pkts[i]);
        }
        match self.pre(ctx, &mut pkts[i]) {
            Pre::Done(v) => {
                // ARP changed a neighbour: the packets after this one look it up again.
                if std::mem::take(&mut self.memo_stale) {
                    *memo = Memo::EMPTY;
                }
                v
            }
            Pre::Lookup(dst, l3) => {
                let hop = self.table.lookup_one(dst);
                self.route(ctx, pkts, i, (hop, dst, l3 as usize), memo)
            }
        }
    }

    /// Routes `pkts[i]` (next-hop id `hop_id` from the lookup of `dst`, IPv4 header at `l3`):
    /// the hot path is a forward along the same route as the burst's previous packet (`memo`:
    /// no hop table read, no neighbour lookup). Called by [`Forward::one`], which has filled
    /// in the metadata the slow paths (ICMP errors, local delivery) read.
    #[inline(always)]
    fn route(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        i: usize,
        (hop_id, dst, l3): (u32, u32, usize),
        memo: &mut Memo,
    ) -> Verdict {
        let (port, nh) = if hop_id == memo.hop {
            (memo.port, memo.nh)
        } else {
            match self.table.hop(hop_id) {
                Some(Hop::Forward { port, gateway }) => {
                    (port, if gateway != 0 { gateway } else { dst })
                }
                hop => return self.not_forwarded(ctx, &mut pkts[i], hop),
            }
        };
        let d = pkts[i].data_mut();
        // RFC 1812 5.3.4: a packet received as a link-layer broadcast or multicast is not
        // forwarded (it was meant for the link, and every router on it would forward it).
        if d.first().is_some_and(|&b| ether::is_group(b)) {
            return Verdict::Drop(DropReason::L2Broadcast);
        }
        // The parser checked that the header is in the first segment; `get` keeps a bad
        // offset from another stage a drop, not a panic.
        let Some(hdr) = d.get_mut(l3..l3 + wire::ipv4::MIN_HEADER_LEN) else {
            return Verdict::Drop(DropReason::Ipv4Truncated);
        };
        // RFC 1812 5.3.1: a router that would forward a datagram whose TTL is 1 or 0 discards
        // it and sends time exceeded.
        let mut ip = wire::ipv4::Packet::new_unchecked(hdr);
        if ip.ttl() <= 1 {
            return self.ttl_expired(ctx, &pkts[i]);
        }
        ip.decrement_ttl();
        if memo.nh == nh && memo.port == port {
            ether::Frame::new_unchecked(d).set_addrs(&memo.macs);
        } else {
            if let Err(v) = self.next_hop(ctx, pkts, i, nh, port, memo) {
                return v;
            }
            ether::Frame::new_unchecked(pkts[i].data_mut()).set_addrs(&memo.macs);
        }
        // A route through a gateway sends every packet to the same next hop: later packets
        // on it skip the hop table (a connected route's next hop is each destination).
        memo.hop = if nh != dst && memo.nh == nh && memo.port == port {
            hop_id
        } else {
            NO_HOP
        };
        if ctx.meta_valid {
            let meta = pkts[i].meta_mut();
            meta.out_port = port;
            meta.next_hop = hop_id as u16;
            meta.flags |= flags::MODIFIED;
        }
        Verdict::Tx(port)
    }

    /// Local delivery, directed broadcast, or no route.
    #[cold]
    #[inline(never)]
    fn not_forwarded(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf, hop: Option<Hop>) -> Verdict {
        match hop {
            Some(Hop::Local) => self.local(ctx, m),
            None => {
                self.icmp_error(ctx, m, IcmpError::NetUnreachable, None);
                Verdict::Drop(DropReason::NoRoute)
            }
            _ => Verdict::Drop(DropReason::ForUs),
        }
    }

    #[cold]
    #[inline(never)]
    fn ttl_expired(&mut self, ctx: &mut StageCtx<'_>, m: &Mbuf) -> Verdict {
        self.icmp_error(ctx, m, IcmpError::TtlExceeded, None);
        Verdict::Drop(DropReason::TtlExpired)
    }

    /// The burst's first packet to (`nh`, `port`): looks the neighbour up and fills `memo`
    /// with the Ethernet addresses to write; or parks / drops the packet (`Err(verdict)`).
    #[inline(never)]
    fn next_hop(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        i: usize,
        nh: u32,
        port: u16,
        memo: &mut Memo,
    ) -> Result<(), Verdict> {
        // Packets to a next hop that still has parked packets on this worker queue up behind
        // them (released together, in order) rather than overtake them. Such a next hop is
        // never memoised, so every packet to it comes through here.
        if self.parked_for(nh)
            && let Some(v) = self.park(ctx, nh, port)
        {
            return Err(v);
        }
        match self.shared.neigh.lookup(nh, ctx.now) {
            Lookup::Hit { mac, refresh, slot } => {
                if refresh && self.shared.neigh.claim_request(slot, ctx.now) {
                    self.send_arp_request(ctx, port, nh, Some(mac));
                }
                let src = self.src_mac(port);
                memo.macs[..6].copy_from_slice(&mac);
                memo.macs[6..].copy_from_slice(&src);
                memo.born = ctx.now;
                // Memoise only when nothing is parked (see above); otherwise make sure the
                // memo no longer claims these addresses for another next hop.
                (memo.nh, memo.port) = if self.held.is_empty() && self.adopting.is_empty() {
                    (nh, port)
                } else {
                    (0, u16::MAX)
                };
                Ok(())
            }
            miss => Err(self.resolve(ctx, pkts, i, nh, port, miss)),
        }
    }
}

/// Writes a frame's Ethernet destination and source addresses.
#[inline]
fn set_macs(frame: &mut [u8], dst: &[u8; 6], src: &[u8; 6]) {
    let mut e = ether::Frame::new_unchecked(frame);
    e.set_dst(dst);
    e.set_src(src);
}

/// A next-hop id no lookup returns (ids are 24-bit; a miss is [`dpdk::lpm::MISS`]).
const NO_HOP: u32 = u32::MAX - 1;

/// Whether a packet is not forwarded for its addresses (RFC 1812 5.3.7 martians, or the
/// limited broadcast, which is for the local link): [`Forward::pre`] says which.
#[inline(always)]
fn martian(src_octet: u8, dst_octet: u8) -> bool {
    // Both checks look at the first octet only (the limited broadcast is in class E, which
    // is a bad destination too): one table read each.
    MARTIAN[src_octet as usize] & 1 | MARTIAN[dst_octet as usize] & 2 != 0
}

/// Per first octet, from the address-class functions: bit 0 set if [`ipv4::bad_source`], bit 1
/// if [`ipv4::bad_destination`] (an address with that octet and zeros after it; octet 255 holds
/// the limited broadcast).
static MARTIAN: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut a = 0;
    while a < 256 {
        let ip = (a as u32) << 24;
        t[a] = ipv4::bad_source(ip) as u8 | (ipv4::bad_destination(ip) as u8) << 1;
        a += 1;
    }
    t
};

/// Gives a packet the metadata the stage's slow paths read (ingress port, the parse) when the
/// runtime did not initialise it ([`StageCtx::meta_valid`] false: nothing else reads it).
#[cold]
#[inline(never)]
fn fill_meta(ctx: &StageCtx<'_>, m: &mut Mbuf) {
    let mut meta = PktMeta::fresh(ctx.in_port.unwrap_or(u16::MAX), ctx.now);
    if let Ok(p) = parse::parse_ipv4_frame(m.data(), m.pkt_len() as usize) {
        p.write(&mut meta);
    }
    *m.meta_mut() = meta;
}

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

    /// The stage parses every packet it has no parse for and fills the metadata in itself
    /// where its slow paths read it (see [`fill_meta`]).
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
        if ctx.meta_valid {
            for (i, v) in verdicts[..n].iter_mut().enumerate() {
                *v = self.one(ctx, pkts, i, &mut memo);
            }
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
        self.hold_ticks = hold_ticks(&ins.shared);
        self.memo_ticks = memo_ticks(&ins.shared);
        self.bucket.ready = false;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn martian_table_agrees_with_the_address_classes() {
        // Every first octet with a spread of the other bits, as source and as destination.
        for a in 0u32..256 {
            for rest in [0u32, 1, 0x00ff_ffff, 0x0012_3456, 0x00ff_fffe] {
                let ip = a << 24 | rest;
                let want_src = ipv4::bad_source(ip);
                let want_dst = ipv4::bad_destination(ip) || ip == ipv4::LIMITED_BROADCAST;
                let octet = (ip >> 24) as u8;
                assert_eq!(martian(octet, 10), want_src, "src {ip:#x}");
                assert_eq!(martian(10, octet), want_dst, "dst {ip:#x}");
            }
        }
    }
}
