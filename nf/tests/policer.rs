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
    // A clear gives back nothing to undo (`()`): a failed broadcast sends nothing back.
    assert!(
        p.control(Box::new(ClearCounters))
            .is_ok_and(|r| r.is::<()>())
    );
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

// ---- IPv6 ----------------------------------------------------------------------------------

/// Flow label of the IPv6 test frames: a remark must leave it as it is.
const FLOW: u32 = 0xabcde;

fn v6(s: &str) -> u128 {
    s.parse::<std::net::Ipv6Addr>().unwrap().into()
}

/// A UDP/IPv6 frame of `len` bytes from `src` to 2001:db8:ffff::1, DSCP `dscp` with ECT(1),
/// flow label [`FLOW`], hop limit 64.
fn frame6(src: u128, dscp: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(62)];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    let pl = (f.len() - 54) as u16;
    let tc = ((dscp << 2) | 0b01) as u32;
    f[14..18].copy_from_slice(&(6 << 28 | tc << 20 | FLOW).to_be_bytes());
    f[18..20].copy_from_slice(&pl.to_be_bytes());
    f[20] = 17;
    f[21] = 64;
    f[22..38].copy_from_slice(&src.to_be_bytes());
    f[38..54].copy_from_slice(&v6("2001:db8:ffff::1").to_be_bytes());
    f[54..56].copy_from_slice(&1234u16.to_be_bytes());
    f[56..58].copy_from_slice(&9u16.to_be_bytes());
    f[58..60].copy_from_slice(&pl.to_be_bytes());
    f
}

/// (version, traffic class, flow label) of an IPv6 frame.
fn tc_of(f: &[u8]) -> (u8, u8, u32) {
    let w = u32::from_be_bytes(f[14..18].try_into().unwrap());
    ((w >> 28) as u8, (w >> 20) as u8, w & 0xf_ffff)
}

/// A class-bound trTCM meters an IPv6 stream as it meters IPv4: over 10 s of 100-byte packets
/// at 3000 B/s against CIR 1000 B/s and PIR 2000 B/s, about CBS + 10 x CIR bytes are green,
/// PBS + 10 x PIR bytes green or yellow, and the rest is dropped red. Run on the lone default
/// policer's loop and on the general loop (a class-bound policer next to another).
#[test]
fn ipv6_stream_on_a_trtcm_drops_its_share() {
    pool();
    let hz = dpdk::tsc_hz();
    for general in [false, true] {
        let mut d = def("gold", tr(1000, 2000, 1000, 2500), None);
        let mut defs = vec![];
        let class = if general {
            d.class = Some(1);
            defs.push(def("v4only", sr(1000, 100, 0), Some(2)));
            1
        } else {
            0
        };
        defs.insert(0, d);
        let c = Arc::new(WorkerCounters::new(0, 1));
        let mut p = Policer::new(
            PolicerTable::new(defs, rfc2597_precolor()).unwrap(),
            c.clone(),
        );
        let f = frame6(v6("2001:db8:1::1"), 0, 100);
        let mut red = 0;
        for s in 0..=10u64 {
            // 30 packets a second, in one burst.
            let frames: Vec<_> = (0..30).map(|_| (f.clone(), class)).collect();
            let (v, pkts) = burst(&mut p, t0() + s * hz, &frames);
            red += v.iter().filter(|x| **x == RED).count() as u64;
            for (m, x) in pkts.iter().zip(&v) {
                assert_eq!(*x == RED, m.meta().color == Color::Red as u8);
            }
        }
        let [g, y, r] = counts(&c, 0);
        assert_eq!(g + y + r, 330, "every IPv6 packet metered");
        assert_eq!(r, red, "red is dropped");
        // Tokens over 10 s, whole 100-byte packets: C 1000 + 10 x 1000, P 2500 + 10 x 2000.
        assert!((109..=111).contains(&g), "general {general}: green {g}");
        assert!(
            (224..=226).contains(&(g + y)),
            "general {general}: {g} + {y}"
        );
        assert_eq!(counts(&c, 1), [0, 0, 0]);
        assert_eq!(c.policers[0].bytes[2].get(), 100 * r);
    }
}

/// Colour-aware metering reads an IPv6 packet's DSCP from its traffic class (AF12 yellow, AF13
/// red by RFC 2597), and a remark rewrites the traffic class's DSCP bits only: the version,
/// the ECN bits, the flow label and every other byte stay. IPv4 packets in the same burst get
/// their DS field and header checksum. Both loops (lone default policer, general).
#[test]
fn ipv6_dscp_precolor_and_remark_in_the_traffic_class() {
    pool();
    for general in [false, true] {
        let mut d = def("mark", sr(1_000_000, 100_000, 100_000), None);
        d.color_aware = true;
        d.actions = [Action::Remark(46), Action::Remark(8), Action::Remark(0)];
        let mut defs = vec![d];
        if general {
            defs.push(def("other", sr(1000, 100, 0), Some(3)));
        }
        let c = Arc::new(WorkerCounters::new(0, 1));
        let mut p = Policer::new(
            PolicerTable::new(defs, rfc2597_precolor()).unwrap(),
            c.clone(),
        );
        let src = v6("2001:db8:1::1");
        // AF11, AF12, AF13, EF (already the green remark), and an IPv4 AF12.
        let frames = [
            (frame6(src, 10, 120), 0),
            (frame6(src, 12, 120), 0),
            (frame6(src, 14, 120), 0),
            (frame6(src, 46, 120), 0),
            (frame([10, 0, 0, 1], 12, 120), 0),
        ];
        let (v, pkts) = burst(&mut p, t0(), &frames);
        assert!(v.iter().all(|x| *x == Verdict::Continue), "{v:?}");
        let colours: Vec<u8> = pkts.iter().map(|m| m.meta().color).collect();
        assert_eq!(colours, [0, 1, 2, 0, 1], "general {general}");
        for (i, want) in [(0, 46), (1, 8), (2, 0), (3, 46)] {
            let (f, d) = (&frames[i].0, pkts[i].data());
            assert_eq!(tc_of(d), (6, (want << 2) | 1, FLOW), "packet {i}");
            // Only the traffic class's nibbles in bytes 14 and 15 changed.
            assert_eq!(d[14] & 0xf0, f[14] & 0xf0);
            assert_eq!(d[15] & 0x0f, f[15] & 0x0f);
            assert_eq!(&d[16..], &f[16..], "packet {i}");
            let modified = pkts[i].meta().flags & dpdk::meta::flags::MODIFIED != 0;
            assert_eq!(modified, i != 3, "packet {i}: EF already");
        }
        let d4 = pkts[4].data();
        assert_eq!((d4[15] >> 2, d4[15] & 3), (8, 1));
        assert!(ipv4_header_checksum_ok(&d4[14..34]));
        assert_eq!(counts(&c, 0), [2, 2, 1]);
        assert_eq!(c.policers[0].remarked.get(), 4, "EF to EF is no remark");
    }
}

/// Per-source metering keys an IPv6 source on its prefix (/64 by default): two addresses of one
/// /64 share a meter, another /64 has its own, and IPv4 sources keep theirs, in one burst; the
/// prefix length is the policer's (/48 joins the /64s, /128 separates the hosts). Both loops.
#[test]
fn ipv6_per_source_meters_per_prefix() {
    pool();
    let a1 = frame6(v6("2001:db8:1:2::1"), 0, 100);
    let a2 = frame6(v6("2001:db8:1:2:ffff::9"), 0, 100);
    let b = frame6(v6("2001:db8:1:3::1"), 0, 100);
    let c4 = frame([10, 0, 0, 1], 0, 100);
    let ok = Verdict::Continue;
    for general in [false, true] {
        for (prefix, want, sources) in [
            (64, [ok, RED, ok, ok, RED], 3),
            (48, [ok, RED, RED, ok, RED], 2),
            (128, [ok, ok, ok, ok, RED], 4),
        ] {
            // One 100-byte packet per source is green, the next red.
            let mut d = def("src", sr(1000, 100, 0), general.then_some(1));
            d.per_source = Some(PerSource {
                max_sources: 16,
                idle_ticks: u64::MAX / 2,
                ipv6_prefix: prefix,
            });
            let mut defs = vec![d];
            if general {
                defs.push(def("other", sr(1000, 100, 0), Some(2)));
            }
            let c = Arc::new(WorkerCounters::new(0, 1));
            let mut p = Policer::new(
                PolicerTable::new(defs, rfc2597_precolor()).unwrap(),
                c.clone(),
            );
            let k = general as u16;
            let frames = [
                (a1.clone(), k),
                (a2.clone(), k),
                (b.clone(), k),
                (c4.clone(), k),
                (c4.clone(), k),
            ];
            let (v, _) = burst(&mut p, t0(), &frames);
            assert_eq!(v, want, "/{prefix}, general {general}");
            let tab = p.sources(0).unwrap();
            assert_eq!(tab.len(), sources, "/{prefix}");
            assert_eq!(tab.v4.len(), 1);
            assert!(tab.get6(v6("2001:db8:1:2::1")).is_some());
            assert_eq!(c.policers[0].sources_created.get(), sources as u64);
            assert_eq!(
                c.policers[0]
                    .sources
                    .load(std::sync::atomic::Ordering::Relaxed),
                sources as u64
            );
        }
    }
    // A full IPv6 table refuses new prefixes, counted; IPv4 has its own room.
    let mut d = def("src", sr(1000, 100, 0), None);
    d.per_source = Some(PerSource {
        max_sources: 2,
        idle_ticks: u64::MAX / 2,
        ipv6_prefix: 64,
    });
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(
        PolicerTable::new(vec![d], rfc2597_precolor()).unwrap(),
        c.clone(),
    );
    let n = |i: u16| (frame6(v6(&format!("2001:db8:{i:x}::1")), 0, 100), 0);
    let (v, _) = burst(&mut p, t0(), &[n(1), n(2), n(3), (c4.clone(), 0)]);
    let full = Verdict::Drop(DropReason::PolicerTableFull);
    assert_eq!(v, [ok, ok, full, ok]);
    assert_eq!(c.policers[0].table_full.get(), 1);
    assert_eq!(p.sources(0).unwrap().len(), 3);
}

/// A frame of EtherType IPv6 that is not valid IPv6 is dropped with the parser's reason by a
/// policer that reads the header (per source, colour-aware, remark), unmetered; one that does
/// not (colour-blind aggregate) meters it like any frame. Never a panic.
#[test]
fn malformed_ipv6_is_dropped_with_the_parsers_reason() {
    pool();
    let good = frame6(v6("2001:db8::1"), 0, 100);
    let mut long = good.clone();
    long[18..20].copy_from_slice(&200u16.to_be_bytes()); // payload beyond the frame
    let mut ver = good.clone();
    ver[14] = 0x40 | (ver[14] & 0x0f);
    let mut hbh = good.clone(); // a hop-by-hop header after a destination-options header
    hbh[20] = 60;
    hbh[54] = 0;
    hbh[55] = 0;
    let cases = [
        (good[..50].to_vec(), DropReason::Ipv6Truncated),
        (long, DropReason::Ipv6Truncated),
        (ver, DropReason::Ipv6BadVersion),
        (hbh, DropReason::Ipv6BadExtHeader),
    ];
    for variant in 0..3 {
        let mut d = def("d", sr(1000, 100_000, 0), None);
        match variant {
            0 => {
                d.per_source = Some(PerSource {
                    max_sources: 4,
                    idle_ticks: u64::MAX / 2,
                    ipv6_prefix: 64,
                })
            }
            1 => d.color_aware = true,
            _ => d.class = Some(1), // general loop, remark
        }
        d.actions[0] = Action::Remark(46);
        let c = Arc::new(WorkerCounters::new(0, 1));
        let mut p = Policer::new(
            PolicerTable::new(vec![d], rfc2597_precolor()).unwrap(),
            c.clone(),
        );
        let k = (variant == 2) as u16;
        let mut frames: Vec<_> = cases.iter().map(|(f, _)| (f.clone(), k)).collect();
        frames.push((good.clone(), k));
        let (v, pkts) = burst(&mut p, t0(), &frames);
        for (i, (_, r)) in cases.iter().enumerate() {
            assert_eq!(v[i], Verdict::Drop(*r), "variant {variant} case {i}");
            assert_eq!(pkts[i].data(), &frames[i].0[..], "untouched");
        }
        assert_eq!(v[4], Verdict::Continue);
        assert_eq!(tc_of(pkts[4].data()).1 >> 2, 46, "the valid one remarked");
        assert_eq!(
            counts(&c, 0),
            [1, 0, 0],
            "variant {variant}: only the valid one metered"
        );
    }
    // Colour-blind aggregate, no remark: no header read, every frame metered and passed.
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(
        PolicerTable::new(
            vec![def("d", sr(1000, 100_000, 0), None)],
            rfc2597_precolor(),
        )
        .unwrap(),
        c.clone(),
    );
    let frames: Vec<_> = cases.iter().map(|(f, _)| (f.clone(), 0)).collect();
    let (v, _) = burst(&mut p, t0(), &frames);
    assert!(v.iter().all(|x| *x == Verdict::Continue));
    assert_eq!(counts(&c, 0), [4, 0, 0]);
    // Random bytes behind an IPv6 EtherType: dropped or passed, never a panic.
    let mut d = def("d", sr(1000, 100_000, 0), None);
    d.color_aware = true;
    d.per_source = Some(PerSource {
        max_sources: 64,
        idle_ticks: u64::MAX / 2,
        ipv6_prefix: 64,
    });
    let mut p = Policer::new(
        PolicerTable::new(vec![d], rfc2597_precolor()).unwrap(),
        Arc::new(WorkerCounters::new(0, 1)),
    );
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..64 {
        let frames: Vec<_> = (0..32)
            .map(|i| {
                let mut f = good.clone();
                f.truncate(14 + (i * 7) % 90);
                for b in f[14..].iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x.is_multiple_of(4) {
                        *b = x as u8;
                    }
                }
                (f, 0)
            })
            .collect();
        burst(&mut p, t0(), &frames);
    }
}

/// `policer.sources`' steps on the worker: every source is listed once (IPv4 addresses, IPv6
/// prefixes with their length), a step looks at a bounded number of slots, `limit` is kept,
/// and a policer that is not per source lists nothing.
#[test]
fn listing_steps_show_ipv4_sources_and_ipv6_prefixes() {
    use pollfwd_nf::policer::{LIST_SLOTS, ListSources, SourcePage};
    use std::sync::Mutex;
    pool();
    let mut d = def("src", sr(1000, 100, 0), None);
    d.per_source = Some(PerSource {
        max_sources: 5000, // 16384 slots per family: several steps
        idle_ticks: u64::MAX / 2,
        ipv6_prefix: 56,
    });
    let mut p = Policer::new(
        PolicerTable::new(vec![d], rfc2597_precolor()).unwrap(),
        Arc::new(WorkerCounters::new(0, 1)),
    );
    let frames = [
        (frame6(v6("2001:db8:1:2ff::1"), 0, 100), 0),
        (frame6(v6("2001:db8:1:200::2"), 0, 100), 0), // same /56
        (frame6(v6("2001:db8:1:300::1"), 0, 100), 0),
        (frame([10, 0, 0, 1], 0, 100), 0),
        (frame([10, 0, 0, 2], 0, 100), 0),
    ];
    burst(&mut p, t0(), &frames);
    let list = |p: &mut Policer, policer: usize, limit: usize| {
        let out = Arc::new(Mutex::new(SourcePage {
            sources: Vec::new(),
            next: Some(0),
        }));
        let mut steps = 0;
        loop {
            // (The guard must be gone before the worker's step locks the page.)
            let Some(start) = out.lock().unwrap().next else {
                break;
            };
            let q = ListSources {
                policer,
                start,
                limit,
                out: out.clone(),
            };
            assert!(p.control(Box::new(q)).is_ok_and(|r| r.is::<()>()));
            steps += 1;
        }
        let mut v = std::mem::take(&mut out.lock().unwrap().sources);
        v.sort_by_key(|e| (e.ipv6, e.key));
        (v, steps)
    };
    let (v, steps) = list(&mut p, 0, 100);
    assert_eq!(
        steps,
        2 * 16384 / LIST_SLOTS,
        "bounded steps over both tables"
    );
    let got: Vec<_> = v.iter().map(|e| (e.ipv6, e.key, e.prefix)).collect();
    assert_eq!(
        got,
        [
            (false, 0x0a00_0001, 32),
            (false, 0x0a00_0002, 32),
            (true, v6("2001:db8:1:200::"), 56),
            (true, v6("2001:db8:1:300::"), 56),
        ]
    );
    // The shared /56 spent its tokens on two packets: C is empty; the others keep 0 too
    // (one 100-byte packet each, CBS 100).
    assert!(v.iter().all(|e| e.tokens.0 < 100 && e.last >= t0()));
    let (v, _) = list(&mut p, 0, 3);
    assert_eq!(v.len(), 3, "limit");
    let (v, steps) = list(&mut p, 7, 100);
    assert_eq!((v.len(), steps), (0, 1), "no such policer");
}

/// Neighbour discovery is IPv6's ARP: a per-source policer lets it pass unmetered and
/// untouched (a full table or an empty bucket never stops address resolution); the same
/// ICMPv6 type with another hop limit is not ND (RFC 4861 7.1.1) and is metered per source.
#[test]
fn neighbour_discovery_passes_a_per_source_policer_like_arp() {
    pool();
    let mut d = def("src", sr(1000, 100, 0), None);
    d.per_source = Some(PerSource {
        max_sources: 1,
        idle_ticks: u64::MAX / 2,
        ipv6_prefix: 64,
    });
    d.color_aware = true;
    d.actions = [Action::Remark(46), Action::Transmit, Action::Drop];
    let c = Arc::new(WorkerCounters::new(0, 1));
    let mut p = Policer::new(
        PolicerTable::new(vec![d], rfc2597_precolor()).unwrap(),
        c.clone(),
    );
    let icmp6 = |src: &str, ty: u8, hop: u8| {
        let mut f = frame6(v6(src), 0, 100);
        f[20] = 58;
        f[21] = hop;
        f[54] = ty;
        f[55] = 0;
        (f, 0)
    };
    let mut arp = frame([10, 0, 0, 9], 0, 60);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    // A host fills the one-source table first.
    let frames = [
        (frame6(v6("2001:db8:1::1"), 0, 100), 0),
        icmp6("fe80::1", 135, 255), // NS
        icmp6("fe80::1", 136, 255), // NA
        icmp6("::", 135, 255),      // DAD
        icmp6("fe80::2", 133, 255), // RS
        (arp, 0),
        icmp6("fe80::1", 135, 64), // not ND: a new source, the table is full
    ];
    let (v, pkts) = burst(&mut p, t0(), &frames);
    let ok = Verdict::Continue;
    let full = Verdict::Drop(DropReason::PolicerTableFull);
    assert_eq!(v, [ok, ok, ok, ok, ok, ok, full]);
    for i in 1..6 {
        assert_eq!(pkts[i].data(), &frames[i].0[..], "frame {i} untouched");
    }
    assert_eq!(counts(&c, 0), [1, 0, 0], "only the host's packet metered");
    assert_eq!(p.sources(0).unwrap().len(), 1);
    assert_eq!(c.policers[0].table_full.get(), 1);
}

/// A reload or `policer.set` that keeps a per-source binding (here: another rate and idle
/// time) brings no source table: the worker moves its running tables (both families) over with
/// their sources, the reply carries none either and, sent back (an undo), moves them back.
/// Reloads used to allocate both tables anew each time (and free the replaced ones off the
/// worker), which grew the daemon's heap under a reload loop. A size or prefix change still
/// brings a new table.
#[test]
fn an_update_keeping_the_binding_moves_the_running_tables_and_allocates_none() {
    pool();
    let ps = |max_sources, ipv6_prefix| {
        Some(PerSource {
            max_sources,
            idle_ticks: u64::MAX / 2,
            ipv6_prefix,
        })
    };
    let mut d = def("src", sr(1000, 100, 0), None);
    d.per_source = ps(8, 64);
    let c = Arc::new(WorkerCounters::new(0, 1));
    let first = PolicerTable::new(vec![d.clone()], rfc2597_precolor()).unwrap();
    let mut p = Policer::new(first.clone(), c.clone());
    let f4 = (frame([10, 0, 0, 1], 0, 100), 0);
    let f6 = (frame6(v6("2001:db8:1:2::1"), 0, 100), 0);
    let ok = Verdict::Continue;
    let (v, _) = burst(&mut p, t0(), &[f4.clone(), f6.clone()]);
    assert_eq!(v, [ok, ok]);

    // Another rate and idle time, same size and prefix: no table in the update.
    let mut d2 = def("src", sr(2000, 100, 0), None);
    d2.per_source = Some(PerSource {
        idle_ticks: 1000,
        ..ps(8, 64).unwrap()
    });
    let second = PolicerTable::new(vec![d2.clone()], rfc2597_precolor()).unwrap();
    let u = Update::new(second.clone(), &first);
    assert!(u.state.sources[0].is_none(), "no source table allocated");
    assert!(u.spare.iter().all(Option::is_none));
    let Ok(reply) = p.control(Box::new(u)) else {
        panic!("update refused");
    };
    let Ok(reply) = reply.downcast::<Update>() else {
        panic!("the old table comes back");
    };
    assert!(
        reply.state.sources[0].is_none(),
        "the reply has none either"
    );
    let tab = p.sources(0).unwrap();
    assert_eq!((tab.v4.len(), tab.v6.len()), (1, 1), "both families moved");
    assert_eq!(
        c.policers[0]
            .sources
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // Their buckets are still empty (no time passed): red, not a fresh green.
    let (v, _) = burst(&mut p, t0(), &[f4.clone(), f6.clone()]);
    assert_eq!(v, [RED, RED]);
    assert_eq!(
        c.policers[0].sources_created.get(),
        2,
        "carried, not created"
    );

    // The undo moves them back, with the first table's idle time: a sweep 1001 ticks on
    // removes nothing (the second table's 1000 would have removed both).
    assert!(p.control(reply).is_ok());
    assert_eq!(p.table().defs()[0].per_source, first.defs()[0].per_source);
    p.age(t0() + 1001, 1);
    assert_eq!(p.sources(0).unwrap().len(), 2);
    let (v, _) = burst(&mut p, t0(), &[f4.clone(), f6.clone()]);
    assert_eq!(v, [RED, RED], "same sources, same empty buckets");

    // Another size or prefix: a new table in the update.
    for (max, prefix) in [(16, 64), (8, 48)] {
        let mut d3 = d.clone();
        d3.per_source = ps(max, prefix);
        let t = PolicerTable::new(vec![d3], rfc2597_precolor()).unwrap();
        assert!(
            Update::new(t, &first).state.sources[0].is_some(),
            "max {max} /{prefix}"
        );
    }

    // An update built against another table than the one running (the appliance sends none)
    // still leaves the policer metering per source: the worker starts an empty table.
    let mut d4 = d.clone();
    d4.per_source = ps(16, 64);
    let t16 = PolicerTable::new(vec![d4], rfc2597_precolor()).unwrap();
    let Ok(_) = p.control(Box::new(Update::new(t16.clone(), &t16))) else {
        panic!("update refused");
    };
    let tab = p.sources(0).unwrap();
    assert_eq!((tab.max(), tab.len()), (16, 0));
    let (v, _) = burst(&mut p, t0(), &[f4.clone(), f4]);
    assert_eq!(v, [ok, RED], "metered per source again");
}
