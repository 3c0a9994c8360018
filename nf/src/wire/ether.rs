//! Ethernet II frames (IEEE 802.3 with an EtherType), and the 802.1Q tag that can sit between
//! the addresses and the EtherType.
//!
//! Today's stages handle untagged frames: their L3 header starts at [`HEADER_LEN`], and a
//! tagged frame is "not IPv4" to them. [`Frame::l3`] already says where the L3 header of a
//! frame with one 802.1Q tag starts and which protocol it holds, for the stages that will
//! accept tags.

use pollfwd_pipeline::DropReason;

/// Ethernet II header length: destination, source, EtherType.
pub const HEADER_LEN: usize = 14;
/// Length of an 802.1Q tag (TPID + TCI).
pub const VLAN_TAG_LEN: usize = 4;
/// Minimum Ethernet frame length without the FCS: frames the appliance builds are padded to it.
pub const MIN_FRAME: usize = 60;
/// The broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// Byte offsets in the Ethernet header.
pub mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    /// Both addresses, destination first.
    pub const ADDRS: Range<usize> = 0..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// Behind an 802.1Q TPID at [`ETHERTYPE`]: the tag control information and the
    /// encapsulated EtherType.
    pub const VLAN_TCI: Range<usize> = 14..16;
    pub const VLAN_ETHERTYPE: Range<usize> = 16..18;
}

/// EtherType values (IEEE registry).
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    pub const IPV6: u16 = 0x86dd;
}

/// The protocol an EtherType names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtherType {
    Ipv4,
    Arp,
    /// An 802.1Q tag follows (or 802.1ad, [`ethertype::QINQ`]).
    Vlan,
    Ipv6,
    Other(u16),
}

impl From<u16> for EtherType {
    #[inline]
    fn from(v: u16) -> EtherType {
        match v {
            ethertype::IPV4 => EtherType::Ipv4,
            ethertype::ARP => EtherType::Arp,
            ethertype::VLAN | ethertype::QINQ => EtherType::Vlan,
            ethertype::IPV6 => EtherType::Ipv6,
            v => EtherType::Other(v),
        }
    }
}

impl From<EtherType> for u16 {
    #[inline]
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => ethertype::IPV4,
            EtherType::Arp => ethertype::ARP,
            EtherType::Vlan => ethertype::VLAN,
            EtherType::Ipv6 => ethertype::IPV6,
            EtherType::Other(v) => v,
        }
    }
}

/// Whether an Ethernet address is a group (broadcast or multicast) address: the I/G bit, the
/// least significant bit of the first octet (IEEE 802).
#[inline(always)]
pub fn is_group(first_octet: u8) -> bool {
    first_octet & 1 != 0
}

/// A view of an Ethernet frame in a byte buffer (smoltcp's style: `new_checked` checks the
/// length once, every accessor after it is in bounds).
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// A view without a length check: accessors panic on a buffer shorter than 14 bytes.
    #[inline(always)]
    pub fn new_unchecked(buf: T) -> Frame<T> {
        Frame { buf }
    }

    /// A view of a buffer that holds at least the Ethernet header, or [`DropReason::Runt`].
    #[inline(always)]
    pub fn new_checked(buf: T) -> Result<Frame<T>, DropReason> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(DropReason::Runt);
        }
        Ok(Frame { buf })
    }

    pub fn into_inner(self) -> T {
        self.buf
    }

    #[inline(always)]
    pub fn dst(&self) -> [u8; 6] {
        self.buf.as_ref()[field::DST].try_into().expect("6 bytes")
    }

    #[inline(always)]
    pub fn src(&self) -> [u8; 6] {
        self.buf.as_ref()[field::SRC].try_into().expect("6 bytes")
    }

    /// Whether the destination is a broadcast or multicast address.
    #[inline(always)]
    pub fn dst_is_group(&self) -> bool {
        is_group(self.buf.as_ref()[0])
    }

    /// The EtherType field as it is on the wire (the TPID for a tagged frame).
    #[inline(always)]
    pub fn ethertype_raw(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[12], b[13]])
    }

    #[inline(always)]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(self.ethertype_raw())
    }

    /// The protocol of the L3 header and where it starts: after the Ethernet header, or after
    /// one 802.1Q/802.1ad tag (`None` for a tagged frame too short for its tag).
    #[inline]
    pub fn l3(&self) -> Option<(EtherType, usize)> {
        match self.ethertype() {
            EtherType::Vlan => {
                let b = self.buf.as_ref().get(field::VLAN_ETHERTYPE)?;
                Some((
                    EtherType::from(u16::from_be_bytes([b[0], b[1]])),
                    HEADER_LEN + VLAN_TAG_LEN,
                ))
            }
            t => Some((t, HEADER_LEN)),
        }
    }

    /// The VLAN identifier of a tagged frame (the low 12 bits of the TCI).
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        if self.ethertype() != EtherType::Vlan {
            return None;
        }
        let b = self.buf.as_ref().get(field::VLAN_TCI)?;
        Some(u16::from_be_bytes([b[0], b[1]]) & 0x0fff)
    }

    /// What follows the Ethernet header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    #[inline(always)]
    pub fn set_dst(&mut self, a: &[u8; 6]) {
        self.buf.as_mut()[field::DST].copy_from_slice(a);
    }

    #[inline(always)]
    pub fn set_src(&mut self, a: &[u8; 6]) {
        self.buf.as_mut()[field::SRC].copy_from_slice(a);
    }

    /// Writes both addresses at once: `addrs` is the destination then the source.
    #[inline(always)]
    pub fn set_addrs(&mut self, addrs: &[u8; 12]) {
        self.buf.as_mut()[field::ADDRS].copy_from_slice(addrs);
    }

    #[inline(always)]
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.buf.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(t).to_be_bytes());
    }

    /// Swaps the source and destination addresses in place.
    #[inline(always)]
    pub fn swap_addrs(&mut self) {
        let (dst, rest) = self.buf.as_mut().split_at_mut(6);
        dst.swap_with_slice(&mut rest[..6]);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_round_trip() {
        let mut b = [0u8; 20];
        let mut f = Frame::new_checked(&mut b[..]).unwrap();
        f.set_dst(&[1, 2, 3, 4, 5, 6]);
        f.set_src(&[8, 9, 10, 11, 12, 13]);
        f.set_ethertype(EtherType::Ipv4);
        assert_eq!(f.dst(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(f.src(), [8, 9, 10, 11, 12, 13]);
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert!(f.dst_is_group());
        assert_eq!(f.l3(), Some((EtherType::Ipv4, 14)));
        f.swap_addrs();
        assert_eq!(f.dst(), [8, 9, 10, 11, 12, 13]);
        assert_eq!(f.src(), [1, 2, 3, 4, 5, 6]);
        assert!(!f.dst_is_group());
        let mut a = [0u8; 12];
        a[..6].copy_from_slice(&[0xaa; 6]);
        a[6..].copy_from_slice(&[0xbb; 6]);
        f.set_addrs(&a);
        assert_eq!((f.dst(), f.src()), ([0xaa; 6], [0xbb; 6]));
        assert_eq!(&b[12..14], &[0x08, 0x00]);
        for v in [0x0800u16, 0x0806, 0x8100, 0x86dd, 0x1234] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x88a8), EtherType::Vlan);
    }

    #[test]
    fn a_vlan_tag_moves_the_l3_header() {
        let mut b = [0u8; 22];
        b[12..14].copy_from_slice(&[0x81, 0x00]);
        b[14..16].copy_from_slice(&[0x20, 0x64]); // PCP 1, VID 100
        b[16..18].copy_from_slice(&[0x86, 0xdd]);
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::Vlan);
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.l3(), Some((EtherType::Ipv6, 18)));
        // A tag cut short has no L3 header.
        assert_eq!(Frame::new_checked(&b[..16]).unwrap().l3(), None);
    }

    #[test]
    fn runts_are_refused() {
        for n in 0..14 {
            assert_eq!(
                Frame::new_checked(&[0u8; 14][..n]).unwrap_err(),
                DropReason::Runt
            );
        }
        assert!(Frame::new_checked(&[0u8; 14][..]).is_ok());
    }
}
