//! NAT's virtual reassembly end to end: the real `pollfwd` binary, chain nat -> xconnect on
//! net_pcap ports (p0 inside, p1 outside). A datagram's second fragment arrives before its
//! first: NAT holds it, translates it once the first has come, and both leave translated and
//! reassemble (with smoltcp checking the UDP checksum) into the datagram with the pool
//! address; a fragment whose first fragment never comes is dropped after its wait, counted.

mod common;

use std::net::Ipv4Addr;

use common::*;
use pollfwd_nf::nat::testpkt::{self, verify};

const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const POOL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// Reassembles two fragments (any order) into one frame: the first fragment's header with
/// MF, offset and length fixed, then the payloads by offset.
fn reassemble(a: &[u8], b: &[u8]) -> Vec<u8> {
    let off = |f: &[u8]| (u16::from_be_bytes([f[20], f[21]]) & 0x1fff) as usize * 8;
    let (first, second) = if off(a) == 0 { (a, b) } else { (b, a) };
    assert_eq!(off(first), 0);
    let mut f = first.to_vec();
    assert_eq!(f.len() - 34, off(second), "contiguous");
    f.extend_from_slice(&second[34..]);
    let total = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[20..22].copy_from_slice(&[0, 0]);
    f[24..26].copy_from_slice(&[0, 0]);
    let mut sum: u32 = f[14..34]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f
}

#[test]
fn a_fragment_ahead_of_its_first_fragment_is_held_then_translated() {
    let lab = Lab::new("nat-frag");
    let payload: Vec<u8> = (0..200u8).collect();
    let whole = testpkt::udp((HOST, 40000), (SERVER, 53), &payload);
    let (first, second) = testpkt::fragments(&whole, 64, 0x4242);
    // Another datagram's second fragment whose first never comes.
    let other = testpkt::udp((HOST, 40001), (SERVER, 53), &payload);
    let (_, orphan) = testpkt::fragments(&other, 64, 0x4343);
    write_frames(
        &lab.path("in.pcap"),
        &[second.clone(), orphan, first.clone()],
    );
    let nat = r#"
[nat]
inside = ["p0"]
outside = ["p1"]
pool = ["198.51.100.10"]
seed = 42
"#;
    let cfg = pcap_config(&lab, "in.pcap", r#"["nat", "xconnect"]"#, nat);
    // Idle long enough for the orphan's 1 s wait to end under housekeeping.
    let s = lab.run_json(&cfg, &["--exit-idle", "1800"]);
    let out = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(out.len(), 2, "both fragments of the datagram: {s}");
    for f in &out {
        assert_eq!(f[26..30], POOL.octets(), "translated source");
        assert_eq!(f[18..20], [0x42, 0x42], "same IP id");
    }
    let r = reassemble(&out[0], &out[1]);
    verify(&r).unwrap_or_else(|e| panic!("reassembled datagram: {e}"));
    assert_eq!(&r[42..], &whole[42..], "the payload");
    let d = &s["totals"]["drops_by_reason"];
    assert_eq!(d["nat_fragment_timeout"], 1, "the orphan: {s}");
    assert_eq!(s["totals"]["drops"], 1, "{s}");
}
