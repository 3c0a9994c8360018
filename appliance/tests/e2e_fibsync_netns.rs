//! FIB sync (`[fib_sync]`, docs/forward.md "Routes from a routing daemon") with real Linux
//! hosts: hosts A and B in their own network namespaces, joined by veth pairs to a router
//! namespace where pollfwd attaches with `net_af_packet`, creates its punt TAPs (`pf-a`,
//! `pf-b`) and reads the kernel's routing table. Checked as a user would:
//!
//! - routes added with `ip route` / `ip -6 route` out of a punt TAP (proto bgp, proto static)
//!   are in `route.list` with their origin within 100 ms (measured), traffic from A follows
//!   them to an address behind B, deleting them removes them and stops it;
//! - routes on another interface or in another table are ignored and counted; a prefix equal
//!   to a configured static route is not installed (listed as shadowed), the static one stays;
//!   a reload of `[forward]` keeps the routes from the kernel;
//! - a flood beyond `max_routes` is refused and counted, the routes held stay;
//! - FRR: zebra and bgpd in the router namespace peer over the punt TAP with bgpd in B's
//!   namespace, which announces a prefix: it is in pollfwd's FIB with origin bgp, A pings an
//!   address in it, and a withdraw removes it.
//!
//! Needs root, iproute2, iputils-ping, ethtool and frr (`scripts/install-deps.sh`); without
//! one it fails and says which. Namespaces fs{a,b,r}-<pid>, removed when the test ends;
//! daemons run with their files in the test's lab directory and are stopped by PID.
//! Addresses: RFC 5737 / RFC 3849 / RFC 1918 ranges inside these namespaces only.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::frr::{frr_daemon, isolate_router_veths, vtysh};
use common::netns::*;
use common::*;
use serde_json::{Value, json};

fn router_config(lab: &Lab, veth_a: &str, veth_b: &str, extra: &str) -> std::path::PathBuf {
    lab.write(
        "pollfwd.toml",
        &format!(
            r#"[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 4095

[[port]]
name = "a"
device = "net_af_packet0,iface={veth_a}"
address = ["192.0.2.1/24", "2001:db8:1::1/64"]

[[port]]
name = "b"
device = "net_af_packet1,iface={veth_b}"
address = ["198.51.100.1/24", "2001:db8:2::1/64"]

[[lcore]]
id = 1
rx = [{{ port = "a" }}, {{ port = "b" }}]
stages = ["forward"]

[control]
socket = "{sock}"

[punt]
enable = true

[forward]
routes = [{{ prefix = "10.50.0.0/16", via = "192.0.2.2" }}]

{extra}"#,
            prefix = lab.prefix(),
            sock = lab.path("ctl.sock").display()
        ),
    )
}

/// The route of `prefix` in `route.list` (None: not installed).
fn route_of(sock: &Path, prefix: &str) -> Option<Value> {
    let l = control_ok(sock, "route.list", json!({}));
    l["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["prefix"] == prefix)
        .cloned()
}

/// Polls `route.list` (on one connection) until `prefix` is installed (`want`) or gone;
/// returns how long it took from `since`. Fails after 2 s.
///
/// The bound of 100 ms is checked on pollfwd's own measure (`route.sync` `last_batch`
/// `latency_ms`: from the kernel's notification read to the table in every worker); the
/// end-to-end time (`ip` started -> seen in `route.list`) is printed and bounded loosely:
/// on the shared 2-core lab machine the test's own processes are sometimes not scheduled
/// for a few hundred ms.
fn assert_fast(sock: &Path, took: Duration) {
    let last = sync(sock)["last_batch"].clone();
    let ms = last["latency_ms"].as_f64().unwrap();
    assert!(ms <= 100.0, "pollfwd took {ms} ms: {last}");
    assert!(took <= Duration::from_secs(1), "took {took:?} ({last})");
}

fn wait_route(sock: &Path, prefix: &str, want: bool, since: Instant) -> Duration {
    let deadline = since + Duration::from_secs(2);
    let mut c = Control::connect(sock);
    loop {
        let l = c.call("route.list", json!({}));
        let there = l["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["prefix"] == prefix);
        if there == want {
            return since.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{prefix} {} after 2 s: {}",
            if want {
                "not installed"
            } else {
                "still installed"
            },
            control_ok(sock, "route.list", json!({}))
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn sync(sock: &Path) -> Value {
    control_ok(sock, "route.sync", json!({}))
}

fn ping(ns: &str, to: &str) -> bool {
    let o = ns_run(ns, &["ping", "-c", "2", "-i", "0.2", "-W", "1", to]);
    o.status.success()
}

/// Whether `to` answers within 3 s: pings every 0.2 s until the first reply, as an operator
/// would, so that neighbour resolution on three hops (host, pollfwd, host) under a loaded
/// machine does not decide the outcome. On failure, prints what the host's neighbour table
/// and routes say.
fn reaches(ns: &str, to: &str) -> bool {
    let o = ns_run(ns, &["ping", "-c", "1", "-i", "0.2", "-w", "3", to]);
    if !o.status.success() {
        for args in [
            &["ip", "neigh"][..],
            &["ip", "-6", "neigh"],
            &["ip", "-6", "route"],
        ] {
            let n = ns_run(ns, args);
            eprintln!(
                "{ns}: {}:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&n.stdout)
            );
        }
    }
    o.status.success()
}

/// Builds the lab: A and B wired to the router, addresses, default routes via pollfwd, and
/// on B the addresses "behind" it (10.20.0.1, 2001:db8:20::1 on lo).
fn lab_hosts(na: &str, nb: &str, nr: &str, pa: &str, pb: &str) {
    wire_hosts_to_router(nr, &[(na, pa), (nb, pb)]);
    isolate_router_veths(nr, &[&format!("{pa}1"), &format!("{pb}1")]);
    let (a0, b0) = (format!("{pa}0"), format!("{pb}0"));
    host_link(na, &a0, "192.0.2.2/24", Some("192.0.2.1"));
    host_link6(na, &a0, "2001:db8:1::2/64", Some("2001:db8:1::1"));
    host_link(nb, &b0, "198.51.100.2/24", Some("198.51.100.1"));
    host_link6(nb, &b0, "2001:db8:2::2/64", Some("2001:db8:2::1"));
    ns_ok(nb, &["ip", "addr", "add", "10.20.0.1/32", "dev", "lo"]);
    ns_ok(nb, &["sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=0"]);
    ns_ok(
        nb,
        &["ip", "-6", "addr", "add", "2001:db8:20::1/128", "dev", "lo"],
    );
}

#[test]
fn kernel_routes_on_punt_taps_follow_ip_route_with_their_origin() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ping", "ethtool"] {
        assert!(have(t), "'{t}' is missing: run scripts/install-deps.sh");
    }
    let lab = Lab::new("fibsync-netns");
    let pid = std::process::id();
    let [na, nb, nr] = ["a", "b", "r"].map(|n| format!("fs{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nb.clone(), nr.clone()]);
    lab_hosts(&na, &nb, &nr, "fsa", "fsb");
    let cfg = router_config(
        &lab,
        "fsa1",
        "fsb1",
        "[fib_sync]\nenable = true\nmax_routes = 100\n",
    );
    let sock = lab.path("ctl.sock");
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    let ip = |args: &[&str]| {
        ns_ok(&nr, args);
    };
    let steps = || {
        wait_answering(&sock);
        let s = sync(&sock);
        assert_eq!(s["enable"], true, "{s}");
        // Nothing behind B yet: A's ping finds no route in pollfwd.
        assert!(!ping(&na, "10.20.0.1"), "no route yet");

        // 1. IPv4 route, proto bgp, via B on pf-b: installed within 100 ms, with its origin.
        let t0 = Instant::now();
        ip(&[
            "ip",
            "route",
            "add",
            "10.20.0.0/16",
            "via",
            "198.51.100.2",
            "dev",
            "pf-b",
            "proto",
            "bgp",
        ]);
        let took = wait_route(&sock, "10.20.0.0/16", true, t0);
        eprintln!(
            "ip route add -> route.list: {took:?} ({})",
            sync(&sock)["last_batch"]
        );
        assert_fast(&sock, took);
        let r = route_of(&sock, "10.20.0.0/16").unwrap();
        assert_eq!(r["origin"], "bgp", "{r}");
        assert_eq!(r["kind"], "dynamic", "{r}");
        assert_eq!(r["via"], "198.51.100.2", "{r}");
        assert_eq!(r["port"], "b", "{r}");
        let f = control_ok(&sock, "route.list", json!({"origin": "bgp"}));
        assert_eq!(f["count"], 1, "{f}");
        let lk = control_ok(&sock, "route.lookup", json!({"address": "10.20.0.1"}));
        assert_eq!(lk["next_hop"], "198.51.100.2", "{lk}");
        assert!(
            reaches(&na, "10.20.0.1"),
            "A reaches 10.20.0.1 through pollfwd"
        );

        // 2. IPv6, proto static (the kernel's static: "kernel-static"), global gateway.
        let t0 = Instant::now();
        ip(&[
            "ip",
            "-6",
            "route",
            "add",
            "2001:db8:20::/48",
            "via",
            "2001:db8:2::2",
            "dev",
            "pf-b",
            "proto",
            "static",
        ]);
        let took6 = wait_route(&sock, "2001:db8:20::/48", true, t0);
        eprintln!("ip -6 route add -> route.list: {took6:?}");
        assert_fast(&sock, took6);
        let r = route_of(&sock, "2001:db8:20::/48").unwrap();
        assert_eq!(r["origin"], "kernel-static", "{r}");
        assert!(reaches(&na, "2001:db8:20::1"), "A reaches 2001:db8:20::1");
        // A link-local gateway: the interface is known.
        ip(&[
            "ip",
            "-6",
            "route",
            "add",
            "2001:db8:21::/48",
            "via",
            "fe80::1",
            "dev",
            "pf-b",
            "proto",
            "bgp",
        ]);
        wait_route(&sock, "2001:db8:21::/48", true, Instant::now());
        let r = route_of(&sock, "2001:db8:21::/48").unwrap();
        assert_eq!(r["via"], "fe80::1", "{r}");

        // 3. Ignored and counted: another interface, another table, a blackhole.
        let before = sync(&sock)["counters"]["ignored"].clone();
        ip(&[
            "ip", "link", "add", "fsdum", "type", "veth", "peer", "name", "fsdum2",
        ]);
        ip(&["ip", "link", "set", "fsdum", "up"]);
        ip(&["ip", "addr", "add", "10.99.0.1/24", "dev", "fsdum"]);
        ip(&[
            "ip",
            "route",
            "add",
            "10.30.0.0/16",
            "via",
            "10.99.0.2",
            "dev",
            "fsdum",
            "proto",
            "bgp",
        ]);
        ip(&[
            "ip",
            "route",
            "add",
            "10.40.0.0/16",
            "via",
            "198.51.100.2",
            "dev",
            "pf-b",
            "table",
            "100",
        ]);
        ip(&[
            "ip",
            "route",
            "add",
            "blackhole",
            "10.60.0.0/16",
            "proto",
            "bgp",
        ]);
        std::thread::sleep(Duration::from_millis(100));
        let s = sync(&sock);
        let ig = &s["counters"]["ignored"];
        let grew = |k: &str| ig[k].as_u64().unwrap_or(0) > before[k].as_u64().unwrap_or(0);
        assert!(grew("not_punt_interface"), "{s}");
        assert!(grew("other_table"), "{s}");
        assert!(grew("blackhole"), "{s}");
        for p in ["10.30.0.0/16", "10.40.0.0/16", "10.60.0.0/16"] {
            assert!(route_of(&sock, p).is_none(), "{p} installed");
        }

        // 4. The configured static route stays authoritative: the kernel's is shadowed.
        ip(&[
            "ip",
            "route",
            "add",
            "10.50.0.0/16",
            "via",
            "198.51.100.2",
            "dev",
            "pf-b",
            "proto",
            "bgp",
        ]);
        std::thread::sleep(Duration::from_millis(100));
        let r = route_of(&sock, "10.50.0.0/16").unwrap();
        assert_eq!(r["origin"], "static", "{r}");
        assert_eq!(r["via"], "192.0.2.2", "{r}");
        let l = control_ok(&sock, "route.list", json!({}));
        let sh = l["shadowed"].as_array().expect("a shadowed list");
        assert!(
            sh.iter()
                .any(|x| x["prefix"] == "10.50.0.0/16" && x["origin"] == "bgp"),
            "{l}"
        );
        assert_eq!(sync(&sock)["shadowed"], 1);
        // A reload of [forward] (one more static route) keeps the routes from the kernel.
        let text = std::fs::read_to_string(&cfg).unwrap().replace(
            r#"routes = [{ prefix = "10.50.0.0/16", via = "192.0.2.2" }]"#,
            r#"routes = [{ prefix = "10.50.0.0/16", via = "192.0.2.2" }, { prefix = "10.51.0.0/16", via = "192.0.2.2" }]"#,
        );
        assert!(text.contains("10.51.0.0/16"));
        std::fs::write(&cfg, text).unwrap();
        let out = ctl(&sock, &["--json", "reload"]);
        assert!(
            out.status.success(),
            "reload: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            route_of(&sock, "10.51.0.0/16").is_some(),
            "the new static route"
        );
        let r = route_of(&sock, "10.20.0.0/16").expect("kept over the reload");
        assert_eq!(r["origin"], "bgp", "{r}");
        assert!(reaches(&na, "10.20.0.1"), "still routed after the reload");
        // route.del names what a dynamic route is.
        let e = control_call(&sock, "route.del", json!({"prefix": "10.20.0.0/16"})).unwrap_err();
        assert!(e.contains("routing daemon"), "{e}");

        // 5. A flood beyond max_routes (100): refused and counted, nothing held is lost.
        let held = sync(&sock)["routes"].as_u64().unwrap();
        let mut batch = String::new();
        for k in 0..150 {
            batch += &format!("route add 10.70.{k}.0/24 via 198.51.100.2 dev pf-b proto bgp\n");
        }
        let bf = lab.write("flood.batch", &batch);
        ip(&["ip", "-batch", bf.to_str().unwrap()]);
        std::thread::sleep(Duration::from_millis(300));
        let s = sync(&sock);
        assert_eq!(s["routes"], 100, "{s}");
        assert_eq!(
            s["counters"]["refused_limit"].as_u64().unwrap(),
            150 - (100 - held),
            "{s}"
        );
        assert!(route_of(&sock, "10.20.0.0/16").is_some());
        assert!(reaches(&na, "10.20.0.1"), "still routed after the flood");
        let del: String = batch.replace("route add", "route del");
        let bf = lab.write("flood-del.batch", &del);
        ip(&["ip", "-batch", bf.to_str().unwrap()]);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(sync(&sock)["routes"].as_u64().unwrap(), held);

        // The counters in Prometheus' text too.
        let m = ctl(&sock, &["metrics"]);
        let m = String::from_utf8_lossy(&m.stdout).into_owned();
        assert!(m.contains("pollfwd_fib_sync_routes "), "{m}");
        assert!(
            m.contains("pollfwd_fib_sync_ignored_total{reason=\"blackhole\"} "),
            "{m}"
        );
        // 6. Deleting the route: withdrawn within 100 ms, traffic stops.
        let t0 = Instant::now();
        ip(&["ip", "route", "del", "10.20.0.0/16"]);
        let took = wait_route(&sock, "10.20.0.0/16", false, t0);
        let last = sync(&sock)["last_batch"].clone();
        eprintln!("ip route del -> gone from route.list: {took:?} ({last})");
        assert_fast(&sock, took);
        assert!(!ping(&na, "10.20.0.1"), "no route any more");
        let s = sync(&sock);
        // The 96 flood routes held, then 10.20.0.0/16.
        assert!(s["counters"]["withdrawn"].as_u64().unwrap() >= 97, "{s}");
    };
    let out = run_then_stop(child, 60, steps);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A measurement (`cargo test -p pollfwd --test e2e_fibsync_netns -- --ignored --nocapture`):
/// 100 000 routes added to the kernel's main table with `ip -batch` (proto bgp, out of
/// `pf-b`), the time until all are in pollfwd's FIB, the batches and tables it took, and
/// the loss of a ping flow from A to B (an existing route) meanwhile; then the same for
/// deleting them. docs/forward.md quotes its figures; the issue's bound is 2 s.
#[test]
#[ignore]
fn measure_100k_kernel_routes() {
    require_root("network namespaces and veth pairs");
    let lab = Lab::new("fibsync-100k");
    let pid = std::process::id();
    let [na, nb, nr] = ["a", "b", "r"].map(|n| format!("fm{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nb.clone(), nr.clone()]);
    lab_hosts(&na, &nb, &nr, "fma", "fmb");
    let cfg = router_config(&lab, "fma1", "fmb1", "[fib_sync]\nenable = true\n");
    let sock = lab.path("ctl.sock");
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 300);
    const N: usize = 100_000;
    let prefix = |k: usize| {
        if k < 65536 {
            format!("10.{}.{}.0/24", k >> 8, k & 255)
        } else {
            let j = k - 65536;
            format!("10.{}.{}.{}/25", j >> 9, (j >> 1) & 255, (j & 1) * 128)
        }
    };
    let steps = || {
        wait_answering(&sock);
        assert!(reaches(&na, "198.51.100.2"));
        let mut add = String::new();
        for k in 0..N {
            add += &format!(
                "route add {} via 198.51.100.2 dev pf-b proto bgp\n",
                prefix(k)
            );
        }
        let del = add.replace("route add", "route del");
        let (fa, fd) = (lab.write("add.batch", &add), lab.write("del.batch", &del));
        for (what, file, want) in [("add", &fa, N as u64), ("delete", &fd, 0)] {
            let s0 = sync(&sock);
            let flow = ns_spawn(
                &na,
                &[
                    "ping",
                    "-q",
                    "-i",
                    "0.002",
                    "-c",
                    "2500",
                    "-W",
                    "1",
                    "198.51.100.2",
                ],
            );
            std::thread::sleep(Duration::from_millis(300));
            let t0 = Instant::now();
            ns_ok(&nr, &["ip", "-batch", file.to_str().unwrap()]);
            let t_ip = t0.elapsed();
            let mut c = Control::connect(&sock);
            let deadline = t0 + Duration::from_secs(60);
            loop {
                let s = c.call("route.sync", json!({}));
                if s["routes"].as_u64() == Some(want) {
                    break;
                }
                assert!(Instant::now() < deadline, "not there after 60 s: {s}");
                std::thread::sleep(Duration::from_millis(5));
            }
            let t_fib = t0.elapsed();
            let s = sync(&sock);
            let fo = flow.wait_with_output().unwrap();
            let fo = String::from_utf8_lossy(&fo.stdout).into_owned();
            let loss = fo
                .lines()
                .find(|l| l.contains("packet loss"))
                .unwrap_or("no ping summary")
                .to_string();
            let d =
                |k: &str| s["counters"][k].as_u64().unwrap() - s0["counters"][k].as_u64().unwrap();
            eprintln!(
                "{what} {N} routes: ip -batch {:.2} s, all in pollfwd's FIB after {:.2} s; {} tables ({} changed in place), {} dumps, {} overflows; last table {} ms; flow A->B meanwhile: {loss}",
                t_ip.as_secs_f64(),
                t_fib.as_secs_f64(),
                d("batches"),
                d("in_place"),
                d("dumps"),
                d("overflows"),
                s["last_batch"]["build_ms"]
            );
            let r = control_ok(&sock, "route.list", json!({"origin": "bgp"}));
            assert_eq!(r["count"].as_u64(), Some(want));
            if want == 0 {
                continue;
            }
            // One more route with 100k held: changed in place (the twin of the table built
            // last is made in the background meanwhile), not rebuilt.
            std::thread::sleep(Duration::from_secs(6));
            for cmd in ["add", "del"] {
                let mut c = Control::connect(&sock);
                let before = c.call("forward.stats", json!({}))["routes"].clone();
                let t0 = Instant::now();
                ns_ok(
                    &nr,
                    &[
                        "ip",
                        "route",
                        cmd,
                        "100.64.0.0/16",
                        "via",
                        "198.51.100.2",
                        "dev",
                        "pf-b",
                        "proto",
                        "bgp",
                    ],
                );
                // forward.stats' route count: cheap (route.lookup resolves every route).
                loop {
                    let l = c.call("forward.stats", json!({}));
                    if l["routes"] != before {
                        break;
                    }
                    assert!(t0.elapsed() < Duration::from_secs(10), "{l}");
                    std::thread::sleep(Duration::from_millis(1));
                }
                let s = sync(&sock);
                eprintln!(
                    "one route {cmd} with {N} held: in pollfwd's FIB after {:.1} ms ({})",
                    t0.elapsed().as_secs_f64() * 1000.0,
                    s["last_batch"]
                );
            }
        }
    };
    let out = run_then_stop(child, 60, steps);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A FRR daemon started for the test (stopped by PID on drop).
#[test]
fn frr_bgp_routes_reach_the_fib_and_leave_on_withdraw() {
    require_root("network namespaces and veth pairs");
    for t in [
        "ip",
        "ping",
        "ethtool",
        "vtysh",
        "/usr/lib/frr/zebra",
        "/usr/lib/frr/bgpd",
    ] {
        assert!(
            have(t),
            "'{t}' is missing: run scripts/install-deps.sh (it installs frr)"
        );
    }
    let lab = Lab::new("fibsync-frr");
    let pid = std::process::id();
    let [na, nb, nr] = ["a", "b", "r"].map(|n| format!("fb{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nb.clone(), nr.clone()]);
    lab_hosts(&na, &nb, &nr, "fba", "fbb");
    ns_ok(&nb, &["ip", "addr", "add", "10.77.0.1/24", "dev", "lo"]);
    let cfg = router_config(&lab, "fba1", "fbb1", "[fib_sync]\nenable = true\n");
    let sock = lab.path("ctl.sock");
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    let (dir_r, dir_b) = (lab.path("frr-router"), lab.path("frr-peer"));
    let steps = || {
        wait_answering(&sock);
        assert!(!ping(&na, "10.77.0.1"), "no route before BGP");
        let zsock = dir_r.join("zserv.api");
        let z = zsock.to_str().unwrap().to_string();
        let _zebra = frr_daemon(&nr, &dir_r, "zebra", "hostname router\n", &["-z", &z]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !zsock.exists() {
            assert!(Instant::now() < deadline, "zebra did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let _router = frr_daemon(
            &nr,
            &dir_r,
            "bgpd",
            "hostname router\n\
             router bgp 64512\n bgp router-id 198.51.100.1\n no bgp ebgp-requires-policy\n\
             neighbor 198.51.100.2 remote-as 64513\n neighbor 198.51.100.2 timers 1 3\n\
             neighbor 198.51.100.2 timers connect 1\n",
            &["-z", &z, "-l", "198.51.100.1"],
        );
        let zb = dir_b.join("zserv.api").to_str().unwrap().to_string();
        let _peer = frr_daemon(
            &nb,
            &dir_b,
            "bgpd",
            "hostname peer\n\
             router bgp 64513\n bgp router-id 198.51.100.2\n no bgp ebgp-requires-policy\n\
             neighbor 198.51.100.1 remote-as 64512\n neighbor 198.51.100.1 timers 1 3\n\
             neighbor 198.51.100.1 timers connect 1\n\
             address-family ipv4 unicast\n  network 10.77.0.0/24\n exit-address-family\n",
            &["-z", &zb, "-Z", "-l", "198.51.100.2"],
        );
        // The prefix reaches pollfwd's FIB through BGP, zebra and the kernel.
        let deadline = Instant::now() + Duration::from_secs(40);
        let route = loop {
            if let Some(r) = route_of(&sock, "10.77.0.0/24") {
                break r;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir_r.join("bgpd.log")).unwrap_or_default();
                panic!(
                    "10.77.0.0/24 not in pollfwd's FIB after 40 s\nkernel: {}\nbgp: {}\nrouter bgpd log:\n{log}",
                    ns_ok(&nr, &["ip", "route"]),
                    vtysh(&nr, &dir_r, &["show bgp summary"])
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(route["origin"], "bgp", "{route}");
        assert_eq!(route["via"], "198.51.100.2", "{route}");
        assert_eq!(route["port"], "b", "{route}");
        let k = ns_ok(&nr, &["ip", "route", "show", "10.77.0.0/24"]);
        assert!(k.contains("proto bgp") && k.contains("pf-b"), "{k}");
        assert!(reaches(&na, "10.77.0.1"), "A reaches the announced prefix");

        // Withdraw: the peer stops announcing; zebra deletes the kernel route; pollfwd too.
        vtysh(
            &nb,
            &dir_b,
            &[
                "configure terminal",
                "router bgp 64513",
                "address-family ipv4 unicast",
                "no network 10.77.0.0/24",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while route_of(&sock, "10.77.0.0/24").is_some() {
            assert!(
                Instant::now() < deadline,
                "still in pollfwd's FIB 20 s after the withdraw"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!ping(&na, "10.77.0.1"), "no route after the withdraw");
        let s = sync(&sock);
        assert!(s["counters"]["installed"].as_u64().unwrap() >= 1, "{s}");
        assert!(s["counters"]["withdrawn"].as_u64().unwrap() >= 1, "{s}");
    };
    let out = run_then_stop(child, 60, steps);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits (up to `secs`) until `prefix` is in pollfwd's FIB; returns how long it took.
fn wait_route_for(sock: &Path, prefix: &str, secs: u64) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if control_call(sock, "route.list", json!({})).is_ok() && route_of(sock, prefix).is_some() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Pings `to` from `ns` `n` times every 20 ms in the background; the result is
/// (transmitted, received).
fn ping_flow(ns: &str, to: &str, n: u32) -> std::thread::JoinHandle<(u32, u32)> {
    let (ns, to) = (ns.to_string(), to.to_string());
    std::thread::spawn(move || {
        let o = ns_run(
            &ns,
            &[
                "ping",
                "-q",
                "-c",
                &n.to_string(),
                "-i",
                "0.02",
                "-W",
                "1",
                &to,
            ],
        );
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("transmitted"))
            .unwrap_or_else(|| panic!("ping summary: {text}"));
        let num = |k: &str| -> u32 {
            let w: Vec<&str> = line.split(", ").collect();
            w.iter()
                .find(|p| p.contains(k))
                .and_then(|p| p.split_whitespace().next())
                .and_then(|x| x.parse().ok())
                .unwrap_or(0)
        };
        (num("transmitted"), num("received"))
    })
}

#[test]
fn restarts_of_frr_and_of_pollfwd_resynchronise_the_fib() {
    require_root("network namespaces and veth pairs");
    for t in [
        "ip",
        "ping",
        "ethtool",
        "vtysh",
        "/usr/lib/frr/zebra",
        "/usr/lib/frr/bgpd",
    ] {
        assert!(
            have(t),
            "'{t}' is missing: run scripts/install-deps.sh (it installs frr)"
        );
    }
    let lab = Lab::new("fibsync-restart");
    let pid = std::process::id();
    let [na, nb, nr] = ["a", "b", "r"].map(|n| format!("fr{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nb.clone(), nr.clone()]);
    lab_hosts(&na, &nb, &nr, "fra", "frb");
    ns_ok(&nb, &["ip", "addr", "add", "10.77.0.1/24", "dev", "lo"]);
    let cfg = router_config(&lab, "fra1", "frb1", "[fib_sync]\nenable = true\n");
    let sock = lab.path("ctl.sock");
    let (dir_r, dir_b) = (lab.path("frr-router"), lab.path("frr-peer"));
    let zsock = dir_r.join("zserv.api");
    let z = zsock.to_str().unwrap().to_string();
    let bgp_router = "hostname router\n\
         router bgp 64512\n bgp router-id 198.51.100.1\n no bgp ebgp-requires-policy\n\
         neighbor 198.51.100.2 remote-as 64513\n neighbor 198.51.100.2 timers 1 3\n\
         neighbor 198.51.100.2 timers connect 1\n";
    // The router's FRR: zebra keeps its routes in the kernel when it stops (-r) and, started
    // again, keeps the ones it finds for 30 s while the protocols relearn them (-K 30).
    let start_router = |first: bool| {
        let mut zargs = vec!["-z", z.as_str(), "-r"];
        if !first {
            zargs.extend(["-K", "30"]);
        }
        let _ = std::fs::remove_file(&zsock);
        let zebra = frr_daemon(&nr, &dir_r, "zebra", "hostname router\n", &zargs);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !zsock.exists() {
            assert!(Instant::now() < deadline, "zebra did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let bgpd = frr_daemon(
            &nr,
            &dir_r,
            "bgpd",
            bgp_router,
            &["-z", &z, "-l", "198.51.100.1"],
        );
        (zebra, bgpd)
    };
    let mut child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    wait_answering(&sock);
    let zb = dir_b.join("zserv.api").to_str().unwrap().to_string();
    let _peer = frr_daemon(
        &nb,
        &dir_b,
        "bgpd",
        "hostname peer\n\
         router bgp 64513\n bgp router-id 198.51.100.2\n no bgp ebgp-requires-policy\n\
         neighbor 198.51.100.1 remote-as 64512\n neighbor 198.51.100.1 timers 1 3\n\
         neighbor 198.51.100.1 timers connect 1\n\
         address-family ipv4 unicast\n  network 10.77.0.0/24\n exit-address-family\n",
        &["-z", &zb, "-Z", "-l", "198.51.100.2"],
    );
    let (zebra, bgpd) = start_router(true);
    assert!(
        wait_route_for(&sock, "10.77.0.0/24", 40).is_some(),
        "10.77.0.0/24 not in pollfwd's FIB after 40 s: {}",
        vtysh(&nr, &dir_r, &["show bgp summary"])
    );
    assert!(reaches(&na, "10.77.0.1"));

    // 1. FRR restarts (zebra -r): the kernel keeps the route, so does pollfwd; traffic never
    // stops. A ping flow of 6 s spans the stop, 2 s without FRR, and the start.
    let flow = ping_flow(&na, "10.77.0.1", 300);
    std::thread::sleep(Duration::from_millis(500));
    for d in [&bgpd, &zebra] {
        signal(&d.child, "TERM");
    }
    drop((bgpd, zebra));
    let t0 = Instant::now();
    let mut gone = 0;
    while t0.elapsed() < Duration::from_secs(2) {
        gone += route_of(&sock, "10.77.0.0/24").is_none() as u32;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(gone, 0, "the route left pollfwd's FIB while FRR was down");
    let (zebra, bgpd) = start_router(false);
    let (sent, got) = flow.join().unwrap();
    eprintln!("FRR restart: ping {got}/{sent}");
    assert!(
        sent >= 250 && got == sent,
        "lost {} of {sent} pings",
        sent - got
    );
    // The session comes back and BGP learns the prefix again; the route is the daemon's.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !vtysh(&nr, &dir_r, &["show ip bgp 10.77.0.0/24"]).contains("(1 available") {
        assert!(Instant::now() < deadline, "BGP did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(route_of(&sock, "10.77.0.0/24").unwrap()["origin"], "bgp");

    // 2. pollfwd restarts: its TAPs go and the kernel drops the routes through them; the
    // TAPs come back with the new pollfwd, BGP reconnects through them, zebra installs the
    // route again and the dump or the notifications bring it into the new FIB.
    let s = stop(child);
    assert!(s["lcores"].is_array(), "{s}");
    let t0 = Instant::now();
    child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    wait_answering(&sock);
    let up = t0.elapsed();
    let took = wait_route_for(&sock, "10.77.0.0/24", 30).unwrap_or_else(|| {
        panic!(
            "10.77.0.0/24 not back 30 s after pollfwd restarted: {}\n{}",
            vtysh(&nr, &dir_r, &["show bgp summary"]),
            ns_ok(&nr, &["ip", "route"])
        )
    });
    eprintln!("pollfwd restart: answering after {up:?}, route back {took:?} later");
    assert!(reaches(&na, "10.77.0.1"), "A reaches the prefix again");
    drop((bgpd, zebra));
    let s = stop(child);
    assert!(s["lcores"].is_array(), "{s}");
}
