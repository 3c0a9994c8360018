//! `FwdTable::update` (the FIB sync's in-place change of a table no worker reads) against a
//! table built from scratch with the same final routes: every lookup answers the same, for
//! both families; a change beyond the table's room is refused.

use std::fs::File;
use std::sync::OnceLock;

use pollfwd_nf::forward::table::{FwdTable, Hop, Prefix, RouteEntry, RouteKind};
use pollfwd_nf::forward::table6::{Hop6, Prefix6, RouteEntry6};

static EAL: OnceLock<(dpdk::Eal, File)> = OnceLock::new();

fn eal() {
    EAL.get_or_init(|| dpdk::Eal::init_private("tblupd", &[]).expect("EAL init"));
}

fn r4(addr: u32, len: u8, gw: u32) -> RouteEntry {
    RouteEntry {
        prefix: Prefix::new(addr, len),
        kind: RouteKind::Dynamic,
        hop: Hop::Forward {
            port: (gw & 1) as u16,
            gateway: gw,
        },
    }
}

fn r6(addr: u128, len: u8, gw: u128) -> RouteEntry6 {
    RouteEntry6 {
        prefix: Prefix6::new(addr, len),
        kind: RouteKind::Dynamic,
        hop: Hop6::Forward {
            port: (gw & 1) as u16,
            gateway: gw,
        },
    }
}

/// A small deterministic generator (xorshift).
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn updated_in_place_equals_built_from_scratch() {
    eal();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    // 3000 IPv4 routes of mixed lengths (some longer than /24), 500 IPv6.
    let mut v4: Vec<RouteEntry> = (0..3000)
        .map(|_| {
            let x = rng(&mut seed);
            r4(
                x as u32,
                8 + (x >> 40) as u8 % 25,
                0x0a00_0000 | (x >> 50) as u32 & 7,
            )
        })
        .collect();
    v4.sort_by_key(|e| e.prefix);
    v4.dedup_by_key(|e| e.prefix);
    let mut v6: Vec<RouteEntry6> = (0..500)
        .map(|_| {
            let x = rng(&mut seed) as u128;
            r6(
                0x2001_0db8u128 << 96 | x << 40,
                32 + (x as u8) % 33,
                0xfe80 << 112 | (x >> 60) & 7,
            )
        })
        .collect();
    v6.sort_by_key(|e| e.prefix);
    v6.dedup_by_key(|e| e.prefix);
    let mut t = FwdTable::build(&v4, &v6, -1).unwrap();
    // Delete every 7th, change the gateway of every 5th, add 100 new ones of each family.
    let del: Vec<Prefix> = v4.iter().step_by(7).map(|e| e.prefix).collect();
    let del6: Vec<Prefix6> = v6.iter().step_by(7).map(|e| e.prefix).collect();
    let mut add: Vec<RouteEntry> = v4
        .iter()
        .skip(1)
        .step_by(5)
        .map(|e| r4(e.prefix.addr, e.prefix.len, 0x0a00_0100))
        .collect();
    let mut add6: Vec<RouteEntry6> = v6
        .iter()
        .skip(1)
        .step_by(5)
        .map(|e| r6(e.prefix.addr, e.prefix.len, 0xfe80 << 112 | 0x99))
        .collect();
    for k in 0..100u32 {
        add.push(r4(0xc633_0000 | k << 8, 24, 0x0a00_0200));
        add6.push(r6(
            0x2001_0db8_ffffu128 << 80 | (k as u128) << 64,
            64,
            0xfe80 << 112 | 1,
        ));
    }
    let apply4 = |list: &[RouteEntry]| {
        let mut m: std::collections::BTreeMap<Prefix, RouteEntry> =
            list.iter().map(|e| (e.prefix, *e)).collect();
        for p in &del {
            m.remove(p);
        }
        for e in &add {
            m.insert(e.prefix, *e);
        }
        m.into_values().collect::<Vec<_>>()
    };
    let apply6 = |list: &[RouteEntry6]| {
        let mut m: std::collections::BTreeMap<Prefix6, RouteEntry6> =
            list.iter().map(|e| (e.prefix, *e)).collect();
        for p in &del6 {
            m.remove(p);
        }
        for e in &add6 {
            m.insert(e.prefix, *e);
        }
        m.into_values().collect::<Vec<_>>()
    };
    let (f4, f6) = (apply4(&v4), apply6(&v6));
    t.update(&del, &add, &del6, &add6, (f4.len(), f6.len()))
        .unwrap();
    let fresh = FwdTable::build(&f4, &f6, -1).unwrap();
    assert_eq!(t.routes(), fresh.routes());
    let mut differ = 0;
    for _ in 0..200_000 {
        let x = rng(&mut seed);
        // Half the probes inside the routes' prefixes, half anywhere.
        let ip = if x & 1 == 0 {
            let e = &f4[(x >> 8) as usize % f4.len()];
            e.prefix.addr | (x >> 32) as u32 & !table_mask(e.prefix.len)
        } else {
            (x >> 16) as u32
        };
        differ += usize::from(t.lookup(ip) != fresh.lookup(ip));
        let e = &f6[(x >> 8) as usize % f6.len()];
        let ip6 = (e.prefix.addr | (x as u128) << 20 >> e.prefix.len.min(127)).to_be_bytes();
        differ += usize::from(t.v6().unwrap().lookup(ip6) != fresh.v6().unwrap().lookup(ip6));
    }
    assert_eq!(
        differ, 0,
        "lookups differ between the updated and the fresh table"
    );
    // A deleted route no longer answers for its own address (unless a shorter one covers
    // it, as in the fresh table: checked above); an added one does.
    assert_eq!(
        t.lookup(0xc633_0501),
        Some(Hop::Forward {
            port: 0,
            gateway: 0x0a00_0200
        })
    );
}

fn table_mask(len: u8) -> u32 {
    pollfwd_nf::forward::table::mask(len)
}

#[test]
fn an_update_beyond_the_tables_room_is_refused() {
    eal();
    let v4: Vec<RouteEntry> = (0..10u32)
        .map(|k| r4(0x0a00_0000 | k << 8, 24, 1))
        .collect();
    let mut t = FwdTable::build(&v4, &[], -1).unwrap();
    // Sized for 1024 rules at least: 5000 more do not fit.
    let add: Vec<RouteEntry> = (0..5000u32)
        .map(|k| r4(0x0b00_0000 | k << 8, 24, 1))
        .collect();
    assert!(t.update(&[], &add, &[], &[], (5010, 0)).is_err());
    // No IPv6 table: an IPv6 route cannot be added in place.
    let mut t = FwdTable::build(&v4, &[], -1).unwrap();
    assert!(
        t.update(&[], &[], &[], &[r6(0x2001_0db8u128 << 96, 32, 1)], (10, 1))
            .is_err()
    );
}
