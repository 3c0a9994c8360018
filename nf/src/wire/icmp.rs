//! ICMP for IPv4 (RFC 792): the header view and the message classes (RFC 5508 section 2's
//! query/error split, RFC 1812 section 4.3.2.7's rules need it too).

use super::checksum;
use super::{get16, put16};

/// The ICMP header: type, code, checksum, and four bytes whose meaning depends on the type
/// (identifier and sequence number for queries, unused for the errors pollfwd sends).
pub const HEADER_LEN: usize = 8;

/// Byte offsets in the ICMP header.
pub mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Query messages: the identifier and sequence number.
    pub const IDENT: Range<usize> = 4..6;
    pub const SEQ: Range<usize> = 6..8;
}

/// Message types pollfwd reads or writes.
pub mod msg {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
}

/// What kind of ICMP message (RFC 792; the query/error split of RFC 5508 section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Echo, timestamp, information or address-mask request.
    QueryRequest,
    /// The matching replies.
    QueryReply,
    /// Destination unreachable, source quench, time exceeded, parameter problem: carries the
    /// offending packet's IP header and at least 8 bytes of its payload.
    Error,
    /// Anything else (redirect, router advertisement, unknown types).
    Other,
}

/// The kind of a message type.
#[inline]
pub fn kind(ty: u8) -> Kind {
    match ty {
        8 | 13 | 15 | 17 => Kind::QueryRequest,
        0 | 14 | 16 | 18 => Kind::QueryReply,
        3 | 4 | 11 | 12 => Kind::Error,
        _ => Kind::Other,
    }
}

/// Whether a message type is a query or its reply (echo, timestamp, information, address
/// mask): the types that carry an identifier.
#[inline(always)]
pub fn is_query(ty: u8) -> bool {
    matches!(ty, 0 | 8 | 13..=18)
}

/// A view of an ICMP message in a byte buffer (the whole message: the checksum covers it).
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

    /// The identifier of a query message.
    #[inline(always)]
    pub fn ident(&self) -> u16 {
        get16(self.buf.as_ref(), field::IDENT.start)
    }

    #[inline(always)]
    pub fn seq(&self) -> u16 {
        get16(self.buf.as_ref(), field::SEQ.start)
    }

    /// What follows the 8-byte header (an error's quoted datagram, an echo's data).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum over the whole message is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buf.as_ref(), 0) == 0
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

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }

    /// Computes and writes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buf.as_ref(), 0);
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum::tests::rfc1071;

    #[test]
    fn accessors_round_trip_and_checksum() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_msg_type(msg::ECHO_REQUEST);
        p.set_code(0);
        p.set_ident(0x1234);
        p.set_seq(7);
        p.data_mut().copy_from_slice(&[1, 2, 3, 4]);
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.msg_type(), p.code(), p.ident(), p.seq()),
            (8, 0, 0x1234, 7)
        );
        assert_eq!(p.data(), &[1, 2, 3, 4]);
        let c = p.checksum();
        let mut z = b;
        z[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(c, rfc1071(&z));
        b[11] ^= 0x40;
        assert!(!Packet::new_unchecked(&b[..]).verify_checksum());
        assert!(Packet::new_checked(&b[..7]).is_none());
    }

    #[test]
    fn kinds_and_queries_agree() {
        for ty in 0..=255u8 {
            let k = kind(ty);
            assert_eq!(
                is_query(ty),
                matches!(k, Kind::QueryRequest | Kind::QueryReply),
                "type {ty}"
            );
        }
        assert_eq!(kind(msg::ECHO_REQUEST), Kind::QueryRequest);
        assert_eq!(kind(msg::ECHO_REPLY), Kind::QueryReply);
        assert_eq!(kind(msg::TIME_EXCEEDED), Kind::Error);
        assert_eq!(kind(5), Kind::Other);
    }
}
