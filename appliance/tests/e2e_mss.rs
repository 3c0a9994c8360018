//! TCP MSS clamping end to end (`mss_clamp` on `[[port]]`): the real `pollfwd` binary routes
//! between three net_pcap ports, p0 (10.0.0.1/24, `mss_clamp = 1400`), p1 (198.51.100.1/24,
//! `mss_clamp = 1360`) and p2 (192.0.2.1/24, no clamp). SYNs and SYN-ACKs leave with their
//! MSS option lowered to the smaller clamp of their ingress and egress ports (one clamp is
//! enough); a smaller MSS, a SYN without the option, segments without SYN, a later fragment
//! and a malformed option list leave as they came (TTL and header checksum aside); every TCP
//! checksum verifies (smoltcp), and the `mss_clamped` counter is exact. Through NAT (chain nat
//! -> forward, clamp on the outside port only) the SYN of an inside host and the SYN-ACK of a
//! port-forwarded server are translated and clamped, and the counter shows in Prometheus.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::*;
use pollfwd_nf::nat::testpkt::{self, tcp_mss, verify};
use serde_json::Value;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// Host 10.0.0.2 on p0, the gateways on p1 and p2.
const H0: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Behind p1's gateway 198.51.100.2.
const FAR1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
/// Behind p2's gateway 192.0.2.2.
const FAR2: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 5);

/// MSS option 1460, NOP, window scale 7, SACK permitted, NOP, NOP (as a Linux SYN starts).
fn opts(mss: u16) -> Vec<u8> {
    let m = mss.to_be_bytes();
    vec![2, 4, m[0], m[1], 1, 3, 3, 7, 4, 2, 1, 1]
}

fn config(lab: &Lab) -> std::path::PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 2047

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=in0.pcap,tx_pcap=out0.pcap"
address = "10.0.0.1/24"
mss_clamp = 1400

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=in1.pcap,tx_pcap=out1.pcap"
address = "198.51.100.1/24"
mss_clamp = 1360

[[port]]
name = "p2"
device = "net_pcap2,rx_pcap=in2.pcap,tx_pcap=out2.pcap"
address = "192.0.2.1/24"

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}, {{ port = "p2" }}]
stages = ["forward"]

[control]
socket = "{sock}"

[forward]
routes = [
  {{ prefix = "203.0.113.0/24", via = "198.51.100.2" }},
  {{ prefix = "172.16.0.0/16", via = "192.0.2.2" }},
]
neighbors = [
  {{ address = "10.0.0.2", mac = "02:00:00:00:00:02", port = "p0" }},
  {{ address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "p1" }},
  {{ address = "192.0.2.2", mac = "02:00:00:00:02:02", port = "p2" }},
]
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

/// What a case expects on output.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// Forwarded with its MSS option lowered to this value.
    Clamped(u16),
    /// Forwarded as it came (TTL - 1, the IP checksum and MACs aside).
    Same,
}

struct Case {
    what: &'static str,
    frame: Vec<u8>,
    out: usize,
    want: Want,
}

fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: u8, o: &[u8], data: &[u8]) -> Vec<u8> {
    testpkt::tcp_opts(src, dst, flags, 1000, o, data)
}

/// IP identification of a frame (fragments are matched by it).
fn ident(f: &[u8]) -> u16 {
    u16::from_be_bytes([f[18], f[19]])
}

/// Sets the IP identification (and fixes the header checksum).
fn with_ident(mut f: Vec<u8>, id: u16) -> Vec<u8> {
    f[18..20].copy_from_slice(&id.to_be_bytes());
    refix_ip(&mut f);
    f
}

fn refix_ip(f: &mut [u8]) {
    f[24..26].copy_from_slice(&[0, 0]);
    let c = !sum16(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// RFC 1071 sum of big-endian words (odd tail padded), not complemented.
fn sum16(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Checks `got` (an output frame) against `sent` as the case wants it.
fn check(c: &Case, sent: &[u8], got: &[u8]) {
    let what = c.what;
    verify(got).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(got.len(), sent.len(), "{what}: length");
    assert_eq!(got[22], sent[22] - 1, "{what}: TTL - 1");
    // The IP header but TTL and checksum, unchanged.
    assert_eq!(got[14..22], sent[14..22], "{what}");
    assert_eq!(got[23], sent[23], "{what}");
    assert_eq!(got[26..34], sent[26..34], "{what}");
    match c.want {
        Want::Same => assert_eq!(got[34..], sent[34..], "{what}: L4 untouched"),
        Want::Clamped(v) => {
            assert_eq!(tcp_mss(got), Some(v), "{what}: MSS");
            // Only the MSS value and the TCP checksum differ.
            let mss_at = 34
                + 20
                + (0..)
                    .find(|&i| got[54 + i] == 2 && got[55 + i] == 4)
                    .unwrap()
                + 2;
            for i in 34..got.len() {
                if ![50, 51, mss_at, mss_at + 1].contains(&i) {
                    assert_eq!(got[i], sent[i], "{what}: byte {i}");
                }
            }
        }
    }
}

#[test]
fn syns_through_clamping_ports_carry_the_smaller_mss() {
    let lab = Lab::new("mss-fwd");
    let o1460 = opts(1460);
    let mut cases = vec![
        Case {
            what: "SYN p0 -> p1: the smaller clamp of the two",
            frame: tcp((H0, 40001), (FAR1, 443), SYN, &o1460, b""),
            out: 1,
            want: Want::Clamped(1360),
        },
        Case {
            what: "data p0 -> p1",
            frame: tcp(
                (H0, 40001),
                (FAR1, 443),
                ACK | PSH,
                &[],
                b"GET / HTTP/1.1\r\n\r\n",
            ),
            out: 1,
            want: Want::Same,
        },
        Case {
            what: "SYN MSS 1200 p0 -> p1: smaller already",
            frame: tcp((H0, 40002), (FAR1, 443), SYN, &opts(1200), b""),
            out: 1,
            want: Want::Same,
        },
        Case {
            what: "SYN MSS 1360 p0 -> p1: equal",
            frame: tcp((H0, 40003), (FAR1, 443), SYN, &opts(1360), b""),
            out: 1,
            want: Want::Same,
        },
        Case {
            what: "SYN without MSS p0 -> p1: none added",
            frame: tcp((H0, 40004), (FAR1, 443), SYN, &[1, 3, 3, 7], b""),
            out: 1,
            want: Want::Same,
        },
        Case {
            what: "ACK with an MSS option: not a SYN",
            frame: tcp((H0, 40005), (FAR1, 443), ACK, &o1460, b""),
            out: 1,
            want: Want::Same,
        },
        Case {
            what: "SYN p0 -> p2: the ingress port's clamp",
            frame: tcp((H0, 40006), (FAR2, 22), SYN, &o1460, b""),
            out: 2,
            want: Want::Clamped(1400),
        },
        Case {
            what: "SYN with the MSS at an odd offset",
            frame: tcp(
                (H0, 40007),
                (FAR1, 443),
                SYN,
                &[1, 2, 4, 0x23, 0x00, 1, 1, 1],
                b"",
            ),
            out: 1,
            want: Want::Clamped(1360),
        },
        Case {
            what: "SYN with a malformed option list: forwarded untouched",
            frame: tcp(
                (H0, 40008),
                (FAR1, 443),
                SYN,
                &[2, 4, 5, 0xb4, 8, 0, 1, 1],
                b"",
            ),
            out: 1,
            want: Want::Same,
        },
        Case {
            what: "SYN-ACK p1 -> p0",
            frame: tcp((FAR1, 443), (H0, 40001), SYN | ACK, &o1460, b""),
            out: 0,
            want: Want::Clamped(1360),
        },
        Case {
            what: "SYN p1 -> p2: the ingress port's clamp",
            frame: tcp(
                (Ipv4Addr::new(203, 0, 113, 9), 50000),
                (FAR2, 80),
                SYN,
                &o1460,
                b"",
            ),
            out: 2,
            want: Want::Clamped(1360),
        },
        Case {
            what: "SYN-ACK p2 -> p0: the egress port's clamp",
            frame: tcp((FAR2, 22), (H0, 40006), SYN | ACK, &o1460, b""),
            out: 0,
            want: Want::Clamped(1400),
        },
        Case {
            what: "SYN p2 -> p2: no clamp on either port",
            frame: tcp(
                (FAR2, 40009),
                (Ipv4Addr::new(172, 16, 0, 6), 80),
                SYN,
                &o1460,
                b"",
            ),
            out: 2,
            want: Want::Same,
        },
    ];
    let clamped = cases
        .iter()
        .filter(|c| matches!(c.want, Want::Clamped(_)))
        .count() as u64;
    // A SYN with data (TCP Fast Open style) in two fragments: the first carries the whole TCP
    // header and is clamped; the second is untouched, and the segment still verifies.
    let big = tcp((H0, 40010), (FAR1, 443), SYN, &o1460, &[0x5a; 100]);
    let (frag1, frag2) = testpkt::fragments(&big, 40, 77);
    // A later fragment whose data looks like a SYN with an MSS option: never touched.
    let (_, mut fake) = testpkt::fragments(&big, 40, 78);
    let syn_bytes = tcp((H0, 40011), (FAR1, 443), SYN, &opts(9000), b"");
    fake[34..34 + 32].copy_from_slice(&syn_bytes[34..34 + 32]);
    refix_ip(&mut fake);
    let udp = |k: u16| with_ident(testpkt::udp((H0, 5000 + k), (FAR1, 53), b"query"), 500 + k);

    // In p0: fast-path traffic around the SYNs (the fast loop hands them to the slow path
    // and takes the rest back).
    let mut in0: Vec<Vec<u8>> = (0..8).map(udp).collect();
    let mut in1 = Vec::new();
    let mut in2 = Vec::new();
    for (k, c) in cases.iter_mut().enumerate() {
        c.frame = with_ident(std::mem::take(&mut c.frame), 100 + k as u16);
        let src = Ipv4Addr::new(c.frame[26], c.frame[27], c.frame[28], c.frame[29]);
        let to = if src == H0 {
            &mut in0
        } else if src.octets()[0] == 203 {
            &mut in1
        } else {
            &mut in2
        };
        to.push(c.frame.clone());
        if src == H0 {
            to.push(udp(100 + k as u16));
        }
    }
    in0.extend([frag1.clone(), frag2.clone(), fake.clone()]);
    write_frames(&lab.path("in0.pcap"), &in0);
    write_frames(&lab.path("in1.pcap"), &in1);
    write_frames(&lab.path("in2.pcap"), &in2);
    let cfg = config(&lab);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let outs = [0, 1, 2].map(|p| read_pcap(&lab.path(&format!("out{p}.pcap"))));
    let udp_in = in0.iter().filter(|f| f[23] == 17).count();
    let udp_out = outs[1].iter().filter(|f| f[23] == 17).count();
    assert_eq!(
        (udp_in, udp_out),
        (8 + 9, 8 + 9),
        "every UDP datagram forwarded: {s}"
    );
    for c in &cases {
        let id = ident(&c.frame);
        let got: Vec<&Vec<u8>> = outs[c.out].iter().filter(|f| ident(f) == id).collect();
        assert_eq!(got.len(), 1, "{}: one frame out of p{}: {s}", c.what, c.out);
        check(c, &c.frame, got[0]);
    }
    // The fragments: the first clamped (MSS bytes and checksum only), the rest as sent, and
    // the reassembled segment verifies.
    let f1: Vec<&Vec<u8>> = outs[1].iter().filter(|f| ident(f) == 77).collect();
    assert_eq!(f1.len(), 2, "{s}");
    let (g1, g2) = (f1[0], f1[1]);
    assert_eq!(
        u16::from_be_bytes([g1[20], g1[21]]) & 0x1fff,
        0,
        "first first"
    );
    assert_eq!(tcp_mss(&big), Some(1460));
    assert_eq!(g2[34..], frag2[34..], "second fragment untouched");
    let mut whole = big.clone();
    whole[22] -= 1;
    whole[34..14 + 20 + 40].copy_from_slice(&g1[34..14 + 20 + 40]);
    refix_ip(&mut whole);
    verify(&whole).expect("the reassembled SYN's TCP checksum");
    assert_eq!(tcp_mss(&whole), Some(1360));
    let fk: Vec<&Vec<u8>> = outs[1].iter().filter(|f| ident(f) == 78).collect();
    assert_eq!(fk.len(), 1, "{s}");
    assert_eq!(fk[0][34..], fake[34..], "a later fragment is never touched");

    let fwd = |k: &str| s["nf"]["forward"]["totals"][k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(fwd("mss_clamped"), clamped + 1, "{s}");
    assert_eq!(s["totals"]["drops"], 0, "nothing dropped: {s}");
    let sent = (in0.len() + in1.len() + in2.len()) as u64;
    let out: u64 = outs.iter().map(|o| o.len() as u64).sum();
    assert_eq!(out, sent, "{s}");
}

/// NAT lab: p0 inside (10.0.0.1/24), p1 outside (198.51.100.1/24, `mss_clamp = 1360`), a pool
/// address and a TCP port forward to an inside server.
fn nat_config(lab: &Lab) -> std::path::PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 2047

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=in0.pcap,tx_pcap=out0.pcap"
address = "10.0.0.1/24"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=in1.pcap,tx_pcap=out1.pcap"
address = "198.51.100.1/24"
mss_clamp = 1360

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = ["nat", "forward"]

[control]
socket = "{sock}"

[forward]
routes = [{{ prefix = "203.0.113.0/24", via = "198.51.100.2" }}]
neighbors = [
  {{ address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "p1" }},
  {{ address = "10.0.0.5", mac = "02:00:00:00:00:05", port = "p0" }},
]

[nat]
inside = ["p0"]
outside = ["p1"]
pool = ["198.51.100.10"]
seed = 42
static = [{{ outside = "198.51.100.20:443", inside = "10.0.0.5:8443", proto = "tcp" }}]
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

#[test]
fn through_nat_syns_are_translated_and_clamped() {
    let lab = Lab::new("mss-nat");
    let server = (Ipv4Addr::new(10, 0, 0, 5), 8443);
    let client = (FAR1, 50000);
    // Inside host opens a connection out (source NAT to the pool); an outside client connects
    // to the port forward, whose server answers with a SYN-ACK from inside.
    let out_syn = testpkt::tcp_opts((H0, 40001), (FAR1, 443), SYN, 7, &opts(1460), b"");
    let in_syn = testpkt::tcp_opts(
        client,
        (Ipv4Addr::new(198, 51, 100, 20), 443),
        SYN,
        9,
        &opts(1460),
        b"",
    );
    let synack = testpkt::tcp_opts(server, client, SYN | ACK, 11, &opts(8960), b"");
    let small = testpkt::tcp_opts((H0, 40002), (FAR1, 443), SYN, 13, &opts(1300), b"");
    write_frames(&lab.path("in0.pcap"), &[out_syn, synack, small]);
    write_frames(&lab.path("in1.pcap"), &[in_syn]);
    let cfg = nat_config(&lab);
    let sock = lab.path("ctl.sock");

    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);
    let mut metrics = String::new();
    let out = run_then_stop(child, 30, || {
        wait_for_ports(&sock, "tx_packets", 4);
        // Prometheus: forward's counter family, per worker.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            metrics = String::from_utf8(ctl(&sock, &["metrics"]).stdout).unwrap();
            if metrics.contains("pollfwd_forward_mss_clamped_total{worker=\"0\"} 3\n")
                || std::time::Instant::now() > deadline
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert!(
        metrics.contains("# TYPE pollfwd_forward_mss_clamped_total counter"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pollfwd_forward_mss_clamped_total{worker=\"0\"} 3\n"),
        "{metrics}"
    );

    let p0 = read_pcap(&lab.path("out0.pcap"));
    let p1 = read_pcap(&lab.path("out1.pcap"));
    assert_eq!((p0.len(), p1.len()), (1, 3), "{s}");
    for f in p0.iter().chain(&p1) {
        verify(f).unwrap_or_else(|e| panic!("{e}: {f:02x?}"));
    }
    let by_dport = |v: &[Vec<u8>], port: u16| -> Vec<u8> {
        v.iter()
            .find(|f| testpkt::endpoints(f).3 == port)
            .unwrap_or_else(|| panic!("no frame to port {port}"))
            .clone()
    };
    // The inside host's SYN: source translated to the pool, MSS clamped by the outside port.
    let o = p1
        .iter()
        .find(|f| testpkt::endpoints(f).3 == 443 && tcp_mss(f) != Some(1300))
        .unwrap();
    let (src, sport, dst, _) = testpkt::endpoints(o);
    assert_eq!((src, dst), (Ipv4Addr::new(198, 51, 100, 10), FAR1));
    assert_ne!(sport, 0);
    assert_eq!(tcp_mss(o), Some(1360));
    // The outside client's SYN through the port forward: to the server, clamped (ingress).
    let i = by_dport(&p0, 8443);
    assert_eq!(testpkt::endpoints(&i).2, server.0);
    assert_eq!(tcp_mss(&i), Some(1360));
    // The server's SYN-ACK: from the public endpoint, clamped (egress).
    let a = by_dport(&p1, 50000);
    let (src, sport, _, _) = testpkt::endpoints(&a);
    assert_eq!((src, sport), (Ipv4Addr::new(198, 51, 100, 20), 443));
    assert_eq!(tcp_mss(&a), Some(1360));
    // A smaller MSS stays.
    assert!(p1.iter().any(|f| tcp_mss(f) == Some(1300)));
    assert_eq!(s["nf"]["forward"]["totals"]["mss_clamped"], 3, "{s}");
    assert_eq!(s["totals"]["drops"], 0, "{s}");
}

/// VLAN lab: p0 a trunk (untagged 10.0.0.1/24 with `mss_clamp = 1400`; VLAN 10 10.10.0.1/24
/// with `mss_clamp = 1300`; VLAN 20 10.20.0.1/24 without), p1 untagged (198.51.100.1/24, no
/// clamp).
fn vlan_config(lab: &Lab) -> std::path::PathBuf {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 2047

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=in0.pcap,tx_pcap=out0.pcap"
address = "10.0.0.1/24"
mss_clamp = 1400

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=in1.pcap,tx_pcap=out1.pcap"
address = "198.51.100.1/24"

[[interface]]
name = "v10"
port = "p0"
vlan = 10
address = "10.10.0.1/24"
mss_clamp = 1300

[[interface]]
name = "v20"
port = "p0"
vlan = 20
address = "10.20.0.1/24"

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = ["forward"]

[forward]
routes = [{{ prefix = "203.0.113.0/24", via = "198.51.100.2" }}]
neighbors = [
  {{ address = "10.0.0.2", mac = "02:00:00:00:00:02", port = "p0" }},
  {{ address = "10.10.0.2", mac = "02:00:00:00:10:02", port = "v10" }},
  {{ address = "10.20.0.2", mac = "02:00:00:00:20:02", port = "v20" }},
  {{ address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "p1" }},
]
"#,
        prefix = lab.prefix(),
    );
    lab.write("pollfwd.toml", &text)
}

/// `f` with an 802.1Q tag of VLAN `vid` after its MAC addresses.
fn tagged(f: &[u8], vid: u16) -> Vec<u8> {
    let mut o = f[..12].to_vec();
    o.extend(0x8100u16.to_be_bytes());
    o.extend(vid.to_be_bytes());
    o.extend(&f[12..]);
    o
}

/// The VLAN id of a frame's 802.1Q tag (None: untagged) and the frame without it.
fn untagged(f: &[u8]) -> (Option<u16>, Vec<u8>) {
    if f[12..14] == [0x81, 0x00] {
        let mut o = f[..12].to_vec();
        o.extend(&f[16..]);
        (Some(u16::from_be_bytes([f[14], f[15]]) & 0x0fff), o)
    } else {
        (None, f.to_vec())
    }
}

#[test]
fn sub_interfaces_clamp_with_their_own_value() {
    let lab = Lab::new("mss-vlan");
    let h0 = (H0, 40000);
    let h10 = (Ipv4Addr::new(10, 10, 0, 2), 40000);
    let h20 = (Ipv4Addr::new(10, 20, 0, 2), 40000);
    let far = (FAR1, 443);
    let o = opts(1460);
    // (frame in, VLAN in, VLAN out, MSS out): the ingress or egress interface's clamp, a
    // sub-interface's own (not its parent port's), none for VLAN 20.
    let cases = [
        (tcp(h10, far, SYN, &o, b""), Some(10), None, 1300),
        (tcp(far, h10, SYN | ACK, &o, b""), None, Some(10), 1300),
        (tcp(h20, far, SYN, &o, b""), Some(20), None, 1460),
        (tcp(far, h20, SYN | ACK, &o, b""), None, Some(20), 1460),
        (tcp(h0, far, SYN, &o, b""), None, None, 1400),
        (tcp(far, h0, SYN | ACK, &o, b""), None, None, 1400),
    ];
    let cases: Vec<_> = cases
        .into_iter()
        .enumerate()
        .map(|(k, (f, vin, vout, mss))| (with_ident(f, 200 + k as u16), vin, vout, mss))
        .collect();
    let (mut in0, mut in1) = (Vec::new(), Vec::new());
    for (f, vin, _, _) in &cases {
        if f[26] == 203 {
            in1.push(f.clone());
        } else {
            in0.push(vin.map_or_else(|| f.clone(), |v| tagged(f, v)));
        }
    }
    write_frames(&lab.path("in0.pcap"), &in0);
    write_frames(&lab.path("in1.pcap"), &in1);
    let s = lab.run_json(&vlan_config(&lab), &["--exit-idle", "400"]);

    let out: Vec<Vec<u8>> = ["out0.pcap", "out1.pcap"]
        .iter()
        .flat_map(|p| read_pcap(&lab.path(p)))
        .collect();
    assert_eq!(out.len(), cases.len(), "{s}");
    for (sent, _, vout, mss) in &cases {
        let id = ident(sent);
        let got = out
            .iter()
            .find(|f| ident(&untagged(f).1) == id)
            .unwrap_or_else(|| panic!("frame {id} not forwarded: {s}"));
        let (vid, plain) = untagged(got);
        assert_eq!(vid, *vout, "frame {id}: VLAN out");
        verify(&plain).unwrap_or_else(|e| panic!("frame {id}: {e}"));
        assert_eq!(tcp_mss(&plain), Some(*mss), "frame {id}");
    }
    let clamped = cases.iter().filter(|c| c.3 != 1460).count() as u64;
    assert_eq!(s["nf"]["forward"]["totals"]["mss_clamped"], clamped, "{s}");
    assert_eq!(s["totals"]["drops"], 0, "{s}");
}
