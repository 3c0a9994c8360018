//! The Internet checksum, once for every stage: the full one's-complement sum (RFC 1071), the
//! incremental update of RFC 1624 for changed 16- and 32-bit fields, and the pseudo-header
//! sums of TCP/UDP over IPv4 (RFC 768, RFC 793) and of the upper layers over IPv6 (RFC 8200
//! section 8.1).
//!
//! Two representations meet here. [`checksum`] and [`Delta`] work on big-endian 16-bit words,
//! as the RFCs write them. [`header_checksum`] and [`ipv4_header_checksum_ok`] add the
//! header's 32-bit words in native byte order into a 64-bit accumulator: one's-complement
//! addition does not depend on byte order (RFC 1071 section 2(B)), and four bytes per add is
//! what the parsers can afford per packet.

/// One's-complement sum check of an IPv4 header (RFC 1071): true when the header, checksum
/// field included, sums to 0xffff. `hdr.len()` is a multiple of 4 (IHL * 4).
///
/// The words are added in native order, 32 bits at a time into a 64-bit accumulator. The
/// folded sum is 0xffff exactly when that plain sum is a non-zero multiple of 0xffff (2^16 = 1
/// mod 0xffff: folding keeps the residue, and folds of a non-zero sum end in 1..=0xffff); a
/// remainder by a constant is a multiply and a shift, fewer dependent steps than the folds
/// (measured in the forward stage: 2 cycles/packet, docs/performance.md).
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

/// The checksum to store in a header (`hdr`, a whole number of 16-bit words) whose checksum
/// field, at `c`, is zero or is to be replaced: the one's complement of the one's-complement sum
/// of the header words, the checksum field left out (RFC 791 for IPv4:
/// `wire::ipv4::header_checksum`).
pub fn header_checksum(hdr: &[u8], c: std::ops::Range<usize>) -> u16 {
    let mut s = sum32(&hdr[..c.start]);
    s += sum32(&hdr[c.end..]);
    // Native-order fold of a byte-aligned sum: convert back to big-endian for the field.
    let v = !fold64(s);
    u16::from_be(v)
}

/// Plain sum of the native-order 32-bit words of `b` (a trailing 16-bit word included).
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
fn fold64(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

#[inline]
fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Full Internet checksum of `data` (RFC 1071: big-endian 16-bit words, an odd last byte
/// padded with zero) with an initial partial sum (e.g. [`pseudo_header`]); for packets the
/// stages originate and for tests, never on a translation path. A buffer whose checksum field
/// holds the right value sums to 0.
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut s = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        s += u16::from_be_bytes([c[0], c[1]]) as u32;
        if s > 0xffff_0000 {
            s = (s & 0xffff) + (s >> 16);
        }
    }
    if let [b] = chunks.remainder() {
        s += (*b as u32) << 8;
    }
    !fold(s)
}

/// Partial sum of the TCP/UDP pseudo-header (RFC 793 section 3.1, RFC 768): source and
/// destination addresses, protocol and L4 length, for [`checksum`]'s `initial`.
pub fn pseudo_header(src: u32, dst: u32, proto: u8, len: u16) -> u32 {
    (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto as u32 + len as u32
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source and destination
/// addresses (host order), the upper-layer packet length as 32 bits, and the next header (the
/// upper-layer protocol, not an extension header's), for [`checksum`]'s `initial`: UDP, TCP
/// and ICMPv6 (RFC 4443 section 2.3) over IPv6. At most 2^21, so [`checksum`] cannot overflow.
pub fn pseudo_header_v6(src: u128, dst: u128, next_header: u8, len: u32) -> u32 {
    let words = |a: u128| -> u32 { (0..8).map(|i| (a >> (16 * i)) as u16 as u32).sum() };
    words(src) + words(dst) + (len >> 16) + (len & 0xffff) + next_header as u32
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word it covers changed from `old` to
/// `new`: `HC' = ~(~HC + ~m + m')`, in one's-complement arithmetic. It equals a full
/// recomputation for every input, where the older RFC 1141 form (`HC' = HC + m - m'`) can give
/// 0xffff where a recomputation gives 0x0000 (RFC 1624 sections 3 and 4).
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    Delta::ZERO.word(old, new).apply(hc)
}

/// The one's-complement difference of a set of 16-bit word changes (RFC 1624 eqn. 3:
/// `HC' = ~(~HC + ~m + m')`), applied to any number of checksums that cover exactly those
/// words. A packet whose checksum was wrong before stays wrong after (the receiver still
/// detects the damage), and no other byte is read.
///
/// The sum of the changes is kept unfolded and folded once, when applied: one's-complement
/// sums do not depend on the grouping, and a sum of such terms folds to zero only when every
/// term is zero, so the checksum is the one a fold after every word would give. Each word adds
/// less than 2^17: a delta holds up to 32,768 word changes (a packet rewrite records a
/// handful).
#[derive(Debug, Clone, Copy, Default)]
pub struct Delta(u32);

impl Delta {
    pub const ZERO: Delta = Delta(0);

    /// Records that a 16-bit word changed from `old` to `new`.
    #[inline(always)]
    pub fn word(self, old: u16, new: u16) -> Delta {
        Delta(self.0 + (!old) as u32 + new as u32)
    }

    /// Records that a 32-bit field (two words, e.g. an IPv4 address) changed.
    #[inline(always)]
    pub fn addr(self, old: u32, new: u32) -> Delta {
        self.word((old >> 16) as u16, (new >> 16) as u16)
            .word(old as u16, new as u16)
    }

    /// Adds another delta (changes of other words covered by the same checksum).
    #[inline(always)]
    pub fn merge(self, o: Delta) -> Delta {
        Delta(self.0 + o.0)
    }

    /// The checksum `hc` updated for the recorded changes (RFC 1624 eqn. 3).
    #[inline(always)]
    pub fn apply(self, hc: u16) -> u16 {
        // At most 0xffff + 32,768 * 0x1fffe: below 2^32, and two folds bring it to 16 bits.
        !fold((!hc) as u32 + self.0)
    }

    /// The difference as a folded 16-bit one's-complement number (0 only for no change).
    fn folded(self) -> u16 {
        fold(self.0)
    }

    /// For a UDP checksum: zero means "no checksum" and stays zero (RFC 768); a computed zero
    /// is sent as 0xffff.
    #[inline]
    pub fn apply_udp(self, hc: u16) -> u16 {
        if hc == 0 {
            return 0;
        }
        match self.apply(hc) {
            0 => 0xffff,
            v => v,
        }
    }
}

/// Equal as differences: the same folded sum, however the words were grouped.
impl PartialEq for Delta {
    fn eq(&self, o: &Delta) -> bool {
        self.folded() == o.folded()
    }
}

impl Eq for Delta {}

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

    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Equal as one's-complement numbers (0x0000 and 0xffff are both zero).
    fn same(a: u16, b: u16) -> bool {
        a == b || (a == 0xffff && b == 0) || (a == 0 && b == 0xffff)
    }

    #[test]
    fn rfc1071_section3_example() {
        // RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (so the checksum
        // is its complement, 220d).
        let b = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&b, 0), !0xddf2);
        assert_eq!(rfc1071(&b), !0xddf2);
        // An odd length pads with a zero byte.
        assert_eq!(checksum(&b[..7], 0), rfc1071(&b[..7]));
        assert_eq!(checksum(&b[..7], 0), !0xddf2u16.wrapping_sub(0xf7));
    }

    #[test]
    fn known_ipv4_header_vector() {
        // The classic example header: checksum 0xb861.
        let hdr: [u8; 20] = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(rfc1071(&hdr), 0xb861);
        assert_eq!(checksum(&hdr, 0), 0xb861);
        assert_eq!(header_checksum(&hdr, 10..12), 0xb861);
        let mut h = hdr;
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert!(ipv4_header_checksum_ok(&h));
        assert_eq!(checksum(&h, 0), 0, "a correct header sums to zero");
        h[8] = 0x3f;
        assert!(!ipv4_header_checksum_ok(&h));
        // With options (IHL 6): every computation agrees.
        let mut o = [0u8; 24];
        o[..20].copy_from_slice(&hdr);
        o[0] = 0x46;
        o[20..24].copy_from_slice(&[0x01, 0x01, 0x01, 0x00]);
        let c = header_checksum(&o, 10..12);
        assert_eq!(c, rfc1071(&o));
        assert_eq!(c, checksum(&o, 0));
        o[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(ipv4_header_checksum_ok(&o));
    }

    #[test]
    fn rfc1624_section4_example() {
        // RFC 1624 section 4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000
        // (where RFC 1141's form gives 0xffff).
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
        assert_eq!(Delta::ZERO.word(0x5555, 0x3285).apply(0xdd2f), 0x0000);
    }

    #[test]
    fn update16_equals_the_explicit_eqn3_for_every_checksum() {
        // The Delta form against the equation written out, for every checksum value and a
        // spread of word changes: bit for bit (not only as one's-complement numbers).
        let eqn3 = |hc: u16, old: u16, new: u16| {
            let mut s = (!hc) as u32 + (!old) as u32 + new as u32;
            s = (s & 0xffff) + (s >> 16);
            s = (s & 0xffff) + (s >> 16);
            !(s as u16)
        };
        let mut r = Rng::new(7);
        for hc in 0..=0xffffu16 {
            for (o, n) in [(0u16, 0u16), (0xffff, 0), (0, 0xffff), (0x4011, 0x3f11)] {
                assert_eq!(update16(hc, o, n), eqn3(hc, o, n), "{hc:#x} {o:#x} {n:#x}");
            }
            let (o, n) = (r.next() as u16, r.next() as u16);
            assert_eq!(update16(hc, o, n), eqn3(hc, o, n), "{hc:#x} {o:#x} {n:#x}");
        }
    }

    #[test]
    fn incremental_matches_full_recompute_over_random_mutations() {
        let mut r = Rng::new(0x1234_5678_9abc_def0);
        for _ in 0..5000 {
            let len = 20 + (r.next() % 40) as usize * 2;
            let mut data: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
            let hc = checksum(&data, 0);
            let mut d = Delta::ZERO;
            // One to four 16-bit changes, and one 32-bit change.
            for _ in 0..1 + r.next() % 4 {
                let i = (r.next() as usize % (len / 2)) * 2;
                let old = u16::from_be_bytes([data[i], data[i + 1]]);
                let new = r.next() as u16;
                data[i..i + 2].copy_from_slice(&new.to_be_bytes());
                d = d.word(old, new);
            }
            let i = (r.next() as usize % (len / 4)) * 4;
            let old = u32::from_be_bytes(data[i..i + 4].try_into().unwrap());
            let new = r.next() as u32;
            data[i..i + 4].copy_from_slice(&new.to_be_bytes());
            let d = Delta::ZERO.addr(old, new).merge(d);
            let (a, b) = (d.apply(hc), checksum(&data, 0));
            assert!(same(a, b), "{a:04x} {b:04x}");
        }
    }

    #[test]
    fn native_order_header_sum_matches_rfc1071_on_random_headers() {
        let mut r = Rng::new(99);
        for _ in 0..5000 {
            let ihl = 5 + (r.next() % 11) as usize;
            let mut h: Vec<u8> = (0..ihl * 4).map(|_| r.next() as u8).collect();
            h[0] = 0x40 | ihl as u8;
            h[10..12].copy_from_slice(&[0, 0]);
            let c = header_checksum(&h, 10..12);
            assert_eq!(c, rfc1071(&h));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            assert!(ipv4_header_checksum_ok(&h));
            let i = r.next() as usize % h.len();
            h[i] ^= 1 << (r.next() % 8);
            assert!(!ipv4_header_checksum_ok(&h));
        }
    }

    #[test]
    fn pseudo_header_checksum_of_a_udp_datagram() {
        // 10.0.0.1:1234 -> 192.0.2.9:80, 4 bytes of payload: the checksum written with the
        // pseudo-header verifies (sums to zero) and matches the reference over the
        // explicit pseudo-header bytes.
        let (src, dst) = (0x0a00_0001u32, 0xc000_0209u32);
        let mut u = vec![0x04, 0xd2, 0x00, 0x50, 0x00, 12, 0, 0, 1, 2, 3, 4];
        let c = checksum(&u, pseudo_header(src, dst, 17, 12));
        let mut explicit = Vec::new();
        explicit.extend_from_slice(&src.to_be_bytes());
        explicit.extend_from_slice(&dst.to_be_bytes());
        explicit.extend_from_slice(&[0, 17, 0, 12]);
        explicit.extend_from_slice(&u);
        assert_eq!(c, rfc1071(&explicit));
        u[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&u, pseudo_header(src, dst, 17, 12)), 0);
    }

    #[test]
    fn ipv6_pseudo_header_equals_the_explicit_bytes() {
        // RFC 8200 section 8.1's layout written out (src, dst, 32-bit length, three zero
        // bytes, next header) then the segment, against the partial sum, for spread values.
        let mut r = Rng::new(0x6666);
        for _ in 0..2000 {
            let (src, dst) = (
                (r.next() as u128) << 64 | r.next() as u128,
                (r.next() as u128) << 64 | r.next() as u128,
            );
            let len = (r.next() % 200) as usize;
            let seg: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
            let nh = r.next() as u8;
            let big = if r.next() & 1 == 0 { 0x1_0000 } else { 0 };
            let l32 = len as u32 + big;
            let mut explicit = Vec::new();
            explicit.extend_from_slice(&src.to_be_bytes());
            explicit.extend_from_slice(&dst.to_be_bytes());
            explicit.extend_from_slice(&l32.to_be_bytes());
            explicit.extend_from_slice(&[0, 0, 0, nh]);
            explicit.extend_from_slice(&seg);
            assert_eq!(
                checksum(&seg, pseudo_header_v6(src, dst, nh, l32)),
                rfc1071(&explicit)
            );
        }
        let all_ones = pseudo_header_v6(u128::MAX, u128::MAX, 0xff, u32::MAX);
        assert!(all_ones < 1 << 21);
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
        let mut r = Rng::new(0x2545_f491_4f6c_dd1d);
        for _ in 0..200_000 {
            let x = r.next();
            cases.push(x % (5 * u32::MAX as u64));
            cases.push((x % (5 * 0x1_0001)) * 0xffff);
        }
        for s in cases {
            assert_eq!(ones_sum_is_zero(s), s % 0xffff == 0, "{s:#x}");
        }
    }

    #[test]
    fn udp_zero_checksum_stays_zero() {
        let d = Delta::ZERO.addr(0x0a000001, 0xc6336401).word(1234, 40000);
        assert_eq!(d.apply_udp(0), 0);
        assert_ne!(d.apply_udp(0x1234), 0);
        // A change that makes the computed checksum 0 sends 0xffff.
        let z = Delta::ZERO.word(0x1234, 0x1235);
        assert_eq!(z.apply(0x0001), 0); // ~(0xfffe + 1)
        assert_eq!(z.apply_udp(0x0001), 0xffff);
    }
}
