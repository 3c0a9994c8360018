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
    /// The ECMP flow hash: "5-tuple" (default) or "symmetric".
    pub ecmp_hash: Option<Spanned<String>>,
}

/// A static route: `prefix` via the gateway `via` (or several: ECMP), out of `port`, or both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub prefix: Spanned<String>,
    pub via: Option<Spanned<Via>>,
    pub port: Option<Spanned<String>>,
}

/// The gateways of a route: one string, or a list of them (several next hops, ECMP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via(pub Vec<String>);

impl<'de> Deserialize<'de> for Via {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Via, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Via;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a gateway address or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Via, E> {
                Ok(Via(vec![s.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Via, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = a.next_element::<String>()? {
                    v.push(s);
                }
                Ok(Via(v))
            }
        }
        d.deserialize_any(V)
    }
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
