//! The soak and leak test in its CI length: `scripts/soak.sh 1` (one minute of load; about
//! 80 s in all) on the binaries under test. The script runs the full chain on net_af_packet
//! ports between network namespaces with NAT churn, reloads, route/ACL changes and control
//! clients, then checks mbufs, NAT sessions, RSS, open files, the accounting identity and the
//! exit (docs/reliability.md); it exits non-zero when a check fails and prints its report.
//!
//! The script takes the busy-polling lock /tmp/pollfwd-busy.lock itself (flock), so this test
//! does not hold it. Needs root, iproute2, ethtool, ping and python3; fails saying so
//! otherwise.

mod common;

use std::process::Command;

use common::netns::have;
use common::*;

#[test]
fn soak_one_minute_no_leak_no_loss_of_accounting() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ethtool", "ping", "python3", "flock"] {
        assert!(have(t), "'{t}' is missing: run scripts/install-deps.sh");
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/soak.sh");
    let out = Command::new("timeout")
        .args(["300", script, "1"])
        .env("POLLFWD", bin("pollfwd"))
        .env("POLLFWDCTL", bin("pollfwdctl"))
        .env_remove("SOAK_LOCKED")
        .output()
        .expect("run scripts/soak.sh");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "soak failed ({:?}):\n{report}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "mempool",
        "nat",
        "rss",
        "fds",
        "accounting",
        "control",
        "crash",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("PASS") && l.split_whitespace().nth(1) == Some(check)),
            "check {check} not reported as passed:\n{report}"
        );
    }
}
