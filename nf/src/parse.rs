//! The shared L2/L3/L4 parser: Ethernet II + IPv4 validity checks (RFC 1812 section 5.2.2) and
//! the flow key, written into [`PktMeta`] so that every later stage (classify, NAT, policer,
//! forward) reuses one parse.
//!
//! Call [`parse_ipv4`] on a packet; on success `meta.flags` has [`flags::PARSED`] and
//! [`flags::IPV4`], and `l3_off`, `l4_off`, `src_ip`, `dst_ip`, `proto`, `src_port`,
//! `dst_port` are filled in (addresses in host byte order). A stage that finds `PARSED` already
//! set may skip the parse. On failure the packet should be dropped with the returned reason.
//!
//! ARP frames come back as `Err(DropReason::NotIpv4)`: stages placed before `forward` should
//! let them `Continue` (forward answers ARP), not drop them.
//!
//! Flow key conventions:
//! - TCP, UDP, SCTP, UDP-Lite: the L4 ports (0 when the first 4 bytes of L4 are not present).
//! - ICMP: `src_port` = the query identifier for query messages (echo, timestamp, information,
//!   address mask: types 0, 8, 13, 14, 15, 16, 17, 18), 0 otherwise; `dst_port` =
//!   `type << 8 | code`.
//! - Non-first fragments ([`flags::FRAG_NONFIRST`]): no L4 header, ports 0.

use dpdk::meta::flags;
use dpdk::{Mbuf, PktMeta};
use pollfwd_pipeline::DropReason;

/// Ethernet II header length.
pub const ETH_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Minimum IPv4 header (RFC 791).
pub const IPV4_MIN_HDR: usize = 20;

/// IP protocol numbers the parser knows.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const SCTP: u8 = 132;
    pub const UDPLITE: u8 = 136;
}

/// Byte offsets inside the IPv4 header (RFC 791 section 3.1).
pub mod ipv4_field {
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: core::ops::Range<usize> = 2..4;
    pub const FLAGS_FRAG: core::ops::Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTO: usize = 9;
    pub const CHECKSUM: core::ops::Range<usize> = 10..12;
    pub const SRC: core::ops::Range<usize> = 12..16;
    pub const DST: core::ops::Range<usize> = 16..20;
}

/// What a successful parse found (the fields it writes into [`PktMeta`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parsed {
    pub l3_off: u16,
    pub l4_off: u16,
    pub src_ip: u32,
    pub dst_ip: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    pub flags: u16,
}

impl Parsed {
    /// Writes the parse into the packet metadata (other fields untouched).
    #[inline]
    pub fn write(&self, meta: &mut PktMeta) {
        meta.l3_off = self.l3_off;
        meta.l4_off = self.l4_off;
        meta.src_ip = self.src_ip;
        meta.dst_ip = self.dst_ip;
        meta.src_port = self.src_port;
        meta.dst_port = self.dst_port;
        meta.proto = self.proto;
        meta.flags = (meta.flags & !(flags::FRAG | flags::FRAG_NONFIRST)) | self.flags;
    }
}

/// The EtherType of a frame of at least 14 bytes.
#[inline]
pub fn ethertype(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[12], frame[13]])
}

/// One's-complement sum check of an IPv4 header (RFC 1071): true when the header, checksum
/// field included, sums to 0xffff. `hdr.len()` is a multiple of 4 (IHL * 4).
///
/// One's-complement addition is byte-order independent (RFC 1071 section 2(B)), so the words
/// are added in native order, 32 bits at a time into a 64-bit accumulator. The folded sum is
/// 0xffff exactly when that plain sum is a non-zero multiple of 0xffff (2^16 = 1 mod 0xffff:
/// folding keeps the residue, and folds of a non-zero sum end in 1..=0xffff); a remainder by a
/// constant is a multiply and a shift, fewer dependent steps than the folds (measured in the
/// forward stage: 2 cycles/packet, docs/performance.md).
#[inline]
pub fn ipv4_header_checksum_ok(hdr: &[u8]) -> bool {
    let sum = if let Ok(h) = <&[u8; 20]>::try_from(hdr) {
        // The common case, no options: five 32-bit words.
        let w = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
        w(0) + w(4) + w(8) + w(12) + w(16)
    } else {
        sum32(hdr)
    };
    sum != 0 && ones_sum_is_zero(sum)
}

/// Whether a plain sum of 32-bit words folds to 0xffff in one's complement, i.e. is a
/// multiple of 0xffff (zero included: callers rule it out where it matters). A divisibility
/// test by an odd constant is one multiply by its inverse modulo 2^64 and a compare
/// (Granlund and Montgomery, "Division by invariant integers using multiplication", 1994),
/// where `%` costs a widening multiply and three more steps.
#[inline(always)]
pub fn ones_sum_is_zero(sum: u64) -> bool {
    sum.wrapping_mul(INV_FFFF) <= u64::MAX / 0xffff
}

/// The inverse of 0xffff modulo 2^64 (Newton's iteration doubles the correct low bits).
const INV_FFFF: u64 = {
    let d: u64 = 0xffff;
    let mut x: u64 = d; // correct to 3 bits for any odd d
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(d.wrapping_mul(x)));
        i += 1;
    }
    x
};

/// The checksum to store in an IPv4 header whose checksum field is zero (or is to be
/// replaced): one's complement of the one's-complement sum of the header words (RFC 791).
pub fn ipv4_header_checksum(hdr: &[u8]) -> u16 {
    let mut s = sum32(&hdr[..ipv4_field::CHECKSUM.start]);
    s += sum32(&hdr[ipv4_field::CHECKSUM.end..]);
    // Native-order fold of a byte-aligned sum: convert back to big-endian for the field.
    let v = !fold(s);
    u16::from_be(v)
}

#[inline]
fn sum32(b: &[u8]) -> u64 {
    let mut s = 0u64;
    let mut chunks = b.chunks_exact(4);
    for c in &mut chunks {
        s += u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let r = chunks.remainder();
    if r.len() >= 2 {
        s += u16::from_ne_bytes([r[0], r[1]]) as u64;
    }
    s
}

#[inline]
fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Parses and validates an Ethernet II + IPv4 frame. `data` is the frame's first segment,
/// `frame_len` the whole frame's length (equal to `data.len()` for single-segment mbufs).
///
/// Checks, each with its own drop reason (RFC 1812 section 5.2.2, "IP Header Validation"):
/// 1. the frame holds an Ethernet header (`runt`) and is IPv4 (`not_ipv4`);
/// 2. the link-layer length holds the minimum IPv4 header, 20 bytes (`ipv4_truncated`);
/// 3. the version number is 4 (`ipv4_bad_version`);
/// 4. the header length is at least 20 bytes (`ipv4_bad_ihl`) and within the frame
///    (`ipv4_truncated`);
/// 5. the total length is at least the header length (`ipv4_bad_length`) and the link layer
///    holds the total length (`ipv4_truncated`);
/// 6. the header checksum is correct (`ipv4_bad_checksum`).
///
/// RFC 1812 checks the checksum second; it is checked last here because it can only be
/// computed once the header length is known to be sane, and a frame failing several checks
/// counts under the first failing one in the order above.
#[inline(always)]
pub fn parse_ipv4_frame(data: &[u8], frame_len: usize) -> Result<Parsed, DropReason> {
    if data.len() < ETH_LEN {
        return Err(DropReason::Runt);
    }
    if ethertype(data) != ETHERTYPE_IPV4 {
        return Err(DropReason::NotIpv4);
    }
    let ip = &data[ETH_LEN..];
    let l3_len = frame_len.max(data.len()) - ETH_LEN;
    if ip.len() < IPV4_MIN_HDR {
        return Err(if l3_len >= IPV4_MIN_HDR {
            DropReason::MultiSeg
        } else {
            DropReason::Ipv4Truncated
        });
    }
    let ver_ihl = ip[ipv4_field::VER_IHL];
    if ver_ihl >> 4 != 4 {
        return Err(DropReason::Ipv4BadVersion);
    }
    let hlen = ((ver_ihl & 0x0f) as usize) * 4;
    if hlen < IPV4_MIN_HDR {
        return Err(DropReason::Ipv4BadIhl);
    }
    if hlen > l3_len {
        return Err(DropReason::Ipv4Truncated);
    }
    if hlen > ip.len() {
        return Err(DropReason::MultiSeg);
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if total < hlen {
        return Err(DropReason::Ipv4BadLength);
    }
    if total > l3_len {
        return Err(DropReason::Ipv4Truncated);
    }
    if !ipv4_header_checksum_ok(&ip[..hlen]) {
        return Err(DropReason::Ipv4BadChecksum);
    }
    let proto = ip[ipv4_field::PROTO];
    let ff = u16::from_be_bytes([ip[6], ip[7]]);
    let frag_off = ff & 0x1fff;
    let more = ff & 0x2000 != 0;
    let mut fl = flags::PARSED | flags::IPV4;
    if frag_off != 0 || more {
        fl |= flags::FRAG;
    }
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let (mut sport, mut dport) = (0u16, 0u16);
    if frag_off != 0 {
        fl |= flags::FRAG_NONFIRST;
    } else {
        // L4 bytes present in both the IP datagram and the first segment.
        let l4 = &ip[hlen..total.min(ip.len())];
        match proto {
            proto::TCP | proto::UDP | proto::SCTP | proto::UDPLITE if l4.len() >= 4 => {
                sport = u16::from_be_bytes([l4[0], l4[1]]);
                dport = u16::from_be_bytes([l4[2], l4[3]]);
            }
            proto::ICMP if l4.len() >= 2 => {
                dport = u16::from_be_bytes([l4[0], l4[1]]);
                if matches!(l4[0], 0 | 8 | 13..=18) && l4.len() >= 6 {
                    sport = u16::from_be_bytes([l4[4], l4[5]]);
                }
            }
            _ => {}
        }
    }
    Ok(Parsed {
        l3_off: ETH_LEN as u16,
        l4_off: (ETH_LEN + hlen) as u16,
        src_ip: src,
        dst_ip: dst,
        src_port: sport,
        dst_port: dport,
        proto,
        flags: fl,
    })
}

/// The forward stage's fast-path acceptance ([`ipv4_plain_words`]) as a function of a frame,
/// returning the addresses (host order) it would route by: the mutation test checks that
/// whatever this accepts, [`parse_ipv4_frame`] accepts with the same addresses, and that
/// every plain frame the parser accepts is accepted.
#[cfg(test)]
fn ipv4_fast(data: &[u8], frame_len: usize) -> Option<(u32, u32)> {
    let h: &[u8; ETH_LEN + IPV4_MIN_HDR] = data.get(..ETH_LEN + IPV4_MIN_HDR)?.try_into().ok()?;
    let w = Ipv4Words::load(h);
    if !ipv4_plain_words(w, frame_len.max(data.len())) {
        return None;
    }
    Some((((w.q22 >> 32) as u32).swap_bytes(), w.dst()))
}

/// The EtherType and the IPv4 header of a frame in four loads (little-endian words), from
/// which the forward stage's fast path takes every field it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Words {
    /// Bytes 12..14: the EtherType.
    pub ethertype: u16,
    /// Bytes 14..22: version/IHL, TOS, total length, identification, flags/fragment offset.
    pub q14: u64,
    /// Bytes 22..30: TTL, protocol, header checksum, source address.
    pub q22: u64,
    /// Bytes 30..34: the destination address.
    pub w30: u32,
}

impl Ipv4Words {
    #[inline(always)]
    pub fn load(h: &[u8; ETH_LEN + IPV4_MIN_HDR]) -> Ipv4Words {
        let q = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
        Ipv4Words {
            ethertype: u16::from_le_bytes([h[12], h[13]]),
            q14: q(14),
            q22: q(22),
            w30: u32::from_le_bytes([h[30], h[31], h[32], h[33]]),
        }
    }

    /// The TTL.
    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        self.q22 as u8
    }

    /// First octet of the source address.
    #[inline(always)]
    pub fn src_octet(&self) -> u8 {
        (self.q22 >> 32) as u8
    }

    /// First octet of the destination address.
    #[inline(always)]
    pub fn dst_octet(&self) -> u8 {
        self.w30 as u8
    }

    /// The destination address, host order.
    #[inline(always)]
    pub fn dst(&self) -> u32 {
        self.w30.swap_bytes()
    }

    /// Bytes 22..26 (TTL, protocol, checksum) as one little-endian word.
    #[inline(always)]
    pub fn ttl_word(&self) -> u32 {
        self.q22 as u32
    }
}

/// The plain-IPv4 test of the forward stage's fast path on a frame of `frame_len` bytes:
/// EtherType 0x0800, version 4 and IHL 5, 20 <= total length <= `frame_len` - 14, and a
/// correct header checksum; anything else goes to [`parse_ipv4_frame`], which accepts it
/// (options...) or gives the exact reason. The header sums as two 64-bit words and one 32-bit word
/// added with end-around carries: 2^32 and 2^64 are 1 modulo 0xffff, so the total is
/// congruent to the sum of the five 32-bit words. The version byte makes the sum non-zero,
/// so the divisibility test alone decides.
#[inline(always)]
pub fn ipv4_plain_words(w: Ipv4Words, frame_len: usize) -> bool {
    // EtherType 0x0800 (bytes 08 00) and version 4 / IHL 5.
    let head = (w.ethertype == 0x0008) & (w.q14 as u8 == 0x45);
    let total = ((w.q14 >> 16) as u16).swap_bytes() as usize;
    let (s, c1) = w.q14.overflowing_add(w.q22);
    let (s, c2) = s.overflowing_add(w.w30 as u64);
    // After a carry the wrapped sum is far below 2^64 - 2: no further carry.
    let sum = s + c1 as u64 + c2 as u64;
    head & (total >= IPV4_MIN_HDR) & (total + ETH_LEN <= frame_len) && ones_sum_is_zero(sum)
}

/// Parses a packet's Ethernet + IPv4 headers (see [`parse_ipv4_frame`]) and fills its
/// [`PktMeta`]. Returns the reason to drop it with when it is not a valid IPv4 packet.
#[inline]
pub fn parse_ipv4(m: &mut Mbuf) -> Result<(), DropReason> {
    let p = parse_ipv4_frame(m.data(), m.pkt_len() as usize)?;
    p.write(m.meta_mut());
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Independent reference: RFC 1071's straightforward big-endian 16-bit sum.
    pub(crate) fn rfc1071(b: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            s += w as u32;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    /// A UDP/IPv4 frame: 02:..:01 -> 02:..:02, 10.0.0.1:1234 -> 192.0.2.9:80, TTL 64,
    /// 8 bytes of payload, correct checksum (computed by hand: 0x1fe5... recomputed below).
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

    #[test]
    fn fast_check_accepts_only_what_the_parser_accepts() {
        // Every single-byte change (to several values) of the first 40 bytes of a valid frame,
        // and every frame length: whatever the fast check accepts the full parser accepts with
        // the same addresses; and every frame the parser accepts with IHL 5 (and the header in
        // the first segment) the fast check accepts too.
        let base = udp_frame();
        let mut cases = vec![(base.clone(), base.len())];
        for pos in 0..40 {
            for v in [0u8, 1, 0x45, 0x46, 0x08, 0x80, 0xff] {
                let mut f = base.clone();
                f[pos] = v;
                cases.push((f.clone(), f.len()));
                // Keep the checksum right so later checks are reached too.
                if (14..34).contains(&pos) {
                    f[24..26].copy_from_slice(&[0, 0]);
                    let c = rfc1071(&f[14..34]);
                    f[24..26].copy_from_slice(&c.to_be_bytes());
                    cases.push((f.clone(), f.len()));
                }
            }
        }
        for cut in 0..base.len() {
            cases.push((base[..cut].to_vec(), cut));
            cases.push((base[..cut].to_vec(), base.len())); // rest in later segments
        }
        let mut accepted = 0;
        for (f, len) in &cases {
            let fast = ipv4_fast(f, *len);
            let full = parse_ipv4_frame(f, *len);
            if let Some((s, d)) = fast {
                let p = full
                    .as_ref()
                    .expect("fast accepted what the parser refuses");
                assert_eq!((p.src_ip, p.dst_ip), (s, d));
                accepted += 1;
            } else if let Ok(p) = &full {
                assert!(
                    p.l4_off != (ETH_LEN + IPV4_MIN_HDR) as u16 || f.len() < ETH_LEN + 20,
                    "fast refused a plain IPv4 frame {f:02x?}"
                );
            }
        }
        assert!(accepted > 100, "{accepted}");
    }

    #[test]
    fn ones_sum_divisibility_test_equals_remainder() {
        // Sums of five 32-bit words are below 5 * 2^32: every multiple of 0xffff around the
        // edges, its neighbours, and a pseudo-random spread.
        let mut cases: Vec<u64> = vec![0, 1, 0xfffe, 0xffff, 0x1_0000, 5 * u32::MAX as u64];
        for k in [
            1u64,
            2,
            3,
            0x1_0001,
            0x2_0000,
            5 * 0x1_0001 - 1,
            5 * 0x1_0001,
        ] {
            cases.extend([k * 0xffff - 1, k * 0xffff, k * 0xffff + 1]);
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(x % (5 * u32::MAX as u64));
            cases.push((x % (5 * 0x1_0001)) * 0xffff);
        }
        for s in cases {
            assert_eq!(ones_sum_is_zero(s), s % 0xffff == 0, "{s:#x}");
        }
    }

    #[test]
    fn checksum_matches_rfc1071_and_known_vector() {
        // The classic example header (Wikipedia / RFC 1071 style): checksum 0xb861.
        let hdr: [u8; 20] = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(rfc1071(&hdr), 0xb861);
        assert_eq!(ipv4_header_checksum(&hdr), 0xb861);
        let mut h = hdr;
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert!(ipv4_header_checksum_ok(&h));
        h[8] = 0x3f;
        assert!(!ipv4_header_checksum_ok(&h));
        // With options (IHL 6): both computations agree.
        let mut o = [0u8; 24];
        o[..20].copy_from_slice(&hdr);
        o[0] = 0x46;
        o[20..24].copy_from_slice(&[0x01, 0x01, 0x01, 0x00]);
        let c = ipv4_header_checksum(&o);
        assert_eq!(c, rfc1071(&o));
        o[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(ipv4_header_checksum_ok(&o));
    }

    #[test]
    fn good_udp_fills_the_flow_key() {
        let f = udp_frame();
        let p = parse_ipv4_frame(&f, f.len()).unwrap();
        assert_eq!(p.l3_off, 14);
        assert_eq!(p.l4_off, 34);
        assert_eq!(p.src_ip, 0x0a00_0001);
        assert_eq!(p.dst_ip, 0xc000_0209);
        assert_eq!((p.src_port, p.dst_port), (1234, 80));
        assert_eq!(p.proto, 17);
        assert_eq!(p.flags, flags::PARSED | flags::IPV4);
        // Ethernet padding after the datagram is fine.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(parse_ipv4_frame(&padded, padded.len()).unwrap(), p);
        let mut meta = PktMeta::default();
        p.write(&mut meta);
        assert_eq!(meta.dst_ip, 0xc000_0209);
        assert_eq!(meta.flags, flags::PARSED | flags::IPV4);
    }

    fn refix(f: &mut [u8]) {
        let hl = ((f[14] & 0xf) as usize * 4).clamp(20, f.len() - 14);
        f[24..26].copy_from_slice(&[0, 0]);
        let c = rfc1071(&f[14..14 + hl]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn each_rfc1812_check_has_its_reason() {
        let f = udp_frame();
        let chk = |f: &[u8]| parse_ipv4_frame(f, f.len()).unwrap_err();
        assert_eq!(chk(&f[..13]), DropReason::Runt);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(chk(&arp), DropReason::NotIpv4);
        assert_eq!(chk(&f[..14 + 19]), DropReason::Ipv4Truncated);
        let mut v = f.clone();
        v[14] = 0x65;
        refix(&mut v);
        assert_eq!(chk(&v), DropReason::Ipv4BadVersion);
        let mut ihl = f.clone();
        ihl[14] = 0x44;
        assert_eq!(chk(&ihl), DropReason::Ipv4BadIhl);
        let mut ihl_big = f.clone();
        ihl_big[14] = 0x4f; // 60-byte header in a 50-byte frame
        assert_eq!(chk(&ihl_big), DropReason::Ipv4Truncated);
        let mut tl = f.clone();
        tl[16..18].copy_from_slice(&19u16.to_be_bytes());
        refix(&mut tl);
        assert_eq!(chk(&tl), DropReason::Ipv4BadLength);
        let mut tl2 = f.clone();
        tl2[16..18].copy_from_slice(&37u16.to_be_bytes());
        refix(&mut tl2);
        assert_eq!(chk(&tl2), DropReason::Ipv4Truncated);
        let mut ck = f.clone();
        ck[25] ^= 1;
        assert_eq!(chk(&ck), DropReason::Ipv4BadChecksum);
        // A header in the second segment of a multi-segment frame.
        assert_eq!(
            parse_ipv4_frame(&f[..20], f.len()).unwrap_err(),
            DropReason::MultiSeg
        );
    }

    #[test]
    fn icmp_and_fragments() {
        let mut f = udp_frame();
        f[23] = 1; // ICMP
        f[34..42].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]); // echo request id 0x1234
        refix(&mut f);
        let p = parse_ipv4_frame(&f, f.len()).unwrap();
        assert_eq!((p.src_port, p.dst_port, p.proto), (0x1234, 0x0800, 1));
        f[34] = 3; // destination unreachable: no query id
        let p = parse_ipv4_frame(&f, f.len()).unwrap();
        assert_eq!((p.src_port, p.dst_port), (0, 0x0300));

        let mut fr = udp_frame();
        fr[20..22].copy_from_slice(&0x2000u16.to_be_bytes()); // MF, offset 0: first fragment
        refix(&mut fr);
        let p = parse_ipv4_frame(&fr, fr.len()).unwrap();
        assert_eq!(p.flags, flags::PARSED | flags::IPV4 | flags::FRAG);
        assert_eq!((p.src_port, p.dst_port), (1234, 80));
        fr[20..22].copy_from_slice(&0x0001u16.to_be_bytes()); // offset 8 bytes
        refix(&mut fr);
        let p = parse_ipv4_frame(&fr, fr.len()).unwrap();
        assert_eq!(
            p.flags,
            flags::PARSED | flags::IPV4 | flags::FRAG | flags::FRAG_NONFIRST
        );
        assert_eq!((p.src_port, p.dst_port), (0, 0));
    }

    #[test]
    fn short_l4_gives_zero_ports_not_a_panic() {
        let mut f = udp_frame();
        f.truncate(36); // 2 bytes of UDP
        f[16..18].copy_from_slice(&22u16.to_be_bytes());
        refix(&mut f);
        let p = parse_ipv4_frame(&f, f.len()).unwrap();
        assert_eq!((p.src_port, p.dst_port), (0, 0));
        // Every truncation of a valid frame parses or fails with a reason, never panics.
        let g = udp_frame();
        for n in 0..g.len() {
            let _ = parse_ipv4_frame(&g[..n], n);
        }
    }
}
