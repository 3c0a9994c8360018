//! Shared by tests/fib6.rs and tests/fib6_simd512.rs: a random IPv6 table checked against a
//! linear-scan longest match.

use std::net::Ipv6Addr;

use dpdk::fib6::{Fib6, Fib6Config, Lookup, MISS};

/// A deterministic pseudo-random sequence (xorshift64), so that a failure reproduces.
pub fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Reference: the longest of the prefixes covering `a` (linear scan over u128s).
pub fn model(routes: &[(u128, u8, u32)], a: u128) -> Option<u32> {
    routes
        .iter()
        .filter(|(p, d, _)| *d == 0 || (a ^ p) >> (128 - u32::from(*d)) == 0)
        .max_by_key(|(_, d, _)| *d)
        .map(|r| r.2)
}

fn netmask(depth: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(depth)).unwrap_or(0)
}

/// 3000 random prefixes of every depth (weighted towards /16../64, some /0 and /128), nested
/// under 8 random /20s so that they overlap; probes: 2000 random addresses plus, per route, its
/// first address and one random address inside it. Every lookup function of `lookups` (each
/// must be available) is checked in bulk, in uneven chunks, against [`model`], and single
/// lookups too; then again after deleting a third of the routes.
pub fn random_table_matches_the_model(lookups: &[Lookup]) {
    let mut rnd = xorshift(0x9e37_79b9_7f4a_7c15);
    let bases: Vec<u128> = (0..8).map(|_| u128::from(rnd()) << 64).collect();
    let adds: Vec<(u128, u8)> = (0..3000)
        .map(|_| {
            let depth = match rnd() % 10 {
                0 => (rnd() % 129) as u8,
                1 => 128,
                _ => 16 + (rnd() % 49) as u8,
            };
            let base = bases[(rnd() % 8) as usize] & netmask(20);
            let a = base | ((u128::from(rnd()) << 64 | u128::from(rnd())) >> 20);
            (a & netmask(depth), depth)
        })
        .collect();
    // Sized exactly as tbl8s_for says (duplicates included): every add must succeed.
    let mut t = Fib6::new(Fib6Config {
        max_routes: 4096,
        tbl8s: dpdk::fib6::tbl8s_for(adds.iter().map(|r| r.1)),
        ..Default::default()
    })
    .unwrap();
    let mut seen = std::collections::HashMap::new();
    for (i, (a, depth)) in adds.iter().enumerate() {
        t.add(a.to_be_bytes(), *depth, i as u32).unwrap();
        // A later add of the same prefix replaces the earlier one, in the table and here.
        seen.insert((*a, *depth), i as u32);
    }
    t.add([0; 16], 0, 5000).unwrap();
    seen.insert((0, 0), 5000);
    let routes: Vec<(u128, u8, u32)> = seen.iter().map(|(k, v)| (k.0, k.1, *v)).collect();
    assert_eq!(t.len() as usize, routes.len());

    let mut probes: Vec<u128> = (0..2000)
        .map(|_| u128::from(rnd()) << 64 | u128::from(rnd()))
        .collect();
    for r in &routes {
        let host = (u128::from(rnd()) << 64 | u128::from(rnd())) & !netmask(r.1);
        probes.push(r.0 | host);
        probes.push(r.0);
    }
    let addrs: Vec<[u8; 16]> = probes.iter().map(|a| a.to_be_bytes()).collect();
    let check = |t: &mut Fib6, routes: &[(u128, u8, u32)]| {
        let want: Vec<u32> = probes
            .iter()
            .map(|a| model(routes, *a).unwrap_or(MISS))
            .collect();
        let hits = want.iter().filter(|w| **w != 5000 && **w != MISS).count();
        assert!(
            hits > probes.len() / 2,
            "mostly hits below the default: {hits}"
        );
        for lookup in lookups {
            t.select_lookup(*lookup).unwrap();
            let mut out = vec![0u32; addrs.len()];
            // Uneven chunks: the wrapper's own chunking and short tails are exercised.
            for (a, o) in addrs.chunks(77).zip(out.chunks_mut(77)) {
                t.lookup_bulk(a, o);
            }
            for (i, a) in probes.iter().enumerate() {
                assert_eq!(
                    out[i],
                    want[i],
                    "{} ({})",
                    Ipv6Addr::from(*a),
                    lookup.name()
                );
            }
            for (i, a) in addrs.iter().enumerate().step_by(7) {
                assert_eq!(t.lookup(*a).unwrap_or(MISS), want[i]);
            }
        }
    };
    check(&mut t, &routes);
    let mut kept = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        if i % 3 == 0 {
            t.delete(r.0.to_be_bytes(), r.1).unwrap();
        } else {
            kept.push(*r);
        }
    }
    assert_eq!(t.len() as usize, kept.len());
    check(&mut t, &kept);
}
