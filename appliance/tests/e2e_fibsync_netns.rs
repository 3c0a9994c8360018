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
//! - notifications lost (a 4 KiB socket buffer overflowed by 20,000 routes) are counted and
//!   the kernel's table read again: every route ends up installed;
//! - FRR: zebra and bgpd in the router namespace peer over the punt TAP with bgpd in B's
//!   namespace, which announces a prefix: it is in pollfwd's FIB with origin bgp, A pings an
//!   address in it, and a withdraw removes it;
//! - multipath: a kernel route with three next hops (three hosts on a bridge behind port b)
//!   is one route with three next hops; A's flows to 40 addresses spread over the hosts (the
//!   replies' TTL names each host), pollfwd's per-next-hop counters equal each host's echo
//!   requests; replaced with fewer next hops, only the flows of those removed move; weights
//!   counted as ignored; IPv6 next hops deleted and appended alone; a route over a nexthop
//!   object group follows a member deleted;
//! - FRR ECMP: two BGP peers announce one prefix, zebra (`maximum-paths 2`) installs it with
//!   two next hops: a two-member group in pollfwd, flows over both, one flow never split; a
//!   peer shutting down leaves one member.
//!
//! Needs root, iproute2, iputils-ping, ethtool and frr (`scripts/install-deps.sh`); without
//! one it fails and says which. Namespaces `<test><role>-<pid>` (tests fs, fb, fr, fm, fo, fp, fq, fe),
//! removed when the test ends; daemons run with their files in the test's lab directory and
//! are stopped by PID.
//! Addresses: RFC 5737 / RFC 3849 / RFC 1918 ranges inside these namespaces only.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::frr::{frr_daemon, isolate_router_veths, require_frr, vtysh, zebra};
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
    // A lookup of the prefix's own address, not the whole list: with 20,000 routes a list
    // every millisecond kept the control plane busy enough to delay the very route it waited
    // for past the deadline (seen once in CI). The prefixes waited for have no more specific
    // route at their first address.
    let address = prefix.split('/').next().unwrap();
    loop {
        let l = c.call("route.lookup", json!({ "address": address }));
        let there = l["route"] == prefix;
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

/// Polls `route.sync` (on one connection) until pollfwd holds `want` routes from the kernel;
/// fails `secs` after `since`.
fn wait_synced(sock: &Path, want: u64, since: Instant, secs: u64) {
    let mut c = Control::connect(sock);
    loop {
        let s = c.call("route.sync", json!({}));
        if s["routes"].as_u64() == Some(want) {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(secs),
            "not {want} after {secs} s: {s}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
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

/// The lab of most tests here: namespaces `<tag>a-<pid>`, `<tag>b-<pid>`, `<tag>r-<pid>` wired
/// by [`lab_hosts`] (veths `<tag>a0/1`, `<tag>b0/1`) while the busy-polling lock is held,
/// and pollfwd's configuration ([`router_config`] with `extra`) in lab `name`: the lab, the
/// namespaces (A, B, router), the configuration and control socket paths, and the guards
/// (the namespaces are removed first, then the lock is released).
type AbLab = (Lab, [String; 3], PathBuf, PathBuf, (Netns, BusyGuard));

fn ab_lab(tag: &str, name: &str, extra: &str) -> AbLab {
    let lab = Lab::new(name);
    let pid = std::process::id();
    let [na, nb, nr] = ["a", "b", "r"].map(|n| format!("{tag}{n}-{pid}"));
    let g = busy_lock();
    let ns = Netns::create(&[na.clone(), nb.clone(), nr.clone()]);
    let (pa, pb) = (format!("{tag}a"), format!("{tag}b"));
    lab_hosts(&na, &nb, &nr, &pa, &pb);
    let cfg = router_config(&lab, &format!("{pa}1"), &format!("{pb}1"), extra);
    let sock = lab.path("ctl.sock");
    (lab, [na, nb, nr], cfg, sock, (ns, g))
}

#[test]
fn kernel_routes_on_punt_taps_follow_ip_route_with_their_origin() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ping", "ethtool"] {
        assert!(have(t), "'{t}' is missing: run scripts/install-deps.sh");
    }
    let (lab, [na, _, nr], cfg, sock, _guards) = ab_lab(
        "fs",
        "fibsync-netns",
        "[fib_sync]\nenable = true\nmax_routes = 100\n",
    );
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
    run_then_stop_ok(child, 60, steps);
}

/// A measurement (`cargo test -p pollfwd --test e2e_fibsync_netns -- --ignored --nocapture`):
/// 100 000 routes added to the kernel's main table with `ip -batch` (proto bgp, out of
/// `pf-b`), the time until all are in pollfwd's FIB, the batches and tables it took, and
/// the loss of a ping flow from A to B (an existing route) meanwhile; then the same for
/// deleting them. docs/forward.md quotes its figures; the issue's bound is 2 s.
#[test]
#[ignore = "a measurement that prints figures (docs/forward.md), run by hand with --ignored"]
fn measure_100k_kernel_routes() {
    require_root("network namespaces and veth pairs");
    let (lab, [na, _, nr], cfg, sock, _guards) =
        ab_lab("fm", "fibsync-100k", "[fib_sync]\nenable = true\n");
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
            wait_synced(&sock, want, t0, 60);
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
    // What the reader said about its tables (dumps, large batches, twins).
    for l in String::from_utf8_lossy(&out.stderr).lines() {
        if l.contains("fib_sync") {
            eprintln!("{l}");
        }
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Notifications lost: with a 4 KiB netlink buffer (`socket_buffer_kb = 4`), 20,000 routes
/// added with `ip -batch` overflow the socket while pollfwd builds a table; pollfwd counts the
/// overflow, reads the kernel's table again and ends with every route (and follows later
/// changes one by one again); deleting them all leaves none. A flow from A to B (an existing
/// route) keeps going.
#[test]
fn a_notification_overflow_reads_the_kernel_table_again() {
    require_root("network namespaces and veth pairs");
    let (lab, [na, _, nr], cfg, sock, _guards) = ab_lab(
        "fo",
        "fibsync-overflow",
        "[fib_sync]\nenable = true\nsocket_buffer_kb = 4\n",
    );
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    const N: u64 = 20_000;
    let steps = || {
        wait_answering(&sock);
        assert!(reaches(&na, "198.51.100.2"));
        let s0 = sync(&sock);
        assert_eq!(s0["socket_buffer_kb"], 4, "{s0}");
        let buf = s0["socket_buffer_bytes"].as_u64().unwrap();
        assert!((4096..=16384).contains(&buf), "{s0}");
        let mut add = String::new();
        for k in 0..N {
            add += &format!(
                "route add 10.{}.{}.0/24 via 198.51.100.2 dev pf-b proto bgp\n",
                k >> 8,
                k & 255
            );
        }
        let del = add.replace("route add", "route del");
        let (fa, fd) = (lab.write("add.batch", &add), lab.write("del.batch", &del));
        for (file, want) in [(&fa, N), (&fd, 0)] {
            ns_ok(&nr, &["ip", "-batch", file.to_str().unwrap()]);
            wait_synced(&sock, want, Instant::now(), 60);
            let r = control_ok(&sock, "route.list", json!({"origin": "bgp"}));
            assert_eq!(r["count"].as_u64(), Some(want), "route.list says");
            if want == N {
                let s = sync(&sock);
                let c = &s["counters"];
                assert!(c["overflows"].as_u64().unwrap() >= 1, "no overflow: {s}");
                assert!(
                    c["dumps"].as_u64().unwrap() > s0["counters"]["dumps"].as_u64().unwrap(),
                    "no dump after the overflow: {s}"
                );
                let l = control_ok(&sock, "route.lookup", json!({"address": "10.77.1.5"}));
                assert_eq!(l["route"], "10.77.1.0/24", "{l}");
                assert_eq!(l["kind"], "dynamic", "{l}");
                // After the storm, one change is followed as it comes.
                let t0 = Instant::now();
                ns_ok(
                    &nr,
                    &[
                        "ip",
                        "route",
                        "add",
                        "100.64.0.0/16",
                        "via",
                        "198.51.100.2",
                        "dev",
                        "pf-b",
                        "proto",
                        "bgp",
                    ],
                );
                wait_route(&sock, "100.64.0.0/16", true, t0);
                ns_ok(&nr, &["ip", "route", "del", "100.64.0.0/16"]);
                wait_route(&sock, "100.64.0.0/16", false, Instant::now());
            }
        }
        assert!(reaches(&na, "198.51.100.2"));
    };
    run_then_stop_ok(child, 60, steps);
}

/// FRR beside pollfwd (zebra and bgpd in the router namespace) peers over the punt TAP with
/// bgpd in B's namespace, which announces a prefix: installed with origin bgp, A reaches it,
/// and a withdraw removes it.
#[test]
fn frr_bgp_routes_reach_the_fib_and_leave_on_withdraw() {
    require_frr(&["zebra", "bgpd"]);
    let (lab, [na, nb, nr], cfg, sock, _guards) =
        ab_lab("fb", "fibsync-frr", "[fib_sync]\nenable = true\n");
    ns_ok(&nb, &["ip", "addr", "add", "10.77.0.1/24", "dev", "lo"]);
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    let (dir_r, dir_b) = (lab.path("frr-router"), lab.path("frr-peer"));
    let steps = || {
        wait_answering(&sock);
        assert!(!ping(&na, "10.77.0.1"), "no route before BGP");
        let (_zebra, z) = zebra(&nr, &dir_r, &[]);
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
    run_then_stop_ok(child, 60, steps);
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
    require_frr(&["zebra", "bgpd"]);
    let (lab, [na, nb, nr], cfg, sock, _guards) =
        ab_lab("fr", "fibsync-restart", "[fib_sync]\nenable = true\n");
    ns_ok(&nb, &["ip", "addr", "add", "10.77.0.1/24", "dev", "lo"]);
    let (dir_r, dir_b) = (lab.path("frr-router"), lab.path("frr-peer"));
    let bgp_router = "hostname router\n\
         router bgp 64512\n bgp router-id 198.51.100.1\n no bgp ebgp-requires-policy\n\
         neighbor 198.51.100.2 remote-as 64513\n neighbor 198.51.100.2 timers 1 3\n\
         neighbor 198.51.100.2 timers connect 1\n";
    // The router's FRR: zebra keeps its routes in the kernel when it stops (-r) and, started
    // again, keeps the ones it finds for 30 s while the protocols relearn them (-K 30).
    let start_router = |first: bool| {
        let keep: &[&str] = if first { &["-r"] } else { &["-r", "-K", "30"] };
        let (zebra, z) = zebra(&nr, &dir_r, keep);
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

/// Hosts behind port b for the multipath tests: port b's veth end `<p>w0` goes into switch
/// namespace `nw` on a bridge; each host of `hosts` (namespace, last byte of its addresses,
/// hop limit it sends with) joins the bridge by a veth pair and gets 198.51.100.N/24 and
/// 2001:db8:2::N/64, default routes via pollfwd, every address of 10.8.0.0/15 and
/// 2001:db8:9::/48 as its own (`local` routes on lo), and its own TTL / hop limit: a reply
/// seen by A says which host answered.
fn hosts_behind_b(nw: &str, p: &str, hosts: &[(&str, u8, u8)]) {
    ns_ok(nw, &["ip", "link", "add", "br0", "type", "bridge"]);
    ns_ok(
        nw,
        &["ip", "link", "set", &format!("{p}w0"), "master", "br0"],
    );
    ns_ok(nw, &["ip", "link", "set", &format!("{p}w0"), "up"]);
    ns_ok(nw, &["ip", "link", "set", "br0", "up"]);
    for (k, (ns, n, ttl)) in hosts.iter().enumerate() {
        let (h0, h1) = (format!("{p}h{k}0"), format!("{p}h{k}1"));
        ok(&[
            "ip", "link", "add", &h0, "netns", ns, "type", "veth", "peer", "name", &h1, "netns", nw,
        ]);
        ns_ok(nw, &["ip", "link", "set", &h1, "master", "br0"]);
        ns_ok(nw, &["ip", "link", "set", &h1, "up"]);
        ns_ok(ns, &["ip", "link", "set", "lo", "up"]);
        ns_ok(ns, &["ethtool", "-K", &h0, "tx", "off"]);
        host_link(ns, &h0, &format!("198.51.100.{n}/24"), Some("198.51.100.1"));
        host_link6(
            ns,
            &h0,
            &format!("2001:db8:2::{n}/64"),
            Some("2001:db8:2::1"),
        );
        ns_ok(
            ns,
            &["ip", "route", "add", "local", "10.8.0.0/15", "dev", "lo"],
        );
        ns_ok(ns, &["sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=0"]);
        ns_ok(
            ns,
            &[
                "ip",
                "-6",
                "route",
                "add",
                "local",
                "2001:db8:9::/48",
                "dev",
                "lo",
            ],
        );
        ns_ok(
            ns,
            &["sysctl", "-qw", &format!("net.ipv4.ip_default_ttl={ttl}")],
        );
        ns_ok(
            ns,
            &[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{h0}.hop_limit={ttl}"),
            ],
        );
    }
}

/// The TTL (hop limit) of the reply to one ping from `ns` to `to` (None: no reply in 3 s).
fn reply_ttl(ns: &str, to: &str) -> Option<u8> {
    let o = ns_run(ns, &["ping", "-c", "1", "-w", "3", to]);
    let out = String::from_utf8_lossy(&o.stdout);
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("ttl="))
        .and_then(|t| t.parse().ok())
}

/// ICMP echo requests a host's kernel received (`/proc/net/snmp` `Icmp: InEchos`).
fn in_echos(ns: &str, v6: bool) -> u64 {
    let (file, key) = if v6 {
        ("/proc/net/snmp6", "Icmp6InEchos")
    } else {
        ("/proc/net/snmp", "InEchos")
    };
    let text = ns_ok(ns, &["cat", file]);
    if v6 {
        return text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .expect("Icmp6InEchos");
    }
    let icmp: Vec<&str> = text.lines().filter(|l| l.starts_with("Icmp:")).collect();
    let names: Vec<&str> = icmp[0].split_whitespace().collect();
    let values: Vec<&str> = icmp[1].split_whitespace().collect();
    let i = names.iter().position(|n| *n == key).expect("InEchos");
    values[i].parse().unwrap()
}

/// `nexthops` of a multipath route in `route.list`: via -> packets.
fn nexthop_packets(r: &Value) -> std::collections::BTreeMap<String, u64> {
    r["nexthops"]
        .as_array()
        .unwrap_or_else(|| panic!("not a multipath route: {r}"))
        .iter()
        .map(|h| {
            (
                h["via"].as_str().unwrap().to_string(),
                h["packets"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Polls `route.list` until `prefix` has exactly the next hops `vias` (2 s at most).
fn wait_vias(sock: &Path, prefix: &str, vias: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(r) = route_of(sock, prefix) {
            let now: Vec<String> = match &r["via"] {
                Value::Array(v) => v.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                Value::String(s) => vec![s.clone()],
                _ => vec![],
            };
            let mut want: Vec<String> = vias.iter().map(|s| s.to_string()).collect();
            let mut got = now.clone();
            want.sort();
            got.sort();
            if got == want {
                return r;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{prefix} does not have next hops {vias:?} after 2 s: {:?}\nroute.sync: {}",
            route_of(sock, prefix),
            sync(sock)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Which host answered each destination (by the reply's TTL), for `dests` pinged from `na`.
fn who_answers(na: &str, dests: &[String], hosts: &[(&str, u8)]) -> Vec<String> {
    dests
        .iter()
        .map(|d| {
            let ttl = reply_ttl(na, d).unwrap_or_else(|| panic!("no reply from {d}"));
            hosts
                .iter()
                .find(|(_, t)| *t == ttl)
                .unwrap_or_else(|| panic!("{d}: reply with ttl {ttl} from no known host"))
                .0
                .to_string()
        })
        .collect()
}

/// Multipath routes from the kernel (`ip route ... nexthop via ... nexthop via ...`): with
/// three hosts behind port b, the route is in `route.list` with its three next hops; A's
/// pings to 40 addresses of the prefix spread over the three hosts (each reply's TTL names
/// the host), pollfwd's per-next-hop counters equal the echo requests each host received;
/// replaced with two next hops, only the destinations of the one removed move; with one,
/// all go to it. IPv6: a multipath route, one next hop deleted alone (`ip -6 route del ...
/// via`), one appended. Weights are counted as ignored; a route over a nexthop object group
/// follows the group when a member is deleted (no route notification then).
#[test]
fn kernel_multipath_routes_spread_flows_over_their_next_hops() {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ping", "ethtool"] {
        assert!(have(t), "'{t}' is missing: run scripts/install-deps.sh");
    }
    let lab = Lab::new("fibsync-ecmp");
    let pid = std::process::id();
    let [na, nw, nr, n2, n3, n4] = ["a", "w", "r", "2", "3", "4"].map(|n| format!("fp{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[
        na.clone(),
        nw.clone(),
        nr.clone(),
        n2.clone(),
        n3.clone(),
        n4.clone(),
    ]);
    wire_hosts_to_router(&nr, &[(&na, "fpa"), (&nw, "fpw")]);
    isolate_router_veths(&nr, &["fpa1", "fpw1"]);
    host_link(&na, "fpa0", "192.0.2.2/24", Some("192.0.2.1"));
    host_link6(&na, "fpa0", "2001:db8:1::2/64", Some("2001:db8:1::1"));
    // Replies reach A with one hop less (pollfwd): 63, 99, 119.
    hosts_behind_b(&nw, "fp", &[(&n2, 2, 64), (&n3, 3, 100), (&n4, 4, 120)]);
    let hosts4 = [
        ("198.51.100.2", 63),
        ("198.51.100.3", 99),
        ("198.51.100.4", 119),
    ];
    let cfg = router_config(&lab, "fpa1", "fpw1", "[fib_sync]\nenable = true\n");
    let sock = lab.path("ctl.sock");
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 150);
    let ip = |args: &[&str]| {
        ns_ok(&nr, args);
    };
    let host_ns = |via: &str| match via.rsplit(['.', ':']).next().unwrap() {
        "2" => n2.clone(),
        "3" => n3.clone(),
        _ => n4.clone(),
    };
    let steps = || {
        wait_answering(&sock);
        let dests: Vec<String> = (1..=40).map(|k| format!("10.9.0.{k}")).collect();

        // 1. Three next hops: one route, three members, flows spread over three hosts.
        ip(&[
            "ip",
            "route",
            "add",
            "10.9.0.0/24",
            "proto",
            "bgp",
            "nexthop",
            "via",
            "198.51.100.2",
            "dev",
            "pf-b",
            "nexthop",
            "via",
            "198.51.100.3",
            "dev",
            "pf-b",
            "nexthop",
            "via",
            "198.51.100.4",
            "dev",
            "pf-b",
        ]);
        let r = wait_vias(
            &sock,
            "10.9.0.0/24",
            &["198.51.100.2", "198.51.100.3", "198.51.100.4"],
        );
        assert_eq!(r["origin"], "bgp", "{r}");
        assert_eq!(r["kind"], "dynamic", "{r}");
        assert_eq!(r["port"], json!(["b", "b", "b"]), "{r}");
        let echos0: Vec<u64> = [&n2, &n3, &n4].iter().map(|n| in_echos(n, false)).collect();
        let first = who_answers(&na, &dests, &hosts4);
        let r = route_of(&sock, "10.9.0.0/24").unwrap();
        let pk = nexthop_packets(&r);
        eprintln!("3 next hops: {pk:?}");
        for (k, (via, _)) in hosts4.iter().enumerate() {
            let answered = first.iter().filter(|h| h == via).count() as u64;
            assert!(answered > 0, "{via} answered none of 40: {first:?}");
            let got = in_echos(&host_ns(via), false) - echos0[k];
            assert_eq!(
                pk[*via], got,
                "pollfwd's counter for {via} vs the echo requests its host received ({r})"
            );
            assert!(
                got >= answered,
                "{via}: {got} requests, {answered} answered"
            );
        }
        let s = sync(&sock);
        assert!(s["counters"]["multipath"].as_u64().unwrap() >= 1, "{s}");

        // 2. Replaced with two next hops (.4 gone): only .4's destinations move.
        ip(&[
            "ip",
            "route",
            "replace",
            "10.9.0.0/24",
            "proto",
            "bgp",
            "nexthop",
            "via",
            "198.51.100.2",
            "dev",
            "pf-b",
            "nexthop",
            "via",
            "198.51.100.3",
            "dev",
            "pf-b",
        ]);
        wait_vias(&sock, "10.9.0.0/24", &["198.51.100.2", "198.51.100.3"]);
        let second = who_answers(&na, &dests, &hosts4);
        let mut moved = 0;
        for (d, (was, is)) in dests.iter().zip(first.iter().zip(&second)) {
            assert_ne!(is, "198.51.100.4", "{d} still on the removed next hop");
            if was != "198.51.100.4" {
                assert_eq!(was, is, "{d} moved off a next hop that stayed");
            } else {
                moved += 1;
            }
        }
        eprintln!("next hop removed: {moved} of 40 destinations moved (those it had)");
        // The counts of the next hops that stayed carried over.
        let pk2 = nexthop_packets(&route_of(&sock, "10.9.0.0/24").unwrap());
        for via in ["198.51.100.2", "198.51.100.3"] {
            assert!(pk2[via] >= pk[via] + second.iter().filter(|h| *h == via).count() as u64);
        }

        // 3. Weights: installed with equal shares, counted.
        let w0 = sync(&sock)["counters"]["multipath_weights_ignored"]
            .as_u64()
            .unwrap();
        ip(&[
            "ip",
            "route",
            "replace",
            "10.9.0.0/24",
            "proto",
            "bgp",
            "nexthop",
            "via",
            "198.51.100.2",
            "dev",
            "pf-b",
            "weight",
            "3",
            "nexthop",
            "via",
            "198.51.100.3",
            "dev",
            "pf-b",
        ]);
        let deadline = Instant::now() + Duration::from_secs(2);
        while sync(&sock)["counters"]["multipath_weights_ignored"]
            .as_u64()
            .unwrap()
            == w0
        {
            assert!(
                Instant::now() < deadline,
                "weights not counted: {}",
                sync(&sock)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        wait_vias(&sock, "10.9.0.0/24", &["198.51.100.2", "198.51.100.3"]);
        let m = ctl(&sock, &["metrics"]);
        let m = String::from_utf8_lossy(&m.stdout).into_owned();
        let line = m
            .lines()
            .find(|l| l.starts_with("pollfwd_fib_sync_multipath_weights_ignored_total "))
            .unwrap_or_else(|| panic!("no weights counter in the metrics:\n{m}"));
        assert!(line.ends_with(&format!(" {}", w0 + 1)), "{line}");

        // 4. One next hop: a plain route, everything to it.
        ip(&[
            "ip",
            "route",
            "replace",
            "10.9.0.0/24",
            "via",
            "198.51.100.3",
            "dev",
            "pf-b",
            "proto",
            "bgp",
        ]);
        let r = wait_vias(&sock, "10.9.0.0/24", &["198.51.100.3"]);
        assert!(r.get("nexthops").is_none(), "{r}");
        let third = who_answers(&na, &dests[..10], &hosts4);
        assert!(third.iter().all(|h| h == "198.51.100.3"), "{third:?}");

        // 5. IPv6: two next hops, spread; one deleted alone; one appended.
        let hosts6 = [
            ("2001:db8:2::2", 63),
            ("2001:db8:2::3", 99),
            ("2001:db8:2::4", 119),
        ];
        let dests6: Vec<String> = (1..=24).map(|k| format!("2001:db8:9::{k:x}")).collect();
        ip(&[
            "ip",
            "-6",
            "route",
            "add",
            "2001:db8:9::/48",
            "proto",
            "bgp",
            "nexthop",
            "via",
            "2001:db8:2::2",
            "dev",
            "pf-b",
            "nexthop",
            "via",
            "2001:db8:2::3",
            "dev",
            "pf-b",
        ]);
        wait_vias(
            &sock,
            "2001:db8:9::/48",
            &["2001:db8:2::2", "2001:db8:2::3"],
        );
        let e6: Vec<u64> = [&n2, &n3].iter().map(|n| in_echos(n, true)).collect();
        let first6 = who_answers(&na, &dests6, &hosts6);
        let pk6 = nexthop_packets(&route_of(&sock, "2001:db8:9::/48").unwrap());
        eprintln!("IPv6, 2 next hops: {pk6:?}");
        for (k, via) in ["2001:db8:2::2", "2001:db8:2::3"].into_iter().enumerate() {
            assert!(
                first6.iter().any(|h| h == via),
                "{via} answered none: {first6:?}"
            );
            let got = in_echos(&host_ns(via), true) - e6[k];
            assert_eq!(
                pk6[via], got,
                "{via}: pollfwd's counter vs the host's echo requests"
            );
        }
        ip(&[
            "ip",
            "-6",
            "route",
            "del",
            "2001:db8:9::/48",
            "via",
            "2001:db8:2::3",
            "dev",
            "pf-b",
        ]);
        wait_vias(&sock, "2001:db8:9::/48", &["2001:db8:2::2"]);
        let second6 = who_answers(&na, &dests6, &hosts6);
        assert!(second6.iter().all(|h| h == "2001:db8:2::2"), "{second6:?}");
        ip(&[
            "ip",
            "-6",
            "route",
            "append",
            "2001:db8:9::/48",
            "via",
            "2001:db8:2::4",
            "dev",
            "pf-b",
            "proto",
            "bgp",
        ]);
        wait_vias(
            &sock,
            "2001:db8:9::/48",
            &["2001:db8:2::2", "2001:db8:2::4"],
        );
        let third6 = who_answers(&na, &dests6, &hosts6);
        assert!(third6.iter().any(|h| h == "2001:db8:2::4"), "{third6:?}");
        assert!(third6.iter().all(|h| h != "2001:db8:2::3"), "{third6:?}");
        ip(&["ip", "-6", "route", "del", "2001:db8:9::/48"]);
        let t0 = Instant::now();
        wait_route(&sock, "2001:db8:9::/48", false, t0);

        // 6. Nexthop objects (what FRR's zebra installs): a route over a group of two.
        ip(&[
            "ip",
            "nexthop",
            "add",
            "id",
            "901",
            "via",
            "198.51.100.2",
            "dev",
            "pf-b",
        ]);
        ip(&[
            "ip",
            "nexthop",
            "add",
            "id",
            "902",
            "via",
            "198.51.100.4",
            "dev",
            "pf-b",
        ]);
        ip(&["ip", "nexthop", "add", "id", "900", "group", "901/902"]);
        ip(&[
            "ip",
            "route",
            "add",
            "10.8.0.0/24",
            "nhid",
            "900",
            "proto",
            "bgp",
        ]);
        wait_vias(&sock, "10.8.0.0/24", &["198.51.100.2", "198.51.100.4"]);
        // A member deleted: the kernel changes the group but notifies no route; pollfwd
        // reads the table again.
        let dumps = sync(&sock)["counters"]["dumps"].as_u64().unwrap();
        ip(&["ip", "nexthop", "del", "id", "902"]);
        wait_vias(&sock, "10.8.0.0/24", &["198.51.100.2"]);
        assert!(sync(&sock)["counters"]["dumps"].as_u64().unwrap() > dumps);
        let to8 = who_answers(&na, &["10.8.0.1".to_string()], &hosts4);
        assert_eq!(to8, ["198.51.100.2"]);
        ip(&["ip", "route", "del", "10.8.0.0/24"]);
        wait_route(&sock, "10.8.0.0/24", false, Instant::now());
    };
    run_then_stop_ok(child, 90, steps);
}

/// Two BGP peers behind port b (FRR's bgpd in two namespaces, one AS) announce the same
/// prefix; the FRR beside pollfwd (zebra, bgpd with `maximum-paths 2`) installs one route with
/// two next hops (over a nexthop object, as zebra does): pollfwd's FIB has it as a two-member
/// group, A's flows to the prefix spread over both peers (each reply's TTL names the host,
/// both next hops' counters grow), one flow never changes peer; a peer shutting its session
/// down leaves one member, and every flow goes to the other.
#[test]
fn frr_two_bgp_peers_give_an_ecmp_route_and_a_peer_going_away_leaves_one_member() {
    require_frr(&["zebra", "bgpd"]);
    let lab = Lab::new("fibsync-frr-ecmp");
    let pid = std::process::id();
    let [na, nw, nr, n2, n3] = ["a", "w", "r", "2", "3"].map(|n| format!("fe{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[na.clone(), nw.clone(), nr.clone(), n2.clone(), n3.clone()]);
    wire_hosts_to_router(&nr, &[(&na, "fea"), (&nw, "few")]);
    isolate_router_veths(&nr, &["fea1", "few1"]);
    host_link(&na, "fea0", "192.0.2.2/24", Some("192.0.2.1"));
    hosts_behind_b(&nw, "fe", &[(&n2, 2, 64), (&n3, 3, 100)]);
    let hosts = [("198.51.100.2", 63), ("198.51.100.3", 99)];
    let cfg = router_config(&lab, "fea1", "few1", "[fib_sync]\nenable = true\n");
    let sock = lab.path("ctl.sock");
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 150);
    let dir_r = lab.path("frr-router");
    let steps = || {
        wait_answering(&sock);
        let (_zebra, z) = zebra(&nr, &dir_r, &[]);
        let mut conf = String::from(
            "hostname router\n\
             router bgp 64512\n bgp router-id 198.51.100.1\n no bgp ebgp-requires-policy\n",
        );
        for n in [2, 3] {
            conf += &format!(
                " neighbor 198.51.100.{n} remote-as 64513\n neighbor 198.51.100.{n} timers 1 3\n\
                 neighbor 198.51.100.{n} timers connect 1\n"
            );
        }
        conf += " address-family ipv4 unicast\n  maximum-paths 2\n exit-address-family\n";
        let _router = frr_daemon(
            &nr,
            &dir_r,
            "bgpd",
            &conf,
            &["-z", &z, "-l", "198.51.100.1"],
        );
        // The peers: one AS, the same prefix (equal paths: multipath).
        let peer = |ns: &str, n: u8| {
            let dir = lab.path(&format!("frr-peer{n}"));
            let zp = dir.join("zserv.api").to_str().unwrap().to_string();
            let d = frr_daemon(
                ns,
                &dir,
                "bgpd",
                &format!(
                    "hostname peer{n}\n\
                     router bgp 64513\n bgp router-id 198.51.100.{n}\n no bgp ebgp-requires-policy\n\
                     no bgp network import-check\n\
                     neighbor 198.51.100.1 remote-as 64512\n neighbor 198.51.100.1 timers 1 3\n\
                     neighbor 198.51.100.1 timers connect 1\n\
                     address-family ipv4 unicast\n  network 10.9.0.0/24\n exit-address-family\n"
                ),
                &["-z", &zp, "-Z", "-l", &format!("198.51.100.{n}")],
            );
            (d, dir)
        };
        let (_p2, _) = peer(&n2, 2);
        let (_p3, dir3) = peer(&n3, 3);
        // Both paths reach pollfwd's FIB as one route with two next hops.
        let deadline = Instant::now() + Duration::from_secs(60);
        let route = loop {
            if let Some(r) = route_of(&sock, "10.9.0.0/24")
                && r["nexthops"].as_array().is_some_and(|h| h.len() == 2)
            {
                break r;
            }
            if Instant::now() > deadline {
                panic!(
                    "10.9.0.0/24 not in pollfwd's FIB with two next hops after 60 s: {:?}\nkernel: {}\nbgp: {}\nroute.sync: {}",
                    route_of(&sock, "10.9.0.0/24"),
                    ns_ok(&nr, &["ip", "route"]),
                    vtysh(&nr, &dir_r, &["show bgp ipv4 unicast 10.9.0.0/24"]),
                    sync(&sock)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let k = ns_ok(&nr, &["ip", "route", "show", "10.9.0.0/24"]);
        eprintln!("kernel: {k}pollfwd: {route}");
        assert_eq!(route["origin"], "bgp", "{route}");
        assert_eq!(route["port"], json!(["b", "b"]), "{route}");
        let mut vias: Vec<&str> = route["via"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        vias.sort();
        assert_eq!(vias, ["198.51.100.2", "198.51.100.3"], "{route}");
        // Flows spread over both peers; pollfwd counts both next hops.
        let dests: Vec<String> = (1..=24).map(|k| format!("10.9.0.{k}")).collect();
        let first = who_answers(&na, &dests, &hosts);
        for (via, _) in hosts {
            assert!(
                first.iter().any(|h| h == via),
                "{via} answered none: {first:?}"
            );
        }
        let pk = nexthop_packets(&route_of(&sock, "10.9.0.0/24").unwrap());
        eprintln!("two BGP next hops: {pk:?}");
        assert!(pk.values().all(|&n| n > 0), "{pk:?}");
        // One flow (ICMP echo to one address: same addresses and protocol) never splits.
        let o = ns_run(
            &na,
            &["ping", "-c", "6", "-i", "0.2", "-w", "5", "10.9.0.7"],
        );
        let ttls: std::collections::BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("ttl=").map(str::to_string))
            .collect();
        assert_eq!(
            ttls.len(),
            1,
            "one flow answered by several hosts: {ttls:?}"
        );

        // Peer 3 shuts its session down: one member left, every flow on peer 2.
        vtysh(
            &n3,
            &dir3,
            &[
                "configure terminal",
                "router bgp 64513",
                "neighbor 198.51.100.1 shutdown",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(r) = route_of(&sock, "10.9.0.0/24")
                && r["via"] == "198.51.100.2"
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still two next hops 20 s after peer 3 went away: {:?}\nkernel: {}",
                route_of(&sock, "10.9.0.0/24"),
                ns_ok(&nr, &["ip", "route", "show", "10.9.0.0/24"])
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let after = who_answers(&na, &dests, &hosts);
        for (d, (was, is)) in dests.iter().zip(first.iter().zip(&after)) {
            assert_eq!(is, "198.51.100.2", "{d} not on the peer left");
            if was == "198.51.100.2" {
                assert_eq!(was, is);
            }
        }
        let s = sync(&sock);
        assert!(s["counters"]["multipath"].as_u64().unwrap() >= 1, "{s}");
        assert_eq!(
            s["counters"]["ignored"]["nexthop_object"]
                .as_u64()
                .unwrap_or(0),
            0,
            "{s}"
        );
    };
    run_then_stop_ok(child, 120, steps);
}

/// A measurement (`cargo test -p pollfwd --test e2e_fibsync_netns measure_multipath --
/// --ignored --nocapture`): 20 000 multipath routes (two next hops each, proto bgp) added to
/// the kernel's table with `ip -batch`: the time until all are in pollfwd's FIB, pollfwd's
/// resident memory before and after (a group per multipath prefix), one route's next hops
/// changed with them held (in place), and deleting them. docs/forward.md quotes its figures.
#[test]
#[ignore = "a measurement that prints figures (docs/forward.md), run by hand with --ignored"]
fn measure_multipath_kernel_routes() {
    require_root("network namespaces and veth pairs");
    let (lab, [_, _, nr], cfg, sock, _guards) =
        ab_lab("fq", "fibsync-mp", "[fib_sync]\nenable = true\n");
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 300);
    let rss = {
        let status = format!("/proc/{}/status", child.id());
        move || -> u64 {
            std::fs::read_to_string(&status)
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap()
        }
    };
    const N: usize = 20_000;
    let steps = || {
        wait_answering(&sock);
        let mut add = String::new();
        for k in 0..N {
            add += &format!(
                "route add 10.{}.{}.0/24 proto bgp nexthop via 198.51.100.2 dev pf-b nexthop via 198.51.100.3 dev pf-b\n",
                k >> 8,
                k & 255
            );
        }
        let del: String = (0..N)
            .map(|k| format!("route del 10.{}.{}.0/24\n", k >> 8, k & 255))
            .collect();
        let (fa, fd) = (lab.write("add.batch", &add), lab.write("del.batch", &del));
        let rss0 = rss();
        for (what, file, want) in [("add", &fa, N as u64), ("delete", &fd, 0)] {
            let t0 = Instant::now();
            ns_ok(&nr, &["ip", "-batch", file.to_str().unwrap()]);
            let t_ip = t0.elapsed();
            wait_synced(&sock, want, t0, 120);
            let s = sync(&sock);
            eprintln!(
                "{what} {N} multipath routes: ip -batch {:.2} s, all in pollfwd's FIB after {:.2} s; last table {} ms; pollfwd RSS {} MiB (before: {} MiB)",
                t_ip.as_secs_f64(),
                t0.elapsed().as_secs_f64(),
                s["last_batch"]["build_ms"],
                rss() / 1024,
                rss0 / 1024
            );
            if want == 0 {
                continue;
            }
            let r = route_of(&sock, "10.0.7.0/24").unwrap();
            assert_eq!(r["nexthops"].as_array().map(Vec::len), Some(2), "{r}");
            std::thread::sleep(Duration::from_secs(6));
            let t0 = Instant::now();
            ns_ok(
                &nr,
                &[
                    "ip",
                    "route",
                    "replace",
                    "10.0.7.0/24",
                    "proto",
                    "bgp",
                    "nexthop",
                    "via",
                    "198.51.100.2",
                    "dev",
                    "pf-b",
                    "nexthop",
                    "via",
                    "198.51.100.4",
                    "dev",
                    "pf-b",
                ],
            );
            // route.list resolves and lists every route: slow with 20k, so the time is
            // pollfwd's own (`latency_ms`: notification read to table in every worker).
            wait_vias(&sock, "10.0.7.0/24", &["198.51.100.2", "198.51.100.4"]);
            let s = sync(&sock);
            eprintln!(
                "one multipath route's next hops changed with {N} held: {} ms in pollfwd ({}, in place {}; seen in route.list after {:.1} ms)",
                s["last_batch"]["latency_ms"],
                s["last_batch"],
                s["counters"]["in_place"],
                t0.elapsed().as_secs_f64() * 1000.0
            );
        }
    };
    run_then_stop_ok(child, 60, steps);
}
