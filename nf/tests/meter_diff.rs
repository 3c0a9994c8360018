//! The policer's Rust meters (`pollfwd_nf::policer::tcm`) against DPDK's `rte_meter` (the
//! root crate's `dpdk::meter` wrappers) side by side: the same random profiles, packet sizes,
//! pre-colours and timestamps (same burst, a few periods, long idle, a clock behind the
//! meter's), live profile changes that leave more tokens than the new bucket holds; the
//! colours, the tokens and the clocks must be identical after every packet. Also the stage's
//! fast loop (one refill per burst) on real mbufs against a per-packet `rte_meter` check.
//!
//! One EAL per test binary (`--no-pci --in-memory`, unique file prefix), started while holding
//! the machine's busy-polling lock; nothing polls here.

use std::fs::File;
use std::sync::{Arc, OnceLock};

use dpdk::meter::{Color, Srtcm, SrtcmParams, SrtcmProfile, Trtcm, TrtcmParams, TrtcmProfile};
use dpdk::{Mbuf, Mempool, PktMeta};
use pollfwd_nf::parse::ipv4_header_checksum;
use pollfwd_nf::policer::tcm::{SrMeter, SrParams, Tcm, TrMeter, TrParams};
use pollfwd_nf::policer::{
    Action, MeterState, PerSource, Policer, PolicerDef, PolicerTable, Profile, WorkerCounters,
    rfc2597_precolor,
};
use pollfwd_pipeline::{DropReason, Verdict};

static EAL: OnceLock<(dpdk::Eal, File, Mempool)> = OnceLock::new();

fn pool() -> Mempool {
    EAL.get_or_init(|| {
        let (eal, lock) = dpdk::Eal::init_private("meterdiff", &[]).expect("EAL init");
        let pool = Mempool::create("meterdiff", 1023, 0, 2176, -1).expect("mempool");
        (eal, lock, pool)
    })
    .2
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn color(&mut self) -> Color {
        Color::ALL[self.below(3) as usize]
    }
    /// A rate in bytes/s over many magnitudes (one byte per period at low rates, many at
    /// line rates).
    fn rate(&mut self) -> u64 {
        let mag = 10u64.pow(self.below(11) as u32);
        mag + self.below(mag * 9 + 1)
    }
    /// A bucket size in bytes, sometimes tiny, sometimes large.
    fn burst(&mut self) -> u64 {
        match self.below(4) {
            0 => 1 + self.below(64),
            1 => 64 + self.below(3000),
            2 => 1000 + self.below(100_000),
            _ => 1 + self.below(10_000_000),
        }
    }
    fn len(&mut self) -> u32 {
        match self.below(3) {
            0 => 64,
            1 => 1 + self.below(1518) as u32,
            _ => 1 + self.below(9000) as u32,
        }
    }
    /// Time to the next burst, in TSC ticks: often the same burst, else a fraction of a
    /// period up to a long idle time; rarely backwards (a burst received before the meter
    /// was made).
    fn step(&mut self, t: u64, period: u64) -> u64 {
        match self.below(10) {
            0..=3 => t,
            4 => t + self.below(period),
            5..=7 => t + self.below(period * 64),
            8 => t + self.below(period << 20),
            _ => t.saturating_sub(self.below(period * 8)),
        }
    }
}

fn sr_profile(r: &mut Rng) -> SrtcmProfile {
    let (cbs, ebs) = match r.below(4) {
        0 => (0, r.burst()),
        1 => (r.burst(), 0),
        _ => (r.burst(), r.burst()),
    };
    SrtcmProfile::new(SrtcmParams {
        cir: r.rate(),
        cbs,
        ebs,
    })
    .unwrap()
}

fn tr_profile(r: &mut Rng) -> TrtcmProfile {
    let cir = r.rate();
    let pir = cir + r.below(cir * 4 + 1);
    TrtcmProfile::new(TrtcmParams {
        cir,
        pir,
        cbs: r.burst(),
        pbs: r.burst(),
    })
    .unwrap()
}

const T0: u64 = 1 << 40;
const PROFILES: usize = 300;
const PACKETS: usize = 2000;

/// One input colour per packet for an aware sequence, `None` (blind) otherwise.
fn input(r: &mut Rng, aware: bool) -> Option<Color> {
    aware.then(|| r.color())
}

#[test]
fn srtcm_is_rte_meter_bit_for_bit() {
    pool();
    let mut r = Rng(0x2697_0001);
    let mut checked = [0u64; 3];
    for n in 0..PROFILES {
        let aware = n % 2 == 1;
        let mut prof = sr_profile(&mut r);
        let mut params = SrParams::of(&prof);
        let mut dp = Srtcm::new(&prof, T0);
        let mut rs = SrMeter::start(&params, T0);
        assert_eq!((rs.tc, rs.te), dp.tokens(), "profile {n}: start");
        assert_eq!(rs.time, dp.time());
        let mut t = T0;
        let mut burst_t = None;
        for i in 0..PACKETS {
            if i % 500 == 499 {
                // A live profile change: the meter keeps its tokens and clock, maybe more
                // than the new buckets hold.
                prof = sr_profile(&mut r);
                params = SrParams::of(&prof);
                burst_t = None;
            }
            t = r.step(t, params.period);
            let len = r.len();
            let inp = input(&mut r, aware);
            let want = match inp {
                None => dp.check_blind(&prof, t, len),
                Some(c) => dp.check_aware(&prof, t, len, c),
            };
            // The stage's way for a burst: refill once at the burst's time, then colour each
            // packet; and the per-packet check (per-source meters, the general loop).
            let got = if i % 3 == 0 {
                rs.check(&params, t, len, inp.unwrap_or(Color::Green))
            } else {
                if burst_t != Some(t) {
                    rs.refill(&params, t);
                    burst_t = Some(t);
                }
                rs.color(&params, len, inp.unwrap_or(Color::Green))
            };
            assert_eq!(
                got, want,
                "profile {n} packet {i}: {params:?} t={t} len={len}"
            );
            assert_eq!((rs.tc, rs.te), dp.tokens(), "profile {n} packet {i}");
            assert_eq!(rs.time, dp.time(), "profile {n} packet {i}");
            checked[want as usize] += 1;
        }
    }
    // Every colour came up often: the sequences exercise every branch.
    assert!(checked.iter().all(|c| *c > 10_000), "{checked:?}");
}

#[test]
fn trtcm_is_rte_meter_bit_for_bit() {
    pool();
    let mut r = Rng(0x2698_0001);
    let mut checked = [0u64; 3];
    for n in 0..PROFILES {
        let aware = n % 2 == 1;
        let mut prof = tr_profile(&mut r);
        let mut params = TrParams::of(&prof);
        let mut dp = Trtcm::new(&prof, T0);
        let mut rs = TrMeter::start(&params, T0);
        assert_eq!((rs.tc, rs.tp), dp.tokens(), "profile {n}: start");
        assert_eq!((rs.time_tc, rs.time_tp), dp.times());
        let mut t = T0;
        let mut burst_t = None;
        for i in 0..PACKETS {
            if i % 500 == 499 {
                prof = tr_profile(&mut r);
                params = TrParams::of(&prof);
                burst_t = None;
            }
            t = r.step(t, params.c_period.min(params.p_period));
            let len = r.len();
            let inp = input(&mut r, aware);
            let want = match inp {
                None => dp.check_blind(&prof, t, len),
                Some(c) => dp.check_aware(&prof, t, len, c),
            };
            let got = if i % 3 == 0 {
                rs.check(&params, t, len, inp.unwrap_or(Color::Green))
            } else {
                if burst_t != Some(t) {
                    rs.refill(&params, t);
                    burst_t = Some(t);
                }
                rs.color(&params, len, inp.unwrap_or(Color::Green))
            };
            assert_eq!(
                got, want,
                "profile {n} packet {i}: {params:?} t={t} len={len}"
            );
            assert_eq!((rs.tc, rs.tp), dp.tokens(), "profile {n} packet {i}");
            assert_eq!(
                (rs.time_tc, rs.time_tp),
                dp.times(),
                "profile {n} packet {i}"
            );
            checked[want as usize] += 1;
        }
    }
    assert!(checked.iter().all(|c| *c > 10_000), "{checked:?}");
}

// ---------------------------------------------------------------------------------------------
// The stage on mbufs against rte_meter, packet by packet.

/// A UDP/IPv4 frame of `len` bytes from `src` with DSCP `dscp` and a valid header checksum.
fn frame(src: u32, dscp: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(42)];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (f.len() - 14) as u16;
    f[14] = 0x45;
    f[15] = dscp << 2;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&src.to_be_bytes());
    f[30..34].copy_from_slice(&[192, 0, 2, 1]);
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    let c = ipv4_header_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// The reference meter: DPDK's, one check per packet.
enum Ref {
    Sr(SrtcmProfile, Srtcm),
    Tr(TrtcmProfile, Trtcm),
}

impl Ref {
    fn new(p: &Profile, now: u64) -> Ref {
        match p {
            Profile::Srtcm(p) => Ref::Sr(*p, Srtcm::new(p, now)),
            Profile::Trtcm(p) => Ref::Tr(*p, Trtcm::new(p, now)),
        }
    }
    fn check(&mut self, now: u64, len: u32, input: Option<Color>) -> Color {
        match (self, input) {
            (Ref::Sr(p, m), None) => m.check_blind(p, now, len),
            (Ref::Sr(p, m), Some(c)) => m.check_aware(p, now, len, c),
            (Ref::Tr(p, m), None) => m.check_blind(p, now, len),
            (Ref::Tr(p, m), Some(c)) => m.check_aware(p, now, len, c),
        }
    }
    /// Tokens and clock(s).
    fn state(&self) -> (u64, u64, u64, u64) {
        match self {
            Ref::Sr(_, m) => (m.tokens().0, m.tokens().1, m.time(), m.time()),
            Ref::Tr(_, m) => (m.tokens().0, m.tokens().1, m.times().0, m.times().1),
        }
    }
}

/// Tokens and clock(s) of the stage's meter, as [`Ref::state`].
fn state(m: &MeterState) -> (u64, u64, u64, u64) {
    match m {
        MeterState::Srtcm(m) => (m.tc, m.te, m.time, m.time),
        MeterState::Trtcm(m) => (m.tc, m.tp, m.time_tc, m.time_tp),
    }
}

/// Runs random bursts through a stage holding one default policer `d` and checks every
/// packet's colour and verdict, the meter's tokens after every burst (aggregate) and the
/// counters against `rte_meter` checked packet by packet (one meter per source when per
/// source).
fn stage_matches_rte_meter(d: PolicerDef, seed: u64) {
    let pool = pool();
    let aware = d.color_aware;
    let per_source = d.per_source.is_some();
    let precolor = rfc2597_precolor();
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(
        PolicerTable::new(vec![d.clone()], precolor).unwrap(),
        c.clone(),
    );
    let mut r = Rng(seed);
    // The stage's aggregate meter starts at the real TSC when the table is built: the
    // reference starts with it. Source meters start at their source's first packet in both.
    let mut t = dpdk::rdtsc() + (1 << 36);
    let mut refs: std::collections::HashMap<u32, Ref> = Default::default();
    if !per_source {
        refs.insert(0, Ref::new(&d.profile, state(p.meter(0).unwrap()).2));
    }
    let mut want_counts = [0u64; 3];
    let mut want_bytes = [0u64; 3];
    let period = match &d.profile {
        Profile::Srtcm(p) => p.cir_period().0,
        Profile::Trtcm(p) => p.cir_period().0.min(p.pir_period().0),
    };
    for b in 0..400 {
        t = r.step(t, period).max(t);
        let n = 1 + r.below(32) as usize;
        let mut pkts: Vec<Mbuf> = Vec::with_capacity(n);
        let mut inputs = Vec::with_capacity(n);
        for _ in 0..n {
            let src = 0x0a00_0000 + r.below(4) as u32;
            let dscp = [0u8, 10, 12, 14, 46][r.below(5) as usize];
            let len = 60 + r.below(1455) as usize;
            let f = frame(src, dscp, len);
            let mut m = pool.alloc().expect("mbuf");
            assert!(m.set_len(f.len() as u16));
            m.data_mut().copy_from_slice(&f);
            *m.meta_mut() = PktMeta::fresh(0, 0);
            let pre = r.color();
            m.meta_mut().color = pre as u8;
            inputs.push(aware.then(|| pre.max(precolor[dscp as usize])));
            pkts.push(m);
        }
        let mut v = vec![Verdict::Continue; n];
        let all = p.police(t, &mut pkts, &mut v);
        let mut any_drop = false;
        for (i, m) in pkts.iter().enumerate() {
            let key = if per_source {
                u32::from_be_bytes(m.data()[26..30].try_into().unwrap())
            } else {
                0
            };
            let rm = refs.entry(key).or_insert_with(|| Ref::new(&d.profile, t));
            let want = rm.check(t, m.pkt_len(), inputs[i]);
            assert_eq!(m.meta().color, want as u8, "burst {b} packet {i}");
            let ci = want as usize;
            want_counts[ci] += 1;
            want_bytes[ci] += m.pkt_len() as u64;
            let wv = match d.actions[ci] {
                Action::Drop => {
                    any_drop = true;
                    Verdict::Drop(
                        [
                            DropReason::PolicerGreen,
                            DropReason::PolicerYellow,
                            DropReason::PolicerRed,
                        ][ci],
                    )
                }
                _ => Verdict::Continue,
            };
            assert_eq!(v[i], wv, "burst {b} packet {i}");
            if let Action::Remark(dscp) = d.actions[ci] {
                assert_eq!(m.data()[15] >> 2, dscp, "burst {b} packet {i}");
            }
        }
        assert_eq!(all, !any_drop, "burst {b}");
        if !per_source {
            let got = p.meter(0).unwrap();
            assert_eq!(state(got), refs[&0].state(), "burst {b}: tokens, clock");
        } else {
            let tab = p.sources(0).unwrap();
            for (k, rm) in &refs {
                let got = tab.get(*k).unwrap();
                assert_eq!(state(got), rm.state(), "burst {b}: source {k:#x}");
            }
        }
    }
    let s = c.snapshot(0);
    assert_eq!(s.packets, want_counts);
    assert_eq!(s.bytes, want_bytes);
    assert!(want_counts.iter().all(|n| *n > 0), "{want_counts:?}");
}

fn def(profile: Profile, aware: bool, per_source: bool) -> PolicerDef {
    PolicerDef {
        name: "d".into(),
        profile,
        color_aware: aware,
        actions: [Action::Transmit, Action::Remark(12), Action::Drop],
        class: None,
        per_source: per_source.then_some(PerSource {
            max_sources: 16,
            idle_ticks: u64::MAX / 2,
            ipv6_prefix: 64,
        }),
    }
}

#[test]
fn stage_loops_match_rte_meter_packet_by_packet() {
    pool();
    // Rates low enough that the bursts' random packets see all three colours.
    let sr = || {
        Profile::Srtcm(
            SrtcmProfile::new(SrtcmParams {
                cir: 2_000_000,
                cbs: 6000,
                ebs: 9000,
            })
            .unwrap(),
        )
    };
    let tr = || {
        Profile::Trtcm(
            TrtcmProfile::new(TrtcmParams {
                cir: 1_000_000,
                pir: 3_000_000,
                cbs: 6000,
                pbs: 12_000,
            })
            .unwrap(),
        )
    };
    let mut seed = 1;
    for per_source in [false, true] {
        for aware in [false, true] {
            for profile in [sr(), tr()] {
                seed += 1;
                stage_matches_rte_meter(def(profile, aware, per_source), seed);
            }
        }
    }
    // Blind, transmit or drop only: the loop that never reads the IPv4 header.
    let mut d = def(sr(), false, false);
    d.actions[1] = Action::Transmit;
    stage_matches_rte_meter(d, 99);
    let mut d = def(tr(), false, false);
    d.actions[1] = Action::Transmit;
    stage_matches_rte_meter(d, 100);
}
