//! RFC 2697 (srTCM) and RFC 2698 (trTCM) conformance of the `rte_meter` wrappers, on known
//! packet sequences and on random ones checked against a model written from the RFC text,
//! with a controlled clock (the check's TSC argument).
//!
//! EAL is needed for profiles (rte_meter reads the TSC frequency); one EAL is shared by every
//! test of this binary, started with `--no-pci --in-memory` and a unique file prefix, while
//! holding the machine's busy-polling lock (no lcore polls here; the lock keeps the rule
//! "every DPDK process holds it" simple).

use std::fs::File;
use std::sync::OnceLock;

use dpdk::meter::{Color, Srtcm, SrtcmParams, SrtcmProfile, Trtcm, TrtcmParams, TrtcmProfile};

static EAL: OnceLock<(dpdk::Eal, File)> = OnceLock::new();

fn eal() {
    EAL.get_or_init(|| dpdk::Eal::init_private("meter-test", &[]).expect("EAL init"));
}

use Color::{Green as G, Red as R, Yellow as Y};

// ---------------------------------------------------------------------------------------------
// Known sequences.

/// RFC 2697 §3, colour-blind: C is used first, then E, else red; tokens that overflow a full
/// C bucket go to E (never the other way).
#[test]
fn srtcm_blind_known_sequence() {
    eal();
    let p = SrtcmProfile::new(SrtcmParams {
        cir: 1_000_000,
        cbs: 3000,
        ebs: 2000,
    })
    .unwrap();
    let (period, per) = p.cir_period();
    assert_eq!(per, 1, "1 MB/s is slow enough for one byte per period");
    let t0 = 1_000_000_000u64;
    let mut m = Srtcm::new(&p, t0);
    assert_eq!(m.tokens(), (3000, 2000), "Tc(0) = CBS, Te(0) = EBS");
    let mut t = t0;
    let seq = [(1500, G), (1500, G), (1500, Y), (600, R), (500, Y), (1, R)];
    for (i, (len, want)) in seq.iter().enumerate() {
        assert_eq!(m.check_blind(&p, t, *len), *want, "packet {i} ({len} B)");
    }
    assert_eq!(m.tokens(), (0, 0));
    // 1000 bytes of tokens arrive: all into C (C is not full).
    t += 1000 * period;
    assert_eq!(
        m.tokens(),
        (0, 0),
        "the check updates the buckets, not the clock"
    );
    assert_eq!(m.check_blind(&p, t, 1001), R, "1001 > Tc = 1000 and Te = 0");
    assert_eq!(m.tokens(), (1000, 0), "a red packet takes no tokens");
    assert_eq!(m.check_blind(&p, t, 1000), G);
    // 5000 bytes: C fills to CBS (3000), 2000 overflow into E (capped at EBS).
    t += 5000 * period;
    assert_eq!(m.check_blind(&p, t, 3000), G);
    assert_eq!(m.tokens(), (0, 2000));
    assert_eq!(m.check_blind(&p, t, 2000), Y);
    assert_eq!(m.check_blind(&p, t, 1), R);
    // Half a period adds nothing; the other half completes one byte.
    t += period / 2;
    assert_eq!(m.check_blind(&p, t, 1), R);
    t += period - period / 2;
    assert_eq!(m.check_blind(&p, t, 1), G);
}

/// RFC 2697 §3, colour-aware: a green packet may be green (C), yellow (E) or red; a yellow one
/// only yellow (E) or red; a red one stays red and takes no tokens.
#[test]
fn srtcm_aware_known_sequence() {
    eal();
    let p = SrtcmProfile::new(SrtcmParams {
        cir: 1_000_000,
        cbs: 3000,
        ebs: 2000,
    })
    .unwrap();
    let mut m = Srtcm::new(&p, 5);
    assert_eq!(m.check_aware(&p, 5, 100, R), R);
    assert_eq!(m.tokens(), (3000, 2000), "red input takes nothing");
    assert_eq!(m.check_aware(&p, 5, 1500, Y), Y, "yellow never uses C");
    assert_eq!(m.tokens(), (3000, 500));
    assert_eq!(
        m.check_aware(&p, 5, 600, Y),
        R,
        "Te = 500 < 600 even though Tc = 3000"
    );
    assert_eq!(m.check_aware(&p, 5, 3000, G), G);
    assert_eq!(m.check_aware(&p, 5, 500, G), Y, "green input, C empty: E");
    assert_eq!(m.check_aware(&p, 5, 1, G), R);
    assert_eq!(m.tokens(), (0, 0));
}

/// RFC 2698 §3, colour-blind: red if Tp < B; else yellow if Tc < B (P decremented); else green
/// (both decremented).
#[test]
fn trtcm_blind_known_sequence() {
    eal();
    let p = TrtcmProfile::new(TrtcmParams {
        cir: 1_000_000,
        pir: 2_000_000,
        cbs: 1000,
        pbs: 3000,
    })
    .unwrap();
    let (cper, cb) = p.cir_period();
    let (pper, pb) = p.pir_period();
    assert_eq!((cb, pb), (1, 1));
    let t0 = 77;
    let mut m = Trtcm::new(&p, t0);
    assert_eq!(m.tokens(), (1000, 3000), "Tc(0) = CBS, Tp(0) = PBS");
    let seq = [(800, G), (800, Y), (1500, R), (1400, Y), (1, R)];
    for (i, (len, want)) in seq.iter().enumerate() {
        assert_eq!(m.check_blind(&p, t0, *len), *want, "packet {i} ({len} B)");
    }
    assert_eq!(m.tokens(), (200, 0));
    // 400 committed periods: C gains 400 bytes; P gains about 800 (PIR is twice CIR).
    let t = t0 + 400 * cper;
    let p_gain = 400 * cper / pper;
    assert!((799..=801).contains(&p_gain), "{p_gain}");
    assert_eq!(m.check_blind(&p, t, 700), Y, "Tp ~800 >= 700 > Tc = 600");
    assert_eq!(m.tokens(), (600, p_gain - 700), "yellow takes from P only");
    assert_eq!(m.check_blind(&p, t, 50), G);
    assert_eq!(m.tokens(), (550, p_gain - 750));
    assert_eq!(m.check_blind(&p, t, 600), R, "Tp ~50 < 600");
    assert_eq!(m.tokens(), (550, p_gain - 750), "red takes nothing");
    // A long idle time fills both buckets to their sizes, not beyond.
    let t = t + 1_000_000 * cper;
    assert_eq!(m.check_blind(&p, t, 1000), G);
    assert_eq!(m.tokens(), (0, 2000));
    assert_eq!(m.check_blind(&p, t, 2000), Y);
    assert_eq!(m.check_blind(&p, t, 1), R);
}

/// RFC 2698 §3, colour-aware: red input stays red; yellow input is at best yellow (P only).
#[test]
fn trtcm_aware_known_sequence() {
    eal();
    let p = TrtcmProfile::new(TrtcmParams {
        cir: 1_000_000,
        pir: 2_000_000,
        cbs: 1000,
        pbs: 3000,
    })
    .unwrap();
    let mut m = Trtcm::new(&p, 0);
    assert_eq!(m.check_aware(&p, 0, 10, R), R);
    assert_eq!(m.tokens(), (1000, 3000));
    assert_eq!(m.check_aware(&p, 0, 500, Y), Y);
    assert_eq!(m.tokens(), (1000, 2500), "yellow input leaves C alone");
    assert_eq!(m.check_aware(&p, 0, 900, G), G);
    assert_eq!(m.check_aware(&p, 0, 200, G), Y, "Tc = 100 < 200");
    assert_eq!(m.check_aware(&p, 0, 1500, G), R, "Tp = 1400 < 1500");
    assert_eq!(m.tokens(), (100, 1400));
}

#[test]
fn profiles_refuse_what_the_rfcs_refuse() {
    eal();
    // RFC 2697 §2: CIR > 0 and at least one of CBS, EBS > 0.
    assert!(
        SrtcmProfile::new(SrtcmParams {
            cir: 0,
            cbs: 1,
            ebs: 1
        })
        .is_err()
    );
    assert!(
        SrtcmProfile::new(SrtcmParams {
            cir: 1,
            cbs: 0,
            ebs: 0
        })
        .is_err()
    );
    assert!(
        SrtcmProfile::new(SrtcmParams {
            cir: 1,
            cbs: 0,
            ebs: 1
        })
        .is_ok()
    );
    // RFC 2698 §2: PIR >= CIR, both bursts > 0.
    let tp = |cir, pir, cbs, pbs| TrtcmProfile::new(TrtcmParams { cir, pir, cbs, pbs });
    assert!(tp(2, 1, 1, 1).is_err());
    assert!(tp(1, 2, 0, 1).is_err());
    assert!(tp(1, 2, 1, 0).is_err());
    assert!(tp(1, 1, 1, 1).is_ok());
}

/// The meter's clock never runs backwards: a check with a time before the meter's start (a
/// burst received just before the meter was created) adds no tokens and does not wrap.
#[test]
fn time_before_start_is_harmless() {
    eal();
    let p = SrtcmProfile::new(SrtcmParams {
        cir: 1000,
        cbs: 100,
        ebs: 0,
    })
    .unwrap();
    let mut m = Srtcm::new(&p, 1_000_000);
    assert_eq!(m.check_blind(&p, 10, 100), G);
    assert_eq!(m.check_blind(&p, 10, 1), R);
    assert_eq!(m.tokens(), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// Random sequences against models written from the RFC text. Token arrival is discretised as
// rte_meter does it (`per` bytes every `period` TSC ticks), which is RFC 2697's "updated CIR
// times per second" with the TSC as the clock.

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
}

struct Bucket {
    time: u64,
    period: u64,
    per: u64,
}
impl Bucket {
    /// Bytes earned up to `t`; the clock advances by whole periods only.
    fn earn(&mut self, t: u64) -> u64 {
        let n = (t - self.time) / self.period;
        self.time += n * self.period;
        n * self.per
    }
}

struct SrModel {
    b: Bucket,
    cbs: u64,
    ebs: u64,
    tc: u64,
    te: u64,
}
impl SrModel {
    fn check(&mut self, t: u64, len: u64, input: Option<Color>) -> Color {
        let add = self.b.earn(t);
        // "If Tc is less than CBS, Tc is incremented by one, else if Te is less then EBS, Te
        // is incremented by one, else neither": in bulk, C first, the overflow to E.
        let tc = self.tc + add;
        if tc > self.cbs {
            self.te = (self.te + tc - self.cbs).min(self.ebs);
            self.tc = self.cbs;
        } else {
            self.tc = tc;
        }
        let input = input.unwrap_or(G);
        if input == G && self.tc >= len {
            self.tc -= len;
            G
        } else if input != R && self.te >= len {
            self.te -= len;
            Y
        } else {
            R
        }
    }
}

struct TrModel {
    c: Bucket,
    p: Bucket,
    cbs: u64,
    pbs: u64,
    tc: u64,
    tp: u64,
}
impl TrModel {
    fn check(&mut self, t: u64, len: u64, input: Option<Color>) -> Color {
        self.tc = (self.tc + self.c.earn(t)).min(self.cbs);
        self.tp = (self.tp + self.p.earn(t)).min(self.pbs);
        let input = input.unwrap_or(G);
        if input == R || self.tp < len {
            R
        } else if input == Y || self.tc < len {
            self.tp -= len;
            Y
        } else {
            self.tc -= len;
            self.tp -= len;
            G
        }
    }
}

#[test]
fn srtcm_matches_rfc2697_model_on_random_sequences() {
    eal();
    let mut rng = Rng(0x2697);
    // Slow rates (one byte per period) and line rates (many bytes per period).
    for (cir, cbs, ebs) in [
        (125_000, 1518, 3036),
        (1_250_000, 10_000, 0),
        (12_500_000, 0, 20_000),
        (1_250_000_000, 64_000, 64_000),
    ] {
        let p = SrtcmProfile::new(SrtcmParams { cir, cbs, ebs }).unwrap();
        let (period, per) = p.cir_period();
        for aware in [false, true] {
            let t0 = 1 << 40;
            let mut m = Srtcm::new(&p, t0);
            let mut model = SrModel {
                b: Bucket {
                    time: t0,
                    period,
                    per,
                },
                cbs,
                ebs,
                tc: cbs,
                te: ebs,
            };
            let mut t = t0;
            let mut seen = [0u32; 3];
            for i in 0..20_000 {
                // Mostly back-to-back packets, sometimes gaps of up to ~2 bursts of tokens.
                t += match rng.below(4) {
                    0 => 0,
                    1 => rng.below(period * 4),
                    _ => rng.below(period * 1500 / per.max(1) + 1),
                };
                let len = 60 + rng.below(1459) as u32;
                let input = rng.color();
                let (got, want) = if aware {
                    (
                        m.check_aware(&p, t, len, input),
                        model.check(t, len as u64, Some(input)),
                    )
                } else {
                    (m.check_blind(&p, t, len), model.check(t, len as u64, None))
                };
                assert_eq!(got, want, "cir {cir} aware {aware} packet {i}");
                assert_eq!(m.tokens(), (model.tc, model.te), "packet {i}");
                seen[got as usize] += 1;
            }
            // The sequences exercise every colour the profile allows: no green without a C
            // bucket, no yellow without an E bucket.
            assert_eq!(seen[0] > 0, cbs > 0, "{seen:?}");
            assert_eq!(seen[1] > 0, ebs > 0, "{seen:?}");
            assert!(seen[2] > 0, "{seen:?}");
        }
    }
}

#[test]
fn trtcm_matches_rfc2698_model_on_random_sequences() {
    eal();
    let mut rng = Rng(0x2698);
    for (cir, pir, cbs, pbs) in [
        (125_000, 250_000, 1518, 3036),
        (1_250_000, 1_250_000, 10_000, 10_000),
        (12_500_000, 125_000_000, 3000, 30_000),
        (1_250_000_000, 2_500_000_000, 64_000, 128_000),
    ] {
        let p = TrtcmProfile::new(TrtcmParams { cir, pir, cbs, pbs }).unwrap();
        let (cper, cb) = p.cir_period();
        let (pper, pb) = p.pir_period();
        for aware in [false, true] {
            let t0 = 1 << 41;
            let mut m = Trtcm::new(&p, t0);
            let mut model = TrModel {
                c: Bucket {
                    time: t0,
                    period: cper,
                    per: cb,
                },
                p: Bucket {
                    time: t0,
                    period: pper,
                    per: pb,
                },
                cbs,
                pbs,
                tc: cbs,
                tp: pbs,
            };
            let mut t = t0;
            let mut seen = [0u32; 3];
            for i in 0..20_000 {
                // Gaps sized by the peak rate, so that P runs dry too.
                t += match rng.below(4) {
                    0 | 1 => 0,
                    2 => rng.below(cper * 4),
                    _ => rng.below(pper * 1500 / pb.max(1) + 1),
                };
                let len = 60 + rng.below(1459) as u32;
                let input = rng.color();
                let (got, want) = if aware {
                    (
                        m.check_aware(&p, t, len, input),
                        model.check(t, len as u64, Some(input)),
                    )
                } else {
                    (m.check_blind(&p, t, len), model.check(t, len as u64, None))
                };
                assert_eq!(got, want, "cir {cir} pir {pir} aware {aware} packet {i}");
                assert_eq!(m.tokens(), (model.tc, model.tp), "packet {i}");
                seen[got as usize] += 1;
            }
            // Every colour is seen, except yellow when colour-blind with identical buckets
            // (then Tc = Tp at all times).
            let twins = cir == pir && cbs == pbs;
            assert!(seen[0] > 0 && seen[2] > 0, "{seen:?}");
            assert_eq!(seen[1] > 0, aware || !twins, "{seen:?}");
        }
    }
}

/// Over a long run at a steady overload, what a colour-blind srTCM marks green converges to
/// CIR x time + CBS (the committed rate and burst the operator configured).
#[test]
fn srtcm_green_bytes_follow_cir() {
    eal();
    let cir = 1_000_000u64;
    let p = SrtcmProfile::new(SrtcmParams {
        cir,
        cbs: 10_000,
        ebs: 0,
    })
    .unwrap();
    let hz = dpdk::tsc_hz();
    let mut m = Srtcm::new(&p, 0);
    let secs = 10u64;
    let step = hz / 10_000; // 10k packets per second of 1000 B = 10 MB/s offered
    let mut green = 0u64;
    let mut t = 0;
    while t < secs * hz {
        if m.check_blind(&p, t, 1000) == G {
            green += 1000;
        }
        t += step;
    }
    let want = (cir * secs + 10_000) as f64;
    let err = (green as f64 - want).abs() / want;
    assert!(
        err < 0.001,
        "green {green} B vs CIR x T + CBS = {want} ({err:.5})"
    );
}
