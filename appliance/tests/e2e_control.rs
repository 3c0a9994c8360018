//! End to end: the management thread, control socket and `pollfwdctl` against the real daemon.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use lab::traffic::{self, GenSpec, Sizes};
use serde_json::{Value, json};

/// Sends `version` and tells whether it was answered with ok (false on an error reply,
/// a closed connection or an I/O error).
fn version_ok(c: &mut Control) -> bool {
    if c.send_line(b"{\"cmd\": \"version\"}").is_err() {
        return false;
    }
    match c.read_line() {
        Ok(line) if !line.is_empty() => {
            serde_json::from_str::<Value>(&line).is_ok_and(|v| v["ok"] == true)
        }
        _ => false,
    }
}

/// The value of one sample line (`NAME{LABELS} VALUE`) of a Prometheus text exposition.
fn sample(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.strip_prefix(series).is_some_and(|r| r.starts_with(' ')))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn infinite_config(lab: &Lab, extra: &str) -> std::path::PathBuf {
    traffic::write_pcap(
        &GenSpec {
            count: 256,
            flows: 16,
            ..Default::default()
        },
        &lab.path("in.pcap"),
    )
    .unwrap();
    let cfg = pcap_config(
        lab,
        "in.pcap,infinite_rx=1",
        r#"["macswap", "xconnect"]"#,
        extra,
    );
    // p1 is a pure sink: no tx file (net_pcap counts and drops what it sends).
    let t = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(",tx_pcap=p1-out.pcap", "");
    std::fs::write(&cfg, t).unwrap();
    cfg
}

#[test]
fn stats_match_the_pcap_and_reports_are_sane() {
    let lab = Lab::new("ctl-stats");
    let spec = GenSpec {
        count: 5000,
        flows: 32,
        sizes: Sizes::Imix,
        ..Default::default()
    };
    traffic::write_pcap(&spec, &lab.path("in.pcap")).unwrap();
    let bytes: u64 = traffic::generate(&spec).map(|f| f.len() as u64).sum();
    let cfg = pcap_config(&lab, "in.pcap", r#"["macswap", "xconnect"]"#, "");
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);

    // Wait (bounded) until the whole pcap went through, then compare every counter.
    let deadline = Instant::now() + Duration::from_secs(20);
    let stats = loop {
        let s = ctl_json(&sock, &["stats"]);
        if s["totals"]["tx_packets"] == 5000 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stats["totals"]["rx_packets"], 5000, "{stats}");
    assert_eq!(stats["totals"]["tx_packets"], 5000);
    assert_eq!(stats["totals"]["rx_bytes"], bytes);
    assert_eq!(stats["totals"]["drops"], 0);
    let p0 = port(&stats, "p0");
    let p1 = port(&stats, "p1");
    assert_eq!(p0["rx_packets"], 5000);
    assert_eq!(p0["rx_bytes"], bytes);
    assert_eq!(p1["tx_packets"], 5000);
    assert_eq!(p1["tx_bytes"], bytes);

    let ports = ctl_json(&sock, &["ports", "--xstats"]);
    assert_eq!(ports.as_array().unwrap().len(), 2);
    for p in ports.as_array().unwrap() {
        assert_eq!(p["driver"], "net_pcap");
        assert_eq!(p["link_up"], true);
        assert_eq!(p["mac"].as_str().unwrap().len(), 17);
        assert!(
            p["xstats"].as_object().is_some_and(|x| !x.is_empty()),
            "{p}"
        );
    }
    let lcores = ctl_json(&sock, &["lcores"]);
    let l = &lcores[0];
    assert_eq!(l["lcore"], 1);
    assert_eq!(l["pool"], "pf_mbuf_n0");
    assert_eq!(l["polls"], json!(["p0:0", "p1:0"]));
    assert!(l["busy_pct"].as_f64().unwrap() >= 0.0 && l["busy_pct"].as_f64().unwrap() <= 100.0);

    let rt = ctl_json(&sock, &["runtime"]);
    let stages = rt["lcores"][0]["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    for st in stages {
        assert_eq!(st["packets"], 5000, "{st}");
        assert!(st["calls"].as_u64().unwrap() >= 5000 / 32);
        assert!(st["cycles_per_packet"].as_f64().unwrap() > 0.0);
        assert!(st["packets_per_call"].as_f64().unwrap() <= 32.0);
        // Timing is sampled: at least one burst, never more packets than the stage saw.
        let timed = st["timed_packets"].as_u64().unwrap();
        assert!(timed > 0 && timed <= 5000, "{st}");
    }
    assert!(rt["lcores"][0]["dwell"]["p99_ns"].as_f64().unwrap() > 0.0);

    let pools = ctl_json(&sock, &["mempools"]);
    let p = &pools[0];
    assert_eq!(p["size"], 4095);
    assert_eq!(
        p["in_use"].as_u64().unwrap() + p["free"].as_u64().unwrap(),
        4095
    );

    // Human-readable forms work too.
    for cmd in [
        "stats", "ports", "lcores", "runtime", "mempools", "topology", "version", "metrics",
    ] {
        let out = ctl(&sock, &[cmd]);
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "{cmd} printed nothing");
    }
    let metrics = String::from_utf8(ctl(&sock, &["metrics"]).stdout).unwrap();
    assert!(
        metrics.contains("pollfwd_port_tx_packets_total{port=\"p1\"} 5000"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE pollfwd_drops_total counter"));
    // Dwell percentile gauges: the same numbers as `runtime` (the pcap is done: no new bursts).
    for q in ["p50", "p99", "p999"] {
        let secs = sample(
            &metrics,
            &format!("pollfwd_dwell_{q}_seconds{{lcore=\"1\"}}"),
        );
        let ns = rt["lcores"][0]["dwell"][format!("{q}_ns")]
            .as_f64()
            .unwrap();
        assert!(secs > 0.0, "{q}: {secs}");
        assert!(
            (secs * 1e9 - ns).abs() <= ns * 1e-9 + 1e-6,
            "{q}: metrics {secs} s, runtime {ns} ns"
        );
    }
    let bursts = rt["lcores"][0]["dwell"]["bursts"].as_f64().unwrap();
    assert_eq!(
        sample(&metrics, "pollfwd_dwell_seconds_count{lcore=\"1\"}"),
        bursts
    );
    // Build information.
    let v = ctl_json(&sock, &["version"]);
    assert_eq!(v["build"]["version"], env!("CARGO_PKG_VERSION"), "{v}");
    assert_eq!(v["build"]["profile"], "debug", "{v}");
    // Built from a git checkout (as here, whenever git can read one): the commit is known.
    let in_git = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git {
        let commit = v["build"]["git_commit"].as_str().unwrap_or("");
        assert!(
            commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{v}"
        );
    }

    // clear zeroes the counters.
    ctl_json(&sock, &["clear"]);
    let after = ctl_json(&sock, &["stats"]);
    assert_eq!(after["totals"]["rx_packets"], 0, "{after}");
    assert_eq!(after["ports"][1]["tx_packets"], 0);

    let summary = stop(child);
    assert_eq!(
        summary["totals"]["rx_packets"], 0,
        "cleared counters stay cleared"
    );
}

#[test]
fn watch_shows_nonzero_rates_while_traffic_flows() {
    let lab = Lab::new("ctl-watch");
    // A free loopback port for the Prometheus listener.
    let prom = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = infinite_config(&lab, "");
    let t = std::fs::read_to_string(&cfg).unwrap().replace(
        "[control]\n",
        &format!("[control]\nprometheus = \"{prom}\"\n"),
    );
    std::fs::write(&cfg, t).unwrap();
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);
    let out = ctl(
        &sock,
        &["--json", "watch", "--interval", "0.5", "--count", "2"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for s in &lines {
        let p0 = s["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == "p0")
            .unwrap();
        let p1 = s["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == "p1")
            .unwrap();
        assert!(p0["rx_pps"].as_f64().unwrap() > 1000.0, "{s}");
        assert!(p1["tx_pps"].as_f64().unwrap() > 1000.0, "{s}");
        assert!(s["lcores"][0]["rx_pps"].as_f64().unwrap() > 1000.0);
    }
    // The Prometheus listener serves the same counters over HTTP.
    let mut http = std::net::TcpStream::connect(prom).unwrap();
    http.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    http.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.0 200 OK"), "{body}");
    assert!(body.contains("Content-Type: text/plain; version=0.0.4"));
    let line = body
        .lines()
        .find(|l| l.starts_with("pollfwd_port_rx_packets_total{port=\"p0\"}"))
        .unwrap();
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n > 1000.0, "{line}");
    assert!(body.contains("pollfwd_dwell_seconds_bucket{lcore=\"1\",le=\"+Inf\"}"));
    assert!(sample(&body, "pollfwd_dwell_p99_seconds{lcore=\"1\"}") > 0.0);
    assert!(body.contains("# TYPE pollfwd_dwell_p999_seconds gauge"));
    let mut http = std::net::TcpStream::connect(prom).unwrap();
    http.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    http.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.0 404"), "{body}");

    // The table form prints the same columns.
    let out = ctl(&sock, &["watch", "--interval", "0.3", "--count", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rx-pps") && text.contains("p0"), "{text}");
    stop(child);
}

#[test]
fn bad_clients_get_answers_and_the_data_plane_does_not_notice() {
    let lab = Lab::new("ctl-abuse");
    let cfg = infinite_config(&lab, "");
    let t = std::fs::read_to_string(&cfg).unwrap().replace(
        "[control]\n",
        "[control]\nclient_timeout_ms = 500\nmax_clients = 16\n",
    );
    std::fs::write(&cfg, t).unwrap();
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);

    // One connection: malformed JSON, unknown command, oversize line, then a good request.
    let mut c = Control::connect(&sock);
    c.set_read_timeout(Duration::from_secs(5));
    let a = c.send(b"{\"cmd\": ");
    assert_eq!(a["ok"], false);
    assert!(
        a["error"].as_str().unwrap().contains("malformed JSON"),
        "{a}"
    );
    let a = c.send(br#"{"cmd": "teleport"}"#);
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .contains("unknown command 'teleport'"),
        "{a}"
    );
    let a = c.send(br#"{"args": {}}"#);
    assert!(a["error"].as_str().unwrap().contains("'cmd'"), "{a}");
    let big = format!(
        "{{\"cmd\": \"version\", \"pad\": \"{}\"}}",
        "x".repeat(100_000)
    );
    let a = c.send(big.as_bytes());
    assert!(
        a["error"].as_str().unwrap().contains("larger than 65536"),
        "{a}"
    );
    let a = c.send(br#"{"cmd": "version", "id": 7}"#);
    assert_eq!(a["ok"], true, "connection still usable: {a}");
    assert_eq!(a["id"], 7);
    assert_eq!(a["v"], 1);

    // A client that never sends is disconnected after client_timeout_ms.
    let silent = UnixStream::connect(&sock).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 16];
    let n = (&silent).read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "silent client should get EOF");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "silent client kept {:?}",
        t0.elapsed()
    );

    // A client trickling a request one byte every 100 ms: every read() returns well within
    // client_timeout_ms, but the request must be complete within client_timeout_ms of its
    // first byte; the client gets an error reply and the connection is closed.
    let slow = UnixStream::connect(&sock).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut sw = slow.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        let mut sent = 0;
        let text = format!("{{\"cmd\": \"version\"{}", " ".repeat(100));
        for b in text.bytes() {
            if sw.write_all(&[b]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        sent
    });
    let t0 = Instant::now();
    let mut sr = BufReader::new(slow);
    let mut line = String::new();
    sr.read_line(&mut line).unwrap();
    let took = t0.elapsed();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("not completed within 500 ms"),
        "{v}"
    );
    line.clear();
    assert_eq!(sr.read_line(&mut line).unwrap(), 0, "then EOF: {line:?}");
    assert!(took < Duration::from_secs(3), "slow client kept {took:?}");
    let sent = trickler.join().unwrap();
    assert!(sent < 60, "the trickler could send {sent} bytes");

    // The client cap, deterministically: max_clients (16) connections that have each been
    // answered hold every slot, so one more gets "too many control clients". The held ones are
    // refreshed (a request each) so none reaches the 500 ms idle timeout before the check.
    drop(c);
    let mut held: Vec<Control> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        assert!(Instant::now() < deadline, "could not hold 16 slots");
        let t0 = Instant::now();
        held.retain_mut(version_ok);
        while held.len() < 16 {
            assert!(Instant::now() < deadline, "could not hold 16 slots");
            let mut c = Control::connect(&sock);
            if version_ok(&mut c) {
                held.push(c);
            } else {
                // A slot whose client just left is not released yet.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let mut c = Control::connect(&sock);
        let _ = c.send_line(b"{\"cmd\": \"version\"}");
        let line = c.read_line().unwrap();
        if t0.elapsed() < Duration::from_millis(250) {
            break serde_json::from_str::<Value>(&line).unwrap();
        }
    };
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("too many control clients (max 16)"),
        "{refused}"
    );
    // Once they leave, their slots come back.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if version_ok(&mut Control::connect(&sock)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slots not released after the clients left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // pollfwdctl watch with rounds longer than client_timeout_ms: the server closes the idle
    // connection between rounds and pollfwdctl reconnects.
    let out = ctl(
        &sock,
        &["--json", "watch", "--interval", "0.8", "--count", "2"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);

    // 100 clients at once: each gets an answer (a result, or 'too many clients').
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut c = Control::connect(&sock);
                let _ = c.send_line(b"{\"cmd\": \"stats\"}");
                let line = c.read_line().unwrap();
                let v: Value = serde_json::from_str(&line).unwrap();
                v["ok"] == true
                    || v["error"]
                        .as_str()
                        .unwrap_or("")
                        .contains("too many control clients")
            })
        })
        .collect();
    let answered = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(answered, 100);

    // The data plane did not notice: every packet received was forwarded, none dropped.
    let s = stop(child);
    let rx = lcore_sum(&s, "rx_packets");
    assert!(rx > 100_000, "traffic flowed: {rx}");
    assert_eq!(lcore_sum(&s, "tx_packets"), rx, "{s}");
    assert_eq!(s["totals"]["drops"], 0, "{s}");
    assert_eq!(port(&s, "p1")["tx_packets"], rx);
}

#[test]
fn non_root_non_group_user_is_refused() {
    if Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout != b"0\n")
        .unwrap_or(true)
    {
        panic!("this test needs root (it runs pollfwdctl as user nobody)");
    }
    let lab = Lab::new("ctl-perm");
    let cfg = infinite_config(&lab, "");
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);
    let meta = std::fs::metadata(&sock).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "socket mode");

    let as_nobody = |sock: &Path| {
        Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(bin("pollfwdctl"))
            .arg("--socket")
            .arg(sock)
            .arg("version")
            .output()
            .unwrap()
    };
    // File permissions keep nobody out.
    let out = as_nobody(&sock);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));

    // Defence in depth: even with the socket opened up by mistake, SO_PEERCRED refuses.
    std::fs::set_permissions(&lab.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&sock);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("permission denied: uid") && err.contains("not root"),
        "{err}"
    );
    // Root still gets in.
    assert_eq!(ctl_json(&sock, &["version"])["protocol"], 1);
    stop(child);
}

#[test]
fn group_members_get_in_and_the_management_thread_sits_on_the_main_cpu() {
    let lab = Lab::new("ctl-group");
    let cfg = infinite_config(&lab, "group = \"nogroup\"\n");
    // The socket in a directory that does not exist yet; the main lcore on CPU 1 and the worker
    // on CPU 0, so the management thread's CPU is not simply the first one.
    let sock = lab.path("run/ctl.sock");
    let t = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            &lab.path("ctl.sock").display().to_string(),
            &sock.display().to_string(),
        )
        .replace("[eal]\n", "[eal]\nmain_cpu = 1\n")
        .replace("id = 1\n", "id = 1\ncpu = 0\n");
    std::fs::write(&cfg, t).unwrap();
    assert!(!lab.path("run").exists());
    let nogroup = group_id("nogroup");
    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);

    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = std::fs::metadata(lab.path("run")).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o750, "directory mode");
    assert_eq!(dir.gid(), nogroup, "directory group");
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "socket mode");
    assert_eq!(meta.gid(), nogroup, "socket group");

    // nobody's primary group is nogroup: it may use the socket.
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(bin("pollfwdctl"))
        .arg("--socket")
        .arg(&sock)
        .arg("version")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("pollfwd "));

    // Threads: the management thread and a client's thread on the main lcore's CPU (1), the
    // worker on its own (0).
    let mut c = Control::connect(&sock);
    assert!(version_ok(&mut c));
    let threads = threads_cpus(child.id());
    let cpus_of = |name: &str| -> Vec<&str> {
        threads
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c.as_str())
            .collect()
    };
    assert_eq!(cpus_of("pollfwd-mgmt"), ["1"], "{threads:?}");
    // (nobody's client thread may not have ended yet: at least ours)
    let ctl_threads = cpus_of("pollfwd-ctl");
    assert!(
        !ctl_threads.is_empty() && ctl_threads.iter().all(|c| *c == "1"),
        "{threads:?}"
    );
    assert_eq!(cpus_of("rte-worker-1"), ["0"], "{threads:?}");
    drop(c);

    let (_, stderr) = stop_with_stderr(child);
    // Default in_memory = true: the operator is told that capture needs in_memory = false.
    assert!(
        stderr.contains("packet capture (dpdk-pdump, dpdk-dumpcap) is off"),
        "{stderr}"
    );
}

/// Group id from /etc/group.
fn group_id(name: &str) -> u32 {
    std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == name).then(|| f[2].parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no group {name}"))
}

/// (thread name, Cpus_allowed_list) of every thread of a process.
fn threads_cpus(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let t = t.unwrap().path();
        let name = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(t.join("status")).unwrap_or_default();
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("")
            .trim()
            .to_string();
        out.push((name.trim().to_string(), cpus));
    }
    out
}

/// SIGTERM, exit code 0; the summary and what pollfwd wrote to stderr.
fn stop_with_stderr(child: std::process::Child) -> (Value, String) {
    signal(&child, "TERM");
    let out = wait_with_deadline(child, 60);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (
        serde_json::from_slice(&out.stdout).expect("summary JSON"),
        stderr,
    )
}

#[test]
fn missing_socket_exits_2_and_says_so() {
    let lab = Lab::new("ctl-missing");
    let out = ctl(&lab.path("nope.sock"), &["stats"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&lab.path("nope.sock").display().to_string()),
        "{err}"
    );
    assert!(err.contains("pollfwd is not running"), "{err}");
    // A stale socket file (nobody listening) is reported as such.
    let l = std::os::unix::net::UnixListener::bind(lab.path("stale.sock")).unwrap();
    drop(l);
    let out = ctl(&lab.path("stale.sock"), &["stats"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stale"));
}

#[test]
fn dpdk_tools_pdump_and_telemetry_work_against_pollfwd() {
    let lab = Lab::new("ctl-tools");
    let cfg = infinite_config(&lab, "");
    attachable(&lab, &cfg);
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);
    let prefix = lab.prefix();

    // dpdk-telemetry.py lists pollfwd's commands and runs them.
    let mut tel = Command::new("dpdk-telemetry.py")
        .args(["-f", &prefix])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tel.stdin
        .take()
        .unwrap()
        .write_all(b"/\n/pollfwd/stats\n/pollfwd/ports\n/pollfwd/version\n")
        .unwrap();
    let out = wait_with_deadline(tel, 20);
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "stats",
        "lcores",
        "version",
        "ports",
        "runtime",
        "mempools",
        "rings",
        // Each network function's counters (registered by every pollfwd).
        "acl/counters",
        "forward/stats",
        "nat/summary",
        "policer/counters",
    ] {
        assert!(text.contains(&format!("/pollfwd/{cmd}")), "{cmd}: {text}");
    }
    assert!(text.contains("\"rx_packets\""), "{text}");
    // The control commands' replies, flattened: port p0's counters, the DPDK version.
    assert!(text.contains("\"p0_rx_packets\""), "{text}");
    assert!(text.contains("\"dpdk_runtime\""), "{text}");

    // Packet capture through DPDK's pdump framework from a secondary process: dpdk-pdump with
    // --no-pci here (dpdk-dumpcap, the other client, has its own test in e2e_dumpcap.rs).
    let cap = lab.path("cap.pcap");
    let mut pd = Command::new("dpdk-pdump")
        .args(["--no-pci", "--log-level=notice"])
        .arg(format!("--file-prefix={prefix}"))
        .arg("--")
        .arg("--pdump")
        .arg(format!("port=0,queue=*,rx-dev={}", cap.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Until the capture holds 100 frames (pdump's own EAL start may be slow), at most 20 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    while read_pcap_len(&cap) < 100 && Instant::now() < deadline && pd.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(&pd, "INT");
    let deadline = Instant::now() + Duration::from_secs(15);
    while pd.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "dpdk-pdump did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = pd.wait_with_output().unwrap();
    let frames = read_pcap(&cap);
    assert!(
        frames.len() >= 100,
        "captured {} frames; pdump said: {}",
        frames.len(),
        String::from_utf8_lossy(&out.stderr)
    );
    // What was captured is what pollfwd received (our generated UDP frames).
    let sent: Vec<Vec<u8>> = traffic::generate(&GenSpec {
        count: 256,
        flows: 16,
        ..Default::default()
    })
    .collect();
    assert!(frames.iter().take(50).all(|f| sent.contains(f)));
    let (_, stderr) = stop_with_stderr(child);
    assert!(!stderr.contains("packet capture"), "{stderr}");
}

/// Whole frames in a pcap file that is still being written (0 while it is missing or shorter
/// than its header): a trailing partial record is not counted.
fn read_pcap_len(p: &Path) -> usize {
    std::fs::read(p).map_or(0, |d| lab::pcap::whole_records(&d))
}
