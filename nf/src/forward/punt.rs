//! The punt path: packets for the box that the stage does not answer itself go to the Linux
//! TAP interface of the interface they arrived on (docs/punt.md), where routing daemons (FRR's
//! bgpd, ospfd) and any other service bound to the box's addresses receive them.
//!
//! What is punted (when the receiving interface has a TAP): every IPv4 and IPv6 packet for
//! one of the box's addresses except ICMP / ICMPv6 echo requests (answered by the stage) and
//! neighbour discovery other than advertisements; UDP (instead of port unreachable), TCP,
//! other ICMP messages, OSPF and any other protocol; IPv4 multicast to 224.0.0.0/24 and IPv6
//! link-scope multicast (ff02::/16) that is not ICMPv6 (OSPF to 224.0.0.5/6 and ff02::5/6);
//! ARP replies and neighbour advertisements addressed to the box, after the stage learnt
//! from them (the kernel resolves its own peers). The frame goes unchanged (as received,
//! VLAN tags popped) as [`Verdict::Tx`] to the TAP's DPDK port: no copy, no allocation.
//!
//! Punting is rate-limited per worker (a token bucket, the worker's share of
//! [`PuntMap::rate_pps`] with [`PuntMap::burst`]); what is over the rate is dropped as
//! `for_us` and counted in `punt_rate_limited`. The check costs a few loads per packet, so a
//! flood to the box's addresses costs the data plane no more than any dropped packet.

use std::sync::{Arc, Mutex};

use dpdk::Mbuf;
use pollfwd_pipeline::counters::Counter;
use pollfwd_pipeline::{DropReason, StageCtx, Verdict};

use super::slow::Bucket;
use super::{Forward, FwdShared};
use crate::wire::{icmp, icmpv6, proto};

/// No TAP for this interface id.
const NONE: u16 = u16::MAX;

/// Which interfaces have a TAP, and the punt rate (built by the appliance once the TAPs are
/// created; a reload keeps it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PuntMap {
    /// DPDK port id of each interface id's TAP ([`u16::MAX`]: none).
    tap: Vec<u16>,
    /// Punted packets per second, all workers together.
    pub rate_pps: u32,
    /// Packets each worker may punt back to back before the rate applies.
    pub burst: u32,
}

impl PuntMap {
    /// A map from (interface id, TAP port id) pairs.
    pub fn new(taps: &[(u16, u16)], rate_pps: u32, burst: u32) -> PuntMap {
        let len = taps.iter().map(|&(i, _)| i as usize + 1).max().unwrap_or(0);
        let mut tap = vec![NONE; len];
        for &(i, p) in taps {
            tap[i as usize] = p;
        }
        PuntMap {
            tap,
            rate_pps,
            burst,
        }
    }

    /// The TAP port of interface `iface`, if it has one.
    #[inline]
    pub fn tap(&self, iface: u16) -> Option<u16> {
        self.tap.get(iface as usize).copied().filter(|&p| p != NONE)
    }

    /// Whether any interface has a TAP.
    pub fn is_empty(&self) -> bool {
        self.tap.iter().all(|&p| p == NONE)
    }
}

/// Punt counters of one worker's stage (single writer: that worker).
#[derive(Debug, Default)]
pub struct PuntStats {
    /// Packets handed to a TAP.
    pub punted: Counter,
    /// Packets for the box not punted because of the rate limit (dropped as `for_us`).
    pub punt_rate_limited: Counter,
    /// Packets that could not be punted for another reason (no TX queue on the TAP: counted
    /// by the runtime as `no_tx_queue`; here: a frame the stage could not read).
    pub punt_failed: Counter,
}

impl PuntStats {
    /// (name, value) of every counter, for listings.
    pub fn values(&self) -> [(&'static str, u64); 3] {
        [
            ("punted", self.punted.get()),
            ("punt_rate_limited", self.punt_rate_limited.get()),
            ("punt_failed", self.punt_failed.get()),
        ]
    }
}

/// The punt side of [`FwdShared`]: the map and the registry of per-worker counters.
#[derive(Debug, Default)]
pub(super) struct PuntShared {
    pub(super) map: Arc<PuntMap>,
    pub(super) stats: Mutex<Vec<(usize, Arc<PuntStats>)>>,
}

impl FwdShared {
    /// Turns punting on for the interfaces of `map` (the appliance, after creating the TAPs).
    pub fn set_punt(&mut self, map: PuntMap) {
        self.punt.map = Arc::new(map);
    }

    /// The punt map in force.
    pub fn punt_map(&self) -> Arc<PuntMap> {
        self.punt.map.clone()
    }

    /// Every worker's punt counters, with the worker index (control side).
    pub fn punt_stats(&self) -> Vec<(usize, Arc<PuntStats>)> {
        self.punt
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes over a predecessor's punt map and counters (a reload never creates TAPs).
    pub(super) fn inherit_punt(&mut self, old: &FwdShared) {
        self.punt.map = old.punt.map.clone();
        *self.punt.stats.lock().unwrap_or_else(|e| e.into_inner()) = old.punt_stats();
    }
}

/// One worker's punt state: its token bucket and counters.
pub(super) struct PuntWorker {
    bucket: Bucket,
    pub(super) stats: Arc<PuntStats>,
}

impl PuntWorker {
    /// Registers a worker's counters with `shared`.
    pub(super) fn new(shared: &FwdShared, worker: usize) -> PuntWorker {
        let stats = Arc::new(PuntStats::default());
        shared
            .punt
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((worker, stats.clone()));
        PuntWorker {
            bucket: Bucket::EMPTY,
            stats,
        }
    }

    /// A new configuration: the bucket restarts with its parameters.
    pub(super) fn reset(&mut self) {
        self.bucket.ready = false;
    }
}

impl Forward {
    /// The TAP of the interface `m` arrived on, when punting is on there.
    #[inline]
    pub(super) fn punt_tap(&self, m: &Mbuf) -> Option<u16> {
        self.shared.punt.map.tap(m.meta().in_port)
    }

    /// Hands `m` to `tap` if the rate allows; else it is dropped (`for_us`) and counted.
    #[cold]
    #[inline(never)]
    pub(super) fn punt_to(&mut self, ctx: &StageCtx<'_>, tap: u16) -> Verdict {
        let map = &self.shared.punt.map;
        let (rate, burst) = (map.rate_pps, map.burst);
        if self.punt.bucket.take(ctx, rate, burst) {
            self.punt.stats.punted.add(1);
            Verdict::Tx(tap)
        } else {
            self.punt.stats.punt_rate_limited.add(1);
            Verdict::Drop(DropReason::ForUs)
        }
    }

    /// An IPv4 packet for the box (`local`): punted unless it is an echo request the stage
    /// answers (`None`: the stage handles it as without punting).
    #[cold]
    #[inline(never)]
    pub(super) fn punt_local4(&mut self, ctx: &StageCtx<'_>, m: &Mbuf) -> Option<Verdict> {
        let tap = self.punt_tap(m)?;
        let meta = m.meta();
        if meta.proto == proto::ICMP && meta.flags & dpdk::meta::flags::FRAG == 0 {
            let l4 = meta.l4_off as usize;
            match m.data().get(l4) {
                Some(&icmp::msg::ECHO_REQUEST) => return None,
                Some(_) => {}
                None => {
                    self.punt.stats.punt_failed.add(1);
                    return None;
                }
            }
        }
        Some(self.punt_to(ctx, tap))
    }

    /// An IPv4 packet to a multicast group of the local network control block
    /// (224.0.0.0/24: OSPF, RIP, VRRP ...), on an interface with a TAP: punted. `None`: no
    /// TAP there, or not such a group.
    #[cold]
    #[inline(never)]
    pub(super) fn punt_mcast4(
        &mut self,
        ctx: &StageCtx<'_>,
        m: &Mbuf,
        dst: u32,
    ) -> Option<Verdict> {
        if dst & 0xffff_ff00 != 0xe000_0000 {
            return None;
        }
        let tap = self.punt_tap(m)?;
        Some(self.punt_to(ctx, tap))
    }

    /// An IPv6 packet for the box (`local6`, upper-layer protocol `upper`, its first byte
    /// `first`): punted unless it is an echo request or neighbour discovery other than an
    /// advertisement (`None`: the stage handles it as without punting).
    #[cold]
    #[inline(never)]
    pub(super) fn punt_local6(
        &mut self,
        ctx: &StageCtx<'_>,
        m: &Mbuf,
        upper: u8,
        first: Option<u8>,
    ) -> Option<Verdict> {
        let tap = self.punt_tap(m)?;
        if upper == proto::ICMPV6 {
            match first {
                Some(icmpv6::msg::ECHO_REQUEST) => return None,
                Some(icmpv6::msg::ROUTER_SOLICIT..=icmpv6::msg::REDIRECT) => return None,
                _ => {}
            }
        }
        Some(self.punt_to(ctx, tap))
    }

    /// An IPv6 packet to a link-scope group (ff02::/16) that is not ICMPv6 (OSPFv3 to
    /// ff02::5/6, RIPng, VRRP ...), on an interface with a TAP: punted. `None`: not punted.
    #[cold]
    #[inline(never)]
    pub(super) fn punt_mcast6(
        &mut self,
        ctx: &StageCtx<'_>,
        m: &Mbuf,
        dst: u128,
        upper: u8,
    ) -> Option<Verdict> {
        if (dst >> 112) as u16 != 0xff02 || upper == proto::ICMPV6 {
            return None;
        }
        let tap = self.punt_tap(m)?;
        Some(self.punt_to(ctx, tap))
    }

    /// An ARP reply or a neighbour advertisement addressed to the box, already learnt from:
    /// also given to the TAP (the kernel resolves its own peers). `otherwise` when not.
    #[cold]
    #[inline(never)]
    pub(super) fn punt_learnt(
        &mut self,
        ctx: &StageCtx<'_>,
        m: &Mbuf,
        otherwise: Verdict,
    ) -> Verdict {
        match self.punt_tap(m) {
            Some(tap) => self.punt_to(ctx, tap),
            None => otherwise,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_by_interface_id() {
        let m = PuntMap::new(&[(0, 3), (33, 4)], 1000, 10);
        assert_eq!(m.tap(0), Some(3));
        assert_eq!(m.tap(1), None);
        assert_eq!(m.tap(33), Some(4));
        assert_eq!(m.tap(200), None);
        assert!(!m.is_empty());
        assert!(PuntMap::default().is_empty());
    }
}
