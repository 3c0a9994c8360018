//! pollfwd's network functions, each a [`pipeline::Stage`] over bursts:
//! - [`xconnect`]: port pairs, what enters port A leaves port B (and back);
//! - [`macswap`]: swaps source and destination MAC, then continues.

pub use pollfwd_pipeline as pipeline;

pub mod macswap;
pub mod xconnect;

/// Frames shorter than an Ethernet header.
pub const ETH_HDR_LEN: usize = 14;
