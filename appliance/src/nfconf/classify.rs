//! ACL classifier: classes, rules, default action (section [classify]).

use serde::Deserialize;

use super::ErrAt;
use crate::config::{Config, ConfigError};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {}

pub fn validate(_c: &Config, _err: ErrAt<'_>) -> Result<(), ConfigError> {
    Ok(())
}
