//! FRR daemons for the tests that run routing protocols through pollfwd (Debian's `frr`
//! package): started in a namespace with their config, pid file, vty socket and log in a lab
//! directory, stopped when the guard drops; `vtysh` against them; and keeping the router
//! namespace's kernel off the af_packet veths so traffic for the box takes pollfwd's punt path.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::netns::{have, ns_ok, ns_run};
use super::require_root;

/// A running daemon, killed and reaped on drop (also when the test panics).
pub struct Daemon {
    pub child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts FRR daemon `name` (zebra, bgpd, ospfd) in namespace `ns` as FRR's user with its
/// config `conf`, pid file, vty socket and log in `dir` (made here, writable by that user: zebra
/// and ospfd refuse to run as root when root is not in `frrvty`), no vty TCP port, plus `args`.
pub fn frr_daemon(ns: &str, dir: &Path, name: &str, conf: &str, args: &[&str]) -> Daemon {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cfg = dir.join(format!("{name}.conf"));
    std::fs::write(&cfg, conf).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", ns, &format!("/usr/lib/frr/{name}")])
        .args(["-u", "frr", "-g", "frr", "-P", "0"])
        .args(args)
        .arg("-f")
        .arg(&cfg)
        .arg("-i")
        .arg(dir.join(format!("{name}.pid")))
        .arg("--vty_socket")
        .arg(dir)
        .arg("--log")
        .arg(format!(
            "file:{}",
            dir.join(format!("{name}.log")).display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    Daemon { child }
}

/// Root, iproute2, ping, ethtool, vtysh and FRR's `daemons` (e.g. `["zebra", "bgpd"]`), or the
/// test fails saying which is missing.
pub fn require_frr(daemons: &[&str]) {
    require_root("network namespaces and veth pairs");
    let paths: Vec<String> = daemons
        .iter()
        .map(|d| format!("/usr/lib/frr/{d}"))
        .collect();
    for t in ["ip", "ping", "ethtool", "vtysh"]
        .into_iter()
        .chain(paths.iter().map(String::as_str))
    {
        assert!(
            have(t),
            "'{t}' is missing: run scripts/install-deps.sh (it installs frr)"
        );
    }
}

/// zebra in namespace `ns` ([`frr_daemon`], files in `dir`) with its API socket in `dir` and
/// `args`, once that socket exists (10 s at most): the daemon, and the socket's path for the
/// protocol daemons' `-z`.
pub fn zebra(ns: &str, dir: &Path, args: &[&str]) -> (Daemon, String) {
    let zsock = dir.join("zserv.api");
    let z = zsock.to_str().unwrap().to_string();
    let _ = std::fs::remove_file(&zsock);
    let mut a = vec!["-z", z.as_str()];
    a.extend_from_slice(args);
    let d = frr_daemon(ns, dir, "zebra", "hostname router\n", &a);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !zsock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "zebra did not start in {ns}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (d, z)
}

/// `vtysh` with commands `cmds` against the daemons whose vty sockets are in `dir`.
pub fn vtysh(ns: &str, dir: &Path, cmds: &[&str]) -> String {
    let mut a = vec!["vtysh", "--vty_socket", dir.to_str().unwrap()];
    for c in cmds {
        a.extend(["-c", c]);
    }
    let o = ns_run(ns, &a);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Keeps the router namespace's kernel from answering on the af_packet veths itself (ARP,
/// TCP to addresses it learnt elsewhere): traffic for the box must take pollfwd's punt path.
pub fn isolate_router_veths(nr: &str, veths: &[&str]) {
    ns_ok(nr, &["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"]);
    for v in veths {
        for (k, val) in [("rp_filter", "1"), ("arp_ignore", "8")] {
            ns_ok(
                nr,
                &["sysctl", "-qw", &format!("net.ipv4.conf.{v}.{k}={val}")],
            );
        }
    }
}
