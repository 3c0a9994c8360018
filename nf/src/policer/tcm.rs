//! The token-bucket arithmetic of srTCM (RFC 2697) and trTCM (RFC 2698) in Rust, bit for bit
//! what DPDK's `rte_meter` checks compute (`rte_meter.h` of DPDK 22.11, as called through
//! [`dpdk::meter`]): the same bucket sizes and TSC periods (taken from the profile
//! `rte_meter` built), the same integer operations in the same order (wrapping, as C's
//! `uint64_t`), the same clamp of a time behind the meter's clock.
//!
//! Why not call `rte_meter`: its checks are static-inline C, reachable from Rust only through
//! a shim call per packet (no cross-language inlining), which measured about 42 cycles per
//! packet for one meter in the full chain. Here the stage refills an aggregate meter once per
//! burst (every packet of a burst has the burst's receive time, so a second refill at the
//! same time adds nothing) and colours each packet with two compares and a subtraction, in
//! registers (docs/performance.md, "Policer", has the before/after figures). The differential
//! test `nf/tests/meter_diff.rs` runs these meters and `rte_meter` side by side on random
//! sequences and asserts identical colours, tokens and clocks.

use dpdk::meter::{Color, SrtcmProfile, TrtcmProfile};

/// Division of a `u64` by a divisor fixed when a profile is built, by a multiplication: a
/// per-source meter refills at every packet, and a hardware division there cost about as much
/// as the rest of the check.
///
/// With `m = floor((2^128 - 1) / d) + 1` (d >= 2), `floor(n * m / 2^128) = floor(n / d)` for
/// every `n < 2^64`: `m * d = 2^128 + e` with `0 <= e <= d`, so `n * m / 2^128` exceeds `n / d`
/// by `n * e / (d * 2^128) < 2^-64 < 1 / d`, less than the distance from `n / d` to the next
/// integer when `n / d` is not one (at least `1 / d`). The product's top 64 bits are
/// `(n * m_hi + (n * m_lo >> 64)) >> 64` (the dropped low word cannot carry into them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Divisor {
    d: u64,
    m: u128,
}

impl Divisor {
    /// A divisor of `d` (> 0).
    pub fn new(d: u64) -> Divisor {
        assert!(d > 0, "division by zero");
        let m = if d == 1 { 0 } else { u128::MAX / d as u128 + 1 };
        Divisor { d, m }
    }

    pub fn get(&self) -> u64 {
        self.d
    }

    /// `n / d`, rounded down.
    #[inline(always)]
    pub fn div(&self, n: u64) -> u64 {
        if self.m == 0 {
            return n;
        }
        let hi = n as u128 * (self.m >> 64);
        let lo = (n as u128 * (self.m as u64) as u128) >> 64;
        ((hi + lo) >> 64) as u64
    }
}

/// srTCM bucket sizes and token arrival, as `rte_meter_srtcm_profile` holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrParams {
    pub cbs: u64,
    pub ebs: u64,
    /// TSC ticks per update of the buckets, and bytes added per update.
    pub period: u64,
    pub per: u64,
    period_div: Divisor,
}

impl SrParams {
    pub fn of(p: &SrtcmProfile) -> SrParams {
        let (cbs, ebs) = p.bucket_sizes();
        let (period, per) = p.cir_period();
        SrParams {
            cbs,
            ebs,
            period,
            per,
            period_div: Divisor::new(period),
        }
    }
}

/// trTCM bucket sizes and token arrival, as `rte_meter_trtcm_profile` holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrParams {
    pub cbs: u64,
    pub pbs: u64,
    pub c_period: u64,
    pub c_per: u64,
    pub p_period: u64,
    pub p_per: u64,
    c_div: Divisor,
    p_div: Divisor,
}

impl TrParams {
    pub fn of(p: &TrtcmProfile) -> TrParams {
        let (cbs, pbs) = p.bucket_sizes();
        let (c_period, c_per) = p.cir_period();
        let (p_period, p_per) = p.pir_period();
        TrParams {
            cbs,
            pbs,
            c_period,
            c_per,
            p_period,
            p_per,
            c_div: Divisor::new(c_period),
            p_div: Divisor::new(p_period),
        }
    }
}

/// Whole periods of `period` TSC ticks in `diff`. The division is skipped when less than one
/// period passed (a meter refilled again in the same burst): the result is the same, 0.
#[inline(always)]
fn periods(diff: u64, period: &Divisor) -> u64 {
    if diff >= period.d {
        period.div(diff)
    } else {
        0
    }
}

/// A meter's token buckets: the arithmetic the stage's loops are generic over.
pub trait Tcm: Copy {
    type Params: Copy;

    /// A meter with full buckets whose clock starts at `now`.
    fn start(p: &Self::Params, now: u64) -> Self;

    /// Adds the tokens earned up to `now` (a time behind the meter's clock counts as the
    /// clock's time: nothing earned). Idempotent for the same `now`.
    fn refill(&mut self, p: &Self::Params, now: u64);

    /// Colours a packet of `len` bytes with pre-colour `input` (`Green`: colour-blind, the
    /// same result as the blind check) and takes its tokens, without refilling first.
    fn color(&mut self, p: &Self::Params, len: u32, input: Color) -> Color;

    /// Refill and colour: one `rte_meter_*_color_aware_check`.
    #[inline(always)]
    fn check(&mut self, p: &Self::Params, now: u64, len: u32, input: Color) -> Color {
        self.refill(p, now);
        self.color(p, len, input)
    }
}

/// srTCM run-time state (`rte_meter_srtcm`): the clock and the C and E buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SrMeter {
    pub time: u64,
    pub tc: u64,
    pub te: u64,
}

impl Tcm for SrMeter {
    type Params = SrParams;

    #[inline]
    fn start(p: &SrParams, now: u64) -> SrMeter {
        SrMeter {
            time: now,
            tc: p.cbs,
            te: p.ebs,
        }
    }

    #[inline(always)]
    fn refill(&mut self, p: &SrParams, now: u64) {
        let n = periods(now.saturating_sub(self.time), &p.period_div);
        self.time = self.time.wrapping_add(n.wrapping_mul(p.period));
        // Tokens overflowing from C go to E (RFC 2697 §3).
        let tc = self.tc.wrapping_add(n.wrapping_mul(p.per));
        if tc > p.cbs {
            self.te = self.te.wrapping_add(tc - p.cbs).min(p.ebs);
            self.tc = p.cbs;
        } else {
            self.tc = tc;
        }
    }

    #[inline(always)]
    fn color(&mut self, _p: &SrParams, len: u32, input: Color) -> Color {
        let len = len as u64;
        if input == Color::Green && self.tc >= len {
            self.tc -= len;
            Color::Green
        } else if input != Color::Red && self.te >= len {
            self.te -= len;
            Color::Yellow
        } else {
            Color::Red
        }
    }
}

/// trTCM run-time state (`rte_meter_trtcm`): a clock per bucket, the C and P buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrMeter {
    pub time_tc: u64,
    pub time_tp: u64,
    pub tc: u64,
    pub tp: u64,
}

impl Tcm for TrMeter {
    type Params = TrParams;

    #[inline]
    fn start(p: &TrParams, now: u64) -> TrMeter {
        TrMeter {
            time_tc: now,
            time_tp: now,
            tc: p.cbs,
            tp: p.pbs,
        }
    }

    #[inline(always)]
    fn refill(&mut self, p: &TrParams, now: u64) {
        // The clamp of dpdk::meter::Trtcm: not behind either bucket's clock.
        let t = now.max(self.time_tc).max(self.time_tp);
        let nc = periods(t - self.time_tc, &p.c_div);
        let np = periods(t - self.time_tp, &p.p_div);
        self.time_tc = self.time_tc.wrapping_add(nc.wrapping_mul(p.c_period));
        self.time_tp = self.time_tp.wrapping_add(np.wrapping_mul(p.p_period));
        self.tc = self.tc.wrapping_add(nc.wrapping_mul(p.c_per)).min(p.cbs);
        self.tp = self.tp.wrapping_add(np.wrapping_mul(p.p_per)).min(p.pbs);
    }

    #[inline(always)]
    fn color(&mut self, _p: &TrParams, len: u32, input: Color) -> Color {
        let len = len as u64;
        if input == Color::Red || self.tp < len {
            Color::Red
        } else if input == Color::Yellow || self.tc < len {
            self.tp -= len;
            Color::Yellow
        } else {
            self.tc -= len;
            self.tp -= len;
            Color::Green
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divisor_is_exact() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut ds: Vec<u64> = vec![1, 2, 3, 7, 100, 101, 1 << 32, (1 << 32) + 1, u64::MAX];
        ds.extend((1..64).map(|s| 1u64 << s));
        ds.extend((1..64).map(|s| (1u64 << s) - 1));
        for _ in 0..2000 {
            let d = next() >> (next() % 64);
            ds.push(d.max(1));
        }
        for d in ds {
            let v = Divisor::new(d);
            let mut ns = vec![0, 1, d - 1, d, d.wrapping_add(1), u64::MAX, u64::MAX - 1];
            ns.extend((1..20u64).map(|k| d.wrapping_mul(k)));
            ns.extend((1..20u64).map(|k| d.wrapping_mul(k).wrapping_sub(1)));
            for _ in 0..200 {
                ns.push(next() >> (next() % 64));
            }
            for n in ns {
                assert_eq!(v.div(n), n / d, "{n} / {d}");
            }
        }
    }
}
