//! Port counters never go backwards: the real `pollfwd` as a memif server (A) forwarding
//! what a second `pollfwd` (B, the memif client, fed by a pcap replayed forever) sends it. B
//! stops (memif zeroes A's port counters when the connection goes) and starts again: A's
//! `ports` figures, sampled all along, never decrease, count the reset, and keep growing once
//! B is back. Two worker lcores in all (one per pollfwd). (A memif client does not reconnect
//! by itself when its server comes back: DPDK connects a client only when its port starts.)

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use lab::traffic::{self, GenSpec};

fn peer_config(lab: &Lab, memif: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}-b"
share_main_cpu = true

[mempool]
mbufs = 4095

[[port]]
name = "src"
device = "net_pcap0,rx_pcap=in.pcap,infinite_rx=1"

[[port]]
name = "m0"
device = "net_memif0,role=client,id=0,socket={memif},socket-abstract=no"

[[lcore]]
id = 1
cpu = 0
rx = [{{ port = "src" }}, {{ port = "m0" }}]
stages = ["xconnect"]

[xconnect]
pairs = [["src", "m0"]]

[control]
socket = "{sock}"
"#,
        prefix = lab.prefix(),
        memif = memif.display(),
        sock = lab.path("b.sock").display(),
    );
    lab.write("b.toml", &text)
}

fn appliance_config(lab: &Lab, memif: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}-a"
share_main_cpu = true

[mempool]
mbufs = 4095

[[port]]
name = "m0"
device = "net_memif1,role=server,id=0,socket={memif},socket-abstract=no"

[[port]]
name = "sink"
device = "net_pcap1,rx_pcap=empty.pcap"

[[lcore]]
id = 1
cpu = 1
rx = [{{ port = "m0" }}, {{ port = "sink" }}]
stages = ["xconnect"]

[xconnect]
pairs = [["m0", "sink"]]

[control]
socket = "{sock}"
"#,
        prefix = lab.prefix(),
        memif = memif.display(),
        sock = lab.path("a.sock").display(),
    );
    lab.write("a.toml", &text)
}

fn start(lab: &Lab, cfg: &Path, sock: &Path) -> Child {
    let mut c = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--summary",
        "json",
        "--duration",
        "60",
    ]);
    wait_for_socket(sock, &mut c);
    c
}

/// A's m0 `rx_packets` and `pmd_resets` now.
fn m0(sock: &Path) -> (u64, u64) {
    let p = ctl_json(sock, &["ports"]);
    let m = p
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "m0")
        .unwrap()
        .clone();
    (
        m["rx_packets"].as_u64().unwrap(),
        m["pmd_resets"].as_u64().unwrap(),
    )
}

/// Samples A's m0 counters for `d`, asserting they never decrease; returns the last sample.
fn watch(sock: &Path, d: Duration, prev: &mut (u64, u64)) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        let now = m0(sock);
        assert!(now.0 >= prev.0, "rx_packets went back: {prev:?} -> {now:?}");
        *prev = now;
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn port_counters_stay_monotonic_when_a_memif_peer_leaves_and_returns() {
    let lab = Lab::new("totals");
    traffic::write_pcap(
        &GenSpec {
            count: 64,
            ..Default::default()
        },
        &lab.path("in.pcap"),
    )
    .unwrap();
    write_empty_pcap(&lab);
    let memif = lab.path("memif.sock");
    let (bcfg, acfg) = (peer_config(&lab, &memif), appliance_config(&lab, &memif));
    let (bsock, asock) = (lab.path("b.sock"), lab.path("a.sock"));
    let _g = busy_lock();
    // The memif server (A) first, then its client (B).
    let a = start(&lab, &acfg, &asock);
    let b = start(&lab, &bcfg, &bsock);
    let mut seen = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.0 == 0 {
        assert!(Instant::now() < deadline, "no traffic over memif");
        watch(&asock, Duration::from_millis(200), &mut seen);
    }
    watch(&asock, Duration::from_millis(500), &mut seen);
    let before = seen;
    // The peer goes away: memif zeroes A's counters; A's totals hold.
    signal(&b, "TERM");
    assert!(wait_with_deadline(b, 20).status.success());
    watch(&asock, Duration::from_millis(1500), &mut seen);
    assert!(seen.1 >= 1, "the PMD's reset was noticed: {seen:?}");
    let gone = seen.0;
    // It comes back: traffic resumes and the totals grow from where they were.
    let b = start(&lab, &bcfg, &bsock);
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.0 <= gone {
        assert!(
            Instant::now() < deadline,
            "no traffic after the peer came back"
        );
        watch(&asock, Duration::from_millis(200), &mut seen);
    }
    assert!(seen.0 > before.0);
    signal(&b, "TERM");
    let _ = wait_with_deadline(b, 20);
    signal(&a, "TERM");
    let out = wait_with_deadline(a, 20);
    assert!(out.status.success());
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rx = port(&s, "m0")["rx_packets"].as_u64().unwrap();
    assert!(
        rx >= seen.0,
        "the summary's total ({rx}) is the monotonic one ({seen:?})"
    );
}
