//! IPv6 longest-prefix match: `rte_fib6` (trie; scalar and AVX-512 lookups, 2- and 4-byte
//! entries) against `rte_lpm6`, the two DPDK libraries issue 15 had to choose between.
//!
//!   cargo run --release --example fib6_bench [ROUTES] [BIG]     (default 10000 and 100000)
//!
//! Table: ROUTES random /48s (next hops 0..1023), 16 /64s inside some of them and a default
//! route. Probes: 65,536 addresses, 15/16 inside a random route (random host bits), 1/16
//! random (the default route's). Lookups in bursts of 32 through the same path the data path
//! takes (`Fib6::lookup_bulk`; for `rte_lpm6`, `rte_lpm6_lookup_bulk_func` plus the default
//! route's fix-up that a wrapper needs, as `rte_lpm6` refuses depth 0): TSC cycles per lookup,
//! median (min, max) of 9 rounds of 20,000 bursts, and Mlookups/s at the TSC rate. Every method's
//! results are checked against the first one's. Then the time to build a table of ROUTES and
//! of BIG routes with each library (one table alive at a time: BIG random /48s take ~3 tbl8
//! groups each, ~350 MiB of hugepages at 4 bytes per entry), and of deleting and re-adding
//! 1000 of their routes.
//!
//! Runs EAL with `--force-max-simd-bitwidth=512`, so that the AVX-512 lookup is tried where the
//! CPU has it.

use std::time::Instant;

use dpdk::ffi;
use dpdk::fib6::{Fib6, Fib6Config, Lookup, NextHopSize};

const BURST: usize = 32;

/// A burst lookup: addresses in, next hops out.
type LookupFn<'a> = dyn FnMut(&[[u8; 16]], &mut [u32]) + 'a;
const ROUNDS: usize = 9;
const BURSTS: usize = 20_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn addr(&mut self) -> u128 {
        u128::from(self.next()) << 64 | u128::from(self.next())
    }
}

/// (prefix, depth, next hop): `n` random /48s, 16 /64s inside the first ones, no default (the
/// callers add it: `rte_lpm6` cannot hold it).
fn routes(n: usize, seed: u64) -> Vec<(u128, u8, u32)> {
    let mut rng = Rng(seed);
    let mut seen = std::collections::HashSet::new();
    let mut v = Vec::with_capacity(n + 16);
    while v.len() < n {
        let p = rng.addr() & !(u128::MAX >> 48);
        if seen.insert(p) {
            v.push((p, 48, (v.len() % 1024) as u32));
        }
    }
    for i in 0..16 {
        let p = v[i].0 | (u128::from(rng.next() & 0xffff) << 64);
        v.push((p, 64, 1024 + i as u32));
    }
    v
}

const DEFAULT_NH: u32 = 2000;

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Cycles per lookup over ROUNDS rounds of BURSTS bursts; `f` looks up one burst.
fn time(probes: &[[u8; 16]], mut f: impl FnMut(&[[u8; 16]], &mut [u32])) -> (f64, f64, f64) {
    let mut out = [0u32; BURST];
    let mut rounds = Vec::new();
    let bursts_in = probes.len() / BURST;
    for _ in 0..ROUNDS {
        let t0 = dpdk::rdtsc();
        for b in 0..BURSTS {
            let off = (b % bursts_in) * BURST;
            f(&probes[off..off + BURST], &mut out);
            std::hint::black_box(&out);
        }
        let t = dpdk::rdtsc() - t0;
        rounds.push(t as f64 / (BURSTS * BURST) as f64);
    }
    median(rounds)
}

/// An `rte_lpm6` table as the benchmark needs it (the library refuses depth 0: the default
/// route is answered beside it, like `Lpm`'s).
struct Lpm6 {
    ptr: *mut ffi::rte_lpm6,
    default: u32,
}

impl Lpm6 {
    fn new(max_rules: u32, tbl8s: u32) -> Lpm6 {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = std::ffi::CString::new(format!(
            "bench_lpm6_{}",
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
        .unwrap();
        let cfg = ffi::rte_lpm6_config {
            max_rules,
            number_tbl8s: tbl8s,
            flags: 0,
        };
        // SAFETY: name and cfg are valid for the call (DPDK copies them); EAL is up.
        let ptr = unsafe { ffi::rte_lpm6_create(name.as_ptr(), ffi::SOCKET_ID_ANY, &cfg) };
        assert!(!ptr.is_null(), "rte_lpm6_create");
        Lpm6 {
            ptr,
            default: u32::MAX,
        }
    }

    fn delete(&mut self, a: [u8; 16], depth: u8) {
        // SAFETY: as in `add`.
        let rc = unsafe { ffi::rte_lpm6_delete(self.ptr, a.as_ptr(), depth) };
        assert_eq!(rc, 0, "rte_lpm6_delete");
    }

    fn add(&mut self, a: [u8; 16], depth: u8, nh: u32) {
        if depth == 0 {
            self.default = nh;
            return;
        }
        // SAFETY: ptr is a live table only this thread uses; `a` is 16 readable bytes.
        let rc = unsafe { ffi::rte_lpm6_add(self.ptr, a.as_ptr(), depth, nh) };
        assert_eq!(rc, 0, "rte_lpm6_add");
    }

    #[inline]
    fn lookup_bulk(&self, a: &[[u8; 16]], out: &mut [u32]) {
        let n = a.len().min(out.len());
        // SAFETY: ptr is a live table (read only); `a` holds n 16-byte addresses, which DPDK
        // reads only; out has room for n 32-bit results (int32_t, -1 for a miss).
        unsafe {
            ffi::rte_lpm6_lookup_bulk_func(
                self.ptr,
                a.as_ptr() as *mut [u8; 16],
                out.as_mut_ptr() as *mut i32,
                n as u32,
            )
        };
        for v in &mut out[..n] {
            if *v == u32::MAX {
                *v = self.default;
            }
        }
    }
}

impl Drop for Lpm6 {
    fn drop(&mut self) {
        // SAFETY: the table is live and no lookup runs any more.
        unsafe { ffi::rte_lpm6_free(self.ptr) }
    }
}

fn fib6(n: usize, size: NextHopSize, spare: u32) -> Fib6 {
    Fib6::new(Fib6Config {
        max_routes: n as u32 + 64,
        tbl8s: n as u32 * 3 + 1024 + spare,
        next_hop_size: size,
        ..Default::default()
    })
    .expect("rte_fib6_create")
}

fn build_fib6(r: &[(u128, u8, u32)], size: NextHopSize, spare: u32) -> (Fib6, f64) {
    let t0 = Instant::now();
    let mut t = fib6(r.len(), size, spare);
    t.add([0; 16], 0, DEFAULT_NH).unwrap();
    for (p, d, nh) in r {
        t.add(p.to_be_bytes(), *d, *nh).unwrap();
    }
    (t, t0.elapsed().as_secs_f64())
}

fn build_lpm6(r: &[(u128, u8, u32)]) -> (Lpm6, f64) {
    let t0 = Instant::now();
    let mut t = Lpm6::new(r.len() as u32 + 64, r.len() as u32 * 3 + 1024);
    t.add([0; 16], 0, DEFAULT_NH);
    for (p, d, nh) in r {
        t.add(p.to_be_bytes(), *d, *nh);
    }
    (t, t0.elapsed().as_secs_f64())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(10_000, |a| a.parse().expect("ROUTES"));
    let big: usize = args.next().map_or(100_000, |a| a.parse().expect("BIG"));
    let (_eal, _lock) = dpdk::Eal::init_private("fib6-bench", &["--force-max-simd-bitwidth=512"])
        .expect("EAL init");
    let hz = dpdk::tsc_hz() as f64;
    let avx512 = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512bw");
    println!(
        "{n} random /48 + 16 /64 + default; bursts of {BURST}; TSC {:.2} GHz; CPU AVX-512 (F, DQ, BW): {}",
        hz / 1e9,
        if avx512 { "yes" } else { "no" }
    );

    let r = routes(n, 0x2545_f491_4f6c_dd1d);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let probes: Vec<[u8; 16]> = (0..65_536)
        .map(|i| {
            if i % 16 == 15 {
                rng.addr().to_be_bytes()
            } else {
                let (p, d, _) = r[(rng.next() % r.len() as u64) as usize];
                (p | (rng.addr() & (u128::MAX >> d))).to_be_bytes()
            }
        })
        .collect();

    let mut reference: Option<Vec<u32>> = None;
    let mut check = |name: &str, f: &mut LookupFn| {
        let mut out = vec![0u32; probes.len()];
        for (a, o) in probes.chunks(BURST).zip(out.chunks_mut(BURST)) {
            f(a, o);
        }
        assert!(out.iter().all(|v| *v <= DEFAULT_NH), "{name}: a miss");
        match &reference {
            None => reference = Some(out),
            Some(want) => assert_eq!(&out, want, "{name} disagrees"),
        }
    };
    let report = |name: &str, (med, lo, hi): (f64, f64, f64)| {
        println!(
            "{name:>24}: {med:6.1} cycles/lookup (min {lo:.1}, max {hi:.1}), {:6.1} Mlookups/s",
            hz / med / 1e6
        );
    };

    for size in [NextHopSize::B4, NextHopSize::B2] {
        let (mut t, _) = build_fib6(&r, size, 0);
        for lookup in [Lookup::Scalar, Lookup::Avx512] {
            let name = format!("rte_fib6 {}B {}", size.bytes(), lookup.name());
            if let Err(e) = t.select_lookup(lookup) {
                println!("{name:>24}: not available ({e})");
                continue;
            }
            check(&name, &mut |a, o| t.lookup_bulk(a, o));
            report(&name, time(&probes, |a, o| t.lookup_bulk(a, o)));
        }
    }
    {
        let (t, _) = build_lpm6(&r);
        check("rte_lpm6", &mut |a, o| t.lookup_bulk(a, o));
        report("rte_lpm6 bulk", time(&probes, |a, o| t.lookup_bulk(a, o)));
    }

    for count in [n, big] {
        let r = routes(count, 0x1234_5678_9abc_def1);
        // 3000 spare groups for the churn below: DPDK 22.11's trie keeps a deleted /48's
        // reservation of 3 groups (see `Fib6::delete`).
        let (mut t, s) = build_fib6(&r, NextHopSize::B4, 3000);
        assert_eq!(t.len() as usize, count + 17);
        // Churn: delete and re-add 1000 of the /48s.
        let t0 = Instant::now();
        for (p, d, nh) in r.iter().step_by(count / 1000) {
            t.delete(p.to_be_bytes(), *d).unwrap();
            t.add(p.to_be_bytes(), *d, *nh).unwrap();
        }
        let c = t0.elapsed().as_secs_f64();
        drop(t);
        // 2-byte entries index at most 32767 tbl8 groups: ~10,000 random /48s.
        let s2 = (count * 3 + 1024 < 1 << 15).then(|| build_fib6(&r, NextHopSize::B2, 0).1);
        let (mut t3, s3) = build_lpm6(&r);
        let t0 = Instant::now();
        for (p, d, nh) in r.iter().step_by(count / 1000) {
            t3.delete(p.to_be_bytes(), *d);
            t3.add(p.to_be_bytes(), *d, *nh);
        }
        let c3 = t0.elapsed().as_secs_f64();
        drop(t3);
        println!(
            "build {} routes: rte_fib6 4B {s:.3} s, rte_fib6 2B {}, rte_lpm6 {s3:.3} s",
            count + 17,
            s2.map_or("too many tbl8 groups".into(), |s2| format!("{s2:.3} s")),
        );
        println!(
            "  delete + re-add 1000 routes in it: rte_fib6 4B {:.1} us, rte_lpm6 {:.1} us per route",
            c * 1e3,
            c3 * 1e3
        );
    }
}
