//! Issue 6: no packet is lost to a change. Hundreds of route and ACL updates go in over the
//! control socket while traffic flows through classify -> forward; at the end every packet
//! received is accounted for: transmitted, or dropped by policy (the ACL), nothing else.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use appliance::traffic::{self, GenSpec};
use common::*;
use serde_json::{Value, json};

struct Conn {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Conn {
    fn call(&mut self, cmd: &str, args: Value) -> Value {
        writeln!(self.w, "{}", json!({"cmd": cmd, "args": args})).unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ok"], true, "{cmd} {v}");
        v["data"].clone()
    }
}

#[test]
fn hundreds_of_route_and_acl_updates_lose_no_packet() {
    let lab = Lab::new("live");
    // 64 flows from the LAN to 203.0.113.0/24 (both halves of it), UDP to port 9.
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
            count: 0,
            ..Default::default()
        },
        &lab.path("empty.pcap"),
    )
    .unwrap();
    let text = format!(
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
routes = [{{ prefix = "203.0.113.0/24", via = "198.51.100.2" }}]
neighbors = [
  {{ address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "wan" }},
  {{ address = "198.51.100.3", mac = "02:00:00:00:01:03", port = "wan" }},
]

[control]
socket = "{sock}"
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display()
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
    let w = loop {
        if let Ok(w) = UnixStream::connect(&sock) {
            break w;
        }
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "pollfwd did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c = Conn {
        r: BufReader::new(w.try_clone().unwrap()),
        w,
    };

    let mut deny_hits_seen = false;
    for i in 0..150 {
        // Route flap: the upper half of the /24 moves to another gateway and back.
        c.call(
            "route.add",
            json!({"prefix": "203.0.113.128/25", "via": "198.51.100.3"}),
        );
        // An unrelated route, to make the table change size.
        c.call(
            "route.add",
            json!({"prefix": format!("10.{}.0.0/16", i % 250), "via": "198.51.100.2"}),
        );
        // Deny half of the flows for a moment.
        let id = c.call(
            "acl.add",
            json!({"dst": "203.0.113.0/25", "proto": "udp", "action": "deny"}),
        )["id"]
            .clone();
        c.call("route.del", json!({"prefix": "203.0.113.128/25"}));
        c.call(
            "route.del",
            json!({"prefix": format!("10.{}.0.0/16", i % 250)}),
        );
        c.call("acl.del", json!({"id": id}));
        if i % 50 == 49 {
            let s = c.call("stats", json!({}));
            deny_hits_seen |= s["totals"]["drops_by_reason"]["acl_deny"]
                .as_u64()
                .unwrap_or(0)
                > 0;
        }
    }
    // 900 table changes went in; traffic is still flowing.
    let before = c.call("stats", json!({}))["totals"]["tx_packets"]
        .as_u64()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let after = c.call("stats", json!({}))["totals"]["tx_packets"]
        .as_u64()
        .unwrap();
    assert!(after > before, "forwarding continues after the updates");
    let routes = c.call("route.list", json!({}));
    assert!(
        !routes.to_string().contains("203.0.113.128/25"),
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
    assert!(
        deny_hits_seen || policy > 0,
        "the deny rule was live at some point"
    );
    // Every packet: out, or dropped by policy. No other drop reason at all.
    assert_eq!(rx, tx + policy, "in == out + policy drops; drops: {by}");
    assert_eq!(
        s["totals"]["drops"].as_u64().unwrap(),
        policy,
        "only policy drops: {by}"
    );
    assert_eq!(port(&s, "wan")["tx_packets"].as_u64().unwrap(), tx);
}
