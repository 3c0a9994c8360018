//! The forward stage's IPv4 fast loops against its general path: the untagged fast loop (no
//! metadata: `forward` first in the chain), the chained loop (bursts whose metadata the stages
//! ahead filled in) and the multipath runs of both (routes with several next hops). Random
//! bursts of IPv4 packets — most of them plain packets on a few routes, one of them multipath,
//! the rest every kind that must leave the loops (TTL 1 and 0, a link-layer broadcast, martian
//! sources and destinations, the box's own address, no route, too big with and without DF,
//! options, fragments, a connected host, a next hop to resolve, ARP, IPv6, a packet no earlier
//! stage parsed) — go through one stage with the loops and through another that takes every
//! packet through `Forward::one` (`general_path_only`), each on its own copy of the table, and
//! must come out identical: verdicts, every byte (and with metadata, the metadata) of every
//! packet, the packets the stage originates or gives back, the stage's counters and the
//! multipath routes' per-member packet counts.
//!
//! One EAL per test binary (`--no-pci --in-memory`, unique file prefix), started while holding
//! the machine's busy-polling lock; nothing polls here.

use std::fs::File;
use std::sync::{Arc, OnceLock};

use dpdk::{Mbuf, Mempool, PktMeta};
use pollfwd_nf::forward::table::{self, FwdTable, Iface, Prefix, StaticRoute};
use pollfwd_nf::forward::{Forward, FwdParams, FwdShared, StaticNeighbor};
use pollfwd_pipeline::Verdict;
use pollfwd_pipeline::stage::Harness;

static EAL: OnceLock<(dpdk::Eal, File, Mempool)> = OnceLock::new();

fn pool() -> Mempool {
    EAL.get_or_init(|| {
        let (eal, lock) = dpdk::Eal::init_private("fwd4fast", &[]).expect("EAL init");
        let pool = Mempool::create("fwd4fast", 2047, 0, 2176, -1).expect("mempool");
        (eal, lock, pool)
    })
    .2
}

const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];
/// Multipath routes: 198.20/16 over three gateways, 198.21/16 over two (one never resolved).
const ECMP: u32 = 0xc614_0000;
const ECMP_HALF: u32 = 0xc615_0000;
/// 198.22/16: one member through a gateway, one on the link (hosts 198.22.0.1-4 resolved).
const ECMP_ONLINK: u32 = 0xc616_0000;
/// p2's MTU: smaller than the others, for "fragmentation needed" and fragmenting.
const MTU2: u16 = 1000;

fn ifaces() -> Vec<Iface> {
    let iface = |port: u16, addr: u32, mtu: u16| Iface {
        port,
        name: format!("p{port}"),
        mac: [2, 0, 0, 0, 0, 0x10 + port as u8],
        addr: Some((addr, 24)),
        addr6: Vec::new(),
        mtu,
        mss_clamp: None,
        ra: false,
    };
    vec![
        iface(0, 0xc000_0201, 1500), // 192.0.2.1/24
        iface(1, 0xcb00_7101, 1500), // 203.0.113.1/24
        iface(2, 0xc633_6401, MTU2), // 198.51.100.1/24
    ]
}

fn table() -> Arc<FwdTable> {
    pool(); // EAL up
    let route = |prefix, len, via| StaticRoute {
        prefix: Prefix::new(prefix, len),
        via: Some(via),
        port: None,
    };

    let mut routes = vec![
        route(0xc612_0000, 16, 0xcb00_7102), // 198.18/16 via 203.0.113.2 (p1)
        route(0xc613_0000, 16, 0xc633_6402), // 198.19/16 via 198.51.100.2 (p2)
        route(0x0b00_0000, 8, 0xcb00_7109),  // 11/8 via 203.0.113.9: never resolved
    ];
    // Multipath: one route over three resolved gateways, one whose second member never
    // resolves (its flows are parked). A route with several `via`s is several entries.
    for gw in [0xcb00_7102, 0xcb00_7103, 0xcb00_7104] {
        routes.push(route(ECMP, 16, gw));
    }
    for gw in [0xcb00_7102, 0xcb00_7109] {
        routes.push(route(ECMP_HALF, 16, gw));
    }
    // One through a gateway, one on the link of p1 (each destination its own next hop).
    routes.push(route(ECMP_ONLINK, 16, 0xcb00_7102));
    routes.push(StaticRoute {
        prefix: Prefix::new(ECMP_ONLINK, 16),
        via: None,
        port: Some(1),
    });
    let v4 = table::resolve(&ifaces(), &routes).unwrap();
    Arc::new(FwdTable::build(&v4, &[], -1).unwrap())
}

fn stage(t: &Arc<FwdTable>, general_only: bool) -> Forward {
    stage_with(t, general_only, FwdParams::default())
}

fn stage_with(t: &Arc<FwdTable>, general_only: bool, params: FwdParams) -> Forward {
    let n = |ip, mac, port| StaticNeighbor { ip, mac, port };
    let mut neigh = vec![
        n(0xcb00_7102, [2, 0, 0, 0, 1, 2], 1),
        n(0xcb00_7103, [2, 0, 0, 0, 1, 3], 1),
        n(0xcb00_7104, [2, 0, 0, 0, 1, 4], 1),
        n(0xc633_6402, [2, 0, 0, 0, 2, 2], 2),
        n(0xc633_6405, [2, 0, 0, 0, 2, 5], 2),
    ];
    for h in 1..=4u8 {
        neigh.push(n(ECMP_ONLINK | h as u32, [2, 0, 0, 0, 6, h], 1));
    }
    let shared = FwdShared::new(ifaces(), Vec::new(), &neigh, &[], params, dpdk::tsc_hz()).unwrap();
    let mut f = Forward::new(Arc::new(shared), t.clone(), 0);
    f.general_path_only(general_only);
    f
}

/// An IPv4 frame to the box's p0: `proto` with `payload` bytes after the header (and `opts`
/// bytes of options before them), TTL `ttl`, flags/offset word `ff`.
fn v4(src: u32, dst: u32, ttl: u8, ff: u16, opts: usize, payload: usize) -> Vec<u8> {
    let hl = 20 + opts;
    let mut f = vec![0u8; 14 + hl + payload];
    f[..6].copy_from_slice(&IN_MAC);
    f[6..12].copy_from_slice(&HOST_MAC);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x40 | (hl / 4) as u8;
    f[16..18].copy_from_slice(&((hl + payload) as u16).to_be_bytes());
    f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
    f[20..22].copy_from_slice(&ff.to_be_bytes());
    f[22] = ttl;
    f[23] = 17;
    f[26..30].copy_from_slice(&src.to_be_bytes());
    f[30..34].copy_from_slice(&dst.to_be_bytes());
    for b in &mut f[34..14 + hl] {
        *b = 1; // NOP options
    }
    let l4 = 14 + hl;
    if payload >= 8 {
        f[l4..l4 + 2].copy_from_slice(&1024u16.to_be_bytes());
        f[l4 + 2..l4 + 4].copy_from_slice(&9u16.to_be_bytes());
        f[l4 + 4..l4 + 6].copy_from_slice(&(payload as u16).to_be_bytes());
    }
    for (k, b) in f[l4 + 8.min(payload)..].iter_mut().enumerate() {
        *b = k as u8;
    }
    let c = pollfwd_nf::parse::ipv4_header_checksum(&f[14..14 + hl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// `f` (a frame from [`v4`]) as protocol `proto` with ports `sport` and `dport` (when it has
/// room for them), its header checksum recomputed.
fn with_l4(mut f: Vec<u8>, proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let hl = (f[14] & 0xf) as usize * 4;
    f[23] = proto;
    let l4 = 14 + hl;
    if f.len() >= l4 + 4 {
        f[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
        f[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
    }
    f[24..26].fill(0);
    let c = pollfwd_nf::parse::ipv4_header_checksum(&f[14..14 + hl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// A packet of a random flow on the three-gateway multipath route: UDP, TCP, SCTP (ports
/// hashed) or ICMP (not), from one of a few hosts.
fn ecmp_frame(r: &mut Rng) -> Vec<u8> {
    let src = 0xc000_020a + r.below(4) as u32;
    let dst = ECMP | r.below(0x10000) as u32;
    let proto = [17, 6, 132, 1][r.below(4) as usize];
    let f = v4(src, dst, 64, 0, 0, 18);
    with_l4(f, proto, 1024 + r.below(60000) as u16, r.below(1024) as u16)
}

/// A packet of a random flow to one of the four resolved hosts of the multipath route with an
/// on-link member.
fn ecmp_onlink(r: &mut Rng) -> Vec<u8> {
    let f = v4(
        0xc000_020a,
        ECMP_ONLINK | (1 + r.below(4)) as u32,
        64,
        0,
        0,
        18,
    );
    with_l4(f, 17, 1024 + r.below(60000) as u16, 53)
}

/// A packet of a random flow on the multipath route with an unresolved member.
fn ecmp_half(r: &mut Rng) -> Vec<u8> {
    let f = v4(
        0xc000_020a,
        ECMP_HALF | r.below(0x10000) as u32,
        64,
        0,
        0,
        18,
    );
    with_l4(f, 17, 1024 + r.below(60000) as u16, 53)
}

/// A small xorshift generator: the same sequence on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One random frame, and whether the stage ahead parsed it (its metadata filled in);
/// `resolve`: frames to a next hop that never answers ARP among them.
fn random_frame(r: &mut Rng, resolve: bool) -> (Vec<u8>, bool) {
    let host = 0xc000_020a; // 192.0.2.10
    let via1 = 0xc612_0000 | (r.next() as u32 & 0xffff);
    let k = r.below(100);
    let frame = match k {
        // Plain packets on the two gateway routes and the multipath route (most of the
        // traffic, in runs).
        0..=44 => v4(host, 0xc612_0000 | r.below(0x10000) as u32, 64, 0, 0, 18),
        45..=59 => ecmp_frame(r),
        60..=74 => v4(
            host,
            0xc613_0000 | r.below(0x10000) as u32,
            64,
            0x4000,
            0,
            18,
        ),
        75 => v4(host, via1, 1, 0, 0, 18),
        76 => v4(host, via1, 0, 0, 0, 18),
        77 => {
            let mut f = v4(host, via1, 64, 0, 0, 18);
            f[..6].fill(0xff);
            f
        }
        78 => v4(0x7f00_0001, via1, 64, 0, 0, 18), // martian source
        79 => v4(0x0000_0005, via1, 64, 0, 0, 18),
        80 => v4(host, 0xe000_0005, 64, 0, 0, 18), // multicast destination
        81 => v4(host, 0xffff_ffff, 64, 0, 0, 18),
        82 => v4(host, 0xf000_0001, 64, 0, 0, 18), // class E
        83 => v4(host, 0xcb00_7101, 64, 0, 0, 18), // the box (UDP: port unreachable)
        84 => v4(host, 0x0a63_0001, 64, 0, 0, 18), // no route
        // Bigger than p2's MTU: DF set (frag needed) and clear (fragmented).
        85 => v4(host, 0xc613_0001, 64, 0x4000, 0, MTU2 as usize),
        86 => v4(host, 0xc613_0002, 64, 0, 0, MTU2 as usize + 100),
        87 => v4(host, 0xc613_0003, 64, 0, 0, MTU2 as usize - 28), // exactly the MTU
        88 => v4(host, via1, 64, 0, 8, 18),                        // options
        89 => v4(host, 0xc633_6405, 64, 0, 0, 18),                 // connected host
        // A next hop to resolve: its packets are parked, and while any are, no route is
        // memoised (so only the last rounds have them).
        90 if resolve => v4(host, 0x0b00_0001, 64, 0, 0, 18),
        91 => v4(host, via1, 64, 0x2000, 0, 18), // first fragment
        92 => {
            // ARP request for the box's p0 address.
            let mut f = vec![0u8; 60];
            f[..6].fill(0xff);
            f[6..12].copy_from_slice(&HOST_MAC);
            f[12..14].copy_from_slice(&[0x08, 0x06]);
            f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
            f[22..28].copy_from_slice(&HOST_MAC);
            f[28..32].copy_from_slice(&host.to_be_bytes());
            f[38..42].copy_from_slice(&0xc000_0201u32.to_be_bytes());
            f
        }
        93 => {
            let mut f = v4(host, via1, 64, 0, 0, 40);
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            f
        }
        // Multipath: fragments (hashed without ports), options, TTL 1, too big for the
        // egress MTU with and without DF, the route with a member that never resolves.
        94 => with_l4(v4(host, ECMP | 0x101, 64, 0x2000, 0, 18), 17, 7, 8),
        // A non-first fragment, exactly p1's MTU, a frame padded past its datagram.
        95 => match r.below(3) {
            0 => with_l4(v4(host, ECMP | 0x102, 64, 0x0010, 0, 18), 6, 7, 8),
            1 => with_l4(v4(host, ECMP | 0x106, 64, 0, 0, 1480), 17, 7, 8),
            _ => {
                let mut f = ecmp_frame(r);
                f.extend_from_slice(&[0xee; 10]);
                f
            }
        },
        96 => with_l4(v4(host, ECMP | 0x103, 64, 0, 4, 18), 17, 7, 8),
        97 => v4(host, ECMP | 0x104, 1, 0, 0, 18),
        98 => v4(host, ECMP | 0x105, 64, 0x4000, 0, 1500),
        99 if resolve => ecmp_half(r),
        _ => v4(
            host,
            0xc612_0000 | r.below(0x10000) as u32,
            64 + k as u8,
            0,
            0,
            30,
        ),
    };
    // One packet in ten reaches forward without a parse (a stage ahead that parses lazily).
    (frame, r.below(10) != 0)
}

fn mbufs(frames: &[(Vec<u8>, bool)], now: u64) -> Vec<Mbuf> {
    frames
        .iter()
        .map(|(f, parsed)| {
            let mut m = pool().alloc().expect("mbuf");
            assert!(m.set_len(f.len() as u16));
            m.data_mut().copy_from_slice(f);
            let mut meta = PktMeta::fresh(0, now);
            meta.class = 7; // something an earlier stage set, kept
            if *parsed && let Ok(p) = pollfwd_nf::parse::parse_ipv4_frame(f, f.len()) {
                p.write(&mut meta);
            }
            *m.meta_mut() = meta;
            m
        })
        .collect()
}

/// What a stage made of a burst: each packet's verdict, bytes and metadata, the packets it
/// originated (port, bytes), the packets it gave back for later, and the whole-burst verdict.
type Outcome = (
    Vec<(Verdict, Vec<u8>, PktMeta)>,
    Vec<(u16, Vec<u8>)>,
    Vec<Vec<u8>>,
    Option<Verdict>,
);

fn run(
    h: &mut Harness,
    fwd: &mut Forward,
    frames: &[(Vec<u8>, bool)],
    (now, meta): (u64, bool),
) -> Outcome {
    let mut pkts = mbufs(frames, now);
    let mut v = vec![Verdict::Continue; pkts.len()];
    let all = h.process(fwd, &mut pkts, &mut v, (now, 0, meta));
    // With a whole-burst verdict the runtime ignores the per-packet ones; the slow stage's
    // per-packet verdicts must all be that verdict then.
    let out = pkts
        .iter()
        .zip(&v)
        // Without metadata nothing reads it: the general path fills it in, the fast loop
        // does not.
        .map(|(m, &v)| {
            let meta = if meta { *m.meta() } else { PktMeta::default() };
            (all.unwrap_or(v), m.data().to_vec(), meta)
        })
        .collect();
    let orig = h
        .take_originated()
        .iter()
        .map(|m| (m.meta().out_port, m.data().to_vec()))
        .collect();
    let later = h
        .take_later()
        .as_mut_slice()
        .iter()
        .map(|m| m.data().to_vec())
        .collect();
    (out, orig, later, all)
}

/// The differential run: 400 random bursts through a stage with the fast loops and one
/// without, `meta` telling whether the bursts come with metadata (the chained loop) or not
/// (the untagged fast loop); `symmetric`: the symmetric ECMP hash.
fn loops_agree_with_the_general_path(meta: bool, symmetric: bool) {
    let (tf, ts) = (table(), table());
    let params = FwdParams {
        ecmp_symmetric: symmetric,
        ..FwdParams::default()
    };
    let (mut fast, mut slow) = (
        stage_with(&tf, false, params),
        stage_with(&ts, true, params),
    );
    let mut hf = Harness::new(pool(), dpdk::tsc_hz());
    let mut hs = Harness::new(pool(), dpdk::tsc_hz());
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let start = dpdk::rdtsc();
    let hz = dpdk::tsc_hz();
    let (mut bursts_all, mut tx) = (0, 0);
    for round in 0..400u64 {
        // Bursts of 1..=32; every few bursts the clock moves past the route memo's life.
        let n = 1 + r.below(32) as usize;
        // A third of the bursts are runs of plain packets on one route, a third on the
        // multipath route, with a few others mixed in.
        let kind = r.below(3);
        let frames: Vec<(Vec<u8>, bool)> = (0..n)
            .map(|_| {
                if kind == 0 && r.below(8) != 0 {
                    let dst = 0xc612_0000 | r.below(0x10000) as u32;
                    (v4(0xc000_020a, dst, 64, 0, 0, 18), true)
                } else if kind == 1 && r.below(8) != 0 {
                    if r.below(4) == 0 {
                        (ecmp_onlink(&mut r), true)
                    } else {
                        (ecmp_frame(&mut r), true)
                    }
                } else {
                    random_frame(&mut r, round >= 300)
                }
            })
            .collect();
        let now = start + round * hz / 2000 * (1 + r.below(3));
        let f = run(&mut hf, &mut fast, &frames, (now, meta));
        let s = run(&mut hs, &mut slow, &frames, (now, meta));
        for (k, (a, b)) in f.0.iter().zip(&s.0).enumerate() {
            assert_eq!(a.0, b.0, "round {round} packet {k}: verdict");
            assert_eq!(a.1, b.1, "round {round} packet {k}: bytes");
            assert_eq!(a.2, b.2, "round {round} packet {k}: metadata");
        }
        assert_eq!(f.1, s.1, "round {round}: originated packets");
        assert_eq!(f.2, s.2, "round {round}: packets given back for later");
        if let Some(v) = f.3 {
            bursts_all += 1;
            assert!(s.0.iter().all(|p| p.0 == v), "round {round}: one verdict");
        }
        tx += f.0.iter().filter(|p| matches!(p.0, Verdict::Tx(_))).count();
        assert_eq!(
            fast.stats().values(),
            slow.stats().values(),
            "round {round}: counters"
        );
        for prefix in [ECMP, ECMP_HALF, ECMP_ONLINK] {
            let p = Prefix::new(prefix, 16);
            assert_eq!(
                tf.group_of(p).unwrap().packets(),
                ts.group_of(p).unwrap().packets(),
                "round {round}: packets per member of {prefix:#x}"
            );
        }
    }
    // Many packets forwarded, every member of the multipath route used, and whole bursts
    // given one verdict.
    assert!(tx > 4000, "{tx} packets forwarded");
    let per_member = tf.group_of(Prefix::new(ECMP, 16)).unwrap().packets();
    assert!(per_member.iter().all(|&c| c > 300), "{per_member:?}");
    assert!(bursts_all > 20, "{bursts_all} bursts with one verdict");
}

#[test]
fn chained_fast_loop_and_general_path_agree_on_random_bursts() {
    loops_agree_with_the_general_path(true, false);
}

#[test]
fn untagged_fast_loop_and_general_path_agree_on_random_bursts() {
    loops_agree_with_the_general_path(false, false);
}

#[test]
fn both_loops_agree_with_the_general_path_with_the_symmetric_ecmp_hash() {
    loops_agree_with_the_general_path(true, true);
    loops_agree_with_the_general_path(false, true);
}

#[test]
fn a_chained_burst_on_one_route_gets_one_verdict_and_its_metadata() {
    let t = table();
    let mut fwd = stage(&t, false);
    let mut h = Harness::new(pool(), dpdk::tsc_hz());
    let frames: Vec<(Vec<u8>, bool)> = (0..32)
        .map(|k| (v4(0xc000_020a, 0xc612_0100 + k, 64, 0, 0, 18), true))
        .collect();
    let now = dpdk::rdtsc();
    let (out, orig, _, all) = run(&mut h, &mut fwd, &frames, (now, true));
    assert_eq!(all, Some(Verdict::Tx(1)));
    assert!(orig.is_empty());
    for (k, (_, b, meta)) in out.iter().enumerate() {
        assert_eq!(&b[..6], &[2, 0, 0, 0, 1, 2], "packet {k}: gateway MAC");
        assert_eq!(&b[6..12], &[2, 0, 0, 0, 0, 0x11], "packet {k}: p1's MAC");
        assert_eq!(b[22], 63, "packet {k}: TTL");
        assert!(
            pollfwd_nf::wire::checksum::ipv4_header_checksum_ok(&b[14..34]),
            "packet {k}: header checksum"
        );
        assert_eq!(meta.out_port, 1, "packet {k}: egress in the metadata");
        assert_ne!(meta.flags & dpdk::meta::flags::MODIFIED, 0);
        assert_eq!(
            meta.class, 7,
            "packet {k}: what the stage ahead set is kept"
        );
    }
}

#[test]
fn a_multipath_burst_takes_the_fast_loop_once_its_members_are_known() {
    let t = table();
    let mut fwd = stage(&t, false);
    let mut h = Harness::new(pool(), dpdk::tsc_hz());
    let mut r = Rng(0x1234_5678_9abc_def1);
    let now = dpdk::rdtsc();
    let gateways = [[2, 0, 0, 0, 1, 2], [2, 0, 0, 0, 1, 3], [2, 0, 0, 0, 1, 4]];
    // The first burst: the general path resolves the members its flows use (and the group
    // memo learns them).
    let first: Vec<(Vec<u8>, bool)> = (0..32).map(|_| (ecmp_frame(&mut r), false)).collect();
    let (out, _, _, all) = run(&mut h, &mut fwd, &first, (now, false));
    assert_eq!(all, Some(Verdict::Tx(1)));
    let group = t.group_of(Prefix::new(ECMP, 16)).unwrap();
    assert!(
        group.packets().iter().all(|&c| c > 0),
        "{:?}",
        group.packets()
    );
    assert!(
        out.iter()
            .all(|p| gateways.contains(&p.1[..6].try_into().unwrap()))
    );
    // The second: every packet through the multipath run, which (without metadata) leaves
    // the metadata as received, where the general path fills it in.
    let second: Vec<(Vec<u8>, bool)> = (0..32).map(|_| (ecmp_frame(&mut r), false)).collect();
    let mut pkts = mbufs(&second, now);
    for m in &mut pkts {
        *m.meta_mut() = PktMeta::default();
    }
    let mut v = vec![Verdict::Continue; 32];
    assert_eq!(
        h.process(&mut fwd, &mut pkts, &mut v, (now + 1, 0, false)),
        Some(Verdict::Tx(1))
    );
    for (k, m) in pkts.iter().enumerate() {
        assert_eq!(
            *m.meta(),
            PktMeta::default(),
            "packet {k}: taken by the fast loop"
        );
        let b = m.data();
        assert!(
            gateways.contains(&b[..6].try_into().unwrap()),
            "packet {k}: a gateway's MAC"
        );
        assert_eq!(&b[6..12], &[2, 0, 0, 0, 0, 0x11], "packet {k}: p1's MAC");
        assert_eq!(b[22], 63, "packet {k}: TTL");
        assert!(pollfwd_nf::wire::checksum::ipv4_header_checksum_ok(
            &b[14..34]
        ));
    }
    assert_eq!(
        group.packets().iter().sum::<u64>(),
        64,
        "every packet counted once"
    );
}
