//! ARP for IPv4 over Ethernet (RFC 826): the packet view (28 bytes with 6-byte hardware and
//! 4-byte protocol addresses, the only form pollfwd speaks).

use super::{get16, get32, put16, put32};

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// Hardware type Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// Operation codes.
pub mod op {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

/// Byte offsets in an Ethernet/IPv4 ARP packet.
pub mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// A view of an ARP packet in a byte buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline(always)]
    pub fn new_unchecked(buf: T) -> Packet<T> {
        Packet { buf }
    }

    /// A view of a buffer that holds at least an Ethernet/IPv4 ARP packet (28 bytes).
    #[inline]
    pub fn new_checked(buf: T) -> Option<Packet<T>> {
        (buf.as_ref().len() >= PACKET_LEN).then_some(Packet { buf })
    }

    /// Whether the packet is Ethernet/IPv4 ARP: hardware type 1, protocol type 0x0800,
    /// address lengths 6 and 4.
    #[inline]
    pub fn is_ethernet_ipv4(&self) -> bool {
        let b = self.buf.as_ref();
        self.htype() == HTYPE_ETHERNET
            && self.ptype() == super::ether::ethertype::IPV4
            && b[field::HLEN] == 6
            && b[field::PLEN] == 4
    }

    #[inline]
    pub fn htype(&self) -> u16 {
        get16(self.buf.as_ref(), field::HTYPE.start)
    }

    #[inline]
    pub fn ptype(&self) -> u16 {
        get16(self.buf.as_ref(), field::PTYPE.start)
    }

    #[inline]
    pub fn oper(&self) -> u16 {
        get16(self.buf.as_ref(), field::OPER.start)
    }

    /// Sender hardware address.
    #[inline]
    pub fn sha(&self) -> [u8; 6] {
        self.buf.as_ref()[field::SHA].try_into().expect("6 bytes")
    }

    /// Sender protocol address, host order.
    #[inline]
    pub fn spa(&self) -> u32 {
        get32(self.buf.as_ref(), field::SPA.start)
    }

    /// Target hardware address.
    #[inline]
    pub fn tha(&self) -> [u8; 6] {
        self.buf.as_ref()[field::THA].try_into().expect("6 bytes")
    }

    /// Target protocol address, host order.
    #[inline]
    pub fn tpa(&self) -> u32 {
        get32(self.buf.as_ref(), field::TPA.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the Ethernet/IPv4 fixed part (hardware type, protocol type, lengths) and the
    /// operation.
    #[inline]
    pub fn set_ethernet_ipv4(&mut self, oper: u16) {
        let b = self.buf.as_mut();
        put16(b, field::HTYPE.start, HTYPE_ETHERNET);
        put16(b, field::PTYPE.start, super::ether::ethertype::IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        put16(b, field::OPER.start, oper);
    }

    #[inline]
    pub fn set_sha(&mut self, a: &[u8; 6]) {
        self.buf.as_mut()[field::SHA].copy_from_slice(a);
    }

    #[inline]
    pub fn set_spa(&mut self, v: u32) {
        put32(self.buf.as_mut(), field::SPA.start, v);
    }

    #[inline]
    pub fn set_tha(&mut self, a: &[u8; 6]) {
        self.buf.as_mut()[field::THA].copy_from_slice(a);
    }

    #[inline]
    pub fn set_tpa(&mut self, v: u32) {
        put32(self.buf.as_mut(), field::TPA.start, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_round_trip() {
        let mut b = [0u8; 28];
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_ethernet_ipv4(op::REPLY);
        p.set_sha(&[2, 0, 0, 0, 0, 1]);
        p.set_spa(0xc000_0201);
        p.set_tha(&[2, 0, 0, 0, 0, 2]);
        p.set_tpa(0xc000_0202);
        assert!(p.is_ethernet_ipv4());
        assert_eq!((p.htype(), p.ptype(), p.oper()), (1, 0x0800, 2));
        assert_eq!((p.sha(), p.spa()), ([2, 0, 0, 0, 0, 1], 0xc000_0201));
        assert_eq!((p.tha(), p.tpa()), ([2, 0, 0, 0, 0, 2], 0xc000_0202));
        assert_eq!(&b[..8], &[0, 1, 8, 0, 6, 4, 0, 2]);
        assert!(Packet::new_checked(&b[..27]).is_none());
        let mut bad = b;
        bad[5] = 16;
        assert!(!Packet::new_unchecked(&bad[..]).is_ethernet_ipv4());
    }
}
