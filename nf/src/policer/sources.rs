//! Per-source meters: a fixed-capacity open-addressing table from IPv4 source address to a
//! meter, with incremental ageing and a sliced migration into a table of another size.

use super::profile::MeterState;

/// One slot of a [`SourceTable`]: one cache line (a meter state is at most 40 bytes), so a
/// lookup that hits its home slot touches one line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct Slot<V> {
    used: bool,
    key: u32,
    last: u64,
    val: V,
}

/// A fixed-capacity open-addressing (linear probing) table from IPv4 source address to a
/// meter, with backward-shift deletion (no tombstones) and an incremental ageing sweep. All
/// memory is allocated at construction; lookups, inserts and deletions never allocate.
#[derive(Debug, Clone)]
pub struct SourceTable<V = MeterState> {
    slots: Box<[Slot<V>]>,
    mask: usize,
    shift: u32,
    len: u32,
    max: u32,
    pub(super) idle_ticks: u64,
    cursor: usize,
    /// The table this one replaced (a reload changed the size), moved over a slice at a time
    /// by [`SourceTable::migrate`] and looked up when a key is not here yet.
    draining: Option<Drain<V>>,
}

/// Slots of a replaced [`SourceTable`] still to be moved into its successor.
#[derive(Debug, Clone)]
struct Drain<V> {
    slots: Box<[Slot<V>]>,
    shift: u32,
    /// Next slot to move.
    next: usize,
}

impl<V> Drain<V> {
    /// The slot of `key` (state and last time seen), if it is still here.
    fn find(&self, key: u32) -> Option<&Slot<V>> {
        let mask = self.slots.len() - 1;
        let mut i = home(key, self.shift);
        while self.slots[i].used {
            if self.slots[i].key == key {
                return Some(&self.slots[i]);
            }
            i = (i + 1) & mask;
        }
        None
    }
}

/// Home slot of `key` in a table of 2^(64 - shift) slots. Fibonacci hashing: the top bits of
/// key x 2^64/phi.
#[inline]
fn home(key: u32, shift: u32) -> usize {
    ((key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
}

/// Slots a worker moves per housekeeping call when a source table is replaced by one of
/// another size (about 20 us of work; 2^20 slots move in about a second at the default 1 ms).
pub const MIGRATE_BUDGET: usize = 1024;

impl<V: Copy> SourceTable<V> {
    /// A table for up to `max` sources (at most half full, so probes stay short).
    pub fn new(max: u32, idle_ticks: u64) -> SourceTable<V>
    where
        V: Default,
    {
        let cap = (max.max(1) as usize * 2).next_power_of_two().max(8);
        SourceTable {
            slots: vec![
                Slot {
                    used: false,
                    key: 0,
                    last: 0,
                    val: V::default(),
                };
                cap
            ]
            .into_boxed_slice(),
            mask: cap - 1,
            shift: 64 - cap.trailing_zeros(),
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
    fn home(&self, key: u32) -> usize {
        home(key, self.shift)
    }

    /// The value of `key`, stamped as seen at `now`; created with `make()` if absent.
    /// `Some((value, created))`, or `None` when the key is new and the table holds `max`.
    #[inline]
    pub fn get_or_insert(
        &mut self,
        key: u32,
        now: u64,
        make: impl FnOnce() -> V,
    ) -> Option<(&mut V, bool)> {
        let mut i = self.home(key);
        loop {
            if !self.slots[i].used {
                break;
            }
            if self.slots[i].key == key {
                let s = &mut self.slots[i];
                s.last = s.last.max(now);
                return Some((&mut s.val, false));
            }
            i = (i + 1) & self.mask;
        }
        if self.len >= self.max {
            return None;
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
                used: true,
                key,
                last: now,
                val: make(),
            },
        };
        Some((&mut self.slots[i].val, carried.is_none()))
    }

    /// Prefetches the home slot of `key` (its cache miss then overlaps other work).
    #[inline]
    pub fn prefetch(&self, key: u32) {
        dpdk::prefetch(&self.slots[self.home(key)]);
    }

    /// The value of `key`, if present (no time stamp).
    pub fn get(&self, key: u32) -> Option<&V> {
        let mut i = self.home(key);
        while self.slots[i].used {
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
        self.slots[i].used = false;
        self.len -= 1;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            if !self.slots[j].used {
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
                self.slots[j].used = false;
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
            if s.used && now.saturating_sub(s.last) > self.idle_ticks {
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
    pub fn drain_from(&mut self, mut old: SourceTable<V>) {
        // A table still draining its own predecessor finishes that first (two size changes
        // within a migration: rare, and bounded by the older table's size).
        old.migrate(usize::MAX);
        self.draining = Some(Drain {
            slots: old.slots,
            shift: old.shift,
            next: 0,
        });
    }

    /// Whether sources of a replaced table are still being moved in.
    pub fn migrating(&self) -> bool {
        self.draining.is_some()
    }

    /// Moves up to `budget` slots of the replaced table in (a source already here, seen again
    /// since the change, keeps its newer state); releases the replaced slots when done.
    pub fn migrate(&mut self, budget: usize) {
        let Some(mut d) = self.draining.take() else {
            return;
        };
        let end = d.next.saturating_add(budget).min(d.slots.len());
        for s in &d.slots[d.next..end] {
            if s.used {
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
        assert!(t.get_or_insert(9, 0, || 90).is_none(), "full at 3");
        assert_eq!(t.len(), 3);
        assert!(
            t.get_or_insert(8, 0, || 0).is_some(),
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
        assert!(t.get_or_insert(0x0b00_0000, 6000, || 0).is_none());
    }

    #[test]
    fn random_insert_age_matches_a_map() {
        use std::collections::HashMap;
        let mut t: SourceTable<u64> = SourceTable::new(64, 10);
        let mut model: HashMap<u32, (u64, u64)> = HashMap::new();
        let mut x = 0x1234_5678u64;
        for now in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % 97) as u32 * 0x0001_0001;
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
                None => assert!(r.is_none()),
            }
            if now % 7 == 0 {
                t.age(now, 16);
            }
            // Whatever the sweep removed was idle; whatever is left is in the model.
            model.retain(|k, e| {
                let present = t.get(*k).is_some();
                if !present {
                    assert!(now - e.1 > 10, "key {k} removed while active");
                }
                present
            });
            assert_eq!(t.len() as usize, model.len());
        }
    }
}
