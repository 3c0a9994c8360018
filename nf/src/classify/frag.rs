//! ACL semantics for IPv4 fragments.
//!
//! Only a datagram's first fragment carries the L4 header, so the ACL decides on it; later
//! fragments follow it. Per worker, a small direct-mapped memo remembers the ports of each
//! recent first fragment by (source, destination, protocol, IP id) — the reassembly key of
//! RFC 791 — for [`FRAG_TTL_S`] seconds, and a non-first fragment of the same datagram is
//! classified with those ports: it meets the same rule (same verdict, same class, counted on
//! the same rule) as its first fragment, so a rule that denies a port also denies the rest of
//! the datagram, and a rule that permits a port under a default deny lets the rest through.
//! A non-first fragment whose first fragment was not seen (out of order, or its memo entry was
//! overwritten or expired) has no ports: it is classified with ports 0, so it meets only rules
//! whose port ranges include 0 (protocol- and address-only rules, and the default).
//!
//! A TCP fragment at offset 1 (8 bytes) can only serve to overwrite the TCP header of the first
//! fragment on reassembly (the flags and window, RFC 1858): it is dropped as
//! `acl_tcp_frag_offset1`, as RFC 3128 section 4 recommends.
//!
//! IPv6 ([`FirstFragments6`]) follows the same rules with IPv6's reassembly key (source,
//! destination, fragment identification: RFC 8200 section 4.5) and remembers the first
//! fragment's upper-layer protocol with its ports: a later fragment's fragment header may name
//! an extension header (destination options) rather than TCP or UDP, so the later fragment is
//! classified with the first fragment's protocol and ports. Unseen first fragment: the later
//! fragment is classified with its fragment header's next header and ports 0. A fragment at
//! offset 8 bytes whose fragment header's next header is TCP is dropped as
//! `acl_tcp_frag_offset1`, as in IPv4.

use dpdk::PktMeta;
use dpdk::meta::flags;

use crate::fragmemo::{FragKey6, FragMemo};
use crate::wire::ipv4::Frag;
use crate::wire::{ipv4, ipv6, proto};

/// Lifetime of a memo entry, seconds (a datagram's fragments arrive within it).
pub const FRAG_TTL_S: u64 = 2;

/// Memo entries per worker.
pub const FRAG_MEMO: usize = 4096;

/// What the ACL does with a fragment before classifying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragPorts {
    /// Classify with these ports (the first fragment's, or its own for a first fragment).
    Ports(u16, u16),
    /// Non-first fragment of a datagram whose first fragment was not seen: ports 0.
    Unknown,
    /// RFC 3128: a TCP fragment at offset 1.
    TcpOffset1,
}

/// The per-worker memo of first fragments' ports.
pub struct FirstFragments {
    memo: crate::fragmemo::FragMemo<(u16, u16)>,
}

impl Default for FirstFragments {
    fn default() -> Self {
        FirstFragments {
            memo: crate::fragmemo::FragMemo::new(FRAG_MEMO),
        }
    }
}

impl FirstFragments {
    /// Looks at a parsed fragment (`meta.flags` has [`flags::FRAG`]) whose IPv4 header is
    /// `ip`, at TSC `now` (`ttl`: the memo's lifetime in TSC ticks): remembers a first
    /// fragment's ports, finds a later fragment's.
    #[inline]
    pub fn key(&mut self, meta: &PktMeta, ip: &[u8], now: u64, ttl: u64) -> FragPorts {
        let Some(hdr) = ip.get(..ipv4::MIN_HEADER_LEN) else {
            return FragPorts::Unknown;
        };
        let p = ipv4::Packet::new_unchecked(hdr);
        let k = crate::fragmemo::FragKey {
            src: meta.src_ip,
            dst: meta.dst_ip,
            id: p.ident(),
            proto: meta.proto,
            dir: false,
        };
        if meta.flags & flags::FRAG_NONFIRST == 0 {
            self.memo.put(k, now, (meta.src_port, meta.dst_port));
            return FragPorts::Ports(meta.src_port, meta.dst_port);
        }
        if k.proto == proto::TCP && p.flags_frag() & 0x1fff == 1 {
            return FragPorts::TcpOffset1;
        }
        match self.memo.get(&k, now, ttl) {
            Some((sp, dp)) => FragPorts::Ports(sp, dp),
            None => FragPorts::Unknown,
        }
    }
}

/// What the ACL classifies an IPv6 fragment with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frag6 {
    /// Upper-layer protocol and ports: the packet's own (a first fragment), the first
    /// fragment's (a later fragment whose first was seen), or the fragment header's next
    /// header and ports 0 (first fragment not seen).
    Flow(u8, u16, u16),
    /// A TCP fragment at offset 8 bytes (RFC 3128, as for IPv4).
    TcpOffset1,
}

/// The per-worker memo of IPv6 first fragments' protocol and ports.
pub struct FirstFragments6 {
    memo: FragMemo<(u8, u16, u16), FragKey6>,
}

impl Default for FirstFragments6 {
    fn default() -> Self {
        FirstFragments6 {
            memo: FragMemo::new(FRAG_MEMO),
        }
    }
}

impl FirstFragments6 {
    /// Looks at a valid IPv6 packet (`info`, from [`ipv6::validate`]) that is a fragment
    /// (`info.frag` is not [`Frag::No`]) at TSC `now` (`ttl`: the memo's lifetime in ticks).
    #[inline]
    pub fn key(&mut self, info: &ipv6::Info, now: u64, ttl: u64) -> Frag6 {
        let k = FragKey6 {
            src: info.src,
            dst: info.dst,
            id: info.frag_ident,
        };
        if info.frag != Frag::NonFirst {
            self.memo.put(k, now, (info.upper, info.sport, info.dport));
            return Frag6::Flow(info.upper, info.sport, info.dport);
        }
        if info.upper == proto::TCP && info.frag_offset == 8 {
            return Frag6::TcpOffset1;
        }
        match self.memo.get(&k, now, ttl) {
            Some((p, sp, dp)) => Frag6::Flow(p, sp, dp),
            None => Frag6::Flow(info.upper, 0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed fragment's metadata and IPv4 header: 10.0.0.1 -> 10.0.0.2, `proto`, IP id
    /// `id`, fragment offset `off` (8-byte units), ports as a first fragment would have them.
    fn frag(proto: u8, id: u16, off: u16, ports: (u16, u16)) -> (PktMeta, [u8; 20]) {
        let mut m = PktMeta::fresh(0, 0);
        m.src_ip = 0x0a00_0001;
        m.dst_ip = 0x0a00_0002;
        m.proto = proto;
        m.flags = flags::PARSED | flags::IPV4 | flags::FRAG;
        if off != 0 {
            m.flags |= flags::FRAG_NONFIRST;
        } else {
            (m.src_port, m.dst_port) = ports;
        }
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[4..6].copy_from_slice(&id.to_be_bytes());
        h[6..8].copy_from_slice(&(off | if off == 0 { 0x2000 } else { 0 }).to_be_bytes());
        h[9] = proto;
        (m, h)
    }

    #[test]
    fn later_fragments_take_the_first_fragments_ports() {
        let mut memo = FirstFragments::default();
        let (m, h) = frag(6, 7, 0, (40000, 22));
        assert_eq!(memo.key(&m, &h, 100, 50), FragPorts::Ports(40000, 22));
        let (m, h) = frag(6, 7, 185, (0, 0));
        assert_eq!(memo.key(&m, &h, 120, 50), FragPorts::Ports(40000, 22));
        // Another datagram (id), protocol or an expired entry: unknown.
        let (m, h) = frag(6, 8, 185, (0, 0));
        assert_eq!(memo.key(&m, &h, 120, 50), FragPorts::Unknown);
        let (m, h) = frag(17, 7, 185, (0, 0));
        assert_eq!(memo.key(&m, &h, 120, 50), FragPorts::Unknown);
        let (m, h) = frag(6, 7, 185, (0, 0));
        assert_eq!(memo.key(&m, &h, 150, 50), FragPorts::Unknown);
    }

    #[test]
    fn a_tcp_fragment_at_offset_one_is_refused() {
        let mut memo = FirstFragments::default();
        let (m, h) = frag(6, 9, 0, (1, 80));
        memo.key(&m, &h, 0, 50);
        let (m, h) = frag(6, 9, 1, (0, 0));
        assert_eq!(memo.key(&m, &h, 1, 50), FragPorts::TcpOffset1);
        // UDP at offset 1 is legal (its header is 8 bytes).
        let (m, h) = frag(17, 9, 1, (0, 0));
        assert_eq!(memo.key(&m, &h, 1, 50), FragPorts::Unknown);
    }

    /// What `ipv6::validate` gives for a fragment of 2001:db8::1 -> 2001:db8::2 with
    /// identification `id` at byte offset `off`, fragment header next header `nh`.
    fn info6(id: u32, off: u16, nh: u8, ports: (u16, u16)) -> ipv6::Info {
        let (sport, dport) = if off == 0 { ports } else { (0, 0) };
        ipv6::Info {
            payload_len: 100,
            hop_limit: 64,
            src: 0x2001_0db8 << 96 | 1,
            dst: 0x2001_0db8 << 96 | 2,
            upper: nh,
            upper_off: 48,
            hop_by_hop: false,
            has_frag_header: true,
            frag: if off == 0 {
                Frag::First
            } else {
                Frag::NonFirst
            },
            frag_offset: off,
            more_frags: off == 0,
            frag_ident: id,
            sport,
            dport,
        }
    }

    #[test]
    fn ipv6_later_fragments_take_the_first_fragments_protocol_and_ports() {
        let mut memo = FirstFragments6::default();
        assert_eq!(
            memo.key(&info6(7, 0, 17, (5000, 53)), 100, 50),
            Frag6::Flow(17, 5000, 53)
        );
        // The later fragment's fragment header names destination options: the first
        // fragment's protocol and ports still apply.
        assert_eq!(
            memo.key(&info6(7, 1232, 60, (0, 0)), 120, 50),
            Frag6::Flow(17, 5000, 53)
        );
        // Another datagram, or the entry expired: the fragment header's next header, ports 0.
        assert_eq!(
            memo.key(&info6(8, 1232, 17, (0, 0)), 120, 50),
            Frag6::Flow(17, 0, 0)
        );
        assert_eq!(
            memo.key(&info6(7, 1232, 17, (0, 0)), 150, 50),
            Frag6::Flow(17, 0, 0)
        );
        // TCP at offset 8 bytes is refused; UDP there is legal.
        assert_eq!(memo.key(&info6(9, 8, 6, (0, 0)), 1, 50), Frag6::TcpOffset1);
        assert_eq!(
            memo.key(&info6(9, 8, 17, (0, 0)), 1, 50),
            Frag6::Flow(17, 0, 0)
        );
    }
}
