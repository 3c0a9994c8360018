//! The forward NF's control-plane state: the state every worker shares (interfaces,
//! neighbours, proxy ARP) and the table they run, the static routes, and the proxy ARP list in
//! force when NAT's outside addresses changed live.

use std::collections::BTreeMap;
use std::sync::Arc;

use pollfwd_nf::forward::table::{FwdTable, Prefix, StaticRoute};
use pollfwd_nf::forward::table6::{Prefix6, StaticRoute6};
use pollfwd_nf::forward::{FwdShared, ProxyArp};

/// Control-plane state of the forward NF.
#[derive(Default, Clone)]
pub struct Plane {
    /// The shared state and table the workers run (None: no worker runs the stage).
    pub init: Option<(Arc<FwdShared>, Arc<FwdTable>)>,
    /// The static routes (over DPDK port ids).
    pub statics: BTreeMap<Prefix, StaticRoute>,
    /// The static IPv6 routes (over DPDK port ids).
    pub statics6: BTreeMap<Prefix6, StaticRoute6>,
    /// NAT outside addresses as last changed live (`nat.static.*`, a NAT reload); None: those
    /// of the configuration.
    pub nat_addrs: Option<Vec<u32>>,
    /// The proxy list the workers use, when it is not `init`'s (held here so that the one a
    /// worker replaces is freed on the control side).
    pub proxy: Option<Arc<[ProxyArp]>>,
}
