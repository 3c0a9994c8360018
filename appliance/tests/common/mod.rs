//! Shared harness of the end-to-end tests: they start the real `pollfwd` binary on net_pcap
//! ports in a private directory and read its JSON summary and output pcaps.
//!
//! Busy-polling budget: these machines allow at most 2 busy-polling lcores at once, so every
//! DPDK process a test starts runs while holding an exclusive lock on /tmp/pollfwd-busy.lock
//! (benches and scripts take the same lock with `flock`).
#![allow(dead_code)]

pub mod netns;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BUSY_LOCK: &str = "/tmp/pollfwd-busy.lock";

/// Holds the machine-wide busy-polling lock while alive.
pub struct BusyGuard(File);

pub fn busy_lock() -> BusyGuard {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(BUSY_LOCK)
        .expect("open busy lock");
    f.lock().expect("lock busy lock");
    BusyGuard(f)
}

pub fn bin(name: &str) -> PathBuf {
    match name {
        "pollfwd" => PathBuf::from(env!("CARGO_BIN_EXE_pollfwd")),
        "pollfwdctl" => PathBuf::from(env!("CARGO_BIN_EXE_pollfwdctl")),
        _ => panic!("unknown binary {name}"),
    }
}

/// A private working directory for one test, removed at drop unless the test failed.
pub struct Lab {
    pub dir: PathBuf,
    pub name: String,
}

impl Lab {
    pub fn new(name: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("pollfwd-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Lab {
            dir,
            name: name.to_string(),
        }
    }

    pub fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }

    pub fn write(&self, f: &str, text: &str) -> PathBuf {
        let p = self.path(f);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Unique file prefix for EAL (so tests never share /var/run/dpdk state).
    pub fn prefix(&self) -> String {
        format!("pft-{}-{}", self.name, std::process::id())
    }

    /// Runs pollfwd to completion (under the busy lock) and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        let _g = busy_lock();

        Command::new(bin("pollfwd"))
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run pollfwd")
    }

    /// Runs pollfwd with `--summary json` and parses the summary (panics with stderr on failure).
    pub fn run_json(&self, config: &Path, extra: &[&str]) -> Value {
        let mut args = vec!["--config", config.to_str().unwrap(), "--summary", "json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "pollfwd failed: {:?}\n{stderr}",
            out.status
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("summary is not JSON ({e}):\n{stdout}\n{stderr}"))
    }

    /// Starts pollfwd on `cfg` for at most `secs` (a backstop: tests stop it) with a JSON
    /// summary, and waits until its control socket `sock` answers (caller holds the busy lock).
    pub fn start(&self, cfg: &Path, secs: u64, sock: &Path) -> Child {
        let secs = secs.to_string();
        let mut child = self.spawn(&[
            "--config",
            cfg.to_str().unwrap(),
            "--summary",
            "json",
            "--duration",
            &secs,
        ]);
        wait_for_socket(sock, &mut child);
        child
    }

    /// Starts pollfwd in the background (caller holds the busy lock).
    pub fn spawn(&self, args: &[&str]) -> Child {
        Command::new(bin("pollfwd"))
            .args(args)
            .current_dir(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pollfwd")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix()));
    }
}

/// Sends a signal to a child we started.
pub fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Waits for a child with a deadline; kills it (and fails) past the deadline.
pub fn wait_with_deadline(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "pollfwd did not exit within {secs} s; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `empty.pcap` (no packets) in the lab: the input of a port that only transmits.
pub fn write_empty_pcap(lab: &Lab) {
    appliance::traffic::write_pcap(
        &appliance::traffic::GenSpec {
            count: 0,
            ..Default::default()
        },
        &lab.path("empty.pcap"),
    )
    .unwrap();
}

/// Two-port net_pcap lab config: p0 reads `in_pcap`, p1 reads an empty pcap; outputs go to
/// p0-out.pcap / p1-out.pcap. `stages` is the TOML array text, `extra` appended verbatim.
pub fn pcap_config(lab: &Lab, in_pcap: &str, stages: &str, extra: &str) -> PathBuf {
    write_empty_pcap(lab);
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 4095

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap={in_pcap},tx_pcap=p0-out.pcap"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=empty.pcap,tx_pcap=p1-out.pcap"

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = {stages}

[xconnect]
pairs = [["p0", "p1"]]

[control]
socket = "{sock}"
{extra}
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

/// Rewrites a lab config so that DPDK secondary processes (dpdk-pdump, dpdk-dumpcap,
/// dpdk-proc-info) can attach: a primary that is not --in-memory, and absolute pcap paths in
/// the devargs (a secondary re-attaches the primary's devices from its own directory).
pub fn attachable(lab: &Lab, cfg: &Path) {
    let dir = format!("{}/", lab.dir.display());
    let t = std::fs::read_to_string(cfg)
        .unwrap()
        .replace("[eal]\n", "[eal]\nin_memory = false\n")
        .replace("rx_pcap=", &format!("rx_pcap={dir}"))
        .replace("tx_pcap=", &format!("tx_pcap={dir}"));
    std::fs::write(cfg, t).unwrap();
}

pub fn read_pcap(p: &Path) -> Vec<Vec<u8>> {
    appliance::pcap::read_pcap(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Sum of a per-lcore field over all lcores of a summary.
pub fn lcore_sum(v: &Value, field: &str) -> u64 {
    v["lcores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[field].as_u64().unwrap())
        .sum()
}

pub fn port<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
}

/// Runs `pollfwdctl --socket SOCK ARGS...`.
pub fn ctl(sock: &Path, args: &[&str]) -> Output {
    Command::new(bin("pollfwdctl"))
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .expect("run pollfwdctl")
}

/// Runs `pollfwdctl --json ARGS...`, asserts success and parses the reply's data.
pub fn ctl_json(sock: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = ctl(sock, &a);
    assert!(
        out.status.success(),
        "pollfwdctl {args:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Polls `stats` over the control socket (bounded, 30 s) until the sum of the ports' `field`
/// (e.g. "rx_packets") reaches `n`: the data plane has seen the traffic a test just offered,
/// however slow start-up was. Tolerates the socket not being up yet.
#[allow(dead_code)]
pub fn wait_for_ports(sock: &Path, field: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = 0;
    loop {
        let out = ctl(sock, &["--json", "stats"]);
        if out.status.success()
            && let Ok(v) = serde_json::from_slice::<Value>(&out.stdout)
        {
            last = v["ports"]
                .as_array()
                .map(|ps| ps.iter().filter_map(|p| p[field].as_u64()).sum())
                .unwrap_or(0);
            if last >= n {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "ports' {field} stayed at {last}, below {n}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) until the control socket accepts connections; fails if pollfwd exits.
pub fn wait_for_socket(sock: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(sock).is_err() {
        if let Some(st) = child.try_wait().unwrap() {
            let mut e = String::new();
            use std::io::Read;
            child.stderr.take().unwrap().read_to_string(&mut e).unwrap();
            panic!("pollfwd exited early ({st}): {e}");
        }
        assert!(
            Instant::now() < deadline,
            "control socket {} never appeared",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, then the exit code must be 0 and stdout the JSON summary.
pub fn stop(child: Child) -> Value {
    signal(&child, "TERM");
    let out = wait_with_deadline(child, 60);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

/// 1-based line and column of the first `needle` in `text` (what config errors report as
/// `file:line:col`).
pub fn text_pos(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("'{needle}' not in the text"));
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}
