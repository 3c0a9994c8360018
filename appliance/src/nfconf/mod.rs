//! Configuration sections of the network functions, one file each. Each file defines its
//! section's serde struct (unknown keys refused) and a `validate` function that
//! `config::validate` calls with an error builder that turns a span into file:line:col.

pub mod classify;
pub mod forward;
pub mod nat;
pub mod policer;

use std::ops::Range;

use crate::config::{Config, ConfigError};

/// Builds a positioned error from a span of the config text.
pub type ErrAt<'a> = &'a dyn Fn(Range<usize>, String) -> ConfigError;

/// Runs every NF section's validation.
pub fn validate(c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
    forward::validate(c, err)?;
    classify::validate(c, err)?;
    nat::validate(c, err)?;
    policer::validate(c, err)?;
    Ok(())
}
