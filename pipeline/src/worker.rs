//! The run-to-completion worker loop of one lcore.
//!
//! Each round: poll every source (an RX queue, or the ring from the previous lcore in pipeline
//! mode) for a burst, run the chain of stages on it, move packets by verdict (next stage, TX
//! buffer, drop), and hand what survives the chain to the sink (drop, or the ring to the next
//! lcore). Every `tx_drain` ticks: flush TX buffers, drain the mailbox, check housekeeping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[path = "worker_vlan.rs"]
mod vlan_io;
pub use crate::health::Fault;
pub use vlan_io::VlanRt;

use crossbeam_queue::ArrayQueue;
use dpdk::{BURST_MAX, Burst, Mempool, PktMeta, RingConsumer, RingProducer, RxQueue, TxBuffer};

use crate::counters::{LcoreCounters, MAX_STAGES};
use crate::drop::DropReason;
use crate::health::ExitMark;
use crate::moves::{Shape, Tally};
use crate::stage::{DropTally, Originated, Payload, RxBurst, Stage, StageCtx, Verdict};
use crate::vlan::{IFACE_BASE, TaggedRx};

/// Where a worker gets packets from.
pub enum Source {
    /// An RX queue of a port.
    Port(RxQueue),
    /// The ring from the previous lcore of a pipeline; packets keep their metadata.
    Ring(RingConsumer),
    /// A hand-off ring from another worker: packets resume at the stage that handed them off.
    Handoff(RingConsumer),
    /// An RX queue of a punt (TAP) port: what the kernel sends there leaves, unchanged and
    /// without going through the chain, out of the interface paired with the source (its
    /// id, an interface id, is the source's `u16`; a VLAN sub-interface gets its tags).
    Inject(RxQueue),
}

/// Where packets go that survive the whole chain with `Continue`.
pub enum Sink {
    /// Dropped, counted as `chain_end` (a chain must choose an egress).
    Drop,
    /// Handed to the next lcore of a pipeline.
    Ring(RingProducer),
}

/// A message from the management thread, applied between bursts.
pub enum Msg {
    /// Zero this lcore's counters.
    ClearCounters,
    /// Give `payload` to the stage called `stage` (see [`Stage::control`]).
    Stage {
        id: u64,
        stage: String,
        payload: Payload,
    },
}

/// A worker's answer to a [`Msg::Stage`]. The replaced object travels back so that it is
/// freed by the management thread, off the data path, after the worker stopped using it.
pub enum Reply {
    Applied { id: u64, old: Payload },
    Rejected { id: u64, reason: String },
}

/// The two queues between the management thread and one worker.
pub struct Mailbox {
    pub to_worker: ArrayQueue<Msg>,
    pub from_worker: ArrayQueue<Reply>,
}

impl Mailbox {
    pub fn new(cap: usize) -> Mailbox {
        Mailbox {
            to_worker: ArrayQueue::new(cap),
            from_worker: ArrayQueue::new(cap),
        }
    }
}

/// Per-burst working space of a worker, allocated once (on its stack) for the whole run.
struct Scratch {
    /// Packets to free in bulk after a stage.
    dropped: Burst,
    /// Packets a stage holds ([`Verdict::Held`]), on their way to [`Stage::adopt`].
    held: Burst,
    /// Packets stages originate (ARP, ICMP), sent after the stage.
    originated: Originated,
    /// Packets stages give back to the chain ([`StageCtx::later`]), processed after the burst.
    later: Burst,
    /// One verdict per packet of the burst.
    verdicts: [Verdict; BURST_MAX],
}

/// Which bursts get their stages timed: every [`SAMPLE_EVERY`]th, and the first after each TX
/// drain (so that a slow trickle of packets is timed burst by burst).
struct Sampler {
    countdown: u32,
}

/// At full load, the TSC is read once per this many loop rounds.
pub const TSC_EVERY_BUSY: u32 = 8;

/// One burst in this many has its stages timed at full rate.
pub const SAMPLE_EVERY: u32 = 32;

impl Sampler {
    #[inline]
    fn next(&mut self) -> bool {
        if self.countdown == 0 {
            self.countdown = SAMPLE_EVERY - 1;
            true
        } else {
            self.countdown -= 1;
            false
        }
    }

    fn rearm(&mut self) {
        self.countdown = 0;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    Port,
    Ring,
    Handoff,
    /// Packets a stage gave back ([`StageCtx::later`]).
    Later,
    /// Frames from a punt interface ([`Source::Inject`]).
    Inject,
}

/// Tunables of the loop.
#[derive(Debug, Clone, Copy)]
pub struct LoopConfig {
    /// Packets per rx burst (1..=BURST_MAX).
    pub burst: usize,
    /// TX buffer drain period, TSC ticks.
    pub tx_drain_ticks: u64,
    /// Stage housekeeping period, TSC ticks.
    pub housekeeping_ticks: u64,
    pub tsc_hz: u64,
}

/// One worker lcore's state: owned by that lcore alone once launched.
pub struct Worker {
    pub lcore: u32,
    pub index: usize,
    sources: Vec<(Source, u16)>,
    chain: Vec<Box<dyn Stage>>,
    sink: Sink,
    tx: Vec<Option<TxBuffer>>,
    counters: Arc<LcoreCounters>,
    mailbox: Arc<Mailbox>,
    quit: Arc<AtomicBool>,
    pool: Mempool,
    cfg: LoopConfig,
    needs_meta: bool,
    /// No stage of the chain changes packet lengths (see [`Stage::changes_length`]).
    lengths_kept: bool,
    /// The first stage counts the bytes of bursts from ports (see [`Stage::counts_rx_bytes`])
    /// and no stage needs metadata: the runtime makes no receive pass over the mbufs.
    stage_counts_rx: bool,
    /// The chain is one stage that takes bursts from ports with VLAN sub-interfaces tags and
    /// all (see [`Stage::takes_tagged`]): no receive pass pops them first.
    fused_vlan: bool,
    /// Some stage reads the clock: one TSC read per burst (see [`Stage::needs_clock`]).
    needs_clock: bool,
    workers: usize,
    /// Hand-off rings to other workers, by worker index (None for self / not joined).
    handoff_out: Vec<Option<RingProducer>>,
    /// Per target worker: packets waiting for the hand-off ring during a burst.
    handoff_stage: Vec<Burst>,
    sampler: Sampler,
    /// Where the worker leaves its input rings when it stops (see [`Leftovers`]).
    leftovers: Option<Leftovers>,
    /// A fault to inject (tests of the watchdog; see [`Fault`]).
    fault: Option<(Fault, Duration)>,
    /// VLAN sub-interfaces, if the configuration has any.
    vlan: Option<VlanRt>,
}

/// The input rings (pipeline and hand-off) of stopped workers, kept until every worker has
/// stopped: the packets still in them are then freed and counted as `shutdown` drops of the
/// lcore that would have consumed them, so that a summary's rx = tx + drops holds exactly
/// (a ring freed with its worker would free them uncounted). Shared by all workers of a run.
#[derive(Clone, Default)]
pub struct Leftovers(Arc<Mutex<Vec<LeftRing>>>);

/// A stopped worker's input ring and the counters its packets are counted in.
type LeftRing = (RingConsumer, Arc<LcoreCounters>);

impl Leftovers {
    pub fn new() -> Leftovers {
        Leftovers::default()
    }

    fn keep(&self, ring: RingConsumer, counters: Arc<LcoreCounters>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((ring, counters));
    }

    /// Frees and counts what the kept rings still hold; returns the number of packets. Call
    /// after every worker has returned (no producer runs any more); the counting lcores are
    /// stopped, so this thread is their counters' only writer.
    pub fn drain(&self) -> u64 {
        let mut rings = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = 0u64;
        let mut b = Burst::new();
        for (ring, counters) in rings.iter_mut() {
            loop {
                let n = ring.dequeue_burst(&mut b, BURST_MAX);
                if n == 0 {
                    break;
                }
                counters.drops[DropReason::Shutdown as usize].add(n as u64);
                total += n as u64;
                b.free_all();
            }
        }
        rings.clear();
        total
    }
}

impl Worker {
    /// `sources` pairs each source with the port id its packets are attributed to (for a ring:
    /// ignored, packets carry `in_port` in their metadata). `tx` is indexed by port id.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        lcore: u32,
        index: usize,
        sources: Vec<(Source, u16)>,
        chain: Vec<Box<dyn Stage>>,
        sink: Sink,
        tx: Vec<Option<TxBuffer>>,
        counters: Arc<LcoreCounters>,
        mailbox: Arc<Mailbox>,
        quit: Arc<AtomicBool>,
        pool: Mempool,
        cfg: LoopConfig,
    ) -> Result<Worker, String> {
        if chain.len() > MAX_STAGES {
            return Err(format!(
                "lcore {lcore}: {} stages, at most {MAX_STAGES}",
                chain.len()
            ));
        }
        // In pipeline mode the next lcore's stages read the metadata this lcore writes at
        // receive time (in_port, rx_tsc, zeroed class/flags): initialise it whenever packets
        // go on through a ring, whatever this lcore's own stages need.
        let needs_meta = chain.iter().any(|s| s.needs_meta()) || matches!(sink, Sink::Ring(_));
        let lengths_kept = !chain.iter().any(|s| s.changes_length());
        let stage_counts_rx = !needs_meta && chain.first().is_some_and(|s| s.counts_rx_bytes());
        // Tagged frames straight to a first stage that takes them (the VLAN fast path).
        let fused_vlan =
            stage_counts_rx && chain.len() == 1 && chain.first().is_some_and(|s| s.takes_tagged());
        let needs_clock = chain.iter().any(|s| s.needs_clock());
        Ok(Worker {
            lcore,
            index,
            sources,
            chain,
            sink,
            tx,
            counters,
            mailbox,
            quit,
            pool,
            cfg: LoopConfig {
                burst: cfg.burst.clamp(1, BURST_MAX),
                ..cfg
            },
            needs_meta,
            lengths_kept,
            stage_counts_rx,
            fused_vlan,
            needs_clock,
            workers: 1,
            handoff_out: Vec::new(),
            handoff_stage: Vec::new(),
            sampler: Sampler { countdown: 0 },
            leftovers: None,
            fault: None,
            vlan: None,
        })
    }

    /// Joins this worker to the others by hand-off rings: `outs[w]` goes to worker w, `ins`
    /// come from the others. `workers` is the number of workers.
    pub fn with_handoff(
        mut self,
        workers: usize,
        outs: Vec<Option<RingProducer>>,
        ins: Vec<RingConsumer>,
    ) -> Result<Worker, String> {
        if self.chain.iter().filter(|s| s.uses_handoff()).count() > 1 {
            return Err(format!(
                "lcore {}: at most one hand-off stage per chain",
                self.lcore
            ));
        }
        self.workers = workers;
        self.handoff_stage = (0..outs.len()).map(|_| Burst::new()).collect();
        self.handoff_out = outs;
        for r in ins {
            self.sources.push((Source::Handoff(r), u16::MAX));
        }
        Ok(self)
    }

    /// Whether a stage of the chain may hand packets off to other workers.
    pub fn uses_handoff(&self) -> bool {
        self.chain.iter().any(|s| s.uses_handoff())
    }

    /// Sets the worker count seen by stages (when no hand-off rings are used).
    /// Makes the worker leave its input rings in `l` when it stops (see [`Leftovers`]).
    pub fn set_leftovers(&mut self, l: Leftovers) {
        self.leftovers = Some(l);
    }

    /// Makes the worker inject `fault` once, `after` its start.
    pub fn set_fault(&mut self, fault: Fault, after: Duration) {
        self.fault = Some((fault, after));
    }

    pub fn set_workers(&mut self, workers: usize) {
        self.workers = workers;
    }

    /// Stage names in chain order.
    pub fn stage_names(&self) -> Vec<&'static str> {
        self.chain.iter().map(|s| s.name()).collect()
    }

    /// Runs until the quit flag is set; then flushes TX buffers and returns 0.
    pub fn run(mut self) -> i32 {
        let _exit = ExitMark(self.counters.clone());
        let mut fault = self.fault.take().map(|(f, after)| {
            let at = dpdk::rdtsc()
                + (after.as_micros() as u64).saturating_mul(dpdk::tsc_hz() / 1_000_000);
            (f, at)
        });
        let mut burst = Burst::new();
        let mut scratch = Scratch {
            dropped: Burst::new(),
            held: Burst::new(),
            originated: Originated::new(),
            later: Burst::new(),
            verdicts: [Verdict::Continue; BURST_MAX],
        };
        let mut last_drain = dpdk::rdtsc();
        let mut last_hk = last_drain;
        let c = self.counters.clone();
        // Loop statistics are kept in locals and written at each drain (every tx_drain_us).
        let (mut polls, mut empty, mut busy, mut idle) = (0u64, 0u64, 0u64, 0u64);
        // The TSC is read after every empty round, and after every TSC_EVERY_BUSY busy rounds
        // in a row: at full load one read serves several bursts (a read costs about as much
        // as a cross-connect's whole work on a burst). `round_start` is the last read: the
        // start of the rounds that follow and the `now` their stages see (at most a few
        // rounds old). Busy cycles are the intervals between reads that moved packets (such
        // an interval may end with one empty round, which then counts as busy).
        let mut round_start = dpdk::rdtsc();
        let (mut unread, mut moved_since) = (0u32, false);
        loop {
            let mut moved = 0usize;
            let nsrc = self.sources.len();
            for si in 0..nsrc {
                let (src, port) = &mut self.sources[si];
                let port = *port;
                let (n, kind) = match src {
                    Source::Port(q) => (q.rx_burst(&mut burst, self.cfg.burst), In::Port),
                    Source::Ring(r) => (r.dequeue_burst(&mut burst, self.cfg.burst), In::Ring),
                    Source::Handoff(r) => {
                        (r.dequeue_burst(&mut burst, self.cfg.burst), In::Handoff)
                    }
                    Source::Inject(q) => (q.rx_burst(&mut burst, self.cfg.burst), In::Inject),
                };
                if n == 0 {
                    empty += 1;
                    continue;
                }
                moved += n;
                if kind == In::Inject {
                    self.inject(&mut burst, &mut scratch.dropped, port);
                } else if kind == In::Port && self.demuxes(port) && !self.fused_from(port) {
                    self.process_vlan_rx(&mut burst, &mut scratch, port, round_start);
                } else {
                    self.process_burst(&mut burst, &mut scratch, port, kind, round_start);
                }
                self.process_later(&mut scratch, round_start);
            }
            polls += nsrc as u64;
            moved_since |= moved > 0;
            unread += 1;
            if moved > 0 && unread < TSC_EVERY_BUSY {
                continue;
            }
            let now = dpdk::rdtsc();
            if moved_since {
                busy += now.wrapping_sub(round_start);
            } else {
                idle += now.wrapping_sub(round_start);
            }
            round_start = now;
            (unread, moved_since) = (0, false);
            if now.wrapping_sub(last_drain) >= self.cfg.tx_drain_ticks {
                last_drain = now;
                self.sampler.rearm();
                let mut t = Tally::new();
                for tb in self.tx.iter_mut().flatten() {
                    t.tx.add(tb.flush());
                }
                if now.wrapping_sub(last_hk) >= self.cfg.housekeeping_ticks {
                    last_hk = now;
                    self.housekeeping(&mut scratch, now);
                    Self::send_originated(
                        &mut self.tx,
                        self.vlan.as_ref(),
                        &mut scratch.originated,
                        &mut t,
                    );
                }
                Self::write_tally(&self.counters, &t);
                c.polls.add(polls);
                c.empty_polls.add(empty);
                c.busy_cycles.add(busy);
                c.idle_cycles.add(idle);
                (polls, empty, busy, idle) = (0, 0, 0, 0);
                self.drain_mailbox();
                c.heartbeat.set(now);
                if let Some((f, at)) = fault
                    && now >= at
                {
                    fault = None;
                    match f {
                        Fault::Panic => panic!("lcore {}: injected fault", self.lcore),
                        Fault::Stall(d) => std::thread::sleep(d),
                    }
                }
                if self.quit.load(Ordering::Relaxed) {
                    break;
                }
            }
        }
        // What the stages still hold is dropped and counted (rx = tx + drops holds at the end).
        self.stage_pass(
            &mut scratch.originated,
            &mut scratch.later,
            dpdk::rdtsc(),
            true,
        );
        let mut t = Tally::new();
        if !scratch.later.is_empty() {
            t.drop(DropReason::Shutdown, scratch.later.len() as u32);
            scratch.later.free_all();
        }
        for tb in self.tx.iter_mut().flatten() {
            t.tx.add(tb.flush());
        }
        Self::write_tally(&self.counters, &t);
        if let Some(l) = self.leftovers.take() {
            for (src, _) in self.sources.drain(..) {
                if let Source::Ring(r) | Source::Handoff(r) = src {
                    l.keep(r, self.counters.clone());
                }
            }
        }
        0
    }

    #[inline]
    fn process_burst(
        &mut self,
        burst: &mut Burst,
        scratch: &mut Scratch,
        in_port: u16,
        kind: In,
        round_start: u64,
    ) {
        let Scratch {
            dropped,
            held,
            originated,
            later,
            verdicts,
        } = scratch;
        let c = &*self.counters;
        let n = burst.len();
        let mut start = 0;
        let mut rx = None;
        // The bytes of the packets in the burst while they are known: as received (no stage
        // changes lengths), less those of the packets dropped on the way.
        let mut rx_bytes = None;
        if kind != In::Port {
            // Packets from another lcore: their mbuf headers are in that lcore's cache.
            for m in burst.as_slice() {
                m.prefetch();
            }
        }
        if kind == In::Ring {
            c.ring_in.add(n as u64);
        } else if kind == In::Handoff {
            c.handoff_in.add(n as u64);
            // One hand-off stage per chain (checked in with_handoff): all resume there.
            start = burst.as_slice()[0].meta().resume as usize;
        } else if kind == In::Later {
            // Given back by one stage (the chain's only user of `later`): it resumes there.
            start = burst.as_slice()[0].meta().resume as usize;
            debug_assert!(
                burst
                    .as_slice()
                    .iter()
                    .all(|m| m.meta().resume as usize == start)
            );
        } else {
            let mut bytes = 0u64;
            let mut min_len = u16::MAX;
            if self.needs_meta {
                for m in burst.as_mut_slice() {
                    bytes += m.pkt_len() as u64;
                    min_len = min_len.min(m.data_len());
                    // The round's start stands for the rx time (one TSC read saved per burst).
                    *m.meta_mut() = PktMeta::fresh(in_port, round_start);
                }
            } else if !self.stage_counts_rx {
                for m in burst.as_slice() {
                    bytes += m.pkt_len() as u64;
                    min_len = min_len.min(m.data_len());
                }
            }
            c.rx_packets.add(n as u64);
            // Otherwise the first stage reports the bytes (below).
            if !self.stage_counts_rx {
                c.rx_bytes.add(bytes);
                if self.lengths_kept {
                    rx_bytes = Some(bytes);
                }
                rx = Some(RxBurst {
                    port: in_port,
                    min_data_len: min_len,
                });
            }
        }
        let count_rx = self.stage_counts_rx && kind == In::Port;
        // Stage timing and the dwell histogram cost two TSC reads per stage and burst, which
        // is as much as a cross-connect's whole work: they are taken on a sample of the bursts
        // (every burst at low rates, see `Sampler`); calls and packets are always counted.
        let timed = self.sampler.next();
        let mut t = Tally::new();
        // Time after receive: a PMD may block inside rx (net_pcap on a FIFO), so the round's
        // reading can be far older than the packets.
        let t0 = if timed || self.needs_clock {
            dpdk::rdtsc()
        } else {
            round_start
        };
        let mut stage_start = t0;
        for si in start..self.chain.len() {
            let len = burst.len();
            if len == 0 {
                break;
            }
            let v = &mut verdicts[..len];
            v.fill(Verdict::Continue);
            let (all, reported) = {
                let mut ctx = StageCtx {
                    now: t0,
                    tsc_hz: self.cfg.tsc_hz,
                    lcore: self.lcore,
                    worker: self.index,
                    workers: self.workers,
                    pool: self.pool,
                    rx: if si == 0 { rx } else { None },
                    in_port: (kind == In::Port).then_some(in_port),
                    meta_valid: self.needs_meta || kind != In::Port,
                    count_rx: count_rx && si == 0,
                    rx_bytes: None,
                    originated: &mut *originated,
                    later: &mut *later,
                    stage: si,
                    all: None,
                    drops: &mut t.drops,
                    resized: false,
                    grown: 0,
                    tagged: (si == 0 && kind == In::Port && self.fused_vlan)
                        .then(|| {
                            let v = self.vlan.as_ref()?;
                            TaggedRx::new(&v.map, &v.counters, in_port)
                        })
                        .flatten(),
                };
                self.chain[si].process(&mut ctx, burst.as_mut_slice(), v);
                (ctx.all, (ctx.rx_bytes, ctx.resized, ctx.grown))
            };
            let (reported, resized, grown) = reported;
            if count_rx && si == 0 {
                // The packets are all still in the burst (moved by verdict below).
                let bytes = reported.unwrap_or_else(|| {
                    debug_assert!(
                        false,
                        "{} did not report its rx bytes",
                        self.chain[0].name()
                    );
                    burst.as_slice().iter().map(|m| m.pkt_len() as u64).sum()
                });
                c.rx_bytes.add(bytes);
                if self.lengths_kept {
                    rx_bytes = Some(bytes);
                }
            }
            if resized {
                // The burst's bytes as received no longer describe it.
                rx_bytes = None;
            } else if grown > 0 {
                // VLAN tags kept (counted as popped on receive).
                rx_bytes = rx_bytes.map(|b| b + grown);
            }
            let sc = &c.stages[si];
            sc.calls.add(1);
            sc.packets.add(len as u64);
            if timed {
                // The stage's own work: the moves of its verdicts below (drops taken out,
                // TX, hand-offs) are the runtime's, timed into the dwell only.
                let ts = stage_start;
                stage_start = dpdk::rdtsc();
                sc.cycles.add(stage_start.wrapping_sub(ts));
                sc.timed_packets.add(len as u64);
            }
            // Whole when every packet got one verdict, or all but a few drops (hostile frames
            // in good traffic: taken out); else packet by packet (see `moves`).
            let shape = match all {
                Some(a) => Shape::whole(a, len),
                None => Shape::of(v),
            };
            let tx_ok = |p: u16| matches!(self.tx.get(p as usize), Some(Some(_)));
            let vlan_ok = |p: u16| p >= IFACE_BASE && self.vlan.is_some(); // tags pushed
            match shape {
                Shape {
                    drops: 0,
                    rest: Some(Verdict::Continue),
                    ..
                } => {}
                Shape { drops, .. } if drops == len => {
                    match all {
                        Some(Verdict::Drop(r)) => t.drop(r, len as u32),
                        _ => t.drops_of(v),
                    }
                    burst.free_all();
                }
                // The packets left go on to the next stage, or leave on one port (or VLAN
                // sub-interface), together.
                Shape {
                    drops,
                    mask,
                    rest: Some(rest @ (Verdict::Continue | Verdict::Tx(_))),
                } if !matches!(rest, Verdict::Tx(p) if !tx_ok(p) && !vlan_ok(p)) => {
                    if drops > 0 {
                        // The few dropped: counted by reason, their bytes taken off the
                        // burst's, moved out without a branch per packet that stays.
                        let (mut m, mut gone) = (mask, 0u64);
                        let pkts = burst.as_slice();
                        while m != 0 {
                            let i = m.trailing_zeros() as usize;
                            m &= m - 1;
                            if let Verdict::Drop(r) = v[i] {
                                t.drop(r, 1);
                            }
                            if rx_bytes.is_some() {
                                gone += pkts[i].pkt_len() as u64;
                            }
                        }
                        rx_bytes = rx_bytes.map(|b| b - gone);
                        // The staging burst holds at most a burst's packets: room for all.
                        let moved = burst.take_masked(mask, dropped);
                        debug_assert_eq!(moved, drops);
                    }
                    if let Verdict::Tx(p) = rest {
                        if let Some(Some(tb)) = self.tx.get_mut(p as usize) {
                            t.tx.add(tb.push_burst_counted(burst, rx_bytes));
                        } else {
                            let v = self.vlan.as_ref();
                            vlan_io::tx_burst(&mut self.tx, v, &mut t, (burst, dropped), p);
                        }
                    }
                }
                _ => {
                    // Packets leave by other ways: the bytes left are not known any more.
                    rx_bytes = None;
                    if let Some(a) = all {
                        v.fill(a);
                    }
                    Self::dispatch(
                        (&mut self.tx, self.vlan.as_ref()),
                        &mut self.handoff_stage,
                        &mut self.handoff_out,
                        (burst, v, si),
                        &mut t,
                        (dropped, held),
                    );
                    if !held.is_empty() {
                        let stage = &mut self.chain[si];
                        held.dispatch(|_, m| {
                            stage.adopt(m);
                            None
                        });
                    }
                }
            }
            if !originated.is_empty() {
                Self::send_originated(&mut self.tx, self.vlan.as_ref(), originated, &mut t);
            }
            if timed {
                // The next stage starts here, after this one's moves.
                stage_start = dpdk::rdtsc();
            }
        }
        // What the stages dropped, freed in one call for the whole burst.
        dropped.free_all();
        if !burst.is_empty() {
            match &mut self.sink {
                Sink::Drop => {
                    t.drop(DropReason::ChainEnd, burst.len() as u32);
                    burst.free_all();
                }
                Sink::Ring(p) => {
                    t.ring_out += p.enqueue_burst(burst) as u64;
                    if !burst.is_empty() {
                        t.drop(DropReason::RingFull, burst.len() as u32);
                        burst.free_all();
                    }
                }
            }
        }
        Self::write_tally(c, &t);
        if timed {
            c.record_dwell(stage_start.wrapping_sub(t0));
        }
    }

    /// Frames the kernel sent on a punt (TAP) interface: out of interface `out` as they are
    /// (a sub-interface's tags pushed by the usual transmit path), counted as received and
    /// in `injected`; what the TX path refuses is counted there (`tx_full`, `no_tx_queue`).
    #[cold]
    #[inline(never)]
    fn inject(&mut self, burst: &mut Burst, dropped: &mut Burst, out: u16) {
        let c = &*self.counters;
        let n = burst.len() as u64;
        let bytes: u64 = burst.as_slice().iter().map(|m| m.pkt_len() as u64).sum();
        c.rx_packets.add(n);
        c.rx_bytes.add(bytes);
        c.injected.add(n);
        let mut t = Tally::new();
        if let Some(Some(tb)) = self.tx.get_mut(out as usize) {
            t.tx.add(tb.push_burst_counted(burst, Some(bytes)));
        } else {
            vlan_io::tx_burst(
                &mut self.tx,
                self.vlan.as_ref(),
                &mut t,
                (burst, dropped),
                out,
            );
        }
        dropped.free_all();
        Self::write_tally(c, &t);
    }

    /// Moves each packet of `burst` by its verdict in `v`: `Continue` ones stay (in order),
    /// the others go to a TX buffer, a hand-off ring, or the drop list (freed in bulk by the
    /// caller once the burst has been through the chain).
    fn dispatch(
        (tx, vlan): (&mut [Option<TxBuffer>], Option<&VlanRt>),
        hs: &mut [Burst],
        handoff_out: &mut [Option<RingProducer>],
        (burst, v, si): (&mut Burst, &[Verdict], usize),
        t: &mut Tally,
        (dropped, held): (&mut Burst, &mut Burst),
    ) {
        let mut handed = false;
        burst.dispatch(|i, mut m| match v[i] {
            Verdict::Continue => Some(m),
            Verdict::Tx(p) => {
                vlan_io::to_tx(tx, vlan, t, dropped, m, p);
                None
            }
            Verdict::Drop(r) => {
                t.drop(r, 1);
                let _ = dropped.push(m);
                None
            }
            Verdict::Held => {
                // At most a burst's packets: the staging burst cannot overflow.
                let _ = held.push(m);
                None
            }
            Verdict::Handoff(w) => {
                m.meta_mut().resume = si as u8;
                match hs.get_mut(w as usize) {
                    Some(b) => {
                        handed = true;
                        // A staging burst holds at most one burst's packets.
                        if let Err(m) = b.push(m) {
                            t.drop(DropReason::HandoffFull, 1);
                            let _ = dropped.push(m);
                        }
                    }
                    None => {
                        t.drop(DropReason::BadHandoff, 1);
                        let _ = dropped.push(m);
                    }
                }
                None
            }
        });
        if handed {
            for (w, b) in hs.iter_mut().enumerate() {
                if b.is_empty() {
                    continue;
                }
                if let Some(r) = handoff_out.get_mut(w).and_then(Option::as_mut) {
                    t.handoff_out += r.enqueue_burst(b) as u64;
                }
                if !b.is_empty() {
                    let kind = if handoff_out.get(w).is_some_and(Option::is_some) {
                        DropReason::HandoffFull
                    } else {
                        DropReason::BadHandoff
                    };
                    t.drop(kind, b.len() as u32);
                    b.free_all();
                }
            }
        }
    }

    fn send_originated(
        tx: &mut [Option<TxBuffer>],
        vlan: Option<&VlanRt>,
        originated: &mut Originated,
        t: &mut Tally,
    ) {
        let mut dropped = Burst::new();
        for m in originated.drain() {
            let p = m.meta().out_port;
            vlan_io::to_tx(tx, vlan, t, &mut dropped, m, p);
            if dropped.is_full() {
                dropped.free_all();
            }
        }
        dropped.free_all();
    }

    fn write_tally(c: &LcoreCounters, t: &Tally) {
        if t.tx.sent > 0 {
            c.tx_packets.add(t.tx.sent as u64);
            c.tx_bytes.add(t.tx.sent_bytes);
        }
        if t.tx.refused > 0 {
            c.drops[DropReason::TxFull as usize].add(t.tx.refused as u64);
        }
        if t.ring_out > 0 {
            c.ring_out.add(t.ring_out);
        }
        if t.handoff_out > 0 {
            c.handoff_out.add(t.handoff_out);
        }
        t.drops.write_to(c);
    }

    fn housekeeping(&mut self, scratch: &mut Scratch, now: u64) {
        self.stage_pass(&mut scratch.originated, &mut scratch.later, now, false);
        self.process_later(scratch, now);
    }

    /// Runs the packets stages gave back ([`StageCtx::later`]) through the chain from the
    /// stage that gave them back. Packets given back while doing so wait for the next call.
    #[inline]
    fn process_later(&mut self, scratch: &mut Scratch, now: u64) {
        if scratch.later.is_empty() {
            return;
        }
        let mut b = std::mem::replace(&mut scratch.later, Burst::new());
        self.process_burst(&mut b, scratch, u16::MAX, In::Later, now);
    }

    /// Every stage's housekeeping, or (`last`) its shutdown; drops they count go to this
    /// lcore's counters.
    fn stage_pass(&mut self, originated: &mut Originated, later: &mut Burst, now: u64, last: bool) {
        let mut drops = DropTally::new();
        for (si, stage) in self.chain.iter_mut().enumerate() {
            let mut ctx = StageCtx {
                now,
                tsc_hz: self.cfg.tsc_hz,
                lcore: self.lcore,
                worker: self.index,
                workers: self.workers,
                pool: self.pool,
                rx: None,
                in_port: None,
                meta_valid: true,
                count_rx: false,
                rx_bytes: None,
                originated: &mut *originated,
                later: &mut *later,
                stage: si,
                all: None,
                drops: &mut drops,
                resized: false,
                grown: 0,
                tagged: None,
            };
            if last {
                stage.shutdown(&mut ctx);
            } else {
                stage.housekeeping(&mut ctx);
            }
        }
        drops.write_to(&self.counters);
    }

    fn drain_mailbox(&mut self) {
        while let Some(msg) = self.mailbox.to_worker.pop() {
            let reply = match msg {
                Msg::ClearCounters => {
                    self.counters.reset();
                    if let Some(v) = &self.vlan {
                        v.counters.reset();
                    }
                    // The congestion counts of the rings this worker feeds.
                    if let Sink::Ring(p) = &mut self.sink {
                        p.reset_full();
                    }
                    for p in self.handoff_out.iter_mut().flatten() {
                        p.reset_full();
                    }
                    // Counted once applied: a reader that sees `messages` move (the clear
                    // op waits on it) then sees the zeroed counters.
                    std::sync::atomic::fence(Ordering::Release);
                    self.counters.messages.add(1);
                    continue;
                }
                Msg::Stage { id, stage, payload } => {
                    match self.chain.iter_mut().find(|s| s.name() == stage) {
                        None => Reply::Rejected {
                            id,
                            reason: format!("lcore {} has no stage '{stage}'", self.lcore),
                        },
                        Some(s) => match s.control(payload) {
                            Ok(old) => Reply::Applied { id, old },
                            Err(_) => Reply::Rejected {
                                id,
                                reason: format!("stage '{stage}' does not accept this message"),
                            },
                        },
                    }
                }
            };
            std::sync::atomic::fence(Ordering::Release);
            self.counters.messages.add(1);
            // The reply queue has the same capacity as the request queue, and the management
            // thread drains it before sending more; if it is full anyway, the reply (and the
            // replaced object with it) is dropped here, which only costs a free on this lcore.
            let _ = self.mailbox.from_worker.push(reply);
        }
    }
}
