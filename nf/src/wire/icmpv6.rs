//! ICMPv6 (RFC 4443): the header view with its pseudo-header checksum, the message types
//! and codes, and the messages a router writes itself: errors quoting the invoking packet
//! ([`write_error`]) and echo replies turned around in place ([`echo_reply_in_place`]).
//! Neighbour discovery's messages are in [`super::ndp`].

use super::checksum::{self, pseudo_header_v6};
use super::ipv4::Frag;
use super::ipv6::{self, HEADER_LEN as IP6_HDR, MIN_MTU};
use super::{get16, get32, proto, put16, put32};

/// The ICMPv6 header: type, code, checksum, and four bytes whose meaning depends on the type
/// (identifier and sequence number of an echo, the MTU of packet too big, the pointer of a
/// parameter problem, unused in the other errors).
pub const HEADER_LEN: usize = 8;
/// Hop limit of the errors and echo replies the appliance sends (RFC 4443 leaves it to the
/// node: a normal unicast hop limit, as the IPv4 TTL of `forward::icmp`). Neighbour discovery
/// uses 255 instead ([`super::ndp::HOP_LIMIT`]).
pub const HOP_LIMIT: u8 = 64;
/// Most bytes an error packet has, IPv6 header included: the IPv6 minimum MTU (RFC 4443
/// section 2.4(c)).
pub const MAX_ERROR_LEN: usize = MIN_MTU;

/// Byte offsets in the ICMPv6 header.
pub mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo request and reply: identifier and sequence number.
    pub const IDENT: Range<usize> = 4..6;
    pub const SEQ: Range<usize> = 6..8;
    /// Packet too big: the MTU; parameter problem: the pointer (RFC 4443 sections 3.2, 3.4).
    pub const PARAM: Range<usize> = 4..8;
}

/// Message types (RFC 4443 section 2.1, RFC 4861 section 4).
pub mod msg {
    pub const DST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
}

/// Destination unreachable codes (RFC 4443 section 3.1).
pub mod unreachable {
    pub const NO_ROUTE: u8 = 0;
    pub const ADMIN_PROHIBITED: u8 = 1;
    pub const BEYOND_SCOPE: u8 = 2;
    pub const ADDR_UNREACHABLE: u8 = 3;
    pub const PORT_UNREACHABLE: u8 = 4;
    pub const SOURCE_POLICY: u8 = 5;
    pub const REJECT_ROUTE: u8 = 6;
}

/// Time exceeded codes (RFC 4443 section 3.3).
pub mod time_exceeded {
    pub const HOP_LIMIT: u8 = 0;
    pub const REASSEMBLY: u8 = 1;
}

/// Parameter problem codes (RFC 4443 section 3.4).
pub mod param_problem {
    pub const ERRONEOUS_HEADER: u8 = 0;
    pub const UNRECOGNIZED_NEXT_HEADER: u8 = 1;
    pub const UNRECOGNIZED_OPTION: u8 = 2;
}

/// Whether a message type is an error (RFC 4443 section 2.1: types 0..=127). No error is
/// sent about an error (section 2.4(e.1)).
#[inline(always)]
pub fn is_error(ty: u8) -> bool {
    ty < 128
}

/// A view of an ICMPv6 message in a byte buffer (the whole message: the checksum covers it
/// and the IPv6 pseudo-header).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without a length check: accessors panic on a buffer shorter than 8 bytes.
    #[inline(always)]
    pub fn new_unchecked(buf: T) -> Packet<T> {
        Packet { buf }
    }

    /// A view of a buffer that holds at least the 8-byte header.
    #[inline(always)]
    pub fn new_checked(buf: T) -> Option<Packet<T>> {
        (buf.as_ref().len() >= HEADER_LEN).then_some(Packet { buf })
    }

    pub fn into_inner(self) -> T {
        self.buf
    }

    #[inline(always)]
    pub fn msg_type(&self) -> u8 {
        self.buf.as_ref()[field::TYPE]
    }

    #[inline(always)]
    pub fn code(&self) -> u8 {
        self.buf.as_ref()[field::CODE]
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        get16(self.buf.as_ref(), field::CHECKSUM.start)
    }

    /// The identifier of an echo request or reply.
    #[inline(always)]
    pub fn ident(&self) -> u16 {
        get16(self.buf.as_ref(), field::IDENT.start)
    }

    #[inline(always)]
    pub fn seq(&self) -> u16 {
        get16(self.buf.as_ref(), field::SEQ.start)
    }

    /// The MTU of a packet too big, the pointer of a parameter problem.
    #[inline(always)]
    pub fn param(&self) -> u32 {
        get32(self.buf.as_ref(), field::PARAM.start)
    }

    /// What follows the 8-byte header (an error's quoted packet, an echo's data).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum over the whole message and the pseudo-header of `src` -> `dst`
    /// (RFC 4443 section 2.3) is right.
    pub fn verify_checksum(&self, src: u128, dst: u128) -> bool {
        let b = self.buf.as_ref();
        checksum::checksum(b, pseudo_header_v6(src, dst, proto::ICMPV6, b.len() as u32)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buf.as_mut()[field::TYPE] = v;
    }

    #[inline]
    pub fn set_code(&mut self, v: u8) {
        self.buf.as_mut()[field::CODE] = v;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::CHECKSUM.start, v);
    }

    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::IDENT.start, v);
    }

    #[inline]
    pub fn set_seq(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::SEQ.start, v);
    }

    /// Sets bytes 4..8: an MTU, a pointer, or 0 ("unused").
    #[inline]
    pub fn set_param(&mut self, v: u32) {
        put32(self.buf.as_mut(), field::PARAM.start, v);
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }

    /// Computes and writes the checksum over the whole message and the pseudo-header of
    /// `src` -> `dst`.
    pub fn fill_checksum(&mut self, src: u128, dst: u128) {
        self.set_checksum(0);
        let b = self.buf.as_ref();
        let c = checksum::checksum(b, pseudo_header_v6(src, dst, proto::ICMPV6, b.len() as u32));
        self.set_checksum(c);
    }
}

/// Writes a complete IPv6 packet carrying an ICMPv6 error (`ty` < 128, `code`; bytes 4..8 =
/// `param`: the MTU of packet too big, the pointer of parameter problem, 0 otherwise) from
/// `src` to `dst` into `buf` and returns its length, 0 when `buf` cannot hold the 48 bytes of
/// headers. The message quotes `invoking` (the invoking packet from its IPv6 header on;
/// link-layer padding after its payload length is left out) verbatim, as much of it as keeps
/// the error within the IPv6 minimum MTU, 1280 bytes (RFC 4443 section 2.4(c)), and within
/// `buf`. Hop limit
/// [`HOP_LIMIT`], traffic class and flow label 0, checksum filled. Whether an error may be
/// sent at all (section 2.4(e), (f)) is the caller's decision.
pub fn write_error(
    buf: &mut [u8],
    src: u128,
    dst: u128,
    ty: u8,
    code: u8,
    param: u32,
    invoking: &[u8],
) -> usize {
    let hdrs = IP6_HDR + HEADER_LEN;
    let invoking = match invoking.get(..IP6_HDR) {
        Some(h) => {
            let end = IP6_HDR + get16(h, ipv6::field::PAYLOAD_LEN.start) as usize;
            &invoking[..end.min(invoking.len())]
        }
        None => invoking,
    };
    let quote = invoking
        .len()
        .min(MAX_ERROR_LEN - hdrs)
        .min(buf.len().saturating_sub(hdrs));
    let Some(b) = buf.get_mut(..hdrs + quote) else {
        return 0;
    };
    let icmp_len = HEADER_LEN + quote;
    ipv6::write_header(b, icmp_len as u16, proto::ICMPV6, HOP_LIMIT, src, dst);
    let mut m = Packet::new_unchecked(&mut b[IP6_HDR..]);
    m.set_msg_type(ty);
    m.set_code(code);
    m.set_param(param);
    m.data_mut().copy_from_slice(&invoking[..quote]);
    m.fill_checksum(src, dst);
    hdrs + quote
}

/// Turns an ICMPv6 echo request addressed to the appliance into its echo reply, in place on
/// `l3` (the packet from its IPv6 header on; RFC 4443 section 4.2: same identifier, sequence
/// number and data, type 129, to the request's source). The reply comes from `src`: the
/// request's destination when that is a unicast address of the appliance, else (a request to
/// a multicast group) a unicast address of the interface it arrived on. Extension headers of
/// the request are not sent back: the message moves up to follow the fixed header. Hop limit
/// [`HOP_LIMIT`], traffic class and flow label 0, checksum recomputed. Returns the reply's
/// length (the bytes of `l3` to send; the rest is to be trimmed), or `None`, changing
/// nothing, when `l3` is not a valid (see [`ipv6::validate`]), unfragmented echo request
/// with a correct checksum from a unicast source.
pub fn echo_reply_in_place(l3: &mut [u8], src: u128) -> Option<usize> {
    let i = ipv6::validate(l3).ok()?;
    if i.upper != proto::ICMPV6
        || i.has_frag_header
        || i.frag != Frag::No
        || ipv6::is_multicast(i.src)
        || ipv6::is_unspecified(i.src)
    {
        return None;
    }
    let (off, end) = (i.upper_off as usize, IP6_HDR + i.payload_len as usize);
    let len = end - off;
    {
        let m = Packet::new_checked(&l3[off..end])?;
        if m.msg_type() != msg::ECHO_REQUEST || m.code() != 0 || !m.verify_checksum(i.src, i.dst) {
            return None;
        }
    }
    l3.copy_within(off..end, IP6_HDR);
    ipv6::write_header(l3, len as u16, proto::ICMPV6, HOP_LIMIT, src, i.src);
    let mut m = Packet::new_unchecked(&mut l3[IP6_HDR..IP6_HDR + len]);
    m.set_msg_type(msg::ECHO_REPLY);
    m.fill_checksum(src, i.src);
    Some(IP6_HDR + len)
}

#[cfg(test)]
mod tests;
