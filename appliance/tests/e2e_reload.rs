//! Live reconfiguration end to end: `pollfwdctl reload` while traffic flows.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use lab::traffic::{self, GenSpec};
use serde_json::Value;

fn stats(sock: &Path) -> Value {
    ctl_json(sock, &["stats"])
}

fn port_tx(s: &Value, name: &str) -> u64 {
    port(s, name)["tx_packets"].as_u64().unwrap()
}

/// Four net_pcap ports: p0 replays forever, p1..p3 are sinks (no tx file, count and drop).
fn config(lab: &Lab, pairs: &str, extra: &str) -> String {
    format!(
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

[[port]]
name = "p2"
device = "net_pcap2,rx_pcap=empty.pcap"

[[port]]
name = "p3"
device = "net_pcap3,rx_pcap=empty.pcap"

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}, {{ port = "p2" }}, {{ port = "p3" }}]
stages = ["xconnect"]

[xconnect]
pairs = {pairs}

[control]
socket = "{sock}"
{extra}
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display()
    )
}

/// Writes `text` to `cfg` and asks the daemon to reload it: the reload must be refused (exit
/// code 1). Returns what `pollfwdctl` printed on stderr.
fn reload_refused(sock: &Path, cfg: &Path, text: &str) -> String {
    std::fs::write(cfg, text).unwrap();
    let out = ctl(sock, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn reload_applies_live_changes_refuses_bad_ones_and_loses_no_packet() {
    let lab = Lab::new("reload");
    traffic::write_pcap(
        &GenSpec {
            count: 128,
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
    let a = r#"[["p0", "p1"], ["p2", "p3"]]"#;
    let b = r#"[["p0", "p2"], ["p1", "p3"]]"#;
    let cfg = lab.write("pollfwd.toml", &config(&lab, a, ""));
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let mut child = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--summary",
        "json",
        "--duration",
        "120",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "pollfwd did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_ports(&sock, "tx_packets", 1);
    let s0 = stats(&sock);
    assert!(port_tx(&s0, "p1") > 0 && port_tx(&s0, "p2") == 0, "{s0}");

    // A file with a syntax error (a missing comma): refused with the position of the token
    // where the comma should be, old pairs stay.
    let text = config(&lab, r#"[["p0" "p2"]]"#, "");
    let err = reload_refused(&sock, &cfg, &text);
    let (l, c) = text_pos(&text, r#""p2"]]"#);
    assert!(
        err.contains("old config stays in force")
            && err.contains(&format!("{}:{l}:{c}: ", cfg.display())),
        "expected {}:{l}:{c}: in {err}",
        cfg.display()
    );
    // A valid file that names an unknown port: the position of the pair.
    let text = config(&lab, r#"[["p0", "p1"], ["p2", "p9"]]"#, "");
    let err = reload_refused(&sock, &cfg, &text);
    let (l, c) = text_pos(&text, r#"["p2", "p9"]"#);
    assert!(
        err.contains("old config stays in force")
            && err.contains("unknown port 'p9'")
            && err.contains(&format!("{}:{l}:{c}: ", cfg.display())),
        "expected {}:{l}:{c}: in {err}",
        cfg.display()
    );
    // A change that needs a restart: refused and named.
    let err = reload_refused(
        &sock,
        &cfg,
        &config(&lab, b, "").replace("mbufs = 4095", "mbufs = 8191"),
    );
    assert!(err.contains("need a restart: [mempool]"), "{err}");
    // A port's device and an lcore's stage chain: refused, each named.
    let err = reload_refused(
        &sock,
        &cfg,
        &config(&lab, b, "").replace("net_pcap3,rx_pcap=empty.pcap", "net_null3"),
    );
    assert!(
        err.contains("old config stays in force")
            && err.contains("need a restart: [[port]] p3 (devices"),
        "{err}"
    );
    let err = reload_refused(
        &sock,
        &cfg,
        &config(&lab, b, "").replace(
            r#"stages = ["xconnect"]"#,
            r#"stages = ["macswap", "xconnect"]"#,
        ),
    );
    assert!(
        err.contains("old config stays in force")
            && err.contains("need a restart: [[lcore]] 1 (lcores, queues polled, stage chains"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let s1 = stats(&sock);
    assert!(
        port_tx(&s1, "p1") > port_tx(&s0, "p1"),
        "old config still forwards p0 -> p1"
    );
    assert_eq!(port_tx(&s1, "p2"), 0);

    // A valid live change, repeated under traffic: p0 now goes to p2, then back, 50 times.
    for i in 0..50 {
        let pairs = if i % 2 == 0 { b } else { a };
        std::fs::write(&cfg, config(&lab, pairs, "")).unwrap();
        let out = ctl(&sock, &["--json", "reload"]);
        assert!(
            out.status.success(),
            "reload {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The last one applied 'a' (i = 49): switch to 'b' and check traffic follows.
    std::fs::write(&cfg, config(&lab, b, "")).unwrap();
    let out = ctl(&sock, &["--json", "reload"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["applied"][0], "xconnect: 2 pair(s) on 1 worker(s)", "{r}");
    std::thread::sleep(Duration::from_millis(200));
    let s2 = stats(&sock);
    std::thread::sleep(Duration::from_millis(300));
    let s3 = stats(&sock);
    assert_eq!(
        port_tx(&s3, "p1"),
        port_tx(&s2, "p1"),
        "p1 gets nothing after the switch"
    );
    assert!(
        port_tx(&s3, "p2") > port_tx(&s2, "p2"),
        "p0 -> p2 after the switch"
    );
    // Unchanged file: nothing applied.
    let out = ctl(&sock, &["--json", "reload"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["unchanged"], true);

    signal(&child, "TERM");
    let out = wait_with_deadline(child, 30);
    assert!(out.status.success());
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    // No packet lost to the changes: in == out + drops, and no drops at all here.
    let rx = lcore_sum(&s, "rx_packets");
    let tx = lcore_sum(&s, "tx_packets");
    assert_eq!(s["totals"]["drops"], 0, "{s}");
    assert_eq!(rx, tx);
    let sinks: u64 = ["p1", "p2", "p3"]
        .iter()
        .map(|p| port(&s, p)["tx_packets"].as_u64().unwrap())
        .sum();
    assert_eq!(sinks, tx);
}

/// `reload --path` reads only the configured file or files in its directory, and only regular
/// files of bounded size: a path elsewhere (directly or through a link), a FIFO that would
/// block the reload lock, a device and an oversized file are refused at once, with no file
/// content in the error, and the next reload still works.
#[test]
fn reload_reads_only_regular_files_next_to_the_config() {
    let lab = Lab::new("reloadpath");
    for (f, n) in [("in.pcap", 16), ("empty.pcap", 0)] {
        traffic::write_pcap(
            &GenSpec {
                count: n,
                ..Default::default()
            },
            &lab.path(f),
        )
        .unwrap();
    }
    let a = r#"[["p0", "p1"], ["p2", "p3"]]"#;
    let cfg = lab.write("pollfwd.toml", &config(&lab, a, ""));
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let mut child = lab.spawn(&["--config", cfg.to_str().unwrap(), "--duration", "60"]);
    wait_for_socket(&sock, &mut child);

    let refused = |path: &Path| -> String {
        let t = Instant::now();
        let out = ctl(&sock, &["reload", "--path", path.to_str().unwrap()]);
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{path:?} took {:?}",
            t.elapsed()
        );
        assert_eq!(out.status.code(), Some(1), "{path:?} must be refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let elsewhere = "path must be the configured file or a file in its directory";
    let e = refused(Path::new("/etc/passwd"));
    assert!(e.contains(elsewhere) && !e.contains("root"), "{e}");
    std::os::unix::fs::symlink("/etc/passwd", lab.path("passwd.toml")).unwrap();
    let e = refused(&lab.path("passwd.toml"));
    assert!(e.contains(elsewhere) && !e.contains("root"), "{e}");
    std::os::unix::fs::symlink("/dev/zero", lab.path("zero.toml")).unwrap();
    assert!(refused(&lab.path("zero.toml")).contains(elsewhere));
    let fifo = lab.path("fifo.toml");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let e = refused(&fifo);
    assert!(e.contains("not a regular file"), "{e}");
    let big = std::fs::File::create(lab.path("big.toml")).unwrap();
    big.set_len(65 << 20).unwrap();
    let e = refused(&lab.path("big.toml"));
    assert!(e.contains("larger than"), "{e}");
    let e = refused(&lab.path("missing.toml"));
    assert!(e.contains("No such file"), "{e}");

    // The lock was never held: a reload of a file beside the config applies.
    let b = r#"[["p0", "p2"], ["p1", "p3"]]"#;
    let other = lab.write("other.toml", &config(&lab, b, ""));
    let out = ctl(
        &sock,
        &["--json", "reload", "--path", other.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["applied"][0], "xconnect: 2 pair(s) on 1 worker(s)", "{r}");
    signal(&child, "TERM");
    assert!(wait_with_deadline(child, 30).status.success());
}
