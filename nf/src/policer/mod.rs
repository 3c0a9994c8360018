//! Rate limiting: srTCM (RFC 2697) and trTCM (RFC 2698) policers, metered with DPDK's
//! `rte_meter` arithmetic written in Rust ([`tcm`]; profiles built by `rte_meter`),
//! colour-blind or colour-aware, each bound to a class of the classify stage, to every packet
//! no class policer took (the default policer), or per source (an IPv4 address or an IPv6
//! source prefix, /64 by default: a bounded table of meters per family, created on a source's
//! first packet and aged out when idle).
//!
//! Per colour the policer transmits the packet (it continues down the chain), drops it
//! (`policer_green`/`policer_yellow`/`policer_red`), or remarks its DSCP (RFC 2474) and
//! continues: IPv4 with the header checksum updated incrementally (RFC 1624), IPv6 in the
//! traffic class (no checksum). The colour is also written to [`dpdk::PktMeta::color`] for
//! later stages. A malformed IPv6 packet is dropped with the IPv6 parser's reason when the
//! policer reads its header.
//!
//! Metering counts whole Ethernet frames (`pkt_len`, no FCS): the bytes an operator sees in the
//! port counters. Meters and counters are per worker lcore: when several workers run the stage
//! and share a class's traffic, each meters its own share (pipeline mode puts the policer on one
//! lcore for an exact aggregate).
//!
//! Data path: a loop chosen per table (a lone default policer gets one monomorphised for its
//! kind and mode; anything else a lookup per packet); an aggregate meter is refilled once
//! per burst and each packet then costs two compares and a subtraction; no call into C, no
//! allocation, no lock; per-policer counts are kept in the stage and written to the shared
//! single-writer counters once per burst. Tables are built off the data path
//! ([`PolicerTable`], [`Update`]) and swapped in between bursts through
//! [`pollfwd_pipeline::Stage::control`].
//!
//! One concern per file: [`tcm`] (the token-bucket arithmetic), [`profile`] (meter profiles,
//! actions, definitions, DSCP names), [`table`] (the configuration and its run-time state),
//! [`sources`] (the per-source table with ageing and migration), [`counters`] (seqlock
//! counters), [`control`] (control messages), [`stage`] (the stage).

pub mod control;
pub mod counters;
pub mod profile;
pub mod sources;
pub mod stage;
pub mod table;
pub mod tcm;

pub use control::{ClearCounters, LIST_SLOTS, ListSources, SourceEntry, SourcePage, Update};
pub use counters::{PolicerCounters, PolicerSnapshot, WorkerCounters};
pub use profile::{
    Action, MeterState, Params, PerSource, PolicerDef, Profile, parse_dscp, rfc2597_precolor,
};
pub use sources::{Key, MAX_PROBE, MIGRATE_BUDGET, Refused, SourceTable, Sources, prefix_mask6};
pub use stage::Policer;
pub use table::{PolicerState, PolicerTable};

/// Most policers one stage holds.
pub const MAX_POLICERS: usize = 64;
/// Largest per-source table (sources per policer per worker, each address family).
pub const MAX_SOURCES: u32 = 1 << 18;
/// Prefix length IPv6 sources are metered on by default: a /64 is one subnet, in which a host
/// picks its addresses at will (RFC 8981 temporary addresses).
pub const DEFAULT_IPV6_PREFIX: u8 = 64;
/// How often the ageing sweep goes over a whole source table, in seconds (spread over the
/// housekeeping calls: a few slots each time). A source is removed between `idle_s` and
/// `idle_s` + this after its last packet.
const AGE_SWEEP_S: u64 = 1;
