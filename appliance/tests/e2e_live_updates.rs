//! Issue 6: no packet is lost to a change. Hundreds of route and ACL updates go in over the
//! control socket while traffic flows through classify -> forward; at the end every packet
//! received is accounted for: transmitted, or dropped by policy (the ACL), nothing else. Every
//! change reports how many workers switched, and the traffic visibly follows a flapping route.
//!
//! Two variants: one worker polling every port, and two workers (the most busy-polling lcores
//! this machine allows: main lcore 0 shares CPU 0 with worker 1, worker 2 is on CPU 1), each
//! polling one infinite_rx source, with traffic in both directions.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lab::traffic::{self, GenSpec};
use serde_json::{Value, json};

/// 64 flows (sources 192.0.2.10 + f) from the LAN to 203.0.113.1 on `lan`; with two workers,
/// 64 flows from 203.0.113.10 + f to the LAN host 192.0.2.10 on `wan` too. A third port, `dmz`,
/// only gets traffic while the flapping route 203.0.113.0/25 -> 198.18.0.2 is in.
fn updates_under_traffic(workers: usize) {
    let lab = Lab::new(&format!("live{workers}"));
    let spec = GenSpec {
        count: 256,
        flows: 64,
        src_ip: "192.0.2.10".parse().unwrap(),
        dst_ip: "203.0.113.1".parse().unwrap(),
        dst_mac: [0x02, 0, 0, 0, 0, 0x10],
        ..Default::default()
    };
    traffic::write_pcap(&spec, &lab.path("in.pcap")).unwrap();
    traffic::write_pcap(
        &GenSpec {
            count: 256,
            flows: 64,
            src_ip: "203.0.113.10".parse().unwrap(),
            dst_ip: "192.0.2.10".parse().unwrap(),
            ..Default::default()
        },
        &lab.path("in-wan.pcap"),
    )
    .unwrap();
    traffic::write_pcap(
        &GenSpec {
            count: 0,
            ..Default::default()
        },
        &lab.path("empty.pcap"),
    )
    .unwrap();
    let (wan_rx, lcores) = if workers == 1 {
        (
            "empty.pcap",
            r#"
[[lcore]]
id = 1
rx = [{ port = "lan" }, { port = "wan" }, { port = "dmz" }]
stages = ["classify", "forward"]
"#,
        )
    } else {
        // net_pcap has one TX queue per port: each worker transmits where its traffic goes.
        (
            "in-wan.pcap,infinite_rx=1",
            r#"
[[lcore]]
id = 1
cpu = 0
rx = [{ port = "lan" }, { port = "dmz" }]
stages = ["classify", "forward"]
tx_ports = ["wan", "dmz"]

[[lcore]]
id = 2
cpu = 1
rx = [{ port = "wan" }]
stages = ["classify", "forward"]
tx_ports = ["lan"]
"#,
        )
    };
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"
main_lcore = 0
main_cpu = 0
share_main_cpu = {share}

[mempool]
mbufs = 8191

[[port]]
name = "lan"
device = "net_pcap0,rx_pcap=in.pcap,infinite_rx=1"
address = "192.0.2.1/24"

[[port]]
name = "wan"
device = "net_pcap1,rx_pcap={wan_rx}"
address = "198.51.100.1/24"

[[port]]
name = "dmz"
device = "net_pcap2,rx_pcap=empty.pcap"
address = "198.18.0.1/24"
{lcores}
[classify]
default = "permit"

[forward]
routes = [{{ prefix = "203.0.113.0/24", via = "198.51.100.2" }}]
neighbors = [
  {{ address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "wan" }},
  {{ address = "198.18.0.2", mac = "02:00:00:00:02:02", port = "dmz" }},
  {{ address = "192.0.2.10", mac = "02:00:00:00:00:0a", port = "lan" }},
]

[control]
socket = "{sock}"
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
        // Two workers on a 2-CPU machine: one shares the main lcore's CPU.
        share = workers == 2,
    );
    let cfg = lab.write("pollfwd.toml", &text);
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let mut child = lab.spawn(&[
        "--config",
        cfg.to_str().unwrap(),
        "--summary",
        "json",
        "--duration",
        "300",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        if let Ok(c) = Control::try_connect(&sock) {
            break c;
        }
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "pollfwd did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Every change reaches every worker before its reply.
    let mut call = |cmd: &str, args: Value| {
        let r = c.call(cmd, args);
        assert_eq!(r["workers"], workers, "{cmd}: {r}");
        r
    };

    for i in 0..150 {
        // Route flap: the half of the /24 that the LAN traffic goes to moves to the DMZ
        // gateway and back (the more specific /25 wins while it is in).
        call(
            "route.add",
            json!({"prefix": "203.0.113.0/25", "via": "198.18.0.2"}),
        );
        // An unrelated route, to make the table change size.
        call(
            "route.add",
            json!({"prefix": format!("10.{}.0.0/16", i % 250), "via": "198.51.100.2"}),
        );
        // Deny the LAN traffic for a moment.
        let id = call(
            "acl.add",
            json!({"dst": "203.0.113.0/25", "proto": "udp", "action": "deny"}),
        )["id"]
            .clone();
        call("route.del", json!({"prefix": "203.0.113.0/25"}));
        call(
            "route.del",
            json!({"prefix": format!("10.{}.0.0/16", i % 250)}),
        );
        call("acl.del", json!({"id": id}));
    }
    // 900 table changes went in; traffic is still flowing, and no longer to the DMZ.
    let stats = |c: &mut Control| c.call("stats", json!({}));
    let tx_of = |s: &Value, p: &str| port(s, p)["tx_packets"].as_u64().unwrap();
    let before = stats(&mut c);
    std::thread::sleep(Duration::from_millis(300));
    let after = stats(&mut c);
    assert!(
        tx_of(&after, "wan") > tx_of(&before, "wan"),
        "forwarding continues after the updates"
    );
    assert_eq!(
        tx_of(&after, "dmz"),
        tx_of(&before, "dmz"),
        "the flapping route is out of the data plane"
    );
    if workers == 2 {
        assert!(
            tx_of(&after, "lan") > tx_of(&before, "lan"),
            "wan -> lan flows"
        );
    }
    let routes = c.call("route.list", json!({}));
    assert!(
        !routes.to_string().contains("203.0.113.0/25"),
        "the flapping route is gone: {routes}"
    );
    drop(c);

    signal(&child, "TERM");
    let out = wait_with_deadline(child, 60);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rx = lcore_sum(&s, "rx_packets");
    let tx = lcore_sum(&s, "tx_packets");
    let by = &s["totals"]["drops_by_reason"];
    let policy = by["acl_deny"].as_u64().unwrap_or(0);
    assert!(rx > 100_000, "traffic flowed: {rx}");
    assert!(policy > 0, "the deny rule was live at some point: {by}");
    // The route changes reached the data plane: some LAN traffic went out of the DMZ.
    let dmz = port(&s, "dmz")["tx_packets"].as_u64().unwrap();
    assert!(dmz > 0, "traffic followed the flapping route at least once");
    // Every packet: out, or dropped by policy. No other drop reason at all.
    assert_eq!(rx, tx + policy, "in == out + policy drops; drops: {by}");
    assert_eq!(
        s["totals"]["drops"].as_u64().unwrap(),
        policy,
        "only policy drops: {by}"
    );
    let ports_tx: u64 = ["lan", "wan", "dmz"]
        .iter()
        .map(|p| port(&s, p)["tx_packets"].as_u64().unwrap())
        .sum();
    assert_eq!(ports_tx, tx);
    if workers == 2 {
        for id in [1, 2] {
            let l = s["lcores"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["lcore"] == id)
                .unwrap_or_else(|| panic!("lcore {id} in {s}"));
            assert!(
                l["rx_packets"].as_u64().unwrap() > 10_000,
                "lcore {id}: {l}"
            );
        }
    }
}

#[test]
fn hundreds_of_route_and_acl_updates_lose_no_packet() {
    updates_under_traffic(1);
}

#[test]
fn hundreds_of_updates_reach_both_workers_and_lose_no_packet() {
    updates_under_traffic(2);
}

/// Two control clients at once: one reloads (the configuration file alternating between two
/// route sets) while the other adds and deletes routes and ACL rules. Every request of both is
/// answered, none waits on the other for good: a route change holds the control-plane state
/// while it hands its table to the workers, and a reload holds the change lock while it reads
/// that state, so each takes the change lock first (txn::change_lock).
#[test]
fn reloads_and_route_changes_from_two_clients_at_once_all_complete() {
    let lab = Lab::new("live-concurrent");
    traffic::write_pcap(
        &GenSpec {
            count: 256,
            flows: 16,
            src_ip: "192.0.2.10".parse().unwrap(),
            dst_ip: "203.0.113.1".parse().unwrap(),
            dst_mac: [0x02, 0, 0, 0, 0, 0x10],
            ..Default::default()
        },
        &lab.path("in.pcap"),
    )
    .unwrap();
    traffic::write_pcap(
        &GenSpec {
            count: 0,
            ..Default::default()
        },
        &lab.path("empty.pcap"),
    )
    .unwrap();
    let text = |extra_route: bool| {
        format!(
            r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 4095

[[port]]
name = "lan"
device = "net_pcap0,rx_pcap=in.pcap,infinite_rx=1"
address = "192.0.2.1/24"

[[port]]
name = "wan"
device = "net_pcap1,rx_pcap=empty.pcap"
address = "198.51.100.1/24"

[[lcore]]
id = 1
rx = [{{ port = "lan" }}, {{ port = "wan" }}]
stages = ["classify", "forward"]

[classify]
default = "permit"

[forward]
routes = [{{ prefix = "203.0.113.0/24", via = "198.51.100.2" }}{extra}]
neighbors = [{{ address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "wan" }}]

[control]
socket = "{sock}"
"#,
            prefix = lab.prefix(),
            sock = lab.path("ctl.sock").display(),
            extra = if extra_route {
                r#", { prefix = "100.64.0.0/10", via = "198.51.100.2" }"#
            } else {
                ""
            },
        )
    };
    let cfg = lab.write("pollfwd.toml", &text(false));
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.spawn(&["--config", cfg.to_str().unwrap(), "--duration", "300"]);
    let steps = || {
        wait_answering(&sock);
        let t0 = Instant::now();
        std::thread::scope(|s| {
            let reloads = s.spawn(|| {
                let mut c = Control::connect(&sock);
                for i in 0..30 {
                    lab.write("pollfwd.toml", &text(i % 2 == 0));
                    c.call("reload", json!({}));
                }
            });
            let changes = s.spawn(|| {
                let mut c = Control::connect(&sock);
                for i in 0..150 {
                    let p = format!("10.{}.0.0/16", i % 200);
                    c.call("route.add", json!({"prefix": p, "via": "198.51.100.2"}));
                    let id =
                        c.call("acl.add", json!({"dst": "198.18.0.0/15", "action": "deny"}))["id"]
                            .clone();
                    // A reload in between puts the configuration's routes and rules back
                    // in force (docs/configuration.md): then these two find nothing to
                    // delete, and say so.
                    for (cmd, args) in [
                        ("route.del", json!({"prefix": p})),
                        ("acl.del", json!({"id": id})),
                    ] {
                        let r = c.request(cmd, args);
                        assert!(
                            r["ok"] == true || r["error"].as_str().is_some_and(|e| !e.is_empty()),
                            "{cmd}: {r}"
                        );
                    }
                }
            });
            reloads.join().expect("the reloading client");
            changes.join().expect("the changing client");
        });
        eprintln!(
            "30 reloads and 600 changes from two clients in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        // The control socket still answers, the data plane still forwards.
        let a = control_ok(&sock, "stats", json!({}));
        std::thread::sleep(Duration::from_millis(200));
        let b = control_ok(&sock, "stats", json!({}));
        let tx = |s: &Value| port(s, "wan")["tx_packets"].as_u64().unwrap();
        assert!(tx(&b) > tx(&a), "forwarding continues");
    };
    run_then_stop_ok(child, 60, steps);
}
