//! The per-worker session table: a fixed array of 64-byte sessions (one cache line each),
//! three open-addressing hash indexes over it, per-timeout-class LRU lists and a free list.
//! Everything is allocated once at start-up; no operation allocates.
//!
//! - `i2o`: (proto, inside addr, inside port, remote addr, remote port) -> session;
//! - `o2i`: (proto, outside addr, outside port, remote addr, remote port) -> session;
//! - `iep`: (proto, inside addr, inside port) -> one session of that inside endpoint's mapping
//!   (endpoint-independent mapping, RFC 4787 REQ-1: a new session of the same inside endpoint
//!   reuses the outside endpoint). The sessions of one mapping form a circular list
//!   (`map_prev`/`map_next`), so the representative can be replaced when it goes away.
//!
//! Index entries are 4 bytes (a hash signature, the distance from home and the session index
//! packed in 32 bits, see [`Index`]) in linear-probing tables kept at most half full, deleted by backward shift (no
//! tombstones). Memory per session: 64 (session) + 3 x 8 (index slots at load <= 0.5) = 88
//! bytes, for any capacity (the indexes have exactly twice as many slots as sessions; no
//! rounding to a power of two).
//!
//! LRU lists, one per timeout class, are ordered by `lru_time`; a packet moves its session to
//! the tail only when `lru_time` is older than the class's granularity (timeout / 32, 1 ms to
//! 1 s), so a busy flow costs a timestamp store per packet, not a list operation. Expiry
//! pops heads while they are idle past the timeout and stops at the first live one, which
//! bounds how late a session can be found: at most one granule.

/// No session / end of list.
pub const NONE: u32 = u32::MAX;

/// Timeout classes (one LRU list each).
pub const CLASS_TCP_EST: u8 = 0;
pub const CLASS_TCP_TRANS: u8 = 1;
pub const CLASS_UDP: u8 = 2;
pub const CLASS_ICMP: u8 = 3;
pub const CLASSES: usize = 4;
/// `class` of a session on the free list.
pub const CLASS_FREE: u8 = 0xff;

/// Session flags.
pub mod sflag {
    /// Created from a static mapping (no dynamic port, not in `iep`).
    pub const STATIC: u8 = 1 << 0;
    /// The remote endpoint is itself a NAT outside address (hairpinning, RFC 4787 REQ-9).
    pub const HAIRPIN: u8 = 1 << 1;
    /// Created by an inbound packet (static port forward or endpoint-independent filtering).
    pub const INBOUND: u8 = 1 << 2;
}

/// One session: a translated 5-tuple. Exactly one cache line.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub in_addr: u32,
    pub out_addr: u32,
    pub rem_addr: u32,
    pub in_port: u16,
    pub out_port: u16,
    pub rem_port: u16,
    pub proto: u8,
    /// Timeout class, or CLASS_FREE.
    pub class: u8,
    /// TCP tracking bits (see `tcp`).
    pub tcp: u8,
    pub flags: u8,
    /// Index of the outside address in the pool (dynamic sessions).
    pub pool_idx: u16,
    /// Last packet, NAT milliseconds.
    pub last_seen: u32,
    /// Time of the last move to the LRU tail.
    pub lru_time: u32,
    pub lru_prev: u32,
    pub lru_next: u32,
    pub map_prev: u32,
    pub map_next: u32,
    pub pkts_i2o: u32,
    pub pkts_o2i: u32,
    /// Creation time, NAT milliseconds.
    pub created: u32,
    pub _pad: u32,
}

const _: () = assert!(std::mem::size_of::<Session>() == 64);

impl Default for Session {
    fn default() -> Self {
        Session {
            in_addr: 0,
            out_addr: 0,
            rem_addr: 0,
            in_port: 0,
            out_port: 0,
            rem_port: 0,
            proto: 0,
            class: CLASS_FREE,
            tcp: 0,
            flags: 0,
            pool_idx: 0,
            last_seen: 0,
            lru_time: 0,
            lru_prev: NONE,
            lru_next: NONE,
            map_prev: NONE,
            map_next: NONE,
            pkts_i2o: 0,
            pkts_o2i: 0,
            created: 0,
            _pad: 0,
        }
    }
}

impl Session {
    /// Whether this is the session of inside endpoint `(ia, ip)` with remote `(ra, rp)`.
    #[inline(always)]
    pub fn is_inside(&self, proto: u8, ia: u32, ip: u16, ra: u32, rp: u16) -> bool {
        self.in_addr == ia
            && self.rem_addr == ra
            && self.in_port == ip
            && self.rem_port == rp
            && self.proto == proto
    }

    /// Whether this is the session of outside endpoint `(oa, op)` with remote `(ra, rp)`.
    #[inline(always)]
    pub fn is_outside(&self, proto: u8, oa: u32, op: u16, ra: u32, rp: u16) -> bool {
        self.out_addr == oa
            && self.rem_addr == ra
            && self.out_port == op
            && self.rem_port == rp
            && self.proto == proto
    }
}

/// Hash of a session's inside key (the `i2o` index).
#[inline]
pub fn i2o_hash(s: &Session, seed: u64) -> u64 {
    key_hash(s.proto, s.in_addr, s.in_port, s.rem_addr, s.rem_port, seed)
}

/// Hash of a session's outside key (the `o2i` index).
#[inline]
pub fn o2i_hash(s: &Session, seed: u64) -> u64 {
    key_hash(
        s.proto, s.out_addr, s.out_port, s.rem_addr, s.rem_port, !seed,
    )
}

/// Hash of an inside endpoint (the `iep` index).
#[inline]
pub fn iep_hash(proto: u8, addr: u32, port: u16, seed: u64) -> u64 {
    key_hash(proto, addr, port, 0, 0, seed.rotate_left(21))
}

/// Hashes two key words with a per-table seed (folded 128-bit multiply).
#[inline]
pub fn hash2(a: u64, b: u64, seed: u64) -> u64 {
    let x = (a ^ seed ^ 0x243f_6a88_85a3_08d3) as u128
        * (b ^ 0x1319_8a2e_0370_7344 ^ seed.rotate_left(32)) as u128;
    let y = (x as u64) ^ ((x >> 64) as u64);
    let z = (y ^ a.rotate_left(17)) as u128 * 0x9e37_79b9_7f4a_7c15u128;
    (z as u64) ^ ((z >> 64) as u64)
}

/// A 5-tuple key: local endpoint (inside or outside, by table), remote endpoint.
#[inline]
pub fn key_hash(proto: u8, laddr: u32, lport: u16, raddr: u32, rport: u16, seed: u64) -> u64 {
    hash2(
        (laddr as u64) << 32 | raddr as u64,
        (proto as u64) << 32 | (lport as u64) << 16 | rport as u64,
        seed,
    )
}

/// A table of `n` copies of `fill`, backed by transparent huge pages when large (random
/// access over a big table costs a TLB miss per access with 4 KiB pages). Allocated and
/// filled once, at start-up.
pub fn big_vec<T: Clone>(n: usize, fill: T) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    if n * std::mem::size_of::<T>() >= 4 << 20 {
        dpdk::sys::advise_hugepages(v.spare_capacity_mut());
    }
    v.resize(n, fill);
    v
}

/// Open-addressing index of 4-byte entries: `signature | displacement | session`, empty =
/// `u32::MAX`.
///
/// The low `ib` bits of an entry are the session index (`ib` = the bits `n` needs, at most
/// 27), the next 3 bits the entry's distance from its home slot (saturated at 7), the high
/// `29 - ib` bits a signature: hash bits that the home slot does not use (12 at 2^16
/// sessions, 8 at 2^20, 2 at the 2^26 maximum), so a probe reads a session only when its
/// signature matches. The table has exactly twice as many slots as the sessions it indexes
/// (any size, not only powers of two: the home slot is `hash32 * slots >> 32`, Lemire's
/// multiply-shift range reduction, over the high 32 hash bits), so the load stays <= 0.5 and
/// the index costs 8 bytes per session whatever `max_sessions` is; 16 entries share a cache
/// line. The full hash is not stored: deleting by backward shift moves entries by their
/// stored displacement, and recomputes the home slot from the session's key (`hash_of`) only
/// for an entry 7 or more slots from home (rare at load 0.5).
pub struct Index {
    tab: Vec<u32>,
    /// Mask of the session-index bits.
    mask: u32,
    /// Bits of the session index (the displacement field starts there).
    ib: u32,
    /// Mask of the signature bits.
    sig: u32,
}

/// Displacement field: the distance of an entry from its home slot, saturated at `DMAX`
/// (then the home is recomputed from the session's key).
const DBITS: u32 = 3;
const DMAX: u32 = (1 << DBITS) - 1;

const EMPTY: u32 = u32::MAX;

/// Home slot of 32 hash bits in a table of `len` slots (`len` < 2^32).
#[inline(always)]
fn home_of(h32: u32, len: usize) -> usize {
    ((h32 as u64 * len as u64) >> 32) as usize
}

/// The slot after `pos`, wrapping.
#[inline(always)]
fn next_of(pos: usize, len: usize) -> usize {
    let n = pos + 1;
    if n == len { 0 } else { n }
}

/// Cyclic distance from slot `from` forward to slot `to`.
#[inline(always)]
fn dist_of(from: usize, to: usize, len: usize) -> usize {
    if to >= from {
        to - from
    } else {
        to + len - from
    }
}

/// Slots of an index for `n` entries at load <= 0.5.
pub fn index_slots(n: usize) -> usize {
    n.max(8) * 2
}

/// Bytes of one index slot.
pub const INDEX_SLOT_BYTES: usize = std::mem::size_of::<u32>();

impl Index {
    /// An index for up to `n` entries (session indexes `0..n`, `n` < 2^31) at load <= 0.5.
    pub fn new(n: usize) -> Index {
        assert!(n < 1 << 31, "index of {n} entries");
        // Bits for the indexes 0..n with the all-ones value left out (it would read as EMPTY
        // under an all-ones signature).
        let ib = usize::BITS - n.leading_zeros();
        Index {
            tab: big_vec(index_slots(n), EMPTY),
            mask: ((1u64 << ib) - 1) as u32,
            ib,
            sig: !(((1u64 << (ib + DBITS)) - 1) as u32),
        }
    }

    pub fn bytes(&self) -> usize {
        self.tab.len() * INDEX_SLOT_BYTES
    }

    /// The signature bits of hash `h` (from its low half; the home slot uses the high half).
    #[inline(always)]
    pub fn tag(&self, h: u64) -> u32 {
        h as u32 & self.sig
    }

    /// The displacement field of entry `e` (saturated at `DMAX`).
    #[inline(always)]
    fn disp(&self, e: u32) -> usize {
        ((e >> self.ib) & DMAX) as usize
    }

    /// Entry `e` with its displacement field set to `d` (saturated).
    #[inline(always)]
    fn with_disp(&self, e: u32, d: usize) -> u32 {
        (e & !(DMAX << self.ib)) | (d.min(DMAX as usize) as u32) << self.ib
    }

    #[inline(always)]
    fn home(&self, h: u64) -> usize {
        home_of((h >> 32) as u32, self.tab.len())
    }

    /// Finds the entry with hash `h` whose session satisfies `eq`: (slot, session).
    #[inline(always)]
    pub fn find(&self, h: u64, mut eq: impl FnMut(u32) -> bool) -> Option<(usize, u32)> {
        let tag = self.tag(h);
        let len = self.tab.len();
        let mut pos = self.home(h);
        loop {
            let e = self.tab[pos];
            if e == EMPTY {
                return None;
            }
            if e & self.sig == tag && eq(e & self.mask) {
                return Some((pos, e & self.mask));
            }
            pos = next_of(pos, len);
        }
    }

    /// Inserts (the caller guarantees room: at most half the slots are ever used).
    #[inline]
    pub fn insert(&mut self, h: u64, idx: u32) {
        debug_assert!(idx < self.mask);
        let len = self.tab.len();
        let mut pos = self.home(h);
        let mut d = 0;
        while self.tab[pos] != EMPTY {
            pos = next_of(pos, len);
            d += 1;
        }
        self.tab[pos] = self.with_disp(self.tag(h) | idx, d);
    }

    /// Prefetches the home slot of hash `h`.
    #[inline]
    pub fn prefetch(&self, h: u64) {
        dpdk::prefetch(&self.tab[self.home(h)]);
    }

    /// The session in the home slot of `h` if its signature matches (a guess for prefetching).
    #[inline]
    pub fn peek(&self, h: u64) -> u32 {
        let e = self.tab[self.home(h)];
        if e != EMPTY && e & self.sig == self.tag(h) {
            e & self.mask
        } else {
            NONE
        }
    }

    /// Mean distance of the entries from their home slot (probe length - 1); `hash_of` gives
    /// the hash of a session's key.
    pub fn mean_displacement(&self, mut hash_of: impl FnMut(u32) -> u64) -> f64 {
        let len = self.tab.len();
        let (mut n, mut d) = (0usize, 0usize);
        for (pos, e) in self.tab.iter().enumerate() {
            if *e != EMPTY {
                d += dist_of(self.home(hash_of(e & self.mask)), pos, len);
                n += 1;
            }
        }
        if n == 0 { 0.0 } else { d as f64 / n as f64 }
    }

    /// Points slot `pos` at another session with the same key.
    #[inline]
    pub fn replace_at(&mut self, pos: usize, idx: u32) {
        self.tab[pos] = (self.tab[pos] & !self.mask) | idx;
    }

    /// Removes the entry at `pos` by backward shift. Each entry that may move carries its
    /// distance from home; only past `DMAX` is it recomputed with `hash_of` (the hash of a
    /// session's key), which reads the session.
    pub fn remove_at(&mut self, mut pos: usize, mut hash_of: impl FnMut(u32) -> u64) {
        let len = self.tab.len();
        let mut next = next_of(pos, len);
        loop {
            let e = self.tab[next];
            if e == EMPTY {
                self.tab[pos] = EMPTY;
                return;
            }
            let mut d = self.disp(e);
            if d == DMAX as usize {
                d = dist_of(self.home(hash_of(e & self.mask)), next, len);
            }
            // `e` may move back to `pos` unless its home lies cyclically in (pos, next].
            let gap = dist_of(pos, next, len);
            if d >= gap {
                self.tab[pos] = self.with_disp(e, d - gap);
                pos = next;
            }
            next = next_of(next, len);
        }
    }

    /// Checks every entry against its session's key (`hash_of`): signature and stored
    /// displacement (for consistency checks; a scan of the whole index).
    pub fn check(&self, mut hash_of: impl FnMut(u32) -> u64) -> Result<(), String> {
        let len = self.tab.len();
        for (pos, &e) in self.tab.iter().enumerate() {
            if e == EMPTY {
                continue;
            }
            let h = hash_of(e & self.mask);
            if e & self.sig != self.tag(h) {
                return Err(format!("entry of session {}: stale hash", e & self.mask));
            }
            let d = dist_of(self.home(h), pos, len);
            if self.disp(e) != d.min(DMAX as usize) {
                return Err(format!(
                    "entry of session {}: displacement {} stored, {d} true",
                    e & self.mask,
                    self.disp(e)
                ));
            }
        }
        Ok(())
    }

    /// Every entry as (its signature bits, the session it points at), in slot order (for
    /// consistency checks; a scan of the whole index).
    pub fn entries(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.tab
            .iter()
            .filter(|e| **e != EMPTY)
            .map(|e| (e & self.sig, e & self.mask))
    }

    /// Removes the entry with hash `h` pointing at `idx`; false if absent.
    pub fn remove(&mut self, h: u64, idx: u32, hash_of: impl FnMut(u32) -> u64) -> bool {
        match self.find(h, |i| i == idx) {
            Some((pos, _)) => {
                self.remove_at(pos, hash_of);
                true
            }
            None => false,
        }
    }
}

/// Counts per inside host, for the optional per-host session limit: `addr << 32 | count`.
/// Sized like [`Index`] (twice the sessions, any size).
const HOST_EMPTY: u64 = u64::MAX;

pub struct HostIndex {
    tab: Vec<u64>,
    seed: u64,
}

impl HostIndex {
    pub fn new(n: usize, seed: u64) -> HostIndex {
        HostIndex {
            tab: big_vec(index_slots(n), HOST_EMPTY),
            seed,
        }
    }

    pub fn bytes(&self) -> usize {
        self.tab.len() * 8
    }

    #[inline]
    fn home(&self, addr: u32) -> usize {
        home_of(
            (hash2(addr as u64, 0x5bd1_e995, self.seed) >> 32) as u32,
            self.tab.len(),
        )
    }

    fn slot(&self, addr: u32) -> (usize, bool) {
        let len = self.tab.len();
        let mut pos = self.home(addr);
        loop {
            let e = self.tab[pos];
            if e == HOST_EMPTY {
                return (pos, false);
            }
            if (e >> 32) as u32 == addr {
                return (pos, true);
            }
            pos = next_of(pos, len);
        }
    }

    /// Every (inside address, session count) held (a scan of the whole index).
    pub fn entries(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.tab
            .iter()
            .filter(|e| **e != HOST_EMPTY)
            .map(|e| ((e >> 32) as u32, *e as u32))
    }

    pub fn count(&self, addr: u32) -> u32 {
        match self.slot(addr) {
            (pos, true) => self.tab[pos] as u32,
            _ => 0,
        }
    }

    pub fn incr(&mut self, addr: u32) {
        let (pos, found) = self.slot(addr);
        self.tab[pos] = if found {
            self.tab[pos] + 1
        } else {
            (addr as u64) << 32 | 1
        };
    }

    pub fn decr(&mut self, addr: u32) {
        let (mut pos, found) = self.slot(addr);
        if !found {
            return;
        }
        if self.tab[pos] as u32 > 1 {
            self.tab[pos] -= 1;
            return;
        }
        // Backward-shift delete.
        let len = self.tab.len();
        let mut next = next_of(pos, len);
        loop {
            let e = self.tab[next];
            if e == HOST_EMPTY {
                self.tab[pos] = HOST_EMPTY;
                return;
            }
            let home = self.home((e >> 32) as u32);
            if dist_of(home, next, len) >= dist_of(pos, next, len) {
                self.tab[pos] = e;
                pos = next;
            }
            next = next_of(next, len);
        }
    }
}

/// Sessions, free list and LRU lists. Slots `cap..cap + CLASSES` are the list sentinels.
pub struct Sessions {
    pub s: Vec<Session>,
    cap: u32,
    free: u32,
    pub used: u32,
}

impl Sessions {
    pub fn new(cap: u32) -> Sessions {
        let total = cap as usize + CLASSES;
        let mut s = big_vec(total, Session::default());
        for (i, x) in s.iter_mut().enumerate().take(cap as usize) {
            x.lru_next = if i + 1 < cap as usize {
                i as u32 + 1
            } else {
                NONE
            };
        }
        for c in 0..CLASSES as u32 {
            let h = cap + c;
            s[h as usize].lru_next = h;
            s[h as usize].lru_prev = h;
        }
        Sessions {
            s,
            cap,
            free: if cap > 0 { 0 } else { NONE },
            used: 0,
        }
    }

    pub fn capacity(&self) -> u32 {
        self.cap
    }

    pub fn bytes(&self) -> usize {
        self.s.len() * std::mem::size_of::<Session>()
    }

    /// The free list from its head (for consistency checks).
    pub fn free_iter(&self) -> impl Iterator<Item = u32> + '_ {
        let mut cur = self.free;
        std::iter::from_fn(move || {
            if cur == NONE {
                return None;
            }
            let r = cur;
            cur = self.s[cur as usize].lru_next;
            Some(r)
        })
    }

    /// Takes a free session (fields reset), or None when full.
    #[inline]
    pub fn alloc(&mut self) -> Option<u32> {
        let i = self.free;
        if i == NONE {
            return None;
        }
        self.free = self.s[i as usize].lru_next;
        self.s[i as usize] = Session::default();
        self.used += 1;
        Some(i)
    }

    /// Returns a session (already unlinked from lists and indexes) to the free list.
    #[inline]
    pub fn release(&mut self, i: u32) {
        let x = &mut self.s[i as usize];
        x.class = CLASS_FREE;
        x.lru_next = self.free;
        x.lru_prev = NONE;
        self.free = i;
        self.used -= 1;
    }

    #[inline]
    fn head_of(&self, class: u8) -> u32 {
        self.cap + class as u32
    }

    /// Appends session `i` to the tail of its class's list.
    #[inline]
    pub fn lru_push(&mut self, i: u32, class: u8, now: u32) {
        let h = self.head_of(class);
        let tail = self.s[h as usize].lru_prev;
        {
            let x = &mut self.s[i as usize];
            x.class = class;
            x.lru_time = now;
            x.lru_prev = tail;
            x.lru_next = h;
        }
        self.s[tail as usize].lru_next = i;
        self.s[h as usize].lru_prev = i;
    }

    #[inline]
    pub fn lru_unlink(&mut self, i: u32) {
        let (p, n) = {
            let x = &self.s[i as usize];
            (x.lru_prev, x.lru_next)
        };
        self.s[p as usize].lru_next = n;
        self.s[n as usize].lru_prev = p;
    }

    /// The least recently used session of a class.
    #[inline]
    pub fn lru_head(&self, class: u8) -> Option<u32> {
        let h = self.head_of(class);
        let f = self.s[h as usize].lru_next;
        (f != h).then_some(f)
    }

    /// Iterates a class's list from the head (for tests and dumps).
    pub fn lru_iter(&self, class: u8) -> impl Iterator<Item = u32> + '_ {
        let h = self.head_of(class);
        let mut cur = self.s[h as usize].lru_next;
        std::iter::from_fn(move || {
            if cur == h {
                return None;
            }
            let r = cur;
            cur = self.s[cur as usize].lru_next;
            Some(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Session>(), 64);
        assert_eq!(std::mem::align_of::<Session>(), 64);
    }

    #[test]
    fn index_insert_find_remove_with_collisions() {
        let mut ix = Index::new(64);
        // Force collisions: identical high bits for several entries.
        let hs: Vec<u64> = (0..60u64).map(|i| ((i % 5) << 32) | i).collect();
        for (i, h) in hs.iter().enumerate() {
            ix.insert(*h, i as u32);
        }
        for (i, h) in hs.iter().enumerate() {
            assert_eq!(ix.find(*h, |x| x == i as u32).map(|r| r.1), Some(i as u32));
        }
        for i in (0..60).step_by(3) {
            assert!(ix.remove(hs[i], i as u32, |j| hs[j as usize]));
        }
        for (i, h) in hs.iter().enumerate() {
            let found = ix.find(*h, |x| x == i as u32).is_some();
            assert_eq!(found, i % 3 != 0, "entry {i}");
        }
        // Clusters of 12 per home: displacements past the stored maximum were recomputed.
        ix.check(|j| hs[j as usize]).unwrap();
    }

    #[test]
    fn index_packs_the_largest_session_with_any_signature() {
        // The last session index next to an all-ones signature must not read as an empty
        // slot, and signatures must not leak into the session index, at the edges of `ib`.
        for n in [1usize, 7, 8, 9, 255, 256, 65_535, 65_536] {
            let mut ix = Index::new(n);
            let last = n as u32 - 1;
            let hs = [u64::MAX, 0, 0x5555_5555_aaaa_aaaa];
            for h in hs {
                ix.insert(h, last);
                assert_eq!(ix.find(h, |i| i == last), Some((ix.home(h), last)), "n {n}");
                assert_eq!(ix.peek(h), last, "n {n}");
                assert!(ix.remove(h, last, |_| h), "n {n}");
                assert_eq!(ix.find(h, |_| true), None, "n {n}");
            }
        }
    }

    #[test]
    fn index_random_against_model() {
        let mut ix = Index::new(1500);
        let mut model = std::collections::HashMap::new();
        let mut x = 88172645463325252u64;
        for step in 0..20000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 1500;
            let h = hash2(key, 7, 1);
            if let std::collections::hash_map::Entry::Vacant(e) = model.entry(key) {
                if model_len_ok(e.key()) {
                    ix.insert(h, key as u32);
                    e.insert(step);
                }
            } else {
                assert!(ix.remove(h, key as u32, |j| hash2(j as u64, 7, 1)));
                model.remove(&key);
            }
            if step % 1000 == 0 {
                ix.check(|j| hash2(j as u64, 7, 1)).unwrap();
            }
            if model.len() > 900 {
                let k = *model.keys().next().unwrap();
                assert!(ix.remove(hash2(k, 7, 1), k as u32, |j| hash2(j as u64, 7, 1)));
                model.remove(&k);
            }
        }
        for k in 0..1500u64 {
            let f = ix.find(hash2(k, 7, 1), |i| i == k as u32).is_some();
            assert_eq!(f, model.contains_key(&k));
        }
        fn model_len_ok(_: &u64) -> bool {
            true
        }
    }

    #[test]
    fn host_index_counts() {
        let mut h = HostIndex::new(16, 3);
        for a in 0..10u32 {
            for _ in 0..=a {
                h.incr(0x0a00_0000 + a);
            }
        }
        for a in 0..10u32 {
            assert_eq!(h.count(0x0a00_0000 + a), a + 1);
        }
        for a in 0..10u32 {
            for _ in 0..=a {
                h.decr(0x0a00_0000 + a);
            }
        }
        for a in 0..10u32 {
            assert_eq!(h.count(0x0a00_0000 + a), 0);
        }
    }

    #[test]
    fn free_list_and_lru() {
        let mut s = Sessions::new(3);
        let a = s.alloc().unwrap();
        let b = s.alloc().unwrap();
        let c = s.alloc().unwrap();
        assert!(s.alloc().is_none());
        s.lru_push(a, CLASS_UDP, 1);
        s.lru_push(b, CLASS_UDP, 2);
        s.lru_push(c, CLASS_TCP_EST, 3);
        assert_eq!(s.lru_iter(CLASS_UDP).collect::<Vec<_>>(), vec![a, b]);
        s.lru_unlink(a);
        s.lru_push(a, CLASS_UDP, 4);
        assert_eq!(s.lru_iter(CLASS_UDP).collect::<Vec<_>>(), vec![b, a]);
        assert_eq!(s.lru_head(CLASS_TCP_EST), Some(c));
        s.lru_unlink(c);
        s.release(c);
        assert_eq!(s.lru_head(CLASS_TCP_EST), None);
        assert_eq!(s.alloc(), Some(c));
        assert_eq!(s.used, 3);
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[test]
    fn probe_lengths_stay_short() {
        // A power of two and sizes that are not (multiply-shift homes).
        for n in [65536usize, 60000, 99_991] {
            probe_lengths(n);
        }
    }

    fn probe_lengths(n: usize) {
        let mut ix = Index::new(n);
        assert_eq!(ix.bytes(), 8 * n, "two 4-byte slots per entry");
        let mut hs = Vec::new();
        for i in 0..n as u32 {
            let h = key_hash(
                17,
                0x0a08_0000 | (i % 4096),
                1024 + (i / 4096) as u16,
                0xc000_0201,
                9,
                5 ^ 0x9e37_79b9_7f4a_7c15,
            );
            ix.insert(h, i);
            hs.push(h);
        }
        assert!(ix.mean_displacement(|j| hs[j as usize]) < 4.0);
        // Signature matches that are not the entry (each would cost a session read).
        let mut total = 0usize;
        let mut dist = 0usize;
        for (i, h) in hs.iter().enumerate() {
            let mut probes = 0;
            let (pos, _) = ix
                .find(*h, |x| {
                    probes += 1;
                    x == i as u32
                })
                .expect("inserted");
            total += probes;
            dist += dist_of(ix.home(*h), pos, ix.tab.len());
        }
        assert!(
            (total as f64 / n as f64) < 1.01,
            "session reads per lookup {}",
            total as f64 / n as f64
        );
        eprintln!(
            "n {n}: avg eq calls {} avg dist {}",
            total as f64 / n as f64,
            dist as f64 / n as f64
        );
        assert!(dist as f64 / (n as f64) < 4.0);
    }
}
