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
    /// The static routes (over DPDK port ids): each prefix's next hops (several: ECMP).
    pub statics: BTreeMap<Prefix, Vec<StaticRoute>>,
    /// The static IPv6 routes (over DPDK port ids).
    pub statics6: BTreeMap<Prefix6, Vec<StaticRoute6>>,
    /// NAT outside addresses as last changed live (`nat.static.*`, a NAT reload); None: those
    /// of the configuration.
    pub nat_addrs: Option<Vec<u32>>,
    /// The proxy list the workers use, when it is not `init`'s (held here so that the one a
    /// worker replaces is freed on the control side).
    pub proxy: Option<Arc<[ProxyArp]>>,
    /// Routes taken from the kernel's routing table (`[fib_sync]`, over DPDK port ids), with
    /// their origin. A prefix that is also a connected or static route is held here but not
    /// installed (shadowed).
    pub synced: BTreeMap<Prefix, Synced<StaticRoute>>,
    pub synced6: BTreeMap<Prefix6, Synced<StaticRoute6>>,
    /// Changes of `synced`/`synced6` so far (a reload prepared before one rebuilds at commit).
    pub synced_gen: u64,
    /// Tables installed so far (any cause: a route change, a reload, FIB sync).
    pub table_gen: u64,
    /// The FIB sync counters.
    pub sync_stats: SyncStats,
}

/// A route from the kernel's table: one next hop, or several (a multipath route: an ECMP
/// group in the table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced<R> {
    /// Its next hops in the kernel's order (at least one, at most
    /// [`pollfwd_nf::forward::ecmp::MAX_PATHS`], each once).
    pub hops: Arc<[R]>,
    /// The kernel route's `rtm_protocol` (who installed it: 186 BGP, 188 OSPF, ...).
    pub proto: u8,
}

/// What the FIB sync did since pollfwd started.
#[derive(Debug, Clone, Default)]
pub struct SyncStats {
    /// Routes added or changed, and removed (kernel events and resynchronisations).
    pub installed: u64,
    pub withdrawn: u64,
    /// Routes ignored, by reason (another table, not a punt interface, a route type pollfwd
    /// does not take, ...).
    pub ignored: BTreeMap<&'static str, u64>,
    /// Routes refused: beyond `max_routes`, or not resolvable (a gateway that is one of the
    /// box's own addresses).
    pub refused_limit: u64,
    pub refused_invalid: u64,
    /// Multipath routes taken (added or changed), of which with next hops of unequal weights
    /// (installed with equal shares: the table has no weights), and with more than
    /// [`pollfwd_nf::forward::ecmp::MAX_PATHS`] next hops out of punt interfaces (the first
    /// ones are installed).
    pub multipath: u64,
    pub multipath_weights_ignored: u64,
    pub multipath_truncated: u64,
    /// Multipath routes with next hops out of other interfaces than the punt ones: those
    /// out of punt interfaces are installed.
    pub multipath_partial: u64,
    /// Tables compiled, full dumps read (start and after a lost notification), netlink
    /// notifications lost (the socket overflowed: a dump follows).
    pub batches: u64,
    /// ... of which changed in place (the table the previous batch replaced).
    pub in_place: u64,
    pub dumps: u64,
    pub overflows: u64,
    /// The netlink socket's receive buffer as the kernel reports it (bytes; it counts double
    /// what was asked for, its bookkeeping included).
    pub socket_buffer: usize,
    /// The last batch: routes changed and the time to compile and install it.
    pub last_batch_changes: u64,
    pub last_batch_ms: f64,
    /// The last batch of notifications: from the first one read to the table installed.
    pub last_batch_latency_ms: f64,
    /// ... of which collecting the batch.
    pub last_batch_window_ms: f64,
    /// The last error (the reader restarts after it).
    pub last_error: Option<String>,
}

/// A route list by prefix, each prefix's next hops in list order.
pub fn by_prefix<P: Ord, R: Copy>(list: &[R], prefix: impl Fn(&R) -> P) -> BTreeMap<P, Vec<R>> {
    let mut m: BTreeMap<P, Vec<R>> = BTreeMap::new();
    for r in list {
        m.entry(prefix(r)).or_default().push(*r);
    }
    m
}
