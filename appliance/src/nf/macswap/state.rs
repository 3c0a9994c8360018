//! macswap keeps no control-plane state.

/// Control-plane state of macswap.
pub type Plane = ();
