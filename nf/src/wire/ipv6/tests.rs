use super::*;
use crate::wire::checksum::tests::Rng;
use smoltcp::wire::{
    IpProtocol, Ipv6Address, Ipv6ExtHeader, Ipv6ExtHeaderRepr, Ipv6FragmentHeader,
    Ipv6FragmentRepr, Ipv6Packet, Ipv6Repr,
};

const A: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0001;
const B: u128 = 0x2001_0db8_0002_0000_0000_0000_0000_0009;

/// A UDP/IPv6 packet (no Ethernet header) A:1234 -> B:80 with `pay` bytes of payload after
/// the extension headers `ext` (whose first next header is `first`; the last one's says UDP).
fn packet(first: u8, ext: &[u8], pay: usize) -> Vec<u8> {
    let l4 = 8 + pay;
    let mut p = vec![0u8; HEADER_LEN];
    write_header(&mut p, (ext.len() + l4) as u16, first, 64, A, B);
    p.extend_from_slice(ext);
    p.extend_from_slice(&[0x04, 0xd2, 0x00, 0x50, 0, l4 as u8, 0, 0]);
    p.extend((0..pay).map(|i| i as u8));
    p
}

fn udp() -> Vec<u8> {
    packet(proto::UDP, &[], 8)
}

/// A generic extension header (RFC 6564 format) of `len` bytes (a multiple of 8), written
/// with smoltcp.
fn ext(next: u8, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    let mut h = Ipv6ExtHeader::new_unchecked(&mut b[..]);
    Ipv6ExtHeaderRepr {
        next_header: IpProtocol::from(next),
        length: (len / 8 - 1) as u8,
        data: &[],
    }
    .emit(&mut h);
    b
}

/// A fragment header written with smoltcp (`off` in 8-byte units).
fn frag(next: u8, off: u16, more: bool, ident: u32) -> Vec<u8> {
    let mut b = ext(next, 8);
    let mut f = Ipv6FragmentHeader::new_unchecked(&mut b[2..]);
    Ipv6FragmentRepr {
        frag_offset: off,
        more_frags: more,
        ident,
    }
    .emit(&mut f);
    b
}

#[test]
fn accessors_round_trip_and_agree_with_smoltcp() {
    let mut b = [0u8; 48];
    let mut p = Packet::new_checked(&mut b[..]).unwrap();
    p.set_version_tc_flow(0xb9, 0xabcde);
    p.set_payload_len(8);
    p.set_next_header(proto::UDP);
    p.set_hop_limit(17);
    p.set_src(A);
    p.set_dst(B);
    assert_eq!(
        (p.version(), p.traffic_class(), p.flow_label()),
        (6, 0xb9, 0xabcde)
    );
    assert_eq!((p.dscp(), p.ecn()), (46, 1));
    assert_eq!(
        (p.payload_len(), p.next_header(), p.hop_limit()),
        (8, 17, 17)
    );
    assert_eq!((p.src(), p.dst()), (A, B));
    assert!(p.set_dscp(10));
    assert!(!p.set_dscp(10));
    assert_eq!((p.traffic_class(), p.flow_label()), (10 << 2 | 1, 0xabcde));
    p.decrement_hop_limit();
    assert_eq!(p.hop_limit(), 16);
    assert_eq!(p.payload().len(), 8);
    let s = Ipv6Packet::new_checked(&b[..]).unwrap();
    assert_eq!(s.version(), 6);
    assert_eq!(s.traffic_class(), 10 << 2 | 1);
    assert_eq!(s.flow_label(), 0xabcde);
    assert_eq!(s.payload_len(), 8);
    assert_eq!(s.next_header(), IpProtocol::Udp);
    assert_eq!(s.hop_limit(), 16);
    assert_eq!(s.src_addr(), Ipv6Address::from(A));
    assert_eq!(s.dst_addr(), Ipv6Address::from(B));
    assert_eq!(
        &b[8..10],
        &[0x20, 0x01],
        "addresses are big-endian on the wire"
    );
    assert!(Packet::new_checked(&b[..39]).is_err());

    // Written by smoltcp, read here.
    let mut c = [0xffu8; 40];
    Ipv6Repr {
        src_addr: Ipv6Address::from(B),
        dst_addr: Ipv6Address::from(A),
        next_header: IpProtocol::Icmpv6,
        payload_len: 1234,
        hop_limit: 255,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut c[..]));
    let p = Packet::new_unchecked(&c[..]);
    assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0, 0));
    assert_eq!(
        (p.payload_len(), p.next_header(), p.hop_limit()),
        (1234, 58, 255)
    );
    assert_eq!((p.src(), p.dst()), (B, A));
    // And the header written here equals smoltcp's for the same fields.
    let mut d = [0u8; 40];
    write_header(&mut d, 1234, proto::ICMPV6, 255, B, A);
    assert_eq!(c, d);
}

#[test]
fn plain_udp_and_padding() {
    let mut p = udp();
    let i = validate(&p).unwrap();
    assert_eq!((i.upper, i.upper_off, i.upper_len()), (17, 40, 16));
    assert_eq!((i.sport, i.dport), (1234, 80));
    assert_eq!((i.src, i.dst, i.hop_limit, i.payload_len), (A, B, 64, 16));
    assert!(!i.hop_by_hop && !i.has_frag_header && i.frag == Frag::No);
    // Ethernet padding after the payload is not part of the packet.
    p.extend_from_slice(&[0xee; 10]);
    assert_eq!(validate(&p).unwrap(), i);
}

/// Issue 15's malformed IPv6 list, each with its reason.
#[test]
fn each_malformation_has_its_reason() {
    let p = udp();
    // Truncated header: every length below 40.
    for n in 0..HEADER_LEN {
        assert_eq!(validate(&p[..n]), Err(DropReason::Ipv6Truncated), "{n}");
    }
    // Payload length beyond the frame: every truncation of the payload.
    for n in HEADER_LEN..p.len() {
        assert_eq!(validate(&p[..n]), Err(DropReason::Ipv6Truncated), "{n}");
    }
    let mut v = p.clone();
    v[0] = 0x45;
    assert_eq!(validate(&v), Err(DropReason::Ipv6BadVersion));
    // Jumbogram: payload length 0 and a hop-by-hop header (with the jumbo option).
    let mut j = packet(next_header::HOP_BY_HOP, &ext(proto::UDP, 8), 8);
    j[4..6].copy_from_slice(&[0, 0]);
    j[42..48].copy_from_slice(&[0xc2, 4, 0, 0, 0, 56]);
    assert_eq!(validate(&j), Err(DropReason::Ipv6BadLength));
    // An extension-header chain that runs past the packet: a header whose length goes past
    // the payload, a chain whose last header promises another, a header cut in two.
    let mut long = ext(proto::UDP, 8);
    long[1] = 3; // 32 bytes in a 16-byte payload
    let past = packet(next_header::DEST_OPTS, &long, 0);
    assert_eq!(validate(&past), Err(DropReason::Ipv6BadExtHeader));
    let mut chain = Vec::new();
    for _ in 0..3 {
        chain.extend(ext(next_header::ROUTING, 8));
    }
    let mut looping = vec![0u8; HEADER_LEN];
    write_header(&mut looping, 24, next_header::ROUTING, 64, A, B);
    looping.extend(&chain);
    assert_eq!(validate(&looping), Err(DropReason::Ipv6BadExtHeader));
    looping.extend_from_slice(&[0xee; 64]); // bytes beyond the payload are not walked
    assert_eq!(validate(&looping), Err(DropReason::Ipv6BadExtHeader));
    let mut cut = vec![0u8; HEADER_LEN];
    write_header(&mut cut, 1, next_header::DEST_OPTS, 64, A, B);
    cut.extend_from_slice(&[proto::UDP, 0, 0, 0]);
    assert_eq!(validate(&cut), Err(DropReason::Ipv6BadExtHeader));
    // Hop-by-hop anywhere but first.
    let mut hbh2 = ext(next_header::HOP_BY_HOP, 8);
    hbh2.extend(ext(proto::UDP, 8));
    let p2 = packet(next_header::DEST_OPTS, &hbh2, 0);
    assert_eq!(validate(&p2), Err(DropReason::Ipv6BadExtHeader));
    // Too many headers: 8 walk, 9 do not.
    let chain = |n: usize| {
        let mut c = Vec::new();
        for k in 0..n {
            let next = if k + 1 == n {
                proto::UDP
            } else {
                next_header::DEST_OPTS
            };
            c.extend(ext(next, 8));
        }
        packet(next_header::DEST_OPTS, &c, 0)
    };
    let i = validate(&chain(MAX_EXT_HEADERS)).unwrap();
    assert_eq!(
        (i.upper, i.upper_off as usize),
        (17, 40 + 8 * MAX_EXT_HEADERS)
    );
    assert_eq!(
        validate(&chain(MAX_EXT_HEADERS + 1)),
        Err(DropReason::Ipv6BadExtHeader)
    );
    // Two fragment headers.
    let mut ff = frag(next_header::FRAGMENT, 0, true, 1);
    ff.extend(frag(proto::UDP, 0, true, 2));
    assert_eq!(
        validate(&packet(next_header::FRAGMENT, &ff, 0)),
        Err(DropReason::Ipv6BadExtHeader)
    );
}

#[test]
fn extension_headers_fragments_and_opaque_upper_layers() {
    // Hop-by-hop, routing, destination options, then UDP.
    let mut e = ext(next_header::ROUTING, 8);
    e.extend(ext(next_header::DEST_OPTS, 24));
    e.extend(ext(proto::UDP, 16));
    let i = validate(&packet(next_header::HOP_BY_HOP, &e, 4)).unwrap();
    assert!(i.hop_by_hop);
    assert_eq!((i.upper, i.upper_off, i.sport, i.dport), (17, 88, 1234, 80));
    // First fragment: ports present; non-first: the walk stops at the fragment header.
    let i = validate(&packet(
        next_header::FRAGMENT,
        &frag(proto::UDP, 0, true, 7),
        4,
    ))
    .unwrap();
    assert_eq!(
        (i.frag, i.frag_offset, i.more_frags),
        (Frag::First, 0, true)
    );
    assert_eq!((i.frag_ident, i.upper, i.upper_off), (7, 17, 48));
    assert_eq!((i.sport, i.dport), (1234, 80));
    // A non-first fragment whose data looks like extension headers: not walked.
    let mut nf = frag(next_header::DEST_OPTS, 185, false, 9);
    nf.extend(ext(proto::UDP, 8));
    let i = validate(&packet(next_header::FRAGMENT, &nf, 0)).unwrap();
    assert_eq!(
        (i.frag, i.frag_offset, i.more_frags),
        (Frag::NonFirst, 1480, false)
    );
    assert_eq!((i.upper, i.upper_off, i.sport, i.dport), (60, 48, 0, 0));
    // Atomic fragment (RFC 6946).
    let i = validate(&packet(
        next_header::FRAGMENT,
        &frag(proto::UDP, 0, false, 3),
        0,
    ))
    .unwrap();
    assert!(i.has_frag_header);
    assert_eq!((i.frag, i.sport), (Frag::No, 1234));
    // AH: (len + 2) * 4 bytes (RFC 4302): 24 bytes with len 4.
    let mut ah = vec![proto::UDP, 4];
    ah.extend_from_slice(&[0; 22]);
    let i = validate(&packet(next_header::AH, &ah, 0)).unwrap();
    assert_eq!((i.upper, i.upper_off, i.sport), (17, 64, 1234));
    // ESP and No Next Header end the walk; what follows is opaque.
    for nh in [next_header::ESP, next_header::NO_NEXT] {
        let mut p = packet(nh, &[], 0);
        p[6] = nh;
        let i = validate(&p).unwrap();
        assert_eq!((i.upper, i.upper_off, i.sport, i.dport), (nh, 40, 0, 0));
    }
    // ICMPv6: type and code as dport, an echo's identifier as sport.
    let mut icmp = packet(proto::ICMPV6, &[], 0);
    icmp[40..46].copy_from_slice(&[128, 0, 0, 0, 0x12, 0x34]);
    let i = validate(&icmp).unwrap();
    assert_eq!((i.upper, i.sport, i.dport), (58, 0x1234, 128 << 8));
    icmp[40] = 1;
    assert_eq!(
        validate(&icmp).unwrap().sport,
        0,
        "an error has no identifier"
    );
}

/// The walk against one with smoltcp's extension-header views over random chains.
#[test]
fn walk_agrees_with_smoltcps_views() {
    let kinds = [
        next_header::HOP_BY_HOP,
        next_header::ROUTING,
        next_header::DEST_OPTS,
        next_header::FRAGMENT,
    ];
    let mut r = Rng::new(0x6e6e);
    for _ in 0..3000 {
        let n = (r.next() % 6) as usize;
        let hs: Vec<u8> = (0..n).map(|_| kinds[r.next() as usize % 4]).collect();
        let mut e = Vec::new();
        for (k, &h) in hs.iter().enumerate() {
            let next = *hs.get(k + 1).unwrap_or(&proto::TCP);
            e.extend(match h {
                next_header::FRAGMENT => frag(next, (r.next() % 3) as u16, r.next() & 1 == 0, 5),
                _ => ext(next, 8 * (1 + (r.next() % 4) as usize)),
            });
        }
        let first = *hs.first().unwrap_or(&proto::TCP);
        let mut p = packet(first, &e, (r.next() % 30) as usize);
        p[6] = first;
        // smoltcp's walk: every header through its generic view (a fragment header's length
        // octet is reserved: 8 bytes), stopping after a non-first fragment.
        let (mut nh, mut off, mut ok, mut frags) = (first, 40usize, true, 0);
        for (k, &h) in hs.iter().enumerate() {
            if (h == next_header::HOP_BY_HOP && k > 0) || (h == next_header::FRAGMENT && frags > 0)
            {
                ok = false;
                break;
            }
            let x = Ipv6ExtHeader::new_checked(&p[off..]).unwrap();
            nh = u8::from(x.next_header());
            if h == next_header::FRAGMENT {
                frags += 1;
                let f = Ipv6FragmentHeader::new_checked(&p[off + 2..off + 8]).unwrap();
                off += 8;
                if f.frag_offset() != 0 {
                    break;
                }
            } else {
                off += (x.header_len() as usize + 1) * 8;
            }
        }
        match validate(&p) {
            Ok(i) => {
                assert!(ok, "{hs:?}");
                assert_eq!((i.upper, i.upper_off as usize), (nh, off), "{hs:?}");
            }
            Err(e) => {
                assert!(!ok, "{hs:?}");
                assert_eq!(e, DropReason::Ipv6BadExtHeader);
            }
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut r = Rng::new(0xdead);
    let base = {
        let mut e = ext(next_header::DEST_OPTS, 8);
        e.extend(ext(proto::UDP, 16));
        packet(next_header::HOP_BY_HOP, &e, 8)
    };
    for _ in 0..20000 {
        let mut p = base.clone();
        for _ in 0..1 + r.next() % 4 {
            let i = r.next() as usize % p.len();
            p[i] = r.next() as u8;
        }
        let n = r.next() as usize % (p.len() + 1);
        if let Ok(i) = validate(&p[..n]) {
            assert!(i.upper_off as usize <= HEADER_LEN + i.payload_len as usize);
            assert!(HEADER_LEN + i.payload_len as usize <= n);
        }
    }
}

#[test]
fn address_classes_agree_with_std_and_the_rfc_examples() {
    use core::net::Ipv6Addr;
    let cases: [u128; 10] = [
        0,
        1,
        A,
        0xfe80 << 112 | 0x1234,
        0xfebf << 112,
        0xfec0 << 112,
        ALL_NODES,
        0xff0e << 112 | 0x101,
        0xffff_0a00_0001,
        0xfe_0000_0000_0000_0000_0000_0000_0000,
    ];
    for a in cases {
        let s = Ipv6Addr::from(a);
        assert_eq!(is_multicast(a), s.is_multicast(), "{s}");
        assert_eq!(is_unspecified(a), s.is_unspecified(), "{s}");
        assert_eq!(is_loopback(a), s.is_loopback(), "{s}");
        assert_eq!(is_link_local(a), s.is_unicast_link_local(), "{s}");
        assert_eq!(is_v4_mapped(a), s.to_ipv4_mapped().is_some(), "{s}");
    }
    assert_eq!(multicast_scope(ALL_NODES), 2);
    assert_eq!(multicast_scope(0xff0e << 112), 0xe);
    // RFC 4291 section 2.7.1: 4037::01:800:200E:8C6C -> FF02::1:FF0E:8C6C.
    let a: u128 = "4037::01:800:200e:8c6c".parse::<Ipv6Addr>().unwrap().into();
    let want: u128 = "ff02::1:ff0e:8c6c".parse::<Ipv6Addr>().unwrap().into();
    assert_eq!(solicited_node(a), want);
    assert!(is_solicited_node(want) && !is_solicited_node(ALL_NODES) && !is_solicited_node(a));
    // RFC 2464 section 7: FF02::1 -> 33:33:00:00:00:01; the low 32 bits of others.
    assert_eq!(multicast_mac(ALL_NODES), [0x33, 0x33, 0, 0, 0, 1]);
    assert_eq!(multicast_mac(want), [0x33, 0x33, 0xff, 0x0e, 0x8c, 0x6c]);
    // RFC 4291 appendix A: 34-56-78-9A-BC-DE -> interface identifier 3656:78FF:FE9A:BCDE.
    let ll = link_local_from_mac([0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde]);
    let want: u128 = "fe80::3656:78ff:fe9a:bcde"
        .parse::<Ipv6Addr>()
        .unwrap()
        .into();
    assert_eq!(ll, want);
    assert!(is_link_local(ll));
    // A locally administered MAC gets the U/L bit cleared.
    let ll = link_local_from_mac([0x02, 0, 0, 0, 0, 1]);
    assert_eq!(ll, "fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap().into());
}

/// UDP and TCP checksums over IPv6 (RFC 8200 section 8.1) against smoltcp's, both ways, on
/// random segments and addresses.
#[test]
fn udp_and_tcp_checksums_over_ipv6_agree_with_smoltcp() {
    use crate::wire::{tcp, udp};
    use smoltcp::wire::{IpAddress, TcpPacket, UdpPacket};
    let mut r = Rng::new(0x8200);
    for _ in 0..2000 {
        let (s, d) = (
            (r.next() as u128) << 64 | r.next() as u128,
            (r.next() as u128) << 64 | r.next() as u128,
        );
        let (ss, sd) = (IpAddress::Ipv6(s.into()), IpAddress::Ipv6(d.into()));
        let len = 20 + (r.next() % 80) as usize;
        let mut seg: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
        // UDP: smoltcp fills, ours verifies and fills the same value.
        seg[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        UdpPacket::new_unchecked(&mut seg[..]).fill_checksum(&ss, &sd);
        let theirs = get16(&seg, 6);
        assert!(udp::Packet::new_unchecked(&seg[..]).verify_checksum_v6(s, d));
        assert!(!udp::Packet::new_unchecked(&seg[..]).verify_checksum_v6(s, d ^ 1 << 100));
        udp::Packet::new_unchecked(&mut seg[..]).fill_checksum_v6(s, d);
        assert_eq!(get16(&seg, 6), theirs);
        assert!(UdpPacket::new_unchecked(&seg[..]).verify_checksum(&ss, &sd));
        // TCP (data offset 5): ours fills, smoltcp verifies, and the other way.
        seg[12] = 0x50;
        tcp::Packet::new_unchecked(&mut seg[..]).fill_checksum_v6(s, d);
        assert!(TcpPacket::new_unchecked(&seg[..]).verify_checksum(&ss, &sd));
        let ours = get16(&seg, 16);
        TcpPacket::new_unchecked(&mut seg[..]).fill_checksum(&ss, &sd);
        assert_eq!(get16(&seg, 16), ours);
        assert!(tcp::Packet::new_unchecked(&seg[..]).verify_checksum_v6(s, d));
        assert!(!tcp::Packet::new_unchecked(&seg[..]).verify_checksum_v6(d, s ^ 1));
    }
    // A zero UDP checksum is no checksum over IPv4 but wrong over IPv6.
    let mut u = [0x04, 0xd2, 0, 53, 0, 8, 0, 0];
    assert!(!udp::Packet::new_unchecked(&u[..]).verify_checksum_v6(A, B));
    udp::Packet::new_unchecked(&mut u[..]).fill_checksum_v6(A, B);
    assert!(udp::Packet::new_unchecked(&u[..]).verify_checksum_v6(A, B));
}
