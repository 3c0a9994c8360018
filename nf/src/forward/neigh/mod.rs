//! The neighbour table (ARP for IPv4, neighbour discovery for IPv6), shared by every worker
//! without locks.
//!
//! Replies arrive on whichever worker polls the queue they land in, and every worker forwards
//! to every next hop, so all workers share one table per address family:
//! [`NeighTable<u32>`](NeighTable) (the default, IPv4) and [`NeighTable<u128>`](NeighTable)
//! (IPv6), both keyed by the address in host order. It is a fixed-capacity open-addressing
//! hash table of atomics; a slot is its key (below) and:
//!
//! - `word` (AtomicU64): MAC (bits 0..48), port (48..56), VALID (56), STATIC (57), generation
//!   (58..64): one atomic load gives a consistent (MAC, port, state). A reader re-checks the
//!   slot's key after loading the word, so a word it uses belongs to its address; a learner
//!   writes the word with a compare-and-swap against the word it read under the same check,
//!   so a learn racing a reclaim fails instead of writing into the new owner's entry.
//! - `confirmed`, `requested` (AtomicU64, TSC) and `probes` (AtomicU32): ageing and the
//!   request rate limit; a worker claims the right to send a request with a compare-and-swap
//!   on `requested`, so one request leaves per retry interval whatever the number of workers.
//!
//! Slots are claimed from free with a compare-and-swap on the key. When a new address finds
//! its probe window full, a slot whose entry is no longer worth keeping (incomplete or failed
//! with no request in the last retry interval, or learnt and expired; never static, never a
//! resolved entry in its lifetime) is reclaimed: the reclaimer swaps the key for a
//! reclaiming value (only one wins), resets the entry with a new generation, then publishes
//! the new address. Slots never become free again, so probe runs never break.
//!
//! ## Keys
//!
//! - IPv4 (`AtomicU32`, 32-byte slots): the address itself; 0 = free, [`RECLAIMING`] while a
//!   slot changes hands. A claim is one compare-and-swap 0 -> address.
//! - IPv6 (64-byte slots): there is no stable 128-bit atomic, so the key is `tag`
//!   (AtomicU32) plus the address in `hi`/`lo` (AtomicU64). The tag is 0 when free, else
//!   a state (bits 0..2: live, claiming, reclaiming), the entry's generation (2..8, the
//!   word's) and a 24-bit hash tag of the address (8..32). A claimer swaps the tag 0 ->
//!   claiming (a reclaimer: live -> reclaiming; one wins), stores `hi`/`lo`, resets the
//!   entry, then stores the live tag with Release. A reader loads the tag (Acquire); if it
//!   is live with its hash tag it compares `hi`/`lo`, loads the word, then re-checks that the
//!   tag is unchanged: a sequence lock whose sequence is the generation. Every store a
//!   change of owner makes (address halves, word, times; and those of the next owner's
//!   learners) comes after the swap that starts it and is a Release store read with Acquire,
//!   so a reader that loads any of them sees the tag changed at its re-check; the live tag
//!   it loaded first (Acquire) makes its owner's address and entry visible. Each owner of a
//!   slot has a new generation in its tag, so the re-check fails even when the next owner
//!   has the same hash tag: a reader never takes a torn address (one half of each owner;
//!   IPv6 neighbours often share their upper half) for its own, nor uses another address's
//!   MAC. Like the IPv4 key, it cannot tell apart owners 64 reclaims apart within one lookup
//!   of a few nanoseconds.
//!
//! Two workers inserting the same new IPv6 address at once: the second one sees the slot
//! claiming or reclaiming with the address's hash tag (the tag carries it from the swap on)
//! and waits at most 128 tag loads (the claimer's window is a few stores) for it to go live,
//! then compares the address. Only if the claimer is preempted in that window does the
//! second go on and claim another slot for the same address (IPv4 has the same rare case when an address is inserted while another
//! inserter reclaims a slot for it). The duplicate is harmless: both entries belong to that
//! address (every reader checks it), every lookup, learn and request uses the first one in
//! probe order once it is live, so the other is no longer asked for, refreshed or learnt
//! into: it ages into a reclaimable entry and its slot is reused. At worst the address is
//! resolved once more.
//!
//! Readers (every forwarded packet) do relaxed/acquire loads only. Writers (ARP and ND
//! events, a few per second) do single stores or compare-and-swaps; nothing blocks, and the
//! only wait is the bounded one above, on the insert of a new IPv6 neighbour.

mod key;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests6;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

use key::SlotKey;
pub use key::{NeighAddr, RECLAIMING};

const VALID: u64 = 1 << 56;
const STATIC: u64 = 1 << 57;
const GEN_ONE: u64 = 1 << 58;
const GEN_MASK: u64 = !((1 << 58) - 1);
const MAC_MASK: u64 = (1 << 48) - 1;
/// Slots probed before giving up (insert) or concluding absence (lookup).
const MAX_PROBE: usize = 32;

/// The IPv4 neighbour table (what `NeighTable` names by default).
pub type NeighTable4 = NeighTable<u32>;
/// The IPv6 neighbour table (addresses as `u128` in host order).
pub type NeighTable6 = NeighTable<u128>;

#[repr(C)]
struct Slot<A: NeighAddr> {
    key: A::Key,
    probes: AtomicU32,
    word: AtomicU64,
    confirmed: AtomicU64,
    requested: AtomicU64,
    _align: <A::Key as SlotKey>::Align,
}

impl<A: NeighAddr> Default for Slot<A> {
    fn default() -> Self {
        Slot {
            key: Default::default(),
            probes: AtomicU32::new(0),
            word: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            requested: AtomicU64::new(0),
            _align: Default::default(),
        }
    }
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
pub struct Entry<A = u32> {
    /// The neighbour's address (IPv4 `u32` or IPv6 `u128`, host order).
    pub ip: A,
    pub mac: Option<[u8; 6]>,
    pub port: u16,
    pub state: State,
    /// TSC ticks since the last confirmation (0 for static or never-confirmed entries).
    pub age: u64,
    pub probes: u32,
}

pub struct NeighTable<A: NeighAddr = u32> {
    slots: Box<[Slot<A>]>,
    mask: usize,
    timing: NeighTiming,
    reclaims: AtomicU64,
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

/// A slot as a reader found it: index and key word as loaded (for the re-check).
type Found = (usize, u32);

impl<A: NeighAddr> NeighTable<A> {
    /// A table of at least `capacity` slots (rounded up to a power of two).
    pub fn new(capacity: usize, timing: NeighTiming) -> NeighTable<A> {
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
    pub fn find(&self, ip: A) -> Option<usize> {
        self.find_at(ip).map(|(i, _)| i)
    }

    #[inline(always)]
    fn find_at(&self, ip: A) -> Option<Found> {
        let h = ip.hash();
        let mut i = h as usize & self.mask;
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let key = &self.slots[i].key;
            let k = key.load();
            if key.holds(k, ip.bits(), h) {
                return Some((i, k));
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
    pub fn insert(&self, ip: A, port: u16, now: u64) -> Option<usize> {
        self.insert_at(ip, port, now).map(|(i, _)| i)
    }

    fn insert_at(&self, ip: A, port: u16, now: u64) -> Option<Found> {
        match self.insert_free(ip, port) {
            Some(f) => Some(f),
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
    fn reclaim(&self, ip: A, port: u16, now: u64) -> Option<Found> {
        if !ip.storable() {
            return None;
        }
        let h = ip.hash();
        let mut i = h as usize & self.mask;
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let s = &self.slots[i];
            let k = s.key.load_settled(h);
            if s.key.holds(k, ip.bits(), h) {
                return Some((i, k));
            }
            if A::Key::live(k) && self.reclaimable(i, now) && s.key.take(k, ip.bits(), h) {
                // Ours alone now: reset the entry under a new generation, then hand it over.
                let w = s.word.load(Acquire);
                let generation = (w & GEN_MASK).wrapping_add(GEN_ONE);
                s.confirmed.store(0, Release);
                s.requested.store(0, Release);
                s.probes.store(0, Release);
                s.word.store(generation | pack([0; 6], port), Release);
                let k = s.key.publish_taken(ip.bits(), h, generation >> 58);
                self.reclaims.fetch_add(1, Relaxed);
                return Some((i, k));
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// The slot of `ip`, claiming a free one if needed. `None` if the probe window is full.
    fn insert_free(&self, ip: A, port: u16) -> Option<Found> {
        if !ip.storable() {
            return None;
        }
        let h = ip.hash();
        let mut i = h as usize & self.mask;
        for _ in 0..MAX_PROBE.min(self.slots.len()) {
            let s = &self.slots[i];
            let k = s.key.load_settled(h);
            if s.key.holds(k, ip.bits(), h) {
                return Some((i, k));
            }
            if k == 0 {
                match s.key.claim(ip.bits(), h) {
                    Ok(()) => {
                        // Record the port for listings unless a learner was faster (IPv4: a
                        // reader seeing the key before this sees word 0: not VALID).
                        let _ = s
                            .word
                            .compare_exchange(0, pack([0; 6], port), Relaxed, Relaxed);
                        return Some((i, s.key.publish_claimed(ip.bits(), h)));
                    }
                    Err(k) if s.key.holds(k, ip.bits(), h) => return Some((i, k)),
                    Err(_) => {}
                }
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Looks `ip` up at time `now` (the per-packet path: loads only).
    #[inline]
    pub fn lookup(&self, ip: A, now: u64) -> Lookup {
        let Some((i, k)) = self.find_at(ip) else {
            return Lookup::Absent;
        };
        let s = &self.slots[i];
        let w = s.word.load(Acquire);
        let confirmed = s.confirmed.load(Acquire);
        // Still `ip`'s after those loads: the word is its own (a reclaim changes the key
        // before the word; see the module's notes).
        if !s.key.still(k) {
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
    fn due(&self, s: &Slot<A>, last: u64, now: u64) -> bool {
        let t = &self.timing;
        let since = now.saturating_sub(last);
        if last != 0 && since < t.retry {
            return false;
        }
        s.probes.load(Relaxed) < t.retries || since >= t.retry + t.holddown
    }

    /// Claims the right to send one request (ARP request, neighbour solicitation) for `slot`
    /// now. True for at most one caller per retry interval; false while the neighbour is
    /// failed (hold-down), after which resolution starts over.
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
    pub fn learn(&self, ip: A, mac: [u8; 6], port: u16, now: u64, create: bool) -> bool {
        // A reclaim of the slot between finding it and writing it makes the write fail; the
        // address is then looked for again (bounded: a reclaim needs an idle entry).
        for _ in 0..4 {
            let slot = if create {
                self.insert_at(ip, port, now)
            } else {
                self.find_at(ip)
            };
            let Some((i, k)) = slot else {
                return false;
            };
            let s = &self.slots[i];
            let w = s.word.load(Acquire);
            if !s.key.still(k) {
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

    /// Records a neighbour advertisement (RFC 4861 7.2.5) for `ip`: target link-layer
    /// address `mac`, received on `port` at `now`, with its Solicited and Override flags.
    /// Never creates an entry (an advertisement nobody asked for only updates), never changes
    /// a static one. In this table "stale" is an entry still usable but confirmed
    /// `refresh_after` ago, so its next use sends a unicast solicitation (RFC 4861's STALE,
    /// DELAY and PROBE states).
    ///
    /// - The entry has no usable MAC (incomplete, failed or expired): `mac` is recorded,
    ///   reachable if solicited, else stale.
    /// - It has one and `override_` is clear and (`mac`, `port`) differs: the MAC is kept and a
    ///   reachable entry becomes stale (so it is checked soon); returns false.
    /// - Otherwise (`override_`, or the same MAC and port): `mac` is recorded; a solicited
    ///   advertisement makes it reachable, an unsolicited one that changed the MAC or port
    ///   makes it stale, else its state stays.
    ///
    /// Returns whether `mac` is now the entry's. An advertisement without a target
    /// link-layer address option carries no MAC: pass the entry's own (from a lookup) if it
    /// has one, else ignore the advertisement (7.2.5).
    pub fn learn_na(
        &self,
        ip: A,
        mac: [u8; 6],
        port: u16,
        now: u64,
        solicited: bool,
        override_: bool,
    ) -> bool {
        let t = &self.timing;
        // Confirmed `refresh_after` ago: usable, refreshed on its next use.
        let stale = now.saturating_sub(t.refresh_after).max(1);
        for _ in 0..4 {
            let Some((i, k)) = self.find_at(ip) else {
                return false;
            };
            let s = &self.slots[i];
            let w = s.word.load(Acquire);
            let confirmed = s.confirmed.load(Acquire);
            if !s.key.still(k) {
                continue;
            }
            if w & STATIC != 0 {
                return false;
            }
            let resolved = w & VALID != 0 && now.saturating_sub(confirmed) < t.timeout;
            let changed = !resolved || w & !(GEN_MASK | VALID) != pack(mac, port);
            if resolved && changed && !override_ {
                s.confirmed.fetch_min(stale, AcqRel);
                return false;
            }
            let when = if solicited {
                now.max(1)
            } else if changed {
                stale
            } else {
                return true;
            };
            s.confirmed.store(when, Release);
            s.probes.store(0, Relaxed);
            let new = pack(mac, port) | VALID | (w & GEN_MASK);
            if s.word.compare_exchange(w, new, AcqRel, Acquire).is_ok() {
                return true;
            }
        }
        false
    }

    /// Whether `ip` is a static neighbour (from the configuration).
    pub fn is_static(&self, ip: A) -> bool {
        self.find_at(ip).is_some_and(|(i, k)| {
            let s = &self.slots[i];
            s.word.load(Acquire) & STATIC != 0 && s.key.still(k)
        })
    }

    /// Adds a static entry (never aged, never overwritten by ARP or ND). False if the table is
    /// full.
    pub fn add_static(&self, ip: A, mac: [u8; 6], port: u16) -> bool {
        match self.insert_free(ip, port) {
            Some((i, _)) => {
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
    pub fn import(&self, old: &NeighTable<A>) {
        for s in old.slots.iter() {
            let k = s.key.load();
            if !A::Key::live(k) {
                continue;
            }
            let ip = s.key.get(k);
            let w = s.word.load(Acquire);
            let confirmed = s.confirmed.load(Acquire);
            if w & VALID == 0 || w & STATIC != 0 || !s.key.still(k) {
                continue;
            }
            let Some((i, _)) = self.insert_free(A::from_bits(ip), unpack_port(w)) else {
                continue;
            };
            let d = &self.slots[i];
            if d.word.load(Acquire) & STATIC != 0 {
                continue;
            }
            d.confirmed.store(confirmed, Relaxed);
            d.word.store(w, Release);
        }
    }

    /// The MAC of a usable entry in `slot` (after a [`Lookup::Hit`] or a learn).
    pub fn mac_of(&self, slot: usize) -> [u8; 6] {
        unpack_mac(self.slots[slot].word.load(Acquire))
    }

    /// Every entry, for listings (management side; a snapshot of atomics, not a transaction),
    /// in address order.
    pub fn entries(&self, now: u64) -> Vec<Entry<A>> {
        let t = &self.timing;
        let mut v = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            let k = s.key.load();
            if !A::Key::live(k) {
                continue;
            }
            let ip = s.key.get(k);
            let w = s.word.load(Acquire);
            let confirmed = s.confirmed.load(Acquire);
            if !s.key.still(k) {
                continue;
            }
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
                ip: A::from_bits(ip),
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
