//! pollfwd's lcore runtime: the [`Stage`] trait network functions implement, the one table of
//! [`DropReason`]s, per-lcore [`LcoreCounters`], and the run-to-completion [`Worker`] loop
//! (which also runs pipeline mode: a worker's source or sink may be an SP/SC ring).

pub mod counters;
pub mod drop;
pub mod health;
mod moves;
pub mod stage;
pub mod vlan;
pub mod worker;

pub use counters::{
    EXIT_PANICKED, EXIT_RETURNED, LcoreCounters, LcoreSnapshot, MAX_STAGES, StageSnapshot,
};
pub use drop::DropReason;
pub use stage::{Payload, RxBurst, Stage, StageCtx, Verdict};
pub use worker::{Fault, Leftovers, LoopConfig, Mailbox, Msg, Reply, Sink, Source, VlanRt, Worker};
