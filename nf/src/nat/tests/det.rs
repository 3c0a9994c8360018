//! Deterministic NAT (RFC 7422): the same translation on every box from the configuration
//! alone, return traffic translated by a box that never saw the flow, blocks and their limits.

use super::*;
use crate::nat::det as dm;

const DI: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 0);
const DO: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 0);

/// 10.9.0.0/24 onto 198.51.100.0/30: 64 hosts per address, 1008 ports each.
fn det_map(stateless: bool) -> dm::DetMap {
    dm::DetMap::new((u(DI), 24), (u(DO), 30), stateless).unwrap()
}

/// A box with the test pool, statics and the deterministic map; `seed` differs per box.
fn det_box(seed: u64, stateless: bool) -> NatCore {
    core_with(|p| {
        p.det = Arc::new(dm::DetTable::new(&[det_map(stateless)]).unwrap());
        p.seed = seed;
    })
}

fn host(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 9, 0, i)
}

/// The outside address and block arithmetic says host `i` has (VPP det44's formula).
fn block_of(i: u8) -> (Ipv4Addr, u16) {
    let i = i as u32;
    (
        Ipv4Addr::from(u(DO) + i / 64),
        1024 + (1008 * (i % 64)) as u16,
    )
}

#[test]
fn two_boxes_translate_every_host_identically_from_the_configuration() {
    let (mut a, mut b) = (det_box(7, false), det_box(0xdead_beef, false));
    for i in [1u8, 63, 64, 130, 255] {
        let (oa, lo) = block_of(i);
        // A port in the host's block is kept; one outside it lands at lo + port % 1008.
        for (sport, want) in [(lo + 5, lo + 5), (40000, lo + (40000 % 1008) as u16)] {
            let f = testpkt::udp((host(i), sport), (R1, 53), b"det");
            let oa_ = pass(&mut a, &f, IN);
            let ob = pass(&mut b, &f, IN);
            assert_eq!(oa_, ob, "both boxes, host {i} port {sport}");
            assert_eq!(oa_, testpkt::udp((oa, want), (R1, 53), b"det"));
        }
        // TCP and ICMP identifiers alike.
        let f = testpkt::tcp((host(i), lo + 9), (R2, 443), 2, 1, b"");
        assert_eq!(pass(&mut a, &f, IN), pass(&mut b, &f, IN));
        assert_eq!(src_of(&pass(&mut a, &f, IN)), (oa, lo + 9));
        let e = testpkt::icmp_echo(host(i), R1, lo + 3, 1, false);
        assert_eq!(
            pass(&mut a, &e, IN),
            testpkt::icmp_echo(oa, R1, lo + 3, 1, false)
        );
    }
    assert_eq!(a.shared.counters.det_created.get(), 5 * 4);
    // Hosts outside the map use the pool as before; det hosts never do.
    let o = pass(&mut a, &testpkt::udp((H1, 5000), (R1, 53), b""), IN);
    assert!([X1, X2].contains(&src_of(&o).0));
}

#[test]
fn return_traffic_reaching_the_other_box_is_translated_back_when_stateless_inbound() {
    let (mut a, mut b) = (det_box(7, true), det_box(99, true));
    let (oa, lo) = block_of(70);
    let sent = pass(
        &mut a,
        &testpkt::udp((host(70), lo + 100), (R1, 53), b"q"),
        IN,
    );
    assert_eq!(src_of(&sent), (oa, lo + 100));
    // The answer comes back through box B, which has no session: translated all the same,
    // byte for byte what A would have made of it.
    let reply = testpkt::udp((R1, 53), (oa, lo + 100), b"answer");
    let via_b = pass(&mut b, &reply, OUT);
    assert_eq!(
        via_b,
        testpkt::udp((R1, 53), (host(70), lo + 100), b"answer")
    );
    assert_eq!(pass(&mut a, &reply, OUT), via_b);
    assert_eq!(b.shared.counters.det_stateless.get(), 1);
    // B now holds the session: the host's next datagram through B keeps the same endpoint.
    let again = pass(
        &mut b,
        &testpkt::udp((host(70), lo + 100), (R1, 53), b"q2"),
        IN,
    );
    assert_eq!(src_of(&again), (oa, lo + 100));
    // An echo reply too (the host pinged through A), but never an echo request from outside.
    let ping = pass(
        &mut a,
        &testpkt::icmp_echo(host(70), R2, lo + 7, 1, false),
        IN,
    );
    assert_eq!(testpkt::endpoints(&ping).0, oa);
    let pong = testpkt::icmp_echo(R2, oa, lo + 7, 1, true);
    assert_eq!(
        pass(&mut b, &pong, OUT),
        testpkt::icmp_echo(R2, host(70), lo + 7, 1, true)
    );
    assert_eq!(
        drop_reason(&mut b, &testpkt::icmp_echo(R2, oa, lo + 8, 1, false), OUT),
        DropReason::NatNoSession
    );
    // Below 1024 no block: nobody's port.
    assert_eq!(
        drop_reason(&mut b, &testpkt::udp((R1, 53), (oa, 80), b""), OUT),
        DropReason::NatNoSession
    );
}

#[test]
fn without_stateless_inbound_only_the_box_with_the_session_translates_back() {
    let (mut a, mut b) = (det_box(7, false), det_box(99, false));
    let (oa, lo) = block_of(3);
    pass(&mut a, &testpkt::udp((host(3), lo + 1), (R1, 53), b"q"), IN);
    let reply = testpkt::udp((R1, 53), (oa, lo + 1), b"r");
    assert_eq!(drop_reason(&mut b, &reply, OUT), DropReason::NatNoSession);
    assert_eq!(
        pass(&mut a, &reply, OUT),
        testpkt::udp((R1, 53), (host(3), lo + 1), b"r")
    );
    // Filtering applies to other remotes as for the pool (address-and-port-dependent).
    assert_eq!(
        drop_reason(&mut a, &testpkt::udp((R2, 53), (oa, lo + 1), b""), OUT),
        DropReason::NatFiltered
    );
}

#[test]
fn a_stateless_inbound_packet_never_makes_a_second_mapping_for_an_endpoint() {
    let mut a = core_with(|p| {
        p.det = Arc::new(dm::DetTable::new(&[det_map(true)]).unwrap());
        p.timeouts.udp = 10_000;
    });
    let (oa, lo) = block_of(9);
    // Inside port q (not in the block) takes its preferred port x of the block...
    let q = 50000;
    let x = src_of(&pass(
        &mut a,
        &testpkt::udp((host(9), q), (R1, 53), b""),
        IN,
    ))
    .1;
    assert_eq!(x, lo + q % 1008);
    // ... so inside port x, later, gets another port of the block.
    a.set_now(5_000);
    let y = src_of(&pass(
        &mut a,
        &testpkt::udp((host(9), x), (R1, 53), b""),
        IN,
    ))
    .1;
    assert_ne!(y, x);
    // q's session expires: port x is free, but endpoint (host 9, x) is mapped to y. An
    // inbound packet to port x must not make a second mapping for that endpoint.
    a.set_now(12_000);
    a.housekeeping();
    assert_eq!(a.sessions(), 1);
    assert_eq!(
        drop_reason(&mut a, &testpkt::udp((R2, 1), (oa, x), b""), OUT),
        DropReason::NatFiltered
    );
    // While the free port of another endpoint is translated statelessly.
    assert_eq!(
        pass(&mut a, &testpkt::udp((R2, 1), (oa, lo + 700), b""), OUT),
        testpkt::udp((R2, 1), (host(9), lo + 700), b"")
    );
}

#[test]
fn a_full_block_is_counted_and_leaves_other_hosts_and_protocols_alone() {
    // A /24 onto one address: 256 hosts, 252 ports each.
    let m = dm::DetMap::new((u(DI), 24), (u(DO), 32), false).unwrap();
    assert_eq!(m.ports_per_host(), 252);
    let mut c = core_with(|p| {
        p.det = Arc::new(dm::DetTable::new(&[m]).unwrap());
        p.timeouts.udp = 10_000;
    });
    let lo = 1024 + 252 * 20;
    let mut ports = std::collections::BTreeSet::new();
    for k in 0..252u16 {
        let o = pass(
            &mut c,
            &testpkt::udp((host(20), 30000 + k), (R1, 53), b""),
            IN,
        );
        let (oa, p) = src_of(&o);
        assert_eq!(oa, DO);
        assert!((lo..lo + 252).contains(&p), "port {p} outside the block");
        assert!(ports.insert(p), "port {p} twice");
    }
    assert_eq!(
        drop_reason(&mut c, &testpkt::udp((host(20), 40000), (R1, 53), b""), IN),
        DropReason::NatBlockExhausted
    );
    // Another host, another protocol of the same host: their own ports.
    pass(&mut c, &testpkt::udp((host(21), 40000), (R1, 53), b""), IN);
    pass(
        &mut c,
        &testpkt::tcp((host(20), 40000), (R1, 80), 2, 1, b""),
        IN,
    );
    // Expiry gives the ports back.
    c.set_now(20_000);
    c.housekeeping();
    let o = pass(&mut c, &testpkt::udp((host(20), 40000), (R1, 53), b""), IN);
    assert_eq!(src_of(&o).1, lo + (40000 % 252) as u16);
}

#[test]
fn two_workers_hand_outside_packets_to_the_worker_of_the_blocks_host() {
    let mut w = two_workers(|p| {
        p.det = Arc::new(dm::DetTable::new(&[det_map(true)]).unwrap());
    });
    for i in [1u8, 2, 3, 64, 65, 200] {
        let owner = w[0].inside_owner(u(host(i)));
        let (oa, lo) = block_of(i);
        let (v, f, path) = deliver(
            &mut w,
            1 - owner,
            &testpkt::udp((host(i), lo + 1), (R1, 53), b"x"),
            IN,
        );
        assert_eq!((v, path), (Verdict::Continue, vec![1 - owner, owner]));
        assert_eq!(src_of(&f), (oa, lo + 1));
        // The reply, received by the other worker, goes to the owner; so does a packet to
        // a port of the block this box never used (stateless inbound).
        for port in [lo + 1, lo + 500] {
            let (v, f, path) = deliver(
                &mut w,
                1 - owner,
                &testpkt::udp((R1, 53), (oa, port), b"y"),
                OUT,
            );
            assert_eq!((v, path), (Verdict::Continue, vec![1 - owner, owner]));
            assert_eq!(testpkt::endpoints(&f).2, host(i));
        }
    }
    for c in &w {
        c.check_invariants().unwrap();
    }
}
