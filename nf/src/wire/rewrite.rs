//! Rewrites of header fields that keep every checksum right incrementally (RFC 1624): what NAT
//! does to the packets it translates (and to the packet an ICMP error quotes), and what
//! forward does to restore a quote to the packet its sender wrote. Each returns the delta of
//! the words it changed, for an enclosing checksum (an ICMP error's).

use super::checksum::Delta;
use super::{icmp, ipv4, tcp, udp};

/// Sets the IPv4 source (`src = true`) or destination address of the header at `l3` and
/// updates its header checksum. Returns the delta for checksums with a pseudo-header.
#[inline]
pub fn ip_addr(f: &mut [u8], l3: usize, src: bool, new: u32) -> Delta {
    ipv4::Packet::new_unchecked(&mut f[l3..]).rewrite_addr(src, new)
}

/// Sets a TCP/UDP port (source or destination) at `l4` and updates the L4 checksum with
/// `pseudo` (the address change) plus the port change. `avail` is how many L4 bytes are
/// present (an embedded header may lack the TCP checksum). Returns the delta of every
/// word changed in the L4 header (port, checksum), for an enclosing ICMP checksum.
#[inline]
pub fn l4_port(
    f: &mut [u8],
    proto: u8,
    l4: usize,
    avail: usize,
    src: bool,
    new: u16,
    pseudo: Delta,
) -> Delta {
    let b = &mut f[l4..];
    // The ports are the first two fields of TCP and UDP alike.
    let mut u = udp::Packet::new_unchecked(&mut *b);
    let old = if src { u.src_port() } else { u.dst_port() };
    if src {
        u.set_src_port(new);
    } else {
        u.set_dst_port(new);
    }
    let mut outer = Delta::ZERO.word(old, new);
    let d = pseudo.word(old, new);
    if proto == super::proto::UDP {
        let oc = u.checksum();
        let nc = d.apply_udp(oc);
        u.set_checksum(nc);
        outer = outer.word(oc, nc);
    } else if avail >= tcp::field::CHECKSUM.end {
        let mut t = tcp::Packet::new_unchecked(b);
        let oc = t.checksum();
        let nc = d.apply(oc);
        t.set_checksum(nc);
        outer = outer.word(oc, nc);
    }
    outer
}

/// Sets an ICMP query identifier and updates the ICMP checksum (no pseudo-header).
/// Returns the delta of the words changed (identifier, checksum).
#[inline]
pub fn icmp_id(f: &mut [u8], l4: usize, new: u16) -> Delta {
    let mut m = icmp::Packet::new_unchecked(&mut f[l4..]);
    let old = m.ident();
    m.set_ident(new);
    let oc = m.checksum();
    let nc = Delta::ZERO.word(old, new).apply(oc);
    m.set_checksum(nc);
    Delta::ZERO.word(old, new).word(oc, nc)
}

/// Applies `d` to the ICMP checksum of the message at `l4`.
#[inline]
pub fn icmp_csum(f: &mut [u8], l4: usize, d: Delta) {
    let mut m = icmp::Packet::new_unchecked(&mut f[l4..]);
    let c = d.apply(m.checksum());
    m.set_checksum(c);
}

/// The IPv4 header checksum word at `l3` (for deltas of an embedded header).
#[inline]
pub fn ip_csum(f: &[u8], l3: usize) -> u16 {
    ipv4::Packet::new_unchecked(&f[l3..]).checksum()
}
