//! Cost of one `rte_acl_classify` call per burst for each classify method this CPU and DPDK
//! build accept, with a seeded rule set like the benchmarks' (random source/destination
//! prefixes and destination-port ranges, TCP or UDP, none matching the keys).
//!
//!   cargo run --release --example acl_algs [RULES] [BURST]     (default 1000 rules, burst 32)
//!
//! Runs EAL with `--force-max-simd-bitwidth=512` so that every method the CPU has is tried.
//! Prints cycles per key (TSC) per method, median of 9 rounds of 200,000 bursts.

use dpdk::acl::{Acl, Alg, Ipv4Key, Ipv4Rule};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(1000, |a| a.parse().expect("RULES"));
    let burst: usize = args.next().map_or(32, |a| a.parse().expect("BURST"));
    let _eal =
        dpdk::Eal::init_private("acl-algs", &["--force-max-simd-bitwidth=512"]).expect("EAL init");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut rnd = move |m: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % u64::from(m)) as u32
    };
    let rules: Vec<Ipv4Rule> = (0..n)
        .map(|i| {
            let sl = [16u8, 24, 28, 32][rnd(4) as usize];
            let dl = [16u8, 24, 32][rnd(3) as usize];
            let mask = |l: u8| u32::MAX << (32 - l);
            let lo = 1 + rnd(60000) as u16;
            let hi = lo + [0u16, 0, 10, 100, 1000][rnd(5) as usize];
            Ipv4Rule {
                proto: Some(if rnd(2) == 0 { 6 } else { 17 }),
                src: ((0xac10_0000 | rnd(1 << 20)) & mask(sl), sl),
                dst: ((0xc0a8_0000 | rnd(1 << 16)) & mask(dl), dl),
                dport: (lo, hi),
                priority: i as u32 + 1,
                userdata: i as u32 + 1,
                ..Default::default()
            }
        })
        .collect();
    let mut acl = Acl::build(&rules, -1).expect("build");
    println!(
        "{n} rules, burst {burst}, EAL max SIMD width {} bits; build picked {}",
        dpdk::acl::max_simd_bitwidth(),
        acl.alg().map_or("none", Alg::name)
    );
    let keys: Vec<Ipv4Key> = (0..4096u32)
        .map(|f| Ipv4Key::new(17, 0x0a00_0001 + f, 0xc612_0101, 1024 + f as u16, 9, 0))
        .collect();
    let mut res = vec![0u32; burst];
    for alg in Alg::PREFERENCE {
        if let Err(e) = acl.set_alg(alg) {
            println!("{:>10}: not available ({e})", alg.name());
            continue;
        }
        let mut rounds = Vec::new();
        for _ in 0..9 {
            let bursts = 200_000;
            let t0 = dpdk::rdtsc();
            for b in 0..bursts {
                let off = (b * burst) % (keys.len() - burst);
                acl.classify(&keys[off..off + burst], &mut res);
                std::hint::black_box(&res);
            }
            let t = dpdk::rdtsc() - t0;
            rounds.push(t as f64 / (bursts * burst) as f64);
        }
        rounds.sort_by(f64::total_cmp);
        println!(
            "{:>10}: {:6.1} cycles/key (min {:.1}, max {:.1})",
            alg.name(),
            rounds[4],
            rounds[0],
            rounds[8]
        );
    }
}
