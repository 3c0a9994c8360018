//! IPv6 router advertisements (RFC 4861 section 6.2) on the interfaces configured with
//! `ra = true`: the box as default router (lifetime 1800 s), the MTU, and a prefix
//! information option per address (on-link; autonomous for a /64, so hosts configure
//! addresses themselves, RFC 4862). Sent to all-nodes from the interface's link-local
//! address: the first three 16 s apart, then every 200 to 600 s (6.2.4), and in answer to a
//! router solicitation: at once, or 3 s after the last one when one went out in the last 3 s
//! (6.2.6: MIN_DELAY_BETWEEN_RAS).
//! Whichever worker first claims a port's clock (a compare-and-swap) sends; the others skip.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use pollfwd_pipeline::StageCtx;

use super::Forward;
use super::v6::L3;
use crate::wire::ether;
use crate::wire::ipv6;
use crate::wire::ndp::{self, Prefix, Ra};

/// Router lifetime advertised, seconds (RFC 4861 6.2.1 default: 3 x MaxRtrAdvInterval).
const ROUTER_LIFETIME_S: u16 = 1800;
/// Initial advertisements and their interval (RFC 4861 section 10).
const INITIAL_ADVERTS: u32 = 3;
const INITIAL_INTERVAL_S: u64 = 16;
/// The interval of later unsolicited advertisements, seconds.
const MIN_INTERVAL_S: u64 = 200;
const MAX_INTERVAL_S: u64 = 600;
/// Solicited advertisements: at most one per port in this time, seconds.
const MIN_DELAY_S: u64 = 3;
/// Prefix lifetimes, seconds (RFC 4861 6.2.1 defaults: 30 days valid, 7 days preferred).
const VALID_LIFETIME_S: u32 = 2_592_000;
const PREFERRED_LIFETIME_S: u32 = 604_800;

/// The prefix information options for an interface's addresses: one per distinct prefix.
pub(super) fn prefixes(addrs: &[(u128, u8)]) -> Vec<Prefix> {
    let mut v: Vec<Prefix> = Vec::new();
    for &(a, len) in addrs {
        let p = super::table6::Prefix6::new(a, len);
        if v.iter().any(|x| x.prefix == p.addr && x.len == len) {
            continue;
        }
        v.push(Prefix {
            prefix: p.addr,
            len,
            on_link: true,
            autonomous: len == 64,
            valid_lifetime: VALID_LIFETIME_S,
            preferred_lifetime: PREFERRED_LIFETIME_S,
        });
    }
    v
}

/// Per port id: when the next unsolicited advertisement is due and when the last one left
/// (TSC), and how many were sent.
pub(super) struct RaClock {
    next: Vec<AtomicU64>,
    last: Vec<AtomicU64>,
    sent: Vec<AtomicU32>,
}

impl RaClock {
    pub(super) fn new(ports: usize) -> RaClock {
        let z = |_| AtomicU64::new(0);
        RaClock {
            next: (0..ports).map(z).collect(),
            last: (0..ports).map(z).collect(),
            sent: (0..ports).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

impl Forward {
    /// Housekeeping: the unsolicited advertisements that are due.
    pub(super) fn ra_tick(&mut self, ctx: &mut StageCtx<'_>) {
        for port in 0..self.shared.ports6.len() {
            if self.shared.ports6[port].ra.is_none() {
                continue;
            }
            let clock = &self.shared.ra;
            let next = clock.next[port].load(Relaxed);
            if ctx.now < next {
                continue;
            }
            let n = clock.sent[port].load(Relaxed);
            let secs = if n < INITIAL_ADVERTS {
                INITIAL_INTERVAL_S
            } else {
                // A spread over the interval from the TSC's low bits (6.2.4: "uniformly
                // distributed"), so that routers on one link drift apart.
                MIN_INTERVAL_S + (ctx.now >> 4) % (MAX_INTERVAL_S - MIN_INTERVAL_S + 1)
            };
            let due = ctx.now + secs * ctx.tsc_hz;
            if clock.next[port]
                .compare_exchange(next, due, Relaxed, Relaxed)
                .is_ok()
            {
                clock.sent[port].fetch_add(1, Relaxed);
                clock.last[port].store(ctx.now, Relaxed);
                self.send_ra(ctx, port as u16);
            }
        }
    }

    /// A router solicitation on `port`: an advertisement to all-nodes now, or, when one left
    /// in the last [`MIN_DELAY_S`], the next one brought forward to [`MIN_DELAY_S`] after it
    /// (RFC 4861 6.2.6), so that a host soliciting just after an advertisement it missed (its
    /// link was coming up) still hears one within seconds, not at the next 16 s tick.
    pub(super) fn ra_solicited(&mut self, ctx: &mut StageCtx<'_>, port: u16) {
        let p = port as usize;
        if self.shared.ports6.get(p).is_none_or(|i| i.ra.is_none()) {
            return;
        }
        let clock = &self.shared.ra;
        let last = clock.last[p].load(Relaxed);
        if last != 0 && ctx.now.saturating_sub(last) < MIN_DELAY_S * ctx.tsc_hz {
            clock.next[p].fetch_min(last + MIN_DELAY_S * ctx.tsc_hz, Relaxed);
            return;
        }
        if clock.last[p]
            .compare_exchange(last, ctx.now, Relaxed, Relaxed)
            .is_ok()
        {
            self.send_ra(ctx, port);
        }
    }

    /// Sends a router advertisement out of `port` to all-nodes.
    fn send_ra(&mut self, ctx: &mut StageCtx<'_>, port: u16) {
        let Some(p6) = self.shared.ports6.get(port as usize) else {
            return;
        };
        let (Some(prefixes), Some(src), Some(pi)) = (
            p6.ra.as_deref(),
            p6.link_local,
            self.shared.port(port).copied(),
        ) else {
            return;
        };
        let Some(mut m) = ctx.pool.alloc() else {
            self.stats.alloc_failed.add(1);
            return;
        };
        // A fresh mbuf is empty: all of its room after the headroom can take the message.
        if !m.set_len(m.tailroom()) {
            return;
        }
        let ra = Ra {
            cur_hop_limit: 64,
            managed: false,
            other: false,
            router_lifetime: ROUTER_LIFETIME_S,
            reachable_time: 0,
            retrans_timer: 0,
            sll: Some(pi.mac),
            mtu: Some(p6.mtu as u32),
        };
        let d = m.data_mut();
        let n = ndp::write_ra(&mut d[L3..], src, ipv6::ALL_NODES, &ra, prefixes);
        if n == 0 {
            return;
        }
        let mut e = ether::Frame::new_unchecked(&mut d[..]);
        e.set_dst(&ipv6::multicast_mac(ipv6::ALL_NODES));
        e.set_src(&pi.mac);
        e.set_ethertype(ether::EtherType::Ipv6);
        m.set_len((L3 + n) as u16);
        self.stats.ra_sent.add(1);
        ctx.send(m, port);
    }
}
