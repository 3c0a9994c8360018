//! NAT44: endpoint-independent NAPT to an address pool with paired pooling, configurable
//! filtering, static 1:1 mappings and port forwards, TCP/UDP/ICMP session tracking with
//! timeouts, ICMP error translation with the embedded header, hairpinning and first-fragment
//! translation (RFC 4787, RFC 5382, RFC 5508). See docs/nat.md for the design.
//!
//! One concern per file, as in VPP's nat44-ed:
//! - [`pkt`]: the packet view (parse once with the wire module's IPv4 parser, the flow key,
//!   checksum-preserving rewrites on the wire module's views and RFC 1624 updates);
//! - [`table`]: the per-worker session table, hash indexes and LRU lists;
//! - [`ports`]: the partition of the port range between workers and port allocation;
//! - [`statics`]: static mappings;
//! - [`in2out`], [`out2in`], [`hairpin`], [`icmp`], [`frag`]: the translation paths;
//! - [`tcp`]: TCP state for timeouts; [`expiry`]: idle expiry, LRU reclaim, deletion;
//! - [`prefetch`]: burst-level prefetching of index slots and sessions;
//! - [`stats`]: counters shared with the management side; [`stage`]: the pipeline stage;
//! - [`testpkt`]: frame builders and smoltcp-based checkers for tests and benchmarks.
//!
//! [`NatCore`] works on plain byte slices and [`PktMeta`], so the whole translation logic is
//! tested without DPDK; [`stage::NatStage`] wraps it for mbuf bursts.
//!
//! Across workers (VPP's model): each NAT worker owns a slice of every pool address's port
//! range and the inside hosts that hash to it. An inside packet belongs to the worker of its
//! source address; an outside packet to the worker whose slice holds its destination port
//! (or, for static mappings, the worker of the inside address). A packet received by another
//! worker is handed to the owner over an SP/SC ring (`Verdict::Handoff`); no table is shared.

pub mod blocks;
pub mod check;
pub mod det;
pub mod expiry;
pub mod fast;
pub mod frag;
pub mod hairpin;
pub mod icmp;
pub mod in2out;
pub mod out2in;
pub mod pkt;
pub mod ports;
pub mod prefetch;
pub mod stage;
pub mod statics;
pub mod stats;
pub mod table;
pub mod tcp;
pub mod testpkt;

use std::sync::Arc;

use dpdk::PktMeta;
use dpdk::meta::flags;
use pollfwd_pipeline::{DropReason, Verdict};

use pkt::{Frag, Pkt};
use ports::{Partition, PortSpace};
use statics::StaticTable;
use stats::{NatShared, Tally};
use table::{CLASSES, HostIndex, Index, Sessions};

pub use stage::NatStage;
pub use statics::StaticMapping;

/// `PktMeta::aux` bits used by NAT.
pub mod aux {
    /// The packet was handed to this worker by another NAT worker: process it here.
    pub const HANDED: u32 = 1 << 0;
    /// Second half of hairpinning: the packet was translated inside-to-outside and is now
    /// processed as an outside packet (RFC 4787 REQ-9).
    pub const HAIRPIN: u32 = 1 << 1;
    /// A non-first fragment NAT held until its first fragment came, now processed again.
    pub const RETRIED: u32 = 1 << 2;
}

/// Inbound filtering (RFC 4787 section 5, REQ-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filtering {
    /// Any remote endpoint may send to a mapping.
    EndpointIndependent,
    /// Only remote addresses the inside endpoint has sent to.
    AddressDependent,
    /// Only remote address and port pairs the inside endpoint has sent to.
    #[default]
    AddressAndPortDependent,
}

/// Idle timeouts, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// RFC 5382 REQ-5: at least 2 h 4 min.
    pub tcp_established: u32,
    /// RFC 5382 REQ-5: at least 4 min.
    pub tcp_transitory: u32,
    /// RFC 4787 REQ-5: at least 2 min, 5 min recommended.
    pub udp: u32,
    /// RFC 5508 REQ-1 / section 3.1: 60 s.
    pub icmp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_established: 7_440_000,
            tcp_transitory: 240_000,
            udp: 300_000,
            icmp: 60_000,
        }
    }
}

impl Timeouts {
    fn by_class(&self) -> [u32; CLASSES] {
        [
            self.tcp_established,
            self.tcp_transitory,
            self.udp,
            self.icmp,
        ]
    }
}

/// Everything a NAT worker is built from (converted from the `[nat]` config section).
#[derive(Debug, Clone)]
pub struct NatParams {
    /// DPDK port ids facing the inside / the outside.
    pub inside_ports: Vec<u16>,
    pub outside_ports: Vec<u16>,
    /// Pool addresses (host order); sorted and deduplicated by [`NatCore::new`].
    pub pool: Vec<u32>,
    /// Dynamic port range, inclusive.
    pub port_lo: u16,
    pub port_hi: u16,
    pub filtering: Filtering,
    pub timeouts: Timeouts,
    /// Session table capacity of this worker.
    pub max_sessions: u32,
    /// When the table is full, reclaim the least recently used session.
    pub lru_reclaim: bool,
    /// Sessions per inside host (0 = unlimited).
    pub max_sessions_per_host: u32,
    pub statics: Arc<StaticTable>,
    /// Deterministic maps (RFC 7422): inside hosts they cover never use the pool.
    pub det: Arc<det::DetTable>,
    /// Port blocks for the pool (0: off, every mapping a port of its own at random): a host
    /// takes blocks of this many ports, at most `blocks_per_host` (`blocks.rs`).
    pub port_block: u32,
    pub blocks_per_host: u8,
    /// Destinations never translated: (network, mask) of the appliance's own addresses and
    /// the inside networks (traffic that does not cross the NAT).
    pub no_nat: Vec<(u32, u32)>,
    /// Worker indices running NAT, in slice order; `me` is this worker's position.
    pub workers: Vec<u16>,
    pub me: usize,
    /// Seed of port randomisation and table hashing (0: from the TSC).
    pub seed: u64,
    /// Sessions examined for expiry per housekeeping call.
    pub expiry_budget: u32,
    /// A routing stage (`forward`) follows NAT in the chain: packets whose TTL expires at the
    /// appliance (TTL <= 1) are left untranslated, so the ICMP time-exceeded it sends embeds
    /// the packet as its sender sent it (traceroute through the NAT shows the appliance).
    pub ttl_expiry_downstream: bool,
}

impl Default for NatParams {
    fn default() -> Self {
        NatParams {
            inside_ports: vec![0],
            outside_ports: vec![1],
            pool: Vec::new(),
            port_lo: 1024,
            port_hi: 65535,
            filtering: Filtering::default(),
            timeouts: Timeouts::default(),
            max_sessions: 65536,
            lru_reclaim: false,
            max_sessions_per_host: 0,
            statics: Arc::new(StaticTable::default()),
            det: Arc::new(det::DetTable::default()),
            port_block: 0,
            blocks_per_host: 1,
            no_nat: Vec::new(),
            workers: vec![0],
            me: 0,
            seed: 1,
            expiry_budget: 256,
            ttl_expiry_downstream: false,
        }
    }
}

/// Direction of a port.
pub(crate) const DIR_NONE: u8 = 0;
pub(crate) const DIR_IN: u8 = 1;
pub(crate) const DIR_OUT: u8 = 2;

/// Spreads an IPv4 address over 32 bits (Fibonacci hashing); the same function on every
/// worker, so ownership and address pairing agree everywhere.
#[inline]
pub fn addr_mix(a: u32) -> u32 {
    ((a as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
}

/// Control messages the `nat.*` operations send to the workers.
pub enum NatMsg {
    /// Replace the static mappings; sessions of removed mappings are purged incrementally.
    SetStatic(Arc<StaticTable>),
    /// List sessions into the query's buffer.
    Sessions(SessionQuery),
}

/// One step of a session listing (`nat.sessions`): the worker looks at most
/// [`LIST_SLOTS`] table slots from `start` (a bounded pause between two bursts, whatever the
/// table size or the filter) and appends what matched to `out`, with where to go on.
pub struct SessionQuery {
    pub inside: Option<u32>,
    /// Only sessions of this outside endpoint (address, port or ICMP identifier).
    pub outside: Option<(u32, u16)>,
    /// Most sessions to add.
    pub limit: usize,
    /// First table slot to look at.
    pub start: u32,
    pub out: Arc<std::sync::Mutex<SessionPage>>,
}

/// Table slots one [`SessionQuery`] looks at (8192 x 64 bytes: about 50 us on the worker).
pub const LIST_SLOTS: u32 = 8192;

/// What the steps of a listing found on one worker.
#[derive(Debug, Default)]
pub struct SessionPage {
    pub sessions: Vec<SessionInfo>,
    /// The slot the next step starts at; None once the whole table was seen.
    pub next: Option<u32>,
}

/// One session as shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub worker: usize,
    pub proto: u8,
    pub inside: (u32, u16),
    pub outside: (u32, u16),
    pub remote: (u32, u16),
    pub state: &'static str,
    pub idle_ms: u32,
    pub age_ms: u32,
    pub pkts_in2out: u32,
    pub pkts_out2in: u32,
    pub is_static: bool,
}

/// One worker's NAT: tables and the translation logic, over byte slices.
pub struct NatCore {
    pub(crate) p: NatParams,
    pub(crate) dir: Vec<u8>,
    pub(crate) part: Partition,
    pub(crate) multi: bool,
    pub(crate) sess: Sessions,
    pub(crate) i2o: Index,
    pub(crate) o2i: Index,
    pub(crate) iep: Index,
    pub(crate) hosts: Option<HostIndex>,
    pub(crate) ports: PortSpace,
    /// Ports of the deterministic maps' outside addresses (all of 1024..=65535: a host's
    /// block belongs to the host's worker). Session `pool_idx` values from `p.pool.len()` on
    /// are these addresses.
    pub(crate) det_ports: PortSpace,
    pub(crate) det: Arc<det::DetTable>,
    /// Port blocks of the pool, when configured.
    pub(crate) blocks: Option<blocks::Blocks>,
    pub(crate) frags: frag::FragCache,
    pub(crate) statics: Arc<StaticTable>,
    pub(crate) timeout: [u32; CLASSES],
    pub(crate) granule: [u32; CLASSES],
    pub(crate) seed: u64,
    pub(crate) now: u32,
    /// First fragments recorded since [`NatCore::take_first_fragments`], and the ones its
    /// last call took.
    pub(crate) first_seen: frag::FirstSeen,
    pub(crate) first_seen_last: frag::FirstSeen,
    pub(crate) tally: Tally,
    pub(crate) shared: Arc<NatShared>,
    /// Incremental purge of static sessions after a static table change: next slot.
    pub(crate) purge_next: Option<u32>,
    /// Per-burst prefetch hints.
    pub(crate) hints: [prefetch::Hint; prefetch::PREFETCH_MAX],
    /// Lowest pool address and highest minus lowest.
    pub(crate) pool_lo: u32,
    pub(crate) pool_span: u32,
}

impl NatCore {
    /// Builds a worker's NAT; allocates every table once, here.
    pub fn new(mut p: NatParams, lcore: u32) -> Result<NatCore, String> {
        p.pool.sort_unstable();
        p.pool.dedup();
        if p.pool.is_empty() && p.statics.is_empty() && p.det.is_empty() {
            return Err("nat: no pool address, deterministic map or static mapping".into());
        }
        if p.pool.len() > 1024 {
            return Err("nat: at most 1024 pool addresses".into());
        }
        if p.port_lo == 0 || p.port_lo > p.port_hi {
            return Err("nat: bad port range".into());
        }
        if p.workers.is_empty() || p.me >= p.workers.len() {
            return Err("nat: this worker is not in the NAT worker list".into());
        }
        let nw = p.workers.len() as u32;
        if (p.port_hi as u32 - p.port_lo as u32 + 1) < nw {
            return Err(format!("nat: port range smaller than the {nw} NAT workers"));
        }
        if p.max_sessions == 0 || p.max_sessions > 1 << 26 {
            return Err("nat: max_sessions must be 1..=67108864".into());
        }
        let mut dir = vec![
            DIR_NONE;
            1 + p
                .inside_ports
                .iter()
                .chain(&p.outside_ports)
                .copied()
                .max()
                .unwrap_or(0) as usize
        ];
        for &i in &p.inside_ports {
            dir[i as usize] = DIR_IN;
        }
        for &o in &p.outside_ports {
            dir[o as usize] = DIR_OUT;
        }
        let part = Partition {
            lo: p.port_lo,
            hi: p.port_hi,
            parts: nw as u16,
        };
        let (lo, len) = part.slice(p.me);
        let seed = if p.seed == 0 {
            dpdk_free_seed()
        } else {
            p.seed
        };
        let wseed = seed ^ (p.me as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let cap = p.max_sessions;
        let timeout = p.timeouts.by_class();
        let granule = timeout.map(|t| (t / 32).clamp(1, 1000));
        let mut shared = NatShared::new(
            p.workers[p.me] as usize,
            lcore,
            cap,
            p.pool.clone(),
            (lo, len),
        );
        let sess = Sessions::new(cap);
        let i2o = Index::new(cap as usize);
        let o2i = Index::new(cap as usize);
        let iep = Index::new(cap as usize);
        let hosts = (p.max_sessions_per_host > 0).then(|| HostIndex::new(cap as usize, wseed));
        let ports = PortSpace::new(p.pool.len(), lo, len, wseed);
        let det_ports = PortSpace::new(p.det.outside_count(), det::PORT_BASE, det::PORTS, wseed);
        if p.port_block > 0 && p.port_block > len {
            return Err(format!(
                "nat: port_block {} is larger than a worker's {len} ports of the range",
                p.port_block
            ));
        }
        let blocks = (p.port_block > 0).then(|| {
            blocks::Blocks::new(
                p.pool.len(),
                lo,
                len,
                p.port_block,
                p.blocks_per_host as usize,
            )
        });
        shared.block_events = blocks.as_ref().map(|b| b.events.clone());
        let frags = frag::FragCache::new(4096);
        shared.session_bytes = (sess.bytes()
            + i2o.bytes()
            + o2i.bytes()
            + iep.bytes()
            + hosts.as_ref().map_or(0, |h| h.bytes())) as u64;
        shared.table_bytes = shared.session_bytes
            + (ports.bytes()
                + det_ports.bytes()
                + frags.bytes()
                + blocks.as_ref().map_or(0, |b| b.bytes())) as u64;
        Ok(NatCore {
            multi: nw > 1,
            statics: p.statics.clone(),
            dir,
            part,
            sess,
            i2o,
            o2i,
            iep,
            hosts,
            ports,
            det_ports,
            det: p.det.clone(),
            blocks,
            frags,
            timeout,
            granule,
            seed: wseed,
            now: 0,
            first_seen: frag::FirstSeen::default(),
            first_seen_last: frag::FirstSeen::default(),
            tally: Tally::default(),
            shared: Arc::new(shared),
            purge_next: None,
            hints: [prefetch::Hint::default(); prefetch::PREFETCH_MAX],
            pool_lo: p.pool.first().copied().unwrap_or(0),
            pool_span: match (p.pool.first(), p.pool.last()) {
                (Some(lo), Some(hi)) => hi - lo,
                _ => 0,
            },
            p,
        })
    }

    /// Bytes the session table with its indexes takes for `cap` sessions, as [`NatCore::new`]
    /// allocates them (`per_host`: with the per-host limit's index): what the appliance checks
    /// against the machine's memory before starting.
    pub fn session_table_bytes(cap: u32, per_host: bool) -> u64 {
        let index = (table::index_slots(cap as usize) * table::INDEX_SLOT_BYTES) as u64;
        let host = table::index_slots(cap as usize) as u64 * 8;
        (cap as u64 + table::CLASSES as u64) * std::mem::size_of::<table::Session>() as u64
            + index * 3
            + host * per_host as u64
    }

    /// The counters this worker shares with the management side.
    pub fn shared(&self) -> Arc<NatShared> {
        self.shared.clone()
    }

    /// Whether packets may be handed to other workers.
    pub fn uses_handoff(&self) -> bool {
        self.multi
    }

    /// Sessions in use.
    pub fn sessions(&self) -> u32 {
        self.sess.used
    }

    /// Bytes of the session table with its indexes, divided by the capacity.
    pub fn bytes_per_session(&self) -> f64 {
        (self.sess.bytes() + self.i2o.bytes() + self.o2i.bytes() + self.iep.bytes()) as f64
            / self.sess.capacity() as f64
    }

    /// Mean probe displacement of the inside, outside and endpoint indexes.
    pub fn index_displacement(&self) -> [f64; 3] {
        let (seed, ss) = (self.seed, &self.sess.s);
        [
            self.i2o
                .mean_displacement(|j| table::i2o_hash(&ss[j as usize], seed)),
            self.o2i
                .mean_displacement(|j| table::o2i_hash(&ss[j as usize], seed)),
            self.iep.mean_displacement(|j| {
                let x = &ss[j as usize];
                table::iep_hash(x.proto, x.in_addr, x.in_port, seed)
            }),
        ]
    }

    /// Replaces the static mappings (a `nat.static.*` change); sessions of mappings that
    /// were removed or changed are purged incrementally by housekeeping. Returns the table
    /// replaced.
    pub fn set_statics(&mut self, t: Arc<StaticTable>) -> Arc<StaticTable> {
        self.purge_next = Some(0);
        std::mem::replace(&mut self.statics, t)
    }

    /// Sets the NAT clock (milliseconds, wrapping).
    #[inline]
    pub fn set_now(&mut self, now_ms: u32) {
        self.now = now_ms;
    }

    /// Publishes the per-burst tallies and gauges.
    pub fn flush(&mut self) {
        self.tally.flush(&self.shared.counters);
        self.shared
            .sessions
            .store(self.sess.used as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Publishes ports in use (housekeeping).
    pub fn publish_ports(&self) {
        for (a, g) in self.shared.ports.iter().enumerate() {
            for (pi, x) in g.iter().enumerate() {
                x.store(
                    self.ports.in_use(a, pi),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
        }
    }

    #[inline]
    pub(crate) fn pool_index_of(&self, addr: u32) -> Option<usize> {
        let off = addr.wrapping_sub(self.pool_lo);
        if self.p.pool.is_empty() || off > self.pool_span {
            None
        } else if self.pool_span as usize + 1 == self.p.pool.len() {
            // A contiguous pool (the common case): the offset is the index.
            Some(off as usize)
        } else {
            self.p.pool.binary_search(&addr).ok()
        }
    }

    /// Whether burst prefetching pays: the tables outgrow the caches. Measured with the fast
    /// path (`nat_bench core`, 2026-12-07, EPYC VM): the passes cost 3-8 cycles a packet at
    /// 128 and 1,024 sessions and save about 25 at 8,192.
    #[inline]
    pub fn wants_prefetch(&self) -> bool {
        self.sess.used > 4096
    }

    /// Whether `addr` is an outside address of this NAT (pool, deterministic or static).
    #[inline]
    pub(crate) fn is_outside_addr(&self, addr: u32) -> bool {
        self.pool_index_of(addr).is_some()
            || self.statics.is_outside(addr)
            || (!self.det.is_empty() && self.det.outside(addr).is_some())
    }

    /// The port space and its address index of session address index `a` (pool addresses
    /// first, then the deterministic maps' outside addresses).
    #[inline]
    pub(crate) fn port_space(&self, a: usize) -> (&PortSpace, usize) {
        match a.checked_sub(self.p.pool.len()) {
            None => (&self.ports, a),
            Some(d) => (&self.det_ports, d),
        }
    }

    #[inline]
    pub(crate) fn port_space_mut(&mut self, a: usize) -> (&mut PortSpace, usize) {
        match a.checked_sub(self.p.pool.len()) {
            None => (&mut self.ports, a),
            Some(d) => (&mut self.det_ports, d),
        }
    }

    /// The mapping's representative session at (address index, protocol, port), or NONE.
    #[inline]
    pub(crate) fn port_rep(&self, a: usize, pi: usize, port: u16) -> u32 {
        let (sp, i) = self.port_space(a);
        sp.rep(i, pi, port)
    }

    /// A port of pool address `a` for a new mapping of `host` (`pi`: protocol space) from the
    /// host's blocks, taking a new block when they are full; None when the host holds all the
    /// blocks it may and they are full, or no block is free.
    pub(crate) fn block_port(&mut self, host: u32, a: usize, pi: usize) -> Option<u16> {
        let blocks = self.blocks.as_mut()?;
        let mut held = [0u32; blocks::MAX_PER_HOST];
        let n = blocks.of_host(host).len();
        held[..n].copy_from_slice(blocks.of_host(host));
        for &b in &held[..n] {
            let (lo, len) = blocks.range(b);
            // RFC 6056: a random start in the block.
            let prefer = lo + (self.ports.random() % len as u64) as u16;
            if let Some(p) = self.ports.alloc_in(a, pi, lo, len, prefer) {
                blocks.used(b);
                return Some(p);
            }
        }
        let (b, queued) = blocks.take(host, a, self.p.pool[a])?;
        self.tally.blocks_allocated += 1;
        self.tally.block_log_lost += !queued as u32;
        let (lo, len) = blocks.range(b);
        let prefer = lo + (self.ports.random() % len as u64) as u16;
        let p = self.ports.alloc_in(a, pi, lo, len, prefer)?;
        blocks.used(b);
        Some(p)
    }

    /// A pool mapping on `port` of session address index `a` ended: its block may go back.
    pub(crate) fn block_release(&mut self, a: usize, port: u16, addr: u32) {
        if a >= self.p.pool.len() {
            return;
        }
        let Some(blocks) = self.blocks.as_mut() else {
            return;
        };
        if let Some(b) = blocks.block_of(a, port)
            && let Some(queued) = blocks.release(b, addr)
        {
            self.tally.blocks_freed += 1;
            self.tally.block_log_lost += !queued as u32;
        }
    }

    /// The outside address with session address index `a`.
    pub(crate) fn outside_addr_at(&self, a: usize) -> Option<u32> {
        match a.checked_sub(self.p.pool.len()) {
            None => self.p.pool.get(a).copied(),
            Some(d) => self.det.outside_addr(d),
        }
    }

    /// The NAT worker position owning inside host `addr`.
    #[inline]
    pub(crate) fn inside_owner(&self, addr: u32) -> usize {
        (addr_mix(addr) % self.p.workers.len() as u32) as usize
    }

    /// The pool address of inside host `addr` (paired pooling, RFC 4787 REQ-2).
    #[inline]
    pub(crate) fn pool_index_for(&self, addr: u32) -> usize {
        ((addr_mix(addr) / self.p.workers.len() as u32) % self.p.pool.len() as u32) as usize
    }

    /// The NAT worker position owning outside endpoint (addr, port) of `proto`, if any.
    #[inline]
    pub(crate) fn outside_owner(&self, proto: u8, addr: u32, port: u16) -> Option<usize> {
        if self.pool_index_of(addr).is_some() && self.part.contains(port) {
            return Some(self.part.owner_of(port));
        }
        if !self.det.is_empty()
            && let Some((m, _)) = self.det.outside(addr)
        {
            // A block belongs to its host, the host to its worker.
            return m.reverse(addr, port).map(|a| self.inside_owner(a));
        }
        self.statics
            .owner_addr(proto, addr, port)
            .map(|a| self.inside_owner(a))
    }

    #[inline]
    pub(crate) fn no_nat(&self, dst: u32) -> bool {
        self.p.no_nat.iter().any(|&(n, m)| dst & m == n)
    }

    /// Translates one frame. `meta.in_port` says where it came from; `meta.aux` carries the
    /// hand-off marks. The frame is modified in place; the verdict says what happens next.
    pub fn handle(&mut self, f: &mut [u8], meta: &mut PktMeta) -> Verdict {
        let hairpin = meta.aux & aux::HAIRPIN != 0;
        let d = if hairpin {
            DIR_OUT
        } else {
            match self.dir.get(meta.in_port as usize) {
                Some(&d) if d != DIR_NONE => d,
                _ => return Verdict::Continue,
            }
        };
        let p = match pkt::parse(f) {
            Ok(Some(p)) => p,
            Ok(None) => {
                // Not IPv4 (ARP, IPv6, ...): untouched; IPv6 counted on its own as well.
                self.tally.passthrough += 1;
                self.tally.ipv6_passthrough += pkt::is_ipv6(f) as u32;
                return Verdict::Continue;
            }
            Err(r) => return Verdict::Drop(r),
        };
        fill_meta(meta, &p);
        if meta.flags & flags::NATTED == 0 {
            // The packet as its sender wrote it (a hairpinned packet's second pass keeps what
            // its first pass saw): what ICMP errors about it must quote (RFC 5508 section 4).
            (meta.pre_src, meta.pre_dst) = (p.src, p.dst);
            (meta.pre_sport, meta.pre_dport) = (p.sport, p.dport);
        }
        if !hairpin && let Some(v) = martian(&p) {
            if matches!(v, Verdict::Continue) {
                self.tally.passthrough += 1;
            }
            return v;
        }
        if self.p.ttl_expiry_downstream
            && !hairpin
            && crate::wire::ipv4::Packet::new_unchecked(&f[p.l3..]).ttl() <= 1
        {
            self.tally.passthrough += 1;
            return Verdict::Continue;
        }
        if hairpin {
            return self.out2in_owned(f, &p, meta, true);
        }
        if d == DIR_IN {
            self.in2out(f, &p, meta)
        } else {
            self.out2in(f, &p, meta)
        }
    }

    /// Hand-off verdict to the worker at position `pos`, marking the packet.
    #[inline]
    pub(crate) fn handoff(&self, meta: &mut PktMeta, pos: usize) -> Verdict {
        meta.aux |= aux::HANDED;
        Verdict::Handoff(self.p.workers[pos])
    }

    /// Whether the packet must go to another worker: Some(verdict) if so.
    #[inline]
    pub(crate) fn route(&self, meta: &mut PktMeta, owner: Option<usize>) -> Option<Verdict> {
        if !self.multi || meta.aux & aux::HANDED != 0 {
            return None;
        }
        match owner {
            Some(o) if o != self.p.me => Some(self.handoff(meta, o)),
            _ => None,
        }
    }
}

/// RFC 1812 5.3.7 (martian filtering), before any translation or session: a martian source
/// or destination is dropped with the reason `forward` gives it (a translated source would hide
/// it from forward, and a session would be spent on a packet never forwarded); the limited
/// broadcast, for the local link, passes untranslated (forward consumes it). `None`: translate.
#[inline]
fn martian(p: &Pkt) -> Option<Verdict> {
    use crate::forward::ipv4::{LIMITED_BROADCAST, bad_destination, bad_source};
    if bad_source(p.src) {
        Some(Verdict::Drop(DropReason::Ipv4BadSource))
    } else if p.dst == LIMITED_BROADCAST {
        Some(Verdict::Continue)
    } else if bad_destination(p.dst) {
        Some(Verdict::Drop(DropReason::Ipv4BadDest))
    } else {
        None
    }
}

fn dpdk_free_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x1234_5678)
        | 1
}

/// Records the parsed flow key in the metadata (for later stages).
#[inline]
fn fill_meta(meta: &mut PktMeta, p: &Pkt) {
    meta.l3_off = p.l3 as u16;
    meta.l4_off = p.l4 as u16;
    meta.src_ip = p.src;
    meta.dst_ip = p.dst;
    meta.src_port = p.sport;
    // The shared parser's convention (nf::parse): ICMP `dst_port` = type << 8 | code.
    meta.dst_port = if p.proto == pkt::PROTO_ICMP && p.frag != Frag::NonFirst {
        (p.l4_flags as u16) << 8 | p.l4_code as u16
    } else {
        p.dport
    };
    meta.proto = p.proto;
    meta.flags |= flags::PARSED | flags::IPV4;
    match p.frag {
        Frag::No => {}
        Frag::First => meta.flags |= flags::FRAG,
        Frag::NonFirst => meta.flags |= flags::FRAG | flags::FRAG_NONFIRST,
    }
}

/// Why a translation failed (a drop reason from the table).
pub(crate) type Res<T> = Result<T, DropReason>;

#[cfg(test)]
mod tests;
