//! ICMP errors the appliance originates about packets NAT has translated (RFC 5508 sections 3
//! and 4): the real `pollfwd` binary, chain nat -> forward on net_pcap ports (p0 inside
//! 10.0.0.1/24, p1 outside 198.51.100.1/24), run to completion and in pipeline mode (nat on
//! lcore 1, forward on lcore 2). An inside host's datagram to an unrouted address gets "net
//! unreachable" addressed to the host itself, quoting its datagram byte for byte as it sent
//! it; an outside host's datagram to a static mapping whose inside address is unrouted gets
//! the error quoting the public destination it used.

mod common;

use std::net::Ipv4Addr;

use common::*;
use pollfwd_nf::nat::testpkt::{self, verify};
use serde_json::Value;

const HOST_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const HOST_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const HOST_C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 4);
const OUTSIDE_HOST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
const POOL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

const LCORES_RTC: &str = r#"
[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["nat", "forward"]
"#;

const LCORES_PIPELINE: &str = r#"
[[lcore]]
id = 1
cpu = 0
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["nat"]
pipeline_to = 2
tx_ports = []

[[lcore]]
id = 2
cpu = 1
stages = ["forward"]
"#;

const LCORES_TWO_NAT_WORKERS: &str = r#"
[[lcore]]
id = 1
cpu = 0
rx = [{ port = "p0" }]
stages = ["nat", "forward"]

[[lcore]]
id = 2
cpu = 1
rx = [{ port = "p1" }]
stages = ["nat", "forward"]
"#;

fn config(lab: &Lab, lcores: &str) -> std::path::PathBuf {
    // Two TX queues where two workers transmit (one capture file per queue).
    let tx = |p: &str| {
        if lcores == LCORES_TWO_NAT_WORKERS {
            format!("tx_pcap={p}-out.pcap,tx_pcap={p}-out-b.pcap")
        } else {
            format!("tx_pcap={p}-out.pcap")
        }
    };
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"
share_main_cpu = true

[mempool]
mbufs = 4095

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=inside.pcap,{tx0}"
address = "10.0.0.1/24"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=outside.pcap,{tx1}"
address = "198.51.100.1/24"
{lcores}
[control]
socket = "{sock}"

[forward]
routes = [{{ prefix = "192.0.2.0/24", via = "198.51.100.2" }}]
neighbors = [{{ address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "p1" }}]

[nat]
inside = ["p0"]
outside = ["p1"]
pool = ["{POOL}"]
seed = 42
static = [{{ outside = "{PUBLIC}:80", inside = "10.9.9.9:8080", proto = "tcp" }}]
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
        tx0 = tx("p0"),
        tx1 = tx("p1"),
    );
    lab.write("pollfwd.toml", &text)
}

/// The ICMP error `e` (type 3 code 0 from `from`) to `to`, quoting `sent` as it was sent.
fn assert_error_about(e: &[u8], sent: &[u8], from: Ipv4Addr, to: Ipv4Addr) {
    verify(e).unwrap_or_else(|m| panic!("{m}: {e:02x?}"));
    assert_eq!((e[23], e[34], e[35]), (1, 3, 0), "ICMP net unreachable");
    assert_eq!(e[26..30], from.octets(), "from the ingress interface");
    assert_eq!(e[30..34], to.octets(), "to the original sender");
    assert_eq!(e[0..6], sent[6..12], "back to the sender's MAC");
    let total = u16::from_be_bytes([e[16], e[17]]) as usize;
    let quote = total - 28;
    assert!(quote >= 28, "at least the header and 8 bytes");
    assert_eq!(
        &e[42..42 + quote],
        &sent[14..14 + quote],
        "the quote is the datagram as its sender wrote it"
    );
}

fn run_case(name: &str, lcores: &str) {
    let lab = Lab::new(name);
    let udp = testpkt::udp((HOST_A, 5353), (Ipv4Addr::new(8, 8, 8, 8), 53), b"query");
    let syn = testpkt::tcp(
        (HOST_B, 40001),
        (Ipv4Addr::new(9, 9, 9, 9), 443),
        0x02,
        7,
        b"",
    );
    let ping = testpkt::icmp_echo(HOST_C, Ipv4Addr::new(8, 8, 4, 4), 77, 1, false);
    let routed = testpkt::udp((HOST_A, 5353), (Ipv4Addr::new(192, 0, 2, 5), 53), b"q");
    let inbound = testpkt::tcp((OUTSIDE_HOST, 33000), (PUBLIC, 80), 0x02, 9, b"");
    write_frames(
        &lab.path("inside.pcap"),
        &[udp.clone(), syn.clone(), ping.clone(), routed],
    );
    write_frames(&lab.path("outside.pcap"), std::slice::from_ref(&inbound));
    let cfg = config(&lab, lcores);
    let s: Value = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let frames = |p: &str| {
        let mut v = read_pcap(&lab.path(&format!("{p}-out.pcap")));
        let b = lab.path(&format!("{p}-out-b.pcap"));
        if b.exists() {
            v.extend(read_pcap(&b));
        }
        v
    };
    let (p0, p1) = (frames("p0"), frames("p1"));
    assert_eq!(p0.len(), 3, "three errors to the inside hosts: {s}");
    let inside = Ipv4Addr::new(10, 0, 0, 1);
    for (sent, host) in [(&udp, HOST_A), (&syn, HOST_B), (&ping, HOST_C)] {
        let e = p0
            .iter()
            .find(|f| f[30..34] == host.octets())
            .unwrap_or_else(|| panic!("no error to {host}: {s}"));
        assert_error_about(e, sent, inside, host);
    }
    // The routed datagram left translated; the error about the inbound one went back out.
    assert_eq!(p1.len(), 2, "{s}");
    let out = p1
        .iter()
        .find(|f| f[23] == 17)
        .expect("the routed datagram");
    assert_eq!(out[26..30], POOL.octets());
    let err = p1
        .iter()
        .find(|f| f[23] == 1)
        .expect("the error to the outside host");
    assert_error_about(err, &inbound, Ipv4Addr::new(198, 51, 100, 1), OUTSIDE_HOST);
    assert_eq!(s["nf"]["forward"]["totals"]["icmp_errors_sent"], 4, "{s}");
}

#[test]
fn errors_about_translated_packets_reach_their_sender_quoting_what_it_sent() {
    run_case("nat-err-rtc", LCORES_RTC);
}

#[test]
fn errors_about_translated_packets_reach_their_sender_in_pipeline_mode() {
    run_case("nat-err-pipe", LCORES_PIPELINE);
}

#[test]
fn errors_about_translated_packets_reach_their_sender_with_two_nat_workers() {
    run_case("nat-err-two", LCORES_TWO_NAT_WORKERS);
}
