//! Frame builders and checkers for NAT tests, labs and benchmarks. Checksums are computed and
//! verified by smoltcp's wire module — an implementation independent of NAT's incremental
//! updates — so a test that compares NAT's output with a frame built here from scratch checks
//! every checksum NAT touched.

use std::net::Ipv4Addr;

use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, IpAddress,
    IpProtocol, Ipv4Packet, Ipv4Repr, TcpOption, TcpPacket, UdpPacket,
};

/// MACs of test frames: inside host side and router side.
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// An endpoint.
pub type Ep = (Ipv4Addr, u16);

fn ip_frame(src: Ipv4Addr, dst: Ipv4Addr, proto: IpProtocol, l4: &[u8], ident: u16) -> Vec<u8> {
    let mut buf = vec![0u8; 14 + 20 + l4.len()];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: EthernetAddress(MAC_A),
        dst_addr: EthernetAddress(MAC_B),
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut eth);
    let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: proto,
        payload_len: l4.len(),
        hop_limit: 64,
    }
    .emit(&mut ip, &smoltcp::phy::ChecksumCapabilities::default());
    ip.set_ident(ident);
    ip.payload_mut().copy_from_slice(l4);
    ip.fill_checksum();
    buf
}

/// A UDP datagram with a correct checksum.
pub fn udp(src: Ep, dst: Ep, payload: &[u8]) -> Vec<u8> {
    let mut l4 = vec![0u8; 8 + payload.len()];
    l4[0..2].copy_from_slice(&src.1.to_be_bytes());
    l4[2..4].copy_from_slice(&dst.1.to_be_bytes());
    let n = l4.len() as u16;
    l4[4..6].copy_from_slice(&n.to_be_bytes());
    l4[8..].copy_from_slice(payload);
    let mut u = UdpPacket::new_unchecked(&mut l4[..]);
    u.fill_checksum(&IpAddress::Ipv4(src.0), &IpAddress::Ipv4(dst.0));
    ip_frame(src.0, dst.0, IpProtocol::Udp, &l4, 1)
}

/// A UDP datagram without checksum (checksum field 0, RFC 768).
pub fn udp_nocsum(src: Ep, dst: Ep, payload: &[u8]) -> Vec<u8> {
    let mut f = udp(src, dst, payload);
    f[14 + 20 + 6] = 0;
    f[14 + 20 + 7] = 0;
    f
}

/// A TCP segment with these flags (RFC 793 bits: FIN 1, SYN 2, RST 4, PSH 8, ACK 16).
pub fn tcp(src: Ep, dst: Ep, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut l4 = vec![0u8; 20 + payload.len()];
    l4[0..2].copy_from_slice(&src.1.to_be_bytes());
    l4[2..4].copy_from_slice(&dst.1.to_be_bytes());
    l4[4..8].copy_from_slice(&seq.to_be_bytes());
    l4[8..12].copy_from_slice(&(if flags & 0x10 != 0 { 1u32 } else { 0 }).to_be_bytes());
    l4[12] = 5 << 4;
    l4[13] = flags;
    l4[14..16].copy_from_slice(&65535u16.to_be_bytes());
    l4[20..].copy_from_slice(payload);
    let mut t = TcpPacket::new_unchecked(&mut l4[..]);
    t.fill_checksum(&IpAddress::Ipv4(src.0), &IpAddress::Ipv4(dst.0));
    ip_frame(src.0, dst.0, IpProtocol::Tcp, &l4, 2)
}

/// A TCP segment with these flags and the option bytes `options` (a multiple of 4, at most
/// 40: the data offset follows from it), checksum by smoltcp.
pub fn tcp_opts(src: Ep, dst: Ep, flags: u8, seq: u32, options: &[u8], payload: &[u8]) -> Vec<u8> {
    assert!(options.len().is_multiple_of(4) && options.len() <= 40);
    let hl = 20 + options.len();
    let mut l4 = vec![0u8; hl + payload.len()];
    l4[0..2].copy_from_slice(&src.1.to_be_bytes());
    l4[2..4].copy_from_slice(&dst.1.to_be_bytes());
    l4[4..8].copy_from_slice(&seq.to_be_bytes());
    l4[8..12].copy_from_slice(&(if flags & 0x10 != 0 { 1u32 } else { 0 }).to_be_bytes());
    l4[12] = ((hl / 4) as u8) << 4;
    l4[13] = flags;
    l4[14..16].copy_from_slice(&65535u16.to_be_bytes());
    l4[20..hl].copy_from_slice(options);
    l4[hl..].copy_from_slice(payload);
    let mut t = TcpPacket::new_unchecked(&mut l4[..]);
    t.fill_checksum(&IpAddress::Ipv4(src.0), &IpAddress::Ipv4(dst.0));
    ip_frame(src.0, dst.0, IpProtocol::Tcp, &l4, 2)
}

/// The maximum segment size option of the TCP segment in `frame`, read with smoltcp's option
/// parser (independent of `wire::tcp`); `None` without one or with unparsable options.
pub fn tcp_mss(frame: &[u8]) -> Option<u16> {
    let ip = Ipv4Packet::new_checked(&frame[14..]).ok()?;
    let t = TcpPacket::new_checked(ip.payload()).ok()?;
    let mut opts = t.options();
    let mut mss = None;
    while !opts.is_empty() {
        let (rest, o) = TcpOption::parse(opts).ok()?;
        match o {
            TcpOption::EndOfList => break,
            TcpOption::MaxSegmentSize(v) => mss = Some(v),
            _ => {}
        }
        opts = rest;
    }
    mss
}

/// An ICMP echo request (or reply) with identifier `id`.
pub fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16, reply: bool) -> Vec<u8> {
    let mut l4 = vec![0u8; 8 + 16];
    l4[0] = if reply { 0 } else { 8 };
    l4[4..6].copy_from_slice(&id.to_be_bytes());
    l4[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in l4[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    Icmpv4Packet::new_unchecked(&mut l4[..]).fill_checksum();
    ip_frame(src, dst, IpProtocol::Icmp, &l4, 3)
}

/// An ICMP error (`ty`/`code`, e.g. 3/3 port unreachable) from `src` to `dst` about the
/// IPv4 packet of frame `about`, embedding its IP header and `l4_bytes` bytes after it.
pub fn icmp_error(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ty: u8,
    code: u8,
    about: &[u8],
    l4_bytes: usize,
) -> Vec<u8> {
    let ip = &about[14..];
    let hl = (ip[0] & 0x0f) as usize * 4;
    let n = (hl + l4_bytes).min(ip.len());
    let mut l4 = vec![0u8; 8 + n];
    l4[0] = ty;
    l4[1] = code;
    l4[8..].copy_from_slice(&ip[..n]);
    Icmpv4Packet::new_unchecked(&mut l4[..]).fill_checksum();
    ip_frame(src, dst, IpProtocol::Icmp, &l4, 4)
}

/// Splits a whole IPv4 datagram frame into two fragments at payload byte `at` (a multiple
/// of 8), with IP id `ident`.
pub fn fragments(frame: &[u8], at: usize, ident: u16) -> (Vec<u8>, Vec<u8>) {
    assert!(at.is_multiple_of(8));
    let ip = &frame[14..];
    let hl = (ip[0] & 0x0f) as usize * 4;
    let payload = &ip[hl..];
    let mk = |part: &[u8], off: usize, more: bool| {
        let mut f = frame[..14 + hl].to_vec();
        f.extend_from_slice(part);
        let mut p = Ipv4Packet::new_unchecked(&mut f[14..]);
        p.set_total_len((hl + part.len()) as u16);
        p.set_ident(ident);
        p.set_dont_frag(false);
        p.set_more_frags(more);
        p.set_frag_offset(off as u16);
        p.fill_checksum();
        f
    };
    (mk(&payload[..at], 0, true), mk(&payload[at..], at, false))
}

/// Checks every checksum of a frame with smoltcp: the IPv4 header, the TCP/UDP checksum of a
/// whole datagram (a UDP checksum of 0 is "none"), the ICMP checksum, and for an ICMP error
/// the embedded IPv4 header.
pub fn verify(frame: &[u8]) -> Result<(), String> {
    let eth = EthernetFrame::new_checked(frame).map_err(|e| format!("ethernet: {e}"))?;
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|e| format!("ipv4: {e}"))?;
    if !ip.verify_checksum() {
        return Err("IPv4 header checksum".into());
    }
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Ok(());
    }
    match ip.next_header() {
        IpProtocol::Udp => {
            let u = UdpPacket::new_checked(ip.payload()).map_err(|e| format!("udp: {e}"))?;
            if u.checksum() != 0 && !u.verify_checksum(&src, &dst) {
                return Err("UDP checksum".into());
            }
        }
        IpProtocol::Tcp => {
            let t = TcpPacket::new_checked(ip.payload()).map_err(|e| format!("tcp: {e}"))?;
            if !t.verify_checksum(&src, &dst) {
                return Err("TCP checksum".into());
            }
        }
        IpProtocol::Icmp => {
            let i = Icmpv4Packet::new_checked(ip.payload()).map_err(|e| format!("icmp: {e}"))?;
            if !i.verify_checksum() {
                return Err("ICMP checksum".into());
            }
            if matches!(i.msg_type().into(), 3u8 | 4 | 11 | 12) {
                let inner = &ip.payload()[8..];
                let hl = inner.first().map_or(0, |b| (b & 0x0f) as usize * 4);
                let Some(hdr) = inner.get(..hl).filter(|h| h.len() >= 20) else {
                    return Err("embedded IPv4 header truncated".into());
                };
                if crate::wire::checksum::checksum(hdr, 0) != 0 {
                    return Err("embedded IPv4 header checksum".into());
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// (source, source port, destination, destination port) of a TCP/UDP frame; for ICMP the
/// identifier is the source "port".
pub fn endpoints(frame: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let ip = &frame[14..];
    let hl = (ip[0] & 0x0f) as usize * 4;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let l4 = &ip[hl..];
    if ip[9] == 1 {
        return (src, u16::from_be_bytes([l4[4], l4[5]]), dst, 0);
    }
    (
        src,
        u16::from_be_bytes([l4[0], l4[1]]),
        dst,
        u16::from_be_bytes([l4[2], l4[3]]),
    )
}

/// A UDP/IPv6 datagram (hop limit 64, traffic class 0, flow label 0) with a correct checksum,
/// addresses in host order (`2001:db8::1` is `0x2001_0db8 << 96 | 1`): the traffic NAT44
/// leaves alone.
pub fn udp6(src: (u128, u16), dst: (u128, u16), payload: &[u8]) -> Vec<u8> {
    use smoltcp::wire::{Ipv6Address, Ipv6Packet, Ipv6Repr};
    let (s, d) = (Ipv6Address::from(src.0), Ipv6Address::from(dst.0));
    let mut l4 = vec![0u8; 8 + payload.len()];
    l4[0..2].copy_from_slice(&src.1.to_be_bytes());
    l4[2..4].copy_from_slice(&dst.1.to_be_bytes());
    let n = l4.len() as u16;
    l4[4..6].copy_from_slice(&n.to_be_bytes());
    l4[8..].copy_from_slice(payload);
    UdpPacket::new_unchecked(&mut l4[..]).fill_checksum(&IpAddress::Ipv6(s), &IpAddress::Ipv6(d));
    let mut buf = vec![0u8; 14 + 40 + l4.len()];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: EthernetAddress(MAC_A),
        dst_addr: EthernetAddress(MAC_B),
        ethertype: EthernetProtocol::Ipv6,
    }
    .emit(&mut eth);
    let mut ip = Ipv6Packet::new_unchecked(eth.payload_mut());
    Ipv6Repr {
        src_addr: s,
        dst_addr: d,
        next_header: IpProtocol::Udp,
        payload_len: l4.len(),
        hop_limit: 64,
    }
    .emit(&mut ip);
    ip.payload_mut().copy_from_slice(&l4);
    buf
}
