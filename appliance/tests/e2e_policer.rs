//! The rate-limit stage end to end with the real `pollfwd` binary on net_pcap ports:
//! - a policer of R bits/s on an `infinite_rx` source lets through R x T plus the burst;
//! - DSCP remarking shows in the output pcap with a valid IPv4 header checksum;
//! - colour-aware metering honours the pre-colour (RFC 2597 AF drop precedence);
//! - per-source meters, with the table bound and its `policer_table_full` drops;
//! - IPv6: per-source meters per /64 next to IPv4 sources, remark in the traffic class;
//! - configuration errors name file:line:col.

mod common;

use common::*;
use lab::traffic::{self, GenSpec, Proto, Sizes};
use pollfwd_nf::parse::{ipv4_header_checksum, ipv4_header_checksum_ok};
use serde_json::Value;

/// 60-byte captured frames (64 on the wire): UDP, 16 flows (sources 198.18.0.1..16).
fn small(count: usize) -> GenSpec {
    GenSpec {
        count,
        flows: 16,
        sizes: Sizes::Fixed(64),
        proto: Proto::Udp,
        ..Default::default()
    }
}

/// A lab whose p0 replays `in.pcap` (forever with `infinite`), p1 is the output: a pcap file,
/// or with `infinite` a sink that counts and drops. Chain: policer -> xconnect.
fn lab_config(lab: &Lab, infinite: bool, policer: &str) -> std::path::PathBuf {
    traffic::write_pcap(
        &GenSpec {
            count: 0,
            ..Default::default()
        },
        &lab.path("empty.pcap"),
    )
    .unwrap();
    let (p0, p1) = if infinite {
        (
            "net_pcap0,rx_pcap=in.pcap,infinite_rx=1",
            "net_pcap1,rx_pcap=empty.pcap",
        )
    } else {
        (
            "net_pcap0,rx_pcap=in.pcap,tx_pcap=p0-out.pcap",
            "net_pcap1,rx_pcap=empty.pcap,tx_pcap=p1-out.pcap",
        )
    };
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 8191

[[port]]
name = "p0"
device = "{p0}"

[[port]]
name = "p1"
device = "{p1}"

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = ["policer", "xconnect"]

[xconnect]
pairs = [["p0", "p1"]]

[control]
socket = "{sock}"

{policer}
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

/// The summary's counters of policer `name` (totals over workers).
fn pol<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["nf"]["policer"]["policers"]
        .as_array()
        .unwrap_or_else(|| panic!("no policer counters in {s}"))
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no policer {name} in {s}"))
}

/// Runs an `infinite_rx` source through one policer for `secs` and checks that what leaves p1
/// is `rate_bytes` x T + `burst`, T the run time, within 3 %.
fn rate_run(name: &str, policer: &str, rate_bytes: f64, burst: f64, secs: &str) {
    let lab = Lab::new(name);
    traffic::write_pcap(&small(1024), &lab.path("in.pcap")).unwrap();
    let cfg = lab_config(&lab, true, policer);
    let s = lab.run_json(&cfg, &["--duration", secs]);
    let t = s["duration_s"].as_f64().unwrap();
    let tx = port(&s, "p1")["tx_bytes"].as_u64().unwrap() as f64;
    let rx = port(&s, "p0")["rx_bytes"].as_u64().unwrap() as f64;
    let want = rate_bytes * t + burst;
    let err = (tx - want) / want;
    eprintln!(
        "{name}: {t:.3} s, offered {:.1} Mbit/s, passed {tx} B = {:.3} Mbit/s, expected {want:.0} B ({:+.2} %)",
        rx * 8.0 / t / 1e6,
        tx * 8.0 / t / 1e6,
        err * 100.0
    );
    // The source offers far more than the rate (else the test proves nothing).
    assert!(
        rx > 5.0 * want,
        "offered {rx} B, not an overload of {want} B"
    );
    assert!(
        err.abs() < 0.03,
        "passed {tx} B, expected {want:.0} B ({:+.2} %)",
        err * 100.0
    );
    // Whatever did not pass was dropped as red, and nothing else was dropped.
    let rxp = port(&s, "p0")["rx_packets"].as_u64().unwrap();
    let txp = port(&s, "p1")["tx_packets"].as_u64().unwrap();
    assert_eq!(drops(&s, "policer_red"), rxp - txp, "{s}");
    assert_eq!(s["totals"]["drops"], rxp - txp);
    // The policer counted every packet: passed (green, yellow) + red = received.
    let name = s["nf"]["policer"]["policers"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let p = pol(&s, &name);
    let n = |c: &str, k: &str| p[c][k].as_u64().unwrap();
    assert_eq!(n("green", "packets") + n("yellow", "packets"), txp);
    assert_eq!(n("green", "bytes") + n("yellow", "bytes"), tx as u64);
    assert_eq!(n("red", "packets"), rxp - txp);
}

#[test]
fn srtcm_of_r_bits_per_second_passes_r_times_t_plus_cbs() {
    // 40 Mbit/s = 5 MB/s for about 3 s, with a 1 MB committed burst (7 % of the total).
    rate_run(
        "pol-rate-sr",
        r#"
[policer]
[[policer.policers]]
name = "cap"
kind = "srtcm"
units = "bits"
cir = 40_000_000
cbs = 1_000_000
ebs = 0
"#,
        5e6,
        1e6,
        "3",
    );
}

#[test]
fn trtcm_passing_green_and_yellow_follows_pir_plus_pbs() {
    // Green and yellow pass, red is dropped: the peak rate and burst bound what leaves.
    rate_run(
        "pol-rate-tr",
        r#"
[policer]
[[policer.policers]]
name = "peak"
kind = "trtcm"
units = "bytes"
cir = 1_000_000
pir = 3_000_000
cbs = 100_000
pbs = 600_000
"#,
        3e6,
        6e5,
        "3",
    );
}

/// Exact colours on a finite pcap: at 8 bit/s (1 byte/s) no token arrives while 1000 frames
/// go by in a few milliseconds, so the buckets alone decide: CBS = 10 frames green, EBS = 20
/// frames yellow (remarked AF12), the other 970 red (dropped).
#[test]
fn dscp_remark_is_in_the_output_pcap_with_a_valid_checksum() {
    let lab = Lab::new("pol-remark");
    let input = small(1000);
    traffic::write_pcap(&input, &lab.path("in.pcap")).unwrap();
    let cfg = lab_config(
        &lab,
        false,
        r#"
[policer]
[[policer.policers]]
name = "tiny"
kind = "srtcm"
cir = 8
cbs = 600
ebs = 1200
green = "transmit"
yellow = "remark:AF12"
red = "drop"
"#,
    );
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let frames: Vec<Vec<u8>> = traffic::generate(&input).collect();
    let out = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(out.len(), 30, "{s}");
    assert_eq!(drops(&s, "policer_red"), 970);
    assert_eq!(s["totals"]["drops"], 970);
    // Green frames: untouched.
    for i in 0..10 {
        assert_eq!(out[i], frames[i], "green frame {i}");
    }
    // Yellow frames: DSCP 12 (AF12), ECN kept, header checksum valid and equal to a full
    // recomputation, every other byte unchanged.
    for i in 10..30 {
        let (a, b) = (&frames[i], &out[i]);
        assert_eq!(a.len(), b.len());
        assert_eq!(b[15] >> 2, 12, "frame {i} DSCP");
        assert_eq!(b[15] & 3, a[15] & 3, "frame {i} ECN");
        assert!(ipv4_header_checksum_ok(&b[14..34]), "frame {i} checksum");
        assert_eq!(
            u16::from_be_bytes([b[24], b[25]]),
            ipv4_header_checksum(&b[14..34])
        );
        let differ: Vec<usize> = (0..a.len()).filter(|&k| a[k] != b[k]).collect();
        assert!(
            differ.iter().all(|k| [15, 24, 25].contains(k)),
            "frame {i}: bytes {differ:?} changed"
        );
    }
    assert_eq!(port(&s, "p1")["tx_packets"], 30);
    assert_eq!(port(&s, "p1")["tx_bytes"], 30 * 60);
    // The policer's own counters, per colour.
    let p = pol(&s, "tiny");
    assert_eq!(p["green"], serde_json::json!({"packets": 10, "bytes": 600}));
    assert_eq!(
        p["yellow"],
        serde_json::json!({"packets": 20, "bytes": 1200})
    );
    assert_eq!(
        p["red"],
        serde_json::json!({"packets": 970, "bytes": 970 * 60})
    );
    assert_eq!(p["remarked"], 20);
}

/// Colour-aware srTCM (RFC 2697 §3): frames alternate AF11 (pre-coloured green) and AF12
/// (yellow, RFC 2597). Yellow input only ever takes excess tokens, so the green output (marked
/// EF here) comes only from AF11 frames.
#[test]
fn colour_aware_policer_honours_the_precolour() {
    let lab = Lab::new("pol-aware");
    let input = small(400);
    let mut frames: Vec<Vec<u8>> = traffic::generate(&input).collect();
    for (i, f) in frames.iter_mut().enumerate() {
        let dscp = if i % 2 == 0 { 10u8 } else { 12 };
        f[15] = dscp << 2;
        f[24..26].copy_from_slice(&[0, 0]);
        let c = ipv4_header_checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }
    write_frames(&lab.path("in.pcap"), &frames);
    let cfg = lab_config(
        &lab,
        false,
        r#"
[policer]
[[policer.policers]]
name = "aware"
kind = "srtcm"
cir = 8
cbs = 600
ebs = 1200
color_mode = "aware"
green = "remark:EF"
yellow = "transmit"
red = "drop"
"#,
    );
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let out = read_pcap(&lab.path("p1-out.pcap"));
    // C (10 frames) goes to the first 10 AF11 frames (0, 2, .., 18); E (20 frames) to the
    // AF12 frames 1, 3, .., 19 and then to every frame 20..29 (C is empty).
    assert_eq!(out.len(), 30, "{s}");
    assert_eq!(drops(&s, "policer_red"), 370);
    for (i, f) in out.iter().enumerate() {
        let green = i < 20 && i % 2 == 0;
        let want = if green { 46 } else { frames[i][15] >> 2 };
        assert_eq!(f[15] >> 2, want, "frame {i}");
        assert!(ipv4_header_checksum_ok(&f[14..34]), "frame {i}");
        assert_eq!(&f[16..24], &frames[i][16..24]);
    }
}

/// Per-source meters: 16 sources, a table of 8. The first 8 sources get a meter each (5
/// frames of committed burst); packets of the other 8 are dropped as `policer_table_full`.
#[test]
fn per_source_meters_are_bounded_and_a_full_table_is_counted() {
    let lab = Lab::new("pol-persrc");
    let input = small(1600);
    traffic::write_pcap(&input, &lab.path("in.pcap")).unwrap();
    let cfg = lab_config(
        &lab,
        false,
        r#"
[policer]
[[policer.policers]]
name = "each"
kind = "srtcm"
cir = 8
cbs = 300
bind = { per_source = true, max_sources = 8, idle_s = 30 }
"#,
    );
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let out = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(out.len(), 40, "{s}");
    assert_eq!(drops(&s, "policer_table_full"), 800);
    assert_eq!(drops(&s, "policer_red"), 760);
    // What passed: the first 5 frames of each of the sources 198.18.0.1 ..= .8.
    let frames: Vec<Vec<u8>> = traffic::generate(&input).collect();
    let want: Vec<&Vec<u8>> = frames
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 16 < 8 && i / 16 < 5)
        .map(|(_, f)| f)
        .collect();
    assert!(out.iter().eq(want.into_iter()), "passed frames differ");
    let p = pol(&s, "each");
    assert_eq!(p["green"]["packets"], 40);
    assert_eq!(p["red"]["packets"], 760);
    assert_eq!(p["sources"]["active"], 8);
    assert_eq!(p["sources"]["created"], 8);
    assert_eq!(p["sources"]["table_full"], 800);
    assert_eq!(p["sources"]["max_per_worker"], 8);
}

/// `pollfwd --config FILE --check`: validation only, EAL never starts (no busy lock needed).
fn check(cfg: &std::path::Path) -> std::process::Output {
    std::process::Command::new(bin("pollfwd"))
        .args(["--config", cfg.to_str().unwrap(), "--check"])
        .output()
        .unwrap()
}

#[test]
fn policer_config_errors_name_their_position() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "kind = \"srtcm\"\ncir = 1000\ncbs = 100\npir = 2000\n",
            "`pir` is not a parameter of srtcm",
            "pir = 2000",
        ),
        (
            "kind = \"trtcm\"\ncir = 2000\npir = 1000\ncbs = 100\npbs = 100\n",
            "PIR 1000 must be at least CIR 2000 (RFC 2698",
            "pir = 1000",
        ),
        (
            "kind = \"srtcm\"\ncir = 1000\ncbs = 0\nebs = 0\n",
            "RFC 2697",
            "cbs = 0",
        ),
        (
            "kind = \"srtcm\"\ncir = 7\ncbs = 100\n",
            "below 1 byte/s",
            "cir = 7",
        ),
        (
            "kind = \"srtcm\"\ncir = 1000\ncbs = 100\nyellow = \"remark:AF99\"\n",
            "is not a DSCP",
            "yellow = ",
        ),
        (
            "kind = \"srtcm\"\ncir = 1000\ncbs = 100\nbind = { class = \"gold\" }\n",
            "unknown class 'gold'",
            "bind = { class",
        ),
        (
            "kind = \"wfq\"\ncir = 1000\ncbs = 100\n",
            "is not srtcm (RFC 2697) or trtcm",
            "kind = ",
        ),
        (
            "kind = \"srtcm\"\ncir = 1000\ncbs = 100\nbind = { per_source = true, ipv6_prefix = 129 }\n",
            "ipv6_prefix: /129 must be 1..=128",
            "bind = { per_source",
        ),
    ];
    for (body, msg, at) in cases {
        let lab = Lab::new("pol-badcfg");
        let policer = format!("[policer]\n[[policer.policers]]\nname = \"x\"\n{body}");
        let cfg = lab_config(&lab, false, &policer);
        let text = std::fs::read_to_string(&cfg).unwrap();
        let out = check(&cfg);
        assert_eq!(out.status.code(), Some(2), "{body}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{body}: {err}");
        // The position is the line of the offending key; the column is where its value or
        // key starts on that line.
        let off = text.find(at).unwrap();
        let line = text[..off].matches('\n').count() + 1;
        let prefix = format!("{}:{line}:", cfg.display());
        assert!(err.contains(&prefix), "{body}: want {prefix} in {err}");
    }
    // The stage without a section.
    let lab = Lab::new("pol-nosec");
    let cfg = lab_config(&lab, false, "");
    let out = check(&cfg);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("stage 'policer' needs a [policer] section"),
        "{err}"
    );
}

/// Class binding: the classify stage labels source 198.18.0.1 `gold`; the gold policer meters
/// that class only, every other packet (class 0) goes to the default policer.
#[test]
fn class_bound_and_default_policers_split_the_traffic_by_class() {
    let lab = Lab::new("pol-class");
    let input = small(1600);
    traffic::write_pcap(&input, &lab.path("in.pcap")).unwrap();
    let cfg = lab_config(
        &lab,
        false,
        r#"
[classify]
default = "permit"
classes = ["gold"]
rules = [{ src = "198.18.0.1/32", class = "gold" }]

[policer]
[[policer.policers]]
name = "gold"
kind = "srtcm"
cir = 8
cbs = 300
bind = { class = "gold" }

[[policer.policers]]
name = "rest"
kind = "trtcm"
units = "bytes"
cir = 1
pir = 1
cbs = 60_000
pbs = 60_000
"#,
    );
    let t = std::fs::read_to_string(&cfg).unwrap().replace(
        r#"stages = ["policer", "xconnect"]"#,
        r#"stages = ["classify", "policer", "xconnect"]"#,
    );
    std::fs::write(&cfg, t).unwrap();
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    // Gold (100 frames of source .1): 5 pass. The rest (1500): the first 1000 pass.
    let gold = pol(&s, "gold");
    assert_eq!(gold["green"]["packets"], 5, "{s}");
    assert_eq!(gold["red"]["packets"], 95);
    let rest = pol(&s, "rest");
    assert_eq!(rest["green"]["packets"], 1000);
    assert_eq!(rest["red"]["packets"], 500);
    assert_eq!(drops(&s, "policer_red"), 595);
    let out = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(out.len(), 1005);
    let from_gold = out.iter().filter(|f| f[26..30] == [198, 18, 0, 1]).count();
    assert_eq!(from_gold, 5);
}

// ---------------------------------------------------------------------------------------------
// Live changes through the control socket.

/// (time, counters of policer `name`), the time taken half-way through the request.
fn counters(c: &mut Control, name: &str) -> (std::time::Instant, Value) {
    let t0 = std::time::Instant::now();
    let d = c.call("policer.counters", serde_json::json!({"name": name}));
    let t1 = std::time::Instant::now();
    (t0 + (t1 - t0) / 2, d["policers"][0].clone())
}

/// Bytes per second of colour `colour` of policer `name` over `secs`, read live.
fn rate(c: &mut Control, name: &str, colour: &str, secs: f64) -> f64 {
    let (t0, a) = counters(c, name);
    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    let (t1, b) = counters(c, name);
    let d = b[colour]["bytes"].as_u64().unwrap() - a[colour]["bytes"].as_u64().unwrap();
    d as f64 / (t1 - t0).as_secs_f64()
}

/// Tolerance of a rate read live over the control socket in a window of about a second: a
/// worker descheduled for a while, or a sample taken late, on a loaded machine moves such a
/// window by tens of milliseconds. (The exact R*T + burst figure is checked on whole runs by
/// the summary-based tests above; here the point is that a change takes effect: 40 -> 8.)
const LIVE_TOL: f64 = 0.12;

fn near(got: f64, want: f64, tol: f64, what: &str) {
    let e = (got - want) / want;
    eprintln!(
        "{what}: {got:.0} B/s, expected {want:.0} ({:+.2} %)",
        e * 100.0
    );
    assert!(
        e.abs() < tol,
        "{what}: {got:.0} B/s, expected {want:.0} ({:+.2} %)",
        e * 100.0
    );
}

#[test]
fn policer_set_changes_rates_live_and_a_refused_change_keeps_the_old_one() {
    let lab = Lab::new("pol-live");
    traffic::write_pcap(&small(1024), &lab.path("in.pcap")).unwrap();
    let cfg = lab_config(
        &lab,
        true,
        r#"
[policer]
[[policer.policers]]
name = "cap"
kind = "srtcm"
cir = 40_000_000
cbs = 200_000
"#,
    );
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 30, &sock);
    wait_for_ports(&sock, "rx_packets", 1);
    let mut c = Control::connect(&sock);
    std::thread::sleep(std::time::Duration::from_millis(300));
    near(
        rate(&mut c, "cap", "green", 1.0),
        5e6,
        LIVE_TOL,
        "40 Mbit/s",
    );

    // 8 Mbit/s, through pollfwdctl's policer subcommand.
    let out = std::process::Command::new(bin("pollfwdctl"))
        .arg("--socket")
        .arg(&sock)
        .args(["--json", "policer", "set", "name=cap", "cir=8000000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policer"]["cir"], 8_000_000);
    assert_eq!(v["workers"], 1);
    // The committed bucket may still hold up to CBS: let it drain before measuring.
    std::thread::sleep(std::time::Duration::from_millis(300));
    near(rate(&mut c, "cap", "green", 1.0), 1e6, LIVE_TOL, "8 Mbit/s");

    // Refused changes: nothing changes.
    for (args, msg) in [
        (r#"{"name": "cap", "pir": 9000000}"#, "trtcm parameters"),
        (r#"{"name": "cap", "cir": 7}"#, "below 1 byte/s"),
        (r#"{"name": "cap", "cbs": 0}"#, "RFC 2697"),
        (r#"{"name": "nope", "cir": 1000}"#, "no policer 'nope'"),
        (
            r#"{"name": "cap", "bind": {"per_source": true}}"#,
            "cannot change live",
        ),
        (r#"{"name": "cap", "red": "remark:AF99"}"#, "not a DSCP"),
    ] {
        let (rc, out) = ctl_call(&sock, "policer.set", args).unwrap_err();
        assert_eq!(rc, 1, "{args}: {out}");
        assert!(out.contains(msg), "{args}: {out}");
    }
    let l = c.call("policer.list", serde_json::json!({}));
    assert_eq!(l["policers"][0]["cir"], 8_000_000, "{l}");
    assert_eq!(l["policers"][0]["kind"], "srtcm");
    near(
        rate(&mut c, "cap", "green", 0.7),
        1e6,
        LIVE_TOL,
        "still 8 Mbit/s",
    );

    // Switch algorithm live: trTCM 8/16 Mbit/s, yellow remarked.
    let d = c.call(
        "policer.set",
        serde_json::json!({"name": "cap", "kind": "trtcm", "cir": 8_000_000, "pir": 16_000_000,
                           "cbs": 100_000, "pbs": 100_000, "yellow": "remark:AF12"}),
    );
    assert_eq!(d["policer"]["kind"], "trtcm");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (t0, a) = counters(&mut c, "cap");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (t1, b) = counters(&mut c, "cap");
    let secs = (t1 - t0).as_secs_f64();
    let d = |col: &str| {
        (b[col]["bytes"].as_u64().unwrap() - a[col]["bytes"].as_u64().unwrap()) as f64 / secs
    };
    near(d("green"), 1e6, LIVE_TOL, "trtcm green = CIR");
    near(d("yellow"), 1e6, LIVE_TOL, "trtcm yellow = PIR - CIR");
    let remarked = b["remarked"].as_u64().unwrap() - a["remarked"].as_u64().unwrap();
    let yellow =
        b["yellow"]["packets"].as_u64().unwrap() - a["yellow"]["packets"].as_u64().unwrap();
    assert_eq!(remarked, yellow, "every yellow packet is remarked");

    // Clear: every worker zeroes its counters.
    let (_, before) = counters(&mut c, "cap");
    assert_eq!(c.call("policer.clear", serde_json::json!({}))["workers"], 1);
    let (_, after) = counters(&mut c, "cap");
    assert!(
        after["red"]["packets"].as_u64().unwrap() < before["red"]["packets"].as_u64().unwrap() / 2,
        "{before} -> {after}"
    );
    drop(c);
    signal(&child, "TERM");
    let out = wait_with_deadline(child, 30);
    assert_eq!(out.status.code(), Some(0));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(drops(&s, "policer_red") > 0);
    assert_eq!(pol(&s, "cap")["name"], "cap");
}

/// `pollfwdctl reload` changes the classify and policer sections under traffic: a deny rule
/// added by the file stops the traffic (counted as `acl_deny`), and a file that removes it and
/// lowers the policer's rate lets through the new rate.
#[test]
fn reload_changes_acl_rules_and_policer_rates_under_traffic() {
    let lab = Lab::new("pol-reload");
    traffic::write_pcap(&small(1024), &lab.path("in.pcap")).unwrap();
    let section = |cir: u64, rules: &str| {
        format!(
            r#"
[classify]
default = "permit"
rules = [{rules}]

[policer]
[[policer.policers]]
name = "cap"
kind = "srtcm"
cir = {cir}
cbs = 100_000
"#
        )
    };
    let cfg = lab_config(&lab, true, &section(40_000_000, ""));
    let with_classify = |text: String| {
        text.replace(
            r#"stages = ["policer", "xconnect"]"#,
            r#"stages = ["classify", "policer", "xconnect"]"#,
        )
    };
    let base = with_classify(std::fs::read_to_string(&cfg).unwrap());
    std::fs::write(&cfg, &base).unwrap();
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);
    wait_for_ports(&sock, "rx_packets", 1);
    let mut c = Control::connect(&sock);
    std::thread::sleep(std::time::Duration::from_millis(300));
    near(
        rate(&mut c, "cap", "green", 1.0),
        5e6,
        LIVE_TOL,
        "40 Mbit/s",
    );

    // A deny rule for the traffic's destination.
    let deny = r#"{ proto = "udp", dst = "198.19.0.1", action = "deny" }"#;
    let text = base.replace(&section(40_000_000, ""), &section(40_000_000, deny));
    assert_ne!(text, base);
    std::fs::write(&cfg, &text).unwrap();
    let r = c.call("reload", serde_json::json!({}));
    assert_eq!(
        r["applied"],
        serde_json::json!(["classify: 1 rule(s) on 1 worker(s)"]),
        "{r}"
    );
    let tx = |c: &mut Control| {
        let s = c.call("stats", serde_json::json!({}));
        let deny = s["totals"]["drops_by_reason"]["acl_deny"]
            .as_u64()
            .unwrap_or(0);
        (port(&s, "p1")["tx_packets"].as_u64().unwrap(), deny)
    };
    let (tx0, deny0) = tx(&mut c);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (tx1, deny1) = tx(&mut c);
    assert_eq!(tx1, tx0, "nothing passes the deny rule");
    assert!(deny1 > deny0, "the traffic is denied: {deny0} -> {deny1}");

    // The rule goes, the rate drops to 8 Mbit/s: one reload, both sections.
    let text = base.replace(&section(40_000_000, ""), &section(8_000_000, ""));
    std::fs::write(&cfg, &text).unwrap();
    let r = c.call("reload", serde_json::json!({}));
    assert_eq!(
        r["applied"],
        serde_json::json!([
            "classify: 0 rule(s) on 1 worker(s)",
            "policer: 1 policer(s) on 1 worker(s)"
        ]),
        "{r}"
    );
    assert_eq!(
        c.call("policer.list", serde_json::json!({}))["policers"][0]["cir"],
        8_000_000
    );
    // The committed bucket may hold up to CBS: let it drain before measuring.
    std::thread::sleep(std::time::Duration::from_millis(300));
    near(
        rate(&mut c, "cap", "green", 1.0),
        1e6,
        LIVE_TOL,
        "8 Mbit/s after reload",
    );
    let (tx2, deny2) = tx(&mut c);
    assert!(tx2 > tx1, "traffic passes again");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(tx(&mut c).1, deny2, "no more ACL drops");
    drop(c);
    signal(&child, "TERM");
    let out = wait_with_deadline(child, 30);
    assert_eq!(out.status.code(), Some(0));
}

/// IPv6 through `policer -> xconnect`: a per-source policer meters IPv6 sources per /64 (two
/// hosts of one /64 share a meter, another /64 has its own) next to an IPv4 source, remarks
/// yellow IPv6 packets in the traffic class (flow label and the rest untouched) and drops red
/// ones; what leaves p1 is exactly the model's output, byte for byte.
#[test]
fn ipv6_per_source_by_prefix_and_remark_end_to_end() {
    use pollfwd_nf::nat::testpkt;
    let lab = Lab::new("pol-v6");
    let ip6 = |s: &str| -> u128 { s.parse::<std::net::Ipv6Addr>().unwrap().into() };
    let dst6 = (ip6("2001:db8:ffff::1"), 9);
    // 100-byte frames: (frame, meter key).
    let a1 = testpkt::udp6((ip6("2001:db8:1:1::1"), 1000), dst6, &[0; 38]);
    let a2 = testpkt::udp6((ip6("2001:db8:1:1:ffff::2"), 1000), dst6, &[0; 38]);
    let b = testpkt::udp6((ip6("2001:db8:1:2::1"), 1000), dst6, &[0; 38]);
    let c = testpkt::udp(
        ("198.18.0.1".parse().unwrap(), 1000),
        ("192.0.2.1".parse().unwrap(), 9),
        &[0; 58],
    );
    let mut input = Vec::new();
    for _ in 0..10 {
        input.extend([
            (a1.clone(), 0),
            (a2.clone(), 0),
            (b.clone(), 1),
            (c.clone(), 2),
        ]);
    }
    assert!(input.iter().all(|(f, _)| f.len() == 100));
    write_frames(
        &lab.path("in.pcap"),
        &input.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>(),
    );
    let cfg = lab_config(
        &lab,
        false,
        r#"
[policer]
[[policer.policers]]
name = "each"
kind = "srtcm"
cir = 8
cbs = 300
ebs = 200
yellow = "remark:AF12"
bind = { per_source = true, max_sources = 8, idle_s = 30 }
"#,
    );
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    // The model: per meter, 3 frames green (CBS 300), 2 yellow (EBS 200) remarked AF12, then
    // red and dropped.
    let mut seen = [0; 3];
    let mut want = Vec::new();
    for (f, k) in &input {
        let n = seen[*k];
        seen[*k] += 1;
        let mut f = f.clone();
        match n {
            0..3 => {}
            3..5 if *k < 2 => {
                // Traffic class AF12 << 2, ECN 0: its nibbles in bytes 14 and 15.
                let tc = 12u8 << 2;
                f[14] = 0x60 | tc >> 4;
                f[15] = (tc << 4) | (f[15] & 0x0f);
            }
            3..5 => {
                f[15] = 12 << 2;
                f[24..26].fill(0);
                let sum = ipv4_header_checksum(&f[14..34]);
                f[24..26].copy_from_slice(&sum.to_be_bytes());
            }
            _ => continue,
        }
        want.push(f);
    }
    let out = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(out.len(), 15, "{s}");
    assert!(out == want, "p1 output differs from the model");
    assert!(ipv4_header_checksum_ok(&out[3][14..34]));
    let p = pol(&s, "each");
    assert_eq!(p["green"]["packets"], 9, "{p}");
    assert_eq!(p["yellow"]["packets"], 6, "{p}");
    assert_eq!(p["red"]["packets"], 25, "{p}");
    assert_eq!(p["remarked"], 6, "{p}");
    assert_eq!(
        p["sources"]["active"], 3,
        "two /64s and one IPv4 source: {p}"
    );
    assert_eq!(p["sources"]["created"], 3, "{p}");
    assert_eq!(drops(&s, "policer_red"), 25);
}

/// `pollfwdctl policer sources` while traffic flows: IPv4 sources as addresses, IPv6 sources
/// as their /64 prefixes (three hosts in two /64s are two sources).
#[test]
fn policer_sources_lists_ipv4_addresses_and_ipv6_prefixes() {
    use pollfwd_nf::nat::testpkt;
    let lab = Lab::new("pol-srclist");
    let ip6 = |s: &str| -> u128 { s.parse::<std::net::Ipv6Addr>().unwrap().into() };
    let dst6 = (ip6("2001:db8:ffff::1"), 9);
    let frames = vec![
        testpkt::udp6((ip6("2001:db8:1:1::1"), 1000), dst6, b"x"),
        testpkt::udp6((ip6("2001:db8:1:1::2"), 1000), dst6, b"x"),
        testpkt::udp6((ip6("2001:db8:1:2::1"), 1000), dst6, b"x"),
        testpkt::udp(
            ("198.18.0.1".parse().unwrap(), 1000),
            ("192.0.2.1".parse().unwrap(), 9),
            b"x",
        ),
    ];
    write_frames(&lab.path("in.pcap"), &frames);
    let cfg = lab_config(
        &lab,
        true,
        r#"
[policer]
[[policer.policers]]
name = "each"
kind = "srtcm"
cir = 8_000_000
cbs = 10_000
bind = { per_source = true, max_sources = 64, idle_s = 30 }
"#,
    );
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 30, &sock);
    wait_for_ports(&sock, "rx_packets", 1);
    let out = std::process::Command::new(bin("pollfwdctl"))
        .arg("--socket")
        .arg(&sock)
        .args(["--json", "policer", "sources", "name=each"])
        .output()
        .unwrap();
    let (rc, err) = ctl_call(&sock, "policer.sources", r#"{"name": "nope"}"#).unwrap_err();
    let _ = stop(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rc, 1);
    assert!(err.contains("no policer 'nope'"), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ipv6_prefix"], 64, "{v}");
    let mut got: Vec<(String, String)> = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(s["idle_s"].as_f64().unwrap() < 5.0, "{s}");
            (
                s["family"].as_str().unwrap().to_string(),
                s["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let want = [
        ("ipv4", "198.18.0.1"),
        ("ipv6", "2001:db8:1:1::/64"),
        ("ipv6", "2001:db8:1:2::/64"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b)| (a.to_string(), b.to_string())),
        "{v}"
    );
}
