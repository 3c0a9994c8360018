//! The `[forward]` section of the configuration file, as parsed (serde, unknown keys refused).
//! What it means and how it is checked: `config.rs` next to this file.

use serde::Deserialize;
use toml::Spanned;

/// The section type the configuration holds for this network function.
pub type Section = ForwardConfig;
/// Whether the `forward` stage chooses an egress port (a chain must end with such a stage).
pub const CHOOSES_EGRESS: bool = true;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    #[serde(default)]
    pub routes: Vec<Spanned<RouteConfig>>,
    #[serde(default)]
    pub neighbors: Vec<Spanned<NeighborConfig>>,
    #[serde(default)]
    pub proxy_arp: Vec<Spanned<ProxyArpConfig>>,
    pub arp_timeout_s: Option<Spanned<u64>>,
    pub arp_retry_ms: Option<Spanned<u64>>,
    pub arp_retries: Option<Spanned<u32>>,
    pub arp_queue: Option<Spanned<usize>>,
    pub icmp_errors_per_s: Option<Spanned<u32>>,
    pub icmp_burst: Option<Spanned<u32>>,
    pub arp_requests_per_s: Option<Spanned<u32>>,
    pub neighbor_capacity: Option<Spanned<usize>>,
}

/// A static route: `prefix` via the gateway `via`, out of `port`, or both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub prefix: Spanned<String>,
    pub via: Option<Spanned<String>>,
    pub port: Option<Spanned<String>>,
}

/// A static neighbour.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborConfig {
    pub address: Spanned<String>,
    pub mac: Spanned<String>,
    pub port: Spanned<String>,
}

/// Addresses answered by proxy ARP.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyArpConfig {
    pub prefix: Spanned<String>,
    pub port: Option<Spanned<String>>,
}
