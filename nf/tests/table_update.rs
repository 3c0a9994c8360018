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
    t.update(&del, &add, &del6, &add6, (f4.len(), f6.len()), None)
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
    assert!(t.update(&[], &add, &[], &[], (5010, 0), None).is_err());
    // No IPv6 table: an IPv6 route cannot be added in place.
    let mut t = FwdTable::build(&v4, &[], -1).unwrap();
    assert!(
        t.update(
            &[],
            &[],
            &[],
            &[r6(0x2001_0db8u128 << 96, 32, 1)],
            (10, 1),
            None
        )
        .is_err()
    );
}

/// A multipath route changed in place: its group is the one a build after the table in force
/// makes (same members, same buckets: the flows of the next hops it keeps stay on them),
/// for both families; a prefix that loses its group (one next hop, deleted) gives its slot to
/// the next new group.
#[test]
fn multipath_routes_changed_in_place_keep_their_buckets() {
    eal();
    let (a, b, c) = (0x0a00_0001u32, 0x0a00_0002, 0x0a00_0003);
    let p = 0xc633_6400u32; // 198.51.100.0/24
    let q = 0xcb00_7100u32; // 203.0.113.0/24
    let (a6, b6, c6) = (
        0xfe80u128 << 112 | 1,
        0xfe80u128 << 112 | 2,
        0xfe80u128 << 112 | 3,
    );
    let p6 = 0x2001_0db8_0009u128 << 80;
    let base4 = vec![r4(0x0b00_0000, 8, a)];
    let base6 = vec![r6(0x2001_0db8_0001u128 << 80, 48, a6)];
    let with = |extra4: &[RouteEntry], extra6: &[RouteEntry6]| {
        let mut v4 = base4.clone();
        v4.extend_from_slice(extra4);
        let mut v6 = base6.clone();
        v6.extend_from_slice(extra6);
        (v4, v6)
    };
    // In force: P via {a, b}; the table to change in place: P via a only (one batch behind).
    let (k4, k6) = with(
        &[r4(p, 24, a), r4(p, 24, b)],
        &[r6(p6, 48, a6), r6(p6, 48, b6)],
    );
    let cur = FwdTable::build(&k4, &k6, -1).unwrap();
    let (o4, o6) = with(&[r4(p, 24, a)], &[r6(p6, 48, a6)]);
    let mut t = FwdTable::build(&o4, &o6, -1).unwrap();
    assert!(t.group_of(Prefix::new(p, 24)).is_none());
    // Catch up with the table in force, then add c.
    let (n4, n6) = (
        [r4(p, 24, a), r4(p, 24, b)],
        [r6(p6, 48, a6), r6(p6, 48, b6)],
    );
    t.update(&[], &n4, &[], &n6, (2, 2), Some(&cur)).unwrap();
    let (g, gc) = (
        t.group_of(Prefix::new(p, 24)).unwrap(),
        cur.group_of(Prefix::new(p, 24)).unwrap(),
    );
    assert_eq!((&g.members, g.buckets), (&gc.members, gc.buckets));
    let (m4, m6) = (
        [r4(p, 24, a), r4(p, 24, b), r4(p, 24, c)],
        [r6(p6, 48, a6), r6(p6, 48, b6), r6(p6, 48, c6)],
    );
    t.update(&[], &m4, &[], &m6, (2, 2), Some(&cur)).unwrap();
    let (f4, f6) = with(&m4, &m6);
    let fresh = FwdTable::build_after(&f4, &f6, -1, Some(&cur), 1).unwrap();
    let (g, gf) = (
        t.group_of(Prefix::new(p, 24)).unwrap(),
        fresh.group_of(Prefix::new(p, 24)).unwrap(),
    );
    assert_eq!(g.members.len(), 3);
    assert_eq!((&g.members, g.buckets), (&gf.members, gf.buckets));
    // Every bucket of a or b in force stays with its member; the rest went to c.
    for (k, &m) in gc.buckets.iter().enumerate() {
        let now = g.members[g.buckets[k] as usize];
        let was = gc.members[m as usize];
        assert!(
            now == was
                || now
                    == Hop::Forward {
                        port: 1,
                        gateway: c
                    },
            "bucket {k}"
        );
    }
    let (g6, gf6) = (
        t.v6().unwrap().group_of(Prefix6::new(p6, 48)).unwrap(),
        fresh.v6().unwrap().group_of(Prefix6::new(p6, 48)).unwrap(),
    );
    assert_eq!((&g6.members, g6.buckets), (&gf6.members, gf6.buckets));
    // The address of P answers with its group.
    assert!(matches!(t.lookup(p | 9), Some(Hop::Group(_))));
    // One next hop again: no group, the route answers with it.
    t.update(&[], &[r4(p, 24, b)], &[], &[], (2, 2), Some(&cur))
        .unwrap();
    assert!(t.group_of(Prefix::new(p, 24)).is_none());
    assert_eq!(
        t.lookup(p | 9),
        Some(Hop::Forward {
            port: 0,
            gateway: b
        })
    );
    // Q gets a group (P's old slot), P6 is deleted.
    t.update(
        &[],
        &[r4(q, 24, a), r4(q, 24, c)],
        &[Prefix6::new(p6, 48)],
        &[],
        (3, 1),
        Some(&cur),
    )
    .unwrap();
    let Some(Hop::Group(k)) = t.lookup(q | 1) else {
        panic!("Q is a group")
    };
    assert_eq!(
        t.group(k).members,
        vec![
            Hop::Forward {
                port: 1,
                gateway: a
            },
            Hop::Forward {
                port: 1,
                gateway: c
            }
        ]
    );
    assert_eq!(t.groups().count(), 1);
    assert!(t.v6().unwrap().group_of(Prefix6::new(p6, 48)).is_none());
    assert_eq!(t.v6().unwrap().lookup((p6 | 5).to_be_bytes()), None);
}
