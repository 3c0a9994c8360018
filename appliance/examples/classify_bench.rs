//! Classify stage micro-benchmark: the stage alone on real mbufs, no PMD, no worker loop.
//!
//! `classify_bench [RULES] [ROUNDS]`: the full-chain benchmark's ACL (`bench/lib/bench.py`:
//! RULES seeded random rules, source prefixes in 172.16/12, destinations in 192.168/16, TCP or
//! UDP, destination-port ranges, half permit half deny, none matching; default permit) and
//! 2048 64-byte UDP frames from 10.0.x.y:1024+ to 198.18.1.1:9. Each round copies the frames
//! into mbufs burst by burst (32 packets, untimed, with fresh metadata as the runtime writes
//! it on receive) and times each `Classify::process` call with the TSC. Prints TSC cycles per
//! packet: the minimum over the rounds (the machine is shared: noise only ever adds) and the
//! median, and the `rte_acl` classify method in use. `CLASSIFY_BENCH_SIMD=512` runs EAL with
//! `--force-max-simd-bitwidth=512` (AVX-512 with 32 keys in flight where the CPU has it).
//! `CLASSIFY_BENCH_FAMILY=ipv6` makes rules and frames IPv6 (the same random rules with the
//! IPv4 prefix's bits after 2001:db8::/32, prefix lengths + 32: sources under
//! 2001:db8:ac10::/44, destinations under 2001:db8:c0a8::/48; 66-byte
//! UDP frames from 2001:db8:a::/64 to 2001:db8:c612::101); `mixed` alternates an IPv4 and an
//! IPv6 frame and installs both rule sets (RULES each).
//! Checks that every packet was permitted, counted under the default, with no class.
//!
//! The EAL runs `--no-pci --in-memory` on lcore 0, holding the busy-polling lock.

use std::net::Ipv4Addr;
use std::sync::Arc;

use dpdk::{Mbuf, Mempool, PktMeta};
use pollfwd_nf::classify::{
    AclTable, Action, Classify, Family, Install, Match, TableRule, new_hits,
};
use pollfwd_nf::nat::testpkt;
use pollfwd_pipeline::Verdict;
use pollfwd_pipeline::stage::Harness;

const BURST: usize = 32;
const FRAMES: usize = 2048;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);
    let simd512 = std::env::var("CLASSIFY_BENCH_SIMD").is_ok_and(|v| v == "512");
    let extra: &[&str] = if simd512 {
        &["--force-max-simd-bitwidth=512"]
    } else {
        &[]
    };
    let (_eal, _lock) = dpdk::Eal::init_private("clsbench", extra).expect("EAL init");
    let pool = Mempool::create("clsbench", 4095, 256, 2176, -1).expect("mempool");

    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(n);
    let mut rnd = |m: u32| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % u64::from(m)) as u32
    };
    let family = std::env::var("CLASSIFY_BENCH_FAMILY").unwrap_or_else(|_| "ipv4".into());
    let (v4, v6) = match family.as_str() {
        "ipv4" => (true, false),
        "ipv6" => (false, true),
        "mixed" => (true, true),
        f => panic!("CLASSIFY_BENCH_FAMILY={f}: ipv4, ipv6 or mixed"),
    };
    let rules4: Vec<TableRule> = (0..n)
        .map(|i| {
            let sl = [16u8, 24, 28, 32][rnd(4) as usize];
            let dl = [16u8, 24, 32][rnd(3) as usize];
            let mask = |l: u8| u32::MAX << (32 - l);
            let lo = 1 + rnd(60000) as u16;
            let hi = lo + [0u16, 0, 10, 100, 1000][rnd(5) as usize];
            TableRule {
                id: i + 1,
                m: Match {
                    // IPv4 prefixes: an IPv4 rule, as the configuration compiles it.
                    family: Family::Ipv4,
                    proto: Some(if rnd(2) == 0 { 6 } else { 17 }),
                    src: ((0xac10_0000 | rnd(1 << 20)) & mask(sl), sl),
                    dst: ((0xc0a8_0000 | rnd(1 << 16)) & mask(dl), dl),
                    dport: (lo, hi),
                    ..Match::default()
                },
                priority: 0,
                action: if rnd(2) == 0 {
                    Action::PERMIT
                } else {
                    Action::DENY
                },
            }
        })
        .collect();
    // The IPv6 twin of an IPv4 rule: its prefixes moved under 2001:db8::/32 (+96 bits).
    let to6 = |(a, l): (u32, u8)| {
        (
            (0x2001_0db8u128 << 96) | (u128::from(a) << 64 >> 16),
            l + 96,
        )
    };
    let rules6: Vec<TableRule> = rules4
        .iter()
        .map(|r| TableRule {
            id: r.id + n,
            m: Match {
                family: Family::Ipv6,
                src: (0, 0),
                dst: (0, 0),
                src6: to6(r.m.src),
                dst6: to6(r.m.dst),
                ..r.m
            },
            ..*r
        })
        .collect();
    let mut rules = Vec::new();
    if v4 {
        rules.extend_from_slice(&rules4);
    }
    if v6 {
        rules.extend_from_slice(&rules6);
    }
    let table = Arc::new(AclTable::build(&rules, Action::PERMIT).expect("table"));
    let hits = new_hits(&table);
    let alg = table.alg().map_or("none", |a| a.name());
    let mut stage = Classify::new(Install {
        table: table.clone(),
        hits: hits.clone(),
    })
    .expect("stage");

    let frames: Vec<Vec<u8>> = (0..FRAMES)
        .map(|k| {
            if !v6 || (v4 && k % 2 == 0) {
                // 14 + 20 + 8 + 18 = 60 bytes.
                return testpkt::udp(
                    (Ipv4Addr::from(0x0a00_0001 + k as u32), 1024 + k as u16),
                    (Ipv4Addr::new(198, 18, 1, 1), 9),
                    &[0u8; 18],
                );
            }
            // 14 + 40 + 8 + 4 = 66 bytes (the ACL reads no checksum).
            let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd];
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 12, 17, 64]);
            f.extend_from_slice(&((0x2001_0db8_000a_u128 << 80) | (k as u128 + 1)).to_be_bytes());
            f.extend_from_slice(&((0x2001_0db8_c612_u128 << 80) | 0x101).to_be_bytes());
            f.extend_from_slice(&(1024 + k as u16).to_be_bytes());
            f.extend_from_slice(&[0, 9, 0, 12, 0, 0, 0, 0, 0, 0]);
            f
        })
        .collect();

    let mut h = Harness::new(pool, dpdk::tsc_hz());
    let mut v = [Verdict::Continue; BURST];
    let mut per_round = Vec::with_capacity(rounds);
    let mut done = 0u64;
    for _ in 0..rounds {
        let mut cycles = 0u64;
        for b in frames.chunks(BURST) {
            let now = dpdk::rdtsc();
            let mut pkts: Vec<Mbuf> = b
                .iter()
                .map(|f| {
                    let mut m = pool.alloc().expect("mbuf");
                    assert!(m.set_len(f.len() as u16));
                    m.data_mut().copy_from_slice(f);
                    *m.meta_mut() = PktMeta::fresh(0, now);
                    m
                })
                .collect();
            v.fill(Verdict::Continue);
            let t0 = dpdk::rdtsc();
            let all = h.process(&mut stage, &mut pkts, &mut v[..b.len()], (now, 0, true));
            cycles += dpdk::rdtsc() - t0;
            for (i, m) in pkts.iter().enumerate() {
                assert_eq!(all.unwrap_or(v[i]), Verdict::Continue, "packet {i}");
                assert_eq!(m.meta().class, 0);
            }
            done += pkts.len() as u64;
        }
        per_round.push(cycles as f64 / FRAMES as f64);
    }
    assert_eq!(hits[0].packets.get(), done, "all counted under the default");
    per_round.sort_by(f64::total_cmp);
    println!(
        "classify stage, {family}, {n} rules, method {alg}, {rounds} rounds of {FRAMES} packets: \
         min {:.2} median {:.2} TSC cycles/packet (incl. ~2 TSC reads per burst of {BURST})",
        per_round[0],
        per_round[rounds / 2]
    );
}
