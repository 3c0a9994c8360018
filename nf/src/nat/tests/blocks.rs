//! Port blocks for the pool: a host's mappings take ports from its blocks, a second block
//! when allowed, `nat_block_exhausted` beyond; blocks come back with their last mapping; one
//! event per block allocated and freed.

use super::*;
use crate::nat::blocks::BlockEvent;

fn blocky(size: u32, per_host: u8) -> NatCore {
    core_with(|p| {
        p.pool = vec![u(X1)];
        p.port_lo = 20000;
        p.port_hi = 20999;
        p.port_block = size;
        p.blocks_per_host = per_host;
        p.timeouts.udp = 10_000;
        p.timeouts.icmp = 10_000;
    })
}

fn events(c: &NatCore) -> Vec<BlockEvent> {
    let q = c.shared.block_events.as_ref().unwrap();
    std::iter::from_fn(|| q.pop()).collect()
}

#[test]
fn a_host_fills_its_block_then_a_second_then_is_refused_and_counted() {
    let mut c = blocky(64, 2);
    let mut ports = Vec::new();
    for k in 0..128u16 {
        let o = pass(&mut c, &testpkt::udp((H1, 30000 + k), (R1, 53), b""), IN);
        assert_eq!(src_of(&o).0, X1);
        ports.push(src_of(&o).1);
    }
    // The first 64 mappings in the first block (20000-20063), the next 64 in the second.
    assert!(
        ports[..64].iter().all(|p| (20000..20064).contains(p)),
        "{ports:?}"
    );
    assert!(
        ports[64..].iter().all(|p| (20064..20128).contains(p)),
        "{ports:?}"
    );
    let mut uniq = ports.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), 128, "no port twice");
    assert_eq!(
        drop_reason(&mut c, &testpkt::udp((H1, 40000), (R1, 53), b""), IN),
        DropReason::NatBlockExhausted
    );
    // Another host: its own block; ICMP of the first host shares its blocks' ports space
    // per protocol (another protocol's ports in the same blocks).
    let o = pass(&mut c, &testpkt::udp((H2, 30000), (R1, 53), b""), IN);
    assert!((20128..20192).contains(&src_of(&o).1));
    let e = pass(&mut c, &testpkt::icmp_echo(H1, R1, 77, 1, false), IN);
    let id = testpkt::endpoints(&e).1;
    assert!(
        (20000..20128).contains(&id),
        "echo id {id} from H1's blocks"
    );
    let ev = events(&c);
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert_eq!(
        ev[0],
        BlockEvent {
            alloc: true,
            host: u(H1),
            addr: u(X1),
            first: 20000,
            last: 20063
        }
    );
    assert_eq!((ev[1].host, ev[1].first), (u(H1), 20064));
    assert_eq!((ev[2].host, ev[2].first, ev[2].last), (u(H2), 20128, 20191));
    assert_eq!(c.shared.counters.blocks_allocated.get(), 3);
    assert_eq!(c.shared.counters.block_log_lost.get(), 0);
    // Replies translate back as for the pool without blocks.
    let back = pass(&mut c, &testpkt::udp((R1, 53), (X1, ports[70]), b"r"), OUT);
    assert_eq!(back, testpkt::udp((R1, 53), (H1, 30070), b"r"));
}

#[test]
fn blocks_come_back_with_their_last_mapping_and_serve_the_next_host() {
    let mut c = blocky(100, 1);
    pass(&mut c, &testpkt::udp((H1, 1), (R1, 53), b""), IN);
    c.set_now(5_000);
    pass(&mut c, &testpkt::udp((H1, 2), (R1, 53), b""), IN);
    // At 12 s the first mapping expired, the second holds the block.
    c.set_now(12_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 1);
    assert_eq!(events(&c).len(), 1, "only the allocation so far");
    c.set_now(16_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 0);
    let ev = events(&c);
    assert_eq!(ev.len(), 1);
    assert!(!ev[0].alloc && ev[0].host == u(H1) && ev[0].first == 20000 && ev[0].last == 20099);
    assert_eq!(c.shared.counters.blocks_freed.get(), 1);
    // Blocks are reused least recently freed first: the next host gets a block never used,
    // and H1's old block only when no other is free.
    let o = pass(&mut c, &testpkt::udp((H2, 9), (R1, 53), b""), IN);
    assert!((20100..20200).contains(&src_of(&o).1));
    for (k, h) in (3..=10u8).enumerate() {
        let o = pass(
            &mut c,
            &testpkt::udp((Ipv4Addr::new(10, 0, 7, h), 9), (R1, 53), b""),
            IN,
        );
        let first = 20200 + 100 * k as u16;
        assert!((first..first + 100).contains(&src_of(&o).1), "host {h}");
    }
    let o = pass(
        &mut c,
        &testpkt::udp((Ipv4Addr::new(10, 0, 7, 99), 9), (R1, 53), b""),
        IN,
    );
    assert!(
        (20000..20100).contains(&src_of(&o).1),
        "the freed block, last"
    );
    let ev = events(&c);
    assert_eq!(ev.len(), 10);
    assert!(ev.iter().all(|e| e.alloc));
}

#[test]
fn with_every_block_taken_new_hosts_are_refused() {
    // 1000 ports, blocks of 400: two blocks (the remainder 200 is in none).
    let mut c = blocky(400, 1);
    pass(&mut c, &testpkt::udp((H1, 1), (R1, 53), b""), IN);
    pass(&mut c, &testpkt::udp((H2, 1), (R1, 53), b""), IN);
    assert_eq!(
        drop_reason(&mut c, &testpkt::udp((S, 1), (R1, 53), b""), IN),
        DropReason::NatBlockExhausted
    );
}
