//! NAT44's control-plane state: the static mappings as configured or last changed, the pool
//! and port range they are checked against, and every NAT worker's shared counters.

use std::sync::Arc;

use pollfwd_nf::nat::det::DetMap;
use pollfwd_nf::nat::statics::StaticMapping;
use pollfwd_nf::nat::stats::NatShared;

/// Control-plane state of NAT44.
#[derive(Default, Clone)]
pub struct Plane {
    pub statics: Vec<StaticMapping>,
    pub pool: Vec<u32>,
    pub range: (u16, u16),
    /// Deterministic maps (fixed for the life of the process: a reload cannot change them).
    pub det: Vec<DetMap>,
    /// When the NAT configuration in force was loaded (what `nat.who` answers for).
    pub since: Option<std::time::SystemTime>,
    /// The port block records (`blocklog.rs`).
    pub block_log: Arc<std::sync::Mutex<super::blocklog::BlockLog>>,
    /// Each NAT worker's shared counters (registered as its stage is built).
    pub workers: Vec<Arc<NatShared>>,
}
