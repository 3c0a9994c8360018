//! Neighbour table lookup micro-benchmark: the per-packet `NeighTable::lookup` alone.
//!
//! `neigh_bench [ROUNDS]`: a 4096-slot table (the default capacity) holding 1000 learnt
//! neighbours; each round times 4 Mi lookups with `Instant` in three patterns: one next hop
//! (the common case, a hot slot), 1000 next hops in a scattered order, and absent addresses.
//! First the IPv4 table, then the IPv6 one (neighbours in one /64, as on a link). Prints
//! nanoseconds per lookup: the minimum over the rounds (the machine is shared: noise only
//! ever adds) and the median. No DPDK, no EAL: plain memory.

use std::hint::black_box;
use std::time::Instant;

use pollfwd_nf::forward::neigh::{Lookup, NeighAddr, NeighTable, NeighTiming};

const LOOKUPS: usize = 1 << 22;
const NEIGHBOURS: u32 = 1000;
const HZ: u64 = 1_000_000_000;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROUNDS: a number"))
        .unwrap_or(15);
    println!("IPv4");
    run(
        rounds,
        |k| 0x0a00_0000 + k * 7 + 1,
        |k| 0xc0a8_0000 + k * 13 + 5,
    );
    println!("IPv6");
    let net: u128 = 0x2001_0db8_0001_0000 << 64;
    run(
        rounds,
        |k| net | (k * 7 + 1) as u128,
        |k| net | 0x1_0000 | (k * 13 + 5) as u128,
    );
}

/// Learns `NEIGHBOURS` addresses `ip(k)`, then times lookups (`absent(k)`: never learnt).
fn run<A: NeighAddr>(rounds: usize, ip: impl Fn(u32) -> A, absent: impl Fn(u32) -> A) {
    let t = NeighTable::<A>::new(4096, NeighTiming::new(300, 1000, 3, HZ));
    for k in 0..NEIGHBOURS {
        let b = k.to_be_bytes();
        assert!(t.learn(ip(k), [2, 0, b[0], b[1], b[2], b[3]], 1, 1, true));
    }
    // The scattered order: a fixed permutation of the learnt addresses.
    let scattered: Vec<A> = (0..NEIGHBOURS).map(|k| ip(k * 389 % NEIGHBOURS)).collect();
    let absent: Vec<A> = (0..NEIGHBOURS).map(absent).collect();
    let now = 2 * HZ;
    let one = [ip(17)];
    for (name, set, hit) in [
        ("one next hop", &one[..], true),
        ("1000 next hops", &scattered[..], true),
        ("absent", &absent[..], false),
    ] {
        let mut ns = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let mut hits = 0usize;
            let start = Instant::now();
            for i in 0..LOOKUPS {
                let a = black_box(set[i % set.len()]);
                if let Lookup::Hit { .. } = black_box(t.lookup(a, now)) {
                    hits += 1;
                }
            }
            let el = start.elapsed();
            assert_eq!(hits, if hit { LOOKUPS } else { 0 }, "{name}");
            ns.push(el.as_nanos() as f64 / LOOKUPS as f64);
        }
        ns.sort_by(f64::total_cmp);
        println!(
            "{name:>16}: {:.2} ns/lookup min, {:.2} median ({rounds} rounds of {LOOKUPS})",
            ns[0],
            ns[rounds / 2]
        );
    }
}
