//! Packet formats, once for every stage (in the style of smoltcp's wire module): typed
//! zero-copy views over a byte buffer with named accessors ([`ether::Frame`],
//! [`arp::Packet`], [`ipv4::Packet`], [`icmp::Packet`], [`ipv6::Packet`],
//! [`icmpv6::Packet`], [`udp::Packet`], [`tcp::Packet`]), each format's byte offsets in its
//! `field` module, the IPv4 validity parser every stage uses ([`ipv4::validate`], RFC 1812
//! section 5.2.2), and the Internet checksum ([`checksum`]: full sum, RFC 1624 incremental update, IPv4 and IPv6
//! pseudo-headers).
//!
//! IPv6: [`ipv6::validate`] is a router's validity parser (RFC 8200: the fixed header, then a
//! bounded walk of the extension-header chain to the upper layer, with the fragment position
//! and the flow key's ports, each failure with its drop reason); [`ipv6`] also has the
//! address classes of RFC 4291 and the derived addresses (solicited-node, its Ethernet group
//! address, the EUI-64 link-local address). [`icmpv6`] writes the errors a router sends
//! (quoting the invoking packet up to the 1280-byte minimum MTU) and turns echo requests
//! around in place; [`ndp`] checks neighbour discovery messages (RFC 4861 sections 6.1, 7.1,
//! 8.1) and writes NS, NA and RA. The builders write a whole IPv6 packet into a caller's
//! slice and return its length: no allocation.
//!
//! A view's `new_checked` checks the buffer holds the fixed header; after it, accessors of
//! fixed fields cannot panic. Addresses are `u32` (IPv4) or `u128` (IPv6) in host byte
//! order, as `PktMeta` and the route tables hold them. The forward stage's fast loop reads an
//! untagged IPv4 frame's header in four word loads ([`ipv4::Words`]) rather than through
//! views: measured faster there (docs/performance.md). [`ether::EtherType`] names IPv6 and
//! VLAN tags; stages never see tags (the runtime pops them into VLAN sub-interfaces:
//! `pollfwd_pipeline::vlan`), and a tag left on a frame of a port without sub-interfaces is
//! `vlan_unknown` ([`crate::parse`]).

pub mod arp;
pub mod checksum;
pub mod ether;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ndp;
pub mod rewrite;
pub mod tcp;
pub mod udp;

/// IP protocol numbers (IANA) the stages know.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
    pub const UDPLITE: u8 = 136;
}

/// A big-endian 16-bit field at `off` of `b`.
#[inline(always)]
pub fn get16(b: &[u8], off: usize) -> u16 {
    // One bounds check and one load (indexing each byte checks each: measured 24 instructions
    // a packet in NAT's translation, docs/performance.md).
    let w: [u8; 2] = b[off..off + 2].try_into().expect("2 bytes");
    u16::from_be_bytes(w)
}

/// A big-endian 32-bit field at `off` of `b`.
#[inline(always)]
pub fn get32(b: &[u8], off: usize) -> u32 {
    let w: [u8; 4] = b[off..off + 4].try_into().expect("4 bytes");
    u32::from_be_bytes(w)
}

/// A big-endian 128-bit field (an IPv6 address) at `off` of `b`, as a host-order `u128`.
#[inline(always)]
pub fn get128(b: &[u8], off: usize) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[off..off + 16]);
    u128::from_be_bytes(a)
}

/// Writes a big-endian 128-bit field (an IPv6 address) at `off` of `b`.
#[inline(always)]
pub fn put128(b: &mut [u8], off: usize, v: u128) {
    b[off..off + 16].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian 16-bit field at `off` of `b`.
#[inline(always)]
pub fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian 32-bit field at `off` of `b`.
#[inline(always)]
pub fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// Test fixtures shared by the wire module's and the stages' tests.
#[cfg(test)]
pub(crate) mod testframe {
    use super::checksum::tests::rfc1071;

    /// A UDP/IPv4 frame: 02:..:01 -> 02:..:02, 10.0.0.1:1234 -> 192.0.2.9:80, TTL 64,
    /// 8 bytes of payload, correct IPv4 header checksum (UDP checksum 0: none).
    pub(crate) fn udp_frame() -> Vec<u8> {
        let mut f = vec![
            0x02, 0, 0, 0, 0, 0x02, // dst
            0x02, 0, 0, 0, 0, 0x01, // src
            0x08, 0x00, // IPv4
            0x45, 0x00, 0x00, 36, // ver/ihl, tos, total length 20 + 8 + 8
            0x12, 0x34, 0x40, 0x00, // id, DF
            64, 17, 0x00, 0x00, // ttl, udp, checksum
            10, 0, 0, 1, // src
            192, 0, 2, 9, // dst
            0x04, 0xd2, 0x00, 0x50, 0x00, 16, 0x00, 0x00, // udp
            1, 2, 3, 4, 5, 6, 7, 8, // payload
        ];
        let c = rfc1071(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    }
}
