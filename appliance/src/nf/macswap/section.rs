//! `[macswap]`: the macswap stage has no settings; an empty section is accepted.

use serde::Deserialize;

/// The section type the configuration holds for this network function.
pub type Section = MacswapConfig;
/// Whether the `macswap` stage chooses an egress port (a chain must end with such a stage).
pub const CHOOSES_EGRESS: bool = false;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacswapConfig {}
