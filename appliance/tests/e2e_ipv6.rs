//! IPv6 through the forward stage on net_pcap ports, frames built here and every frame the
//! box sends parsed and checksum-verified with smoltcp (an independent implementation): a
//! routed datagram (hop limit, MACs), time exceeded, no route, Packet Too Big with the egress
//! MTU, echo replies, neighbour solicitations answered, a next hop resolved with a multicast
//! solicitation, and malformed or out-of-scope packets dropped with their reasons (truncated,
//! extension-header chain past the frame, neighbour discovery with hop limit 64 or an option of
//! length 0, multicast source, link-local destination, ICMPv6 error about an ICMPv6 error).

mod common;

use std::net::Ipv6Addr;

use common::*;
use serde_json::Value;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv6DstUnreachable, Icmpv6Packet, Icmpv6Repr, Icmpv6TimeExceeded, Ipv6Packet, NdiscRepr,
};

const P0_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
const P1_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x01];
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x02];
const MTU: usize = 1400;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn config(lab: &Lab) -> std::path::PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 2047

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=inside.pcap,tx_pcap=p0-out.pcap"
address = ["10.0.0.1/24", "2001:db8:1::1/64"]

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=outside.pcap,tx_pcap=p1-out.pcap"
address = ["198.51.100.1/24", "2001:db8:2::1/64"]
mtu = {MTU}

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = ["forward"]

[control]
socket = "{sock}"

[forward]
routes = [{{ prefix = "2001:db8:99::/48", via = "2001:db8:2::2" }}]
neighbors = [{{ address = "2001:db8:2::2", mac = "02:00:00:00:01:02", port = "p1" }}]
arp_retry_ms = 100
arp_retries = 2
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

/// The Internet checksum of `data` with `init` added (RFC 1071).
fn csum(data: &[u8], init: u32) -> u16 {
    let mut s = init as u64;
    for c in data.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn pseudo(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, len: usize) -> u32 {
    let mut s = 0u32;
    for b in [src.octets(), dst.octets()] {
        for c in b.chunks(2) {
            s += u16::from_be_bytes([c[0], c[1]]) as u32;
        }
    }
    s + (len as u32 >> 16) + (len as u32 & 0xffff) + nh as u32
}

/// An Ethernet + IPv6 frame to `dst_mac` with `body` after the fixed header (next header
/// `nh`); `l4` is the upper layer's offset in `body` and `l4_nh` its protocol, whose checksum
/// (UDP at 6, ICMPv6 at 2) is filled in.
#[allow(clippy::too_many_arguments)]
fn frame(
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nh: u8,
    hop: u8,
    mut body: Vec<u8>,
    l4: usize,
    l4_nh: u8,
) -> Vec<u8> {
    let up_len = body.len() - l4;
    let at = match l4_nh {
        17 => Some(6),
        58 => Some(2),
        _ => None,
    };
    if let Some(at) = at {
        body[l4 + at..l4 + at + 2].copy_from_slice(&[0, 0]);
        let c = csum(&body[l4..], pseudo(src, dst, l4_nh, up_len));
        body[l4 + at..l4 + at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(body.len() as u16).to_be_bytes());
    f.extend_from_slice(&[nh, hop]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&body);
    f
}

fn udp(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, payload: usize) -> Vec<u8> {
    let len = 8 + payload;
    let mut b = vec![0x30, 0x39, 0x00, 0x35];
    b.extend_from_slice(&(len as u16).to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend((0..payload).map(|i| i as u8));
    frame(P0_MAC, src, dst, 17, hop, b, 0, 17)
}

fn icmp(dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, hop: u8, msg: Vec<u8>) -> Vec<u8> {
    frame(dst_mac, src, dst, 58, hop, msg, 0, 58)
}

fn echo(dst: Ipv6Addr, seq: u16) -> Vec<u8> {
    let mut m = vec![128, 0, 0, 0, 0x12, 0x34];
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"pollfwd-ipv6");
    icmp(P0_MAC, a("2001:db8:1::2"), dst, 64, m)
}

/// A neighbour solicitation for `target` from the host, with its link-layer address option
/// of `opt_len` units (1 is right; 0 is invalid).
fn ns(target: Ipv6Addr, hop: u8, opt_len: u8) -> Vec<u8> {
    let t = u128::from(target);
    let group = Ipv6Addr::from(0xff02_0000_0000_0000_0000_0001_ff00_0000u128 | (t & 0xff_ffff));
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[1, opt_len]);
    m.extend_from_slice(&HOST_MAC);
    let g = group.octets();
    let mac = [0x33, 0x33, g[12], g[13], g[14], g[15]];
    icmp(mac, a("2001:db8:1::2"), group, hop, m)
}

/// A solicited neighbour advertisement for `target` from the host to the box, without a
/// target link-layer address option (how Linux answers a unicast solicitation).
fn na_without_tll(target: Ipv6Addr) -> Vec<u8> {
    let mut m = vec![136, 0, 0, 0, 0x40, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    icmp(P0_MAC, a("2001:db8:1::2"), a("2001:db8:1::1"), 255, m)
}

/// (IPv6 source, destination, hop limit, ICMPv6 message bytes) of an ICMPv6 frame, after
/// smoltcp has checked the IPv6 header and the ICMPv6 checksum.
fn parse_icmp(f: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, Vec<u8>) {
    assert_eq!(&f[12..14], &[0x86, 0xdd], "IPv6: {f:02x?}");
    let ip = Ipv6Packet::new_checked(&f[14..]).expect("IPv6 header");
    assert_eq!(ip.next_header(), smoltcp::wire::IpProtocol::Icmpv6);
    let p = Icmpv6Packet::new_checked(ip.payload()).expect("ICMPv6");
    assert!(
        p.verify_checksum(&ip.src_addr(), &ip.dst_addr()),
        "checksum: {f:02x?}"
    );
    (
        ip.src_addr(),
        ip.dst_addr(),
        ip.hop_limit(),
        ip.payload().to_vec(),
    )
}

fn repr<'a>(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &'a [u8]) -> Icmpv6Repr<'a> {
    let p = Icmpv6Packet::new_checked(msg).unwrap();
    Icmpv6Repr::parse(src, dst, &p, &ChecksumCapabilities::default()).expect("valid ICMPv6")
}

fn fwd(s: &Value, k: &str) -> u64 {
    s["nf"]["forward"]["totals"][k].as_u64().unwrap_or(0)
}

#[test]
fn ipv6_routed_errors_echo_nd_and_malformed_on_pcap_ports() {
    let lab = Lab::new("ipv6");
    let host = a("2001:db8:1::2");
    let routed = udp(host, a("2001:db8:99::5"), 64, 32);
    let expiring = udp(host, a("2001:db8:99::5"), 1, 32);
    let no_route = udp(host, a("2001:db8:77::1"), 64, 32);
    let big = udp(host, a("2001:db8:99::5"), 64, MTU); // 40 + 8 + 1400 > 1400
    let unresolved = udp(host, a("2001:db8:2::99"), 64, 16);
    let mut truncated = udp(host, a("2001:db8:99::5"), 64, 32);
    truncated[18..20].copy_from_slice(&200u16.to_be_bytes()); // payload length past the frame
    // A destination options header whose length runs past the packet.
    let mut ext = vec![17, 200, 0, 0, 0, 0, 0, 0];
    ext.extend_from_slice(&[0x30, 0x39, 0, 0x35, 0, 8, 0, 0]);
    let ext_loop = frame(P0_MAC, host, a("2001:db8:99::5"), 60, 64, ext, 8, 17);
    let mcast_src = udp(a("ff02::1"), a("2001:db8:99::5"), 64, 8);
    let ll_dst = udp(host, a("fe80::99"), 64, 8);
    let mut tx_err = vec![1, 0, 0, 0, 0, 0, 0, 0]; // destination unreachable, about ...
    tx_err.extend_from_slice(&routed[14..62]); // ... a packet to an unrouted place
    let err_about_err = icmp(P0_MAC, host, a("2001:db8:77::1"), 64, tx_err);
    let input = vec![
        routed.clone(),
        expiring.clone(),
        no_route.clone(),
        big.clone(),
        echo(a("2001:db8:1::1"), 1),
        echo(a("2001:db8:2::1"), 2),
        ns(a("2001:db8:1::1"), 255, 1),
        // Confirms the host the solicitation just taught (no address in it: the known one);
        // about an unknown neighbour, it teaches nothing.
        na_without_tll(host),
        na_without_tll(a("2001:db8:1::77")),
        ns(a("2001:db8:1::1"), 64, 1),
        ns(a("2001:db8:1::1"), 255, 0),
        unresolved.clone(),
        truncated,
        ext_loop,
        mcast_src,
        ll_dst,
        err_about_err,
    ];
    write_frames(&lab.path("inside.pcap"), &input);
    write_frames(&lab.path("outside.pcap"), &[]);
    let cfg = config(&lab);
    let s = lab.run_json(&cfg, &["--duration", "2"]);
    let p0 = read_pcap(&lab.path("p0-out.pcap"));
    let p1 = read_pcap(&lab.path("p1-out.pcap"));

    // Out of p1: the routed datagram (hop limit 63, to the gateway's MAC, from p1), and the
    // solicitations for the unresolved connected host.
    let routed_out: Vec<&Vec<u8>> = p1.iter().filter(|f| f[20] == 17).collect();
    assert_eq!(routed_out.len(), 1, "one routed datagram: {p1:02x?}");
    let r = routed_out[0];
    assert_eq!(r[0..6], GW_MAC);
    assert_eq!(r[6..12], P1_MAC);
    assert_eq!(r[21], 63, "hop limit decremented");
    assert_eq!(r[14..21], routed[14..21]);
    assert_eq!(r[22..], routed[22..], "addresses and payload unchanged");
    let sols: Vec<&Vec<u8>> = p1.iter().filter(|f| f[20] == 58).collect();
    assert!(
        !sols.is_empty() && sols.len() <= 2,
        "solicitations: {sols:02x?}"
    );
    for f in &sols {
        let (src, dst, hop, msg) = parse_icmp(f);
        assert_eq!(
            f[0..6],
            [0x33, 0x33, 0xff, 0, 0, 0x99],
            "solicited-node MAC"
        );
        assert_eq!(dst, a("ff02::1:ff00:99"));
        assert_eq!(hop, 255);
        assert!(
            src.is_unicast_link_local(),
            "from p1's link-local address: {src}"
        );
        match repr(&src, &dst, &msg) {
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            }) => {
                assert_eq!(target_addr, a("2001:db8:2::99"));
                assert_eq!(lladdr.unwrap().as_bytes(), &P1_MAC);
            }
            o => panic!("{o:?}"),
        }
    }

    // Out of p0 (the errors the box originates and the answers it turns around leave in
    // either order): time exceeded, no route, packet too big, two echo replies, one
    // neighbour advertisement, and the address unreachable for the parked datagram.
    let p0m: Vec<(Ipv6Addr, Ipv6Addr, u8, Vec<u8>)> = p0.iter().map(|f| parse_icmp(f)).collect();
    for f in &p0 {
        assert_eq!(f[0..6], HOST_MAC, "back to the host");
        assert_eq!(f[6..12], P0_MAC, "from p0");
    }
    assert_eq!(p0m.len(), 7, "{p0m:?}");
    let me = a("2001:db8:1::1");
    let of_type = |t: u8| -> Vec<&(Ipv6Addr, Ipv6Addr, u8, Vec<u8>)> {
        p0m.iter().filter(|m| m.3[0] == t).collect()
    };
    let one = |t: u8| {
        let v = of_type(t);
        assert_eq!(v.len(), 1, "one ICMPv6 type {t}: {p0m:?}");
        v[0]
    };
    let quoted = |data: &[u8], sent: &[u8]| {
        assert_eq!(
            data,
            &sent[14 + 40..],
            "the offending packet's payload quoted"
        );
    };
    for m in &p0m {
        assert_eq!(m.1, host, "to the host");
    }
    let m = one(3);
    assert_eq!(m.0, me, "errors from the receiving interface's address");
    match repr(&m.0, &m.1, &m.3) {
        Icmpv6Repr::TimeExceeded {
            reason: Icmpv6TimeExceeded::HopLimitExceeded,
            header,
            data,
        } => {
            assert_eq!((header.src_addr, header.hop_limit), (host, 1));
            quoted(data, &expiring);
        }
        o => panic!("{o:?}"),
    }
    let unreach = of_type(1);
    assert_eq!(unreach.len(), 2, "{p0m:?}");
    for m in unreach {
        match repr(&m.0, &m.1, &m.3) {
            Icmpv6Repr::DstUnreachable {
                reason: Icmpv6DstUnreachable::NoRoute,
                header,
                data,
            } => {
                assert_eq!(header.dst_addr, a("2001:db8:77::1"));
                quoted(data, &no_route);
            }
            Icmpv6Repr::DstUnreachable {
                reason: Icmpv6DstUnreachable::AddrUnreachable,
                header,
                ..
            } => assert_eq!(header.dst_addr, a("2001:db8:2::99")),
            o => panic!("{o:?}"),
        }
    }
    let m = one(2);
    match repr(&m.0, &m.1, &m.3) {
        Icmpv6Repr::PktTooBig { mtu, header, data } => {
            assert_eq!(mtu, MTU as u32);
            assert_eq!(header.payload_len, 8 + MTU);
            assert_eq!(m.3.len(), 1280 - 40, "quoted up to the minimum MTU");
            assert_eq!(data, &big[54..54 + data.len()]);
        }
        o => panic!("{o:?}"),
    }
    let replies = of_type(129);
    assert_eq!(replies.len(), 2, "{p0m:?}");
    for (seq, from) in [(1, "2001:db8:1::1"), (2, "2001:db8:2::1")] {
        let m = replies
            .iter()
            .find(|m| m.0 == a(from))
            .unwrap_or_else(|| panic!("an echo reply from {from}: {replies:?}"));
        match repr(&m.0, &m.1, &m.3) {
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => assert_eq!((ident, seq_no, data), (0x1234, seq, &b"pollfwd-ipv6"[..])),
            o => panic!("{o:?}"),
        }
    }
    let m = one(136);
    assert_eq!((m.0, m.2), (me, 255));
    match repr(&m.0, &m.1, &m.3) {
        Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
            flags,
            target_addr,
            lladdr,
        }) => {
            assert_eq!(target_addr, me);
            assert_eq!(lladdr.unwrap().as_bytes(), &P0_MAC);
            assert!(flags.contains(smoltcp::wire::NdiscNeighborFlags::SOLICITED));
            assert!(flags.contains(smoltcp::wire::NdiscNeighborFlags::ROUTER));
            assert!(flags.contains(smoltcp::wire::NdiscNeighborFlags::OVERRIDE));
        }
        o => panic!("{o:?}"),
    }

    // Every drop with its reason.
    for (reason, n) in [
        ("ipv6_hop_limit", 1),
        ("ipv6_no_route", 2), // one of them an ICMPv6 error: no error about it
        ("ipv6_too_big", 1),
        ("nd_bad_hop_limit", 1),
        ("nd_bad_option", 1),
        ("ipv6_truncated", 1),
        ("ipv6_bad_ext_header", 1),
        ("ipv6_bad_source", 1),
        ("ipv6_link_local", 1),
        ("neighbor_held_expired", 1),
    ] {
        assert_eq!(drops(&s, reason), n, "{reason}: {s}");
    }
    assert_eq!(fwd(&s, "too_big_sent"), 1, "{s}");
    assert_eq!(fwd(&s, "na_sent"), 1, "{s}");
    assert_eq!(fwd(&s, "echo_replies_sent"), 2, "{s}");
    assert_eq!(
        fwd(&s, "nd_learned"),
        2,
        "the solicitor, then its confirmation: {s}"
    );
    assert_eq!(fwd(&s, "icmp_errors_sent"), 4, "{s}");
}

/// A config with `lcores` ([[lcore]] text) over p0 (in0.pcap) and p1 (in1.pcap), both sides
/// dual-stack, a static gateway for 2001:db8:99::/48 on p1; the host on p0 is no static
/// neighbour (learnt from its solicitation). Up to 4096 packets wait for a neighbour.
fn workers_config(lab: &Lab, lcores: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"
main_lcore = 0
main_cpu = 0
share_main_cpu = true

[mempool]
mbufs = 8191

[runtime]
ring_size = 8192

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=in0.pcap,tx_pcap=p0-out.pcap"
address = ["10.0.0.1/24", "2001:db8:1::1/64"]

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=in1.pcap,tx_pcap=p1-out.pcap"
address = ["198.51.100.1/24", "2001:db8:2::1/64"]

{lcores}

[classify]
rules = []

[forward]
routes = [{{ prefix = "2001:db8:99::/48", via = "2001:db8:2::2" }}]
neighbors = [{{ address = "2001:db8:2::2", mac = "02:00:00:00:01:02", port = "p1" }}]
arp_queue = 4096
"#,
        prefix = lab.prefix(),
    );
    lab.write("pollfwd.toml", &text)
}

/// UDP from `src` to `dst` entering on a port whose MAC is `port_mac`.
fn udp_on(port_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr, seq: u16) -> Vec<u8> {
    let mut b = vec![0x30, 0x39, 0x00, 0x35, 0, 16, 0, 0];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(b"abcdef");
    frame(port_mac, src, dst, 17, 64, b, 0, 17)
}

/// Routed frames of a pcap (UDP over IPv6), as (hop limit, destination MAC, UDP payload).
fn routed(frames: &[Vec<u8>]) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
    frames
        .iter()
        .filter(|f| f[12..14] == [0x86, 0xdd] && f[20] == 17)
        .map(|f| (f[21], f[0..6].to_vec(), f[62..].to_vec()))
        .collect()
}

#[test]
fn ipv6_in_pipeline_mode_and_on_two_workers_sharing_the_tables() {
    let host = a("2001:db8:1::2");
    let far = a("2001:db8:2::2");
    let n = 2000u16;
    let to_far: Vec<Vec<u8>> = (0..n)
        .map(|i| udp_on(P0_MAC, host, a("2001:db8:99::5"), i))
        .collect();
    let to_host: Vec<Vec<u8>> = (0..n).map(|i| udp_on(P1_MAC, far, host, i)).collect();
    // The host on p0 announces itself first (a solicitation for the box's address).
    let mut from_host = vec![ns(a("2001:db8:1::1"), 255, 1)];
    from_host.extend(to_far.iter().cloned());
    let check = |lab: &Lab, s: &Value, drops: Value| {
        let p1 = routed(&read_pcap(&lab.path("p1-out.pcap")));
        let p0 = routed(&read_pcap(&lab.path("p0-out.pcap")));
        assert_eq!(
            p1.len(),
            n as usize,
            "every datagram to 2001:db8:99::/48: {s}"
        );
        assert_eq!(p0.len(), n as usize, "every datagram to the host: {s}");
        for (k, (hop, mac, payload)) in p1.iter().enumerate() {
            assert_eq!((*hop, mac.as_slice()), (63, &GW_MAC[..]));
            assert_eq!(payload[..2], (k as u16).to_be_bytes(), "in order");
        }
        for (hop, mac, _) in &p0 {
            assert_eq!(
                (*hop, mac.as_slice()),
                (63, &HOST_MAC[..]),
                "the MAC learnt"
            );
        }
        assert_eq!(s["totals"]["drops_by_reason"], drops, "{s}");
    };

    // Pipeline: classify on lcore 1, forward on lcore 2, joined by a ring.
    let lab = Lab::new("ipv6-pipe");
    write_frames(&lab.path("in0.pcap"), &from_host);
    write_frames(&lab.path("in1.pcap"), &to_host);
    let cfg = workers_config(
        &lab,
        r#"
[[lcore]]
id = 1
cpu = 0
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["classify"]
pipeline_to = 2
tx_ports = []

[[lcore]]
id = 2
cpu = 1
stages = ["forward"]
"#,
    );
    let s = lab.run_json(&cfg, &["--exit-idle", "1500"]);
    check(&lab, &s, serde_json::json!({}));
    assert_eq!(
        read_pcap(&lab.path("p0-out.pcap"))
            .iter()
            .filter(|f| f.len() > 54 && f[54] == 136)
            .count(),
        1,
        "the solicitation answered"
    );

    // Two workers, one per port, sharing the routes and the neighbour tables: each forwards
    // the other's direction, and worker 2 sends to the host that worker 1 learnt (its
    // datagrams wait for it when they come first).
    let lab = Lab::new("ipv6-two");
    write_frames(&lab.path("in0.pcap"), &from_host);
    write_frames(&lab.path("in1.pcap"), &to_host);
    let cfg = workers_config(
        &lab,
        r#"
[[lcore]]
id = 1
cpu = 0
rx = [{ port = "p0" }]
stages = ["classify", "forward"]
# net_pcap has one TX queue per port: each worker transmits on the other's port only.
tx_ports = ["p1"]

[[lcore]]
id = 2
cpu = 1
rx = [{ port = "p1" }]
stages = ["classify", "forward"]
tx_ports = ["p0"]
"#,
    );
    let s = lab.run_json(&cfg, &["--exit-idle", "1500"]);
    // Worker 1 may not answer the solicitation: it has no TX queue on p0 (net_pcap has one
    // TX queue per port, given to worker 2 here).
    check(&lab, &s, serde_json::json!({"no_tx_queue": 1}));
}

#[test]
fn reload_adds_ipv6_to_an_ipv4_router_and_a_bad_ipv6_route_is_refused_with_its_position() {
    let lab = Lab::new("ipv6-reload");
    write_frames(&lab.path("inside.pcap"), &[]);
    write_frames(&lab.path("outside.pcap"), &[]);
    let cfg = config(&lab);
    // Start IPv4 only: no IPv6 address, route or neighbour.
    let v4_only = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(", \"2001:db8:1::1/64\"", "")
        .replace(", \"2001:db8:2::1/64\"", "")
        .replace(
            "routes = [{ prefix = \"2001:db8:99::/48\", via = \"2001:db8:2::2\" }]",
            "routes = []",
        )
        .replace(
            "neighbors = [{ address = \"2001:db8:2::2\", mac = \"02:00:00:00:01:02\", port = \"p1\" }]",
            "neighbors = []",
        );
    let full = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, &v4_only).unwrap();
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);
    let lk = control_ok(
        &sock,
        "route.lookup",
        serde_json::json!({"address": "2001:db8:99::1"}),
    );
    assert_eq!(lk["route"], Value::Null, "{lk}");
    assert_eq!(
        control_ok(&sock, "route.list", serde_json::json!({"family": "ipv6"}))["count"],
        0
    );

    std::fs::write(&cfg, &full).unwrap();
    let r = control_ok(&sock, "reload", serde_json::json!({}));
    assert!(r["applied"].to_string().contains("forward:"), "{r}");
    let lk = control_ok(
        &sock,
        "route.lookup",
        serde_json::json!({"address": "2001:db8:99::1"}),
    );
    assert_eq!(
        (
            lk["route"].as_str(),
            lk["next_hop"].as_str(),
            lk["port"].as_str()
        ),
        (Some("2001:db8:99::/48"), Some("2001:db8:2::2"), Some("p1")),
        "{lk}"
    );
    let n = control_ok(&sock, "neigh.list", serde_json::json!({"family": "ipv6"}));
    assert_eq!(n["neighbors"][0]["address"], "2001:db8:2::2", "{n}");
    assert_eq!(n["neighbors"][0]["state"], "static", "{n}");
    let ifs = control_ok(&sock, "interfaces", serde_json::json!({}));
    assert_eq!(
        ifs[0]["addresses"],
        serde_json::json!([
            "10.0.0.1/24",
            "2001:db8:1::1/64",
            "fe80::70:63ff:fe61:7000/64"
        ]),
        "{ifs}"
    );

    // A gateway off every IPv6 subnet: refused with its position, the routes stay.
    let bad = full.replace("via = \"2001:db8:2::2\"", "via = \"2001:db8:9::2\"");
    std::fs::write(&cfg, &bad).unwrap();
    let e = control_call(&sock, "reload", serde_json::json!({})).unwrap_err();
    let (l, c) = text_pos(&bad, "\"2001:db8:9::2\"");
    assert!(
        e.contains("not on a connected subnet") && e.contains(&format!("pollfwd.toml:{l}:{c}: ")),
        "expected pollfwd.toml:{l}:{c}: in {e}"
    );
    let lk = control_ok(
        &sock,
        "route.lookup",
        serde_json::json!({"address": "2001:db8:99::1"}),
    );
    assert_eq!(lk["next_hop"], "2001:db8:2::2", "old config in force: {lk}");
    stop(child);
}
