//! UDP (RFC 768): the header view.

use super::checksum::{self, pseudo_header, pseudo_header_v6};
use super::{get16, put16};

pub const HEADER_LEN: usize = 8;

/// Byte offsets in the UDP header.
pub mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LEN: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP datagram in a byte buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
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
    pub fn src_port(&self) -> u16 {
        get16(self.buf.as_ref(), field::SRC_PORT.start)
    }

    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        get16(self.buf.as_ref(), field::DST_PORT.start)
    }

    #[inline(always)]
    pub fn len(&self) -> u16 {
        get16(self.buf.as_ref(), field::LEN.start)
    }

    /// Whether the length field is 0 (never valid: it counts the header).
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The checksum; 0 means the sender computed none (RFC 768).
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        get16(self.buf.as_ref(), field::CHECKSUM.start)
    }

    /// Whether the checksum over the datagram (the whole buffer) and the pseudo-header of
    /// `src` -> `dst` is right, or absent.
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        let b = self.buf.as_ref();
        self.checksum() == 0
            || checksum::checksum(
                b,
                pseudo_header(src, dst, super::proto::UDP, b.len() as u16),
            ) == 0
    }

    /// Over IPv6: whether the checksum over the datagram (the whole buffer) and the IPv6
    /// pseudo-header of `src` -> `dst` (RFC 8200 section 8.1) is right. A zero checksum is
    /// wrong over IPv6 (the checksum is mandatory there).
    pub fn verify_checksum_v6(&self, src: u128, dst: u128) -> bool {
        let b = self.buf.as_ref();
        let ph = pseudo_header_v6(src, dst, super::proto::UDP, b.len() as u32);
        self.checksum() != 0 && checksum::checksum(b, ph) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::SRC_PORT.start, v);
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::DST_PORT.start, v);
    }

    #[inline]
    pub fn set_len(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::LEN.start, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::CHECKSUM.start, v);
    }

    /// Computes and writes the checksum over the datagram (the whole buffer) with the
    /// pseudo-header; a computed 0 is sent as 0xffff (RFC 768).
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let b = self.buf.as_ref();
        let c = checksum::checksum(
            b,
            pseudo_header(src, dst, super::proto::UDP, b.len() as u16),
        );
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Over IPv6: computes and writes the checksum with the IPv6 pseudo-header of `src` ->
    /// `dst`; a computed 0 is sent as 0xffff (RFC 8200 section 8.1).
    pub fn fill_checksum_v6(&mut self, src: u128, dst: u128) {
        self.set_checksum(0);
        let b = self.buf.as_ref();
        let ph = pseudo_header_v6(src, dst, super::proto::UDP, b.len() as u32);
        let c = checksum::checksum(b, ph);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_round_trip_and_checksum() {
        let mut b = [0u8; 12];
        let mut u = Packet::new_checked(&mut b[..]).unwrap();
        u.set_src_port(1234);
        u.set_dst_port(80);
        u.set_len(12);
        u.fill_checksum(0x0a00_0001, 0xc000_0209);
        assert_eq!((u.src_port(), u.dst_port(), u.len()), (1234, 80, 12));
        assert!(u.verify_checksum(0x0a00_0001, 0xc000_0209));
        assert!(!u.verify_checksum(0x0a00_0002, 0xc000_0209));
        u.set_checksum(0);
        assert!(u.verify_checksum(0x0a00_0002, 0xc000_0209), "no checksum");
        assert_eq!(&b[..6], &[0x04, 0xd2, 0, 80, 0, 12]);
        assert!(Packet::new_checked(&b[..7]).is_none());
    }
}
