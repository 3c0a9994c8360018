//! The worker watchdog end to end: the real `pollfwd` binary (a debug build, which honours
//! `POLLFWD_FAULT`) with a worker that panics or stalls; what the operator sees in the log,
//! `pollfwdctl lcores`, Prometheus, the summary and the exit status.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lab::traffic::{self, GenSpec};
use serde_json::Value;

/// Starts pollfwd on `cfg` with a fault injected into lcore 1 (`POLLFWD_FAULT`).
fn spawn_with_fault(lab: &Lab, cfg: &std::path::Path, fault: &str, secs: &str) -> Child {
    Command::new(bin("pollfwd"))
        .args(["--config", cfg.to_str().unwrap(), "--summary", "json"])
        .args(["--duration", secs])
        .env("POLLFWD_FAULT", fault)
        .current_dir(&lab.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pollfwd")
}

fn lab_config(lab: &Lab, extra: &str) -> std::path::PathBuf {
    traffic::write_pcap(
        &GenSpec {
            count: 64,
            ..Default::default()
        },
        &lab.path("in.pcap"),
    )
    .unwrap();
    pcap_config(lab, "in.pcap", r#"["xconnect"]"#, extra)
}

#[test]
fn a_panicking_worker_is_reported_and_stops_pollfwd_with_status_1() {
    let lab = Lab::new("wd-panic");
    let cfg = lab_config(&lab, "");
    let _g = busy_lock();
    let t0 = Instant::now();
    let child = spawn_with_fault(&lab, &cfg, "panic@1:300", "30");
    let out = wait_with_deadline(child, 20);
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pollfwd: lcore 1 (worker 0) died: its loop panicked"),
        "{stderr}"
    );
    assert!(stderr.contains("on_worker_failure = \"exit\""), "{stderr}");
    // Start-up, 300 ms, detection (20 ms rounds) and shutdown: far below the 30 s asked.
    assert!(took < Duration::from_secs(10), "exited after {took:?}");
    let s: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(
        s["failed_lcores"],
        serde_json::json!([{"lcore": 1, "state": "dead (panicked)"}]),
        "{s}"
    );
}

#[test]
fn a_stalled_worker_is_reported_within_a_second_and_degraded_mode_keeps_running() {
    let lab = Lab::new("wd-stall");
    let cfg = lab_config(&lab, "\n[runtime]\non_worker_failure = \"degraded\"\n");
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let mut child = spawn_with_fault(&lab, &cfg, "stall@1:800:2500", "30");
    wait_for_socket(&sock, &mut child);
    let up = Instant::now();
    let state = || {
        ctl_json(&sock, &["lcores"])[0]["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(state(), "running");
    // The stall starts 800 ms after the worker (which started before the socket answered):
    // it must show within 1 s of that, i.e. before 1.8 s from now (plus polling slack).
    let deadline = up + Duration::from_secs(4);
    while state() != "stalled" {
        assert!(Instant::now() < deadline, "never reported stalled");
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = up.elapsed();
    assert!(
        seen < Duration::from_millis(1800 + 200),
        "stalled seen after {seen:?}"
    );
    let m = ctl(&sock, &["metrics"]);
    let m = String::from_utf8_lossy(&m.stdout);
    assert!(m.contains("pollfwd_lcore_up{lcore=\"1\"} 0"), "{m}");
    let text = String::from_utf8_lossy(&ctl(&sock, &["lcores"]).stdout).into_owned();
    assert!(text.contains("stalled"), "{text}");
    // Degraded: pollfwd keeps running; the worker comes back after its 2.5 s stall.
    let deadline = Instant::now() + Duration::from_secs(5);
    while state() != "running" {
        assert!(Instant::now() < deadline, "never running again");
        assert!(child.try_wait().unwrap().is_none(), "pollfwd exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = ctl(&sock, &["metrics"]);
    assert!(String::from_utf8_lossy(&m.stdout).contains("pollfwd_lcore_up{lcore=\"1\"} 1"));
    signal(&child, "TERM");
    let out = wait_with_deadline(child, 20);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pollfwd: lcore 1 (worker 0) stalled: no loop round for 0."),
        "{stderr}"
    );
    assert!(
        stderr.contains("pollfwd: lcore 1 (worker 0) is running again"),
        "{stderr}"
    );
    // A worker failed during the run: the status says so, though it recovered.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let s: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(
        s["failed_lcores"],
        serde_json::json!([]),
        "recovered by the end"
    );
}
