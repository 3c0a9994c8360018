//! NAT44 end to end with the real `pollfwd` binary on net_pcap ports: p0 is the inside port,
//! p1 the outside port, chain `["nat", "xconnect"]` (what enters p0 leaves p1 and back).
//!
//! Ordering of requests and replies: the worker polls p0 then p1, one burst (32) each per
//! round, and net_pcap always returns full bursts from a file. Putting 64 filler frames
//! (outside traffic to an address NAT does not own: passed through untouched) before the
//! replies on p1 makes every reply reach NAT at least two rounds after its request.
//!
//! Predicting the outside endpoints: port choice is random but seeded (`nat.seed`), so a
//! first run with the inside traffic alone shows the allocation, and a second run with the
//! same inside traffic allocates identically; its outside traffic is built from the first.
//!
//! Time: tests that need time to pass between packets (expiry) or lcores to be ordered (two
//! workers) feed a port from a FIFO the test writes at chosen moments (net_pcap reads the
//! capture as a stream; the worker polling it blocks in the read until data arrives).

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use lab::pcap::PcapWriter;
use pollfwd_nf::nat::testpkt::{self, Ep, verify};
use serde_json::{Value, json};

const X1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const X2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
const R1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const R2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const S: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const XS: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
/// Outside destination NAT does not own: filler traffic passes untouched.
const OTHER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);

fn host(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1, i)
}

fn fillers(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| testpkt::udp((R2, 9), (OTHER, 1000 + i as u16), b"filler"))
        .collect()
}

fn is_filler(f: &[u8]) -> bool {
    testpkt::endpoints(f).2 == OTHER
}

/// The NAT lab config: p0 inside, p1 outside, one worker polling both.
fn nat_config(lab: &Lab, inside: &str, outside: &str, nat_extra: &str) -> PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 4095

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap={inside},tx_pcap=p0-out.pcap"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap={outside},tx_pcap=p1-out.pcap"

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
pool = ["198.51.100.10", "198.51.100.11"]
seed = 42
static = [{{ outside = "203.0.113.5:443", inside = "10.0.0.5:8443", proto = "tcp" }}]
{nat_extra}
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

struct RunOut {
    s: Value,
    p0: Vec<Vec<u8>>,
    p1: Vec<Vec<u8>>,
}

/// One run: inside frames on p0, outside frames on p1.
fn run(lab: &Lab, inside: &[Vec<u8>], outside: &[Vec<u8>], nat_extra: &str) -> RunOut {
    write_frames(&lab.path("inside.pcap"), inside);
    write_frames(&lab.path("outside.pcap"), outside);
    let cfg = nat_config(lab, "inside.pcap", "outside.pcap", nat_extra);
    let s = lab.run_json(&cfg, &["--exit-idle", "300"]);
    RunOut {
        s,
        p0: read_pcap(&lab.path("p0-out.pcap")),
        p1: read_pcap(&lab.path("p1-out.pcap")),
    }
}

fn src(f: &[u8]) -> Ep {
    let (a, p, _, _) = testpkt::endpoints(f);
    (a, p)
}

#[test]
fn nat_outbound_to_pool_one_address_per_host_and_replies_back() {
    let lab = Lab::new("nat-basic");
    // 8 hosts, each: 3 UDP flows, a TCP SYN, an ICMP echo.
    let mut inside = Vec::new();
    for h in 1..=8u8 {
        for p in 0..3u16 {
            inside.push(testpkt::udp((host(h), 5000 + p), (R1, 53), b"request"));
        }
        inside.push(testpkt::tcp((host(h), 40000), (R2, 80), 0x02, 1, b""));
        inside.push(testpkt::icmp_echo(host(h), R1, 0x100 + h as u16, 1, false));
    }
    let first = run(&lab, &inside, &[], "");
    assert_eq!(
        first.p1.len(),
        inside.len(),
        "every request translated out of p1"
    );
    assert_eq!(drops(&first.s, "nat_no_session"), 0);
    let mut by_host: std::collections::BTreeMap<Ipv4Addr, std::collections::BTreeSet<Ipv4Addr>> =
        Default::default();
    for (i, o) in first.p1.iter().enumerate() {
        verify(o).unwrap_or_else(|e| panic!("frame {i}: {e}"));
        let (h, _, _, _) = testpkt::endpoints(&inside[i]);
        let (x, _, d, _) = testpkt::endpoints(o);
        assert_eq!(d, testpkt::endpoints(&inside[i]).2, "destination unchanged");
        assert!(
            x == X1 || x == X2,
            "frame {i} source {x} is not a pool address"
        );
        by_host.entry(h).or_default().insert(x);
    }
    for (h, xs) in &by_host {
        assert_eq!(
            xs.len(),
            1,
            "host {h} used {xs:?} (paired pooling, RFC 4787 REQ-2)"
        );
    }
    let used: std::collections::BTreeSet<_> = by_host.values().flatten().collect();
    assert_eq!(used.len(), 2, "hosts spread over the pool");

    // Second run: same inside traffic (same allocation), replies on p1 after 64 fillers.
    let mut outside = fillers(64);
    let mut expect = Vec::new();
    for (i, o) in first.p1.iter().enumerate() {
        let (x, xp, d, dp) = testpkt::endpoints(o);
        let (h, hp, _, _) = testpkt::endpoints(&inside[i]);
        match i % 5 {
            4 => {
                outside.push(testpkt::icmp_echo(d, x, xp, 1, true));
                expect.push(testpkt::icmp_echo(d, h, hp, 1, true));
            }
            3 => {
                outside.push(testpkt::tcp((d, dp), (x, xp), 0x12, 7, b""));
                expect.push(testpkt::tcp((d, dp), (h, hp), 0x12, 7, b""));
            }
            _ => {
                outside.push(testpkt::udp((d, dp), (x, xp), b"answer"));
                expect.push(testpkt::udp((d, dp), (h, hp), b"answer"));
            }
        }
    }
    let second = run(&lab, &inside, &outside, "");
    assert_eq!(
        second.p1, first.p1,
        "identical allocation in the second run"
    );
    let replies: Vec<_> = second
        .p0
        .iter()
        .filter(|f| !is_filler(f))
        .cloned()
        .collect();
    assert_eq!(
        replies.len(),
        expect.len(),
        "every reply came back through p0"
    );
    assert!(
        replies == expect,
        "replies translated back to the inside hosts, byte for byte"
    );
    assert_eq!(second.p0.iter().filter(|f| is_filler(f)).count(), 64);
    assert_eq!(second.s["totals"]["drops"], 0, "{}", second.s);
    let n = inside.len() as u64;
    assert_eq!(port(&second.s, "p1")["tx_packets"], n);
    assert_eq!(port(&second.s, "p0")["tx_packets"], n + 64);
}

/// RFC 1812 5.2.2: a packet whose IPv4 header checksum is wrong (here: a TTL flipped on the
/// wire) is dropped as `ipv4_bad_checksum` by NAT itself, inside and outside, before any
/// session is made: NAT is the first parser of its chain and no later stage checks again.
#[test]
fn nat_drops_corrupted_ipv4_headers_with_their_reason() {
    let lab = Lab::new("nat-badsum");
    let corrupt = |mut f: Vec<u8>| {
        f[22] ^= 0x10;
        f
    };
    // And an IPv6 datagram, which NAT44 passes through untouched (counted apart).
    let v6 = testpkt::udp6(
        (0x2001_0db8_0001 << 80 | 1, 5000),
        (0x2001_0db8_0002 << 80 | 1, 53),
        b"six",
    );
    let inside = vec![
        testpkt::udp((host(1), 5000), (R1, 53), b"good"),
        corrupt(testpkt::udp((host(2), 5000), (R1, 53), b"bad")),
        corrupt(testpkt::tcp((host(3), 40000), (R2, 80), 0x02, 1, b"")),
        v6.clone(),
    ];
    let mut outside = fillers(64);
    outside.push(corrupt(testpkt::udp((R1, 53), (X1, 1024), b"bad")));
    let r = run(&lab, &inside, &outside, "");
    let is_v6 = |f: &&Vec<u8>| f[12..14] == [0x86, 0xdd];
    let v6_out: Vec<_> = r.p1.iter().filter(is_v6).collect();
    assert_eq!(v6_out, [&v6], "IPv6 leaves p1 byte for byte");
    let nat = &r.s["nf"]["nat"]["workers"][0]["counters"];
    assert_eq!(nat["ipv6_passthrough"], 1, "{nat}");
    let out: Vec<_> = r.p1.iter().filter(|f| !is_v6(f) && !is_filler(f)).collect();
    assert_eq!(out.len(), 1, "only the good request leaves p1");
    verify(out[0]).unwrap();
    assert_eq!(
        testpkt::endpoints(&inside[0]).2,
        testpkt::endpoints(out[0]).2
    );
    assert_eq!(drops(&r.s, "ipv4_bad_checksum"), 3, "{}", r.s);
    assert_eq!(r.s["nf"]["nat"]["sessions"], 1, "{}", r.s["nf"]["nat"]);
}

#[test]
fn nat_unsolicited_inbound_dropped_per_filtering_mode() {
    let lab = Lab::new("nat-filter");
    let inside = vec![testpkt::udp((host(1), 5000), (R1, 53), b"q")];
    let first = run(&lab, &inside, &[], "");
    let x = src(&first.p1[0]);
    let mut outside = fillers(64);
    outside.push(testpkt::udp((R1, 53), x, b"same remote"));
    outside.push(testpkt::udp((R1, 9999), x, b"same address, other port"));
    outside.push(testpkt::udp((R2, 53), x, b"other address"));
    outside.push(testpkt::udp(
        (R1, 53),
        (x.0, x.1 ^ 1),
        b"no mapping at that port",
    ));
    for (mode, delivered, filtered) in [
        ("endpoint-independent", 3, 0),
        ("address-dependent", 2, 1),
        ("address-and-port-dependent", 1, 2),
    ] {
        let r = run(&lab, &inside, &outside, &format!("filtering = \"{mode}\""));
        let got: Vec<_> = r.p0.iter().filter(|f| !is_filler(f)).collect();
        assert_eq!(got.len(), delivered, "{mode}: delivered");
        for f in &got {
            verify(f).unwrap();
            assert_eq!(testpkt::endpoints(f).2, host(1), "{mode}");
        }
        assert_eq!(drops(&r.s, "nat_filtered"), filtered, "{mode}: {}", r.s);
        assert_eq!(drops(&r.s, "nat_no_session"), 1, "{mode}");
    }
}

#[test]
fn nat_icmp_error_reaches_inside_host_with_inner_header_translated() {
    let lab = Lab::new("nat-icmperr");
    let orig = testpkt::udp((host(3), 5353), (R1, 53), b"query");
    let tcp = testpkt::tcp((host(4), 40001), (R2, 25), 0x02, 9, b"");
    let inside = vec![orig.clone(), tcp.clone()];
    let first = run(&lab, &inside, &[], "");
    let (sent, sent_tcp) = (&first.p1[0], &first.p1[1]);
    let mut outside = fillers(64);
    // Port unreachable from the server, time exceeded from a router (TCP, 20 bytes).
    outside.push(testpkt::icmp_error(R1, src(sent).0, 3, 3, sent, 8));
    let rtr = Ipv4Addr::new(192, 0, 2, 254);
    outside.push(testpkt::icmp_error(
        rtr,
        src(sent_tcp).0,
        11,
        0,
        sent_tcp,
        20,
    ));
    let r = run(&lab, &inside, &outside, "");
    let got: Vec<_> = r.p0.iter().filter(|f| !is_filler(f)).cloned().collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], testpkt::icmp_error(R1, host(3), 3, 3, &orig, 8));
    assert_eq!(got[1], testpkt::icmp_error(rtr, host(4), 11, 0, &tcp, 20));
    for f in &got {
        verify(f).unwrap();
    }
}

#[test]
fn nat_hairpin_through_port_forward_and_static_dnat() {
    let lab = Lab::new("nat-hairpin");
    let a = host(9);
    let syn = testpkt::tcp((a, 41000), (XS, 443), 0x02, 1, b"");
    // Outside client to the port forward, too.
    let ext = testpkt::tcp((R1, 6000), (XS, 443), 0x02, 1, b"");
    let first = run(&lab, std::slice::from_ref(&syn), &[], "");
    // Hairpinned: source = A's outside endpoint (RFC 4787 REQ-9 b), destination = S:8443.
    assert_eq!(first.p1.len(), 1);
    let (xa, xap, d, dp) = testpkt::endpoints(&first.p1[0]);
    assert!(xa == X1 || xa == X2);
    assert_eq!((d, dp), (S, 8443));
    assert_eq!(
        first.p1[0],
        testpkt::tcp((xa, xap), (S, 8443), 0x02, 1, b"")
    );
    // S answers A's outside endpoint from the inside; an outside client reaches S too.
    let synack = testpkt::tcp((S, 8443), (xa, xap), 0x12, 5, b"");
    let mut outside = fillers(64);
    outside.push(ext);
    let r = run(&lab, &[syn, synack], &outside, "");
    assert_eq!(
        r.p1.len(),
        2,
        "both hairpinned packets left (xconnect: p0 -> p1)"
    );
    assert_eq!(r.p1[1], testpkt::tcp((XS, 443), (a, 41000), 0x12, 5, b""));
    let got: Vec<_> = r.p0.iter().filter(|f| !is_filler(f)).cloned().collect();
    assert_eq!(got, vec![testpkt::tcp((R1, 6000), (S, 8443), 0x02, 1, b"")]);
    assert_eq!(r.s["totals"]["drops"], 0);
}

/// A FIFO the test writes a pcap stream into.
struct Fifo {
    path: PathBuf,
}

impl Fifo {
    fn new(lab: &Lab, name: &str) -> Fifo {
        let path = lab.path(name);
        let st = Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(st.success());
        Fifo { path }
    }

    /// Opens for writing (blocks until pollfwd opens it) and writes the pcap header.
    fn open(&self) -> PcapWriter<std::fs::File> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .unwrap();
        PcapWriter::new(f, 65535).unwrap()
    }
}

/// Writes whole bursts into the FIFO (a `File` is unbuffered: each record reaches the reader
/// as it is written).
fn send_phase(w: &mut PcapWriter<std::fs::File>, frames: &[Vec<u8>]) {
    assert_eq!(
        frames.len() % 32,
        0,
        "whole bursts: net_pcap returns a burst once it is full"
    );
    for f in frames {
        w.write_packet(0, f).unwrap();
    }
}

#[test]
fn nat_expiry_frees_sessions_and_ports() {
    let lab = Lab::new("nat-expiry");
    let fifo = Fifo::new(&lab, "inside.fifo");
    write_frames(&lab.path("outside.pcap"), &[]);
    // One pool address with two ports; UDP sessions idle out after 0.4 s.
    let cfg = nat_config(
        &lab,
        "inside.fifo",
        "outside.pcap",
        "port_range = [40000, 40001]\n[nat.timeouts]\nudp = 0.4\n[runtime]\nwatchdog = false",
    );
    let cfg_text = std::fs::read_to_string(&cfg).unwrap().replace(
        "pool = [\"198.51.100.10\", \"198.51.100.11\"]",
        "pool = [\"198.51.100.10\"]",
    );
    std::fs::write(&cfg, cfg_text).unwrap();
    let _g = busy_lock();
    let child = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--summary",
        "json",
        "--exit-idle",
        "4000",
    ]);
    let mut w = fifo.open();
    let h = host(1);
    // Phase 1: flows :1 and :2 take both ports; flow :3 finds none.
    let mut p1 = Vec::new();
    for i in 0..32 {
        p1.push(match i {
            30 | 31 => testpkt::udp((h, 3), (R1, 53), b"three"),
            _ if i % 2 == 0 => testpkt::udp((h, 1), (R1, 53), b"one"),
            _ => testpkt::udp((h, 2), (R1, 53), b"two"),
        });
    }
    send_phase(&mut w, &p1);
    // The idle time counts from when the data plane saw phase 1, however slow start-up was.
    wait_for_ports(&lab.path("ctl.sock"), "rx_packets", 32);
    std::thread::sleep(Duration::from_millis(1200));
    // Phase 2: the first two sessions have expired: their ports serve flows :3 and :4.
    let p2: Vec<_> = (0..32)
        .map(|i| testpkt::udp((h, 3 + (i % 2) as u16), (R1, 53), b"later"))
        .collect();
    send_phase(&mut w, &p2);
    drop(w);
    // Then everything expires; ask the daemon while it still runs.
    wait_for_ports(&lab.path("ctl.sock"), "rx_packets", 64);
    std::thread::sleep(Duration::from_millis(1500));
    let sum = ctl_call_ok(&lab.path("ctl.sock"), "nat.summary", "{}");
    let out = wait_with_deadline(child, 20);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(drops(&s, "nat_ports_exhausted"), 2, "{s}");
    let p1_out = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(p1_out.len(), 30 + 32);
    let ports: std::collections::BTreeSet<u16> = p1_out.iter().map(|f| src(f).1).collect();
    assert_eq!(ports, [40000, 40001].into_iter().collect());
    for f in &p1_out[30..] {
        assert_eq!(src(f).0, X1);
        verify(f).unwrap();
    }
    let w0 = &sum["workers"][0];
    assert_eq!(sum["sessions"], 0, "{sum}");
    assert_eq!(w0["counters"]["sessions_created"], 4, "{sum}");
    assert_eq!(w0["counters"]["sessions_expired"], 4, "{sum}");
    assert_eq!(sum["ports_in_use"][0]["udp"], 0, "{sum}");
    assert_eq!(sum["drops"]["nat_ports_exhausted"], 2, "{sum}");
}

/// Config of the two-worker lab: lcore 1 polls the inside port, lcore 2 the outside port;
/// both transmit on both (two TX queues per port, one capture file each).
fn two_worker_config(lab: &Lab, outside: &str) -> PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"
# Two busy workers on a two-CPU machine: lcore 1 shares the main lcore's CPU.
share_main_cpu = true

[mempool]
mbufs = 4095

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=inside.pcap,tx_pcap=p0-out-a.pcap,tx_pcap=p0-out-b.pcap"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap={outside},tx_pcap=p1-out-a.pcap,tx_pcap=p1-out-b.pcap"

[[lcore]]
id = 1
cpu = 0
rx = [{{ port = "p0" }}]
stages = ["nat", "xconnect"]

[[lcore]]
id = 2
cpu = 1
rx = [{{ port = "p1" }}]
stages = ["nat", "xconnect"]

[xconnect]
pairs = [["p0", "p1"]]

[runtime]
# A worker polling a FIFO waits in read by design: no stall reports.
watchdog = false

[control]
socket = "{sock}"

[nat]
inside = ["p0"]
outside = ["p1"]
pool = ["198.51.100.10", "198.51.100.11"]
seed = 42
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

fn both(lab: &Lab, a: &str, b: &str) -> Vec<Vec<u8>> {
    read_pcap(&lab.path(a))
        .into_iter()
        .chain(read_pcap(&lab.path(b)))
        .collect()
}

#[test]
fn nat_two_workers_inside_and_outside_lcores_every_reply_translated() {
    let lab = Lab::new("nat-2w");
    let n = 96usize;
    let hosts: Vec<Ep> = (0..n)
        .map(|i| (Ipv4Addr::new(10, 0, 2, 1 + i as u8), 7000 + i as u16))
        .collect();
    let inside: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| testpkt::udp(*h, (R1, 53), format!("req{i:03}").as_bytes()))
        .collect();
    write_frames(&lab.path("inside.pcap"), &inside);
    // Run 1: learn the allocation (each worker allocates in the order it sees its hosts).
    write_frames(&lab.path("empty.pcap"), &[]);
    let cfg = two_worker_config(&lab, "empty.pcap");
    let s1 = lab.run_json(&cfg, &["--exit-idle", "300"]);
    let out1 = both(&lab, "p1-out-a.pcap", "p1-out-b.pcap");
    assert_eq!(out1.len(), n, "{s1}");
    assert!(
        s1["nf"]["nat"]["workers"][0]["handoff_out"]
            .as_u64()
            .unwrap()
            > 0,
        "some hosts belong to lcore 2: {s1}"
    );
    let mut mapping = vec![None; n];
    for f in &out1 {
        verify(f).unwrap();
        let i: usize = std::str::from_utf8(&f[f.len() - 3..])
            .unwrap()
            .parse()
            .unwrap();
        mapping[i] = Some(src(f));
    }
    // Run 2: the outside port is a FIFO. Lcore 2 blocks reading it, with the requests it
    // owns waiting in its hand-off ring; lcore 1 translates its own meanwhile. Then 96
    // fillers (three bursts: lcore 2 drains its ring, 32 per round, in between) and the 96
    // replies, which lcore 2 translates or hands to lcore 1, the owner.
    let fifo = Fifo::new(&lab, "outside.fifo");
    let cfg = two_worker_config(&lab, "outside.fifo");
    let _g = busy_lock();
    let child = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--summary",
        "json",
        "--exit-idle",
        "3000",
    ]);
    let mut w = fifo.open();
    // Lcore 1 has read all 96 requests (however slow start-up was) before the replies go in.
    wait_for_ports(&lab.path("ctl.sock"), "rx_packets", 96);
    std::thread::sleep(Duration::from_millis(300));
    let mut phase = fillers(96);
    for m in &mapping {
        phase.push(testpkt::udp((R1, 53), m.expect("mapped"), b"rep"));
    }
    send_phase(&mut w, &phase);
    drop(w);
    let outp = wait_with_deadline(child, 30);
    assert!(
        outp.status.success(),
        "{}",
        String::from_utf8_lossy(&outp.stderr)
    );
    let s: Value = serde_json::from_slice(&outp.stdout).unwrap();
    let out2 = both(&lab, "p1-out-a.pcap", "p1-out-b.pcap");
    let mut a = out1.clone();
    let mut b = out2.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "same allocation in both runs");
    let p0: Vec<Vec<u8>> = both(&lab, "p0-out-a.pcap", "p0-out-b.pcap")
        .into_iter()
        .filter(|f| !is_filler(f))
        .collect();
    assert_eq!(p0.len(), n, "every reply translated: {s}");
    let mut got: Vec<Ep> = p0
        .iter()
        .map(|f| {
            verify(f).unwrap();
            let (a, p, d, dp) = testpkt::endpoints(f);
            assert_eq!((a, p), (R1, 53));
            (d, dp)
        })
        .collect();
    got.sort();
    let mut want = hosts.clone();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(s["totals"]["drops"], 0, "{s}");
    // Replies crossed from the outside lcore to the inside one, requests the other way.
    let nat = &s["nf"]["nat"];
    for w in nat["workers"].as_array().unwrap() {
        assert!(w["handoff_out"].as_u64().unwrap() > 0, "{nat}");
    }
    assert_eq!(nat["drops"]["handoff_full"], 0);
    let o2i: u64 = nat["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["counters"]["out2in"].as_u64().unwrap())
        .sum();
    assert_eq!(o2i, n as u64);
}

#[test]
fn nat_operator_commands_over_the_control_socket() {
    let lab = Lab::new("nat-ops");
    let inside: Vec<_> = (1..=4u8)
        .flat_map(|h| {
            [
                testpkt::udp((host(h), 1000), (R1, 53), b""),
                testpkt::udp((host(h), 1001), (R1, 53), b""),
            ]
        })
        .collect();
    write_frames(&lab.path("inside.pcap"), &inside);
    write_frames(&lab.path("outside.pcap"), &[]);
    let cfg = nat_config(&lab, "inside.pcap", "outside.pcap", "");
    let _g = busy_lock();
    // Runs until the test stops it: the calls below must not race a fixed duration.
    let mut child = lab.spawn(&["--config", cfg.to_str().unwrap(), "--duration", "300"]);
    wait_for_socket(&lab.path("ctl.sock"), &mut child);
    wait_for_ports(&lab.path("ctl.sock"), "rx_packets", 8);
    std::thread::sleep(Duration::from_millis(200));
    let sum = ctl_call_ok(&lab.path("ctl.sock"), "nat.summary", "{}");
    assert_eq!(sum["sessions"], 8, "{sum}");
    let inuse: u64 = sum["ports_in_use"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["udp"].as_u64().unwrap())
        .sum();
    assert_eq!(inuse, 8);
    // Sessions and their indexes: 64 + 3 x 8 bytes (the port tables are in table_bytes).
    let bps = sum["bytes_per_session"].as_f64().unwrap();
    assert!((88.0..88.1).contains(&bps), "{sum}");
    assert!(sum["table_bytes"].as_u64().unwrap() > 262_144 * 88, "{sum}");
    // The Prometheus exposition agrees: sessions gauge, created counter, ports in use.
    let m = ctl_call_ok(&lab.path("ctl.sock"), "metrics", "{}");
    let m = m.as_str().unwrap();
    let sample = |name: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(sample("pollfwd_nat_sessions{"), 8.0, "{m}");
    assert_eq!(sample("pollfwd_nat_sessions_created_total{"), 8.0, "{m}");
    assert_eq!(sample("pollfwd_nat_ports_in_use{"), 8.0, "{m}");
    assert_eq!(sample("pollfwd_nat_in2out_total{"), 8.0, "{m}");
    let all = ctl_call_ok(&lab.path("ctl.sock"), "nat.sessions", "{}");
    assert_eq!(all.as_array().unwrap().len(), 8);
    let one = ctl_call_ok(
        &lab.path("ctl.sock"),
        "nat.sessions",
        r#"{"inside": "10.0.1.2"}"#,
    );
    assert_eq!(one.as_array().unwrap().len(), 2, "{one}");
    assert_eq!(one[0]["inside"], "10.0.1.2:1000");
    assert_eq!(one[0]["remote"], "192.0.2.1:53");
    assert_eq!(one[0]["proto"], "udp");
    let lim = ctl_call_ok(&lab.path("ctl.sock"), "nat.sessions", r#"{"limit": 3}"#);
    assert_eq!(lim.as_array().unwrap().len(), 3);
    let l = ctl_call_ok(&lab.path("ctl.sock"), "nat.static.list", "{}");
    assert_eq!(l.as_array().unwrap().len(), 1);
    let add = ctl_call_ok(
        &lab.path("ctl.sock"),
        "nat.static.add",
        r#"{"outside": "203.0.113.7:80", "inside": "10.0.0.7:8080", "proto": "tcp"}"#,
    );
    assert_eq!(add["workers"], 1, "{add}");
    let l = ctl_call_ok(&lab.path("ctl.sock"), "nat.static.list", "{}");
    assert_eq!(l.as_array().unwrap().len(), 2, "{l}");
    assert_eq!(l[1]["inside"], "10.0.0.7:8080");
    // Refused: a pool address port inside the dynamic range.
    let (_, err) = ctl_call(
        &lab.path("ctl.sock"),
        "nat.static.add",
        r#"{"outside": "198.51.100.10:2000", "inside": "10.0.0.8:80", "proto": "udp"}"#,
    )
    .unwrap_err();
    assert!(err.contains("dynamic range"), "{err}");
    let del = ctl_call_ok(
        &lab.path("ctl.sock"),
        "nat.static.del",
        r#"{"outside": "203.0.113.7:80", "proto": "tcp"}"#,
    );
    assert_eq!(del["workers"], 1);
    assert_eq!(
        ctl_call_ok(&lab.path("ctl.sock"), "nat.static.list", "{}")
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Reload: a static mapping added in the file goes live; a pool change is refused.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let more = text.replace(
        "proto = \"tcp\" }]",
        "proto = \"tcp\" }, { outside = \"203.0.113.9\", inside = \"10.0.0.9\" }]",
    );
    assert_ne!(more, text);
    std::fs::write(&cfg, &more).unwrap();
    let r = ctl_call_ok(&lab.path("ctl.sock"), "reload", "{}");
    assert!(
        r.to_string()
            .contains("nat: 2 static mapping(s) on 1 worker(s)"),
        "{r}"
    );
    let l = ctl_call_ok(&lab.path("ctl.sock"), "nat.static.list", "{}");
    assert_eq!(l[1]["outside"], "203.0.113.9", "{l}");
    std::fs::write(&cfg, more.replace("198.51.100.11", "198.51.100.12")).unwrap();
    let (_, err) = ctl_call(&lab.path("ctl.sock"), "reload", "{}").unwrap_err();
    assert!(err.contains("restart"), "{err}");
    assert_eq!(
        ctl_call_ok(&lab.path("ctl.sock"), "nat.static.list", "{}")
            .as_array()
            .unwrap()
            .len(),
        2
    );
    signal(&child, "TERM");
    let out = wait_with_deadline(child, 20);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ARP request from the outside host `R_ARP` (198.51.100.200) for `tpa`.
fn arp_request(tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&testpkt::MAC_B);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&testpkt::MAC_B);
    f.extend_from_slice(&R_ARP.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tpa.octets());
    f.resize(60, 0);
    f
}

/// The outside host of the proxy ARP test, on the outside port's network.
const R_ARP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 200);

/// The address an ARP reply announces (sender protocol address), if `f` is an ARP reply.
fn arp_reply_for(f: &[u8]) -> Option<Ipv4Addr> {
    (f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 2])
        .then(|| Ipv4Addr::new(f[28], f[29], f[30], f[31]))
}

/// `frames` padded to one whole burst (32) with ARP requests nobody answers.
fn burst(mut frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    assert!(frames.len() <= 32);
    while frames.len() < 32 {
        frames.push(arp_request(Ipv4Addr::new(198, 51, 100, 99)));
    }
    frames
}

/// Runs `pollfwdctl call CMD ARGS` while feeding the FIFO whole bursts of unanswered ARP
/// requests: the worker blocks reading the FIFO and drains its mailbox only between bursts,
/// so a change broadcast to it completes once enough bursts went through.
fn ctl_feeding(lab: &Lab, w: &mut PcapWriter<std::fs::File>, cmd: &str, args: &str) -> Value {
    let sock = lab.path("ctl.sock");
    let (cmd, args) = (cmd.to_string(), args.to_string());
    let t = std::thread::spawn(move || ctl_call_ok(&sock, &cmd, &args));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !t.is_finished() {
        assert!(std::time::Instant::now() < deadline, "control call hangs");
        send_phase(w, &burst(Vec::new()));
        std::thread::sleep(Duration::from_millis(5));
    }
    t.join().unwrap()
}

/// Proxy ARP follows NAT's outside addresses while the daemon runs (`["nat", "forward"]`, no
/// `[forward] proxy_arp`): ARP for a pool address is answered from the start; after
/// `nat.static.add` of a 1:1 mapping ARP for its outside address is answered and outside
/// traffic to it is translated to the inside host; after `nat.static.del` neither; a reload
/// that adds a static mapping makes its address answered too.
#[test]
fn nat_proxy_arp_follows_pool_and_live_static_changes() {
    let lab = Lab::new("nat-parp");
    let fifo = Fifo::new(&lab, "outside.fifo");
    write_frames(&lab.path("inside.pcap"), &[]);
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 4095

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=inside.pcap,tx_pcap=p0-out.pcap"
address = "10.0.0.1/24"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=outside.fifo,tx_pcap=p1-out.pcap"
address = "198.51.100.1/24"

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = ["nat", "forward"]

[runtime]
# A worker polling a FIFO waits in read by design: no stall reports.
watchdog = false

[control]
socket = "{sock}"

[forward]
neighbors = [{{ address = "10.0.0.20", mac = "02:00:00:00:00:20", port = "p0" }}]

[nat]
inside = ["p0"]
outside = ["p1"]
pool = ["198.51.100.10", "198.51.100.11"]
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    let cfg = lab.write("pollfwd.toml", &text);
    let pool = Ipv4Addr::new(198, 51, 100, 10);
    let new = Ipv4Addr::new(198, 51, 100, 20);
    let reloaded = Ipv4Addr::new(198, 51, 100, 21);
    let to_new = testpkt::udp((R_ARP, 53), (new, 7000), b"to the 1:1 mapping");
    let _g = busy_lock();
    let mut child = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--summary",
        "json",
        "--exit-idle",
        "1500",
    ]);
    let mut w = fifo.open();
    wait_for_socket(&lab.path("ctl.sock"), &mut child);
    // A: the pool address is answered, the future static address is not.
    send_phase(&mut w, &burst(vec![arp_request(pool), arp_request(new)]));
    let add = ctl_feeding(
        &lab,
        &mut w,
        "nat.static.add",
        r#"{"outside": "198.51.100.20", "inside": "10.0.0.20"}"#,
    );
    assert_eq!(add["proxy_arp_workers"], 1, "{add}");
    let fs = ctl_call_ok(&lab.path("ctl.sock"), "forward.stats", "{}");
    assert!(
        fs["proxy_arp"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["prefix"] == "198.51.100.20/32" && x["port"] == "p1"),
        "{fs}"
    );
    // B: the new outside address is answered, and traffic to it reaches the inside host.
    send_phase(&mut w, &burst(vec![arp_request(new), to_new.clone()]));
    ctl_feeding(
        &lab,
        &mut w,
        "nat.static.del",
        r#"{"outside": "198.51.100.20"}"#,
    );
    // C: after the delete, neither (the pool address still is).
    send_phase(
        &mut w,
        &burst(vec![arp_request(new), to_new.clone(), arp_request(pool)]),
    );
    // D: a reload that adds a static mapping in the file.
    std::fs::write(
        &cfg,
        text.replace(
            "pool = [",
            "static = [{ outside = \"198.51.100.21\", inside = \"10.0.0.21\" }]\npool = [",
        ),
    )
    .unwrap();
    let r = ctl_feeding(&lab, &mut w, "reload", "{}");
    assert!(
        r.to_string().contains("proxy ARP on 1 forward worker(s)"),
        "{r}"
    );
    send_phase(&mut w, &burst(vec![arp_request(reloaded)]));
    drop(w);
    let out = wait_with_deadline(child, 30);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answered: Vec<Ipv4Addr> = read_pcap(&lab.path("p1-out.pcap"))
        .iter()
        .filter_map(|f| arp_reply_for(f))
        .collect();
    assert_eq!(
        answered,
        vec![pool, new, pool, reloaded],
        "ARP replies in order"
    );
    let inside: Vec<Vec<u8>> = read_pcap(&lab.path("p0-out.pcap"))
        .into_iter()
        .filter(|f| f[12..14] == [0x08, 0x00])
        .collect();
    assert_eq!(
        inside.len(),
        1,
        "only the packet sent while mapped reached p0"
    );
    verify(&inside[0]).unwrap();
    assert_eq!(
        testpkt::endpoints(&inside[0]),
        (R_ARP, 53, Ipv4Addr::new(10, 0, 0, 20), 7000)
    );
    assert_eq!(
        &inside[0][0..6],
        &[2, 0, 0, 0, 0, 0x20],
        "to the inside host's MAC"
    );
}

/// A full hand-off ring is a counted `handoff_full` drop (congestion), never a stall: lcore 2
/// blocks reading its FIFO, so the 63-packet hand-off ring towards it (ring_size 64) fills
/// with the requests it owns and lcore 1 drops the rest of them. Every request is accounted
/// for: translated on lcore 1, handed over (translated by lcore 2 once the FIFO ends), or
/// dropped as handoff_full.
#[test]
fn nat_full_handoff_ring_is_a_counted_drop() {
    let lab = Lab::new("nat-hfull");
    let n = 512usize;
    let inside: Vec<_> = (0..n)
        .map(|i| {
            let h = Ipv4Addr::new(10, 0, 3 + (i / 250) as u8, 1 + (i % 250) as u8);
            testpkt::udp((h, 7000), (R1, 53), b"req")
        })
        .collect();
    write_frames(&lab.path("inside.pcap"), &inside);
    let fifo = Fifo::new(&lab, "outside.fifo");
    let cfg = two_worker_config(&lab, "outside.fifo");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("watchdog = false", "watchdog = false\nring_size = 64");
    std::fs::write(&cfg, text).unwrap();
    let _g = busy_lock();
    let child = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--summary",
        "json",
        "--exit-idle",
        "1000",
    ]);
    let w = fifo.open();
    wait_for_ports(&lab.path("ctl.sock"), "rx_packets", n as u64);
    // Lcore 1 has processed its last burst once its drop and hand-off counts stop moving.
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "lcore 1 stalled: {last}"
        );
        let s = ctl_call_ok(&lab.path("ctl.sock"), "nat.summary", "{}");
        let now = json!([
            s["drops"]["handoff_full"],
            s["workers"][0]["handoff_out"],
            s["workers"][0]["counters"]["in2out"]
        ]);
        let total: u64 = now
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        if now == last && total == n as u64 {
            break;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(w);
    let out = wait_with_deadline(child, 30);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nat = &s["nf"]["nat"];
    let full = nat["drops"]["handoff_full"].as_u64().unwrap();
    let handed = nat["workers"][0]["handoff_out"].as_u64().unwrap();
    let own = nat["workers"][0]["counters"]["in2out"].as_u64().unwrap();
    assert!(full > 0, "the ring overflowed: {nat}");
    assert!(handed <= 64, "at most a ring's worth waited: {nat}");
    assert_eq!(own + handed + full, n as u64, "{nat}");
    assert_eq!(
        drops(&s, "handoff_full"),
        full,
        "the runtime's drop table agrees"
    );
    assert_eq!(nat["workers"][1]["handoff_in"], handed, "{nat}");
    assert_eq!(nat["workers"][1]["counters"]["in2out"], handed, "{nat}");
    let out1 = both(&lab, "p1-out-a.pcap", "p1-out-b.pcap");
    assert_eq!(
        out1.len() as u64,
        n as u64 - full,
        "all but the dropped translated"
    );
}

/// More sessions than NAT's burst prefetch passes start at (4,096), behind a stage (classify):
/// the fast path then looks sessions up with the hashes the first pass computed. 6,000 flows
/// sent twice (the second time through established sessions) and replies to all of them: every
/// packet is translated, each flow the same way both times, and every reply reaches its inside
/// host byte for byte.
#[test]
fn nat_large_table_with_a_stage_ahead_translates_every_packet_consistently() {
    const FLOWS: usize = 6000;
    let lab = Lab::new("nat-large");
    let flow = |i: usize| {
        (
            Ipv4Addr::new(10, 0, 2 + (i / 250) as u8, 1 + (i % 250) as u8),
            20000 + (i % 7) as u16,
        )
    };
    let mut inside: Vec<Vec<u8>> = (0..FLOWS)
        .map(|i| testpkt::udp(flow(i), (R1, 53), b"request"))
        .collect();
    inside.extend_from_within(..);
    let config = |outside: &str| {
        let cfg = nat_config(&lab, "inside.pcap", outside, "max_sessions = 8192");
        let text = std::fs::read_to_string(&cfg).unwrap().replace(
            r#"stages = ["nat", "xconnect"]"#,
            "stages = [\"classify\", \"nat\", \"xconnect\"]\n\n[classify]\ndefault = \"permit\"",
        );
        assert!(text.contains("classify"));
        lab.write("pollfwd.toml", &text)
    };
    write_frames(&lab.path("inside.pcap"), &inside);
    write_frames(&lab.path("outside.pcap"), &[]);
    let s = lab.run_json(&config("outside.pcap"), &["--exit-idle", "300"]);
    let first = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(
        first.len(),
        2 * FLOWS,
        "every packet translated out of p1: {s}"
    );
    assert_eq!(s["totals"]["drops"], 0, "{s}");
    for (i, o) in first.iter().enumerate() {
        verify(o).unwrap_or_else(|e| panic!("frame {i}: {e}"));
        let x = testpkt::endpoints(o).0;
        assert!(
            x == X1 || x == X2,
            "frame {i} source {x} is not a pool address"
        );
    }
    assert!(
        first[..FLOWS] == first[FLOWS..],
        "each flow translated the same way through its established session"
    );

    // Again (same seed: same allocation), with a reply to every flow on p1 behind enough
    // fillers that the inside packets all come first.
    let mut outside = fillers(3 * FLOWS);
    let mut expect = Vec::new();
    for (i, o) in first[..FLOWS].iter().enumerate() {
        let (x, xp, d, dp) = testpkt::endpoints(o);
        outside.push(testpkt::udp((d, dp), (x, xp), b"answer"));
        expect.push(testpkt::udp((d, dp), flow(i), b"answer"));
    }
    write_frames(&lab.path("outside2.pcap"), &outside);
    let s = lab.run_json(&config("outside2.pcap"), &["--exit-idle", "300"]);
    assert_eq!(
        read_pcap(&lab.path("p1-out.pcap")),
        first,
        "same allocation"
    );
    let replies: Vec<_> = read_pcap(&lab.path("p0-out.pcap"))
        .into_iter()
        .filter(|f| !is_filler(f))
        .collect();
    assert_eq!(
        replies.len(),
        FLOWS,
        "every reply came back through p0: {s}"
    );
    assert!(replies == expect, "replies translated back byte for byte");
    assert_eq!(s["totals"]["drops"], 0, "{s}");
}
