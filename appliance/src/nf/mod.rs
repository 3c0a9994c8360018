//! The network functions' appliance side, one folder each, next to its data path in the `nf`
//! crate (`nf/src/<name>`): `section.rs` (its config section as parsed), `config.rs` (what the
//! section means, validated with file:line:col), `state.rs` (its control-plane state), `ops.rs`
//! (its operator commands) and `mod.rs` (its [`crate::module::Nf`] implementation: building a
//! worker's stage, reload, summary, metrics). [`list`] names them all, once.

pub mod list;
pub mod plane;

pub mod classify;
pub mod forward;
pub mod macswap;
pub mod nat;
pub mod policer;
pub mod xconnect;
