//! TCP (RFC 793): the header view, as far as pollfwd reads it (ports, flags, checksum).

use super::checksum::{self, pseudo_header};
use super::{get16, get32, put16};

/// The fixed header, without options.
pub const HEADER_LEN: usize = 20;

/// Byte offsets in the TCP header.
pub mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const CHECKSUM: Range<usize> = 16..18;
}

/// TCP flag bits (RFC 793).
pub mod flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// A view of a TCP segment in a byte buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline(always)]
    pub fn new_unchecked(buf: T) -> Packet<T> {
        Packet { buf }
    }

    /// A view of a buffer that holds at least the 20-byte fixed header.
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
    pub fn seq(&self) -> u32 {
        get32(self.buf.as_ref(), field::SEQ.start)
    }

    #[inline(always)]
    pub fn ack(&self) -> u32 {
        get32(self.buf.as_ref(), field::ACK.start)
    }

    /// Header length in bytes (data offset * 4).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        (self.buf.as_ref()[field::DATA_OFF] >> 4) as usize * 4
    }

    /// The flag bits ([`flag`]).
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.buf.as_ref()[field::FLAGS]
    }

    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        get16(self.buf.as_ref(), field::CHECKSUM.start)
    }

    /// Whether the checksum over the segment (the whole buffer) and the pseudo-header of
    /// `src` -> `dst` is right.
    pub fn verify_checksum(&self, src: u32, dst: u32) -> bool {
        let b = self.buf.as_ref();
        checksum::checksum(
            b,
            pseudo_header(src, dst, super::proto::TCP, b.len() as u16),
        ) == 0
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

    /// Sets the header length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buf.as_mut();
        b[field::DATA_OFF] = ((len / 4) as u8) << 4 | (b[field::DATA_OFF] & 0x0f);
    }

    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buf.as_mut()[field::FLAGS] = v;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buf.as_mut(), field::CHECKSUM.start, v);
    }

    /// Computes and writes the checksum over the segment (the whole buffer).
    pub fn fill_checksum(&mut self, src: u32, dst: u32) {
        self.set_checksum(0);
        let b = self.buf.as_ref();
        let c = checksum::checksum(
            b,
            pseudo_header(src, dst, super::proto::TCP, b.len() as u16),
        );
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_round_trip_and_checksum() {
        let mut b = [0u8; 24];
        b[4..12].copy_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        let mut t = Packet::new_checked(&mut b[..]).unwrap();
        t.set_src_port(40000);
        t.set_dst_port(443);
        t.set_header_len(20);
        t.set_flags(flag::SYN | flag::ACK);
        t.fill_checksum(0x0a00_0001, 0xc000_0209);
        assert_eq!(
            (t.src_port(), t.dst_port(), t.seq(), t.ack()),
            (40000, 443, 1, 2)
        );
        assert_eq!((t.header_len(), t.flags()), (20, 0x12));
        assert!(t.verify_checksum(0x0a00_0001, 0xc000_0209));
        assert!(!t.verify_checksum(0x0a00_0001, 0xc000_0208));
        assert_eq!(b[12], 0x50);
        assert!(Packet::new_checked(&b[..19]).is_none());
    }
}
