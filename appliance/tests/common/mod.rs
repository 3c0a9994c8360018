//! Shared harness of the end-to-end tests: they start the real `pollfwd` binary on net_pcap
//! ports in a private directory and read its JSON summary and output pcaps.
//!
//! Busy-polling budget: these machines allow at most 2 busy-polling lcores at once, so every
//! DPDK process a test starts runs while holding an exclusive lock on /tmp/pollfwd-busy.lock
//! (benches and scripts take the same lock with `flock`).
#![allow(dead_code)]

pub mod frr;
pub mod netns;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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

/// Writes `frames` to a pcap file at `path` (timestamps 1 µs apart); panics on an error.
pub fn write_frames(path: &Path, frames: &[Vec<u8>]) {
    lab::pcap::write_frames(path, frames).unwrap_or_else(|e| panic!("{e}"));
}

/// Writes `empty.pcap` (no packets) in the lab: the input of a port that only transmits.
pub fn write_empty_pcap(lab: &Lab) {
    write_frames(&lab.path("empty.pcap"), &[]);
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

/// The frames of the pcap file at `p`; panics on an error (which names the file).
pub fn read_pcap(p: &Path) -> Vec<Vec<u8>> {
    lab::pcap::read_pcap(p).unwrap_or_else(|e| panic!("{e}"))
}

/// Packets dropped for `reason` in a summary or `stats` reply (0 when the reason is absent:
/// only reasons with drops are listed).
pub fn drops(s: &Value, reason: &str) -> u64 {
    s["totals"]["drops_by_reason"][reason].as_u64().unwrap_or(0)
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

/// `pollfwdctl --socket SOCK call CMD ARGS`: the reply's data (printed as JSON), or the exit
/// code and what pollfwdctl printed on stderr.
pub fn ctl_call(sock: &Path, cmd: &str, args: &str) -> Result<Value, (i32, String)> {
    let out = ctl(sock, &["call", cmd, args]);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "pollfwdctl call {cmd}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        }))
    } else {
        Err((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

/// [`ctl_call`] that must succeed: the reply's data.
pub fn ctl_call_ok(sock: &Path, cmd: &str, args: &str) -> Value {
    ctl_call(sock, cmd, args)
        .unwrap_or_else(|(rc, e)| panic!("pollfwdctl call {cmd} {args}: exit {rc}: {e}"))
}

/// A client connection to pollfwd's control socket (docs/control-protocol.md): one JSON
/// request line, one JSON reply line. Replies are awaited at most 10 s.
pub struct Control {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Control {
    /// Connects; an error while the socket does not accept connections (yet).
    pub fn try_connect(sock: &Path) -> std::io::Result<Control> {
        let w = UnixStream::connect(sock)?;
        w.set_read_timeout(Some(Duration::from_secs(10)))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Control { w, r })
    }

    /// Connects; panics if the socket does not accept.
    pub fn connect(sock: &Path) -> Control {
        Control::try_connect(sock).unwrap_or_else(|e| panic!("{}: {e}", sock.display()))
    }

    pub fn set_read_timeout(&self, d: Duration) {
        self.w.set_read_timeout(Some(d)).unwrap();
    }

    /// Sends `line` and a newline.
    pub fn send_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.w.write_all(line)?;
        self.w.write_all(b"\n")
    }

    /// Reads one reply line ("" at end of file).
    pub fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        Ok(line)
    }

    /// Sends `line` (any bytes, for protocol tests) and returns the parsed reply.
    pub fn send(&mut self, line: &[u8]) -> Value {
        self.send_line(line).unwrap();
        let reply = self.read_line().unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply not JSON ({e}): {reply:?}"))
    }

    /// One request: the whole reply (`ok`, `data` or `error`, `id`, `v`).
    pub fn request(&mut self, cmd: &str, args: Value) -> Value {
        let req = json!({"v": 1, "id": 1, "cmd": cmd, "args": args});
        self.send(req.to_string().as_bytes())
    }

    /// One request that must succeed: the reply's data.
    pub fn call(&mut self, cmd: &str, args: Value) -> Value {
        let v = self.request(cmd, args);
        assert_eq!(v["ok"], true, "{cmd}: {v}");
        v["data"].clone()
    }
}

/// One request on a fresh control-socket connection: the reply's data, or its error text
/// (or why the socket could not be reached or answered).
pub fn control_call(sock: &Path, cmd: &str, args: Value) -> Result<Value, String> {
    let mut c = Control::try_connect(sock).map_err(|e| e.to_string())?;
    let req = json!({"v": 1, "id": 1, "cmd": cmd, "args": args});
    c.send_line(req.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let line = c.read_line().map_err(|e| e.to_string())?;
    let r: Value = serde_json::from_str(&line).map_err(|e| format!("{cmd}: {e}: {line}"))?;
    if r["ok"] == true {
        Ok(r["data"].clone())
    } else {
        Err(r["error"].as_str().unwrap_or_default().to_string())
    }
}

/// [`control_call`] that must succeed: the reply's data.
pub fn control_ok(sock: &Path, cmd: &str, args: Value) -> Value {
    control_call(sock, cmd, args.clone()).unwrap_or_else(|e| panic!("{cmd} {args}: {e}"))
}

/// Waits (bounded, 20 s) until the control socket answers `version`.
pub fn wait_answering(sock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while control_call(sock, "version", json!({})).is_err() {
        assert!(
            Instant::now() < deadline,
            "pollfwd's control socket {} did not answer",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fails the test unless it runs as root: `what` says what needs it. Root-only tests fail
/// clearly instead of passing without having run.
pub fn require_root(what: &str) {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    assert!(
        out.stdout == b"0\n",
        "needs root: {what} (run the tests as root)"
    );
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

/// Runs `steps` against a running pollfwd, then stops it whatever happened (SIGTERM, then at
/// most `secs` to exit). A failed step fails the test as it failed, with pollfwd's stdout and
/// stderr printed. Returns pollfwd's output: the caller checks the exit code and summary.
pub fn run_then_stop(child: Child, secs: u64, steps: impl FnOnce()) -> Output {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(steps));
    // Not `signal`: pollfwd may have exited already, which the output below then shows.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let out = wait_with_deadline(child, secs);
    if let Err(e) = res {
        eprintln!(
            "pollfwd stdout:\n{}\npollfwd stderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::panic::resume_unwind(e);
    }
    out
}

/// [`run_then_stop`], then pollfwd's exit code must be 0 (its stderr printed otherwise).
pub fn run_then_stop_ok(child: Child, secs: u64, steps: impl FnOnce()) -> Output {
    let out = run_then_stop(child, secs, steps);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
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
