//! The stage trait every network function implements.
//!
//! A stage processes a whole burst and writes one [`Verdict`] per packet. The runtime then moves
//! packets: `Continue` ones stay in the burst for the next stage, `Tx(port)` ones go to that
//! port's TX buffer, `Drop(reason)` ones are freed in bulk and counted under the reason. Stages
//! never allocate, lock or make syscalls per packet; packets they originate (ARP requests, ICMP
//! errors) come from the lcore's pool and leave through [`StageCtx::send`].

use std::any::Any;

use dpdk::{BURST_MAX, Burst, Mbuf, Mempool};

use crate::drop::DropReason;

/// What happens to a packet after a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the next stage (or, after the last stage, to the lcore's chain sink).
    Continue,
    /// Transmit on this DPDK port id.
    Tx(u16),
    /// Free it and count it under this reason.
    Drop(DropReason),
    /// The packet belongs to worker N (e.g. it owns the NAT session): hand it over through an
    /// SP/SC ring; it resumes at this same stage on that worker (chains of workers joined by
    /// hand-off are identical). A full ring is a counted `handoff_full` drop.
    Handoff(u16),
    /// The stage keeps the packet for later (e.g. until ARP resolves its next hop): the runtime
    /// gives it back through [`Stage::adopt`] (in burst order) and counts it neither as sent
    /// nor as dropped; the stage sends it later with [`StageCtx::send`] (counted as TX) or
    /// frees it and counts the drop with [`StageCtx::count_drop`].
    Held,
}

/// Per-lcore context handed to a stage with each burst.
pub struct StageCtx<'a> {
    /// TSC read after the burst was received (for chains where a stage
    /// [`Stage::needs_clock`]; otherwise the last loop round's reading).
    pub now: u64,
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// EAL lcore id of the worker.
    pub lcore: u32,
    /// Index of the worker (0..workers).
    pub worker: usize,
    /// Number of workers.
    pub workers: usize,
    /// The pool of this lcore's NUMA node, for packets the stage originates.
    pub pool: Mempool,
    /// What the runtime knows of the burst as received, for the first stage of a chain only
    /// (`None` for later stages and for bursts from rings): the port every packet arrived on
    /// and the smallest first-segment length among them. A stage can decide a whole burst
    /// from it without touching a packet (see [`StageCtx::verdict_all`]).
    pub rx: Option<RxBurst>,
    /// Port every packet of the burst arrived on, at every stage of the chain (`None` for
    /// bursts from rings, and in housekeeping).
    pub in_port: Option<u16>,
    /// Whether the packets' [`dpdk::PktMeta`] holds what the runtime and earlier stages (or
    /// the previous lcore) wrote. It is `false` only for bursts from a port on a chain where
    /// no stage [`Stage::needs_meta`]: the runtime then skips initialising it, so a stage must
    /// not read it (it may fill it in for its own use: nothing after it reads it).
    pub meta_valid: bool,
    /// The runtime did not count this burst's bytes: the stage must
    /// [`StageCtx::report_rx_bytes`] (see [`Stage::counts_rx_bytes`]).
    pub count_rx: bool,
    pub(crate) rx_bytes: Option<u64>,
    pub(crate) originated: &'a mut Originated,
    /// Packets the stage gives back to the chain ([`StageCtx::later`]).
    pub(crate) later: &'a mut Burst,
    /// Index of the stage in its chain.
    pub(crate) stage: usize,
    pub(crate) all: Option<Verdict>,
    /// Drops of the stage's own packets (held ones it frees, originated ones that found no
    /// room), by reason.
    pub(crate) drops: &'a mut DropTally,
    /// A stage changed the length of a packet of the burst (see [`StageCtx::note_resized`]).
    pub(crate) resized: bool,
    /// Bytes the burst's packets have beyond the receive bytes reported (see
    /// [`StageCtx::note_grown`]).
    pub(crate) grown: u64,
    /// For a first stage that [`Stage::takes_tagged`], a burst from a port with VLAN
    /// sub-interfaces: the frames as received, tags and all (`in_port` and `rx` are the
    /// port's), and what the stage needs to do the runtime's receive and transmit work for
    /// them. `None` otherwise: every frame is on its interface, tags popped.
    pub tagged: Option<crate::vlan::TaggedRx<'a>>,
}

/// Packets the stages of an lcore may originate during one burst (or one housekeeping pass)
/// before [`StageCtx::send`] refuses more: room for ARP and ICMP and for a burst of jumbo
/// datagrams the forward stage fragments (a 9000-byte datagram is 7 fragments at MTU 1500,
/// 6 of them originated: 64 x 6 = 384).
pub const ORIGINATED_MAX: usize = 8 * BURST_MAX;

/// The packets stages originate, sent at the end of each stage's pass over a burst: a buffer
/// of [`ORIGINATED_MAX`] allocated once per lcore, never grown.
pub(crate) struct Originated(Vec<Mbuf>);

impl Originated {
    pub(crate) fn new() -> Originated {
        Originated(Vec::with_capacity(ORIGINATED_MAX))
    }

    #[inline]
    fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.0.len() < ORIGINATED_MAX {
            self.0.push(m);
            Ok(())
        } else {
            Err(m)
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes every packet out, in the order they were sent.
    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, Mbuf> {
        self.0.drain(..)
    }
}

/// Drops counted during one burst (or one housekeeping pass), written to the shared counters
/// once at its end.
pub(crate) struct DropTally {
    pub(crate) counts: [u32; DropReason::COUNT],
    /// Bit r set: `counts[r]` may be non-zero (the reasons this tally touched), so that
    /// writing a tally out visits those reasons only, not the whole table.
    touched: u128,
}

// One bit per reason in `DropTally::touched`.
const _: () = assert!(DropReason::COUNT <= 128);

impl DropTally {
    pub(crate) fn new() -> DropTally {
        DropTally {
            counts: [0; DropReason::COUNT],
            touched: 0,
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, r: DropReason, n: u32) {
        self.counts[r as usize] += n;
        self.touched |= 1 << r as u32;
    }

    /// Adds the tally to an lcore's drop counters (its owner only).
    #[inline]
    pub(crate) fn write_to(&self, c: &crate::LcoreCounters) {
        let mut t = self.touched;
        while t != 0 {
            let i = t.trailing_zeros() as usize;
            t &= t - 1;
            let n = self.counts[i];
            if n > 0 {
                c.drops[i].add(n as u64);
            }
        }
    }
}

/// A burst as it came off one RX queue (see [`StageCtx::rx`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxBurst {
    /// DPDK port id of the queue.
    pub port: u16,
    /// Smallest `data_len` (bytes in the first segment) of the burst's packets.
    pub min_data_len: u16,
}

impl StageCtx<'_> {
    /// Gives back a packet the stage held ([`Verdict::Held`], then [`Stage::adopt`]): it
    /// comes back to this same stage, and then goes on through the rest of the chain, right
    /// after the current burst or housekeeping pass (e.g. NAT's fragments that arrived before
    /// their first fragment, once it has come). `Err(m)` when a burst's worth is already
    /// waiting: the stage frees the packet and counts the drop.
    pub fn later(&mut self, mut m: Mbuf) -> Result<(), Mbuf> {
        m.meta_mut().resume = self.stage as u8;
        self.later.push(m)
    }

    /// Sends a packet the stage built itself (ARP request, ICMP error, fragment) out of
    /// `port`, after the stage's pass over the burst. If [`ORIGINATED_MAX`] are pending the
    /// packet is freed and counted as `tx_full`.
    pub fn send(&mut self, mut m: Mbuf, port: u16) {
        m.meta_mut().out_port = port;
        if self.originated.push(m).is_err() {
            self.drops.add(DropReason::TxFull, 1);
        }
    }

    /// Gives every packet of the burst the verdict `v`: the runtime then ignores the
    /// per-packet verdicts and moves the burst as a whole (no per-packet dispatch). A stage
    /// whose packets all go the same way (a cross-connect, a forward stage whose burst has one
    /// egress) calls this instead of filling `verdicts`.
    #[inline]
    pub fn verdict_all(&mut self, v: Verdict) {
        self.all = Some(v);
    }

    /// The sum of `pkt_len` over the burst as received (see [`Stage::counts_rx_bytes`]).
    #[inline]
    pub fn report_rx_bytes(&mut self, bytes: u64) {
        self.rx_bytes = Some(bytes);
    }

    /// Tells the runtime that the stage changed the length of a packet of this burst (e.g.
    /// cut a datagram into fragments), although it declares [`Stage::changes_length`] false
    /// because it rarely does: the burst's bytes are then counted again on transmit.
    #[inline]
    pub fn note_resized(&mut self) {
        self.resized = true;
    }

    /// Tells the runtime that the packets of this burst hold `bytes` more in all than the
    /// receive bytes the stage reported: a stage that [`Stage::takes_tagged`] reports the
    /// bytes of the frames it forwards with their VLAN tags kept as if popped (as the
    /// runtime's receive pass counts them), and says here how many tag bytes they still
    /// carry, so that the burst's transmit bytes need no count of their own.
    #[inline]
    pub fn note_grown(&mut self, bytes: u64) {
        self.grown += bytes;
    }

    /// Counts `n` packets the stage freed itself (packets it held, see [`Verdict::Held`])
    /// as dropped for `reason`, in the lcore's drop counters.
    #[inline]
    pub fn count_drop(&mut self, reason: DropReason, n: u32) {
        self.drops.add(reason, n);
    }
}

/// A network function working on bursts.
pub trait Stage: Send {
    /// Name shown in `pollfwdctl runtime` (static: one per stage kind).
    fn name(&self) -> &'static str;

    /// Processes `pkts`, writing one verdict per packet into `verdicts` (same length, pre-set
    /// to `Continue`), or one verdict for all of them through [`StageCtx::verdict_all`].
    fn process(&mut self, ctx: &mut StageCtx<'_>, pkts: &mut [Mbuf], verdicts: &mut [Verdict]);

    /// Whether the stage reads [`dpdk::PktMeta`] of a packet it did not fill in itself; if no
    /// stage of a chain does, the runtime skips initialising it (one cache line per packet
    /// saved) and tells the stages so ([`StageCtx::meta_valid`]).
    fn needs_meta(&self) -> bool {
        true
    }

    /// Takes a packet the stage gave the verdict [`Verdict::Held`], after `process` returned
    /// (once per held packet, in burst order). The default frees it: a stage that holds
    /// packets overrides this.
    fn adopt(&mut self, m: Mbuf) {
        drop(m);
    }

    /// Whether the stage reads [`StageCtx::now`] (timers, meters, ageing). If no stage of a
    /// chain does, the runtime skips the per-burst TSC read and `now` is the loop round's
    /// (possibly a few rounds old).
    fn needs_clock(&self) -> bool {
        true
    }

    /// Whether the stage may change the length of a packet it passes on (trim, extend,
    /// encapsulate). If no stage of a chain does, the runtime counts a burst's bytes once on
    /// receive and reuses the figure when the burst leaves whole. Packets a stage originates
    /// through [`StageCtx::send`] do not count here. Debug builds check the declaration.
    fn changes_length(&self) -> bool {
        true
    }

    /// Whether the stage, first in its chain, sums the frame lengths of a burst from a port
    /// itself (it reads every packet's length anyway) and reports the total with
    /// [`StageCtx::report_rx_bytes`] when [`StageCtx::count_rx`] asks for it. The runtime
    /// then skips its own receive pass over the mbufs (on chains that need no metadata) and
    /// gives the stage no [`StageCtx::rx`]. Reported before the stage drops or changes
    /// anything: the bytes as received.
    fn counts_rx_bytes(&self) -> bool {
        false
    }

    /// Whether the stage, first in its chain, takes bursts from a port with VLAN
    /// sub-interfaces as received ([`StageCtx::tagged`]) instead of the runtime popping the
    /// tags and splitting the burst by interface. Such a stage must give every frame it does
    /// not forward itself to [`crate::vlan::TaggedRx::demux`] before anything else (or drop it
    /// as `vlan_unknown` if that finds no interface), count the sub-interfaces' receive and
    /// transmit, report the receive bytes as popped, and call [`StageCtx::note_resized`] for
    /// a burst where it popped a tag, else [`StageCtx::note_grown`] with the tag bytes its
    /// frames kept.
    fn takes_tagged(&self) -> bool {
        false
    }

    /// Whether the stage may return [`Verdict::Handoff`]; the appliance then joins every pair
    /// of workers running this chain with hand-off rings.
    fn uses_handoff(&self) -> bool {
        false
    }

    /// Periodic work between bursts (ageing, expiry), at most every `housekeeping_us`.
    fn housekeeping(&mut self, _ctx: &mut StageCtx<'_>) {}

    /// The worker is stopping: packets the stage still holds (e.g. parked for ARP) are freed
    /// here and counted with `ctx.count_drop(DropReason::Shutdown, n)`, so that every packet
    /// received is accounted for in the summary.
    fn shutdown(&mut self, _ctx: &mut StageCtx<'_>) {}

    /// A control message from the management thread (new table, counter clear...). The stage
    /// swaps it in and returns what it replaced, which is freed off the data path after the
    /// worker acknowledged. Unknown messages are returned unchanged.
    fn control(&mut self, msg: Payload) -> Result<Payload, Payload> {
        Err(msg)
    }
}

/// A control message for a stage, or the object a stage gave up for one: its type is the
/// stage's own (a table, a message enum), which the stage checks by downcasting. Only the stage
/// and the operation that built it know it; the mailbox carries it unopened.
pub type Payload = Box<dyn Any + Send>;

/// Runs a stage outside a worker loop, on bursts the caller builds: stage-level tests and
/// micro-benchmarks (`appliance/examples/fwd_bench.rs`). Packets the stage originates stay in
/// the harness (at most a burst; more are counted as drops and freed).
pub struct Harness {
    pub pool: Mempool,
    pub tsc_hz: u64,
    originated: Originated,
    later: Burst,
    tally: DropTally,
}

impl Harness {
    pub fn new(pool: Mempool, tsc_hz: u64) -> Harness {
        Harness {
            pool,
            tsc_hz,
            originated: Originated::new(),
            later: Burst::new(),
            tally: DropTally::new(),
        }
    }

    /// The packets stages gave back with [`StageCtx::later`] since the last call.
    pub fn take_later(&mut self) -> Burst {
        std::mem::replace(&mut self.later, Burst::new())
    }

    /// One call of `stage.process` on `pkts` received on `in_port` at TSC `now`, as the
    /// worker makes it for the first stage of a chain (`meta_valid` as the runtime would
    /// set it). Returns the whole-burst verdict if the stage gave one.
    pub fn process(
        &mut self,
        stage: &mut dyn Stage,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        (now, in_port, meta_valid): (u64, u16, bool),
    ) -> Option<Verdict> {
        let min_data_len = pkts.iter().map(|m| m.data_len()).min().unwrap_or(0);
        let mut ctx = self.idle_ctx(now);
        ctx.rx = Some(RxBurst {
            port: in_port,
            min_data_len,
        });
        ctx.in_port = Some(in_port);
        ctx.meta_valid = meta_valid;
        stage.process(&mut ctx, pkts, verdicts);
        ctx.all
    }

    /// One call of `stage.process` on `pkts` as the worker makes it for a burst from a ring
    /// or a hand-off (another lcore's packets): metadata valid, no receive port (each
    /// packet's is in its metadata).
    pub fn process_ring(
        &mut self,
        stage: &mut dyn Stage,
        pkts: &mut [Mbuf],
        verdicts: &mut [Verdict],
        now: u64,
    ) -> Option<Verdict> {
        // The worker's context for such a burst is the one between bursts: no receive.
        let mut ctx = self.idle_ctx(now);
        stage.process(&mut ctx, pkts, verdicts);
        ctx.all
    }

    /// Takes the packets the stage originated (with their `out_port` in the metadata), in the
    /// order it sent them.
    pub fn take_originated(&mut self) -> Vec<Mbuf> {
        self.originated.drain().collect()
    }

    /// Packets the stage originated that found no room (counted `tx_full`).
    pub fn originated_refused(&self) -> u32 {
        self.tally.counts[DropReason::TxFull as usize]
    }

    /// A context for the stage's other entry points, and for a burst from another lcore: no
    /// received burst, no receive port, metadata valid.
    fn idle_ctx(&mut self, now: u64) -> StageCtx<'_> {
        StageCtx {
            now,
            tsc_hz: self.tsc_hz,
            lcore: 0,
            worker: 0,
            workers: 1,
            pool: self.pool,
            rx: None,
            in_port: None,
            meta_valid: true,
            count_rx: false,
            rx_bytes: None,
            originated: &mut self.originated,
            later: &mut self.later,
            stage: 0,
            all: None,
            drops: &mut self.tally,
            resized: false,
            grown: 0,
            tagged: None,
        }
    }

    /// One call of `stage.housekeeping` at TSC `now`, as the worker makes it between bursts.
    pub fn housekeeping(&mut self, stage: &mut dyn Stage, now: u64) {
        let mut ctx = self.idle_ctx(now);
        stage.housekeeping(&mut ctx);
    }

    /// `stage.shutdown` at TSC `now`, as the worker calls it when it stops.
    pub fn shutdown(&mut self, stage: &mut dyn Stage, now: u64) {
        let mut ctx = self.idle_ctx(now);
        stage.shutdown(&mut ctx);
    }

    /// Takes the drops the stage counted itself (held packets it freed, originated ones that
    /// found no room) since the last call, by reason.
    pub fn take_drops(&mut self) -> Vec<(DropReason, u32)> {
        let v = DropReason::ALL
            .iter()
            .filter(|r| self.tally.counts[**r as usize] > 0)
            .map(|r| (*r, self.tally.counts[*r as usize]))
            .collect();
        self.tally = DropTally::new();
        v
    }
}
