//! ECMP through the forward stage: routes of both families with three next hops, many flows
//! through the fast loops (no metadata) and the general path (metadata): every next hop gets
//! a share, every packet of a flow goes to the same next hop (by destination MAC), the
//! groups' per-member counters equal what came out, and a table rebuilt without one next hop
//! (`FwdTable::build_after`) moves only that next hop's flows.
//!
//! One EAL per test binary (`--no-pci --in-memory`, unique file prefix), started while holding
//! the machine's busy-polling lock; nothing polls here.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use dpdk::{Mbuf, Mempool, PktMeta};
use pollfwd_nf::forward::table::{self, FwdTable, Iface, Prefix, StaticRoute};
use pollfwd_nf::forward::table6::{self, Prefix6, StaticRoute6};
use pollfwd_nf::forward::{Forward, FwdParams, FwdShared, StaticNeighbor, StaticNeighbor6};
use pollfwd_pipeline::stage::Harness;
use pollfwd_pipeline::{DropReason, Verdict};

static EAL: OnceLock<(dpdk::Eal, File, Mempool)> = OnceLock::new();

fn pool() -> Mempool {
    EAL.get_or_init(|| {
        let (eal, lock) = dpdk::Eal::init_private("ecmp", &[]).expect("EAL init");
        let pool = Mempool::create("ecmp", 1023, 0, 2176, -1).expect("mempool");
        (eal, lock, pool)
    })
    .2
}

fn ip4(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

fn ip6(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];

/// The next hops of both routes: (IPv4 gateway, IPv6 gateway, port, MAC).
const HOPS: [(&str, &str, u16, [u8; 6]); 3] = [
    ("198.51.100.2", "2001:db8:2::2", 1, [2, 0, 0, 0, 1, 2]),
    ("198.51.100.3", "2001:db8:2::3", 1, [2, 0, 0, 0, 1, 3]),
    ("203.0.113.2", "2001:db8:3::2", 2, [2, 0, 0, 0, 2, 2]),
];

fn ifaces() -> Vec<Iface> {
    let i = |port: u16, a4: &str, a6: &str| Iface {
        port,
        name: format!("p{port}"),
        mac: [2, 0, 0, 0, 0, 0x10 + port as u8],
        addr: Some((ip4(a4), 24)),
        addr6: vec![(ip6(a6), 64)],
        mtu: 1500,
        mss_clamp: None,
        ra: false,
    };
    vec![
        i(0, "192.0.2.1", "2001:db8:1::1"),
        i(1, "198.51.100.1", "2001:db8:2::1"),
        i(2, "203.0.113.1", "2001:db8:3::1"),
    ]
}

/// The table with 10.0.0.0/8 and 2001:db8:99::/48 over the next hops `hops` (indices into
/// [`HOPS`]), replacing `prev`.
fn table(hops: &[usize], prev: Option<&FwdTable>) -> Arc<FwdTable> {
    pool(); // EAL up
    let ifaces = ifaces();
    let v4: Vec<StaticRoute> = hops
        .iter()
        .map(|&k| StaticRoute {
            prefix: Prefix::new(ip4("10.0.0.0"), 8),
            via: Some(ip4(HOPS[k].0)),
            port: None,
        })
        .collect();
    let v6: Vec<StaticRoute6> = hops
        .iter()
        .map(|&k| StaticRoute6 {
            prefix: Prefix6::parse("2001:db8:99::/48").unwrap(),
            via: Some(ip6(HOPS[k].1)),
            port: None,
        })
        .collect();
    let e4 = table::resolve(&ifaces, &v4).unwrap();
    let e6 = table6::resolve6(&ifaces, &v6).unwrap();
    Arc::new(FwdTable::build_after(&e4, &e6, -1, prev, 2).unwrap())
}

fn stage(t: &Arc<FwdTable>) -> Forward {
    let n4: Vec<StaticNeighbor> = HOPS
        .iter()
        .map(|h| StaticNeighbor {
            ip: ip4(h.0),
            mac: h.3,
            port: h.2,
        })
        .collect();
    let n6: Vec<StaticNeighbor6> = HOPS
        .iter()
        .map(|h| StaticNeighbor6 {
            ip: ip6(h.1),
            mac: h.3,
            port: h.2,
        })
        .collect();
    let shared = FwdShared::new(
        ifaces(),
        Vec::new(),
        &n4,
        &n6,
        FwdParams::default(),
        dpdk::tsc_hz(),
    )
    .unwrap();
    Forward::new(Arc::new(shared), t.clone(), 0)
}

/// A UDP frame of flow `f`: IPv4 192.0.2.10 -> 10.0.(f/256).(f%256)-ish with source port
/// 1024 + f, or IPv6 2001:db8:1::10 -> 2001:db8:99::(f % 64) with source port 2000 + f.
fn frame(v6: bool, f: u16) -> Vec<u8> {
    let mut d = if v6 {
        let mut d = vec![0u8; 14 + 40 + 16];
        d[12..14].copy_from_slice(&[0x86, 0xdd]);
        pollfwd_nf::wire::ipv6::write_header(
            &mut d[14..],
            16,
            17,
            64,
            ip6("2001:db8:1::10"),
            ip6("2001:db8:99::") | (f % 64) as u128,
        );
        d[54..56].copy_from_slice(&(2000 + f).to_be_bytes());
        d[56..58].copy_from_slice(&53u16.to_be_bytes());
        d[58..60].copy_from_slice(&16u16.to_be_bytes());
        d
    } else {
        let mut d = vec![0u8; 14 + 20 + 16];
        d[12..14].copy_from_slice(&[0x08, 0x00]);
        d[14] = 0x45;
        d[16..18].copy_from_slice(&36u16.to_be_bytes());
        d[22] = 64;
        d[23] = 17;
        d[26..30].copy_from_slice(&[192, 0, 2, 10]);
        d[30..34].copy_from_slice(&[10, 0, (f % 7) as u8, 1]);
        d[34..36].copy_from_slice(&(1024 + f).to_be_bytes());
        d[36..38].copy_from_slice(&53u16.to_be_bytes());
        d[38..40].copy_from_slice(&16u16.to_be_bytes());
        let c = pollfwd_nf::parse::ipv4_header_checksum(&d[14..34]);
        d[24..26].copy_from_slice(&c.to_be_bytes());
        d
    };
    d[..6].copy_from_slice(&IN_MAC);
    d[6..12].copy_from_slice(&HOST_MAC);
    d
}

const FLOWS: u16 = 600;

/// Sends every flow's packet through `fwd` in bursts of 32 (with metadata: the general path;
/// without: the fast loops) and returns the next hop (index into [`HOPS`]) of each flow.
fn send(h: &mut Harness, fwd: &mut Forward, v6: bool, meta: bool) -> Vec<usize> {
    let now = dpdk::rdtsc();
    let mut out = Vec::new();
    let frames: Vec<Vec<u8>> = (0..FLOWS).map(|f| frame(v6, f)).collect();
    for chunk in frames.chunks(32) {
        let mut pkts: Vec<Mbuf> = chunk
            .iter()
            .map(|f| {
                let mut m = pool().alloc().expect("mbuf");
                assert!(m.set_len(f.len() as u16));
                m.data_mut().copy_from_slice(f);
                if meta {
                    *m.meta_mut() = PktMeta::fresh(0, now);
                }
                m
            })
            .collect();
        let mut v = vec![Verdict::Continue; pkts.len()];
        let all = h.process(fwd, &mut pkts, &mut v, (now, 0, meta));
        for (m, v) in pkts.iter().zip(&v) {
            let k = HOPS
                .iter()
                .position(|x| m.data()[..6] == x.3)
                .expect("sent to one of the next hops");
            assert_eq!(all.unwrap_or(*v), Verdict::Tx(HOPS[k].2));
            assert_eq!(&m.data()[6..12], &ifaces()[HOPS[k].2 as usize].mac);
            out.push(k);
        }
    }
    out
}

/// The group's per-member packet counts, by next-hop index.
fn counts(t: &FwdTable, v6: bool) -> BTreeMap<usize, u64> {
    let by_port_gw = |port: u16, gw: String| {
        HOPS.iter()
            .position(|h| h.2 == port && (h.0 == gw || Ipv6Addr::from(ip6(h.1)).to_string() == gw))
            .unwrap_or_else(|| panic!("no next hop {gw} port {port}"))
    };
    let mut m = BTreeMap::new();
    if v6 {
        let (_, g) = t.v6().unwrap().groups().next().unwrap();
        for (h, n) in g.members.iter().zip(g.packets()) {
            let table6::Hop6::Forward { port, gateway } = *h else {
                panic!()
            };
            m.insert(by_port_gw(port, Ipv6Addr::from(gateway).to_string()), n);
        }
    } else {
        let (_, g) = t.groups().next().unwrap();
        for (h, n) in g.members.iter().zip(g.packets()) {
            let table::Hop::Forward { port, gateway } = *h else {
                panic!()
            };
            m.insert(by_port_gw(port, Ipv4Addr::from(gateway).to_string()), n);
        }
    }
    m
}

fn tally(v: &[usize]) -> BTreeMap<usize, u64> {
    let mut m = BTreeMap::new();
    for &k in v {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

#[test]
fn flows_spread_stay_on_their_next_hop_and_move_only_off_a_removed_one() {
    let mut h = Harness::new(pool(), dpdk::tsc_hz());
    for v6 in [false, true] {
        let t = table(&[0, 1, 2], None);
        // 9 interface routes per family and the two multipath routes, each counted once.
        assert_eq!(t.routes(), 20);
        let mut fwd = stage(&t);
        let first = send(&mut h, &mut fwd, v6, false);
        // Every next hop gets a share (each within 25% of a third).
        let share = tally(&first);
        assert_eq!(share.len(), 3, "v6 {v6}: {share:?}");
        for n in share.values() {
            assert!((150..=250).contains(n), "v6 {v6}: {share:?}");
        }
        // Every packet of a flow takes the same next hop: again through the fast loops and
        // through the general path.
        assert_eq!(send(&mut h, &mut fwd, v6, false), first, "v6 {v6}: fast");
        assert_eq!(send(&mut h, &mut fwd, v6, true), first, "v6 {v6}: general");
        // The counters: what came out, three times.
        let want: BTreeMap<usize, u64> = share.iter().map(|(k, n)| (*k, n * 3)).collect();
        assert_eq!(counts(&t, v6), want, "v6 {v6}");

        // Next hop 1 goes: its flows move, every other flow stays; counts carry over.
        let t2 = table(&[0, 2], Some(&t));
        let mut fwd2 = stage(&t2);
        let after = send(&mut h, &mut fwd2, v6, false);
        let mut moved = 0;
        for (f, (&a, &b)) in first.iter().zip(&after).enumerate() {
            assert_ne!(b, 1, "v6 {v6}: flow {f} still on the removed next hop");
            if a != 1 {
                assert_eq!(a, b, "v6 {v6}: flow {f} moved off a next hop that stayed");
            } else {
                moved += 1;
            }
        }
        assert_eq!(moved, share[&1], "v6 {v6}");
        let a = tally(&after);
        assert!(a[&0] > share[&0] && a[&2] > share[&2], "v6 {v6}: {a:?}");
        let c = counts(&t2, v6);
        assert_eq!(c[&0], want[&0] + a[&0], "v6 {v6}");
        assert_eq!(c[&2], want[&2] + a[&2], "v6 {v6}");
        // And comes back: it takes a share again, the others give only what it takes.
        let t3 = table(&[0, 1, 2], Some(&t2));
        let mut fwd3 = stage(&t3);
        let back = send(&mut h, &mut fwd3, v6, true);
        for (f, (&a, &b)) in after.iter().zip(&back).enumerate() {
            assert!(
                a == b || b == 1,
                "v6 {v6}: flow {f} moved between staying next hops"
            );
        }
        assert!(tally(&back)[&1] > 100, "v6 {v6}");
    }
}

/// A packet the stage drops after picking its member (TTL / hop limit 1: time exceeded)
/// counts for no next hop, in either family, through the fast loops and the general path.
#[test]
fn packets_dropped_after_the_pick_count_for_no_next_hop() {
    let t = table(&[0, 1, 2], None);
    let mut fwd = stage(&t);
    let mut h = Harness::new(pool(), dpdk::tsc_hz());
    let now = dpdk::rdtsc();
    for v6 in [false, true] {
        for meta in [false, true] {
            let before: u64 = counts(&t, v6).values().sum();
            let mut pkts: Vec<Mbuf> = (0..32u16)
                .map(|f| {
                    let mut d = frame(v6, f);
                    if v6 {
                        d[14 + 7] = 1;
                    } else {
                        d[14 + 8] = 1;
                        d[24..26].copy_from_slice(&[0, 0]);
                        let c = pollfwd_nf::parse::ipv4_header_checksum(&d[14..34]);
                        d[24..26].copy_from_slice(&c.to_be_bytes());
                    }
                    let mut m = pool().alloc().expect("mbuf");
                    assert!(m.set_len(d.len() as u16));
                    m.data_mut().copy_from_slice(&d);
                    if meta {
                        *m.meta_mut() = PktMeta::fresh(0, now);
                    }
                    m
                })
                .collect();
            let mut v = vec![Verdict::Continue; pkts.len()];
            let all = h.process(&mut fwd, &mut pkts, &mut v, (now, 0, meta));
            for v in &v {
                let v = all.unwrap_or(*v);
                assert!(
                    matches!(
                        v,
                        Verdict::Drop(DropReason::TtlExpired | DropReason::Ipv6HopLimit)
                    ),
                    "v6 {v6} meta {meta}: {v:?}"
                );
            }
            drop(h.take_originated());
            assert_eq!(
                counts(&t, v6).values().sum::<u64>(),
                before,
                "v6 {v6} meta {meta}: dropped packets counted for a next hop"
            );
        }
    }
}
