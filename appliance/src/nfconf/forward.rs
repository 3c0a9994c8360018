//! IPv4 routing: routes, neighbours, proxy ARP, ICMP (section [forward]).

use serde::Deserialize;

use super::ErrAt;
use crate::config::{Config, ConfigError};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {}

pub fn validate(_c: &Config, _err: ErrAt<'_>) -> Result<(), ConfigError> {
    Ok(())
}
