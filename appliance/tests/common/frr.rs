//! FRR daemons for the tests that run routing protocols through pollfwd (Debian's `frr`
//! package): started in a namespace with their config, pid file, vty socket and log in a lab
//! directory, stopped when the guard drops; `vtysh` against them; and keeping the router
//! namespace's kernel off the af_packet veths so traffic for the box takes pollfwd's punt path.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::netns::{ns_ok, ns_run};

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
