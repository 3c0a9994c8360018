//! Helpers of the tests that put real Linux hosts in network namespaces around pollfwd:
//! commands (in a namespace or not), a guard that deletes the namespaces it created when the
//! test ends, pass or fail (deleting a namespace deletes its veth ends).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use super::{Lab, bin};

/// Runs a command; panics only if it cannot be started.
pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")))
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{} failed ({:?}):\n{}{}",
        args.join(" "),
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn in_ns<'a>(ns: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["ip", "netns", "exec", ns];
    a.extend_from_slice(cmd);
    a
}

/// Runs `cmd` inside namespace `ns`.
pub fn ns_run(ns: &str, cmd: &[&str]) -> Output {
    run(&in_ns(ns, cmd))
}

/// Runs `cmd` inside namespace `ns`; it must succeed.
pub fn ns_ok(ns: &str, cmd: &[&str]) -> String {
    ok(&in_ns(ns, cmd))
}

/// Starts `cmd` inside namespace `ns` in the background (stdout/stderr piped).
pub fn ns_spawn(ns: &str, cmd: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Namespaces created for one test; deleted on drop (also when the test panics).
pub struct Netns {
    names: Vec<String>,
}

impl Netns {
    pub fn create(names: &[String]) -> Netns {
        for n in names {
            let _ = run(&["ip", "netns", "del", n]); // a leftover of this pid, if any
        }
        let me = Netns {
            names: names.to_vec(),
        };
        for n in names {
            ok(&["ip", "netns", "add", n]);
        }
        me
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = run(&["ip", "netns", "del", n]);
        }
    }
}

/// Waits (bounded, 10 s) until a TCP socket listens on `port` in namespace `ns`: a server
/// started with [`ns_spawn`] is ready for its client, however slow the start was.
#[allow(dead_code)]
pub fn wait_listening(ns: &str, port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let want = format!(":{port} ");
    loop {
        let o = ns_run(ns, &["ss", "-Htln"]);
        if String::from_utf8_lossy(&o.stdout).contains(&want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on TCP port {port} in {ns}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts pollfwd on `cfg` inside namespace `ns` (in the lab's directory, stdout/stderr
/// piped) with a JSON summary, for at most `secs` (a backstop: the test stops it).
pub fn spawn_pollfwd_in(ns: &str, lab: &Lab, cfg: &Path, secs: u64) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(bin("pollfwd"))
        .args(["--config", cfg.to_str().unwrap(), "--duration"])
        .arg(secs.to_string())
        .args(["--summary", "json"])
        .current_dir(&lab.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pollfwd")
}

/// A host's link: `addr` (with its prefix) on `dev` in namespace `ns`, the link up, and a
/// default route via `gw` when given.
#[allow(dead_code)]
pub fn host_link(ns: &str, dev: &str, addr: &str, gw: Option<&str>) {
    ns_ok(ns, &["ip", "addr", "add", addr, "dev", dev]);
    ns_ok(ns, &["ip", "link", "set", dev, "up"]);
    if let Some(gw) = gw {
        ns_ok(ns, &["ip", "route", "add", "default", "via", gw]);
    }
}

/// Wires hosts to a router: for each `(ns, p)` of `hosts`, a veth pair with end `<p>0` in host
/// namespace `ns` and end `<p>1` in namespace `router`. Every namespace gets IPv6 off (no
/// router solicitations or DAD in the traffic) and `lo` up; the router's ends are up; the
/// hosts' ends send complete checksums (no TX checksum offload: frames handed to af_packet
/// must carry them, DPDK-NOTES). Addresses, host links and routes are the caller's.
pub fn wire_hosts_to_router(router: &str, hosts: &[(&str, &str)]) {
    for (ns, p) in hosts {
        let (host_end, router_end) = (format!("{p}0"), format!("{p}1"));
        ok(&[
            "ip",
            "link",
            "add",
            &host_end,
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            &router_end,
            "netns",
            router,
        ]);
    }
    for ns in hosts.iter().map(|(ns, _)| *ns).chain([router]) {
        ns_ok(ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        ns_ok(
            ns,
            &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        );
        ns_ok(ns, &["ip", "link", "set", "lo", "up"]);
    }
    for (ns, p) in hosts {
        ns_ok(router, &["ip", "link", "set", &format!("{p}1"), "up"]);
        ns_ok(ns, &["ethtool", "-K", &format!("{p}0"), "tx", "off"]);
    }
}

/// Turns IPv6 on for `dev` in namespace `ns` (after [`wire_hosts_to_router`] turned it off
/// everywhere), without duplicate address detection or router solicitations (no waiting, no
/// stray traffic), and adds `addr` (with its prefix) and a default route via `gw` (a global
/// address, or a link-local one: the route then names `dev`).
#[allow(dead_code)]
pub fn host_link6(ns: &str, dev: &str, addr: &str, gw: Option<&str>) {
    for (k, v) in [
        ("disable_ipv6", "0"),
        ("accept_dad", "0"),
        ("router_solicitations", "0"),
        ("accept_ra", "0"),
    ] {
        ns_ok(
            ns,
            &["sysctl", "-qw", &format!("net.ipv6.conf.{dev}.{k}={v}")],
        );
    }
    ns_ok(ns, &["ip", "-6", "addr", "add", addr, "dev", dev, "nodad"]);
    ns_ok(ns, &["ip", "link", "set", dev, "up"]);
    if let Some(gw) = gw {
        ns_ok(
            ns,
            &["ip", "-6", "route", "add", "default", "via", gw, "dev", dev],
        );
    }
}

/// The modified EUI-64 link-local address of a MAC "aa:bb:cc:dd:ee:ff" (RFC 4291 appendix
/// A), as a Linux host derives it.
#[allow(dead_code)]
pub fn link_local_of(mac: &str) -> String {
    let b: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    format!(
        "fe80::{:x}:{:x}:{:x}:{:x}",
        u16::from_be_bytes([b[0] ^ 2, b[1]]),
        u16::from_be_bytes([b[2], 0xff]),
        u16::from_be_bytes([0xfe, b[3]]),
        u16::from_be_bytes([b[4], b[5]])
    )
}

/// TCP server: accepts one connection, reads to EOF, answers "peer=IP:PORT len=N", exits.
#[allow(dead_code)]
pub const TCP_SERVER: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); s.settimeout(30)
c, a = s.accept(); c.settimeout(30); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
c.sendall(f"peer={a[0]}:{a[1]} len={n}".encode()); c.close()
"#;

/// TCP client: connects, sends N bytes, half-closes, prints the answer.
#[allow(dead_code)]
pub const TCP_CLIENT: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
data = bytes((i * 7 + 3) & 255 for i in range(int(sys.argv[3])))
c.sendall(data); c.shutdown(socket.SHUT_WR)
r = b""
while True:
    b = c.recv(4096)
    if not b: break
    r += b
print(r.decode())
"#;

/// The value after `key` in the whitespace-separated words of `text` ("len=" in "len=42 ok=True");
/// panics naming the key if there is none.
#[allow(dead_code)]
pub fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
}
