//! The fast loop: a burst without metadata whose packets are plain IPv4, routed like the one
//! before them through a gateway, checked and rewritten in place from four loads of the header
//! ([`crate::wire::ipv4::Words`]); any other packet leaves the loop for [`Forward::one`].

use dpdk::Mbuf;
use dpdk::fib::{FibView, RouteKey};
use pollfwd_pipeline::vlan::TaggedRx;
use pollfwd_pipeline::{DropReason, StageCtx, Verdict};

use super::multipath::GroupRun;
use super::{Forward, Memo, NO_HOP, fast6, ipv4};
use crate::wire::{self, ether};

/// An 802.1Q tag's TPID and the IPv4 EtherType, as they sit in a frame.
const TPID: [u8; 2] = pollfwd_pipeline::vlan::TPID_8021Q.to_be_bytes();
const IPV4: [u8; 2] = ether::ethertype::IPV4.to_be_bytes();

impl Forward {
    /// A burst whose metadata nothing reads ([`StageCtx::meta_valid`] false: this stage
    /// alone, or after stages that do not read it). The common packet — a plain IPv4 frame
    /// (no options, good checksum, no martian address) routed like the packet before it
    /// through a gateway (`memo`), unicast, TTL > 1 — is checked and rewritten in place with a
    /// few loads and stores; any other packet takes [`Forward::one`], which explains it with
    /// its exact reason (and fills in the metadata its slow paths read).
    ///
    /// The fast loop keeps everything it needs in locals (the FIB's tbl24 pointer, the memo's
    /// route as a tbl24 entry to compare with, the MACs to write): stores to packet bytes
    /// would otherwise make the compiler reload them for every packet. It leaves the loop
    /// for a packet it cannot decide, and comes back with the memo that packet left.
    ///
    /// When every packet leaves on the same port, the whole burst gets that verdict
    /// ([`StageCtx::verdict_all`]), which spares the runtime a pass over the verdicts.
    #[inline(always)]
    pub(super) fn process_fast(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        memo: &mut Memo,
    ) {
        if let Some(tg) = ctx.tagged {
            self.process_trunk(ctx, tg, pkts, verdicts, memo);
            return;
        }
        let span = self.fast_span(ctx, pkts, verdicts, memo);
        if span.same
            && let Some(f) = span.first
        {
            ctx.verdict_all(f);
        }
        ctx.report_rx_bytes(span.rx_bytes);
    }

    /// A burst from a port with VLAN sub-interfaces, tags and all (see
    /// [`StageCtx::tagged`]): runs of frames from one VLAN to a tagged sub-interface keep
    /// their tags ([`Forward::tagged_run`]); the other frames get the runtime's receive work
    /// ([`TaggedRx::demux`]: tags popped, interface found; counted once a stretch) and go
    /// through [`Forward::fast_span`] in stretches of one interface, as a burst from that
    /// interface would.
    #[inline(never)]
    fn process_trunk(
        &mut self,
        ctx: &mut StageCtx<'_>,
        tg: TaggedRx<'_>,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        memo: &mut Memo,
    ) {
        let n = verdicts.len().min(pkts.len());
        let mut all = Span {
            first: None,
            same: true,
            rx_bytes: 0,
        };
        // Tags popped (the transmit bytes counted anew), or kept by runs (their bytes).
        let (mut popped, mut kept) = (false, 0u64);
        let port = ctx.in_port;
        let mut i = 0;
        while i < n {
            if let Some((k, bytes, parent)) = self.tagged_run(&tg, &mut pkts[i..n], memo) {
                verdicts[i..i + k].fill(Verdict::Tx(parent));
                all.merge(Span {
                    first: Some(Verdict::Tx(parent)),
                    same: true,
                    rx_bytes: bytes,
                });
                kept += 4 * k as u64;
                i += k;
                continue;
            }
            let len = pkts[i].pkt_len();
            let Some(id) = tg.demux(&mut pkts[i]) else {
                let v = Verdict::Drop(DropReason::VlanUnknown);
                verdicts[i] = v;
                all.merge(Span {
                    first: Some(v),
                    same: true,
                    rx_bytes: len as u64,
                });
                i += 1;
                continue;
            };
            // The frames after it on the same interface, up to one that could start a run
            // (one 802.1Q tag, IPv4 inside, unless the memo's egress is one no run takes).
            let runs = !self.mss_any && (memo.hop == NO_HOP || tg.egress_tag(memo.port).is_some());
            let mut bytes = pkts[i].pkt_len() as u64;
            popped |= bytes != len as u64;
            let mut j = i + 1;
            while j < n {
                let d = pkts[j].data();
                if runs && d.len() >= 18 && d[12..14] == TPID && d[16..18] == IPV4 {
                    break;
                }
                let len = pkts[j].pkt_len();
                if !tg.demux_as(&mut pkts[j], id) {
                    break;
                }
                bytes += pkts[j].pkt_len() as u64;
                popped |= pkts[j].pkt_len() != len;
                j += 1;
            }
            // The stretch's receive, counted once (nothing for the port's own traffic).
            tg.count_rx(id, (j - i) as u64, bytes);
            ctx.in_port = Some(id);
            let span = self.fast_span(ctx, &mut pkts[i..j], &mut verdicts[i..j], memo);
            ctx.in_port = port;
            all.merge(span);
            i = j;
        }
        if all.same
            && let Some(f) = all.first
        {
            ctx.verdict_all(f);
        }
        ctx.report_rx_bytes(all.rx_bytes);
        if popped {
            ctx.note_resized();
        } else if kept > 0 {
            ctx.note_grown(kept);
        }
    }

    #[inline(always)]
    fn fast_span(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        memo: &mut Memo,
    ) -> Span {
        let n = verdicts.len();
        // Fast packets get `Tx(memo.port)`: the burst stays uniform while every slow verdict,
        // and every memo port a later fast packet may use, equals the first verdict.
        let mut first = (memo.hop != NO_HOP).then_some(Verdict::Tx(memo.port));
        let mut same = true;
        // The burst's bytes as received, for the runtime (see `Stage::counts_rx_bytes`).
        let mut rx_bytes = 0u64;
        let mut i = 0;
        loop {
            {
                let fib = self.table.fib_view();
                let key = if memo.hop != NO_HOP {
                    fib.key(memo.hop)
                } else {
                    RouteKey::NONE
                };
                let macs = memo.macs;
                // Bigger frames leave for the slow path (fragmentation or "fragmentation
                // needed", RFC 1191 / RFC 1812 5.2.6): one compare per packet.
                let frame_max = self.frame_max(memo.port);
                // MSS clamping between this burst's ingress port and the memo's egress port:
                // TCP SYNs leave for the slow path, which clamps them. The run is compiled
                // twice: without a clamp, the loop is the one without the test (and the
                // variant with it is out of line).
                let clamp =
                    self.mss_any && self.mss_for(ctx.in_port.unwrap_or(u16::MAX), memo.port) != 0;
                let start = i;
                let run = Run {
                    fib: &fib,
                    key,
                    macs,
                    frame_max,
                };
                let (k, bytes) = if clamp {
                    run.forward_clamping(&mut pkts[i..n])
                } else {
                    run.forward::<false>(&mut pkts[i..n])
                };
                i += k;
                rx_bytes += bytes;
                // One store loop for the run's verdicts rather than one store in each round.
                verdicts[start..i].fill(Verdict::Tx(memo.port));
            }
            if i >= n {
                break;
            }
            if self.gmemo.hop != NO_HOP && !self.mss_any {
                // A run along the multipath route the group memo holds (with MSS clamping
                // configured, its SYNs would need the test: every packet takes the general
                // path then).
                let fib = self.table.fib_view();
                let mut run = GroupRun::new(self, &fib, &self.gmemo);
                let (k, bytes) = run.forward(&mut pkts[i..n]);
                if k > 0 {
                    run.count(self.table.group(self.gmemo.group), self.worker);
                    let v = Verdict::Tx(self.gmemo.port);
                    verdicts[i..i + k].fill(v);
                    same &= v == *first.get_or_insert(v);
                    rx_bytes += bytes;
                    i += k;
                    continue;
                }
            }
            if fast6::is_ipv6(pkts[i].data()) {
                // A run of IPv6 frames: the IPv6 loop (which counts their bytes).
                let (end, bytes, all) = self.fast6(ctx, pkts, verdicts, i, memo);
                rx_bytes += bytes;
                match all {
                    Some(v) => same &= v == *first.get_or_insert(v),
                    None => same = false,
                }
                if let Some(f) = first {
                    same &= memo.hop == NO_HOP || Verdict::Tx(memo.port) == f;
                }
                i = end;
                continue;
            }
            // Counted before the slow path can change the packet.
            rx_bytes += pkts[i].pkt_len() as u64;
            let v = self.one(ctx, pkts, i, memo);
            verdicts[i] = v;
            let f = *first.get_or_insert(v);
            same &= v == f && (memo.hop == NO_HOP || Verdict::Tx(memo.port) == f);
            i += 1;
        }
        Span {
            first,
            same,
            rx_bytes,
        }
    }

    /// The VLAN fast path: a run of frames from the start of `pkts` with one 802.1Q tag of a
    /// sub-interface (the same VLAN id as the first), routed like the memo to a sub-interface
    /// with one tag, forwarded with the tag kept and the L2 header rewritten in place (MACs
    /// and the egress tag: 16 bytes). Returns how many, their bytes with the tags
    /// popped (as the receive pass would count them), and the parent port they leave by;
    /// `None` if the first frame cannot start such a run. Counts the sub-interfaces' receive
    /// and transmit.
    #[inline(never)]
    fn tagged_run(
        &self,
        tg: &TaggedRx<'_>,
        pkts: &mut [Mbuf],
        memo: &Memo,
    ) -> Option<(usize, u64, u16)> {
        if memo.hop == NO_HOP || self.mss_any {
            return None;
        }
        let d = pkts.first()?.data();
        if d.len() < 18 || d[12..14] != TPID {
            return None;
        }
        let tci = u16::from_be_bytes([d[14], d[15]]) & 0xfff;
        let in_if = tg.iface(tci)?;
        let (parent, tag) = tg.egress_tag(memo.port)?;
        let fib = self.table.fib_view();
        let mut l2 = [0u8; 16];
        l2[..12].copy_from_slice(&memo.macs);
        l2[12..].copy_from_slice(&tag);
        let run = Run {
            fib: &fib,
            key: fib.key(memo.hop),
            macs: memo.macs,
            frame_max: self.frame_max(memo.port),
        };
        let want = u32::from_le_bytes([TPID[0], TPID[1], (tci >> 8) as u8, tci as u8]);
        let (k, bytes) = run.forward_tagged(pkts, want, l2);
        if k == 0 {
            return None;
        }
        let popped = bytes - 4 * k as u64;
        tg.count_rx(in_if, k as u64, popped);
        tg.count_tx(memo.port, k as u64, bytes);
        Some((k, popped, parent))
    }
}

/// What a stretch of a burst came to: the verdict every packet got if `same` (`first`: the
/// first verdict, or the memo's port that fast packets get), and the bytes as received.
struct Span {
    first: Option<Verdict>,
    same: bool,
    rx_bytes: u64,
}

impl Span {
    /// Adds the stretch after this one.
    #[inline]
    fn merge(&mut self, next: Span) {
        self.rx_bytes += next.rx_bytes;
        match next.first {
            Some(f) if next.same => self.same &= f == *self.first.get_or_insert(f),
            _ => self.same = false,
        }
    }
}

/// What the fast loop forwards a run of packets with: the memo's route and addresses.
struct Run<'a, 'l> {
    fib: &'a FibView<'l>,
    key: RouteKey,
    macs: [u8; 12],
    frame_max: u32,
}

impl Run<'_, '_> {
    /// [`Run::forward`] for MSS clamping, out of line: the loop without a clamp keeps its
    /// place and size in the stage's code.
    #[inline(never)]
    fn forward_clamping(&self, pkts: &mut [Mbuf]) -> (usize, u64) {
        self.forward::<true>(pkts)
    }

    /// Forwards packets from the start of `pkts` while they take the fast path; returns how
    /// many did and their bytes. `CLAMP`: TCP SYNs (MSS clamping) stop the run too.
    #[inline(always)]
    fn forward<const CLAMP: bool>(&self, pkts: &mut [Mbuf]) -> (usize, u64) {
        let mut i = 0;
        let mut rx_bytes = 0u64;
        for m in pkts {
            let pkt_len = m.pkt_len();
            let d = m.data_mut();
            let frame_len = (pkt_len as usize).max(d.len());
            let Some((h, l4)) = d.split_first_chunk_mut::<{ wire::ipv4::WORDS_LEN }>() else {
                break;
            };
            // Every field below comes from four loads of the header.
            let w = wire::ipv4::Words::load(h);
            if !takes_plain(
                h[0],
                &w,
                (pkt_len, frame_len),
                self.frame_max,
                (self.fib, self.key),
            ) || CLAMP && syn_or_short(&w, l4)
            {
                break;
            }
            w.store_ttl_decremented(h);
            ether::Frame::new_unchecked(&mut h[..]).set_addrs(&self.macs);
            rx_bytes += pkt_len as u64;
            i += 1;
        }
        (i, rx_bytes)
    }
}

impl Run<'_, '_> {
    /// [`Run::forward`] for frames with one 802.1Q tag: while a frame's tag is `want` (TPID
    /// and VLAN id as a little-endian word; priority and DEI bits ignored) and its packet
    /// takes the fast path, the TTL is decremented and `l2` (MACs, egress tag) written over
    /// the first 16 bytes.
    /// Returns how many and their bytes as received.
    #[inline(always)]
    fn forward_tagged(&self, pkts: &mut [Mbuf], want: u32, l2: [u8; 16]) -> (usize, u64) {
        let mut i = 0;
        let mut rx_bytes = 0u64;
        // The 16 bytes to write as two words.
        let lo = u64::from_le_bytes(l2[..8].try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(l2[8..].try_into().expect("8 bytes"));
        for m in pkts {
            let pkt_len = m.pkt_len();
            let d = m.data_mut();
            // At least 38 bytes (the chunk below), or the run stops there.
            let frame_len = (pkt_len as usize).max(d.len()).wrapping_sub(4);
            let Some((h, _)) = d.split_first_chunk_mut::<{ wire::ipv4::WORDS_LEN + 4 }>() else {
                break;
            };
            // TPID and TCI in one load (little-endian: the priority and DEI bits are bits
            // 20..24).
            let tag = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes"));
            // The IPv4 header after the tag, read as an untagged frame's would be.
            let (l2h, ip) = h.split_at_mut(4);
            let ip: &mut [u8; wire::ipv4::WORDS_LEN] = ip.try_into().expect("34 bytes");
            let w = wire::ipv4::Words::load(ip);
            if tag & 0xff0f_ffff != want
                || ether::is_group(l2h[0])
                || w.ttl() <= 1
                || martian(w.src_octet(), w.dst_octet())
                || !w.is_plain(frame_len)
                || pkt_len - 4 > self.frame_max
                || !self.fib.routes_to(w.dst(), self.key)
            {
                break;
            }
            w.store_ttl_decremented(ip);
            h[..8].copy_from_slice(&lo.to_le_bytes());
            h[8..16].copy_from_slice(&hi.to_le_bytes());
            rx_bytes += pkt_len as u64;
            i += 1;
        }
        (i, rx_bytes)
    }
}

/// Whether an untagged frame (first byte `first`, EtherType and IPv4 header in `w`, `pkt_len`
/// bytes, `frame_len` of them at hand) takes a fast loop along `route` (a FIB view and the
/// route's key) out of a port of `frame_max`-byte frames: unicast destination MAC, TTL > 1, no
/// martian (first octets), plain IPv4, no bigger than the egress takes, and the destination's
/// tbl24 entry is the route's.
#[inline(always)]
pub(super) fn takes_plain(
    first: u8,
    w: &wire::ipv4::Words,
    (pkt_len, frame_len): (u32, usize),
    frame_max: u32,
    (fib, key): (&FibView<'_>, RouteKey),
) -> bool {
    !(ether::is_group(first)
        || w.ttl() <= 1
        || martian(w.src_octet(), w.dst_octet())
        || !w.is_plain(frame_len)
        || pkt_len > frame_max
        || !fib.routes_to(w.dst(), key))
}

/// Whether a plain IPv4 packet (header in `w`, `l4` the bytes after its 20-byte header) is TCP
/// with SYN set, or too short to say: the packets MSS clamping looks at. A non-first
/// fragment may pass too (its first payload bytes are no TCP header); the slow path leaves it
/// alone.
#[inline(always)]
fn syn_or_short(w: &wire::ipv4::Words, l4: &[u8]) -> bool {
    w.protocol() == wire::proto::TCP
        && l4
            .get(wire::tcp::field::FLAGS)
            .is_none_or(|f| f & wire::tcp::flag::SYN != 0)
}

/// Whether a packet is not forwarded for its addresses (RFC 1812 5.3.7 martians, or the
/// limited broadcast, which is for the local link): [`Forward::pre`] says which.
#[inline(always)]
pub(super) fn martian(src_octet: u8, dst_octet: u8) -> bool {
    // Both checks look at the first octet only (the limited broadcast is in class E, which
    // is a bad destination too): one table read each.
    MARTIAN[src_octet as usize] & 1 | MARTIAN[dst_octet as usize] & 2 != 0
}

/// Per first octet, from the address-class functions: bit 0 set if [`ipv4::bad_source`], bit 1
/// if [`ipv4::bad_destination`] (an address with that octet and zeros after it; octet 255 holds
/// the limited broadcast).
static MARTIAN: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut a = 0;
    while a < 256 {
        let ip = (a as u32) << 24;
        t[a] = ipv4::bad_source(ip) as u8 | (ipv4::bad_destination(ip) as u8) << 1;
        a += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn martian_table_agrees_with_the_address_classes() {
        // Every first octet with a spread of the other bits, as source and as destination.
        for a in 0u32..256 {
            for rest in [0u32, 1, 0x00ff_ffff, 0x0012_3456, 0x00ff_fffe] {
                let ip = a << 24 | rest;
                let want_src = ipv4::bad_source(ip);
                let want_dst = ipv4::bad_destination(ip) || ip == ipv4::LIMITED_BROADCAST;
                let octet = (ip >> 24) as u8;
                assert_eq!(martian(octet, 10), want_src, "src {ip:#x}");
                assert_eq!(martian(10, octet), want_dst, "dst {ip:#x}");
            }
        }
    }
}
