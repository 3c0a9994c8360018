//! Per-source meters: a fixed-capacity open-addressing table from a source key (an IPv4
//! address, or an IPv6 source address cut to a prefix) to a meter, with incremental ageing and
//! a sliced migration into a table of another size; [`Sources`] holds one table per family.
//!
//! Sources are chosen by whoever sends packets, so the table is built against flooding: the
//! home slot comes from a hash keyed with a random seed drawn per table (a sender cannot pick
//! addresses that collide without knowing it), and no key lives more than [`MAX_PROBE`] slots
//! from its home, so a lookup costs at most that many probes whatever the traffic; a new
//! source that would need a longer run is refused and counted (`probe_limit`).

use super::profile::MeterState;

/// One slot of a [`SourceTable`]: one cache line (a meter state is at most 40 bytes, an IPv6
/// key 16), so a lookup that hits its home slot touches one line. A slot is free when `last`
/// is 0: times are stamped at least 1 (no separate flag, so that an IPv6 slot fits a line).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Slot<K, V> {
    key: K,
    /// When the key was last seen (TSC, at least 1); 0: the slot is free.
    last: u64,
    val: V,
}

impl<K: Key, V> Slot<K, V> {
    #[inline(always)]
    fn used(&self) -> bool {
        self.last != 0
    }
}

const _: () = assert!(std::mem::size_of::<Slot<u128, MeterState>>() == 64);
const _: () = assert!(std::mem::size_of::<Slot<u32, MeterState>>() == 64);

/// A key of a [`SourceTable`]: a source address (IPv4 `u32`, IPv6 prefix `u128`, host order)
/// and its keyed hash.
pub trait Key: Copy + Eq + Default + std::fmt::Debug {
    /// A 64-bit hash of the key keyed with `seed` (which keys collide depends on the seed).
    fn hash(self, seed: u64) -> u64;
}

/// murmur3's 64-bit finaliser: a bijection whose multiplications spread every input bit.
#[inline(always)]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

impl Key for u32 {
    /// The seed xor the key through the finaliser.
    #[inline(always)]
    fn hash(self, seed: u64) -> u64 {
        fmix64(self as u64 ^ seed)
    }
}

impl Key for u128 {
    /// The upper half keyed like an IPv4 key, then mixed again with the lower half (0 for a
    /// prefix of /64 or shorter): distinct keys with the same upper half never collide in 64
    /// bits, and which others do depends on the seed.
    #[inline(always)]
    fn hash(self, seed: u64) -> u64 {
        fmix64(fmix64((self >> 64) as u64 ^ seed) ^ self as u64)
    }
}

/// A fixed-capacity open-addressing (linear probing) table from IPv4 source address to a
/// meter, with backward-shift deletion (no tombstones) and an incremental ageing sweep. All
/// memory is allocated at construction; lookups, inserts and deletions never allocate.
#[derive(Debug, Clone)]
pub struct SourceTable<V = MeterState, K = u32> {
    slots: Box<[Slot<K, V>]>,
    mask: usize,
    shift: u32,
    seed: u64,
    len: u32,
    max: u32,
    pub(super) idle_ticks: u64,
    cursor: usize,
    /// The table this one replaced (a reload changed the size), moved over a slice at a time
    /// by [`SourceTable::migrate`] and looked up when a key is not here yet.
    draining: Option<Drain<K, V>>,
}

/// Slots of a replaced [`SourceTable`] still to be moved into its successor.
#[derive(Debug, Clone)]
struct Drain<K, V> {
    slots: Box<[Slot<K, V>]>,
    shift: u32,
    seed: u64,
    /// Next slot to move.
    next: usize,
}

impl<K: Key, V> Drain<K, V> {
    /// The slot of `key` (state and last time seen), if it is still here.
    fn find(&self, key: K) -> Option<&Slot<K, V>> {
        let mask = self.slots.len() - 1;
        let mut i = home(key, self.seed, self.shift);
        for _ in 0..MAX_PROBE {
            if !self.slots[i].used() {
                return None;
            }
            if self.slots[i].key == key {
                return Some(&self.slots[i]);
            }
            i = (i + 1) & mask;
        }
        None
    }
}

/// Longest distance (in slots) of a key from its home slot. At most half full, a table with
/// a uniform hash has runs of a few slots; 32 leaves a wide margin for honest traffic and
/// bounds what a hostile one can cost per packet.
pub const MAX_PROBE: usize = 32;

/// Why [`SourceTable::get_or_insert`] refused a new source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The table holds its `max` sources.
    Full,
    /// Every slot within [`MAX_PROBE`] of the key's home is taken.
    ProbeLimit,
}

/// Home slot of `key` in a table of 2^(64 - shift) slots: the top bits of a keyed 64-bit mix
/// ([`Key::hash`]: murmur3's finaliser, whose multiplications make which keys collide depend
/// on the seed).
#[inline]
fn home<K: Key>(key: K, seed: u64, shift: u32) -> usize {
    (key.hash(seed) >> shift) as usize
}

/// A random 64-bit seed, different in every table (std's per-process random hasher keys,
/// drawn from the OS once, varied per call).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x0070_6f6c_6c66_7764);
    h.finish()
}

/// Slots a worker moves per housekeeping call when a source table is replaced by one of
/// another size (about 20 us of work; the largest table, 2^19 slots, moves in about half a
/// second at the default 1 ms).
pub const MIGRATE_BUDGET: usize = 1024;

impl<V: Copy, K: Key> SourceTable<V, K> {
    /// A table for up to `max` sources (at most half full, so probes stay short).
    pub fn new(max: u32, idle_ticks: u64) -> SourceTable<V, K>
    where
        V: Default,
    {
        let cap = (max.max(1) as usize * 2).next_power_of_two().max(8);
        SourceTable {
            slots: vec![
                Slot {
                    key: K::default(),
                    last: 0,
                    val: V::default(),
                };
                cap
            ]
            .into_boxed_slice(),
            mask: cap - 1,
            shift: 64 - cap.trailing_zeros(),
            seed: random_seed(),
            len: 0,
            max,
            idle_ticks,
            cursor: 0,
            draining: None,
        }
    }

    /// Sources metered now (during a migration, those moved so far).
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    #[inline]
    fn home(&self, key: K) -> usize {
        home(key, self.seed, self.shift)
    }

    /// The value of `key`, stamped as seen at `now`; created with `make()` if absent.
    /// `Ok((value, created))`, or why a new key was refused.
    #[inline]
    pub fn get_or_insert(
        &mut self,
        key: K,
        now: u64,
        make: impl FnOnce() -> V,
    ) -> Result<(&mut V, bool), Refused> {
        self.get_or_insert_at(self.home(key), key, now, make)
    }

    /// The home slot of `key` (for [`SourceTable::prefetch_slot`] and
    /// [`SourceTable::get_or_insert_at`]: a burst hashes each key once).
    #[inline]
    pub fn home_of(&self, key: K) -> usize {
        self.home(key)
    }

    /// Prefetches slot `i` (a key's home from [`SourceTable::home_of`]).
    #[inline]
    pub fn prefetch_slot(&self, i: usize) {
        dpdk::prefetch(&self.slots[i & self.mask]);
    }

    /// [`SourceTable::get_or_insert`] with the key's home slot `home` found already
    /// ([`SourceTable::home_of`] on this table).
    #[inline]
    pub fn get_or_insert_at(
        &mut self,
        home: usize,
        key: K,
        now: u64,
        make: impl FnOnce() -> V,
    ) -> Result<(&mut V, bool), Refused> {
        let mut i = home & self.mask;
        let mut probes = 0;
        loop {
            if !self.slots[i].used() {
                break;
            }
            if self.slots[i].key == key {
                let s = &mut self.slots[i];
                s.last = s.last.max(now);
                return Ok((&mut s.val, false));
            }
            probes += 1;
            if probes == MAX_PROBE {
                return Err(Refused::ProbeLimit);
            }
            i = (i + 1) & self.mask;
        }
        if self.len >= self.max {
            return Err(Refused::Full);
        }
        self.len += 1;
        // Not here: a source of the table being migrated keeps its state.
        let carried = self.draining.as_ref().and_then(|d| d.find(key)).copied();
        self.slots[i] = match carried {
            Some(s) => Slot {
                last: s.last.max(now),
                ..s
            },
            None => Slot {
                key,
                last: now.max(1),
                val: make(),
            },
        };
        Ok((&mut self.slots[i].val, carried.is_none()))
    }

    /// Prefetches the home slot of `key` (its cache miss then overlaps other work).
    #[inline]
    pub fn prefetch(&self, key: K) {
        dpdk::prefetch(&self.slots[self.home(key)]);
    }

    /// The value of `key`, if present (no time stamp).
    pub fn get(&self, key: K) -> Option<&V> {
        let mut i = self.home(key);
        for _ in 0..MAX_PROBE {
            if !self.slots[i].used() {
                break;
            }
            if self.slots[i].key == key {
                return Some(&self.slots[i].val);
            }
            i = (i + 1) & self.mask;
        }
        self.draining.as_ref()?.find(key).map(|s| &s.val)
    }

    /// Empties slot `i` and shifts later members of its probe run back (Knuth's algorithm R),
    /// so lookups never need tombstones.
    fn remove_at(&mut self, mut i: usize) {
        self.slots[i].last = 0;
        self.len -= 1;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            if !self.slots[j].used() {
                return;
            }
            let k = self.home(self.slots[j].key);
            // The member at j may stay if its home lies cyclically in (i, j].
            let stays = if i <= j {
                i < k && k <= j
            } else {
                i < k || k <= j
            };
            if !stays {
                self.slots[i] = self.slots[j];
                self.slots[j].last = 0;
                i = j;
            }
        }
    }

    /// Table slots (a power of two).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Visits up to `budget` slots (at most twice the capacity: a removal re-checks its slot)
    /// from where the last sweep stopped and removes sources idle for longer than the idle
    /// time. Returns how many were removed.
    pub fn age(&mut self, now: u64, budget: usize) -> u32 {
        let mut removed = 0;
        let n = budget.min(2 * self.slots.len());
        let mut visited = 0;
        while visited < n {
            let i = self.cursor;
            let s = &self.slots[i];
            if s.used() && now.saturating_sub(s.last) > self.idle_ticks {
                self.remove_at(i);
                removed += 1;
                // A member may have moved into slot i: look at it again (bounded by budget).
            } else {
                self.cursor = (self.cursor + 1) & self.mask;
            }
            visited += 1;
        }
        removed
    }

    /// Takes over the sources of `old` (a table of another size that this one replaces),
    /// without a pass over it now: its slots stay behind this table, are looked up when a key
    /// is not here yet, and move over [`MIGRATE_BUDGET`] at a time in [`SourceTable::migrate`]
    /// (housekeeping). Sources that do not fit are dropped. When the move is done the worker
    /// frees the old slots (once per size change, between bursts).
    pub fn drain_from(&mut self, mut old: SourceTable<V, K>) {
        // A table still draining its own predecessor finishes that first (two size changes
        // within a migration: rare, and bounded by the older table's size).
        old.migrate(usize::MAX);
        self.draining = Some(Drain {
            slots: old.slots,
            shift: old.shift,
            seed: old.seed,
            next: 0,
        });
    }

    /// Whether sources of a replaced table are still being moved in.
    pub fn migrating(&self) -> bool {
        self.draining.is_some()
    }

    /// Calls `f(key, last seen, value)` for the sources in slots `start..start + slots` (slot
    /// order; a listing step: the work is bounded by `slots`). Returns the slot to continue
    /// at, None at the end of the table.
    pub fn visit(
        &self,
        start: usize,
        slots: usize,
        mut f: impl FnMut(K, u64, &V),
    ) -> Option<usize> {
        let end = start.saturating_add(slots).min(self.slots.len());
        for s in self.slots.get(start..end).unwrap_or_default() {
            if s.used() {
                f(s.key, s.last, &s.val);
            }
        }
        (end < self.slots.len()).then_some(end)
    }

    /// Moves up to `budget` slots of the replaced table in (a source already here, seen again
    /// since the change, keeps its newer state); releases the replaced slots when done.
    pub fn migrate(&mut self, budget: usize) {
        let Some(mut d) = self.draining.take() else {
            return;
        };
        let end = d.next.saturating_add(budget).min(d.slots.len());
        for s in &d.slots[d.next..end] {
            if s.used() {
                // Present already (moved by a lookup): it keeps its state.
                let v = s.val;
                let _ = self.get_or_insert(s.key, s.last, || v);
            }
        }
        d.next = end;
        if end < d.slots.len() {
            self.draining = Some(d);
        }
    }
}

/// The meters of a per-source policer: one [`SourceTable`] per address family, each for up
/// to `max_sources` sources. IPv4 sources are keyed on the whole address; IPv6 sources on the
/// source address cut to a prefix (`/64` by default: one meter per customer subnet, as an
/// IPv6 host picks addresses at will inside its /64, RFC 8981).
#[derive(Debug, Clone)]
pub struct Sources<V = MeterState> {
    pub v4: SourceTable<V, u32>,
    pub v6: SourceTable<V, u128>,
    /// Prefix length of the IPv6 keys (1..=128) and its mask.
    prefix6: u8,
    mask6: u128,
}

/// The mask of an IPv6 prefix of `len` bits (0..=128), host order.
#[inline]
pub fn prefix_mask6(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - l.min(128) as u32),
    }
}

impl<V: Copy + Default> Sources<V> {
    /// Empty tables for up to `max` sources of each family, IPv6 sources keyed on their first
    /// `prefix6` bits.
    pub fn new(max: u32, idle_ticks: u64, prefix6: u8) -> Sources<V> {
        Sources {
            v4: SourceTable::new(max, idle_ticks),
            v6: SourceTable::new(max, idle_ticks),
            prefix6,
            mask6: prefix_mask6(prefix6),
        }
    }
}

impl<V: Copy> Sources<V> {
    /// The key of an IPv6 source address (host order): its prefix.
    #[inline(always)]
    pub fn key6(&self, src: u128) -> u128 {
        src & self.mask6
    }

    pub fn prefix6(&self) -> u8 {
        self.prefix6
    }

    /// Sources metered now, both families.
    pub fn len(&self) -> u32 {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most sources of each family.
    pub fn max(&self) -> u32 {
        self.v4.max()
    }

    /// Slots of each family's table.
    pub fn capacity(&self) -> usize {
        self.v4.capacity()
    }

    pub(super) fn idle_ticks(&self) -> u64 {
        self.v4.idle_ticks
    }

    pub(super) fn set_idle_ticks(&mut self, t: u64) {
        self.v4.idle_ticks = t;
        self.v6.idle_ticks = t;
    }

    /// The meter of IPv4 source `src`, if present.
    pub fn get(&self, src: u32) -> Option<&V> {
        self.v4.get(src)
    }

    /// The meter of the prefix of IPv6 source `src` (host order), if present.
    pub fn get6(&self, src: u128) -> Option<&V> {
        self.v6.get(self.key6(src))
    }

    /// Whether sources of replaced tables are still being moved in.
    pub fn migrating(&self) -> bool {
        self.v4.migrating() || self.v6.migrating()
    }

    /// [`SourceTable::migrate`] on both tables.
    pub fn migrate(&mut self, budget: usize) {
        self.v4.migrate(budget);
        self.v6.migrate(budget);
    }

    /// [`SourceTable::age`] on both tables, `budget` slots each; returns how many were
    /// removed.
    pub fn age(&mut self, now: u64, budget: usize) -> u32 {
        self.v4.age(now, budget) + self.v6.age(now, budget)
    }

    /// [`SourceTable::drain_from`] for both families. IPv6 sources keyed on another prefix
    /// length do not move (their keys mean other sources): they start again.
    pub fn drain_from(&mut self, old: Sources<V>) {
        self.v4.drain_from(old.v4);
        if old.prefix6 == self.prefix6 {
            self.v6.drain_from(old.v6);
        }
    }

    /// One listing step over both tables (IPv4 slots, then IPv6 slots, as one cursor):
    /// `f(ipv6, key, last seen, value)` for the sources in `slots` slots from `start`; the
    /// cursor to continue at, None at the end. Sources of a replaced table not moved yet are
    /// not seen.
    pub fn visit(
        &self,
        start: usize,
        slots: usize,
        mut f: impl FnMut(bool, u128, u64, &V),
    ) -> Option<usize> {
        let cap = self.v4.capacity();
        if start < cap {
            return Some(
                self.v4
                    .visit(start, slots, |k, l, v| f(false, k as u128, l, v))
                    .unwrap_or(cap),
            );
        }
        self.v6
            .visit(start - cap, slots, |k, l, v| f(true, k, l, v))
            .map(|n| n + cap)
    }

    /// Takes over the tables of `old` (same size), which gets this one's in exchange; the idle
    /// time stays this one's. IPv6 sources keyed on another prefix length stay behind (this
    /// table's IPv6 side stays empty).
    pub fn take_over(&mut self, old: &mut Sources<V>) {
        let idle = self.idle_ticks();
        std::mem::swap(&mut self.v4, &mut old.v4);
        if old.prefix6 == self.prefix6 {
            std::mem::swap(&mut self.v6, &mut old.v6);
        }
        self.set_idle_ticks(idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_table_insert_lookup_full() {
        let mut t: SourceTable<u32> = SourceTable::new(3, 100);
        assert_eq!(t.get_or_insert(7, 0, || 70).unwrap(), (&mut 70, true));
        assert_eq!(t.get_or_insert(8, 0, || 80).unwrap(), (&mut 80, true));
        *t.get_or_insert(7, 5, || 0).unwrap().0 += 1;
        assert_eq!(t.get(7), Some(&71));
        assert!(t.get_or_insert(0, 0, || 1).unwrap().1, "0.0.0.0 is a key");
        assert_eq!(
            t.get_or_insert(9, 0, || 90).map(|_| ()),
            Err(Refused::Full),
            "full at 3"
        );
        assert_eq!(t.len(), 3);
        assert!(
            t.get_or_insert(8, 0, || 0).is_ok(),
            "a known key still works when full"
        );
    }

    #[test]
    fn a_replaced_table_drains_in_slices_and_newer_state_wins() {
        let mut old: SourceTable<u32> = SourceTable::new(300, 100);
        for k in 0..300u32 {
            old.get_or_insert(k * 7919, 10, || k).unwrap();
        }
        let mut t: SourceTable<u32> = SourceTable::new(1000, 100);
        t.drain_from(old);
        assert!(t.migrating());
        assert_eq!(t.len(), 0);
        // Looked up before its turn: moved with its state, not created; then changed here.
        let (v, created) = t.get_or_insert(5 * 7919, 20, || 0).unwrap();
        assert_eq!((*v, created), (5, false));
        *v = 555;
        assert_eq!(t.get(6 * 7919), Some(&6), "found in the old slots");
        let mut calls = 0;
        while t.migrating() {
            t.migrate(100);
            calls += 1;
        }
        assert_eq!(calls, 1024 / 100 + 1, "old table: 1024 slots, 100 per call");
        assert_eq!(t.len(), 300);
        assert_eq!(t.get(5 * 7919), Some(&555), "the newer state stays");
        assert!(
            (0..300)
                .filter(|k| *k != 5)
                .all(|k| t.get(k * 7919) == Some(&k))
        );

        // A smaller table keeps as many as fit; the rest are gone.
        let mut small: SourceTable<u32> = SourceTable::new(50, 100);
        small.drain_from(t);
        small.migrate(usize::MAX);
        assert!(!small.migrating());
        assert_eq!(small.len(), 50);
        assert_eq!(
            (0..300).filter(|k| small.get(k * 7919).is_some()).count(),
            50
        );
    }

    #[test]
    fn ageing_removes_only_idle_sources_and_keeps_the_rest_findable() {
        // Many keys in a small table force long probe runs and wrap-around, so deletions
        // must shift members back correctly.
        let n = 400u32;
        let mut t: SourceTable<u32> = SourceTable::new(n, 1000);
        for k in 0..n {
            let key = k.wrapping_mul(0x0101_0101) ^ 0xc0a8_0000;
            let seen = if k % 3 == 0 { 0 } else { 5000 };
            t.get_or_insert(key, seen, || k).unwrap();
        }
        assert_eq!(t.len(), n);
        // A full sweep at time 5500: every key last seen at 0 is idle (> 1000), others not.
        let mut removed = 0;
        // (A removal re-checks its slot, so a sweep takes more visits than slots.)
        for _ in 0..2 * t.slots.len() {
            removed += t.age(5500, 1);
        }
        let idle = (0..n).filter(|k| k % 3 == 0).count() as u32;
        assert_eq!(removed, idle);
        assert_eq!(t.len(), n - idle);
        for k in 0..n {
            let key = k.wrapping_mul(0x0101_0101) ^ 0xc0a8_0000;
            assert_eq!(t.get(key).copied(), (k % 3 != 0).then_some(k), "key {k}");
        }
        // Freed room is usable again.
        for k in 0..idle {
            t.get_or_insert(0x0a00_0000 + k, 6000, || 0).unwrap();
        }
        assert_eq!(
            t.get_or_insert(0x0b00_0000, 6000, || 0).map(|_| ()),
            Err(Refused::Full)
        );
    }

    /// A table of 64 sources (idle after 10) against a map through 20,000 random inserts and
    /// ageing sweeps, with keys `key(x)` from a pseudo-random `x`.
    fn insert_age_matches_a_map<K: Key + std::hash::Hash>(key: impl Fn(u64) -> K) {
        use std::collections::HashMap;
        let mut t: SourceTable<u64, K> = SourceTable::new(64, 10);
        let mut model: HashMap<K, (u64, u64)> = HashMap::new();
        let mut x = 0x1234_5678u64;
        for now in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = key(x);
            let r = t.get_or_insert(key, now, || now);
            let full = model.len() >= 64;
            match model.get_mut(&key) {
                Some(e) => {
                    assert_eq!(*r.unwrap().0, e.0);
                    e.1 = now;
                }
                None if !full => {
                    assert!(r.unwrap().1);
                    model.insert(key, (now, now));
                }
                None => assert_eq!(r.map(|_| ()), Err(Refused::Full)),
            }
            if now % 7 == 0 {
                t.age(now, 16);
            }
            // Whatever the sweep removed was idle; whatever is left is in the model.
            model.retain(|k, e| {
                let present = t.get(*k).is_some();
                if !present {
                    assert!(now - e.1 > 10, "key {k:?} removed while active");
                }
                present
            });
            assert_eq!(t.len() as usize, model.len());
        }
    }

    #[test]
    fn random_insert_age_matches_a_map() {
        insert_age_matches_a_map(|x| (x % 97) as u32 * 0x0001_0001);
    }

    /// Keys whose home slot in `t` is `h`, found by trying addresses in order (what a sender
    /// who knew the hash and seed would do).
    fn colliding(t: &SourceTable<u32>, h: usize, n: usize) -> Vec<u32> {
        (0u32..).filter(|k| t.home(*k) == h).take(n).collect()
    }

    #[test]
    fn colliding_sources_stop_at_the_probe_limit_and_lookups_stay_bounded() {
        let mut t: SourceTable<u32> = SourceTable::new(1000, 100);
        let keys = colliding(&t, 7, MAX_PROBE + 8);
        for (n, k) in keys.iter().enumerate() {
            let r = t.get_or_insert(*k, 0, || n as u32).map(|(v, c)| (*v, c));
            if n < MAX_PROBE {
                assert_eq!(r, Ok((n as u32, true)), "key {n} fits in the run");
            } else {
                assert_eq!(r, Err(Refused::ProbeLimit), "key {n} is past the limit");
            }
        }
        assert_eq!(t.len() as usize, MAX_PROBE);
        for (n, k) in keys.iter().enumerate() {
            assert_eq!(t.get(*k).copied(), (n < MAX_PROBE).then_some(n as u32));
        }
        // Other sources still get in, and the refused ones do once room is made.
        let elsewhere = (1u32 << 24..)
            .find(|k| (100..1000).contains(&t.home(*k)))
            .unwrap();
        assert!(t.get_or_insert(elsewhere, 0, || 0).is_ok());
        assert_eq!(t.age(1000, 4 * t.capacity()), MAX_PROBE as u32 + 1);
        assert!(t.get_or_insert(keys[MAX_PROBE], 1000, || 0).is_ok());
    }

    #[test]
    fn every_table_has_its_own_seed_so_collisions_do_not_carry_over() {
        let a: SourceTable<u32> = SourceTable::new(1000, 100);
        let keys = colliding(&a, 0, 64);
        let mut b: SourceTable<u32> = SourceTable::new(1000, 100);
        assert_ne!(a.seed, b.seed);
        let homes: std::collections::HashSet<usize> = keys.iter().map(|k| b.home(*k)).collect();
        assert!(homes.len() > 48, "64 keys on {} homes", homes.len());
        assert!(keys.iter().all(|k| b.get_or_insert(*k, 0, || 0).is_ok()));
    }

    fn v6(s: &str) -> u128 {
        s.parse::<std::net::Ipv6Addr>().unwrap().into()
    }

    #[test]
    fn ipv6_sources_share_a_meter_per_prefix() {
        // /64 (the default): two hosts of one subnet are one source, another subnet another.
        let mut t: Sources<u32> = Sources::new(8, 100, 64);
        let (a, b) = (
            v6("2001:db8:1:2::1"),
            v6("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
        );
        let other = v6("2001:db8:1:3::1");
        let k = t.key6(a);
        assert_eq!(k, v6("2001:db8:1:2::"));
        assert_eq!(
            t.v6.get_or_insert(k, 1, || 10).map(|(v, c)| (*v, c)),
            Ok((10, true))
        );
        *t.v6.get_or_insert(t.key6(b), 2, || 0).unwrap().0 += 1;
        assert_eq!(t.get6(a), Some(&11), "b metered on a's meter");
        assert!(t.get6(other).is_none());
        assert!(
            t.v6.get_or_insert(t.key6(other), 3, || 20).unwrap().1,
            "new source"
        );
        assert_eq!((t.v6.len(), t.v4.len(), t.len()), (2, 0, 2));
        // IPv4 sources live in their own table: 0.0.0.0 and :: are different sources.
        assert!(t.v4.get_or_insert(0x0a00_0001, 3, || 30).unwrap().1);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(0x0a00_0001), Some(&30));

        // /48: the two /64s above are one source; /128: every address is its own.
        let mut t: Sources<u32> = Sources::new(8, 100, 48);
        assert_eq!(t.key6(a), t.key6(other));
        assert_eq!(t.key6(a), v6("2001:db8:1::"));
        assert_ne!(t.key6(a), t.key6(v6("2001:db8:2::1")));
        t.v6.get_or_insert(t.key6(a), 1, || 1).unwrap();
        assert!(
            !t.v6.get_or_insert(t.key6(other), 1, || 2).unwrap().1,
            "same /48"
        );
        let mut t: Sources<u32> = Sources::new(8, 100, 128);
        assert_eq!(t.key6(b), b);
        t.v6.get_or_insert(t.key6(a), 1, || 1).unwrap();
        assert!(
            t.v6.get_or_insert(t.key6(b), 1, || 2).unwrap().1,
            "own /128"
        );
        assert_eq!(t.get6(a), Some(&1));
        assert_eq!(t.get6(b), Some(&2));
        assert_eq!(prefix_mask6(1), 1 << 127);
        assert_eq!(prefix_mask6(0), 0);
        assert_eq!(prefix_mask6(128), u128::MAX);
    }

    #[test]
    fn ipv6_table_insert_age_matches_a_map() {
        // The u128 table, with keys that differ only in their upper or lower half.
        insert_age_matches_a_map(|x| {
            let n = (x % 97) as u128;
            if n.is_multiple_of(2) {
                n << 64
            } else {
                0x2001_0db8 << 96 | n
            }
        });
    }

    #[test]
    fn a_prefix_change_keeps_ipv4_sources_and_restarts_ipv6_ones() {
        let mut old: Sources<u32> = Sources::new(100, 100, 64);
        old.v4.get_or_insert(7, 1, || 70).unwrap();
        old.v6
            .get_or_insert(old.key6(v6("2001:db8::1")), 1, || 60)
            .unwrap();
        // Same size, other prefix: v4 taken over, v6 left behind.
        let mut new: Sources<u32> = Sources::new(100, 100, 56);
        new.take_over(&mut old);
        assert_eq!(new.get(7), Some(&70));
        assert_eq!(new.v6.len(), 0);
        assert_eq!(new.prefix6(), 56);
        assert_eq!(
            old.get6(v6("2001:db8::1")),
            Some(&60),
            "the reply keeps them"
        );
        // Same prefix: both move (here: another size, drained).
        let mut old: Sources<u32> = Sources::new(100, 100, 64);
        old.v6
            .get_or_insert(old.key6(v6("2001:db8::1")), 1, || 60)
            .unwrap();
        let mut big: Sources<u32> = Sources::new(1000, 100, 64);
        big.drain_from(old);
        assert_eq!(
            big.get6(v6("2001:db8::2")),
            Some(&60),
            "same /64, found while draining"
        );
        big.migrate(usize::MAX);
        assert!(!big.migrating());
        assert_eq!(big.len(), 1);
    }
}
