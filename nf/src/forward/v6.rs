//! IPv6 in the forward stage (RFC 8200, RFC 4291, RFC 4443): validation (the wire module's
//! parser: header, payload length, extension-header chain), the address rules (multicast,
//! unspecified, loopback sources dropped; link-local destinations never forwarded, a
//! link-local source never forwarded beyond its link), the FIB lookup, local delivery (echo,
//! neighbour discovery, UDP port unreachable), hop limit and MTU (routers never fragment
//! IPv6: Packet Too Big), and the neighbour lookup with packets parked while neighbour
//! discovery resolves the next hop. ICMPv6 errors share the stage's rate limit (RFC 4443
//! 2.4(f)). Neighbour discovery itself: [`super::nd`].
//!
//! The IPv6 fast loop (`fast6`) forwards the plain packets of a burst without metadata and
//! hands every other IPv6 packet to this path, one at a time; with metadata (an earlier stage
//! read the packets) every IPv6 packet comes here. This path is the reference: the fast loop
//! gives the same output.

use dpdk::Mbuf;
use pollfwd_pipeline::{DropReason, StageCtx, Verdict};

use super::Forward;
use super::neigh::Lookup;
use super::park::{NextHop, set_macs};
use super::table6::Hop6;
use crate::wire::icmpv6::{self, msg};
use crate::wire::ipv4::Frag;
use crate::wire::ipv6::{self, Info};
use crate::wire::{ether, ndp, proto};

/// An ICMPv6 error the stage sends (RFC 4443).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmp6Error {
    /// Type 1 code 0: no route to destination.
    NoRoute,
    /// Type 1 code 2: beyond scope of source address (a link-local source to another link).
    BeyondScope,
    /// Type 1 code 3: address unreachable (neighbour discovery failed).
    AddressUnreachable,
    /// Type 1 code 4: port unreachable (UDP to the box).
    PortUnreachable,
    /// Type 2: packet too big, with the egress MTU.
    TooBig { mtu: u32 },
    /// Type 3 code 0: hop limit exceeded in transit.
    HopLimit,
}

impl Icmp6Error {
    fn type_code_param(self) -> (u8, u8, u32) {
        match self {
            Icmp6Error::NoRoute => (msg::DST_UNREACHABLE, 0, 0),
            Icmp6Error::BeyondScope => (msg::DST_UNREACHABLE, 2, 0),
            Icmp6Error::AddressUnreachable => (msg::DST_UNREACHABLE, 3, 0),
            Icmp6Error::PortUnreachable => (msg::DST_UNREACHABLE, 4, 0),
            Icmp6Error::TooBig { mtu } => (msg::PACKET_TOO_BIG, 0, mtu),
            Icmp6Error::HopLimit => (msg::TIME_EXCEEDED, 0, 0),
        }
    }
}

/// The IPv6 header's offset in the frames the stage sees (stages never see VLAN tags).
pub(super) const L3: usize = ether::HEADER_LEN;

impl Forward {
    /// An IPv6 frame: validated, then delivered locally, forwarded, or dropped with a reason.
    #[cold]
    #[inline(never)]
    pub(super) fn v6(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf) -> Verdict {
        if m.pkt_len() as usize != m.data().len() {
            return Verdict::Drop(DropReason::MultiSeg);
        }
        let info = match m.data().get(L3..).map(ipv6::validate) {
            Some(Ok(i)) => i,
            Some(Err(r)) => return Verdict::Drop(r),
            None => return Verdict::Drop(DropReason::Ipv6Truncated),
        };
        // RFC 4291 2.7 / 2.5.3: multicast and loopback are never sources on the wire; an
        // IPv4-mapped address is not either (RFC 4291 2.5.5.2).
        if ipv6::is_multicast(info.src)
            || ipv6::is_loopback(info.src)
            || ipv6::is_v4_mapped(info.src)
        {
            return Verdict::Drop(DropReason::Ipv6BadSource);
        }
        if ipv6::is_multicast(info.dst) {
            return self.v6_multicast(ctx, m, &info);
        }
        if ipv6::is_unspecified(info.dst)
            || ipv6::is_loopback(info.dst)
            || ipv6::is_v4_mapped(info.dst)
        {
            return Verdict::Drop(DropReason::Ipv6BadDest);
        }
        let in_port = m.meta().in_port;
        if ipv6::is_link_local(info.dst) {
            // Never routed (RFC 4291 2.5.6): the receiving interface's own, or not for us.
            return if self.shared.link_local(in_port) == Some(info.dst) {
                self.local6(ctx, m, &info)
            } else {
                Verdict::Drop(DropReason::Ipv6LinkLocal)
            };
        }
        let hop = self
            .table
            .v6()
            .and_then(|t| t.lookup(info.dst.to_be_bytes()));
        // A multipath route's member: counted once the packet passed the checks below.
        let mut path = None;
        let (port, gateway) = match hop {
            Some(Hop6::Forward { port, gateway }) => (port, gateway),
            Some(Hop6::Group(g)) => match self.pick6(m.data(), g) {
                Some((port, gateway, k)) => {
                    path = Some((g, k));
                    (port, gateway)
                }
                None => return Verdict::Drop(DropReason::Ipv6NoRoute),
            },
            Some(Hop6::Local) => return self.local6(ctx, m, &info),
            None => {
                self.icmp6_error(ctx, m, &info, Icmp6Error::NoRoute);
                return Verdict::Drop(DropReason::Ipv6NoRoute);
            }
        };
        // Neighbour discovery belongs to one link (RFC 4861: hop limit 255, which forwarding
        // would break): never routed. Stages before forward pass it untouched, as ARP, so
        // routing it would carry unmetered, unfiltered traffic past them.
        if ndp::is_nd(&info) {
            return Verdict::Drop(DropReason::NdNotRouted);
        }
        // A packet received as a link-layer broadcast or multicast is not forwarded (as RFC
        // 1812 5.3.4 says for IPv4).
        if m.data().first().is_some_and(|&b| ether::is_group(b)) {
            return Verdict::Drop(DropReason::L2Broadcast);
        }
        // RFC 4291 2.5.6: a link-local source must not leave its link (RFC 4443 3.1 code 2).
        if ipv6::is_link_local(info.src) {
            self.icmp6_error(ctx, m, &info, Icmp6Error::BeyondScope);
            return Verdict::Drop(DropReason::Ipv6LinkLocal);
        }
        // RFC 8200 3 / RFC 4443 3.3: hop limit 1 or 0 is not forwarded.
        if info.hop_limit <= 1 {
            self.icmp6_error(ctx, m, &info, Icmp6Error::HopLimit);
            return Verdict::Drop(DropReason::Ipv6HopLimit);
        }
        // RFC 8200 5: routers never fragment; too big -> Packet Too Big with the link MTU.
        let mtu = self
            .frame_max(port)
            .saturating_sub(ether::HEADER_LEN as u32);
        if (ipv6::HEADER_LEN + info.payload_len as usize) as u32 > mtu {
            self.icmp6_error(ctx, m, &info, Icmp6Error::TooBig { mtu });
            return Verdict::Drop(DropReason::Ipv6TooBig);
        }
        ipv6::Packet::new_unchecked(&mut m.data_mut()[L3..]).decrement_hop_limit();
        if let (Some((g, k)), Some(t6)) = (path, self.table.v6()) {
            t6.group(g).count(self.worker, k);
        }
        if self.mss_any {
            self.clamp_mss6(m, &info, port);
        }
        let nh = if gateway != 0 { gateway } else { info.dst };
        self.next_hop6(ctx, m, &info, nh, port)
    }

    /// ECMP: the member (port, gateway, and its index in the group) of IPv6 group `g` that
    /// the flow hash of the frame `d` picks; the caller counts it once the packet is sent on.
    #[inline]
    pub(super) fn pick6(&self, d: &[u8], g: u32) -> Option<(u16, u128, usize)> {
        let group = self.table.v6()?.group(g);
        let k = group.pick(super::ecmp::packet_hash6(
            d,
            L3,
            self.shared.params.ecmp_symmetric,
        ));
        let Hop6::Forward { port, gateway } = group.members[k] else {
            return None;
        };
        Some((port, gateway, k))
    }

    /// Sends a routed packet to its next hop `nh` out of `port`, or parks it while neighbour
    /// discovery resolves `nh`.
    fn next_hop6(
        &mut self,
        ctx: &mut StageCtx<'_>,
        m: &mut Mbuf,
        info: &Info,
        nh: u128,
        port: u16,
    ) -> Verdict {
        let key = NextHop::V6(nh);
        if self.parked_for(key)
            && let Some(v) = self.park(ctx, key, port)
        {
            return v;
        }
        let neigh = &self.shared.neigh6;
        let slot = match neigh.lookup(nh, ctx.now) {
            Lookup::Hit { mac, refresh, slot } => {
                if refresh && neigh.claim_request(slot, ctx.now) {
                    self.send_ns(ctx, port, nh, Some(mac));
                }
                let src = self.src_mac(port);
                set_macs(m.data_mut(), &mac, &src);
                return Verdict::Tx(port);
            }
            Lookup::Unresolved { failed: true, .. } => {
                self.icmp6_error(ctx, m, info, Icmp6Error::AddressUnreachable);
                return Verdict::Drop(DropReason::NeighborUnresolved);
            }
            Lookup::Unresolved { slot, .. } => slot,
            Lookup::Absent => match neigh.insert(nh, port, ctx.now) {
                Some(s) => s,
                None => {
                    self.stats.neigh_table_full.add(1);
                    return Verdict::Drop(DropReason::NeighborUnresolved);
                }
            },
        };
        self.ask6(ctx, slot, nh, port);
        self.park(ctx, key, port)
            .unwrap_or(Verdict::Drop(DropReason::NeighborUnresolved))
    }

    /// A packet to one of the box's addresses: ICMPv6 (echo, neighbour discovery), UDP (port
    /// unreachable), the rest consumed.
    fn local6(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf, info: &Info) -> Verdict {
        // The punt path (an interface with a Linux TAP): everything but echo requests and
        // neighbour discovery.
        let first = m.data().get(L3 + info.upper_off as usize).copied();
        if let Some(v) = self.punt_local6(ctx, m, info.upper, first) {
            return v;
        }
        if info.frag != Frag::No || info.has_frag_header {
            return Verdict::Drop(DropReason::ForUs);
        }
        match info.upper {
            proto::ICMPV6 => {
                let l4 = L3 + info.upper_off as usize;
                let end = L3 + ipv6::HEADER_LEN + info.payload_len as usize;
                let Some(body) = m.data().get(l4..end) else {
                    return Verdict::Drop(DropReason::Ipv6Truncated);
                };
                if !icmpv6::Packet::new_checked(body)
                    .is_some_and(|p| p.verify_checksum(info.src, info.dst))
                {
                    return Verdict::Drop(DropReason::Icmpv6BadChecksum);
                }
                match body.first().copied() {
                    Some(msg::ECHO_REQUEST) => self.echo6(ctx, m, info),
                    Some(msg::ROUTER_SOLICIT..=msg::REDIRECT) => self.nd(ctx, m, info),
                    _ => Verdict::Drop(DropReason::ForUs),
                }
            }
            // No UDP service listens on the box: port unreachable ends a traceroute6 aimed at
            // the box itself (RFC 4443 3.1 code 4).
            proto::UDP => {
                self.icmp6_error(ctx, m, info, Icmp6Error::PortUnreachable);
                Verdict::Drop(DropReason::ForUs)
            }
            _ => Verdict::Drop(DropReason::ForUs),
        }
    }

    /// Echo request to the box: answered in place out of the receiving port, from the
    /// address it was sent to (or, sent to a group, the interface's address of the
    /// requester's scope).
    fn echo6(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf, info: &Info) -> Verdict {
        let in_port = m.meta().in_port;
        let Some(mac) = self.shared.port(in_port).map(|p| p.mac) else {
            return Verdict::Drop(DropReason::ForUs);
        };
        let src = if ipv6::is_multicast(info.dst) {
            match self.shared.source6_for(in_port, info.src) {
                Some(a) => a,
                None => return Verdict::Drop(DropReason::ForUs),
            }
        } else {
            info.dst
        };
        let d = m.data_mut();
        let end = L3 + ipv6::HEADER_LEN + info.payload_len as usize;
        let Some(n) = icmpv6::echo_reply_in_place(&mut d[L3..end], src) else {
            return Verdict::Drop(DropReason::ForUs);
        };
        let mut e = ether::Frame::new_unchecked(&mut d[..]);
        let peer = e.src();
        e.set_dst(&peer);
        e.set_src(&mac);
        m.set_len((L3 + n) as u16);
        ctx.note_resized();
        self.stats.echo_replies_sent.add(1);
        Verdict::Tx(in_port)
    }

    /// A multicast destination: neighbour discovery to the box (all-nodes, all-routers, the
    /// solicited-node group of one of its addresses); anything else is not for the box, which
    /// neither routes multicast nor joins groups.
    fn v6_multicast(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf, info: &Info) -> Verdict {
        let in_port = m.meta().in_port;
        let ours = info.dst == ipv6::ALL_NODES
            || info.dst == ipv6::ALL_ROUTERS
            || (ipv6::is_solicited_node(info.dst)
                && self
                    .shared
                    .v6_addrs(in_port)
                    .any(|a| ipv6::solicited_node(a) == info.dst));
        if ours && info.upper == proto::ICMPV6 {
            return self.local6(ctx, m, info);
        }
        if let Some(v) = self.punt_mcast6(ctx, m, info.dst, info.upper) {
            return v;
        }
        Verdict::Drop(DropReason::Ipv6Multicast)
    }

    /// MSS clamping for an IPv6 TCP SYN or SYN-ACK routed out of `port` (like IPv4's:
    /// `wire::rewrite::syn_mss`).
    fn clamp_mss6(&mut self, m: &mut Mbuf, info: &Info, port: u16) {
        let max = self.mss_for(m.meta().in_port, port);
        if max == 0 || info.upper != proto::TCP || info.frag == Frag::NonFirst {
            return;
        }
        let l4 = L3 + info.upper_off as usize;
        let end = L3 + ipv6::HEADER_LEN + info.payload_len as usize;
        if let Some(mut t) = m
            .data_mut()
            .get_mut(l4..end)
            .and_then(crate::wire::tcp::Packet::new_checked)
            && t.flags() & crate::wire::tcp::flag::SYN != 0
            && t.clamp_mss(max).is_some()
        {
            self.stats.mss_clamped.add(1);
        }
    }

    /// Sends an ICMPv6 error about `m` back out of its ingress port when RFC 4443 2.4 allows
    /// one and the rate limit has a token: never about an ICMPv6 error, a packet to a
    /// multicast or link-layer group address (Packet Too Big excepted, which the box never
    /// needs for multicast), or from an unspecified or multicast source. The source is the
    /// receiving interface's address of the offending packet's scope (RFC 4443 2.2).
    pub(super) fn icmp6_error(
        &mut self,
        ctx: &mut StageCtx<'_>,
        m: &Mbuf,
        info: &Info,
        kind: Icmp6Error,
    ) -> bool {
        let d = m.data();
        if ipv6::is_unspecified(info.src) || ipv6::is_multicast(info.src) {
            return false;
        }
        if ipv6::is_multicast(info.dst) || d.first().is_none_or(|&b| ether::is_group(b)) {
            return false;
        }
        if info.upper == proto::ICMPV6
            && info.frag != Frag::NonFirst
            && d.get(L3 + info.upper_off as usize)
                .is_none_or(|&t| icmpv6::is_error(t))
        {
            return false;
        }
        let in_port = m.meta().in_port;
        let Some(src) = self.shared.source6_for(in_port, info.src) else {
            return false;
        };
        let Some(pi) = self.shared.port(in_port).copied() else {
            return false;
        };
        let p = self.shared.params;
        if !self.bucket.take(ctx, p.icmp_errors_per_s, p.icmp_burst) {
            self.stats.icmp_rate_limited.add(1);
            return false;
        }
        let Some(mut e) = ctx.pool.alloc() else {
            self.stats.alloc_failed.add(1);
            return false;
        };
        if !e.set_len((ether::HEADER_LEN + ipv6::MIN_MTU) as u16) {
            return false;
        }
        let (ty, code, param) = kind.type_code_param();
        let end = (L3 + ipv6::HEADER_LEN + info.payload_len as usize).min(d.len());
        let out = e.data_mut();
        let frame_src = ether::Frame::new_unchecked(d).src();
        let n = icmpv6::write_error(&mut out[L3..], src, info.src, ty, code, param, &d[L3..end]);
        let mut eth = ether::Frame::new_unchecked(&mut out[..]);
        eth.set_dst(&frame_src);
        eth.set_src(&pi.mac);
        eth.set_ethertype(ether::EtherType::Ipv6);
        e.set_len((L3 + n) as u16);
        self.stats.icmp_errors_sent.add(1);
        if matches!(kind, Icmp6Error::TooBig { .. }) {
            self.stats.too_big_sent.add(1);
        }
        ctx.send(e, in_port);
        true
    }
}
