//! IPv4 longest-prefix match: `rte_fib` (DIR24_8 over a trie) against `rte_lpm`, the two DPDK
//! libraries the forward table can sit on (issue 17: 100k routes from a routing daemon in at
//! most 2 s).
//!
//!   cargo run --release --example fib4_bench [ROUTES]     (default 100000)
//!
//! Table: ROUTES prefixes shaped like a routing daemon's feed (as the fib_sync measurement in
//! e2e_fibsync_netns.rs: /24s, then /25s for the rest, from 10.0.0.0 up), next hops 0..1023,
//! added in a shuffled order, plus a default route. Figures: the time to build the table, to
//! delete and re-add 1000 of its routes, and TSC cycles per lookup for the inline lookup the
//! data path uses (`lookup_one`, median of 9 rounds over 65,536 probes) and for DPDK's bulk
//! lookup in bursts of 32. Both libraries' answers are checked against each other.

use std::time::Instant;

use dpdk::fib::{Fib, FibConfig};
use dpdk::lpm::{Lpm, LpmConfig};

const BURST: usize = 32;
const ROUNDS: usize = 9;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// (prefix, depth, next hop): 65,536 /24s at most, the rest /25s, shuffled.
fn routes(n: usize, rng: &mut Rng) -> Vec<(u32, u8, u32)> {
    let n24 = n.min(65_536);
    let mut v: Vec<(u32, u8, u32)> = (0..n24)
        .map(|i| (0x0a00_0000 + ((i as u32) << 8), 24, (i % 1024) as u32))
        .collect();
    for i in 0..n - n24 {
        let p = 0x0b00_0000 + ((i as u32 / 2) << 8) + (i as u32 % 2) * 128;
        v.push((p, 25, (i % 1024) as u32));
    }
    for i in (1..v.len()).rev() {
        v.swap(i, rng.next() as usize % (i + 1));
    }
    v
}

/// Cycles per lookup of `f` over `probes`, median (min, max) of [`ROUNDS`] rounds.
fn cycles(probes: &[u32], mut f: impl FnMut(&[u32], &mut [u32])) -> (f64, f64, f64) {
    let mut out = [0u32; BURST];
    let mut r: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = dpdk::rdtsc();
            for ch in probes.chunks(BURST) {
                f(ch, &mut out[..ch.len()]);
                std::hint::black_box(&out);
            }
            (dpdk::rdtsc() - t) as f64 / probes.len() as f64
        })
        .collect();
    r.sort_by(|a, b| a.total_cmp(b));
    (r[ROUNDS / 2], r[0], r[ROUNDS - 1])
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROUTES: a number"))
        .unwrap_or(100_000);
    let (_eal, _lock) = dpdk::Eal::init_private("fib4bench", &[]).expect("EAL init");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let rs = routes(n, &mut rng);
    let long = rs.iter().filter(|r| r.1 > 24).count() as u32;
    let (max, tbl8s) = (n as u32 + n as u32 / 4 + 64, long / 2 + long / 8 + 64);
    let probes: Vec<u32> = (0..65_536)
        .map(|i| {
            let r = rs[rng.next() as usize % rs.len()];
            // 15 of 16 inside a route, 1 of 16 anywhere (mostly the default route).
            if i % 16 == 0 {
                rng.next() as u32
            } else {
                r.0 | (rng.next() as u32 & (u32::MAX >> r.1))
            }
        })
        .collect();
    println!("{n} routes ({long} /25s) + a default route; 65,536 probes, bursts of {BURST}");
    println!("library      build s   1000 del+add ms   lookup_one cyc (min, max)   bulk cyc");

    let t = Instant::now();
    let mut fib = Fib::new(FibConfig {
        max_routes: max,
        tbl8s,
        ..Default::default()
    })
    .expect("rte_fib");
    for &(p, d, h) in &rs {
        fib.add(p, d, h).expect("rte_fib_add");
    }
    fib.add(0, 0, 4000).unwrap();
    let fib_build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for &(p, d, h) in &rs[..1000.min(rs.len())] {
        fib.delete(p, d).unwrap();
        fib.add(p, d, h).unwrap();
    }
    let fib_churn = t.elapsed().as_secs_f64() * 1e3;
    let fib_one = cycles(&probes, |ips, out| {
        for (o, ip) in out.iter_mut().zip(ips) {
            *o = fib.lookup_one(*ip);
        }
    });
    let fib_bulk = cycles(&probes, |ips, out| fib.lookup_bulk(ips, out));
    let fib_answers: Vec<u32> = probes.iter().map(|ip| fib.lookup_one(*ip)).collect();
    drop(fib);
    println!(
        "rte_fib      {fib_build:7.3}   {fib_churn:15.1}   {:10.1} ({:.1}, {:.1})   {:8.1}",
        fib_one.0, fib_one.1, fib_one.2, fib_bulk.0
    );

    let t = Instant::now();
    let mut lpm = Lpm::new(LpmConfig {
        max_rules: max,
        tbl8s,
        ..Default::default()
    })
    .expect("rte_lpm");
    for &(p, d, h) in &rs {
        lpm.add(p, d, h).expect("rte_lpm_add");
    }
    lpm.add(0, 0, 4000).unwrap();
    let lpm_build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for &(p, d, h) in &rs[..1000.min(rs.len())] {
        lpm.delete(p, d).unwrap();
        lpm.add(p, d, h).unwrap();
    }
    let lpm_churn = t.elapsed().as_secs_f64() * 1e3;
    let lpm_one = cycles(&probes, |ips, out| {
        for (o, ip) in out.iter_mut().zip(ips) {
            *o = lpm.lookup_one(*ip);
        }
    });
    let lpm_bulk = cycles(&probes, |ips, out| lpm.lookup_bulk(ips, out));
    println!(
        "rte_lpm      {lpm_build:7.3}   {lpm_churn:15.1}   {:10.1} ({:.1}, {:.1})   {:8.1}",
        lpm_one.0, lpm_one.1, lpm_one.2, lpm_bulk.0
    );
    let differ = probes
        .iter()
        .zip(&fib_answers)
        .filter(|(ip, a)| lpm.lookup_one(**ip) != **a)
        .count();
    assert_eq!(differ, 0, "rte_fib and rte_lpm disagree on {differ} probes");
    println!("answers: identical on all {} probes", probes.len());
}
