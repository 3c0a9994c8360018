//! The flow key of an Ethernet II + IPv4 frame, written into [`PktMeta`] so that every later
//! stage (classify, NAT, policer, forward) reuses one parse. Validity is the wire module's
//! IPv4 parser ([`crate::wire::ipv4::validate`], RFC 1812 section 5.2.2).
//!
//! Call [`parse_ipv4_frame`] on a packet's data and [`Parsed::write`] the result into its
//! metadata: `meta.flags` gets [`flags::PARSED`] and [`flags::IPV4`], and `l3_off`, `l4_off`,
//! `src_ip`, `dst_ip`, `proto`, `src_port`, `dst_port` are filled in (addresses in host byte
//! order). A stage that finds `PARSED` already
//! set may skip the parse. On failure the packet should be dropped with the returned reason.
//!
//! ARP frames come back as `Err(DropReason::NotIpv4)`: stages placed before `forward` should
//! let them `Continue` (forward answers ARP), not drop them.
//!
//! Flow key conventions:
//! - TCP, UDP, SCTP, UDP-Lite: the L4 ports (0 when the first 4 bytes of L4 are not present).
//! - ICMP: `src_port` = the query identifier for query messages (echo, timestamp, information,
//!   address mask: types 0, 8, 13, 14, 15, 16, 17, 18), 0 otherwise; `dst_port` =
//!   `type << 8 | code`.
//! - Non-first fragments ([`flags::FRAG_NONFIRST`]): no L4 header, ports 0.

use dpdk::PktMeta;
use dpdk::meta::flags;
use pollfwd_pipeline::DropReason;

use crate::wire::{ether, icmp, ipv4, proto};

/// The IPv4 header checksum functions, at the path the appliance's tests and benches use.
pub use crate::wire::checksum::ipv4_header_checksum_ok;
pub use crate::wire::ipv4::header_checksum as ipv4_header_checksum;

/// What a successful parse found (the fields it writes into [`PktMeta`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parsed {
    pub l3_off: u16,
    pub l4_off: u16,
    pub src_ip: u32,
    pub dst_ip: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    pub flags: u16,
}

impl Parsed {
    /// Writes the parse into the packet metadata (other fields untouched).
    #[inline]
    pub fn write(&self, meta: &mut PktMeta) {
        meta.l3_off = self.l3_off;
        meta.l4_off = self.l4_off;
        meta.src_ip = self.src_ip;
        meta.dst_ip = self.dst_ip;
        meta.src_port = self.src_port;
        meta.dst_port = self.dst_port;
        meta.proto = self.proto;
        meta.flags = (meta.flags & !(flags::FRAG | flags::FRAG_NONFIRST)) | self.flags;
    }
}

/// Parses and validates an Ethernet II + IPv4 frame. `data` is the frame's first segment,
/// `frame_len` the whole frame's length (equal to `data.len()` for single-segment mbufs).
///
/// Checks, each with its own drop reason (RFC 1812 section 5.2.2, "IP Header Validation"):
/// 1. the frame holds an Ethernet header (`runt`) and is IPv4 (`not_ipv4`; `vlan_unknown`
///    for a VLAN tag no sub-interface took off);
/// 2. the link-layer length holds the minimum IPv4 header, 20 bytes (`ipv4_truncated`);
/// 3. the version number is 4 (`ipv4_bad_version`);
/// 4. the header length is at least 20 bytes (`ipv4_bad_ihl`) and within the frame
///    (`ipv4_truncated`);
/// 5. the total length is at least the header length (`ipv4_bad_length`) and the link layer
///    holds the total length (`ipv4_truncated`);
/// 6. the header checksum is correct (`ipv4_bad_checksum`).
///
/// RFC 1812 checks the checksum second; it is checked last here because it can only be
/// computed once the header length is known to be sane, and a frame failing several checks
/// counts under the first failing one in the order above.
/// Why a frame of EtherType `t` (not IPv4) is no stage's: a VLAN tag left on it
/// (`vlan_unknown`: its port has no sub-interface for it, or none at all) or another protocol.
#[cold]
pub fn non_ipv4(t: u16) -> DropReason {
    if t == ether::ethertype::VLAN || t == ether::ethertype::QINQ {
        DropReason::VlanUnknown
    } else {
        DropReason::NotIpv4
    }
}

#[inline(always)]
pub fn parse_ipv4_frame(data: &[u8], frame_len: usize) -> Result<Parsed, DropReason> {
    let eth = ether::Frame::new_checked(data)?;
    if eth.ethertype_raw() != ether::ethertype::IPV4 {
        return Err(non_ipv4(eth.ethertype_raw()));
    }
    let ip = &data[ether::HEADER_LEN..];
    let l3_len = frame_len.max(data.len()) - ether::HEADER_LEN;
    let lens = ipv4::validate(ip, l3_len, true)?;
    let p = ipv4::Packet::new_unchecked(ip);
    let proto = p.protocol();
    let ff = p.flags_frag();
    let frag_off = ff & 0x1fff;
    let more = ff & 0x2000 != 0;
    let mut fl = flags::PARSED | flags::IPV4;
    if frag_off != 0 || more {
        fl |= flags::FRAG;
    }
    let (mut sport, mut dport) = (0u16, 0u16);
    if frag_off != 0 {
        fl |= flags::FRAG_NONFIRST;
    } else {
        // L4 bytes present in both the IP datagram and the first segment.
        let l4 = &ip[lens.header..lens.total.min(ip.len())];
        match proto {
            proto::TCP | proto::UDP | proto::SCTP | proto::UDPLITE if l4.len() >= 4 => {
                // The ports are the first two fields of all four.
                let u = crate::wire::udp::Packet::new_unchecked(l4);
                sport = u.src_port();
                dport = u.dst_port();
            }
            proto::ICMP if l4.len() >= 2 => {
                // Type and code as one word.
                dport = crate::wire::get16(l4, icmp::field::TYPE);
                if icmp::is_query(l4[icmp::field::TYPE]) && l4.len() >= icmp::field::IDENT.end {
                    sport = crate::wire::get16(l4, icmp::field::IDENT.start);
                }
            }
            _ => {}
        }
    }
    Ok(Parsed {
        l3_off: ether::HEADER_LEN as u16,
        l4_off: (ether::HEADER_LEN + lens.header) as u16,
        src_ip: p.src(),
        dst_ip: p.dst(),
        src_port: sport,
        dst_port: dport,
        proto,
        flags: fl,
    })
}

/// Bytes [`parse_plain`] reads: Ethernet, a 20-byte IPv4 header and the L4 ports.
const PLAIN_LEN: usize = ipv4::WORDS_LEN + 4;

/// [`parse_ipv4_frame`] for the common frame, in five loads: an untagged, unfragmented IPv4
/// datagram with a 20-byte header that passes [`ipv4::Words::is_plain`] (version, header and
/// total lengths, header checksum), carrying TCP, UDP, SCTP or UDP-Lite with its ports in the
/// first segment. `None` for anything else: the caller then runs [`parse_ipv4_frame`], which
/// gives the same result for every frame this accepts and the exact reason for a frame it
/// refuses.
#[inline(always)]
pub fn parse_plain(data: &[u8], frame_len: usize) -> Option<Parsed> {
    let h: &[u8; PLAIN_LEN] = data.get(..PLAIN_LEN)?.try_into().ok()?;
    let (hdr, l4) = h.split_at(ipv4::WORDS_LEN);
    let w = ipv4::Words::load(hdr.try_into().ok()?);
    // Flags/fragment offset (bytes 20..22) and total length (16..18), from the loaded words.
    let ff = ((w.q14 >> 48) as u16).swap_bytes();
    let total = ((w.q14 >> 16) as u16).swap_bytes() as usize;
    let proto = (w.q22 >> 8) as u8;
    let l4_proto = matches!(
        proto,
        proto::TCP | proto::UDP | proto::SCTP | proto::UDPLITE
    );
    // No MF flag, offset 0; the datagram holds the 4 port bytes (the first segment does: h).
    if !(w.is_plain(frame_len.max(data.len()))
        & (ff & 0x3fff == 0)
        & (total >= ipv4::MIN_HEADER_LEN + 4)
        & l4_proto)
    {
        return None;
    }
    let ports = u32::from_be_bytes([l4[0], l4[1], l4[2], l4[3]]);
    Some(Parsed {
        l3_off: ether::HEADER_LEN as u16,
        l4_off: ipv4::WORDS_LEN as u16,
        src_ip: w.src(),
        dst_ip: w.dst(),
        src_port: (ports >> 16) as u16,
        dst_port: ports as u16,
        proto,
        flags: flags::PARSED | flags::IPV4,
    })
}

/// The forward stage's fast-path acceptance ([`ipv4::Words::is_plain`]) as a function of a
/// frame, returning the addresses (host order) it would route by: the mutation test checks
/// that whatever this accepts, [`parse_ipv4_frame`] accepts with the same addresses, and that
/// every plain frame the parser accepts is accepted.
#[cfg(test)]
fn ipv4_fast(data: &[u8], frame_len: usize) -> Option<(u32, u32)> {
    let h: &[u8; ipv4::WORDS_LEN] = data.get(..ipv4::WORDS_LEN)?.try_into().ok()?;
    let w = ipv4::Words::load(h);
    if !w.is_plain(frame_len.max(data.len())) {
        return None;
    }
    Some((w.src(), w.dst()))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::wire::checksum::tests::rfc1071;
    use crate::wire::testframe::udp_frame;

    const ETH_LEN: usize = ether::HEADER_LEN;
    const IPV4_MIN_HDR: usize = ipv4::MIN_HEADER_LEN;

    #[test]
    fn fast_check_accepts_only_what_the_parser_accepts() {
        // Every single-byte change (to several values) of the first 40 bytes of a valid frame,
        // and every frame length: whatever the fast check accepts the full parser accepts with
        // the same addresses; and every frame the parser accepts with IHL 5 (and the header in
        // the first segment) the fast check accepts too.
        let mut cases = Vec::new();
        mutations(
            &udp_frame(),
            &[0u8, 1, 0x45, 0x46, 0x08, 0x80, 0xff],
            &mut cases,
        );
        let mut accepted = 0;
        for (f, len) in &cases {
            let fast = ipv4_fast(f, *len);
            let full = parse_ipv4_frame(f, *len);
            if let Some((s, d)) = fast {
                let p = full
                    .as_ref()
                    .expect("fast accepted what the parser refuses");
                assert_eq!((p.src_ip, p.dst_ip), (s, d));
                accepted += 1;
            } else if let Ok(p) = &full {
                assert!(
                    p.l4_off != (ETH_LEN + IPV4_MIN_HDR) as u16 || f.len() < ETH_LEN + 20,
                    "fast refused a plain IPv4 frame {f:02x?}"
                );
            }
        }
        assert!(accepted > 100, "{accepted}");
    }

    #[test]
    fn plain_parse_agrees_with_the_parser() {
        // Every single-byte change (to several values) of the first 40 bytes of a valid UDP
        // and TCP frame, with the checksum kept right and not, and every cut: whatever
        // parse_plain accepts the parser accepts with the same result, and every unfragmented
        // TCP/UDP frame with a 20-byte header and its ports in the datagram and the first
        // segment that the parser accepts, parse_plain accepts.
        let mut bases = vec![udp_frame()];
        let mut tcp = udp_frame();
        tcp[23] = proto::TCP;
        tcp.extend_from_slice(&[0; 12]);
        let total = (tcp.len() - ETH_LEN) as u16;
        tcp[16..18].copy_from_slice(&total.to_be_bytes());
        tcp[24..26].copy_from_slice(&[0, 0]);
        let c = rfc1071(&tcp[14..34]);
        tcp[24..26].copy_from_slice(&c.to_be_bytes());
        bases.push(tcp);
        let mut cases = Vec::new();
        for base in &bases {
            let values = [
                0u8, 1, 4, 6, 17, 23, 24, 0x20, 0x40, 0x45, 0x46, 0x08, 0x80, 0xff,
            ];
            mutations(base, &values, &mut cases);
        }
        let mut accepted = 0;
        for (f, len) in &cases {
            let full = parse_ipv4_frame(f, *len);
            match parse_plain(f, *len) {
                Some(p) => {
                    assert_eq!(full, Ok(p), "{f:02x?}");
                    accepted += 1;
                }
                None => {
                    if let Ok(p) = full {
                        let total = u16::from_be_bytes([f[16], f[17]]) as usize;
                        assert!(
                            p.l4_off != (ETH_LEN + IPV4_MIN_HDR) as u16
                                || p.flags != flags::PARSED | flags::IPV4
                                || ![proto::TCP, proto::UDP, proto::SCTP, proto::UDPLITE]
                                    .contains(&p.proto)
                                || f.len() < PLAIN_LEN
                                || total < IPV4_MIN_HDR + 4,
                            "parse_plain refused a plain frame {f:02x?}"
                        );
                    }
                }
            }
        }
        assert!(accepted > 200, "{accepted}");
    }

    #[test]
    fn good_udp_fills_the_flow_key() {
        let f = udp_frame();
        let p = parse_ipv4_frame(&f, f.len()).unwrap();
        assert_eq!(p.l3_off, 14);
        assert_eq!(p.l4_off, 34);
        assert_eq!(p.src_ip, 0x0a00_0001);
        assert_eq!(p.dst_ip, 0xc000_0209);
        assert_eq!((p.src_port, p.dst_port), (1234, 80));
        assert_eq!(p.proto, 17);
        assert_eq!(p.flags, flags::PARSED | flags::IPV4);
        // Ethernet padding after the datagram is fine.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(parse_ipv4_frame(&padded, padded.len()).unwrap(), p);
        let mut meta = PktMeta::default();
        p.write(&mut meta);
        assert_eq!(meta.dst_ip, 0xc000_0209);
        assert_eq!(meta.flags, flags::PARSED | flags::IPV4);
    }

    /// `base` as it is, with each of its first 40 bytes set to each of `values` (again with
    /// the header checksum made right, so that later checks are reached too), and cut at
    /// every length (the rest absent, or in later segments): (frame, whole frame length).
    fn mutations(base: &[u8], values: &[u8], cases: &mut Vec<(Vec<u8>, usize)>) {
        cases.push((base.to_vec(), base.len()));
        for pos in 0..40 {
            for &v in values {
                let mut f = base.to_vec();
                f[pos] = v;
                cases.push((f.clone(), f.len()));
                if (14..34).contains(&pos) {
                    f[24..26].copy_from_slice(&[0, 0]);
                    let c = rfc1071(&f[14..34]);
                    f[24..26].copy_from_slice(&c.to_be_bytes());
                    cases.push((f.clone(), f.len()));
                }
            }
        }
        for cut in 0..base.len() {
            cases.push((base[..cut].to_vec(), cut));
            cases.push((base[..cut].to_vec(), base.len()));
        }
    }

    fn refix(f: &mut [u8]) {
        let hl = ((f[14] & 0xf) as usize * 4).clamp(20, f.len() - 14);
        f[24..26].copy_from_slice(&[0, 0]);
        let c = rfc1071(&f[14..14 + hl]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }

    #[test]
    fn each_rfc1812_check_has_its_reason() {
        let f = udp_frame();
        let chk = |f: &[u8]| parse_ipv4_frame(f, f.len()).unwrap_err();
        assert_eq!(chk(&f[..13]), DropReason::Runt);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(chk(&arp), DropReason::NotIpv4);
        // A tag no VLAN sub-interface took off.
        for tpid in [[0x81, 0x00], [0x88, 0xa8]] {
            let mut tagged = f[..12].to_vec();
            tagged.extend(tpid);
            tagged.extend([0, 10]);
            tagged.extend(&f[12..]);
            assert_eq!(chk(&tagged), DropReason::VlanUnknown);
        }
        assert_eq!(chk(&f[..14 + 19]), DropReason::Ipv4Truncated);
        let mut v = f.clone();
        v[14] = 0x65;
        refix(&mut v);
        assert_eq!(chk(&v), DropReason::Ipv4BadVersion);
        let mut ihl = f.clone();
        ihl[14] = 0x44;
        assert_eq!(chk(&ihl), DropReason::Ipv4BadIhl);
        let mut ihl_big = f.clone();
        ihl_big[14] = 0x4f; // 60-byte header in a 50-byte frame
        assert_eq!(chk(&ihl_big), DropReason::Ipv4Truncated);
        let mut tl = f.clone();
        tl[16..18].copy_from_slice(&19u16.to_be_bytes());
        refix(&mut tl);
        assert_eq!(chk(&tl), DropReason::Ipv4BadLength);
        let mut tl2 = f.clone();
        tl2[16..18].copy_from_slice(&37u16.to_be_bytes());
        refix(&mut tl2);
        assert_eq!(chk(&tl2), DropReason::Ipv4Truncated);
        let mut ck = f.clone();
        ck[25] ^= 1;
        assert_eq!(chk(&ck), DropReason::Ipv4BadChecksum);
        // A header in the second segment of a multi-segment frame.
        assert_eq!(
            parse_ipv4_frame(&f[..20], f.len()).unwrap_err(),
            DropReason::MultiSeg
        );
    }

    #[test]
    fn icmp_and_fragments() {
        let mut f = udp_frame();
        f[23] = 1; // ICMP
        f[34..42].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]); // echo request id 0x1234
        refix(&mut f);
        let p = parse_ipv4_frame(&f, f.len()).unwrap();
        assert_eq!((p.src_port, p.dst_port, p.proto), (0x1234, 0x0800, 1));
        f[34] = 3; // destination unreachable: no query id
        let p = parse_ipv4_frame(&f, f.len()).unwrap();
        assert_eq!((p.src_port, p.dst_port), (0, 0x0300));

        let mut fr = udp_frame();
        fr[20..22].copy_from_slice(&0x2000u16.to_be_bytes()); // MF, offset 0: first fragment
        refix(&mut fr);
        let p = parse_ipv4_frame(&fr, fr.len()).unwrap();
        assert_eq!(p.flags, flags::PARSED | flags::IPV4 | flags::FRAG);
        assert_eq!((p.src_port, p.dst_port), (1234, 80));
        fr[20..22].copy_from_slice(&0x0001u16.to_be_bytes()); // offset 8 bytes
        refix(&mut fr);
        let p = parse_ipv4_frame(&fr, fr.len()).unwrap();
        assert_eq!(
            p.flags,
            flags::PARSED | flags::IPV4 | flags::FRAG | flags::FRAG_NONFIRST
        );
        assert_eq!((p.src_port, p.dst_port), (0, 0));
    }

    #[test]
    fn short_l4_gives_zero_ports_not_a_panic() {
        let mut f = udp_frame();
        f.truncate(36); // 2 bytes of UDP
        f[16..18].copy_from_slice(&22u16.to_be_bytes());
        refix(&mut f);
        let p = parse_ipv4_frame(&f, f.len()).unwrap();
        assert_eq!((p.src_port, p.dst_port), (0, 0));
        // Every truncation of a valid frame parses or fails with a reason, never panics.
        let g = udp_frame();
        for n in 0..g.len() {
            let _ = parse_ipv4_frame(&g[..n], n);
        }
    }
}
