//! Pipeline mode end to end: the stages of a chain split over two worker lcores joined by an
//! SP/SC rte_ring forward a pcap exactly like run-to-completion on one lcore does — same
//! frames, same order, same counters — and the per-packet metadata travels with the mbuf.
//!
//! Two busy-polling workers: main lcore 0 and worker 1 share CPU 0 (the main lcore only
//! sleeps and polls the control socket), worker 2 is on CPU 1. The busy lock is held.

mod common;

use common::*;
use lab::traffic::{self, GenSpec, Proto, Sizes};
use serde_json::Value;

/// A two-port net_pcap lab: p0 reads in.pcap, p1 an empty pcap; outputs p0-out / p1-out.
/// `lcores` is the [[lcore]] text, `extra` appended verbatim.
fn config(lab: &Lab, lcores: &str, extra: &str, ring: u32) -> std::path::PathBuf {
    write_empty_pcap(lab);
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"
main_lcore = 0
main_cpu = 0
# Two busy workers on a two-CPU machine: lcore 1 shares the main lcore's CPU.
share_main_cpu = true

# The ring between the lcores holds a whole input file: net_pcap reads the file much faster
# than it writes one, and the writing lcore starts a little after the reading one, so a
# smaller ring would overflow (a counted `ring_full` drop, see the congestion test below).
[mempool]
mbufs = 32767

[runtime]
ring_size = RING_SIZE

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=in.pcap,tx_pcap=p0-out.pcap"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=empty.pcap,tx_pcap=p1-out.pcap"

{lcores}

[xconnect]
pairs = [["p0", "p1"]]

[control]
socket = "{sock}"
{extra}
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    )
    .replace("RING_SIZE", &ring.to_string());
    lab.write("pollfwd.toml", &text)
}

const RTC: &str = r#"
[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = STAGES_ALL
"#;

const PIPELINE: &str = r#"
[[lcore]]
id = 1
cpu = 0
rx = [{ port = "p0" }, { port = "p1" }]
stages = STAGES_FIRST
pipeline_to = 2
# Lcore 1 never transmits (its chain ends in the ring); net_pcap has one TX queue per port.
tx_ports = []

[[lcore]]
id = 2
cpu = 1
stages = STAGES_SECOND
"#;

fn spec(count: usize) -> GenSpec {
    GenSpec {
        count,
        flows: 64,
        sizes: Sizes::List(vec![64, 128, 256, 512, 1024, 1280, 1518]),
        proto: Proto::Mix,
        ..Default::default()
    }
}

/// What one run left: its summary, the frames out of p1 and out of p0.
type RunOut = (Value, Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Runs the same input through run-to-completion (`all` stages on lcore 1) and pipeline mode
/// (`first` on lcore 1, `second` on lcore 2); returns both summaries and output pcaps.
fn both(
    name: &str,
    input: &GenSpec,
    all: &str,
    first: &str,
    second: &str,
    extra: &str,
) -> [RunOut; 2] {
    let run = |mode: &str, lcores: String| {
        let lab = Lab::new(&format!("{name}-{mode}"));
        traffic::write_pcap(input, &lab.path("in.pcap")).unwrap();
        let cfg = config(&lab, &lcores, extra, 32768);
        let s = lab.run_json(&cfg, &["--exit-idle", "2000"]);
        let out1 = read_pcap(&lab.path("p1-out.pcap"));
        let out0 = read_pcap(&lab.path("p0-out.pcap"));
        (s, out1, out0)
    };
    let rtc = run("rtc", RTC.replace("STAGES_ALL", all));
    let pipe = run(
        "pipe",
        PIPELINE
            .replace("STAGES_FIRST", first)
            .replace("STAGES_SECOND", second),
    );
    [rtc, pipe]
}

fn lcore(s: &Value, id: u64) -> &Value {
    s["lcores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["lcore"] == id)
        .unwrap_or_else(|| panic!("no lcore {id} in {s}"))
}

#[test]
fn pipeline_on_two_lcores_forwards_a_pcap_exactly_like_run_to_completion() {
    let n = 20_000;
    let input = spec(n);
    let [(rtc, rtc_out, rtc_back), (pipe, pipe_out, pipe_back)] = both(
        "pipe-ms",
        &input,
        r#"["macswap", "xconnect"]"#,
        r#"["macswap"]"#,
        r#"["xconnect"]"#,
        "",
    );
    let frames: Vec<Vec<u8>> = traffic::generate(&input).collect();
    // Run-to-completion is the reference: every frame, MACs swapped, in order.
    assert_eq!(rtc_out.len(), n);
    for (i, (a, b)) in frames.iter().zip(&rtc_out).enumerate() {
        assert_eq!(&b[0..6], &a[6..12], "frame {i}");
        assert_eq!(&b[12..], &a[12..], "frame {i}");
    }
    // Pipeline mode: byte for byte the same output, nothing back out of p0.
    assert_eq!(pipe_out.len(), rtc_out.len(), "frames out of p1");
    assert!(
        pipe_out == rtc_out,
        "pipeline output differs from run-to-completion"
    );
    assert!(rtc_back.is_empty() && pipe_back.is_empty());
    // Same port counters.
    for p in ["p0", "p1"] {
        for k in ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"] {
            assert_eq!(port(&pipe, p)[k], port(&rtc, p)[k], "{p} {k}");
        }
    }
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    assert_eq!(port(&pipe, "p1")["tx_bytes"], bytes);
    assert_eq!(rtc["totals"]["drops"], 0);
    assert_eq!(pipe["totals"]["drops"], 0);
    // Every packet crossed the ring: received on lcore 1, sent by lcore 2.
    let (l1, l2) = (lcore(&pipe, 1), lcore(&pipe, 2));
    assert_eq!(l1["stages"], serde_json::json!(["macswap"]));
    assert_eq!(l2["stages"], serde_json::json!(["xconnect"]));
    assert_eq!(l1["rx_packets"], n as u64);
    assert_eq!(l1["ring_out"], n as u64);
    assert_eq!(l2["ring_in"], n as u64);
    assert_eq!(l2["tx_packets"], n as u64);
    assert_eq!(l1["tx_packets"], 0);
    assert_eq!(l2["rx_packets"], 0);
}

/// The policer on the second lcore meters per source: it parses the packet and reads the
/// metadata lcore 1 initialised at receive time (class 0, nothing parsed yet). Same output as
/// run-to-completion, frame for frame, with exact colour counts.
#[test]
fn pipeline_with_the_policer_on_the_second_lcore_matches_run_to_completion() {
    let input = GenSpec {
        count: 1600,
        flows: 16,
        sizes: Sizes::Fixed(64),
        proto: Proto::Udp,
        ..Default::default()
    };
    // Per source: 5 frames of 60 bytes fit the committed burst, the next 5 the excess one
    // (remarked AF12); the rest of each source's 100 frames are red (dropped). At 8 bit/s no
    // token arrives during the run.
    let policer = r#"
[policer]
[[policer.policers]]
name = "per-src"
kind = "srtcm"
cir = 8
cbs = 300
ebs = 300
yellow = "remark:AF12"
bind = { per_source = true, max_sources = 64, idle_s = 60 }
"#;
    let [(rtc, rtc_out, _), (pipe, pipe_out, _)] = both(
        "pipe-pol",
        &input,
        r#"["macswap", "policer", "xconnect"]"#,
        r#"["macswap"]"#,
        r#"["policer", "xconnect"]"#,
        policer,
    );
    assert_eq!(rtc_out.len(), 16 * 10);
    assert!(
        pipe_out == rtc_out,
        "pipeline output differs from run-to-completion"
    );
    for s in [&rtc, &pipe] {
        assert_eq!(
            s["totals"]["drops_by_reason"]["policer_red"],
            16 * 90,
            "{s}"
        );
        assert_eq!(s["totals"]["drops"], 16 * 90);
        assert_eq!(port(s, "p1")["tx_packets"], 160);
    }
    // Yellow frames carry AF12 (DSCP 12) with a valid header checksum.
    let remarked = pipe_out.iter().filter(|f| f[15] >> 2 == 12).count();
    assert_eq!(remarked, 80);
    for f in &pipe_out {
        assert!(pollfwd_nf::parse::ipv4_header_checksum_ok(&f[14..34]));
    }
    assert_eq!(lcore(&pipe, 2)["ring_in"], 1600);
}

/// A ring too small for what the first lcore sends is congestion: the overflow is dropped and
/// counted as `ring_full` (the first lcore never waits for room), and everything else arrives
/// in order.
/// macswap on lcore 1 -> a ring of 63 -> xconnect on lcore 2, on the `n` frames of
/// `spec(n)`: starts pollfwd (stopped by the caller; the duration is only a backstop) and reads
/// `stats` while it runs, each reading checked by `check`, until every frame is through the
/// ring or was dropped at it. Returns the lab, the daemon, the last reading and the busy lock.
fn through_a_small_ring(
    name: &str,
    n: u64,
    check: impl Fn(&Value),
) -> (Lab, std::process::Child, Value, BusyGuard) {
    let lab = Lab::new(name);
    traffic::write_pcap(&spec(n as usize), &lab.path("in.pcap")).unwrap();
    let lcores = PIPELINE
        .replace("STAGES_FIRST", r#"["macswap"]"#)
        .replace("STAGES_SECOND", r#"["xconnect"]"#);
    let cfg = config(&lab, &lcores, "", 64);
    let sock = lab.path("ctl.sock");
    let guard = busy_lock();
    let child = lab.start(&cfg, 60, &sock);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let live = loop {
        let st = ctl_json(&sock, &["stats"]);
        check(&st);
        let through = lcore(&st, 2)["ring_in"].as_u64().unwrap();
        if st["rings"][0]["drops"].as_u64().unwrap() + through == n {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "frames still missing: {st}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (lab, child, live, guard)
}

#[test]
fn a_full_pipeline_ring_is_a_counted_drop_not_a_stall() {
    let n = 20_000u64;
    let input = spec(n as usize);
    // `stats` while it runs: the ring's occupancy and congestion drops, until every frame is
    // through the ring or dropped at it.
    let (lab, child, live, _g) = through_a_small_ring("pipe-full", n, |st| {
        let rings = st["rings"].as_array().expect("rings in stats");
        assert_eq!(rings.len(), 1, "{st}");
        let r = &rings[0];
        assert_eq!(r["name"], "pf_ring_1_2", "{r}");
        // ring_size 64: rte_ring keeps one slot free.
        assert_eq!(r["capacity"], 63, "{r}");
        assert!(r["count"].as_u64().unwrap() <= 63, "{r}");
    });
    let ring = live["rings"][0].clone();
    assert_eq!(ring["count"], 0, "the ring drained: {ring}");
    let s = stop(child);
    let out = read_pcap(&lab.path("p1-out.pcap"));
    let full = s["totals"]["drops_by_reason"]["ring_full"]
        .as_u64()
        .unwrap_or(0);
    eprintln!(
        "ring of 63: {} of {n} frames through, {full} ring_full",
        out.len()
    );
    assert!(full > 0, "a 63-packet ring did not overflow: {s}");
    assert_eq!(port(&s, "p0")["rx_packets"], n);
    assert_eq!(
        out.len() as u64 + full,
        n,
        "every frame is forwarded or counted"
    );
    assert_eq!(s["totals"]["drops"], full);
    // The ring's own drop count is the producer's ring_full count.
    assert_eq!(ring["drops"], full, "{live}");
    assert_eq!(lcore(&live, 1)["drops_by_reason"]["ring_full"], full);
    assert_eq!(lcore(&s, 1)["ring_out"], n - full);
    assert_eq!(lcore(&s, 2)["ring_in"], n - full);
    // What passed is in input order (an ordered subsequence of the swapped input).
    let mut frames = traffic::generate(&input).map(|mut f| {
        pollfwd_nf::macswap::swap_macs(&mut f);
        f
    });
    for (i, o) in out.iter().enumerate() {
        assert!(
            frames.any(|f| &f == o),
            "output frame {i} out of order or unknown"
        );
    }
}

#[test]
fn packets_left_in_the_ring_when_pollfwd_stops_are_counted() {
    // Lcore 1 receives an endless pcap and hands every frame to lcore 2 through a ring of
    // 1024; lcore 2 writes each one to a pcap file (/dev/null). Lcore 2 is made to stall
    // (POLLFWD_FAULT, debug builds; the watchdog off) from 0.5 s to 3.5 s after it started,
    // so the ring is full when pollfwd is told to stop during the stall, whatever the
    // scheduler does with lcore 1 (which shares its CPU with the main thread). Those packets
    // are freed and counted as `shutdown` drops of lcore 2: rx = tx + drops holds exactly.
    let lab = Lab::new("pipe-stop");
    traffic::write_pcap(&spec(256), &lab.path("in.pcap")).unwrap();
    write_empty_pcap(&lab);
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"
main_lcore = 0
main_cpu = 0
share_main_cpu = true

[runtime]
ring_size = 1024
watchdog = false

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=in.pcap,infinite_rx=1"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=empty.pcap,tx_pcap=/dev/null"

[[lcore]]
id = 1
cpu = 0
rx = [{{ port = "p0" }}]
stages = ["macswap"]
pipeline_to = 2
tx_ports = []

[[lcore]]
id = 2
cpu = 1
rx = [{{ port = "p1" }}]
stages = ["xconnect"]

[xconnect]
pairs = [["p0", "p1"]]

[control]
socket = "{sock}"
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    let cfg = lab.write("pollfwd.toml", &text);
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let mut child = std::process::Command::new(bin("pollfwd"))
        .args(["--config", cfg.to_str().unwrap(), "--summary", "json"])
        .args(["--duration", "60"])
        .env("POLLFWD_FAULT", "stall@2:500:3000")
        .current_dir(&lab.dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pollfwd");
    // The socket answers once the workers run: 1.5 s later lcore 2 is in its stall.
    wait_for_socket(&sock, &mut child);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let s = stop(child);
    let t = &s["totals"];
    let (rx, tx, drops) = (
        t["rx_packets"].as_u64().unwrap(),
        t["tx_packets"].as_u64().unwrap(),
        t["drops"].as_u64().unwrap(),
    );
    let left = lcore(&s, 2)["drops_by_reason"]["shutdown"]
        .as_u64()
        .unwrap_or(0);
    eprintln!("rx {rx} tx {tx} drops {drops} (shutdown {left})");
    assert!(left > 0, "nothing was left in the ring at the stop: {s}");
    assert!(left <= 1023, "more than the ring holds: {s}");
    assert_eq!(
        rx,
        tx + drops,
        "every packet received is sent or counted: {s}"
    );
}

#[test]
fn clear_zeroes_the_rings_congestion_counts() {
    // A 63-packet ring overflows (as in the test above); `clear` zeroes the ring's `drops`
    // with the lcores' counters (the producing worker resets it).
    let (lab, child, live, _g) = through_a_small_ring("pipe-clear", 20_000, |_| {});
    let sock = lab.path("ctl.sock");
    let drops = live["rings"][0]["drops"].as_u64().unwrap();
    assert!(drops > 0, "a 63-packet ring did not overflow");
    ctl_json(&sock, &["clear"]);
    let st = ctl_json(&sock, &["stats"]);
    assert_eq!(st["rings"][0]["drops"], 0, "{st}");
    assert_eq!(
        lcore(&st, 1)["drops_by_reason"]["ring_full"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{st}"
    );
    stop(child);
}
