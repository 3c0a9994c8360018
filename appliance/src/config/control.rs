//! `[control]`: the control socket and the Prometheus listener.

use serde::Deserialize;
use toml::Spanned;

use super::Config;
use super::error::{ConfigError, Pos};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Path of the control socket (at most 107 bytes: `sun_path`).
    #[serde(default = "ControlConfig::d_socket")]
    pub socket: Spanned<String>,
    /// Group whose members may use the socket (besides root).
    pub group: Option<Spanned<String>>,
    /// Loopback address:port of the Prometheus listener (off when absent).
    pub prometheus: Option<Spanned<String>>,
    #[serde(default = "ControlConfig::d_clients")]
    pub max_clients: usize,
    /// A client silent for this long is disconnected, milliseconds (10..=3600000).
    #[serde(default = "ControlConfig::d_timeout")]
    pub client_timeout_ms: Spanned<u64>,
}

impl ControlConfig {
    fn d_socket() -> Spanned<String> {
        Spanned::new(0..0, "/run/pollfwd/pollfwd.sock".into())
    }
    fn d_clients() -> usize {
        16
    }
    fn d_timeout() -> Spanned<u64> {
        Spanned::new(0..0, 5000)
    }
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: Self::d_socket(),
            group: None,
            prometheus: None,
            max_clients: Self::d_clients(),
            client_timeout_ms: Self::d_timeout(),
        }
    }
}

pub(super) fn validate(
    c: &Config,
    pos: &Pos<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if let Some(p) = &c.control.prometheus {
        match p.get_ref().parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => {}
            Ok(_) => {
                return Err(pos.err(
                    p.span(),
                    "control.prometheus must be a loopback address (127.0.0.1:PORT or [::1]:PORT)",
                ));
            }
            Err(_) => {
                return Err(pos.err(
                    p.span(),
                    format!(
                        "control.prometheus '{}' is not an address:port",
                        p.get_ref()
                    ),
                ));
            }
        }
    }
    let s = &c.control.socket;
    if s.get_ref().is_empty() || s.get_ref().len() > 107 || s.get_ref().contains('\0') {
        return Err(pos.err(
            s.span(),
            format!(
                "control.socket '{}': a Unix socket path of 1..=107 bytes",
                s.get_ref()
            ),
        ));
    }
    let t = &c.control.client_timeout_ms;
    if !(10..=3_600_000).contains(t.get_ref()) {
        return Err(pos.err(
            t.span(),
            format!(
                "control.client_timeout_ms {} must be 10..=3600000",
                t.get_ref()
            ),
        ));
    }
    if c.control.max_clients == 0 {
        warnings.push("control.max_clients = 0: the control socket accepts nobody".into());
    }
    Ok(())
}
