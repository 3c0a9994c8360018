//! The classify stage on real mbufs with both families: IPv6 rules by prefix, next header and
//! ports, priorities across families, rules of both families (one counter), bursts mixing
//! IPv4, IPv6, ARP and neighbour discovery, malformed IPv6 dropped with the parser's reason,
//! and IPv6 fragments following their first fragment.
//!
//! One EAL per test binary (`--no-pci --in-memory`, unique file prefix), started while holding
//! the machine's busy-polling lock; nothing polls here.

use std::fs::File;
use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};

use dpdk::{Mempool, PktMeta};
use pollfwd_nf::classify::{
    AclTable, Action, Classify, Family, HitCounters, Install, Match, TableRule, new_hits,
};
use pollfwd_nf::nat::testpkt;
use pollfwd_pipeline::stage::Harness;
use pollfwd_pipeline::{DropReason, Verdict};

static EAL: OnceLock<(dpdk::Eal, File, Mempool)> = OnceLock::new();

fn pool() -> Mempool {
    EAL.get_or_init(|| {
        let (eal, lock) = dpdk::Eal::init_private("clstest", &[]).expect("EAL init");
        let pool = Mempool::create("clstest", 1023, 0, 2176, -1).expect("mempool");
        (eal, lock, pool)
    })
    .2
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
/// TSC ticks per second the harness claims (the fragment memo's lifetime is 2 s of them).
const HZ: u64 = 1_000_000;

fn a6(s: &str) -> u128 {
    u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
}

fn eth(ethertype: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x0b, 0x02, 0, 0, 0, 0, 0x0a];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// Ethernet + IPv6 header (payload length = `payload.len()`) + `payload`.
fn ip6(src: &str, dst: &str, nh: u8, hop: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = eth(0x86dd);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[nh, hop]);
    f.extend_from_slice(&a6(src).to_be_bytes());
    f.extend_from_slice(&a6(dst).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The first 20 bytes of a TCP or UDP header with these ports (enough for the flow key).
fn l4(sport: u16, dport: u16) -> Vec<u8> {
    let mut b = vec![0u8; 20];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b
}

fn udp6(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    ip6(src, dst, UDP, 64, &l4(sport, dport))
}

fn tcp6(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    ip6(src, dst, TCP, 64, &l4(sport, dport))
}

/// An ICMPv6 message: type, code, 6 more bytes (identifier, sequence).
fn icmp6(src: &str, dst: &str, hop: u8, ty: u8, ident: u16) -> Vec<u8> {
    let mut m = vec![ty, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&[0; 16]);
    ip6(src, dst, ICMPV6, hop, &m)
}

/// A fragment: fragment header (next header `nh`, byte offset `off`, M flag, identification
/// `id`) and `data`.
fn frag6(src: &str, dst: &str, nh: u8, off: u16, more: bool, id: u32, data: &[u8]) -> Vec<u8> {
    let mut p = vec![nh, 0];
    p.extend_from_slice(&(off | u16::from(more)).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(data);
    ip6(src, dst, 44, 64, &p)
}

fn udp4(src: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    testpkt::udp(
        (Ipv4Addr::from(src), sport),
        (Ipv4Addr::new(192, 0, 2, 1), dport),
        &[0; 18],
    )
}

fn tcp4(src: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    testpkt::tcp(
        (Ipv4Addr::from(src), sport),
        (Ipv4Addr::new(192, 0, 2, 1), dport),
        0x02,
        1,
        &[],
    )
}

fn arp() -> Vec<u8> {
    let mut f = eth(0x0806);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 198, 18, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[198, 18, 0, 2]);
    f.resize(60, 0);
    f
}

fn rule(id: u32, m: Match, priority: i64, action: Action) -> TableRule {
    TableRule {
        id,
        m,
        priority,
        action,
    }
}

fn v6(src: &str, dst: &str) -> Match {
    let p = |s: &str| {
        if s.is_empty() {
            (0, 0)
        } else {
            let (a, l) = s.split_once('/').unwrap();
            (a6(a), l.parse().unwrap())
        }
    };
    Match {
        family: Family::Ipv6,
        src6: p(src),
        dst6: p(dst),
        ..Match::default()
    }
}

fn class(c: u16) -> Action {
    Action {
        deny: false,
        class: c,
    }
}

struct Bench {
    stage: Classify,
    hits: HitCounters,
    table: Arc<AclTable>,
    h: Harness,
}

impl Bench {
    fn new(rules: &[TableRule], default: Action) -> Bench {
        let pool = pool(); // EAL first: rte_acl needs it
        let table = Arc::new(AclTable::build(rules, default).expect("table"));
        let hits = new_hits(&table);
        let stage = Classify::new(Install {
            table: table.clone(),
            hits: hits.clone(),
        })
        .unwrap();
        Bench {
            stage,
            hits,
            table,
            h: Harness::new(pool, HZ),
        }
    }

    /// One burst received on port 0 at TSC `now`: each packet's verdict and class.
    fn burst(&mut self, frames: &[Vec<u8>], now: u64) -> Vec<(Verdict, u16)> {
        let mut pkts: Vec<dpdk::Mbuf> = frames
            .iter()
            .map(|f| {
                let mut m = pool().alloc().expect("mbuf");
                assert!(m.set_len(f.len() as u16));
                m.data_mut().copy_from_slice(f);
                *m.meta_mut() = PktMeta::fresh(0, now);
                m
            })
            .collect();
        let mut v = vec![Verdict::Continue; pkts.len()];
        let all = self
            .h
            .process(&mut self.stage, &mut pkts, &mut v, (now, 0, true));
        assert_eq!(all, None, "classify gives per-packet verdicts");
        pkts.iter()
            .zip(v)
            .map(|(m, v)| (v, m.meta().class))
            .collect()
    }

    /// (packets, bytes) counted for rule `id` (0: the default).
    fn hits(&self, id: u32) -> (u64, u64) {
        let slot = self.table.ids().iter().position(|&i| i == id).unwrap();
        (self.hits[slot].packets.get(), self.hits[slot].bytes.get())
    }
}

const PASS: (Verdict, u16) = (Verdict::Continue, 0);
const DENY: (Verdict, u16) = (Verdict::Drop(DropReason::AclDeny), 0);

#[test]
fn ipv6_rules_match_prefixes_next_header_and_ports() {
    let rules = [
        // 1: all IPv6 from 2001:db8:1::/48 denied.
        rule(1, v6("2001:db8:1::/48", ""), 0, Action::DENY),
        // 2: UDP to 2001:db8:ffff::/64 port 53: class 1.
        rule(
            2,
            Match {
                proto: Some(UDP),
                dport: (53, 53),
                ..v6("", "2001:db8:ffff::/64")
            },
            0,
            class(1),
        ),
        // 3: IPv6 TCP from source ports 1000-1999 to port 22: denied.
        rule(
            3,
            Match {
                proto: Some(TCP),
                sport: (1000, 1999),
                dport: (22, 22),
                ..v6("", "")
            },
            0,
            Action::DENY,
        ),
        // 4: ICMPv6 echo requests (type 128, any code) to 2001:db8::7/128: class 2.
        rule(
            4,
            Match {
                proto: Some(ICMPV6),
                dport: (128 << 8, (128 << 8) | 255),
                ..v6("", "2001:db8::7/128")
            },
            0,
            class(2),
        ),
    ];
    let mut b = Bench::new(&rules, Action::PERMIT);
    let frames = [
        udp6("2001:db8:1:5::1", "2001:db8::2", 5000, 53), // 1 (prefix /48)
        udp6("2001:db8:2::1", "2001:db8::2", 5000, 53),   // default: other /48
        udp6("2001:db8:2::1", "2001:db8:ffff::9", 5000, 53), // 2
        udp6("2001:db8:2::1", "2001:db8:ffff:1::9", 5000, 53), // default: other /64
        udp6("2001:db8:2::1", "2001:db8:ffff::9", 5000, 54), // default: port
        tcp6("2001:db8:2::1", "2001:db8:ffff::9", 5000, 53), // default: next header
        tcp6("2001:db8:2::1", "2001:db8::2", 1500, 22),   // 3
        tcp6("2001:db8:2::1", "2001:db8::2", 2000, 22),   // default: source port
        udp6("2001:db8:2::1", "2001:db8::2", 1500, 22),   // default: UDP
        icmp6("2001:db8:2::1", "2001:db8::7", 64, 128, 9), // 4
        icmp6("2001:db8:2::1", "2001:db8::7", 64, 129, 9), // default: echo reply
        icmp6("2001:db8:2::1", "2001:db8::8", 64, 128, 9), // default: address
    ];
    let got = b.burst(&frames, 0);
    assert_eq!(
        got,
        vec![
            DENY,
            PASS,
            (Verdict::Continue, 1),
            PASS,
            PASS,
            PASS,
            DENY,
            PASS,
            PASS,
            (Verdict::Continue, 2),
            PASS,
            PASS,
        ]
    );
    let len = |i: usize| frames[i].len() as u64;
    assert_eq!(b.hits(1), (1, len(0)));
    assert_eq!(b.hits(2), (1, len(2)));
    assert_eq!(b.hits(3), (1, len(6)));
    assert_eq!(b.hits(4), (1, len(9)));
    assert_eq!(b.hits(0).0, 8);
}

#[test]
fn priorities_order_rules_across_families_and_a_rule_without_addresses_hits_both() {
    let rules = [
        // 1: every UDP packet, either family: denied.
        rule(
            1,
            Match {
                proto: Some(UDP),
                ..Match::default()
            },
            0,
            Action::DENY,
        ),
        // 2: IPv6 from 2001:db8::/32, priority 10: beats rule 1.
        rule(2, v6("2001:db8::/32", ""), 10, class(2)),
        // 3: IPv4 from 10.0.0.0/8, priority 10: beats rule 1.
        rule(
            3,
            Match {
                family: Family::Ipv4,
                src: (0x0a00_0000, 8),
                ..Match::default()
            },
            10,
            class(3),
        ),
        // 4: IPv6 from 2001:db8:5::/48, priority 10 as rule 2 but listed after it: never wins.
        rule(4, v6("2001:db8:5::/48", ""), 10, Action::DENY),
        // 5: TCP port 80, either family.
        rule(
            5,
            Match {
                proto: Some(TCP),
                dport: (80, 80),
                ..Match::default()
            },
            0,
            Action::DENY,
        ),
    ];
    let mut b = Bench::new(&rules, Action::PERMIT);
    assert_eq!(b.table.family_lens(), (3, 4));
    let frames = [
        udp6("2001:db8:5::1", "2001:db9::1", 1, 2), // 2 (beats 1 by priority, 4 by order)
        udp6("2001:db9::1", "2001:db8::1", 1, 2),   // 1
        udp4([10, 1, 1, 1], 1, 2),                  // 3
        udp4([11, 1, 1, 1], 1, 2),                  // 1
        tcp4([11, 1, 1, 1], 1, 80),                 // 5
        tcp6("2001:db9::1", "2001:db8::1", 1, 80),  // 5
        tcp6("2001:db9::1", "2001:db8::1", 1, 81),  // default
    ];
    let got = b.burst(&frames, 0);
    assert_eq!(
        got,
        vec![
            (Verdict::Continue, 2),
            DENY,
            (Verdict::Continue, 3),
            DENY,
            DENY,
            DENY,
            PASS
        ]
    );
    let len = |i: usize| frames[i].len() as u64;
    // Rules of both families count IPv4 and IPv6 packets on one counter.
    assert_eq!(b.hits(1), (2, len(1) + len(3)));
    assert_eq!(b.hits(5), (2, len(4) + len(5)));
    assert_eq!(b.hits(2), (1, len(0)));
    assert_eq!(b.hits(3), (1, len(2)));
    assert_eq!(b.hits(4), (0, 0));
    assert_eq!(b.hits(0), (1, len(6)));
}

#[test]
fn a_mixed_burst_gets_each_packet_its_own_verdict() {
    // Default deny: IPv4 TCP to port 9 and IPv6 from 2001:db8:a::/48 are permitted with a
    // class; ARP and neighbour discovery pass untouched and uncounted.
    let rules = [
        rule(
            1,
            Match {
                family: Family::Ipv4,
                proto: Some(TCP),
                dport: (9, 9),
                ..Match::default()
            },
            0,
            class(1),
        ),
        rule(2, v6("2001:db8:a::/48", ""), 0, class(2)),
    ];
    let mut b = Bench::new(&rules, Action::DENY);
    let ns = icmp6("fe80::1", "ff02::1:ff00:2", 255, 135, 0);
    let frames = [
        tcp4([10, 0, 0, 1], 1000, 9),                 // 1
        udp6("2001:db8:a::1", "2001:db8:b::1", 1, 2), // 2
        arp(),                                        // passes
        udp4([10, 0, 0, 1], 1000, 9),                 // default deny
        udp6("2001:db8:b::1", "2001:db8:a::1", 1, 2), // default deny
        ns.clone(),                                   // neighbour solicitation: passes
        icmp6("fe80::1", "ff02::2", 255, 133, 0),     // router solicitation: passes
        // An NS with hop limit 64 is no valid neighbour discovery: the ACL's (denied).
        icmp6("2001:db8:b::1", "2001:db8:c::1", 64, 135, 0),
        tcp4([10, 0, 0, 2], 1000, 9),                 // 1
        tcp6("2001:db8:a::2", "2001:db8:b::1", 1, 2), // 2
    ];
    let got = b.burst(&frames, 0);
    assert_eq!(
        got,
        vec![
            (Verdict::Continue, 1),
            (Verdict::Continue, 2),
            PASS,
            DENY,
            DENY,
            PASS,
            PASS,
            DENY,
            (Verdict::Continue, 1),
            (Verdict::Continue, 2),
        ]
    );
    let len = |i: usize| frames[i].len() as u64;
    assert_eq!(b.hits(1), (2, len(0) + len(8)));
    assert_eq!(b.hits(2), (2, len(1) + len(9)));
    assert_eq!(b.hits(0), (3, len(3) + len(4) + len(7)));
    // An IPv6-only burst and an IPv4-only burst through the same stage.
    assert_eq!(
        b.burst(&[udp6("2001:db8:a::1", "::1", 1, 2), ns.clone()], 0),
        vec![(Verdict::Continue, 2), PASS]
    );
    assert_eq!(
        b.burst(&[tcp4([10, 0, 0, 1], 1, 9), arp()], 0),
        vec![(Verdict::Continue, 1), PASS]
    );
}

#[test]
fn malformed_ipv6_is_dropped_with_the_parsers_reason() {
    let mut b = Bench::new(&[], Action::PERMIT);
    let good = udp6("2001:db8::1", "2001:db8::2", 1, 2);
    let mut bad_version = good.clone();
    bad_version[14] = 0x40;
    let mut truncated = good.clone();
    // Payload length beyond the frame.
    truncated[18..20].copy_from_slice(&200u16.to_be_bytes());
    let runt = good[..14 + 30].to_vec();
    // A destination options header whose length runs past the payload.
    let bad_ext = ip6(
        "2001:db8::1",
        "2001:db8::2",
        60,
        64,
        &[17, 4, 0, 0, 0, 0, 0, 0],
    );
    // A hop-by-hop header after another extension header (RFC 8200 section 4.1).
    let late_hbh = ip6(
        "2001:db8::1",
        "2001:db8::2",
        60,
        64,
        &[0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0],
    );
    let got = b.burst(
        &[
            bad_version,
            truncated,
            runt,
            bad_ext,
            late_hbh,
            good.clone(),
        ],
        0,
    );
    let d = |r| (Verdict::Drop(r), 0);
    assert_eq!(
        got,
        vec![
            d(DropReason::Ipv6BadVersion),
            d(DropReason::Ipv6Truncated),
            d(DropReason::Ipv6Truncated),
            d(DropReason::Ipv6BadExtHeader),
            d(DropReason::Ipv6BadExtHeader),
            PASS,
        ]
    );
    // Only the valid packet reached the ACL.
    assert_eq!(b.hits(0), (1, good.len() as u64));
}

#[test]
fn ipv6_later_fragments_follow_their_first_fragment() {
    let rules = [
        // 1: UDP to port 53 denied.
        rule(
            1,
            Match {
                proto: Some(UDP),
                dport: (53, 53),
                ..v6("", "")
            },
            0,
            Action::DENY,
        ),
        // 2: UDP without ports, class 1 (what an unseen first fragment's followers meet).
        rule(
            2,
            Match {
                proto: Some(UDP),
                ..v6("", "")
            },
            -1,
            class(1),
        ),
    ];
    let mut b = Bench::new(&rules, Action::PERMIT);
    let (s, d) = ("2001:db8::1", "2001:db8::2");
    let first = frag6(s, d, UDP, 0, true, 77, &l4(5000, 53));
    let later = frag6(s, d, UDP, 1232, false, 77, &[0; 24]);
    // A later fragment whose fragment header names destination options (the first fragment
    // carried them): still the first fragment's UDP flow.
    let later_opts = frag6(s, d, 60, 1256, true, 77, &[0; 24]);
    let other = frag6(s, d, UDP, 1232, false, 78, &[0; 24]);
    let tcp_at_8 = frag6(s, d, TCP, 8, false, 79, &[0; 24]);
    let got = b.burst(
        &[
            first.clone(),
            later.clone(),
            later_opts,
            other.clone(),
            tcp_at_8,
        ],
        0,
    );
    assert_eq!(
        got,
        vec![
            DENY,
            DENY,
            DENY,
            (Verdict::Continue, 1),
            (Verdict::Drop(DropReason::AclTcpFragOffset1), 0),
        ]
    );
    assert_eq!(b.hits(1).0, 3);
    assert_eq!(b.hits(2), (1, other.len() as u64));
    // The memo lives 2 s: a later fragment after that has no ports.
    assert_eq!(b.burst(std::slice::from_ref(&later), HZ), vec![DENY]);
    assert_eq!(b.burst(&[later], 3 * HZ), vec![(Verdict::Continue, 1)]);
    // An atomic fragment (offset 0, M clear) is a whole packet.
    let atomic = frag6(s, d, UDP, 0, false, 80, &l4(1, 53));
    assert_eq!(b.burst(&[atomic], 3 * HZ), vec![DENY]);
}
