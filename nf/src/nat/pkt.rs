//! The packet view NAT works on: an Ethernet frame carrying IPv4, parsed once into offsets
//! and the flow key NAT needs, and the rewrites NAT applies, each keeping every checksum right
//! incrementally. Validity is the wire module's IPv4 parser (RFC 1812 5.2.2,
//! [`ipv4::validate`], without the header checksum: NAT's incremental updates keep a wrong
//! checksum wrong); formats, offsets and checksums are the wire module's. Parsing checks every
//! length before any access, so no accessor can panic afterwards; malformed frames are refused
//! with a reason from the drop table.

use pollfwd_pipeline::DropReason;

use crate::wire::{ether, icmp, ipv4, tcp, udp};

pub use crate::wire::icmp::{Kind as IcmpKind, kind as icmp_kind};
pub use crate::wire::ipv4::Frag;
pub use crate::wire::proto::{ICMP as PROTO_ICMP, TCP as PROTO_TCP, UDP as PROTO_UDP};
/// TCP flag bits (RFC 793).
pub use crate::wire::tcp::flag as tcpflag;

/// Length of the ICMP header before an error's embedded packet.
pub const ICMP_LEN: usize = icmp::HEADER_LEN;

/// Offsets and flow key of a parsed frame. `l4` and the ports are valid only when
/// `frag != NonFirst`; for ICMP, `sport` holds the identifier of a query and `dport` 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pkt {
    pub l3: usize,
    pub l4: usize,
    /// End of the IPv4 packet (l3 + total length); bytes after it are link padding.
    pub end: usize,
    pub proto: u8,
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    pub frag: Frag,
    pub ip_id: u16,
    /// TCP flags, or the ICMP type.
    pub l4_flags: u8,
    /// ICMP code.
    pub l4_code: u8,
}

/// The packet embedded in an ICMP error (RFC 792: IP header + at least 64 bits of data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inner {
    pub l3: usize,
    pub l4: usize,
    /// End of the bytes present (the embedded packet is usually truncated).
    pub end: usize,
    pub proto: u8,
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    /// Embedded ICMP: its type.
    pub icmp_type: u8,
}

/// Parses an Ethernet/IPv4 frame. `Ok(None)`: not IPv4 (ARP and others pass untouched).
#[inline(always)]
pub fn parse(f: &[u8]) -> Result<Option<Pkt>, DropReason> {
    let eth = ether::Frame::new_checked(f)?;
    if eth.ethertype_raw() != ether::ethertype::IPV4 {
        return Ok(None);
    }
    parse_ip(f, ether::HEADER_LEN).map(Some)
}

/// Whether `f` is an (untagged) IPv6 frame: what [`parse`] leaves to others as `Ok(None)`
/// together with ARP and the rest.
#[inline]
pub fn is_ipv6(f: &[u8]) -> bool {
    f.get(ether::field::ETHERTYPE) == Some(&ether::ethertype::IPV6.to_be_bytes()[..])
}

#[inline(always)]
fn parse_ip(f: &[u8], l3: usize) -> Result<Pkt, DropReason> {
    let b = &f[l3..];
    // RFC 1812 5.2.2: a router verifies the header checksum; NAT is the first parser of a
    // chain `nat -> forward`, and later stages trust its PARSED flag.
    let lens = ipv4::validate(b, b.len(), true)?;
    let ip = ipv4::Packet::new_unchecked(b);
    let end = l3 + lens.total;
    let mut p = Pkt {
        l3,
        l4: l3 + lens.header,
        end,
        proto: ip.protocol(),
        src: ip.src(),
        dst: ip.dst(),
        sport: 0,
        dport: 0,
        frag: ip.frag(),
        ip_id: ip.ident(),
        l4_flags: 0,
        l4_code: 0,
    };
    if p.frag == Frag::NonFirst {
        return Ok(p);
    }
    let l4 = p.l4;
    let need = match p.proto {
        PROTO_TCP => tcp::HEADER_LEN,
        PROTO_UDP => udp::HEADER_LEN,
        PROTO_ICMP => icmp::HEADER_LEN,
        _ => 0,
    };
    // A first fragment too short for its L4 header is the tiny-fragment attack (RFC 1858).
    if end < l4 + need {
        return Err(DropReason::Ipv4Truncated);
    }
    let l4b = &f[l4..end];
    match p.proto {
        PROTO_TCP => {
            let t = tcp::Packet::new_unchecked(l4b);
            (p.sport, p.dport, p.l4_flags) = (t.src_port(), t.dst_port(), t.flags());
        }
        PROTO_UDP => {
            let u = udp::Packet::new_unchecked(l4b);
            (p.sport, p.dport) = (u.src_port(), u.dst_port());
        }
        PROTO_ICMP => {
            let i = icmp::Packet::new_unchecked(l4b);
            p.l4_flags = i.msg_type();
            p.l4_code = i.code();
            if icmp_kind(p.l4_flags) != IcmpKind::Error {
                p.sport = i.ident();
            }
        }
        _ => {}
    }
    Ok(p)
}

/// Parses the packet embedded in the ICMP error `p`. Only a first fragment (or whole packet)
/// with 8 bytes of TCP, UDP or ICMP query header can be matched to a session.
pub fn parse_inner(f: &[u8], p: &Pkt) -> Result<Inner, DropReason> {
    let l3 = p.l4 + ICMP_LEN;
    let f = &f[..p.end];
    // The embedded datagram is usually cut short: its total length may exceed what is here.
    let b = f.get(l3..).unwrap_or_default();
    let lens = ipv4::check_header(b, b.len())?;
    let end = (l3 + lens.total).min(f.len());
    let l4 = l3 + lens.header;
    if end < l4 + 8 {
        return Err(DropReason::Ipv4Truncated);
    }
    let ip = ipv4::Packet::new_unchecked(b);
    if ip.frag_offset() != 0 {
        return Err(DropReason::NatUnsupported);
    }
    let proto = ip.protocol();
    let mut i = Inner {
        l3,
        l4,
        end,
        proto,
        src: ip.src(),
        dst: ip.dst(),
        sport: 0,
        dport: 0,
        icmp_type: 0,
    };
    match proto {
        PROTO_TCP | PROTO_UDP => {
            // The ports are the first two fields of both.
            let u = udp::Packet::new_unchecked(&f[l4..end]);
            (i.sport, i.dport) = (u.src_port(), u.dst_port());
        }
        PROTO_ICMP => {
            let m = icmp::Packet::new_unchecked(&f[l4..end]);
            i.icmp_type = m.msg_type();
            if icmp_kind(i.icmp_type) == IcmpKind::Error {
                // RFC 1122 3.2.2: no ICMP error about an ICMP error.
                return Err(DropReason::NatUnsupported);
            }
            i.sport = m.ident();
        }
        _ => return Err(DropReason::NatUnsupported),
    }
    Ok(i)
}

/// The rewrites NAT applies (shared with forward's ICMP errors): [`crate::wire::rewrite`].
pub use crate::wire::rewrite;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_ipv4_frame;
    use crate::wire::checksum::tests::rfc1071;
    use crate::wire::testframe::udp_frame;

    /// NAT's parse and the shared flow-key parse run the same validity parser: on every
    /// one-byte mutation of a frame's headers (checksum kept right, and not) and every
    /// truncation, they fail with the same reason (a wrong header checksum included), except
    /// where NAT is documented to differ (it passes non-IPv4 frames and refuses a first fragment
    /// too short for its L4 header), and agree on the flow key when both accept.
    #[test]
    fn same_drop_reasons_as_the_shared_parser() {
        let base = udp_frame();
        let mut cases = vec![base.clone()];
        for pos in 0..42 {
            for v in [
                0u8, 1, 0x06, 0x08, 0x11, 0x20, 0x44, 0x45, 0x46, 0x4f, 0x55, 0xff,
            ] {
                let mut f = base.clone();
                f[pos] = v;
                cases.push(f.clone());
                let hl = ((f[14] & 0xf) as usize * 4).clamp(20, f.len() - 14);
                f[24..26].copy_from_slice(&[0, 0]);
                let c = rfc1071(&f[14..14 + hl]);
                f[24..26].copy_from_slice(&c.to_be_bytes());
                cases.push(f);
            }
        }
        for cut in 0..base.len() {
            cases.push(base[..cut].to_vec());
        }
        let (mut same_err, mut both_ok) = (0, 0);
        for f in &cases {
            let nat = parse(f);
            match parse_ipv4_frame(f, f.len()) {
                Err(DropReason::NotIpv4 | DropReason::VlanUnknown) => {
                    assert_eq!(nat, Ok(None), "{f:02x?}")
                }
                Err(r) => {
                    assert_eq!(nat, Err(r), "{f:02x?}");
                    same_err += 1;
                }
                Ok(p) => match nat {
                    Ok(Some(n)) => {
                        assert_eq!((n.l3 as u16, n.l4 as u16), (p.l3_off, p.l4_off));
                        assert_eq!((n.src, n.dst, n.proto), (p.src_ip, p.dst_ip, p.proto));
                        if n.proto != PROTO_ICMP {
                            assert_eq!((n.sport, n.dport), (p.src_port, p.dst_port));
                        }
                        both_ok += 1;
                    }
                    Err(DropReason::Ipv4Truncated) => {
                        assert!(l4_short(f), "{f:02x?}");
                    }
                    other => panic!("{other:?} for {f:02x?}"),
                },
            }
        }
        assert!(same_err > 100 && both_ok > 50, "{same_err} {both_ok}");
        assert!(
            cases
                .iter()
                .any(|f| parse(f) == Err(DropReason::Ipv4BadChecksum)),
            "some mutation keeps the header sane but breaks its checksum"
        );
    }

    /// Whether the L4 header of a valid first fragment is shorter than NAT needs.
    fn l4_short(f: &[u8]) -> bool {
        let ip = ipv4::Packet::new_unchecked(&f[14..]);
        let end = 14 + ip.total_len() as usize;
        let need = match ip.protocol() {
            PROTO_TCP => tcp::HEADER_LEN,
            PROTO_UDP => udp::HEADER_LEN,
            PROTO_ICMP => icmp::HEADER_LEN,
            _ => 0,
        };
        ip.frag() != Frag::NonFirst && end < 14 + ip.header_len() + need
    }
}
