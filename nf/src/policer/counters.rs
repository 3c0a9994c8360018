//! Counters: per policer and worker, single-writer, read consistently through a seqlock
//! ([`WorkerCounters::snapshot`]), and the stage's per-burst accumulator.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, fence};

use pollfwd_pipeline::counters::Counter;

use super::MAX_POLICERS;

/// Counters of one policer on one worker. Written only by that worker (single-writer atomics,
/// once per burst), read by the management side at any time.
#[derive(Debug, Default)]
pub struct PolicerCounters {
    /// Packets per colour (index `Color as usize`).
    pub packets: [Counter; 3],
    /// Frame bytes per colour.
    pub bytes: [Counter; 3],
    /// Packets remarked (DSCP rewritten).
    pub remarked: Counter,
    /// Packets of a new source refused because the source table was full.
    pub table_full: Counter,
    /// Packets of a new source refused because its slot run reached the probe limit.
    pub probe_limit: Counter,
    /// Source meters created and aged out.
    pub sources_created: Counter,
    pub sources_aged: Counter,
    /// Sources metered now (a gauge).
    pub sources: AtomicU64,
}

impl PolicerCounters {
    pub(super) fn reset(&self) {
        for c in self.packets.iter().chain(&self.bytes) {
            c.reset();
        }
        self.remarked.reset();
        self.table_full.reset();
        self.probe_limit.reset();
        self.sources_created.reset();
        self.sources_aged.reset();
    }

    /// A plain copy (consistent only inside [`WorkerCounters::snapshot`] or on the worker).
    pub(super) fn load(&self) -> PolicerSnapshot {
        let get = |c: &[Counter; 3]| [c[0].get(), c[1].get(), c[2].get()];
        PolicerSnapshot {
            packets: get(&self.packets),
            bytes: get(&self.bytes),
            remarked: self.remarked.get(),
            table_full: self.table_full.get(),
            probe_limit: self.probe_limit.get(),
            sources_created: self.sources_created.get(),
            sources_aged: self.sources_aged.get(),
            sources: self.sources.load(Relaxed),
        }
    }

    /// Sets the counters to `v` (the `sources` gauge excepted: it follows the source table).
    pub(super) fn store(&self, v: &PolicerSnapshot) {
        self.reset();
        for k in 0..3 {
            self.packets[k].add(v.packets[k]);
            self.bytes[k].add(v.bytes[k]);
        }
        self.remarked.add(v.remarked);
        self.table_full.add(v.table_full);
        self.probe_limit.add(v.probe_limit);
        self.sources_created.add(v.sources_created);
        self.sources_aged.add(v.sources_aged);
    }
}

/// The counters of one worker's policer stage, one slot per policer index.
///
/// The worker updates several counters per burst (packets, bytes, remarked ...); readers take a
/// [`WorkerCounters::snapshot`], which a sequence counter (a seqlock written only by the worker:
/// two stores per burst, no atomic read-modify-write) keeps consistent, so `remarked` never
/// runs ahead of or behind the packets it belongs to.
#[derive(Debug)]
pub struct WorkerCounters {
    pub worker: usize,
    pub lcore: u32,
    pub policers: [PolicerCounters; MAX_POLICERS],
    /// Odd while the worker is writing a burst's counts.
    seq: AtomicU64,
}

/// A consistent copy of one policer's counters on one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicerSnapshot {
    /// Packets and bytes per colour (index `Color as usize`).
    pub packets: [u64; 3],
    pub bytes: [u64; 3],
    pub remarked: u64,
    pub table_full: u64,
    pub probe_limit: u64,
    pub sources_created: u64,
    pub sources_aged: u64,
    /// Sources metered now.
    pub sources: u64,
}

impl WorkerCounters {
    pub fn new(worker: usize, lcore: u32) -> WorkerCounters {
        WorkerCounters {
            worker,
            lcore,
            policers: std::array::from_fn(|_| PolicerCounters::default()),
            seq: AtomicU64::new(0),
        }
    }

    /// Runs `f`, the worker's update of its counters, inside the sequence counter.
    #[inline]
    pub(super) fn write<R>(&self, f: impl FnOnce() -> R) -> R {
        let s = self.seq.load(Relaxed);
        self.seq.store(s.wrapping_add(1), Relaxed);
        fence(Release);
        let r = f();
        self.seq.store(s.wrapping_add(2), Release);
        r
    }

    /// A consistent copy of policer `i`'s counters. Retries while the worker is writing
    /// (a few tens of nanoseconds per burst), yielding the CPU after the first tries; only if
    /// the worker never lets go (it cannot: the write section neither blocks nor fails) would
    /// it give up, after about a second, and return the last copy read.
    pub fn snapshot(&self, i: usize) -> PolicerSnapshot {
        let c = &self.policers[i];
        let mut out = PolicerSnapshot::default();
        for attempt in 0..1_000_000u32 {
            let s1 = self.seq.load(Acquire);
            out = c.load();
            fence(Acquire);
            if s1 & 1 == 0 && self.seq.load(Relaxed) == s1 {
                break;
            }
            if attempt < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        out
    }
}

/// Per-burst accumulator of one policer.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Acc {
    pub(super) packets: [u64; 3],
    pub(super) bytes: [u64; 3],
    pub(super) remarked: u64,
    pub(super) table_full: u64,
    pub(super) probe_limit: u64,
    pub(super) created: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn snapshots_never_split_a_burst_of_counts() {
        // The worker adds a burst's packets and remarks as one update; a reader on another
        // thread must never see one without the other.
        let w = Arc::new(WorkerCounters::new(0, 1));
        let writer = {
            let w = w.clone();
            std::thread::spawn(move || {
                for n in 1..=200_000u64 {
                    w.write(|| {
                        let c = &w.policers[3];
                        c.packets[1].add(n % 7 + 1);
                        c.bytes[1].add(64 * (n % 7 + 1));
                        c.remarked.add(n % 7 + 1);
                    });
                }
            })
        };
        let mut reads = 0u64;
        while !writer.is_finished() {
            let s = w.snapshot(3);
            assert_eq!(s.remarked, s.packets[1], "{s:?}");
            assert_eq!(s.bytes[1], 64 * s.packets[1], "{s:?}");
            reads += 1;
        }
        writer.join().unwrap();
        let s = w.snapshot(3);
        assert_eq!(s.remarked, (1..=200_000u64).map(|n| n % 7 + 1).sum::<u64>());
        assert!(reads > 0);
    }
}
