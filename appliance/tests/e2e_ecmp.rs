//! ECMP end to end: the real `pollfwd` binary routes IPv4 and IPv6 prefixes with two and three
//! next hops between net_pcap ports; the tests read the output pcaps (the next hop of each
//! packet is its destination MAC) and the routes' per-next-hop counters over the control socket.
//!
//! Ports: p0 = 192.0.2.1/24, 2001:db8:1::1/64 (traffic in), p1 = 198.51.100.1/24,
//! 2001:db8:2::1/64 (every next hop: 198.51.100.2/.3/.4 and 2001:db8:2::2/3/4, static
//! neighbours with MACs 02:00:00:00:01:02/03/04).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use lab::traffic::{self, GenSpec, Proto, Sizes};
use lab::traffic6::{self, Addrs6};
use serde_json::json;

const P0_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];

/// The next hop (last byte of 198.51.100.x / 2001:db8:2::x) a frame was sent to, from its
/// destination MAC.
fn hop_of(f: &[u8]) -> u8 {
    assert_eq!(&f[..5], &[2, 0, 0, 0, 1], "destination MAC of a next hop");
    f[5]
}

/// A frame's flow: family, addresses, protocol and ports as bytes.
fn flow_of(f: &[u8]) -> Vec<u8> {
    if f[12..14] == [0x86, 0xdd] {
        let mut k = f[22..54].to_vec();
        k.push(f[20]);
        k.extend_from_slice(&f[54..58]);
        k
    } else {
        let l4 = 14 + (f[14] as usize & 0xf) * 4;
        let mut k = f[26..34].to_vec();
        k.push(f[23]);
        k.extend_from_slice(&f[l4..l4 + 4]);
        k
    }
}

/// The prefix a routed frame's destination falls in (the test's routes).
fn prefix_of(f: &[u8]) -> &'static str {
    if f[12..14] == [0x86, 0xdd] {
        match f[38..44] {
            [0x20, 0x01, 0x0d, 0xb8, 0, 0x99] => "2001:db8:99::/48",
            [0x20, 0x01, 0x0d, 0xb8, 0, 0x98] => "2001:db8:98::/48",
            _ => panic!("IPv6 frame to an unexpected prefix"),
        }
    } else {
        match f[30..32] {
            [203, 0] => "203.0.113.0/24",
            [198, 19] => "198.19.0.0/16",
            _ => panic!("IPv4 frame to an unexpected prefix"),
        }
    }
}

fn config(lab: &Lab, rx: &str, routes: &str) -> PathBuf {
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
mbufs = 8191

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap={rx},tx_pcap=p0-out.pcap"
address = ["192.0.2.1/24", "2001:db8:1::1/64"]

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=empty.pcap,tx_pcap=p1-out.pcap"
address = ["198.51.100.1/24", "2001:db8:2::1/64"]

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = ["forward"]

[control]
socket = "{sock}"

[forward]
{routes}
neighbors = [
  {{ address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "p1" }},
  {{ address = "198.51.100.3", mac = "02:00:00:00:01:03", port = "p1" }},
  {{ address = "198.51.100.4", mac = "02:00:00:00:01:04", port = "p1" }},
  {{ address = "2001:db8:2::2", mac = "02:00:00:00:01:02", port = "p1" }},
  {{ address = "2001:db8:2::3", mac = "02:00:00:00:01:03", port = "p1" }},
  {{ address = "2001:db8:2::4", mac = "02:00:00:00:01:04", port = "p1" }},
]
icmp_errors_per_s = 0
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

/// `count` UDP frames in `flows` flows from p0's LAN to `dst` (IPv4 or IPv6).
fn frames(dst: &str, flows: usize, count: usize) -> Vec<Vec<u8>> {
    let mut spec = GenSpec {
        count,
        flows,
        sizes: Sizes::Fixed(96),
        proto: Proto::Udp,
        src_mac: HOST_MAC,
        dst_mac: P0_MAC,
        src_port: 2000,
        dst_port: 53,
        ..Default::default()
    };
    if dst.contains(':') {
        let a = Addrs6 {
            src_ip: "2001:db8:1::10".parse().unwrap(),
            dst_ip: dst.parse().unwrap(),
            ..Default::default()
        };
        traffic6::generate(&spec, &a).collect()
    } else {
        spec.src_ip = "192.0.2.10".parse().unwrap();
        spec.dst_ip = dst.parse().unwrap();
        traffic::generate(&spec).collect()
    }
}

/// The static routes by prefix from `route.list`: next hop (last byte of its address) ->
/// packets.
fn counters(sock: &std::path::Path) -> BTreeMap<String, BTreeMap<u8, u64>> {
    let l = control_ok(sock, "route.list", json!({"kind": "static"}));
    let mut m = BTreeMap::new();
    for r in l["routes"].as_array().unwrap() {
        let hops = r["nexthops"].as_array().expect("a multipath route");
        let per: BTreeMap<u8, u64> = hops
            .iter()
            .map(|h| {
                assert_eq!(h["port"], "p1", "{r}");
                let via = h["via"].as_str().unwrap();
                let last = via.rsplit(['.', ':']).next().unwrap().parse().unwrap();
                (last, h["packets"].as_u64().unwrap())
            })
            .collect();
        m.insert(r["prefix"].as_str().unwrap().to_string(), per);
    }
    m
}

/// Polls `stats` until p1 has sent at least `n` packets.
fn wait_tx(sock: &std::path::Path, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = control_ok(sock, "stats", json!({}));
        if port(&s, "p1")["tx_packets"].as_u64().unwrap_or(0) >= n {
            return;
        }
        assert!(Instant::now() < deadline, "p1 sent fewer than {n} packets");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn flows_spread_over_two_and_three_next_hops_and_counters_match_the_pcaps() {
    let lab = Lab::new("ecmp-spread");
    // 256 flows x 4 packets to each of four prefixes, interleaved.
    let sets = [
        frames("203.0.113.1", 256, 1024),
        frames("198.19.0.1", 256, 1024),
        frames("2001:db8:99::1", 256, 1024),
        frames("2001:db8:98::1", 256, 1024),
    ];
    let input: Vec<Vec<u8>> = (0..1024)
        .flat_map(|i| sets.iter().map(move |s| s[i].clone()))
        .collect();
    write_frames(&lab.path("in.pcap"), &input);
    let routes = r#"routes = [
  { prefix = "203.0.113.0/24", via = ["198.51.100.2", "198.51.100.3"] },
  { prefix = "198.19.0.0/16", via = ["198.51.100.2", "198.51.100.3", "198.51.100.4"] },
  { prefix = "2001:db8:99::/48", via = ["2001:db8:2::2", "2001:db8:2::3", "2001:db8:2::4"] },
  { prefix = "2001:db8:98::/48", via = ["2001:db8:2::3", "2001:db8:2::4"] },
]"#;
    let cfg = config(&lab, "in.pcap", routes);
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 120, &sock);
    wait_tx(&sock, input.len() as u64);
    let c = counters(&sock);
    let lk = control_ok(&sock, "route.lookup", json!({"address": "198.19.5.5"}));
    assert_eq!(lk["route"], "198.19.0.0/16", "{lk}");
    assert_eq!(lk["nexthops"].as_array().map(Vec::len), Some(3), "{lk}");
    let metrics = String::from_utf8(ctl(&sock, &["metrics"]).stdout).unwrap();
    let s = stop(child);
    assert_eq!(s["totals"]["drops"], 0, "{s}");

    let out = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(out.len(), input.len());
    // Per prefix: packets per next hop, and the next hops of each flow.
    let mut seen: BTreeMap<&str, BTreeMap<u8, u64>> = BTreeMap::new();
    let mut flows: BTreeMap<Vec<u8>, BTreeSet<u8>> = BTreeMap::new();
    for f in &out {
        *seen
            .entry(prefix_of(f))
            .or_default()
            .entry(hop_of(f))
            .or_insert(0) += 1;
        flows.entry(flow_of(f)).or_default().insert(hop_of(f));
    }
    assert_eq!(flows.len(), 4 * 256);
    for (k, hops) in &flows {
        assert_eq!(hops.len(), 1, "flow {k:?} was split over {hops:?}");
    }
    let want: [(&str, &[u8]); 4] = [
        ("203.0.113.0/24", &[2, 3]),
        ("198.19.0.0/16", &[2, 3, 4]),
        ("2001:db8:99::/48", &[2, 3, 4]),
        ("2001:db8:98::/48", &[3, 4]),
    ];
    for (p, hops) in want {
        let got = &seen[p];
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            hops,
            "{p}: every next hop gets a share"
        );
        // 1024 packets: each next hop within 40% of an even share.
        let even = 1024.0 / hops.len() as f64;
        for n in got.values() {
            assert!(
                (*n as f64 - even).abs() < 0.4 * even,
                "{p}: uneven spread {got:?}"
            );
        }
        assert_eq!(&c[p], got, "{p}: route.list counters against the pcap");
        for (h, n) in got {
            let via = if p.contains(':') {
                format!("2001:db8:2::{h}")
            } else {
                format!("198.51.100.{h}")
            };
            let line = format!(
                "pollfwd_forward_nexthop_packets_total{{prefix=\"{p}\",via=\"{via}\",port=\"p1\"}} {n}\n"
            );
            assert!(metrics.contains(&line), "{line} in\n{metrics}");
        }
    }
}

/// 128 flows (64 IPv4, 64 IPv6) over three next hops, replayed over and over (with 15 times
/// as many frames to an address without a route, dropped without an ICMP error, so that the
/// output pcap grows slowly); `route.add replace` takes one next hop out of both routes.
#[test]
fn removing_a_next_hop_live_moves_only_its_flows() {
    let lab = Lab::new("ecmp-remove");
    let good: Vec<Vec<u8>> = frames("203.0.113.1", 64, 64)
        .into_iter()
        .chain(frames("2001:db8:99::1", 64, 64))
        .collect();
    let mut input = good.clone();
    input.extend(frames("100.64.0.1", 16, 128 * 15));
    write_frames(&lab.path("in.pcap"), &input);
    let routes = r#"routes = [
  { prefix = "203.0.113.0/24", via = ["198.51.100.2", "198.51.100.3", "198.51.100.4"] },
  { prefix = "2001:db8:99::/48", via = ["2001:db8:2::2", "2001:db8:2::3", "2001:db8:2::4"] },
]"#;
    let cfg = config(&lab, "in.pcap,infinite_rx=1", routes);
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 120, &sock);
    wait_tx(&sock, 3000);
    let before = counters(&sock);
    // Next hop .3 goes from both routes.
    let r = control_ok(
        &sock,
        "route.add",
        json!({"replace": true, "routes": [
            {"prefix": "203.0.113.0/24", "via": ["198.51.100.2", "198.51.100.4"]},
            {"prefix": "2001:db8:99::/48", "via": "2001:db8:2::2,2001:db8:2::4"},
        ]}),
    );
    assert_eq!(r["replaced"], 2, "{r}");
    let tx = port(&control_ok(&sock, "stats", json!({})), "p1")["tx_packets"]
        .as_u64()
        .unwrap();
    wait_tx(&sock, tx + 3000);
    let after = counters(&sock);
    stop(child);
    for (p, hops) in &after {
        assert_eq!(hops.keys().copied().collect::<Vec<_>>(), [2, 4], "{p}");
        for (h, n) in hops {
            assert!(
                *n > before[p][h],
                "{p}: next hop {h} counted on from {before:?}"
            );
        }
    }

    // Each flow's next hops in the order its packets left.
    let out = read_pcap(&lab.path("p1-out.pcap"));
    let mut seq: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for f in &out {
        let s = seq.entry(flow_of(f)).or_default();
        if s.last() != Some(&hop_of(f)) {
            s.push(hop_of(f));
        }
    }
    assert_eq!(seq.len(), 128, "every flow forwarded");
    let mut moved = 0;
    for (k, s) in &seq {
        match s[..] {
            // A flow on a next hop that stayed never moved.
            [2] | [4] => {}
            // A flow on the removed one moved once, to one that stayed.
            [3, 2] | [3, 4] => moved += 1,
            _ => panic!("flow {k:?}: next hops {s:?}"),
        }
    }
    let on3: u64 = before.values().map(|h| h[&3]).sum();
    assert!(
        on3 > 0 && moved > 0,
        "some flows were on the removed next hop"
    );
    let before_hops: BTreeSet<u8> = seq.values().map(|s| s[0]).collect();
    assert_eq!(
        before_hops,
        BTreeSet::from([2, 3, 4]),
        "every next hop had flows"
    );
}
