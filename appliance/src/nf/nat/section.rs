//! The `[nat]` section of the configuration file, as parsed (serde, unknown keys refused).
//! What it means and how it is checked: `config.rs` next to this file.

use serde::Deserialize;
use toml::Spanned;

/// The section type the configuration holds for this network function.
pub type Section = NatConfig;
/// Whether the `nat` stage chooses an egress port (a chain must end with such a stage).
pub const CHOOSES_EGRESS: bool = false;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {
    pub inside: Spanned<Vec<Spanned<String>>>,
    pub outside: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub pool: Vec<Spanned<String>>,
    pub port_range: Option<Spanned<[u32; 2]>>,
    pub filtering: Option<Spanned<String>>,
    pub max_sessions: Option<Spanned<u32>>,
    #[serde(default)]
    pub lru_reclaim: bool,
    #[serde(default)]
    pub max_sessions_per_host: u32,
    #[serde(default)]
    pub no_nat: Vec<Spanned<String>>,
    #[serde(default, rename = "static")]
    pub statics: Vec<Spanned<StaticEntry>>,
    /// Port blocks for the pool: a host takes blocks of this many ports (bulk port
    /// allocation), logged one record per block.
    pub port_block: Option<Spanned<u32>>,
    pub blocks_per_host: Option<Spanned<u32>>,
    /// File the port block records go to (RFC 5424 syslog lines, appended).
    pub block_log: Option<Spanned<String>>,
    /// Deterministic maps (RFC 7422): `{ inside = "10.9.0.0/24", outside = "198.51.100.0/30" }`.
    #[serde(default)]
    pub deterministic: Vec<Spanned<DetEntry>>,
    #[serde(default)]
    pub timeouts: TimeoutConfig,
    /// Seed of port randomisation and hashing (labs: identical runs allocate identically).
    pub seed: Option<u64>,
    /// Sessions examined for expiry per housekeeping call.
    pub expiry_budget: Option<Spanned<u32>>,
}

/// One static mapping: `outside = "A[:port]"`, `inside = "B[:port]"`, `proto` for ports.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticEntry {
    pub outside: Spanned<String>,
    pub inside: Spanned<String>,
    pub proto: Option<Spanned<String>>,
}

/// One deterministic map: inside prefix onto outside prefix, each inside host to a fixed
/// outside address and port block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetEntry {
    pub inside: Spanned<String>,
    pub outside: Spanned<String>,
    /// Translate inbound packets to a port of a block without a session on this box (return
    /// traffic of a flow another box, or this one before a restart, translated).
    #[serde(default)]
    pub stateless_inbound: bool,
}

/// Idle timeouts in seconds (fractions allowed, for labs).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutConfig {
    pub tcp_established: Option<Spanned<f64>>,
    pub tcp_transitory: Option<Spanned<f64>>,
    pub udp: Option<Spanned<f64>>,
    pub icmp: Option<Spanned<f64>>,
}
