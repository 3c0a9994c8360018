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

use dpdk::PktMeta;
use dpdk::meta::flags;

use crate::wire::{ipv4, proto};

/// Lifetime of a memo entry, seconds (a datagram's fragments arrive within it).
pub const FRAG_TTL_S: u64 = 2;

/// Memo entries per worker (a power of two).
pub const FRAG_MEMO: usize = 4096;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    src: u32,
    dst: u32,
    id: u16,
    proto: u8,
    used: bool,
    sport: u16,
    dport: u16,
    /// TSC when the first fragment was seen.
    time: u64,
}

/// What the ACL does with a fragment before classifying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragKey {
    /// Classify with these ports (the first fragment's, or its own for a first fragment).
    Ports(u16, u16),
    /// Non-first fragment of a datagram whose first fragment was not seen: ports 0.
    Unknown,
    /// RFC 3128: a TCP fragment at offset 1.
    TcpOffset1,
}

/// The per-worker memo of first fragments' ports.
pub struct FragMemo {
    e: Box<[Entry]>,
}

impl Default for FragMemo {
    fn default() -> Self {
        FragMemo {
            e: vec![Entry::default(); FRAG_MEMO].into_boxed_slice(),
        }
    }
}

#[inline]
fn slot(src: u32, dst: u32, id: u16, proto: u8) -> usize {
    let k = ((src as u64) << 32 | dst as u64) ^ ((id as u64) << 8 | proto as u64).rotate_left(29);
    (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize & (FRAG_MEMO - 1)
}

impl FragMemo {
    /// Looks at a parsed fragment (`meta.flags` has [`flags::FRAG`]) whose IPv4 header is
    /// `ip`, at TSC `now` (`ttl`: the memo's lifetime in TSC ticks): remembers a first
    /// fragment's ports, finds a later fragment's.
    #[inline]
    pub fn key(&mut self, meta: &PktMeta, ip: &[u8], now: u64, ttl: u64) -> FragKey {
        let Some(hdr) = ip.get(..ipv4::MIN_HEADER_LEN) else {
            return FragKey::Unknown;
        };
        let p = ipv4::Packet::new_unchecked(hdr);
        let id = p.ident();
        let (src, dst, proto) = (meta.src_ip, meta.dst_ip, meta.proto);
        let i = slot(src, dst, id, proto);
        if meta.flags & flags::FRAG_NONFIRST == 0 {
            self.e[i] = Entry {
                src,
                dst,
                id,
                proto,
                used: true,
                sport: meta.src_port,
                dport: meta.dst_port,
                time: now,
            };
            return FragKey::Ports(meta.src_port, meta.dst_port);
        }
        if proto == proto::TCP && p.flags_frag() & 0x1fff == 1 {
            return FragKey::TcpOffset1;
        }
        let e = &self.e[i];
        if e.used
            && e.src == src
            && e.dst == dst
            && e.id == id
            && e.proto == proto
            && now.wrapping_sub(e.time) < ttl
        {
            FragKey::Ports(e.sport, e.dport)
        } else {
            FragKey::Unknown
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
        let mut memo = FragMemo::default();
        let (m, h) = frag(6, 7, 0, (40000, 22));
        assert_eq!(memo.key(&m, &h, 100, 50), FragKey::Ports(40000, 22));
        let (m, h) = frag(6, 7, 185, (0, 0));
        assert_eq!(memo.key(&m, &h, 120, 50), FragKey::Ports(40000, 22));
        // Another datagram (id), protocol or an expired entry: unknown.
        let (m, h) = frag(6, 8, 185, (0, 0));
        assert_eq!(memo.key(&m, &h, 120, 50), FragKey::Unknown);
        let (m, h) = frag(17, 7, 185, (0, 0));
        assert_eq!(memo.key(&m, &h, 120, 50), FragKey::Unknown);
        let (m, h) = frag(6, 7, 185, (0, 0));
        assert_eq!(memo.key(&m, &h, 150, 50), FragKey::Unknown);
    }

    #[test]
    fn a_tcp_fragment_at_offset_one_is_refused() {
        let mut memo = FragMemo::default();
        let (m, h) = frag(6, 9, 0, (1, 80));
        memo.key(&m, &h, 0, 50);
        let (m, h) = frag(6, 9, 1, (0, 0));
        assert_eq!(memo.key(&m, &h, 1, 50), FragKey::TcpOffset1);
        // UDP at offset 1 is legal (its header is 8 bytes).
        let (m, h) = frag(17, 9, 1, (0, 0));
        assert_eq!(memo.key(&m, &h, 1, 50), FragKey::Unknown);
    }
}
