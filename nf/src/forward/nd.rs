//! IPv6 neighbour discovery in the forward stage (RFC 4861): Neighbor Solicitations for the
//! box's addresses answered (unicast and solicited-node multicast, duplicate address
//! detection probes defended), senders learnt from solicitations and advertisements (only on
//! the receiving interface's link: a link-local or on-subnet source, RFC 4861 7.2.3/7.2.5,
//! static neighbours never rewritten), and solicitations sent for unresolved next hops
//! (multicast to the solicited-node group, rate-limited like ARP requests) or to refresh a
//! neighbour in use (unicast). The messages' validity rules (hop limit 255, code 0, options)
//! are the wire module's ([`crate::wire::ndp`]).

use dpdk::Mbuf;
use pollfwd_pipeline::{DropReason, StageCtx, Verdict};

use super::neigh::Lookup;
use super::v6::L3;
use super::{ARP_BURST, Forward};
use crate::wire::ipv6::{self, Info};
use crate::wire::{ether, ndp};

/// The solicitations and advertisements the stage sends: IPv6 header, message, one
/// link-layer address option.
const NS_PACKET: usize = ipv6::HEADER_LEN + ndp::NS_LEN + ndp::LL_OPT_LEN;
const NA_PACKET: usize = ipv6::HEADER_LEN + ndp::NA_LEN + ndp::LL_OPT_LEN;

impl Forward {
    /// A neighbour discovery message for the box (checksum verified by the caller).
    pub(super) fn nd(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf, info: &Info) -> Verdict {
        let in_port = m.meta().in_port;
        let msg = match ndp::validate(&m.data()[L3..], info) {
            Ok(x) => x,
            Err(r) => return Verdict::Drop(r),
        };
        let Some(pi) = self.shared.port(in_port).copied() else {
            return Verdict::Drop(DropReason::ForUs);
        };
        match msg {
            ndp::Message::NeighborSolicit {
                target,
                sll: source_mac,
            } => {
                if !self.shared.v6_addrs(in_port).any(|a| a == target) {
                    // Not one of this interface's addresses: no proxy neighbour discovery.
                    return Verdict::Drop(DropReason::ForUs);
                }
                let dad = ipv6::is_unspecified(info.src);
                if let Some(mac) = source_mac
                    && !dad
                {
                    self.learn6(ctx, in_port, info.src, mac, true, false, true);
                }
                // RFC 4861 7.2.4: a solicited advertisement to the sender (to all-nodes,
                // unsolicited, for a duplicate address detection probe).
                let (dst, dst_mac) = if dad {
                    (ipv6::ALL_NODES, ipv6::multicast_mac(ipv6::ALL_NODES))
                } else {
                    (
                        info.src,
                        source_mac.unwrap_or_else(|| ether::Frame::new_unchecked(m.data()).src()),
                    )
                };
                // The advertisement replaces the solicitation in its buffer.
                if !m.set_len((L3 + NA_PACKET) as u16) {
                    return Verdict::Drop(DropReason::ForUs);
                }
                let d = m.data_mut();
                let n = ndp::write_na(&mut d[L3..], target, dst, target, pi.mac, true, !dad, true);
                let mut e = ether::Frame::new_unchecked(&mut d[..]);
                e.set_dst(&dst_mac);
                e.set_src(&pi.mac);
                m.set_len((L3 + n) as u16);
                ctx.note_resized();
                self.stats.na_sent.add(1);
                Verdict::Tx(in_port)
            }
            ndp::Message::NeighborAdvert {
                target,
                tll: target_mac,
                solicited,
                override_,
                ..
            } => {
                // Without a target link-layer address option (Linux answers a unicast
                // solicitation that way) the advertisement confirms the address already
                // known; for an entry without one it is discarded (RFC 4861 7.2.5).
                let mac = target_mac.or_else(|| match self.shared.neigh6.lookup(target, ctx.now) {
                    Lookup::Hit { mac, .. } => Some(mac),
                    _ => None,
                });
                if let Some(mac) = mac {
                    self.learn6(ctx, in_port, target, mac, false, solicited, override_);
                }
                // Also to the interface's TAP (the punt path): the kernel resolves its own
                // peers.
                self.punt_learnt(ctx, m, Verdict::Drop(DropReason::ForUs))
            }
            // Answered where the interface advertises (`ra = true`, RFC 4861 6.2.6).
            ndp::Message::RouterSolicit { .. } => {
                self.ra_solicited(ctx, in_port);
                Verdict::Drop(DropReason::ForUs)
            }
            // Other routers' advertisements and redirects: a router ignores them (RFC 4861
            // 6.2.7, 8.1).
            _ => Verdict::Drop(DropReason::ForUs),
        }
    }

    /// Learns `ip` -> `mac` on `port` from neighbour discovery, only when `ip` is on the
    /// link of `port` (link-local, or in one of its subnets) and not one of the box's
    /// addresses or a static neighbour. `create`: a solicitation for us creates the entry,
    /// stale (RFC 4861 7.2.3, with `solicited` false and `override_` true); an advertisement
    /// only updates one (7.2.5), with its solicited and override flags.
    #[allow(clippy::too_many_arguments)]
    fn learn6(
        &mut self,
        ctx: &StageCtx<'_>,
        port: u16,
        ip: u128,
        mac: [u8; 6],
        create: bool,
        solicited: bool,
        override_: bool,
    ) {
        let on_link = ipv6::is_link_local(ip) || self.shared.on_link6(port, ip);
        let neigh = &self.shared.neigh6;
        if !on_link || self.shared.is_own6(ip) || neigh.is_static(ip) || ether::is_group(mac[0]) {
            self.stats.nd_not_learned.add(1);
            return;
        }
        // A solicitation creates the entry (RFC 4861 7.2.3) and records its address as an
        // unsolicited override would: stale, confirmed by a unicast solicitation when used.
        if create && neigh.find(ip).is_none() && neigh.insert(ip, port, ctx.now).is_none() {
            self.stats.neigh_table_full.add(1);
            return;
        }
        let learned = neigh.learn_na(ip, mac, port, ctx.now, solicited, override_);
        if learned {
            self.stats.nd_learned.add(1);
            self.memo_stale = true;
            if !self.held.is_empty() {
                self.release_due = true;
            }
        }
    }

    /// Sends a Neighbor Solicitation for `target` out of `port`: to its solicited-node group,
    /// or unicast to `dst` (a refresh), from the port's link-local address with its MAC.
    pub(super) fn send_ns(
        &mut self,
        ctx: &mut StageCtx<'_>,
        port: u16,
        target: u128,
        dst: Option<[u8; 6]>,
    ) {
        let (Some(pi), Some(src)) = (
            self.shared.port(port).copied(),
            self.shared.link_local(port),
        ) else {
            return;
        };
        let Some(mut r) = ctx.pool.alloc() else {
            self.stats.alloc_failed.add(1);
            return;
        };
        if !r.set_len((L3 + NS_PACKET) as u16) {
            return;
        }
        let (dst_ip, dst_mac) = match dst {
            Some(mac) => (target, mac),
            None => {
                let g = ipv6::solicited_node(target);
                (g, ipv6::multicast_mac(g))
            }
        };
        let d = r.data_mut();
        let n = ndp::write_ns(&mut d[L3..], src, dst_ip, target, Some(pi.mac));
        let mut e = ether::Frame::new_unchecked(&mut d[..]);
        e.set_dst(&dst_mac);
        e.set_src(&pi.mac);
        e.set_ethertype(ether::EtherType::Ipv6);
        r.set_len((L3 + n) as u16);
        self.stats.ns_sent.add(1);
        ctx.send(r, port);
    }

    /// Multicasts a solicitation for the unresolved `nh` (in `slot`) out of `port` when one
    /// is due and the request rate (`arp_requests_per_s`, shared with ARP) allows it.
    pub(super) fn ask6(&mut self, ctx: &mut StageCtx<'_>, slot: usize, nh: u128, port: u16) {
        let neigh = &self.shared.neigh6;
        if !neigh.request_due(slot, ctx.now) {
            return;
        }
        let rate = self.shared.params.arp_requests_per_s;
        if !self.arp_bucket.can_take(ctx, rate, ARP_BURST) {
            self.stats.arp_rate_limited.add(1);
            return;
        }
        if neigh.claim_request(slot, ctx.now) {
            self.arp_bucket.take(ctx, rate, ARP_BURST);
            self.send_ns(ctx, port, nh, None);
        }
    }
}
