//! Incremental Internet checksum updates (RFC 1624, equation 3: `HC' = ~(~HC + ~m + m')`).
//!
//! NAT rewrites a few 16-bit words (addresses, ports, ICMP identifiers, an embedded header's
//! checksum) and updates every checksum that covers them from the difference alone: a packet
//! whose checksum was wrong before stays wrong after (the receiver still detects the damage),
//! and no byte of the payload is read.

/// The one's-complement difference of a set of 16-bit word changes, applied to any number of
/// checksums that cover exactly those words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta(u32);

#[inline]
fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

impl Delta {
    pub const ZERO: Delta = Delta(0);

    /// Records that a 16-bit word changed from `old` to `new`.
    #[inline]
    pub fn word(self, old: u16, new: u16) -> Delta {
        Delta(fold(self.0 + (!old as u32 & 0xffff) + new as u32) as u32)
    }

    /// Records that a 32-bit field (two words, e.g. an IPv4 address) changed.
    #[inline]
    pub fn addr(self, old: u32, new: u32) -> Delta {
        self.word((old >> 16) as u16, (new >> 16) as u16)
            .word(old as u16, new as u16)
    }

    /// Adds another delta (changes of other words covered by the same checksum).
    #[inline]
    pub fn merge(self, o: Delta) -> Delta {
        Delta(fold(self.0 + o.0) as u32)
    }

    /// The checksum `hc` updated for the recorded changes (RFC 1624 eqn. 3).
    #[inline]
    pub fn apply(self, hc: u16) -> u16 {
        !fold((!hc as u32 & 0xffff) + self.0)
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

/// Full Internet checksum of `data` (RFC 1071) with an initial partial sum; used to build
/// test fixtures and packets the NAT originates, never on the translation path.
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

/// Partial sum of the TCP/UDP pseudo-header (RFC 793 / RFC 768).
pub fn pseudo_header(src: u32, dst: u32, proto: u8, len: u16) -> u32 {
    (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto as u32 + len as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1624_example_and_full_recompute_agree() {
        // RFC 1624 section 4: a header word changes from 0x5555 to 0x3285.
        let mut words = [
            0x4500u16, 0x0073, 0x0000, 0x4000, 0x4011, 0x0000, 0xc0a8, 0x0001, 0xc0a8, 0x00c7,
        ];
        let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
        let hc = checksum(&bytes(&words), 0);
        assert_eq!(hc, 0xb861, "well-known IPv4 header checksum example");
        let old = words[6];
        words[6] = 0x0a00;
        let full = checksum(&bytes(&words), 0);
        assert_eq!(Delta::ZERO.word(old, 0x0a00).apply(hc), full);
    }

    #[test]
    fn incremental_matches_full_for_many_changes() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let mut data: Vec<u8> = (0..40).map(|_| rnd() as u8).collect();
            let hc = checksum(&data, 0);
            let i = (rnd() % 20) as usize * 2;
            let j = (rnd() % 20) as usize * 2;
            let o1 = u16::from_be_bytes([data[i], data[i + 1]]);
            let n1 = rnd() as u16;
            data[i..i + 2].copy_from_slice(&n1.to_be_bytes());
            let o2b = u16::from_be_bytes([data[j], data[j + 1]]);
            let n2 = rnd() as u16;
            data[j..j + 2].copy_from_slice(&n2.to_be_bytes());
            let d = Delta::ZERO.word(o1, n1).word(o2b, n2);
            // Equal as one's-complement numbers (0x0000 and 0xffff are the same value).
            let (a, b) = (d.apply(hc), checksum(&data, 0));
            assert!(
                a == b || (a == 0xffff && b == 0) || (a == 0 && b == 0xffff),
                "{a:04x} {b:04x}"
            );
        }
    }

    #[test]
    fn udp_zero_checksum_stays_zero() {
        let d = Delta::ZERO.addr(0x0a000001, 0xc6336401).word(1234, 40000);
        assert_eq!(d.apply_udp(0), 0);
        assert_ne!(d.apply_udp(0x1234), 0);
    }
}
