//! NAT44 with real Linux hosts: an inside host (namespace pfni-<pid>, 10.0.0.2/24) and an
//! outside server (pfno-<pid>, 192.0.2.2/24), each joined by a veth pair to the router
//! namespace (pfnr-<pid>) where pollfwd runs `["nat", "forward"]` on `net_af_packet` ports.
//! The pool address 192.0.2.100 and the port forward 192.0.2.101:80/tcp -> 10.0.0.2:8080 are
//! on the outside network; the forward stage answers ARP for them (proxy ARP, set up from
//! `[nat]` alone: the config has no `[forward] proxy_arp`).
//!
//! Checked: a 1 MB TCP transfer and a UDP exchange from the inside host to the outside server,
//! which sees the pool address as the peer; ping and traceroute through the NAT; an outside
//! client reaching the inside server through the port forward (the server sees the client's
//! real address); NAT's counters over the control socket.
//!
//! Needs root (namespaces, veths), iproute2, ethtool, ping, traceroute, python3 (the servers and clients
//! are a few lines of Python, inside the namespaces); without root or a tool it fails and says
//! which.
//! Addresses: RFC 1918 10.0.0.0/24 inside, RFC 5737 192.0.2.0/24 outside, in these
//! namespaces only; they are deleted when the test ends, pass or fail.

mod common;

use std::time::Duration;

use common::netns::*;
use common::*;
use serde_json::{Value, json};

/// UDP server: answers one datagram with "peer=IP:PORT got=<payload>", exits.
const UDP_SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[1]))); s.settimeout(30)
b, a = s.recvfrom(2048)
s.sendto(f"peer={a[0]}:{a[1]} got={b.decode()}".encode(), a)
"#;

/// UDP client: sends, waits for the answer (retrying), prints it.
const UDP_CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
for _ in range(10):
    s.sendto(b"hello", (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recvfrom(2048)[0].decode()); break
    except socket.timeout:
        pass
"#;

/// A connected UDP socket with IP_RECVERR (11) sends one datagram and reports the error the
/// kernel matched to it: `errno=N`, or `got` if an answer came.
const UDP_UNREACHABLE: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_IP, 11, 1)
s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b"x")
try:
    s.recv(100)
    print("got")
except socket.timeout:
    print("errno=timeout")
except OSError as e:
    print("errno=%d" % e.errno)
"#;

#[test]
fn nat_real_hosts_tcp_udp_ping_and_port_forward() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ping", "traceroute", "ethtool", "python3"] {
        assert!(
            have(t),
            "'{t}' is missing: run scripts/install-deps.sh (iproute2 iputils-ping traceroute ethtool python3)"
        );
    }
    let lab = Lab::new("nat-netns");
    let pid = std::process::id();
    let (ni, no, nr) = (
        format!("pfni-{pid}"),
        format!("pfno-{pid}"),
        format!("pfnr-{pid}"),
    );
    let _g = busy_lock();
    let _ns = Netns::create(&[ni.clone(), no.clone(), nr.clone()]);
    wire_hosts_to_router(&nr, &[(&ni, "pfni"), (&no, "pfno")]);
    // The inside host routes everything via the appliance; the outside server knows only its
    // own network (it must never need a route to 10.0.0.0/24).
    host_link(&ni, "pfni0", "10.0.0.2/24", Some("10.0.0.1"));
    host_link(&no, "pfno0", "192.0.2.2/24", None);
    let sock = lab.path("ctl.sock");
    let cfg = lab.write(
        "pollfwd.toml",
        &format!(
            r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 4095

[[port]]
name = "in"
device = "net_af_packet0,iface=pfni1"
address = "10.0.0.1/24"

[[port]]
name = "out"
device = "net_af_packet1,iface=pfno1"
address = "192.0.2.1/24"

[[lcore]]
id = 1
rx = [{{ port = "in" }}, {{ port = "out" }}]
stages = ["nat", "forward"]

[nat]
inside = ["in"]
outside = ["out"]
pool = ["192.0.2.100"]
static = [{{ outside = "192.0.2.101:80", inside = "10.0.0.2:8080", proto = "tcp" }}]

[control]
socket = "{sock}"
"#,
            prefix = lab.prefix(),
            sock = sock.display()
        ),
    );
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 90);
    wait_answering(&sock);
    std::thread::sleep(Duration::from_millis(300));

    let out = run_then_stop(child, 30, || {
        // 1. Ping the outside server through the NAT (ICMP query identifier mapping).
        let o = ns_ok(
            &ni,
            &["ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.2"],
        );
        assert!(o.contains("3 packets transmitted, 3 received"), "{o}");

        // 2. TCP: 1 MB from the inside host; the server sees the pool address.
        let server = ns_spawn(&no, &["python3", "-c", TCP_SERVER, "5001"]);
        wait_listening(&no, 5001);
        let out = ns_ok(
            &ni,
            &["python3", "-c", TCP_CLIENT, "192.0.2.2", "5001", "1000000"],
        );
        let so = server.wait_with_output().unwrap();
        assert!(
            so.status.success(),
            "{}",
            String::from_utf8_lossy(&so.stderr)
        );
        let peer = field(&out, "peer=");
        assert!(peer.starts_with("192.0.2.100:"), "server saw {peer}: {out}");
        assert_eq!(field(&out, "len="), "1000000", "{out}");

        // 3. UDP exchange: the server sees and answers the pool address.
        let server = ns_spawn(&no, &["python3", "-c", UDP_SERVER, "5353"]);
        std::thread::sleep(Duration::from_millis(400));
        let out = ns_ok(&ni, &["python3", "-c", UDP_CLIENT, "192.0.2.2", "5353"]);
        let so = server.wait_with_output().unwrap();
        assert!(
            so.status.success(),
            "{}",
            String::from_utf8_lossy(&so.stderr)
        );
        assert!(field(&out, "peer=").starts_with("192.0.2.100:"), "{out}");
        assert_eq!(field(&out, "got="), "hello");

        // 4. Port forward: the outside client reaches the inside server, which sees the
        //    client's own address.
        let server = ns_spawn(&ni, &["python3", "-c", TCP_SERVER, "8080"]);
        wait_listening(&ni, 8080);
        let out = ns_ok(
            &no,
            &["python3", "-c", TCP_CLIENT, "192.0.2.101", "80", "20000"],
        );
        let so = server.wait_with_output().unwrap();
        assert!(
            so.status.success(),
            "{}",
            String::from_utf8_lossy(&so.stderr)
        );
        assert!(field(&out, "peer=").starts_with("192.0.2.2:"), "{out}");
        assert_eq!(field(&out, "len="), "20000");

        // 5. traceroute (UDP probes) through the NAT: hop 1 is the appliance (the probe whose
        //    TTL expires there is left untranslated), hop 2 the server, whose port
        //    unreachable comes back through NAT with its embedded header translated.
        let t = ns_ok(
            &ni,
            &[
                "traceroute",
                "-n",
                "-q",
                "1",
                "-w",
                "2",
                "-m",
                "4",
                "192.0.2.2",
            ],
        );
        let hops: Vec<Vec<&str>> = t
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(hops.len(), 2, "{t}");
        assert_eq!(&hops[0][..2], &["1", "10.0.0.1"], "{t}");
        assert_eq!(&hops[1][..2], &["2", "192.0.2.2"], "{t}");

        // 5b. An unrouted destination: the appliance's "net unreachable" about the translated
        //     datagram reaches the inside host (not the pool address), and quotes the datagram
        //     as the host sent it, so ping shows it and the kernel hands it to the UDP socket
        //     that sent the datagram (ENETUNREACH, errno 101, with IP_RECVERR).
        let o = ns_run(&ni, &["ping", "-c", "1", "-W", "2", "203.0.113.99"]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("From 10.0.0.1 icmp_seq=1 Destination Net Unreachable"),
            "{text}"
        );
        let out = ns_ok(
            &ni,
            &["python3", "-c", UDP_UNREACHABLE, "203.0.113.99", "5353"],
        );
        assert_eq!(field(&out, "errno="), "101", "{out}");

        // 6. NAT's view.
        let s = control_call(&sock, "nat.summary", json!({})).unwrap();
        let c = &s["workers"][0]["counters"];
        assert!(c["in2out"].as_u64().unwrap() > 100, "{s}");
        assert!(c["out2in"].as_u64().unwrap() > 100, "{s}");
        assert!(c["icmp_errors"].as_u64().unwrap() >= 1, "{s}");
        assert!(s["sessions"].as_u64().unwrap() >= 4, "{s}");
        let l = control_call(&sock, "nat.sessions", json!({"inside": "10.0.0.2"})).unwrap();
        let l = l.as_array().unwrap();
        assert!(
            l.iter()
                .any(|x| x["proto"] == "udp" && x["remote"] == "192.0.2.2:5353"),
            "{l:?}"
        );
        assert!(
            l.iter()
                .any(|x| x["static"] == true && x["outside"] == "192.0.2.101:80"),
            "{l:?}"
        );
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        s["totals"]["drops_by_reason"]["nat_no_session"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{s}"
    );
}
