//! The policer's control-plane state: the policers in force (as configured, changed by
//! `policer.set`, or reloaded), the DSCP pre-colours, and every worker's counters.

use std::sync::Arc;

use dpdk::meter::Color;
use pollfwd_nf::policer::WorkerCounters;

use super::config::PolicerSpec;

/// Control-plane state of the policer.
#[derive(Clone)]
pub struct Plane {
    /// The policers, table order.
    pub specs: Vec<PolicerSpec>,
    pub precolor: [Color; 64],
    /// Each policer worker's counters (registered as its stage is built).
    pub workers: Vec<Arc<WorkerCounters>>,
}

impl Default for Plane {
    fn default() -> Self {
        Plane {
            specs: Vec::new(),
            precolor: pollfwd_nf::policer::rfc2597_precolor(),
            workers: Vec::new(),
        }
    }
}
