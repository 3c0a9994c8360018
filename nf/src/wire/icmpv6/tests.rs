use super::*;
use crate::wire::checksum::tests::{Rng, rfc1071};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6ParamProblem, Icmpv6Repr,
    Icmpv6TimeExceeded, IpProtocol, Ipv6Address, Ipv6ExtHeader, Ipv6ExtHeaderRepr, Ipv6Packet,
    Ipv6Repr,
};

const ME: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0001;
const HOST: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0042;
const FAR: u128 = 0x2001_0db8_00ff_0000_0000_0000_0000_0009;

fn a(x: u128) -> Ipv6Address {
    Ipv6Address::from(x)
}

/// A UDP/IPv6 packet HOST -> FAR with `pay` bytes of payload, as an invoking packet.
fn invoking(pay: usize) -> Vec<u8> {
    let mut p = vec![0u8; 40 + 8 + pay];
    ipv6::write_header(&mut p, (8 + pay) as u16, proto::UDP, 1, HOST, FAR);
    p[40..48].copy_from_slice(&[0x04, 0xd2, 0, 53, 0, 0, 0, 0]);
    for (i, b) in p[48..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

/// An echo request `src` -> `dst` written by smoltcp (IPv6 header and message, checksum
/// filled), with a destination options header of `ext` bytes first when `ext` > 0.
fn echo_request(src: u128, dst: u128, data: &[u8], ext: usize) -> Vec<u8> {
    let repr = Icmpv6Repr::EchoRequest {
        ident: 0x4242,
        seq_no: 7,
        data,
    };
    let n = repr.buffer_len();
    let mut p = vec![0u8; 40 + ext + n];
    Ipv6Repr {
        src_addr: a(src),
        dst_addr: a(dst),
        next_header: if ext > 0 {
            IpProtocol::Ipv6Opts
        } else {
            IpProtocol::Icmpv6
        },
        payload_len: ext + n,
        hop_limit: 64,
    }
    .emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
    if ext > 0 {
        Ipv6ExtHeaderRepr {
            next_header: IpProtocol::Icmpv6,
            length: (ext / 8 - 1) as u8,
            data: &[],
        }
        .emit(&mut Ipv6ExtHeader::new_unchecked(&mut p[40..40 + ext]));
    }
    repr.emit(
        &a(src),
        &a(dst),
        &mut Icmpv6Packet::new_unchecked(&mut p[40 + ext..]),
        &ChecksumCapabilities::default(),
    );
    p
}

#[test]
fn accessors_and_checksum_agree_with_smoltcp() {
    let mut b = [0u8; 14];
    let mut m = Packet::new_checked(&mut b[..]).unwrap();
    m.set_msg_type(msg::ECHO_REQUEST);
    m.set_code(0);
    m.set_ident(0x1234);
    m.set_seq(9);
    m.data_mut().copy_from_slice(&[1, 2, 3, 4, 5, 6]);
    m.fill_checksum(HOST, ME);
    assert!(m.verify_checksum(HOST, ME));
    assert!(!m.verify_checksum(ME, HOST + 1));
    assert_eq!(
        (m.msg_type(), m.code(), m.ident(), m.seq()),
        (128, 0, 0x1234, 9)
    );
    assert_eq!(m.param(), 0x1234_0009);
    assert_eq!(m.data(), &[1, 2, 3, 4, 5, 6]);
    let c = m.checksum();
    // The reference: RFC 1071 over the explicit pseudo-header and the message.
    let mut explicit = Vec::new();
    explicit.extend_from_slice(&HOST.to_be_bytes());
    explicit.extend_from_slice(&ME.to_be_bytes());
    explicit.extend_from_slice(&[0, 0, 0, 14, 0, 0, 0, 58]);
    let mut z = b;
    z[2..4].copy_from_slice(&[0, 0]);
    explicit.extend_from_slice(&z);
    assert_eq!(c, rfc1071(&explicit));
    let s = Icmpv6Packet::new_checked(&b[..]).unwrap();
    assert!(s.verify_checksum(&a(HOST), &a(ME)));
    assert_eq!((s.echo_ident(), s.echo_seq_no()), (0x1234, 9));
    // smoltcp's checksum on random messages is ours.
    let mut r = Rng::new(58);
    for _ in 0..500 {
        let len = 8 + (r.next() % 100) as usize;
        let mut m: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
        let (s, d) = (r.next() as u128 * 7, (r.next() as u128) << 64 | 1);
        Icmpv6Packet::new_unchecked(&mut m[..]).fill_checksum(&a(s), &a(d));
        let theirs = Packet::new_unchecked(&m[..]).checksum();
        Packet::new_unchecked(&mut m[..]).fill_checksum(s, d);
        assert_eq!(Packet::new_unchecked(&m[..]).checksum(), theirs);
    }
    assert!(Packet::new_checked(&b[..7]).is_none());
}

#[test]
fn error_types_agree_with_smoltcp() {
    for ty in 0..=255u8 {
        assert_eq!(is_error(ty), Icmpv6Message::from(ty).is_error(), "{ty}");
    }
}

/// Every error the forward stage sends, written here, equals smoltcp's emission of the same
/// representation byte for byte, and parses back with smoltcp into the same fields; a big
/// invoking packet is cut so that the error is exactly 1280 bytes.
#[test]
fn errors_equal_smoltcps() {
    for pay in [0usize, 20, 1000, 1400, 9000] {
        let inv = invoking(pay);
        let ih = Ipv6Repr::parse(&Ipv6Packet::new_checked(&inv[..]).unwrap()).unwrap();
        let data = &inv[40..];
        let cases: [(u8, u8, u32, Icmpv6Repr); 6] = [
            (
                1,
                0,
                0,
                Icmpv6Repr::DstUnreachable {
                    reason: Icmpv6DstUnreachable::NoRoute,
                    header: ih,
                    data,
                },
            ),
            (
                1,
                3,
                0,
                Icmpv6Repr::DstUnreachable {
                    reason: Icmpv6DstUnreachable::AddrUnreachable,
                    header: ih,
                    data,
                },
            ),
            (
                1,
                4,
                0,
                Icmpv6Repr::DstUnreachable {
                    reason: Icmpv6DstUnreachable::PortUnreachable,
                    header: ih,
                    data,
                },
            ),
            (
                2,
                0,
                1280,
                Icmpv6Repr::PktTooBig {
                    mtu: 1280,
                    header: ih,
                    data,
                },
            ),
            (
                3,
                0,
                0,
                Icmpv6Repr::TimeExceeded {
                    reason: Icmpv6TimeExceeded::HopLimitExceeded,
                    header: ih,
                    data,
                },
            ),
            (
                4,
                0,
                6,
                Icmpv6Repr::ParamProblem {
                    reason: Icmpv6ParamProblem::ErroneousHdrField,
                    pointer: 6,
                    header: ih,
                    data,
                },
            ),
        ];
        for (ty, code, param, repr) in cases {
            let mut buf = vec![0xaau8; 1600];
            let n = write_error(&mut buf, ME, HOST, ty, code, param, &inv);
            assert_eq!(n, (40 + 8 + inv.len()).min(1280), "pay {pay}");
            let out = &buf[..n];
            // smoltcp's emission.
            let mut want = vec![0u8; 40 + repr.buffer_len()];
            Ipv6Repr {
                src_addr: a(ME),
                dst_addr: a(HOST),
                next_header: IpProtocol::Icmpv6,
                payload_len: repr.buffer_len(),
                hop_limit: HOP_LIMIT,
            }
            .emit(&mut Ipv6Packet::new_unchecked(&mut want[..]));
            repr.emit(
                &a(ME),
                &a(HOST),
                &mut Icmpv6Packet::new_unchecked(&mut want[40..]),
                &ChecksumCapabilities::default(),
            );
            assert_eq!(out, &want[..], "type {ty} code {code} pay {pay}");
            // And parsed back by smoltcp.
            let ip = Ipv6Packet::new_checked(out).unwrap();
            assert_eq!(ip.payload_len() as usize, n - 40);
            let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
            let got = Icmpv6Repr::parse(&a(ME), &a(HOST), &icmp, &ChecksumCapabilities::default())
                .unwrap();
            match got {
                Icmpv6Repr::DstUnreachable { header, .. }
                | Icmpv6Repr::TimeExceeded { header, .. } => assert_eq!(header, ih),
                Icmpv6Repr::PktTooBig { mtu, header, .. } => {
                    assert_eq!((mtu, header), (1280, ih))
                }
                Icmpv6Repr::ParamProblem {
                    pointer, header, ..
                } => assert_eq!((pointer, header), (6, ih)),
                other => panic!("{other:?}"),
            }
        }
    }
    // Link-layer padding after the invoking packet is not quoted.
    let mut padded = invoking(10);
    let plain = padded.clone();
    padded.extend_from_slice(&[0xee; 8]);
    let (mut b1, mut b2) = ([0u8; 200], [0u8; 200]);
    let n = write_error(&mut b1, ME, HOST, 3, 0, 0, &padded);
    assert_eq!(n, 48 + plain.len());
    let m = write_error(&mut b2, ME, HOST, 3, 0, 0, &plain);
    assert_eq!(b1[..n], b2[..m]);
    // A short buffer: the quote shrinks to fit; below the headers nothing is written.
    let inv = invoking(100);
    let mut small = [0u8; 100];
    let n = write_error(&mut small, ME, HOST, 3, 0, 0, &inv);
    assert_eq!(n, 100);
    let icmp = Icmpv6Packet::new_checked(&small[40..]).unwrap();
    assert!(icmp.verify_checksum(&a(ME), &a(HOST)));
    assert_eq!(write_error(&mut small[..47], ME, HOST, 3, 0, 0, &inv), 0);
}

#[test]
fn echo_reply_equals_smoltcps() {
    let data: Vec<u8> = (0..56).collect();
    for ext in [0usize, 8, 24] {
        let mut p = echo_request(HOST, ME, &data, ext);
        p.extend_from_slice(&[0xee; 6]); // Ethernet padding
        let n = echo_reply_in_place(&mut p, ME).expect("answered");
        assert_eq!(n, 40 + 8 + data.len(), "extension headers dropped");
        let mut want = echo_request(HOST, ME, &data, 0);
        {
            let mut ip = Ipv6Packet::new_unchecked(&mut want[..]);
            ip.set_src_addr(a(ME));
            ip.set_dst_addr(a(HOST));
            ip.set_hop_limit(HOP_LIMIT);
            let mut m = Icmpv6Packet::new_unchecked(&mut want[40..]);
            m.set_msg_type(Icmpv6Message::EchoReply);
            m.fill_checksum(&a(ME), &a(HOST));
        }
        assert_eq!(&p[..n], &want[..], "ext {ext}");
        let ip = Ipv6Packet::new_checked(&p[..n]).unwrap();
        let r = Icmpv6Repr::parse(
            &a(ME),
            &a(HOST),
            &Icmpv6Packet::new_checked(ip.payload()).unwrap(),
            &ChecksumCapabilities::default(),
        )
        .unwrap();
        assert_eq!(
            r,
            Icmpv6Repr::EchoReply {
                ident: 0x4242,
                seq_no: 7,
                data: &data
            }
        );
    }
    // A request to all-nodes is answered from the given unicast address.
    let mut m = echo_request(HOST, ipv6::ALL_NODES, &data, 0);
    let n = echo_reply_in_place(&mut m, ME).unwrap();
    let ip = ipv6::Packet::new_unchecked(&m[..n]);
    assert_eq!((ip.src(), ip.dst()), (ME, HOST));
    assert!(Packet::new_unchecked(&m[40..n]).verify_checksum(ME, HOST));
}

#[test]
fn echo_reply_refuses_what_is_not_a_good_request() {
    let good = echo_request(HOST, ME, &[1, 2, 3], 0);
    let refused = |mut p: Vec<u8>, why: &str| {
        let before = p.clone();
        assert_eq!(echo_reply_in_place(&mut p, ME), None, "{why}");
        assert_eq!(p, before, "{why}: changed nothing");
    };
    let mut c = good.clone();
    c[45] ^= 1;
    refused(c, "bad checksum");
    let mut r = good.clone();
    r[40] = msg::ECHO_REPLY;
    Packet::new_unchecked(&mut r[40..]).fill_checksum(HOST, ME);
    refused(r, "a reply");
    let mut code = good.clone();
    code[41] = 1;
    Packet::new_unchecked(&mut code[40..]).fill_checksum(HOST, ME);
    refused(code, "code 1");
    refused(echo_request(0, ME, &[1], 0), "unspecified source");
    refused(
        echo_request(ipv6::ALL_NODES, ME, &[1], 0),
        "multicast source",
    );
    refused(good[..good.len() - 1].to_vec(), "truncated");
    let mut short = good.clone();
    short[4..6].copy_from_slice(&4u16.to_be_bytes());
    refused(short, "message below 8 bytes");
    let mut udp = good.clone();
    udp[6] = proto::UDP;
    refused(udp, "not ICMPv6");
    // A fragment (first fragment of a request: not reassembled, not answered).
    let mut f = vec![0u8; 40];
    ipv6::write_header(&mut f, 8 + 11, ipv6::next_header::FRAGMENT, 64, HOST, ME);
    f.extend_from_slice(&[58, 0, 0, 1, 0, 0, 0, 9]);
    f.extend_from_slice(&good[40..]);
    refused(f, "fragment");
    for n in 0..good.len() {
        refused(good[..n].to_vec(), "every truncation");
    }
}
