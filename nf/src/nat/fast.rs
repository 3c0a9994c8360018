//! The common case in one pass: a plain UDP or TCP packet (IPv4 without options, not a
//! fragment, header checksum right, no martian address, TTL > 1) of an existing, live
//! session this worker owns, with no static-table purge pending. Such a packet takes
//! [`NatCore::fast`]: the header is read in four word loads ([`ipv4::Words`], as forward's
//! fast loop does), the session found with the hash the burst's prefetch pass computed, and
//! the addresses, ports and checksums rewritten with one delta (RFC 1624,
//! [`Delta`]: summed unfolded, folded once per checksum). Everything else (new
//! sessions, ICMP, fragments, hairpinning, packets for another worker, the packets any check
//! refuses) goes through [`NatCore::handle`], which gives the exact verdict and drop reason.
//!
//! The fast path is an optimisation, not a second definition of NAT: for every packet it
//! takes it leaves the frame, the metadata, the session and the counters exactly as `handle`
//! would (a differential test runs both on the same sequences: `tests.rs`,
//! `fast_path_matches_the_general_path`), and it changes nothing when it declines.

use dpdk::PktMeta;
use dpdk::meta::flags;
use pollfwd_pipeline::Verdict;

use super::pkt::{PROTO_TCP, PROTO_UDP};
use super::table::{key_hash, sflag};
use super::{DIR_IN, DIR_OUT, NatCore, aux};
use crate::forward::ipv4::{LIMITED_BROADCAST, bad_destination, bad_source};
use crate::wire::checksum::Delta;
use crate::wire::{ether, get16, ipv4, put16, tcp, udp};

/// Offset of the L4 header in a plain untagged IPv4 frame.
const L4: usize = ether::HEADER_LEN + ipv4::MIN_HEADER_LEN;
/// Offsets of the source and destination addresses and the header checksum in the frame.
const SRC: usize = ether::HEADER_LEN + ipv4::field::SRC.start;
const DST: usize = ether::HEADER_LEN + ipv4::field::DST.start;
const CSUM: usize = ether::HEADER_LEN + ipv4::field::CHECKSUM.start;
/// Offsets of the L4 checksums and TCP flags from the L4 header.
const UDP_CSUM: usize = udp::field::CHECKSUM.start;
const TCP_CSUM: usize = tcp::field::CHECKSUM.start;
const TCP_FLAGS: usize = tcp::field::FLAGS;
/// Bytes of L4 header the fast path needs: UDP's 8, TCP's 20.
const UDP_MIN: usize = 8;
const TCP_MIN: usize = 20;

impl NatCore {
    /// Translates `f` if it is the common case (module doc); `hash`: the flow key's hash if
    /// the burst's prefetch pass computed it ([`NatCore::prefetch_index`]). `None`: not taken,
    /// nothing changed or counted; [`NatCore::handle`] decides.
    #[inline]
    pub fn fast(&mut self, f: &mut [u8], meta: &mut PktMeta, hash: Option<u64>) -> Option<Verdict> {
        // A packet handed over by another NAT worker is this worker's; hairpinning and retried
        // fragments are not the common case.
        if meta.aux & !aux::HANDED != 0 || self.purge_next.is_some() {
            return None;
        }
        let d = *self.dir.get(meta.in_port as usize)?;
        if d != DIR_IN && d != DIR_OUT {
            return None;
        }
        let frame_len = f.len();
        let h: &[u8; ipv4::WORDS_LEN] = f.get(..ipv4::WORDS_LEN)?.try_into().ok()?;
        let w = ipv4::Words::load(h);
        let proto = w.protocol();
        // Bytes 20..22 of the frame: flags and fragment offset; only DF may be set.
        let frag = ((w.q14 >> 48) as u16).swap_bytes() & 0x3fff;
        let need = match proto {
            PROTO_UDP => UDP_MIN,
            PROTO_TCP => TCP_MIN,
            _ => return None,
        };
        let total = ((w.q14 >> 16) as u16).swap_bytes() as usize;
        if !w.is_plain(frame_len)
            || frag != 0
            || total < ipv4::MIN_HEADER_LEN + need
            || w.ttl() <= 1
        {
            return None;
        }
        let (src, dst) = (w.src(), w.dst());
        if bad_source(src) || dst == LIMITED_BROADCAST || bad_destination(dst) {
            return None;
        }
        let (sport, dport) = (get16(f, L4), get16(f, L4 + 2));
        let tflags = if proto == PROTO_TCP {
            f[L4 + TCP_FLAGS]
        } else {
            0
        };
        let inbound = d == DIR_OUT;
        // With several NAT workers, a packet whose session another worker owns is handed to it
        // by the general path (the owner as `handle` computes it for these packets).
        if self.multi && meta.aux & aux::HANDED == 0 {
            let owner = if inbound {
                self.outside_owner(proto, dst, dport)
            } else {
                Some(self.inside_owner(src))
            };
            if owner.is_some_and(|o| o != self.p.me) {
                return None;
            }
        }
        let si = if inbound {
            if !self.is_outside_addr(dst) {
                return None;
            }
            let h = hash.unwrap_or_else(|| key_hash(proto, dst, dport, src, sport, !self.seed));
            let s = &self.sess.s;
            self.o2i
                .find(h, |i| {
                    s[i as usize].is_outside(proto, dst, dport, src, sport)
                })?
                .1
        } else {
            if self.no_nat(dst) {
                return None;
            }
            let h = hash.unwrap_or_else(|| key_hash(proto, src, sport, dst, dport, self.seed));
            let s = &self.sess.s;
            self.i2o
                .find(h, |i| {
                    s[i as usize].is_inside(proto, src, sport, dst, dport)
                })?
                .1
        };
        if self.is_expired(si) {
            // `handle` deletes it and looks again.
            return None;
        }
        let s = self.sess.s[si as usize];
        if !inbound && s.flags & sflag::HAIRPIN != 0 {
            return None;
        }
        // The packet as its sender wrote it (what `handle`'s parse records).
        meta.l3_off = ether::HEADER_LEN as u16;
        meta.l4_off = L4 as u16;
        meta.proto = proto;
        if meta.flags & flags::NATTED == 0 {
            (meta.pre_src, meta.pre_dst) = (src, dst);
            (meta.pre_sport, meta.pre_dport) = (sport, dport);
        }
        // One address and one port change: the IP header checksum covers the address, the L4
        // checksum (pseudo-header) both.
        let (addr_off, port_off, old_a, new_a, old_p, new_p) = if inbound {
            (DST, L4 + 2, dst, s.in_addr, dport, s.in_port)
        } else {
            (SRC, L4, src, s.out_addr, sport, s.out_port)
        };
        let da = Delta::ZERO.addr(old_a, new_a);
        f[addr_off..addr_off + 4].copy_from_slice(&new_a.to_be_bytes());
        put16(f, CSUM, da.apply(get16(f, CSUM)));
        put16(f, port_off, new_p);
        let dl4 = da.word(old_p, new_p);
        if proto == PROTO_UDP {
            // RFC 768: zero means "no checksum" and stays zero; a computed zero is sent as
            // 0xffff.
            put16(f, L4 + UDP_CSUM, dl4.apply_udp(get16(f, L4 + UDP_CSUM)));
        } else {
            put16(f, L4 + TCP_CSUM, dl4.apply(get16(f, L4 + TCP_CSUM)));
        }
        self.touch(si, !inbound, tflags);
        if inbound {
            (meta.src_ip, meta.dst_ip) = (src, s.in_addr);
            (meta.src_port, meta.dst_port) = (sport, s.in_port);
            self.tally.out2in += 1;
        } else {
            (meta.src_ip, meta.dst_ip) = (s.out_addr, dst);
            (meta.src_port, meta.dst_port) = (s.out_port, dport);
            self.tally.in2out += 1;
        }
        meta.flags |= flags::PARSED | flags::IPV4 | flags::MODIFIED | flags::NATTED;
        Some(Verdict::Continue)
    }
}
