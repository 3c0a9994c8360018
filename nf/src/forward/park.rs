//! ARP in the stage and the packets that wait for it: requests and replies received (learn
//! the sender, answer for the appliance's and proxy addresses), requests sent, and packets
//! parked (given [`Verdict::Held`]) until their next hop answers, released in order or freed
//! at their deadline.

use dpdk::Mbuf;
use pollfwd_pipeline::{DropReason, StageCtx, Verdict};

use super::arp;
use super::icmp::IcmpError;
use super::neigh::Lookup;
use super::v6::{Icmp6Error, L3};
use super::{ARP_BURST, Forward};
use crate::wire::{self, ether, ipv6};

/// A next hop being resolved: by ARP (IPv4) or neighbour discovery (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NextHop {
    V4(u32),
    V6(u128),
}

/// A packet parked while ARP or neighbour discovery resolves its next hop (already
/// TTL/hop-limit decremented).
pub(super) struct Held {
    pub(super) m: Mbuf,
    pub(super) nh: NextHop,
    pub(super) port: u16,
    pub(super) deadline: u64,
}

/// Where a packet given [`Verdict::Held`] waits until the runtime hands it over ([`pollfwd_pipeline::Stage::adopt`]).
pub(super) struct Parked {
    pub(super) nh: NextHop,
    pub(super) port: u16,
    pub(super) deadline: u64,
}

impl Forward {
    /// An ARP frame arrived: learn, answer, or drop it with a reason.
    #[cold]
    #[inline(never)]
    pub(super) fn arp(&mut self, ctx: &mut StageCtx<'_>, m: &mut Mbuf) -> Verdict {
        let in_port = m.meta().in_port;
        let Some(a) = arp::parse(m.data()) else {
            return Verdict::Drop(DropReason::ArpInvalid);
        };
        let Some(pi) = self.shared.port(in_port).copied() else {
            return Verdict::Drop(DropReason::ArpInvalid);
        };
        let for_us = self.answers_arp(in_port, a.tpa);
        let mut learned = false;
        // RFC 826 "Packet Reception": merge the sender into an existing entry; add it when we
        // are the target. Never learn our own addresses (a conflict) or 0.0.0.0 (RFC 5227
        // probes); learn only senders on the receiving port's connected subnet (an ARP frame on
        // another port never moves or rewrites a neighbour), and never rewrite a static one.
        if a.spa != 0 && !self.shared.is_own(a.spa) {
            let on_link = pi.subnet.is_some_and(|s| s.contains(a.spa));
            if !on_link || self.shared.neigh.is_static(a.spa) {
                self.stats.arp_not_learned.add(1);
            } else {
                let create = for_us && !a.is_gratuitous();
                if self
                    .shared
                    .neigh
                    .learn(a.spa, a.sha, in_port, ctx.now, create)
                {
                    self.stats.arp_learned.add(1);
                    learned = true;
                    self.memo_stale = true;
                }
            }
        }
        if a.op == wire::arp::op::REQUEST && for_us && !a.is_gratuitous() {
            arp::reply_in_place(m.data_mut(), &a, pi.mac);
            self.stats.arp_replies_sent.add(1);
            return Verdict::Tx(in_port);
        }
        // A reply (or request we do not answer) addressed to us was consumed; anything else is
        // irrelevant to the appliance (even if it refreshed an entry on the way).
        if learned && !self.held.is_empty() {
            self.release_due = true;
        }
        if for_us {
            // A reply to one of the interface's own addresses also goes to its TAP (the
            // punt path): the kernel resolves its own peers.
            if a.op == wire::arp::op::REPLY && pi.addr != 0 && pi.addr == a.tpa {
                return self.punt_learnt(ctx, m, Verdict::Drop(DropReason::ForUs));
            }
            Verdict::Drop(DropReason::ForUs)
        } else {
            Verdict::Drop(DropReason::ArpInvalid)
        }
    }

    /// Sends a request for `target` out of `port` (broadcast, or unicast to `dst` to refresh).
    pub(super) fn send_arp_request(
        &mut self,
        ctx: &mut StageCtx<'_>,
        port: u16,
        target: u32,
        dst: Option<[u8; 6]>,
    ) {
        let Some(pi) = self.shared.port(port).copied() else {
            return;
        };
        // The sender address: the port's own, else any of the appliance's (RFC 826 needs one;
        // 0.0.0.0 would make it an RFC 5227 probe that hosts do not learn from).
        let src = self.shared.source_for(port).unwrap_or(0);
        let Some(mut r) = ctx.pool.alloc() else {
            self.stats.alloc_failed.add(1);
            return;
        };
        if !r.set_len(arp::MIN_FRAME as u16) {
            return;
        }
        arp::build_request(
            r.data_mut(),
            pi.mac,
            src,
            target,
            dst.unwrap_or(ether::BROADCAST),
        );
        self.stats.arp_requests_sent.add(1);
        ctx.send(r, port);
    }

    /// Broadcasts a request for the unresolved `nh` (in `slot`) out of `port` when one is due
    /// and the ARP request rate allows it; a due request over the rate is counted.
    fn ask(&mut self, ctx: &mut StageCtx<'_>, slot: usize, nh: u32, port: u16) {
        let neigh = &self.shared.neigh;
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
            self.send_arp_request(ctx, port, nh, None);
        }
    }

    /// Parks `pkts[i]` until `nh` answers ARP (sending a request when one is due), or drops it.
    pub(super) fn resolve(
        &mut self,
        ctx: &mut StageCtx<'_>,
        pkts: &mut [Mbuf],
        i: usize,
        nh: u32,
        port: u16,
        miss: Lookup,
    ) -> Verdict {
        let neigh = &self.shared.neigh;
        let slot = match miss {
            // Learnt by another worker since the lookup: nothing to wait for.
            Lookup::Hit { mac, .. } => {
                let src = self.src_mac(port);
                set_macs(pkts[i].data_mut(), &mac, &src);
                pkts[i].meta_mut().out_port = port;
                return Verdict::Tx(port);
            }
            Lookup::Unresolved { failed: true, .. } => {
                // RFC 1812 4.3.3.1: the next hop did not answer ARP: host unreachable.
                self.icmp_error(ctx, &pkts[i], IcmpError::HostUnreachable, None);
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
        self.ask(ctx, slot, nh, port);
        self.park(ctx, NextHop::V4(nh), port)
            .unwrap_or(Verdict::Drop(DropReason::NeighborUnresolved))
    }

    /// Parks the packet being routed in the wait queue for `nh`: it gets [`Verdict::Held`]
    /// and the runtime hands it back through [`Stage::adopt`] once this burst is processed.
    /// `None` if the queue is full (the packet stays in the burst).
    pub(super) fn park(&mut self, ctx: &StageCtx<'_>, nh: NextHop, port: u16) -> Option<Verdict> {
        if self.held.len() + self.adopting.len() >= self.shared.params.arp_queue {
            return None;
        }
        self.adopting.push_back(Parked {
            nh,
            port,
            deadline: ctx.now + self.hold_ticks,
        });
        self.stats.held.add(1);
        Some(Verdict::Held)
    }

    /// Whether packets to `nh` are parked on this worker (waiting, or parked in this burst).
    #[inline]
    pub(super) fn parked_for(&self, nh: NextHop) -> bool {
        self.held.iter().any(|h| h.nh == nh) || self.adopting.iter().any(|p| p.nh == nh)
    }

    /// Sends parked packets whose next hop resolved, in arrival order; frees the ones past
    /// their deadline or whose neighbour failed, and re-asks for the others when due.
    pub(super) fn release(&mut self, ctx: &mut StageCtx<'_>) {
        let mut i = 0;
        while i < self.held.len() {
            let (nh, port, deadline) = {
                let h = &self.held[i];
                (h.nh, h.port, h.deadline)
            };
            let lookup = match nh {
                NextHop::V4(ip) => self.shared.neigh.lookup(ip, ctx.now),
                NextHop::V6(ip) => self.shared.neigh6.lookup(ip, ctx.now),
            };
            match lookup {
                Lookup::Hit { mac, .. } => {
                    let mut h = self.held.remove(i);
                    let src = self.src_mac(port);
                    set_macs(h.m.data_mut(), &mac, &src);
                    self.stats.released.add(1);
                    // Bigger than the egress MTU (IPv4 with DF clear: DF-set ones and IPv6
                    // were refused before parking): sent as fragments, like in `route`.
                    let max = self.frame_max(port);
                    if h.m.pkt_len() > max {
                        let mtu = (max as usize).saturating_sub(ether::HEADER_LEN);
                        if let Err(r) = self.fragment(ctx, &mut h.m, port, mtu) {
                            drop(h);
                            ctx.count_drop(r, 1);
                            continue;
                        }
                    }
                    ctx.send(h.m, port);
                    continue;
                }
                Lookup::Unresolved { failed, slot } if !failed && ctx.now < deadline => {
                    match nh {
                        NextHop::V4(ip) => self.ask(ctx, slot, ip, port),
                        NextHop::V6(ip) => self.ask6(ctx, slot, ip, port),
                    }
                    i += 1;
                }
                _ => {
                    let h = self.held.remove(i);
                    // The next hop never answered (RFC 1812 4.3.3.1, RFC 4443 3.1 code 3).
                    match nh {
                        NextHop::V4(_) => {
                            self.icmp_error(ctx, &h.m, IcmpError::HostUnreachable, None);
                        }
                        NextHop::V6(_) => {
                            if let Some(Ok(info)) = h.m.data().get(L3..).map(ipv6::validate) {
                                self.icmp6_error(ctx, &h.m, &info, Icmp6Error::AddressUnreachable);
                            }
                        }
                    }
                    drop(h);
                    self.stats.held_expired.add(1);
                    ctx.count_drop(DropReason::NeighborHeldExpired, 1);
                }
            }
        }
    }
}

/// Writes a frame's Ethernet destination and source addresses.
#[inline]
pub(super) fn set_macs(frame: &mut [u8], dst: &[u8; 6], src: &[u8; 6]) {
    let mut e = ether::Frame::new_unchecked(frame);
    e.set_dst(dst);
    e.set_src(src);
}
