//! IPv4 fragmentation micro-benchmark: the forward stage's own fragmenter against DPDK's two
//! (librte_ip_frag), on real mbufs, no PMD. `bench/frag.sh` runs it.
//!
//! `frag_bench [ROUNDS]`: for each datagram size (4000 and 9000 bytes of UDP, DF clear, cut
//! for MTU 1500: 3 and 7 fragments) and each fragmenter, ROUNDS rounds of 32 datagrams. Each
//! round copies the frames into mbufs (untimed, as a PMD would just have written them), then
//! times the fragmentation of the 32 with the TSC, from the routed frame to Ethernet frames
//! ready to transmit, the original freed or reused:
//!
//! - `own`: `pollfwd_nf::forward::frag::fragment_mbuf`, what the forward stage runs: fragments
//!   2..N copied (Ethernet header, IPv4 header, data) into fresh single-segment mbufs, the
//!   original cut in place to the first fragment;
//! - `rte_zero_copy`: `rte_ipv4_fragment_packet`: Ethernet header stripped, per fragment a
//!   direct header mbuf chained to an indirect mbuf into the original's buffer (no data copy;
//!   2-segment packets), Ethernet header prepended to each, the original's reference dropped;
//! - `rte_copy`: `rte_ipv4_fragment_copy_nonseg_packet` (experimental in 22.11): every fragment
//!   copied into a fresh single-segment mbuf, Ethernet header prepended, the original freed.
//!
//! Prints TSC cycles per datagram (minimum over rounds: the machine is shared and noise only
//! adds; and the median) and checks every round's output: fragment count, and the fragments'
//! IPv4 bytes add up to the datagram (header per fragment, data once).
//!
//! The EAL runs `--no-pci --in-memory` on lcore 0, holding the busy-polling lock.

use std::net::Ipv4Addr;

use dpdk::{Mbuf, Mempool};
use pollfwd_nf::forward::frag;
use pollfwd_nf::nat::testpkt;

const BURST: usize = 32;
const MTU: usize = 1500;

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Own,
    RteZeroCopy,
    RteCopy,
}

fn frame(total: usize, k: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..total - 28).map(|i| (i + k) as u8).collect();
    let mut f = testpkt::udp(
        (Ipv4Addr::new(10, 0, 0, 2), 1000 + k as u16),
        (Ipv4Addr::new(198, 18, 0, 1), 9),
        &payload,
    );
    // DF clear, header checksum again.
    f[20] = 0;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = pollfwd_nf::parse::ipv4_header_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let (_eal, _lock) = dpdk::Eal::init_private("fragbench", &[]).expect("EAL init");
    // Jumbo-sized mbufs, as the forward stage has them for a 9000-byte MTU (its fragments come
    // from the same pool); DPDK's zero-copy fragmenter gets small header mbufs and indirect
    // ones, as its design intends.
    let pool = Mempool::create("fragbench", 2047, 256, 9344, -1).expect("mempool");
    let direct = Mempool::create("fragdirect", 2047, 256, 256, -1).expect("direct pool");
    let indirect = Mempool::create("fragindirect", 2047, 256, 0, -1).expect("indirect pool");
    let mut out: Vec<Mbuf> = Vec::with_capacity(BURST * 8);
    println!(
        "fragmentation, MTU {MTU}, bursts of {BURST}, {rounds} rounds: TSC cycles per datagram (min / median)"
    );
    for total in [4000usize, 9000] {
        let frames: Vec<Vec<u8>> = (0..BURST).map(|k| frame(total, k)).collect();
        let want = 1 + (total - 20 - (MTU - 20)).div_ceil(MTU - 20);
        for (name, method) in [
            ("own", Method::Own),
            ("rte_zero_copy", Method::RteZeroCopy),
            ("rte_copy", Method::RteCopy),
        ] {
            let mut per = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let mut pkts: Vec<Mbuf> = frames
                    .iter()
                    .map(|f| {
                        let mut m = pool.alloc().expect("mbuf");
                        assert!(m.set_len(f.len() as u16));
                        m.data_mut().copy_from_slice(f);
                        m.meta_mut().l3_off = 14;
                        m
                    })
                    .collect();
                out.clear();
                let t0 = dpdk::rdtsc();
                match method {
                    Method::Own => {
                        for m in &mut pkts {
                            frag::fragment_mbuf(m, MTU, &pool, |f| out.push(f)).expect("own");
                        }
                    }
                    Method::RteZeroCopy | Method::RteCopy => {
                        for mut m in pkts.drain(..) {
                            let mut eth = [0u8; 14];
                            eth.copy_from_slice(&m.data()[..14]);
                            assert!(m.adjust_front(14));
                            let from = out.len();
                            if method == Method::RteZeroCopy {
                                dpdk::ipfrag::fragment_zero_copy(
                                    m, &mut out, MTU as u16, &direct, &indirect,
                                )
                                .expect("rte_ipv4_fragment_packet");
                            } else {
                                dpdk::ipfrag::fragment_copy(&m, &mut out, MTU as u16, &pool)
                                    .expect("rte_ipv4_fragment_copy_nonseg_packet");
                                drop(m);
                            }
                            for f in &mut out[from..] {
                                f.prepend(14).expect("headroom")[..14].copy_from_slice(&eth);
                            }
                        }
                    }
                }
                let dt = dpdk::rdtsc() - t0;
                per.push(dt as f64 / BURST as f64);
                // Check: N fragments per datagram whose IPv4 bytes add up.
                let frags = out.len() + pkts.len();
                assert_eq!(frags, BURST * want, "{name}: fragments");
                let ip_bytes: u64 = out
                    .iter()
                    .chain(pkts.iter())
                    .map(|m| m.pkt_len() as u64 - 14)
                    .sum();
                assert_eq!(
                    ip_bytes,
                    (BURST * (total + (want - 1) * 20)) as u64,
                    "{name}: bytes"
                );
                out.clear();
                drop(pkts);
            }
            per.sort_by(|a, b| a.total_cmp(b));
            println!(
                "  {total:>5} B -> {want} fragments  {name:<14} {:>8.0} / {:>8.0}",
                per[0],
                per[per.len() / 2]
            );
        }
    }
}
