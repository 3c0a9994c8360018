//! The IPv4 LPM wrappers, `rte_fib` (DIR24_8, the forward table's) and `rte_lpm` (kept for
//! `examples/fib4_bench.rs`), through the same tests: longest match, replace, delete, default
//! route, the inline lookup (which reads DPDK's tables itself) against DPDK's bulk lookup and a
//! linear-scan model, 10,000+ routes, a full table, the view's one-read test, and concurrent
//! lookups from several threads.
//!
//! One EAL for the whole test binary (`--no-pci --in-memory`, unique file prefix), started
//! while holding the machine's busy-polling lock (nothing polls here; the rule is simply that
//! every DPDK process holds it).

use std::fs::File;
use std::sync::{Arc, OnceLock};

use dpdk::fib::{Fib, FibConfig, MISS};
use dpdk::lpm::{Lpm, LpmConfig};

/// What the tests need of a table: both wrappers have it under the same names.
trait Table: Sized + Send + Sync + 'static {
    /// Largest next hop a route may carry.
    const MAX_NEXT_HOP: u32;
    fn with(max_routes: u32, tbl8s: u32) -> Self;
    fn add(&mut self, ip: u32, depth: u8, nh: u32) -> dpdk::Result<()>;
    fn delete(&mut self, ip: u32, depth: u8) -> dpdk::Result<()>;
    fn lookup(&self, ip: u32) -> Option<u32>;
    fn lookup_one(&self, ip: u32) -> u32;
    fn lookup_bulk(&self, ips: &[u32], out: &mut [u32]);
    fn name(&self) -> &str;
    /// The view's one-read test for next hop `hop`, and for the key no address matches.
    fn routes_to(&self, ip: u32, hop: u32) -> bool;
    fn routes_to_none(&self, ip: u32) -> bool;
    /// Whether `ip`'s tbl24 entry answers by itself (no tbl8 group to read).
    fn one_read(&self, ip: u32) -> bool;
}

impl Table for Fib {
    const MAX_NEXT_HOP: u32 = dpdk::fib::MAX_NEXT_HOP;
    fn with(max_routes: u32, tbl8s: u32) -> Self {
        Fib::new(FibConfig {
            max_routes,
            tbl8s,
            ..Default::default()
        })
        .unwrap()
    }
    fn add(&mut self, ip: u32, depth: u8, nh: u32) -> dpdk::Result<()> {
        Fib::add(self, ip, depth, nh)
    }
    fn delete(&mut self, ip: u32, depth: u8) -> dpdk::Result<()> {
        Fib::delete(self, ip, depth)
    }
    fn lookup(&self, ip: u32) -> Option<u32> {
        Fib::lookup(self, ip)
    }
    fn lookup_one(&self, ip: u32) -> u32 {
        Fib::lookup_one(self, ip)
    }
    fn lookup_bulk(&self, ips: &[u32], out: &mut [u32]) {
        Fib::lookup_bulk(self, ips, out)
    }
    fn name(&self) -> &str {
        Fib::name(self)
    }
    fn routes_to(&self, ip: u32, hop: u32) -> bool {
        let v = self.view();
        v.routes_to(ip, v.key(hop))
    }
    fn routes_to_none(&self, ip: u32) -> bool {
        self.view().routes_to(ip, dpdk::fib::RouteKey::NONE)
    }
    fn one_read(&self, ip: u32) -> bool {
        self.view().entry(ip) & 1 == 0
    }
}

impl Table for Lpm {
    const MAX_NEXT_HOP: u32 = dpdk::lpm::MAX_NEXT_HOP;
    fn with(max_rules: u32, tbl8s: u32) -> Self {
        Lpm::new(LpmConfig {
            max_rules,
            tbl8s,
            ..Default::default()
        })
        .unwrap()
    }
    fn add(&mut self, ip: u32, depth: u8, nh: u32) -> dpdk::Result<()> {
        Lpm::add(self, ip, depth, nh)
    }
    fn delete(&mut self, ip: u32, depth: u8) -> dpdk::Result<()> {
        Lpm::delete(self, ip, depth)
    }
    fn lookup(&self, ip: u32) -> Option<u32> {
        Lpm::lookup(self, ip)
    }
    fn lookup_one(&self, ip: u32) -> u32 {
        Lpm::lookup_one(self, ip)
    }
    fn lookup_bulk(&self, ips: &[u32], out: &mut [u32]) {
        Lpm::lookup_bulk(self, ips, out)
    }
    fn name(&self) -> &str {
        Lpm::name(self)
    }
    fn routes_to(&self, ip: u32, hop: u32) -> bool {
        let v = self.view();
        v.routes_to(ip, v.key(hop))
    }
    fn routes_to_none(&self, ip: u32) -> bool {
        self.view().routes_to(ip, dpdk::lpm::RouteKey::NONE)
    }
    fn one_read(&self, ip: u32) -> bool {
        // Not extended (rte_lpm's valid-group bit).
        self.view().entry(ip) & 0x0200_0000 == 0
    }
}

/// `#[test]`s running `f` on each wrapper.
macro_rules! both {
    ($($f:ident),* $(,)?) => {
        mod fib {
            $(#[test] fn $f() { super::eal(); super::$f::<dpdk::fib::Fib>(); })*
        }
        mod lpm {
            $(#[test] fn $f() { super::eal(); super::$f::<dpdk::lpm::Lpm>(); })*
        }
    };
}

both!(
    longest_prefix_wins_and_delete_falls_back,
    default_route_answers_misses_single_and_bulk,
    ten_thousand_routes_bulk_lookup_matches_the_model,
    full_table_reports_an_error,
    concurrent_lookups_share_one_table,
    view_routes_to_agrees_with_lookup_one,
);

static EAL: OnceLock<(dpdk::Eal, File)> = OnceLock::new();

fn eal() {
    EAL.get_or_init(|| dpdk::Eal::init_private("fib-test", &[]).expect("EAL init"));
}

/// A deterministic pseudo-random sequence (xorshift64), so that a failure reproduces.
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn ip(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

/// Reference: the longest of the prefixes covering `a` (linear scan).
fn model(routes: &[(u32, u8, u32)], a: u32) -> Option<u32> {
    routes
        .iter()
        .filter(|(p, d, _)| *d == 0 || (a ^ p) >> (32 - *d as u32) == 0)
        .max_by_key(|(_, d, _)| *d)
        .map(|r| r.2)
}

fn longest_prefix_wins_and_delete_falls_back<T: Table>() {
    let mut t = T::with(1024, 256);
    t.add(ip("10.0.0.0"), 8, 1).unwrap();
    t.add(ip("10.1.0.0"), 16, 2).unwrap();
    t.add(ip("10.1.2.0"), 24, 3).unwrap();
    t.add(ip("10.1.2.128"), 25, 4).unwrap();
    t.add(ip("10.1.2.200"), 32, 5).unwrap();
    assert_eq!(t.lookup(ip("10.9.9.9")), Some(1));
    assert_eq!(t.lookup(ip("10.1.9.9")), Some(2));
    assert_eq!(t.lookup(ip("10.1.2.1")), Some(3));
    assert_eq!(t.lookup(ip("10.1.2.129")), Some(4));
    assert_eq!(t.lookup(ip("10.1.2.200")), Some(5));
    assert_eq!(t.lookup(ip("11.0.0.1")), None);
    // Replace keeps one rule; delete falls back to the next shorter prefix.
    t.add(ip("10.1.2.0"), 24, 7).unwrap();
    assert_eq!(t.lookup(ip("10.1.2.1")), Some(7));
    t.delete(ip("10.1.2.128"), 25).unwrap();
    assert_eq!(t.lookup(ip("10.1.2.129")), Some(7));
    t.delete(ip("10.1.2.0"), 24).unwrap();
    assert_eq!(t.lookup(ip("10.1.2.129")), Some(2));
    assert!(
        t.delete(ip("10.1.2.0"), 24).is_err(),
        "deleting twice fails"
    );
    // Host bits are ignored on add and delete.
    t.add(ip("192.0.2.77"), 24, 9).unwrap();
    assert_eq!(t.lookup(ip("192.0.2.1")), Some(9));
    t.delete(ip("192.0.2.1"), 24).unwrap();
    assert_eq!(t.lookup(ip("192.0.2.1")), None);
    // Bad arguments are errors, not UB.
    assert!(t.add(0, 33, 1).is_err());
    assert!(t.add(0, 8, T::MAX_NEXT_HOP + 1).is_err());
    t.add(0, 8, T::MAX_NEXT_HOP).unwrap();
    assert_eq!(t.lookup(ip("0.1.2.3")), Some(T::MAX_NEXT_HOP));
}

fn default_route_answers_misses_single_and_bulk<T: Table>() {
    let mut t = T::with(1024, 256);
    t.add(ip("198.51.100.0"), 24, 1).unwrap();
    let ips = [ip("198.51.100.5"), ip("8.8.8.8")];
    let mut out = [0u32; 2];
    t.lookup_bulk(&ips, &mut out);
    assert_eq!(out, [1, MISS]);
    assert_eq!([t.lookup_one(ips[0]), t.lookup_one(ips[1])], [1, MISS]);
    t.add(0, 0, 42).unwrap();
    assert_eq!(t.lookup_one(ips[1]), 42);
    assert_eq!(t.lookup(ip("8.8.8.8")), Some(42));
    t.lookup_bulk(&ips, &mut out);
    assert_eq!(out, [1, 42]);
    t.delete(0, 0).unwrap();
    assert_eq!(t.lookup(ip("8.8.8.8")), None);
    assert!(t.delete(0, 0).is_err());
}

fn ten_thousand_routes_bulk_lookup_matches_the_model<T: Table>() {
    let mut t = T::with(16384, 4096);
    // 10,000 /24s in 198.18.0.0/15 and beyond, plus longer and shorter prefixes mixed in
    // (deterministic pseudo-random, so a failure reproduces).
    let mut routes: Vec<(u32, u8, u32)> = Vec::new();
    let mut rnd = xorshift(0x9e37_79b9_7f4a_7c15);
    for i in 0..10_000u32 {
        routes.push((0xc612_0000 + (i << 8), 24, i % 4096));
    }
    for i in 0..2_000u32 {
        let depth = 8 + (rnd() % 25) as u8; // 8..=32
        let a = (rnd() as u32) & (u32::MAX << (32 - depth as u32));
        routes.push((a, depth, 5000 + i));
    }
    // Later duplicates replace earlier ones, like the table does.
    let mut seen = std::collections::HashMap::new();
    for r in &routes {
        seen.insert((r.0, r.1), r.2);
    }
    let uniq: Vec<(u32, u8, u32)> = seen.iter().map(|(k, v)| (k.0, k.1, *v)).collect();
    for (a, d, nh) in &routes {
        t.add(*a, *d, *nh).unwrap();
    }
    let mut probes: Vec<u32> = (0..20_000).map(|_| rnd() as u32).collect();
    for r in uniq.iter().take(3000) {
        probes.push(r.0 | (rnd() as u32 & !(u32::MAX.checked_shl(32 - r.1 as u32).unwrap_or(0))));
    }
    let mut out = vec![0u32; probes.len()];
    for (ch, o) in probes.chunks(64).zip(out.chunks_mut(64)) {
        t.lookup_bulk(ch, o);
    }
    for (a, got) in probes.iter().zip(&out) {
        let want = model(&uniq, *a).unwrap_or(MISS);
        assert_eq!(*got, want, "{}", std::net::Ipv4Addr::from(*a));
        assert_eq!(t.lookup(*a).unwrap_or(MISS), want);
        assert_eq!(
            t.lookup_one(*a),
            want,
            "inline {}",
            std::net::Ipv4Addr::from(*a)
        );
    }
    // After deletes (tbl8 groups freed or rewritten) the inline lookup still agrees.
    for (a, d, _) in routes.iter().skip(9_000) {
        let _ = t.delete(*a, *d);
    }
    for a in &probes {
        assert_eq!(t.lookup_one(*a), t.lookup(*a).unwrap_or(MISS));
    }
}

fn full_table_reports_an_error<T: Table>() {
    let mut t = T::with(8, 2);
    for i in 0..8u32 {
        t.add(0x0a00_0000 + (i << 8), 24, i).unwrap();
    }
    let e = t.add(0x0b00_0000, 24, 9).unwrap_err();
    assert_eq!(e.code, libc::ENOSPC, "{e}");
    // Replacing a route is not one more.
    t.add(0x0a00_0000, 24, 77).unwrap();
    assert_eq!(t.lookup(0x0a00_0001), Some(77));
}

/// `rte_fib`: the route count, and tbl8 groups running out (one per /24 with longer
/// prefixes).
#[test]
fn fib_counts_routes_and_tbl8_groups() {
    eal();
    let mut t = Fib::new(FibConfig {
        max_routes: 1024,
        tbl8s: 64,
        ..Default::default()
    })
    .unwrap();
    t.add(ip("10.0.0.0"), 8, 1).unwrap();
    t.add(ip("10.0.0.0"), 8, 2).unwrap();
    assert_eq!(t.len(), 1, "replaced, not added");
    t.delete(ip("10.0.0.0"), 8).unwrap();
    assert!(t.is_empty());
    t.add(0x0a00_0040, 26, 2).unwrap();
    let mut added = 0u32;
    let e = loop {
        match t.add(0x0a00_0080 + (added << 8), 25, 1) {
            Ok(()) => added += 1,
            Err(e) => break e,
        }
        assert!(added <= 64, "more /24s with long prefixes than tbl8 groups");
    };
    assert_eq!(e.code, libc::ENOSPC, "{e}");
    // 10.0.0.0/24 (the /26 and the first /25) and 62 more /24s: DPDK 22.11 hands out 63 of
    // the 64 groups (table sizes leave room for that).
    assert_eq!(added, 63);
    let refused = 0x0a00_0081 + (added << 8);
    assert_eq!(t.lookup(refused), None, "a refused route changes nothing");
    assert_eq!(t.len(), 1 + added);
    assert_eq!(t.lookup(0x0a00_0041), Some(2));
}

fn concurrent_lookups_share_one_table<T: Table>() {
    let mut t = T::with(1024, 256);
    for i in 0..256u32 {
        t.add(0x0a00_0000 + (i << 8), 24, i).unwrap();
    }
    let t = Arc::new(t);
    let names: Vec<_> = (0..4)
        .map(|k| {
            let t = t.clone();
            std::thread::spawn(move || {
                for r in 0..20_000u32 {
                    let i = (r + k) % 256;
                    assert_eq!(t.lookup(0x0a00_0000 + (i << 8) + 7), Some(i));
                }
            })
        })
        .collect();
    for h in names {
        h.join().unwrap();
    }
    // Two tables at once get distinct DPDK names.
    let u = T::with(1024, 256);
    assert_ne!(u.name(), t.name());
}

/// The view's `routes_to` (the forward fast path's one-read test) must never claim a next hop
/// `lookup_one` does not give: with /8../32 prefixes mixed (extended tbl24 entries), a default
/// route and without it, for every next hop in use and a hop no route has. And it must
/// recognise the plain case it exists for (a /24 or shorter route, the default route).
fn view_routes_to_agrees_with_lookup_one<T: Table>() {
    let mut t = T::with(4096, 512);
    let mut rnd = xorshift(0x1234_5678_9abc_def1);
    for i in 0..300u32 {
        t.add(0xc612_0000 + (i << 8), 24, i % 8).unwrap();
    }
    for i in 0..300u32 {
        let depth = 8 + (rnd() % 25) as u8;
        let a = (rnd() as u32) & (u32::MAX << (32 - depth as u32));
        t.add(a, depth, (i % 8) + 8).unwrap();
    }
    // Longer prefixes inside some of the /24s: those tbl24 entries become extended.
    for i in 0..50u32 {
        t.add(0xc612_0080 + (i << 8), 25, 20).unwrap();
    }
    let mut probes: Vec<u32> = (0..20_000).map(|_| rnd() as u32).collect();
    probes.extend((0..20_000).map(|_| 0xc612_0000 + (rnd() as u32 % (350 << 8))));
    for with_default in [false, true] {
        if with_default {
            t.add(0, 0, 3).unwrap();
        }
        let mut recognised = [0u32; 2];
        for hop in (0..24).chain([MISS, 0x00ff_ffff]) {
            for a in &probes {
                let claims = t.routes_to(*a, hop);
                let got = t.lookup_one(*a);
                assert!(
                    !claims || got == hop,
                    "{}: view says hop {hop}, lookup_one {got}",
                    std::net::Ipv4Addr::from(*a)
                );
                if claims {
                    recognised[with_default as usize] += 1;
                }
            }
        }
        assert!(recognised[with_default as usize] > 10_000, "{recognised:?}");
        // An address only the default route covers is recognised for the default's hop.
        if with_default {
            let a = (0..u32::MAX)
                .step_by(0x0100_0123)
                .find(|a| t.lookup(*a) == Some(3) && t.one_read(*a))
                .expect("an address only the default route covers");
            assert!(t.routes_to(a, 3));
        }
        assert!(!t.routes_to_none(0xc612_0005));
    }
    // 198.18.100.5: a plain /24 (no /25 inside), hop 100 % 8.
    assert_eq!(t.lookup_one(0xc612_6405), 4);
    assert!(t.routes_to(0xc612_6405, 4));
}
