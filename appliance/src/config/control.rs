//! `[control]`: the control socket and the Prometheus listener.

use serde::Deserialize;
use toml::Spanned;

use super::Config;
use super::error::{ConfigError, Pos};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    #[serde(default = "ControlConfig::d_socket")]
    pub socket: String,
    /// Group whose members may use the socket (besides root).
    pub group: Option<Spanned<String>>,
    /// Loopback address:port of the Prometheus listener (off when absent).
    pub prometheus: Option<Spanned<String>>,
    #[serde(default = "ControlConfig::d_clients")]
    pub max_clients: usize,
    /// A client silent for this long is disconnected, milliseconds.
    #[serde(default = "ControlConfig::d_timeout")]
    pub client_timeout_ms: u64,
}

impl ControlConfig {
    fn d_socket() -> String {
        "/run/pollfwd/pollfwd.sock".into()
    }
    fn d_clients() -> usize {
        16
    }
    fn d_timeout() -> u64 {
        5000
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
    if c.control.max_clients == 0 {
        warnings.push("control.max_clients = 0: the control socket accepts nobody".into());
    }
    Ok(())
}
