//! NAT counters of one worker, shared with the management side: single-writer atomics
//! (written by the worker once per burst or housekeeping call, read by `nat.summary`,
//! `stats` and metrics without locks). Drops are counted by the runtime under their reasons.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use pollfwd_pipeline::counters::Counter;

/// Event counters and gauges of one NAT worker.
#[derive(Debug, Default)]
pub struct NatCounters {
    /// Packets translated inside to outside.
    pub in2out: Counter,
    /// Packets translated outside to inside.
    pub out2in: Counter,
    /// Packets translated back inside (hairpinning, RFC 4787 REQ-9).
    pub hairpin: Counter,
    /// ICMP errors translated with their embedded header (RFC 5508).
    pub icmp_errors: Counter,
    /// Non-first fragments translated from the fragment cache.
    pub fragments: Counter,
    /// Packets on NAT ports left untouched (not IPv4, to the appliance or inside networks,
    /// or outside packets to addresses NAT does not own).
    pub passthrough: Counter,
    /// Of `passthrough`: IPv6 frames (NAT44 leaves them untouched; NAT64 is not done).
    pub ipv6_passthrough: Counter,
    /// Sessions created.
    pub created: Counter,
    /// Sessions removed after their idle timeout.
    pub expired: Counter,
    /// Sessions reclaimed (least recently used) because the table was full.
    pub reclaimed: Counter,
    /// Sessions removed because their static mapping was deleted.
    pub purged: Counter,
    /// Of `created`: sessions made by a deterministic map, outbound (a port of the host's
    /// block) or inbound without a session (`stateless_inbound`).
    pub det_created: Counter,
    pub det_stateless: Counter,
    /// Port blocks taken and given back by inside hosts, and block log records lost because
    /// the management side did not drain the queue in time.
    pub blocks_allocated: Counter,
    pub blocks_freed: Counter,
    pub block_log_lost: Counter,
}

/// What the management side can read about one NAT worker.
#[derive(Debug)]
pub struct NatShared {
    pub worker: usize,
    pub lcore: u32,
    pub capacity: u32,
    /// Bytes of all NAT tables: sessions, indexes, port tables, fragment cache.
    pub table_bytes: u64,
    /// Bytes that grow with the capacity: sessions, their indexes (and the per-host counts).
    pub session_bytes: u64,
    /// Outside addresses of the pool, in pool order.
    pub pool: Vec<u32>,
    /// First port and length of this worker's slice of the dynamic range.
    pub slice: (u16, u32),
    /// Sessions in use (gauge).
    pub sessions: AtomicU64,
    /// Ports in use per pool address and protocol (TCP, UDP, ICMP), updated by housekeeping.
    pub ports: Vec<[AtomicU32; 3]>,
    /// Port block allocations and releases for the management side to log (with port blocks).
    pub block_events:
        Option<std::sync::Arc<crossbeam_queue::ArrayQueue<super::blocks::BlockEvent>>>,
    pub counters: NatCounters,
}

impl NatShared {
    pub fn new(
        worker: usize,
        lcore: u32,
        capacity: u32,
        pool: Vec<u32>,
        slice: (u16, u32),
    ) -> NatShared {
        NatShared {
            worker,
            lcore,
            capacity,
            table_bytes: 0,
            session_bytes: 0,
            ports: pool.iter().map(|_| Default::default()).collect(),
            pool,
            slice,
            sessions: AtomicU64::new(0),
            block_events: None,
            counters: NatCounters::default(),
        }
    }

    pub fn sessions(&self) -> u64 {
        self.sessions.load(Relaxed)
    }

    /// Counter names and values (for `stats` and metrics).
    pub fn counter_list(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        vec![
            ("in2out", c.in2out.get()),
            ("out2in", c.out2in.get()),
            ("hairpin", c.hairpin.get()),
            ("icmp_errors", c.icmp_errors.get()),
            ("fragments", c.fragments.get()),
            ("passthrough", c.passthrough.get()),
            ("ipv6_passthrough", c.ipv6_passthrough.get()),
            ("sessions_created", c.created.get()),
            ("sessions_expired", c.expired.get()),
            ("sessions_reclaimed", c.reclaimed.get()),
            ("sessions_purged", c.purged.get()),
            ("det_sessions_created", c.det_created.get()),
            ("det_stateless_inbound", c.det_stateless.get()),
            ("blocks_allocated", c.blocks_allocated.get()),
            ("blocks_freed", c.blocks_freed.get()),
            ("block_log_lost", c.block_log_lost.get()),
        ]
    }
}

/// Per-burst local tallies, added to [`NatCounters`] once per burst.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub in2out: u32,
    pub out2in: u32,
    pub hairpin: u32,
    pub icmp_errors: u32,
    pub fragments: u32,
    pub passthrough: u32,
    pub ipv6_passthrough: u32,
    pub created: u32,
    pub expired: u32,
    pub reclaimed: u32,
    pub purged: u32,
    pub det_created: u32,
    pub det_stateless: u32,
    pub blocks_allocated: u32,
    pub blocks_freed: u32,
    pub block_log_lost: u32,
}

impl Tally {
    pub fn flush(&mut self, c: &NatCounters) {
        for (n, ctr) in [
            (self.in2out, &c.in2out),
            (self.out2in, &c.out2in),
            (self.hairpin, &c.hairpin),
            (self.icmp_errors, &c.icmp_errors),
            (self.fragments, &c.fragments),
            (self.passthrough, &c.passthrough),
            (self.ipv6_passthrough, &c.ipv6_passthrough),
            (self.created, &c.created),
            (self.expired, &c.expired),
            (self.reclaimed, &c.reclaimed),
            (self.purged, &c.purged),
            (self.det_created, &c.det_created),
            (self.det_stateless, &c.det_stateless),
            (self.blocks_allocated, &c.blocks_allocated),
            (self.blocks_freed, &c.blocks_freed),
            (self.block_log_lost, &c.block_log_lost),
        ] {
            if n > 0 {
                ctr.add(n as u64);
            }
        }
        *self = Tally::default();
    }
}
