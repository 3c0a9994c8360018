//! VLAN sub-interfaces with real Linux hosts: pollfwd (namespace <t>r-<pid>) has one port, a
//! trunk veth to a switch namespace (<t>s-<pid>), with the untagged network 10.0.0.0/24 on the
//! port and VLAN 10 (10.10.0.0/24) and VLAN 20 (10.20.0.0/24) as `[[interface]]`s. Three hosts
//! (<t>10-, <t>20-, <t>0-<pid>) hang off the switch on access ports of VLAN 10, VLAN 20 and
//! the untagged network. They ping each other and the router's VLAN addresses through pollfwd
//! and move 300 kB over TCP from VLAN 10 to VLAN 20: every frame crosses the trunk tagged.
//! Twice: with `vlan_offload` (net_af_packet strips and inserts the tags: they travel beside
//! the frame in the mbuf) and without (pollfwd pops and pushes them in the frame).
//!
//! The kernel of the lab machines has no 802.1Q (CONFIG_VLAN_8021Q unset: `ip link add ...
//! type vlan` fails), so the switch is a user-space access switch on packet sockets
//! (`tests/vlan_switch.py`): it tags what its access ports receive and untags what the trunk
//! delivers, as a hardware access switch does.
//!
//! Needs root, iproute2, ethtool, ping, python3. Addresses: RFC 1918 10.0.0.0/8 inside these
//! namespaces only; deleted when the test ends, pass or fail.

mod common;

use std::time::Duration;

use common::netns::*;
use common::*;
use serde_json::Value;

fn ping(ns: &str, to: &str) {
    let o = ns_run(ns, &["ping", "-c", "3", "-i", "0.2", "-W", "2", to]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("3 packets transmitted, 3 received"),
        "ping {to} from {ns}:\n{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn hosts_on_two_vlans_and_an_untagged_one_route_through_one_trunk() {
    // net_af_packet offers VLAN strip and insert: the tags travel beside the frames.
    let err = trunk_lab("pfvo", true);
    assert!(
        err.contains("port 'trunk': VLAN tags stripped by the device, inserted by the device"),
        "{err}"
    );
}

#[test]
fn the_same_with_tags_popped_and_pushed_in_software() {
    let err = trunk_lab("pfvs", false);
    assert!(
        err.contains("port 'trunk': VLAN tags stripped in software, inserted in software"),
        "{err}"
    );
}

/// Runs the lab (namespaces named `<tag>r-<pid>`...) with `vlan_offload = offload`; returns
/// pollfwd's stderr.
fn trunk_lab(tag: &str, offload: bool) -> String {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ping", "ethtool", "python3"] {
        assert!(have(t), "'{t}' is missing: run scripts/install-deps.sh");
    }
    let lab = Lab::new(&format!("vlan-netns-{offload}"));
    let pid = std::process::id();
    let [nr, ns, n10, n20, n0] = ["r", "s", "10", "20", "0"].map(|n| format!("{tag}{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[nr.clone(), ns.clone(), n10.clone(), n20.clone(), n0.clone()]);
    // Trunk: switch pvt0 <-> router pvt1. Access ports: host pva<x>0 <-> switch pva<x>1.
    wire_hosts_to_router(&nr, &[(&ns, "pvt")]);
    ns_ok(&ns, &["ip", "link", "set", "pvt0", "up"]);
    wire_hosts_to_router(&ns, &[(&n10, "pva10"), (&n20, "pva20"), (&n0, "pva0")]);
    for (host, dev, addr, gw) in [
        (&n10, "pva100", "10.10.0.2/24", "10.10.0.1"),
        (&n20, "pva200", "10.20.0.2/24", "10.20.0.1"),
        (&n0, "pva00", "10.0.0.2/24", "10.0.0.1"),
    ] {
        host_link(host, dev, addr, Some(gw));
    }
    let switch = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vlan_switch.py");
    let mut sw = ns_spawn(
        &ns,
        &[
            "python3",
            switch.to_str().unwrap(),
            "90",
            "pvt0",
            "pva101:10",
            "pva201:20",
            "pva01:0",
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
name = "trunk"
device = "net_af_packet0,iface=pvt1"
address = "10.0.0.1/24"
vlan_offload = {offload}

[[interface]]
name = "trunk.10"
port = "trunk"
vlan = 10
address = "10.10.0.1/24"

[[interface]]
name = "trunk.20"
port = "trunk"
vlan = 20
address = "10.20.0.1/24"

[[lcore]]
id = 1
rx = [{{ port = "trunk" }}]
stages = ["forward"]

[control]
socket = "{sock}"
"#,
            prefix = lab.prefix(),
            sock = sock.display()
        ),
    );
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    let mut ifaces = Value::Null;
    let out = run_then_stop(child, 120, || {
        wait_answering(&sock);
        std::thread::sleep(Duration::from_millis(300));
        // The router's addresses on each VLAN, then host to host across VLANs and to and from
        // the untagged network.
        ping(&n10, "10.10.0.1");
        ping(&n20, "10.20.0.1");
        ping(&n0, "10.0.0.1");
        ping(&n10, "10.20.0.2");
        ping(&n20, "10.10.0.2");
        ping(&n10, "10.0.0.2");
        ping(&n0, "10.20.0.2");
        // TCP from VLAN 10 to VLAN 20.
        let server = ns_spawn(&n20, &["python3", "-c", TCP_SERVER, "5001"]);
        wait_listening(&n20, 5001);
        let o = ns_run(
            &n10,
            &["python3", "-c", TCP_CLIENT, "10.20.0.2", "5001", "300000"],
        );
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains(" len=300000"),
            "TCP across VLANs: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let _ = wait_with_deadline(server, 30);
        ifaces = ctl_json(&sock, &["interfaces"]);
    });
    let _ = sw.kill();
    let _ = sw.wait();
    assert!(
        out.status.success(),
        "pollfwd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(s["failed_lcores"].as_array().map(Vec::len), Some(0), "{s}");
    assert_eq!(
        s["totals"]["drops_by_reason"]["vlan_unknown"].as_u64(),
        None,
        "{s}"
    );
    // Both VLANs carried the TCP transfer's 300 kB one way or the other.
    for name in ["trunk.10", "trunk.20"] {
        let i = ifaces
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{ifaces}"));
        assert_eq!(i["kind"], "vlan");
        let (rx, tx) = (
            i["rx_bytes"].as_u64().unwrap(),
            i["tx_bytes"].as_u64().unwrap(),
        );
        assert!(rx + tx > 300_000, "{name}: {i}");
        assert!(i["rx_packets"].as_u64().unwrap() >= 12, "{name}: {i}");
    }
    String::from_utf8_lossy(&out.stderr).into_owned()
}
