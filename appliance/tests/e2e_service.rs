//! pollfwd as a service: bounded shutdown (a worker that does not stop; a second signal), the
//! control socket path that is not a socket, systemd's readiness protocol (READY=1 only once
//! the ports are up and the control socket answers), the systemd unit
//! (`packaging/pollfwd.service`: `systemd-analyze verify`, and a real start where systemd is
//! PID 1).
//!
//! A worker that does not stop is made for real, without a hook in pollfwd: a small tracer
//! (python3 and ptrace, as a debugger does) stops the worker lcore's thread, and only that
//! thread, before pollfwd is signalled.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// The shipped service configuration (`configs/pollfwd.toml`: two net_null ports, one worker
/// on lcore 1) with this lab's file prefix and control socket and no control group.
fn service_config(lab: &Lab) -> PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/pollfwd.toml"
    ))
    .unwrap();
    let sock = lab.path("ctl.sock");
    let text = text
        .replace(
            "file_prefix = \"pollfwd\"",
            &format!("file_prefix = \"{}\"", lab.prefix()),
        )
        .replace("/run/pollfwd/pollfwd.sock", sock.to_str().unwrap())
        .replace("group = \"pollfwd\"", "");
    assert!(text.contains(&lab.prefix()) && !text.contains("group ="));
    lab.write("pollfwd.toml", &text)
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn control_socket_path_that_is_a_regular_file_is_refused_before_eal_and_kept() {
    let lab = Lab::new("sockfile");
    let cfg = service_config(&lab);
    let sock = lab.path("ctl.sock");
    std::fs::write(&sock, "an operator's file\n").unwrap();
    let out = lab.run(&["--config", cfg.to_str().unwrap()]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}: exists and is not a socket (a regular file)",
            sock.display()
        )),
        "{err}"
    );
    // Refused before EAL started: DPDK printed nothing.
    assert!(!err.contains("EAL:"), "EAL was started: {err}");
    assert_eq!(
        std::fs::read_to_string(&sock).unwrap(),
        "an operator's file\n"
    );
    // A directory there is refused the same way, and stays.
    std::fs::remove_file(&sock).unwrap();
    std::fs::create_dir(&sock).unwrap();
    let out = lab.run(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("is not a socket (a directory)"));
    assert!(sock.is_dir());
}

#[test]
fn a_control_group_that_does_not_exist_is_refused_before_eal() {
    let lab = Lab::new("nogroup");
    let cfg = service_config(&lab);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[control]\n",
        "[control]\ngroup = \"pollfwd-no-such-group\"\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let out = lab.run(&["--config", cfg.to_str().unwrap()]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "pollfwd: control socket: [control] group 'pollfwd-no-such-group' does not exist"
        ),
        "{err}"
    );
    assert!(!err.contains("EAL:"), "EAL was started: {err}");
}

/// The thread id of the worker of `lcore` in process `pid` (DPDK names it `rte-worker-N`).
fn worker_tid(pid: u32, lcore: u32) -> u32 {
    let want = format!("rte-worker-{lcore}");
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let e = e.unwrap();
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == want {
            return e.file_name().to_str().unwrap().parse().unwrap();
        }
    }
    panic!("no thread {want} in process {pid}");
}

/// Stops one thread with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT: that thread only, the rest
/// of the process runs on), keeps it stopped, and reaps it when the process exits.
const STALL_PY: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid = int(sys.argv[1])
for req, what in ((0x4206, "PTRACE_SEIZE"), (0x4207, "PTRACE_INTERRUPT")):
    if libc.ptrace(req, tid, None, None) != 0:
        sys.exit("%s %d: %s" % (what, tid, os.strerror(ctypes.get_errno())))
os.waitpid(tid, 0x40000000)
print("stopped", flush=True)
while True:
    try:
        _, st = os.waitpid(tid, 0x40000000)
    except ChildProcessError:
        break
    if os.WIFEXITED(st) or os.WIFSIGNALED(st):
        break
"#;

/// A tracer holding one thread of pollfwd stopped; killed at drop.
struct Stall(Child);

impl Stall {
    fn thread(tid: u32) -> Stall {
        let mut c = Command::new("python3")
            .arg("-c")
            .arg(STALL_PY)
            .arg(tid.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (scripts/install-deps.sh installs it)");
        let mut line = String::new();
        BufReader::new(c.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "stopped",
            "the tracer could not stop thread {tid}"
        );
        let state = std::fs::read_to_string(format!("/proc/{tid}/status")).unwrap();
        assert!(
            state.contains("State:\tt"),
            "thread {tid} not stopped:\n{state}"
        );
        Stall(c)
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts pollfwd on the service config with a JSON summary and stops its worker (lcore 1).
/// The watchdog only reports the stall (`degraded`): the run ends on the test's signals.
fn start_and_stall(lab: &Lab) -> (Child, Stall) {
    let cfg = service_config(lab);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[runtime]\non_worker_failure = \"degraded\"\n");
    std::fs::write(&cfg, text).unwrap();
    let mut child = lab.spawn(&["--config", cfg.to_str().unwrap(), "--summary", "json"]);
    wait_for_socket(&lab.path("ctl.sock"), &mut child);
    let stall = Stall::thread(worker_tid(child.id(), 1));
    (child, stall)
}

/// The forced exit's output: exit code 1, the worker named, and the summary on stdout.
fn assert_forced(out: &std::process::Output, why: &str) {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "pollfwd: {why}: lcore 1 still running, forcing the exit"
        )),
        "{err}"
    );
    assert!(
        err.contains("pollfwd: forced exit: lcore 1 did not stop"),
        "{err}"
    );
    let s: Value = serde_json::from_slice(&out.stdout).expect("JSON summary on stdout");
    assert_eq!(s["ports"].as_array().unwrap().len(), 2, "{s}");
    assert_eq!(s["lcores"][0]["lcore"], 1, "{s}");
}

#[test]
fn second_signal_ends_a_run_whose_worker_does_not_stop() {
    let lab = Lab::new("sig2");
    let _g = busy_lock();
    let (child, _stall) = start_and_stall(&lab);
    signal(&child, "TERM");
    // The worker cannot stop: shutdown waits...
    std::thread::sleep(Duration::from_millis(700));
    let mut child = child;
    assert!(
        child.try_wait().unwrap().is_none(),
        "pollfwd exited although its worker could not stop"
    );
    // ...until the second signal, which ends it at once.
    let t = Instant::now();
    signal(&child, "INT");
    let out = wait_with_deadline(child, 10);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "second signal took {:?}",
        t.elapsed()
    );
    assert_forced(&out, "second signal");
}

#[test]
fn a_worker_that_does_not_stop_forces_the_exit_after_5_s() {
    let lab = Lab::new("grace");
    let _g = busy_lock();
    let (child, _stall) = start_and_stall(&lab);
    let t = Instant::now();
    signal(&child, "TERM");
    let out = wait_with_deadline(child, 20);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(4900) && took < Duration::from_secs(8),
        "forced after {took:?}, expected 5 s"
    );
    assert_forced(&out, "not stopped within 5 s");
}

#[test]
fn a_stalled_worker_ends_the_run_by_itself_watchdog_then_forced_exit() {
    // Default policy (on_worker_failure = "exit"): no signal at all. The watchdog sees the
    // stall and stops pollfwd; the worker cannot stop, so the exit is forced 5 s later: a
    // supervisor (systemd's Restart=on-failure) gets exit status 1 instead of a hung process.
    let lab = Lab::new("wdstall");
    let cfg = service_config(&lab);
    let _g = busy_lock();
    let mut child = lab.spawn(&["--config", cfg.to_str().unwrap(), "--summary", "json"]);
    wait_for_socket(&lab.path("ctl.sock"), &mut child);
    let t = Instant::now();
    let _stall = Stall::thread(worker_tid(child.id(), 1));
    let out = wait_with_deadline(child, 30);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(10),
        "ended after {took:?}"
    );
    let err = stderr_of(&out);
    assert!(err.contains("lcore 1 (worker 0) stalled"), "{err}");
    assert_forced(&out, "not stopped within 5 s");
}

/// Receives one sd_notify datagram (at most `secs` to wait).
fn recv_notify(sock: &UnixDatagram, secs: u64) -> String {
    sock.set_read_timeout(Some(Duration::from_secs(secs)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no sd_notify message within {secs} s: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_is_notified_only_once_ports_are_up_and_the_control_socket_answers() {
    let lab = Lab::new("notify");
    let cfg = service_config(&lab);
    let notify_path = lab.path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let _g = busy_lock();
    let child = Command::new(bin("pollfwd"))
        .args(["--config", cfg.to_str().unwrap(), "--summary", "json"])
        .env("NOTIFY_SOCKET", &notify_path)
        .current_dir(&lab.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = recv_notify(&notify, 30);
    // The moment READY=1 arrives, everything it promises is there: no retry here.
    let sock = lab.path("ctl.sock");
    let ports = control_call(&sock, "ports", json!({}));
    let lcores = control_call(&sock, "lcores", json!({}));
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "first message is not READY=1: {ready:?}"
    );
    assert!(
        ready
            .lines()
            .any(|l| l == "STATUS=forwarding: 2 port(s), 1 worker lcore(s)"),
        "{ready:?}"
    );
    let ports = ports.expect("control socket answers when READY=1 is sent");
    assert_eq!(ports.as_array().unwrap().len(), 2, "{ports}");
    for p in ports.as_array().unwrap() {
        assert_eq!(p["link_up"], true, "port not up at READY=1: {p}");
    }
    lcores.expect("lcores answers when READY=1 is sent");
    // pollfwdctl, as an operator would use it against the service.
    let out = ctl(&sock, &["stats"]);
    assert!(out.status.success(), "{}", stderr_of(&out));

    signal(&child, "TERM");
    let stopping = recv_notify(&notify, 10);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let out = wait_with_deadline(child, 20);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let s: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(s["ports"].as_array().unwrap().len(), 2);
}

/// `systemd-analyze verify` on a root directory that holds the unit, the binaries at the
/// unit's paths (the ones just built) and the system's own units (verify resolves
/// dependencies such as sysinit.target there). `--man=no`: `Documentation=man:pollfwdctl(1)`
/// names a page the package installs, not this machine.
fn verify_unit(unit_text: &str) -> std::process::Output {
    let root = std::env::temp_dir().join(format!("pollfwd-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["usr/bin", "etc/systemd/system", "usr/lib/systemd"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for b in ["pollfwd", "pollfwdctl"] {
        std::fs::copy(bin(b), root.join("usr/bin").join(b)).unwrap();
    }
    std::fs::write(root.join("etc/systemd/system/pollfwd.service"), unit_text).unwrap();
    let st = Command::new("cp")
        .args(["-a", "/usr/lib/systemd/system"])
        .arg(root.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .arg("pollfwd.service")
        .output()
        .expect("systemd-analyze (package systemd; scripts/install-deps.sh installs it)");
    std::fs::remove_dir_all(&root).unwrap();
    out
}

fn unit_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/pollfwd.service"
    ))
    .unwrap()
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let unit = unit_text();
    let out = verify_unit(&unit);
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr_of(&out)
    );
    for key in [
        "Type=notify",
        "ExecStart=/usr/bin/pollfwd --config /etc/pollfwd/pollfwd.toml",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "LimitMEMLOCK=infinity",
        "RuntimeDirectory=pollfwd",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=CAP_IPC_LOCK CAP_NET_RAW CAP_NET_ADMIN",
        "ReadWritePaths=/run/dpdk -/dev/hugepages",
    ] {
        assert!(unit.lines().any(|l| l == key), "unit lacks {key}");
    }
    // The check can fail: a misspelt directive is reported.
    let bad = verify_unit(&unit.replace("ProtectHome=yes", "ProtectHome=yes\nProtectHom=yes"));
    assert!(
        stderr_of(&bad).contains("Unknown key 'ProtectHom'"),
        "{}",
        stderr_of(&bad)
    );
}

/// Runs a command that must succeed; its stdout.
fn must(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", stderr_of(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
#[ignore = "needs systemd as PID 1 (systemctl is-system-running answers): run it on a VM or a box"]
fn systemd_starts_the_unit_and_reaches_ready() {
    common::require_root("installs a unit into /run/systemd/system");
    // The unit as shipped, under its own name, with the binaries just built and a config that
    // sits where the sandbox lets it be read (/var/lib; /tmp is private to the service).
    let dir = Path::new("/var/lib/pollfwd-e2e");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for b in ["pollfwd", "pollfwdctl"] {
        std::fs::copy(bin(b), dir.join(b)).unwrap();
    }
    let lab = Lab::new("systemd");
    let cfg_text = std::fs::read_to_string(service_config(&lab))
        .unwrap()
        .replace(
            lab.path("ctl.sock").to_str().unwrap(),
            "/run/pollfwd-e2e/pollfwd.sock",
        )
        .replace("[control]\n", "[control]\ngroup = \"pollfwd\"\n");
    std::fs::write(dir.join("pollfwd.toml"), cfg_text).unwrap();
    let unit = unit_text()
        .replace("/usr/bin/", "/var/lib/pollfwd-e2e/")
        .replace(
            "/etc/pollfwd/pollfwd.toml",
            "/var/lib/pollfwd-e2e/pollfwd.toml",
        )
        .replace("/run/pollfwd/", "/run/pollfwd-e2e/")
        .replace("RuntimeDirectory=pollfwd", "RuntimeDirectory=pollfwd-e2e");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging");
    must(Command::new("systemd-sysusers").arg(format!("{root}/pollfwd.sysusers")));
    must(Command::new("systemd-tmpfiles").args(["--create", &format!("{root}/pollfwd.tmpfiles")]));
    std::fs::write("/run/systemd/system/pollfwd-e2e.service", unit).unwrap();
    must(Command::new("systemctl").arg("daemon-reload"));
    let _g = busy_lock();
    // Type=notify: `start` returns once READY=1 arrived (or fails).
    let started = Command::new("systemctl")
        .args(["start", "pollfwd-e2e.service"])
        .output()
        .unwrap();
    let state = must(Command::new("systemctl").args([
        "show",
        "-p",
        "ActiveState",
        "--value",
        "pollfwd-e2e.service",
    ]));
    let stats = ctl(Path::new("/run/pollfwd-e2e/pollfwd.sock"), &["stats"]);
    let _ = Command::new("systemctl")
        .args(["stop", "pollfwd-e2e.service"])
        .status();
    let after = must(Command::new("systemctl").args([
        "show",
        "-p",
        "ActiveState",
        "--value",
        "pollfwd-e2e.service",
    ]));
    let log = Command::new("journalctl")
        .args(["-u", "pollfwd-e2e.service", "-n", "40", "--no-pager"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let _ = std::fs::remove_file("/run/systemd/system/pollfwd-e2e.service");
    let _ = Command::new("systemctl").arg("daemon-reload").status();
    let _ = std::fs::remove_dir_all(dir);
    assert!(
        started.status.success(),
        "start failed: {}\n{log}",
        stderr_of(&started)
    );
    assert_eq!(state, "active", "{log}");
    assert!(
        stats.status.success(),
        "pollfwdctl stats: {}\n{log}",
        stderr_of(&stats)
    );
    assert_eq!(after, "inactive", "not stopped cleanly: {log}");
}
