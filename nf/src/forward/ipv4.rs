//! IPv4 forwarding rewrites and address checks: TTL decrement with the incremental checksum
//! update of RFC 1624, Ethernet address rewrite, and the address classes RFC 1812 says a
//! router must not forward from or to.

use crate::parse::ipv4_field;

/// RFC 1624 eqn. 3: the new header checksum after one 16-bit word of the header changed from
/// `old` to `new`: `HC' = ~(~HC + ~m + m')`, in one's-complement arithmetic. It equals a full
/// recomputation for every input, where the older RFC 1141 form (`HC' = HC + m - m'`) can give
/// 0xffff where a recomputation gives 0x0000 (RFC 1624 sections 3 and 4).
#[inline]
pub fn csum_update16(hc: u16, old: u16, new: u16) -> u16 {
    let mut s = (!hc) as u32 + (!old) as u32 + new as u32;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// Decrements the TTL of the IPv4 header `hdr` (>= 20 bytes) by one and updates its checksum
/// incrementally (RFC 1812 section 5.3.1, RFC 1624). The caller checked TTL > 1.
///
/// RFC 1624 eqn. 3 with the changed word `m` = TTL << 8 | protocol and `m' = m - 0x100`: the
/// term `~m + m'` is the constant 0xfeff whatever the protocol, so `HC' = ~(~HC + 0xfeff)`
/// with one end-around carry (the sum is at most 0x1fefe) — the same result as
/// [`csum_update16`] for every TTL > 1 and checksum, with fewer dependent steps.
#[inline]
pub fn decrement_ttl(hdr: &mut [u8]) {
    let c = ipv4_field::CHECKSUM;
    let hc = u16::from_be_bytes([hdr[c.start], hdr[c.start + 1]]);
    let s = (!hc) as u32 + 0xfeff;
    let s = (s & 0xffff) + (s >> 16);
    hdr[ipv4_field::TTL] = hdr[ipv4_field::TTL].wrapping_sub(1);
    hdr[c].copy_from_slice(&(!(s as u16)).to_be_bytes());
}

/// [`decrement_ttl`] on the header's bytes 8..12 (TTL, protocol, checksum) loaded as one
/// little-endian word, for the forward stage's fast path: one load, one store. One's
/// complement sums do not depend on byte order (RFC 1071 section 2(B)), so the checksum is
/// updated in its byte-swapped form with the constant swapped too (0xfeff -> 0xfffe).
/// The caller checked TTL > 1 (no borrow out of the TTL byte).
#[inline(always)]
pub fn decrement_ttl_word(w: u32) -> u32 {
    let hc = (w >> 16) as u16;
    let s = (!hc) as u32 + 0xfffe;
    let s = (s & 0xffff) + (s >> 16);
    (w.wrapping_sub(1) & 0xffff) | ((!(s as u16)) as u32) << 16
}

/// Writes the Ethernet destination and source addresses of a frame (>= 12 bytes).
#[inline]
pub fn set_macs(frame: &mut [u8], dst: &[u8; 6], src: &[u8; 6]) {
    frame[0..6].copy_from_slice(dst);
    frame[6..12].copy_from_slice(src);
}

/// 255.255.255.255, the limited broadcast address (RFC 1812 section 4.2.3.1).
pub const LIMITED_BROADCAST: u32 = 0xffff_ffff;

/// Whether a source address must not be forwarded from (RFC 1812 section 5.3.7, "Martian
/// Address Filtering", and 4.2.2.11): 0.0.0.0/8, 127.0.0.0/8, multicast 224.0.0.0/4 and the
/// class E range 240.0.0.0/4 (which holds the limited broadcast address).
#[inline]
pub const fn bad_source(src: u32) -> bool {
    let a = (src >> 24) as u8;
    a == 0 || a == 127 || a >= 224
}

/// Whether a destination is not forwarded (RFC 1812 section 5.3.7 and 4.2.2.11): 0.0.0.0/8,
/// 127.0.0.0/8, class E 240.0.0.0/4 — and multicast 224.0.0.0/4, since this router does not
/// route multicast. The limited broadcast address is not "bad": it is for the local link (the
/// forward stage consumes it).
#[inline]
pub const fn bad_destination(dst: u32) -> bool {
    let a = (dst >> 24) as u8;
    (a == 0 || a == 127 || a >= 224) && dst != LIMITED_BROADCAST
}

/// Whether an IPv4 address is a unique unicast address a host may have (for ICMP error
/// eligibility, RFC 1812 section 4.3.2.7): not 0/8, 127/8, multicast, class E or broadcast.
#[inline]
pub fn is_unicast(a: u32) -> bool {
    !bad_source(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::ipv4_header_checksum_ok;
    use crate::parse::tests::{rfc1071, udp_frame};

    #[test]
    fn rfc1624_matches_a_full_recompute_for_every_ttl_and_checksum() {
        // Every TTL 2..=255, for a spread of header contents: the incremental result equals a
        // checksum recomputed from scratch with the RFC 1071 reference.
        let base = udp_frame();
        for ttl in 2u8..=255 {
            for id in [0u16, 1, 0x1234, 0xfffe, 0xffff, 0x8000] {
                let mut f = base.clone();
                f[14 + 8] = ttl;
                f[18..20].copy_from_slice(&id.to_be_bytes());
                f[24..26].copy_from_slice(&[0, 0]);
                let c = rfc1071(&f[14..34]);
                f[24..26].copy_from_slice(&c.to_be_bytes());
                let mut g = f.clone();
                decrement_ttl(&mut g[14..34]);
                assert_eq!(g[14 + 8], ttl - 1);
                let mut want = g.clone();
                want[24..26].copy_from_slice(&[0, 0]);
                let wc = rfc1071(&want[14..34]);
                let got = u16::from_be_bytes([g[24], g[25]]);
                assert_eq!(got, wc, "ttl {ttl} id {id:#x}");
                assert!(ipv4_header_checksum_ok(&g[14..34]), "ttl {ttl} id {id:#x}");
            }
        }
    }

    #[test]
    fn ttl_shortcut_equals_eqn3_for_every_checksum() {
        // decrement_ttl's constant form (and its one-word form) against the general RFC 1624
        // eqn. 3, for every checksum value (incl. 0x0000 and 0xffff) and a spread of TTLs and
        // protocols.
        let mut h = [0u8; 20];
        for hc in 0..=0xffffu16 {
            for (ttl, proto) in [
                (2u8, 17u8),
                (3, 6),
                (64, 1),
                (128, 17),
                (255, 6),
                (255, 255),
            ] {
                h[8] = ttl;
                h[9] = proto;
                h[10..12].copy_from_slice(&hc.to_be_bytes());
                let w = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
                let word = decrement_ttl_word(w).to_le_bytes();
                decrement_ttl(&mut h);
                assert_eq!(word, [h[8], h[9], h[10], h[11]], "word form, hc {hc:#06x}");
                let old = u16::from_be_bytes([ttl, proto]);
                let new = u16::from_be_bytes([ttl - 1, proto]);
                assert_eq!(h[8], ttl - 1);
                assert_eq!(
                    u16::from_be_bytes([h[10], h[11]]),
                    csum_update16(hc, old, new),
                    "hc {hc:#06x} ttl {ttl} proto {proto}"
                );
            }
        }
    }

    #[test]
    fn rfc1624_section4_example() {
        // RFC 1624 section 4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        assert_eq!(csum_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn mac_rewrite_touches_only_the_macs() {
        let mut f = udp_frame();
        let before = f.clone();
        set_macs(&mut f, &[0xaa; 6], &[0xbb; 6]);
        assert_eq!(&f[..6], &[0xaa; 6]);
        assert_eq!(&f[6..12], &[0xbb; 6]);
        assert_eq!(&f[12..], &before[12..]);
    }

    #[test]
    fn martians() {
        let ip = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "224.0.0.5",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(bad_source(ip(s)), "{s}");
        }
        for s in ["10.0.0.1", "192.0.2.1", "223.255.255.254", "1.1.1.1"] {
            assert!(!bad_source(ip(s)), "{s}");
            assert!(!bad_destination(ip(s)), "{s}");
        }
        for s in ["0.0.0.0", "127.1.1.1", "224.0.0.1", "240.0.0.1"] {
            assert!(bad_destination(ip(s)), "{s}");
        }
        assert!(!bad_destination(LIMITED_BROADCAST));
    }
}
