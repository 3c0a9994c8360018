//! Neighbour table lookup micro-benchmark: the per-packet `NeighTable::lookup` alone.
//!
//! `neigh_bench [ROUNDS]`: a 4096-slot table (the default capacity) holding 1000 learnt
//! neighbours; each round times 4 Mi lookups with `Instant` in three patterns: one next hop
//! (the common case, a hot slot), 1000 next hops in a scattered order, and absent addresses.
//! Prints nanoseconds per lookup: the minimum over the rounds (the machine is shared: noise
//! only ever adds) and the median. No DPDK, no EAL: plain memory.

use std::hint::black_box;
use std::time::Instant;

use pollfwd_nf::forward::neigh::{Lookup, NeighTable, NeighTiming};

const LOOKUPS: usize = 1 << 22;
const NEIGHBOURS: u32 = 1000;
const HZ: u64 = 1_000_000_000;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROUNDS: a number"))
        .unwrap_or(15);
    let t = NeighTable::new(4096, NeighTiming::new(300, 1000, 3, HZ));
    let ip = |k: u32| 0x0a00_0000 + k * 7 + 1;
    for k in 0..NEIGHBOURS {
        let b = k.to_be_bytes();
        assert!(t.learn(ip(k), [2, 0, b[0], b[1], b[2], b[3]], 1, 1, true));
    }
    // The scattered order: a fixed permutation of the learnt addresses.
    let scattered: Vec<u32> = (0..NEIGHBOURS).map(|k| ip(k * 389 % NEIGHBOURS)).collect();
    let absent: Vec<u32> = (0..NEIGHBOURS).map(|k| 0xc0a8_0000 + k * 13 + 5).collect();
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
