//! IPv6 (RFC 8200): the header view, the validity parser a router runs on every packet (the
//! fixed header, then a bounded walk of the extension-header chain to the upper layer, with
//! the fragment position and the flow key's ports), the address classes of RFC 4291 and the
//! addresses derived from others (solicited-node multicast, its Ethernet group address, the
//! EUI-64 link-local address).
//!
//! Addresses are `u128` in host byte order (`2001:db8::1` is `0x2001_0db8_0000_..._0001`),
//! as `u32` is for IPv4. IPv6 has no header checksum: the hop limit and traffic class are
//! plain stores.

use pollfwd_pipeline::DropReason;

use super::ipv4::Frag;
use super::{get16, get32, get128, proto, put16, put32, put128};

/// The fixed header's length.
pub const HEADER_LEN: usize = 40;
/// The minimum link MTU of IPv6 (RFC 8200 section 5): every link carries 1280-byte packets.
pub const MIN_MTU: usize = 1280;
/// The most extension headers [`validate`] walks before it gives up
/// ([`DropReason::Ipv6BadExtHeader`]): a packet has at most six in the order RFC 8200 section
/// 4.1 recommends (destination options twice); 8 leaves room for AH and the ones RFC 7045
/// lists without letting a chain of tiny headers cost a walk of the whole packet.
pub const MAX_EXT_HEADERS: usize = 8;

/// Byte offsets inside the IPv6 header (RFC 8200 section 3).
pub mod field {
    use core::ops::Range;
    /// Version (4 bits), traffic class (8), flow label (20).
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Next-header values (IANA "Assigned Internet Protocol Numbers") of the extension headers
/// [`validate`] walks and of the opaque upper layers it stops at. The upper-layer protocols
/// themselves are in [`super::proto`].
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (RFC 4303): opaque, an upper layer for a router.
    pub const ESP: u8 = 50;
    /// Authentication Header (RFC 4302): walked, its length is (len + 2) * 4 bytes.
    pub const AH: u8 = 51;
    /// No Next Header: nothing follows.
    pub const NO_NEXT: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
    /// Mobility (RFC 6275), HIP (RFC 7401), Shim6 (RFC 5533): extension headers in the uniform
    /// format of RFC 6564 (RFC 7045 section 2 lists them).
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// A view of an IPv6 header (and what follows it) in a byte buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without a length check: accessors panic on a buffer shorter than their field
    /// (40 bytes cover every field).
    #[inline(always)]
    pub fn new_unchecked(buf: T) -> Packet<T> {
        Packet { buf }
    }

    /// A view of a buffer that holds at least the 40-byte header, or
    /// [`DropReason::Ipv6Truncated`]. The fields' values are not checked: see [`validate`].
    #[inline(always)]
    pub fn new_checked(buf: T) -> Result<Packet<T>, DropReason> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(DropReason::Ipv6Truncated);
        }
        Ok(Packet { buf })
    }

    pub fn into_inner(self) -> T {
        self.buf
    }

    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.buf.as_ref()[0] >> 4
    }

    /// The traffic class (DSCP << 2 | ECN, RFC 2474 and RFC 3168).
    #[inline(always)]
    pub fn traffic_class(&self) -> u8 {
        let b = self.buf.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }

    #[inline(always)]
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    #[inline(always)]
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// The 20-bit flow label (RFC 6437).
    #[inline(always)]
    pub fn flow_label(&self) -> u32 {
        get32(self.buf.as_ref(), field::VER_TC_FLOW.start) & 0x000f_ffff
    }

    /// Length of what follows the fixed header (extension headers included).
    #[inline(always)]
    pub fn payload_len(&self) -> u16 {
        get16(self.buf.as_ref(), field::PAYLOAD_LEN.start)
    }

    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        self.buf.as_ref()[field::NEXT_HEADER]
    }

    #[inline(always)]
    pub fn hop_limit(&self) -> u8 {
        self.buf.as_ref()[field::HOP_LIMIT]
    }

    /// Source address, host byte order.
    #[inline(always)]
    pub fn src(&self) -> u128 {
        get128(self.buf.as_ref(), field::SRC.start)
    }

    /// Destination address, host byte order.
    #[inline(always)]
    pub fn dst(&self) -> u128 {
        get128(self.buf.as_ref(), field::DST.start)
    }

    /// What follows the fixed header, up to the payload length or the buffer's end.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let end = (HEADER_LEN + self.payload_len() as usize).min(b.len());
        &b[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, the traffic class and the flow label (the first 32-bit word).
    #[inline]
    pub fn set_version_tc_flow(&mut self, tc: u8, flow: u32) {
        let w = 6 << 28 | (tc as u32) << 20 | (flow & 0x000f_ffff);
        put32(self.buf.as_mut(), field::VER_TC_FLOW.start, w);
    }

    /// Sets the traffic class, keeping the version and the flow label.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let b = self.buf.as_mut();
        b[0] = (b[0] & 0xf0) | (tc >> 4);
        b[1] = (b[1] & 0x0f) | (tc << 4);
    }

    /// Sets the DSCP (RFC 2474: the upper six bits of the traffic class; the ECN bits of RFC
    /// 3168 are kept). No checksum covers it. Returns false, changing nothing, when the DSCP
    /// already has that value.
    #[inline]
    pub fn set_dscp(&mut self, dscp: u8) -> bool {
        let old = self.traffic_class();
        let new = (dscp << 2) | (old & 0x03);
        if new == old {
            return false;
        }
        self.set_traffic_class(new);
        true
    }

    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::PAYLOAD_LEN.start, v);
    }

    #[inline]
    pub fn set_next_header(&mut self, v: u8) {
        self.buf.as_mut()[field::NEXT_HEADER] = v;
    }

    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buf.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Decrements the hop limit by one (RFC 8200 section 3: no checksum to update). The caller
    /// checked it is above 1.
    #[inline]
    pub fn decrement_hop_limit(&mut self) {
        let b = self.buf.as_mut();
        b[field::HOP_LIMIT] = b[field::HOP_LIMIT].wrapping_sub(1);
    }

    /// Sets the source address (host order).
    #[inline]
    pub fn set_src(&mut self, v: u128) {
        put128(self.buf.as_mut(), field::SRC.start, v);
    }

    /// Sets the destination address (host order).
    #[inline]
    pub fn set_dst(&mut self, v: u128) {
        put128(self.buf.as_mut(), field::DST.start, v);
    }
}

/// Writes a fixed IPv6 header (traffic class 0, flow label 0) at the start of `buf`, which
/// holds at least [`HEADER_LEN`] bytes: for the packets the appliance originates.
pub fn write_header(
    buf: &mut [u8],
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: u128,
    dst: u128,
) {
    let mut p = Packet::new_unchecked(buf);
    p.set_version_tc_flow(0, 0);
    p.set_payload_len(payload_len);
    p.set_next_header(next_header);
    p.set_hop_limit(hop_limit);
    p.set_src(src);
    p.set_dst(dst);
}

/// What [`validate`] found in a valid IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub payload_len: u16,
    pub hop_limit: u8,
    /// Addresses, host byte order.
    pub src: u128,
    pub dst: u128,
    /// The upper-layer protocol: the next-header value that ends the walk (TCP, UDP, ICMPv6,
    /// ESP, No Next Header, any unknown value; for a non-first fragment, the fragment
    /// header's next header).
    pub upper: u8,
    /// Offset of the upper layer from the start of the IPv6 header (40 without extension
    /// headers); at most `40 + payload_len`, and below 2^16 (8 headers of at most 2048 bytes).
    pub upper_off: u16,
    /// A hop-by-hop options header follows the fixed header.
    pub hop_by_hop: bool,
    /// The chain has a fragment header (an atomic fragment, RFC 6946, has one with offset 0
    /// and M clear: `frag` is then [`Frag::No`]).
    pub has_frag_header: bool,
    /// Fragment position (the IPv4 type: [`Frag::First`] carries the upper-layer header,
    /// [`Frag::NonFirst`] does not).
    pub frag: Frag,
    /// Fragment offset in bytes, the M flag and the identification (0 without a fragment
    /// header).
    pub frag_offset: u16,
    pub more_frags: bool,
    pub frag_ident: u32,
    /// The flow key's ports, as `nf::parse` fills them for IPv4: TCP, UDP, SCTP, UDP-Lite:
    /// the L4 ports when the upper layer's first 4 bytes are present; ICMPv6: `dport` =
    /// `type << 8 | code`, `sport` = the identifier of an echo request or reply; 0 otherwise
    /// and in non-first fragments.
    pub sport: u16,
    pub dport: u16,
}

impl Info {
    /// Bytes of the upper layer in the packet (from `upper_off` to the payload's end).
    #[inline]
    pub fn upper_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize - self.upper_off as usize
    }
}

/// The IPv6 validity parser of a router, on `l3` (the bytes from the IPv6 header to the end
/// of the frame, contiguous). Each check has its drop reason; the first failing one counts:
/// 1. `l3` holds the 40-byte header (`ipv6_truncated`);
/// 2. the version is 6 (`ipv6_bad_version`);
/// 3. a payload length of 0 with a hop-by-hop header is a jumbogram (RFC 2675), not
///    supported (`ipv6_bad_length`);
/// 4. `l3` holds 40 + payload length bytes (`ipv6_truncated`; bytes beyond are link-layer
///    padding and ignored);
/// 5. the extension-header chain (hop-by-hop, routing, fragment, destination options, AH,
///    mobility, HIP, Shim6) is walked to the upper layer: each header lies within the
///    payload, hop-by-hop only right after the fixed header (RFC 8200 section 4.1), at most
///    one fragment header and [`MAX_EXT_HEADERS`] headers (`ipv6_bad_ext_header`). The walk
///    stops after the fragment header of a non-first fragment (what follows is fragment
///    data) and at ESP, No Next Header or any other value (the upper layer).
///
/// The options inside hop-by-hop and destination options headers and the routing header's
/// contents are not examined (RFC 8200 section 4: a router forwards on the destination
/// address). Never panics and never reads past `l3`.
pub fn validate(l3: &[u8]) -> Result<Info, DropReason> {
    if l3.len() < HEADER_LEN {
        return Err(DropReason::Ipv6Truncated);
    }
    let p = Packet::new_unchecked(l3);
    if p.version() != 6 {
        return Err(DropReason::Ipv6BadVersion);
    }
    let payload_len = p.payload_len();
    let mut nh = p.next_header();
    if payload_len == 0 && nh == next_header::HOP_BY_HOP {
        return Err(DropReason::Ipv6BadLength);
    }
    let end = HEADER_LEN + payload_len as usize;
    let Some(pkt) = l3.get(..end) else {
        return Err(DropReason::Ipv6Truncated);
    };
    let mut info = Info {
        payload_len,
        hop_limit: p.hop_limit(),
        src: p.src(),
        dst: p.dst(),
        upper: nh,
        upper_off: HEADER_LEN as u16,
        hop_by_hop: false,
        has_frag_header: false,
        frag: Frag::No,
        frag_offset: 0,
        more_frags: false,
        frag_ident: 0,
        sport: 0,
        dport: 0,
    };
    let mut off = HEADER_LEN;
    let mut count = 0;
    loop {
        use next_header::*;
        if !matches!(
            nh,
            HOP_BY_HOP | ROUTING | FRAGMENT | DEST_OPTS | AH | MOBILITY | HIP | SHIM6
        ) {
            break;
        }
        if (nh == HOP_BY_HOP && off != HEADER_LEN) || count == MAX_EXT_HEADERS {
            return Err(DropReason::Ipv6BadExtHeader);
        }
        count += 1;
        // Every walked header starts with its next header and a length octet.
        let Some(&[next, hlen]) = pkt.get(off..off + 2) else {
            return Err(DropReason::Ipv6BadExtHeader);
        };
        let len = match nh {
            FRAGMENT => 8,
            AH => (hlen as usize + 2) * 4,
            _ => (hlen as usize + 1) * 8,
        };
        if off + len > end {
            return Err(DropReason::Ipv6BadExtHeader);
        }
        match nh {
            HOP_BY_HOP => info.hop_by_hop = true,
            FRAGMENT => {
                if info.has_frag_header {
                    return Err(DropReason::Ipv6BadExtHeader);
                }
                let w = get16(pkt, off + 2);
                info.has_frag_header = true;
                info.frag_offset = w & 0xfff8;
                info.more_frags = w & 1 != 0;
                info.frag_ident = get32(pkt, off + 4);
                info.frag = match (info.frag_offset, info.more_frags) {
                    (0, false) => Frag::No,
                    (0, true) => Frag::First,
                    _ => Frag::NonFirst,
                };
            }
            _ => {}
        }
        off += len;
        nh = next;
        if info.frag == Frag::NonFirst {
            break;
        }
    }
    info.upper = nh;
    info.upper_off = off as u16;
    if info.frag != Frag::NonFirst {
        let l4 = &pkt[off..];
        match nh {
            proto::TCP | proto::UDP | proto::SCTP | proto::UDPLITE if l4.len() >= 4 => {
                info.sport = get16(l4, 0);
                info.dport = get16(l4, 2);
            }
            proto::ICMPV6 if l4.len() >= 2 => {
                info.dport = get16(l4, 0);
                if matches!(l4[0], 128 | 129) && l4.len() >= 6 {
                    info.sport = get16(l4, 4);
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// `ff00::/8` (RFC 4291 section 2.7).
#[inline(always)]
pub fn is_multicast(a: u128) -> bool {
    a >> 120 == 0xff
}

/// `::`, the unspecified address (RFC 4291 section 2.5.2).
#[inline(always)]
pub fn is_unspecified(a: u128) -> bool {
    a == 0
}

/// `::1` (RFC 4291 section 2.5.3).
#[inline(always)]
pub fn is_loopback(a: u128) -> bool {
    a == 1
}

/// Link-local unicast, `fe80::/10` (RFC 4291 section 2.5.6): never forwarded.
#[inline(always)]
pub fn is_link_local(a: u128) -> bool {
    a >> 118 == 0xfe80 >> 6
}

/// IPv4-mapped, `::ffff:0:0/96` (RFC 4291 section 2.5.5.2): never on the wire.
#[inline(always)]
pub fn is_v4_mapped(a: u128) -> bool {
    a >> 32 == 0xffff
}

/// The multicast scope (RFC 4291 section 2.7: 1 interface-local, 2 link-local, 5 site-local,
/// 0xe global); meaningful for multicast addresses only.
#[inline(always)]
pub fn multicast_scope(a: u128) -> u8 {
    (a >> 112) as u8 & 0x0f
}

/// All-nodes (`ff02::1`) and all-routers (`ff02::2`) link-local multicast (RFC 4291 section
/// 2.7.1).
pub const ALL_NODES: u128 = 0xff02 << 112 | 1;
pub const ALL_ROUTERS: u128 = 0xff02 << 112 | 2;

/// The solicited-node multicast address of `a` (RFC 4291 section 2.7.1): `ff02::1:ff00:0/104`
/// with the low 24 bits of `a`.
#[inline]
pub fn solicited_node(a: u128) -> u128 {
    0xff02_0000_0000_0000_0000_0001_ff00_0000 | (a & 0x00ff_ffff)
}

/// Whether `a` is a solicited-node multicast address (`ff02::1:ff00:0/104`).
#[inline]
pub fn is_solicited_node(a: u128) -> bool {
    a >> 24 == 0xff02_0000_0000_0000_0000_0001_ff00_0000 >> 24
}

/// The Ethernet group address of an IPv6 multicast address (RFC 2464 section 7): 33:33 and
/// the address's low 32 bits.
#[inline]
pub fn multicast_mac(a: u128) -> [u8; 6] {
    let l = (a as u32).to_be_bytes();
    [0x33, 0x33, l[0], l[1], l[2], l[3]]
}

/// The link-local address `fe80::/64` with the modified EUI-64 interface identifier of an
/// Ethernet address (RFC 4291 section 2.5.1 and appendix A, RFC 2464 section 4): ff:fe
/// inserted in the middle, the universal/local bit inverted.
#[inline]
pub fn link_local_from_mac(mac: [u8; 6]) -> u128 {
    let iid = u64::from_be_bytes([
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]);
    0xfe80 << 112 | iid as u128
}

#[cfg(test)]
mod tests;
