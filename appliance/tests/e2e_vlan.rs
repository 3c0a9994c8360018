//! VLAN sub-interfaces end to end: the real `pollfwd` binary on two net_pcap ports. p0 is a
//! trunk: untagged 10.0.0.1/24 on the port itself, VLAN 10 (10.10.0.1/24), VLAN 20
//! (10.20.0.1/24) and a QinQ interface (802.1ad outer 100, inner 30: 10.30.0.1/24); p1 is
//! untagged (198.51.100.1/24). Frames are routed between VLANs, the untagged network, QinQ
//! and p1, and every output is checked tag by tag (TPID, VLAN id, PCP cleared to 0), with its
//! addresses, TTL and checksums; ARP and ping are answered on a VLAN with its tag; ARP asks on
//! the VLAN of the next hop; unknown VLANs and triple tags are dropped as `vlan_unknown`;
//! counters per interface (summary, `interfaces`, Prometheus) are exact. A second test runs
//! classify -> nat -> forward with NAT's inside on VLAN 10 and an ACL rule on VLAN 20.

mod common;

use std::net::Ipv4Addr;

use common::*;
use pollfwd_nf::nat::testpkt::{self, verify};
use serde_json::Value;

const P0_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
const P1_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x01];
const H0: ([u8; 6], Ipv4Addr) = ([2, 0, 0, 0, 0, 0x02], Ipv4Addr::new(10, 0, 0, 2));
const H10: ([u8; 6], Ipv4Addr) = ([2, 0, 0, 0, 0x10, 0x02], Ipv4Addr::new(10, 10, 0, 2));
const H20: ([u8; 6], Ipv4Addr) = ([2, 0, 0, 0, 0x20, 0x02], Ipv4Addr::new(10, 20, 0, 2));
const H30: ([u8; 6], Ipv4Addr) = ([2, 0, 0, 0, 0x30, 0x02], Ipv4Addr::new(10, 30, 0, 2));
const GW: ([u8; 6], Ipv4Addr) = ([2, 0, 0, 0, 1, 0x02], Ipv4Addr::new(198, 51, 100, 2));
const POOL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const FAR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
/// Behind H20, the gateway of 192.0.2.0/24 on VLAN 20 (in one test).
const FAR2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);
const Q: u16 = 0x8100;
const AD: u16 = 0x88a8;

fn config(lab: &Lab, stages: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 2047

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=trunk.pcap,tx_pcap=p0-out.pcap"
address = "10.0.0.1/24"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=wan.pcap,tx_pcap=p1-out.pcap"
address = "198.51.100.1/24"

[[interface]]
name = "v10"
port = "p0"
vlan = 10
address = "10.10.0.1/24"

[[interface]]
name = "v20"
port = "p0"
vlan = 20
address = "10.20.0.1/24"

[[interface]]
name = "q100.30"
port = "p0"
outer_vlan = 100
vlan = 30
address = "10.30.0.1/24"

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = {stages}

[control]
socket = "{sock}"

[forward]
routes = [{{ prefix = "203.0.113.0/24", via = "198.51.100.2" }}]
neighbors = [
  {{ address = "10.0.0.2", mac = "02:00:00:00:00:02", port = "p0" }},
  {{ address = "10.10.0.2", mac = "02:00:00:00:10:02", port = "v10" }},
  {{ address = "10.20.0.2", mac = "02:00:00:00:20:02", port = "v20" }},
  {{ address = "10.30.0.2", mac = "02:00:00:00:30:02", port = "q100.30" }},
  {{ address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "p1" }},
]
{extra}
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

/// `f` with tags `(TPID, TCI)` inserted after its MAC addresses (outer first).
fn tag(f: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut o = f[..12].to_vec();
    for (tpid, tci) in tags {
        o.extend(tpid.to_be_bytes());
        o.extend(tci.to_be_bytes());
    }
    o.extend(&f[12..]);
    o
}

/// A frame's tags `(TPID, TCI)` and the frame without them.
fn untag(f: &[u8]) -> (Vec<(u16, u16)>, Vec<u8>) {
    let mut tags = Vec::new();
    let mut off = 12;
    while [Q, AD].contains(&u16::from_be_bytes([f[off], f[off + 1]])) {
        tags.push((
            u16::from_be_bytes([f[off], f[off + 1]]),
            u16::from_be_bytes([f[off + 2], f[off + 3]]),
        ));
        off += 4;
    }
    let mut o = f[..12].to_vec();
    o.extend(&f[off..]);
    (tags, o)
}

/// A UDP frame from host `src` (its MAC) to `dst`, addressed to the router's p0 MAC.
fn udp(src: ([u8; 6], Ipv4Addr), dst: Ipv4Addr, id: u16) -> Vec<u8> {
    let mut f = testpkt::udp((src.1, 5000 + id), (dst, 7), &[id as u8; 18]);
    f[0..6].copy_from_slice(&P0_MAC);
    f[6..12].copy_from_slice(&src.0);
    f
}

/// An ARP request from `sha`/`spa` for `tpa`, broadcast.
fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend(sha);
    f.extend([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend(sha);
    f.extend(spa.octets());
    f.extend([0; 6]);
    f.extend(tpa.octets());
    f.resize(60, 0);
    f
}

fn dst_ip(f: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(f[30], f[31], f[32], f[33])
}

/// The single frame of `out` (untagged view) matching `pred`, with its tags.
fn find(out: &[Vec<u8>], what: &str, pred: impl Fn(&[u8]) -> bool) -> (Vec<(u16, u16)>, Vec<u8>) {
    let m: Vec<_> = out
        .iter()
        .map(|f| untag(f))
        .filter(|(_, f)| pred(f))
        .collect();
    assert_eq!(m.len(), 1, "{what}: {} frames match", m.len());
    m.into_iter().next().unwrap()
}

/// A routed copy of `sent` (untagged view): to `to`'s MAC from `from`, TTL one less,
/// checksums valid, addresses and payload unchanged.
fn assert_routed(got: &[u8], sent: &[u8], to: [u8; 6], from: [u8; 6]) {
    let (_, sent) = untag(sent);
    assert_eq!(got[0..6], to, "to the next hop");
    assert_eq!(got[6..12], from, "from the egress interface");
    assert_eq!(got[22], sent[22] - 1, "TTL - 1");
    assert_eq!(got[26..34], sent[26..34], "addresses");
    assert_eq!(got[34..], sent[34..], "UDP");
    verify(got).unwrap_or_else(|e| panic!("{e}: {got:02x?}"));
}

fn iface<'a>(v: &'a Value, name: &str) -> &'a Value {
    v.as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no interface {name} in {v}"))
}

/// Rewrites the config file `cfg`: each `(from, to)` in turn.
fn edit(cfg: &std::path::Path, edits: &[(&str, &str)]) {
    let mut text = std::fs::read_to_string(cfg).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "no {from} in the config");
        text = text.replace(from, to);
    }
    std::fs::write(cfg, text).unwrap();
}

/// The edit that routes 192.0.2.0/24 (FAR2) through H20, a gateway on VLAN 20: what forward's
/// fast loops take.
const FAR2_ROUTE: (&str, &str) = (
    r#"via = "198.51.100.2" }]"#,
    r#"via = "198.51.100.2" }, { prefix = "192.0.2.0/24", via = "10.20.0.2" }]"#,
);

/// Interface counters in summary `s`: `rx` received on interface `rx_if` (bytes without
/// their one tag), `tx` sent on `tx_if` (bytes with it).
fn assert_iface_traffic<R: AsRef<[u8]>, T: AsRef<[u8]>>(
    s: &Value,
    (rx_if, rx): (&str, &[R]),
    (tx_if, tx): (&str, &[T]),
) {
    let c = |i: &str, k: &str| iface(&s["interfaces"], i)[k].as_u64().unwrap();
    let bytes = |v: &[R]| v.iter().map(|f| f.as_ref().len() as u64 - 4).sum::<u64>();
    assert_eq!(c(rx_if, "rx_packets"), rx.len() as u64, "{s}");
    assert_eq!(
        c(rx_if, "rx_bytes"),
        bytes(rx),
        "received without the tag: {s}"
    );
    assert_eq!(c(tx_if, "tx_packets"), tx.len() as u64, "{s}");
    let sent = tx.iter().map(|f| f.as_ref().len() as u64).sum::<u64>();
    assert_eq!(c(tx_if, "tx_bytes"), sent, "sent with the tag: {s}");
}

#[test]
fn routes_between_vlans_untagged_and_qinq_with_exact_tags_and_counters() {
    let lab = Lab::new("vlan-route");
    let f1 = tag(&udp(H10, H20.1, 1), &[(Q, 10)]);
    // PCP 5 and DEI on the way in; the tag pushed on the way out carries VLAN 10 only.
    let f2 = tag(&udp(H20, H0.1, 2), &[(Q, 0xb000 | 20)]);
    let f3 = udp(H0, H30.1, 3);
    let f4 = tag(&udp(H30, GW.1, 4), &[(AD, 100), (Q, 30)]);
    let unknown = tag(&udp(H10, H20.1, 5), &[(Q, 99)]);
    let arp = tag(
        &arp_request(
            [2, 0, 0, 0, 0x10, 7],
            Ipv4Addr::new(10, 10, 0, 7),
            Ipv4Addr::new(10, 10, 0, 1),
        ),
        &[(Q, 10)],
    );
    let mut echo = testpkt::icmp_echo(H20.1, Ipv4Addr::new(10, 20, 0, 1), 0x42, 1, false);
    echo[0..6].copy_from_slice(&P0_MAC);
    echo[6..12].copy_from_slice(&H20.0);
    let echo = tag(&echo, &[(Q, 20)]);
    let unresolved = udp(H0, Ipv4Addr::new(10, 10, 0, 9), 8);
    let triple = tag(&udp(H30, GW.1, 9), &[(AD, 100), (Q, 30), (Q, 1)]);
    // Priority-tagged (VLAN 0): the port's own untagged traffic.
    let prio = tag(&udp(H0, H20.1, 10), &[(Q, 0x6000)]);
    // QinQ with an 802.1Q outer tag is accepted too.
    let qq = tag(&udp(H30, H0.1, 11), &[(Q, 100), (Q, 30)]);
    let trunk = vec![
        f1.clone(),
        f2.clone(),
        f3.clone(),
        f4.clone(),
        unknown,
        arp,
        echo,
        unresolved,
        triple,
        prio.clone(),
        qq.clone(),
    ];
    // From outside, to VLAN 10.
    let mut wan_in = udp(GW, H10.1, 12);
    wan_in[0..6].copy_from_slice(&P1_MAC);
    write_frames(&lab.path("trunk.pcap"), &trunk);
    write_frames(&lab.path("wan.pcap"), std::slice::from_ref(&wan_in));
    let cfg = config(&lab, r#"["forward"]"#, "");
    let sock = lab.path("ctl.sock");
    let _busy = busy_lock();
    let child = lab.start(&cfg, 30, &sock);
    wait_for_ports(&sock, "rx_packets", (trunk.len() + 1) as u64);
    let ifs = ctl_json(&sock, &["interfaces"]);
    let routes = ctl_json(&sock, &["route", "lookup", "address=10.30.0.2"]);
    let neigh = ctl_json(&sock, &["neigh", "list"]);
    let metrics = String::from_utf8(ctl(&sock, &["metrics"]).stdout).unwrap();
    let s = stop(child);

    let p0 = read_pcap(&lab.path("p0-out.pcap"));
    let p1 = read_pcap(&lab.path("p1-out.pcap"));
    // VLAN 10 -> VLAN 20.
    let (t, got) = find(&p0, "f1", |f| {
        f[12..14] == [8, 0] && f[34..36] == 5001u16.to_be_bytes()
    });
    assert_eq!(t, [(Q, 20)], "tagged for VLAN 20");
    assert_routed(&got, &f1, H20.0, P0_MAC);
    // VLAN 20 -> untagged.
    let (t, got) = find(&p0, "f2", |f| {
        f[12..14] == [8, 0] && f[34..36] == 5002u16.to_be_bytes()
    });
    assert!(t.is_empty(), "untagged: {t:?}");
    assert_routed(&got, &f2, H0.0, P0_MAC);
    // Untagged -> QinQ: 802.1ad outer 100, 802.1Q inner 30.
    let (t, got) = find(&p0, "f3", |f| {
        f[12..14] == [8, 0] && f[34..36] == 5003u16.to_be_bytes()
    });
    assert_eq!(t, [(AD, 100), (Q, 30)]);
    assert_routed(&got, &f3, H30.0, P0_MAC);
    // QinQ -> p1.
    assert_eq!(p1.len(), 1, "only f4 leaves p1");
    assert_routed(&p1[0], &f4, GW.0, P1_MAC);
    // ARP answered on VLAN 10, with its tag.
    let (t, got) = find(&p0, "arp reply", |f| f[12..14] == [8, 6] && f[21] == 2);
    assert_eq!(t, [(Q, 10)]);
    assert_eq!(got[0..6], [2, 0, 0, 0, 0x10, 7]);
    assert_eq!(got[22..28], P0_MAC, "sender MAC");
    assert_eq!(got[28..32], [10, 10, 0, 1], "sender: VLAN 10's address");
    // Echo answered on VLAN 20.
    let (t, got) = find(&p0, "echo reply", |f| {
        f[12..14] == [8, 0] && f[23] == 1 && f[34] == 0
    });
    assert_eq!(t, [(Q, 20)]);
    assert_eq!(got[26..34], [10, 20, 0, 1, 10, 20, 0, 2]);
    verify(&got).unwrap();
    // ARP for a next hop on VLAN 10 asks on VLAN 10.
    let (t, got) = find(&p0, "arp request", |f| f[12..14] == [8, 6] && f[21] == 1);
    assert_eq!(t, [(Q, 10)]);
    assert_eq!(got[0..6], [0xff; 6]);
    assert_eq!(got[28..32], [10, 10, 0, 1]);
    assert_eq!(got[38..42], [10, 10, 0, 9]);
    // Priority-tagged untagged traffic -> VLAN 20; QinQ (802.1Q outer) -> untagged.
    let (t, got) = find(&p0, "prio", |f| {
        f[12..14] == [8, 0] && f[34..36] == 5010u16.to_be_bytes()
    });
    assert_eq!(t, [(Q, 20)]);
    assert_routed(&got, &prio, H20.0, P0_MAC);
    let (t, got) = find(&p0, "qq", |f| {
        f[12..14] == [8, 0] && f[34..36] == 5011u16.to_be_bytes()
    });
    assert!(t.is_empty());
    assert_routed(&got, &qq, H0.0, P0_MAC);
    // From p1 to VLAN 10.
    let (t, got) = find(&p0, "wan", |f| f[12..14] == [8, 0] && dst_ip(f) == H10.1);
    assert_eq!(t, [(Q, 10)]);
    assert_routed(&got, &wan_in, H10.0, P0_MAC);
    assert_eq!(p0.len(), 9, "{s}");

    // Drops: two unknown VLAN tag stacks, the ARP request and echo request (consumed), the
    // parked packet when pollfwd stopped.
    assert_eq!(drops(&s, "vlan_unknown"), 2, "{s}");
    let rx = s["totals"]["rx_packets"].as_u64().unwrap();
    let tx = s["totals"]["tx_packets"].as_u64().unwrap();
    let arp_sent = s["nf"]["forward"]["totals"]["arp_requests_sent"]
        .as_u64()
        .unwrap();
    assert_eq!(rx, trunk.len() as u64 + 1);
    assert_eq!(tx, 10);
    assert_eq!(
        rx + arp_sent,
        tx + s["totals"]["drops"].as_u64().unwrap(),
        "rx + originated = tx + drops: {s}"
    );
    // Per interface: frames in with their tags popped, out with their tags pushed.
    let sv = &s["interfaces"];
    let counts = |i: &Value| ["rx_packets", "tx_packets"].map(|k| i[k].as_u64().unwrap());
    assert_eq!(
        counts(iface(sv, "v10")),
        [2, 3],
        "f1, arp in; arp reply, arp request, wan out"
    );
    assert_eq!(
        counts(iface(sv, "v20")),
        [2, 3],
        "f2, echo in; f1, echo reply, prio out"
    );
    assert_eq!(counts(iface(sv, "q100.30")), [2, 1], "f4, qq in; f3 out");
    let bytes = |f: &[u8]| f.len() as u64 - 4;
    assert_eq!(iface(sv, "v10")["rx_bytes"], bytes(&f1) + 60, "popped: {s}");
    assert_eq!(iface(sv, "q100.30")["outer_vlan"], 100);
    assert_eq!(iface(sv, "q100.30")["outer_tpid"], "0x88a8");
    // `interfaces` lists ports and sub-interfaces with ids, MACs, MTUs and addresses.
    assert_eq!(ifs.as_array().unwrap().len(), 5, "{ifs}");
    assert_eq!(iface(&ifs, "p0")["kind"], "port");
    let v20 = iface(&ifs, "v20");
    assert_eq!(v20["kind"], "vlan");
    assert_eq!(v20["port"], "p0");
    assert_eq!(v20["vlan"], 20);
    assert_eq!(v20["mac"], "02:70:63:61:70:00");
    assert_eq!(v20["mtu"], 1500);
    assert_eq!(v20["address"], "10.20.0.1/24");
    assert!(
        v20["id"].as_u64().unwrap() >= 32,
        "ids above DPDK's port ids: {v20}"
    );
    // Routes and neighbours name sub-interfaces.
    assert_eq!(routes["port"], "q100.30", "{routes}");
    let n10 = neigh["neighbors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["address"] == "10.10.0.2")
        .unwrap_or_else(|| panic!("{neigh}"));
    assert_eq!(n10["port"], "v10", "{neigh}");
    assert!(
        metrics.contains("pollfwd_interface_rx_packets_total{interface=\"v20\",port=\"p0\"} 2"),
        "{metrics}"
    );
}

/// The IPv4 header checksum of frame `f` (untagged) recomputed after a change.
fn refix(f: &mut [u8]) {
    f[24..26].fill(0);
    let mut s: u32 = f[14..34]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    f[24..26].copy_from_slice(&(!(s as u16)).to_be_bytes());
}

/// Runs of frames from one VLAN to another go through forward's VLAN fast path (the frame
/// keeps its tag, its L2 header rewritten in place); frames in between that the path does not
/// take (unknown VLAN, untagged, to an untagged or QinQ interface, TTL 1, bad checksum) are
/// handled as the runtime's receive pass would. Checked: every output frame's tags, MACs, TTL
/// and checksums, the order within the flow, the drops, and per-interface counters (bytes
/// received without tags, sent with them).
#[test]
fn vlan_to_vlan_runs_keep_order_tags_and_counters_with_other_frames_between() {
    let lab = Lab::new("vlan-runs");
    let run = |from: u16, n: u16| -> Vec<Vec<u8>> {
        (from..from + n)
            .map(|id| {
                // Priority bits on some frames: the tag going out carries the VLAN id only.
                let pcp = if id % 3 == 0 { 0xa000 } else { 0 };
                tag(&udp(H10, FAR2, id), &[(Q, pcp | 10)])
            })
            .collect()
    };
    let mut ttl1 = udp(H10, FAR2, 50);
    ttl1[22] = 1;
    refix(&mut ttl1);
    let mut bad = udp(H10, FAR2, 51);
    bad[24] ^= 0x55;
    let odd: Vec<Vec<u8>> = vec![
        tag(&udp(H10, FAR2, 40), &[(Q, 99)]),
        udp(H0, FAR2, 41),
        tag(&udp(H10, H0.1, 42), &[(Q, 10)]),
        tag(&ttl1, &[(Q, 10)]),
        tag(&bad, &[(Q, 10)]),
        tag(&udp(H10, H30.1, 43), &[(Q, 10)]),
    ];
    let back = vec![
        tag(&udp(H20, H10.1, 60), &[(Q, 20)]),
        tag(&udp(H20, H10.1, 61), &[(Q, 20)]),
    ];
    let first = run(100, 20);
    let second = run(200, 20);
    // Bursts of 32 frames: the last one or two hold nothing but the run (no tag popped).
    let third = run(300, 40);
    let trunk: Vec<Vec<u8>> = [
        first.clone(),
        odd.clone(),
        second.clone(),
        back.clone(),
        third.clone(),
    ]
    .concat();
    write_frames(&lab.path("trunk.pcap"), &trunk);
    write_frames(&lab.path("wan.pcap"), &[]);
    let cfg = config(&lab, r#"["forward"]"#, "");
    edit(&cfg, &[FAR2_ROUTE]);
    let sock = lab.path("ctl.sock");
    let _busy = busy_lock();
    let child = lab.start(&cfg, 30, &sock);
    wait_for_ports(&sock, "rx_packets", trunk.len() as u64);
    let s = stop(child);

    let p0 = read_pcap(&lab.path("p0-out.pcap"));
    // To VLAN 20's gateway, in the order sent: the two runs and the untagged frame between.
    let to20: Vec<&Vec<u8>> = p0
        .iter()
        .filter(|f| untag(f).1[30..34] == FAR2.octets())
        .collect();
    let sent20: Vec<&Vec<u8>> = first
        .iter()
        .chain([&odd[1]])
        .chain(second.iter())
        .chain(third.iter())
        .collect();
    assert_eq!(to20.len(), sent20.len(), "{s}");
    for (got, sent) in to20.iter().zip(&sent20) {
        let (t, g) = untag(got);
        assert_eq!(t, [(Q, 20)], "tagged for VLAN 20 only: {got:02x?}");
        assert_routed(&g, sent, H20.0, P0_MAC);
    }
    let (t, got) = find(&p0, "to the untagged network", |f| dst_ip(f) == H0.1);
    assert!(t.is_empty(), "{t:?}");
    assert_routed(&got, &odd[2], H0.0, P0_MAC);
    let (t, got) = find(&p0, "to QinQ", |f| dst_ip(f) == H30.1);
    assert_eq!(t, [(AD, 100), (Q, 30)]);
    assert_routed(&got, &odd[5], H30.0, P0_MAC);
    let to10: Vec<_> = p0
        .iter()
        .map(|f| untag(f))
        .filter(|(_, f)| dst_ip(f) == H10.1)
        .collect();
    assert_eq!(to10.len(), 3, "time exceeded, two back");
    for (t, _) in &to10 {
        assert_eq!(t, &[(Q, 10)]);
    }
    assert_eq!(to10[0].1[23], 1, "ICMP first: {:02x?}", to10[0].1);
    assert_eq!(to10[0].1[34], 11, "time exceeded");
    assert_routed(&to10[1].1, &back[0], H10.0, P0_MAC);
    assert_routed(&to10[2].1, &back[1], H10.0, P0_MAC);
    assert_eq!(p0.len(), sent20.len() + 5, "{s}");

    assert_eq!(drops(&s, "vlan_unknown"), 1, "{s}");
    assert_eq!(drops(&s, "ipv4_bad_checksum"), 1, "{s}");
    assert_eq!(drops(&s, "ttl_expired"), 1, "{s}");
    let rx = s["totals"]["rx_packets"].as_u64().unwrap();
    let tx = s["totals"]["tx_packets"].as_u64().unwrap();
    assert_eq!(rx, trunk.len() as u64);
    assert_eq!(tx, p0.len() as u64);
    assert_eq!(rx + 1, tx + s["totals"]["drops"].as_u64().unwrap(), "{s}");
    // What the port sent, byte for byte (tags included), and received.
    let sum = |v: &[Vec<u8>]| v.iter().map(|f| f.len() as u64).sum::<u64>();
    assert_eq!(port(&s, "p0")["tx_bytes"], sum(&p0), "{s}");
    assert_eq!(port(&s, "p0")["rx_bytes"], sum(&trunk), "{s}");
    // The worker counts what it sent as sent, and what it received with the tags of known
    // interfaces popped (as for any chain).
    let lc = &s["lcores"][0];
    assert_eq!(lc["tx_bytes"], sum(&p0), "{s}");
    let known = trunk.iter().filter(|f| {
        let t = untag(f).0;
        !t.is_empty() && t != [(Q, 99)]
    });
    assert_eq!(
        lc["rx_bytes"],
        sum(&trunk) - 4 * known.count() as u64,
        "{s}"
    );
    let from10: Vec<&Vec<u8>> = trunk
        .iter()
        .filter(|f| untag(f).0 == [(Q, 10)] || untag(f).0 == [(Q, 0xa000 | 10)])
        .collect();
    assert_iface_traffic(&s, ("v10", &from10), ("v20", &to20));
    let sv = &s["interfaces"];
    let c = |i: &str, k: &str| iface(sv, i)[k].as_u64().unwrap();
    assert_eq!(
        (c("v20", "rx_packets"), c("v10", "tx_packets")),
        (2, 3),
        "{s}"
    );
}

/// IPv6 between VLANs on the trunk, interleaved with IPv4 runs that keep their tags: the
/// IPv6 frames are popped and forwarded by the IPv6 loop as from their VLAN (tag of the
/// egress VLAN, hop limit - 1, payload unchanged, in order), the IPv4 ones keep theirs.
#[test]
fn ipv6_between_vlans_beside_ipv4_runs() {
    let lab = Lab::new("vlan-v6");
    const A10: u128 = 0x2001_0db8_0010_0000_0000_0000_0000_0002;
    const A20: u128 = 0x2001_0db8_0020_0000_0000_0000_0000_0002;
    let v6 = |id: u16| {
        let mut f = testpkt::udp6((A10, 6000 + id), (A20, 7), &[id as u8; 20]);
        f[0..6].copy_from_slice(&P0_MAC);
        f[6..12].copy_from_slice(&H10.0);
        tag(&f, &[(Q, 10)])
    };
    let v4 = |id: u16| tag(&udp(H10, FAR2, id), &[(Q, 10)]);
    let trunk: Vec<Vec<u8>> = (0..60u16)
        .map(|k| if k % 4 == 3 { v4(k) } else { v6(k) })
        .collect();
    write_frames(&lab.path("trunk.pcap"), &trunk);
    write_frames(&lab.path("wan.pcap"), &[]);
    let cfg = config(&lab, r#"["forward"]"#, "");
    edit(
        &cfg,
        &[
            (
                r#"address = "10.10.0.1/24""#,
                r#"address = ["10.10.0.1/24", "2001:db8:10::1/64"]"#,
            ),
            (
                r#"address = "10.20.0.1/24""#,
                r#"address = ["10.20.0.1/24", "2001:db8:20::1/64"]"#,
            ),
            FAR2_ROUTE,
            (
                "neighbors = [\n",
                "neighbors = [\n  { address = \"2001:db8:20::2\", mac = \"02:00:00:00:20:02\", port = \"v20\" },\n",
            ),
        ],
    );
    let sock = lab.path("ctl.sock");
    let _busy = busy_lock();
    let child = lab.start(&cfg, 30, &sock);
    wait_for_ports(&sock, "rx_packets", trunk.len() as u64);
    let s = stop(child);

    let p0 = read_pcap(&lab.path("p0-out.pcap"));
    assert_eq!(p0.len(), trunk.len(), "every frame forwarded: {s}");
    for (got, sent) in p0.iter().zip(&trunk) {
        let (t, g) = untag(got);
        let (_, f) = untag(sent);
        assert_eq!(t, [(Q, 20)], "{got:02x?}");
        assert_eq!(g[0..6], H20.0, "to the next hop");
        assert_eq!(g[6..12], P0_MAC);
        if f[12..14] == [0x86, 0xdd] {
            assert_eq!(g[21], f[21] - 1, "hop limit - 1");
            assert_eq!(g[12..21], f[12..21]);
            assert_eq!(g[22..], f[22..], "addresses and payload");
        } else {
            assert_routed(&g, sent, H20.0, P0_MAC);
        }
    }
    assert_iface_traffic(&s, ("v10", &trunk), ("v20", &p0));
    assert_eq!(
        s["lcores"][0]["tx_bytes"],
        iface(&s["interfaces"], "v20")["tx_bytes"],
        "{s}"
    );
}

#[test]
fn nat_inside_and_acl_in_port_take_sub_interfaces() {
    let lab = Lab::new("vlan-nat");
    let out = tag(&udp(H10, FAR, 1), &[(Q, 10)]);
    let denied = tag(&udp(H20, FAR, 2), &[(Q, 20)]);
    // The reply to the static mapping's outside address.
    let mut back = testpkt::udp((FAR, 7), (POOL, 1000), &[3; 18]);
    back[0..6].copy_from_slice(&P1_MAC);
    back[6..12].copy_from_slice(&GW.0);
    write_frames(&lab.path("trunk.pcap"), &[out.clone(), denied]);
    write_frames(&lab.path("wan.pcap"), std::slice::from_ref(&back));
    let extra = format!(
        r#"
[classify]
default = "permit"
rules = [{{ in_port = "v20", action = "deny" }}]

[nat]
inside = ["v10"]
outside = ["p1"]
pool = ["{POOL}"]
static = [{{ outside = "{POOL}:1000", inside = "10.10.0.2:5001", proto = "udp" }}]
"#
    );
    let cfg = config(&lab, r#"["classify", "nat", "forward"]"#, &extra);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let p0 = read_pcap(&lab.path("p0-out.pcap"));
    let p1 = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(p1.len(), 1, "{s}");
    let (s_ip, s_port, d_ip, _) = testpkt::endpoints(&p1[0]);
    assert_eq!((s_ip, s_port, d_ip), (POOL, 1000, FAR), "translated");
    verify(&p1[0]).unwrap();
    assert_eq!(p0.len(), 1, "{s}");
    let (t, got) = untag(&p0[0]);
    assert_eq!(t, [(Q, 10)], "the reply goes back on VLAN 10");
    assert_eq!(got[0..6], H10.0);
    let (_, _, d_ip, d_port) = testpkt::endpoints(&got);
    assert_eq!((d_ip, d_port), (H10.1, 5001));
    verify(&got).unwrap();
    assert_eq!(drops(&s, "acl_deny"), 1, "{s}");
    assert_eq!(s["totals"]["drops"], 1, "{s}");
}

#[test]
fn the_bundled_vlan_lab_runs_on_traffic_from_gen_pcap() {
    let lab = Lab::new("vlan-lab");
    std::fs::create_dir_all(lab.path("lab")).unwrap();
    let ctl = |args: &[&str]| {
        let o = std::process::Command::new(bin("pollfwdctl"))
            .args(args)
            .current_dir(&lab.dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ctl(&["gen-pcap", "-o", "lab/empty.pcap", "-n", "0"]);
    ctl(&[
        "gen-pcap",
        "-o",
        "lab/vlan-in.pcap",
        "-n",
        "1000",
        "--vlan",
        "10",
        "--src-ip",
        "10.10.0.10",
        "--dst-ip",
        "10.20.0.2",
    ]);
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/lab-vlan.toml"
    ))
    .unwrap()
    .replace("pollfwd-vlan", &lab.prefix())
    .replace(
        "/tmp/pollfwd-vlan.sock",
        lab.path("ctl.sock").to_str().unwrap(),
    );
    let cfg = lab.write("lab-vlan.toml", &text);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let out = read_pcap(&lab.path("lab/trunk-out.pcap"));
    assert_eq!(out.len(), 1000, "{s}");
    for f in &out {
        let (tags, f) = untag(f);
        assert_eq!(tags, [(Q, 20)]);
        assert_eq!(f[0..6], [2, 0, 0, 0, 0x20, 2]);
        assert_eq!(dst_ip(&f), Ipv4Addr::new(10, 20, 0, 2));
        verify(&f).unwrap();
    }
    let v10 = iface(&s["interfaces"], "trunk.10");
    let v20 = iface(&s["interfaces"], "trunk.20");
    assert_eq!(
        (v10["rx_packets"].as_u64(), v20["tx_packets"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(s["totals"]["drops"], 0, "{s}");
}
