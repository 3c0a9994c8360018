//! Rate limiting: policers bound to classes or per source (section [policer]).

use serde::Deserialize;

use super::ErrAt;
use crate::config::{Config, ConfigError};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicerConfig {}

pub fn validate(_c: &Config, _err: ErrAt<'_>) -> Result<(), ConfigError> {
    Ok(())
}
