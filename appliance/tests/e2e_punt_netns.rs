//! The punt path (`[punt]`, docs/punt.md) with real Linux hosts and real daemons: hosts A and
//! B in their own network namespaces, joined by veth pairs to a router namespace where
//! pollfwd attaches with `net_af_packet` and creates its TAP interfaces (`pf-a`, `pf-b`)
//! carrying the box's addresses. Checked as a user would:
//!
//! - a TCP connection from A to the box's address (IPv4 and IPv6) reaches a listener in the
//!   router namespace, byte for byte both ways, and the TAPs carry the addresses;
//! - a UDP flood to the box's address is rate-limited (punted <= rate * time + burst, the rest
//!   counted as `punt_rate_limited`) while A and B keep talking through the box;
//! - FRR: bgpd in the router namespace peers over the TAP with bgpd in A's namespace through
//!   pollfwd's port; the session reaches Established and A's announced prefix is in the
//!   router's BGP table.
//!
//! Needs root (namespaces, veths), iproute2, iputils-ping, ethtool, python3 and frr
//! (`scripts/install-deps.sh`); without one it fails and says which. Namespaces are
//! pfp{a,b,r}-<pid> / pfq{a,r}-<pid>, removed when the test ends; daemons run with their files
//! in the test's lab directory and are stopped by PID. Addresses: RFC 5737 / RFC 3849 ranges,
//! private AS numbers, inside these namespaces only.

mod common;

use std::time::{Duration, Instant};

use common::frr::{Daemon, frr_daemon, isolate_router_veths, require_frr, vtysh, zebra};
use common::netns::*;
use common::*;
use serde_json::{Value, json};

/// TCP echo server: accepts one connection on (address, port), reads to EOF, sends all of
/// it back, prints "peer=IP len=N".
const ECHO_SERVER: &str = r#"
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(30)
c, a = s.accept(); c.settimeout(30); buf = bytearray()
while True:
    b = c.recv(65536)
    if not b: break
    buf += b
c.sendall(bytes(buf)); c.close()
print(f"peer={a[0]} len={len(buf)}")
"#;

/// TCP client: sends N patterned bytes, half-closes, reads the echo; prints "len=N same=B".
const ECHO_CLIENT: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
data = bytes((i * 7 + 3) & 255 for i in range(int(sys.argv[3])))
c.sendall(data); c.shutdown(socket.SHUT_WR)
r = bytearray()
while True:
    b = c.recv(65536)
    if not b: break
    r += b
print(f"len={len(r)} same={bytes(r) == data}")
"#;

/// UDP flood: sends datagrams to (address, port) for S seconds as fast as it can; prints
/// "sent=N".
const UDP_FLOOD: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + float(sys.argv[3]); n = 0
while time.time() < end:
    for _ in range(100):
        try:
            s.sendto(b"x" * 64, (sys.argv[1], int(sys.argv[2]))); n += 1
        except OSError:
            pass
print(f"sent={n}")
"#;

/// UDP sink: counts datagrams on (address, port) until S seconds pass; prints "got=N".
const UDP_SINK: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(0.2)
end = time.time() + float(sys.argv[3]); n = 0
while time.time() < end:
    try:
        s.recv(2048); n += 1
    except socket.timeout:
        pass
print(f"got={n}")
"#;

/// The kernel's count of ICMP echo requests received in namespace `ns` (`/proc/net/snmp`).
fn kernel_in_echos(ns: &str) -> u64 {
    let t = ns_ok(ns, &["cat", "/proc/net/snmp"]);
    let mut icmp = t.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
    let k = names
        .split_whitespace()
        .position(|w| w == "InEchos")
        .expect("InEchos");
    values.split_whitespace().nth(k).unwrap().parse().unwrap()
}

fn punt(sock: &std::path::Path) -> Value {
    control_call(sock, "stats", json!({})).unwrap()["punt"].clone()
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}"))
}

fn router_config(lab: &Lab, ports: &[(&str, &str, &str)], extra: &str) -> std::path::PathBuf {
    let mut t = format!(
        "[eal]\nfile_prefix = \"{}\"\n\n[mempool]\nmbufs = 4095\n\n",
        lab.prefix()
    );
    let mut rx = Vec::new();
    for (k, (name, veth, addrs)) in ports.iter().enumerate() {
        t += &format!(
            "[[port]]\nname = \"{name}\"\ndevice = \"net_af_packet{k},iface={veth}\"\naddress = {addrs}\n\n"
        );
        rx.push(format!("{{ port = \"{name}\" }}"));
    }
    t += &format!(
        "[[lcore]]\nid = 1\nrx = [{}]\nstages = [\"forward\"]\n\n[control]\nsocket = \"{}\"\n\n{extra}",
        rx.join(", "),
        lab.path("ctl.sock").display()
    );
    lab.write("pollfwd.toml", &t)
}

/// Keeps the router namespace's kernel off the veth ends pollfwd attaches to (with
/// `net_af_packet` the kernel sees their frames too, which a DPDK-owned NIC would not show
/// it): no ARP answers there (`arp_ignore = 1`), and IPv4 to its addresses accepted only from
/// where the route back points, the TAPs (strict `rp_filter`). IPv6 is off on them already.
/// Without this a listener in the router namespace would be reached around pollfwd.
#[test]
fn tcp_to_the_box_reaches_linux_and_a_flood_is_rate_limited() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ping", "ethtool", "python3", "ss"] {
        assert!(have(t), "'{t}' is missing: run scripts/install-deps.sh");
    }
    let lab = Lab::new("punt-netns");
    let pid = std::process::id();
    let [na, nb, nc, nr] = ["a", "b", "c", "r"].map(|n| format!("pfp{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nb.clone(), nc.clone(), nr.clone()]);
    wire_hosts_to_router(&nr, &[(&na, "pfpa"), (&nb, "pfpb"), (&nc, "pfpc")]);
    isolate_router_veths(&nr, &["pfpa1", "pfpb1", "pfpc1"]);
    host_link(&na, "pfpa0", "192.0.2.2/24", Some("192.0.2.1"));
    host_link6(&na, "pfpa0", "2001:db8:1::2/64", Some("2001:db8:1::1"));
    host_link(&nb, "pfpb0", "198.51.100.2/24", Some("198.51.100.1"));
    host_link(&nc, "pfpc0", "203.0.113.2/24", Some("203.0.113.1"));
    let cfg = router_config(
        &lab,
        &[
            ("a", "pfpa1", r#"["192.0.2.1/24", "2001:db8:1::1/64"]"#),
            ("b", "pfpb1", "\"198.51.100.1/24\"\nmtu = 1400"),
            ("c", "pfpc1", r#""203.0.113.1/24""#),
        ],
        "[punt]\nenable = true\nrate_pps = 400\nburst = 20\n",
    );
    let sock = lab.path("ctl.sock");
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);

    let steps = || {
        wait_answering(&sock);
        // The TAPs exist in the router namespace with the box's addresses, MTU and MAC.
        let a = ns_ok(&nr, &["ip", "-o", "addr", "show", "dev", "pf-a"]);
        assert!(a.contains("inet 192.0.2.1/24"), "{a}");
        assert!(a.contains("inet6 2001:db8:1::1/64"), "{a}");
        let b = ns_ok(&nr, &["ip", "-o", "addr", "show", "dev", "pf-b"]);
        assert!(b.contains("inet 198.51.100.1/24"), "{b}");
        let l = ns_ok(&nr, &["ip", "-o", "link", "show", "dev", "pf-b"]);
        assert!(
            l.contains("mtu 1400") && l.contains(",UP"),
            "its interface's MTU, up: {l}"
        );
        let mac_a = ns_ok(&nr, &["cat", "/sys/class/net/pfpa1/address"]);
        let tap_mac = ns_ok(&nr, &["cat", "/sys/class/net/pf-a/address"]);
        assert_eq!(mac_a, tap_mac, "the TAP has its interface's MAC");
        let ifs = control_call(&sock, "interfaces", json!({})).unwrap();
        assert_eq!(ifs[0]["punt"]["tap"], "pf-a", "{ifs}");
        // Not a port of the data plane.
        let ports = control_call(&sock, "ports", json!({})).unwrap();
        assert_eq!(ports.as_array().unwrap().len(), 3, "{ports}");

        // 1. TCP to the box, IPv4 then IPv6: a listener in Linux gets it, byte for byte.
        for (addr, port) in [("192.0.2.1", "5301"), ("2001:db8:1::1", "5302")] {
            let server = ns_spawn(
                &nr,
                &["timeout", "40", "python3", "-c", ECHO_SERVER, addr, port],
            );
            wait_listening(&nr, port.parse().unwrap());
            let out = ns_ok(
                &na,
                &[
                    "timeout",
                    "40",
                    "python3",
                    "-c",
                    ECHO_CLIENT,
                    addr,
                    port,
                    "300000",
                ],
            );
            let so = server.wait_with_output().unwrap();
            let so_text = String::from_utf8_lossy(&so.stdout);
            assert!(
                so.status.success(),
                "{addr}: {}",
                String::from_utf8_lossy(&so.stderr)
            );
            assert_eq!(field(&out, "len="), "300000", "{addr}: {out}");
            assert_eq!(field(&out, "same="), "True", "{addr}: {out}");
            let peer = if addr.contains(':') {
                "2001:db8:1::2"
            } else {
                "192.0.2.2"
            };
            assert_eq!(field(&so_text, "peer="), peer, "{so_text}");
        }
        let p = punt(&sock);
        assert!(n(&p, "punted") > 200, "{p}");
        assert!(n(&p, "injected") > 200, "{p}");
        assert_eq!(n(&p, "punt_failed"), 0, "{p}");

        // ICMP echo stays the data plane's: answered there, never seen by the kernel.
        let echoes = || {
            let st = control_call(&sock, "forward.stats", json!({})).unwrap();
            n(&st["totals"], "echo_replies_sent")
        };
        let (fwd0, kernel0) = (echoes(), kernel_in_echos(&nr));
        ns_ok(
            &na,
            &["ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.1"],
        );
        assert_eq!(echoes() - fwd0, 3, "answered by the data plane");
        assert_eq!(kernel_in_echos(&nr), kernel0, "echo requests not punted");

        // 2. A UDP flood from C to the box's address: rate-limited, forwarding between A
        //    and B goes on.
        let sink = ns_spawn(
            &nr,
            &["python3", "-c", UDP_SINK, "203.0.113.1", "9999", "5"],
        );
        std::thread::sleep(Duration::from_millis(300));
        let rx_c = || {
            let ports = control_call(&sock, "ports", json!({})).unwrap();
            n(&ports[2], "rx_packets")
        };
        let (p0, rx0) = (punt(&sock), rx_c());
        let t0 = Instant::now();
        let flood = ns_spawn(
            &nc,
            &["python3", "-c", UDP_FLOOD, "203.0.113.1", "9999", "2.5"],
        );
        let ping = ns_run(
            &na,
            &["ping", "-c", "8", "-i", "0.2", "-W", "2", "198.51.100.2"],
        );
        let fo = flood.wait_with_output().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let (p1, rx1) = (punt(&sock), rx_c());
        let secs = t0.elapsed().as_secs_f64();
        let so = sink.wait_with_output().unwrap();
        let (fo, so) = (
            String::from_utf8_lossy(&fo.stdout).into_owned(),
            String::from_utf8_lossy(&so.stdout).into_owned(),
        );
        let ping_text = String::from_utf8_lossy(&ping.stdout);
        assert!(
            ping_text.contains("8 packets transmitted, 8 received"),
            "forwarding A->B during the flood:\n{ping_text}"
        );
        let sent: u64 = field(&fo, "sent=").parse().unwrap();
        let got: u64 = field(&so, "got=").parse().unwrap();
        let punted = n(&p1, "punted") - n(&p0, "punted");
        let limited = n(&p1, "punt_rate_limited") - n(&p0, "punt_rate_limited");
        let allowed = (400.0 * secs) as u64 + 20;
        // What pollfwd received of it (the hosts' veths and af_packet drop some under load).
        let received = rx1 - rx0;
        eprintln!(
            "flood: sent {sent}, received by pollfwd {received}, punted {punted} (allowed {allowed} in {secs:.2} s), rate-limited {limited}, received by Linux {got}"
        );
        assert!(received > 5 * allowed, "the flood was a flood: {fo}");
        assert!(
            punted <= allowed,
            "punted {punted} > {allowed} in {secs:.2} s"
        );
        // Every datagram received is punted or counted (a few other frames: ARP).
        assert!(
            punted + limited <= received && punted + limited + 20 >= received,
            "the rest counted as rate-limited: {punted} + {limited} of {received}"
        );
        assert!(
            got > 0 && got <= punted,
            "Linux got {got} of {punted} punted"
        );
    };
    run_then_stop_ok(child, 60, steps);
    // The TAPs went away with pollfwd.
    assert!(
        !ns_run(&nr, &["ip", "link", "show", "pf-a"])
            .status
            .success()
    );
}

/// Starts bgpd in namespace `ns` without zebra, with its config, pid file and vty socket in
/// `dir` (made here), BGP listening on `listen` only, no vty TCP port.
fn bgpd(ns: &str, dir: &std::path::Path, conf: &str, listen: &str) -> Daemon {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("bgpd.conf");
    std::fs::write(&cfg, conf).unwrap();
    let log = dir.join("bgpd.log");
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "/usr/lib/frr/bgpd"])
        .args(["-Z", "-S", "-P", "0", "-l", listen])
        .arg("-f")
        .arg(&cfg)
        .arg("-i")
        .arg(dir.join("bgpd.pid"))
        .arg("--vty_socket")
        .arg(dir)
        .arg("--log")
        .arg(format!("file:{}", log.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start bgpd");
    Daemon { child }
}

#[test]
fn bgp_through_the_punt_path_reaches_established_and_learns_the_peers_prefix() {
    require_frr(&["bgpd"]);
    let lab = Lab::new("punt-bgp");
    let pid = std::process::id();
    let [na, nr] = ["a", "r"].map(|n| format!("pfq{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nr.clone()]);
    wire_hosts_to_router(&nr, &[(&na, "pfqa")]);
    isolate_router_veths(&nr, &["pfqa1"]);
    host_link(&na, "pfqa0", "192.0.2.2/24", None);
    let cfg = router_config(
        &lab,
        &[("up", "pfqa1", r#""192.0.2.1/24""#)],
        "[punt]\nenable = true\n",
    );
    let sock = lab.path("ctl.sock");
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    let (dir_r, dir_a) = (lab.path("frr-router"), lab.path("frr-peer"));

    let steps = || {
        wait_answering(&sock);
        let router = bgpd(
            &nr,
            &dir_r,
            "hostname router\n\
             router bgp 64512\n bgp router-id 192.0.2.1\n no bgp ebgp-requires-policy\n\
             neighbor 192.0.2.2 remote-as 64513\n neighbor 192.0.2.2 timers 1 3\n\
             neighbor 192.0.2.2 timers connect 1\n",
            "192.0.2.1",
        );
        let peer = bgpd(
            &na,
            &dir_a,
            "hostname peer\n\
             router bgp 64513\n bgp router-id 192.0.2.2\n no bgp ebgp-requires-policy\n\
             no bgp network import-check\n\
             neighbor 192.0.2.1 remote-as 64512\n neighbor 192.0.2.1 timers 1 3\n\
             neighbor 192.0.2.1 timers connect 1\n\
             address-family ipv4 unicast\n  network 203.0.113.0/24\n exit-address-family\n",
            "192.0.2.2",
        );
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut summary = String::new();
        let mut table = String::new();
        let mut done = false;
        while Instant::now() < deadline {
            summary = vtysh(&nr, &dir_r, &["show bgp summary json"]);
            let s: Value = serde_json::from_str(&summary).unwrap_or(Value::Null);
            let st = &s["ipv4Unicast"]["peers"]["192.0.2.2"];
            if st["state"] == "Established" && st["pfxRcd"].as_u64() == Some(1) {
                table = vtysh(&nr, &dir_r, &["show bgp ipv4 unicast json"]);
                if table.contains("203.0.113.0/24") {
                    done = true;
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let log = std::fs::read_to_string(dir_r.join("bgpd.log")).unwrap_or_default();
        assert!(
            done,
            "no Established session with the prefix:\n{summary}\n{table}\nrouter bgpd log:\n{log}"
        );
        let t: Value = serde_json::from_str(&table).unwrap();
        let route = &t["routes"]["203.0.113.0/24"][0];
        assert_eq!(route["nexthops"][0]["ip"], "192.0.2.2", "{table}");
        let p = punt(&sock);
        assert!(n(&p, "punted") > 0 && n(&p, "injected") > 0, "{p}");
        drop(peer);
        drop(router);
    };
    run_then_stop_ok(child, 60, steps);
}

/// UDP echo: sends every datagram on (address, port) back to its sender until S seconds pass;
/// prints "echoed=N".
const UDP_ECHO: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(0.2)
end = time.time() + float(sys.argv[3]); n = 0
while time.time() < end:
    try:
        b, a = s.recvfrom(2048); s.sendto(b, a); n += 1
    except socket.timeout:
        pass
print(f"echoed={n}")
"#;

/// A measurement, not a check (`cargo test -p pollfwd --test e2e_punt_netns -- --ignored
/// --nocapture`): with no rate limit to speak of, how many packets per second go through
/// the punt path (host -> pollfwd -> net_tap -> a Python UDP echo in Linux) and back through
/// the inject path, and a TCP transfer's throughput to a Linux listener. docs/punt.md quotes
/// its figures.
#[test]
#[ignore = "a measurement that prints figures (docs/punt.md), run by hand with --ignored"]
fn measure_punt_and_inject_rates() {
    require_root("network namespaces and veth pairs");
    let lab = Lab::new("punt-measure");
    let pid = std::process::id();
    let [na, nr] = ["a", "r"].map(|n| format!("pfm{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nr.clone()]);
    wire_hosts_to_router(&nr, &[(&na, "pfma")]);
    isolate_router_veths(&nr, &["pfma1"]);
    host_link(&na, "pfma0", "192.0.2.2/24", None);
    let cfg = router_config(
        &lab,
        &[("a", "pfma1", r#""192.0.2.1/24""#)],
        "[punt]\nenable = true\nrate_pps = 10000000\nburst = 64\n",
    );
    let sock = lab.path("ctl.sock");
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    let steps = || {
        wait_answering(&sock);
        ns_ok(&na, &["ping", "-c", "1", "-W", "2", "192.0.2.1"]);
        let echo = ns_spawn(&nr, &["python3", "-c", UDP_ECHO, "192.0.2.1", "9998", "5"]);
        std::thread::sleep(Duration::from_millis(300));
        let p0 = punt(&sock);
        let t0 = Instant::now();
        let fo = ns_ok(&na, &["python3", "-c", UDP_FLOOD, "192.0.2.1", "9998", "3"]);
        let secs = t0.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(300));
        let p1 = punt(&sock);
        let eo = echo.wait_with_output().unwrap();
        let eo = String::from_utf8_lossy(&eo.stdout).into_owned();
        let sent: f64 = field(&fo, "sent=").parse().unwrap();
        let echoed: f64 = field(&eo, "echoed=").parse().unwrap();
        let punted = (n(&p1, "punted") - n(&p0, "punted")) as f64;
        let injected = (n(&p1, "injected") - n(&p0, "injected")) as f64;
        eprintln!(
            "UDP 64 B for {secs:.2} s: sent {:.0}/s, punted {:.0}/s, echoed by Linux {:.0}/s, injected {:.0}/s",
            sent / secs,
            punted / secs,
            echoed / secs,
            injected / secs
        );
        let server = ns_spawn(
            &nr,
            &[
                "timeout",
                "60",
                "python3",
                "-c",
                ECHO_SERVER,
                "192.0.2.1",
                "5303",
            ],
        );
        wait_listening(&nr, 5303);
        let t0 = Instant::now();
        let out = ns_ok(
            &na,
            &[
                "timeout",
                "60",
                "python3",
                "-c",
                ECHO_CLIENT,
                "192.0.2.1",
                "5303",
                "20000000",
            ],
        );
        let secs = t0.elapsed().as_secs_f64();
        let _ = server.wait_with_output();
        assert_eq!(field(&out, "same="), "True", "{out}");
        eprintln!(
            "TCP echo of 20 MB through punt and inject: {secs:.2} s, {:.1} MB/s each way",
            20.0 / secs
        );
    };
    let out = run_then_stop(child, 60, steps);
    assert_eq!(out.status.code(), Some(0));
}

/// A VLAN sub-interface's punt interface: a host on VLAN 10 (behind the user-space access
/// switch of `tests/vlan_switch.py`: the lab kernels have no 802.1Q) reaches a TCP listener on
/// the sub-interface's address in Linux (TAP `pf-t.10`, an ordinary untagged interface); what
/// the kernel answers leaves the trunk tagged (the host only sees VLAN 10's frames).
#[test]
fn a_vlan_sub_interface_punts_and_injects_with_its_tag() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ethtool", "python3", "ss"] {
        assert!(have(t), "'{t}' is missing: run scripts/install-deps.sh");
    }
    let lab = Lab::new("punt-vlan");
    let pid = std::process::id();
    let [nr, ns, nh] = ["r", "s", "h"].map(|n| format!("pfv{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[nr.clone(), ns.clone(), nh.clone()]);
    wire_hosts_to_router(&nr, &[(&ns, "pfvt")]);
    isolate_router_veths(&nr, &["pfvt1"]);
    ns_ok(&ns, &["ip", "link", "set", "pfvt0", "up"]);
    wire_hosts_to_router(&ns, &[(&nh, "pfvh")]);
    host_link(&nh, "pfvh0", "198.51.100.2/24", None);
    let switch = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vlan_switch.py");
    let mut sw = ns_spawn(
        &ns,
        &[
            "python3",
            switch.to_str().unwrap(),
            "90",
            "pfvt0",
            "pfvh1:10",
        ],
    );
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
name = "t"
device = "net_af_packet0,iface=pfvt1"
address = "192.0.2.1/24"

[[interface]]
name = "t.10"
port = "t"
vlan = 10
address = "198.51.100.1/24"

[[lcore]]
id = 1
rx = [{{ port = "t" }}]
stages = ["forward"]

[control]
socket = "{sock}"

[punt]
enable = true
"#,
            prefix = lab.prefix(),
            sock = sock.display()
        ),
    );
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    let out = run_then_stop(child, 60, || {
        wait_answering(&sock);
        let a = ns_ok(&nr, &["ip", "-o", "addr", "show", "dev", "pf-t.10"]);
        assert!(a.contains("inet 198.51.100.1/24"), "{a}");
        let server = ns_spawn(
            &nr,
            &[
                "timeout",
                "40",
                "python3",
                "-c",
                ECHO_SERVER,
                "198.51.100.1",
                "5304",
            ],
        );
        wait_listening(&nr, 5304);
        let out = ns_ok(
            &nh,
            &[
                "timeout",
                "40",
                "python3",
                "-c",
                ECHO_CLIENT,
                "198.51.100.1",
                "5304",
                "100000",
            ],
        );
        let so = server.wait_with_output().unwrap();
        assert!(so.status.success());
        assert_eq!(field(&out, "same="), "True", "{out}");
        assert_eq!(
            field(&String::from_utf8_lossy(&so.stdout), "peer="),
            "198.51.100.2"
        );
        let ifs = control_call(&sock, "interfaces", json!({})).unwrap();
        let v = &ifs[1];
        assert_eq!(v["name"], "t.10", "{ifs}");
        assert_eq!(v["punt"]["tap"], "pf-t.10", "{ifs}");
        assert!(n(&v["punt"], "to_kernel_packets") > 50, "{ifs}");
        assert!(n(&v["punt"], "from_kernel_packets") > 50, "{ifs}");
        // What the kernel sent went out tagged: the sub-interface counted it.
        assert!(
            n(v, "tx_packets") >= n(&v["punt"], "from_kernel_packets"),
            "{ifs}"
        );
        assert!(ifs[0]["punt"].is_object(), "{ifs}");
    });
    let _ = sw.kill();
    let _ = sw.wait();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// zebra, then ospfd, in namespace `ns` with their files in `dir` ([`frr_daemon`]).
fn ospf_pair(ns: &str, dir: &std::path::Path, ospf_conf: &str) -> (Daemon, Daemon) {
    let (zebra, z) = zebra(ns, dir, &[]);
    let ospfd = frr_daemon(ns, dir, "ospfd", ospf_conf, &["-z", &z]);
    (ospfd, zebra)
}

/// OSPF (IP protocol 89 to 224.0.0.5) through the punt path: FRR's ospfd (with zebra) in the
/// router namespace on `pf-up`, ospfd in a peer's namespace on its veth; the adjacency comes
/// up (Full) and the peer's loopback prefix is in the router's OSPF routes.
#[test]
fn ospf_through_the_punt_path_reaches_full_adjacency() {
    require_frr(&["zebra", "ospfd"]);
    let lab = Lab::new("punt-ospf");
    let pid = std::process::id();
    let [na, nr] = ["a", "r"].map(|n| format!("pfo{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nr.clone()]);
    wire_hosts_to_router(&nr, &[(&na, "pfoa")]);
    isolate_router_veths(&nr, &["pfoa1"]);
    host_link(&na, "pfoa0", "192.0.2.2/24", None);
    ns_ok(&na, &["ip", "addr", "add", "203.0.113.9/32", "dev", "lo"]);
    let cfg = router_config(
        &lab,
        &[("up", "pfoa1", r#""192.0.2.1/24""#)],
        "[punt]\nenable = true\n",
    );
    let sock = lab.path("ctl.sock");
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    let (dir_r, dir_a) = (lab.path("frr-router"), lab.path("frr-peer"));
    let iface_conf = |dev: &str, id: &str, nets: &str| {
        format!(
            "hostname o\ninterface {dev}\n ip ospf network point-to-point\n ip ospf hello-interval 1\n ip ospf dead-interval 4\nrouter ospf\n ospf router-id {id}\n{nets}"
        )
    };
    let steps = || {
        wait_answering(&sock);
        let router = ospf_pair(
            &nr,
            &dir_r,
            &iface_conf("pf-up", "192.0.2.1", " network 192.0.2.0/24 area 0\n"),
        );
        let peer = ospf_pair(
            &na,
            &dir_a,
            &iface_conf(
                "pfoa0",
                "192.0.2.2",
                " network 192.0.2.0/24 area 0\n network 203.0.113.9/32 area 0\n",
            ),
        );
        let deadline = Instant::now() + Duration::from_secs(40);
        let (mut nbr, mut routes, mut done) = (String::new(), String::new(), false);
        while Instant::now() < deadline {
            nbr = vtysh(&nr, &dir_r, &["show ip ospf neighbor json"]);
            routes = vtysh(&nr, &dir_r, &["show ip ospf route json"]);
            if nbr.contains("Full") && routes.contains("203.0.113.9/32") {
                done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let log = std::fs::read_to_string(dir_r.join("ospfd.log")).unwrap_or_default();
        assert!(
            done,
            "no Full adjacency with the peer's prefix:\n{nbr}\n{routes}\nrouter ospfd log:\n{log}"
        );
        let p = punt(&sock);
        assert!(n(&p, "punted") > 0 && n(&p, "injected") > 0, "{p}");
        drop(peer);
        drop(router);
    };
    run_then_stop_ok(child, 60, steps);
}
