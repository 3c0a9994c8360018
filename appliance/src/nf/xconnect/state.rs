//! xconnect keeps no control-plane state: its pairs table is rebuilt from the config.

/// Control-plane state of xconnect.
pub type Plane = ();
