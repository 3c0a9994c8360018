//! TCP MSS clamping with real Linux hosts: a client (namespace pfsi-<pid>, 10.0.0.2/24) and a
//! server (pfso-<pid>, 198.51.100.2/24), both on 1500-byte veths that announce MSS 1460, each
//! joined by a veth pair to the router namespace (pfsr-<pid>) where pollfwd runs
//! `["forward"]` on `net_af_packet` ports, the server's port with `mss_clamp = 1200`. TCP
//! timestamps are off in the hosts, so the MSS a connected socket reports (`TCP_MAXSEG`) is
//! the MSS the peer announced, whole: both ends report 1200 (the client's SYN was clamped on
//! its way out, the server's SYN-ACK on its way in), a 1 MB transfer completes, and
//! `mss_clamped` counts both segments.
//!
//! Needs root, iproute2, ethtool, python3. Addresses: RFC 1918 10.0.0.0/24, RFC 5737
//! 198.51.100.0/24, in these namespaces only; deleted when the test ends, pass or fail.

mod common;

use std::time::Duration;

use common::netns::*;
use common::*;
use serde_json::{Value, json};

/// TCP server: accepts one connection, reads to EOF, answers "len=N mss=M" (M: TCP_MAXSEG of
/// the connection, the MSS the client announced as it arrived), exits.
const TCP_SERVER: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); s.settimeout(30)
c, a = s.accept(); c.settimeout(30); n = 0
mss = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
c.sendall(f"len={n} mss={mss}".encode()); c.close()
"#;

/// TCP client: connects, prints "client_mss=M", sends N bytes, half-closes, prints the answer.
const TCP_CLIENT: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
print(f"client_mss={c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)}")
c.sendall(bytes((i * 7 + 3) & 255 for i in range(int(sys.argv[3])))); c.shutdown(socket.SHUT_WR)
r = b""
while True:
    b = c.recv(4096)
    if not b: break
    r += b
print(r.decode())
"#;

#[test]
fn a_tcp_connection_through_the_box_uses_the_clamped_mss() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ethtool", "python3"] {
        assert!(have(t), "'{t}' is missing: run scripts/install-deps.sh");
    }
    let lab = Lab::new("mss-netns");
    let pid = std::process::id();
    let (ni, no, nr) = (
        format!("pfsi-{pid}"),
        format!("pfso-{pid}"),
        format!("pfsr-{pid}"),
    );
    let _g = busy_lock();
    let _ns = Netns::create(&[ni.clone(), no.clone(), nr.clone()]);
    wire_hosts_to_router(&nr, &[(&ni, "pfsi"), (&no, "pfso")]);
    for (ns, dev, addr, gw) in [
        (&ni, "pfsi0", "10.0.0.2/24", "10.0.0.1"),
        (&no, "pfso0", "198.51.100.2/24", "198.51.100.1"),
    ] {
        host_link(ns, dev, addr, Some(gw));
        // Without timestamps TCP_MAXSEG is the announced MSS itself (not 12 bytes less).
        ns_ok(ns, &["sysctl", "-qw", "net.ipv4.tcp_timestamps=0"]);
    }
    let sock = lab.path("ctl.sock");
    let cfg = lab.write(
        "pollfwd.toml",
        &format!(
            r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 1024

[[port]]
name = "in"
device = "net_af_packet0,iface=pfsi1"
address = "10.0.0.1/24"

[[port]]
name = "out"
device = "net_af_packet1,iface=pfso1"
address = "198.51.100.1/24"
mss_clamp = 1200

[[lcore]]
id = 1
rx = [{{ port = "in" }}, {{ port = "out" }}]
stages = ["forward"]

[control]
socket = "{sock}"
"#,
            prefix = lab.prefix(),
            sock = sock.display()
        ),
    );
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    wait_answering(&sock);
    std::thread::sleep(Duration::from_millis(300));

    let out = run_then_stop(child, 30, || {
        let server = ns_spawn(&no, &["python3", "-c", TCP_SERVER, "5001"]);
        wait_listening(&no, 5001);
        let out = ns_ok(
            &ni,
            &[
                "python3",
                "-c",
                TCP_CLIENT,
                "198.51.100.2",
                "5001",
                "1000000",
            ],
        );
        let so = server.wait_with_output().unwrap();
        assert!(
            so.status.success(),
            "{}",
            String::from_utf8_lossy(&so.stderr)
        );
        assert_eq!(field(&out, "len="), "1000000", "{out}");
        // Each end announced 1460; each got the other's SYN with 1200.
        assert_eq!(field(&out, "mss="), "1200", "server side: {out}");
        assert_eq!(field(&out, "client_mss="), "1200", "client side: {out}");
        let s = control_call(&sock, "forward.stats", json!({})).unwrap();
        assert!(s["totals"]["mss_clamped"].as_u64().unwrap() >= 2, "{s}");
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        s["totals"]["drops_by_reason"]["tx_full"].as_u64(),
        None,
        "{s}"
    );
}
