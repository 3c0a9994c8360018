//! The VLAN work of the runtime alone, in memory: a burst of 32 single-tagged 64-byte frames
//! demultiplexed (tag read, interface found, tag popped: `PortRx::demux`), then the same
//! frames tagged for another sub-interface (`VlanMap::tagger`), each timed per burst with the
//! TSC; minimum and median cycles per packet over the rounds. No PMD, no worker loop, no stage:
//! what `bench/vlan.sh` measures on top of untagged forwarding, without the harness's noise.
//!
//!   cargo run --release -p pollfwd --example vlan_bench -- [ROUNDS]     (default 2000)

use dpdk::{Burst, Mempool};
use pollfwd_pipeline::vlan::{IFACE_BASE, TPID_8021Q, VlanIface, VlanMap};

const BURST: usize = 32;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let (_eal, _lock) = dpdk::Eal::init_private("vlanbench", &[]).expect("EAL init");
    let pool = Mempool::create("vlanbench", 1023, 0, 2176, -1).expect("mempool");
    let map = VlanMap::new(
        &[
            VlanIface {
                id: IFACE_BASE,
                parent: 0,
                vid: 10,
                outer: None,
            },
            VlanIface {
                id: IFACE_BASE + 1,
                parent: 1,
                vid: 20,
                outer: None,
            },
        ],
        &[],
    )
    .expect("map");
    let rx = map.rx(0).expect("port 0 has sub-interfaces");
    let (_, tag) = map.tagger(IFACE_BASE + 1).expect("sub-interface");
    let mut frame = vec![0u8; 64];
    frame[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    frame[12..16].copy_from_slice(&[(TPID_8021Q >> 8) as u8, TPID_8021Q as u8, 0, 10]);
    frame[16..18].copy_from_slice(&[8, 0]);

    let (mut pop, mut push) = (Vec::new(), Vec::new());
    let mut b = Burst::new();
    for _ in 0..rounds {
        for _ in 0..BURST {
            let mut m = pool.alloc().expect("mbuf");
            assert!(m.set_len(frame.len() as u16));
            m.data_mut().copy_from_slice(&frame);
            assert!(b.push(m).is_ok());
        }
        let t0 = dpdk::rdtsc();
        let mut ids = 0u32;
        for m in b.as_mut_slice() {
            let id = rx.demux(m).expect("VLAN 10");
            m.set_port(id);
            ids += id as u32;
        }
        let t1 = dpdk::rdtsc();
        let mut ok = 0;
        for m in b.as_mut_slice() {
            ok += tag(m) as usize;
        }
        let t2 = dpdk::rdtsc();
        assert_eq!(ids, BURST as u32 * IFACE_BASE as u32);
        assert_eq!(ok, BURST);
        for m in b.as_slice() {
            assert_eq!(m.data()[12..16], [0x81, 0, 0, 20], "tagged for VLAN 20");
        }
        pop.push((t1 - t0) as f64 / BURST as f64);
        push.push((t2 - t1) as f64 / BURST as f64);
        b.free_all();
    }
    for v in [&mut pop, &mut push] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "VLAN work per packet, {rounds} bursts of {BURST}: demux + pop min {:.1} median {:.1}, \
         push min {:.1} median {:.1} TSC cycles (incl. 1 TSC read per burst each)",
        pop[0],
        pop[rounds / 2],
        push[0],
        push[rounds / 2]
    );
}
