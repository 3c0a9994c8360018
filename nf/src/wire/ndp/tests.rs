use super::*;
use crate::wire::checksum::tests::Rng;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Duration;
use smoltcp::wire::{
    EthernetAddress, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Address, Ipv6Packet, Ipv6Repr,
    NdiscNeighborFlags, NdiscPrefixInfoFlags, NdiscPrefixInformation, NdiscRepr, NdiscRouterFlags,
    RawHardwareAddress,
};

const ME: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0001;
const HOST: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0042;
const MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
const HMAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];

fn a(x: u128) -> Ipv6Address {
    Ipv6Address::from(x)
}

fn ll(m: [u8; 6]) -> RawHardwareAddress {
    RawHardwareAddress::from(EthernetAddress(m))
}

fn me_ll() -> u128 {
    ipv6::link_local_from_mac(MAC)
}

/// A neighbour discovery message written by smoltcp (IPv6 header with hop limit 255 and the
/// ICMPv6 message, checksum filled).
fn smol(src: u128, dst: u128, repr: NdiscRepr) -> Vec<u8> {
    let r = Icmpv6Repr::Ndisc(repr);
    let n = r.buffer_len();
    let mut p = vec![0u8; 40 + n];
    Ipv6Repr {
        src_addr: a(src),
        dst_addr: a(dst),
        next_header: IpProtocol::Icmpv6,
        payload_len: n,
        hop_limit: 255,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
    r.emit(
        &a(src),
        &a(dst),
        &mut Icmpv6Packet::new_unchecked(&mut p[40..]),
        &ChecksumCapabilities::default(),
    );
    p
}

/// smoltcp's reading of a packet written here.
fn smol_parse(p: &[u8]) -> NdiscRepr<'_> {
    let ip = Ipv6Packet::new_checked(p).unwrap();
    assert_eq!(ip.hop_limit(), 255);
    let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    match Icmpv6Repr::parse(
        &ip.src_addr(),
        &ip.dst_addr(),
        &icmp,
        &ChecksumCapabilities::default(),
    )
    .expect("smoltcp accepts it")
    {
        Icmpv6Repr::Ndisc(r) => r,
        other => panic!("{other:?}"),
    }
}

fn check(p: &[u8]) -> Result<Message, DropReason> {
    let ip = ipv6::validate(p).expect("a valid IPv6 packet");
    validate(p, &ip)
}

/// Recomputes the ICMPv6 checksum of a packet changed by a test (no extension headers).
fn refix(p: &mut [u8]) {
    let ip = ipv6::Packet::new_unchecked(&p[..40]);
    let (s, d, n) = (ip.src(), ip.dst(), 40 + ip.payload_len() as usize);
    icmpv6::Packet::new_unchecked(&mut p[40..n]).fill_checksum(s, d);
}

#[test]
fn ns_equals_smoltcps_both_ways() {
    let target = HOST;
    for (src, dst, sll) in [
        (me_ll(), ipv6::solicited_node(target), Some(MAC)),
        (ME, target, Some(MAC)),
        (0, ipv6::solicited_node(target), None), // duplicate address detection
    ] {
        let mut buf = [0xaau8; 100];
        let n = write_ns(&mut buf, src, dst, target, sll);
        assert_eq!(n, 64 + if sll.is_some() { 8 } else { 0 });
        let want = smol(
            src,
            dst,
            NdiscRepr::NeighborSolicit {
                target_addr: a(target),
                lladdr: sll.map(ll),
            },
        );
        assert_eq!(&buf[..n], &want[..]);
        assert_eq!(
            smol_parse(&buf[..n]),
            NdiscRepr::NeighborSolicit {
                target_addr: a(target),
                lladdr: sll.map(ll)
            }
        );
        assert_eq!(
            check(&want),
            Ok(Message::NeighborSolicit { target, sll }),
            "smoltcp's, read here"
        );
    }
    assert_eq!(write_ns(&mut [0u8; 71], ME, HOST, HOST, Some(MAC)), 0);
    assert_eq!(write_ns(&mut [0u8; 64], 0, HOST, HOST, None), 64);
}

#[test]
fn na_equals_smoltcps_for_every_flag() {
    for f in 0..8u8 {
        let (router, solicited, override_) = (f & 4 != 0, f & 2 != 0, f & 1 != 0);
        let dst = if solicited { HOST } else { ipv6::ALL_NODES };
        let mut buf = [0u8; 72];
        let n = write_na(&mut buf, ME, dst, ME, MAC, router, solicited, override_);
        assert_eq!(n, 72);
        let mut flags = NdiscNeighborFlags::empty();
        flags.set(NdiscNeighborFlags::ROUTER, router);
        flags.set(NdiscNeighborFlags::SOLICITED, solicited);
        flags.set(NdiscNeighborFlags::OVERRIDE, override_);
        let repr = NdiscRepr::NeighborAdvert {
            flags,
            target_addr: a(ME),
            lladdr: Some(ll(MAC)),
        };
        assert_eq!(&buf[..], &smol(ME, dst, repr)[..], "flags {f}");
        assert_eq!(smol_parse(&buf), repr);
        assert_eq!(
            check(&buf),
            Ok(Message::NeighborAdvert {
                target: ME,
                router,
                solicited,
                override_,
                tll: Some(MAC)
            })
        );
    }
    assert_eq!(
        write_na(&mut [0u8; 71], ME, HOST, ME, MAC, true, true, true),
        0
    );
}

#[test]
fn ra_equals_smoltcps_and_carries_every_prefix() {
    let prefix = Prefix {
        prefix: 0x2001_0db8_0001 << 80,
        len: 64,
        on_link: true,
        autonomous: true,
        valid_lifetime: 2_592_000,
        preferred_lifetime: 604_800,
    };
    let ra = Ra {
        cur_hop_limit: 64,
        managed: false,
        other: true,
        router_lifetime: 1800,
        reachable_time: 30_000,
        retrans_timer: 1000,
        sll: Some(MAC),
        mtu: Some(1500),
    };
    let mut buf = [0u8; 200];
    let n = write_ra(&mut buf, me_ll(), ipv6::ALL_NODES, &ra, &[prefix]);
    assert_eq!(n, 40 + 16 + 8 + 8 + 32);
    let repr = NdiscRepr::RouterAdvert {
        hop_limit: 64,
        flags: NdiscRouterFlags::OTHER,
        router_lifetime: Duration::from_secs(1800),
        reachable_time: Duration::from_millis(30_000),
        retrans_time: Duration::from_millis(1000),
        lladdr: Some(ll(MAC)),
        mtu: Some(1500),
        prefix_info: Some(NdiscPrefixInformation {
            prefix_len: 64,
            flags: NdiscPrefixInfoFlags::ON_LINK | NdiscPrefixInfoFlags::ADDRCONF,
            valid_lifetime: Duration::from_secs(2_592_000),
            preferred_lifetime: Duration::from_secs(604_800),
            prefix: a(prefix.prefix),
        }),
    };
    assert_eq!(&buf[..n], &smol(me_ll(), ipv6::ALL_NODES, repr)[..]);
    assert_eq!(smol_parse(&buf[..n]), repr);
    let opts = Options {
        sll: Some(MAC),
        tll: None,
        mtu: Some(1500),
        prefixes: 1,
    };
    assert_eq!(
        check(&buf[..n]),
        Ok(Message::RouterAdvert {
            cur_hop_limit: 64,
            flags: flags::RA_OTHER,
            router_lifetime: 1800,
            reachable_time: 30_000,
            retrans_timer: 1000,
            opts
        })
    );
    // Two prefixes (smoltcp's representation holds one): read back with the option walk.
    let p2 = Prefix {
        prefix: 0x2001_0db8_0002 << 80,
        autonomous: false,
        ..prefix
    };
    let bare = Ra {
        sll: None,
        mtu: None,
        ..ra
    };
    let n = write_ra(&mut buf, me_ll(), HOST, &bare, &[prefix, p2]);
    assert_eq!(n, 40 + 16 + 64);
    let got: Vec<Prefix> = OptionIter::new(&buf[40 + RA_LEN..n])
        .map(|o| o.unwrap())
        .filter_map(|(ty, b)| Prefix::parse(ty, b))
        .collect();
    assert_eq!(got, vec![prefix, p2]);
    assert!(
        matches!(check(&buf[..n]), Ok(Message::RouterAdvert { opts, .. }) if opts.prefixes == 2)
    );
    assert_eq!(
        write_ra(&mut buf[..n - 1], me_ll(), HOST, &bare, &[prefix, p2]),
        0
    );
}

#[test]
fn router_solicitation_and_redirect_from_smoltcp() {
    let rs = smol(
        me_ll(),
        ipv6::ALL_ROUTERS,
        NdiscRepr::RouterSolicit {
            lladdr: Some(ll(HMAC)),
        },
    );
    assert_eq!(check(&rs), Ok(Message::RouterSolicit { sll: Some(HMAC) }));
    let rs0 = smol(
        0,
        ipv6::ALL_ROUTERS,
        NdiscRepr::RouterSolicit { lladdr: None },
    );
    assert_eq!(check(&rs0), Ok(Message::RouterSolicit { sll: None }));
    let rs_bad = smol(
        0,
        ipv6::ALL_ROUTERS,
        NdiscRepr::RouterSolicit {
            lladdr: Some(ll(HMAC)),
        },
    );
    assert_eq!(
        check(&rs_bad),
        Err(DropReason::NdInvalid),
        "RS from :: with SLLA"
    );
    let target = ipv6::link_local_from_mac(HMAC);
    let redirect = |src: u128, target: u128| {
        smol(
            src,
            HOST,
            NdiscRepr::Redirect {
                target_addr: a(target),
                dest_addr: a(ME),
                lladdr: Some(ll(HMAC)),
                redirected_hdr: None,
            },
        )
    };
    // smoltcp writes the link-layer option of a redirect as a *target* link-layer address.
    assert_eq!(
        check(&redirect(me_ll(), target)),
        Ok(Message::Redirect {
            target,
            dest: ME,
            tll: Some(HMAC)
        })
    );
    assert!(
        check(&redirect(me_ll(), ME)).is_ok(),
        "target = destination"
    );
    assert_eq!(
        check(&redirect(ME, target)),
        Err(DropReason::NdInvalid),
        "global source"
    );
    assert_eq!(
        check(&redirect(me_ll(), HOST)),
        Err(DropReason::NdInvalid),
        "global target"
    );
}

/// Issue 15's malformed neighbour discovery, and every other rule of RFC 4861 7.1.1/7.1.2,
/// each with its reason.
#[test]
fn each_invalid_message_has_its_reason() {
    let mut ns = [0u8; 72];
    write_ns(
        &mut ns,
        me_ll(),
        ipv6::solicited_node(HOST),
        HOST,
        Some(MAC),
    );
    assert!(check(&ns).is_ok());
    let bad = |f: &dyn Fn(&mut Vec<u8>), fix: bool| {
        let mut p = ns.to_vec();
        f(&mut p);
        if fix {
            refix(&mut p);
        }
        check(&p)
    };
    for hl in [0u8, 1, 64, 254] {
        assert_eq!(
            bad(&|p| p[7] = hl, false),
            Err(DropReason::NdBadHopLimit),
            "{hl}"
        );
    }
    // Option of length 0, and an option running past the message.
    assert_eq!(bad(&|p| p[65] = 0, true), Err(DropReason::NdBadOption));
    assert_eq!(bad(&|p| p[65] = 2, true), Err(DropReason::NdBadOption));
    assert_eq!(
        bad(&|p| p[70] ^= 1, false),
        Err(DropReason::Icmpv6BadChecksum)
    );
    assert_eq!(
        bad(&|p| p[41] = 1, true),
        Err(DropReason::NdInvalid),
        "code"
    );
    assert_eq!(
        bad(&|p| p[48] = 0xff, true),
        Err(DropReason::NdInvalid),
        "multicast target"
    );
    // Below 24 bytes (no options, message cut to 20).
    let short = |p: &mut Vec<u8>| {
        p.truncate(60);
        p[4..6].copy_from_slice(&20u16.to_be_bytes());
    };
    assert_eq!(bad(&short, true), Err(DropReason::NdInvalid));
    // Duplicate address detection: from :: only to a solicited-node address, without SLLA.
    let mut dad = [0u8; 64];
    write_ns(&mut dad, 0, ipv6::solicited_node(HOST), HOST, None);
    assert!(check(&dad).is_ok());
    write_ns(&mut dad, 0, HOST, HOST, None);
    assert_eq!(
        check(&dad),
        Err(DropReason::NdInvalid),
        "DAD to a unicast address"
    );
    let mut dad = [0u8; 72];
    write_ns(&mut dad, 0, ipv6::solicited_node(HOST), HOST, Some(MAC));
    assert_eq!(check(&dad), Err(DropReason::NdInvalid), "DAD with SLLA");
    // NA: solicited flag to a multicast group; multicast target.
    let mut na = [0u8; 72];
    write_na(&mut na, ME, ipv6::ALL_NODES, ME, MAC, false, true, true);
    assert_eq!(check(&na), Err(DropReason::NdInvalid));
    write_na(&mut na, ME, HOST, ipv6::ALL_NODES, MAC, false, true, true);
    assert_eq!(check(&na), Err(DropReason::NdInvalid));
    // RA from a global address.
    let ra = Ra {
        cur_hop_limit: 0,
        managed: false,
        other: false,
        router_lifetime: 0,
        reachable_time: 0,
        retrans_timer: 0,
        sll: None,
        mtu: None,
    };
    let mut rab = [0u8; 56];
    write_ra(&mut rab, ME, ipv6::ALL_NODES, &ra, &[]);
    assert_eq!(check(&rab), Err(DropReason::NdInvalid));
    // Not neighbour discovery: an echo request, UDP.
    assert_eq!(bad(&|p| p[40] = 128, true), Err(DropReason::NdInvalid));
    assert_eq!(
        bad(&|p| p[6] = proto::UDP, false),
        Err(DropReason::NdInvalid)
    );
    // Fragmented (RFC 6980): an atomic fragment header before the NS.
    let mut frag = ns[..40].to_vec();
    frag[6] = ipv6::next_header::FRAGMENT;
    frag[4..6].copy_from_slice(&(32u16 + 8).to_be_bytes());
    frag.extend_from_slice(&[58, 0, 0, 0, 0, 0, 0, 1]);
    frag.extend_from_slice(&ns[40..]);
    assert_eq!(check(&frag), Err(DropReason::NdInvalid));
}

#[test]
fn option_walk_and_arbitrary_bytes() {
    let opts = [
        1u8, 1, 2, 3, 4, 5, 6, 7, 9, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let v: Vec<_> = OptionIter::new(&opts).collect();
    assert_eq!(v, vec![Ok((1, &opts[..8])), Ok((9, &opts[8..]))]);
    assert_eq!(parse_options(&opts).unwrap().sll, Some([2, 3, 4, 5, 6, 7]));
    // An SLLA of 16 bytes is not Ethernet's: ignored.
    let long = [1u8, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
    assert_eq!(parse_options(&long).unwrap().sll, None);
    assert_eq!(
        parse_options(&[1]),
        Err(DropReason::NdBadOption),
        "cut length"
    );
    let v: Vec<_> = OptionIter::new(&[5, 0, 1, 1]).collect();
    assert_eq!(
        v,
        vec![Err(DropReason::NdBadOption)],
        "ends after the error"
    );
    let mut r = Rng::new(135);
    let mut base = [0u8; 120];
    let n = write_ra(
        &mut base,
        me_ll(),
        ipv6::ALL_NODES,
        &Ra {
            cur_hop_limit: 64,
            managed: true,
            other: true,
            router_lifetime: 9000,
            reachable_time: 1,
            retrans_timer: 2,
            sll: Some(MAC),
            mtu: Some(9000),
        },
        &[],
    );
    for _ in 0..20000 {
        let mut p = base[..n].to_vec();
        for _ in 0..1 + r.next() % 3 {
            let i = 40 + r.next() as usize % (n - 40);
            p[i] = r.next() as u8;
        }
        if r.next() & 1 == 0 {
            refix(&mut p);
        }
        if let Ok(ip) = ipv6::validate(&p) {
            let _ = validate(&p, &ip);
        }
    }
}
