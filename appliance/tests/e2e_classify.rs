//! End to end: the classify stage (rte_acl) in the real `pollfwd` binary on net_pcap ports,
//! chain `["classify", "xconnect"]`: permit / deny / class by 5-tuple and ingress port, with
//! the exact number of frames out, drops under `acl_deny`, and per-rule hit counters (packets
//! and bytes) from the summary's `nf.classify` section (the `acl.counters` object).

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use common::*;
use lab::traffic::{self, GenSpec, Proto, Sizes};
use serde_json::Value;

/// 3000 frames in 30 flows; with `Proto::Mix` and 30 flows, flow f carries a single protocol:
/// f % 3 == 0 UDP, 1 TCP, 2 ICMP. Flow f: 198.18.0.(1+f):(1024+f) -> 198.19.0.1:9, 100 frames.
/// Sizes cycle 64/128/256: each flow's 100 frames have a known byte total.
fn spec() -> GenSpec {
    GenSpec {
        count: 3000,
        flows: 30,
        proto: Proto::Mix,
        sizes: Sizes::List(vec![64, 128, 256, 512, 1024]),
        ..Default::default()
    }
}

/// Frames of the input that a predicate on (flow, frame) selects, and their bytes.
fn select(frames: &[Vec<u8>], f: impl Fn(usize) -> bool) -> (u64, u64) {
    let mut n = 0;
    let mut b = 0;
    for (i, fr) in frames.iter().enumerate() {
        if f(i % 30) {
            n += 1;
            b += fr.len() as u64;
        }
    }
    (n, b)
}

fn rule_hits(s: &Value) -> HashMap<u64, (u64, u64)> {
    s["nf"]["classify"]["rules"]
        .as_array()
        .expect("summary has nf.classify.rules")
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().unwrap(),
                (r["packets"].as_u64().unwrap(), r["bytes"].as_u64().unwrap()),
            )
        })
        .collect()
}

fn src_of(frame: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29])
}

#[test]
fn permit_deny_and_class_by_five_tuple_with_exact_counts() {
    let lab = Lab::new("acl");
    traffic::write_pcap(&spec(), &lab.path("in.pcap")).unwrap();
    let acl = r#"
[classify]
default = "permit"
classes = ["gold", "silver"]
rules = [
  # 1: UDP from 198.18.0.0/28 (flows 0..=14; UDP ones: 0, 3, 6, 9, 12): deny.
  { src = "198.18.0.0/28", proto = "udp", action = "deny" },
  # 2: TCP with source port 1030-1040 (flows 6..=16; TCP ones: 7, 10, 13, 16): gold.
  { proto = "tcp", sport = "1030-1040", class = "gold" },
  # 3: all ICMP (flows 2, 5, ..., 29): silver, priority 5.
  { proto = "icmp", class = "silver", priority = 5 },
  # 4: flow 20 (ICMP) denied: priority 10 beats rule 3.
  { src = "198.18.0.21/32", action = "deny", priority = 10 },
  # 5: UDP to port 9 arriving on p1: never matches (all traffic enters on p0).
  { proto = "udp", dport = 9, in_port = "p1", action = "deny", priority = 100 },
  # 6: UDP to port 9 on p0 from flows 24..=27 (UDP one: 24): permit without class.
  { src = "198.18.0.25/32", proto = "udp", dport = 9, in_port = "p0" },
]
"#;
    let cfg = pcap_config(&lab, "in.pcap", r#"["classify", "xconnect"]"#, acl);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let input = read_pcap(&lab.path("in.pcap"));
    let output = read_pcap(&lab.path("p1-out.pcap"));
    let udp = |f: usize| f.is_multiple_of(3);
    let tcp = |f: usize| f % 3 == 1;
    let icmp = |f: usize| f % 3 == 2;
    let r1 = select(&input, |f| udp(f) && f <= 14);
    let r2 = select(&input, |f| tcp(f) && (6..=16).contains(&f));
    let r3 = select(&input, |f| icmp(f) && f != 20);
    let r4 = select(&input, |f| f == 20);
    let r6 = select(&input, |f| f == 24);
    // Neither rule 1, 2, 3/4 (all ICMP) nor 6.
    let in_rule =
        |f: usize| (udp(f) && f <= 14) || (tcp(f) && (6..=16).contains(&f)) || icmp(f) || f == 24;
    let dflt = select(&input, |f| !in_rule(f));
    assert_eq!((r1.0, r2.0, r3.0, r4.0, r6.0), (500, 400, 900, 100, 100));
    assert_eq!(dflt.0, 3000 - 500 - 400 - 900 - 100 - 100);

    // Frames out: everything but rules 1 and 4, unchanged and in order.
    let denied = r1.0 + r4.0;
    assert_eq!(output.len() as u64, 3000 - denied, "frames out of p1");
    let expect: Vec<&Vec<u8>> = input
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let f = i % 30;
            !(udp(f) && f <= 14) && f != 20
        })
        .map(|(_, fr)| fr)
        .collect();
    assert!(
        output.iter().eq(expect.iter().copied()),
        "permitted frames differ from the input's"
    );
    assert!(
        !output
            .iter()
            .any(|f| src_of(f) == Ipv4Addr::new(198, 18, 0, 21))
    );

    assert_eq!(s["totals"]["drops_by_reason"]["acl_deny"], denied);
    assert_eq!(s["totals"]["drops"], denied);
    assert_eq!(port(&s, "p1")["tx_packets"], 3000 - denied);

    // Per-rule hit counters: packets and frame bytes.
    let hits = rule_hits(&s);
    assert_eq!(hits[&1], r1, "rule 1");
    assert_eq!(hits[&2], r2, "rule 2");
    assert_eq!(hits[&3], r3, "rule 3");
    assert_eq!(hits[&4], r4, "rule 4");
    assert_eq!(hits[&5], (0, 0), "rule 5");
    assert_eq!(hits[&6], r6, "rule 6");
    let d = &s["nf"]["classify"]["default"];
    assert_eq!(d["action"], "permit");
    assert_eq!(
        (d["packets"].as_u64().unwrap(), d["bytes"].as_u64().unwrap()),
        dflt
    );
    // The classify stage saw every frame.
    let rt = &s["lcores"][0]["runtime"][0];
    assert_eq!(rt["stage"], "classify");
    assert_eq!(rt["packets"], 3000);
}

#[test]
fn default_deny_passes_only_what_rules_permit_and_lets_arp_through() {
    let lab = Lab::new("acl-deny");
    let frames: Vec<Vec<u8>> = traffic::generate(&spec()).collect();
    // An ARP request (not IPv4: not the ACL's business) and an IPv4 header with a bad
    // checksum (malformed: dropped by the parser with its own reason) every 500 frames.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 198, 18, 0, 1]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[198, 18, 0, 2]);
    arp.resize(60, 0);
    let mut bad = frames[0].clone();
    bad[24] ^= 0xff;
    let (mut arps, mut bads) = (0u64, 0u64);
    let mut input = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        input.push(f.clone());
        if i % 500 == 0 {
            input.push(arp.clone());
            input.push(bad.clone());
            arps += 1;
            bads += 1;
        }
    }
    write_frames(&lab.path("in.pcap"), &input);
    let acl = r#"
[classify]
default = "deny"
rules = [{ proto = "tcp", dport = 9 }, { proto = 1, src = "198.18.0.0/24" }]
"#;
    let cfg = pcap_config(&lab, "in.pcap", r#"["classify", "xconnect"]"#, acl);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let output = read_pcap(&lab.path("p1-out.pcap"));
    // TCP and ICMP flows: 2000 frames; plus the ARP requests.
    assert_eq!(output.len() as u64, 2000 + arps);
    assert_eq!(
        output.iter().filter(|f| f[12..14] == [0x08, 0x06]).count() as u64,
        arps
    );
    assert!(
        output
            .iter()
            .all(|f| f[12..14] == [0x08, 0x06] || f[23] == 6 || f[23] == 1)
    );
    assert_eq!(s["totals"]["drops_by_reason"]["acl_deny"], 1000);
    assert_eq!(s["totals"]["drops_by_reason"]["ipv4_bad_checksum"], bads);
    assert_eq!(s["totals"]["drops"], 1000 + bads);
    let d = &s["nf"]["classify"]["default"];
    assert_eq!(
        (d["action"].as_str(), d["packets"].as_u64()),
        (Some("deny"), Some(1000))
    );
    let hits = rule_hits(&s);
    assert_eq!(hits[&1].0, 1000);
    assert_eq!(hits[&2].0, 1000);
}

#[test]
fn ten_thousand_rules_load_from_a_rules_file_and_classify() {
    let lab = Lab::new("acl-10k");
    traffic::write_pcap(&spec(), &lab.path("in.pcap")).unwrap();
    // 10,000 rules: /32 sources 10.x.y.z with UDP port ranges (never matching this traffic),
    // plus, last, a deny for the 10 TCP flows 198.18.0.2 .. 198.18.0.29 step 3.
    let mut text = String::from("rules = [\n");
    for i in 0..9_999u32 {
        let a = Ipv4Addr::from(0x0a00_0000 + i);
        let p = 1000 + (i % 100) as u16;
        text += &format!(
            "  {{ src = \"{a}\", proto = \"udp\", dport = \"{p}-{}\", action = \"deny\" }},\n",
            p + 10
        );
    }
    text += "  { src = \"198.18.0.0/24\", proto = \"tcp\", action = \"deny\" },\n]\n";
    lab.write("rules.toml", &text);
    let cfg = pcap_config(
        &lab,
        "in.pcap",
        r#"["classify", "xconnect"]"#,
        "[classify]\nrules_file = \"rules.toml\"\n",
    );
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let output = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(output.len(), 2000);
    assert!(output.iter().all(|f| f[23] != 6), "a TCP frame got through");
    assert_eq!(s["totals"]["drops_by_reason"]["acl_deny"], 1000);
    let rules = s["nf"]["classify"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 10_000);
    assert_eq!(rules[9_999]["id"], 10_000);
    assert_eq!(rules[9_999]["packets"], 1000);
    assert_eq!(s["nf"]["classify"]["default"]["packets"], 2000);
}

/// Waits until the daemon answers on its control socket.
fn wait_ready(lab: &Lab) {
    wait_answering(&lab.path("ctl.sock"));
    // Answering is not forwarding yet: the ports start after the socket comes up.
    wait_for_ports(&lab.path("ctl.sock"), "rx_packets", 1);
}

fn counter(v: &Value, id: u64) -> Option<(u64, u64)> {
    v["rules"]
        .as_array()?
        .iter()
        .find(|r| r["id"] == id)
        .map(|r| (r["packets"].as_u64().unwrap(), r["bytes"].as_u64().unwrap()))
}

#[test]
fn acl_list_add_del_counters_over_the_control_socket() {
    let lab = Lab::new("acl-ops");
    traffic::write_pcap(&spec(), &lab.path("in.pcap")).unwrap();
    let acl = r#"
[classify]
classes = ["gold"]
rules = [
  { src = "198.18.0.0/28", proto = "udp", action = "deny" },
  { proto = "tcp", sport = "1030-1040", class = "gold", priority = 7 },
]
"#;
    let cfg = pcap_config(&lab, "in.pcap", r#"["classify", "xconnect"]"#, acl);
    let _g = busy_lock();
    let child = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--duration",
        "60",
        "--summary",
        "json",
    ]);
    wait_ready(&lab);
    let input = read_pcap(&lab.path("in.pcap"));
    let r1 = select(&input, |f| f % 3 == 0 && f <= 14);
    let r2 = select(&input, |f| f % 3 == 1 && (6..=16).contains(&f));
    // Wait until the whole pcap went through the stage.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let c = ctl_call(&lab.path("ctl.sock"), "acl.counters", "{}").unwrap();
        let n: u64 = c["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["packets"].as_u64().unwrap())
            .sum::<u64>()
            + c["default"]["packets"].as_u64().unwrap();
        if n == 3000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {n} packets classified"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // List: precedence order (priority 7 first), normalized text, counters.
    let l = ctl_call(&lab.path("ctl.sock"), "acl.list", "{}").unwrap();
    assert_eq!(l["default"], "permit");
    assert_eq!(l["classes"], serde_json::json!(["gold"]));
    assert_eq!(l["workers"], 1);
    let rules = l["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["id"], 2);
    assert_eq!(rules[0]["class"], "gold");
    assert_eq!(rules[0]["sport"], "1030-1040");
    assert_eq!(rules[0]["proto"], "tcp");
    assert_eq!(rules[0]["priority"], 7);
    assert_eq!(rules[1]["id"], 1);
    assert_eq!(rules[1]["src"], "198.18.0.0/28");
    assert_eq!(rules[1]["action"], "deny");
    assert_eq!(
        (rules[1]["packets"].as_u64(), rules[1]["bytes"].as_u64()),
        (Some(r1.0), Some(r1.1))
    );

    // Add: new id 3, installed on the one worker; the existing counters survive the rebuild.
    let a = ctl_call(
        &lab.path("ctl.sock"),
        "acl.add",
        r#"{"proto": "icmp", "dport": "2048-2303", "action": "deny", "priority": 9}"#,
    )
    .unwrap();
    assert_eq!(a["id"], 3);
    assert_eq!(a["rules"], 3);
    assert_eq!(a["workers"], 1);
    let c = ctl_call(&lab.path("ctl.sock"), "acl.counters", "{}").unwrap();
    assert_eq!(counter(&c, 1), Some(r1));
    assert_eq!(counter(&c, 2), Some(r2));
    assert_eq!(counter(&c, 3), Some((0, 0)));
    let l = ctl_call(&lab.path("ctl.sock"), "acl.list", "{}").unwrap();
    let ids: Vec<u64> = l["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![3, 2, 1], "precedence order");
    assert_eq!(l["rules"][0]["dport"], "2048-2303");

    // Delete rule 1: gone from list and counters; rule 2 keeps its hits; ids are not reused.
    let d = ctl_call(&lab.path("ctl.sock"), "acl.del", r#"{"id": 1}"#).unwrap();
    assert_eq!(
        (d["deleted"].as_u64(), d["rules"].as_u64()),
        (Some(1), Some(2))
    );
    let c = ctl_call(&lab.path("ctl.sock"), "acl.counters", "{}").unwrap();
    assert_eq!(counter(&c, 1), None);
    assert_eq!(counter(&c, 2), Some(r2));
    let a = ctl_call(&lab.path("ctl.sock"), "acl.add", r#"{"src": "10.0.0.0/8"}"#).unwrap();
    assert_eq!(a["id"], 4);

    // Errors: positioned in the message, nothing changes.
    let e = ctl_call(&lab.path("ctl.sock"), "acl.del", r#"{"id": 1}"#)
        .unwrap_err()
        .1;
    assert!(e.contains("no rule with id 1"), "{e}");
    let e = ctl_call(&lab.path("ctl.sock"), "acl.add", r#"{"src": "10.1.0.0/8"}"#)
        .unwrap_err()
        .1;
    assert!(e.contains("host bits set"), "{e}");
    let e = ctl_call(&lab.path("ctl.sock"), "acl.add", r#"{"class": "platinum"}"#)
        .unwrap_err()
        .1;
    assert!(e.contains("unknown class 'platinum'"), "{e}");
    let e = ctl_call(&lab.path("ctl.sock"), "acl.add", r#"{"prot": "udp"}"#)
        .unwrap_err()
        .1;
    assert!(e.contains("unknown field `prot`"), "{e}");
    let e = ctl_call(&lab.path("ctl.sock"), "acl.del", "{}")
        .unwrap_err()
        .1;
    assert!(e.contains("missing argument 'id'"), "{e}");
    let l = ctl_call(&lab.path("ctl.sock"), "acl.list", "{}").unwrap();
    assert_eq!(l["rules"].as_array().unwrap().len(), 3);

    // An IPv6 rule added live: listed with its family and its prefix in RFC 5952 text. A rule
    // mixing the families, or an IPv6 prefix with host bits, is refused and changes nothing.
    let a = ctl_call(
        &lab.path("ctl.sock"),
        "acl.add",
        r#"{"dst": "2001:DB8:0:0::/32", "proto": "tcp", "dport": 22, "action": "deny", "priority": 20}"#,
    )
    .unwrap();
    assert_eq!((a["id"].as_u64(), a["rules"].as_u64()), (Some(5), Some(4)));
    let e = ctl_call(
        &lab.path("ctl.sock"),
        "acl.add",
        r#"{"src": "10.0.0.0/8", "dst": "2001:db8::/32"}"#,
    )
    .unwrap_err()
    .1;
    assert!(
        e.contains("dst '2001:db8::/32' is IPv6 but src is IPv4"),
        "{e}"
    );
    let e = ctl_call(
        &lab.path("ctl.sock"),
        "acl.add",
        r#"{"src": "2001:db8::1/32"}"#,
    )
    .unwrap_err()
    .1;
    assert!(e.contains("did you mean 2001:db8::/32?"), "{e}");
    let l = ctl_call(&lab.path("ctl.sock"), "acl.list", "{}").unwrap();
    let rules = l["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    assert_eq!(rules[0]["id"], 5);
    assert_eq!(rules[0]["family"], "ipv6");
    assert_eq!(rules[0]["dst"], "2001:db8::/32");
    assert_eq!(rules[0]["dport"], "22");
    let by_id = |id: u64| rules.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(by_id(4)["family"], "ipv4");
    assert_eq!(by_id(4)["src"], "10.0.0.0/8");
    // Rule 2 (TCP by source port) applies to both families: no family key.
    assert!(by_id(2).get("family").is_none(), "{}", by_id(2));

    signal(&child, "TERM");
    let out = wait_with_deadline(child, 20);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The summary reports the final rule set's counters (ids 2, 3, 4, 5).
    let ids: Vec<u64> = s["nf"]["classify"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![2, 3, 4, 5]);
    assert_eq!(counter(&s["nf"]["classify"], 2), Some(r2));
    assert_eq!(s["totals"]["drops_by_reason"]["acl_deny"], r1.0);
}

/// A rule set swapped in while traffic flows is applied between two bursts: once `acl.add`
/// returns, the rule it shadows never counts another packet, and after `acl.del` it counts
/// again.
#[test]
fn live_rule_changes_apply_atomically_under_traffic() {
    let lab = Lab::new("acl-live");
    traffic::write_pcap(
        &GenSpec {
            count: 1024,
            flows: 64,
            ..Default::default()
        },
        &lab.path("in.pcap"),
    )
    .unwrap();
    traffic::write_pcap(
        &GenSpec {
            count: 0,
            ..Default::default()
        },
        &lab.path("empty.pcap"),
    )
    .unwrap();
    let cfg = lab.write(
        "pollfwd.toml",
        &format!(
            r#"
[eal]
file_prefix = "{prefix}"
[mempool]
mbufs = 4095
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=in.pcap,infinite_rx=1"
[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=empty.pcap"
[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = ["classify", "xconnect"]
[xconnect]
pairs = [["p0", "p1"]]
[classify]
rules = [{{ proto = "udp" }}]
[control]
socket = "{sock}"
"#,
            prefix = lab.prefix(),
            sock = lab.path("ctl.sock").display()
        ),
    );
    let _g = busy_lock();
    let child = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--duration",
        "60",
        "--summary",
        "json",
    ]);
    wait_ready(&lab);
    let pkts = |id: u64| {
        counter(
            &ctl_call(&lab.path("ctl.sock"), "acl.counters", "{}").unwrap(),
            id,
        )
        .map(|c| c.0)
    };
    let grows = |id: u64| {
        let a = pkts(id).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        pkts(id).unwrap() > a
    };
    assert!(grows(1), "traffic flows through rule 1");
    let a = ctl_call(
        &lab.path("ctl.sock"),
        "acl.add",
        r#"{"proto": "udp", "action": "deny", "priority": 1}"#,
    )
    .unwrap();
    assert_eq!(
        (a["id"].as_u64(), a["workers"].as_u64()),
        (Some(2), Some(1))
    );
    // Rule 1 is shadowed from the first burst after the swap: frozen.
    let frozen = pkts(1).unwrap();
    assert!(grows(2), "the new deny rule takes the traffic");
    assert_eq!(
        pkts(1).unwrap(),
        frozen,
        "rule 1 counted packets after it was shadowed"
    );
    ctl_call(&lab.path("ctl.sock"), "acl.del", r#"{"id": 2}"#).unwrap();
    assert!(grows(1), "rule 1 takes the traffic again");
    assert_eq!(pkts(2), None);
    signal(&child, "TERM");
    let out = wait_with_deadline(child, 20);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let denied = s["totals"]["drops_by_reason"]["acl_deny"].as_u64().unwrap();
    assert!(denied > 0);
    // Every packet the worker received was either denied by rule 2 or permitted by rule 1.
    let rx = lcore_sum(&s, "rx_packets");
    let r1 = counter(&s["nf"]["classify"], 1).unwrap().0;
    assert_eq!(r1 + denied, rx);
}

/// The class label is what later stages read: a policer bound to class "gold" that can never
/// pass a frame (1 byte of committed burst, red and yellow dropped) drops exactly the frames
/// the gold rule classified; "silver" frames (no policer) and unclassified ones pass.
#[test]
fn class_labels_reach_the_policer() {
    let lab = Lab::new("acl-class");
    traffic::write_pcap(&spec(), &lab.path("in.pcap")).unwrap();
    let extra = r#"
[classify]
classes = ["silver", "gold"]
rules = [
  { proto = "tcp", sport = "1030-1040", class = "gold" },
  { proto = "icmp", class = "silver" },
]

[policer]
[[policer.policers]]
name = "gold-blackhole"
kind = "srtcm"
units = "bytes"
cir = 1
cbs = 1
ebs = 0
yellow = "drop"
red = "drop"
bind = { class = "gold" }
"#;
    let cfg = pcap_config(
        &lab,
        "in.pcap",
        r#"["classify", "policer", "xconnect"]"#,
        extra,
    );
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let input = read_pcap(&lab.path("in.pcap"));
    let gold = select(&input, |f| f % 3 == 1 && (6..=16).contains(&f));
    assert_eq!(gold.0, 400);
    let output = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(output.len() as u64, 3000 - gold.0);
    assert_eq!(s["totals"]["drops_by_reason"]["policer_red"], gold.0);
    assert_eq!(s["totals"]["drops"], gold.0);
    // No gold flow's frame got out.
    assert!(output.iter().all(|f| {
        let flow = usize::from(f[29]) - 1; // 198.18.0.(1 + flow)
        !(flow % 3 == 1 && (6..=16).contains(&flow))
    }));
    assert_eq!(rule_hits(&s)[&1], gold);
}

/// Two workers (lcore 1 polls p0, lcore 2 polls p1; both on CPU 1 of this 2-CPU machine) run
/// classify on one shared table: `in_port` tells the two inputs apart, and hit counters are
/// summed over the workers.
#[test]
fn two_workers_in_port_rules_and_summed_counters() {
    let lab = Lab::new("acl-2w");
    traffic::write_pcap(&spec(), &lab.path("in0.pcap")).unwrap();
    let spec1 = GenSpec {
        count: 1000,
        flows: 10,
        src_ip: Ipv4Addr::new(198, 18, 1, 1),
        ..Default::default()
    };
    traffic::write_pcap(&spec1, &lab.path("in1.pcap")).unwrap();
    let cfg = lab.write(
        "pollfwd.toml",
        &format!(
            r#"
[eal]
file_prefix = "{prefix}"
[mempool]
mbufs = 4095
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=in0.pcap,tx_pcap=p0-out.pcap"
[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=in1.pcap,tx_pcap=p1-out.pcap"
[[lcore]]
id = 1
rx = [{{ port = "p0" }}]
tx_ports = ["p1"]
stages = ["classify", "xconnect"]
[[lcore]]
id = 2
cpu = 1
rx = [{{ port = "p1" }}]
tx_ports = ["p0"]
stages = ["classify", "xconnect"]
[xconnect]
pairs = [["p0", "p1"]]
[classify]
rules = [
  {{ proto = "udp", in_port = "p1", action = "deny" }},
  {{ proto = "udp", dport = 9 }},
]
[control]
socket = "{sock}"
"#,
            prefix = lab.prefix(),
            sock = lab.path("ctl.sock").display()
        ),
    );
    let s = lab.run_json(&cfg, &["--exit-idle", "600"]);
    // p0's UDP (1000 frames) passes by rule 2 to p1; p1's 1000 UDP frames are denied by rule 1.
    assert_eq!(read_pcap(&lab.path("p1-out.pcap")).len(), 3000);
    assert_eq!(read_pcap(&lab.path("p0-out.pcap")).len(), 0);
    assert_eq!(s["totals"]["drops_by_reason"]["acl_deny"], 1000);
    let hits = rule_hits(&s);
    assert_eq!(hits[&1].0, 1000);
    assert_eq!(hits[&2].0, 1000);
    assert_eq!(s["nf"]["classify"]["default"]["packets"], 2000);
    assert_eq!(s["nf"]["classify"]["workers"], 2);
    // Each worker counted its own port's share.
    let per: Vec<u64> = s["lcores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["runtime"][0]["packets"].as_u64().unwrap())
        .collect();
    assert_eq!(per, vec![3000, 1000]);
}

/// An IPv4 fragment in an Ethernet frame: 198.18.0.1 -> 198.19.0.1, protocol `proto`, IP id
/// `id`, offset `off` (8-byte units), more-fragments `mf`, carrying `payload`.
fn fragment(proto: u8, id: u16, off: u16, mf: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    let total = (20 + payload.len()) as u16;
    let ff = off | if mf { 0x2000 } else { 0 };
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&id.to_be_bytes());
    ip.extend_from_slice(&ff.to_be_bytes());
    ip.extend_from_slice(&[64, proto, 0, 0, 198, 18, 0, 1, 198, 19, 0, 1]);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

/// A TCP datagram to `dport` in three fragments: the first carries the TCP header and 4
/// bytes (24 bytes), then 24 and 16 bytes.
fn tcp_in_three(id: u16, dport: u16) -> Vec<Vec<u8>> {
    let mut l4 = [0u8; 64];
    l4[0..2].copy_from_slice(&40000u16.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[12] = 0x50;
    vec![
        fragment(6, id, 0, true, &l4[..24]),
        fragment(6, id, 3, true, &l4[24..48]),
        fragment(6, id, 6, false, &l4[48..]),
    ]
}

/// Later fragments meet the rule their first fragment met (a port permitted under a default
/// deny lets the whole datagram through; a denied port drops all of it), a later fragment
/// whose first fragment was not seen meets only port-less rules, and a TCP fragment at offset
/// 1 is dropped (RFC 3128).
#[test]
fn fragments_follow_their_first_fragment_and_tcp_offset_1_is_dropped() {
    let lab = Lab::new("acl-frag");
    let permitted = tcp_in_three(1, 80);
    let denied = tcp_in_three(2, 22);
    let orphan = tcp_in_three(3, 80).remove(1);
    let offset1 = fragment(6, 1, 1, true, &[0u8; 16]);
    let mut input = vec![permitted[0].clone(), denied[0].clone(), offset1.clone()];
    input.extend_from_slice(&permitted[1..]);
    input.extend_from_slice(&denied[1..]);
    input.push(orphan);
    write_frames(&lab.path("in.pcap"), &input);
    let acl = r#"
[classify]
default = "deny"
rules = [
  { proto = "tcp", dport = 22, action = "deny" },
  { proto = "tcp", dport = 80 },
]
"#;
    let cfg = pcap_config(&lab, "in.pcap", r#"["classify", "xconnect"]"#, acl);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let output = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(
        output, permitted,
        "the permitted datagram, all three fragments"
    );
    let r = &s["totals"]["drops_by_reason"];
    assert_eq!(r["acl_deny"], 3 + 1, "{r}");
    assert_eq!(r["acl_tcp_frag_offset1"], 1, "{r}");
    let hits = rule_hits(&s);
    assert_eq!((hits[&1].0, hits[&2].0), (3, 3));
    assert_eq!(s["nf"]["classify"]["default"]["packets"], 1, "the orphan");
}

/// An Ethernet + IPv6 frame from `src` to `dst` (both with ':'), next header `nh` with an L4
/// header carrying the ports (TCP, UDP) and zero padding up to `len` bytes of frame. Built
/// here (gen-pcap writes IPv4 only); the ACL reads only the addresses, next header and ports.
fn ipv6_frame(src: &str, dst: &str, nh: u8, sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let a = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x86, 0xdd];
    let payload = len - 14 - 40;
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload as u16).to_be_bytes());
    f.extend_from_slice(&[nh, 64]);
    f.extend_from_slice(&a(src));
    f.extend_from_slice(&a(dst));
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    if nh == 17 {
        f.extend_from_slice(&(payload as u16).to_be_bytes());
    }
    f.resize(len, 0);
    f
}

/// IPv6 rules in the real binary: a deny rule on an IPv6 prefix drops exactly the IPv6
/// packets it matches (`acl_deny` and its hit counter), a rule without addresses applies to
/// both families on one counter, the IPv4 rules see only IPv4, and the permitted IPv6 frames
/// leave through `xconnect` unchanged and in order, among the IPv4 ones.
#[test]
fn ipv6_rules_drop_exactly_the_matching_ipv6_packets() {
    let lab = Lab::new("acl-v6");
    let v4: Vec<Vec<u8>> = traffic::generate(&spec()).collect();
    // 1200 IPv6 frames interleaved with the 3000 IPv4 ones, in four kinds of 300:
    // 0: UDP from 2001:db8:1::/48 to port 53 (rule 1: deny), 1: the same to port 54 (no rule),
    // 2: UDP from 2001:db8:2::/48 to port 53 (no rule), 3: TCP to port 443 (rule 3: deny).
    let six = |k: usize| {
        let host = 1 + k / 4 % 50;
        let (src, nh, dport) = match k % 4 {
            0 => (format!("2001:db8:1::{host:x}"), 17, 53),
            1 => (format!("2001:db8:1::{host:x}"), 17, 54),
            2 => (format!("2001:db8:2:7::{host:x}"), 17, 53),
            _ => (format!("2001:db8:3::{host:x}"), 6, 443),
        };
        ipv6_frame(&src, "2001:db8:ff::1", nh, 40000, dport, 78 + 4 * (k % 8))
    };
    // Each input frame: Err(IPv4 flow) or Ok(IPv6 kind).
    let mut input = Vec::new();
    let mut kinds: Vec<Result<usize, usize>> = Vec::new();
    let mut k = 0;
    for (i, f) in v4.iter().enumerate() {
        input.push(f.clone());
        kinds.push(Err(i % 30));
        if i % 5 < 2 {
            input.push(six(k));
            kinds.push(Ok(k % 4));
            k += 1;
        }
    }
    assert_eq!(k, 1200);
    write_frames(&lab.path("in.pcap"), &input);
    let acl = r#"
[classify]
default = "permit"
rules = [
  { src = "2001:db8:1::/48", proto = "udp", dport = 53, action = "deny" },
  # IPv4 UDP from flows 0..=14 (0, 3, 6, 9, 12): deny.
  { src = "198.18.0.0/28", proto = "udp", action = "deny" },
  # Both families: TCP to port 443 (no IPv4 flow goes there).
  { proto = "tcp", dport = 443, action = "deny" },
  # IPv6 to port 54: permitted (a class-less permit rule), counted.
  { dst = "2001:db8:ff::/64", proto = "udp", dport = 54 },
]
"#;
    let cfg = pcap_config(&lab, "in.pcap", r#"["classify", "xconnect"]"#, acl);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let output = read_pcap(&lab.path("p1-out.pcap"));

    let sum = |want: &dyn Fn(Result<usize, usize>) -> bool| {
        input
            .iter()
            .zip(&kinds)
            .filter(|(_, k)| want(**k))
            .fold((0u64, 0u64), |(n, b), (f, _)| (n + 1, b + f.len() as u64))
    };
    let denied_v4 = |k: Result<usize, usize>| matches!(k, Err(f) if f % 3 == 0 && f <= 14);
    let r1 = sum(&|k| k == Ok(0));
    let r2 = sum(&denied_v4);
    let r3 = sum(&|k| k == Ok(3));
    let r4 = sum(&|k| k == Ok(1));
    assert_eq!((r1.0, r2.0, r3.0, r4.0), (300, 500, 300, 300));
    let denied = r1.0 + r2.0 + r3.0;

    assert_eq!(s["totals"]["drops_by_reason"]["acl_deny"], denied);
    assert_eq!(s["totals"]["drops"], denied);
    let hits = rule_hits(&s);
    assert_eq!(hits[&1], r1, "rule 1 (IPv6 deny)");
    assert_eq!(hits[&2], r2, "rule 2 (IPv4)");
    assert_eq!(hits[&3], r3, "rule 3 (both families)");
    assert_eq!(hits[&4], r4, "rule 4 (IPv6 permit)");
    let d = &s["nf"]["classify"]["default"];
    assert_eq!(d["packets"], 4200 - denied - r4.0);

    // Out: every frame not denied, unchanged and in order: IPv6 kinds 1 and 2 among them.
    let expect: Vec<&Vec<u8>> = input
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| !denied_v4(**k) && !matches!(k, Ok(0) | Ok(3)))
        .map(|(f, _)| f)
        .collect();
    assert_eq!(output.len() as u64, 4200 - denied, "frames out of p1");
    assert!(
        output.iter().eq(expect.iter().copied()),
        "permitted frames differ"
    );
    assert_eq!(
        output.iter().filter(|f| f[12..14] == [0x86, 0xdd]).count(),
        600
    );
    assert_eq!(port(&s, "p1")["tx_packets"], 4200 - denied);
}
