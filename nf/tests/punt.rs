//! The forward stage's punt path on real mbufs (docs/punt.md): with a TAP for interface 0,
//! what the stage answers itself (ARP requests, echo requests) stays the stage's, everything
//! else for the box (TCP, UDP instead of port unreachable, OSPF multicast, ARP replies after
//! learning) goes to the TAP's port unchanged, up to the rate limit (then `for_us`, counted);
//! an interface without a TAP behaves as before; forwarded traffic is untouched.
//!
//! One EAL per test binary (`--no-pci --in-memory`, unique file prefix); nothing polls here.

use std::fs::File;
use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};

use dpdk::{Mempool, PktMeta};
use pollfwd_nf::forward::punt::PuntMap;
use pollfwd_nf::forward::table::{FwdTable, Iface, resolve};
use pollfwd_nf::forward::{Forward, FwdParams, FwdShared};
use pollfwd_nf::nat::testpkt;
use pollfwd_pipeline::stage::Harness;
use pollfwd_pipeline::{DropReason, Verdict};

static EAL: OnceLock<(dpdk::Eal, File, Mempool)> = OnceLock::new();

fn pool() -> Mempool {
    EAL.get_or_init(|| {
        let (eal, lock) = dpdk::Eal::init_private("punttest", &[]).expect("EAL init");
        let pool = Mempool::create("punttest", 1023, 0, 2176, -1).expect("mempool");
        (eal, lock, pool)
    })
    .2
}

const HZ: u64 = 1_000_000;
/// The TAP's DPDK port id.
const TAP: u16 = 7;
const BOX: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const HOST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn iface(port: u16, addr: [u8; 4]) -> Iface {
    Iface {
        port,
        name: format!("p{port}"),
        mac: [0x02, 0, 0, 0, 0, port as u8 + 1],
        addr: Some((u32::from(Ipv4Addr::from(addr)), 24)),
        addr6: Vec::new(),
        mtu: 1500,
        mss_clamp: None,
        ra: false,
    }
}

/// A stage with ports 0 (192.0.2.1/24, TAP on port 7) and 1 (198.51.100.1/24, no TAP),
/// punting `rate` packets per second with `burst`.
fn stage(rate: u32, burst: u32) -> Forward {
    pool(); // EAL up before the LPM table
    let ifaces = vec![iface(0, [192, 0, 2, 1]), iface(1, [198, 51, 100, 1])];
    let entries = resolve(&ifaces, &[]).unwrap();
    let table = FwdTable::build(&entries, &[], -1).unwrap();
    let mut shared =
        FwdShared::new(ifaces, Vec::new(), &[], &[], FwdParams::default(), HZ).unwrap();
    shared.set_punt(PuntMap::new(&[(0, TAP)], rate, burst));
    Forward::new(Arc::new(shared), Arc::new(table), 0)
}

/// One burst on `in_port` at `now`: the verdicts and the number of packets the stage sent.
fn run(f: &mut Forward, frames: &[Vec<u8>], in_port: u16, now: u64) -> (Vec<Verdict>, usize) {
    let mut pkts: Vec<dpdk::Mbuf> = frames
        .iter()
        .map(|b| {
            let mut m = pool().alloc().expect("mbuf");
            assert!(m.set_len(b.len() as u16));
            m.data_mut().copy_from_slice(b);
            *m.meta_mut() = PktMeta::fresh(in_port, now);
            m
        })
        .collect();
    let mut v = vec![Verdict::Continue; pkts.len()];
    let mut h = Harness::new(pool(), HZ);
    h.process(f, &mut pkts, &mut v, (now, in_port, false));
    (v, h.take_originated().len())
}

/// An ARP frame (operation `op`) from HOST to BOX, with these MACs.
fn arp(op: u16, dst_mac: [u8; 6]) -> Vec<u8> {
    let host_mac = [0x02, 0, 0, 0, 0, 0x99];
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&host_mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&host_mac);
    f.extend_from_slice(&HOST.octets());
    f.extend_from_slice(&if op == 1 { [0; 6] } else { dst_mac });
    f.extend_from_slice(&BOX.octets());
    f.resize(60, 0);
    f
}

/// An OSPF hello-sized packet (IP protocol 89) from HOST to 224.0.0.5.
fn ospf_hello() -> Vec<u8> {
    let mut f = vec![
        0x01, 0x00, 0x5e, 0, 0, 5, 0x02, 0, 0, 0, 0, 0x99, 0x08, 0x00,
    ];
    let mut ip = vec![0x45, 0xc0, 0, 64, 0, 0, 0, 0, 1, 89, 0, 0];
    ip.extend_from_slice(&HOST.octets());
    ip.extend_from_slice(&[224, 0, 0, 5]);
    let sum = !ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .fold(0u32, |a, b| {
            let s = a + b;
            (s & 0xffff) + (s >> 16)
        }) as u16;
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.resize(64, 0);
    f.extend_from_slice(&ip);
    f
}

#[test]
fn what_the_stage_does_not_answer_goes_to_the_tap() {
    let mut f = stage(1000, 64);
    let tcp = testpkt::tcp((HOST, 40000), (BOX, 179), 0x02, 1, &[]);
    let udp = testpkt::udp((HOST, 40000), (BOX, 3784), &[1, 2, 3, 4]);
    let echo = testpkt::icmp_echo(HOST, BOX, 7, 1, false);
    let echo_reply = testpkt::icmp_echo(HOST, BOX, 7, 1, true);
    let frames = vec![
        tcp.clone(),
        udp,
        echo,
        echo_reply,
        arp(1, [0xff; 6]),
        arp(2, [0x02, 0, 0, 0, 0, 1]),
        ospf_hello(),
    ];
    let (v, sent) = run(&mut f, &frames, 0, 1000);
    assert_eq!(
        v,
        vec![
            Verdict::Tx(TAP), // TCP (BGP)
            Verdict::Tx(TAP), // UDP: punted, no port unreachable
            Verdict::Tx(0),   // echo request: answered here
            Verdict::Tx(TAP), // echo reply (to the kernel's ping)
            Verdict::Tx(0),   // ARP request for the box: answered here
            Verdict::Tx(TAP), // ARP reply to the box: learnt, and the kernel's too
            Verdict::Tx(TAP), // OSPF to 224.0.0.5
        ]
    );
    assert_eq!(sent, 0, "no ICMP error originated");
    let st = f.punt_stats();
    assert_eq!(st.punted.get(), 5);
    assert_eq!(st.punt_rate_limited.get(), 0);
    assert!(f.stats().arp_learned.get() >= 1, "the reply was learnt");

    // The same on the interface without a TAP: as before punting existed.
    let tcp1 = testpkt::tcp(
        (Ipv4Addr::new(198, 51, 100, 2), 40000),
        (Ipv4Addr::new(198, 51, 100, 1), 179),
        0x02,
        1,
        &[],
    );
    let udp1 = testpkt::udp(
        (Ipv4Addr::new(198, 51, 100, 2), 40000),
        (Ipv4Addr::new(198, 51, 100, 1), 3784),
        &[1, 2, 3, 4],
    );
    let (v, sent) = run(&mut f, &[tcp1, udp1], 1, 2000);
    assert_eq!(
        v,
        vec![
            Verdict::Drop(DropReason::ForUs),
            Verdict::Drop(DropReason::ForUs)
        ]
    );
    assert_eq!(sent, 1, "port unreachable for the UDP datagram");
    assert_eq!(f.punt_stats().punted.get(), 5);

    // The frame reaches the TAP as received.
    let mut pkts = vec![{
        let mut m = pool().alloc().unwrap();
        assert!(m.set_len(tcp.len() as u16));
        m.data_mut().copy_from_slice(&tcp);
        *m.meta_mut() = PktMeta::fresh(0, 3000);
        m
    }];
    let mut v = vec![Verdict::Continue];
    Harness::new(pool(), HZ).process(&mut f, &mut pkts, &mut v, (3000, 0, false));
    assert_eq!(v[0], Verdict::Tx(TAP));
    assert_eq!(pkts[0].data(), &tcp[..], "unchanged");
}

#[test]
fn punting_is_rate_limited() {
    // 10 per second, 4 back to back: a burst of 32 at one instant punts 4.
    let mut f = stage(10, 4);
    let frames: Vec<Vec<u8>> = (0..32)
        .map(|i| testpkt::udp((HOST, 40000 + i), (BOX, 9), &[0; 8]))
        .collect();
    let (v, sent) = run(&mut f, &frames, 0, 1_000_000);
    let punted = v.iter().filter(|x| **x == Verdict::Tx(TAP)).count();
    assert_eq!(punted, 4);
    assert!(
        v.iter()
            .filter(|x| **x != Verdict::Tx(TAP))
            .all(|x| *x == Verdict::Drop(DropReason::ForUs))
    );
    assert_eq!(
        sent, 0,
        "no port unreachable for those over the rate either"
    );
    let st = f.punt_stats();
    assert_eq!((st.punted.get(), st.punt_rate_limited.get()), (4, 28));
    // Half a second later (HZ ticks per second): 5 more tokens.
    let (v, _) = run(&mut f, &frames, 0, 1_500_000);
    assert_eq!(v.iter().filter(|x| **x == Verdict::Tx(TAP)).count(), 4);
    // The bucket holds at most `burst`: 5 tokens earned, 4 usable at once.
}

fn a6(s: &str) -> u128 {
    u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
}

/// Ethernet (to `dst_mac`) + an IPv6 packet written by `ndp` (`ip`: from the IPv6 header).
fn eth6(dst_mac: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99, 0x86, 0xdd]);
    f.extend_from_slice(ip);
    f
}

/// Ethernet + IPv6 header (next header `nh`, hop limit 64) + `payload`.
fn ip6(dst_mac: [u8; 6], src: u128, dst: u128, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[nh, 64]);
    ip.extend_from_slice(&src.to_be_bytes());
    ip.extend_from_slice(&dst.to_be_bytes());
    ip.extend_from_slice(payload);
    eth6(dst_mac, &ip)
}

#[test]
fn ipv6_for_the_box_goes_to_the_tap_but_neighbour_solicitations_are_answered() {
    use pollfwd_nf::wire::{ipv6, ndp};
    pool();
    let mut i0 = iface(0, [192, 0, 2, 1]);
    let box6 = a6("2001:db8:1::1");
    let host6 = a6("2001:db8:1::2");
    i0.addr6 = vec![(box6, 64)];
    let ll = i0.link_local().unwrap();
    let ifaces = vec![i0.clone()];
    let entries = resolve(&ifaces, &[]).unwrap();
    let entries6 = pollfwd_nf::forward::table6::resolve6(&ifaces, &[]).unwrap();
    let table = FwdTable::build(&entries, &entries6, -1).unwrap();
    let mut shared =
        FwdShared::new(ifaces, Vec::new(), &[], &[], FwdParams::default(), HZ).unwrap();
    shared.set_punt(PuntMap::new(&[(0, TAP)], 1000, 64));
    let mut f = Forward::new(Arc::new(shared), Arc::new(table), 0);

    let host_mac = [0x02, 0, 0, 0, 0, 0x99];
    let mut ns = vec![0u8; 128];
    let n = ndp::write_ns(
        &mut ns,
        host6,
        ipv6::solicited_node(box6),
        box6,
        Some(host_mac),
    );
    let ns = eth6(ipv6::multicast_mac(ipv6::solicited_node(box6)), &ns[..n]);
    let mut na = vec![0u8; 128];
    let n = ndp::write_na(&mut na, host6, box6, host6, host_mac, false, true, true);
    let na = eth6(i0.mac, &na[..n]);
    let tcp = ip6(
        i0.mac,
        host6,
        box6,
        6,
        &[
            0x9c, 0x40, 0, 179, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 2, 0xff, 0xff, 0, 0, 0, 0,
        ],
    );
    let udp_ll = ip6(
        i0.mac,
        a6("fe80::99"),
        ll,
        17,
        &[0x12, 0x34, 0x0e, 0xc8, 0, 12, 0, 0, 1, 2, 3, 4],
    );
    let ospf3 = ip6(
        ipv6::multicast_mac(a6("ff02::5")),
        a6("fe80::99"),
        a6("ff02::5"),
        89,
        &[3, 1, 0, 40, 0, 0, 0, 0],
    );
    let other_group = ip6(
        ipv6::multicast_mac(a6("ff05::5")),
        a6("fe80::99"),
        a6("ff05::5"),
        89,
        &[3, 1, 0, 40, 0, 0, 0, 0],
    );
    let (v, _) = run(&mut f, &[ns, na, tcp, udp_ll, ospf3, other_group], 0, 1000);
    assert_eq!(
        v,
        vec![
            Verdict::Tx(0),                           // NS for the box: answered (NA) here
            Verdict::Tx(TAP),                         // NA to the box: learnt, and the kernel's too
            Verdict::Tx(TAP),                         // TCP to the global address
            Verdict::Tx(TAP),                         // UDP to the link-local address
            Verdict::Tx(TAP),                         // OSPFv3 to ff02::5
            Verdict::Drop(DropReason::Ipv6Multicast), // not link scope: not punted
        ]
    );
    assert_eq!(f.stats().na_sent.get(), 1);
    assert!(f.stats().nd_learned.get() >= 1);
    assert_eq!(f.punt_stats().punted.get(), 4);
}
