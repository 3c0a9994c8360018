//! The forward stage end to end: the real `pollfwd` binary routes between two net_pcap ports
//! with IPv4 addresses; the tests read what left each port and the JSON summary.
//!
//! Ports: p0 = 192.0.2.1/24 (net_pcap0, MAC 02:70:63:61:70:00), p1 = 198.51.100.1/24
//! (net_pcap1, MAC 02:70:63:61:70:01: net_pcap's fixed "pcap" address plus the port id).
//! Checksums in the output are verified with an independent RFC 1071 sum written here.

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use lab::traffic::{self, GenSpec, Proto, Sizes};
use serde_json::{Value, json};

const P0_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
const P1_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x01];
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const GW1_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x02];
const H9_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x09];
const GW0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// RFC 1071 one's-complement sum of big-endian 16-bit words (odd tail padded with zero).
fn sum16(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn ip_header_ok(f: &[u8]) -> bool {
    let hl = ((f[14] & 0xf) as usize) * 4;
    sum16(&f[14..14 + hl]) == 0xffff
}

/// The router lab: p0 reads `p0_in`, p1 reads `p1_in` (relative to the lab directory);
/// `forward` is appended verbatim (the [forward] section).
fn router(lab: &Lab, p0_in: &str, p1_in: &str, forward: &str) -> PathBuf {
    traffic::write_pcap(
        &GenSpec {
            count: 0,
            ..Default::default()
        },
        &lab.path("empty.pcap"),
    )
    .unwrap();
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 4095

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap={p0_in},tx_pcap=p0-out.pcap"
address = "192.0.2.1/24"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap={p1_in},tx_pcap=p1-out.pcap"
address = "198.51.100.1/24"

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = ["forward"]

[control]
socket = "{sock}"

{forward}
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

/// Routes and static neighbours most tests use.
const ROUTES: &str = r#"
[forward]
routes = [
  { prefix = "203.0.113.0/24", via = "198.51.100.2" },
  { prefix = "10.20.0.0/16", via = "192.0.2.2" },
]
neighbors = [
  { address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "p1" },
  { address = "198.51.100.9", mac = "02:00:00:00:01:09", port = "p1" },
  { address = "192.0.2.2", mac = "02:00:00:00:00:02", port = "p0" },
]
proxy_arp = [{ prefix = "192.0.2.77", port = "p0" }]
"#;

fn spec(src: &str, dst: &str, proto: Proto, count: usize) -> GenSpec {
    GenSpec {
        count,
        flows: 8,
        sizes: Sizes::List(vec![64, 128, 512, 1518]),
        proto,
        src_mac: HOST_MAC,
        dst_mac: P0_MAC,
        src_ip: ip(src),
        dst_ip: ip(dst),
        ..Default::default()
    }
}

/// An Ethernet/IPv4 ARP frame (RFC 826), padded to 60 bytes.
fn arp(op: u16, eth_dst: [u8; 6], sha: [u8; 6], spa: &str, tha: [u8; 6], tpa: &str) -> Vec<u8> {
    let mut f = eth_dst.to_vec();
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&ip(spa).octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&ip(tpa).octets());
    f.resize(60, 0);
    f
}

/// Checks a routed frame against the frame that went in.
fn assert_routed(i: usize, inp: &[u8], out: &[u8], dst_mac: [u8; 6], src_mac: [u8; 6]) {
    assert_eq!(out.len(), inp.len(), "frame {i}: length");
    assert_eq!(
        &out[0..6],
        &dst_mac,
        "frame {i}: destination MAC = next hop"
    );
    assert_eq!(&out[6..12], &src_mac, "frame {i}: source MAC = egress port");
    assert_eq!(&out[12..14], &inp[12..14]);
    assert_eq!(out[22], inp[22] - 1, "frame {i}: TTL - 1");
    assert!(ip_header_ok(out), "frame {i}: IPv4 header checksum");
    // Nothing else changed: the header apart from TTL and checksum, and the whole payload.
    assert_eq!(&out[14..22], &inp[14..22], "frame {i}");
    assert_eq!(&out[23..24], &inp[23..24], "frame {i}");
    assert_eq!(&out[26..], &inp[26..], "frame {i}: addresses and payload");
}

#[test]
fn routed_packets_leave_the_right_port_with_rewritten_macs_ttl_minus_one_and_valid_checksums() {
    let lab = Lab::new("fwd-route");
    // Via a static route (gateway on p1), to a connected host on p1, and back out of p0
    // through a gateway on p0 (hairpin).
    let mut input: Vec<Vec<u8>> = Vec::new();
    let a = spec("192.0.2.10", "203.0.113.5", Proto::Udp, 300);
    let b = spec("192.0.2.11", "198.51.100.9", Proto::Tcp, 200);
    let c = spec("192.0.2.12", "10.20.1.1", Proto::Icmp, 100);
    let (fa, fb, fc): (Vec<_>, Vec<_>, Vec<_>) = (
        traffic::generate(&a).collect(),
        traffic::generate(&b).collect(),
        traffic::generate(&c).collect(),
    );
    for i in 0..300 {
        input.push(fa[i].clone());
        if i < 200 {
            input.push(fb[i].clone());
        }
        if i < 100 {
            input.push(fc[i].clone());
        }
    }
    write_frames(&lab.path("in.pcap"), &input);
    let cfg = router(&lab, "in.pcap", "empty.pcap", ROUTES);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let p1: Vec<Vec<u8>> = read_pcap(&lab.path("p1-out.pcap"));
    let p0: Vec<Vec<u8>> = read_pcap(&lab.path("p0-out.pcap"));
    assert_eq!(
        p1.len(),
        500,
        "UDP via 198.51.100.2 and TCP to 198.51.100.9 leave p1"
    );
    assert_eq!(
        p0.len(),
        100,
        "ICMP to 10.20.0.0/16 leaves p0 via 192.0.2.2"
    );
    let (mut ia, mut ib) = (0, 0);
    for (i, o) in p1.iter().enumerate() {
        if o[23] == 17 {
            assert_routed(i, &fa[ia], o, GW1_MAC, P1_MAC);
            ia += 1;
        } else {
            assert_routed(i, &fb[ib], o, H9_MAC, P1_MAC);
            ib += 1;
        }
    }
    assert_eq!((ia, ib), (300, 200), "order kept per flow class");
    for (i, o) in p0.iter().enumerate() {
        assert_routed(i, &fc[i], o, GW0_MAC, P0_MAC);
    }
    let bytes_in: u64 = input.iter().map(|f| f.len() as u64).sum();
    assert_eq!(port(&s, "p0")["rx_packets"], 600);
    assert_eq!(port(&s, "p0")["rx_bytes"], bytes_in);
    assert_eq!(port(&s, "p1")["tx_packets"], 500);
    assert_eq!(port(&s, "p0")["tx_packets"], 100);
    assert_eq!(s["totals"]["drops"], 0, "{s}");
}

#[test]
fn ttl_one_gets_time_exceeded_on_the_ingress_port_and_no_route_gets_unreachable() {
    let lab = Lab::new("fwd-icmp");
    let mut ttl1 = spec("192.0.2.10", "203.0.113.5", Proto::Udp, 5);
    ttl1.ttl = 1;
    let mut ttl0 = spec("192.0.2.10", "203.0.113.6", Proto::Tcp, 2);
    ttl0.ttl = 0;
    let noroute = spec("192.0.2.10", "100.64.1.1", Proto::Udp, 3);
    let mut input: Vec<Vec<u8>> = traffic::generate(&ttl1).collect();
    input.extend(traffic::generate(&ttl0));
    input.extend(traffic::generate(&noroute));
    write_frames(&lab.path("in.pcap"), &input);
    let cfg = router(&lab, "in.pcap", "empty.pcap", ROUTES);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let out = read_pcap(&lab.path("p0-out.pcap"));
    assert!(read_pcap(&lab.path("p1-out.pcap")).is_empty());
    assert_eq!(
        out.len(),
        10,
        "one ICMP error per packet, out of the ingress port"
    );
    for (i, (o, orig)) in out.iter().zip(&input).enumerate() {
        let (want_type, want_code) = if i < 7 { (11, 0) } else { (3, 0) };
        assert_eq!(&o[0..6], &HOST_MAC, "{i}: to the sender's MAC");
        assert_eq!(&o[6..12], &P0_MAC, "{i}");
        assert_eq!(&o[12..14], &[0x08, 0x00]);
        assert_eq!(o[23], 1, "{i}: ICMP");
        assert_eq!(
            &o[26..30],
            &ip("192.0.2.1").octets(),
            "{i}: from the ingress address"
        );
        assert_eq!(&o[30..34], &orig[26..30], "{i}: to the original source");
        assert!(ip_header_ok(o), "{i}: IP checksum");
        let tl = u16::from_be_bytes([o[16], o[17]]) as usize;
        let icmp = &o[34..14 + tl];
        assert_eq!((icmp[0], icmp[1]), (want_type, want_code), "{i}: type/code");
        assert_eq!(sum16(icmp), 0xffff, "{i}: ICMP checksum");
        // RFC 792 / RFC 1812 4.3.2.3: the original datagram, verbatim, as much as fits in 576.
        let olen = u16::from_be_bytes([orig[16], orig[17]]) as usize;
        let q = olen.min(576 - 28);
        assert_eq!(&icmp[8..8 + q], &orig[14..14 + q], "{i}: quoted datagram");
    }
    assert_eq!(drops(&s, "ttl_expired"), 7, "{s}");
    assert_eq!(drops(&s, "no_route"), 3, "{s}");
    assert_eq!(s["totals"]["drops"], 10);
    assert_eq!(port(&s, "p0")["tx_packets"], 10);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let lab = Lab::new("fwd-icmp-rl");
    let noroute = spec("192.0.2.10", "100.64.1.1", Proto::Udp, 50);
    write_frames(
        &lab.path("in.pcap"),
        &traffic::generate(&noroute).collect::<Vec<_>>(),
    );
    let fwd = format!("{ROUTES}icmp_errors_per_s = 1\nicmp_burst = 4\n");
    let cfg = router(&lab, "in.pcap", "empty.pcap", &fwd);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    assert_eq!(drops(&s, "no_route"), 50, "{s}");
    let out = read_pcap(&lab.path("p0-out.pcap"));
    assert_eq!(out.len(), 4, "a burst of 4, then 1 per second");
    assert!(out.iter().all(|o| o[34] == 3));
    let f = &s["nf"]["forward"]["totals"];
    assert_eq!(
        (
            f["icmp_errors_sent"].as_u64(),
            f["icmp_rate_limited"].as_u64()
        ),
        (Some(4), Some(46))
    );
}

#[test]
fn arp_for_the_appliance_and_proxy_addresses_is_answered_and_ping_replied() {
    let lab = Lab::new("fwd-arp");
    let bcast = [0xff; 6];
    let req_me = arp(1, bcast, HOST_MAC, "192.0.2.10", [0; 6], "192.0.2.1");
    let req_proxy = arp(1, bcast, HOST_MAC, "192.0.2.10", [0; 6], "192.0.2.77");
    let req_other = arp(1, bcast, HOST_MAC, "192.0.2.10", [0; 6], "192.0.2.99");
    let req_wrong_port = arp(1, bcast, HOST_MAC, "192.0.2.10", [0; 6], "198.51.100.1");
    let truncated = req_me[..30].to_vec();
    let mut echo = spec("192.0.2.10", "192.0.2.1", Proto::Icmp, 3);
    echo.sizes = Sizes::Fixed(98);
    let pings: Vec<Vec<u8>> = traffic::generate(&echo).collect();
    let mut input = vec![
        req_me.clone(),
        req_proxy,
        req_other,
        req_wrong_port,
        truncated,
    ];
    input.extend(pings.iter().cloned());
    write_frames(&lab.path("in.pcap"), &input);
    let cfg = router(&lab, "in.pcap", "empty.pcap", ROUTES);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let out = read_pcap(&lab.path("p0-out.pcap"));
    assert_eq!(out.len(), 5, "2 ARP replies, 3 echo replies");
    // ARP reply, byte for byte (RFC 826): 192.0.2.1 is at p0's MAC.
    let want = arp(2, HOST_MAC, P0_MAC, "192.0.2.1", HOST_MAC, "192.0.2.10");
    assert_eq!(out[0], want);
    let want = arp(2, HOST_MAC, P0_MAC, "192.0.2.77", HOST_MAC, "192.0.2.10");
    assert_eq!(out[1], want, "proxy ARP");
    for (i, (o, p)) in out[2..].iter().zip(&pings).enumerate() {
        assert_eq!(o.len(), p.len());
        assert_eq!(&o[0..6], &HOST_MAC);
        assert_eq!(&o[6..12], &P0_MAC);
        assert_eq!(&o[26..30], &p[30..34], "{i}: from the pinged address");
        assert_eq!(&o[30..34], &p[26..30], "{i}: back to the sender");
        assert!(ip_header_ok(o), "{i}");
        assert_eq!(o[34], 0, "{i}: echo reply");
        assert_eq!(&o[38..], &p[38..], "{i}: id, seq, data echoed");
        assert_eq!(sum16(&o[34..]), 0xffff, "{i}: ICMP checksum");
    }
    assert!(read_pcap(&lab.path("p1-out.pcap")).is_empty());
    assert_eq!(
        drops(&s, "arp_invalid"),
        3,
        "other target, address of another port, truncated: {s}"
    );
    assert_eq!(s["totals"]["drops"], 3);
}

#[test]
fn an_unknown_next_hop_is_resolved_by_arp_and_the_parked_packets_sent() {
    let lab = Lab::new("fwd-resolve");
    // 40 packets to 192.0.2.7 (connected on p0, unknown), then its ARP reply: the packets
    // are parked, a request goes out, the reply is learnt and the packets follow it in order
    // (the 8 that share the reply's burst queue up behind the parked ones).
    let h7: [u8; 6] = [0x02, 0, 0, 0, 0, 0x07];
    let data: Vec<Vec<u8>> =
        traffic::generate(&spec("192.0.2.10", "192.0.2.7", Proto::Udp, 40)).collect();
    let mut input = data.clone();
    input.push(arp(2, P0_MAC, h7, "192.0.2.7", P0_MAC, "192.0.2.1"));
    write_frames(&lab.path("in.pcap"), &input);
    let cfg = router(&lab, "in.pcap", "empty.pcap", ROUTES);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let out = read_pcap(&lab.path("p0-out.pcap"));
    assert_eq!(out.len(), 41, "{s}");
    assert_eq!(
        out[0],
        arp(1, [0xff; 6], P0_MAC, "192.0.2.1", [0; 6], "192.0.2.7"),
        "request"
    );
    for (i, (o, d)) in out[1..].iter().zip(&data).enumerate() {
        assert_routed(i, d, o, h7, P0_MAC);
    }
    // Parked packets are neither sent nor dropped while they wait: the only drop is the ARP
    // reply, consumed by the appliance, and every packet in is accounted for once.
    assert_eq!(drops(&s, "for_us"), 1, "the ARP reply: {s}");
    assert_eq!(s["totals"]["drops"], 1, "{s}");
    assert_eq!(s["totals"]["rx_packets"].as_u64().unwrap(), 40 + 1, "{s}");
    let f = &s["nf"]["forward"]["totals"];
    assert_eq!(
        (f["held"].as_u64(), f["released"].as_u64()),
        (Some(40), Some(40)),
        "{s}"
    );
    assert_eq!(f["arp_learned"], 1, "{s}");
    assert_eq!(port(&s, "p0")["tx_packets"], 41);
}

#[test]
fn a_neighbours_new_mac_from_arp_is_used_by_the_very_next_packet() {
    let lab = Lab::new("fwd-newmac");
    // 192.0.2.7 (connected on p0) answers ARP with MAC A, 20 packets go to it, then it
    // answers with MAC B (a replaced NIC) in the middle of the same receive burst, and the
    // 20 packets after that must carry B: the stage's route memo (kept across bursts) is
    // forgotten at once when ARP changes a neighbour.
    let a: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    let b: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
    let data: Vec<Vec<u8>> =
        traffic::generate(&spec("192.0.2.10", "192.0.2.7", Proto::Udp, 40)).collect();
    let mut input = vec![arp(2, P0_MAC, a, "192.0.2.7", P0_MAC, "192.0.2.1")];
    input.extend_from_slice(&data[..20]);
    input.push(arp(2, P0_MAC, b, "192.0.2.7", P0_MAC, "192.0.2.1"));
    input.extend_from_slice(&data[20..]);
    write_frames(&lab.path("in.pcap"), &input);
    let cfg = router(&lab, "in.pcap", "empty.pcap", ROUTES);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let out = read_pcap(&lab.path("p0-out.pcap"));
    assert_eq!(out.len(), 40, "{s}");
    for (i, (o, d)) in out.iter().zip(&data).enumerate() {
        assert_routed(i, d, o, if i < 20 { a } else { b }, P0_MAC);
    }
    assert_eq!(drops(&s, "for_us"), 2, "the two ARP replies: {s}");
    assert_eq!(s["totals"]["drops"], 2, "{s}");
}

/// ARP cannot move or rewrite a neighbour from the wrong place: a reply claiming p0's
/// neighbour 192.0.2.7 that arrives on p1 (not p1's subnet), and a reply claiming the static
/// neighbour 192.0.2.2, are not learned and are counted (`arp_not_learned`); traffic keeps
/// going to the real MACs out of p0.
#[test]
fn arp_from_another_port_or_over_a_static_neighbour_is_not_learned() {
    let lab = Lab::new("fwd-arp-poison");
    let real: [u8; 6] = [0x02, 0, 0, 0, 0, 0x07];
    let evil: [u8; 6] = [0x02, 0, 0, 0, 0, 0xee];
    let static_mac: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    // p0: the real neighbour answers, a spoofed reply for the static one, then (two rounds of
    // the worker later, after p1's frames) traffic to both.
    let via_static: Vec<Vec<u8>> =
        traffic::generate(&spec("192.0.2.10", "10.20.0.1", Proto::Udp, 64)).collect();
    let direct: Vec<Vec<u8>> =
        traffic::generate(&spec("192.0.2.10", "192.0.2.7", Proto::Udp, 20)).collect();
    let mut p0 = vec![
        arp(2, P0_MAC, real, "192.0.2.7", P0_MAC, "192.0.2.1"),
        arp(2, P0_MAC, evil, "192.0.2.2", P0_MAC, "192.0.2.1"),
    ];
    p0.extend(via_static.iter().cloned());
    p0.extend(direct.iter().cloned());
    // p1: the same address claimed from the other port, addressed to the appliance.
    let p1 = vec![arp(2, P1_MAC, evil, "192.0.2.7", P1_MAC, "198.51.100.1")];
    write_frames(&lab.path("p0.pcap"), &p0);
    write_frames(&lab.path("p1.pcap"), &p1);
    let cfg = router(&lab, "p0.pcap", "p1.pcap", ROUTES);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let out = read_pcap(&lab.path("p0-out.pcap"));
    assert_eq!(out.len(), 84, "every data packet out of p0: {s}");
    for (i, (o, d)) in out.iter().zip(via_static.iter().chain(&direct)).enumerate() {
        assert_routed(i, d, o, if i < 64 { static_mac } else { real }, P0_MAC);
    }
    assert!(read_pcap(&lab.path("p1-out.pcap")).is_empty());
    let f = &s["nf"]["forward"]["totals"];
    assert_eq!(f["arp_not_learned"], 2, "{f}");
    assert_eq!(f["arp_learned"], 1, "{f}");
    assert_eq!(drops(&s, "for_us"), 3, "the three replies: {s}");
}

#[test]
fn a_silent_next_hop_is_asked_arp_retries_times_then_given_up() {
    let lab = Lab::new("fwd-silent");
    let data: Vec<Vec<u8>> =
        traffic::generate(&spec("192.0.2.10", "198.51.100.33", Proto::Udp, 5)).collect();
    write_frames(&lab.path("in.pcap"), &data);
    let fwd = format!("{ROUTES}arp_retry_ms = 100\narp_retries = 3\narp_queue = 2\n");
    let cfg = router(&lab, "in.pcap", "empty.pcap", &fwd);
    let s = lab.run_json(&cfg, &["--exit-idle", "1200"]);
    let out = read_pcap(&lab.path("p1-out.pcap"));
    let req = arp(
        1,
        [0xff; 6],
        P1_MAC,
        "198.51.100.1",
        [0; 6],
        "198.51.100.33",
    );
    assert_eq!(
        out,
        vec![req.clone(), req.clone(), req],
        "3 requests, 100 ms apart, no data"
    );
    assert_eq!(
        drops(&s, "neighbor_held_expired"),
        2,
        "the wait queue held 2, freed when the neighbour failed: {s}"
    );
    assert_eq!(drops(&s, "neighbor_unresolved"), 3, "the rest: {s}");
    assert_eq!(s["totals"]["drops"], 5, "every packet in, once: {s}");
    let f = &s["nf"]["forward"]["totals"];
    assert_eq!(f["held"], 2, "{s}");
    assert_eq!(f["held_expired"], 2, "{s}");
    assert_eq!(f["released"], 0, "{s}");
    assert_eq!(f["arp_requests_sent"], 3, "{s}");
    // RFC 1812 4.3.3.1: each packet that waited for the silent next hop gets "host
    // unreachable" back out of its ingress port, quoting it (TTL already decremented).
    let back = read_pcap(&lab.path("p0-out.pcap"));
    assert_eq!(back.len(), 2, "{s}");
    for (e, d) in back.iter().zip(&data) {
        assert_eq!((e[23], e[34], e[35]), (1, 3, 1), "ICMP host unreachable");
        assert_eq!(e[30..34], d[26..30], "to the sender");
        assert!(ip_header_ok(e));
        assert_eq!(e[42 + 12..42 + 20], d[26..34], "quoting its addresses");
        assert_eq!(e[42 + 8], d[22] - 1, "and its decremented TTL");
    }
    assert_eq!(f["icmp_errors_sent"], 2, "{s}");
}

#[test]
fn packets_still_parked_when_pollfwd_stops_are_counted() {
    let lab = Lab::new("fwd-parked-stop");
    let data: Vec<Vec<u8>> =
        traffic::generate(&spec("192.0.2.10", "198.51.100.33", Proto::Udp, 5)).collect();
    write_frames(&lab.path("in.pcap"), &data);
    // The neighbour would be given 15 s; the run ends after 300 idle ms with 2 parked.
    let fwd = format!("{ROUTES}arp_retry_ms = 5000\narp_retries = 3\narp_queue = 2\n");
    let cfg = router(&lab, "in.pcap", "empty.pcap", &fwd);
    let s = lab.run_json(&cfg, &["--exit-idle", "300"]);
    assert_eq!(drops(&s, "shutdown"), 2, "parked at the stop: {s}");
    assert_eq!(
        drops(&s, "neighbor_unresolved"),
        3,
        "beyond the wait queue: {s}"
    );
    assert_eq!(s["totals"]["drops"], 5, "every packet in, once: {s}");
    assert_eq!(s["totals"]["rx_packets"], 5, "{s}");
    assert_eq!(s["nf"]["forward"]["totals"]["held"], 2, "{s}");
}

#[test]
fn malformed_and_non_ipv4_frames_are_dropped_with_their_reasons() {
    let lab = Lab::new("fwd-bad");
    let good = spec("192.0.2.10", "203.0.113.5", Proto::Udp, 1);
    let g = traffic::frame(&good, 0);
    let fix = |f: &mut Vec<u8>| {
        f[24..26].copy_from_slice(&[0, 0]);
        let hl = ((f[14] & 0xf) as usize * 4).max(20);
        let c = !sum16(&f[14..14 + hl]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    };
    // An IPv4 packet labelled IPv6 (its version nibble says 4), and an EtherType nobody routes.
    let mut ipv6 = g.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let mut other = g.clone();
    other[12..14].copy_from_slice(&[0x88, 0xb5]);
    let mut short_len = g.clone();
    short_len[16..18].copy_from_slice(&19u16.to_be_bytes());
    fix(&mut short_len);
    let mut loop_src = g.clone();
    loop_src[26..30].copy_from_slice(&[127, 0, 0, 1]);
    fix(&mut loop_src);
    let mut mcast_dst = g.clone();
    mcast_dst[30..34].copy_from_slice(&[224, 0, 0, 5]);
    fix(&mut mcast_dst);
    let mut zero_dst = g.clone();
    zero_dst[30..34].copy_from_slice(&[0, 1, 2, 3]);
    fix(&mut zero_dst);
    let mut bcast = g.clone();
    bcast[30..34].copy_from_slice(&[255; 4]);
    fix(&mut bcast);
    let mut subnet_bcast = g.clone();
    subnet_bcast[30..34].copy_from_slice(&[192, 0, 2, 255]);
    fix(&mut subnet_bcast);
    let mut to_me_tcp = traffic::frame(&spec("192.0.2.10", "192.0.2.1", Proto::Tcp, 1), 0);
    fix(&mut to_me_tcp);
    let mut l2_bcast = g.clone();
    l2_bcast[..6].copy_from_slice(&[0xff; 6]);

    let garbage = traffic::garbage_frames(); // runt, version 5, IHL 3, too long, bad checksum
    let mut input = Vec::new();
    for _ in 0..3 {
        input.push(g.clone());
        input.extend(garbage.iter().cloned());
        for f in [
            &ipv6,
            &other,
            &short_len,
            &loop_src,
            &mcast_dst,
            &zero_dst,
            &bcast,
            &subnet_bcast,
            &to_me_tcp,
            &l2_bcast,
        ] {
            input.push(f.clone());
        }
        input.push(vec![0xff]);
    }
    write_frames(&lab.path("in.pcap"), &input);
    let cfg = router(&lab, "in.pcap", "empty.pcap", ROUTES);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let d = &s["totals"]["drops_by_reason"];
    let want = json!({
        "runt": 6, "ipv4_bad_version": 3, "ipv4_bad_ihl": 3, "ipv4_truncated": 3,
        "ipv4_bad_checksum": 3, "not_ipv4": 3, "ipv6_bad_version": 3, "ipv4_bad_length": 3, "ipv4_bad_source": 3,
        "ipv4_bad_dest": 6, "for_us": 9, "l2_broadcast": 3,
    });
    assert_eq!(d, &want, "{s}");
    // The stage counts the received bytes itself (forward first, no metadata): runts, frames
    // too short for the fast check and slow-path ones included.
    let bytes_in: u64 = input.iter().map(|f| f.len() as u64).sum();
    assert_eq!(port(&s, "p0")["rx_bytes"], bytes_in, "{s}");
    assert_eq!(s["lcores"][0]["rx_bytes"], bytes_in, "the worker's count");
    assert_eq!(
        port(&s, "p1")["tx_packets"],
        3,
        "only the good frames are routed"
    );
    assert_eq!(read_pcap(&lab.path("p1-out.pcap")).len(), 3);
    assert!(
        read_pcap(&lab.path("p0-out.pcap")).is_empty(),
        "no ICMP about bad frames"
    );
}

#[test]
fn route_and_neighbour_operations_over_the_control_socket() {
    let lab = Lab::new("fwd-ops");
    let cfg = router(&lab, "empty.pcap", "empty.pcap", ROUTES);
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    // Stopped by SIGTERM at the end; the duration is only a backstop.
    let child = lab.spawn(&["--config", cfg.to_str().unwrap(), "--duration", "180"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "control socket did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = || {
        let l = control_ok(&sock, "route.list", json!({}));
        // 2 interfaces x (connected, local, broadcast) + 2 static.
        assert_eq!(l["count"], 8, "{l}");
        let st = control_ok(&sock, "route.list", json!({"kind": "static"}));
        assert_eq!(
            st["routes"],
            json!([
                {"prefix": "10.20.0.0/16", "kind": "static", "origin": "static", "via": "192.0.2.2", "port": "p0"},
                {"prefix": "203.0.113.0/24", "kind": "static", "origin": "static", "via": "198.51.100.2", "port": "p1"},
            ])
        );
        let a = control_ok(
            &sock,
            "route.add",
            json!({"prefix": "100.64.0.0/10", "via": "198.51.100.2"}),
        );
        assert_eq!(
            (
                a["added"].as_u64(),
                a["routes"].as_u64(),
                a["workers"].as_u64()
            ),
            (Some(1), Some(9), Some(1))
        );
        let lk = control_ok(&sock, "route.lookup", json!({"address": "100.100.1.1"}));
        assert_eq!(lk["route"], "100.64.0.0/10");
        assert_eq!(lk["next_hop"], "198.51.100.2");
        assert_eq!(lk["port"], "p1");
        let e = control_call(
            &sock,
            "route.add",
            json!({"prefix": "100.64.0.0/10", "via": "192.0.2.2"}),
        )
        .unwrap_err();
        assert!(e.contains("exists"), "{e}");
        let e = control_call(
            &sock,
            "route.add",
            json!({"prefix": "100.64.0.0/10", "via": "10.1.1.1"}),
        )
        .unwrap_err();
        assert!(e.contains("not on a connected subnet"), "{e}");
        let e = control_call(&sock, "route.del", json!({"prefix": "192.0.2.0/24"})).unwrap_err();
        assert!(e.contains("connected route"), "{e}");
        let r = control_ok(
            &sock,
            "route.add",
            json!({"prefix": "100.64.0.0/10", "via": "192.0.2.2", "replace": true}),
        );
        assert_eq!(r["replaced"], 1);
        assert_eq!(
            control_ok(&sock, "route.lookup", json!({"address": "100.64.0.1"}))["port"],
            "p0"
        );
        // 10,000 routes in one call.
        let many: Vec<Value> = (0..10_000u32)
            .map(|i| json!({"prefix": format!("{}/24", Ipv4Addr::from(0xac10_0000u32 + (i << 8))), "via": "198.51.100.2"}))
            .collect();
        // A request line is at most 64 KiB: 10 calls of 1,000 routes.
        for (k, chunk) in many.chunks(1000).enumerate() {
            let m = control_ok(&sock, "route.add", json!({"routes": chunk}));
            assert_eq!(m["added"], 1000);
            assert_eq!(m["routes"], 9 + 1000 * (k as u64 + 1));
            eprintln!(
                "route.add: {} routes compiled in {} ms",
                m["routes"], m["build_ms"]
            );
        }
        let lk = control_ok(&sock, "route.lookup", json!({"address": "172.55.15.9"}));
        assert_eq!(lk["route"], "172.55.15.0/24", "{lk}");
        let d = control_ok(
            &sock,
            "route.del",
            json!({"prefixes": ["100.64.0.0/10", "172.55.15.0/24"]}),
        );
        assert_eq!(d["routes"], 10_007);
        assert_eq!(
            control_ok(&sock, "route.lookup", json!({"address": "172.55.15.9"}))["route"],
            Value::Null
        );
        let n = control_ok(&sock, "neigh.list", json!({}));
        assert_eq!(n["count"], 3, "{n}");
        // The same figures for Prometheus: the neighbours, and every forward.stats counter
        // per worker.
        let m = String::from_utf8(ctl(&sock, &["metrics"]).stdout).unwrap();
        assert!(m.contains("\npollfwd_forward_neighbors 3\n"), "{m}");
        assert!(
            m.contains("# TYPE pollfwd_forward_arp_learned_total counter"),
            "{m}"
        );
        assert!(
            m.contains("pollfwd_forward_icmp_errors_sent_total{worker=\"0\"} "),
            "{m}"
        );
        assert_eq!(
            n["neighbors"][0],
            json!({"address": "192.0.2.2", "mac": "02:00:00:00:00:02", "port": "p0", "state": "static", "age_s": 0.0, "probes": 0})
        );
        // The generic CLI path: pollfwdctl call.
        let out = Command::new(bin("pollfwdctl"))
            .args([
                "--socket",
                sock.to_str().unwrap(),
                "call",
                "route.lookup",
                r#"{"address":"203.0.113.9"}"#,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["route"], "203.0.113.0/24");
        let f = control_ok(&sock, "forward.stats", json!({}));
        assert_eq!(f["routes"], 10_007);
        assert_eq!(f["workers"].as_array().map(Vec::len), Some(1));
    };
    let out = run_then_stop(child, 20, run);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn reload_applies_new_routes_addresses_and_neighbours_live() {
    let lab = Lab::new("fwd-reload");
    let cfg = router(&lab, "empty.pcap", "empty.pcap", ROUTES);
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    // Stopped by SIGTERM at the end; the duration is only a backstop.
    let child = lab.spawn(&["--config", cfg.to_str().unwrap(), "--duration", "180"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "control socket did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = || {
        control_ok(
            &sock,
            "route.add",
            json!({"prefix": "100.64.0.0/10", "via": "198.51.100.2"}),
        );
        // New file: p1 renumbered, one route changed, one neighbour added, one removed.
        let text = std::fs::read_to_string(&cfg).unwrap();
        let new_routes = r#"
[forward]
routes = [
  { prefix = "203.0.113.0/24", via = "198.51.100.130" },
  { prefix = "10.20.0.0/16", via = "192.0.2.2" },
]
neighbors = [
  { address = "198.51.100.130", mac = "02:00:00:00:01:82", port = "p1" },
  { address = "192.0.2.2", mac = "02:00:00:00:00:02", port = "p0" },
]
"#;
        let text = text
            .replace(ROUTES, new_routes)
            .replace("198.51.100.1/24", "198.51.100.129/25");
        std::fs::write(&cfg, text).unwrap();
        let r = control_ok(&sock, "reload", json!({}));
        let applied = r["applied"].to_string();
        assert!(
            applied.contains("forward: 8 route(s) on 1 worker(s)"),
            "{r}"
        );
        let lk = control_ok(&sock, "route.lookup", json!({"address": "203.0.113.1"}));
        assert_eq!(lk["next_hop"], "198.51.100.130");
        let lk = control_ok(&sock, "route.lookup", json!({"address": "198.51.100.5"}));
        assert_eq!(
            lk["route"],
            Value::Null,
            "198.51.100.0/25 is no longer connected: {lk}"
        );
        let lk = control_ok(&sock, "route.lookup", json!({"address": "198.51.100.129"}));
        assert_eq!(lk["kind"], "local");
        // `interfaces` shows the address in force.
        let ifs = control_ok(&sock, "interfaces", json!({}));
        assert_eq!(ifs[1]["name"], "p1", "{ifs}");
        assert_eq!(ifs[1]["address"], "198.51.100.129/25", "{ifs}");
        assert_eq!(
            control_ok(&sock, "route.lookup", json!({"address": "100.64.0.1"}))["route"],
            Value::Null,
            "routes added live are replaced by the file's"
        );
        let n = control_ok(&sock, "neigh.list", json!({}));
        let addrs: Vec<&str> = n["neighbors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["address"].as_str().unwrap())
            .collect();
        assert_eq!(addrs, ["192.0.2.2", "198.51.100.130"], "{n}");
        // A reload with a bad route is refused as a whole, with its position.
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("198.51.100.130\" }", "10.0.0.1\" }");
        std::fs::write(&cfg, &text).unwrap();
        let e = control_call(&sock, "reload", json!({})).unwrap_err();
        // The position of the gateway that is not on a connected subnet.
        let (l, c) = text_pos(&text, "\"10.0.0.1\"");
        assert!(
            e.contains("not on a connected subnet")
                && e.contains(&format!("pollfwd.toml:{l}:{c}: ")),
            "expected pollfwd.toml:{l}:{c}: in {e}"
        );
        assert_eq!(
            control_ok(&sock, "route.lookup", json!({"address": "203.0.113.1"}))["next_hop"],
            "198.51.100.130",
            "old config stays in force"
        );
    };
    let out = run_then_stop(child, 20, run);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn random_frames_never_crash_and_every_packet_is_accounted_for() {
    let lab = Lab::new("fwd-fuzz");
    // Deterministic pseudo-random frames: raw bytes, ARP-typed and IPv4-typed ones, and IPv4
    // headers that pass validation (correct checksum) with random fields and destinations in
    // and around the configured routes, so every path of the stage runs.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let dsts = [
        [192, 0, 2, 1],
        [192, 0, 2, 7],
        [192, 0, 2, 255],
        [198, 51, 100, 9],
        [198, 51, 100, 40],
        [203, 0, 113, 5],
        [10, 20, 3, 4],
        [100, 64, 0, 1],
        [224, 0, 0, 1],
        [127, 0, 0, 1],
    ];
    let mut frames = Vec::new();
    for k in 0..3000 {
        let len = 1 + (rnd() % 160) as usize;
        let mut f: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        if len >= 14 {
            f[..6].copy_from_slice(&P0_MAC);
            match k % 4 {
                0 => f[12..14].copy_from_slice(&[0x08, 0x06]),
                1 | 2 => f[12..14].copy_from_slice(&[0x08, 0x00]),
                _ => {}
            }
        }
        if k % 4 == 2 && len >= 34 {
            let tl = (len - 14) as u16;
            f[14] = 0x45;
            f[16..18].copy_from_slice(&tl.to_be_bytes());
            f[20..22].copy_from_slice(&[0, 0]);
            f[26..30].copy_from_slice(&[192, 0, 2, 10 + (rnd() % 5) as u8]);
            f[30..34].copy_from_slice(&dsts[(rnd() % dsts.len() as u64) as usize]);
            f[24..26].copy_from_slice(&[0, 0]);
            let c = !sum16(&f[14..34]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
        frames.push(f);
    }
    write_frames(&lab.path("in.pcap"), &frames);
    let fwd = format!(
        "{ROUTES}arp_retry_ms = 50\narp_retries = 2\nicmp_errors_per_s = 100000\nicmp_burst = 10000\n"
    );
    let cfg = router(&lab, "in.pcap", "empty.pcap", &fwd);
    let s = lab.run_json(&cfg, &["--exit-idle", "600"]);
    assert_eq!(port(&s, "p0")["rx_packets"], 3000);
    let bytes_in: u64 = frames.iter().map(|f| f.len() as u64).sum();
    assert_eq!(port(&s, "p0")["rx_bytes"], bytes_in, "{s}");
    assert_eq!(s["lcores"][0]["rx_bytes"], bytes_in, "the worker's count");
    let f = &s["nf"]["forward"]["totals"];
    let n = |v: &Value| v.as_u64().unwrap();
    let drops = n(&s["totals"]["drops"]);
    let tx = n(&s["totals"]["tx_packets"]);
    let originated =
        n(&f["icmp_errors_sent"]) + n(&f["arp_requests_sent"]) + n(&f["fragments_sent"])
            - n(&f["fragmented"]);
    let released = n(&f["released"]);
    // Every received frame was dropped with a reason or sent (forwarded or answered in place);
    // what the stage sent besides were its own packets and the parked ones it released later.
    assert_eq!(drops + tx - originated - released, 3000, "{s}");
    assert!(
        n(&f["icmp_errors_sent"]) > 0 && n(&s["totals"]["drops_by_reason"]["arp_invalid"]) > 0,
        "{s}"
    );
}

/// A scan of a connected /16 (2000 new addresses per loop, replayed for 2 s) against a
/// 64-slot neighbour table: broadcast ARP requests stay within `arp_requests_per_s`, the scan
/// recycles its own incomplete entries, a neighbour resolved before the scan (H) keeps
/// forwarding every packet, and one that answers only after the table filled up (Z) is learnt
/// and used.
#[test]
fn a_scan_of_a_connected_subnet_neither_fills_the_neighbour_table_nor_floods_arp() {
    let lab = Lab::new("fwd-scan");
    const H_MAC: [u8; 6] = [0x02, 0, 0, 0, 2, 0x05];
    const Z_MAC: [u8; 6] = [0x02, 0, 0, 0, 2, 0x06];
    let one = |dst: Ipv4Addr| {
        let mut spec = spec("192.0.2.10", "10.2.0.5", Proto::Udp, 1);
        spec.dst_ip = dst;
        spec.flows = 1;
        spec.sizes = Sizes::List(vec![64]);
        traffic::frame(&spec, 0)
    };
    const LOOP: u64 = 2020;
    let mut p0: Vec<Vec<u8>> = (0..2000u32)
        .map(|k| one(Ipv4Addr::from(0x0a02_0100 + k * 13)))
        .collect();
    p0.extend((0..10).map(|_| one(ip("10.2.0.5"))));
    p0.extend((0..10).map(|_| one(ip("10.2.0.6"))));
    write_frames(&lab.path("in.pcap"), &p0);
    // p1: H asks for the router first (learnt), then 50000 frames of another EtherType keep
    // p1 busy while the scan fills the table, then Z's answer.
    let mut p1 = vec![arp(1, [0xff; 6], H_MAC, "10.2.0.5", [0; 6], "10.2.0.1")];
    let mut filler = vec![0xffu8; 6];
    filler.extend_from_slice(&[0x02, 0, 0, 0, 2, 0x07, 0x88, 0xb5]);
    filler.resize(60, 0);
    p1.extend(std::iter::repeat_n(filler, 50_000));
    p1.push(arp(2, P1_MAC, Z_MAC, "10.2.0.6", P1_MAC, "10.2.0.1"));
    write_frames(&lab.path("p1.pcap"), &p1);
    let fwd = "[forward]\nneighbor_capacity = 64\narp_retry_ms = 10\narp_retries = 1\n\
               arp_requests_per_s = 200\n";
    let cfg = router(&lab, "in.pcap,infinite_rx=1", "p1.pcap", fwd);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("198.51.100.1/24", "10.2.0.1/16");
    std::fs::write(&cfg, text).unwrap();
    let s = lab.run_json(&cfg, &["--duration", "2"]);

    let out = read_pcap(&lab.path("p1-out.pcap"));
    let to = |mac: [u8; 6]| {
        out.iter()
            .filter(|f| f[0..6] == mac && f[12..14] == [0x08, 0x00])
            .count() as u64
    };
    let rx = port(&s, "p0")["rx_packets"].as_u64().unwrap();
    let (loops, rest) = (rx / LOOP, rx % LOOP);
    let h_in = loops * 10 + rest.saturating_sub(2000).min(10);
    assert!(loops >= 2, "{rx} frames in");
    assert_eq!(to(H_MAC), h_in, "every packet to H forwarded: {s}");
    assert!(to(Z_MAC) > 0, "Z learnt after the table filled up: {s}");
    let requests = out
        .iter()
        .filter(|f| f[0..6] == [0xff; 6] && f[12..14] == [0x08, 0x06])
        .count() as u64;
    let uptime = s["uptime_s"].as_f64().unwrap_or(2.0);
    assert!(
        requests as f64 <= 200.0 * (uptime + 0.5) + 16.0,
        "{requests} ARP requests in {uptime} s"
    );
    let f = &s["nf"]["forward"];
    assert!(f["totals"]["arp_rate_limited"].as_u64().unwrap() > 0, "{f}");
    assert!(f["neigh_reclaimed"].as_u64().unwrap() > 0, "{f}");
    assert_eq!(f["totals"]["arp_learned"], 2, "H and Z: {f}");
}
