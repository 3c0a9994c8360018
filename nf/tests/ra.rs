//! Router advertisements of an interface with `ra = true` (RFC 4861 6.2): the schedule of the
//! unsolicited ones, and router solicitations answered at once or, right after an
//! advertisement, by the next one brought forward to 3 s after it (6.2.6) — a host whose link
//! comes up just after an advertisement must not wait for the next 16 s tick. Solicitations
//! are written by smoltcp; the advertisements are read back by smoltcp.
//!
//! One EAL per test binary (`--no-pci --in-memory`, unique file prefix); nothing polls here.

use std::fs::File;
use std::net::Ipv6Addr;
use std::sync::{Arc, OnceLock};

use dpdk::{Mbuf, Mempool};
use pollfwd_nf::forward::table::{self, FwdTable, Iface};
use pollfwd_nf::forward::table6;
use pollfwd_nf::forward::{Forward, FwdParams, FwdShared};
use pollfwd_pipeline::stage::Harness;
use pollfwd_pipeline::{DropReason, Verdict};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Address, Ipv6Packet, Ipv6Repr,
    NdiscRepr, RawHardwareAddress,
};

static EAL: OnceLock<(dpdk::Eal, File, Mempool)> = OnceLock::new();

fn pool() -> Mempool {
    EAL.get_or_init(|| {
        let (eal, lock) = dpdk::Eal::init_private("fwdra", &[]).expect("EAL init");
        let pool = Mempool::create("fwdra", 255, 0, 2176, -1).expect("mempool");
        (eal, lock, pool)
    })
    .2
}

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x99];

fn ip(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

fn stage() -> Forward {
    pool(); // EAL up
    let ifaces = vec![Iface {
        port: 0,
        name: "lan".into(),
        mac: MAC,
        addr: None,
        addr6: vec![(ip("2001:db8:5::1"), 64)],
        mtu: 1400,
        mss_clamp: None,
        ra: true,
    }];
    let v4 = table::resolve(&ifaces, &[]).unwrap();
    let v6 = table6::resolve6(&ifaces, &[]).unwrap();
    let t = Arc::new(FwdTable::build(&v4, &v6, -1).unwrap());
    let shared = FwdShared::new(ifaces, Vec::new(), &[], &[], FwdParams::default(), 1000).unwrap();
    Forward::new(Arc::new(shared), t, 0)
}

/// A router solicitation from the host's link-local address to all-routers, as Linux sends
/// it when its link comes up (written by smoltcp).
fn solicitation() -> Vec<u8> {
    let src = Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99);
    let dst = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
    let r = Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit {
        lladdr: Some(RawHardwareAddress::from(EthernetAddress(HOST_MAC))),
    });
    let n = r.buffer_len();
    let mut f = vec![0u8; 14 + 40 + n];
    f[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&HOST_MAC);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: n,
        hop_limit: 255,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut f[14..54]));
    r.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(&mut f[54..]),
        &ChecksumCapabilities::default(),
    );
    f
}

/// The advertisements the stage originated, checked as smoltcp reads them: out of port 0,
/// to all-nodes, advertising the /64 and the MTU.
fn adverts(h: &mut Harness) -> usize {
    let out: Vec<Mbuf> = h.take_originated();
    for m in &out {
        assert_eq!(m.meta().out_port, 0);
        let f = m.data();
        assert_eq!(&f[..6], &[0x33, 0x33, 0, 0, 0, 1], "to all-nodes");
        let ip6 = Ipv6Packet::new_checked(&f[14..]).unwrap();
        let icmp = Icmpv6Packet::new_checked(ip6.payload()).unwrap();
        match Icmpv6Repr::parse(
            &ip6.src_addr(),
            &ip6.dst_addr(),
            &icmp,
            &ChecksumCapabilities::default(),
        )
        .expect("smoltcp accepts it")
        {
            Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
                router_lifetime,
                mtu,
                prefix_info,
                ..
            }) => {
                assert!(router_lifetime.secs() > 0);
                assert_eq!(mtu, Some(1400));
                let p = prefix_info.expect("a prefix information option");
                assert_eq!(p.prefix_len, 64);
            }
            other => panic!("not an advertisement: {other:?}"),
        }
    }
    out.len()
}

fn solicit(h: &mut Harness, fwd: &mut Forward, now: u64) {
    let f = solicitation();
    let mut m = pool().alloc().expect("mbuf");
    assert!(m.set_len(f.len() as u16));
    m.data_mut().copy_from_slice(&f);
    let mut pkts = vec![m];
    let mut v = vec![Verdict::Continue];
    let all = h.process(fwd, &mut pkts, &mut v, (now, 0, false));
    assert_eq!(all.unwrap_or(v[0]), Verdict::Drop(DropReason::ForUs));
}

#[test]
fn solicitations_are_answered_at_once_or_three_seconds_after_the_last_advertisement() {
    // A clock of 1000 ticks per second (the stage's and the harness's).
    let s = 1000u64;
    let mut fwd = stage();
    let mut h = Harness::new(pool(), s);
    let t0 = 1_000_000u64;
    // The first unsolicited advertisement leaves at the first housekeeping.
    h.housekeeping(&mut fwd, t0);
    assert_eq!(adverts(&mut h), 1, "the first unsolicited advertisement");
    h.housekeeping(&mut fwd, t0 + s);
    assert_eq!(adverts(&mut h), 0, "the next is 16 s away");
    // A host solicits 1 s after it: nothing at once (at most one every 3 s) ...
    solicit(&mut h, &mut fwd, t0 + s);
    assert_eq!(adverts(&mut h), 0, "not within 3 s of the last");
    h.housekeeping(&mut fwd, t0 + 3 * s - 1);
    assert_eq!(adverts(&mut h), 0, "not before 3 s");
    // ... but 3 s after the last one, not 16.
    h.housekeeping(&mut fwd, t0 + 3 * s);
    assert_eq!(adverts(&mut h), 1, "brought forward to 3 s after the last");
    h.housekeeping(&mut fwd, t0 + 5 * s);
    assert_eq!(adverts(&mut h), 0, "one only");
    // A solicitation long after the last advertisement is answered at once, and one more
    // right after it is not.
    solicit(&mut h, &mut fwd, t0 + 10 * s);
    assert_eq!(adverts(&mut h), 1, "answered at once");
    solicit(&mut h, &mut fwd, t0 + 10 * s + 1);
    assert_eq!(adverts(&mut h), 0, "rate limited");
    h.housekeeping(&mut fwd, t0 + 13 * s);
    assert_eq!(adverts(&mut h), 1, "the rate-limited one 3 s later");
}
