//! The rate-limit stage: per burst, find each packet's policer (class, default, source),
//! meter it, count it, and transmit, drop or remark it (DSCP, RFC 2474: in IPv4 with the header
//! checksum updated incrementally by [`crate::wire::ipv4::Packet::set_dscp`], in IPv6 the
//! traffic class by [`crate::wire::ipv6::Packet::set_dscp`]); ageing and migration of source
//! tables in housekeeping; tables swapped in through [`Stage::control`].

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use dpdk::meta::flags;
use dpdk::meter::Color;
use dpdk::{BURST_MAX, Mbuf};
use pollfwd_pipeline::{DropReason, Stage, StageCtx, Verdict};

use super::control::{ClearCounters, LIST_SLOTS, ListSources, SourceEntry, Update};
use super::counters::{Acc, PolicerCounters, PolicerSnapshot, WorkerCounters};
use super::profile::{Action, Kind, MeterState, Params};
use super::sources::{MIGRATE_BUDGET, Refused, Sources};
use super::table::{Fast, Plan, PolicerState, PolicerTable};
use super::{AGE_SWEEP_S, MAX_POLICERS};
use crate::{parse, wire};

/// A packet's policer and L3 offset (IPv6: with [`V6`]), found by the first pass over a burst.
#[derive(Debug, Clone, Copy)]
struct Sel {
    pi: u8,
    l3: u16,
}

/// Set in an L3 offset (they are far below 2^15) when the header is IPv6.
const V6: u16 = 0x8000;

impl Sel {
    /// No IP header (it has [`V6`] set too: compare with it first).
    const NO_L3: u16 = u16::MAX;
    const NONE: Sel = Sel {
        pi: u8::MAX,
        l3: Sel::NO_L3,
    };
}

/// One of the stage's loops over a burst of at most [`BURST_MAX`] packets (chosen when a
/// table is installed, see [`choose`]). Returns true when every verdict is `Continue`.
type Loop = fn(&mut Policer, u64, &mut [Mbuf], &mut [Verdict]) -> bool;

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
    /// The loop for `table`.
    run: Loop,
}

/// Drop reason of the drop action for a colour.
fn drop_reason(c: Color) -> DropReason {
    match c {
        Color::Green => DropReason::PolicerGreen,
        Color::Yellow => DropReason::PolicerYellow,
        Color::Red => DropReason::PolicerRed,
    }
}

/// The loop for a table: for a lone default policer (every packet meters on it) one
/// monomorphised for its kind (srTCM, trTCM), colour mode, per-source binding and whether it
/// reads the IPv4 header, so no packet branches on any of them; else the general loop.
fn choose(t: &PolicerTable) -> Loop {
    use super::tcm::{SrMeter, TrMeter};
    match t.plan() {
        Plan::Idle => |_, _, _, _| true,
        Plan::General => Policer::general,
        Plan::One => {
            let d = &t.defs[0];
            let ip = t.needs_ip & 1 != 0;
            match (&t.fast[0].params, d.per_source.is_some(), d.color_aware, ip) {
                (Params::Srtcm(_), false, false, false) => Policer::one::<SrMeter, false, false>,
                (Params::Srtcm(_), false, false, true) => Policer::one::<SrMeter, false, true>,
                (Params::Srtcm(_), false, true, _) => Policer::one::<SrMeter, true, true>,
                (Params::Trtcm(_), false, false, false) => Policer::one::<TrMeter, false, false>,
                (Params::Trtcm(_), false, false, true) => Policer::one::<TrMeter, false, true>,
                (Params::Trtcm(_), false, true, _) => Policer::one::<TrMeter, true, true>,
                (Params::Srtcm(_), true, false, _) => Policer::one_per_source::<SrMeter, false>,
                (Params::Srtcm(_), true, true, _) => Policer::one_per_source::<SrMeter, true>,
                (Params::Trtcm(_), true, false, _) => Policer::one_per_source::<TrMeter, false>,
                (Params::Trtcm(_), true, true, _) => Policer::one_per_source::<TrMeter, true>,
            }
        }
    }
}

/// Offset of the packet's IP header: IPv4 (an earlier parse reused, else parsed now with RFC
/// 1812's checks and kept in the metadata for later stages) or IPv6 (validated by the wire
/// module's parser, offset with [`V6`] set); `Ok(None)` for anything else (ARP, malformed
/// IPv4: left to `forward`); `Err` with the parser's reason for a frame of EtherType IPv6
/// that is not valid IPv6.
#[inline(always)]
fn l3_of(m: &mut Mbuf) -> Result<Option<u16>, DropReason> {
    let meta = m.meta();
    if meta.flags & (flags::PARSED | flags::IPV4) == flags::PARSED | flags::IPV4 {
        Ok(Some(meta.l3_off))
    } else if let Ok(p) = parse::parse_ipv4_frame(m.data(), m.pkt_len() as usize) {
        p.write(m.meta_mut());
        Ok(Some(p.l3_off))
    } else {
        l3_v6(m.data())
    }
}

/// [`l3_of`] for a frame that is not valid IPv4: its IPv6 header, if it has a valid one.
/// Neighbour discovery is IPv6's ARP and is treated like it (`None`: no source, never
/// rewritten), so that a per-source policer cannot starve address resolution.
#[inline]
fn l3_v6(d: &[u8]) -> Result<Option<u16>, DropReason> {
    const L3: usize = wire::ether::HEADER_LEN;
    if d.get(wire::ether::field::ETHERTYPE) != Some(&wire::ether::ethertype::IPV6.to_be_bytes()) {
        return Ok(None);
    }
    let info = wire::ipv6::validate(&d[L3..])?;
    Ok((!wire::ndp::is_nd(&info)).then_some(L3 as u16 | V6))
}

/// The IPv6 source address (host order) of a packet whose header [`l3_of`] found at `l3`.
#[inline(always)]
fn src6(m: &Mbuf, l3: u16) -> u128 {
    wire::get128(m.data(), (l3 & !V6) as usize + wire::ipv6::field::SRC.start)
}

/// The DSCP of the IP header at `l3` (IPv4: the DS field; IPv6: the traffic class's upper six
/// bits).
#[inline(always)]
fn dscp_of(d: &[u8], l3: u16) -> Option<u8> {
    if l3 & V6 == 0 {
        d.get(l3 as usize + wire::ipv4::field::DS).map(|ds| ds >> 2)
    } else {
        let o = (l3 & !V6) as usize;
        d.get(o..o + 2)
            .map(|b| wire::ipv6::Packet::new_unchecked(b).dscp())
    }
}

/// Input colour of a colour-aware policer: the worse of the colour an earlier stage left and
/// the DSCP's pre-colour.
#[inline(always)]
fn input_color(m: &Mbuf, l3: Option<u16>, precolor: &[Color; 64]) -> Color {
    let pre = Color::from_u8(m.meta().color);
    let dscp = l3
        .and_then(|o| dscp_of(m.data(), o))
        .map_or(Color::Green, |d| precolor[d as usize]);
    pre.max(dscp)
}

/// Sets the DSCP of the IP header at `l3` (IPv4: checksum updated incrementally; IPv6: the
/// traffic class, ECN bits and flow label kept, no checksum); true if it changed.
#[inline]
fn remark(m: &mut Mbuf, l3: u16, dscp: u8) -> bool {
    let d = m.data_mut();
    let changed = if l3 & V6 == 0 {
        match d
            .get_mut(l3 as usize..)
            .map(wire::ipv4::Packet::new_checked)
        {
            Some(Ok(mut ip)) => ip.set_dscp(dscp),
            _ => false,
        }
    } else {
        match d
            .get_mut((l3 & !V6) as usize..)
            .map(wire::ipv6::Packet::new_checked)
        {
            Some(Ok(mut ip)) => ip.set_dscp(dscp),
            _ => false,
        }
    };
    if changed {
        m.meta_mut().flags |= flags::MODIFIED;
    }
    changed
}

/// Packets and bytes per colour of one loop, in registers (no store per packet).
#[derive(Default)]
struct Tally {
    green: u64,
    yellow: u64,
    green_bytes: u64,
    yellow_bytes: u64,
    packets: u64,
    bytes: u64,
    remarked: u64,
}

impl Tally {
    #[inline(always)]
    fn add(&mut self, c: Color, len: u32) {
        let len = len as u64;
        let g = (c == Color::Green) as u64;
        let y = (c == Color::Yellow) as u64;
        self.green += g;
        self.yellow += y;
        self.green_bytes += len & g.wrapping_neg();
        self.yellow_bytes += len & y.wrapping_neg();
        self.packets += 1;
        self.bytes += len;
    }

    fn into(self, a: &mut Acc) {
        a.packets[0] += self.green;
        a.packets[1] += self.yellow;
        a.packets[2] += self.packets - self.green - self.yellow;
        a.bytes[0] += self.green_bytes;
        a.bytes[1] += self.yellow_bytes;
        a.bytes[2] += self.bytes - self.green_bytes - self.yellow_bytes;
        a.remarked += self.remarked;
    }
}

impl Policer {
    /// A stage over `table`, counting into `counters`.
    pub fn new(table: PolicerTable, counters: Arc<WorkerCounters>) -> Policer {
        let state = table.fresh_state();
        let run = choose(&table);
        Policer {
            table,
            state,
            counters,
            acc: Box::new([Acc::default(); MAX_POLICERS]),
            dirty: 0,
            last_age: 0,
            run,
        }
    }

    pub fn table(&self) -> &PolicerTable {
        &self.table
    }

    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Sources metered now by policer `i` (None: not a per-source policer).
    pub fn sources(&self, i: usize) -> Option<&Sources> {
        self.state.sources.get(i).and_then(Option::as_ref)
    }

    /// The meter of (aggregate) policer `i`.
    pub fn meter(&self, i: usize) -> Option<&MeterState> {
        self.state.meters.get(i)
    }

    /// Meters a burst received at TSC `now` (the body of [`Stage::process`], without the
    /// runtime context so that tests can drive the clock). `verdicts` come in as `Continue`;
    /// returns true when they all still are.
    pub fn police(&mut self, now: u64, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) -> bool {
        let mut all = true;
        for (p, v) in pkts
            .chunks_mut(BURST_MAX)
            .zip(verdicts.chunks_mut(BURST_MAX))
        {
            all &= (self.run)(self, now, p, v);
        }
        self.flush_counts();
        all
    }

    /// The lone default policer, not per source: every packet meters on its one meter, which
    /// is refilled once for the burst (all its packets have the burst's time: a second refill
    /// would add nothing) and then kept in registers; each packet costs two compares and a
    /// subtraction, its colour, its verdict from a table. `AWARE`: colour-aware; `IP`: reads
    /// the IP header (colour-aware or remark; a malformed IPv6 packet is dropped with the
    /// parser's reason, unmetered).
    fn one<M: Kind, const AWARE: bool, const IP: bool>(
        &mut self,
        now: u64,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
    ) -> bool {
        let f = &self.table.fast[0];
        let Some(p) = M::params(&f.params) else {
            return self.general(now, pkts, verdicts);
        };
        let st = &mut self.state.meters[0];
        // A meter of the other kind (a live profile change) restarts, as its first packet
        // would restart it.
        let mut m = M::state(st).copied().unwrap_or_else(|| M::start(p, now));
        m.refill(p, now);
        let mut t = Tally::default();
        let mut drops = 0u32;
        for (mb, v) in pkts.iter_mut().zip(verdicts.iter_mut()) {
            let l3 = if IP {
                match l3_of(mb) {
                    Ok(l3) => l3,
                    Err(r) => {
                        *v = Verdict::Drop(r);
                        drops += 1;
                        continue;
                    }
                }
            } else {
                None
            };
            let len = mb.pkt_len();
            let input = if AWARE {
                input_color(mb, l3, &self.table.precolor)
            } else {
                Color::Green
            };
            let c = m.color(p, len, input);
            mb.meta_mut().color = c as u8;
            t.add(c, len);
            let verdict = f.verdict[c as usize];
            drops += (verdict != Verdict::Continue) as u32;
            *v = verdict;
            if IP {
                let dscp = f.remark[c as usize];
                if dscp != Fast::NO_REMARK
                    && let Some(o) = l3
                {
                    t.remarked += remark(mb, o, dscp) as u64;
                }
            }
        }
        *st = m.wrap();
        if t.packets != 0 {
            t.into(&mut self.acc[0]);
            self.dirty |= 1;
        }
        drops == 0
    }

    /// The lone default policer, per source: a first pass finds each packet's source (an
    /// IPv4 address, parsed where no earlier stage did; an IPv6 prefix) and prefetches its
    /// slot, so that the table's cache misses overlap; the second meters each packet on its
    /// source's meter.
    fn one_per_source<M: Kind, const AWARE: bool>(
        &mut self,
        now: u64,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
    ) -> bool {
        let f = &self.table.fast[0];
        let (Some(p), Some(tab)) = (M::params(&f.params), &mut self.state.sources[0]) else {
            return self.general(now, pkts, verdicts);
        };
        // Per packet: its IP header's offset and its source's home slot, hashed once.
        let mut l3s = [Sel::NO_L3; BURST_MAX];
        let mut homes = [0u32; BURST_MAX];
        let mut all = true;
        for (((mb, l), h), v) in pkts
            .iter_mut()
            .zip(l3s.iter_mut())
            .zip(homes.iter_mut())
            .zip(verdicts.iter_mut())
        {
            match l3_of(mb) {
                Ok(Some(o)) => {
                    let home = if o & V6 == 0 {
                        let home = tab.v4.home_of(mb.meta().src_ip);
                        tab.v4.prefetch_slot(home);
                        home
                    } else {
                        let home = tab.v6.home_of(tab.key6(src6(mb, o)));
                        tab.v6.prefetch_slot(home);
                        home
                    };
                    *h = home as u32;
                    *l = o;
                }
                Ok(None) => {}
                Err(r) => {
                    *v = Verdict::Drop(r);
                    all = false;
                }
            }
        }
        let acc = &mut self.acc[0];
        let mut t = Tally::default();
        for (((mb, v), l3), home) in pkts.iter_mut().zip(verdicts.iter_mut()).zip(l3s).zip(homes) {
            // Anything but IP has no source: it passes unmetered (malformed IPv6: dropped).
            if l3 == Sel::NO_L3 {
                continue;
            }
            let input = if AWARE {
                input_color(mb, Some(l3), &self.table.precolor)
            } else {
                Color::Green
            };
            let len = mb.pkt_len();
            let make = || M::start(p, now).wrap();
            let found = if l3 & V6 == 0 {
                tab.v4
                    .get_or_insert_at(home as usize, mb.meta().src_ip, now, make)
            } else {
                let key = tab.key6(src6(mb, l3));
                tab.v6.get_or_insert_at(home as usize, key, now, make)
            };
            let c = match found {
                Ok((st, created)) => {
                    acc.created += created as u64;
                    let m = match M::state(st) {
                        Some(m) => m,
                        None => {
                            *st = M::start(p, now).wrap();
                            M::state(st).expect("just made")
                        }
                    };
                    m.check(p, now, len, input)
                }
                Err(why) => {
                    all = false;
                    self.dirty |= 1;
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
            };
            mb.meta_mut().color = c as u8;
            t.add(c, len);
            let verdict = f.verdict[c as usize];
            all &= verdict == Verdict::Continue;
            *v = verdict;
            let dscp = f.remark[c as usize];
            if dscp != Fast::NO_REMARK {
                t.remarked += remark(mb, l3, dscp) as u64;
            }
        }
        if t.packets != 0 {
            t.into(acc);
            self.dirty |= 1;
        }
        all
    }

    /// Any table: two passes. The first finds each packet's policer, parses the IP header
    /// where needed (dropping malformed IPv6 with the parser's reason) and prefetches the
    /// home slot of each per-source lookup, so that the table's cache misses overlap instead
    /// of stalling one packet at a time. The second meters and acts.
    fn general(&mut self, now: u64, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) -> bool {
        let mut sel = [Sel::NONE; BURST_MAX];
        let mut all = true;
        for ((m, s), v) in pkts.iter_mut().zip(sel.iter_mut()).zip(verdicts.iter_mut()) {
            let Some(pi) = self.table.lookup(m.meta().class) else {
                continue;
            };
            // The IP header, when this policer needs it.
            let mut l3 = Sel::NO_L3;
            if self.table.needs_ip & (1 << pi) != 0 {
                match l3_of(m) {
                    Ok(Some(o)) => l3 = o,
                    Ok(None) => {}
                    Err(r) => {
                        *v = Verdict::Drop(r);
                        all = false;
                        continue;
                    }
                }
                if let (Some(tab), true) = (&self.state.sources[pi], l3 != Sel::NO_L3) {
                    if l3 & V6 == 0 {
                        tab.v4.prefetch(m.meta().src_ip);
                    } else {
                        tab.v6.prefetch(tab.key6(src6(m, l3)));
                    }
                }
            }
            *s = Sel { pi: pi as u8, l3 };
        }
        for ((m, v), s) in pkts.iter_mut().zip(verdicts.iter_mut()).zip(sel) {
            if s.pi == Sel::NONE.pi {
                continue;
            }
            let pi = s.pi as usize;
            let l3 = (s.l3 != Sel::NO_L3).then_some(s.l3);
            let def = &self.table.defs[pi];
            let f = &self.table.fast[pi];
            let len = m.pkt_len();
            let acc = &mut self.acc[pi];
            let input = if def.color_aware {
                input_color(m, l3, &self.table.precolor)
            } else {
                Color::Green
            };
            let color = match &mut self.state.sources[pi] {
                Some(tab) => {
                    // Per source: needs the IP source; anything else passes unmetered.
                    let Some(o) = l3 else {
                        continue;
                    };
                    let make = || MeterState::start(&f.params, now);
                    let found = if o & V6 == 0 {
                        tab.v4.get_or_insert(m.meta().src_ip, now, make)
                    } else {
                        let key = tab.key6(src6(m, o));
                        tab.v6.get_or_insert(key, now, make)
                    };
                    match found {
                        Ok((meter, created)) => {
                            acc.created += created as u64;
                            meter.check(&f.params, now, len, input)
                        }
                        Err(why) => {
                            all = false;
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
                None => self.state.meters[pi].check(&f.params, now, len, input),
            };
            let ci = color as usize;
            acc.packets[ci] += 1;
            acc.bytes[ci] += len as u64;
            self.dirty |= 1 << pi;
            m.meta_mut().color = color as u8;
            match def.actions[ci] {
                Action::Transmit => {}
                Action::Drop => {
                    all = false;
                    *v = Verdict::Drop(drop_reason(color));
                }
                Action::Remark(dscp) => {
                    if let Some(o) = l3 {
                        acc.remarked += remark(m, o, dscp) as u64;
                    }
                }
            }
        }
        all
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

    /// One step of `policer.sources` (control path, between two bursts: bounded by
    /// [`LIST_SLOTS`] slots).
    fn list_sources(&self, q: &ListSources) {
        let Ok(mut out) = q.out.lock() else {
            return;
        };
        let Some(t) = self.sources(q.policer) else {
            out.next = None;
            return;
        };
        let prefix6 = t.prefix6();
        let limit = q.limit;
        let page = &mut *out;
        let next = t.visit(q.start, LIST_SLOTS, |ipv6, key, last, m| {
            if page.sources.len() < limit {
                page.sources.push(SourceEntry {
                    ipv6,
                    key,
                    prefix: if ipv6 { prefix6 } else { 32 },
                    last,
                    tokens: m.tokens(),
                });
            }
        });
        page.next = next.filter(|_| page.sources.len() < limit);
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
            let (Some(ps), Some(old)) = (d.per_source, &mut self.state.sources[j]) else {
                continue;
            };
            match &mut u.state.sources[i] {
                // The update brought no table: the running one serves as it is and moves over
                // (the reply then has none either, and sending it back moves it back).
                None if old.max() == ps.max_sources && old.prefix6() == ps.ipv6_prefix => {
                    old.set_idle_ticks(ps.idle_ticks);
                    u.state.sources[i] = self.state.sources[j].take();
                }
                None => {}
                Some(new) if new.max() == old.max() && new.capacity() == old.capacity() => {
                    new.take_over(old);
                }
                Some(new) => {
                    // Another size: the sources move over during housekeeping, not now; the
                    // reply gets the spare empty table of the old size in their place. (An
                    // update sent back to undo one has no spare: its own reply is only ever
                    // freed.)
                    let spare = u.spare.get_mut(j).and_then(Option::take);
                    if let Some(old) = std::mem::replace(&mut self.state.sources[j], spare) {
                        new.drain_from(old);
                    }
                }
            }
        }
        // A per-source policer still without a table (an update built against another table
        // than the one running, which the appliance does not send) starts an empty one here.
        for (d, t) in u.table.defs.iter().zip(u.state.sources.iter_mut()) {
            if let (Some(ps), None) = (d.per_source, &t) {
                *t = Some(Sources::new(ps.max_sources, ps.idle_ticks, ps.ipv6_prefix));
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
        self.run = choose(&self.table);
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
        if self.police(ctx.now, pkts, verdicts) {
            ctx.verdict_all(Verdict::Continue);
        }
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
        // A clear and a listing give back `()`: nothing a failed broadcast could undo (the
        // runtime then sends nothing back, where it would send the message again).
        let msg = match msg.downcast::<ClearCounters>() {
            Ok(_) => {
                let w = &*self.counters;
                w.write(|| w.policers.iter().for_each(PolicerCounters::reset));
                return Ok(Box::new(()));
            }
            Err(m) => m,
        };
        match msg.downcast::<ListSources>() {
            Ok(q) => {
                self.list_sources(&q);
                Ok(Box::new(()))
            }
            Err(m) => Err(m),
        }
    }
}
