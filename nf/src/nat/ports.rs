//! Outside port allocation. The configured dynamic range is split into one contiguous slice
//! per NAT worker (`owner_of` maps a port back to its slice, which is how an inbound packet
//! finds the worker that owns its session). Within its slice a worker keeps, per pool address
//! and protocol (TCP, UDP, ICMP identifiers are separate spaces), a bitmap of free ports for
//! allocation and the representative session of each mapping in use, so an inbound packet
//! that matches no 5-tuple can still find its mapping (endpoint-independent or
//! address-dependent filtering, RFC 4787 REQ-8) without a hash lookup.
//!
//! New ports are chosen at random within the slice (RFC 6056 style port randomisation) from
//! a per-worker xorshift generator; the search skips 64 used ports per bitmap word.

use super::table::NONE;

/// Protocol index of a port space.
#[inline]
pub fn proto_index(proto: u8) -> usize {
    match proto {
        super::pkt::PROTO_TCP => 0,
        super::pkt::PROTO_UDP => 1,
        _ => 2,
    }
}

/// The split of the dynamic range `lo..=hi` into `parts` slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub lo: u16,
    pub hi: u16,
    pub parts: u16,
}

impl Partition {
    fn chunk(&self) -> u32 {
        ((self.hi as u32 - self.lo as u32 + 1) / self.parts as u32).max(1)
    }

    /// Whether `port` is in the dynamic range.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        port >= self.lo && port <= self.hi
    }

    /// The slice (worker position) owning `port` (which must be in range).
    #[inline]
    pub fn owner_of(&self, port: u16) -> usize {
        (((port - self.lo) as u32 / self.chunk()) as usize).min(self.parts as usize - 1)
    }

    /// First port and length of slice `i`; the last slice takes the remainder.
    pub fn slice(&self, i: usize) -> (u16, u32) {
        let c = self.chunk();
        let start = self.lo as u32 + c * i as u32;
        let len = if i + 1 == self.parts as usize {
            self.hi as u32 + 1 - start
        } else {
            c
        };
        (start as u16, len)
    }
}

/// One worker's ports: `addrs` pool addresses x 3 protocols x `len` ports.
pub struct PortSpace {
    pub lo: u16,
    pub len: u32,
    addrs: usize,
    words: usize,
    rep: Vec<u32>,
    free_bits: Vec<u64>,
    free: Vec<u32>,
    rng: u64,
}

impl PortSpace {
    pub fn new(addrs: usize, lo: u16, len: u32, seed: u64) -> PortSpace {
        let words = (len as usize).div_ceil(64);
        let mut free_bits = super::table::big_vec(addrs * 3 * words, !0u64);
        // Clear the bits past `len` in each space's last word.
        if !(len as usize).is_multiple_of(64) {
            let keep = (1u64 << (len as usize % 64)) - 1;
            for sp in 0..addrs * 3 {
                free_bits[sp * words + words - 1] = keep;
            }
        }
        PortSpace {
            lo,
            len,
            addrs,
            words,
            rep: super::table::big_vec(addrs * 3 * len as usize, NONE),
            free_bits,
            free: vec![len; addrs * 3],
            rng: seed | 1,
        }
    }

    pub fn bytes(&self) -> usize {
        self.rep.len() * 4 + self.free_bits.len() * 8
    }

    #[inline]
    fn space(&self, addr: usize, pi: usize) -> usize {
        addr * 3 + pi
    }

    /// Whether `port` belongs to this worker's slice.
    #[inline]
    pub fn owns(&self, port: u16) -> bool {
        port >= self.lo && ((port - self.lo) as u32) < self.len
    }

    /// The mapping's representative session at (address, protocol, port), or NONE.
    #[inline]
    pub fn rep(&self, addr: usize, pi: usize, port: u16) -> u32 {
        if !self.owns(port) || addr >= self.addrs {
            return NONE;
        }
        self.rep[self.space(addr, pi) * self.len as usize + (port - self.lo) as usize]
    }

    #[inline]
    pub fn set_rep(&mut self, addr: usize, pi: usize, port: u16, s: u32) {
        let sp = self.space(addr, pi);
        self.rep[sp * self.len as usize + (port - self.lo) as usize] = s;
    }

    /// Free ports left for (address, protocol).
    pub fn free_count(&self, addr: usize, pi: usize) -> u32 {
        self.free[self.space(addr, pi)]
    }

    /// Ports in use for (address, protocol).
    pub fn in_use(&self, addr: usize, pi: usize) -> u32 {
        self.len - self.free_count(addr, pi)
    }

    /// Whether `port` of (address, protocol) is free in the allocation bitmap (for
    /// consistency checks).
    pub fn is_free(&self, addr: usize, pi: usize, port: u16) -> bool {
        if !self.owns(port) || addr >= self.addrs {
            return false;
        }
        let off = (port - self.lo) as usize;
        self.free_bits[self.space(addr, pi) * self.words + off / 64] & (1u64 << (off % 64)) != 0
    }

    /// Number of pool addresses.
    pub fn addrs(&self) -> usize {
        self.addrs
    }

    /// A pseudo-random number from the worker's generator (port choice in a block).
    #[inline]
    pub fn random(&mut self) -> u64 {
        self.next_rand()
    }

    #[inline]
    fn next_rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Takes a free port at random; None when the space is exhausted.
    pub fn alloc(&mut self, addr: usize, pi: usize) -> Option<u16> {
        let sp = self.space(addr, pi);
        if self.free[sp] == 0 {
            return None;
        }
        let start = (self.next_rand() % self.len as u64) as usize;
        let base = sp * self.words;
        let (sw, sb) = (start / 64, start % 64);
        // First the start word from the start bit, then the following words, wrapping, then
        // the start word's low bits.
        let first = self.free_bits[base + sw] & (!0u64 << sb);
        let found = if first != 0 {
            Some(sw * 64 + first.trailing_zeros() as usize)
        } else {
            (1..=self.words).find_map(|k| {
                let w = (sw + k) % self.words;
                let bits = self.free_bits[base + w];
                (bits != 0).then(|| w * 64 + bits.trailing_zeros() as usize)
            })
        }?;
        self.free_bits[base + found / 64] &= !(1u64 << (found % 64));
        self.free[sp] -= 1;
        Some(self.lo + found as u16)
    }

    /// Takes a free port of (address, protocol) in the block `lo .. lo + len` (within this
    /// space), trying `prefer` first and then the ports after it, wrapping in the block
    /// (deterministic NAT: `det.rs`). At most one bitmap word per 64 ports is read.
    pub fn alloc_in(
        &mut self,
        addr: usize,
        pi: usize,
        lo: u16,
        len: u32,
        prefer: u16,
    ) -> Option<u16> {
        if !self.owns(lo) || len == 0 || (lo - self.lo) as u32 + len > self.len {
            return None;
        }
        let sp = self.space(addr, pi);
        let base = sp * self.words;
        let off0 = (lo - self.lo) as usize;
        let start = (prefer.wrapping_sub(lo) as usize).min(len as usize - 1);
        for (a, b) in [(start, len as usize), (0, start)] {
            let (mut i, end) = (off0 + a, off0 + b);
            while i < end {
                let bit = i % 64;
                let span = (64 - bit).min(end - i);
                let mut bits = self.free_bits[base + i / 64] >> bit;
                if span < 64 {
                    bits &= (1u64 << span) - 1;
                }
                if bits != 0 {
                    let f = i + bits.trailing_zeros() as usize;
                    self.free_bits[base + f / 64] &= !(1u64 << (f % 64));
                    self.free[sp] -= 1;
                    return Some(self.lo + f as u16);
                }
                i += span;
            }
        }
        None
    }

    /// Takes `port` of (address, protocol) if it is free; false if taken.
    pub fn take(&mut self, addr: usize, pi: usize, port: u16) -> bool {
        if !self.is_free(addr, pi, port) {
            return false;
        }
        let sp = self.space(addr, pi);
        let off = (port - self.lo) as usize;
        self.free_bits[sp * self.words + off / 64] &= !(1u64 << (off % 64));
        self.free[sp] -= 1;
        true
    }

    /// Returns a port (its mapping is gone).
    pub fn release(&mut self, addr: usize, pi: usize, port: u16) {
        if !self.owns(port) {
            return;
        }
        let sp = self.space(addr, pi);
        let off = (port - self.lo) as usize;
        let w = sp * self.words + off / 64;
        let bit = 1u64 << (off % 64);
        if self.free_bits[w] & bit == 0 {
            self.free_bits[w] |= bit;
            self.free[sp] += 1;
        }
        self.rep[sp * self.len as usize + off] = NONE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_covers_range_exactly_once() {
        for parts in 1..=5u16 {
            let p = Partition {
                lo: 1024,
                hi: 65535,
                parts,
            };
            let mut next = 1024u32;
            for i in 0..parts as usize {
                let (s, len) = p.slice(i);
                assert_eq!(s as u32, next);
                for port in [s as u32, s as u32 + len - 1] {
                    assert_eq!(p.owner_of(port as u16), i, "port {port} parts {parts}");
                }
                next += len;
            }
            assert_eq!(next, 65536);
        }
        let tiny = Partition {
            lo: 5000,
            hi: 5001,
            parts: 2,
        };
        assert_eq!(tiny.slice(0), (5000, 1));
        assert_eq!(tiny.slice(1), (5001, 1));
    }

    #[test]
    fn alloc_in_a_block_prefers_the_port_then_wraps_and_never_leaves_the_block() {
        let mut ps = PortSpace::new(1, 1024, 64512, 7);
        // A block of 100 ports at 3000: the preferred port first, then the ones after it.
        assert_eq!(ps.alloc_in(0, 1, 3000, 100, 3050), Some(3050));
        assert_eq!(ps.alloc_in(0, 1, 3000, 100, 3050), Some(3051));
        ps.alloc_in(0, 1, 3000, 100, 3099).unwrap();
        let mut got: Vec<u16> = (0..97)
            .map(|_| ps.alloc_in(0, 1, 3000, 100, 3099).unwrap())
            .collect();
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), 97, "no port twice");
        assert!(got.iter().all(|p| (3000..3100).contains(p)), "{got:?}");
        assert_eq!(ps.alloc_in(0, 1, 3000, 100, 3000), None, "block full");
        assert_eq!(ps.in_use(0, 1), 100);
        // The ports next to the block are untouched, and other protocols are other spaces.
        assert!(ps.is_free(0, 1, 2999) && ps.is_free(0, 1, 3100));
        assert_eq!(ps.alloc_in(0, 0, 3000, 100, 3000), Some(3000));
        ps.release(0, 1, 3077);
        assert_eq!(ps.alloc_in(0, 1, 3000, 100, 3010), Some(3077));
        // A block that does not fit the space is refused.
        assert_eq!(ps.alloc_in(0, 1, 65500, 100, 65500), None);
    }

    #[test]
    fn alloc_until_exhausted_then_release_brings_ports_back() {
        let mut ps = PortSpace::new(2, 40000, 100, 42);
        let mut got = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let p = ps.alloc(1, 1).unwrap();
            assert!((40000..40100).contains(&p));
            assert!(got.insert(p), "port {p} handed out twice");
        }
        assert_eq!(ps.alloc(1, 1), None, "exhausted");
        assert_eq!(ps.free_count(1, 1), 0);
        // Other address / protocol spaces are independent.
        assert!(ps.alloc(0, 1).is_some());
        assert!(ps.alloc(1, 0).is_some());
        ps.release(1, 1, 40042);
        assert_eq!(ps.free_count(1, 1), 1);
        assert_eq!(ps.alloc(1, 1), Some(40042));
    }
}
