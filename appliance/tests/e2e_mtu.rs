//! Egress MTU end to end (RFC 1191, RFC 791 / RFC 1812 5.2.6): the real `pollfwd` binary
//! routes between two net_pcap ports, p0 (10.0.0.1/24, MTU 1500 from the device) and p1
//! (198.51.100.1/24, `mtu = 1400`), with jumbo-sized mbufs (data_room 9344). A datagram with
//! DF set bigger than p1's MTU gets ICMP "fragmentation needed" with MTU 1400 back out of p0;
//! DF-clear datagrams (UDP, ping, 9000-byte jumbos, a burst of 32 jumbos) leave p1 as
//! fragments, each checked (size <= MTU, offsets, MF, checksums) and reassembled here by an
//! independent reassembler to the original datagram byte for byte (TTL - 1 and checksum
//! aside); every counter is exact. Through NAT (chain nat -> forward) the error reaches the
//! inside host quoting what it sent, and fragments carry the translated source.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use common::*;
use pollfwd_nf::nat::testpkt::{self, verify};
use serde_json::Value;

const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const FAR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const POOL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const GW1_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 0x02];
const P1_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x01];
const MTU: usize = 1400;

fn config(lab: &Lab, stages: &str, nat: bool) -> std::path::PathBuf {
    let nat = if nat {
        format!("[nat]\ninside = [\"p0\"]\noutside = [\"p1\"]\npool = [\"{POOL}\"]\nseed = 42\n")
    } else {
        String::new()
    };
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"

[mempool]
mbufs = 2047
data_room = 9344

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=inside.pcap,tx_pcap=p0-out.pcap"
address = "10.0.0.1/24"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=outside.pcap,tx_pcap=p1-out.pcap"
address = "198.51.100.1/24"
mtu = {MTU}

[[lcore]]
id = 1
rx = [{{ port = "p0" }}, {{ port = "p1" }}]
stages = {stages}

[control]
socket = "{sock}"

[forward]
routes = [{{ prefix = "203.0.113.0/24", via = "198.51.100.2" }}]
neighbors = [{{ address = "198.51.100.2", mac = "02:00:00:00:01:02", port = "p1" }}]
{nat}
"#,
        prefix = lab.prefix(),
        sock = lab.path("ctl.sock").display(),
    );
    lab.write("pollfwd.toml", &text)
}

/// A UDP datagram of `total` IP bytes from HOST to FAR, ident `id`, DF as asked.
fn udp(total: usize, id: u16, df: bool) -> Vec<u8> {
    let payload: Vec<u8> = (0..total - 28)
        .map(|i| (i * 13 + id as usize) as u8)
        .collect();
    let f = testpkt::udp((HOST, 4000 + id), (FAR, 9), &payload);
    with_ident_df(f, id, df)
}

/// An ICMP echo request of `total` IP bytes from HOST to FAR.
fn ping(total: usize, id: u16, df: bool) -> Vec<u8> {
    let mut f = testpkt::icmp_echo(HOST, FAR, 0x77, 1, false);
    f.truncate(14 + 28);
    f.extend((0..total - 28).map(|i| (i * 7) as u8));
    let tl = (total as u16).to_be_bytes();
    f[16..18].copy_from_slice(&tl);
    f[36..38].copy_from_slice(&[0, 0]);
    let c = !sum16(&f[34..]);
    f[36..38].copy_from_slice(&c.to_be_bytes());
    with_ident_df(f, id, df)
}

fn with_ident_df(mut f: Vec<u8>, id: u16, df: bool) -> Vec<u8> {
    f[18..20].copy_from_slice(&id.to_be_bytes());
    f[20] = if df { 0x40 } else { 0 };
    f[21] = 0;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = !sum16(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
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

/// Reassembles the fragments that left p1 by IP identification, checking each one on its own
/// (Ethernet addresses, size within the MTU, header checksum, offset alignment, no overlap,
/// no hole); returns ident -> (count, first fragment's header, data).
fn reassemble(frames: &[Vec<u8>]) -> BTreeMap<u16, (usize, Vec<u8>, Vec<u8>)> {
    let mut parts: BTreeMap<u16, Vec<&[u8]>> = BTreeMap::new();
    for f in frames {
        assert_eq!(f[0..6], GW1_MAC, "to the gateway");
        assert_eq!(f[6..12], P1_MAC, "from p1");
        let ip = &f[14..];
        let tl = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        assert!(tl <= MTU, "fragment of {tl} bytes over the MTU");
        assert!(
            f.len() == 14 + tl || (f.len() == 60 && tl < 46),
            "frame length {}",
            f.len()
        );
        let hl = (ip[0] & 0xf) as usize * 4;
        assert_eq!(sum16(&ip[..hl]), 0xffff, "fragment header checksum");
        let id = u16::from_be_bytes([ip[4], ip[5]]);
        parts.entry(id).or_default().push(&ip[..tl]);
    }
    let mut out = BTreeMap::new();
    for (id, ps) in parts {
        let mut data = vec![None::<u8>; 65536];
        let mut end = None;
        let mut header = None;
        for p in &ps {
            let hl = (p[0] & 0xf) as usize * 4;
            let ff = u16::from_be_bytes([p[6], p[7]]);
            assert_eq!(ff & 0x4000, 0, "DF clear");
            let off = (ff & 0x1fff) as usize * 8;
            let more = ff & 0x2000 != 0;
            let d = &p[hl..];
            if more {
                assert_eq!(
                    d.len() % 8,
                    0,
                    "data of a non-last fragment is a multiple of 8"
                );
            } else {
                assert!(end.replace(off + d.len()).is_none(), "two last fragments");
            }
            if off == 0 {
                header = Some(p[..hl].to_vec());
            }
            for (i, b) in d.iter().enumerate() {
                assert!(
                    data[off + i].replace(*b).is_none(),
                    "overlap at {}",
                    off + i
                );
            }
        }
        let end = end.expect("last fragment");
        let data: Vec<u8> = data[..end].iter().map(|b| b.expect("hole")).collect();
        out.insert(id, (ps.len(), header.expect("first fragment"), data));
    }
    out
}

/// The reassembled datagram is the original one: header fields but total length, flags,
/// TTL (one less) and checksum, and the data byte for byte; `src` the expected source.
fn assert_same(sent: &[u8], got: &(usize, Vec<u8>, Vec<u8>), src: Ipv4Addr, nat: bool) {
    let (_, h, data) = got;
    let o = &sent[14..];
    assert_eq!(h.len(), 20);
    assert_eq!(h[0..2], o[0..2]);
    assert_eq!(h[4..6], o[4..6], "identification");
    assert_eq!(h[8], o[8] - 1, "TTL - 1");
    assert_eq!(h[9], o[9]);
    assert_eq!(h[12..16], src.octets());
    assert_eq!(h[16..20], o[16..20]);
    if nat {
        // NAT changed the source port and the L4 checksum; the rest is the sender's.
        assert_eq!(data.len(), o.len() - 20);
        assert_eq!(data[2..4], o[22..24]);
        assert_eq!(data[8..], o[28..], "data");
        // The reassembled datagram verifies (L4 checksum over the whole datagram).
        let mut f = sent[..14].to_vec();
        f.extend_from_slice(h);
        f.extend_from_slice(data);
        f[16..18].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
        f[20..22].copy_from_slice(&[0, 0]);
        f[24..26].copy_from_slice(&[0, 0]);
        let c = !sum16(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        verify(&f).expect("reassembled datagram checksums");
    } else {
        assert_eq!(&data[..], &o[20..], "data byte for byte");
    }
}

/// An ICMP "fragmentation needed" (type 3 code 4, MTU 1400) from 10.0.0.1 to the sender of
/// `sent`, quoting it as sent.
fn assert_frag_needed(e: &[u8], sent: &[u8]) {
    verify(e).unwrap_or_else(|m| panic!("{m}: {e:02x?}"));
    assert_eq!(e[0..6], sent[6..12], "back to the sender's MAC");
    assert_eq!(
        (e[23], e[34], e[35]),
        (1, 3, 4),
        "ICMP fragmentation needed"
    );
    assert_eq!(e[38..40], [0, 0], "unused");
    assert_eq!(
        u16::from_be_bytes([e[40], e[41]]) as usize,
        MTU,
        "next-hop MTU"
    );
    assert_eq!(e[26..30], [10, 0, 0, 1], "from the ingress interface");
    assert_eq!(e[30..34], sent[26..30], "to the sender");
    let total = u16::from_be_bytes([e[16], e[17]]) as usize;
    assert_eq!(total, 576, "quote up to 576 bytes (RFC 1812 4.3.2.3)");
    assert_eq!(
        e[42..14 + total],
        sent[14..14 + total - 28],
        "the datagram as sent"
    );
}

fn fwd(s: &Value, k: &str) -> u64 {
    s["nf"]["forward"]["totals"][k].as_u64().unwrap_or(0)
}

#[test]
fn oversize_datagrams_are_fragmented_or_refused_with_frag_needed() {
    let lab = Lab::new("mtu-fwd");
    let small = udp(200, 1, true);
    let df = udp(2000, 2, true);
    let big = udp(4000, 3, false);
    let echo = ping(4000, 4, false);
    let jumbo = udp(9000, 5, false);
    let exact = udp(MTU, 6, true);
    let mut input = vec![
        small.clone(),
        df.clone(),
        big.clone(),
        echo.clone(),
        jumbo.clone(),
    ];
    input.push(exact.clone());
    // A burst of 32 jumbos: 32 x 6 fragments originated in one burst (more than a burst).
    let jumbos: Vec<Vec<u8>> = (0..32).map(|i| udp(9000, 100 + i, false)).collect();
    input.extend(jumbos.iter().cloned());
    write_frames(&lab.path("inside.pcap"), &input);
    write_frames(&lab.path("outside.pcap"), &[]);
    let cfg = config(&lab, r#"["forward"]"#, false);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let p0 = read_pcap(&lab.path("p0-out.pcap"));
    let p1 = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(p0.len(), 1, "one error back out of p0: {s}");
    assert_frag_needed(&p0[0], &df);

    // Whole datagrams (small, exactly the MTU) leave as they are.
    let whole: Vec<&Vec<u8>> = p1
        .iter()
        .filter(|f| f[20] & 0x3f == 0 && f[21] == 0)
        .collect();
    assert_eq!(whole.len(), 2, "{s}");
    let frags: Vec<Vec<u8>> = p1
        .iter()
        .filter(|f| !(f[20] & 0x3f == 0 && f[21] == 0))
        .cloned()
        .collect();
    let r = reassemble(&frags);
    assert_eq!(r.len(), 3 + 32, "every DF-clear datagram fragmented");
    for (sent, n) in [(&big, 3), (&echo, 3), (&jumbo, 7)] {
        let id = u16::from_be_bytes([sent[18], sent[19]]);
        assert_eq!(r[&id].0, n, "fragments of datagram {id}");
        assert_same(sent, &r[&id], HOST, false);
    }
    for j in &jumbos {
        let id = u16::from_be_bytes([j[18], j[19]]);
        assert_eq!(r[&id].0, 7);
        assert_same(j, &r[&id], HOST, false);
    }
    // Fragments of one datagram leave in order, the first one first.
    let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
    for f in &frags {
        let id = u16::from_be_bytes([f[18], f[19]]);
        let off = (u16::from_be_bytes([f[20], f[21]]) & 0x1fff) as usize * 8;
        let prev = seen.insert(id, off);
        assert!(prev.is_none_or(|p| p < off), "fragments of {id} in order");
    }

    // Counters: 38 datagrams in; 35 fragmented into 3 + 3 + 7 + 32 x 7 = 237 fragments, 2
    // whole, 1 refused; rx + originated (fragments beyond the first, one ICMP error) = tx +
    // drops.
    let fragments = 3 + 3 + 7 + 32 * 7;
    assert_eq!(p1.len(), fragments + 2);
    assert_eq!(fwd(&s, "fragmented"), 35, "{s}");
    assert_eq!(fwd(&s, "fragments_sent"), fragments as u64);
    assert_eq!(fwd(&s, "frag_needed_sent"), 1);
    assert_eq!(fwd(&s, "icmp_errors_sent"), 1);
    assert_eq!(drops(&s, "frag_needed"), 1, "{s}");
    assert_eq!(drops(&s, "tx_full"), 0, "{s}");
    assert_eq!(s["totals"]["drops"], 1, "{s}");
    assert_eq!(port(&s, "p0")["rx_packets"], input.len() as u64);
    assert_eq!(port(&s, "p1")["tx_packets"], (fragments + 2) as u64);
    assert_eq!(port(&s, "p0")["tx_packets"], 1);
    let originated = fwd(&s, "fragments_sent") - fwd(&s, "fragmented") + 1;
    assert_eq!(
        input.len() as u64 + originated,
        (fragments + 2 + 1) as u64 + 1,
        "rx + originated = tx + drops"
    );
    // TX bytes are the fragments' bytes (not the datagrams' as received).
    let bytes: u64 = p1.iter().map(|f| f.len() as u64).sum();
    assert_eq!(port(&s, "p1")["tx_bytes"], bytes, "{s}");
}

#[test]
fn through_nat_frag_needed_reaches_the_inside_host_and_fragments_are_translated() {
    let lab = Lab::new("mtu-nat");
    let df = udp(2000, 2, true);
    let big = udp(4000, 3, false);
    write_frames(&lab.path("inside.pcap"), &[df.clone(), big.clone()]);
    write_frames(&lab.path("outside.pcap"), &[]);
    let cfg = config(&lab, r#"["nat", "forward"]"#, true);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let p0 = read_pcap(&lab.path("p0-out.pcap"));
    let p1 = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(p0.len(), 1, "{s}");
    // To 10.0.0.2 (not the pool address), quoting the datagram as the host sent it.
    assert_frag_needed(&p0[0], &df);
    let r = reassemble(&p1);
    assert_eq!(r.len(), 1, "{s}");
    let got = r.values().next().unwrap();
    assert_eq!(got.0, 3);
    assert_same(&big, got, POOL, true);
    assert_eq!(fwd(&s, "fragmented"), 1);
    assert_eq!(fwd(&s, "fragments_sent"), 3);
    assert_eq!(drops(&s, "frag_needed"), 1, "{s}");
}

/// An ARP reply from `spa`/`sha` to the appliance's p1 address, padded to 60 bytes.
fn arp_reply(sha: [u8; 6], spa: Ipv4Addr) -> Vec<u8> {
    let mut f = P1_MAC.to_vec();
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&P1_MAC);
    f.extend_from_slice(&[198, 51, 100, 1]);
    f.resize(60, 0);
    f
}

#[test]
fn a_datagram_parked_for_arp_is_fragmented_when_released() {
    let lab = Lab::new("mtu-park");
    // To a connected host on p1 with no neighbour entry: parked, ARP asked; the answer (read
    // from p1 after p0's burst, in the same round) releases it, as fragments.
    let host9 = Ipv4Addr::new(198, 51, 100, 9);
    let mac9 = [0x02, 0, 0, 0, 1, 0x09];
    let payload: Vec<u8> = (0..4000 - 28).map(|i| (i * 5) as u8).collect();
    let big = with_ident_df(testpkt::udp((HOST, 4000), (host9, 9), &payload), 7, false);
    write_frames(&lab.path("inside.pcap"), std::slice::from_ref(&big));
    write_frames(&lab.path("outside.pcap"), &[arp_reply(mac9, host9)]);
    let cfg = config(&lab, r#"["forward"]"#, false);
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let p1 = read_pcap(&lab.path("p1-out.pcap"));
    let frags: Vec<&Vec<u8>> = p1.iter().filter(|f| f[12..14] == [0x08, 0x00]).collect();
    assert_eq!(p1.len() - frags.len(), 1, "one ARP request: {s}");
    assert_eq!(frags.len(), 3, "{s}");
    let mut data = vec![0u8; 4000 - 20];
    for f in &frags {
        assert_eq!(f[0..6], mac9, "to the resolved neighbour");
        let tl = u16::from_be_bytes([f[16], f[17]]) as usize;
        assert!(tl <= MTU);
        assert_eq!(sum16(&f[14..34]), 0xffff);
        let off = (u16::from_be_bytes([f[20], f[21]]) & 0x1fff) as usize * 8;
        data[off..off + tl - 20].copy_from_slice(&f[34..14 + tl]);
    }
    assert_eq!(&data[..], &big[34..], "reassembled data");
    assert_eq!(fwd(&s, "held"), 1, "{s}");
    assert_eq!(fwd(&s, "released"), 1, "{s}");
    assert_eq!(fwd(&s, "fragmented"), 1, "{s}");
    assert_eq!(fwd(&s, "fragments_sent"), 3, "{s}");
    assert_eq!(s["totals"]["drops"], 1, "only the ARP reply, consumed: {s}");
}
