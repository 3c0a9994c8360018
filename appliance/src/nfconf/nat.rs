//! NAT44: inside/outside, pools, static mappings, timeouts (section [nat]).

use serde::Deserialize;

use super::ErrAt;
use crate::config::{Config, ConfigError};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {}

pub fn validate(_c: &Config, _err: ErrAt<'_>) -> Result<(), ConfigError> {
    Ok(())
}
