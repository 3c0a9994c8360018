//! Unit tests per RFC requirement, on frames built by smoltcp (independent checksum code):
//! NAT's output is compared byte for byte with the frame expected after translation, built
//! from scratch, and every checksum is verified by smoltcp.

use std::net::Ipv4Addr;
use std::sync::Arc;

use dpdk::PktMeta;
use pollfwd_pipeline::{DropReason, Verdict};

use super::testpkt::{self, Ep, verify};
use super::*;

const IN: u16 = 0;
const OUT: u16 = 1;
const H1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const H2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const R1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const R2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const X1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const X2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
const S: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const XS: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const S6: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 6);
const XS6: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 6);

fn u(a: Ipv4Addr) -> u32 {
    a.into()
}

fn params() -> NatParams {
    NatParams {
        inside_ports: vec![IN],
        outside_ports: vec![OUT],
        pool: vec![u(X1), u(X2)],
        statics: Arc::new(
            StaticTable::new(&[
                StaticMapping {
                    proto: Some(pkt::PROTO_TCP),
                    out_addr: u(XS),
                    out_port: 443,
                    in_addr: u(S),
                    in_port: 8443,
                },
                StaticMapping {
                    proto: Some(pkt::PROTO_UDP),
                    out_addr: u(XS),
                    out_port: 53,
                    in_addr: u(S),
                    in_port: 5353,
                },
                StaticMapping {
                    proto: None,
                    out_addr: u(XS6),
                    out_port: 0,
                    in_addr: u(S6),
                    in_port: 0,
                },
            ])
            .unwrap(),
        ),
        seed: 7,
        ..NatParams::default()
    }
}

fn core_with(f: impl FnOnce(&mut NatParams)) -> NatCore {
    let mut p = params();
    f(&mut p);
    NatCore::new(p, 1).unwrap()
}

struct Out {
    v: Verdict,
    f: Vec<u8>,
}

fn send_meta(c: &mut NatCore, frame: &[u8], meta: PktMeta) -> Out {
    let mut f = frame.to_vec();
    let mut meta = meta;
    // As the stage does: the fast path first, the general path for what it declines.
    let v = match c.fast(&mut f, &mut meta, None) {
        Some(v) => v,
        None => c.handle(&mut f, &mut meta),
    };
    c.flush();
    // Every packet of every test leaves the tables consistent (the check scans every
    // table: skipped for the tests of very large tables).
    if c.sess.capacity() <= 1 << 17 {
        c.check_invariants().unwrap();
    }
    Out { v, f }
}

fn send(c: &mut NatCore, frame: &[u8], port: u16) -> Out {
    send_meta(c, frame, PktMeta::fresh(port, 0))
}

/// Sends and expects a translation: returns the output frame, checksums verified.
fn pass(c: &mut NatCore, frame: &[u8], port: u16) -> Vec<u8> {
    let o = send(c, frame, port);
    assert_eq!(o.v, Verdict::Continue, "expected translation");
    verify(&o.f).unwrap();
    o.f
}

fn drop_reason(c: &mut NatCore, frame: &[u8], port: u16) -> DropReason {
    match send(c, frame, port).v {
        Verdict::Drop(r) => r,
        v => panic!("expected a drop, got {v:?}"),
    }
}

fn src_of(f: &[u8]) -> Ep {
    let (a, p, _, _) = testpkt::endpoints(f);
    (a, p)
}

#[test]
fn timeouts_default_to_rfc_minimums_or_more() {
    let t = Timeouts::default();
    assert!(
        t.tcp_established >= (2 * 3600 + 4 * 60) * 1000,
        "RFC 5382 REQ-5"
    );
    assert!(t.tcp_transitory >= 4 * 60 * 1000, "RFC 5382 REQ-5");
    assert_eq!(t.udp, 5 * 60 * 1000, "RFC 4787 REQ-5: 5 min recommended");
    assert_eq!(t.icmp, 60 * 1000, "RFC 5508 section 3.1: 60 s");
}

#[test]
fn rfc4787_req1_endpoint_independent_mapping_and_exact_bytes() {
    let mut c = core_with(|_| {});
    let a = testpkt::udp((H1, 5000), (R1, 53), b"query one");
    let out_a = pass(&mut c, &a, IN);
    let (x, xp) = src_of(&out_a);
    assert!(x == X1 || x == X2, "translated to the pool: {x}");
    assert!(xp >= 1024);
    // Byte-exact: the frame smoltcp builds with the outside endpoint.
    assert_eq!(out_a, testpkt::udp((x, xp), (R1, 53), b"query one"));
    // Same inside endpoint, other destinations: same outside endpoint (REQ-1).
    let out_b = pass(&mut c, &testpkt::udp((H1, 5000), (R2, 123), b"b"), IN);
    assert_eq!(src_of(&out_b), (x, xp));
    let out_c = pass(&mut c, &testpkt::udp((H1, 5000), (R1, 54), b"c"), IN);
    assert_eq!(src_of(&out_c), (x, xp));
    assert_eq!(c.sessions(), 3);
    // Another inside port: another outside port (no port overloading, REQ-3).
    let out_d = pass(&mut c, &testpkt::udp((H1, 5001), (R1, 53), b"d"), IN);
    assert_eq!(src_of(&out_d).0, x);
    assert_ne!(src_of(&out_d).1, xp);
    // Replies are translated back, byte-exact.
    let back = pass(&mut c, &testpkt::udp((R1, 53), (x, xp), b"answer"), OUT);
    assert_eq!(back, testpkt::udp((R1, 53), (H1, 5000), b"answer"));
    let back = pass(&mut c, &testpkt::udp((R2, 123), (x, xp), b"t"), OUT);
    assert_eq!(back, testpkt::udp((R2, 123), (H1, 5000), b"t"));
    assert_eq!(c.shared.counters.in2out.get(), 4);
    assert_eq!(c.shared.counters.out2in.get(), 2);
}

#[test]
fn rfc4787_req2_paired_pooling_one_outside_address_per_host() {
    let mut c = core_with(|_| {});
    let mut used = std::collections::BTreeSet::new();
    for h in 1..=40u8 {
        let host = Ipv4Addr::new(10, 0, 1, h);
        let mut addrs = std::collections::BTreeSet::new();
        for sport in 0..8u16 {
            for dst in [R1, R2] {
                let o = pass(
                    &mut c,
                    &testpkt::udp((host, 4000 + sport), (dst, 80), b"x"),
                    IN,
                );
                addrs.insert(src_of(&o).0);
            }
            let o = pass(
                &mut c,
                &testpkt::tcp((host, 4000 + sport), (R1, 80), 2, 1, b""),
                IN,
            );
            addrs.insert(src_of(&o).0);
        }
        assert_eq!(addrs.len(), 1, "host {host} used {addrs:?}");
        used.extend(addrs);
    }
    assert_eq!(used.len(), 2, "hosts spread over both pool addresses");
}

fn filtering_case(mode: Filtering) -> [Result<(), DropReason>; 3] {
    let mut c = core_with(|p| p.filtering = mode);
    let o = pass(&mut c, &testpkt::udp((H1, 5000), (R1, 53), b"q"), IN);
    let (x, xp) = src_of(&o);
    let mut try_in = |from: Ep| match send(&mut c, &testpkt::udp(from, (x, xp), b"in"), OUT).v {
        Verdict::Continue => Ok(()),
        Verdict::Drop(r) => Err(r),
        v => panic!("{v:?}"),
    };
    [
        try_in((R1, 53)),   // the remote the host sent to
        try_in((R1, 9999)), // same address, other port
        try_in((R2, 53)),   // other address
    ]
}

#[test]
fn rfc4787_req8_filtering_modes() {
    use DropReason::NatFiltered as F;
    assert_eq!(
        filtering_case(Filtering::EndpointIndependent),
        [Ok(()), Ok(()), Ok(())]
    );
    assert_eq!(
        filtering_case(Filtering::AddressDependent),
        [Ok(()), Ok(()), Err(F)]
    );
    assert_eq!(
        filtering_case(Filtering::AddressAndPortDependent),
        [Ok(()), Err(F), Err(F)]
    );
    assert_eq!(Filtering::default(), Filtering::AddressAndPortDependent);
}

#[test]
fn unsolicited_inbound_without_mapping_is_dropped_and_others_pass() {
    let mut c = core_with(|p| p.filtering = Filtering::EndpointIndependent);
    assert_eq!(
        drop_reason(&mut c, &testpkt::udp((R1, 53), (X1, 40000), b"x"), OUT),
        DropReason::NatNoSession
    );
    assert_eq!(
        drop_reason(&mut c, &testpkt::tcp((R1, 1), (XS, 22), 2, 1, b""), OUT),
        DropReason::NatNoSession,
        "static address, port not forwarded"
    );
    // Outside packets to addresses NAT does not own pass untouched.
    let f = testpkt::udp((R1, 53), (Ipv4Addr::new(192, 0, 2, 200), 40000), b"x");
    let o = send(&mut c, &f, OUT);
    assert_eq!((o.v, &o.f), (Verdict::Continue, &f));
    // Non-IPv4 frames pass; ports that are neither inside nor outside are not touched.
    let mut arp = f.clone();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(send(&mut c, &arp, OUT).v, Verdict::Continue);
    let o = send(&mut c, &testpkt::udp((H1, 1), (R1, 2), b""), 7);
    assert_eq!(o.v, Verdict::Continue);
    assert_eq!(c.sessions(), 0);
}

#[test]
fn udp_zero_checksum_stays_zero_both_ways() {
    let mut c = core_with(|_| {});
    let o = pass(
        &mut c,
        &testpkt::udp_nocsum((H1, 5000), (R1, 53), b"no checksum"),
        IN,
    );
    let (x, xp) = src_of(&o);
    assert_eq!(o, testpkt::udp_nocsum((x, xp), (R1, 53), b"no checksum"));
    let b = pass(&mut c, &testpkt::udp_nocsum((R1, 53), (x, xp), b"r"), OUT);
    assert_eq!(b, testpkt::udp_nocsum((R1, 53), (H1, 5000), b"r"));
}

#[test]
fn rfc4787_req5_udp_timeout_and_ports_come_back() {
    let mut c = core_with(|p| {
        p.port_lo = 40000;
        p.port_hi = 40001;
    });
    let o1 = pass(&mut c, &testpkt::udp((H1, 1), (R1, 53), b""), IN);
    pass(&mut c, &testpkt::udp((H1, 2), (R1, 53), b""), IN);
    // Both ports of H1's pool address are taken.
    assert_eq!(
        drop_reason(&mut c, &testpkt::udp((H1, 3), (R1, 53), b""), IN),
        DropReason::NatPortsExhausted
    );
    // At 299 s the mapping is still there (>= 2 min, 5 min by default).
    c.set_now(299_000);
    pass(&mut c, &testpkt::udp((R1, 53), src_of(&o1), b""), OUT);
    // 300 s after that reply, the sessions are idle past the timeout: expiry frees them.
    c.set_now(599_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 0);
    assert_eq!(c.shared.counters.expired.get(), 2);
    assert_eq!(
        c.ports.in_use(c.pool_index_for(u(H1)), 1),
        0,
        "ports came back"
    );
    pass(&mut c, &testpkt::udp((H1, 3), (R1, 53), b""), IN);
    assert_eq!(
        drop_reason(&mut c, &testpkt::udp((R1, 53), src_of(&o1), b""), OUT),
        DropReason::NatNoSession,
        "expired sessions no longer translate"
    );
}

#[test]
fn ports_come_back_without_housekeeping_when_exhausted() {
    let mut c = core_with(|p| {
        p.port_lo = 40000;
        p.port_hi = 40000;
        p.timeouts.udp = 1000;
    });
    pass(&mut c, &testpkt::udp((H1, 1), (R1, 53), b""), IN);
    assert_eq!(
        drop_reason(&mut c, &testpkt::udp((H1, 2), (R1, 53), b""), IN),
        DropReason::NatPortsExhausted
    );
    c.set_now(1000);
    let o = pass(&mut c, &testpkt::udp((H1, 2), (R1, 53), b""), IN);
    assert_eq!(src_of(&o).1, 40000);
}

#[test]
fn mapping_lives_while_any_session_does() {
    let mut c = core_with(|p| p.timeouts.udp = 10_000);
    let o = pass(&mut c, &testpkt::udp((H1, 5000), (R1, 53), b""), IN);
    c.set_now(5_000);
    pass(&mut c, &testpkt::udp((H1, 5000), (R2, 53), b""), IN);
    c.set_now(12_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 1, "first session expired");
    // The mapping (and its port) stays with the second session: same outside endpoint.
    let o3 = pass(&mut c, &testpkt::udp((H1, 5000), (R1, 53), b""), IN);
    assert_eq!(src_of(&o3), src_of(&o));
    c.set_now(40_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 0);
    let a = c.pool_index_for(u(H1));
    assert_eq!(c.ports.in_use(a, 1), 0);
}

#[test]
fn rfc5382_tcp_established_and_transitory_timeouts() {
    let mut c = core_with(|_| {});
    // Connection 1: handshake completes.
    let syn = pass(
        &mut c,
        &testpkt::tcp((H1, 40000), (R1, 80), 0x02, 1, b""),
        IN,
    );
    let x = src_of(&syn);
    let synack = pass(&mut c, &testpkt::tcp((R1, 80), x, 0x12, 9, b""), OUT);
    assert_eq!(synack, testpkt::tcp((R1, 80), (H1, 40000), 0x12, 9, b""));
    pass(
        &mut c,
        &testpkt::tcp((H1, 40000), (R1, 80), 0x10, 2, b"data"),
        IN,
    );
    // Connection 2: SYN never answered (partially open = transitory).
    let syn2 = pass(
        &mut c,
        &testpkt::tcp((H1, 40001), (R1, 80), 0x02, 1, b""),
        IN,
    );
    // 4 min later: the half-open one is gone, the established one stays (>= 2 h 4 min).
    c.set_now(240_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 1);
    assert_eq!(
        drop_reason(
            &mut c,
            &testpkt::tcp((R1, 80), src_of(&syn2), 0x12, 1, b""),
            OUT
        ),
        DropReason::NatNoSession,
        "its mapping and port are gone"
    );
    c.set_now(7_439_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 1, "still within 2 h 4 min");
    pass(&mut c, &testpkt::tcp((R1, 80), x, 0x10, 10, b"more"), OUT);
    // FIN both ways: closing = transitory; gone 4 min later.
    let t = 7_439_000;
    pass(
        &mut c,
        &testpkt::tcp((H1, 40000), (R1, 80), 0x11, 3, b""),
        IN,
    );
    pass(&mut c, &testpkt::tcp((R1, 80), x, 0x11, 11, b""), OUT);
    c.set_now(t + 239_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 1);
    c.set_now(t + 240_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 0);
}

#[test]
fn rfc5508_icmp_query_identifier_mapping_and_timeout() {
    let mut c = core_with(|_| {});
    let req = pass(&mut c, &testpkt::icmp_echo(H1, R1, 0x1234, 1, false), IN);
    let (x, id, _, _) = testpkt::endpoints(&req);
    assert_eq!(req, testpkt::icmp_echo(x, R1, id, 1, false));
    let rep = pass(&mut c, &testpkt::icmp_echo(R1, x, id, 1, true), OUT);
    assert_eq!(rep, testpkt::icmp_echo(R1, H1, 0x1234, 1, true));
    // An echo request from outside to the mapped identifier opens nothing.
    assert_eq!(
        drop_reason(&mut c, &testpkt::icmp_echo(R2, x, id, 1, false), OUT),
        DropReason::NatNoSession
    );
    // 60 s idle: gone.
    c.set_now(60_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 0);
    assert_eq!(
        drop_reason(&mut c, &testpkt::icmp_echo(R1, x, id, 2, true), OUT),
        DropReason::NatNoSession
    );
}

#[test]
fn rfc5508_inbound_icmp_error_translates_embedded_udp_and_tcp() {
    let mut c = core_with(|_| {});
    let orig = testpkt::udp((H1, 5000), (R1, 53), b"dns query payload");
    let sent = pass(&mut c, &orig, IN);
    let (x, _) = src_of(&sent);
    // R1 answers with port unreachable, embedding what it received (8 bytes of UDP).
    let err = testpkt::icmp_error(R1, x, 3, 3, &sent, 8);
    let back = pass(&mut c, &err, OUT);
    assert_eq!(back, testpkt::icmp_error(R1, H1, 3, 3, &orig, 8));
    // A router on the path, time exceeded, with the whole datagram embedded.
    let rtr = Ipv4Addr::new(192, 0, 2, 254);
    let back = pass(&mut c, &testpkt::icmp_error(rtr, x, 11, 0, &sent, 64), OUT);
    assert_eq!(back, testpkt::icmp_error(rtr, H1, 11, 0, &orig, 64));
    // TCP with its checksum embedded (20 bytes).
    let t = testpkt::tcp((H1, 40000), (R1, 80), 0x02, 77, b"");
    let ts = pass(&mut c, &t, IN);
    let back = pass(
        &mut c,
        &testpkt::icmp_error(R1, src_of(&ts).0, 3, 1, &ts, 20),
        OUT,
    );
    assert_eq!(back, testpkt::icmp_error(R1, H1, 3, 1, &t, 20));
    // About an echo request.
    let e = testpkt::icmp_echo(H1, R1, 77, 5, false);
    let es = pass(&mut c, &e, IN);
    let back = pass(
        &mut c,
        &testpkt::icmp_error(rtr, src_of(&es).0, 11, 0, &es, 8),
        OUT,
    );
    assert_eq!(back, testpkt::icmp_error(rtr, H1, 11, 0, &e, 8));
    assert_eq!(c.shared.counters.icmp_errors.get(), 4);
    // Errors do not refresh sessions (sessions still idle since creation).
    // Errors about flows NAT has no session for are dropped (RFC 5508 REQ-4 b).
    let stray = testpkt::udp((x, 1), (R1, 53), b"");
    assert_eq!(
        drop_reason(&mut c, &testpkt::icmp_error(R1, x, 3, 3, &stray, 8), OUT),
        DropReason::NatNoSession
    );
    // A truncated embedded header is refused, never read past.
    let mut short = testpkt::icmp_error(R1, x, 3, 3, &sent, 8);
    short.truncate(short.len() - 6);
    let ip_len = (short.len() - 14) as u16;
    short[16..18].copy_from_slice(&ip_len.to_be_bytes());
    assert!(matches!(send(&mut c, &short, OUT).v, Verdict::Drop(_)));
}

#[test]
fn rfc5508_outbound_icmp_error_for_port_forward() {
    let mut c = core_with(|_| {});
    // Outside client to the port forward XS:53/udp -> S:5353.
    let q = testpkt::udp((R1, 3333), (XS, 53), b"q");
    let inside = pass(&mut c, &q, OUT);
    assert_eq!(inside, testpkt::udp((R1, 3333), (S, 5353), b"q"));
    // The server answers with port unreachable about what it received.
    let back = pass(&mut c, &testpkt::icmp_error(S, R1, 3, 3, &inside, 8), IN);
    assert_eq!(back, testpkt::icmp_error(XS, R1, 3, 3, &q, 8));
}

#[test]
fn static_port_forward_and_one_to_one() {
    let mut c = core_with(|_| {});
    let syn = testpkt::tcp((R1, 5555), (XS, 443), 0x02, 1, b"");
    assert_eq!(
        pass(&mut c, &syn, OUT),
        testpkt::tcp((R1, 5555), (S, 8443), 0x02, 1, b"")
    );
    let synack = testpkt::tcp((S, 8443), (R1, 5555), 0x12, 1, b"");
    assert_eq!(
        pass(&mut c, &synack, IN),
        testpkt::tcp((XS, 443), (R1, 5555), 0x12, 1, b"")
    );
    // The forwarded server's other ports use the dynamic pool.
    let o = pass(&mut c, &testpkt::udp((S, 7777), (R1, 53), b""), IN);
    assert!(src_of(&o).0 == X1 || src_of(&o).0 == X2);
    // 1:1: any port, both ways, ports kept; ICMP echo too.
    let i = pass(&mut c, &testpkt::udp((R2, 1000), (XS6, 2000), b"1:1"), OUT);
    assert_eq!(i, testpkt::udp((R2, 1000), (S6, 2000), b"1:1"));
    let o = pass(&mut c, &testpkt::udp((S6, 2000), (R2, 1000), b"r"), IN);
    assert_eq!(o, testpkt::udp((XS6, 2000), (R2, 1000), b"r"));
    let o = pass(&mut c, &testpkt::tcp((S6, 999), (R1, 80), 0x02, 1, b""), IN);
    assert_eq!(src_of(&o), (XS6, 999));
    let p = pass(&mut c, &testpkt::icmp_echo(R1, XS6, 9, 1, false), OUT);
    assert_eq!(p, testpkt::icmp_echo(R1, S6, 9, 1, false));
    let p = pass(&mut c, &testpkt::icmp_echo(S6, R1, 9, 1, true), IN);
    assert_eq!(p, testpkt::icmp_echo(XS6, R1, 9, 1, true));
}

#[test]
fn static_mapping_removed_purges_its_sessions() {
    let mut c = core_with(|_| {});
    pass(
        &mut c,
        &testpkt::tcp((R1, 5555), (XS, 443), 0x02, 1, b""),
        OUT,
    );
    pass(&mut c, &testpkt::udp((R2, 1), (XS6, 2), b""), OUT);
    assert_eq!(c.sessions(), 2);
    let keep: Vec<_> = c
        .statics
        .entries()
        .iter()
        .copied()
        .filter(|e| e.proto.is_none())
        .collect();
    c.set_statics(Arc::new(StaticTable::new(&keep).unwrap()));
    c.housekeeping();
    assert_eq!(c.sessions(), 1);
    assert_eq!(c.shared.counters.purged.get(), 1);
    // XS is no longer a NAT address: its packets are not translated any more.
    let f = testpkt::tcp((R1, 5555), (XS, 443), 0x10, 2, b"");
    let o = send(&mut c, &f, OUT);
    assert_eq!((o.v, o.f), (Verdict::Continue, f));
}

/// Between a static mapping's removal and the housekeeping pass that purges its sessions, a
/// packet of such a session is not translated with the removed mapping any more: the lookup
/// purges the session on the spot, and the packet is handled as under the new table (found
/// by the `nat_stateful` fuzz target: the outbound packet left with the removed outside
/// address, and its reply was not translated back).
#[test]
fn removed_static_mapping_is_not_used_before_housekeeping() {
    let mut c = core_with(|_| {});
    let f = testpkt::udp((S6, 4000), (R1, 53), b"q");
    assert_eq!(src_of(&pass(&mut c, &f, IN)), (XS6, 4000));
    let keep: Vec<_> = c
        .statics
        .entries()
        .iter()
        .copied()
        .filter(|e| e.proto.is_some())
        .collect();
    c.set_statics(Arc::new(StaticTable::new(&keep).unwrap()));
    // No housekeeping yet: the next packet of the flow gets a dynamic mapping.
    let out = pass(&mut c, &f, IN);
    let (addr, port) = src_of(&out);
    assert!([X1, X2].contains(&addr), "left as {addr}:{port}");
    assert_eq!(c.shared.counters.purged.get(), 1);
    // Its reply comes back; one to the removed address is not translated.
    let back = pass(&mut c, &testpkt::udp((R1, 53), (addr, port), b"a"), OUT);
    assert_eq!(back, testpkt::udp((R1, 53), (S6, 4000), b"a"));
    let stale = testpkt::udp((R1, 53), (XS6, 4000), b"a");
    let o = send(&mut c, &stale, OUT);
    assert_eq!((o.v, o.f), (Verdict::Continue, stale), "not ours any more");
    assert_eq!(c.sessions(), 1);
}

/// A host with a dynamic session to a remote, then given a static 1:1 mapping: an inbound
/// packet from that remote to the static address would make a second session with the same
/// inside 5-tuple (its outbound translation ambiguous). It is refused as filtered; the flow
/// keeps its mapping (found by the `nat_stateful` fuzz target).
#[test]
fn inbound_to_a_new_static_mapping_does_not_duplicate_a_flow() {
    let all = params().statics.entries().to_vec();
    let dynamic_only: Vec<_> = all.iter().copied().filter(|e| e.proto.is_some()).collect();
    let mut c = core_with(|p| p.statics = Arc::new(StaticTable::new(&dynamic_only).unwrap()));
    let out = pass(&mut c, &testpkt::udp((S6, 4000), (R1, 53), b"q"), IN);
    let (addr, port) = src_of(&out);
    assert!([X1, X2].contains(&addr));
    c.set_statics(Arc::new(StaticTable::new(&all).unwrap()));
    let inbound = testpkt::udp((R1, 53), (XS6, 4000), b"a");
    assert_eq!(drop_reason(&mut c, &inbound, OUT), DropReason::NatFiltered);
    assert_eq!(c.sessions(), 1);
    // The flow goes on through its mapping, both ways.
    assert_eq!(
        src_of(&pass(&mut c, &testpkt::udp((S6, 4000), (R1, 53), b"q"), IN)),
        (addr, port)
    );
    let back = pass(&mut c, &testpkt::udp((R1, 53), (addr, port), b"a"), OUT);
    assert_eq!(back, testpkt::udp((R1, 53), (S6, 4000), b"a"));
}

/// A host with a 1:1 mapping and a UDP port forward: an inbound flow through the 1:1
/// address is a session of a mapping in force, though the host's outbound lookups would
/// choose the port forward. Housekeeping after a static table change once purged it as if its
/// mapping were gone, and its replies then left from the port forward's address (found by the
/// `nat_stateful` fuzz target).
#[test]
fn inbound_session_of_a_one_to_one_mapping_survives_a_purge() {
    let statics = vec![
        StaticMapping {
            proto: None,
            out_addr: u(XS6),
            out_port: 0,
            in_addr: u(S6),
            in_port: 0,
        },
        StaticMapping {
            proto: Some(pkt::PROTO_UDP),
            out_addr: u(XS),
            out_port: 53,
            in_addr: u(S6),
            in_port: 53,
        },
    ];
    let table = || Arc::new(StaticTable::new(&statics).unwrap());
    let mut c = core_with(|p| p.statics = table());
    let p = pass(&mut c, &testpkt::udp((R1, 1000), (XS6, 53), b"q"), OUT);
    assert_eq!(p, testpkt::udp((R1, 1000), (S6, 53), b"q"));
    c.set_statics(table());
    c.housekeeping();
    assert_eq!(c.shared.counters.purged.get(), 0);
    let r = pass(&mut c, &testpkt::udp((S6, 53), (R1, 1000), b"a"), IN);
    assert_eq!(r, testpkt::udp((XS6, 53), (R1, 1000), b"a"));
}

/// A 1:1 outside address moved to another inside host: a flow of the new host can share its
/// outside key with a session of the old mapping not purged yet. A lookup that finds the
/// stale one first deletes it and looks again, finding the new one: the reply is translated
/// (it was refused as filtered; found by the `nat_stateful` fuzz target).
#[test]
fn lookup_goes_past_a_stale_session_with_the_same_key() {
    let one_to_one = |inside: Ipv4Addr| {
        Arc::new(
            StaticTable::new(&[StaticMapping {
                proto: None,
                out_addr: u(XS6),
                out_port: 0,
                in_addr: u(inside),
                in_port: 0,
            }])
            .unwrap(),
        )
    };
    let mut c = core_with(|p| p.statics = one_to_one(S6));
    let p = pass(&mut c, &testpkt::udp((R1, 1000), (XS6, 1000), b"q"), OUT);
    assert_eq!(p, testpkt::udp((R1, 1000), (S6, 1000), b"q"));
    c.set_statics(one_to_one(S));
    // No housekeeping: the old session is still there when S opens the same outside key.
    let o = pass(&mut c, &testpkt::udp((S, 1000), (R1, 1000), b"n"), IN);
    assert_eq!(o, testpkt::udp((XS6, 1000), (R1, 1000), b"n"));
    let r = pass(&mut c, &testpkt::udp((R1, 1000), (XS6, 1000), b"a"), OUT);
    assert_eq!(r, testpkt::udp((R1, 1000), (S, 1000), b"a"));
    assert_eq!(c.sessions(), 1);
}

#[test]
fn rfc4787_req9_hairpinning_static_and_dynamic() {
    let mut c = core_with(|p| p.filtering = Filtering::EndpointIndependent);
    // H1 -> XS:443 (port forward to S:8443), inside to inside through the outside address.
    let a = testpkt::tcp((H1, 40000), (XS, 443), 0x02, 1, b"");
    let o = pass(&mut c, &a, IN);
    let (xa, xap, dst, dport) = testpkt::endpoints(&o);
    assert!(
        xa == X1 || xa == X2,
        "source is H1's outside endpoint (REQ-9 b)"
    );
    assert_eq!((dst, dport), (S, 8443));
    assert_eq!(o, testpkt::tcp((xa, xap), (S, 8443), 0x02, 1, b""));
    // S answers to H1's outside endpoint: back to H1, from XS:443.
    let r = pass(
        &mut c,
        &testpkt::tcp((S, 8443), (xa, xap), 0x12, 5, b""),
        IN,
    );
    assert_eq!(r, testpkt::tcp((XS, 443), (H1, 40000), 0x12, 5, b""));
    // Dynamic: H2 has a mapping (to R1); with EIF, H1 reaches it at its outside endpoint.
    let o2 = pass(&mut c, &testpkt::udp((H2, 6000), (R1, 3478), b"stun"), IN);
    let x2 = src_of(&o2);
    let h = pass(&mut c, &testpkt::udp((H1, 7000), x2, b"peer"), IN);
    let (ha, hap, hd, hdp) = testpkt::endpoints(&h);
    assert_eq!((hd, hdp), (H2, 6000));
    let back = pass(&mut c, &testpkt::udp((H2, 6000), (ha, hap), b"hi"), IN);
    assert_eq!(back, testpkt::udp(x2, (H1, 7000), b"hi"));
    assert_eq!(c.shared.counters.hairpin.get(), 4);
    // H2 refuses H1's next datagram with a port unreachable: H1 gets it, about its own packet.
    let orig = testpkt::udp((H1, 7000), x2, b"again");
    let seen = pass(&mut c, &orig, IN);
    let (sa, _, _, _) = testpkt::endpoints(&seen);
    assert_eq!(sa, ha);
    let err = pass(&mut c, &testpkt::icmp_error(H2, sa, 3, 3, &seen, 8), IN);
    assert_eq!(err, testpkt::icmp_error(x2.0, H1, 3, 3, &orig, 8));
}

#[test]
fn table_full_then_lru_reclaim() {
    let mut c = core_with(|p| p.max_sessions = 2);
    pass(&mut c, &testpkt::udp((H1, 1), (R1, 53), b""), IN);
    c.set_now(10);
    pass(&mut c, &testpkt::udp((H1, 2), (R1, 53), b""), IN);
    assert_eq!(
        drop_reason(&mut c, &testpkt::udp((H1, 3), (R1, 53), b""), IN),
        DropReason::NatTableFull
    );
    let mut c = core_with(|p| {
        p.max_sessions = 2;
        p.lru_reclaim = true;
    });
    let o1 = pass(&mut c, &testpkt::udp((H1, 1), (R1, 53), b""), IN);
    c.set_now(2000);
    let o2 = pass(&mut c, &testpkt::udp((H1, 2), (R1, 53), b""), IN);
    c.set_now(3000);
    // Touch the first: now the second is least recently used.
    pass(&mut c, &testpkt::udp((R1, 53), src_of(&o1), b""), OUT);
    c.set_now(4000);
    pass(&mut c, &testpkt::udp((H1, 3), (R1, 53), b""), IN);
    assert_eq!(c.shared.counters.reclaimed.get(), 1);
    pass(&mut c, &testpkt::udp((R1, 53), src_of(&o1), b""), OUT);
    assert_eq!(
        drop_reason(&mut c, &testpkt::udp((R1, 53), src_of(&o2), b""), OUT),
        DropReason::NatNoSession,
        "the reclaimed session was its mapping's last: the port went back"
    );
}

#[test]
fn per_host_session_limit() {
    let mut c = core_with(|p| p.max_sessions_per_host = 3);
    for port in 1..=3 {
        pass(&mut c, &testpkt::udp((H1, port), (R1, 53), b""), IN);
    }
    assert_eq!(
        drop_reason(&mut c, &testpkt::udp((H1, 4), (R1, 53), b""), IN),
        DropReason::NatHostLimit
    );
    pass(&mut c, &testpkt::udp((H2, 4), (R1, 53), b""), IN);
}

#[test]
fn expiry_is_incremental() {
    let mut c = core_with(|p| {
        p.timeouts.udp = 1000;
        p.expiry_budget = 100;
    });
    for i in 0..1000u16 {
        pass(&mut c, &testpkt::udp((H1, 10000 + i), (R1, 53), b""), IN);
    }
    c.set_now(1000);
    c.housekeeping();
    assert_eq!(c.sessions(), 900, "one budget per call");
    for _ in 0..9 {
        c.housekeeping();
    }
    assert_eq!(c.sessions(), 0);
    assert_eq!(c.ports.in_use(c.pool_index_for(u(H1)), 1), 0);
}

#[test]
fn lru_order_is_precise_to_a_granule() {
    // Sessions refreshed out of creation order still expire on time.
    let mut c = core_with(|p| p.timeouts.udp = 32_000);
    let a = pass(&mut c, &testpkt::udp((H1, 1), (R1, 53), b""), IN);
    pass(&mut c, &testpkt::udp((H1, 2), (R1, 53), b""), IN);
    c.set_now(20_000);
    pass(&mut c, &testpkt::udp((R1, 53), src_of(&a), b""), OUT);
    c.set_now(32_000);
    c.housekeeping();
    assert_eq!(c.sessions(), 1, "the idle one went at 32 s");
    c.set_now(52_000 + c.granule[table::CLASS_UDP as usize]);
    c.housekeeping();
    assert_eq!(c.sessions(), 0);
}

#[test]
fn first_fragment_translated_non_first_from_cache() {
    let mut c = core_with(|_| {});
    let payload: Vec<u8> = (0..64u8).collect();
    let whole = testpkt::udp((H1, 5000), (R1, 53), &payload);
    let (f1, f2) = testpkt::fragments(&whole, 24, 0x4242);
    // A non-first fragment before its first: dropped and counted, no crash.
    assert_eq!(drop_reason(&mut c, &f2, IN), DropReason::NatFragment);
    let o1 = pass(&mut c, &f1, IN);
    let o2 = pass(&mut c, &f2, IN);
    let (x, xp) = src_of(&o1);
    let (e1, e2) = testpkt::fragments(&testpkt::udp((x, xp), (R1, 53), &payload), 24, 0x4242);
    assert_eq!(
        o1, e1,
        "first fragment: ports and the whole datagram's checksum"
    );
    assert_eq!(o2, e2, "second fragment: addresses");
    // The reply comes back fragmented too.
    let reply = testpkt::udp((R1, 53), (x, xp), &payload);
    let (r1, r2) = testpkt::fragments(&reply, 16, 0x77);
    let b1 = pass(&mut c, &r1, OUT);
    let b2 = pass(&mut c, &r2, OUT);
    let (e1, e2) = testpkt::fragments(&testpkt::udp((R1, 53), (H1, 5000), &payload), 16, 0x77);
    assert_eq!((b1, b2), (e1, e2));
    // A first fragment too short for the UDP header (RFC 1858).
    let (tiny, _) = testpkt::fragments(&whole, 0, 9);
    assert_eq!(drop_reason(&mut c, &tiny, IN), DropReason::Ipv4Truncated);
    // Counted: the two non-first fragments translated from the cache (not the one dropped),
    // the first fragments as translations of their direction.
    let k = c.shared().counter_list();
    let get = |n: &str| k.iter().find(|(name, _)| *name == n).unwrap().1;
    assert_eq!(get("fragments"), 2, "{k:?}");
    assert_eq!((get("in2out"), get("out2in")), (1, 1), "{k:?}");
}

#[test]
fn no_nat_destinations_pass_untouched() {
    let mut c = core_with(|p| p.no_nat = vec![(u(Ipv4Addr::new(10, 0, 0, 0)), 0xffff_ff00)]);
    let f = testpkt::udp((H1, 1), (H2, 2), b"local");
    let o = send(&mut c, &f, IN);
    assert_eq!((o.v, o.f), (Verdict::Continue, f));
    assert_eq!(c.sessions(), 0);
}

#[test]
fn malformed_frames_are_dropped_never_panic() {
    let mut c = core_with(|p| p.filtering = Filtering::EndpointIndependent);
    let good = [
        testpkt::udp((H1, 5000), (R1, 53), b"abc"),
        testpkt::tcp((H1, 5000), (R1, 80), 0x02, 1, b""),
        testpkt::icmp_echo(H1, R1, 1, 1, false),
        testpkt::icmp_error(R1, X1, 3, 3, &testpkt::udp((X1, 1024), (R1, 53), b""), 8),
    ];
    assert_eq!(
        drop_reason(&mut c, &good[0][..20], IN),
        DropReason::Ipv4Truncated
    );
    let mut bad = good[0].clone();
    bad[14] = 0x44;
    assert_eq!(drop_reason(&mut c, &bad, IN), DropReason::Ipv4BadIhl);
    bad[14] = 0x65;
    assert_eq!(drop_reason(&mut c, &bad, IN), DropReason::Ipv4BadVersion);
    // A corrupted header (checksum not updated) on either side: dropped before any session
    // is made (RFC 1812 5.2.2), whatever follows NAT in the chain.
    for (i, port) in [(0, IN), (1, IN), (2, IN), (0, OUT)] {
        let mut bad = good[i].clone();
        bad[22] ^= 0x10; // TTL
        assert_eq!(
            drop_reason(&mut c, &bad, port),
            DropReason::Ipv4BadChecksum,
            "frame {i}"
        );
    }
    assert_eq!(c.sessions(), 0, "no session from a corrupted header");
    let mut x = 0x9e37_79b9u64;
    for round in 0..20_000 {
        for port in [IN, OUT] {
            let mut f = good[round % good.len()].clone();
            for _ in 0..1 + round % 4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % f.len();
                f[i] = (x >> 32) as u8;
            }
            if round % 7 == 0 {
                f.truncate((x as usize >> 8) % (f.len() + 1));
            }
            let mut meta = PktMeta::fresh(port, 0);
            let _ = c.handle(&mut f, &mut meta);
        }
    }
}

#[test]
fn two_workers_every_reply_translated_by_the_owner() {
    let mk = |me| {
        core_with(|p| {
            p.workers = vec![3, 5];
            p.me = me;
        })
    };
    let mut w = [mk(0), mk(1)];
    assert!(w[0].uses_handoff());
    let idx = |v: Verdict| match v {
        Verdict::Handoff(3) => 0,
        Verdict::Handoff(5) => 1,
        v => panic!("{v:?}"),
    };
    let mut handed = [0, 0];
    for h in 1..=100u8 {
        let host = Ipv4Addr::new(10, 0, 2, h);
        let orig = testpkt::udp((host, 1000 + h as u16), (R1, 53), b"req");
        // Worker 0 polls the inside port.
        let mut meta = PktMeta::fresh(IN, 0);
        let mut f = orig.clone();
        let mut v = w[0].handle(&mut f, &mut meta);
        let mut on = 0;
        if v != Verdict::Continue {
            on = idx(v);
            handed[0] += 1;
            v = w[on].handle(&mut f, &mut meta);
        }
        assert_eq!(v, Verdict::Continue);
        assert_eq!(on, w[0].inside_owner(u(host)));
        let x = src_of(&f);
        assert_eq!(w[on].part.owner_of(x.1), on, "port from the owner's slice");
        // Worker 1 polls the outside port: the reply goes to the owner.
        let reply = testpkt::udp((R1, 53), x, b"rep");
        let mut meta = PktMeta::fresh(OUT, 0);
        let mut f = reply.clone();
        let mut v = w[1].handle(&mut f, &mut meta);
        if v != Verdict::Continue {
            let o = idx(v);
            assert_eq!(o, on);
            handed[1] += 1;
            v = w[o].handle(&mut f, &mut meta);
        }
        assert_eq!(v, Verdict::Continue, "reply for {host}");
        assert_eq!(f, testpkt::udp((R1, 53), (host, 1000 + h as u16), b"rep"));
    }
    assert!(handed[0] > 20 && handed[1] > 20, "{handed:?}");
    assert_eq!(w[0].sessions() + w[1].sessions(), 100);
}

#[test]
fn memory_per_session_is_within_target() {
    // Powers of two and not: the indexes are sized exactly (2 slots per session), never
    // rounded up, so the cost is 64 + 3 x 8 bytes (plus the 4 list sentinels) at any size.
    for n in [1u32 << 20, 1_000_000, 600_000, 65_537] {
        let c = core_with(|p| p.max_sessions = n);
        let b = c.bytes_per_session();
        assert!(b <= 96.0, "{n} sessions: {b} bytes per session");
        assert!(
            b < 88.1,
            "{n} sessions: {b} bytes per session (64 + 3 x 8 expected)"
        );
    }
}

#[test]
fn session_table_bytes_is_what_a_worker_allocates() {
    for (n, per_host) in [(65_537u32, false), (100_000, true)] {
        let c = core_with(|p| {
            p.max_sessions = n;
            p.max_sessions_per_host = per_host as u32 * 10;
        });
        assert_eq!(
            NatCore::session_table_bytes(n, per_host),
            c.shared().session_bytes,
            "{n} sessions, per-host index {per_host}"
        );
    }
}

/// A UDP frame from inside host `h` (of 4096, 10.8.x.y) source port `sp` to R1:9, written
/// into `f` (a template from `testpkt::udp`): only addresses and ports change, and the IPv4
/// header checksum with them (NAT verifies it; the UDP checksum need not be right to fill a
/// table: NAT updates it incrementally).
fn fill_frame(f: &mut [u8], h: u32, sp: u16) {
    f[26..30].copy_from_slice(&(0x0a08_0000 | h).to_be_bytes());
    f[34..36].copy_from_slice(&sp.to_be_bytes());
    f[24..26].copy_from_slice(&[0, 0]);
    let c = crate::wire::ipv4::header_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// 1M sessions actually fit: 4096 inside hosts x 256 source ports, a pool of 32 addresses,
/// each UDP flow a session; then the table is full (the next flow is a counted drop), every
/// flow still finds its session (a repeat creates none), and the memory is <= 128 B/session.
#[test]
fn one_million_sessions_fit() {
    const N: u32 = 1_000_000;
    let mut c = core_with(|p| {
        p.max_sessions = N;
        p.pool = (0..32).map(|i| u(X1) + i).collect();
        p.filtering = Filtering::EndpointIndependent;
    });
    let mut f = testpkt::udp((H1, 1), (R1, 9), b"fill");
    let mut meta = PktMeta::fresh(IN, 0);
    let mut created = 0u32;
    'fill: for sp in 0..256u16 {
        for h in 0..4096u32 {
            if created == N {
                break 'fill;
            }
            fill_frame(&mut f, h, 1024 + sp);
            meta.aux = 0;
            assert_eq!(
                c.handle(&mut f, &mut meta),
                Verdict::Continue,
                "flow {created}"
            );
            created += 1;
        }
    }
    c.flush();
    assert_eq!(c.sessions(), N);
    assert!(c.bytes_per_session() <= 128.0);
    let d = c.index_displacement();
    assert!(d.iter().all(|&x| x < 4.0), "mean probe displacement {d:?}");
    // Full: a new flow is dropped and counted, existing flows still translate.
    fill_frame(&mut f, 4095, 1024 + 255);
    assert_eq!(
        c.handle(&mut f, &mut meta),
        Verdict::Drop(DropReason::NatTableFull)
    );
    for (h, sp) in [(0u32, 1024u16), (4095, 1024 + 243), (1234, 1100)] {
        fill_frame(&mut f, h, sp);
        assert_eq!(c.handle(&mut f, &mut meta), Verdict::Continue);
    }
    c.flush();
    assert_eq!(c.sessions(), N, "repeats found their sessions");
}

/// Two NAT workers (indices 3 and 5): a packet goes where the verdicts send it until it is
/// translated or dropped; returns the final verdict, the frame and the workers it visited.
fn deliver(
    w: &mut [NatCore; 2],
    start: usize,
    frame: &[u8],
    port: u16,
) -> (Verdict, Vec<u8>, Vec<usize>) {
    let mut f = frame.to_vec();
    let mut meta = PktMeta::fresh(port, 0);
    let mut on = start;
    let mut path = vec![on];
    loop {
        let v = w[on].handle(&mut f, &mut meta);
        w[on].flush();
        match v {
            Verdict::Handoff(3) => on = 0,
            Verdict::Handoff(5) => on = 1,
            v => return (v, f, path),
        }
        path.push(on);
        assert!(path.len() < 4, "hand-off loop: {path:?}");
    }
}

fn two_workers(f: impl Fn(&mut NatParams) + Copy) -> [NatCore; 2] {
    let mk = |me| {
        core_with(|p| {
            p.workers = vec![3, 5];
            p.me = me;
            f(p);
        })
    };
    [mk(0), mk(1)]
}

/// An inside host owned by worker position `pos`.
fn host_owned_by(w: &NatCore, pos: usize, skip: u8) -> Ipv4Addr {
    (skip..=254)
        .map(|i| Ipv4Addr::new(10, 0, 3, i))
        .find(|a| w.inside_owner(u(*a)) == pos)
        .unwrap()
}

#[test]
fn two_workers_hairpin_crosses_workers_both_ways() {
    let mut w = two_workers(|p| p.filtering = Filtering::EndpointIndependent);
    let a = host_owned_by(&w[0], 0, 1);
    let b = host_owned_by(&w[0], 1, 1);
    // B opens a mapping (on its worker, 1), whichever worker polls the inside port.
    let (v, ob, path) = deliver(&mut w, 0, &testpkt::udp((b, 6000), (R1, 3478), b"s"), IN);
    assert_eq!((v, path), (Verdict::Continue, vec![0, 1]));
    let xb = src_of(&ob);
    // A (worker 0) sends to B's outside endpoint: translated on 0, handed to 1 (the owner of
    // xb's port) for the outside-to-inside half.
    let (v, f, path) = deliver(&mut w, 0, &testpkt::udp((a, 7000), xb, b"hi"), IN);
    assert_eq!((v, path.as_slice()), (Verdict::Continue, &[0, 1][..]));
    let (xa, xap, d, dp) = testpkt::endpoints(&f);
    assert_eq!((d, dp), (b, 6000));
    verify(&f).unwrap();
    // B answers A's outside endpoint: translated on 1, back to 0 for the inside half.
    let (v, f, path) = deliver(&mut w, 1, &testpkt::udp((b, 6000), (xa, xap), b"yo"), IN);
    assert_eq!((v, path.as_slice()), (Verdict::Continue, &[1, 0][..]));
    assert_eq!(f, testpkt::udp(xb, (a, 7000), b"yo"));
    // B's port unreachable about A's datagram, received by worker 0: to B's worker for the
    // inside half, back to A's for the outside half.
    let orig = testpkt::udp((a, 7000), xb, b"again");
    let (_, seen, _) = deliver(&mut w, 0, &orig, IN);
    let err = testpkt::icmp_error(b, xa, 3, 3, &seen, 8);
    let (v, f, path) = deliver(&mut w, 0, &err, IN);
    assert_eq!((v, path.as_slice()), (Verdict::Continue, &[0, 1, 0][..]));
    assert_eq!(f, testpkt::icmp_error(xb.0, a, 3, 3, &orig, 8));
}

#[test]
fn two_workers_icmp_errors_and_fragments_reach_the_owner() {
    let mut w = two_workers(|_| {});
    let h = host_owned_by(&w[0], 0, 1);
    let orig = testpkt::udp((h, 5000), (R1, 53), &[7u8; 64]);
    let (v, sent, _) = deliver(&mut w, 1, &orig, IN);
    assert_eq!(v, Verdict::Continue);
    let x = src_of(&sent);
    // The error arrives at worker 1; the embedded source port says worker 0 owns it.
    let err = testpkt::icmp_error(R1, x.0, 3, 3, &sent, 8);
    let (v, f, path) = deliver(&mut w, 1, &err, OUT);
    assert_eq!((v, path.as_slice()), (Verdict::Continue, &[1, 0][..]));
    assert_eq!(f, testpkt::icmp_error(R1, h, 3, 3, &orig, 8));
    // A fragmented reply arriving at worker 1: both fragments go to worker 0.
    let (r1, r2) = testpkt::fragments(&testpkt::udp((R1, 53), x, &[9u8; 64]), 24, 0x99);
    let (v1, b1, p1) = deliver(&mut w, 1, &r1, OUT);
    let (v2, b2, p2) = deliver(&mut w, 1, &r2, OUT);
    assert_eq!((v1, v2), (Verdict::Continue, Verdict::Continue));
    assert_eq!((p1.as_slice(), p2.as_slice()), (&[1, 0][..], &[1, 0][..]));
    let (e1, e2) = testpkt::fragments(&testpkt::udp((R1, 53), (h, 5000), &[9u8; 64]), 24, 0x99);
    assert_eq!((b1, b2), (e1, e2));
}

#[test]
fn ttl_expiring_packets_left_to_the_router_when_it_follows() {
    let mut c = core_with(|p| p.ttl_expiry_downstream = true);
    let mut f = testpkt::udp((H1, 33434), (R1, 33434), b"trace");
    f[14 + 8] = 1;
    // Recompute the header checksum for the new TTL (as a traceroute sender would).
    f[14 + 10] = 0;
    f[14 + 11] = 0;
    let cs = crate::wire::checksum::checksum(&f[14..34], 0);
    f[14 + 10..14 + 12].copy_from_slice(&cs.to_be_bytes());
    let o = send(&mut c, &f, IN);
    assert_eq!((o.v, &o.f), (Verdict::Continue, &f), "untranslated");
    assert_eq!(c.sessions(), 0);
    // TTL 2 is translated (it expires further on; the error comes back through NAT).
    f[14 + 8] = 2;
    f[14 + 10] = 0;
    f[14 + 11] = 0;
    let cs = crate::wire::checksum::checksum(&f[14..34], 0);
    f[14 + 10..14 + 12].copy_from_slice(&cs.to_be_bytes());
    let o = send(&mut c, &f, IN);
    assert_eq!(o.v, Verdict::Continue);
    assert_ne!(o.f, f);
    // Without a router after NAT, TTL does not matter.
    let mut c = core_with(|_| {});
    f[14 + 8] = 1;
    f[14 + 10] = 0;
    f[14 + 11] = 0;
    let cs = crate::wire::checksum::checksum(&f[14..34], 0);
    f[14 + 10..14 + 12].copy_from_slice(&cs.to_be_bytes());
    assert_ne!(send(&mut c, &f, IN).f, f);
}

/// `nat.sessions` steps: each call looks at a bounded number of table slots, whatever the
/// table size and however few sessions match the filter; continuing from the returned slot
/// until None lists every matching session exactly once.
#[test]
fn session_listing_is_bounded_per_step_and_complete() {
    let mut c = core_with(|p| p.max_sessions = 1 << 20);
    // 40 hosts x 3 flows; host 10.0.0.7 has 3 sessions.
    for h in 1..=40u8 {
        for sp in 0..3u16 {
            let f = testpkt::udp((Ipv4Addr::new(10, 0, 0, h), 2000 + sp), (R1, 53), b"x");
            pass(&mut c, &f, IN);
        }
    }
    let host = u(Ipv4Addr::new(10, 0, 0, 7));
    // One step over a 1M-slot table with a filter that matches few: LIST_SLOTS slots, not the
    // whole table.
    let (_, next) = c.list_sessions(Some(host), 100, 0, LIST_SLOTS);
    assert_eq!(next, Some(LIST_SLOTS), "a step stops after its slots");
    // Small steps: every step advances at most its budget; together they find everything.
    for (filter, want) in [(Some(host), 3usize), (None, 120)] {
        let (mut start, mut all, mut steps) = (0u32, Vec::new(), 0);
        loop {
            let (v, next) = c.list_sessions(filter, 1000, start, 16);
            all.extend(v);
            steps += 1;
            match next {
                Some(n) => {
                    assert!(n > start && n - start <= 16, "step {start} -> {n}");
                    start = n;
                }
                None => break,
            }
        }
        assert_eq!(steps, (1 << 20) / 16, "the whole table, 16 slots a step");
        assert_eq!(all.len(), want, "{filter:?}");
        let mut keys: Vec<_> = all.iter().map(|s| (s.inside, s.remote)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), want, "each session once");
        assert!(filter.is_none_or(|a| all.iter().all(|s| s.inside.0 == a)));
    }
    // `limit` stops a step early, and the next one continues after the last session returned.
    let (v, next) = c.list_sessions(None, 5, 0, LIST_SLOTS);
    assert_eq!(v.len(), 5);
    let (v2, _) = c.list_sessions(None, 5, next.unwrap(), LIST_SLOTS);
    assert!(v2.iter().all(|s| !v.contains(s)), "no session listed twice");
}

/// RFC 1812 5.3.7: a router never forwards from a martian source or to a martian
/// destination. NAT sees packets before `forward` checks addresses: it must not translate
/// them (a translated martian source would leave with the pool address, and forward could no
/// longer tell) nor spend a session on them. It drops them with forward's reasons; the
/// limited broadcast (for the local link, which forward consumes) passes untranslated.
#[test]
fn martian_sources_and_destinations_are_dropped_before_a_session_is_made() {
    let mut c = core_with(|_| {});
    let martians = [
        Ipv4Addr::new(0, 1, 2, 3),
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(224, 0, 0, 5),
        Ipv4Addr::new(240, 0, 0, 1),
        Ipv4Addr::BROADCAST,
    ];
    for m in martians {
        let f = testpkt::udp((m, 4000), (R1, 9), b"spoof");
        assert_eq!(
            drop_reason(&mut c, &f, IN),
            DropReason::Ipv4BadSource,
            "{m}"
        );
        // From the outside too, even towards a pool address or a static mapping.
        for dst in [X1, XS] {
            let f = testpkt::udp((m, 4000), (dst, 53), b"spoof");
            assert_eq!(
                drop_reason(&mut c, &f, OUT),
                DropReason::Ipv4BadSource,
                "{m}"
            );
        }
    }
    for m in &martians[..4] {
        let f = testpkt::udp((H1, 4000), (*m, 9), b"out");
        assert_eq!(drop_reason(&mut c, &f, IN), DropReason::Ipv4BadDest, "{m}");
    }
    assert_eq!(c.sessions(), 0, "no session for a martian");
    let f = testpkt::udp((H1, 68), (Ipv4Addr::BROADCAST, 67), b"dhcp");
    assert_eq!(pass(&mut c, &f, IN), f, "limited broadcast: untranslated");
    assert_eq!(c.sessions(), 0);
    // Ordinary traffic still gets its session.
    let f = testpkt::udp((H1, 4000), (R1, 9), b"ok");
    assert_eq!(send(&mut c, &f, IN).v, Verdict::Continue);
    assert_eq!(c.sessions(), 1);
}

/// NAT44 leaves IPv6 alone on both sides, byte for byte, with no session: counted under
/// `passthrough` and, of those, `ipv6_passthrough` (ARP is not IPv6).
#[test]
fn ipv6_passes_untouched_and_is_counted_apart() {
    let mut c = core_with(|_| {});
    let v6 = testpkt::udp6(
        (0x2001_0db8 << 96 | 1, 5000),
        (0x2001_0db8_0001 << 80 | 2, 53),
        b"dns6",
    );
    let mut arp = testpkt::udp((H1, 5000), (R1, 53), b"abc");
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    for port in [IN, OUT, IN] {
        let o = send(&mut c, &v6, port);
        assert_eq!((o.v, &o.f), (Verdict::Continue, &v6), "port {port}");
    }
    let o = send(&mut c, &arp, IN);
    assert_eq!((o.v, &o.f), (Verdict::Continue, &arp));
    assert_eq!(c.sessions(), 0);
    let k = c.shared().counter_list();
    let get = |n: &str| k.iter().find(|(x, _)| *x == n).unwrap().1;
    assert_eq!(get("ipv6_passthrough"), 3);
    assert_eq!(get("passthrough"), 4, "IPv6 and ARP");
    assert_eq!(get("in2out") + get("out2in"), 0);
}

mod blocks;
mod det;

/// The fast path is an optimisation, not a second NAT: on random sequences (new flows and
/// replies, established flows, TCP flags, static mappings, hairpinning, ICMP, fragments, TTL 1,
/// martians, bad checksums, truncated frames, hand-off marks, expiry as the clock advances) a
/// core that tries `fast` first leaves every frame, verdict and metadata, its counters and its
/// tables exactly as a core that only calls `handle`; and the fast path takes most packets of
/// established flows.
#[test]
fn fast_path_matches_the_general_path() {
    // One NAT worker, then the first of two (half the flows belong to the other worker).
    for workers in [1, 2] {
        fast_path_matches_the_general_path_with(workers);
    }
}

fn fast_path_matches_the_general_path_with(workers: u16) {
    let timed = |p: &mut NatParams| {
        p.workers = (0..workers).collect();
        p.me = 0;
        p.timeouts = Timeouts {
            tcp_established: 5_000,
            tcp_transitory: 2_000,
            udp: 3_000,
            icmp: 1_000,
        };
        p.max_sessions = 256;
        p.lru_reclaim = true;
        p.no_nat = vec![(u(Ipv4Addr::new(10, 9, 0, 0)), 0xffff_0000)];
    };
    let (mut a, mut b) = (core_with(timed), core_with(timed));
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let inside = [H1, H2, S, S6, Ipv4Addr::new(10, 0, 0, 9)];
    let remote = [
        R1,
        R2,
        X1,
        XS,
        Ipv4Addr::new(10, 9, 0, 1),
        Ipv4Addr::new(127, 0, 0, 1),
    ];
    // Outside endpoints seen in translated packets: replies go to them.
    let mut seen: Vec<(Ipv4Addr, u16, Ipv4Addr, u16, u8)> = Vec::new();
    let (mut now, mut taken, mut packets) = (0u32, 0usize, 0usize);
    for step in 0..40_000 {
        if rnd(50) == 0 {
            now += rnd(700) as u32;
            a.set_now(now);
            b.set_now(now);
            a.housekeeping();
            b.housekeeping();
        }
        let proto = [
            pkt::PROTO_UDP,
            pkt::PROTO_TCP,
            pkt::PROTO_UDP,
            pkt::PROTO_ICMP,
        ][rnd(4) as usize];
        let flags = [0x02, 0x10, 0x18, 0x12, 0x11, 0x04][rnd(6) as usize];
        let (mut frame, port) = if !seen.is_empty() && rnd(2) == 0 {
            let (xa, xp, ra, rp, pr) = seen[rnd(seen.len() as u64) as usize];
            let f = match pr {
                pkt::PROTO_UDP if rnd(8) == 0 => testpkt::udp_nocsum((ra, rp), (xa, xp), b"reply"),
                pkt::PROTO_UDP => testpkt::udp((ra, rp), (xa, xp), b"reply"),
                pkt::PROTO_TCP => testpkt::tcp((ra, rp), (xa, xp), flags, 7, b"reply"),
                _ => testpkt::icmp_echo(ra, xa, xp, 1, true),
            };
            (f, OUT)
        } else {
            let src = (
                inside[rnd(5) as usize],
                [5353, 8443, 1000, 1001][rnd(4) as usize],
            );
            let dst = (remote[rnd(6) as usize], [53, 443, 80][rnd(3) as usize]);
            let f = match proto {
                pkt::PROTO_UDP if rnd(8) == 0 => testpkt::udp_nocsum(src, dst, b"query"),
                pkt::PROTO_UDP => testpkt::udp(src, dst, b"query"),
                pkt::PROTO_TCP => testpkt::tcp(src, dst, flags, 1, b"query"),
                _ => testpkt::icmp_echo(src.0, dst.0, src.1, 1, false),
            };
            (f, IN)
        };
        match rnd(40) {
            0 => frame[24] ^= 0x40,                        // header checksum wrong
            1 => frame[22] = 1,                            // TTL 1
            2 => frame[20] |= 0x20,                        // more fragments
            3 => frame.truncate(14 + 20 + 4),              // L4 header cut
            4 => frame[26] = 0,                            // source 0.x.x.x (martian)
            5 => frame[30..34].copy_from_slice(&[255; 4]), // limited broadcast
            _ => {}
        }
        let mut meta = PktMeta::fresh(port, 0);
        if rnd(60) == 0 {
            meta.aux = aux::HAIRPIN;
        } else if workers > 1 && rnd(10) == 0 {
            meta.aux = aux::HANDED;
        }
        if rnd(30) == 0 {
            meta.flags |= dpdk::meta::flags::NATTED;
        }
        let (mut fa, mut ma) = (frame.clone(), meta);
        let va = match a.fast(&mut fa, &mut ma, None) {
            Some(v) => {
                taken += 1;
                v
            }
            None => a.handle(&mut fa, &mut ma),
        };
        let (mut fb, mut mb) = (frame.clone(), meta);
        let vb = b.handle(&mut fb, &mut mb);
        assert_eq!(va, vb, "step {step}: verdict");
        assert_eq!(fa, fb, "step {step}: frame");
        assert_eq!(ma, mb, "step {step}: metadata");
        assert_eq!(a.tally, b.tally, "step {step}: counters");
        packets += 1;
        if va == Verdict::Continue && port == IN && fa != frame {
            let (xa, xp, ra, rp) = testpkt::endpoints(&fa);
            if seen.len() < 128 {
                seen.push((xa, xp, ra, rp, proto));
            } else {
                seen[rnd(128) as usize] = (xa, xp, ra, rp, proto);
            }
        }
        if step % 1000 == 0 {
            assert!(a.sess.s == b.sess.s, "step {step}: sessions");
            a.check_invariants().unwrap();
        }
    }
    assert!(a.sess.s == b.sess.s, "sessions");
    assert_eq!(a.sessions(), b.sessions());
    // Replies and repeated flows to live sessions: a good share of all packets.
    assert!(
        taken * 5 * workers as usize > packets,
        "{workers} workers: fast path took {taken} of {packets}"
    );
}
