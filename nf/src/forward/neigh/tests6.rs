//! The IPv6 table (`NeighTable<u128>`): the IPv4 tests' behaviours, the wide key's races
//! (with a hash forced to collide), and RFC 4861 advertisement flags.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use super::key::WideKey;
use super::*;

const HZ: u64 = 1_000_000; // 1 tick = 1 us in these tests
const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
/// 2001:db8:1::/64
const NET: u128 = 0x2001_0db8_0001_0000 << 64;

fn table() -> NeighTable6 {
    // timeout 10 s, retry 1 s, 3 retries: refresh after 7 s.
    NeighTable6::new(64, NeighTiming::new(10, 1000, 3, HZ))
}

/// A MAC made of both halves of the address (a torn read of two addresses gives another).
fn mac_of(a: u128) -> [u8; 6] {
    let x = (a >> 64) as u64 ^ (a as u64).rotate_left(24);
    let b = x.to_be_bytes();
    [2, b[3] ^ b[0], b[4] ^ b[1], b[5] ^ b[2], b[6], b[7]]
}

/// An IPv6 address whose hash is a constant: every address has the same home slot and the
/// same key tag, so every lookup compares full addresses and every reuse of a slot keeps its
/// hash tag (only the generation in the tag tells owners apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Collide(u128);

impl NeighAddr for Collide {
    type Key = WideKey;
    fn bits(self) -> u128 {
        self.0
    }
    fn from_bits(bits: u128) -> Collide {
        Collide(bits)
    }
    fn hash(self) -> u64 {
        0x5a5a_5a00_0000_0000
    }
    fn storable(self) -> bool {
        self.0 != 0
    }
}

#[test]
fn learn_lookup_refresh_expire() {
    let t = table();
    let ip = NET | 0x2;
    assert_eq!(t.lookup(ip, 100), Lookup::Absent);
    assert!(
        !t.learn(ip, A, 1, 100, false),
        "merge-only learn needs an entry"
    );
    assert!(t.learn(ip, A, 1, 100, true));
    let slot = t.find(ip).unwrap();
    assert_eq!(t.find(NET | 0x3), None);
    assert_eq!(
        t.find(ip ^ (1 << 64)),
        None,
        "same lower half, other prefix"
    );
    let hit = |mac, refresh| Lookup::Hit { mac, slot, refresh };
    assert_eq!(t.lookup(ip, 100 + 5 * HZ), hit(A, false));
    assert_eq!(t.lookup(ip, 100 + 8 * HZ), hit(A, true));
    assert!(matches!(
        t.lookup(ip, 100 + 10 * HZ),
        Lookup::Unresolved { failed: false, .. }
    ));
    assert!(t.learn(ip, B, 1, 100 + 11 * HZ, false));
    assert_eq!(t.lookup(ip, 100 + 11 * HZ), hit(B, false));
    assert_eq!(t.mac_of(slot), B);
    let e = &t.entries(100 + 12 * HZ)[0];
    assert_eq!(
        (e.ip, e.mac, e.port, e.state, e.age),
        (ip, Some(B), 1, State::Reachable, HZ)
    );
}

#[test]
fn requests_are_rate_limited_then_fail_then_retry() {
    let t = table();
    let ip = NET | 0x1;
    let s = t.insert(ip, 0, 1).unwrap();
    let mut now = 5 * HZ;
    assert!(t.request_due(s, now));
    assert!(t.claim_request(s, now), "first request");
    assert!(!t.request_due(s, now + 10));
    assert!(!t.claim_request(s, now + 10), "one per interval");
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
    now += HZ + 3 * HZ;
    assert!(matches!(
        t.lookup(ip, now),
        Lookup::Unresolved { failed: false, .. }
    ));
    assert!(
        t.claim_request(s, now),
        "after the hold-down a new round starts"
    );
    assert!(t.learn_na(ip, A, 0, now, true, true));
    assert_eq!(t.entries(now)[0].probes, 0, "an answer resets the probes");
}

#[test]
fn static_entries_never_age_or_change() {
    let t = table();
    let ip = NET | 0x9;
    assert!(t.add_static(ip, A, 2));
    assert!(t.is_static(ip));
    assert!(!t.is_static(NET | 0x8));
    assert!(!t.learn(ip, B, 2, 1, true));
    assert!(
        !t.learn_na(ip, B, 2, 1, true, true),
        "not even with override"
    );
    let slot = t.find(ip).unwrap();
    assert_eq!(
        t.lookup(ip, u64::MAX / 2),
        Lookup::Hit {
            mac: A,
            slot,
            refresh: false
        }
    );
    assert_eq!(t.entries(0)[0].state, State::Static);
    assert!(!t.add_static(0, A, 1), ":: is never a neighbour");
    assert_eq!(t.insert(0, 1, 5), None);
}

#[test]
fn full_probe_window_is_reported() {
    let t = NeighTable6::new(16, NeighTiming::new(10, 1000, 3, HZ));
    let mut ok = 0;
    for k in 1..=40u128 {
        if let Some(slot) = t.insert(NET | k, 0, 5) {
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
    old.learn(NET | 1, A, 1, 500, true);
    old.add_static(NET | 2, B, 1);
    old.insert(NET | 3, 1, 500); // incomplete: not copied
    let new = NeighTable6::new(256, NeighTiming::new(20, 1000, 3, HZ));
    new.add_static(NET | 2, A, 2);
    new.import(&old);
    let e = new.entries(500 + HZ);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(
        (e[0].ip, e[0].mac, e[0].state, e[0].age),
        (NET | 1, Some(A), State::Reachable, HZ)
    );
    assert_eq!(
        (e[1].ip, e[1].mac, e[1].port, e[1].state),
        (NET | 2, Some(A), 2, State::Static),
        "the new static wins"
    );
}

#[test]
fn a_scan_recycles_its_own_entries_and_never_evicts_resolved_or_static_ones() {
    // 16 slots: the probe window covers the whole table.
    let t = NeighTable6::new(16, NeighTiming::new(10, 1000, 3, HZ));
    let resolved = [NET | 0x101, NET | 0x102, NET | 0x103];
    for ip in resolved {
        assert!(t.learn(ip, mac_of(ip), 1, 1, true));
    }
    assert!(t.add_static(NET | 0x109, A, 1));
    // A scan of the /64: one new address every 10 ms for 60 s, each asked once.
    let (mut refused, mut taken) = (0, 0);
    for k in 0..6000u64 {
        let now = 1 + k * HZ / 100;
        let ip = NET | 0x1_0000 | k as u128;
        match t.insert(ip, 1, now) {
            Some(slot) => {
                taken += 1;
                assert!(t.claim_request(slot, now));
            }
            None => refused += 1,
        }
        if k % 300 == 0 {
            for ip in resolved {
                assert!(t.learn_na(ip, mac_of(ip), 1, now, true, false));
            }
        }
        for ip in resolved {
            assert!(
                matches!(t.lookup(ip, now), Lookup::Hit { mac: m, .. } if m == mac_of(ip)),
                "{ip:x} evicted at {k}"
            );
        }
        assert!(t.is_static(NET | 0x109));
    }
    assert!((600..=800).contains(&taken), "taken {taken}");
    assert_eq!(taken + refused, 6000);
    assert_eq!(t.reclaimed(), taken - 12);
    // Expired learnt entries are reclaimable too: 15 new addresses (asked at once, so not
    // reclaimable for a second) take every slot but the static one's.
    let later = 1 + 6000 * HZ / 100 + 20 * HZ;
    for k in 0..15u128 {
        let slot = t.insert(NET | 0x2_0000 | k, 1, later).unwrap();
        assert!(t.claim_request(slot, later));
    }
    for ip in resolved {
        assert!(t.find(ip).is_none(), "{ip:x} expired: reused");
    }
    assert!(t.is_static(NET | 0x109));
    assert_eq!(t.entries(later).len(), 16);
}

#[test]
fn concurrent_learners_and_readers() {
    let t = Arc::new(NeighTable6::new(1024, NeighTiming::new(100, 1000, 3, HZ)));
    let hs: Vec<_> = (0..4u32)
        .map(|k| {
            let t = t.clone();
            std::thread::spawn(move || {
                for r in 0..2000u32 {
                    let ip = NET | (r % 300 + 1) as u128;
                    if (r + k) % 3 == 0 {
                        t.learn(ip, mac_of(ip), 1, 10, true);
                    }
                    if let Lookup::Hit { mac: m, .. } = t.lookup(ip, 20) {
                        assert_eq!(m, mac_of(ip), "a reader never sees another address's MAC");
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let e = t.entries(20);
    assert_eq!(e.len(), 300, "one entry per address");
    assert!(e.iter().all(|e| e.mac == Some(mac_of(e.ip))));
}

#[test]
fn concurrent_inserters_of_the_same_new_addresses_share_their_slots() {
    // Two workers meet the same new next hop at the same moment, 2000 times (in lock step):
    // each inserts it, then learns it (merge only).
    const N: u64 = 2000;
    let t = Arc::new(NeighTable6::new(4096, NeighTiming::new(100, 1000, 3, HZ)));
    let arrived = Arc::new(AtomicU64::new(0));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (t, arrived) = (t.clone(), arrived.clone());
            std::thread::spawn(move || {
                for k in 0..N {
                    arrived.fetch_add(1, AcqRel);
                    let mut spins = 0u32;
                    while arrived.load(Acquire) < 2 * (k + 1) {
                        spins += 1;
                        if spins.is_multiple_of(1024) {
                            std::thread::yield_now();
                        }
                        std::hint::spin_loop();
                    }
                    let ip = NET | (k + 1) as u128;
                    assert!(t.insert(ip, 1, 10).is_some());
                    assert!(t.learn(ip, mac_of(ip), 1, 10, false), "{ip:x}");
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    // A duplicate needs a claimer preempted within its few stores: rare.
    let e = t.entries(10);
    assert!(
        e.len() as u64 <= N + N / 100,
        "{} duplicates",
        e.len() as u64 - N
    );
    for k in 1..=N as u128 {
        let ip = NET | k;
        assert!(matches!(t.lookup(ip, 10), Lookup::Hit { mac, .. } if mac == mac_of(ip)));
    }
}

#[test]
fn every_owner_of_a_slot_has_its_own_key_word() {
    // What a reader's re-check relies on: a slot reused for an address with the same hash
    // (here: every address) gets another key word, whatever the owners' addresses.
    let t = NeighTable::<Collide>::new(16, NeighTiming::new(1, 10, 1, HZ));
    for k in 0..16u128 {
        assert!(t.learn(Collide(NET | (k + 1)), A, 1, 1, true));
    }
    let (x, y) = (Collide(NET | 1), Collide((NET + (1 << 64)) | 1));
    let slot = t.find(x).unwrap();
    let mut seen = vec![t.slots[slot].key.load()];
    let mut now = 10 * HZ;
    for round in 0..70 {
        // Everything expired: the insert reclaims the first slot of the chain, `x`'s or
        // `y`'s (same lower half, same hash), alternately.
        let (old, new) = if round % 2 == 0 { (x, y) } else { (y, x) };
        assert_eq!(t.find(old), Some(slot));
        assert_eq!(t.insert(new, 1, now), Some(slot));
        assert!(t.learn(new, B, 1, now, false));
        let k = t.slots[slot].key.load();
        assert!(!t.slots[slot].key.still(seen[seen.len() - 1]));
        // 6 bits of generation: the last 63 owners' key words all differ.
        assert!(
            !seen.iter().rev().take(63).any(|&s| s == k),
            "round {round}"
        );
        seen.push(k);
        now += 10 * HZ;
    }
    assert_eq!(t.reclaimed(), 70);
}

#[test]
fn an_insert_waiting_on_a_stalled_claim_makes_a_duplicate_that_stays_consistent() {
    let t = NeighTable::<Collide>::new(16, NeighTiming::new(10, 1000, 3, HZ));
    let (a, h) = (Collide(NET | 7), Collide(NET | 7).hash());
    let home = h as usize & t.mask;
    // A claimer of `a` stalls (preempted) between its claim and its publication.
    assert!(t.slots[home].key.claim(a.0, h).is_ok());
    assert_eq!(t.lookup(a, 100), Lookup::Absent, "not live yet");
    // Another worker inserts `a`: it waits a little, then takes the next slot.
    let dup = t.insert(a, 1, 100).unwrap();
    assert_ne!(dup, home);
    assert!(t.learn(a, A, 1, 100, false));
    assert!(matches!(t.lookup(a, 100), Lookup::Hit { slot, mac: A, .. } if slot == dup));
    // The stalled claimer resumes: its entry is first in probe order.
    assert_eq!(t.slots[home].word.load(Relaxed), 0);
    t.slots[home].key.publish_claimed(a.0, h);
    assert!(matches!(t.lookup(a, 100), Lookup::Unresolved { slot, .. } if slot == home));
    // Resolved again (once), every user then sees the first entry; both belong to `a`.
    assert!(t.learn(a, B, 1, 200, true));
    assert!(matches!(t.lookup(a, 200), Lookup::Hit { slot, mac: B, .. } if slot == home));
    let e = t.entries(200);
    assert_eq!(e.len(), 2);
    assert!(e.iter().all(|e| e.ip == a));
    // Nobody refreshes the duplicate: once expired, its slot goes to a new address.
    let later = 200 + 11 * HZ;
    assert!(t.learn(a, B, 1, later, false));
    for k in 100..120u128 {
        let _ = t.insert(Collide(NET | k), 1, later);
    }
    assert_eq!(t.find(a), Some(home));
    let e = t.entries(later);
    assert_eq!(e.iter().filter(|e| e.ip == a).count(), 1, "{e:?}");
}

#[test]
fn readers_and_learners_never_see_another_addresss_mac_while_slots_are_reused() {
    // Every address collides (same home, same hash tag). Learners use 40 lower halves under
    // 3 prefixes, the scanner the same lower halves under 3 others, so a reader mixing the
    // halves of two owners would match another address. Learnt entries are expired at the
    // scanner's time, so it keeps reclaiming slots under the readers.
    let t = Arc::new(NeighTable::<Collide>::new(
        64,
        NeighTiming::new(1, 10, 1, HZ),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = {
        let (t, stop) = (t.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut k = 0u64;
            while !stop.load(Relaxed) {
                let lo = k % 40 + 1;
                let hi = (NET >> 64) as u64 + 3 + k % 3;
                let _ = t.insert(Collide((hi as u128) << 64 | lo as u128), 1, 10 * HZ);
                k += 1;
            }
            k
        })
    };
    let hs: Vec<_> = (0..3u32)
        .map(|w| {
            let t = t.clone();
            std::thread::spawn(move || {
                for r in 0..100_000u32 {
                    let prefix = (r / 40 % 3) as u128;
                    let ip = (NET + (prefix << 64)) | ((r * 7 + w) % 40 + 1) as u128;
                    if r % 2 == 0 {
                        t.learn(Collide(ip), mac_of(ip), 1, 5, true);
                    }
                    if let Lookup::Hit { mac: m, .. } = t.lookup(Collide(ip), 5) {
                        assert_eq!(m, mac_of(ip), "{ip:x} read another address's MAC");
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
            assert_eq!(m, mac_of(e.ip.0), "entry {:x}", e.ip.0);
        }
    }
}

#[test]
fn advertisement_flags_follow_rfc_4861() {
    let t = table();
    let ip = NET | 0x20;
    let now = 100 * HZ;
    let slot = |t: &NeighTable6| t.find(ip).unwrap();
    let hit = |t: &NeighTable6, mac, refresh| {
        assert_eq!(
            t.lookup(ip, now),
            Lookup::Hit {
                mac,
                slot: slot(t),
                refresh
            }
        )
    };
    // No entry: an advertisement creates none (7.2.5).
    assert!(!t.learn_na(ip, A, 1, now, true, true));
    assert_eq!(t.find(ip), None);
    // Incomplete: recorded; solicited -> reachable, unsolicited -> stale (refreshed on use).
    t.insert(ip, 1, now);
    assert!(t.learn_na(ip, A, 1, now, false, false));
    hit(&t, A, true);
    assert!(t.learn_na(ip, A, 1, now, true, false));
    hit(&t, A, false);
    // Reachable, O=0 with another MAC: the MAC stays, the entry becomes stale.
    assert!(!t.learn_na(ip, B, 1, now, true, false));
    hit(&t, A, true);
    // Same MAC, solicited: reachable again; unsolicited without change: state kept.
    assert!(t.learn_na(ip, A, 1, now, true, false));
    hit(&t, A, false);
    assert!(t.learn_na(ip, A, 1, now + 8 * HZ, false, false));
    assert_eq!(
        t.lookup(ip, now + 8 * HZ),
        Lookup::Hit {
            mac: A,
            slot: slot(&t),
            refresh: true
        },
        "an unsolicited advertisement confirms nothing"
    );
    // O=1: another MAC is recorded; solicited -> reachable, unsolicited -> stale.
    assert!(t.learn_na(ip, B, 1, now, true, true));
    hit(&t, B, false);
    assert!(t.learn_na(ip, A, 1, now, false, true));
    hit(&t, A, true);
    // A different port is a different link-layer address.
    assert!(t.learn_na(ip, A, 1, now, true, false));
    assert!(!t.learn_na(ip, A, 2, now, true, false));
    assert_eq!(t.entries(now)[0].port, 1);
    assert!(t.learn_na(ip, A, 2, now, true, true));
    assert_eq!(t.entries(now)[0].port, 2);
    // Expired: no usable MAC, so even O=0 records the new one.
    let later = now + 20 * HZ;
    assert!(t.learn_na(ip, B, 2, later, true, false));
    assert!(matches!(
        t.lookup(ip, later),
        Lookup::Hit {
            mac: B,
            refresh: false,
            ..
        }
    ));
}
