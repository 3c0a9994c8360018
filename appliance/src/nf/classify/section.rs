//! The `[classify]` section of the configuration file, as parsed (serde, unknown keys refused).
//! What it means and how it is checked: `config.rs` next to this file.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The section type the configuration holds for this network function.
pub type Section = ClassifyConfig;
/// Whether the `classify` stage chooses an egress port (a chain must end with such a stage).
pub const CHOOSES_EGRESS: bool = false;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// "permit" (default) or "deny", for packets no rule matches.
    pub default: Option<Spanned<String>>,
    /// Class labels rules may set; class id = index + 1.
    #[serde(default)]
    pub classes: Vec<Spanned<String>>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// A TOML file with more rules (`rules = [...]`), relative to the config file.
    pub rules_file: Option<Spanned<String>>,
    /// The rules of `rules_file`, read once by `validate` (before EAL starts).
    #[serde(skip)]
    pub file_rules: OnceLock<Vec<RuleText>>,
}

/// A number or a string in the config (`dport = 53` or `dport = "1000-2000"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumOrStr {
    Num(i64),
    Str(String),
}

impl std::fmt::Display for NumOrStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NumOrStr::Num(n) => write!(f, "{n}"),
            NumOrStr::Str(s) => write!(f, "{s}"),
        }
    }
}

/// One rule as written in TOML, each value with its position.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub src: Option<Spanned<String>>,
    pub dst: Option<Spanned<String>>,
    pub proto: Option<Spanned<NumOrStr>>,
    pub sport: Option<Spanned<NumOrStr>>,
    pub dport: Option<Spanned<NumOrStr>>,
    pub in_port: Option<Spanned<String>>,
    pub priority: Option<Spanned<i64>>,
    pub action: Option<Spanned<String>>,
    pub class: Option<Spanned<String>>,
}

/// One rule as text, the form shared by the config, `acl.add` (JSON) and `acl.list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleText {
    /// Source prefix "a.b.c.d/len" or address (absent: any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    /// "tcp", "udp", "icmp", "sctp", "any" or a protocol number 0..=255.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<NumOrStr>,
    /// Port N or range "N-M" (inclusive). For ICMP: the query identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport: Option<NumOrStr>,
    /// Port N or range "N-M" (inclusive). For ICMP: `type * 256 + code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dport: Option<NumOrStr>,
    /// Ingress port name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_port: Option<String>,
    /// Higher wins; default 0; ties: the earlier rule wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// "permit" (default) or "deny".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Class label (permit rules only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}
