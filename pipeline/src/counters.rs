//! Per-lcore counters: cache-line aligned, written only by their lcore (plain load + store, no
//! locked instructions), read by the management thread at any time without locks. Workers
//! accumulate in locals and write once per burst.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::drop::DropReason;

/// Most stages one lcore's chain may have.
pub const MAX_STAGES: usize = 8;
/// Buckets of the dwell-time histogram: bucket i counts bursts whose rx-to-tx time in TSC
/// ticks was in [2^i, 2^(i+1)) (bucket 0 also takes 0).
pub const DWELL_BUCKETS: usize = 40;

/// A counter with one writer.
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning lcore may call this (single writer: no atomic RMW needed).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    /// Zeroes the counter. Only the owning lcore may call this.
    pub fn reset(&self) {
        self.0.store(0, Relaxed);
    }

    /// Sets the value (a gauge). Only the owning lcore may call this.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
}

/// Counters of one stage on one lcore (VPP `show runtime`).
#[derive(Debug, Default)]
pub struct StageCounters {
    /// Bursts handed to the stage.
    pub calls: Counter,
    /// Packets handed to the stage.
    pub packets: Counter,
    /// TSC ticks spent inside the stage, on the timed bursts (a sample, see
    /// `worker::SAMPLE_EVERY`).
    pub cycles: Counter,
    /// Packets of the timed bursts: `cycles / timed_packets` is the stage's cost per packet.
    pub timed_packets: Counter,
}

/// Counters of one worker lcore.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct LcoreCounters {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    /// Poll calls (rx bursts or ring dequeues) that returned nothing.
    pub empty_polls: Counter,
    /// Poll calls in all.
    pub polls: Counter,
    /// TSC ticks in loop rounds that moved packets.
    pub busy_cycles: Counter,
    /// TSC ticks in loop rounds that found nothing.
    pub idle_cycles: Counter,
    /// Packets handed to the next lcore's ring.
    pub ring_out: Counter,
    /// Packets taken from the previous lcore's ring.
    pub ring_in: Counter,
    /// Packets handed to their owning worker.
    pub handoff_out: Counter,
    /// Packets received from other workers by hand-off.
    pub handoff_in: Counter,
    /// Control messages applied.
    pub messages: Counter,
    /// Frames read from a punt (TAP) interface and sent out of its wire interface (also
    /// counted in `rx_packets`: the worker received them).
    pub injected: Counter,
    pub drops: [Counter; DropReason::COUNT],
    pub stages: [StageCounters; MAX_STAGES],
    pub dwell: [Counter; DWELL_BUCKETS],
    /// TSC of the last TX drain (every `tx_drain_us`): shows the lcore is alive.
    pub heartbeat: Counter,
    /// How the worker's loop ended: 0 still running, [`EXIT_RETURNED`] or [`EXIT_PANICKED`].
    pub exited: Counter,
}

/// [`LcoreCounters::exited`]: the worker's loop returned.
pub const EXIT_RETURNED: u64 = 1;
/// [`LcoreCounters::exited`]: the worker panicked.
pub const EXIT_PANICKED: u64 = 2;

impl Default for LcoreCounters {
    fn default() -> Self {
        LcoreCounters {
            rx_packets: Counter::default(),
            rx_bytes: Counter::default(),
            tx_packets: Counter::default(),
            tx_bytes: Counter::default(),
            empty_polls: Counter::default(),
            polls: Counter::default(),
            busy_cycles: Counter::default(),
            idle_cycles: Counter::default(),
            ring_out: Counter::default(),
            ring_in: Counter::default(),
            handoff_out: Counter::default(),
            handoff_in: Counter::default(),
            messages: Counter::default(),
            injected: Counter::default(),
            drops: std::array::from_fn(|_| Counter::default()),
            stages: std::array::from_fn(|_| StageCounters::default()),
            dwell: std::array::from_fn(|_| Counter::default()),
            heartbeat: Counter::default(),
            exited: Counter::default(),
        }
    }
}

/// A plain copy of [`LcoreCounters`] taken by a reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LcoreSnapshot {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub empty_polls: u64,
    pub polls: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    pub ring_out: u64,
    pub ring_in: u64,
    pub handoff_out: u64,
    pub handoff_in: u64,
    pub injected: u64,
    pub drops: Vec<u64>,
    /// Per stage slot: calls, packets, and the timed sample's cycles and packets.
    pub stages: Vec<StageSnapshot>,
    pub dwell: Vec<u64>,
}

/// A copy of one stage's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageSnapshot {
    pub calls: u64,
    pub packets: u64,
    /// TSC ticks over the timed bursts.
    pub cycles: u64,
    /// Packets of the timed bursts.
    pub timed_packets: u64,
}

impl StageSnapshot {
    /// TSC ticks per packet in the stage (0 before any timed burst).
    pub fn cycles_per_packet(&self) -> f64 {
        if self.timed_packets == 0 {
            0.0
        } else {
            self.cycles as f64 / self.timed_packets as f64
        }
    }
}

impl LcoreSnapshot {
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Dwell-time percentile (0..=1) in TSC ticks: upper bound of the bucket that holds it.
    pub fn dwell_percentile(&self, p: f64) -> u64 {
        let total: u64 = self.dwell.iter().sum();
        if total == 0 {
            return 0;
        }
        let target = ((total as f64) * p).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, n) in self.dwell.iter().enumerate() {
            acc += n;
            if acc >= target {
                return 1u64 << (i + 1);
            }
        }
        1u64 << DWELL_BUCKETS
    }
}

impl LcoreCounters {
    pub fn snapshot(&self) -> LcoreSnapshot {
        LcoreSnapshot {
            rx_packets: self.rx_packets.get(),
            rx_bytes: self.rx_bytes.get(),
            tx_packets: self.tx_packets.get(),
            tx_bytes: self.tx_bytes.get(),
            empty_polls: self.empty_polls.get(),
            polls: self.polls.get(),
            busy_cycles: self.busy_cycles.get(),
            idle_cycles: self.idle_cycles.get(),
            ring_out: self.ring_out.get(),
            ring_in: self.ring_in.get(),
            handoff_out: self.handoff_out.get(),
            handoff_in: self.handoff_in.get(),
            injected: self.injected.get(),
            drops: self.drops.iter().map(Counter::get).collect(),
            stages: self
                .stages
                .iter()
                .map(|s| StageSnapshot {
                    calls: s.calls.get(),
                    packets: s.packets.get(),
                    cycles: s.cycles.get(),
                    timed_packets: s.timed_packets.get(),
                })
                .collect(),
            dwell: self.dwell.iter().map(Counter::get).collect(),
        }
    }

    /// Zeroes everything. Only the owning lcore calls this (on a clear message).
    pub fn reset(&self) {
        for c in [
            &self.rx_packets,
            &self.rx_bytes,
            &self.tx_packets,
            &self.tx_bytes,
            &self.empty_polls,
            &self.polls,
            &self.busy_cycles,
            &self.idle_cycles,
            &self.ring_out,
            &self.ring_in,
            &self.handoff_out,
            &self.handoff_in,
            &self.injected,
        ] {
            c.reset();
        }
        self.drops.iter().for_each(Counter::reset);
        self.dwell.iter().for_each(Counter::reset);
        for s in &self.stages {
            s.calls.reset();
            s.packets.reset();
            s.cycles.reset();
            s.timed_packets.reset();
        }
    }

    /// Records one burst's rx-to-tx time.
    #[inline]
    pub fn record_dwell(&self, ticks: u64) {
        let b = (63 - ticks.max(1).leading_zeros()) as usize;
        self.dwell[b.min(DWELL_BUCKETS - 1)].add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_snapshot() {
        assert_eq!(std::mem::align_of::<LcoreCounters>(), 64);
        let c = LcoreCounters::default();
        c.rx_packets.add(5);
        c.drops[DropReason::Runt as usize].add(2);
        c.record_dwell(1000); // bucket 9: [512, 1024)
        let s = c.snapshot();
        assert_eq!(s.rx_packets, 5);
        assert_eq!(s.total_drops(), 2);
        assert_eq!(s.dwell[9], 1);
        assert_eq!(s.dwell_percentile(0.5), 1024);
        c.reset();
        assert_eq!(c.snapshot().rx_packets, 0);
    }
}
