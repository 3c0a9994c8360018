//! pollfwd as the router of real Linux hosts: two network namespaces ("hosts" A and B), each
//! joined by a veth pair to a third namespace where pollfwd attaches to the other ends with
//! `net_af_packet`. pollfwd has no static neighbours: it answers the hosts' ARP and resolves
//! them itself. Checked: ping through the router and to its addresses, a 2 MB TCP transfer
//! with nc, traceroute showing the appliance as hop 1, and a route added and removed live
//! over the control socket.
//!
//! Needs root (namespaces, veths) and iproute2, iputils-ping, netcat-openbsd, traceroute,
//! ethtool (`scripts/install-deps.sh` installs them); without root or a tool it fails and says
//! which. Namespaces are named pf{a,b,r}-<pid> and removed when the test ends, pass or fail
//! (deleting a namespace deletes its veth ends). Addresses are the documentation ranges
//! 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 (RFC 5737), inside these namespaces only.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::netns::*;
use common::*;
use serde_json::{Value, json};

fn mac_of(ns: &str, dev: &str) -> String {
    let out = ns_ok(ns, &["cat", &format!("/sys/class/net/{dev}/address")]);
    out.trim().to_string()
}

#[test]
fn hosts_in_namespaces_ping_transfer_and_traceroute_through_pollfwd() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ping", "nc", "traceroute", "ethtool"] {
        assert!(
            have(t),
            "'{t}' is missing: run scripts/install-deps.sh (iproute2 iputils-ping netcat-openbsd traceroute ethtool)"
        );
    }
    let lab = Lab::new("netns");
    let pid = std::process::id();
    let (na, nb, nr) = (
        format!("pfa-{pid}"),
        format!("pfb-{pid}"),
        format!("pfr-{pid}"),
    );
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nb.clone(), nr.clone()]);

    // Wiring: A:pfa0 <-> R:pfa1, B:pfb0 <-> R:pfb1.
    wire_hosts_to_router(&nr, &[(&na, "pfa"), (&nb, "pfb")]);
    for (ns, dev, addr, gw) in [
        (&na, "pfa0", "192.0.2.2/24", "192.0.2.1"),
        (&nb, "pfb0", "198.51.100.2/24", "198.51.100.1"),
    ] {
        host_link(ns, dev, addr, Some(gw));
    }
    // Host B also owns 203.0.113.1, reachable only once pollfwd has a route for it.
    ns_ok(&nb, &["ip", "addr", "add", "203.0.113.1/32", "dev", "lo"]);

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
device = "net_af_packet0,iface=pfa1"
address = "192.0.2.1/24"

[[port]]
name = "b"
device = "net_af_packet1,iface=pfb1"
address = "198.51.100.1/24"

[[lcore]]
id = 1
rx = [{{ port = "a" }}, {{ port = "b" }}]
stages = ["forward"]

[forward]
arp_timeout_s = 120

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
        std::thread::sleep(Duration::from_millis(300)); // ports and workers start after it

        // 1. ping B from A through the router (first packet waits for ARP, none is lost).
        let o = ns_run(
            &na,
            &["ping", "-c", "5", "-i", "0.2", "-W", "2", "198.51.100.2"],
        );
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "ping A->B failed:\n{text}");
        assert!(text.contains("5 packets transmitted, 5 received"), "{text}");
        // ... and the router's addresses, the near one and the far one.
        for a in ["192.0.2.1", "198.51.100.1"] {
            let o = ns_run(&na, &["ping", "-c", "2", "-i", "0.2", "-W", "2", a]);
            assert!(
                o.status.success(),
                "ping {a}: {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
        let o = ns_run(
            &nb,
            &["ping", "-c", "2", "-i", "0.2", "-W", "2", "192.0.2.2"],
        );
        assert!(
            o.status.success(),
            "ping B->A: {}",
            String::from_utf8_lossy(&o.stdout)
        );

        // 2. TCP: 2 MB from A to B with nc, byte for byte.
        let data: Vec<u8> = (0..2_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(lab.path("send.bin"), &data).unwrap();
        let recv = lab.path("recv.bin");
        let server = Command::new("ip")
            .args([
                "netns", "exec", &nb, "timeout", "30", "nc", "-l", "-p", "5001",
            ])
            .stdout(std::fs::File::create(&recv).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_listening(&nb, 5001);
        let send = lab.path("send.bin");
        let o = ns_run(
            &na,
            &[
                "sh",
                "-c",
                &format!("timeout 30 nc -N 198.51.100.2 5001 < {}", send.display()),
            ],
        );
        assert!(
            o.status.success(),
            "nc client: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let so = server.wait_with_output().unwrap();
        assert!(
            so.status.success(),
            "nc server: {}",
            String::from_utf8_lossy(&so.stderr)
        );
        let got = std::fs::read(&recv).unwrap();
        assert_eq!(got.len(), data.len(), "bytes received");
        assert!(got == data, "received data differs");

        // 3. traceroute: the appliance is hop 1, B is hop 2.
        let t = ns_ok(
            &na,
            &[
                "traceroute",
                "-n",
                "-q",
                "1",
                "-w",
                "2",
                "-m",
                "5",
                "198.51.100.2",
            ],
        );
        let hops: Vec<Vec<&str>> = t
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(hops.len(), 2, "{t}");
        assert_eq!(&hops[0][..2], &["1", "192.0.2.1"], "{t}");
        assert_eq!(&hops[1][..2], &["2", "198.51.100.2"], "{t}");
        // Traceroute to the appliance's far address ends at the appliance (port unreachable).
        let t = ns_ok(
            &na,
            &[
                "traceroute",
                "-n",
                "-q",
                "1",
                "-w",
                "2",
                "-m",
                "3",
                "198.51.100.1",
            ],
        );
        assert_eq!(t.lines().count(), 2, "one hop: {t}");
        assert!(t.lines().nth(1).unwrap().contains("198.51.100.1"), "{t}");

        // 4. A route added and removed live.
        let o = ns_run(&na, &["ping", "-c", "1", "-W", "1", "203.0.113.1"]);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(!o.status.success(), "no route yet: {text}");
        assert!(
            text.contains("From 192.0.2.1") && text.contains("Destination Net Unreachable"),
            "{text}"
        );
        let r = control_call(
            &sock,
            "route.add",
            json!({"prefix": "203.0.113.0/24", "via": "198.51.100.2"}),
        )
        .unwrap();
        assert_eq!(r["workers"], 1);
        let o = ns_run(
            &na,
            &["ping", "-c", "2", "-i", "0.2", "-W", "2", "203.0.113.1"],
        );
        assert!(
            o.status.success(),
            "after route.add: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        control_call(&sock, "route.del", json!({"prefix": "203.0.113.0/24"})).unwrap();
        let o = ns_run(&na, &["ping", "-c", "1", "-W", "1", "203.0.113.1"]);
        assert!(!o.status.success(), "after route.del");

        // 5. pollfwd learnt both hosts by ARP itself.
        let n = control_call(&sock, "neigh.list", json!({})).unwrap();
        let find = |a: &str| {
            n["neighbors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["address"] == a)
                .cloned()
                .unwrap_or_else(|| panic!("{a} not in {n}"))
        };
        let ea = find("192.0.2.2");
        assert_eq!(ea["mac"], mac_of(&na, "pfa0"));
        assert_eq!(
            (ea["port"].as_str(), ea["state"].as_str()),
            (Some("a"), Some("reachable"))
        );
        let eb = find("198.51.100.2");
        assert_eq!(eb["mac"], mac_of(&nb, "pfb0"));
        assert_eq!(eb["port"], "b");
        let st = control_call(&sock, "forward.stats", json!({})).unwrap();
        assert!(
            st["totals"]["arp_requests_sent"].as_u64().unwrap() >= 1,
            "{st}"
        );
        // A asked for 192.0.2.1; B learnt the router from the router's own request (RFC 826).
        assert!(
            st["totals"]["arp_replies_sent"].as_u64().unwrap() >= 1,
            "{st}"
        );
        assert!(
            st["totals"]["icmp_errors_sent"].as_u64().unwrap() >= 2,
            "{st}"
        );
    };
    let out = run_then_stop_ok(child, 30, steps);
    let s: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert!(
        port(&s, "a")["rx_packets"].as_u64().unwrap() > 1000,
        "the TCP transfer crossed"
    );
}
