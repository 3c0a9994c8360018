//! The general path, one packet at a time: validation (the metadata's parse, or the shared
//! parser), martian checks, the route lookup and the route memo, the neighbour lookup, the TTL
//! and MAC rewrite, and the packets not forwarded: local delivery (ICMP echo, UDP port
//! unreachable), ICMP errors (rate-limited by a token bucket) and drops with their reason.

use dpdk::meta::flags;
use dpdk::{Mbuf, PktMeta};
use pollfwd_pipeline::{DropReason, StageCtx, Verdict};

use super::icmp::{self, IcmpError};
use super::neigh::Lookup;
use super::park::NextHop;
use super::table::Hop;
use super::{Forward, Memo, NO_HOP, frag, ipv4};
use crate::parse;
use crate::wire::{self, ether, proto};

/// Result of the per-packet classification before the route lookup.
pub(super) enum Pre {
    Done(Verdict),
    /// Destination address and L3 offset.
    Lookup(u32, u16),
}

/// Token bucket for ICMP errors: `cost` ticks per message, at most `cap` ticks banked.
pub(super) struct Bucket {
    pub(super) tokens: u64,
    pub(super) last: u64,
    pub(super) cost: u64,
    pub(super) cap: u64,
    pub(super) ready: bool,
}

impl Bucket {
    pub(super) const EMPTY: Bucket = Bucket {
        tokens: 0,
        last: 0,
        cost: 1,
        cap: 1,
        ready: false,
    };

    /// Takes one message's tokens if there are enough.
    pub(super) fn take(&mut self, ctx: &StageCtx<'_>, rate: u32, burst: u32) -> bool {
        if self.can_take(ctx, rate, burst) {
            self.tokens -= self.cost;
            true
        } else {
            false
        }
    }

    /// Whether one message's tokens are there now (refilled; nothing taken).
    pub(super) fn can_take(&mut self, ctx: &StageCtx<'_>, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return false;
        }
        if !self.ready {
            // Each worker gets an equal share of the rate; the burst is per worker too.
            let per = (rate as u64).div_ceil(ctx.workers.max(1) as u64);
            self.cost = (ctx.tsc_hz / per).max(1);
            self.cap = self.cost * burst.max(1) as u64;
            self.tokens = self.cap;
            self.last = ctx.now;
            self.ready = true;
        }
        let add = ctx.now.saturating_sub(self.last);
        self.last = ctx.now;
        self.tokens = (self.tokens.saturating_add(add)).min(self.cap);
        self.tokens >= self.cost
    }
}

impl Forward {
    /// One packet the general way: validate (the metadata's parse when there is one),
    /// look the destination up, route.
    #[inline(always)]
    pub(super) fn one(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        i: usize,
        memo: &mut Memo,
    ) -> Verdict {
        if !ctx.meta_valid {
            fill_meta(ctx, &mut pkts[i]);
        }
        match self.pre(ctx, &mut pkts[i]) {
            Pre::Done(v) => {
                // ARP changed a neighbour: the packets after this one look it up again.
                if std::mem::take(&mut self.memo_stale) {
                    *memo = Memo::EMPTY;
                    self.gmemo = super::multipath::GroupMemo::EMPTY;
                    self.memo6 = super::fast6::Memo6::EMPTY;
                }
                v
            }
            Pre::Lookup(dst, l3) => {
                let hop = self.table.lookup_one(dst);
                self.route(ctx, pkts, i, (hop, dst, l3 as usize), memo)
            }
        }
    }

    /// Validation and local checks before the route lookup.
    #[inline(always)]
    pub(super) fn pre(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf) -> Pre {
        let meta = m.meta();
        let (src, dst, l3) =
            if meta.flags & (flags::PARSED | flags::IPV4) == flags::PARSED | flags::IPV4 {
                (meta.src_ip, meta.dst_ip, meta.l3_off)
            } else {
                let d = m.data();
                match ether::Frame::new_checked(d).map(|e| e.ethertype()) {
                    Ok(ether::EtherType::Arp) => return Pre::Done(self.arp(ctx, m)),
                    Ok(ether::EtherType::Ipv6) => return Pre::Done(self.v6(ctx, m)),
                    _ => {}
                }
                match parse::parse_ipv4_frame(d, m.pkt_len() as usize) {
                    Ok(p) => {
                        p.write(m.meta_mut());
                        (p.src_ip, p.dst_ip, p.l3_off)
                    }
                    Err(r) => return Pre::Done(Verdict::Drop(r)),
                }
            };
        if ipv4::bad_source(src) {
            return Pre::Done(Verdict::Drop(DropReason::Ipv4BadSource));
        }
        if ipv4::bad_destination(dst) {
            if let Some(v) = self.punt_mcast4(ctx, m, dst) {
                return Pre::Done(v);
            }
            return Pre::Done(Verdict::Drop(DropReason::Ipv4BadDest));
        }
        if dst == ipv4::LIMITED_BROADCAST {
            return Pre::Done(Verdict::Drop(DropReason::ForUs));
        }
        Pre::Lookup(dst, l3)
    }

    /// Routes `pkts[i]` (next-hop id `hop_id` from the lookup of `dst`, IPv4 header at `l3`):
    /// the hot path is a forward along the same route as the burst's previous packet (`memo`:
    /// no hop table read, no neighbour lookup). Called by [`Forward::one`], which has filled
    /// in the metadata the slow paths (ICMP errors, local delivery) read.
    #[inline(always)]
    pub(super) fn route(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        i: usize,
        (hop_id, dst, l3): (u32, u32, usize),
        memo: &mut Memo,
    ) -> Verdict {
        // ECMP: the group and member this packet's flow hash picked.
        let mut path: Option<(u32, usize)> = None;
        let (port, nh) = if hop_id == memo.hop {
            (memo.port, memo.nh)
        } else {
            match self.table.hop(hop_id) {
                Some(Hop::Forward { port, gateway }) => {
                    (port, if gateway != 0 { gateway } else { dst })
                }
                Some(Hop::Group(g)) => {
                    let group = self.table.group(g);
                    let k = group.pick(super::ecmp::packet_hash4(
                        pkts[i].data(),
                        l3,
                        self.shared.params.ecmp_symmetric,
                    ));
                    let Hop::Forward { port, gateway } = group.members[k] else {
                        return self.not_forwarded(ctx, &mut pkts[i], None);
                    };
                    path = Some((g, k));
                    (port, if gateway != 0 { gateway } else { dst })
                }
                hop => return self.not_forwarded(ctx, &mut pkts[i], hop),
            }
        };
        let d = pkts[i].data_mut();
        // RFC 1812 5.3.4: a packet received as a link-layer broadcast or multicast is not
        // forwarded (it was meant for the link, and every router on it would forward it).
        if d.first().is_some_and(|&b| ether::is_group(b)) {
            return Verdict::Drop(DropReason::L2Broadcast);
        }
        // The parser checked that the header is in the first segment; `get` keeps a bad
        // offset from another stage a drop, not a panic.
        let Some(hdr) = d.get_mut(l3..l3 + wire::ipv4::MIN_HEADER_LEN) else {
            return Verdict::Drop(DropReason::Ipv4Truncated);
        };
        // RFC 1812 5.3.1: a router that would forward a datagram whose TTL is 1 or 0 discards
        // it and sends time exceeded.
        let mut ip = wire::ipv4::Packet::new_unchecked(hdr);
        if ip.ttl() <= 1 {
            return self.ttl_expired(ctx, &pkts[i]);
        }
        // RFC 1191 / RFC 1812 5.2.6: a datagram bigger than the egress MTU is refused with
        // "fragmentation needed" if DF is set (quoted as received), else fragmented below.
        let mtu = self
            .frame_max(port)
            .saturating_sub(ether::HEADER_LEN as u32);
        let oversize = ip.total_len() as u32 > mtu;
        if oversize && ip.dont_frag() {
            return self.frag_needed(ctx, &pkts[i], mtu);
        }
        ip.decrement_ttl();
        // MSS clamping before the packet can be parked for ARP or cut into fragments.
        if self.mss_any {
            self.clamp_mss(&mut pkts[i], l3, port);
        }
        if let Some((g, k)) = path {
            self.table.group(g).count(self.worker, k);
        }
        if memo.nh == nh && memo.port == port {
            ether::Frame::new_unchecked(pkts[i].data_mut()).set_addrs(&memo.macs);
        } else {
            if let Err(v) = self.next_hop(ctx, pkts, i, nh, port, memo) {
                return v;
            }
            ether::Frame::new_unchecked(pkts[i].data_mut()).set_addrs(&memo.macs);
        }
        // A multipath route: the fast loops take its later packets to this member
        // (`multipath`), while the memo holds its MACs. Not while packets are parked, and
        // only for a member with a gateway (an on-link member's next hop is each
        // destination: the route memo's rule).
        if let Some((g, k)) = path
            && nh != dst
            && memo.nh == nh
            && memo.port == port
            && self.held.is_empty()
            && self.adopting.is_empty()
        {
            self.gmemo.learn((hop_id, g), k, port, memo.macs, memo.born);
        }
        // A route through a gateway sends every packet to the same next hop: later packets
        // on it skip the hop table (a connected route's next hop is each destination, a
        // multipath route's the member of each packet's flow).
        memo.hop = if path.is_none() && nh != dst && memo.nh == nh && memo.port == port {
            hop_id
        } else {
            NO_HOP
        };
        if ctx.meta_valid {
            let meta = pkts[i].meta_mut();
            meta.out_port = port;
            meta.next_hop = hop_id as u16;
            meta.flags |= flags::MODIFIED;
        }
        if oversize {
            return self.fragment_tx(ctx, &mut pkts[i], port, mtu as usize);
        }
        Verdict::Tx(port)
    }

    /// MSS clamping of a packet routed out of `port` (IPv4 header at `l3`): a TCP SYN or
    /// SYN-ACK whose MSS option is above the smaller clamp of its ingress and egress ports
    /// gets it lowered, checksum updated (`wire::rewrite::syn_mss`), counted in
    /// `mss_clamped`. Anything else is left as it is.
    #[cold]
    #[inline(never)]
    pub(super) fn clamp_mss(&mut self, m: &mut Mbuf, l3: usize, port: u16) {
        let max = self.mss_for(m.meta().in_port, port);
        if max != 0 && wire::rewrite::syn_mss(m.data_mut(), l3, max).is_some() {
            self.stats.mss_clamped.add(1);
        }
    }

    /// DF set and bigger than the egress MTU `mtu`: ICMP "fragmentation needed" carrying it
    /// (RFC 1191 section 4; rate-limited like every error), and the datagram is dropped.
    #[cold]
    #[inline(never)]
    pub(super) fn frag_needed(&mut self, ctx: &mut StageCtx<'_>, m: &Mbuf, mtu: u32) -> Verdict {
        let mtu = mtu.min(u16::MAX as u32) as u16;
        if self.icmp_error(ctx, m, IcmpError::FragNeeded { mtu }, None) {
            self.stats.frag_needed_sent.add(1);
        }
        Verdict::Drop(DropReason::FragNeeded)
    }

    /// Sends `m` (routed: TTL decremented, Ethernet header written for `port`), bigger than
    /// the egress MTU with DF clear, as fragments: the verdict for `m`, cut to the first
    /// fragment, or its drop.
    #[cold]
    #[inline(never)]
    pub(super) fn fragment_tx(
        &mut self,
        ctx: &mut StageCtx<'_>,
        m: &mut Mbuf,
        port: u16,
        mtu: usize,
    ) -> Verdict {
        match self.fragment(ctx, m, port, mtu) {
            Ok(()) => Verdict::Tx(port),
            Err(r) => Verdict::Drop(r),
        }
    }

    /// Cuts `m` into fragments of at most `mtu` bytes ([`frag`], RFC 791 / RFC 1812 5.2.6):
    /// fragments 2..N are copied into fresh single-segment mbufs and sent out of `port` with
    /// [`StageCtx::send`] (originated packets), then `m` itself is cut, in place, to the first
    /// fragment, which the caller sends. Counted in `fragmented` and `fragments_sent`. On an
    /// error `m` is to be dropped with the reason (fragments already sent stay sent and
    /// counted: the receiver's reassembly times out).
    pub(super) fn fragment(
        &mut self,
        ctx: &mut StageCtx<'_>,
        m: &mut Mbuf,
        port: u16,
        mtu: usize,
    ) -> Result<(), DropReason> {
        let pool = ctx.pool;
        let mut sent = 0;
        let r = frag::fragment_mbuf(m, mtu, &pool, |f| {
            sent += 1;
            ctx.send(f, port);
        });
        self.stats.fragments_sent.add(sent);
        match r {
            Ok(1) => Ok(()),
            Ok(n) => {
                ctx.note_resized();
                self.stats.fragments_sent.add(1);
                self.stats.fragmented.add(1);
                debug_assert_eq!(n as u64, sent + 1);
                Ok(())
            }
            Err(e) => {
                if e == DropReason::FragNoMbuf {
                    self.stats.alloc_failed.add(1);
                }
                Err(e)
            }
        }
    }

    /// Local delivery, directed broadcast, or no route.
    #[cold]
    #[inline(never)]
    pub(super) fn not_forwarded(
        &mut self,
        ctx: &mut StageCtx<'_>,
        m: &mut Mbuf,
        hop: Option<Hop>,
    ) -> Verdict {
        match hop {
            Some(Hop::Local) => self.local(ctx, m),
            None => {
                self.icmp_error(ctx, m, IcmpError::NetUnreachable, None);
                Verdict::Drop(DropReason::NoRoute)
            }
            _ => Verdict::Drop(DropReason::ForUs),
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn ttl_expired(&mut self, ctx: &mut StageCtx<'_>, m: &Mbuf) -> Verdict {
        self.icmp_error(ctx, m, IcmpError::TtlExceeded, None);
        Verdict::Drop(DropReason::TtlExpired)
    }

    /// The burst's first packet to (`nh`, `port`): looks the neighbour up and fills `memo`
    /// with the Ethernet addresses to write; or parks / drops the packet (`Err(verdict)`).
    #[inline(never)]
    pub(super) fn next_hop(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        i: usize,
        nh: u32,
        port: u16,
        memo: &mut Memo,
    ) -> Result<(), Verdict> {
        // Packets to a next hop that still has parked packets on this worker queue up behind
        // them (released together, in order) rather than overtake them. Such a next hop is
        // never memoised, so every packet to it comes through here.
        if self.parked_for(NextHop::V4(nh))
            && let Some(v) = self.park(ctx, NextHop::V4(nh), port)
        {
            return Err(v);
        }
        match self.shared.neigh.lookup(nh, ctx.now) {
            Lookup::Hit { mac, refresh, slot } => {
                if refresh && self.shared.neigh.claim_request(slot, ctx.now) {
                    self.send_arp_request(ctx, port, nh, Some(mac));
                }
                let src = self.src_mac(port);
                memo.macs[..6].copy_from_slice(&mac);
                memo.macs[6..].copy_from_slice(&src);
                memo.born = ctx.now;
                // Memoise only when nothing is parked (see above); otherwise make sure the
                // memo no longer claims these addresses for another next hop.
                (memo.nh, memo.port) = if self.held.is_empty() && self.adopting.is_empty() {
                    (nh, port)
                } else {
                    (0, u16::MAX)
                };
                Ok(())
            }
            miss => Err(self.resolve(ctx, pkts, i, nh, port, miss)),
        }
    }

    /// A packet to one of the appliance's addresses.
    #[cold]
    #[inline(never)]
    pub(super) fn local(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf) -> Verdict {
        // The punt path (an interface with a Linux TAP): everything but echo requests.
        if let Some(v) = self.punt_local4(ctx, m) {
            return v;
        }
        let meta = *m.meta();
        if meta.flags & flags::FRAG != 0 {
            return Verdict::Drop(DropReason::ForUs);
        }
        match meta.proto {
            proto::ICMP => {
                let Some(pi) = self.shared.port(meta.in_port).copied() else {
                    return Verdict::Drop(DropReason::ForUs);
                };
                if icmp::echo_reply_in_place(m.data_mut(), meta.l3_off as usize, pi.mac) {
                    self.stats.echo_replies_sent.add(1);
                    Verdict::Tx(meta.in_port)
                } else {
                    Verdict::Drop(DropReason::ForUs)
                }
            }
            // No UDP service listens on the appliance: port unreachable ends a traceroute
            // aimed at the appliance itself (RFC 1122 3.2.2.1).
            proto::UDP => {
                self.icmp_error(ctx, m, IcmpError::PortUnreachable, Some(meta.dst_ip));
                Verdict::Drop(DropReason::ForUs)
            }
            _ => Verdict::Drop(DropReason::ForUs),
        }
    }

    /// Sends an ICMP error about `m` back out of its ingress port, if RFC 1812 allows one and
    /// the rate limit has a token (returns whether it was sent). The source is the ingress interface's address (RFC 1812
    /// 4.3.2.4), or `from` for errors about datagrams addressed to the appliance itself (RFC
    /// 1122 3.2.2: the address the datagram was sent to).
    #[cold]
    #[inline(never)]
    pub(super) fn icmp_error(
        &mut self,
        ctx: &mut StageCtx<'_>,
        m: &Mbuf,
        kind: IcmpError,
        from: Option<u32>,
    ) -> bool {
        let l3 = m.meta().l3_off as usize;
        let in_port = m.meta().in_port;
        if !icmp::error_allowed(m.data(), l3) {
            return false;
        }
        let p = self.shared.params;
        if !self.bucket.take(ctx, p.icmp_errors_per_s, p.icmp_burst) {
            self.stats.icmp_rate_limited.add(1);
            return false;
        }
        let (Some(pi), Some(src)) = (
            self.shared.port(in_port).copied(),
            from.or_else(|| self.shared.source_for(in_port)),
        ) else {
            return false;
        };
        let Some(mut e) = ctx.pool.alloc() else {
            self.stats.alloc_failed.add(1);
            return false;
        };
        let max = (ether::HEADER_LEN + icmp::MAX_ERROR_DATAGRAM) as u16;
        if !e.set_len(max) {
            return false;
        }
        let ident = self.next_ident();
        let n = icmp::build_error(e.data_mut(), m.data(), l3, kind, pi.mac, src, ident);
        let meta = m.meta();
        if meta.flags & flags::NATTED != 0 {
            let o = icmp::Original {
                src: meta.pre_src,
                dst: meta.pre_dst,
                sport: meta.pre_sport,
                dport: meta.pre_dport,
            };
            icmp::restore_quote(e.data_mut(), n, o);
        }
        e.set_len(n as u16);
        self.stats.icmp_errors_sent.add(1);
        ctx.send(e, in_port);
        true
    }
}

/// Gives a packet the metadata the stage's slow paths read (ingress port, the parse) when the
/// runtime did not initialise it ([`StageCtx::meta_valid`] false: nothing else reads it).
#[cold]
#[inline(never)]
pub(super) fn fill_meta(ctx: &StageCtx<'_>, m: &mut Mbuf) {
    let mut meta = PktMeta::fresh(ctx.in_port.unwrap_or(u16::MAX), ctx.now);
    if let Ok(p) = parse::parse_ipv4_frame(m.data(), m.pkt_len() as usize) {
        p.write(&mut meta);
    }
    *m.meta_mut() = meta;
}
