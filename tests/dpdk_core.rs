//! The root crate's safe wrappers against real DPDK: mempool accounting, owned mbufs and bursts,
//! the SP/SC ring across two threads, and an ethdev port (net_ring, which loops TX back to RX)
//! driven through RxQueue/TxQueue/TxBuffer, including the claim-once and stop-while-used rules.
//!
//! One EAL for the whole test binary (`--no-pci --in-memory`, unique file prefix).

use std::fs::File;
use std::sync::OnceLock;

use dpdk::txbuf::TxResult;
use dpdk::{Burst, Mempool, Port, PortSetup, TxBuffer};

struct Env {
    _eal: dpdk::Eal,
    _lock: File,
    pool: Mempool,
}

static ENV: OnceLock<Env> = OnceLock::new();

fn env() -> &'static Env {
    ENV.get_or_init(|| {
        let (eal, lock) =
            dpdk::Eal::init_private("core-test", &["--vdev=net_ring0"]).expect("EAL init");
        let pool = Mempool::create("core_test_pool", 2047, 0, 2176, 0).expect("pool");
        Env {
            _eal: eal,
            _lock: lock,
            pool,
        }
    })
}

#[test]
fn eal_refuses_a_second_init_and_pci_scans() {
    env();
    let again = dpdk::Eal::init(&["x".to_string(), "--no-pci".to_string()]);
    assert_eq!(again.unwrap_err().code, libc::EALREADY);
    let pci = dpdk::Eal::init(&["x".to_string(), "--in-memory".to_string()]);
    assert!(pci.unwrap_err().to_string().contains("--no-pci"));
    assert!(dpdk::tsc_hz() > 0);
    assert!(dpdk::runtime_version().contains("22.11") || dpdk::runtime_version().contains("DPDK"));
}

#[test]
fn mbufs_free_themselves_and_bursts_free_in_bulk() {
    let e = env();
    // Other tests share the pool: measure with a private one.
    let pool = Mempool::create("core_test_pool2", 511, 0, 2176, 0).unwrap();
    assert_eq!(pool.size(), 511);
    assert_eq!(pool.in_use(), 0);
    {
        let mut b = Burst::new();
        for i in 0..40u8 {
            let mut m = pool.alloc().expect("alloc");
            assert!(m.set_len(60));
            m.data_mut().fill(i);
            m.meta_mut().class = i as u16;
            b.push(m).unwrap();
        }
        assert_eq!(pool.in_use(), 40);
        // Keep even, drop odd: kept ones are compacted in order.
        let mut gone = 0;
        b.dispatch(|i, m| {
            if i % 2 == 0 {
                Some(m)
            } else {
                gone += 1;
                drop(m);
                None
            }
        });
        assert_eq!(gone, 20);
        assert_eq!(b.len(), 20);
        assert_eq!(pool.in_use(), 20);
        for (k, m) in b.as_slice().iter().enumerate() {
            assert_eq!(m.data()[0], (2 * k) as u8);
            assert_eq!(m.meta().class, (2 * k) as u16);
            assert_eq!(m.data_len(), 60);
        }
        b.free_all();
        assert_eq!(pool.in_use(), 0);
        for _ in 0..5 {
            b.push(pool.alloc().unwrap()).unwrap();
        }
        assert_eq!(pool.in_use(), 5);
    } // Burst dropped with 5 mbufs in it.
    assert_eq!(pool.in_use(), 0);
    // Headroom/tailroom edits refuse out-of-range requests.
    let mut m = pool.alloc().unwrap();
    assert!(m.set_len(100));
    assert!(m.adjust_front(-14));
    assert_eq!(m.data_len(), 114);
    assert!(m.adjust_front(14));
    assert!(!m.adjust_front(-10_000));
    assert!(!m.set_len(u16::MAX));
    assert_eq!(m.data_len(), 100);
    // Data and metadata writable at once, each write landing in its own place: the whole
    // headroom given to the data (its start next to the private area) still leaves the
    // metadata intact.
    assert!(m.adjust_front(-(m.headroom() as i32)));
    let len = m.data_len() as usize;
    {
        let (d, meta) = m.data_and_meta_mut();
        assert_eq!(d.len(), len);
        d.fill(0xa5);
        *meta = dpdk::PktMeta::fresh(7, 99);
        meta.aux = 0xdead_beef;
    }
    assert!(m.data().iter().all(|&b| b == 0xa5));
    assert_eq!(
        (m.meta().in_port, m.meta().rx_tsc, m.meta().aux),
        (7, 99, 0xdead_beef)
    );
    drop(m);
    assert!(e.pool.size() > 0);
}

#[test]
fn take_masked_moves_the_marked_packets_out_in_order_and_keeps_the_rest() {
    let _e = env();
    let pool = Mempool::create("core_test_pool_mask", 255, 0, 2176, 0).unwrap();
    let tags = |b: &Burst| {
        b.as_slice()
            .iter()
            .map(|m| m.data()[0])
            .collect::<Vec<u8>>()
    };
    let burst = |n: u8| {
        let mut b = Burst::new();
        for i in 0..n {
            let mut m = pool.alloc().unwrap();
            assert!(m.set_len(60));
            m.data_mut()[0] = i;
            b.push(m).unwrap();
        }
        b
    };
    let mut b = burst(10);
    let mut to = Burst::new();
    assert_eq!(b.take_masked(0b10_0100_0001, &mut to), 3);
    assert_eq!(tags(&b), [1, 2, 3, 4, 5, 7, 8]);
    assert_eq!(tags(&to), [0, 6, 9]);
    // Bits past the burst are ignored; what `to` holds stays first.
    assert_eq!(b.take_masked(1 << 1 | 1 << 40, &mut to), 1);
    assert_eq!(tags(&b), [1, 3, 4, 5, 7, 8]);
    assert_eq!(tags(&to), [0, 6, 9, 2]);
    assert_eq!(b.take_masked(0, &mut to), 0);
    assert_eq!(b.len(), 6);
    assert_eq!(b.take_masked(u64::MAX, &mut to), 6);
    assert!(b.is_empty());
    assert_eq!(tags(&to), [0, 6, 9, 2, 1, 3, 4, 5, 7, 8]);
    // A full burst of 64, the last packet out; and `to` with room for two only.
    let mut big = burst(64);
    let mut full = burst(62);
    assert_eq!(big.take_masked(1 << 63 | 1 << 10 | 1, &mut full), 2);
    assert_eq!(tags(&full)[61..], [61, 0, 10]);
    assert_eq!(big.len(), 62, "the packet with no room stays");
    assert_eq!(big.as_slice()[61].data()[0], 63);
    drop((b, to, big, full));
    assert_eq!(pool.in_use(), 0, "every mbuf freed once");
}

#[test]
fn spsc_ring_moves_ownership_in_order_across_threads() {
    let e = env();
    let pool = Mempool::create("core_test_pool3", 4095, 0, 2176, 0).unwrap();
    let (mut prod, mut cons, stats) = dpdk::spsc_ring("core_test_ring", 256, 0).unwrap();
    assert_eq!(stats.capacity(), 255);
    const N: u32 = 20_000;
    let consumer = std::thread::spawn(move || {
        let mut b = Burst::new();
        let mut next = 0u32;
        while next < N {
            cons.dequeue_burst(&mut b, 32);
            for m in b.as_slice() {
                assert_eq!(m.meta().aux, next, "order kept");
                next += 1;
            }
            b.free_all();
        }
        next
    });
    let mut b = Burst::new();
    let mut sent = 0u32;
    while sent < N {
        while !b.is_full() && sent + (b.len() as u32) < N {
            let mut m = pool
                .alloc()
                .expect("pool never runs dry: the consumer frees");
            m.meta_mut().aux = sent + b.len() as u32;
            b.push(m).unwrap();
        }
        sent += prod.enqueue_burst(&mut b) as u32;
    }
    assert_eq!(consumer.join().unwrap(), N);
    assert_eq!(stats.count(), 0);
    drop(prod);
    assert_eq!(pool.in_use(), 0, "every mbuf came back");
    assert!(e.pool.size() > 0);
    assert!(
        dpdk::spsc_ring("bad", 100, 0).is_err(),
        "size must be a power of two"
    );
}

#[test]
fn net_ring_port_loops_tx_back_to_rx_through_the_safe_api() {
    let e = env();
    let port = Port::by_name("net_ring0").expect("net_ring0 port");
    assert!(Port::by_name("net_nope9").is_err());
    let info = port.info().unwrap();
    assert_eq!(info.driver, "net_ring");
    port.configure(
        &PortSetup {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 512,
            tx_desc: 512,
            mtu: None,
            promiscuous: true,
            vlan_offload: false,
        },
        &[e.pool],
    )
    .unwrap();
    port.start().unwrap();
    assert!(port.link().up);

    let mut rxq = port.rx_queue(0).unwrap();
    assert!(port.rx_queue(0).is_err(), "an rx queue can be claimed once");
    assert!(port.rx_queue(1).is_err(), "no such queue");
    let txq = port.tx_queue(0).unwrap();
    let mut tb = TxBuffer::new(txq, 32);

    let before = e.pool.in_use();
    for i in 0..100u16 {
        let mut m = e.pool.alloc().unwrap();
        assert!(m.set_len(64));
        m.data_mut()[..2].copy_from_slice(&i.to_be_bytes());
        let r = tb.push(m);
        assert_eq!(r.refused, 0);
    }
    let r = tb.flush();
    assert_eq!(r.refused, 0);
    let mut got = Vec::new();
    let mut b = Burst::new();
    for _ in 0..100 {
        rxq.rx_burst(&mut b, 32);
        for m in b.as_slice() {
            got.push(u16::from_be_bytes([m.data()[0], m.data()[1]]));
            assert_eq!(m.pkt_len(), 64);
        }
        b.free_all();
        if got.len() == 100 {
            break;
        }
    }
    assert_eq!(
        got,
        (0..100).collect::<Vec<u16>>(),
        "all frames back, in order"
    );

    // A burst of at least half the threshold (one that lost packets to drops on the way)
    // leaves as it is when nothing waits; smaller ones wait in the buffer and leave with what
    // comes next once the threshold is reached; in order, bytes exact.
    let (mut sent, mut want_bytes, mut next) = (TxResult::default(), 0u64, 100u16);
    for (len, waits) in [
        (30usize, 0usize),
        (30, 0),
        (5, 5),
        (31, 0),
        (1, 1),
        (32, 0),
        (20, 0),
        (3, 3),
        (62, 0),
        (33, 0),
    ] {
        let mut b = Burst::new();
        let mut bytes = 0u64;
        for _ in 0..len {
            let mut m = e.pool.alloc().unwrap();
            assert!(m.set_len(60 + next % 7));
            m.data_mut()[..2].copy_from_slice(&next.to_be_bytes());
            bytes += (60 + next % 7) as u64;
            assert!(b.push(m).is_ok());
            next += 1;
        }
        want_bytes += bytes;
        // The caller's count when it has one (every other burst), else counted here.
        let known = (len % 2 == 0).then_some(bytes);
        sent.add(tb.push_burst_counted(&mut b, known));
        assert!(b.is_empty(), "every packet left the burst");
        assert_eq!(tb.len(), waits, "after a burst of {len}");
    }
    sent.add(tb.flush());
    assert_eq!((sent.sent, sent.refused), (247, 0));
    assert_eq!(sent.sent_bytes, want_bytes);
    let mut got = Vec::new();
    for _ in 0..100 {
        rxq.rx_burst(&mut b, 32);
        got.extend(
            b.as_slice()
                .iter()
                .map(|m| u16::from_be_bytes([m.data()[0], m.data()[1]])),
        );
        b.free_all();
        if got.len() == 247 {
            break;
        }
    }
    assert_eq!(got, (100..347).collect::<Vec<u16>>(), "in order");

    let st = port.stats();
    assert_eq!(st.opackets, 347);
    assert_eq!(st.ipackets, 347);
    assert_eq!(e.pool.in_use(), before);

    // The port cannot be stopped while a queue handle lives.
    assert!(port.stop().is_err());
    drop(rxq);
    drop(tb);
    port.stop().unwrap();
    port.close().unwrap();
}
