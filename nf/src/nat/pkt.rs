//! The packet view NAT works on: an Ethernet frame carrying IPv4, parsed once into offsets
//! and the flow key, with typed accessors to the few fields NAT reads and rewrites. Parsing
//! checks every length before any access, so no accessor can panic afterwards; malformed
//! frames are refused with a reason from the drop table (IPv4 validity per RFC 1812 5.2.2).

use pollfwd_pipeline::DropReason;

/// Field offsets, relative to the start of their header.
mod field {
    pub const ETH_TYPE: usize = 12;
    pub const ETH_LEN: usize = 14;

    pub const IP_VER_IHL: usize = 0;
    pub const IP_TOTAL_LEN: usize = 2;
    pub const IP_ID: usize = 4;
    pub const IP_FRAG: usize = 6;
    pub const IP_PROTO: usize = 9;
    pub const IP_CSUM: usize = 10;
    pub const IP_SRC: usize = 12;
    pub const IP_DST: usize = 16;
    pub const IP_MIN_LEN: usize = 20;

    pub const L4_SPORT: usize = 0;
    pub const L4_DPORT: usize = 2;
    pub const UDP_CSUM: usize = 6;
    pub const UDP_LEN: usize = 8;
    pub const TCP_FLAGS: usize = 13;
    pub const TCP_CSUM: usize = 16;
    pub const TCP_LEN: usize = 20;
    pub const ICMP_TYPE: usize = 0;
    pub const ICMP_CODE: usize = 1;
    pub const ICMP_CSUM: usize = 2;
    pub const ICMP_ID: usize = 4;
    pub const ICMP_LEN: usize = 8;
}
pub use field::{ETH_LEN, ICMP_LEN, IP_MIN_LEN};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// TCP flag bits (RFC 793).
pub mod tcpflag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// What kind of ICMP message (RFC 792; the query/error split of RFC 5508 section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpKind {
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

pub fn icmp_kind(ty: u8) -> IcmpKind {
    match ty {
        8 | 13 | 15 | 17 => IcmpKind::QueryRequest,
        0 | 14 | 16 | 18 => IcmpKind::QueryReply,
        3 | 4 | 11 | 12 => IcmpKind::Error,
        _ => IcmpKind::Other,
    }
}

/// Fragment position of an IPv4 packet (RFC 791).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frag {
    /// Not a fragment.
    No,
    /// Offset 0 with more-fragments set: carries the L4 header.
    First,
    /// Offset > 0: no L4 header.
    NonFirst,
}

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

#[inline]
pub fn rd16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline]
pub fn rd32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline]
pub fn wr16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub fn wr32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// Parses an Ethernet/IPv4 frame. `Ok(None)`: not IPv4 (ARP and others pass untouched).
#[inline(always)]
pub fn parse(f: &[u8]) -> Result<Option<Pkt>, DropReason> {
    if f.len() < ETH_LEN {
        return Err(DropReason::Runt);
    }
    if rd16(f, field::ETH_TYPE) != ETHERTYPE_IPV4 {
        return Ok(None);
    }
    parse_ip(f, ETH_LEN).map(Some)
}

/// Parses the IPv4 packet at `l3` of `f` (also used for the packet embedded in an ICMP
/// error, where `truncated_ok` allows the total length to exceed what is present).
#[inline(always)]
fn parse_ip_hdr(f: &[u8], l3: usize, truncated_ok: bool) -> Result<(usize, usize), DropReason> {
    // RFC 1812 5.2.2: at least a minimal header, version 4, IHL >= 5, total length >= header.
    if f.len() < l3 + IP_MIN_LEN {
        return Err(DropReason::Ipv4Truncated);
    }
    let vi = f[l3 + field::IP_VER_IHL];
    if vi >> 4 != 4 {
        return Err(DropReason::Ipv4BadVersion);
    }
    let hl = (vi & 0x0f) as usize * 4;
    if hl < IP_MIN_LEN {
        return Err(DropReason::Ipv4BadIhl);
    }
    let total = rd16(f, l3 + field::IP_TOTAL_LEN) as usize;
    if total < hl {
        return Err(DropReason::Ipv4BadLength);
    }
    if f.len() < l3 + hl {
        return Err(DropReason::Ipv4Truncated);
    }
    let end = if truncated_ok {
        (l3 + total).min(f.len())
    } else {
        if f.len() < l3 + total {
            return Err(DropReason::Ipv4Truncated);
        }
        l3 + total
    };
    Ok((hl, end))
}

#[inline(always)]
fn parse_ip(f: &[u8], l3: usize) -> Result<Pkt, DropReason> {
    let (hl, end) = parse_ip_hdr(f, l3, false)?;
    let fw = rd16(f, l3 + field::IP_FRAG);
    let frag = match (fw & 0x1fff, fw & 0x2000 != 0) {
        (0, false) => Frag::No,
        (0, true) => Frag::First,
        _ => Frag::NonFirst,
    };
    let mut p = Pkt {
        l3,
        l4: l3 + hl,
        end,
        proto: f[l3 + field::IP_PROTO],
        src: rd32(f, l3 + field::IP_SRC),
        dst: rd32(f, l3 + field::IP_DST),
        sport: 0,
        dport: 0,
        frag,
        ip_id: rd16(f, l3 + field::IP_ID),
        l4_flags: 0,
        l4_code: 0,
    };
    if frag == Frag::NonFirst {
        return Ok(p);
    }
    let l4 = p.l4;
    let need = match p.proto {
        PROTO_TCP => field::TCP_LEN,
        PROTO_UDP => field::UDP_LEN,
        PROTO_ICMP => field::ICMP_LEN,
        _ => 0,
    };
    // A first fragment too short for its L4 header is the tiny-fragment attack (RFC 1858).
    if end < l4 + need {
        return Err(DropReason::Ipv4Truncated);
    }
    match p.proto {
        PROTO_TCP | PROTO_UDP => {
            p.sport = rd16(f, l4 + field::L4_SPORT);
            p.dport = rd16(f, l4 + field::L4_DPORT);
            if p.proto == PROTO_TCP {
                p.l4_flags = f[l4 + field::TCP_FLAGS];
            }
        }
        PROTO_ICMP => {
            p.l4_flags = f[l4 + field::ICMP_TYPE];
            p.l4_code = f[l4 + field::ICMP_CODE];
            if icmp_kind(p.l4_flags) != IcmpKind::Error {
                p.sport = rd16(f, l4 + field::ICMP_ID);
            }
        }
        _ => {}
    }
    Ok(p)
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

/// Parses the packet embedded in the ICMP error `p`. Only a first fragment (or whole packet)
/// with 8 bytes of TCP, UDP or ICMP query header can be matched to a session.
pub fn parse_inner(f: &[u8], p: &Pkt) -> Result<Inner, DropReason> {
    let l3 = p.l4 + ICMP_LEN;
    let f = &f[..p.end];
    let (hl, end) = parse_ip_hdr(f, l3, true)?;
    let l4 = l3 + hl;
    if end < l4 + 8 {
        return Err(DropReason::Ipv4Truncated);
    }
    if rd16(f, l3 + field::IP_FRAG) & 0x1fff != 0 {
        return Err(DropReason::NatUnsupported);
    }
    let proto = f[l3 + field::IP_PROTO];
    let mut i = Inner {
        l3,
        l4,
        end,
        proto,
        src: rd32(f, l3 + field::IP_SRC),
        dst: rd32(f, l3 + field::IP_DST),
        sport: 0,
        dport: 0,
        icmp_type: 0,
    };
    match proto {
        PROTO_TCP | PROTO_UDP => {
            i.sport = rd16(f, l4 + field::L4_SPORT);
            i.dport = rd16(f, l4 + field::L4_DPORT);
        }
        PROTO_ICMP => {
            i.icmp_type = f[l4 + field::ICMP_TYPE];
            if icmp_kind(i.icmp_type) == IcmpKind::Error {
                // RFC 1122 3.2.2: no ICMP error about an ICMP error.
                return Err(DropReason::NatUnsupported);
            }
            i.sport = rd16(f, l4 + field::ICMP_ID);
        }
        _ => return Err(DropReason::NatUnsupported),
    }
    Ok(i)
}

/// Rewrites that NAT applies, each keeping every checksum right incrementally.
pub mod rewrite {
    use super::{field, rd16, rd32, wr16, wr32};
    use crate::nat::csum::Delta;

    /// Sets the IPv4 source (`src = true`) or destination address of the header at `l3` and
    /// updates its header checksum. Returns the delta for checksums with a pseudo-header.
    #[inline]
    pub fn ip_addr(f: &mut [u8], l3: usize, src: bool, new: u32) -> Delta {
        let off = l3 + if src { field::IP_SRC } else { field::IP_DST };
        let old = rd32(f, off);
        wr32(f, off, new);
        let d = Delta::ZERO.addr(old, new);
        let c = l3 + field::IP_CSUM;
        wr16(f, c, d.apply(rd16(f, c)));
        d
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
        let off = l4
            + if src {
                field::L4_SPORT
            } else {
                field::L4_DPORT
            };
        let old = rd16(f, off);
        wr16(f, off, new);
        let mut outer = Delta::ZERO.word(old, new);
        let d = pseudo.word(old, new);
        if proto == super::PROTO_UDP {
            let c = l4 + field::UDP_CSUM;
            let oc = rd16(f, c);
            let nc = d.apply_udp(oc);
            wr16(f, c, nc);
            outer = outer.word(oc, nc);
        } else if avail >= field::TCP_CSUM + 2 {
            let c = l4 + field::TCP_CSUM;
            let oc = rd16(f, c);
            let nc = d.apply(oc);
            wr16(f, c, nc);
            outer = outer.word(oc, nc);
        }
        outer
    }

    /// Sets an ICMP query identifier and updates the ICMP checksum (no pseudo-header).
    /// Returns the delta of the words changed (identifier, checksum).
    #[inline]
    pub fn icmp_id(f: &mut [u8], l4: usize, new: u16) -> Delta {
        let off = l4 + field::ICMP_ID;
        let old = rd16(f, off);
        wr16(f, off, new);
        let c = l4 + field::ICMP_CSUM;
        let oc = rd16(f, c);
        let nc = Delta::ZERO.word(old, new).apply(oc);
        wr16(f, c, nc);
        Delta::ZERO.word(old, new).word(oc, nc)
    }

    /// Applies `d` to the ICMP checksum of the message at `l4`.
    #[inline]
    pub fn icmp_csum(f: &mut [u8], l4: usize, d: Delta) {
        let c = l4 + field::ICMP_CSUM;
        wr16(f, c, d.apply(rd16(f, c)));
    }

    /// The IPv4 header checksum word at `l3` (for deltas of an embedded header).
    #[inline]
    pub fn ip_csum(f: &[u8], l3: usize) -> u16 {
        rd16(f, l3 + field::IP_CSUM)
    }

    /// ICMP code at `l4`.
    #[inline]
    pub fn icmp_code(f: &[u8], l4: usize) -> u8 {
        f[l4 + field::ICMP_CODE]
    }
}
