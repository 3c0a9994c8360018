//! The forward stage's IPv6 fast loop against its general path: the same bursts (plain IPv6
//! packets mixed with ones that must leave the fast loop — hop limit 1, too big, an extension
//! header, a link-layer multicast frame, to the box, no route, a link-local source, a next hop
//! to resolve, IPv4) go through one stage as the first stage of a chain without metadata
//! (`meta_valid` false: the fast loops), through one with metadata (the chained loop, which
//! gives IPv6 runs to the same IPv6 loop) and through one made to take the general path for
//! every packet (`Forward::one`, `general_path_only`), and must come out identical: verdicts, every byte of
//! every packet, and the packets the stage originates (ICMPv6 errors, echo replies,
//! solicitations). Expected frames are checked too (hop limit, MACs, ports).
//!
//! One EAL per test binary (`--no-pci --in-memory`, unique file prefix), started while holding
//! the machine's busy-polling lock; nothing polls here.

use std::fs::File;
use std::net::Ipv6Addr;
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
        let (eal, lock) = dpdk::Eal::init_private("fwd6fast", &[]).expect("EAL init");
        let pool = Mempool::create("fwd6fast", 1023, 0, 2176, -1).expect("mempool");
        (eal, lock, pool)
    })
    .2
}

fn ip(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const P1_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
const P2_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x12];
const GW1_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
const GW2_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
const H5_MAC: [u8; 6] = [2, 0, 0, 0, 2, 5];
const H6_MAC: [u8; 6] = [2, 0, 0, 0, 2, 6];
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];
/// p1's MTU: 40 + payload above it is too big.
const MTU1: u16 = 1400;

fn ifaces() -> Vec<Iface> {
    vec![
        Iface {
            port: 0,
            name: "p0".into(),
            mac: IN_MAC,
            addr: Some((0xc000_0201, 24)),
            addr6: vec![(ip("2001:db8:1::1"), 64)],
            mtu: 1500,
            mss_clamp: None,
            ra: false,
        },
        Iface {
            port: 1,
            name: "p1".into(),
            mac: P1_MAC,
            addr: Some((0xcb00_7101, 24)),
            addr6: vec![(ip("2001:db8:2::1"), 64)],
            mtu: MTU1,
            mss_clamp: None,
            ra: false,
        },
        Iface {
            port: 2,
            name: "p2".into(),
            mac: P2_MAC,
            addr: None,
            addr6: vec![(ip("2001:db8:3::1"), 64)],
            mtu: 1500,
            mss_clamp: None,
            ra: false,
        },
    ]
}

fn table() -> Arc<FwdTable> {
    pool(); // EAL up
    let ifaces = ifaces();
    let v4 = table::resolve(
        &ifaces,
        &[StaticRoute {
            prefix: Prefix::new(0xc612_0000, 16),
            via: Some(0xcb00_7102),
            port: None,
        }],
    )
    .unwrap();
    let r6 = |p: &str, via: &str| StaticRoute6 {
        prefix: Prefix6::parse(p).unwrap(),
        via: Some(ip(via)),
        port: None,
    };
    let v6 = table6::resolve6(
        &ifaces,
        &[
            r6("2001:db8:99::/48", "2001:db8:2::2"),
            r6("2001:db8:98::/48", "2001:db8:3::2"),
        ],
    )
    .unwrap();
    Arc::new(FwdTable::build(&v4, &v6, -1).unwrap())
}

/// A stage of its own (neighbour tables, counters, rate limits) on the shared table.
fn stage(t: &Arc<FwdTable>) -> Forward {
    stage_on(t, ifaces())
}

/// [`stage`] with these interfaces.
fn stage_on(t: &Arc<FwdTable>, ifaces: Vec<Iface>) -> Forward {
    let n6 = |a: &str, mac, port| StaticNeighbor6 {
        ip: ip(a),
        mac,
        port,
    };
    let shared = FwdShared::new(
        ifaces,
        Vec::new(),
        &[StaticNeighbor {
            ip: 0xcb00_7102,
            mac: GW1_MAC,
            port: 1,
        }],
        &[
            n6("2001:db8:2::2", GW1_MAC, 1),
            n6("2001:db8:3::2", GW2_MAC, 2),
            n6("2001:db8:3::5", H5_MAC, 2),
            n6("2001:db8:3::6", H6_MAC, 2),
        ],
        FwdParams::default(),
        dpdk::tsc_hz(),
    )
    .unwrap();
    Forward::new(Arc::new(shared), t.clone(), 0)
}

/// An IPv6 frame to the box's p0 from `src` to `dst`: next header `nh`, hop limit `hop`,
/// `payload` bytes after the fixed header (a valid-looking UDP or TCP header first).
fn v6(src: &str, dst: &str, nh: u8, hop: u8, payload: usize) -> Vec<u8> {
    let mut f = vec![0u8; 54 + payload];
    f[..6].copy_from_slice(&IN_MAC);
    f[6..12].copy_from_slice(&HOST_MAC);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    pollfwd_nf::wire::ipv6::write_header(&mut f[14..], payload as u16, nh, hop, ip(src), ip(dst));
    if payload >= 8 {
        f[54..56].copy_from_slice(&1024u16.to_be_bytes());
        f[56..58].copy_from_slice(&9u16.to_be_bytes());
        if nh == 17 {
            f[58..60].copy_from_slice(&(payload as u16).to_be_bytes());
        }
    }
    let body = 62.min(f.len());
    for (k, b) in f[body..].iter_mut().enumerate() {
        *b = k as u8;
    }
    f
}

fn udp(dst: &str) -> Vec<u8> {
    v6("2001:db8:1::10", dst, 17, 64, 24)
}

/// An ICMPv6 echo request to `dst` with a valid checksum.
fn echo(dst: &str) -> Vec<u8> {
    let mut f = v6("2001:db8:1::10", dst, 58, 64, 16);
    f[54] = 128;
    f[55] = 0;
    f[56..58].fill(0);
    f[58..62].copy_from_slice(&[0, 7, 0, 1]);
    let c = checksum6(&f[22..38], &f[38..54], 58, &f[54..]);
    f[56..58].copy_from_slice(&c.to_be_bytes());
    f
}

fn checksum6(src: &[u8], dst: &[u8], nh: u8, body: &[u8]) -> u16 {
    let mut s: u64 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64;
        }
    };
    add(src);
    add(dst);
    add(&(body.len() as u32).to_be_bytes());
    add(&[0, 0, 0, nh]);
    add(body);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv4 UDP frame to `dst` (routed to p1).
fn v4(dst: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&IN_MAC);
    f[6..12].copy_from_slice(&HOST_MAC);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[192, 0, 2, 10]);
    f[30..34].copy_from_slice(&dst);
    let c = pollfwd_nf::parse::ipv4_header_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// The mixed burst and what each frame must become: (frame, expected verdict).
fn mixed() -> Vec<(Vec<u8>, Verdict)> {
    let tx = Verdict::Tx;
    let drop = Verdict::Drop;
    let mut hbh = v6("2001:db8:1::10", "2001:db8:99::6", 0, 64, 32);
    hbh[54] = 17; // hop-by-hop options (8 bytes: PadN), then UDP
    hbh[55] = 0;
    hbh[56] = 1;
    hbh[57] = 4;
    hbh[58..62].fill(0);
    let mut group = udp("2001:db8:99::7");
    group[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    vec![
        (udp("2001:db8:99::1"), tx(1)),
        (udp("2001:db8:99::2"), tx(1)),
        (udp("2001:db8:98::1"), tx(2)),
        (udp("2001:db8:99::3"), tx(1)),
        (
            v6("2001:db8:1::10", "2001:db8:99::4", 17, 1, 24),
            drop(DropReason::Ipv6HopLimit),
        ),
        (
            v6(
                "2001:db8:1::10",
                "2001:db8:99::5",
                17,
                64,
                MTU1 as usize - 39,
            ),
            drop(DropReason::Ipv6TooBig),
        ),
        (
            v6(
                "2001:db8:1::10",
                "2001:db8:99::5",
                17,
                64,
                MTU1 as usize - 40,
            ),
            tx(1),
        ),
        (hbh, tx(1)),
        (group, drop(DropReason::L2Broadcast)),
        (udp("2001:db8:99::8"), tx(1)),
        (udp("2001:db8:1::1"), drop(DropReason::ForUs)),
        (udp("2001:db8:77::1"), drop(DropReason::Ipv6NoRoute)),
        (v4([198, 18, 0, 1]), tx(1)),
        (v4([198, 18, 0, 2]), tx(1)),
        (udp("2001:db8:3::5"), tx(2)),
        (udp("2001:db8:3::6"), tx(2)),
        (udp("2001:db8:3::5"), tx(2)),
        (v6("2001:db8:1::10", "2001:db8:99::9", 6, 64, 20), tx(1)),
        (
            v6("fe80::10", "2001:db8:99::a", 17, 64, 24),
            drop(DropReason::Ipv6LinkLocal),
        ),
        (echo("2001:db8:1::1"), tx(0)),
        (udp("2001:db8:99::b"), tx(1)),
        (udp("2001:db8:3::7"), Verdict::Held),
        (udp("2001:db8:99::c"), tx(1)),
        (udp("2001:db8:3::7"), Verdict::Held),
        (udp("2001:db8:3::5"), tx(2)),
        (udp("2001:db8:99::d"), tx(1)),
        // Hop limit 255: routed, by the general path; but a neighbour solicitation (ICMPv6
        // 135, hop limit 255) to an address beyond the box is never routed.
        (v6("2001:db8:1::10", "2001:db8:99::e", 17, 255, 24), tx(1)),
        (ns_beyond("2001:db8:99::f"), drop(DropReason::NdNotRouted)),
    ]
}

/// A neighbour solicitation (hop limit 255) from a host to a unicast address behind the box.
fn ns_beyond(dst: &str) -> Vec<u8> {
    let mut f = v6("2001:db8:1::10", dst, 58, 255, 24);
    f[54] = 135;
    f[55] = 0;
    f[56..58].fill(0);
    f[58..62].fill(0);
    f[62..78].copy_from_slice(&ip(dst).to_be_bytes());
    let c = checksum6(&f[22..38], &f[38..54], 58, &f[54..]);
    f[56..58].copy_from_slice(&c.to_be_bytes());
    f
}

fn mbufs(frames: &[Vec<u8>], meta: bool, now: u64) -> Vec<Mbuf> {
    frames
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
        .collect()
}

/// What a stage made of a burst: each packet's verdict and bytes, and the packets it
/// originated (port, bytes).
type Outcome = (Vec<(Verdict, Vec<u8>)>, Vec<(u16, Vec<u8>)>);

fn run(h: &mut Harness, fwd: &mut Forward, frames: &[Vec<u8>], meta: bool, now: u64) -> Outcome {
    let mut pkts = mbufs(frames, meta, now);
    let mut v = vec![Verdict::Continue; pkts.len()];
    let all = h.process(fwd, &mut pkts, &mut v, (now, 0, meta));
    let out = pkts
        .iter()
        .zip(&v)
        .map(|(m, &v)| (all.unwrap_or(v), m.data().to_vec()))
        .collect();
    let orig = h
        .take_originated()
        .iter()
        .map(|m| (m.meta().out_port, m.data().to_vec()))
        .collect();
    (out, orig)
}

#[test]
fn fast_loop_and_general_path_agree_on_a_mixed_burst() {
    let t = table();
    // The fast loops without metadata (`fast`) and with it (`chained`: after stages that
    // parsed the packets), against the general path for every packet (`slow`).
    let (mut fast, mut chained, mut slow) = (stage(&t), stage(&t), stage(&t));
    slow.general_path_only(true);
    let mut h = Harness::new(pool(), dpdk::tsc_hz());
    let now = dpdk::rdtsc();
    let case = mixed();
    let frames: Vec<Vec<u8>> = case.iter().map(|c| c.0.clone()).collect();
    // Twice: the second time the memo of the first burst is in force (and 3::7 has parked
    // packets).
    for round in 0..2 {
        let f = run(&mut h, &mut fast, &frames, false, now + round);
        let c = run(&mut h, &mut chained, &frames, true, now + round);
        let s = run(&mut h, &mut slow, &frames, true, now + round);
        for (k, ((fv, fb), (sv, sb))) in f.0.iter().zip(&s.0).enumerate() {
            assert_eq!(fv, sv, "round {round} packet {k}: verdict");
            assert_eq!(fb, sb, "round {round} packet {k}: bytes");
            assert_eq!(*fv, case[k].1, "round {round} packet {k}: expected verdict");
        }
        assert_eq!(c.0, s.0, "round {round}: with metadata, verdicts and bytes");
        assert_eq!(c.1, s.1, "round {round}: with metadata, originated packets");
        assert_eq!(f.1, s.1, "round {round}: originated packets");
        // Errors: hop limit, too big, no route, port unreachable, beyond scope (the first
        // round); an echo reply goes out as the packet itself; a solicitation for 3::7 (the
        // first round only: the second is not due yet).
        let types: Vec<(u16, u8)> = f.1.iter().map(|(p, b)| (*p, b[54])).collect();
        if round == 0 {
            assert_eq!(types, [(0, 3), (0, 2), (0, 1), (0, 1), (0, 1), (2, 135)]);
        }
    }
    // The forwarded frames themselves: hop limit decremented, MACs of the next hop and port.
    let f = run(&mut h, &mut fast, &frames, false, now + 2).0;
    let check = |k: usize, dst: [u8; 6], src: [u8; 6]| {
        let b = &f[k].1;
        assert_eq!(&b[..6], &dst, "packet {k} dst MAC");
        assert_eq!(&b[6..12], &src, "packet {k} src MAC");
        assert_eq!(b[21], 63, "packet {k} hop limit");
        assert_eq!(
            &b[12..21],
            &frames[k][12..21],
            "packet {k} unchanged before the hop limit"
        );
        assert_eq!(
            &b[22..],
            &frames[k][22..],
            "packet {k} unchanged after the hop limit"
        );
    };
    check(0, GW1_MAC, P1_MAC);
    check(2, GW2_MAC, P2_MAC);
    check(7, GW1_MAC, P1_MAC);
    check(14, H5_MAC, P2_MAC);
    check(15, H6_MAC, P2_MAC);
}

#[test]
fn a_burst_of_plain_packets_to_one_port_gets_one_verdict() {
    let t = table();
    let mut fwd = stage(&t);
    let mut h = Harness::new(pool(), dpdk::tsc_hz());
    let frames: Vec<Vec<u8>> = (0..32)
        .map(|k| udp(&format!("2001:db8:99:{k:x}::1")))
        .collect();
    let now = dpdk::rdtsc();
    let mut pkts = mbufs(&frames, false, now);
    let mut v = vec![Verdict::Continue; pkts.len()];
    assert_eq!(
        h.process(&mut fwd, &mut pkts, &mut v, (now, 0, false)),
        Some(Verdict::Tx(1))
    );
    for m in &pkts {
        assert_eq!(&m.data()[..12], &[GW1_MAC, P1_MAC].concat()[..]);
        assert_eq!(m.data()[21], 63);
    }
    // One packet for another port: verdicts per packet.
    let mut mixed = frames.clone();
    mixed[17] = udp("2001:db8:98::1");
    let mut pkts = mbufs(&mixed, false, now);
    assert_eq!(
        h.process(&mut fwd, &mut pkts, &mut v, (now, 0, false)),
        None
    );
    assert_eq!(v[17], Verdict::Tx(2));
    assert!(
        v.iter()
            .enumerate()
            .all(|(k, &x)| k == 17 || x == Verdict::Tx(1))
    );
}

/// An IPv6 TCP SYN to `dst` with an MSS option of 1460, checksum right.
fn syn6(dst: &str) -> Vec<u8> {
    let mut f = v6("2001:db8:1::10", dst, 6, 64, 24);
    f[58..62].copy_from_slice(&7u32.to_be_bytes()); // sequence number
    f[62..66].fill(0);
    f[66] = 6 << 4; // 24-byte header
    f[67] = 0x02; // SYN
    f[68..70].copy_from_slice(&0xffffu16.to_be_bytes());
    f[70..74].fill(0);
    f[74..78].copy_from_slice(&[2, 4, 0x05, 0xb4]);
    let c = checksum6(&f[22..38], &f[38..54], 6, &f[54..78]);
    f[70..72].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn syns_from_another_lcore_are_clamped_as_the_general_path_clamps_them() {
    // p0 clamps the MSS; the SYNs come in a burst from a ring (no receive port in the
    // burst, p0 in each packet's metadata), as after a stage on another lcore.
    let t = table();
    let clamping = || {
        let mut i = ifaces();
        i[0].mss_clamp = Some(1200);
        i
    };
    let (mut chained, mut slow) = (stage_on(&t, clamping()), stage_on(&t, clamping()));
    slow.general_path_only(true);
    let mut h = Harness::new(pool(), dpdk::tsc_hz());
    let now = dpdk::rdtsc();
    let frames: Vec<Vec<u8>> = (1..=8)
        .map(|k| syn6(&format!("2001:db8:99::{k}")))
        .collect();
    let mut outs = Vec::new();
    for fwd in [&mut chained, &mut slow] {
        let mut pkts = mbufs(&frames, true, now);
        let mut v = vec![Verdict::Continue; pkts.len()];
        let all = h.process_ring(fwd, &mut pkts, &mut v, now);
        let out: Vec<(Verdict, Vec<u8>)> = pkts
            .iter()
            .zip(&v)
            .map(|(m, &v)| (all.unwrap_or(v), m.data().to_vec()))
            .collect();
        outs.push(out);
    }
    assert_eq!(outs[0], outs[1], "verdicts and bytes");
    for (k, (v, b)) in outs[0].iter().enumerate() {
        assert_eq!(*v, Verdict::Tx(1), "packet {k}");
        assert_eq!(
            &b[76..78],
            &1200u16.to_be_bytes(),
            "packet {k}: MSS clamped"
        );
        assert_eq!(
            checksum6(&b[22..38], &b[38..54], 6, &b[54..78]),
            0,
            "packet {k}: TCP checksum"
        );
    }
    assert_eq!(chained.stats().mss_clamped.get(), 8);
    assert_eq!(slow.stats().mss_clamped.get(), 8);
}
