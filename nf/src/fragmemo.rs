//! What a stage decided for the first fragment of recent datagrams, for their later fragments
//! (which carry no L4 header): a small direct-mapped memo keyed by the reassembly key of RFC
//! 791 (source, destination, protocol, IP id) and the direction the datagram travels. A new
//! datagram overwrites whatever shared its slot; entries live for a lifetime the caller gives
//! in its own clock's units. Allocated once; lookups and inserts never allocate. Classify
//! keeps the first fragment's ports in it, NAT its translation. IPv6 datagrams are keyed by
//! [`FragKey6`] (RFC 8200 section 4.5: source, destination, fragment identification).

/// The reassembly key of a datagram (RFC 791), with the direction it travels (a stage that
/// sees both directions keeps them apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragKey {
    pub src: u32,
    pub dst: u32,
    pub id: u16,
    pub proto: u8,
    pub dir: bool,
}

/// The reassembly key of an IPv6 datagram (RFC 8200 section 4.5): source and destination
/// address (host order) and the fragment header's identification. The upper-layer protocol is
/// not part of it (a later fragment's fragment header may name an extension header).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragKey6 {
    pub src: u128,
    pub dst: u128,
    pub id: u32,
}

/// A memo key: a datagram's identity and its hash.
pub trait MemoKey: Copy + Default + PartialEq {
    fn hash(&self) -> u64;
}

impl MemoKey for FragKey {
    #[inline]
    fn hash(&self) -> u64 {
        let k = ((self.src as u64) << 32 | self.dst as u64)
            ^ ((self.id as u64) << 16 | (self.proto as u64) << 1 | self.dir as u64).rotate_left(29);
        k.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

impl MemoKey for FragKey6 {
    #[inline]
    fn hash(&self) -> u64 {
        let fold = |a: u128| (a as u64) ^ ((a >> 64) as u64).rotate_left(17);
        let k = fold(self.src) ^ fold(self.dst).rotate_left(31) ^ u64::from(self.id);
        k.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot<V, K> {
    key: K,
    used: bool,
    time: u64,
    val: V,
}

/// The memo: `V` is what is remembered per datagram, `K` the datagram's key (IPv4's
/// [`FragKey`] or IPv6's [`FragKey6`]).
pub struct FragMemo<V, K = FragKey> {
    e: Box<[Slot<V, K>]>,
    shift: u32,
}

impl<V: Copy + Default, K: MemoKey> FragMemo<V, K> {
    /// A memo of `n` entries (rounded up to a power of two).
    pub fn new(n: usize) -> FragMemo<V, K> {
        let n = n.max(2).next_power_of_two();
        FragMemo {
            e: vec![Slot::default(); n].into_boxed_slice(),
            shift: 64 - n.trailing_zeros(),
        }
    }

    /// Bytes of memory the memo takes.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.e)
    }

    #[inline]
    fn slot(&self, k: &K) -> usize {
        (k.hash() >> self.shift) as usize
    }

    /// Remembers `val` for datagram `k` at time `now`.
    #[inline]
    pub fn put(&mut self, k: K, now: u64, val: V) {
        let i = self.slot(&k);
        self.e[i] = Slot {
            key: k,
            used: true,
            time: now,
            val,
        };
    }

    /// What was remembered for `k`, if it was put less than `ttl` before `now`.
    #[inline]
    pub fn get(&self, k: &K, now: u64, ttl: u64) -> Option<V> {
        let s = &self.e[self.slot(k)];
        (s.used && s.key == *k && now.wrapping_sub(s.time) < ttl).then_some(s.val)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16, dir: bool) -> FragKey {
        FragKey {
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            id,
            proto: 17,
            dir,
        }
    }

    #[test]
    fn remembers_per_datagram_and_direction_for_its_lifetime() {
        let mut m: FragMemo<u32> = FragMemo::new(4096);
        m.put(key(7, true), 100, 42);
        assert_eq!(m.get(&key(7, true), 149, 50), Some(42));
        assert_eq!(m.get(&key(7, true), 150, 50), None, "expired");
        assert_eq!(m.get(&key(7, false), 120, 50), None, "other direction");
        assert_eq!(m.get(&key(8, true), 120, 50), None, "other datagram");
        // A datagram sharing the slot replaces it; the memo stays findable for the new one.
        let mut small: FragMemo<u32> = FragMemo::new(2);
        for id in 0..10 {
            small.put(key(id, false), 0, id as u32);
            assert_eq!(small.get(&key(id, false), 0, 1), Some(id as u32));
        }
        assert_eq!(m.bytes(), 4096 * std::mem::size_of::<Slot<u32, FragKey>>());
    }

    #[test]
    fn ipv6_datagrams_are_keyed_by_addresses_and_identification() {
        let k = |id: u32, src: u128| FragKey6 {
            src,
            dst: 0x2001_0db8 << 96 | 2,
            id,
        };
        let a = 0x2001_0db8 << 96 | 1;
        let mut m: FragMemo<u32, FragKey6> = FragMemo::new(4096);
        m.put(k(70_000, a), 10, 5);
        assert_eq!(m.get(&k(70_000, a), 20, 50), Some(5));
        assert_eq!(m.get(&k(70_001, a), 20, 50), None, "other identification");
        // Addresses differing only in the upper half.
        assert_eq!(
            m.get(&k(70_000, a ^ 1 << 100), 20, 50),
            None,
            "other source"
        );
        assert_eq!(m.get(&k(70_000, a), 60, 50), None, "expired");
    }
}
