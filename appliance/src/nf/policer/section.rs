//! The `[policer]` section of the configuration file, as parsed (serde, unknown keys refused).
//! What it means and how it is checked: `config.rs` next to this file.

use serde::Deserialize;
use toml::Spanned;

/// The section type the configuration holds for this network function.
pub type Section = PolicerConfig;
/// Whether the `policer` stage chooses an egress port (a chain must end with such a stage).
pub const CHOOSES_EGRESS: bool = false;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicerConfig {
    /// DSCPs pre-coloured yellow for colour-aware policers (default AF12, AF22, AF32, AF42).
    pub precolor_yellow: Option<Vec<Spanned<Dscp>>>,
    /// DSCPs pre-coloured red for colour-aware policers (default AF13, AF23, AF33, AF43).
    pub precolor_red: Option<Vec<Spanned<Dscp>>>,
    #[serde(default)]
    pub policers: Vec<Spanned<PolicerEntry>>,
}

/// A DSCP given as a number or a name (`"EF"`, `"AF12"`, `"CS1"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Dscp {
    Num(i64),
    Name(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicerEntry {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub units: Option<Spanned<String>>,
    pub cir: Spanned<u64>,
    pub pir: Option<Spanned<u64>>,
    pub cbs: Option<Spanned<u64>>,
    pub ebs: Option<Spanned<u64>>,
    pub pbs: Option<Spanned<u64>>,
    pub color_mode: Option<Spanned<String>>,
    pub green: Option<Spanned<String>>,
    pub yellow: Option<Spanned<String>>,
    pub red: Option<Spanned<String>>,
    pub bind: Option<Spanned<BindEntry>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindEntry {
    pub class: Option<Spanned<String>>,
    #[serde(default)]
    pub per_source: bool,
    pub max_sources: Option<Spanned<u32>>,
    pub idle_s: Option<Spanned<u64>>,
    /// IPv6 sources are metered per prefix of this length (1..=128, default 64).
    pub ipv6_prefix: Option<Spanned<u8>>,
}
