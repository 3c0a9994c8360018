//! pollfwd as the dual-stack router of real Linux hosts: hosts A and B in their own network
//! namespaces, joined by veth pairs to a third namespace where pollfwd attaches with
//! `net_af_packet` (the router namespace has IPv6 off, so its kernel never answers for
//! pollfwd). No static neighbours: pollfwd answers the hosts' neighbour solicitations and
//! resolves them itself. Checked, as a user would: ping6 through the box and to its global
//! and link-local addresses (the first packet parked while neighbour discovery resolves B),
//! a TCP transfer over IPv6 byte for byte, traceroute6 showing the box as hop 1, a host whose
//! default route is the box's link-local address, ping6 bigger than the egress MTU getting
//! Packet Too Big and then through with the learnt path MTU, "no route" for an unrouted
//! prefix, a route added and removed live, an IPv6 ACL rule denying one TCP port (counted),
//! and IPv4 and IPv6 at the same time from one host; and a host configuring itself from the
//! box's router advertisements.
//!
//! Needs root (namespaces, veths) and iproute2, iputils-ping, traceroute, ethtool, python3
//! (`scripts/install-deps.sh`); without root or a tool it fails and says which. Namespaces are
//! pf6{a,b,r}-<pid>, removed when the test ends. Addresses: 2001:db8::/32 (RFC 3849) and the
//! RFC 5737 ranges, inside these namespaces only.

mod common;

use std::time::Duration;

use common::netns::*;
use common::*;
use serde_json::{Value, json};

fn mac_of(ns: &str, dev: &str) -> String {
    ns_ok(ns, &["cat", &format!("/sys/class/net/{dev}/address")])
        .trim()
        .to_string()
}

fn ping6(ns: &str, args: &[&str]) -> (bool, String) {
    let mut cmd = vec!["ping", "-6", "-n"];
    cmd.extend_from_slice(args);
    let o = ns_run(ns, &cmd);
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn dual_stack_hosts_ping6_transfer_traceroute6_and_pmtud_through_pollfwd() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ping", "traceroute6", "ethtool", "python3"] {
        assert!(
            have(t),
            "'{t}' is missing: run scripts/install-deps.sh (iproute2 iputils-ping traceroute ethtool python3)"
        );
    }
    let lab = Lab::new("ipv6-netns");
    let pid = std::process::id();
    let [na, nb, nr] = ["a", "b", "r"].map(|n| format!("pf6{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nb.clone(), nr.clone()]);
    wire_hosts_to_router(&nr, &[(&na, "pf6a"), (&nb, "pf6b")]);
    // The router's link-local address on B's link: EUI-64 of pollfwd's port MAC (the veth's).
    let router_b_ll = link_local_of(&mac_of(&nr, "pf6b1"));
    let router_a_ll = link_local_of(&mac_of(&nr, "pf6a1"));
    host_link(&na, "pf6a0", "192.0.2.2/24", Some("192.0.2.1"));
    host_link6(&na, "pf6a0", "2001:db8:1::2/64", Some("2001:db8:1::1"));
    host_link(&nb, "pf6b0", "198.51.100.2/24", Some("198.51.100.1"));
    // B's default route is the router's link-local address (as with router advertisements).
    host_link6(&nb, "pf6b0", "2001:db8:2::2/64", Some(&router_b_ll));
    ns_ok(&nb, &["ip", "link", "set", "pf6b0", "mtu", "1400"]);

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
name = "a"
device = "net_af_packet0,iface=pf6a1"
address = ["192.0.2.1/24", "2001:db8:1::1/64"]

[[port]]
name = "b"
device = "net_af_packet1,iface=pf6b1"
address = ["198.51.100.1/24", "2001:db8:2::1/64"]
mtu = 1400

[[lcore]]
id = 1
rx = [{{ port = "a" }}, {{ port = "b" }}]
stages = ["classify", "forward"]

# One IPv6 rule: TCP to B's port 5999 is denied (neighbour discovery passes untouched).
[classify]
rules = [{{ dst = "2001:db8:2::2", proto = "tcp", dport = 5999, action = "deny" }}]

[control]
socket = "{sock}"
"#,
            prefix = lab.prefix(),
            sock = sock.display()
        ),
    );
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);

    let steps = || {
        wait_answering(&sock);
        std::thread::sleep(Duration::from_millis(300));

        // 1. ping6 B from A through the router: the first echo waits for neighbour discovery
        //    of B (parked, then delivered), none is lost.
        let (ok, text) = ping6(&na, &["-c", "5", "-i", "0.2", "-W", "2", "2001:db8:2::2"]);
        assert!(ok, "ping6 A->B:\n{text}");
        assert!(text.contains("5 packets transmitted, 5 received"), "{text}");
        let st = control_call(&sock, "forward.stats", json!({})).unwrap();
        let t = &st["totals"];
        assert!(t["ns_sent"].as_u64().unwrap() >= 1, "{st}");
        assert!(t["na_sent"].as_u64().unwrap() >= 1, "{st}");
        assert!(t["held"].as_u64().unwrap() >= 1, "first echo parked: {st}");
        assert_eq!(
            t["held"], t["released"],
            "every parked echo delivered: {st}"
        );

        // ... the router's addresses: both global ones and the link-local one of A's link.
        for a in ["2001:db8:1::1", "2001:db8:2::1"] {
            let (ok, text) = ping6(&na, &["-c", "2", "-i", "0.2", "-W", "2", a]);
            assert!(ok, "ping6 {a}:\n{text}");
        }
        let ll = format!("{router_a_ll}%pf6a0");
        let (ok, text) = ping6(&na, &["-c", "2", "-i", "0.2", "-W", "2", &ll]);
        assert!(ok, "ping6 {ll}:\n{text}");
        assert!(text.contains("2 received"), "{text}");
        // B -> A: B's default route is the router's link-local address.
        let (ok, text) = ping6(&nb, &["-c", "2", "-i", "0.2", "-W", "2", "2001:db8:1::2"]);
        assert!(ok, "ping6 B->A via {router_b_ll}:\n{text}");

        // 2. TCP over IPv6: 1 MB from A to B, byte for byte (B's link MTU 1400: MSS from it).
        let server = ns_spawn(
            &nb,
            &["timeout", "40", "python3", "-c", TCP_SERVER6, "5006"],
        );
        wait_listening(&nb, 5006);
        let out = ns_ok(
            &na,
            &[
                "timeout",
                "40",
                "python3",
                "-c",
                TCP_CLIENT6,
                "2001:db8:2::2",
                "5006",
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
        assert_eq!(field(&out, "sum="), field(&out, "want="), "{out}");
        assert!(out.contains("peer=2001:db8:1::2"), "{out}");

        // 2b. The ACL: a connection to B's port 5999 never gets through, and the rule counts
        //     the SYNs it denied.
        let denied = ns_spawn(&nb, &["timeout", "5", "python3", "-c", TCP_SERVER6, "5999"]);
        wait_listening(&nb, 5999);
        let o = ns_run(
            &na,
            &[
                "timeout",
                "3",
                "python3",
                "-c",
                TCP_CLIENT6,
                "2001:db8:2::2",
                "5999",
                "10",
            ],
        );
        assert!(
            !o.status.success(),
            "denied: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let _ = denied.wait_with_output();
        let c = control_call(&sock, "acl.counters", json!({})).unwrap();
        assert!(c["rules"][0]["packets"].as_u64().unwrap() >= 1, "{c}");
        let st = control_call(&sock, "stats", json!({})).unwrap();
        assert_eq!(
            st["totals"]["drops_by_reason"]["acl_deny"], c["rules"][0]["packets"],
            "{st}"
        );

        // 3. traceroute6: the router is hop 1, B hop 2.
        let t = ns_ok(
            &na,
            &[
                "traceroute6",
                "-n",
                "-q",
                "1",
                "-w",
                "2",
                "-m",
                "5",
                "2001:db8:2::2",
            ],
        );
        let hops: Vec<Vec<&str>> = t
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(hops.len(), 2, "{t}");
        assert_eq!(&hops[0][..2], &["1", "2001:db8:1::1"], "{t}");
        assert_eq!(&hops[1][..2], &["2", "2001:db8:2::2"], "{t}");

        // 4. Bigger than B's link MTU (1400): Packet Too Big from the router with the MTU,
        //    then the host sends fragments that fit (routers never fragment IPv6).
        let (ok, text) = ping6(&na, &["-c", "1", "-W", "2", "-s", "1450", "2001:db8:2::2"]);
        assert!(!ok, "the first one is refused: {text}");
        assert!(
            text.contains("From 2001:db8:1::1") && text.contains("Packet too big: mtu=1400"),
            "{text}"
        );
        let r = ns_ok(&na, &["ip", "-6", "route", "get", "2001:db8:2::2"]);
        assert!(r.contains("mtu 1400"), "the host learnt the path MTU: {r}");
        let (ok, text) = ping6(
            &na,
            &[
                "-c",
                "2",
                "-i",
                "0.2",
                "-W",
                "2",
                "-s",
                "1450",
                "2001:db8:2::2",
            ],
        );
        assert!(ok, "fragmented by the host, they pass: {text}");
        let st = control_call(&sock, "forward.stats", json!({})).unwrap();
        assert!(st["totals"]["too_big_sent"].as_u64().unwrap() >= 1, "{st}");

        // 5. No route: "no route" from the router; a route added live makes it answer.
        ns_ok(&nb, &["sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=0"]);
        ns_ok(
            &nb,
            &["ip", "-6", "addr", "add", "2001:db8:99::1/128", "dev", "lo"],
        );
        let (ok, text) = ping6(&na, &["-c", "1", "-W", "1", "2001:db8:99::1"]);
        assert!(!ok, "no route yet: {text}");
        assert!(
            text.contains("From 2001:db8:1::1") && text.contains("No route"),
            "{text}"
        );
        let r = control_call(
            &sock,
            "route.add",
            json!({"prefix": "2001:db8:99::/48", "via": "2001:db8:2::2"}),
        )
        .unwrap();
        assert_eq!(r["workers"], 1, "{r}");
        let (ok, text) = ping6(&na, &["-c", "2", "-i", "0.2", "-W", "2", "2001:db8:99::1"]);
        assert!(
            ok,
            "after route.add: {text}\n{}\n{}",
            control_call(&sock, "neigh.list", json!({})).unwrap(),
            control_call(&sock, "stats", json!({})).unwrap()["totals"]
        );
        let lk = control_call(&sock, "route.lookup", json!({"address": "2001:db8:99::1"})).unwrap();
        assert_eq!(lk["route"], "2001:db8:99::/48", "{lk}");
        assert_eq!(lk["next_hop"], "2001:db8:2::2", "{lk}");
        assert_eq!(lk["port"], "b", "{lk}");
        control_call(&sock, "route.del", json!({"prefix": "2001:db8:99::/48"})).unwrap();
        let (ok, _) = ping6(&na, &["-c", "1", "-W", "1", "2001:db8:99::1"]);
        assert!(!ok, "after route.del");

        // 6. One host, both families at once: IPv4 and IPv6 pings interleaved.
        let v4 = ns_spawn(
            &na,
            &["ping", "-c", "20", "-i", "0.05", "-W", "2", "198.51.100.2"],
        );
        let (ok6, text6) = ping6(&na, &["-c", "20", "-i", "0.05", "-W", "2", "2001:db8:2::2"]);
        let o4 = v4.wait_with_output().unwrap();
        assert!(ok6, "{text6}");
        assert!(
            o4.status.success(),
            "{}",
            String::from_utf8_lossy(&o4.stdout)
        );

        // 7. The neighbours pollfwd learnt, both families, and its routes.
        let n = control_call(&sock, "neigh.list", json!({"family": "ipv6"})).unwrap();
        let find = |a: &str| {
            n["neighbors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["address"] == a)
                .cloned()
                .unwrap_or_else(|| panic!("{a} not in {n}"))
        };
        let eb = find("2001:db8:2::2");
        assert_eq!(eb["mac"], mac_of(&nb, "pf6b0"), "{n}");
        assert_eq!(eb["port"], "b", "{n}");
        // Confirmed by advertisements (Linux answers unicast solicitations without the
        // target's link-layer address): reachable, neither stale-and-failing nor failed.
        assert_eq!(eb["state"], "reachable", "{n}");
        let ea = find("2001:db8:1::2");
        assert_eq!(ea["mac"], mac_of(&na, "pf6a0"), "{n}");
        let all = control_call(&sock, "neigh.list", json!({})).unwrap();
        assert!(
            all["neighbors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["address"] == "192.0.2.2"),
            "{all}"
        );
        let r = control_call(&sock, "route.list", json!({"family": "ipv6"})).unwrap();
        let prefixes: Vec<&str> = r["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["prefix"].as_str().unwrap())
            .collect();
        for p in ["2001:db8:1::/64", "2001:db8:2::/64", "2001:db8:1::1/128"] {
            assert!(prefixes.contains(&p), "{p} in {prefixes:?}");
        }
        assert!(
            prefixes.contains(&format!("{router_a_ll}/128").as_str()),
            "link-local {router_a_ll} in {prefixes:?}"
        );
        let ifs = control_call(&sock, "interfaces", json!({})).unwrap();
        let a = &ifs.as_array().unwrap()[0];
        assert_eq!(
            a["addresses"],
            json!([
                "192.0.2.1/24",
                "2001:db8:1::1/64",
                format!("{router_a_ll}/64")
            ]),
            "{ifs}"
        );
    };
    let out = run_then_stop_ok(child, 60, steps);
    let s: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert!(
        port(&s, "a")["rx_packets"].as_u64().unwrap() > 500,
        "the TCP transfer crossed"
    );
}

/// TCP server over IPv6: accepts one connection, reads to EOF, answers "peer=IP len=N sum=S".
const TCP_SERVER6: &str = r#"
import socket, sys, hashlib
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1]))); s.listen(1); s.settimeout(30)
c, a = s.accept(); c.settimeout(30); n = 0; h = hashlib.sha256()
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b); h.update(b)
c.sendall(f"peer={a[0]} len={n} sum={h.hexdigest()}".encode()); c.close()
"#;

/// TCP client over IPv6: sends N bytes, half-closes, prints the answer and the digest it
/// expects ("want=").
const TCP_CLIENT6: &str = r#"
import socket, sys, hashlib
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
data = bytes((i * 7 + 3) & 255 for i in range(int(sys.argv[3])))
c.sendall(data); c.shutdown(socket.SHUT_WR)
r = b""
while True:
    b = c.recv(4096)
    if not b: break
    r += b
print(r.decode(), "want=" + hashlib.sha256(data).hexdigest())
"#;

#[test]
fn a_host_configures_itself_from_the_router_advertisements_of_pollfwd() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ping", "ethtool"] {
        assert!(have(t), "'{t}' is missing: run scripts/install-deps.sh");
    }
    let lab = Lab::new("ipv6-ra");
    let pid = std::process::id();
    let [nh, nr] = ["h", "r"].map(|n| format!("pf6{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[nh.clone(), nr.clone()]);
    wire_hosts_to_router(&nr, &[(&nh, "pf6h")]);
    let router_ll = link_local_of(&mac_of(&nr, "pf6h1"));
    let sock = lab.path("ctl.sock");
    let cfg = lab.write(
        "pollfwd.toml",
        &format!(
            r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 2047

[[port]]
name = "lan"
device = "net_af_packet0,iface=pf6h1"
address = ["2001:db8:5::1/64", "2001:db8:6::1/56"]
mtu = 1400
ra = true

[[lcore]]
id = 1
rx = [{{ port = "lan" }}]
stages = ["forward"]

[control]
socket = "{sock}"
"#,
            prefix = lab.prefix(),
            sock = sock.display()
        ),
    );
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 60);
    let steps = || {
        wait_answering(&sock);
        // The host: IPv6 on, no static address or route, accepting advertisements (and
        // soliciting one as its link comes up).
        for (k, v) in [
            ("disable_ipv6", "0"),
            ("accept_dad", "0"),
            ("accept_ra", "2"),
            ("autoconf", "1"),
            ("router_solicitations", "3"),
            ("router_solicitation_interval", "1"),
        ] {
            ns_ok(
                &nh,
                &["sysctl", "-qw", &format!("net.ipv6.conf.pf6h0.{k}={v}")],
            );
        }
        ns_ok(&nh, &["ip", "link", "set", "pf6h0", "down"]);
        ns_ok(&nh, &["ip", "link", "set", "pf6h0", "up"]);
        // SLAAC: an address in the /64 (not in the /56: not autonomous), the default route
        // via the router's link-local address, the advertised MTU.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let (addrs, routes) = loop {
            let a = ns_ok(&nh, &["ip", "-6", "addr", "show", "dev", "pf6h0"]);
            let r = ns_ok(&nh, &["ip", "-6", "route", "show", "dev", "pf6h0"]);
            if a.contains("2001:db8:5:") && r.contains("default") {
                break (a, r);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no address or default route from an advertisement:\n{a}\n{r}\n{}",
                control_call(&sock, "forward.stats", json!({})).unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            !addrs.contains("2001:db8:6:"),
            "a /56 is not autonomous: {addrs}"
        );
        assert!(
            routes.contains(&format!("default via {router_ll}")),
            "{routes}"
        );
        assert!(
            routes.contains("2001:db8:6::/56"),
            "on-link prefix: {routes}"
        );
        let mtu = ns_ok(&nh, &["cat", "/proc/sys/net/ipv6/conf/pf6h0/mtu"]);
        assert_eq!(mtu.trim(), "1400", "advertised MTU");
        // ... and the host reaches the box over them.
        let o = ns_run(
            &nh,
            &[
                "ping",
                "-6",
                "-c",
                "2",
                "-i",
                "0.2",
                "-W",
                "2",
                "2001:db8:5::1",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        let st = control_call(&sock, "forward.stats", json!({})).unwrap();
        assert!(st["totals"]["ra_sent"].as_u64().unwrap() >= 1, "{st}");
    };
    run_then_stop_ok(child, 30, steps);
}
