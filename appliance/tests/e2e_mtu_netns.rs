//! Egress MTU with real Linux hosts: a host on a jumbo link (namespace pfmi-<pid>,
//! 10.0.0.2/24, veth MTU 9000) and a server on a 1400-byte link (pfmo-<pid>,
//! 198.51.100.2/24 and .3; its route back advertises MSS 1460, as a host behind a smaller
//! link would), each joined by a veth pair to the router namespace (pfmr-<pid>) where pollfwd
//! runs `["forward"]` on `net_af_packet` ports with 16 KB af_packet frames
//! (`blocksz=16384,framesz=16384`) and a mempool data room that holds them: "in" with the
//! device's MTU (1500: DPDK 22.11's af_packet refuses an MTU above 1500), "out" with
//! `mtu = 1400`.
//!
//! Checked: `ping -M dont -s 4000` goes through (the host sends the 4028-byte request in one
//! frame, which the router cuts for the 1400-byte egress; the server's fragmented reply
//! reaches pollfwd reassembled by the kernel, af_packet's PACKET_FANOUT_FLAG_DEFRAG, in one
//! 16 KB frame and is cut again for "in"); a 4000-byte UDP datagram sent with DF clear
//! arrives whole; a 1 MB TCP transfer completes across the 1400-byte egress (path MTU
//! discovery: the host's 1500-byte segments with DF get "fragmentation needed"); `ping -M do
//! -s 2000` shows "Frag needed and DF set (mtu = 1400)" from the router; forward's counters.
//!
//! The same again through NAT (`["nat", "forward"]`, pool 198.51.100.100).
//!
//! Needs root, iproute2, ethtool, ping, python3. Addresses: RFC 1918 10.0.0.0/24, RFC 5737
//! 198.51.100.0/24, in these namespaces only; deleted when the test ends, pass or fail.

mod common;

use std::time::Duration;

use common::netns::*;
use common::*;
use serde_json::{Value, json};

/// UDP server: receives one datagram, prints "len=N ok=<payload as sent>", exits.
const UDP_SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[1]))); s.settimeout(20)
b, a = s.recvfrom(65536)
print(f"len={len(b)} ok={b == bytes((i * 13) & 255 for i in range(len(b)))}")
"#;

/// UDP client: sends one N-byte datagram with DF clear (IP_MTU_DISCOVER = IP_PMTUDISC_DONT),
/// a few times (the first may wait for ARP on the far side).
const UDP_CLIENT: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)
data = bytes((i * 13) & 255 for i in range(int(sys.argv[3])))
for _ in range(3):
    s.sendto(data, (sys.argv[1], int(sys.argv[2]))); time.sleep(0.3)
"#;

#[test]
fn real_hosts_fragments_frag_needed_and_pmtud_across_a_smaller_egress_mtu() {
    mtu_lab("pfm", false);
}

/// The same through NAT (`["nat", "forward"]`, pool 198.51.100.100): the datagrams arrive
/// whole and translated, "fragmentation needed" reaches the inside host about what it sent
/// (it learns the path MTU), TCP completes.
#[test]
fn the_same_through_nat() {
    mtu_lab("pfmn", true);
}

fn mtu_lab(tag: &str, nat: bool) {
    require_root("network namespaces and veth pairs");
    for t in ["ip", "ping", "ethtool", "python3"] {
        assert!(have(t), "'{t}' is missing: run scripts/install-deps.sh");
    }
    let lab = Lab::new(&format!("mtu-netns-{nat}"));
    let pid = std::process::id();
    let [ni, no, nr] = ["i", "o", "r"].map(|n| format!("{tag}{n}-{pid}"));
    let _g = busy_lock();
    let _ns = Netns::create(&[ni.clone(), no.clone(), nr.clone()]);
    wire_hosts_to_router(&nr, &[(&ni, "pfmi"), (&no, "pfmo")]);
    ns_ok(&ni, &["ip", "link", "set", "pfmi0", "mtu", "9000"]);
    ns_ok(&nr, &["ip", "link", "set", "pfmi1", "mtu", "9000"]);
    host_link(&ni, "pfmi0", "10.0.0.2/24", Some("10.0.0.1"));
    ns_ok(
        &no,
        &["ip", "addr", "add", "198.51.100.2/24", "dev", "pfmo0"],
    );
    ns_ok(
        &no,
        &["ip", "addr", "add", "198.51.100.3/24", "dev", "pfmo0"],
    );
    ns_ok(&no, &["ip", "link", "set", "pfmo0", "mtu", "1400"]);
    ns_ok(&no, &["ip", "link", "set", "pfmo0", "up"]);
    ns_ok(
        &no,
        &[
            "ip",
            "route",
            "add",
            "10.0.0.0/24",
            "via",
            "198.51.100.1",
            "advmss",
            "1460",
        ],
    );
    // With NAT the server talks to the pool address, on its own link: the same MSS 1460.
    ns_ok(
        &no,
        &[
            "ip",
            "route",
            "add",
            "198.51.100.100/32",
            "dev",
            "pfmo0",
            "advmss",
            "1460",
        ],
    );
    let (stages, nat_section) = if nat {
        (
            r#"["nat", "forward"]"#,
            "[nat]\ninside = [\"in\"]\noutside = [\"out\"]\npool = [\"198.51.100.100\"]\n",
        )
    } else {
        (r#"["forward"]"#, "")
    };
    let sock = lab.path("ctl.sock");
    let af = "blocksz=16384,framesz=16384,framecnt=512";
    let cfg = lab.write(
        "pollfwd.toml",
        &format!(
            r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 1024
data_room = 16530

[[port]]
name = "in"
device = "net_af_packet0,iface=pfmi1,{af}"
address = "10.0.0.1/24"

[[port]]
name = "out"
device = "net_af_packet1,iface=pfmo1,{af}"
address = "198.51.100.1/24"
mtu = 1400

[[lcore]]
id = 1
rx = [{{ port = "in" }}, {{ port = "out" }}]
stages = {stages}

[control]
socket = "{sock}"
{nat_section}
"#,
            prefix = lab.prefix(),
            sock = sock.display()
        ),
    );
    let child = spawn_pollfwd_in(&nr, &lab, &cfg, 120);
    wait_answering(&sock);
    std::thread::sleep(Duration::from_millis(300));

    let out = run_then_stop(child, 30, || {
        // 1. A 4028-byte ping with DF clear: cut by the router on the way out, the server's
        //    fragmented reply reassembled by the kernel for af_packet and forwarded whole.
        let o = ns_ok(
            &ni,
            &[
                "ping",
                "-M",
                "dont",
                "-s",
                "4000",
                "-c",
                "3",
                "-i",
                "0.3",
                "-W",
                "2",
                "198.51.100.2",
            ],
        );
        assert!(o.contains("3 packets transmitted, 3 received"), "{o}");
        assert!(o.contains("4008 bytes from 198.51.100.2"), "{o}");

        // 2. A 4000-byte UDP datagram (3972 bytes of data) with DF clear arrives whole.
        let server = ns_spawn(&no, &["python3", "-c", UDP_SERVER, "5353"]);
        std::thread::sleep(Duration::from_millis(400));
        ns_ok(
            &ni,
            &["python3", "-c", UDP_CLIENT, "198.51.100.2", "5353", "3972"],
        );
        let so = server.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&so.stdout);
        assert!(
            so.status.success(),
            "{}",
            String::from_utf8_lossy(&so.stderr)
        );
        assert_eq!(field(&text, "len="), "3972", "{text}");
        assert_eq!(field(&text, "ok="), "True", "{text}");

        let s = control_call(&sock, "forward.stats", json!({})).unwrap();
        let t = &s["totals"];
        assert!(t["fragmented"].as_u64().unwrap() >= 4, "{s}");
        assert!(
            t["fragments_sent"].as_u64().unwrap() >= 3 * t["fragmented"].as_u64().unwrap(),
            "{s}"
        );

        // 3. TCP across the 1400-byte egress: the host starts with 1500-byte packets (the
        //    server's MSS), gets "fragmentation needed", lowers its path MTU, completes.
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
        // The server saw the pool address through NAT, the host's own without.
        let peer = if nat { "198.51.100.100" } else { "10.0.0.2" };
        assert!(out.contains(&format!("peer={peer}:")), "{out}");
        let s = control_call(&sock, "forward.stats", json!({})).unwrap();
        assert!(
            s["totals"]["frag_needed_sent"].as_u64().unwrap() >= 1,
            "{s}"
        );
        let r = ns_ok(&ni, &["ip", "route", "get", "198.51.100.2"]);
        assert!(r.contains("mtu 1400"), "the host learnt the path MTU: {r}");

        // 4. ping with DF, bigger than the egress MTU, to an address the host has no path MTU
        //    for yet: the router's error, with the MTU.
        let o = ns_run(
            &ni,
            &[
                "ping",
                "-M",
                "do",
                "-s",
                "2000",
                "-c",
                "1",
                "-W",
                "2",
                "198.51.100.3",
            ],
        );
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("From 10.0.0.1 icmp_seq=1 Frag needed and DF set (mtu = 1400)"),
            "{text}"
        );
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &s["totals"]["drops_by_reason"];
    assert!(d["frag_needed"].as_u64().unwrap_or(0) >= 2, "{s}");
    assert_eq!(d["ipv4_truncated"].as_u64().unwrap_or(0), 0, "{s}");
    assert_eq!(d["tx_full"].as_u64().unwrap_or(0), 0, "{s}");
}
