//! The fast loop of a chain: forward after stages that parsed the packets and keep their
//! metadata ([`StageCtx::meta_valid`]: classify, NAT, policer before it). The packets were
//! validated by that parse (RFC 1812 5.2.2, header checksum) and NAT kept the metadata in
//! step with what it rewrote, so the common packet — IPv4 from the metadata, routed like the
//! one before it through a gateway (`memo`), unicast, TTL > 1, no bigger than the egress MTU —
//! needs its TTL and checksum word, its MACs and three metadata fields written, and no
//! lookup beyond the destination's tbl24 entry; a run of IPv6 frames goes through the IPv6
//! loop (`fast6`). Any other packet takes [`Forward::one`], as every packet of such a burst
//! did before this loop (and as [`Forward::general_path_only`] still makes every one do, for
//! tests).

use dpdk::fib::{FibView, RouteKey};
use dpdk::meta::flags;
use dpdk::{Mbuf, PktMeta};
use pollfwd_pipeline::{StageCtx, Verdict};

use super::fast::martian;
use super::multipath::GroupRun;
use super::{Forward, Memo, NO_HOP, fast6};
use crate::wire::{self, ether};

impl Forward {
    /// A burst with metadata: runs of packets on the memo's route through [`MetaRun`], the
    /// others through [`Forward::one`]. When every packet gets the same verdict, the whole
    /// burst gets it ([`StageCtx::verdict_all`]).
    #[inline(always)]
    pub(super) fn process_meta(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        memo: &mut Memo,
    ) {
        let n = verdicts.len().min(pkts.len());
        let mut first: Option<Verdict> = None;
        let mut same = true;
        let mut i = 0;
        // MSS clamping looks at TCP SYNs on the general path: with a clamp anywhere, every
        // packet goes there (one test per burst, not per packet).
        let runs = !self.mss_any;
        loop {
            if runs && memo.hop != NO_HOP {
                let fib = self.table.fib_view();
                let run = MetaRun {
                    fib: &fib,
                    key: fib.key(memo.hop),
                    macs: memo.macs,
                    frame_max: self.frame_max(memo.port),
                    port: memo.port,
                    hop: memo.hop as u16,
                };
                let k = run.forward(&mut pkts[i..n]);
                if k > 0 {
                    let v = Verdict::Tx(memo.port);
                    verdicts[i..i + k].fill(v);
                    same &= v == *first.get_or_insert(v);
                    i += k;
                }
            }
            if i >= n {
                break;
            }
            if runs && self.gmemo.hop != NO_HOP {
                // A run along the multipath route the group memo holds.
                let fib = self.table.fib_view();
                let mut run = GroupRun::new(self, &fib, &self.gmemo);
                let k = run.forward_meta(&mut pkts[i..n]);
                if k > 0 {
                    run.count(self.table.group(self.gmemo.group), self.worker);
                    let v = Verdict::Tx(self.gmemo.port);
                    verdicts[i..i + k].fill(v);
                    same &= v == *first.get_or_insert(v);
                    i += k;
                    continue;
                }
            }
            if runs && fast6::is_ipv6(pkts[i].data()) {
                // A run of IPv6 frames: the IPv6 loop (which writes no metadata, as the
                // general path writes none for IPv6). Not with MSS clamping: the loop takes
                // the ingress port from the burst, which a burst from a ring does not have.
                let (end, _, all) = self.fast6(ctx, pkts, verdicts, i, memo);
                match all {
                    Some(v) => same &= v == *first.get_or_insert(v),
                    None => same = false,
                }
                i = end;
                continue;
            }
            let v = self.one(ctx, pkts, i, memo);
            verdicts[i] = v;
            same &= v == *first.get_or_insert(v);
            i += 1;
        }
        if same && let Some(f) = first {
            ctx.verdict_all(f);
        }
    }
}

/// The memo's route, and what a packet on it gets.
struct MetaRun<'a, 'l> {
    fib: &'a FibView<'l>,
    key: RouteKey,
    macs: [u8; 12],
    frame_max: u32,
    port: u16,
    hop: u16,
}

impl MetaRun<'_, '_> {
    /// Forwards packets from the start of `pkts` while they take the fast path: what
    /// [`Forward::one`] does to a packet it routes through the memo (`pre`'s address checks
    /// from the metadata, `route`'s link-layer, TTL and MTU tests on the header, the TTL
    /// decremented with the checksum updated, the memo's MACs, the metadata's egress, next
    /// hop and `MODIFIED`). Returns how many.
    #[inline(always)]
    fn forward(&self, pkts: &mut [Mbuf]) -> usize {
        let mut i = 0;
        for m in pkts {
            let (d, meta) = m.data_and_meta_mut();
            if !parsed_untagged(meta) {
                break;
            }
            let Some(h) = d.first_chunk_mut::<{ wire::ipv4::WORDS_LEN }>() else {
                break;
            };
            let w = wire::ipv4::Words::load(h);
            if !takes_parsed(meta, h[0], &w, self.frame_max, (self.fib, self.key)) {
                break;
            }
            w.store_ttl_decremented(h);
            ether::Frame::new_unchecked(&mut h[..]).set_addrs(&self.macs);
            mark_forwarded(meta, self.port, self.hop);
            i += 1;
        }
        i
    }
}

/// Whether the metadata says IPv4 from the parse, the header right after an untagged Ethernet
/// header: what the chained loops read a packet as.
#[inline(always)]
pub(super) fn parsed_untagged(meta: &PktMeta) -> bool {
    meta.flags & (flags::PARSED | flags::IPV4) == flags::PARSED | flags::IPV4
        && meta.l3_off as usize == ether::HEADER_LEN
}

/// Whether a parsed packet ([`parsed_untagged`]; first byte `first`, header words `w`) takes a
/// chained loop along `route` (a FIB view and the route's key) out of a port of
/// `frame_max`-byte frames: `pre`'s address checks from the metadata, `route`'s link-layer,
/// TTL and MTU tests on the header.
#[inline(always)]
pub(super) fn takes_parsed(
    meta: &PktMeta,
    first: u8,
    w: &wire::ipv4::Words,
    frame_max: u32,
    (fib, key): (&FibView<'_>, RouteKey),
) -> bool {
    let (src, dst) = (meta.src_ip, meta.dst_ip);
    !(martian((src >> 24) as u8, (dst >> 24) as u8)
        || !fib.routes_to(dst, key)
        || ether::is_group(first)
        || w.ttl() <= 1
        || w.total_len() as u32 + ether::HEADER_LEN as u32 > frame_max)
}

/// What `route` writes in the metadata of a packet it forwards out of `port` along next hop
/// `hop`.
#[inline(always)]
pub(super) fn mark_forwarded(meta: &mut PktMeta, port: u16, hop: u16) {
    meta.out_port = port;
    meta.next_hop = hop;
    meta.flags |= flags::MODIFIED;
}
