//! The NAT pipeline stage: [`NatCore`] over mbuf bursts, the NAT clock from the TSC,
//! housekeeping (expiry) and control messages (static table swaps, session listings).

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use dpdk::Mbuf;
use pollfwd_pipeline::{DropReason, Stage, StageCtx, Verdict};

use super::frag::{HOLD_MAX, HOLD_MS};
use super::stats::NatShared;
use super::table::{CLASS_FREE, CLASS_ICMP, CLASS_TCP_EST, CLASS_TCP_TRANS, CLASS_UDP, sflag};
use super::{NatCore, NatMsg, NatParams, SessionInfo, aux};
use crate::fragmemo::FragKey;

/// The "nat" stage of one worker.
pub struct NatStage {
    core: NatCore,
    /// Non-first fragments waiting for their first fragment: key, deadline (NAT clock, ms),
    /// packet. Capacity [`HOLD_MAX`], allocated here.
    held: VecDeque<(FragKey, u32, Mbuf)>,
    /// Fragments given the verdict `Held` in the current burst (adopted after it).
    holding: usize,
    /// TSC at construction (the NAT clock's zero) and ticks per millisecond.
    base_tsc: u64,
    tsc_per_ms: u64,
}

impl NatStage {
    pub fn new(p: NatParams, lcore: u32, tsc_hz: u64) -> Result<NatStage, String> {
        Ok(NatStage {
            core: NatCore::new(p, lcore)?,
            held: VecDeque::with_capacity(HOLD_MAX),
            holding: 0,
            base_tsc: dpdk::rdtsc(),
            tsc_per_ms: (tsc_hz / 1000).max(1),
        })
    }

    pub fn shared(&self) -> Arc<NatShared> {
        self.core.shared()
    }

    pub fn core(&self) -> &NatCore {
        &self.core
    }

    /// Held fragments whose first fragment has come go through NAT again (`later`); with
    /// `expire`, those that waited [`HOLD_MS`] in vain are dropped. Without `expire`, only the
    /// held fragments of datagrams whose first fragment came since the last call are looked up.
    fn release(&mut self, ctx: &mut StageCtx<'_>, expire: bool) {
        let seen = self.core.take_first_fragments();
        if self.held.is_empty() || !(seen || expire) {
            return;
        }
        let now = self.core.now_ms();
        let mut i = 0;
        while i < self.held.len() {
            let (k, deadline) = (self.held[i].0, self.held[i].1);
            if (expire || self.core.first_fragment_recent(&k)) && self.core.first_fragment_seen(&k)
            {
                let (_, _, mut m) = self.held.remove(i).expect("in range");
                m.meta_mut().aux |= aux::RETRIED;
                if let Err(m) = ctx.later(m) {
                    drop(m);
                    ctx.count_drop(DropReason::NatFragment, 1);
                }
            } else if expire && (now.wrapping_sub(deadline) as i32) >= 0 {
                drop(self.held.remove(i));
                ctx.count_drop(DropReason::NatFragmentTimeout, 1);
            } else {
                i += 1;
            }
        }
    }

    #[inline]
    fn clock(&mut self, now_tsc: u64) {
        let ms = now_tsc.wrapping_sub(self.base_tsc) / self.tsc_per_ms;
        self.core.set_now(ms as u32);
    }
}

impl Stage for NatStage {
    fn name(&self) -> &'static str {
        "nat"
    }

    fn changes_length(&self) -> bool {
        false
    }

    fn uses_handoff(&self) -> bool {
        self.core.uses_handoff()
    }

    fn process(&mut self, ctx: &mut StageCtx<'_>, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) {
        self.clock(ctx.now);
        let prefetch = self.core.wants_prefetch();
        if prefetch {
            for (i, m) in pkts.iter().enumerate() {
                self.core.prefetch_index(i, m.data(), m.meta());
            }
            for i in 0..pkts.len() {
                self.core.prefetch_session(i);
            }
        }
        for (i, (m, v)) in pkts.iter_mut().zip(verdicts.iter_mut()).enumerate() {
            if m.nb_segs() != 1 {
                *v = Verdict::Drop(DropReason::MultiSeg);
                continue;
            }
            // The common case first (established UDP/TCP sessions), else the general path.
            let hash = if prefetch {
                self.core.hint_hash(i)
            } else {
                None
            };
            let (f, meta) = m.data_and_meta_mut();
            if let Some(fv) = self.core.fast(f, meta, hash) {
                *v = fv;
                continue;
            }
            *v = self.core.handle(f, meta);
            // A fragment ahead of its first fragment waits for it (virtual reassembly).
            if *v == Verdict::Drop(DropReason::NatFragment)
                && self.held.len() + self.holding < HOLD_MAX
                && self.core.hold_key(m.data(), m.meta()).is_some()
            {
                *v = Verdict::Held;
                self.holding += 1;
            }
        }
        self.core.flush();
        self.release(ctx, false);
    }

    fn adopt(&mut self, m: Mbuf) {
        self.holding = self.holding.saturating_sub(1);
        match self.core.hold_key(m.data(), m.meta()) {
            Some(k) if self.held.len() < HOLD_MAX => {
                let deadline = self.core.now_ms().wrapping_add(HOLD_MS);
                self.held.push_back((k, deadline, m));
                // Its first fragment may have come later in the same burst, after the release
                // at the end of it: the next release looks at it.
                if self.core.first_fragment_recent(&k) {
                    self.core.recheck_first_fragment(k);
                }
            }
            // Not reachable (process checked both): freed, like any drop.
            _ => drop(m),
        }
    }

    fn housekeeping(&mut self, ctx: &mut StageCtx<'_>) {
        self.clock(ctx.now);
        self.core.housekeeping();
        self.release(ctx, true);
    }

    fn shutdown(&mut self, ctx: &mut StageCtx<'_>) {
        let n = self.held.len();
        self.held.clear();
        if n > 0 {
            ctx.count_drop(DropReason::Shutdown, n as u32);
        }
    }

    fn control(
        &mut self,
        msg: Box<dyn Any + Send>,
    ) -> Result<Box<dyn Any + Send>, Box<dyn Any + Send>> {
        let msg = msg.downcast::<NatMsg>()?;
        match *msg {
            NatMsg::SetStatic(t) => {
                let old = self.core.set_statics(t);
                // The old table in the form this accepts, so that sending it back undoes the change.
                Ok(Box::new(NatMsg::SetStatic(old)))
            }
            NatMsg::Sessions(q) => {
                let (list, next) = self.core.list_sessions_where(
                    q.inside,
                    q.outside,
                    q.limit,
                    q.start,
                    super::LIST_SLOTS,
                );
                if let Ok(mut out) = q.out.lock() {
                    out.sessions.extend(list);
                    out.next = next;
                }
                Ok(Box::new(()))
            }
        }
    }
}

impl NatCore {
    /// One step of an operator listing (control path, between two bursts): looks at table
    /// slots `start..start + slots` (in slot order), returns the live sessions among them
    /// that match `inside`, at most `limit`, and the slot to continue at (None: the end of
    /// the table was reached). The work per call is bounded by `slots`, not by the table.
    pub fn list_sessions(
        &self,
        inside: Option<u32>,
        limit: usize,
        start: u32,
        slots: u32,
    ) -> (Vec<SessionInfo>, Option<u32>) {
        self.list_sessions_where(inside, None, limit, start, slots)
    }

    /// [`NatCore::list_sessions`] also filtered on the outside endpoint (address, port).
    pub fn list_sessions_where(
        &self,
        inside: Option<u32>,
        outside: Option<(u32, u16)>,
        limit: usize,
        start: u32,
        slots: u32,
    ) -> (Vec<SessionInfo>, Option<u32>) {
        let mut v = Vec::new();
        let cap = self.sess.capacity();
        let end = start.saturating_add(slots).min(cap);
        let mut i = start.min(end);
        while i < end {
            if v.len() >= limit {
                break;
            }
            let s = &self.sess.s[i as usize];
            i += 1;
            if s.class == CLASS_FREE
                || inside.is_some_and(|a| a != s.in_addr)
                || outside.is_some_and(|o| o != (s.out_addr, s.out_port))
            {
                continue;
            }
            v.push(SessionInfo {
                worker: self.shared.worker,
                proto: s.proto,
                inside: (s.in_addr, s.in_port),
                outside: (s.out_addr, s.out_port),
                remote: (s.rem_addr, s.rem_port),
                state: match s.class {
                    CLASS_TCP_EST => "established",
                    CLASS_TCP_TRANS => "transitory",
                    CLASS_UDP => "udp",
                    CLASS_ICMP => "icmp",
                    _ => "?",
                },
                idle_ms: self.now.wrapping_sub(s.last_seen),
                age_ms: self.now.wrapping_sub(s.created),
                pkts_in2out: s.pkts_i2o,
                pkts_out2in: s.pkts_o2i,
                is_static: s.flags & sflag::STATIC != 0,
            });
        }
        (v, (i < cap).then_some(i))
    }
}
