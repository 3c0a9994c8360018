//! Hostile traffic through the full chain (issue 18, "pcap labs"): the corpus of
//! `lab::hostile` (>= 30 kinds of malformed or abusive frames) replayed by net_pcap into the
//! real pollfwd binary running classify -> nat -> policer -> forward on one worker.
//!
//! Checked: every frame is accounted for (the drops by reason plus the transmitted frames less
//! the ones pollfwd originated equal the received frames), each kind ends where it must (its
//! drop reason, or transmitted), memory is bounded (mbuf pool in use back to its idle baseline,
//! RSS below a bound), and pollfwd exits 0. Rates are compared by `bench/hostile.sh`
//! (a benchmark, not a test: see docs/reliability.md).

mod common;

use std::collections::BTreeMap;

use common::*;
use lab::hostile::{self, Kind, Net, Side};
use serde_json::Value;

/// What happens to a kind's frames in the full chain (per frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Dropped with this reason.
    Drop(&'static str),
    /// Transmitted (forwarded or answered in place).
    Tx,
    /// Forwarded as this many fragments (bigger than the egress MTU, DF clear).
    Fragments(u64),
    /// Dropped with this reason, and an ICMP error sent back for it (rate limit set high).
    DropIcmp(&'static str),
}

/// The expected fate of each kind's frames. Every kind of the corpus must be listed.
fn fate(name: &str) -> Vec<Fate> {
    use Fate::*;
    let one = |f| vec![f];
    match name {
        "runt_10" | "runt_1" => one(Drop("runt")),
        "eth_header_only" => one(Drop("ipv4_truncated")),
        "ipv6_ethertype" => one(Drop("ipv6_bad_version")),
        // The lab ports have no VLAN sub-interfaces.
        "vlan_tagged" => one(Drop("vlan_unknown")),
        // Above the egress MTU (1500) with DF clear: forwarded as two fragments.
        "oversized_1600" => one(Fragments(2)),
        "oversized_9000" => one(Drop("multi_seg")),
        "ip_version_6" => one(Drop("ipv4_bad_version")),
        "ip_ihl_3" => one(Drop("ipv4_bad_ihl")),
        // IHL 15 says 60 header bytes: more than the 46-byte frame payload holds.
        "ip_ihl_15_short" => one(Drop("ipv4_truncated")),
        "ip_total_len_19" => one(Drop("ipv4_bad_length")),
        "ip_total_len_1000" => one(Drop("ipv4_truncated")),
        "ip_bad_checksum" => one(Drop("ipv4_bad_checksum")),
        // Options are forwarded, not processed (RFC 1812 allows it).
        "ip_options" => one(Tx),
        "ip_proto_gre" => one(Drop("nat_unsupported")),
        "udp_truncated" | "tcp_truncated" | "icmp_truncated" => one(Drop("ipv4_truncated")),
        // A router does not validate L4 lengths: NAT translates the ports it reads and the
        // receiver judges the rest (the checksums stay as right or wrong as they were).
        "udp_zero_length" | "udp_length_beyond_ip" => one(Tx),
        "tcp_data_offset_2" | "tcp_data_offset_15" | "tcp_syn_fin" => one(Tx),
        "frag_tiny_first" => one(Drop("ipv4_truncated")),
        // Held by NAT for its first fragment (virtual reassembly), which never comes: 1 s.
        "frag_orphan" => one(Drop("nat_fragment_timeout")),
        // Overlaps are the receiver's to reassemble (a router does not reassemble)...
        "frag_overlap" => vec![Tx, Tx],
        // ...except a TCP fragment at offset 1, which could rewrite the flags the ACL saw in
        // the first fragment (RFC 1858/3128): the first passes, the second is dropped.
        "frag_tcp_offset_1" => vec![Tx, Drop("acl_tcp_frag_offset1")],
        "ttl_0" | "ttl_1" => one(DropIcmp("ttl_expired")),
        // Martian sources: dropped by NAT before translation (RFC 1812 5.3.7).
        "src_zero_net" | "src_loopback" | "src_multicast" | "src_class_e" | "src_broadcast" => {
            one(Drop("ipv4_bad_source"))
        }
        "dst_zero_net" | "dst_loopback" | "dst_multicast" | "dst_class_e" => {
            one(Drop("ipv4_bad_dest"))
        }
        // Broadcasts for the local link, and anything to the router's own address, are
        // consumed (nothing answers them).
        "dst_broadcast" | "dst_subnet_broadcast" | "land" | "broadcast_storm" => {
            one(Drop("for_us"))
        }
        "multicast_mac_unicast_ip" => one(Drop("l2_broadcast")),
        "arp_flood" | "arp_spoof_gateway" | "arp_malformed" | "arp_truncated" => {
            one(Drop("arp_invalid"))
        }
        // A reply to the router: consumed; its sender (the router's own address) not learned.
        "arp_spoof_router" => one(Drop("for_us")),
        // A request for the router's address is answered whoever asks (Linux's default);
        // the off-subnet sender is not learned.
        "arp_off_subnet" => one(Tx),
        "syn_flood_nat" => one(Tx),
        "syn_flood_inbound" | "icmp_error_flood_inbound" => one(Drop("nat_no_session")),
        // The quoted header is checked for sanity (not its checksum) before NAT looks it up.
        "icmp_error_garbage_inbound" => one(Drop("ipv4_truncated")),
        "icmp_error_garbage_outbound" => one(Drop("ipv4_bad_ihl")),
        "icmp_redirect" => one(Drop("nat_unsupported")),
        // RFC 1812 4.3.2.7: no ICMP error about an ICMP error.
        "icmp_error_about_icmp_error" => one(Drop("ttl_expired")),
        // Not a pool address: NAT passes it and forward routes it (the ACL is the firewall).
        "outside_to_inside_direct" => one(Tx),
        "acl_denied" => one(Drop("acl_deny")),
        "ping_router" => one(Tx),
        "udp_to_router" => one(DropIcmp("for_us")),
        other => panic!("kind {other} has no expected fate: add it to fate()"),
    }
}

/// The lab's config: lan (p0) replays `lan_in`, wan (p1) replays `wan_in`, both transmit to
/// files; the full chain with an ACL, NAT, a class-bound policer and a per-source policer
/// that never turn a packet red at these volumes, and static neighbours (nothing waits for
/// ARP). ICMP errors are not rate limited here, so each expected one is sent.
fn config(lab: &Lab, lan_in: &str, wan_in: &str) -> std::path::PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 8191

[[port]]
name = "lan"
device = "net_pcap0,rx_pcap={lan_in},tx_pcap=lan-out.pcap"
address = "10.0.0.1/24"

[[port]]
name = "wan"
device = "net_pcap1,rx_pcap={wan_in},tx_pcap=wan-out.pcap"
address = "198.51.100.1/24"

[[lcore]]
id = 1
rx = [{{ port = "lan" }}, {{ port = "wan" }}]
stages = ["classify", "nat", "policer", "forward"]

[classify]
default = "permit"
classes = ["bulk", "web"]
rules = [
  {{ dst = "203.0.113.0/24", action = "deny" }},
  {{ proto = "udp", action = "permit", class = "bulk" }},
  {{ proto = "tcp", action = "permit", class = "web" }},
]

[nat]
inside = ["lan"]
outside = ["wan"]
pool = ["198.51.100.16/28"]
max_sessions = 65536

[policer]
policers = [
  {{ name = "bulk", kind = "srtcm", cir = 100000000000, cbs = 100000000, ebs = 0, bind = {{ class = "bulk" }} }},
  {{ name = "web", kind = "srtcm", cir = 100000000000, cbs = 100000000, ebs = 0, bind = {{ class = "web", per_source = true, max_sources = 4096 }} }},
]

[forward]
routes = [{{ prefix = "0.0.0.0/0", via = "198.51.100.254" }}]
neighbors = [
  {{ address = "198.51.100.254", mac = "02:00:00:00:01:fe", port = "wan" }},
  {{ address = "10.0.0.2", mac = "02:00:00:00:00:10", port = "lan" }},
]
proxy_arp = [{{ prefix = "198.51.100.16/28", port = "wan" }}]
icmp_errors_per_s = 1000000
icmp_burst = 10000

[control]
socket = "{sock}"
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Writes the frames of `kinds` (lan and wan sides) to lan-in.pcap / wan-in.pcap.
fn write_inputs(lab: &Lab, kinds: &[&Kind]) -> (u64, u64) {
    let lan: Vec<Vec<u8>> = kinds
        .iter()
        .filter(|k| k.side == Side::Lan)
        .flat_map(|k| k.frames.iter().cloned())
        .collect();
    let wan: Vec<Vec<u8>> = kinds
        .iter()
        .filter(|k| k.side == Side::Wan)
        .flat_map(|k| k.frames.iter().cloned())
        .collect();
    write_frames(&lab.path("lan-in.pcap"), &lan);
    write_frames(&lab.path("wan-in.pcap"), &wan);
    (lan.len() as u64, wan.len() as u64)
}

/// The accounting identity of the design (docs/reliability.md): at the end of a run every
/// received frame was dropped with a reason or transmitted, and what pollfwd transmitted
/// besides were the packets it originated (ARP requests, ICMP errors):
/// rx + originated == tx + drops. Returns (rx, tx, drops, originated).
fn check_accounting(s: &Value) -> (u64, u64, u64, u64) {
    let t = &s["totals"];
    let rx = lcore_sum(s, "rx_packets");
    let tx = lcore_sum(s, "tx_packets");
    let drops = n(&t["drops"]);
    let reasons: u64 = t["drops_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(n)
        .sum();
    assert_eq!(reasons, drops, "drops by reason add up to the drops: {s}");
    let f = &s["nf"]["forward"]["totals"];
    // Fragmented datagrams leave as their first fragment: the others are originated.
    let originated =
        n(&f["arp_requests_sent"]) + n(&f["icmp_errors_sent"]) + n(&f["fragments_sent"])
            - n(&f["fragmented"]);
    let ports_rx: u64 = s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| n(&p["rx_packets"]))
        .sum();
    let ports_tx: u64 = s["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| n(&p["tx_packets"]))
        .sum();
    assert_eq!(ports_rx, rx, "ports' rx = lcores' rx: {s}");
    assert_eq!(ports_tx, tx, "ports' tx = lcores' tx: {s}");
    assert_eq!(
        rx + originated,
        tx + drops,
        "rx {rx} + originated {originated} != tx {tx} + drops {drops}: {s}"
    );
    (rx, tx, drops, originated)
}

/// Runs the chain over `kinds` (each kind's frames once) to completion and returns the summary.
fn run_kinds(lab: &Lab, kinds: &[&Kind]) -> (Value, u64) {
    let (l, w) = write_inputs(lab, kinds);
    let cfg = config(lab, "lan-in.pcap", "wan-in.pcap");
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    (s, l + w)
}

/// Every kind alone, printing what pollfwd did with it (docs/reliability.md sums it up).
/// Slow (one run per kind): `cargo test -p pollfwd --test e2e_hostile -- --ignored --nocapture`.
#[test]
#[ignore = "a slow report (one run per kind) for docs/reliability.md, run by hand with --ignored"]
fn hostile_kinds_one_by_one_report() {
    let lab = Lab::new("hostile-each");
    let corpus = hostile::corpus(&Net::default(), 8);
    let mut bad = Vec::new();
    for k in &corpus {
        let (s, offered) = run_kinds(&lab, &[k]);
        let (rx, tx, drops, orig) = check_accounting(&s);
        let reasons = &s["totals"]["drops_by_reason"];
        println!(
            "{:<28} rx {rx:>3}/{offered:<3} tx {tx:>3} orig {orig:>2} drops {drops:>3} {reasons}",
            k.name
        );
        if rx != offered {
            bad.push(k.name);
        }
    }
    assert!(bad.is_empty(), "frames not received: {bad:?}");
}

/// The expected counters of a run over `kinds`: drops per reason, tx, packets originated
/// (ICMP errors, and fragments after the first).
fn expected(kinds: &[&Kind]) -> (BTreeMap<&'static str, u64>, u64, u64) {
    let (mut drops, mut tx, mut icmp, mut frags) = (BTreeMap::new(), 0, 0, 0);
    for k in kinds {
        let fates = fate(k.name);
        for (i, _) in k.frames.iter().enumerate() {
            match fates[i % fates.len()] {
                Fate::Drop(r) => *drops.entry(r).or_default() += 1,
                Fate::DropIcmp(r) => {
                    *drops.entry(r).or_default() += 1;
                    icmp += 1;
                }
                Fate::Tx => tx += 1,
                Fate::Fragments(n) => {
                    tx += n;
                    // The datagram leaves as the first fragment: the others are originated.
                    frags += n - 1;
                }
            }
        }
    }
    (drops, tx + icmp, icmp + frags)
}

/// VmRSS of a process in KiB (from /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    st.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// What a running pollfwd showed once the traffic was processed.
#[derive(Default)]
struct Seen {
    in_use: u64,
    rss_start: u64,
    rss_end: u64,
    neigh: Value,
    nat_sessions: u64,
}

/// Runs the chain over `frames` (lan side) and `wan` with a control socket, and returns the
/// summary after SIGTERM and what was seen while it ran, after every frame was received.
fn run_live(lab: &Lab, lan: &[Vec<u8>], wan: &[Vec<u8>]) -> (Value, Seen) {
    write_frames(&lab.path("lan-in.pcap"), lan);
    write_frames(&lab.path("wan-in.pcap"), wan);
    let cfg = config(lab, "lan-in.pcap", "wan-in.pcap");
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);
    let pid = child.id();
    let mut seen = Seen {
        rss_start: rss_kib(pid),
        ..Seen::default()
    };
    let total = (lan.len() + wan.len()) as u64;
    let out = run_then_stop(child, 20, || {
        wait_for_ports(&sock, "rx_packets", total);
        // Processed once the ports have seen it, a TX drain has passed and NAT's held
        // orphan fragments have timed out (1 s).
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let m = ctl_json(&sock, &["mempools"]);
        seen.in_use = m.as_array().unwrap().iter().map(|p| n(&p["in_use"])).sum();
        seen.neigh = ctl_call_ok(&sock, "neigh.list", "{}");
        seen.nat_sessions = n(&ctl_call_ok(&sock, "nat.summary", "{}")["sessions"]);
        seen.rss_end = rss_kib(pid);
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "pollfwd's exit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(
        s["failed_lcores"],
        serde_json::json!([]),
        "no worker failed: {s}"
    );
    (s, seen)
}

/// Memory is bounded: every mbuf back in the pool (net_pcap without `infinite_rx` holds none
/// when idle, so the idle baseline is 0: nothing is parked, every neighbour is static, held
/// fragments have timed out) and
/// the process grew by less than `max_kib` while the traffic ran.
fn check_memory(seen: &Seen, max_kib: u64) {
    assert_eq!(
        seen.in_use, 0,
        "mbufs still in use once the traffic was processed"
    );
    assert!(
        seen.rss_end <= seen.rss_start + max_kib,
        "RSS grew from {} to {} KiB",
        seen.rss_start,
        seen.rss_end
    );
}

#[test]
fn every_hostile_frame_is_accounted_for_with_its_reason_and_memory_comes_back() {
    let lab = Lab::new("hostile");
    let net = Net::default();
    let corpus = hostile::corpus(&net, 20);
    assert!(corpus.len() >= 30, "{} kinds", corpus.len());
    let kinds: Vec<&Kind> = corpus.iter().collect();
    let (want_drops, want_tx, want_icmp) = expected(&kinds);
    let side = |sd| -> Vec<Vec<u8>> {
        kinds
            .iter()
            .filter(|k| k.side == sd)
            .flat_map(|k| k.frames.iter().cloned())
            .collect()
    };
    let (lan, wan) = (side(Side::Lan), side(Side::Wan));
    let (s, seen) = run_live(&lab, &lan, &wan);
    let (rx, tx, _, orig) = check_accounting(&s);
    assert_eq!(
        rx,
        (lan.len() + wan.len()) as u64,
        "every frame received: {s}"
    );
    let got: BTreeMap<String, u64> = s["totals"]["drops_by_reason"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), n(v)))
        .collect();
    let want: BTreeMap<String, u64> = want_drops
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(
        got, want,
        "drops by reason (left: pollfwd's, right: expected)"
    );
    assert_eq!(
        tx, want_tx,
        "transmitted (forwarded, answered, ICMP errors): {s}"
    );
    assert_eq!(orig, want_icmp, "ICMP errors and fragments sent: {s}");
    check_memory(&seen, 4096);
    // NAT sessions: one per SYN of the flood (20) and per distinct inside 5-tuple of the
    // translated kinds: UDP from ports 1 (oversized_1600), 4000 (ip_options, udp_zero_length,
    // udp_length_beyond_ip), 4005 (frag_overlap), 4007 (multicast_mac_unicast_ip: NAT
    // translates before forward drops it for its link-layer address), TCP from ports 4001,
    // 4002, 4003, 4006. No martian, malformed or dropped-before-NAT frame made one.
    assert_eq!(seen.nat_sessions, 20 + 8, "NAT sessions");
    // ARP spoofing changed no neighbour: the gateway keeps its static MAC, the router's own
    // address and the off-subnet sender were not learned.
    let neigh = seen.neigh["neighbors"].as_array().unwrap();
    let gw = neigh
        .iter()
        .find(|e| e["address"] == "198.51.100.254")
        .expect("the gateway's static entry");
    assert_eq!(gw["mac"], "02:00:00:00:01:fe", "{neigh:?}");
    for a in ["10.0.0.1", "172.16.0.9"] {
        assert!(
            neigh.iter().all(|e| e["address"] != a),
            "{a} learned: {neigh:?}"
        );
    }
}

/// Random bytes (raw, ARP-typed, and IPv4 headers with a right checksum and random fields)
/// on the inside port: nothing crashes pollfwd and every frame is accounted for.
#[test]
fn random_frames_through_the_full_chain_are_all_accounted_for() {
    let lab = Lab::new("hostile-rnd");
    let net = Net::default();
    let lan = hostile::random_frames(&net, 3000, 0xfeed);
    let (s, seen) = run_live(&lab, &lan, &[]);
    let (rx, ..) = check_accounting(&s);
    assert_eq!(rx, 3000, "{s}");
    check_memory(&seen, 4096);
}
