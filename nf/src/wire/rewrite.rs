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

/// MSS clamping of the IPv4 datagram at `l3` of frame `f` (the datagram's bytes up to the end
/// of the buffer): if it carries a TCP segment with SYN set (a SYN or a SYN-ACK) whose
/// maximum segment size option is above `max`, lowers it to `max` and updates the TCP
/// checksum ([`tcp::Packet::clamp_mss`]). Fragments other than the first carry no TCP header
/// and are never touched; nor is a datagram whose TCP header is not all there. Returns the
/// MSS replaced, `None` if nothing changed.
pub fn syn_mss(f: &mut [u8], l3: usize, max: u16) -> Option<u16> {
    let ip = f.get_mut(l3..)?;
    if ip.len() < ipv4::MIN_HEADER_LEN {
        return None;
    }
    let v = ipv4::Packet::new_unchecked(&*ip);
    let hl = v.header_len();
    let end = (v.total_len() as usize).min(ip.len());
    if v.protocol() != super::proto::TCP
        || v.frag_offset() != 0
        || hl < ipv4::MIN_HEADER_LEN
        || hl > end
    {
        return None;
    }
    let mut t = tcp::Packet::new_checked(&mut ip[hl..end])?;
    if t.flags() & tcp::flag::SYN == 0 {
        return None;
    }
    t.clamp_mss(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::testpkt::{self, tcp_mss, verify};
    use std::net::Ipv4Addr;

    const A: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 0, 2), 40000);
    const B: (Ipv4Addr, u16) = (Ipv4Addr::new(203, 0, 113, 5), 443);
    /// MSS 1460, NOP, window scale 7.
    const OPTS: [u8; 8] = [2, 4, 0x05, 0xb4, 1, 3, 3, 7];

    #[test]
    fn syns_and_syn_acks_are_clamped_other_segments_are_not() {
        for (flags, clamped) in [
            (tcp::flag::SYN, true),
            (tcp::flag::SYN | tcp::flag::ACK, true),
            (tcp::flag::ACK, false),
            (tcp::flag::ACK | tcp::flag::PSH, false),
            (tcp::flag::FIN | tcp::flag::ACK, false),
            (tcp::flag::RST, false),
        ] {
            let mut f = testpkt::tcp_opts(A, B, flags, 1, &OPTS, b"payload");
            let orig = f.clone();
            let got = syn_mss(&mut f, 14, 1360);
            verify(&f).unwrap();
            if clamped {
                assert_eq!(got, Some(1460), "flags {flags:#x}");
                assert_eq!(tcp_mss(&f), Some(1360));
                // Only the MSS value and the TCP checksum changed.
                let diff: Vec<usize> = (0..f.len()).filter(|&i| f[i] != orig[i]).collect();
                assert!(
                    diff.iter().all(|&i| [50, 51, 56, 57].contains(&i)),
                    "{diff:?}"
                );
            } else {
                assert_eq!(got, None, "flags {flags:#x}");
                assert_eq!(f, orig);
            }
        }
    }

    #[test]
    fn fragments_and_other_protocols_follow_the_rules() {
        let syn = testpkt::tcp_opts(A, B, tcp::flag::SYN, 1, &OPTS, &[0x55; 64]);
        let (mut first, mut rest) = testpkt::fragments(&syn, 32, 9);
        // The first fragment holds the whole TCP header: clamped (the checksum covers the
        // whole segment, the incremental update does not need the rest).
        assert_eq!(syn_mss(&mut first, 14, 1000), Some(1460));
        let mut whole = syn.clone();
        syn_mss(&mut whole, 14, 1000);
        assert_eq!(first[34..14 + 20 + 32], whole[34..14 + 20 + 32]);
        // A later fragment whose data looks like a SYN with an MSS is left alone.
        let mut fake = rest.clone();
        fake[34..34 + 28].copy_from_slice(&whole[34..34 + 28]);
        fake[34 + 13] = tcp::flag::SYN;
        fake[34 + 22..34 + 24].copy_from_slice(&9000u16.to_be_bytes());
        let o = fake.clone();
        assert_eq!(syn_mss(&mut fake, 14, 1000), None);
        assert_eq!(fake, o);
        let o = rest.clone();
        assert_eq!(syn_mss(&mut rest, 14, 1000), None);
        assert_eq!(rest, o);
        // A first fragment that cuts the TCP header: untouched.
        let (mut short, _) = testpkt::fragments(&syn, 24, 9);
        let o = short.clone();
        assert_eq!(syn_mss(&mut short, 14, 1000), None);
        assert_eq!(short, o);
        // UDP: untouched.
        let mut u = testpkt::udp(
            A,
            B,
            &[2, 4, 0x23, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 4, 0x23, 0],
        );
        let o = u.clone();
        assert_eq!(syn_mss(&mut u, 14, 536), None);
        assert_eq!(u, o);
        // A frame too short for an IPv4 header, an offset past it: no panic, nothing done.
        assert_eq!(syn_mss(&mut u[..20], 14, 536), None);
        assert_eq!(syn_mss(&mut u, 4000, 536), None);
    }
}
