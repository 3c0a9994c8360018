//! The rate-limit stage: per burst, find each packet's policer (class, default, source),
//! meter it, count it, and transmit, drop or remark it (DSCP, RFC 2474, with the header
//! checksum updated incrementally by [`crate::wire::ipv4::Packet::set_dscp`]); ageing and
//! migration of source tables in housekeeping; tables swapped in through [`Stage::control`].

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use dpdk::meta::flags;
use dpdk::meter::Color;
use dpdk::{BURST_MAX, Mbuf};
use pollfwd_pipeline::{DropReason, Stage, StageCtx, Verdict};

use super::control::{ClearCounters, Update};
use super::counters::{Acc, PolicerCounters, PolicerSnapshot, WorkerCounters};
use super::profile::{Action, MeterState};
use super::sources::{MIGRATE_BUDGET, Refused, SourceTable};
use super::table::{PolicerState, PolicerTable};
use super::{AGE_SWEEP_S, MAX_POLICERS};
use crate::{parse, wire};

/// A packet's policer and L3 offset, found by the first pass over a burst.
#[derive(Debug, Clone, Copy)]
struct Sel {
    pi: u8,
    l3: u16,
}

impl Sel {
    const NO_L3: u16 = u16::MAX;
    const NONE: Sel = Sel {
        pi: u8::MAX,
        l3: Sel::NO_L3,
    };
}

/// The rate-limit stage of one worker.
pub struct Policer {
    table: PolicerTable,
    state: PolicerState,
    counters: Arc<WorkerCounters>,
    acc: Box<[Acc; MAX_POLICERS]>,
    /// Bit i: policer i has counts in `acc`.
    dirty: u64,
    /// TSC of the last ageing call.
    last_age: u64,
}

/// Drop reason of the drop action for a colour.
fn drop_reason(c: Color) -> DropReason {
    match c {
        Color::Green => DropReason::PolicerGreen,
        Color::Yellow => DropReason::PolicerYellow,
        Color::Red => DropReason::PolicerRed,
    }
}

impl Policer {
    /// A stage over `table`, counting into `counters`.
    pub fn new(table: PolicerTable, counters: Arc<WorkerCounters>) -> Policer {
        let state = table.fresh_state();
        Policer {
            table,
            state,
            counters,
            acc: Box::new([Acc::default(); MAX_POLICERS]),
            dirty: 0,
            last_age: 0,
        }
    }

    pub fn table(&self) -> &PolicerTable {
        &self.table
    }

    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Sources metered now by policer `i` (None: not a per-source policer).
    pub fn sources(&self, i: usize) -> Option<&SourceTable> {
        self.state.sources.get(i).and_then(Option::as_ref)
    }

    /// Meters a burst received at TSC `now` (the body of [`Stage::process`], without the
    /// runtime context so that tests can drive the clock).
    pub fn police(&mut self, now: u64, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) {
        for (p, v) in pkts
            .chunks_mut(BURST_MAX)
            .zip(verdicts.chunks_mut(BURST_MAX))
        {
            self.police_burst(now, p, v);
        }
        self.flush_counts();
    }

    /// Two passes over at most [`BURST_MAX`] packets. The first finds each packet's policer,
    /// parses the IPv4 header where needed and prefetches the home slot of each per-source lookup,
    /// so that the table's cache misses overlap instead of stalling one packet at a time.
    /// The second meters and acts.
    #[inline]
    fn police_burst(&mut self, now: u64, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) {
        let mut sel = [Sel::NONE; BURST_MAX];
        for (m, s) in pkts.iter_mut().zip(sel.iter_mut()) {
            let Some(pi) = self.table.lookup(m.meta().class) else {
                continue;
            };
            // The IPv4 header, when this policer needs it: reuse an earlier parse, else parse
            // now (RFC 1812 checks) and keep the result for later stages.
            let mut l3 = Sel::NO_L3;
            if self.table.needs_ip & (1 << pi) != 0 {
                let meta = m.meta();
                if meta.flags & (flags::PARSED | flags::IPV4) == flags::PARSED | flags::IPV4 {
                    l3 = meta.l3_off;
                } else if let Ok(p) = parse::parse_ipv4_frame(m.data(), m.pkt_len() as usize) {
                    p.write(m.meta_mut());
                    l3 = p.l3_off;
                }
                if let (Some(tab), true) = (&self.state.sources[pi], l3 != Sel::NO_L3) {
                    tab.prefetch(m.meta().src_ip);
                }
            }
            *s = Sel { pi: pi as u8, l3 };
        }
        for ((m, v), s) in pkts.iter_mut().zip(verdicts.iter_mut()).zip(sel) {
            if s.pi == Sel::NONE.pi {
                continue;
            }
            let pi = s.pi as usize;
            let l3 = (s.l3 != Sel::NO_L3).then_some(s.l3 as usize);
            let def = &self.table.defs[pi];
            let len = m.pkt_len();
            let acc = &mut self.acc[pi];
            let input = if def.color_aware {
                let pre = Color::from_u8(m.meta().color);
                let dscp = l3
                    .and_then(|o| m.data().get(o + wire::ipv4::field::DS))
                    .map_or(Color::Green, |ds| self.table.precolor[(ds >> 2) as usize]);
                Some(pre.max(dscp))
            } else {
                None
            };
            let color = match (&def.per_source, &mut self.state.sources[pi]) {
                (Some(_), Some(tab)) => {
                    // Per source: needs the IPv4 source; anything else passes unmetered.
                    if l3.is_none() {
                        continue;
                    }
                    let src = m.meta().src_ip;
                    match tab.get_or_insert(src, now, || MeterState::new(&def.profile, now)) {
                        Ok((meter, created)) => {
                            acc.created += created as u64;
                            meter.check(&def.profile, now, len, input)
                        }
                        Err(why) => {
                            self.dirty |= 1 << pi;
                            *v = Verdict::Drop(match why {
                                Refused::Full => {
                                    acc.table_full += 1;
                                    DropReason::PolicerTableFull
                                }
                                Refused::ProbeLimit => {
                                    acc.probe_limit += 1;
                                    DropReason::PolicerProbeLimit
                                }
                            });
                            continue;
                        }
                    }
                }
                _ => self.state.meters[pi].check(&def.profile, now, len, input),
            };
            let ci = color as usize;
            acc.packets[ci] += 1;
            acc.bytes[ci] += len as u64;
            self.dirty |= 1 << pi;
            m.meta_mut().color = color as u8;
            match def.actions[ci] {
                Action::Transmit => {}
                Action::Drop => *v = Verdict::Drop(drop_reason(color)),
                Action::Remark(dscp) => {
                    if let Some(o) = l3 {
                        let d = m.data_mut();
                        if let Some(Ok(mut ip)) =
                            d.get_mut(o..).map(wire::ipv4::Packet::new_checked)
                            && ip.set_dscp(dscp)
                        {
                            acc.remarked += 1;
                            m.meta_mut().flags |= flags::MODIFIED;
                        }
                    }
                }
            }
        }
    }

    /// Writes the burst's counts to the shared counters (once per burst, touched policers
    /// only).
    #[inline]
    fn flush_counts(&mut self) {
        let mut d = self.dirty;
        if d == 0 {
            return;
        }
        self.dirty = 0;
        let (counters, acc, sources) = (&*self.counters, &mut self.acc, &self.state.sources);
        counters.write(|| {
            while d != 0 {
                let i = d.trailing_zeros() as usize;
                d &= d - 1;
                let a = std::mem::take(&mut acc[i]);
                let c = &counters.policers[i];
                for k in 0..3 {
                    if a.packets[k] != 0 {
                        c.packets[k].add(a.packets[k]);
                        c.bytes[k].add(a.bytes[k]);
                    }
                }
                if a.remarked != 0 {
                    c.remarked.add(a.remarked);
                }
                if a.table_full != 0 {
                    c.table_full.add(a.table_full);
                }
                if a.probe_limit != 0 {
                    c.probe_limit.add(a.probe_limit);
                }
                if a.created != 0 {
                    c.sources_created.add(a.created);
                    if let Some(t) = &sources[i] {
                        c.sources.store(t.len() as u64, Relaxed);
                    }
                }
            }
        });
    }

    /// Ages idle sources out: each call visits the slice of each source table that keeps one
    /// whole sweep per `AGE_SWEEP_S` (`now`, `tsc_hz`: TSC and its frequency).
    pub fn age(&mut self, now: u64, tsc_hz: u64) {
        let elapsed = now.saturating_sub(self.last_age) as u128;
        self.last_age = now;
        let sweep = (tsc_hz.max(1) * AGE_SWEEP_S) as u128;
        for (i, t) in self.state.sources.iter_mut().enumerate() {
            if let Some(t) = t {
                let migrating = t.migrating();
                if migrating {
                    t.migrate(MIGRATE_BUDGET);
                }
                // The share of a whole sweep that the time since the last call stands for.
                let cap = t.capacity() as u128;
                let budget = (cap * elapsed / sweep).min(2 * cap) as usize + 1;
                let n = t.age(now, budget);
                if n > 0 || migrating {
                    let w = &*self.counters;
                    w.write(|| {
                        let c = &w.policers[i];
                        c.sources_aged.add(n as u64);
                        c.sources.store(t.len() as u64, Relaxed);
                    });
                }
            }
        }
    }

    /// Swaps in a new table; returns the old table and state (see [`Update`]).
    fn apply(&mut self, mut u: Update) -> Update {
        let old_defs = &self.table.defs;
        let mut moved = [PolicerSnapshot::default(); MAX_POLICERS];
        for (i, d) in u.table.defs.iter().enumerate() {
            let Some(j) = old_defs.iter().position(|o| o.name == d.name) else {
                continue;
            };
            moved[i] = self.counters.policers[j].load();
            // The meter keeps its buckets (a kind change restarts it at the next packet).
            u.state.meters[i] = self.state.meters[j];
            if let (Some(new), Some(old)) = (&mut u.state.sources[i], &mut self.state.sources[j])
                && new.max() == old.max()
                && new.capacity() == old.capacity()
            {
                let idle = new.idle_ticks;
                std::mem::swap(new, old);
                new.idle_ticks = idle;
            } else if let Some(new) = &mut u.state.sources[i]
                && self.state.sources[j].is_some()
            {
                // Another size: the sources move over during housekeeping, not now; the
                // reply gets the spare empty table of the old size in their place. (An update
                // sent back to undo one has no spare: its own reply is only ever freed.)
                let spare = u.spare.get_mut(j).and_then(Option::take);
                if let Some(old) = std::mem::replace(&mut self.state.sources[j], spare) {
                    new.drain_from(old);
                }
            }
        }
        let w = &*self.counters;
        w.write(|| {
            for (i, c) in w.policers.iter().enumerate() {
                c.store(&moved[i]);
                let n = u.state.sources.get(i).and_then(Option::as_ref);
                c.sources.store(n.map_or(0, |t| t.len() as u64), Relaxed);
            }
        });
        std::mem::swap(&mut self.table, &mut u.table);
        std::mem::swap(&mut self.state, &mut u.state);
        u
    }
}

impl Stage for Policer {
    fn name(&self) -> &'static str {
        "policer"
    }

    fn changes_length(&self) -> bool {
        false
    }

    fn process(&mut self, ctx: &mut StageCtx<'_>, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) {
        self.police(ctx.now, pkts, verdicts);
    }

    fn housekeeping(&mut self, ctx: &mut StageCtx<'_>) {
        self.age(ctx.now, ctx.tsc_hz);
    }

    fn control(
        &mut self,
        msg: Box<dyn Any + Send>,
    ) -> Result<Box<dyn Any + Send>, Box<dyn Any + Send>> {
        let msg = match msg.downcast::<Update>() {
            Ok(u) => return Ok(Box::new(self.apply(*u))),
            Err(m) => m,
        };
        match msg.downcast::<ClearCounters>() {
            Ok(c) => {
                let w = &*self.counters;
                w.write(|| w.policers.iter().for_each(PolicerCounters::reset));
                Ok(c)
            }
            Err(m) => Err(m),
        }
    }
}
