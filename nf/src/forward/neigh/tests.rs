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
