//! `[punt]`: the control-plane path to Linux (docs/punt.md). Each interface with an address
//! gets a Linux TAP interface `<prefix><interface name>` carrying its addresses; packets for
//! the box that the data plane does not answer itself go there, what the kernel sends there
//! leaves by the interface.

use serde::Deserialize;
use toml::Spanned;

use super::Config;
use super::error::{ConfigError, Pos};

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PuntConfig {
    /// Whether the punt path is on.
    #[serde(default)]
    pub enable: bool,
    /// Packets punted per second, all workers together (each worker gets an equal share).
    #[serde(default = "PuntConfig::d_rate")]
    pub rate_pps: Spanned<u32>,
    /// Packets each worker may punt back to back before the rate applies.
    #[serde(default = "PuntConfig::d_burst")]
    pub burst: Spanned<u32>,
    /// Prefix of the TAP interfaces' names (`<prefix><interface name>`).
    #[serde(default = "PuntConfig::d_prefix")]
    pub prefix: Spanned<String>,
}

impl Default for PuntConfig {
    fn default() -> Self {
        PuntConfig {
            enable: false,
            rate_pps: Self::d_rate(),
            burst: Self::d_burst(),
            prefix: Self::d_prefix(),
        }
    }
}

impl PuntConfig {
    fn d_rate() -> Spanned<u32> {
        Spanned::new(0..0, 10_000)
    }
    fn d_burst() -> Spanned<u32> {
        Spanned::new(0..0, 64)
    }
    fn d_prefix() -> Spanned<String> {
        Spanned::new(0..0, "pf-".into())
    }
}

/// Whether `name` is usable as a Linux interface name part: printable ASCII without '/',
/// ':' or white space (what `dev_valid_name` accepts, minus the alias separator).
fn ifname_chars_ok(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

pub fn validate(c: &Config, pos: &Pos<'_>) -> Result<(), ConfigError> {
    let p = &c.punt;
    let prefix = p.prefix.get_ref();
    if !ifname_chars_ok(prefix) {
        return Err(pos.err(
            p.prefix.span(),
            format!(
                "punt prefix '{prefix}': only printable characters other than '/', ':' and spaces"
            ),
        ));
    }
    if !p.enable {
        return Ok(());
    }
    if *p.rate_pps.get_ref() == 0 {
        return Err(pos.err(
            p.rate_pps.span(),
            "punt rate_pps must be at least 1 (set enable = false to punt nothing)",
        ));
    }
    if *p.burst.get_ref() == 0 {
        return Err(pos.err(p.burst.span(), "punt burst must be at least 1"));
    }
    for i in c.ifaces().filter(|i| i.address.is_some()) {
        let tap = format!("{prefix}{}", i.name.get_ref());
        if tap.len() > IFNAME_MAX {
            return Err(pos.err(
                i.name.span(),
                format!(
                    "interface '{}': its punt interface name '{tap}' is {} bytes, Linux allows {IFNAME_MAX} (shorten the name or [punt] prefix)",
                    i.name.get_ref(),
                    tap.len()
                ),
            ));
        }
        if !ifname_chars_ok(i.name.get_ref()) {
            return Err(pos.err(
                i.name.span(),
                format!(
                    "interface '{}': not usable in a Linux interface name (punt is on): only printable characters other than '/', ':' and spaces",
                    i.name.get_ref()
                ),
            ));
        }
    }
    Ok(())
}
