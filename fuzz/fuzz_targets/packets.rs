//! Every packet parser on arbitrary frames: the wire module's views (Ethernet, ARP, IPv4,
//! ICMP, UDP, TCP, IPv6) and its IPv4 and IPv6 validity parsers (with neighbour discovery's
//! checks and the ICMPv6 echo reply and error builders on what the IPv6 parser accepts), the
//! shared flow-key parser (`nf::parse`), the forward stage's fast-path acceptance, NAT's packet view (with the
//! embedded packet of an ICMP error) and MSS clamping (the TCP option walk). Checks: no
//! panic; the parsers agree with each other (the same drop reason where they are documented
//! to, the same flow key when both accept); what the fast path accepts the full parser
//! accepts with the same addresses; what the IPv4 parser accepts (with the checksum) smoltcp
//! accepts with a good checksum; a clamp changes only the MSS and the checksum, which stays
//! right; VLAN demultiplexing (`pipeline::vlan`) on the frame with arbitrary tags stripped
//! by the PMD: the per-port fast paths agree with the general path, and what is popped is
//! whole tags, leaving an untagged frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollfwd_nf::nat::pkt::{self, Frag, IcmpKind};
use pollfwd_nf::parse::parse_ipv4_frame;
use pollfwd_nf::wire::{arp, ether, icmp, icmpv6, ipv4, ipv6, ndp, proto, tcp, udp};
use pollfwd_pipeline::DropReason;
use pollfwd_pipeline::vlan::{IFACE_BASE, TPID_8021AD, VlanIface, VlanMap};
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    // The first byte says how much of the frame is in "later segments" (the parsers take
    // the first segment and the whole frame's length).
    let Some((&extra, f)) = data.split_first() else {
        return;
    };
    let extra = if extra & 0x80 != 0 {
        (extra & 0x7f) as usize
    } else {
        0
    };
    views(f);
    ipv6_views(f);
    syn_mss(f);
    vlan(data[0], f);
    let parsed = parse_ipv4_frame(f, f.len() + extra);
    if extra == 0 {
        fast_path(f, &parsed);
        nat_view(f, &parsed);
        smoltcp_agrees(f, &parsed);
    }
    if let Ok(p) = parsed {
        assert!(p.l3_off as usize == ether::HEADER_LEN);
        assert!(p.l4_off as usize >= p.l3_off as usize + 20 && p.l4_off as usize <= f.len());
    }
});

/// Sub-interfaces on port 0: VLAN 10, VLAN 20, QinQ 100/30 (802.1ad outer).
fn vlan_map() -> &'static VlanMap {
    static MAP: OnceLock<VlanMap> = OnceLock::new();
    MAP.get_or_init(|| {
        let v = |k: u16, vid, outer| VlanIface {
            id: IFACE_BASE + k,
            parent: 0,
            vid,
            outer,
        };
        VlanMap::new(
            &[
                v(0, 10, None),
                v(1, 20, None),
                v(2, 30, Some((TPID_8021AD, 100))),
            ],
            &[],
        )
        .expect("map")
    })
}

/// The frame as port 0 receives it, with tags stripped by the PMD as the first byte says
/// (0x40: one stripped tag, TCI from the frame's last two bytes; 0x20 with it: QinQ, the outer
/// TCI from the two before).
fn vlan(sel: u8, f: &[u8]) {
    let map = vlan_map();
    let rx = map.rx(0).expect("port 0");
    let tci = |at: usize| {
        f.len().checked_sub(at).map_or(0, |i| {
            u16::from_be_bytes([f[i], *f.get(i + 1).unwrap_or(&0)])
        })
    };
    let stripped = (sel & 0x40 != 0).then(|| (tci(2), (sel & 0x20 != 0).then(|| tci(4))));
    let general = map.classify(0, stripped, f);
    assert_eq!(
        rx.classify(stripped, f),
        general,
        "fast path and general path"
    );
    if let Some((id, pop)) = general {
        // Whole tags only, each followed by at least an EtherType; a frame too short for
        // a tag is the port's (the stages drop it as a runt or truncated).
        assert!(pop <= 2 && (pop == 0 || f.len() >= 12 + 4 * pop + 2));
        for k in 0..pop {
            let t = u16::from_be_bytes([f[12 + 4 * k], f[13 + 4 * k]]);
            assert!(pollfwd_pipeline::vlan::is_tpid(t), "popped a non-tag");
        }
        if f.len() >= 12 + 4 * pop + 6 {
            let rest = u16::from_be_bytes([f[12 + 4 * pop], f[13 + 4 * pop]]);
            assert!(
                !pollfwd_pipeline::vlan::is_tpid(rest),
                "a tag left in the frame"
            );
        }
        if id == 0 {
            // The port's own frames: no tag but priority tags.
            let vids = stripped.map_or(0, |(t, o)| (t | o.unwrap_or(0)) & 0xfff);
            assert_eq!(vids, 0);
        } else {
            assert!((IFACE_BASE..IFACE_BASE + 3).contains(&id));
        }
    }
}

/// Every view and accessor on whatever the bytes hold.
/// IPv6 behind the Ethernet header: the view's accessors, the validity parser (what it
/// accepts lies within the frame), neighbour discovery's checks, an echo reply turned around
/// in place (on a copy: the reply is a valid packet with a right checksum) and an error
/// quoting the packet (within 1280 bytes, valid, right checksum).
fn ipv6_views(f: &[u8]) {
    let Some(pl) = f.get(ether::HEADER_LEN..) else {
        return;
    };
    if let Ok(p) = ipv6::Packet::new_checked(pl) {
        let _ = (
            p.version(),
            p.traffic_class(),
            p.flow_label(),
            p.payload_len(),
        );
        let _ = (
            p.next_header(),
            p.hop_limit(),
            p.src(),
            p.dst(),
            p.payload(),
        );
    }
    let Ok(i) = ipv6::validate(pl) else {
        return;
    };
    let end = ipv6::HEADER_LEN + i.payload_len as usize;
    assert!(end <= pl.len() && i.upper_off as usize <= end);
    if i.upper == proto::ICMPV6 {
        let _ = ndp::validate(pl, &i);
        let mut c = pl.to_vec();
        if let Some(n) = icmpv6::echo_reply_in_place(&mut c, i.dst) {
            let r = ipv6::validate(&c[..n]).expect("the reply is valid");
            assert_eq!((r.upper, r.upper_off, r.src, r.dst), (58, 40, i.dst, i.src));
            assert!(icmpv6::Packet::new_unchecked(&c[40..n]).verify_checksum(i.dst, i.src));
        }
    }
    let mut buf = [0u8; 1400];
    let n = icmpv6::write_error(&mut buf, i.dst, i.src, 1, 0, 0, &pl[..end]);
    assert!((48..=1280).contains(&n));
    let e = ipv6::validate(&buf[..n]).expect("the error is valid");
    assert_eq!((e.upper, e.upper_len()), (58, n - 40));
    assert!(icmpv6::Packet::new_unchecked(&buf[40..n]).verify_checksum(i.dst, i.src));
}

fn views(f: &[u8]) {
    let Ok(eth) = ether::Frame::new_checked(f) else {
        assert!(f.len() < ether::HEADER_LEN);
        return;
    };
    let _ = (eth.dst(), eth.src(), eth.dst_is_group(), eth.ethertype());
    let _ = (eth.l3(), eth.vlan_id());
    let pl = eth.payload();
    if let Some(a) = arp::Packet::new_checked(pl) {
        let _ = (a.is_ethernet_ipv4(), a.htype(), a.ptype(), a.oper());
        let _ = (a.sha(), a.spa(), a.tha(), a.tpa());
    }
    let Ok(ip) = ipv4::Packet::new_checked(pl) else {
        assert!(pl.len() < ipv4::MIN_HEADER_LEN);
        return;
    };
    let _ = (ip.version(), ip.header_len(), ip.ds(), ip.dscp(), ip.ecn());
    let _ = (ip.total_len(), ip.ident(), ip.flags_frag(), ip.dont_frag());
    let _ = (
        ip.more_frags(),
        ip.frag_offset(),
        ip.frag(),
        ip.ttl(),
        ip.protocol(),
    );
    let _ = (ip.checksum(), ip.src(), ip.dst());
    let checked = ipv4::validate(pl, pl.len(), true);
    let Ok(lens) = ipv4::validate(pl, pl.len(), false) else {
        assert!(checked.is_err());
        return;
    };
    assert!(lens.header >= 20 && lens.header <= lens.total && lens.total <= pl.len());
    assert_eq!(checked.is_ok(), ip.verify_checksum());
    let _ = ip.header();
    let l4 = &pl[lens.header..lens.total];
    let (src, dst) = (ip.src(), ip.dst());
    match ip.protocol() {
        proto::ICMP => {
            if let Some(m) = icmp::Packet::new_checked(l4) {
                let _ = (m.msg_type(), m.code(), m.checksum(), m.ident(), m.seq());
                let _ = (m.data(), m.verify_checksum());
                let _ = icmp::kind(m.msg_type());
            }
        }
        proto::UDP => {
            if let Some(u) = udp::Packet::new_checked(l4) {
                let _ = (
                    u.src_port(),
                    u.dst_port(),
                    u.len(),
                    u.is_empty(),
                    u.checksum(),
                );
                let _ = u.verify_checksum(src, dst);
            }
        }
        proto::TCP => {
            if let Some(t) = tcp::Packet::new_checked(l4) {
                let _ = (t.src_port(), t.dst_port(), t.seq(), t.ack(), t.header_len());
                let _ = (t.flags(), t.checksum(), t.verify_checksum(src, dst));
                mss_clamp(l4, src, dst);
            }
        }
        _ => {}
    }
}

/// `rewrite::syn_mss` on any frame: no panic; only SYNs change, and only their TCP header.
fn syn_mss(f: &[u8]) {
    let mut b = f.to_vec();
    if pollfwd_nf::wire::rewrite::syn_mss(&mut b, ether::HEADER_LEN, 536).is_some() {
        let ip = &f[ether::HEADER_LEN..];
        let hl = ((ip[0] & 0x0f) as usize) * 4;
        assert_eq!(ip[9], proto::TCP);
        assert_eq!(ipv4::Packet::new_unchecked(ip).frag_offset(), 0);
        let l4 = ether::HEADER_LEN + hl;
        assert!(f[l4 + tcp::field::FLAGS] & tcp::flag::SYN != 0);
        assert_eq!(
            b[..l4 + 16],
            f[..l4 + 16],
            "only the TCP checksum and options change"
        );
    } else {
        assert_eq!(b, f, "nothing clamped, bytes changed");
    }
}

/// MSS clamping on a TCP segment: the option walk never panics; a clamp changes nothing but
/// MSS values above the clamp (now the clamp) and the checksum, which stays right if it was
/// right; nothing changed, the bytes are the same. The same through `rewrite::syn_mss` on the
/// whole datagram, which touches SYNs only.
fn mss_clamp(l4: &[u8], src: u32, dst: u32) {
    for max in [536u16, 1360, 65495] {
        let mut b = l4.to_vec();
        let before = tcp::Packet::new_unchecked(&l4[..]).mss();
        let ok = tcp::Packet::new_unchecked(&l4[..]).verify_checksum(src, dst);
        let got = tcp::Packet::new_unchecked(&mut b[..]).clamp_mss(max);
        let after = tcp::Packet::new_unchecked(&b[..]);
        match got {
            None => assert_eq!(b, l4, "nothing clamped, bytes changed"),
            Some(old) => {
                assert!(old > max);
                assert!(before.is_some());
                assert!(after.mss().is_some_and(|m| m <= max));
                assert_eq!(
                    after.verify_checksum(src, dst),
                    ok,
                    "checksum validity changed"
                );
                let mut diff = (0..b.len()).filter(|&i| b[i] != l4[i]);
                assert!(diff.all(|i| (16..after.header_len()).contains(&i)));
            }
        }
    }
}

/// The forward stage's four-load acceptance never accepts what the parser refuses.
fn fast_path(f: &[u8], parsed: &Result<pollfwd_nf::parse::Parsed, DropReason>) {
    let Some(h) = f.get(..ipv4::WORDS_LEN) else {
        return;
    };
    let w = ipv4::Words::load(h.try_into().expect("WORDS_LEN bytes"));
    if w.is_plain(f.len()) {
        let p = parsed
            .as_ref()
            .expect("fast path accepted what the parser refuses");
        assert_eq!((p.src_ip, p.dst_ip), (w.src(), w.dst()));
        assert_eq!(p.l4_off, 34);
    } else if let Ok(p) = parsed {
        assert_ne!(p.l4_off, 34, "the fast path refused a plain IPv4 frame");
    }
}

/// NAT's view agrees with the shared parser: the same reason where both refuse, the same
/// flow key where both accept; NAT differs only where documented (non-IPv4 passes, a first
/// fragment too short for its L4 header is refused).
fn nat_view(f: &[u8], parsed: &Result<pollfwd_nf::parse::Parsed, DropReason>) {
    let nat = pkt::parse(f);
    match parsed {
        Err(DropReason::NotIpv4 | DropReason::VlanUnknown) => assert_eq!(nat, Ok(None)),
        Err(r) => assert_eq!(nat, Err(*r)),
        Ok(p) => match nat {
            Ok(Some(n)) => {
                assert_eq!((n.l3 as u16, n.l4 as u16), (p.l3_off, p.l4_off));
                assert_eq!((n.src, n.dst, n.proto), (p.src_ip, p.dst_ip, p.proto));
                assert!(n.end <= f.len() && n.l4 <= n.end);
                if n.proto != proto::ICMP {
                    assert_eq!((n.sport, n.dport), (p.src_port, p.dst_port));
                }
                if n.proto == proto::ICMP
                    && n.frag == Frag::No
                    && pkt::icmp_kind(n.l4_flags) == IcmpKind::Error
                    && let Ok(i) = pkt::parse_inner(f, &n)
                {
                    assert!(i.l3 < i.l4 && i.l4 + 8 <= i.end && i.end <= n.end);
                }
            }
            Err(DropReason::Ipv4Truncated) => {
                let ip = ipv4::Packet::new_unchecked(&f[14..]);
                let need = match ip.protocol() {
                    proto::TCP => tcp::HEADER_LEN,
                    proto::UDP => udp::HEADER_LEN,
                    proto::ICMP => icmp::HEADER_LEN,
                    _ => 0,
                };
                assert!(ip.frag() != Frag::NonFirst);
                assert!((ip.total_len() as usize) < ip.header_len() + need);
            }
            other => panic!("NAT: {other:?}, shared parser: {p:?}"),
        },
    }
}

/// What the IPv4 parser accepts, smoltcp accepts with a good header checksum.
fn smoltcp_agrees(f: &[u8], parsed: &Result<pollfwd_nf::parse::Parsed, DropReason>) {
    if parsed.is_ok() {
        assert_eq!(pollfwd_fuzz::ipv4_header_ok(f), Some(true));
    }
}
