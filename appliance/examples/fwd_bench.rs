//! Forward stage micro-benchmark: the stage alone on real mbufs, no PMD, no worker loop.
//!
//! `fwd_bench [ROUTES] [ROUNDS]`: the `bench/forward.sh` set-up in memory (ROUTES /24 routes in
//! 198.18.0.0/15.. via 203.0.113.2, a static neighbour for it, 2048 64-byte UDP frames to
//! random destinations under those prefixes). Each round copies the frames into mbufs burst by
//! burst (32 packets, untimed, as a PMD would just have written them) and times each
//! `Forward::process` call with the TSC. Prints TSC cycles per packet: the minimum over the
//! rounds (the machine is shared: noise only ever adds) and the median. Checks that every
//! packet was forwarded to port 1 with TTL 63.
//!
//! `FWD_BENCH_MSS=N` gives p1 an MSS clamp of N (TCP SYNs then leave the fast loop; the
//! others pay its test), `FWD_BENCH_TCP=1` sends TCP ACK segments instead of UDP datagrams.
//!
//! The EAL runs `--no-pci --in-memory` on lcore 0, holding the busy-polling lock.

use std::net::Ipv4Addr;
use std::sync::Arc;

use dpdk::{Mbuf, Mempool};
use pollfwd_nf::forward::table::{self, FwdTable, Iface, Prefix, StaticRoute};
use pollfwd_nf::forward::{Forward, FwdParams, FwdShared, StaticNeighbor};
use pollfwd_nf::nat::testpkt;
use pollfwd_nf::parse::ipv4_header_checksum;
use pollfwd_pipeline::Verdict;
use pollfwd_pipeline::stage::Harness;

const BURST: usize = 32;
const FRAMES: usize = 2048;

fn main() {
    let mut args = std::env::args().skip(1);
    let routes: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(200);

    let (_eal, _lock) = dpdk::Eal::init_private("fwdbench", &[]).expect("EAL init");
    let pool = Mempool::create("fwdbench", 4095, 256, 2176, -1).expect("mempool");

    // `FWD_BENCH_MSS=N`: p1 clamps TCP MSS to N (the fast loop then looks for SYNs).
    let mss_clamp: Option<u16> = std::env::var("FWD_BENCH_MSS")
        .ok()
        .and_then(|v| v.parse().ok());
    // `FWD_BENCH_TCP=1`: TCP ACK segments (no SYN) instead of UDP datagrams.
    let tcp = std::env::var_os("FWD_BENCH_TCP").is_some();
    let ifaces = vec![
        Iface {
            port: 0,
            name: "p0".into(),
            mac: [2, 0, 0, 0, 0, 0x10],
            addr: Some((0xc000_0201, 24)),
            addr6: Vec::new(),
            mtu: 1500,
            mss_clamp: None,
            ra: false,
        },
        Iface {
            port: 1,
            name: "p1".into(),
            mac: [2, 0, 0, 0, 0, 0x11],
            addr: Some((0xcb00_7101, 24)),
            addr6: Vec::new(),
            mtu: 1500,
            mss_clamp,
            ra: false,
        },
    ];
    let base = 0xc612_0000u32; // 198.18.0.0
    let statics: Vec<StaticRoute> = (0..routes)
        .map(|i| StaticRoute {
            prefix: Prefix::new(base + (i << 8), 24),
            via: Some(0xcb00_7102),
            port: None,
        })
        .collect();
    let entries = table::resolve(&ifaces, &statics).expect("routes");
    let t = Arc::new(FwdTable::build(&entries, &[], -1).expect("table"));
    let neigh = [StaticNeighbor {
        ip: 0xcb00_7102,
        mac: [2, 0, 0, 0, 0, 2],
        port: 1,
    }];
    let shared = Arc::new(
        FwdShared::new(
            ifaces,
            Vec::new(),
            &neigh,
            &[],
            FwdParams::default(),
            dpdk::tsc_hz(),
        )
        .expect("shared"),
    );
    let mut fwd = Forward::new(shared, t, 0);

    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ routes as u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let frames: Vec<Vec<u8>> = (0..FRAMES)
        .map(|k| {
            let dst = base + ((rnd() % routes as u64) as u32) * 256 + 1 + (rnd() % 254) as u32;
            let src = (
                Ipv4Addr::from(0xc000_0200 | (10 + k as u32 % 200)),
                1024 + (k % 4096) as u16,
            );
            if tcp {
                // 14 + 20 + 20 + 6 = 60 bytes, TTL 64, ACK.
                testpkt::tcp(src, (Ipv4Addr::from(dst), 9), 0x10, k as u32, &[0u8; 6])
            } else {
                // 14 + 20 + 8 + 18 = 60 bytes, TTL 64.
                testpkt::udp(src, (Ipv4Addr::from(dst), 9), &[0u8; 18])
            }
        })
        .collect();

    let twice = std::env::var_os("FWD_BENCH_TWICE").is_some();
    let empty = std::env::var_os("FWD_BENCH_EMPTY").is_some();
    let touch = std::env::var_os("FWD_BENCH_TOUCH").is_some();
    let mut h = Harness::new(pool, dpdk::tsc_hz());
    let mut v = [Verdict::Continue; BURST];
    let mut per_round = Vec::with_capacity(rounds);
    let mut forwarded = 0u64;
    for _ in 0..rounds {
        let mut cycles = 0u64;
        for b in frames.chunks(BURST) {
            let mut pkts: Vec<Mbuf> = b
                .iter()
                .map(|f| {
                    let mut m = pool.alloc().expect("mbuf");
                    assert!(m.set_len(f.len() as u16));
                    m.data_mut().copy_from_slice(f);
                    m
                })
                .collect();
            if touch {
                // Diagnosis: read every header word once (untimed) before the stage does.
                let mut x = 0u64;
                for m in &pkts {
                    for c in m.data()[..36].chunks(4) {
                        x = x.wrapping_add(c[0] as u64);
                    }
                }
                std::hint::black_box(x);
            }
            if twice {
                // Diagnosis: a first, untimed pass leaves everything in cache (TTL 62 after).
                v.fill(Verdict::Continue);
                h.process(
                    &mut fwd,
                    &mut pkts,
                    &mut v[..b.len()],
                    (dpdk::rdtsc(), 0, false),
                );
            }
            v.fill(Verdict::Continue);
            let now = dpdk::rdtsc();
            let t0 = dpdk::rdtsc();
            if empty {
                // Diagnosis: the cost of the timing itself.
                cycles += dpdk::rdtsc() - t0;
                forwarded += pkts.len() as u64;
                continue;
            }
            let all = h.process(&mut fwd, &mut pkts, &mut v[..b.len()], (now, 0, false));
            cycles += dpdk::rdtsc() - t0;
            for (i, m) in pkts.iter().enumerate() {
                let verdict = all.unwrap_or(v[i]);
                assert_eq!(verdict, Verdict::Tx(1), "packet {i}");
                let d = m.data();
                assert_eq!(d[22], if twice { 62 } else { 63 }, "TTL");
                assert_eq!(&d[0..6], &[2, 0, 0, 0, 0, 2]);
                assert_eq!(
                    ipv4_header_checksum(&d[14..34]).to_be_bytes(),
                    [d[24], d[25]]
                );
            }
            forwarded += pkts.len() as u64;
        }
        per_round.push(cycles as f64 / FRAMES as f64);
    }
    per_round.sort_by(f64::total_cmp);
    println!(
        "forward stage, {routes} routes, {rounds} rounds of {FRAMES} packets ({forwarded} forwarded): \
         min {:.2} median {:.2} TSC cycles/packet (incl. ~2 TSC reads per burst of {BURST})",
        per_round[0],
        per_round[rounds / 2]
    );
}
