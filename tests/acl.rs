//! The `rte_acl` wrapper: hand-built keys against hand-written rules, priorities, wildcards,
//! random rule sets checked against the reference matcher ([`Ipv4Rule::matches`]), a 10,000-rule
//! build, and concurrent classification from several threads; IPv6 contexts ([`Acl6`]): prefix
//! lengths on each side of every 32-bit group boundary, and random rule sets against
//! [`Ipv6Rule::matches`] with every classify method.
//!
//! One EAL for the whole test binary (`--no-pci --in-memory`, unique file prefix), started
//! while holding the machine's busy-polling lock (nothing polls here; the rule is simply that
//! every DPDK process holds it).

use std::fs::File;
use std::sync::{Arc, OnceLock};

use dpdk::acl::{Acl, Acl6, Alg, Ipv4Key, Ipv4Rule, Ipv6Key, Ipv6Rule};

static EAL: OnceLock<(dpdk::Eal, File)> = OnceLock::new();

fn eal() {
    EAL.get_or_init(|| dpdk::Eal::init_private("acl-test", &[]).expect("EAL init"));
}

fn ip(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

fn classify(acl: &Acl, keys: &[Ipv4Key]) -> Vec<u32> {
    let mut r = vec![u32::MAX; keys.len()];
    acl.classify(keys, &mut r);
    r
}

/// Reference: userdata of the highest-priority matching rule, 0 if none.
fn model(rules: &[Ipv4Rule], k: &Ipv4Key) -> u32 {
    rules
        .iter()
        .filter(|r| r.matches(k))
        .max_by_key(|r| r.priority)
        .map(|r| r.userdata)
        .unwrap_or(0)
}

const TCP: u8 = 6;
const UDP: u8 = 17;

#[test]
fn each_field_matches_and_mismatches() {
    eal();
    let any = Ipv4Rule::default();
    let rules = [
        Ipv4Rule {
            proto: Some(UDP),
            dport: (53, 53),
            priority: 10,
            userdata: 1,
            ..any
        },
        Ipv4Rule {
            src: (ip("10.0.0.0"), 8),
            dst: (ip("192.0.2.0"), 24),
            proto: Some(TCP),
            sport: (1024, 65535),
            dport: (80, 443),
            priority: 20,
            userdata: 2,
            ..any
        },
        Ipv4Rule {
            in_port: Some(3),
            priority: 5,
            userdata: 3,
            ..any
        },
        Ipv4Rule {
            dst: (ip("198.51.100.7"), 32),
            priority: 30,
            userdata: 4,
            ..any
        },
    ];
    let acl = Acl::build(&rules, -1).unwrap();
    assert_eq!(acl.len(), 4);
    let k = Ipv4Key::new;
    let cases = [
        // (key, expected userdata)
        (k(UDP, ip("1.2.3.4"), ip("5.6.7.8"), 5000, 53, 0), 1),
        (k(UDP, ip("1.2.3.4"), ip("5.6.7.8"), 5000, 54, 0), 0),
        (k(TCP, ip("1.2.3.4"), ip("5.6.7.8"), 5000, 53, 0), 0),
        (k(TCP, ip("10.9.8.7"), ip("192.0.2.1"), 40000, 443, 0), 2),
        (k(TCP, ip("10.9.8.7"), ip("192.0.2.1"), 40000, 80, 0), 2),
        (k(TCP, ip("10.9.8.7"), ip("192.0.2.1"), 40000, 444, 0), 0),
        (k(TCP, ip("10.9.8.7"), ip("192.0.2.1"), 1023, 443, 0), 0),
        (k(TCP, ip("11.9.8.7"), ip("192.0.2.1"), 40000, 443, 0), 0),
        (k(TCP, ip("10.9.8.7"), ip("192.0.3.1"), 40000, 443, 0), 0),
        (k(UDP, ip("10.9.8.7"), ip("192.0.2.1"), 40000, 443, 0), 0),
        // Ingress port 3: rule 3 unless a higher priority rule matches too.
        (k(47, ip("1.1.1.1"), ip("2.2.2.2"), 0, 0, 3), 3),
        (k(47, ip("1.1.1.1"), ip("2.2.2.2"), 0, 0, 2), 0),
        (k(UDP, ip("1.1.1.1"), ip("2.2.2.2"), 9, 53, 3), 1),
        (k(TCP, ip("10.0.0.1"), ip("192.0.2.1"), 2000, 80, 3), 2),
        // Host route, highest priority of all.
        (k(UDP, ip("1.1.1.1"), ip("198.51.100.7"), 9, 53, 3), 4),
        (k(UDP, ip("1.1.1.1"), ip("198.51.100.6"), 9, 53, 0), 1),
    ];
    let keys: Vec<Ipv4Key> = cases.iter().map(|c| c.0).collect();
    let got = classify(&acl, &keys);
    for (i, (key, want)) in cases.iter().enumerate() {
        assert_eq!(got[i], *want, "case {i}: {:?}", key.fields());
        assert_eq!(model(&rules, key), *want, "model, case {i}");
    }
}

#[test]
fn highest_priority_wins_whatever_the_insertion_order() {
    eal();
    let any = Ipv4Rule::default();
    let key = Ipv4Key::new(UDP, ip("10.1.1.1"), ip("10.2.2.2"), 1, 2, 0);
    for order in [[0usize, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let all = [
            Ipv4Rule {
                priority: 1,
                userdata: 11,
                ..any
            },
            Ipv4Rule {
                src: (ip("10.0.0.0"), 8),
                priority: 3,
                userdata: 33,
                ..any
            },
            Ipv4Rule {
                src: (ip("10.1.0.0"), 16),
                priority: 2,
                userdata: 22,
                ..any
            },
        ];
        let rules: Vec<Ipv4Rule> = order.iter().map(|&i| all[i]).collect();
        let acl = Acl::build(&rules, -1).unwrap();
        assert_eq!(classify(&acl, &[key]), vec![33], "order {order:?}");
    }
}

#[test]
fn bursts_longer_than_one_call_are_classified_entirely() {
    eal();
    let rules = [Ipv4Rule {
        proto: Some(UDP),
        userdata: 7,
        ..Default::default()
    }];
    let acl = Acl::build(&rules, -1).unwrap();
    let keys: Vec<Ipv4Key> = (0..200u32)
        .map(|i| Ipv4Key::new(if i % 3 == 0 { TCP } else { UDP }, i, i, 1, 1, 0))
        .collect();
    let got = classify(&acl, &keys);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(*g, if i % 3 == 0 { 0 } else { 7 }, "key {i}");
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random rules in a small value space so that keys hit several of them at once.
fn random_rules(rng: &mut Rng, n: usize) -> Vec<Ipv4Rule> {
    let protos = [None, Some(TCP), Some(UDP), Some(1)];
    (0..n)
        .map(|i| {
            let len = |rng: &mut Rng| [0u8, 8, 16, 24, 32][rng.below(5) as usize];
            let addr = |rng: &mut Rng, l: u8| {
                let a =
                    0x0a00_0000 | (rng.below(4) << 16 | rng.below(4) << 8 | rng.below(4)) as u32;
                if l == 0 {
                    0
                } else {
                    a & (u32::MAX << (32 - l))
                }
            };
            let range = |rng: &mut Rng| match rng.below(3) {
                0 => (0, u16::MAX),
                1 => {
                    let p = rng.below(8) as u16 * 100;
                    (p, p)
                }
                _ => {
                    let lo = rng.below(8) as u16 * 100;
                    (lo, lo + rng.below(400) as u16)
                }
            };
            let (sl, dl) = (len(rng), len(rng));
            Ipv4Rule {
                proto: protos[rng.below(4) as usize],
                src: (addr(rng, sl), sl),
                dst: (addr(rng, dl), dl),
                sport: range(rng),
                dport: range(rng),
                in_port: if rng.below(4) == 0 {
                    Some(rng.below(3) as u16)
                } else {
                    None
                },
                // Distinct priorities, in an order unrelated to the list order.
                priority: ((i as u64 * 7919) % n as u64) as u32 + 1,
                userdata: i as u32 + 1,
            }
        })
        .collect()
}

fn random_keys(rng: &mut Rng, n: usize) -> Vec<Ipv4Key> {
    let protos = [TCP, UDP, 1, 47];
    (0..n)
        .map(|_| {
            let a = |rng: &mut Rng| {
                0x0a00_0000 | (rng.below(4) << 16 | rng.below(4) << 8 | rng.below(4)) as u32
            };
            let p = |rng: &mut Rng| rng.below(8) as u16 * 100 + rng.below(3) as u16 * 150;
            Ipv4Key::new(
                protos[rng.below(4) as usize],
                a(rng),
                a(rng),
                p(rng),
                p(rng),
                rng.below(3) as u16,
            )
        })
        .collect()
}

#[test]
fn random_rule_sets_agree_with_the_reference_matcher() {
    eal();
    let mut rng = Rng(42);
    for n in [1usize, 10, 300] {
        let rules = random_rules(&mut rng, n);
        let acl = Acl::build(&rules, -1).unwrap();
        let keys = random_keys(&mut rng, 4000);
        let got = classify(&acl, &keys);
        let mut matched = 0;
        for (i, k) in keys.iter().enumerate() {
            let want = model(&rules, k);
            matched += usize::from(want != 0);
            assert_eq!(got[i], want, "{n} rules, key {:?}", k.fields());
        }
        // The value space is small on purpose: most keys must hit some rule.
        if n == 300 {
            assert!(matched > 2000, "only {matched} of 4000 keys matched");
        }
    }
}

#[test]
fn ten_thousand_rules_build_and_classify() {
    eal();
    let any = Ipv4Rule::default();
    // 10,000 /32 source + UDP destination-port rules, plus a catch-all at the lowest priority.
    let mut rules: Vec<Ipv4Rule> = (0..10_000u32)
        .map(|i| Ipv4Rule {
            proto: Some(UDP),
            src: (0x0a00_0000 + i, 32),
            dport: (1000 + (i % 50) as u16, 1000 + (i % 50) as u16 + 9),
            priority: 10_001 - i,
            userdata: i + 1,
            ..any
        })
        .collect();
    rules.push(Ipv4Rule {
        priority: 1,
        userdata: 10_001,
        ..any
    });
    let acl = Acl::build(&rules, -1).unwrap();
    assert_eq!(acl.len(), 10_001);
    let mut rng = Rng(7);
    let keys: Vec<Ipv4Key> = (0..20_000)
        .map(|_| {
            let i = rng.below(11_000) as u32;
            Ipv4Key::new(
                if rng.below(8) == 0 { TCP } else { UDP },
                0x0a00_0000 + i,
                ip("192.0.2.1"),
                4000,
                1000 + rng.below(70) as u16,
                0,
            )
        })
        .collect();
    let got = classify(&acl, &keys);
    let mut specific = 0;
    for (i, k) in keys.iter().enumerate() {
        // Closed form of the rule set: source i < 10,000, UDP, port in rule i's range.
        let (proto, src, _, _, dport, _) = k.fields();
        let r = src - 0x0a00_0000;
        let lo = 1000 + (r % 50) as u16;
        let want = if proto == UDP && r < 10_000 && (lo..=lo + 9).contains(&dport) {
            r + 1
        } else {
            10_001
        };
        // The generic reference matcher too, on a sample (it scans all 10,001 rules).
        if i % 16 == 0 {
            assert_eq!(model(&rules, k), want, "closed form vs model");
        }
        specific += usize::from(want != 10_001);
        assert_eq!(got[i], want, "key {:?}", k.fields());
    }
    // About 10/11 (source in range) * 7/8 (UDP) * 10/70 (port in the rule's range) = 11 %.
    assert!(specific > 1500, "only {specific} keys hit a specific rule");
}

#[test]
fn one_context_classifies_on_several_threads_at_once() {
    eal();
    let mut rng = Rng(99);
    let rules = random_rules(&mut rng, 200);
    let acl = Arc::new(Acl::build(&rules, -1).unwrap());
    let keys = Arc::new(random_keys(&mut rng, 5000));
    let want: Vec<u32> = keys.iter().map(|k| model(&rules, k)).collect();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (acl, keys) = (acl.clone(), keys.clone());
            std::thread::spawn(move || {
                let mut last = Vec::new();
                for _ in 0..20 {
                    last = classify(&acl, &keys);
                }
                last
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
}

#[test]
fn invalid_rules_and_empty_sets() {
    eal();
    let bad = Ipv4Rule {
        dst: (0, 40),
        ..Default::default()
    };
    let e = Acl::build(&[Ipv4Rule::default(), bad], -1).unwrap_err();
    assert!(e.to_string().contains("rule 1"), "{e}");
    let empty = Acl::build(&[], -1).unwrap();
    assert!(empty.is_empty());
    assert_eq!(classify(&empty, &[Ipv4Key::default(); 5]), vec![0; 5]);
    // Contexts get distinct names: two builds of the same rules coexist.
    let a = Acl::build(&[Ipv4Rule::default()], -1).unwrap();
    let b = Acl::build(&[Ipv4Rule::default()], -1).unwrap();
    assert_ne!(a.name(), b.name());
    drop(a);
    assert_eq!(classify(&b, &[Ipv4Key::default()]), vec![1]);
}

#[test]
fn every_classify_method_dpdk_accepts_gives_the_same_results() {
    eal();
    let mut rng = Rng(7);
    let rules = random_rules(&mut rng, 200);
    let keys = random_keys(&mut rng, 1000);
    let want: Vec<u32> = keys.iter().map(|k| model(&rules, k)).collect();
    let mut acl = Acl::build(&rules, -1).unwrap();
    // Build picked the first method of the preference order that DPDK accepts.
    let picked = acl.alg().expect("a method is set");
    let mut accepted = Vec::new();
    for alg in Alg::PREFERENCE {
        if acl.set_alg(alg).is_err() {
            // A refused method leaves the current one in place.
            assert_eq!(acl.alg(), accepted.last().copied().or(Some(picked)));
            continue;
        }
        assert_eq!(acl.alg(), Some(alg));
        accepted.push(alg);
        // Burst lengths that take each method's full-width, narrower and scalar paths.
        for len in [1usize, 3, 8, 16, 31, 32, 64, 1000] {
            let got = classify(&acl, &keys[..len]);
            assert_eq!(got, want[..len], "{alg}, {len} keys");
        }
    }
    assert_eq!(accepted.first(), Some(&picked));
    assert!(accepted.contains(&Alg::Scalar), "{accepted:?}");
    // Beyond 256 bits only with EAL's --force-max-simd-bitwidth=512 (not given here).
    assert_eq!(dpdk::acl::max_simd_bitwidth(), 256);
    assert!(!accepted.contains(&Alg::Avx512x32));
    for alg in Alg::PREFERENCE {
        assert_eq!(Alg::from_name(alg.name()), Some(alg));
    }
    // An empty rule set has no context and accepts no method.
    let mut empty = Acl::build(&[], -1).unwrap();
    assert_eq!(empty.alg(), None);
    assert!(empty.set_alg(Alg::Scalar).is_err());
}

fn classify6(acl: &Acl6, keys: &[Ipv6Key]) -> Vec<u32> {
    let mut r = vec![u32::MAX; keys.len()];
    acl.classify(keys, &mut r);
    r
}

fn model6(rules: &[Ipv6Rule], k: &Ipv6Key) -> u32 {
    rules
        .iter()
        .filter(|r| r.matches(k))
        .max_by_key(|r| r.priority)
        .map(|r| r.userdata)
        .unwrap_or(0)
}

fn ip6(s: &str) -> u128 {
    u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
}

#[test]
fn ipv6_prefixes_match_across_the_32_bit_groups() {
    eal();
    let base = ip6("2001:db8:89ab:cdef:0123:4567:fedc:ba98");
    for l in [
        0u8, 1, 8, 16, 31, 32, 33, 47, 48, 63, 64, 65, 95, 96, 97, 120, 127, 128,
    ] {
        let mask = if l == 0 { 0 } else { u128::MAX << (128 - l) };
        // One source rule and one destination rule of that length, each its own result.
        let rules = [
            Ipv6Rule {
                src: (base & mask, l),
                priority: 2,
                userdata: 1,
                ..Default::default()
            },
            Ipv6Rule {
                dst: (base & mask, l),
                priority: 1,
                userdata: 2,
                ..Default::default()
            },
        ];
        let acl = Acl6::build(&rules, -1).unwrap();
        // Differs from base in every bit: outside every prefix but /0.
        let other = !base;
        let inside = |a: u128| (a & mask) == (base & mask);
        // Source in the prefix: rule 1; else destination in it: rule 2.
        let expect = |s: u128, d: u128| {
            if inside(s) {
                1
            } else if inside(d) {
                2
            } else {
                0
            }
        };
        let mut pairs = vec![(base, other), (other, base)];
        if l > 0 {
            // The last bit inside the prefix flipped: no longer in it.
            let bit = 1u128 << (128 - l);
            pairs.extend([(base ^ bit, other), (other, base ^ bit)]);
        }
        if l < 128 {
            // The first bit outside flipped: still in it.
            let bit = 1u128 << (127 - l);
            pairs.extend([(base ^ bit, other), (other, base ^ bit)]);
        }
        let keys: Vec<Ipv6Key> = pairs
            .iter()
            .map(|&(s, d)| Ipv6Key::new(6, s, d, 1, 2, 0))
            .collect();
        let want: Vec<u32> = pairs.iter().map(|&(s, d)| expect(s, d)).collect();
        if l > 0 {
            assert_eq!(want[2..4], [0, 0], "/{l}: flipped inside");
        }
        let got = classify6(&acl, &keys);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(model6(&rules, k), want[i], "model, /{l}, key {i}");
        }
        assert_eq!(got, want, "/{l}");
    }
}

#[test]
fn ipv6_rule_fields_and_bad_rules() {
    eal();
    let any = Ipv6Rule::default();
    let rules = [
        Ipv6Rule {
            proto: Some(UDP),
            dport: (53, 53),
            in_port: Some(2),
            priority: 3,
            userdata: 1,
            ..any
        },
        Ipv6Rule {
            proto: Some(58),
            sport: (7, 7),
            dport: (128 << 8, (128 << 8) | 255),
            priority: 2,
            userdata: 2,
            ..any
        },
    ];
    let acl = Acl6::build(&rules, -1).unwrap();
    let (a, b) = (ip6("2001:db8::1"), ip6("2001:db8::2"));
    let keys = [
        Ipv6Key::new(UDP, a, b, 9, 53, 2),
        Ipv6Key::new(UDP, a, b, 9, 53, 1),
        Ipv6Key::new(TCP, a, b, 9, 53, 2),
        Ipv6Key::new(58, a, b, 7, 128 << 8, 0),
        Ipv6Key::new(58, a, b, 8, 128 << 8, 0),
        Ipv6Key::new(58, a, b, 7, 129 << 8, 0),
    ];
    assert_eq!(classify6(&acl, &keys), vec![1, 0, 0, 2, 0, 0]);
    for bad in [
        Ipv6Rule {
            src: (0, 129),
            ..any
        },
        Ipv6Rule {
            dport: (2, 1),
            ..any
        },
        Ipv6Rule { userdata: 0, ..any },
    ] {
        assert!(Acl6::build(&[bad], -1).is_err(), "{bad:?}");
    }
    let empty = Acl6::build(&[], -1).unwrap();
    assert_eq!(classify6(&empty, &keys[..2]), vec![0, 0]);
}

/// Random IPv6 rules in a small value space: addresses differ in a few bits of each 32-bit
/// group, so prefixes of every length in between overlap.
fn random_rules6(rng: &mut Rng, n: usize) -> Vec<Ipv6Rule> {
    let protos = [None, Some(TCP), Some(UDP), Some(58)];
    (0..n)
        .map(|i| {
            let len =
                |rng: &mut Rng| [0u8, 16, 32, 40, 64, 80, 96, 112, 128][rng.below(9) as usize];
            let addr = |rng: &mut Rng, l: u8| {
                let a = random_addr6(rng);
                if l == 0 {
                    0
                } else {
                    a & (u128::MAX << (128 - l))
                }
            };
            let range = |rng: &mut Rng| match rng.below(3) {
                0 => (0, u16::MAX),
                1 => {
                    let p = rng.below(8) as u16 * 100;
                    (p, p)
                }
                _ => {
                    let lo = rng.below(8) as u16 * 100;
                    (lo, lo + rng.below(400) as u16)
                }
            };
            let (sl, dl) = (len(rng), len(rng));
            Ipv6Rule {
                proto: protos[rng.below(4) as usize],
                src: (addr(rng, sl), sl),
                dst: (addr(rng, dl), dl),
                sport: range(rng),
                dport: range(rng),
                in_port: if rng.below(4) == 0 {
                    Some(rng.below(3) as u16)
                } else {
                    None
                },
                priority: ((i as u64 * 7919) % n as u64) as u32 + 1,
                userdata: i as u32 + 1,
            }
        })
        .collect()
}

/// 2001:db8:X:Y:Z::W with each of X, Y, Z, W one of a few values.
fn random_addr6(rng: &mut Rng) -> u128 {
    let g = |rng: &mut Rng| rng.below(3) as u128;
    (0x2001_0db8u128 << 96) | (g(rng) << 80) | (g(rng) << 64) | (g(rng) << 48) | g(rng)
}

#[test]
fn random_ipv6_rule_sets_agree_with_the_reference_matcher_for_every_method() {
    eal();
    let mut rng = Rng(1234);
    for n in [1usize, 20, 300] {
        let rules = random_rules6(&mut rng, n);
        let mut acl = Acl6::build(&rules, -1).unwrap();
        let keys: Vec<Ipv6Key> = (0..3000)
            .map(|_| {
                let p = |rng: &mut Rng| rng.below(8) as u16 * 100 + rng.below(3) as u16 * 150;
                Ipv6Key::new(
                    [TCP, UDP, 58, 47][rng.below(4) as usize],
                    random_addr6(&mut rng),
                    random_addr6(&mut rng),
                    p(&mut rng),
                    p(&mut rng),
                    rng.below(3) as u16,
                )
            })
            .collect();
        let want: Vec<u32> = keys.iter().map(|k| model6(&rules, k)).collect();
        if n == 300 {
            let matched = want.iter().filter(|w| **w != 0).count();
            assert!(matched > 1000, "only {matched} of 3000 keys matched");
        }
        let mut methods = 0;
        for alg in Alg::PREFERENCE {
            if acl.set_alg(alg).is_err() {
                continue;
            }
            methods += 1;
            for len in [1usize, 7, 16, 32, 33, 3000] {
                assert_eq!(
                    classify6(&acl, &keys[..len]),
                    want[..len],
                    "{alg}, {n} rules"
                );
            }
        }
        assert!(methods >= 2, "at least one SIMD method and scalar");
    }
}
