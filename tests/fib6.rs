//! The `rte_fib6` wrapper: longest match over overlapping prefixes (/0 to /128), replace,
//! delete falling back to the shorter prefix, default route, misses, bulk against single
//! lookups (scalar and AVX-512 where available), refused arguments, a full table that keeps
//! what it holds, a random table against a linear-scan model, and concurrent lookups.
//!
//! One EAL for the whole test binary (`--no-pci --in-memory`, unique file prefix), started
//! while holding the machine's busy-polling lock (nothing polls here; the rule is simply that
//! every DPDK process holds it).

use std::fs::File;
use std::net::Ipv6Addr;
use std::sync::{Arc, OnceLock};

use dpdk::fib6::{Fib6, Fib6Config, Lookup, MISS, NextHopSize, tbl8s_for};

#[path = "support/fib6_model.rs"]
mod model;

static EAL: OnceLock<(dpdk::Eal, File)> = OnceLock::new();

fn eal() {
    EAL.get_or_init(|| dpdk::Eal::init_private("fib6-test", &[]).expect("EAL init"));
}

fn ip(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

/// A table with 2-byte entries (a 32 MiB first table instead of 64: the tests run in parallel
/// on hugepages other processes share).
fn table(max_routes: u32, tbl8s: u32) -> Fib6 {
    Fib6::new(Fib6Config {
        max_routes,
        tbl8s,
        next_hop_size: NextHopSize::B2,
        ..Default::default()
    })
    .unwrap()
}

fn small() -> Fib6 {
    table(64, 64)
}

#[test]
fn longest_prefix_wins_and_delete_falls_back() {
    eal();
    let mut t = small();
    t.add(ip("::"), 0, 1).unwrap();
    t.add(ip("2001:db8::"), 32, 2).unwrap();
    t.add(ip("2001:db8:1::"), 48, 3).unwrap();
    t.add(ip("2001:db8:1:2::"), 64, 4).unwrap();
    t.add(ip("2001:db8:1:2::99"), 128, 5).unwrap();
    assert_eq!(t.len(), 5);
    let probes = [
        ("3fff::1", Some(1)),
        ("2001:db8:ffff::1", Some(2)),
        ("2001:db8:1:ffff::1", Some(3)),
        ("2001:db8:1:2::1", Some(4)),
        ("2001:db8:1:2::99", Some(5)),
        ("2001:db8:1:2::98", Some(4)),
        ("2001:db8:1:2:8000::99", Some(4)),
    ];
    for (a, want) in probes {
        assert_eq!(t.lookup(ip(a)), want, "{a}");
    }
    // Replace keeps one route; each delete falls back to the next shorter prefix.
    t.add(ip("2001:db8:1::"), 48, 7).unwrap();
    assert_eq!(t.len(), 5);
    assert_eq!(t.lookup(ip("2001:db8:1:ffff::1")), Some(7));
    t.delete(ip("2001:db8:1:2::99"), 128).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1:2::99")), Some(4));
    t.delete(ip("2001:db8:1:2::"), 64).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1:2::99")), Some(7));
    t.delete(ip("2001:db8:1::"), 48).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1:2::99")), Some(2));
    t.delete(ip("2001:db8::"), 32).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1:2::99")), Some(1));
    t.delete(ip("::"), 0).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1:2::99")), None);
    assert!(t.is_empty());
    let e = t.delete(ip("2001:db8::"), 32).unwrap_err();
    assert_eq!(e.code, libc::ENOENT, "deleting twice fails: {e}");
    // Host bits are ignored on add and delete.
    t.add(ip("2001:db8:aa:bb::77"), 48, 9).unwrap();
    assert!(t.contains(ip("2001:db8:aa::"), 48));
    assert_eq!(t.lookup(ip("2001:db8:aa:1::1")), Some(9));
    t.delete(ip("2001:db8:aa:ffff::1"), 48).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:aa:1::1")), None);
    // Deleting a longer prefix under which nothing else lies does not disturb its parent.
    t.add(ip("2001:db8::"), 32, 2).unwrap();
    t.add(ip("2001:db8:5::"), 48, 2).unwrap();
    t.delete(ip("2001:db8:5::"), 48).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:5::1")), Some(2));
}

#[test]
fn default_route_answers_misses_single_and_bulk() {
    eal();
    let mut t = small();
    t.add(ip("2001:db8:100::"), 48, 1).unwrap();
    let addrs = [ip("2001:db8:100::5"), ip("2606:4700::1111")];
    let mut out = [0u32; 2];
    t.lookup_bulk(&addrs, &mut out);
    assert_eq!(out, [1, MISS]);
    assert_eq!(t.lookup(addrs[1]), None);
    t.add(ip("::"), 0, 42).unwrap();
    assert_eq!(t.lookup(addrs[1]), Some(42));
    t.lookup_bulk(&addrs, &mut out);
    assert_eq!(out, [1, 42]);
    // The default route's next hop may be replaced like any route's.
    t.add(ip("::"), 0, 43).unwrap();
    assert_eq!(t.lookup(addrs[1]), Some(43));
    t.delete(ip("::"), 0).unwrap();
    assert_eq!(t.lookup(addrs[1]), None);
    assert_eq!(t.lookup(addrs[0]), Some(1));
    assert_eq!(t.delete(ip("::"), 0).unwrap_err().code, libc::ENOENT);
    // An output shorter than the input: only that many are looked up.
    let mut one = [7u32; 1];
    t.lookup_bulk(&addrs, &mut one);
    assert_eq!(one, [1]);
}

#[test]
fn bad_arguments_are_refused() {
    eal();
    let mut t = small();
    t.add(ip("2001:db8::"), 32, 1).unwrap();
    let e = t.add(ip("2001:db8::"), 129, 1).unwrap_err();
    assert_eq!(e.code, libc::EINVAL, "{e}");
    assert_eq!(
        t.delete(ip("2001:db8::"), 129).unwrap_err().code,
        libc::EINVAL
    );
    // 2-byte entries hold 0..=32766; the next value is the miss marker.
    assert_eq!(t.max_next_hop(), 32766);
    t.add(ip("2001:db8:1::"), 48, 32766).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1::1")), Some(32766));
    let e = t.add(ip("2001:db8:2::"), 48, 32767).unwrap_err();
    assert_eq!(e.code, libc::EINVAL, "{e}");
    assert_eq!(t.lookup(ip("2001:db8:2::1")), Some(1));
    assert_eq!(t.len(), 2);
    // Sizes that cannot work are refused at creation.
    assert!(
        Fib6::new(Fib6Config {
            max_routes: 0,
            ..Default::default()
        })
        .is_err()
    );
    assert!(
        Fib6::new(Fib6Config {
            tbl8s: 0,
            ..Default::default()
        })
        .is_err()
    );
    let w = Fib6::new(Fib6Config {
        next_hop_size: NextHopSize::B8,
        max_routes: 4,
        tbl8s: 4,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(w.max_next_hop(), u32::MAX - 1);
    drop(w);
    let w4 = Fib6::new(Fib6Config {
        max_routes: 4,
        tbl8s: 4,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(w4.max_next_hop(), (1 << 31) - 2);
}

#[test]
fn full_table_refuses_and_keeps_what_it_holds() {
    eal();
    // max_routes: the ninth distinct route is refused; a replace of one in the table is not.
    let mut t = table(8, 64);
    t.add(ip("::"), 0, 100).unwrap();
    for i in 0..7u8 {
        t.add(ip(&format!("2001:db8:{i}::")), 48, u32::from(i))
            .unwrap();
    }
    let e = t.add(ip("2001:db8:ff::"), 48, 9).unwrap_err();
    assert_eq!(e.code, libc::ENOSPC, "{e}");
    t.add(ip("2001:db8:3::"), 48, 33).unwrap();
    assert_eq!(t.len(), 8);
    assert_eq!(t.lookup(ip("2001:db8:ff::1")), Some(100));
    for i in 0..7u8 {
        let want = if i == 3 { 33 } else { u32::from(i) };
        assert_eq!(t.lookup(ip(&format!("2001:db8:{i}::1"))), Some(want));
    }
    // After a delete there is room again.
    t.delete(ip("2001:db8:6::"), 48).unwrap();
    t.add(ip("2001:db8:ff::"), 48, 9).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:ff::1")), Some(9));

    // tbl8 groups: a /48 alone in its /24 takes three (and one more while it is added):
    // sized for two such routes, the table refuses a third and still answers for the two.
    drop(t);
    let mut t = table(64, tbl8s_for([48, 48]));
    assert_eq!(t.config().tbl8s, 7);
    t.add(ip("2001:db8:1::"), 48, 1).unwrap();
    t.add(ip("2002:db8:1::"), 48, 2).unwrap();
    let e = t.add(ip("2003:db8:1::"), 48, 3).unwrap_err();
    assert_eq!(e.code, libc::ENOSPC, "{e}");
    assert!(!t.contains(ip("2003:db8:1::"), 48));
    assert_eq!(t.len(), 2);
    assert_eq!(t.lookup(ip("2001:db8:1::1")), Some(1));
    assert_eq!(t.lookup(ip("2002:db8:1::1")), Some(2));
    assert_eq!(t.lookup(ip("2003:db8:1::1")), None);
    // Shorter prefixes need no tbl8 group and still fit.
    t.add(ip("2003:db8::"), 24, 4).unwrap();
    assert_eq!(t.lookup(ip("2003:db8:1::1")), Some(4));
}

/// Random overlapping prefixes of every depth against a linear longest match, before and after
/// deleting a third (tests/support/fib6_model.rs), with the scalar lookup this binary's EAL
/// allows; tests/fib6_simd512.rs runs the same with AVX-512.
#[test]
fn random_table_matches_the_model() {
    eal();
    model::random_table_matches_the_model(&[Lookup::Scalar]);
}

#[test]
fn avx512_lookup_only_with_simd_512() {
    eal();
    let mut t = small();
    // This test binary's EAL keeps the default SIMD width (256 bits on x86): DPDK refuses the
    // AVX-512 lookup and the table keeps its scalar one.
    assert_eq!(dpdk::acl::max_simd_bitwidth(), 256);
    assert_eq!(t.lookup_fn(), Lookup::Scalar);
    assert_eq!(
        t.select_lookup(Lookup::Avx512).unwrap_err().code,
        libc::EINVAL
    );
    assert_eq!(t.lookup_fn(), Lookup::Scalar);
    t.add(ip("2001:db8::"), 32, 1).unwrap();
    assert_eq!(t.lookup(ip("2001:db8::1")), Some(1));
}

#[test]
fn concurrent_lookups_share_one_table() {
    eal();
    let mut t = table(1024, 1024);
    for i in 0..256u16 {
        t.add(ip(&format!("2001:db8:{i:x}::")), 48, u32::from(i))
            .unwrap();
    }
    let t = Arc::new(t);
    let handles: Vec<_> = (0..4u16)
        .map(|k| {
            let t = t.clone();
            std::thread::spawn(move || {
                let mut out = [0u32; 32];
                for r in 0..2_000u16 {
                    let addrs: Vec<[u8; 16]> = (0..32u16)
                        .map(|j| ip(&format!("2001:db8:{:x}::7", (r + k + j) % 256)))
                        .collect();
                    t.lookup_bulk(&addrs, &mut out);
                    for (j, o) in out.iter().enumerate() {
                        assert_eq!(*o, u32::from((r + k + j as u16) % 256));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Two tables at once get distinct DPDK names.
    let u = small();
    assert_ne!(u.name(), t.name());
}

/// `tbl8s_for` is enough for any mix of depths and exact for disjoint /48s: 300 /48s each in
/// its own /24, 40 /64s and 40 /50s inside some of them, 20 /128s, a default route, in random
/// order, all taken with `tbl8s_for` groups; the 300 /48s alone with one group fewer are not.
#[test]
fn tbl8s_for_is_enough() {
    eal();
    let mut routes: Vec<(u128, u8)> = vec![(0, 0)];
    for i in 0..300u128 {
        let p = (0x2000_0000 + (i << 8) + 0x01) << 96 | 0xdb8 << 80;
        routes.push((p, 48));
        if i < 40 {
            routes.push((p | (i + 1) << 64, 64));
            routes.push((p | 0x4000 << 64, 50));
        }
        if i < 20 {
            routes.push((p | 0x1234, 128));
        }
    }
    let mut rnd = model::xorshift(0x5eed);
    for i in (1..routes.len()).rev() {
        routes.swap(i, (rnd() % (i as u64 + 1)) as usize);
    }
    let need = tbl8s_for(routes.iter().map(|r| r.1));
    let mut t = table(1024, need);
    for (k, (p, d)) in routes.iter().enumerate() {
        t.add(p.to_be_bytes(), *d, k as u32).unwrap();
    }
    assert_eq!(t.len() as usize, routes.len());
    drop(t);
    let mut t = table(1024, tbl8s_for([48; 300]) - 1);
    let taken = routes
        .iter()
        .filter(|r| r.1 == 48)
        .filter(|(p, d)| t.add(p.to_be_bytes(), *d, 1).is_ok())
        .count();
    assert_eq!(taken, 299);
}

/// What `Fib6::delete` documents for DPDK 22.11: a deleted /48's 3 tbl8 groups are freed but
/// stay reserved, so with room for one /48 and one spare group the same route cannot come back.
/// Pinned so that the docs (fib6.rs, performance.md) get updated when a DPDK release behaves
/// otherwise.
#[test]
fn delete_keeps_the_tbl8_reservation_on_dpdk_22_11() {
    eal();
    let mut t = table(8, tbl8s_for([48]) + 1);
    t.add(ip("2001:db8:1::"), 48, 1).unwrap();
    t.delete(ip("2001:db8:1::"), 48).unwrap();
    assert_eq!(t.lookup(ip("2001:db8:1::1")), None);
    let again = t.add(ip("2001:db8:1::"), 48, 1);
    if dpdk::runtime_version().starts_with("DPDK 22.11") {
        assert_eq!(again.unwrap_err().code, libc::ENOSPC);
        // Prefixes of /24 and shorter need no group and are still taken.
        t.add(ip("2001:db8::"), 24, 2).unwrap();
        assert_eq!(t.lookup(ip("2001:db8:1::1")), Some(2));
    } else {
        eprintln!(
            "{}: reservation returned: {again:?}",
            dpdk::runtime_version()
        );
    }
}
