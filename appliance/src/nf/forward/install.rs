//! How the forward stage's routes become the table every worker reads, shared by the
//! operator's route changes (`ops`) and the FIB sync's batches (`sync`): the complete route
//! lists of both families, a table compiled from them and handed to every worker, and the
//! control-plane state it runs on.

use std::collections::BTreeMap;
use std::sync::Arc;

use pollfwd_nf::forward::table::{
    self, FwdTable, Iface, Prefix, RouteEntry, RouteKind, StaticRoute,
};
use pollfwd_nf::forward::table6::{self, Prefix6, RouteEntry6, StaticRoute6};

use super::STAGE;
use super::state::{Plane, Synced};
use crate::ops::OpCtx;

/// The routes taken from the kernel, by prefix.
pub type Synced4Map = BTreeMap<Prefix, Synced<StaticRoute>>;
pub type Synced6Map = BTreeMap<Prefix6, Synced<StaticRoute6>>;

/// The complete route lists of both families: interface routes, static routes, then the
/// routes from the kernel (kind dynamic) whose prefix is neither (those are shadowed: held,
/// not installed) and that resolve.
pub(super) fn resolve_all(
    ifaces: &[Iface],
    statics: &[StaticRoute],
    statics6: &[StaticRoute6],
    synced: &Synced4Map,
    synced6: &Synced6Map,
) -> Result<(Vec<RouteEntry>, Vec<RouteEntry6>), String> {
    let mut v = table::resolve(ifaces, statics)?;
    if !synced.is_empty() {
        let taken: std::collections::HashSet<Prefix> = v.iter().map(|e| e.prefix).collect();
        for (_, r) in synced.iter().filter(|(p, _)| !taken.contains(p)) {
            for h in r.hops.iter() {
                if let Ok(mut e) = table::resolve_static(ifaces, h) {
                    e.kind = RouteKind::Dynamic;
                    v.push(e);
                }
            }
        }
    }
    let mut v6 = table6::resolve6(ifaces, statics6)?;
    if !synced6.is_empty() {
        let taken: std::collections::HashSet<Prefix6> = v6.iter().map(|e| e.prefix).collect();
        for (_, r) in synced6.iter().filter(|(p, _)| !taken.contains(p)) {
            for h in r.hops.iter() {
                if let Ok(mut e) = table6::resolve_static6(ifaces, h) {
                    e.kind = RouteKind::Dynamic;
                    v6.push(e);
                }
            }
        }
    }
    Ok((v, v6))
}

/// The name an operator knows for a kernel route's `rtm_protocol` (iproute2's
/// `rt_protos`, FRR's own numbers). The kernel's `static` (4) is `kernel-static`, apart from
/// pollfwd's own static routes.
pub fn origin_name(proto: u8) -> String {
    match proto {
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "kernel-static",
        9 => "ra",
        11 => "zebra",
        12 => "bird",
        16 => "dhcp",
        18 => "keepalived",
        42 => "babel",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        190 => "ripng",
        192 => "eigrp",
        193 => "ldp",
        194 => "sharp",
        195 => "pbr",
        196 => "frr-static",
        197 => "openfabric",
        _ => return format!("proto-{proto}"),
    }
    .to_string()
}

pub(super) fn with_cp<R>(
    ctx: &OpCtx<'_>,
    f: impl FnOnce(&mut Plane) -> Result<R, String>,
) -> Result<R, String> {
    ctx.cp(|cp| {
        if cp.forward.init.is_none() {
            return Err(
                "no worker runs the forward stage (add \"forward\" to an lcore's stages)".into(),
            );
        }
        f(&mut cp.forward)
    })
}

/// Compiles the routes of `cp` with `statics` and `statics6` and hands the table to every
/// worker. On success the control-plane state takes the new routes. Multipath routes keep
/// their flows' next hops ([`FwdTable::build_after`]).
pub(super) fn install(
    ctx: &OpCtx<'_>,
    cp: &mut Plane,
    statics: BTreeMap<Prefix, Vec<StaticRoute>>,
    statics6: BTreeMap<Prefix6, Vec<StaticRoute6>>,
) -> Result<Installed, String> {
    let (shared, old) = cp.init.clone().expect("initialised by with_cp");
    let list: Vec<StaticRoute> = statics.values().flatten().copied().collect();
    let list6: Vec<StaticRoute6> = statics6.values().flatten().copied().collect();
    let t0 = std::time::Instant::now();
    let (entries, entries6) = resolve_all(&shared.ifaces, &list, &list6, &cp.synced, &cp.synced6)?;
    let t = Arc::new(FwdTable::build_after(
        &entries,
        &entries6,
        dpdk::ffi::SOCKET_ID_ANY,
        Some(&*old),
        old.workers(),
    )?);
    let build_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let routes = t.routes();
    let (workers, retired) = swap_in(ctx, cp, t)?;
    cp.statics = statics;
    cp.statics6 = statics6;
    Ok(Installed {
        routes,
        workers,
        build_ms: (build_ms * 10.0).round() / 10.0,
        retired,
        entries: (entries, entries6),
    })
}

/// Hands table `t` to every worker and makes it the one in force; returns the number of
/// workers and the table it replaced.
pub(super) fn swap_in(
    ctx: &OpCtx<'_>,
    cp: &mut Plane,
    t: Arc<FwdTable>,
) -> Result<(usize, Option<Arc<FwdTable>>), String> {
    let (shared, _) = cp.init.clone().expect("initialised by with_cp");
    let workers = ctx.broadcast(STAGE, |_| t.clone())?;
    let retired = cp.init.replace((shared, t)).map(|(_, t)| t);
    cp.table_gen += 1;
    Ok((workers, retired))
}

/// What a route change did.
pub(super) struct Installed {
    pub(super) routes: usize,
    pub(super) workers: usize,
    pub(super) build_ms: f64,
    /// The table replaced (freeing one zeroes its memory: tens of ms for large tables).
    pub(super) retired: Option<Arc<FwdTable>>,
    /// The routes compiled.
    pub(super) entries: (Vec<RouteEntry>, Vec<RouteEntry6>),
}
