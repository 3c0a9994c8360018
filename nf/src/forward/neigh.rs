//! The neighbour (ARP) table, shared by every worker without locks.
//!
//! ARP replies arrive on whichever worker polls the queue they land in, and every worker
//! forwards to every next hop, so all workers share one table. It is a fixed-capacity
//! open-addressing hash table of atomics:
//!
//! - `ip` (AtomicU32): the key, 0 = free, [`RECLAIMING`] while a slot changes hands. A free
//!   slot is claimed with a compare-and-swap. When a new address finds its probe window full,
//!   a slot whose entry is no longer worth keeping (incomplete or failed with no request in
//!   the last retry interval, or learnt and expired; never static, never a resolved entry in
//!   its lifetime) is reclaimed: the reclaimer swaps its address for [`RECLAIMING`] (only one
//!   wins), resets the entry with a new generation, then stores the new address. Slots never
//!   become free again, so probe runs never break.
//! - `word` (AtomicU64): MAC (bits 0..48), port (48..56), VALID (56), STATIC (57), generation
//!   (58..64): one atomic load gives a consistent (MAC, port, state). A reader re-checks the
//!   slot's address after loading the word, so a word it uses belongs to its address; a
//!   learner writes the word with a compare-and-swap against the word it read under the same
//!   check, so a learn racing a reclaim fails instead of writing into the new owner's entry.
//! - `confirmed`, `requested` (AtomicU64, TSC) and `probes` (AtomicU32): ageing and the ARP
//!   request rate limit; a worker claims the right to send a request with a compare-and-swap
//!   on `requested`, so one request leaves per retry interval whatever the number of workers.
//!
//! Readers (every forwarded packet) do relaxed/acquire loads only. Writers (ARP events, a few
//! per second) do single stores or compare-and-swaps; nothing ever blocks or spins.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

const VALID: u64 = 1 << 56;
const STATIC: u64 = 1 << 57;
const GEN_ONE: u64 = 1 << 58;
const GEN_MASK: u64 = !((1 << 58) - 1);
const MAC_MASK: u64 = (1 << 48) - 1;
/// The address of a slot while it is being reclaimed (255.255.255.255 is never a neighbour).
pub const RECLAIMING: u32 = u32::MAX;
/// Slots probed before giving up (insert) or concluding absence (lookup).
const MAX_PROBE: usize = 32;

#[repr(C, align(32))]
#[derive(Default)]
struct Slot {
    ip: AtomicU32,
    probes: AtomicU32,
    word: AtomicU64,
    confirmed: AtomicU64,
    requested: AtomicU64,
}

/// Timing of resolution and ageing, in TSC ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighTiming {
    /// A learnt entry is used for this long after its last confirmation.
    pub timeout: u64,
    /// After this age an entry in use is refreshed (unicast request) while still used.
    pub refresh_after: u64,
    /// At most one request per neighbour per interval.
    pub retry: u64,
    /// Unanswered requests before the neighbour counts as failed.
    pub retries: u32,
    /// How long a failed neighbour is not asked again (packets to it are dropped at once).
    pub holddown: u64,
}

impl NeighTiming {
    /// Timing from seconds and milliseconds at `tsc_hz`.
    pub fn new(timeout_s: u64, retry_ms: u64, retries: u32, tsc_hz: u64) -> NeighTiming {
        let timeout = timeout_s.max(1) * tsc_hz;
        let retry = retry_ms.max(1) * tsc_hz / 1000;
        let retries = retries.max(1);
        // Start refreshing early enough for every retry to fit before expiry, and not before
        // half the lifetime.
        let probe_window = retry * retries as u64;
        let refresh_after = timeout.saturating_sub(probe_window).max(timeout / 2);
        NeighTiming {
            timeout,
            refresh_after,
            retry,
            retries,
            holddown: retry * retries as u64,
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Usable: send to `mac`. `refresh`: the entry is getting old; ask again (unicast).
    Hit {
        mac: [u8; 6],
        slot: usize,
        refresh: bool,
    },
    /// Known address, no usable MAC (never answered, expired, or failed).
    Unresolved { slot: usize, failed: bool },
    /// Not in the table.
    Absent,
}

/// State of an entry, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Static,
    Reachable,
    /// Valid, being refreshed.
    Stale,
    /// Asked, not answered yet.
    Incomplete,
    /// No answer to `retries` requests.
    Failed,
    /// Learnt once, older than the timeout.
    Expired,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Static => "static",
            State::Reachable => "reachable",
            State::Stale => "stale",
            State::Incomplete => "incomplete",
            State::Failed => "failed",
            State::Expired => "expired",
        }
    }
}

/// One entry as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ip: u32,
    pub mac: Option<[u8; 6]>,
    pub port: u16,
    pub state: State,
    /// TSC ticks since the last confirmation (0 for static or never-confirmed entries).
    pub age: u64,
    pub probes: u32,
}

pub struct NeighTable {
    slots: Box<[Slot]>,
    mask: usize,
    timing: NeighTiming,
    reclaims: AtomicU64,
}

#[inline]
fn hash(ip: u32) -> usize {
    (ip.wrapping_mul(0x9e37_79b1) ^ (ip >> 16)) as usize
}

fn pack(mac: [u8; 6], port: u16) -> u64 {
    let mut m = 0u64;
    for b in mac {
        m = (m << 8) | b as u64;
    }
    m | ((port as u64 & 0xff) << 48)
}

fn unpack_mac(w: u64) -> [u8; 6] {
    let b = (w & MAC_MASK).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn unpack_port(w: u64) -> u16 {
    ((w >> 48) & 0xff) as u16
}

impl NeighTable {
    /// A table of at least `capacity` slots (rounded up to a power of two).
    pub fn new(capacity: usize, timing: NeighTiming) -> NeighTable {
        let n = capacity.max(16).next_power_of_two();
        NeighTable {
            slots: (0..n).map(|_| Slot::default()).collect(),
            mask: n - 1,
            timing,
            reclaims: AtomicU64::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn timing(&self) -> NeighTiming {
        self.timing
    }

    /// The slot holding `ip`, if any. `ip` 0 is never stored.
    #[inline]
    pub fn find(&self, ip: u32) -> Option<usize> {
        let mut i = hash(ip) & self.mask;
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let k = self.slots[i].ip.load(Acquire);
            if k == ip {
                return Some(i);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// The slot of `ip`, claiming a free one if needed, else reclaiming one whose entry is
    /// no longer worth keeping at `now` (see `NeighTable::reclaimable`). `None` if every
    /// slot of the probe window holds a live entry.
    pub fn insert(&self, ip: u32, port: u16, now: u64) -> Option<usize> {
        match self.insert_free(ip, port) {
            Some(i) => Some(i),
            None => self.reclaim(ip, port, now),
        }
    }

    /// Entries reclaimed for new addresses since the table was made.
    pub fn reclaimed(&self) -> u64 {
        self.reclaims.load(Relaxed)
    }

    /// Whether the entry in `slot` may be reclaimed at `now`: not static, not resolved within
    /// its lifetime, and no request for it in the last retry interval (an incomplete entry
    /// being resolved, or a neighbour asked again, keeps its slot).
    fn reclaimable(&self, slot: usize, now: u64) -> bool {
        let s = &self.slots[slot];
        let w = s.word.load(Acquire);
        if w & STATIC != 0 {
            return false;
        }
        let t = &self.timing;
        if w & VALID != 0 && now.saturating_sub(s.confirmed.load(Acquire)) < t.timeout {
            return false;
        }
        let requested = s.requested.load(Acquire);
        requested == 0 || now.saturating_sub(requested) >= t.retry
    }

    /// Gives a reclaimable slot of `ip`'s probe window to `ip` (see the module's notes).
    fn reclaim(&self, ip: u32, port: u16, now: u64) -> Option<usize> {
        let mut i = hash(ip) & self.mask;
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let s = &self.slots[i];
            let old = s.ip.load(Acquire);
            if old == ip {
                return Some(i);
            }
            if old != 0
                && old != RECLAIMING
                && self.reclaimable(i, now)
                && s.ip
                    .compare_exchange(old, RECLAIMING, AcqRel, Acquire)
                    .is_ok()
            {
                // Ours alone now: reset the entry under a new generation, then hand it over.
                let w = s.word.load(Acquire);
                s.confirmed.store(0, Release);
                s.requested.store(0, Release);
                s.probes.store(0, Release);
                s.word.store(
                    (w & GEN_MASK).wrapping_add(GEN_ONE) | pack([0; 6], port),
                    Release,
                );
                s.ip.store(ip, Release);
                self.reclaims.fetch_add(1, Relaxed);
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// The slot of `ip`, claiming a free one if needed. `None` if the probe window is full.
    fn insert_free(&self, ip: u32, port: u16) -> Option<usize> {
        if ip == 0 || ip == RECLAIMING {
            return None;
        }
        let mut i = hash(ip) & self.mask;
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let s = &self.slots[i];
            match s.ip.load(Acquire) {
                k if k == ip => return Some(i),
                0 => {
                    match s.ip.compare_exchange(0, ip, AcqRel, Acquire) {
                        Ok(_) => {
                            // Record the port for listings unless a learner was faster (a
                            // reader seeing the key before this sees word 0: not VALID).
                            let _ =
                                s.word
                                    .compare_exchange(0, pack([0; 6], port), Relaxed, Relaxed);
                            return Some(i);
                        }
                        Err(k) if k == ip => return Some(i),
                        Err(_) => {}
                    }
                }
                _ => {}
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Looks `ip` up at time `now` (the per-packet path: loads only).
    #[inline]
    pub fn lookup(&self, ip: u32, now: u64) -> Lookup {
        let Some(i) = self.find(ip) else {
            return Lookup::Absent;
        };
        let s = &self.slots[i];
        let w = s.word.load(Acquire);
        let confirmed = s.confirmed.load(Acquire);
        // Still `ip`'s after those loads: the word is its own (a reclaim changes the address
        // before the word; see the module's notes).
        if s.ip.load(Acquire) != ip {
            return Lookup::Absent;
        }
        if w & STATIC != 0 {
            return Lookup::Hit {
                mac: unpack_mac(w),
                slot: i,
                refresh: false,
            };
        }
        if w & VALID != 0 {
            let age = now.saturating_sub(confirmed);
            if age < self.timing.timeout {
                return Lookup::Hit {
                    mac: unpack_mac(w),
                    slot: i,
                    refresh: age >= self.timing.refresh_after,
                };
            }
        }
        Lookup::Unresolved {
            slot: i,
            failed: self.failed(i, now),
        }
    }

    /// Whether the neighbour in `slot` did not answer `retries` requests and is in hold-down.
    fn failed(&self, slot: usize, now: u64) -> bool {
        let s = &self.slots[slot];
        let t = &self.timing;
        if s.probes.load(Relaxed) < t.retries {
            return false;
        }
        let since = now.saturating_sub(s.requested.load(Relaxed));
        since >= t.retry && since < t.retry + t.holddown
    }

    /// Whether a request for `slot` is due at `now` (what [`NeighTable::claim_request`] would
    /// grant, without claiming it).
    pub fn request_due(&self, slot: usize, now: u64) -> bool {
        let s = &self.slots[slot];
        self.due(s, s.requested.load(Relaxed), now)
    }

    /// Whether a request is due at `now` for slot `s` last asked at `last`.
    fn due(&self, s: &Slot, last: u64, now: u64) -> bool {
        let t = &self.timing;
        let since = now.saturating_sub(last);
        if last != 0 && since < t.retry {
            return false;
        }
        s.probes.load(Relaxed) < t.retries || since >= t.retry + t.holddown
    }

    /// Claims the right to send one ARP request for `slot` now. True for at most one caller per
    /// retry interval; false while the neighbour is failed (hold-down), after which resolution
    /// starts over.
    pub fn claim_request(&self, slot: usize, now: u64) -> bool {
        let s = &self.slots[slot];
        let t = &self.timing;
        let last = s.requested.load(Relaxed);
        if !self.due(s, last, now) {
            return false;
        }
        if s.probes.load(Relaxed) >= t.retries {
            // Hold-down over: start a new round of requests.
            s.probes.store(0, Relaxed);
        }
        if s.requested
            .compare_exchange(last, now.max(1), AcqRel, Relaxed)
            .is_err()
        {
            return false;
        }
        s.probes.fetch_add(1, Relaxed);
        true
    }

    /// Records `ip is at mac` seen on `port` at `now`. With `create`, a missing entry is added
    /// (the appliance was the target of the ARP packet); without, only an existing entry is
    /// updated (RFC 826's merge flag). Static entries never change. Returns whether an entry
    /// was written.
    pub fn learn(&self, ip: u32, mac: [u8; 6], port: u16, now: u64, create: bool) -> bool {
        // A reclaim of the slot between finding it and writing it makes the write fail; the
        // address is then looked for again (bounded: a reclaim needs an idle entry).
        for _ in 0..4 {
            let slot = if create {
                self.insert(ip, port, now)
            } else {
                self.find(ip)
            };
            let Some(i) = slot else {
                return false;
            };
            let s = &self.slots[i];
            let w = s.word.load(Acquire);
            if s.ip.load(Acquire) != ip {
                continue;
            }
            if w & STATIC != 0 {
                return false;
            }
            s.confirmed.store(now.max(1), Release);
            s.probes.store(0, Relaxed);
            let new = pack(mac, port) | VALID | (w & GEN_MASK);
            if s.word.compare_exchange(w, new, AcqRel, Acquire).is_ok() {
                return true;
            }
        }
        false
    }

    /// Whether `ip` is a static neighbour (from the configuration).
    pub fn is_static(&self, ip: u32) -> bool {
        self.find(ip)
            .is_some_and(|i| self.slots[i].word.load(Acquire) & STATIC != 0)
    }

    /// Adds a static entry (never aged, never overwritten by ARP). False if the table is full.
    pub fn add_static(&self, ip: u32, mac: [u8; 6], port: u16) -> bool {
        match self.insert_free(ip, port) {
            Some(i) => {
                self.slots[i]
                    .word
                    .store(pack(mac, port) | VALID | STATIC, Release);
                true
            }
            None => false,
        }
    }

    /// Copies the learnt (non-static) entries of `old` with their MAC, port and age: used when
    /// a reload builds a new table (new capacity or timing) so that hosts need not be asked
    /// again. Entries that do not fit are left out (they are simply resolved again).
    pub fn import(&self, old: &NeighTable) {
        for s in old.slots.iter() {
            let ip = s.ip.load(Acquire);
            let w = s.word.load(Acquire);
            if ip == 0 || w & VALID == 0 || w & STATIC != 0 {
                continue;
            }
            let Some(i) = self.insert_free(ip, unpack_port(w)) else {
                continue;
            };
            let d = &self.slots[i];
            if d.word.load(Acquire) & STATIC != 0 {
                continue;
            }
            d.confirmed.store(s.confirmed.load(Relaxed), Relaxed);
            d.word.store(w, Release);
        }
    }

    /// The MAC of a usable entry in `slot` (after a [`Lookup::Hit`] or a learn).
    pub fn mac_of(&self, slot: usize) -> [u8; 6] {
        unpack_mac(self.slots[slot].word.load(Acquire))
    }

    /// Every entry, for listings (management side; a snapshot of atomics, not a transaction).
    pub fn entries(&self, now: u64) -> Vec<Entry> {
        let t = &self.timing;
        let mut v = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            let ip = s.ip.load(Acquire);
            if ip == 0 || ip == RECLAIMING {
                continue;
            }
            let w = s.word.load(Acquire);
            let confirmed = s.confirmed.load(Relaxed);
            let age = if confirmed == 0 {
                0
            } else {
                now.saturating_sub(confirmed)
            };
            let probes = s.probes.load(Relaxed);
            let state = if w & STATIC != 0 {
                State::Static
            } else if w & VALID != 0 && age < t.timeout {
                if age >= t.refresh_after && probes > 0 {
                    State::Stale
                } else {
                    State::Reachable
                }
            } else if self.failed(i, now) {
                State::Failed
            } else if w & VALID != 0 {
                State::Expired
            } else {
                State::Incomplete
            };
            v.push(Entry {
                ip,
                mac: (w & VALID != 0).then(|| unpack_mac(w)),
                port: unpack_port(w),
                state,
                age: if w & STATIC != 0 { 0 } else { age },
                probes,
            });
        }
        v.sort_by_key(|e| e.ip);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1_000_000; // 1 tick = 1 us in these tests
    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

    fn table() -> NeighTable {
        // timeout 10 s, retry 1 s, 3 retries.
        NeighTable::new(64, NeighTiming::new(10, 1000, 3, HZ))
    }

    #[test]
    fn timing_from_config() {
        let t = NeighTiming::new(10, 1000, 3, HZ);
        assert_eq!(t.timeout, 10 * HZ);
        assert_eq!(t.retry, HZ);
        assert_eq!(t.refresh_after, 7 * HZ);
        assert_eq!(t.holddown, 3 * HZ);
        // Short lifetimes refresh at half-life, not before.
        assert_eq!(NeighTiming::new(2, 1000, 3, HZ).refresh_after, HZ);
    }

    #[test]
    fn static_neighbours_are_known_as_such() {
        let t = table();
        assert!(t.add_static(0x0a00_0002, A, 1));
        assert!(t.is_static(0x0a00_0002));
        assert!(
            !t.learn(0x0a00_0002, B, 2, 5, true),
            "ARP never rewrites it"
        );
        assert!(t.learn(0x0a00_0003, B, 1, 5, true));
        assert!(!t.is_static(0x0a00_0003));
        assert!(!t.is_static(0x0a00_0004), "absent");
    }

    #[test]
    fn learn_lookup_refresh_expire() {
        let t = table();
        let ip = 0xc000_0202;
        assert_eq!(t.lookup(ip, 100), Lookup::Absent);
        assert!(
            !t.learn(ip, A, 1, 100, false),
            "merge-only learn needs an entry"
        );
        assert!(t.learn(ip, A, 1, 100, true));
        let slot = t.find(ip).unwrap();
        assert_eq!(
            t.lookup(ip, 100 + 5 * HZ),
            Lookup::Hit {
                mac: A,
                slot,
                refresh: false
            }
        );
        assert_eq!(
            t.lookup(ip, 100 + 8 * HZ),
            Lookup::Hit {
                mac: A,
                slot,
                refresh: true
            }
        );
        assert!(matches!(
            t.lookup(ip, 100 + 10 * HZ),
            Lookup::Unresolved { failed: false, .. }
        ));
        // A new confirmation (merge) revives it with the new MAC.
        assert!(t.learn(ip, B, 1, 100 + 11 * HZ, false));
        assert_eq!(
            t.lookup(ip, 100 + 11 * HZ),
            Lookup::Hit {
                mac: B,
                slot,
                refresh: false
            }
        );
        let e = &t.entries(100 + 12 * HZ)[0];
        assert_eq!(
            (e.ip, e.mac, e.port, e.state, e.age),
            (ip, Some(B), 1, State::Reachable, HZ)
        );
    }

    #[test]
    fn requests_are_rate_limited_then_fail_then_retry() {
        let t = table();
        let ip = 0x0a00_0001;
        let s = t.insert(ip, 0, 1).unwrap();
        let mut now = 5 * HZ;
        assert!(t.claim_request(s, now), "first request");
        assert!(!t.claim_request(s, now + 10), "one per interval");
        assert!(matches!(
            t.lookup(ip, now),
            Lookup::Unresolved { failed: false, .. }
        ));
        now += HZ;
        assert!(t.claim_request(s, now), "second");
        now += HZ;
        assert!(t.claim_request(s, now), "third");
        assert!(!t.claim_request(s, now + HZ), "3 retries used: failed");
        assert!(matches!(
            t.lookup(ip, now + HZ),
            Lookup::Unresolved { failed: true, .. }
        ));
        assert_eq!(t.entries(now + HZ)[0].state, State::Failed);
        // After the hold-down a new round starts.
        now += HZ + 3 * HZ;
        assert!(matches!(
            t.lookup(ip, now),
            Lookup::Unresolved { failed: false, .. }
        ));
        assert!(t.claim_request(s, now));
        // A reply resets the probes.
        t.learn(ip, A, 0, now, true);
        assert_eq!(t.entries(now)[0].probes, 0);
    }

    #[test]
    fn static_entries_never_age_or_change() {
        let t = table();
        assert!(t.add_static(0x0a00_0009, A, 2));
        assert!(!t.learn(0x0a00_0009, B, 2, 1, true));
        let s = t.find(0x0a00_0009).unwrap();
        assert_eq!(
            t.lookup(0x0a00_0009, u64::MAX / 2),
            Lookup::Hit {
                mac: A,
                slot: s,
                refresh: false
            }
        );
        assert_eq!(t.entries(0)[0].state, State::Static);
    }

    #[test]
    fn full_probe_window_is_reported() {
        let t = NeighTable::new(16, NeighTiming::new(10, 1000, 3, HZ));
        let mut ok = 0;
        // Every entry is being resolved (asked just now): none may be reclaimed.
        for ip in 1..=40u32 {
            if let Some(slot) = t.insert(ip, 0, 5) {
                assert!(t.claim_request(slot, 5));
                ok += 1;
            }
        }
        assert_eq!(ok, 16, "exactly the capacity, then None");
        assert_eq!(t.reclaimed(), 0);
        assert_eq!(t.entries(0).len(), 16);
    }

    #[test]
    fn import_keeps_learnt_entries_not_statics() {
        let old = table();
        old.learn(0x0a00_0001, A, 1, 500, true);
        old.add_static(0x0a00_0002, B, 1);
        old.insert(0x0a00_0003, 1, 500); // incomplete: not copied
        let new = NeighTable::new(256, NeighTiming::new(20, 1000, 3, HZ));
        new.add_static(0x0a00_0002, A, 2);
        new.import(&old);
        let e = new.entries(500 + HZ);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(
            (e[0].ip, e[0].mac, e[0].state, e[0].age),
            (0x0a00_0001, Some(A), State::Reachable, HZ)
        );
        assert_eq!(
            (e[1].mac, e[1].port, e[1].state),
            (Some(A), 2, State::Static),
            "the new static wins"
        );
    }

    #[test]
    fn concurrent_learners_and_readers() {
        let t = std::sync::Arc::new(NeighTable::new(1024, NeighTiming::new(100, 1000, 3, HZ)));
        let hs: Vec<_> = (0..4u32)
            .map(|k| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for r in 0..2000u32 {
                        let ip = 0x0a00_0000 + (r % 300) + 1;
                        let mac = [2, 0, 0, 0, (ip >> 8) as u8, ip as u8];
                        if (r + k) % 3 == 0 {
                            t.learn(ip, mac, 1, 10, true);
                        }
                        if let Lookup::Hit { mac: m, .. } = t.lookup(ip, 20) {
                            assert_eq!(m, mac, "a reader never sees another address's MAC");
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(t.entries(20).len(), 300);
    }

    #[test]
    fn a_scan_recycles_its_own_entries_and_never_evicts_resolved_or_static_ones() {
        // 16 slots: the probe window covers the whole table.
        let t = NeighTable::new(16, NeighTiming::new(10, 1000, 3, HZ));
        let mac = |ip: u32| [2, 0, 0, 0, (ip >> 8) as u8, ip as u8];
        let resolved = [0x0a00_0101u32, 0x0a00_0102, 0x0a00_0103];
        for ip in resolved {
            assert!(t.learn(ip, mac(ip), 1, 1, true));
        }
        assert!(t.add_static(0x0a00_0109, A, 1));
        // A scan: one new address every 10 ms for 60 s, each asked once (as the stage does).
        let (mut refused, mut taken) = (0, 0);
        for k in 0..6000u32 {
            let now = 1 + k as u64 * HZ / 100;
            let ip = 0x0a01_0000 + k;
            match t.insert(ip, 1, now) {
                Some(slot) => {
                    taken += 1;
                    assert!(t.claim_request(slot, now));
                }
                None => refused += 1,
            }
            // The neighbours in use keep answering (refreshed every few seconds).
            if k % 300 == 0 {
                for ip in resolved {
                    assert!(t.learn(ip, mac(ip), 1, now, false), "{ip:x} still there");
                }
            }
            for ip in resolved {
                assert!(
                    matches!(t.lookup(ip, now), Lookup::Hit { mac: m, .. } if m == mac(ip)),
                    "{ip:x} evicted at {k}"
                );
            }
            assert!(t.is_static(0x0a00_0109));
        }
        // 12 slots for the scan, each reusable 1 s (the retry interval) after its request:
        // about 12 new addresses per second get a slot, the rest are refused.
        assert!((600..=800).contains(&taken), "taken {taken}");
        assert_eq!(taken + refused, 6000);
        assert_eq!(t.reclaimed(), taken - 12);
        // An address being resolved right now (asked < 1 s ago) keeps its slot.
        let now = 1 + 6000 * HZ / 100;
        let fresh = 0x0a02_0000;
        let slot = t
            .insert(fresh, 1, now)
            .expect("an old scan entry is reclaimed");
        assert!(t.claim_request(slot, now));
        for k in 0..100 {
            let _ = t.insert(0x0a03_0000 + k, 1, now + HZ / 2);
        }
        assert_eq!(t.find(fresh), Some(slot));
        // Expired learnt entries are reclaimable too.
        let later = now + 20 * HZ;
        for k in 0..12u32 {
            assert!(t.insert(0x0a04_0000 + k, 1, later).is_some());
        }
        assert!(t.find(resolved[0]).is_none(), "expired: reused");
        assert!(t.is_static(0x0a00_0109));
    }

    #[test]
    fn readers_and_learners_never_see_another_addresss_mac_while_slots_are_reused() {
        // Learners learn (ip -> mac(ip)) at time 0; a scanner inserts new addresses at a time
        // where every learnt entry is expired, so it keeps reclaiming slots under them.
        let t = std::sync::Arc::new(NeighTable::new(64, NeighTiming::new(1, 10, 1, HZ)));
        let mac = |ip: u32| {
            [
                2,
                0,
                (ip >> 24) as u8,
                (ip >> 16) as u8,
                (ip >> 8) as u8,
                ip as u8,
            ]
        };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scanner = {
            let (t, stop) = (t.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut k = 0u32;
                while !stop.load(Relaxed) {
                    let _ = t.insert(0x0b00_0000 + k % 100_000, 1, 10 * HZ);
                    k = k.wrapping_add(1);
                }
                k
            })
        };
        let hs: Vec<_> = (0..3u32)
            .map(|w| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for r in 0..200_000u32 {
                        let ip = 0x0a00_0000 + (r * 7 + w) % 500 + 1;
                        if r % 2 == 0 {
                            t.learn(ip, mac(ip), 1, 5, true);
                        }
                        if let Lookup::Hit { mac: m, .. } = t.lookup(ip, 5) {
                            assert_eq!(m, mac(ip), "{ip:x} read another address's MAC");
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        stop.store(true, Relaxed);
        assert!(scanner.join().unwrap() > 0);
        assert!(t.reclaimed() > 0, "slots were reused under the readers");
        for e in t.entries(5) {
            if let Some(m) = e.mac {
                assert_eq!(m, mac(e.ip), "entry {:x}", e.ip);
            }
        }
    }
}
