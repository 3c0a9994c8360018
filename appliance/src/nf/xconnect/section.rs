//! The `[xconnect]` section: port pairs, each forwarding to the other.

use serde::Deserialize;
use toml::Spanned;

/// The section type the configuration holds for this network function.
pub type Section = XconnectConfig;
/// Whether the `xconnect` stage chooses an egress port (a chain must end with such a stage).
pub const CHOOSES_EGRESS: bool = true;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XconnectConfig {
    pub pairs: Vec<Spanned<[String; 2]>>,
}
