//! ICMP the appliance sends (RFC 792, RFC 1812 section 4.3), built with the wire module's
//! views: echo replies (in place) and the error messages time exceeded and destination
//! unreachable (into a fresh buffer), plus the rules for when an error may be sent at all.

use super::ipv4::is_unicast;
use crate::wire::ether::{self, EtherType};
use crate::wire::icmp::{self as wicmp, msg};
use crate::wire::{ipv4, proto};

/// TTL of the packets the appliance originates.
pub const TTL: u8 = 64;
/// RFC 1812 section 4.3.2.3: an ICMP error holds as much of the original datagram as fits in
/// a 576-byte IP datagram.
pub const MAX_ERROR_DATAGRAM: usize = 576;
const ICMP_HDR: usize = wicmp::HEADER_LEN;
const IP_HDR: usize = ipv4::MIN_HEADER_LEN;
const ETH_LEN: usize = ether::HEADER_LEN;

/// An ICMP error message the forward stage sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// Type 11 code 0: TTL exceeded in transit.
    TtlExceeded,
    /// Type 3 code 0: no route to the destination network.
    NetUnreachable,
    /// Type 3 code 1: the next hop did not answer ARP.
    HostUnreachable,
    /// Type 3 code 3: a UDP datagram to one of the appliance's addresses (no listener).
    PortUnreachable,
    /// Type 3 code 4: the datagram is bigger than the egress MTU and has DF set; the error
    /// carries that next-hop MTU in bytes 6..8 of the ICMP header (RFC 1191 section 4).
    FragNeeded { mtu: u16 },
}

impl IcmpError {
    fn type_code(self) -> (u8, u8) {
        match self {
            IcmpError::TtlExceeded => (msg::TIME_EXCEEDED, 0),
            IcmpError::NetUnreachable => (msg::DST_UNREACHABLE, 0),
            IcmpError::HostUnreachable => (msg::DST_UNREACHABLE, 1),
            IcmpError::PortUnreachable => (msg::DST_UNREACHABLE, 3),
            IcmpError::FragNeeded { .. } => (msg::DST_UNREACHABLE, 4),
        }
    }
}

/// Whether an ICMP error may be sent about the datagram at `l3` of `frame` (a parsed, valid
/// IPv4 packet). RFC 1812 section 4.3.2.7 (and RFC 1122 3.2.2): not about an ICMP error
/// message, not about a datagram sent to a link-layer broadcast or multicast address, not
/// about a non-first fragment, not about a datagram whose source is not a unique unicast
/// address. (Datagrams to IP broadcast or multicast destinations never reach the error paths.)
pub fn error_allowed(frame: &[u8], l3: usize) -> bool {
    let Some(Ok(ip)) = frame.get(l3..).map(ipv4::Packet::new_checked) else {
        return false; // not a parsed IPv4 packet: never quote garbage
    };
    if ether::is_group(frame[0]) {
        return false; // Ethernet group address: broadcast or multicast
    }
    if ip.frag_offset() != 0 {
        return false; // non-first fragment
    }
    if !is_unicast(ip.src()) {
        return false;
    }
    if ip.protocol() == proto::ICMP {
        // Query messages (echo, timestamp, information, address mask) may get errors.
        let hl = ip.header_len();
        ip.into_inner().get(hl).is_some_and(|&t| wicmp::is_query(t))
    } else {
        true
    }
}

/// Builds an ICMP error about the datagram at `l3` of `orig` into `buf` and returns the frame
/// length. The frame goes back to the sender's link address (`orig`'s Ethernet source) from
/// `my_mac`; the IP source is `my_ip` (the address of the interface the error leaves by, RFC
/// 1812 section 4.3.2.4). The error quotes the original IP header and as much of its data as
/// keeps the error datagram within 576 bytes (section 4.3.2.3), verbatim. `buf` must hold
/// `ETH_LEN + 576` bytes, and `orig` passed [`error_allowed`].
pub fn build_error(
    buf: &mut [u8],
    orig: &[u8],
    l3: usize,
    kind: IcmpError,
    my_mac: [u8; 6],
    my_ip: u32,
    ident: u16,
) -> usize {
    let oip = &orig[l3..];
    let o = ipv4::Packet::new_unchecked(oip);
    let total = o.total_len() as usize;
    let quote_len = total
        .min(oip.len())
        .min(MAX_ERROR_DATAGRAM - IP_HDR - ICMP_HDR);
    let icmp_len = ICMP_HDR + quote_len;
    let frame_len = ETH_LEN + IP_HDR + icmp_len;
    let buf = &mut buf[..frame_len.max(ether::MIN_FRAME)];
    buf.fill(0);

    let mut eth = ether::Frame::new_unchecked(&mut buf[..]);
    eth.set_dst(&ether::Frame::new_unchecked(orig).src());
    eth.set_src(&my_mac);
    eth.set_ethertype(EtherType::Ipv4);
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut buf[ETH_LEN..ETH_LEN + IP_HDR]);
        ip.set_version_and_header_len(IP_HDR);
        ip.set_total_len((IP_HDR + icmp_len) as u16);
        ip.set_ident(ident);
        ip.set_ttl(TTL);
        ip.set_protocol(proto::ICMP);
        ip.set_src(my_ip);
        ip.set_dst(o.src());
        ip.fill_checksum();
    }
    let (ty, code) = kind.type_code();
    if let IcmpError::FragNeeded { mtu } = kind {
        let at = ETH_LEN + IP_HDR + 6;
        buf[at..at + 2].copy_from_slice(&mtu.to_be_bytes());
    }
    let mut icmp = wicmp::Packet::new_unchecked(&mut buf[ETH_LEN + IP_HDR..frame_len]);
    icmp.set_msg_type(ty);
    icmp.set_code(code);
    // Bytes 4..8 stay zero ("unused" for these types), but for "fragmentation needed", whose
    // bytes 6..8 hold the next-hop MTU (RFC 1191 section 4); the quote follows the 8-byte
    // header.
    icmp.data_mut()[..quote_len].copy_from_slice(&oip[..quote_len]);
    icmp.fill_checksum();
    frame_len.max(ether::MIN_FRAME)
}

/// The addresses and ports of a datagram as its sender wrote them, before NAT translated it
/// (from [`dpdk::PktMeta`]'s `pre_*` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Original {
    pub src: u32,
    pub dst: u32,
    /// TCP/UDP source port, or the ICMP query identifier.
    pub sport: u16,
    pub dport: u16,
}

/// Makes an error built by [`build_error`] (the `len`-byte `frame`) about a datagram NAT had
/// translated what the datagram's sender can match (RFC 5508 sections 3 and 4): the error goes
/// to the original source, and its quote shows the datagram as the sender wrote it (addresses,
/// ports or ICMP identifier restored; the quoted IPv4 header checksum, and the quoted L4
/// checksum when the quote holds it, updated to match), so the sender's stack finds the
/// socket the error is about. Then the error's own checksums are filled.
pub fn restore_quote(frame: &mut [u8], len: usize, o: Original) {
    use crate::wire::checksum::Delta;
    use crate::wire::rewrite;
    // The error datagram's end (the frame may carry Ethernet padding after it).
    let Some(outer) = frame.get(ETH_LEN..ETH_LEN + IP_HDR) else {
        return;
    };
    let len = (ETH_LEN + ipv4::Packet::new_unchecked(outer).total_len() as usize).min(len);
    let l3 = ETH_LEN + IP_HDR + ICMP_HDR;
    let Some(Ok(q)) = frame.get(l3..len).map(ipv4::Packet::new_checked) else {
        return;
    };
    let (proto, first, l4) = (q.protocol(), q.frag_offset() == 0, l3 + q.header_len());
    if l4 > len {
        return;
    }
    // The same incremental rewrites NAT made, the other way.
    let addrs =
        rewrite::ip_addr(frame, l3, true, o.src).merge(rewrite::ip_addr(frame, l3, false, o.dst));
    let avail = len - l4;
    match proto {
        proto::TCP | proto::UDP if first && avail >= 8 => {
            rewrite::l4_port(frame, proto, l4, avail, true, o.sport, addrs);
            rewrite::l4_port(frame, proto, l4, avail, false, o.dport, Delta::ZERO);
        }
        proto::ICMP if first && avail >= 8 && wicmp::is_query(frame[l4]) => {
            rewrite::icmp_id(frame, l4, o.sport);
        }
        _ => {}
    }
    let mut ip = ipv4::Packet::new_unchecked(&mut frame[ETH_LEN..ETH_LEN + IP_HDR]);
    ip.set_dst(o.src);
    ip.fill_checksum();
    wicmp::Packet::new_unchecked(&mut frame[ETH_LEN + IP_HDR..len]).fill_checksum();
}

/// Turns an ICMP echo request to `frame`'s IP destination into the echo reply, in place (RFC
/// 792; RFC 1122 section 3.2.2.6: same identifier, sequence number and data; source and
/// destination addresses swapped). `l3` and the IPv4 header are valid (parsed). Returns false,
/// changing nothing, if the packet is not a well-formed echo request with a correct ICMP
/// checksum.
pub fn echo_reply_in_place(frame: &mut [u8], l3: usize, my_mac: [u8; 6]) -> bool {
    let Some(Ok(ip)) = frame.get(l3..).map(ipv4::Packet::new_checked) else {
        return false;
    };
    let (hl, total) = (ip.header_len(), ip.total_len() as usize);
    if total < hl + ICMP_HDR || l3 + total > frame.len() {
        return false;
    }
    {
        let icmp = wicmp::Packet::new_unchecked(&frame[l3 + hl..l3 + total]);
        if icmp.msg_type() != msg::ECHO_REQUEST || icmp.code() != 0 || !icmp.verify_checksum() {
            return false;
        }
    }
    let mut icmp = wicmp::Packet::new_unchecked(&mut frame[l3 + hl..l3 + total]);
    icmp.set_msg_type(msg::ECHO_REPLY);
    icmp.fill_checksum();
    {
        let mut ip = ipv4::Packet::new_unchecked(&mut frame[l3..l3 + total]);
        let (s, d) = (ip.src(), ip.dst());
        ip.set_src(d);
        ip.set_dst(s);
        ip.set_ttl(TTL);
        ip.fill_checksum();
    }
    let mut eth = ether::Frame::new_unchecked(frame);
    let requester = eth.src();
    eth.set_dst(&requester);
    eth.set_src(&my_mac);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ipv4_header_checksum_ok, parse_ipv4_frame};
    use crate::wire::checksum::tests::rfc1071;
    use crate::wire::testframe::udp_frame;

    const ME: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];

    fn echo_request() -> Vec<u8> {
        let mut f = udp_frame();
        f[23] = 1;
        f[34..42].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0x00, 0x07]);
        f[36..38].copy_from_slice(&[0, 0]);
        let c = rfc1071(&f[34..50]);
        f[36..38].copy_from_slice(&c.to_be_bytes());
        f[24..26].copy_from_slice(&[0, 0]);
        let c = rfc1071(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn echo_reply_fixture() {
        let mut f = echo_request();
        let req = f.clone();
        assert!(echo_reply_in_place(&mut f, 14, ME));
        assert_eq!(&f[0..6], &req[6..12], "back to the sender's MAC");
        assert_eq!(&f[6..12], &ME);
        assert_eq!(&f[26..30], &req[30..34], "addresses swapped");
        assert_eq!(&f[30..34], &req[26..30]);
        assert_eq!(f[22], TTL);
        assert_eq!(f[34], 0, "echo reply");
        assert_eq!(&f[38..50], &req[38..50], "id, seq and data unchanged");
        // Checksums verified independently (RFC 1071 over the whole header / message).
        assert_eq!(rfc1071(&f[14..34]), 0);
        assert_eq!(rfc1071(&f[34..50]), 0);
        assert!(parse_ipv4_frame(&f, f.len()).is_ok());
    }

    #[test]
    fn echo_reply_refuses_bad_input() {
        let mut bad = echo_request();
        bad[45] ^= 0xff; // payload corrupted: ICMP checksum fails
        let before = bad.clone();
        assert!(!echo_reply_in_place(&mut bad, 14, ME));
        assert_eq!(bad, before, "unchanged when refused");
        let mut reply = echo_request();
        reply[34] = 0; // an echo reply is not answered
        assert!(!echo_reply_in_place(&mut reply, 14, ME));
        assert!(
            !echo_reply_in_place(&mut echo_request(), 60, ME),
            "offset past the frame"
        );
        let mut short = echo_request();
        short[16..18].copy_from_slice(&24u16.to_be_bytes()); // 4 bytes of ICMP
        assert!(!echo_reply_in_place(&mut short, 14, ME));
    }

    #[test]
    fn time_exceeded_fixture() {
        let orig = udp_frame();
        let mut buf = [0u8; 14 + 576];
        let n = build_error(
            &mut buf,
            &orig,
            14,
            IcmpError::TtlExceeded,
            ME,
            0xc633_6401,
            7,
        );
        let f = &buf[..n];
        // 14 Ethernet + 20 IP + 8 ICMP + the whole 36-byte original datagram = 78.
        assert_eq!(n, 78);
        assert_eq!(&f[0..6], &orig[6..12]);
        assert_eq!(&f[6..12], &ME);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        let p = parse_ipv4_frame(f, n).unwrap();
        assert_eq!(p.src_ip, 0xc633_6401);
        assert_eq!(p.dst_ip, 0x0a00_0001, "to the original source");
        assert_eq!(p.proto, 1);
        assert_eq!(f[22], TTL);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 64);
        assert_eq!(u16::from_be_bytes([f[18], f[19]]), 7);
        assert!(ipv4_header_checksum_ok(&f[14..34]));
        assert_eq!(rfc1071(&f[14..34]), 0);
        assert_eq!((f[34], f[35]), (11, 0));
        assert_eq!(&f[38..42], &[0, 0, 0, 0]);
        assert_eq!(
            &f[42..78],
            &orig[14..50],
            "original datagram quoted verbatim"
        );
        assert_eq!(rfc1071(&f[34..78]), 0, "ICMP checksum");
    }

    #[test]
    fn frag_needed_carries_the_next_hop_mtu() {
        let orig = udp_frame();
        let mut buf = [0u8; 14 + 576];
        let kind = IcmpError::FragNeeded { mtu: 1400 };
        let n = build_error(&mut buf, &orig, 14, kind, ME, 0xc633_6401, 7);
        let f = &buf[..n];
        // RFC 1191 section 4: type 3 code 4, unused 16 bits, then the next-hop MTU.
        assert_eq!((f[34], f[35]), (3, 4));
        assert_eq!(&f[38..40], &[0, 0]);
        assert_eq!(u16::from_be_bytes([f[40], f[41]]), 1400);
        assert_eq!(&f[42..78], &orig[14..50], "original datagram quoted");
        assert_eq!(rfc1071(&f[34..78]), 0, "ICMP checksum covers the MTU");
    }

    #[test]
    fn unreachable_quote_is_capped_at_576() {
        let mut orig = udp_frame();
        orig.resize(14 + 1500, 0x5a);
        orig[16..18].copy_from_slice(&1500u16.to_be_bytes());
        orig[24..26].copy_from_slice(&[0, 0]);
        let c = rfc1071(&orig[14..34]);
        orig[24..26].copy_from_slice(&c.to_be_bytes());
        let mut buf = [0u8; 14 + 576];
        let n = build_error(&mut buf, &orig, 14, IcmpError::NetUnreachable, ME, 1, 1);
        assert_eq!(n, 14 + 576);
        let f = &buf[..n];
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 576);
        assert_eq!((f[34], f[35]), (3, 0));
        assert_eq!(&f[42..], &orig[14..14 + 576 - 28]);
        assert_eq!(rfc1071(&f[34..]), 0);
        let n = build_error(&mut buf, &orig, 14, IcmpError::PortUnreachable, ME, 1, 1);
        assert_eq!((buf[34], buf[35], n), (3, 3, 590));
        let n = build_error(&mut buf, &orig, 14, IcmpError::HostUnreachable, ME, 1, 1);
        assert_eq!((buf[34], buf[35], n), (3, 1, 590));
    }

    #[test]
    fn error_eligibility_rfc1812_4_3_2_7() {
        let f = udp_frame();
        assert!(error_allowed(&f, 14));
        assert!(!error_allowed(&f[..30], 14), "no IPv4 header there");
        assert!(!error_allowed(&f, 200), "offset past the frame");
        let mut bcast = f.clone();
        bcast[0] = 0xff;
        assert!(!error_allowed(&bcast, 14), "link-layer broadcast");
        let mut frag = f.clone();
        frag[20..22].copy_from_slice(&0x0010u16.to_be_bytes());
        assert!(!error_allowed(&frag, 14), "non-first fragment");
        let mut src = f.clone();
        src[26] = 127;
        assert!(!error_allowed(&src, 14), "loopback source");
        let mut icmp = f.clone();
        icmp[23] = 1;
        icmp[34] = 3;
        assert!(!error_allowed(&icmp, 14), "about an ICMP error");
        icmp[34] = 8;
        assert!(error_allowed(&icmp, 14), "about an echo request");
    }

    /// The error frame as smoltcp's wire module builds it (an implementation independent of
    /// ours): Ethernet and IPv4 representations emitted, ICMP type/code set, quote copied,
    /// checksums filled by smoltcp.
    fn smoltcp_error(orig: &[u8], kind: IcmpError, my_ip: u32, ident: u16) -> Vec<u8> {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{
            EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet,
            IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
        };
        let oip = &orig[14..];
        let total = u16::from_be_bytes([oip[2], oip[3]]) as usize;
        let quote = total.min(oip.len()).min(576 - 28);
        let n = 14 + 28 + quote;
        let mut buf = vec![0u8; n.max(60)];
        EthernetRepr {
            src_addr: EthernetAddress(ME),
            dst_addr: EthernetAddress(orig[6..12].try_into().unwrap()),
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        let mut p = Ipv4Packet::new_unchecked(&mut buf[14..n]);
        Ipv4Repr {
            src_addr: Ipv4Address::from(my_ip),
            dst_addr: Ipv4Address::from(u32::from_be_bytes(oip[12..16].try_into().unwrap())),
            next_header: IpProtocol::Icmp,
            payload_len: 8 + quote,
            hop_limit: TTL,
        }
        .emit(&mut p, &ChecksumCapabilities::default());
        p.set_ident(ident);
        p.set_dont_frag(false);
        p.fill_checksum();
        let (ty, code) = kind.type_code();
        let mut icmp = Icmpv4Packet::new_unchecked(&mut buf[34..n]);
        icmp.set_msg_type(ty.into());
        icmp.set_msg_code(code);
        icmp.data_mut()[..quote].copy_from_slice(&oip[..quote]);
        icmp.fill_checksum();
        buf
    }

    #[test]
    fn errors_equal_smoltcps_byte_for_byte() {
        let mut big = udp_frame();
        big.resize(14 + 1500, 0x5a);
        big[16..18].copy_from_slice(&1500u16.to_be_bytes());
        big[24..26].copy_from_slice(&[0, 0]);
        let c = rfc1071(&big[14..34]);
        big[24..26].copy_from_slice(&c.to_be_bytes());
        for orig in [udp_frame(), echo_request(), big] {
            for kind in [
                IcmpError::TtlExceeded,
                IcmpError::NetUnreachable,
                IcmpError::HostUnreachable,
                IcmpError::PortUnreachable,
            ] {
                for (ip, ident) in [(0xc633_6401, 7), (0x0a00_00fe, 0xffff)] {
                    let mut buf = [0xeeu8; 14 + 576];
                    let n = build_error(&mut buf, &orig, 14, kind, ME, ip, ident);
                    assert_eq!(
                        &buf[..n],
                        &smoltcp_error(&orig, kind, ip, ident)[..],
                        "{kind:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn echo_reply_equals_smoltcps_byte_for_byte() {
        use smoltcp::wire::{Icmpv4Message, Icmpv4Packet, Ipv4Packet};
        let mut f = echo_request();
        let mut want = f.clone();
        {
            let mut icmp = Icmpv4Packet::new_unchecked(&mut want[34..50]);
            icmp.set_msg_type(Icmpv4Message::EchoReply);
            icmp.fill_checksum();
            let mut ip = Ipv4Packet::new_unchecked(&mut want[14..50]);
            let (s, d) = (ip.src_addr(), ip.dst_addr());
            ip.set_src_addr(d);
            ip.set_dst_addr(s);
            ip.set_hop_limit(TTL);
            ip.fill_checksum();
        }
        want.copy_within(6..12, 0);
        want[6..12].copy_from_slice(&ME);
        assert!(echo_reply_in_place(&mut f, 14, ME));
        assert_eq!(f, want);
    }

    /// An Ethernet/IPv4 frame carrying `proto` from `src:sport` to `dst:dport` with `pay`
    /// bytes of payload, every checksum computed in full (RFC 1071 over the pseudo-header
    /// and the segment): TCP (20-byte header), UDP, or an ICMP echo request (`sport` = its
    /// identifier).
    fn frame(proto: u8, (src, sport): (u32, u16), (dst, dport): (u32, u16), pay: usize) -> Vec<u8> {
        let l4h = match proto {
            6 => 20,
            _ => 8,
        };
        let ip_len = 20 + l4h + pay;
        let mut f = vec![0u8; 14 + ip_len];
        f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x10]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&(ip_len as u16).to_be_bytes());
        f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
        f[22] = 64;
        f[23] = proto;
        f[26..30].copy_from_slice(&src.to_be_bytes());
        f[30..34].copy_from_slice(&dst.to_be_bytes());
        for (i, b) in f[34 + l4h..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let c = rfc1071(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        match proto {
            1 => {
                f[34] = 8;
                f[38..40].copy_from_slice(&sport.to_be_bytes());
                let c = rfc1071(&f[34..]);
                f[36..38].copy_from_slice(&c.to_be_bytes());
            }
            _ => {
                f[34..36].copy_from_slice(&sport.to_be_bytes());
                f[36..38].copy_from_slice(&dport.to_be_bytes());
                if proto == 6 {
                    f[46] = 0x50;
                } else {
                    f[38..40].copy_from_slice(&((l4h + pay) as u16).to_be_bytes());
                }
                let mut ph = Vec::new();
                ph.extend_from_slice(&src.to_be_bytes());
                ph.extend_from_slice(&dst.to_be_bytes());
                ph.extend_from_slice(&[0, proto]);
                ph.extend_from_slice(&((l4h + pay) as u16).to_be_bytes());
                ph.extend_from_slice(&f[34..]);
                let at = if proto == 6 { 34 + 16 } else { 34 + 6 };
                let c = rfc1071(&ph);
                f[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
        }
        f
    }

    #[test]
    fn an_error_about_a_translated_datagram_quotes_it_as_its_sender_wrote_it() {
        let host = (0x0a0a_0002, 40001);
        let pool = (0xc633_6410, 1024);
        let far = (0x0808_0808, 53);
        // Small datagrams (quoted whole, L4 checksum included) and a big one (quote capped).
        for (proto, pay) in [(17u8, 10usize), (6, 30), (1, 16), (17, 1400), (6, 1400)] {
            let sent = frame(proto, host, far, pay);
            // What NAT made of it: the source translated, every checksum right for it.
            let natted = frame(proto, pool, far, pay);
            let mut buf = vec![0u8; 14 + MAX_ERROR_DATAGRAM];
            let n = build_error(
                &mut buf,
                &natted,
                14,
                IcmpError::NetUnreachable,
                ME,
                0x0a0a_0001,
                7,
            );
            let o = Original {
                src: host.0,
                dst: far.0,
                sport: host.1,
                dport: far.1,
            };
            restore_quote(&mut buf, n, o);
            let e = &buf[..n];
            let total = u16::from_be_bytes([e[16], e[17]]) as usize;
            let quote = total - 28;
            assert_eq!(
                &e[42..42 + quote],
                &sent[14..14 + quote],
                "proto {proto}, {pay} bytes: the quote is the datagram as sent"
            );
            assert_eq!(e[30..34], host.0.to_be_bytes(), "to the original sender");
            assert!(ipv4_header_checksum_ok(&e[14..34]));
            assert_eq!(rfc1071(&e[34..14 + total]), 0, "ICMP checksum");
        }
    }

    #[test]
    fn an_error_about_a_destination_translated_datagram_restores_the_destination() {
        // Outside host -> public address 198.51.100.20:80, NAT made it 10.10.0.9:8080.
        let outside = (0xcb00_7105, 33000);
        let public = (0xc633_6414, 80);
        let sent = frame(6, outside, public, 0);
        let natted = frame(6, outside, (0x0a0a_0009, 8080), 0);
        let mut buf = vec![0u8; 14 + MAX_ERROR_DATAGRAM];
        let n = build_error(
            &mut buf,
            &natted,
            14,
            IcmpError::HostUnreachable,
            ME,
            0xc633_6401,
            1,
        );
        let o = Original {
            src: outside.0,
            dst: public.0,
            sport: outside.1,
            dport: public.1,
        };
        restore_quote(&mut buf, n, o);
        assert_eq!(&buf[42..42 + 40], &sent[14..54]);
        assert_eq!(buf[30..34], outside.0.to_be_bytes());
        assert!(ipv4_header_checksum_ok(&buf[14..34]));
        let total = u16::from_be_bytes([buf[16], buf[17]]) as usize;
        assert_eq!(rfc1071(&buf[34..14 + total]), 0);
    }
}
