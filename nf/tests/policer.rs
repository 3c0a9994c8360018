//! The policer stage on real mbufs with a controlled clock: colours and actions, DSCP remark,
//! malformed input, per-source tables and their ageing, and live table swaps (meters, source
//! tables and counters carried over by policer name).
//!
//! One EAL per test binary (`--no-pci --in-memory`, unique file prefix), started while holding
//! the machine's busy-polling lock; nothing polls here.

use std::fs::File;
use std::sync::{Arc, OnceLock};

use dpdk::meter::{Color, SrtcmParams, SrtcmProfile, TrtcmParams, TrtcmProfile};
use dpdk::{Mbuf, Mempool, PktMeta};
use pollfwd_nf::parse::{ipv4_header_checksum, ipv4_header_checksum_ok};
use pollfwd_nf::policer::{
    Action, ClearCounters, PerSource, Policer, PolicerDef, PolicerTable, Profile, Update,
    WorkerCounters, rfc2597_precolor,
};
use pollfwd_pipeline::{DropReason, Stage, Verdict};

static EAL: OnceLock<(dpdk::Eal, File, Mempool)> = OnceLock::new();

fn pool() -> Mempool {
    EAL.get_or_init(|| {
        let (eal, lock) = dpdk::Eal::init_private("poltest", &[]).expect("EAL init");
        let pool = Mempool::create("poltest", 2047, 0, 2176, -1).expect("mempool");
        (eal, lock, pool)
    })
    .2
}

/// A UDP/IPv4 frame of `len` bytes from `src`, DSCP `dscp`, with a valid header checksum.
fn frame(src: [u8; 4], dscp: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(42)];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (f.len() - 14) as u16;
    f[14] = 0x45;
    f[15] = (dscp << 2) | 0b01; // ECT(1), to check ECN survives a remark
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&[192, 0, 2, 1]);
    f[34..36].copy_from_slice(&1234u16.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    let c = ipv4_header_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

fn mbuf(bytes: &[u8], class: u16) -> Mbuf {
    let mut m = pool().alloc().expect("mbuf");
    assert!(m.set_len(bytes.len() as u16));
    m.data_mut().copy_from_slice(bytes);
    *m.meta_mut() = PktMeta::fresh(0, 0);
    m.meta_mut().class = class;
    m
}

fn sr(cir: u64, cbs: u64, ebs: u64) -> Profile {
    Profile::Srtcm(SrtcmProfile::new(SrtcmParams { cir, cbs, ebs }).unwrap())
}

fn tr(cir: u64, pir: u64, cbs: u64, pbs: u64) -> Profile {
    Profile::Trtcm(TrtcmProfile::new(TrtcmParams { cir, pir, cbs, pbs }).unwrap())
}

fn def(name: &str, profile: Profile, class: Option<u16>) -> PolicerDef {
    PolicerDef {
        name: name.into(),
        profile,
        color_aware: false,
        actions: [Action::Transmit, Action::Transmit, Action::Drop],
        class,
        per_source: None,
    }
}

/// Runs one burst of `frames` (with classes) through the stage at TSC `now`.
fn burst(p: &mut Policer, now: u64, frames: &[(Vec<u8>, u16)]) -> (Vec<Verdict>, Vec<Mbuf>) {
    pool();
    let mut pkts: Vec<Mbuf> = frames.iter().map(|(f, c)| mbuf(f, *c)).collect();
    let mut v = vec![Verdict::Continue; pkts.len()];
    p.police(now, &mut pkts, &mut v);
    (v, pkts)
}

fn counts(c: &WorkerCounters, i: usize) -> [u64; 3] {
    std::array::from_fn(|k| c.policers[i].packets[k].get())
}

const RED: Verdict = Verdict::Drop(DropReason::PolicerRed);
/// The test clock's start: ahead of the real TSC (fresh meters start their clock at the
/// real TSC when they are built, and a meter never runs backwards).
fn t0() -> u64 {
    static T: OnceLock<u64> = OnceLock::new();
    *T.get_or_init(|| dpdk::rdtsc() + (1 << 38))
}

#[test]
fn colours_actions_and_remark_on_mbufs() {
    pool();
    let mut d = def("d", sr(1000, 200, 300), None);
    d.actions = [Action::Remark(46), Action::Remark(12), Action::Drop];
    let t = PolicerTable::new(vec![d], rfc2597_precolor()).unwrap();
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(t, c.clone());
    let f = frame([10, 0, 0, 1], 0, 100);
    let frames: Vec<_> = (0..8).map(|_| (f.clone(), 0)).collect();
    let (v, pkts) = burst(&mut p, t0(), &frames);
    // 2 x 100 B green (CBS 200), 3 x 100 B yellow (EBS 300), then red.
    let want = [
        Verdict::Continue,
        Verdict::Continue,
        Verdict::Continue,
        Verdict::Continue,
        Verdict::Continue,
        RED,
        RED,
        RED,
    ];
    assert_eq!(v, want);
    let colours: Vec<u8> = pkts.iter().map(|m| m.meta().color).collect();
    assert_eq!(colours, [0, 0, 1, 1, 1, 2, 2, 2]);
    for (i, m) in pkts.iter().enumerate().take(5) {
        let d = m.data();
        assert_eq!(d[15] >> 2, if i < 2 { 46 } else { 12 }, "packet {i}");
        assert_eq!(d[15] & 3, 1, "ECN kept");
        assert!(ipv4_header_checksum_ok(&d[14..34]));
        assert!(m.meta().flags & dpdk::meta::flags::MODIFIED != 0);
    }
    assert_eq!(pkts[6].data(), &f[..], "a red packet is not touched");
    assert_eq!(counts(&c, 0), [2, 3, 3]);
    assert_eq!(c.policers[0].bytes[1].get(), 300);
    assert_eq!(c.policers[0].remarked.get(), 5);
    // Tokens for 150 bytes arrive: one more green packet (C is refilled first, RFC 2697).
    let (per, n) = match p.table().defs()[0].profile {
        Profile::Srtcm(s) => s.cir_period(),
        _ => unreachable!(),
    };
    assert_eq!(n, 1);
    let (v, _) = burst(&mut p, t0() + 150 * per, &frames[..2]);
    assert_eq!(v, [Verdict::Continue, RED]);
    assert_eq!(counts(&c, 0), [3, 3, 4]);
    // Clear: the owning worker zeroes its counters.
    assert!(p.control(Box::new(ClearCounters)).is_ok());
    assert_eq!(counts(&c, 0), [0, 0, 0]);
    // Unknown messages come back.
    assert!(p.control(Box::new(42u32)).is_err());
}

#[test]
fn classes_pick_their_policer_and_class_zero_the_default() {
    pool();
    let t = PolicerTable::new(
        vec![
            def("gold", sr(1000, 100, 0), Some(1)),
            def("silver", sr(1000, 200, 0), Some(2)),
        ],
        rfc2597_precolor(),
    )
    .unwrap();
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(t, c.clone());
    let f = frame([10, 0, 0, 1], 0, 100);
    let frames = [
        (f.clone(), 1),
        (f.clone(), 1),
        (f.clone(), 2),
        (f.clone(), 2),
        (f.clone(), 0),
        (f.clone(), 7),
    ];
    let (v, pkts) = burst(&mut p, t0(), &frames);
    assert_eq!(
        v,
        [
            Verdict::Continue,
            RED,
            Verdict::Continue,
            Verdict::Continue,
            Verdict::Continue,
            Verdict::Continue
        ]
    );
    assert_eq!(counts(&c, 0), [1, 0, 1]);
    assert_eq!(counts(&c, 1), [2, 0, 0]);
    assert_eq!(pkts[4].meta().color, 0, "no policer, no colour");
    // With a default policer, class 0 and unknown classes go to it.
    let t = PolicerTable::new(
        vec![
            def("gold", sr(1000, 100, 0), Some(1)),
            def("all", sr(1000, 100, 0), None),
        ],
        rfc2597_precolor(),
    )
    .unwrap();
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(t, c.clone());
    let (v, _) = burst(&mut p, t0(), &frames);
    assert_eq!(
        v,
        [Verdict::Continue, RED, Verdict::Continue, RED, RED, RED]
    );
    assert_eq!(counts(&c, 1), [1, 0, 3]);
}

#[test]
fn table_bindings_are_checked() {
    pool();
    let e = PolicerTable::new(
        vec![
            def("a", sr(1, 1, 0), Some(3)),
            def("b", sr(1, 1, 0), Some(3)),
        ],
        rfc2597_precolor(),
    )
    .unwrap_err();
    assert!(e.contains("both bound to class 3"), "{e}");
    let e = PolicerTable::new(
        vec![def("a", sr(1, 1, 0), None), def("b", sr(1, 1, 0), None)],
        rfc2597_precolor(),
    )
    .unwrap_err();
    assert!(e.contains("both the default"), "{e}");
    let e = PolicerTable::new(
        vec![
            def("a", sr(1, 1, 0), Some(1)),
            def("a", sr(1, 1, 0), Some(2)),
        ],
        rfc2597_precolor(),
    )
    .unwrap_err();
    assert!(e.contains("twice"), "{e}");
}

/// Malformed and non-IPv4 frames never panic: a per-source or remarking policer lets what it
/// cannot parse pass unmetered and untouched (the forward stage owns IPv4 validity).
#[test]
fn malformed_input_passes_untouched_and_never_panics() {
    pool();
    let mut d = def("src", sr(1, 60, 0), None);
    d.per_source = Some(PerSource {
        max_sources: 4,
        idle_ticks: u64::MAX / 2,
        ipv6_prefix: 64,
    });
    d.actions = [Action::Remark(46), Action::Remark(12), Action::Remark(14)];
    d.color_aware = true;
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(
        PolicerTable::new(vec![d], rfc2597_precolor()).unwrap(),
        c.clone(),
    );
    let good = frame([10, 0, 0, 1], 0, 60);
    let mut bad: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    bad.push(arp);
    let mut badsum = good.clone();
    badsum[24] ^= 0xff;
    bad.push(badsum);
    let mut v6 = good.clone();
    v6[14] = 0x65;
    bad.push(v6);
    let mut ihl = good.clone();
    ihl[14] = 0x4f;
    bad.push(ihl);
    for chunk in bad.chunks(32) {
        let frames: Vec<_> = chunk
            .iter()
            .filter(|f| !f.is_empty())
            .map(|f| (f.clone(), 0))
            .collect();
        let (v, pkts) = burst(&mut p, t0(), &frames);
        assert!(v.iter().all(|x| *x == Verdict::Continue));
        for ((f, _), m) in frames.iter().zip(&pkts) {
            assert_eq!(m.data(), &f[..], "untouched");
        }
    }
    assert_eq!(counts(&c, 0), [0, 0, 0], "nothing metered");
    assert_eq!(p.sources(0).unwrap().len(), 0);
    // Random bytes as well.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..64 {
        let frames: Vec<_> = (0..32)
            .map(|i| {
                let n = 14 + (i * 7) % 80;
                let f: Vec<u8> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                (f, 0)
            })
            .collect();
        burst(&mut p, t0(), &frames);
    }
}

#[test]
fn per_source_meters_fill_up_and_age_out() {
    pool();
    let hz = dpdk::tsc_hz();
    let mut d = def("src", sr(1000, 100, 0), None);
    d.per_source = Some(PerSource {
        max_sources: 3,
        idle_ticks: hz, // 1 s
        ipv6_prefix: 64,
    });
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(
        PolicerTable::new(vec![d], rfc2597_precolor()).unwrap(),
        c.clone(),
    );
    let f = |last: u8| (frame([10, 0, 0, last], 0, 100), 0);
    let full = Verdict::Drop(DropReason::PolicerTableFull);
    let (v, _) = burst(&mut p, t0(), &[f(1), f(1), f(2), f(3), f(4), f(2)]);
    assert_eq!(
        v,
        [
            Verdict::Continue,
            RED,
            Verdict::Continue,
            Verdict::Continue,
            full,
            RED
        ]
    );
    let pc = &c.policers[0];
    assert_eq!(pc.table_full.get(), 1);
    assert_eq!(pc.sources_created.get(), 3);
    assert_eq!(pc.sources.load(std::sync::atomic::Ordering::Relaxed), 3);
    // Source 1 stays active, 2 and 3 go idle; after 1.5 s they age out and 4 gets a meter.
    let (v, _) = burst(&mut p, t0() + hz, &[f(1)]);
    assert_eq!(
        v,
        [Verdict::Continue],
        "100 bytes of tokens in 1 s at 1000 B/s"
    );
    let later = t0() + hz * 3 / 2 + 1;
    p.age(later, hz);
    assert_eq!(p.sources(0).unwrap().len(), 1);
    assert_eq!(pc.sources_aged.get(), 2);
    assert_eq!(pc.sources.load(std::sync::atomic::Ordering::Relaxed), 1);
    let (v, _) = burst(&mut p, later, &[f(4), f(2)]);
    assert_eq!(
        v,
        [Verdict::Continue, Verdict::Continue],
        "fresh meters, full buckets"
    );
    assert_eq!(pc.sources_created.get(), 5);
}

/// A live table swap keeps each surviving policer's meter, source table and counters (matched
/// by name, wherever it moved), starts new policers fresh, and hands the old table back.
#[test]
fn update_carries_meters_and_counters_by_name() {
    pool();
    let t = PolicerTable::new(
        vec![
            def("a", sr(1000, 100, 0), Some(1)),
            def("b", sr(1000, 100, 0), Some(2)),
        ],
        rfc2597_precolor(),
    )
    .unwrap();
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(t, c.clone());
    let f = frame([10, 0, 0, 1], 0, 100);
    // Drain both meters: a gets 1 green 1 red, b 1 green 2 red.
    burst(
        &mut p,
        t0(),
        &[
            (f.clone(), 1),
            (f.clone(), 1),
            (f.clone(), 2),
            (f.clone(), 2),
            (f.clone(), 2),
        ],
    );
    assert_eq!(counts(&c, 0), [1, 0, 1]);
    assert_eq!(counts(&c, 1), [1, 0, 2]);
    // New table: b moves to index 0 (same kind), a becomes a trTCM at index 2, c is new.
    let new = PolicerTable::new(
        vec![
            def("b", sr(1000, 100, 0), Some(2)),
            def("c", sr(1000, 100, 0), Some(3)),
            def("a", tr(1000, 2000, 100, 100), Some(1)),
        ],
        rfc2597_precolor(),
    )
    .unwrap();
    let state = new.fresh_state();
    let Ok(old) = p.control(Box::new(Update {
        table: new,
        state,
        spare: Vec::new(),
    })) else {
        panic!("update refused");
    };
    let Ok(old) = old.downcast::<Update>() else {
        panic!("the old table comes back");
    };
    assert_eq!(old.table.defs().len(), 2);
    assert_eq!(counts(&c, 0), [1, 0, 2], "b's counters moved with it");
    assert_eq!(counts(&c, 1), [0, 0, 0], "c is new");
    assert_eq!(counts(&c, 2), [1, 0, 1], "a's counters moved with it");
    // b's bucket is still empty (no time passed): red. c starts full: green. a changed kind:
    // its meter restarts full: green.
    let (v, _) = burst(
        &mut p,
        t0(),
        &[(f.clone(), 2), (f.clone(), 3), (f.clone(), 1)],
    );
    assert_eq!(v, [RED, Verdict::Continue, Verdict::Continue]);
    assert_eq!(counts(&c, 0), [1, 0, 3]);
    assert_eq!(counts(&c, 1), [1, 0, 0]);
    assert_eq!(counts(&c, 2), [2, 0, 1]);
}

#[test]
fn update_keeps_per_source_tables() {
    pool();
    let ps = Some(PerSource {
        max_sources: 8,
        idle_ticks: u64::MAX / 2,
        ipv6_prefix: 64,
    });
    let mut d = def("s", sr(1000, 100, 0), None);
    d.per_source = ps;
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(
        PolicerTable::new(vec![d.clone()], rfc2597_precolor()).unwrap(),
        c.clone(),
    );
    let f = |last: u8| (frame([10, 0, 0, last], 0, 100), 0);
    burst(&mut p, t0(), &[f(1), f(2), f(1)]);
    assert_eq!(p.sources(0).unwrap().len(), 2);
    let mut cur = PolicerTable::new(vec![d.clone()], rfc2597_precolor()).unwrap();
    let mut last_reply = None;
    // Same limits: the table moves over as is. Other limits: a new table whose sources move
    // over during housekeeping (never all at once on the worker); until then a source not
    // moved yet is found in the old one, with its state.
    for max in [8, 3000, 100] {
        let mut d2 = d.clone();
        d2.per_source = Some(PerSource {
            max_sources: max,
            idle_ticks: u64::MAX / 2,
            ipv6_prefix: 64,
        });
        d2.actions[2] = Action::Remark(8);
        let t = PolicerTable::new(vec![d2], rfc2597_precolor()).unwrap();
        let Ok(reply) = p.control(Box::new(Update::new(t.clone(), &cur))) else {
            panic!("update refused");
        };
        cur = t;
        let tab = p.sources(0).unwrap();
        assert_eq!(tab.max(), max);
        assert_eq!(tab.migrating(), max != 8, "max {max}");
        assert!(tab.get(0x0a00_0001).is_some() && tab.get(0x0a00_0002).is_some());
        // Source 1's bucket is still empty: red (remarked CS1 now), not a fresh green.
        let (v, pkts) = burst(&mut p, t0(), &[f(1)]);
        assert_eq!(v, [Verdict::Continue]);
        assert_eq!(pkts[0].meta().color, Color::Red as u8);
        assert_eq!(pkts[0].data()[15] >> 2, 8);
        assert_eq!(
            c.policers[0].sources_created.get(),
            2,
            "carried, not created"
        );
        // Housekeeping moves the rest, a bounded slice of the old table per call: the 8192
        // slots of the 3000-source table take several calls.
        let mut calls = 0;
        while p.sources(0).unwrap().migrating() {
            p.age(t0(), dpdk::tsc_hz());
            calls += 1;
            assert!(calls < 100, "migration never ends");
        }
        assert_eq!(calls > 1, max == 100, "max {max}: {calls} calls");
        assert_eq!(p.sources(0).unwrap().len(), 2, "max {max}");
        assert_eq!(
            c.policers[0]
                .sources
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
        // Source 2, moved by housekeeping, kept its empty bucket too.
        let (_, pkts) = burst(&mut p, t0(), &[f(2)]);
        assert_eq!(pkts[0].meta().color, Color::Red as u8, "max {max}");
        last_reply = Some(reply);
    }
    // The reply is a complete update: sent back (an undo), it restores the 3000-source table
    // and the sources move back with their state.
    let Ok(reply) = last_reply.unwrap().downcast::<Update>() else {
        panic!("an Update comes back");
    };
    assert!(p.control(reply).is_ok());
    while p.sources(0).unwrap().migrating() {
        p.age(t0(), dpdk::tsc_hz());
    }
    assert_eq!(p.sources(0).unwrap().max(), 3000);
    assert_eq!(p.sources(0).unwrap().len(), 2);
    let (_, pkts) = burst(&mut p, t0(), &[f(1), f(2)]);
    assert!(pkts.iter().all(|m| m.meta().color == Color::Red as u8));
}
