//! Scale-out NAT end to end with the real `pollfwd` binary on net_pcap ports (p0 inside, p1
//! outside, chain `["nat", "xconnect"]`).
//!
//! Deterministic NAT (RFC 7422): two "boxes" (two runs with different seeds, as two
//! appliances behind ECMP would have) translate the same inside traffic into the same outside
//! frames; return traffic fed to a third box that never saw the flows is translated back with
//! `stateless_inbound` and dropped without it; the operator asks which host used an outside
//! endpoint; bad maps are refused with their position.
//!
//! Port blocks for the pool: one RFC 5424 record per block taken and freed, a host's second
//! block, `nat_block_exhausted` beyond, and `nat.who` answering from the log file of an
//! earlier run.

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use pollfwd_nf::nat::testpkt::{self, verify};
use serde_json::Value;

const R1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const R2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const DET_IN: &str = "10.9.0.0/24";
const DET_OUT: &str = "198.51.100.0/30";

fn host(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 9, 0, i)
}

/// Host `i`'s outside address and first port, computed here the way RFC 7422 / VPP det44 do
/// (a /24 onto a /30: 64 hosts per address, 64512 / 64 = 1008 ports each), not by pollfwd.
fn block_of(i: u8) -> (Ipv4Addr, u16) {
    let i = i as u32;
    (
        Ipv4Addr::new(198, 51, 100, (i / 64) as u8),
        1024 + (1008 * (i % 64)) as u16,
    )
}

/// The lab: p0 inside, p1 outside, one worker polling both, `[nat]` with `nat` inside it.
fn nat_lab(lab: &Lab, nat: &str) -> PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 4095

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=inside.pcap,tx_pcap=p0-out.pcap"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=outside.pcap,tx_pcap=p1-out.pcap"

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = ["nat", "xconnect"]

[xconnect]
pairs = [["p0", "p1"]]

[control]
socket = "{sock}"

[nat]
inside = ["p0"]
outside = ["p1"]
{nat}
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

fn det_config(lab: &Lab, seed: u64, stateless: bool) -> PathBuf {
    nat_lab(
        lab,
        &format!(
            r#"pool = ["198.51.100.10"]
seed = {seed}
static = [{{ outside = "203.0.113.5:443", inside = "10.0.0.5:8443", proto = "tcp" }}]
deterministic = [{{ inside = "{DET_IN}", outside = "{DET_OUT}", stateless_inbound = {stateless} }}]"#
        ),
    )
}

struct Box {
    s: Value,
    p0: Vec<Vec<u8>>,
    p1: Vec<Vec<u8>>,
}

fn run_box(name: &str, seed: u64, stateless: bool, inside: &[Vec<u8>], outside: &[Vec<u8>]) -> Box {
    let lab = Lab::new(name);
    write_frames(&lab.path("inside.pcap"), inside);
    write_frames(&lab.path("outside.pcap"), outside);
    let cfg = det_config(&lab, seed, stateless);
    let s = lab.run_json(&cfg, &["--exit-idle", "300"]);
    Box {
        s,
        p0: read_pcap(&lab.path("p0-out.pcap")),
        p1: read_pcap(&lab.path("p1-out.pcap")),
    }
}

fn nat_counter(s: &Value, name: &str) -> u64 {
    s["nf"]["nat"]["workers"]
        .as_array()
        .unwrap_or_else(|| panic!("no nf.nat.workers in {s}"))
        .iter()
        .map(|w| w["counters"][name].as_u64().unwrap_or(0))
        .sum()
}

/// Inside traffic: per host, UDP from a port of its block (kept) and from 40000 (moved into
/// the block), a TCP SYN from its block, an echo request with an identifier from its block.
fn inside_traffic() -> (Vec<Vec<u8>>, Vec<(Ipv4Addr, u16)>) {
    let mut frames = Vec::new();
    let mut expect = Vec::new();
    for i in [1u8, 2, 63, 64, 130, 255] {
        let (oa, lo) = block_of(i);
        frames.push(testpkt::udp((host(i), lo + 7), (R1, 53), b"det udp"));
        expect.push((oa, lo + 7));
        frames.push(testpkt::udp((host(i), 40000), (R1, 53), b"det moved"));
        expect.push((oa, lo + (40000 % 1008) as u16));
        frames.push(testpkt::tcp((host(i), lo + 100), (R2, 443), 0x02, 1, b""));
        expect.push((oa, lo + 100));
        frames.push(testpkt::icmp_echo(host(i), R1, lo + 3, 1, false));
        expect.push((oa, lo + 3));
    }
    (frames, expect)
}

#[test]
fn two_boxes_translate_identically_and_a_third_translates_the_replies_back() {
    let (inside, expect) = inside_traffic();
    let a = run_box("det-a", 1, true, &inside, &[]);
    let b = run_box("det-b", 0x5eed_0002, true, &inside, &[]);
    assert_eq!(
        a.p1.len(),
        inside.len(),
        "every packet translated out of p1"
    );
    assert_eq!(
        a.p1, b.p1,
        "two boxes, different seeds: the same frames on the wire"
    );
    for (k, (f, (oa, op))) in a.p1.iter().zip(&expect).enumerate() {
        verify(f).unwrap();
        let (s, sp, _, _) = testpkt::endpoints(f);
        assert_eq!(
            (s, sp),
            (*oa, *op),
            "frame {k}: the block arithmetic's endpoint"
        );
    }
    assert_eq!(
        nat_counter(&a.s, "det_sessions_created"),
        inside.len() as u64
    );

    // The replies to the flows that kept their port (UDP, TCP and echo), sent to a third box
    // that saw none of them: with stateless_inbound they reach the right host and port.
    let mut replies = Vec::new();
    let mut want = Vec::new();
    for i in [1u8, 2, 63, 64, 130, 255] {
        let (oa, lo) = block_of(i);
        replies.push(testpkt::udp((R1, 53), (oa, lo + 7), b"answer"));
        want.push(testpkt::udp((R1, 53), (host(i), lo + 7), b"answer"));
        replies.push(testpkt::tcp((R2, 443), (oa, lo + 100), 0x12, 9, b""));
        want.push(testpkt::tcp((R2, 443), (host(i), lo + 100), 0x12, 9, b""));
        replies.push(testpkt::icmp_echo(R1, oa, lo + 3, 1, true));
        want.push(testpkt::icmp_echo(R1, host(i), lo + 3, 1, true));
    }
    let c = run_box("det-c", 77, true, &[], &replies);
    assert_eq!(
        c.p0, want,
        "every reply translated back to its host, byte for byte"
    );
    assert_eq!(
        nat_counter(&c.s, "det_stateless_inbound"),
        replies.len() as u64
    );
    assert_eq!(drops(&c.s, "nat_no_session"), 0);

    // Without stateless_inbound, a box without the sessions drops them, counted.
    let d = run_box("det-d", 77, false, &[], &replies);
    assert!(d.p0.is_empty(), "{} frames leaked", d.p0.len());
    assert_eq!(drops(&d.s, "nat_no_session"), replies.len() as u64);
}

#[test]
fn the_operator_finds_who_used_an_outside_endpoint() {
    let lab = Lab::new("det-who");
    let (oa, lo) = block_of(70);
    let inside = vec![
        testpkt::udp((host(70), 40000), (R1, 53), b"q"),
        testpkt::udp((Ipv4Addr::new(10, 0, 0, 9), 5555), (R1, 53), b"pool"),
    ];
    write_frames(&lab.path("inside.pcap"), &inside);
    write_frames(&lab.path("outside.pcap"), &[]);
    let cfg = det_config(&lab, 1, false);
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let mut child = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--summary",
        "json",
        "--duration",
        "300",
    ]);
    wait_for_socket(&sock, &mut child);
    wait_for_ports(&sock, "rx_packets", 2);
    std::thread::sleep(Duration::from_millis(200));

    // The maps, and one host's block.
    let maps = ctl_call_ok(&sock, "nat.det", "{}");
    assert_eq!(maps[0]["inside"], DET_IN, "{maps}");
    assert_eq!(maps[0]["hosts_per_address"], 64);
    assert_eq!(maps[0]["ports_per_host"], 1008);
    let blk = ctl_call_ok(&sock, "nat.det", r#"{"inside": "10.9.0.70"}"#);
    assert_eq!(blk["outside"], oa.to_string(), "{blk}");
    assert_eq!(blk["ports"]["first"], lo);
    assert_eq!(blk["ports"]["last"], lo as u64 + 1007);
    let (_, e) = ctl_call(&sock, "nat.det", r#"{"inside": "10.8.0.1"}"#).unwrap_err();
    assert!(e.contains("in no deterministic map"), "{e}");

    // Any port of the block, at any time the map was in force: host 70. Now, the live session
    // shows the inside port too.
    let moved = lo + (40000 % 1008) as u16;
    let w = ctl_call_ok(
        &sock,
        "nat.who",
        &format!(r#"{{"outside": "{oa}:{moved}"}}"#),
    );
    assert_eq!(
        (w["by"].as_str(), w["inside"].as_str()),
        (Some("deterministic"), Some("10.9.0.70")),
        "{w}"
    );
    assert_eq!(w["sessions"][0]["inside"], "10.9.0.70:40000", "{w}");
    let w = ctl_call_ok(
        &sock,
        "nat.who",
        &format!(
            r#"{{"outside": "{oa}:{}", "at": "2020-01-01T00:00:00Z"}}"#,
            lo + 900
        ),
    );
    assert_eq!(w["inside"], "10.9.0.70", "{w}");
    assert!(w["note"].as_str().unwrap().contains("loaded at"), "{w}");
    let w = ctl_call_ok(&sock, "nat.who", &format!(r#"{{"outside": "{oa}:80"}}"#));
    assert_eq!(w["inside"], Value::Null, "below 1024: nobody's: {w}");
    // A static port forward, and the dynamic pool: its live session now, nothing in the past.
    let w = ctl_call_ok(
        &sock,
        "nat.who",
        r#"{"outside": "203.0.113.5:443", "proto": "tcp"}"#,
    );
    assert_eq!(
        (w["by"].as_str(), w["inside"].as_str()),
        (Some("static"), Some("10.0.0.5:8443")),
        "{w}"
    );
    let pool = ctl_call_ok(&sock, "nat.sessions", r#"{"inside": "10.0.0.9"}"#);
    let pool_ep = pool[0]["outside"].as_str().unwrap().to_string();
    let w = ctl_call_ok(&sock, "nat.who", &format!(r#"{{"outside": "{pool_ep}"}}"#));
    assert_eq!(
        (w["by"].as_str(), w["inside"].as_str()),
        (Some("session"), Some("10.0.0.9")),
        "{w}"
    );
    let w = ctl_call_ok(
        &sock,
        "nat.who",
        &format!(r#"{{"outside": "{pool_ep}", "at": 1600000000}}"#),
    );
    assert_eq!(w["inside"], Value::Null, "{w}");
    assert!(w["note"].as_str().unwrap().contains("no log"), "{w}");
    // Bad requests: clear errors, the data plane goes on.
    for (args, want) in [
        (r#"{"outside": "198.51.100.1"}"#, "address:port"),
        (
            r#"{"outside": "198.51.100.1:5000", "at": "yesterday"}"#,
            "RFC 3339",
        ),
        (
            r#"{"outside": "198.51.100.1:5000", "proto": "sctp"}"#,
            "tcp, udp or icmp",
        ),
    ] {
        let (_, e) = ctl_call(&sock, "nat.who", args).unwrap_err();
        assert!(e.contains(want), "{args}: {e}");
    }
    // A static mapping may not take a deterministic outside address.
    let (_, e) = ctl_call(
        &sock,
        "nat.static.add",
        r#"{"outside": "198.51.100.2:80", "inside": "10.0.0.8:80", "proto": "tcp"}"#,
    )
    .unwrap_err();
    assert!(e.contains("deterministic outside"), "{e}");
    // The CLI speaks it too.
    let out = ctl(&sock, &["nat", "who", &format!("outside={oa}:{moved}")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("10.9.0.70"));
    let s = stop(child);
    assert_eq!(nat_counter(&s, "det_sessions_created"), 1, "{s}");
}

#[test]
fn bad_deterministic_maps_are_refused_with_their_position() {
    let lab = Lab::new("det-bad");
    write_frames(&lab.path("inside.pcap"), &[]);
    write_frames(&lab.path("outside.pcap"), &[]);
    let good = std::fs::read_to_string(det_config(&lab, 1, false)).unwrap();
    for (from, to, needle, want) in [
        // The pool inside the outside prefix.
        (
            r#"pool = ["198.51.100.10"]"#,
            r#"pool = ["198.51.100.2"]"#,
            "\"198.51.100.0/30\"",
            "holds pool address",
        ),
        // Host bits.
        (
            "inside = \"10.9.0.0/24\"",
            "inside = \"10.9.0.1/24\"",
            "{ inside = \"10.9.0.1/24\"",
            "host bits",
        ),
        // Outside larger than inside.
        (
            "inside = \"10.9.0.0/24\"",
            "inside = \"10.9.0.0/31\"",
            "{ inside = \"10.9.0.0/31\"",
            "larger than inside",
        ),
        // A bad prefix.
        (
            "outside = \"198.51.100.0/30\"",
            "outside = \"198.51.100.0/33\"",
            "\"198.51.100.0/33\"",
            "bad prefix length",
        ),
    ] {
        let text = good.replace(from, to);
        assert_ne!(text, good);
        let cfg = lab.write("bad.toml", &text);
        let out = lab.run(&["--config", cfg.to_str().unwrap(), "--check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{to}: accepted");
        let (l, c) = text_pos(&text, needle);
        assert!(
            err.contains(&format!("bad.toml:{l}:{c}: ")) && err.contains(want),
            "{to}: want bad.toml:{l}:{c}: ... {want} in: {err}"
        );
    }
}

/// A pool-only NAT with port blocks of 64 ports, 2 per host, logged to blocks.log.
fn block_config(lab: &Lab, extra: &str) -> PathBuf {
    nat_lab(
        lab,
        &format!(
            r#"pool = ["198.51.100.10"]
port_range = [20000, 29999]
port_block = 64
blocks_per_host = 2
block_log = "blocks.log"
{extra}"#
        ),
    )
}

/// A NATBLOCK line's fields: event, inside, outside, first, last, timestamp.
type LogRec = (String, String, String, u16, u16, String);

fn log_records(text: &str) -> (usize, Vec<LogRec>) {
    let mut starts = 0;
    let mut v = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.splitn(7, ' ').collect();
        assert_eq!(f.len(), 7, "{l}");
        assert_eq!((f[0], f[3]), ("<134>1", "pollfwd"), "RFC 5424 header: {l}");
        let param = |k: &str| -> String {
            let at = l
                .find(&format!(" {k}=\""))
                .unwrap_or_else(|| panic!("{k} in {l}"))
                + k.len()
                + 3;
            l[at..at + l[at..].find('"').unwrap()].to_string()
        };
        match f[5] {
            "NATSTART" => starts += 1,
            "NATBLOCK" => v.push((
                param("event"),
                param("inside"),
                param("outside"),
                param("first").parse().unwrap(),
                param("last").parse().unwrap(),
                f[1].to_string(),
            )),
            m => panic!("MSGID {m}: {l}"),
        }
    }
    (starts, v)
}

#[test]
fn port_blocks_are_logged_taken_and_freed_and_who_answers_from_the_log() {
    let lab = Lab::new("nat-blocks");
    let a = Ipv4Addr::new(10, 0, 0, 21);
    let b = Ipv4Addr::new(10, 0, 0, 22);
    // A: 130 flows (two blocks of 64, then refused); B: one flow.
    let mut inside: Vec<Vec<u8>> = (0..130u16)
        .map(|k| testpkt::udp((a, 30000 + k), (R1, 53), b"blk"))
        .collect();
    inside.push(testpkt::udp((b, 5000), (R1, 53), b"blk"));
    write_frames(&lab.path("inside.pcap"), &inside);
    write_frames(&lab.path("outside.pcap"), &[]);
    // UDP sessions end 0.2 s after the last packet: their blocks go back before the exit.
    let cfg = block_config(&lab, "[nat.timeouts]\nudp = 0.2\n");
    let s = lab.run_json(&cfg, &["--exit-idle", "1000"]);
    let out = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(out.len(), 129, "128 of A's flows and B's");
    assert_eq!(
        drops(&s, "nat_block_exhausted"),
        2,
        "A's flows past two blocks"
    );
    // In order: A's first 128 flows, then B's (A's last two were dropped).
    let ports_of = |h: Ipv4Addr| -> Vec<u16> {
        let range = if h == a { 0..128 } else { 128..129 };
        out[range].iter().map(|o| testpkt::endpoints(o).1).collect()
    };
    let log = std::fs::read_to_string(lab.path("blocks.log")).expect("blocks.log written");
    let (starts, recs) = log_records(&log);
    assert_eq!(starts, 1, "{log}");
    let allocs: Vec<_> = recs.iter().filter(|r| r.0 == "alloc").collect();
    let frees: Vec<_> = recs.iter().filter(|r| r.0 == "free").collect();
    assert_eq!((allocs.len(), frees.len()), (3, 3), "{log}");
    // Each of A's ports lies in one of A's two logged blocks; B's in B's.
    for (h, n) in [(a, 2), (b, 1)] {
        let mine: Vec<_> = allocs.iter().filter(|r| r.1 == h.to_string()).collect();
        assert_eq!(mine.len(), n, "{h}: {log}");
        for r in &mine {
            assert_eq!(r.2, "198.51.100.10");
            assert_eq!(r.4 - r.3, 63, "64 ports");
        }
        for p in ports_of(h) {
            assert!(
                mine.iter().any(|r| (r.3..=r.4).contains(&p)),
                "{h} port {p} in no block of its: {log}"
            );
        }
        // Every block taken was given back, after it was taken.
        for r in &mine {
            let f = frees
                .iter()
                .find(|x| x.1 == r.1 && x.3 == r.3)
                .expect("freed");
            assert!(f.5 >= r.5, "freed after taken");
        }
    }
    assert_eq!(nat_counter(&s, "blocks_allocated"), 3);
    assert_eq!(nat_counter(&s, "blocks_freed"), 3);
    assert_eq!(nat_counter(&s, "block_log_lost"), 0);

    // A second run on the same log: `nat.who` replays the file, the first run included.
    write_frames(&lab.path("inside.pcap"), &[]);
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let mut child = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--summary",
        "json",
        "--duration",
        "300",
    ]);
    wait_for_socket(&sock, &mut child);
    let a_first = allocs.iter().find(|r| r.1 == a.to_string()).unwrap();
    let port = a_first.3 + 10;
    let who = |at: &str| {
        ctl_call_ok(
            &sock,
            "nat.who",
            &format!(r#"{{"outside": "198.51.100.10:{port}", "at": "{at}"}}"#),
        )
    };
    let w = who(&a_first.5);
    assert_eq!(
        (w["by"].as_str(), w["inside"].as_str()),
        (Some("block-log"), Some("10.0.0.21")),
        "{w}"
    );
    assert_eq!(w["block"]["ports"]["first"], a_first.3, "{w}");
    let before = humantime::parse_rfc3339(&a_first.5).unwrap() - Duration::from_secs(1);
    let w = who(&humantime::format_rfc3339_micros(before).to_string());
    assert_eq!(w["inside"], Value::Null, "before the block was taken: {w}");
    let w = ctl_call_ok(
        &sock,
        "nat.who",
        &format!(r#"{{"outside": "198.51.100.10:{port}"}}"#),
    );
    assert_eq!(
        w["inside"],
        Value::Null,
        "now: freed, and this run started: {w}"
    );
    let s2 = stop(child);
    assert_eq!(nat_counter(&s2, "blocks_allocated"), 0);
    let (starts, _) = log_records(&std::fs::read_to_string(lab.path("blocks.log")).unwrap());
    assert_eq!(starts, 2, "each start is a record");
}

#[test]
fn bad_port_block_settings_are_refused_with_their_position() {
    let lab = Lab::new("nat-blocks-bad");
    write_frames(&lab.path("inside.pcap"), &[]);
    write_frames(&lab.path("outside.pcap"), &[]);
    let good = std::fs::read_to_string(block_config(&lab, "")).unwrap();
    for (from, to, want) in [
        (
            "port_block = 64",
            "port_block = 20000",
            "nat.port_block 20000",
        ),
        (
            "blocks_per_host = 2",
            "blocks_per_host = 9",
            "nat.blocks_per_host 9",
        ),
        (
            "block_log = \"blocks.log\"",
            "block_log = \"/nonexistent/dir/b.log\"",
            "existing directory",
        ),
        ("port_block = 64\n", "", "needs port_block"),
    ] {
        let text = good.replace(from, to);
        assert_ne!(text, good);
        let cfg = lab.write("bad.toml", &text);
        let out = lab.run(&["--config", cfg.to_str().unwrap(), "--check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{to}: {err}");
        assert!(err.contains("bad.toml:"), "{err}");
    }
}
