//! Synthetic IPv6 lab traffic (`pollfwdctl gen-pcap --ipv6`): the frames of a
//! [`GenSpec`](crate::traffic::GenSpec) with IPv6 addresses instead of IPv4 ones, built with
//! smoltcp's wire module (every length and checksum valid, no extension header, hop limit =
//! the spec's TTL). Sizes, protocols, flows, ports and payloads follow the IPv4 generator's
//! rules ([`crate::traffic`]); ICMP is ICMPv6 echo request. IPv6 headers are 20 bytes longer
//! than IPv4's: a UDP frame needs at least 66 bytes (with FCS), TCP 78.
//!
//! Destinations: flow `f` goes to `dst_ip` plus `f` in the last two bytes, and with
//! `dst_nets = N` into one of N networks of length `dst_net_len` counted up from `dst_ip`'s
//! (network `r` of flow `f` chosen pseudo-randomly from the seed, spread like the routes of a
//! benchmark table: 2001:db8::/48 + r is `2001:db8:r::`).

use std::net::Ipv6Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ETHERNET_HEADER_LEN, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr,
    IPV6_HEADER_LEN, Icmpv6Packet, Icmpv6Repr, IpAddress, IpProtocol, Ipv6Packet, Ipv6Repr,
    TCP_HEADER_LEN, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UDP_HEADER_LEN, UdpPacket,
    UdpRepr,
};

use crate::traffic::{self, FCS_LEN, GenSpec, ICMP_ECHO_HEADER_LEN, Proto};

/// The IPv6 addressing of a generated pcap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs6 {
    /// Source of flow 0; flow `f` adds `f` within the last two bytes.
    pub src_ip: Ipv6Addr,
    /// Destination of flow 0 (with `dst_nets`, the base of network 0).
    pub dst_ip: Ipv6Addr,
    /// Spread the destinations over this many networks (0 or 1: one).
    pub dst_nets: u32,
    /// Length of those networks (1..=112: the host part keeps its last two bytes).
    pub dst_net_len: u8,
}

impl Default for Addrs6 {
    /// 2001:db8::1 -> 2001:db8:1::1 (documentation prefix), one destination network.
    fn default() -> Self {
        Addrs6 {
            src_ip: "2001:db8::1".parse().expect("address"),
            dst_ip: "2001:db8:1::1".parse().expect("address"),
            dst_nets: 0,
            dst_net_len: 48,
        }
    }
}

/// Bytes of headers above Ethernet (IPv6 + transport) of `proto`'s frames (`Mix`: the
/// largest).
fn header_len(proto: Proto) -> usize {
    IPV6_HEADER_LEN
        + match proto {
            Proto::Udp => UDP_HEADER_LEN,
            Proto::Tcp | Proto::Mix => TCP_HEADER_LEN,
            Proto::Icmp => ICMP_ECHO_HEADER_LEN,
        }
}

/// Checks `spec` (as [`traffic::validate`]) and `a` for IPv6 frames: every size holds the
/// IPv6 headers; `dst_net_len` within 1..=112 and the networks within the address space.
pub fn validate(spec: &GenSpec, a: &Addrs6) -> Result<(), String> {
    traffic::validate(spec)?;
    let needed = ETHERNET_HEADER_LEN + header_len(spec.proto) + FCS_LEN;
    for i in 0..spec.count.min(64) {
        let size = spec.sizes.for_index(i);
        if size < needed {
            return Err(format!(
                "frame size {size} cannot hold the {needed} bytes of IPv6 {:?} headers and FCS",
                spec.proto
            ));
        }
    }
    if a.dst_nets > 1 {
        if !(1..=112).contains(&a.dst_net_len) {
            return Err(format!(
                "destination network length {} not in 1..=112",
                a.dst_net_len
            ));
        }
        let shift = 128 - u32::from(a.dst_net_len);
        let last = (u128::from(a.dst_ip) >> shift).checked_add(u128::from(a.dst_nets - 1));
        if last.is_none_or(|l| l.checked_shl(shift).is_none() || l >> (128 - shift) != 0) {
            return Err(format!(
                "{} networks of /{} from {} run past the address space",
                a.dst_nets, a.dst_net_len, a.dst_ip
            ));
        }
    }
    Ok(())
}

/// `base` plus `add` within the last two bytes.
fn low16(base: Ipv6Addr, add: usize) -> Ipv6Addr {
    let b = u128::from(base);
    let low = (b as u16).wrapping_add(add as u16);
    Ipv6Addr::from((b & !0xffff) | u128::from(low))
}

/// The destination of flow `flow` (see the module docs).
pub fn dst_of(spec: &GenSpec, a: &Addrs6, flow: usize) -> Ipv6Addr {
    let dst = low16(a.dst_ip, flow);
    if a.dst_nets <= 1 {
        return dst;
    }
    let mut state = spec.seed ^ (flow as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let net = traffic::splitmix64(&mut state) % u64::from(a.dst_nets);
    Ipv6Addr::from(u128::from(dst) + (u128::from(net) << (128 - u32::from(a.dst_net_len))))
}

/// The `index`-th IPv6 frame of `spec` addressed by `a`, without FCS (`size - 4` bytes).
///
/// # Panics
/// If `spec` and `a` fail [`validate`].
pub fn frame(spec: &GenSpec, a: &Addrs6, index: usize) -> Vec<u8> {
    let size = spec.sizes.for_index(index);
    let proto = spec.proto.for_index(index);
    let len = size.saturating_sub(FCS_LEN);
    assert!(
        len >= ETHERNET_HEADER_LEN + header_len(proto),
        "traffic6::frame: size {size} too small for IPv6 {proto:?}"
    );
    let flow = index % spec.flows;
    let src = low16(a.src_ip, flow);
    let dst = dst_of(spec, a, flow);
    let src_port = spec.src_port.wrapping_add(flow as u16);
    let caps = ChecksumCapabilities::default();
    let (src_addr, dst_addr) = (IpAddress::Ipv6(src), IpAddress::Ipv6(dst));

    let mut buf = vec![0u8; len];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: EthernetAddress(spec.src_mac),
        dst_addr: EthernetAddress(spec.dst_mac),
        ethertype: EthernetProtocol::Ipv6,
    }
    .emit(&mut eth);
    let payload_len = len - ETHERNET_HEADER_LEN - IPV6_HEADER_LEN;
    let mut ip = Ipv6Packet::new_unchecked(eth.payload_mut());
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: match proto {
            Proto::Tcp => IpProtocol::Tcp,
            Proto::Icmp => IpProtocol::Icmpv6,
            Proto::Udp | Proto::Mix => IpProtocol::Udp,
        },
        payload_len,
        hop_limit: spec.ttl,
    }
    .emit(&mut ip);
    let l4 = ip.payload_mut();
    match proto {
        Proto::Udp | Proto::Mix => UdpRepr {
            src_port,
            dst_port: spec.dst_port,
        }
        .emit(
            &mut UdpPacket::new_unchecked(l4),
            &src_addr,
            &dst_addr,
            payload_len - UDP_HEADER_LEN,
            |p| traffic::fill_payload(p, spec.seed, index),
            &caps,
        ),
        Proto::Tcp => {
            let mut payload = vec![0u8; payload_len - TCP_HEADER_LEN];
            traffic::fill_payload(&mut payload, spec.seed, index);
            TcpRepr {
                src_port,
                dst_port: spec.dst_port,
                control: TcpControl::Psh,
                seq_number: TcpSeqNumber(index as u32 as i32),
                ack_number: Some(TcpSeqNumber(1)),
                window_len: 65535,
                window_scale: None,
                max_seg_size: None,
                sack_permitted: false,
                sack_ranges: [None, None, None],
                timestamp: None,
                payload: &payload,
            }
            .emit(
                &mut TcpPacket::new_unchecked(l4),
                &src_addr,
                &dst_addr,
                &caps,
            );
        }
        Proto::Icmp => {
            let mut data = vec![0u8; payload_len - ICMP_ECHO_HEADER_LEN];
            traffic::fill_payload(&mut data, spec.seed, index);
            Icmpv6Repr::EchoRequest {
                ident: src_port,
                seq_no: index as u16,
                data: &data,
            }
            .emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(l4), &caps);
        }
    }
    buf
}

/// The `spec.count` IPv6 frames, in order, built lazily.
pub fn generate<'a>(spec: &'a GenSpec, a: &'a Addrs6) -> impl Iterator<Item = Vec<u8>> + 'a {
    (0..spec.count).map(move |i| frame(spec, a, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::Sizes;
    use smoltcp::wire::{Icmpv6Packet, Ipv6Packet, TcpPacket, UdpPacket};

    fn spec(proto: Proto, size: usize) -> GenSpec {
        GenSpec {
            count: 300,
            flows: 100,
            sizes: Sizes::Fixed(size),
            proto,
            ..GenSpec::default()
        }
    }

    #[test]
    fn frames_parse_with_valid_checksums_and_sizes() {
        let a = Addrs6::default();
        for (proto, size) in [(Proto::Udp, 78), (Proto::Tcp, 78), (Proto::Icmp, 70)] {
            let s = spec(proto, size);
            validate(&s, &a).unwrap();
            for (i, f) in generate(&s, &a).enumerate() {
                assert_eq!(f.len(), size - 4);
                let e = EthernetFrame::new_checked(&f[..]).unwrap();
                assert_eq!(e.ethertype(), EthernetProtocol::Ipv6);
                let ip = Ipv6Packet::new_checked(e.payload()).unwrap();
                assert_eq!(ip.hop_limit(), 64);
                assert_eq!(ip.payload_len() as usize, size - 4 - 14 - 40);
                assert_eq!(ip.src_addr(), low16(a.src_ip, i % 100));
                assert_eq!(ip.dst_addr(), low16(a.dst_ip, i % 100));
                let (src, dst) = (
                    IpAddress::Ipv6(ip.src_addr()),
                    IpAddress::Ipv6(ip.dst_addr()),
                );
                match proto {
                    Proto::Udp => {
                        let u = UdpPacket::new_checked(ip.payload()).unwrap();
                        assert!(u.verify_checksum(&src, &dst));
                        assert_eq!(u.src_port(), 1024 + (i % 100) as u16);
                    }
                    Proto::Tcp => {
                        let t = TcpPacket::new_checked(ip.payload()).unwrap();
                        assert!(t.verify_checksum(&src, &dst));
                        assert_eq!(t.seq_number(), TcpSeqNumber(i as i32));
                    }
                    _ => {
                        let c = Icmpv6Packet::new_checked(ip.payload()).unwrap();
                        assert!(c.verify_checksum(&ip.src_addr(), &ip.dst_addr()));
                        assert_eq!(c.echo_seq_no(), i as u16);
                    }
                }
            }
        }
    }

    #[test]
    fn destinations_spread_over_the_networks() {
        let a = Addrs6 {
            dst_ip: "2001:db8::1".parse().unwrap(),
            dst_nets: 10_000,
            dst_net_len: 48,
            ..Addrs6::default()
        };
        let s = GenSpec {
            flows: 2048,
            ..spec(Proto::Udp, 78)
        };
        validate(&s, &a).unwrap();
        let mut nets = std::collections::HashSet::new();
        for f in 0..2048 {
            let d = u128::from(dst_of(&s, &a, f));
            assert_eq!(d >> 96, 0x2001_0db8, "inside 2001:db8::/32");
            let net = (d >> 80) as u16;
            assert!(net < 10_000);
            assert_eq!(d as u16, 1 + f as u16, "host part: flow");
            nets.insert(net);
        }
        // 2048 draws from 10,000 networks: about 1,850 distinct.
        assert!(nets.len() > 1700, "{} networks", nets.len());
        let dst = |i: usize| frame(&s, &a, i)[38..54].to_vec();
        assert_eq!(dst(5), dst(5 + 2048), "one destination per flow");
        assert_ne!(dst(5), dst(6));
    }

    #[test]
    fn validation_refuses_small_frames_and_bad_networks() {
        let a = Addrs6::default();
        assert!(
            validate(&spec(Proto::Udp, 64), &a)
                .unwrap_err()
                .contains("IPv6")
        );
        assert!(validate(&spec(Proto::Udp, 66), &a).is_ok());
        assert!(validate(&spec(Proto::Tcp, 74), &a).is_err());
        let over = Addrs6 {
            dst_ip: "ffff:ffff:ffff::".parse().unwrap(),
            dst_nets: 2,
            ..a
        };
        assert!(validate(&spec(Proto::Udp, 78), &over).is_err());
        let len = Addrs6 {
            dst_nets: 2,
            dst_net_len: 120,
            ..a
        };
        assert!(validate(&spec(Proto::Udp, 78), &len).is_err());
    }
}
