//! The forward stage's operator commands (`route.list`, `route.add`, `route.del`,
//! `route.lookup`, `neigh.list`, `forward.stats`), and [`build`], which resolves a
//! configuration's routes, compiles one table and builds the state every worker shares
//! (interfaces, neighbour table): at start-up and on reload. A route change compiles a complete new table off the data path and hands
//! it to every worker with [`OpCtx::broadcast`]; the old one is freed after all of them
//! switched (`install`). Args and replies are described in docs/control-protocol.md
//! ("forward"). Routes from the kernel's table (`route.sync`, the batches of `[fib_sync]`):
//! `sync`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use pollfwd_nf::forward::ecmp::MAX_PATHS;
use pollfwd_nf::forward::table::{
    self, FwdTable, Hop, Iface, Prefix, RouteEntry, RouteKind, StaticRoute,
};
use pollfwd_nf::forward::table6::{self, Hop6, Prefix6, RouteEntry6, StaticRoute6};
use pollfwd_nf::forward::{
    FwdShared, Install, ProxyArp, SetProxy, StaticNeighbor, StaticNeighbor6,
};
use serde_json::{Map, Value, json};

use super::STAGE;
use super::config::{self as conf, Route, RouteText};
use super::install::{Synced4Map, Synced6Map, install, origin_name, resolve_all, with_cp};
use super::state::Plane;
use crate::config::Config;
use crate::config::addr::Addresses;
use crate::ops::{CliDoc, Commit, Op, OpCtx, OpError, arg, req};
use crate::state::State;

pub const OPS: &[Op] = &[
    Op {
        name: "route.list",
        help: "routes of both families: prefix, kind (connected/local/broadcast/static/dynamic), origin, via, port (args: kind?, origin?, family?)",
        run: route_list,
        cli: Some(CliDoc {
            words: &["route", "list"],
            about: "List the routes: prefix, kind, origin, via, port",
            args: &[
                arg(
                    "kind",
                    "connected|local|broadcast|static|dynamic",
                    "only routes of this kind",
                ),
                arg(
                    "origin",
                    "connected|local|broadcast|static|bgp|ospf|...",
                    "only routes of this origin",
                ),
                arg("family", "ipv4|ipv6", "only routes of this family"),
            ],
            example: "pollfwdctl route list kind=static family=ipv6",
        }),
    },
    Op {
        name: "route.add",
        help: "add static routes: {prefix, via?, port?, replace?} or {routes: [...]}",
        run: route_add,
        cli: Some(CliDoc {
            words: &["route", "add"],
            about: "Add static routes live (every forward worker switches between two bursts)",
            args: &[
                req("prefix", "A.B.C.D/LEN|X:Y::Z/LEN", "destination prefix"),
                arg(
                    "via",
                    "A.B.C.D[,A.B.C.D..]|X:Y::Z[,..]",
                    "gateway, or up to 16 separated by commas (ECMP); without port, the port whose subnet holds each (link-local: give port)",
                ),
                arg("port", "NAME", "egress port; without via: an on-link route"),
                arg(
                    "replace",
                    "true",
                    "change an existing static route instead of refusing",
                ),
                arg(
                    "routes",
                    "JSON",
                    "several at once instead of prefix/via/port: '[{\"prefix\": .., \"via\": ..}, ..]'",
                ),
            ],
            example: "pollfwdctl route add prefix=10.0.0.0/8 via=198.51.100.2",
        }),
    },
    Op {
        name: "route.del",
        help: "delete static routes: {prefix} or {prefixes: [...]}",
        run: route_del,
        cli: Some(CliDoc {
            words: &["route", "del"],
            about: "Delete static routes live",
            args: &[
                req(
                    "prefix",
                    "A.B.C.D/LEN|X:Y::Z/LEN",
                    "the static route's prefix",
                ),
                arg(
                    "prefixes",
                    "JSON",
                    "several at once instead of prefix: '[\"10.0.0.0/8\", ..]'",
                ),
            ],
            example: "pollfwdctl route del prefix=10.0.0.0/8",
        }),
    },
    Op {
        name: "route.sync",
        help: "FIB sync from the kernel's routing table ([fib_sync]): settings, routes held, counters",
        run: super::sync::route_sync,
        cli: Some(CliDoc {
            words: &["route", "sync"],
            about: "FIB sync from the kernel's routing table: routes held and counters",
            args: &[],
            example: "pollfwdctl route sync",
        }),
    },
    Op {
        name: "route.lookup",
        help: "the route an address takes: {address}",
        run: route_lookup,
        cli: Some(CliDoc {
            words: &["route", "lookup"],
            about: "The route an address takes and its next hop",
            args: &[req("address", "A.B.C.D|X:Y::Z", "destination address")],
            example: "pollfwdctl route lookup address=10.1.2.3",
        }),
    },
    Op {
        name: "neigh.list",
        help: "neighbours (ARP and IPv6 neighbour discovery): address, MAC, port, state, age, probes (args: family?)",
        run: neigh_list,
        cli: Some(CliDoc {
            words: &["neigh", "list"],
            about: "Neighbours of both families: address, MAC, port, state, age, probes",
            args: &[arg("family", "ipv4|ipv6", "only neighbours of this family")],
            example: "pollfwdctl neigh list family=ipv6",
        }),
    },
    Op {
        name: "forward.stats",
        help: "forward stage counters per worker: ARP, ICMP, parked packets",
        run: forward_stats,
        cli: Some(CliDoc {
            words: &["forward", "stats"],
            about: "Forward stage counters per worker: ARP, ICMP, parked packets",
            args: &[],
            example: "pollfwdctl forward stats",
        }),
    },
];

fn ids<T: Copy>(v: Option<u16>, port_ids: &[u16], f: impl Fn(u16) -> T) -> Option<T> {
    v.map(|i| f(port_ids[i as usize]))
}

/// Everything the forward stage is built from, over interface ids.
pub(super) struct Built {
    pub shared: FwdShared,
    pub table: FwdTable,
    pub statics: Vec<StaticRoute>,
    pub statics6: Vec<StaticRoute6>,
}

/// Resolves and compiles a configuration's forward part (interfaces with their addresses,
/// routes, neighbours, proxy ARP, tunables) for interfaces `port_ids` (by interface index)
/// with MACs `port_macs` and MTUs `port_mtus`. Proxy
/// ARP covers the NAT outside addresses `nat_addrs` (None: the configuration's).
pub(super) fn build(
    c: &Config,
    port_ids: &[u16],
    port_macs: &[[u8; 6]],
    port_mtus: &[u16],
    nat_addrs: Option<&[u32]>,
    synced: (&Synced4Map, &Synced6Map),
    prev: Option<&FwdTable>,
) -> Result<Built, String> {
    let pid = port_ids;
    let ifaces = conf::ifaces(c, Some((port_ids, port_macs, port_mtus)));
    let statics: Vec<StaticRoute> = conf::static_routes(c)
        .into_iter()
        .map(|r| StaticRoute {
            port: ids(r.port, pid, |p| p),
            ..r
        })
        .collect();
    let statics6: Vec<StaticRoute6> = conf::static_routes6(c)
        .into_iter()
        .map(|r| StaticRoute6 {
            port: ids(r.port, pid, |p| p),
            ..r
        })
        .collect();
    let neighbors: Vec<StaticNeighbor> = conf::neighbors(c)
        .into_iter()
        .map(|n| StaticNeighbor {
            port: pid[n.port as usize],
            ..n
        })
        .collect();
    let neighbors6: Vec<StaticNeighbor6> = conf::neighbors6(c)
        .into_iter()
        .map(|n| StaticNeighbor6 {
            port: pid[n.port as usize],
            ..n
        })
        .collect();
    let proxy = proxy_list(c, pid, nat_addrs);
    let (entries, entries6) = resolve_all(&ifaces, &statics, &statics6, synced.0, synced.1)
        .map_err(|e| format!("forward: {e}"))?;
    // Multipath groups count per worker: a slot for each worker of the configuration.
    let workers = c.lcores.len();
    let t = FwdTable::build_after(&entries, &entries6, dpdk::ffi::SOCKET_ID_ANY, prev, workers)
        .map_err(|e| format!("forward: {e}"))?;
    let shared = FwdShared::new(
        ifaces,
        proxy,
        &neighbors,
        &neighbors6,
        conf::params(c),
        dpdk::tsc_hz(),
    )
    .map_err(|e| format!("forward: {e}"))?;
    Ok(Built {
        shared,
        table: t,
        statics,
        statics6,
    })
}

/// Proxy ARP ranges over interface ids: `[forward] proxy_arp` plus the NAT outside addresses
/// `nat_addrs` (None: the configuration's pool and static addresses) on NAT's outside ports.
fn proxy_list(c: &Config, port_ids: &[u16], nat_addrs: Option<&[u32]>) -> Vec<ProxyArp> {
    let list = match nat_addrs {
        None => conf::proxy_arp(c),
        Some(a) => {
            let mut v = conf::configured_proxy_arp(c);
            v.extend(conf::nat_proxy_arp(c, a));
            v
        }
    };
    list.into_iter()
        .map(|x| ProxyArp {
            port: ids(x.port, port_ids, |p| p),
            ..x
        })
        .collect()
}

/// NAT's outside addresses (pool and static) changed live: hands every forward worker a new
/// proxy ARP list (built here, swapped in between bursts) so the appliance answers ARP for
/// exactly these on NAT's outside ports (plus `[forward] proxy_arp` of `c`, the configuration
/// in force). Returns the number of workers (0 when no worker runs the forward stage). Called
/// by `nat.static.add` / `nat.static.del` and a NAT reload, after their own change.
pub fn set_nat_addresses(ctx: &OpCtx<'_>, c: &Config, addrs: Vec<u32>) -> Result<usize, String> {
    if !ctx.runs(STAGE) {
        return Ok(0);
    }
    let port_ids: Vec<u16> = ctx.state.ifaces.iter().map(|i| i.id).collect();
    let list: Arc<[ProxyArp]> = proxy_list(c, &port_ids, Some(&addrs)).into();
    with_cp(ctx, |cp| {
        let n = ctx.broadcast(STAGE, |_| SetProxy(list.clone()))?;
        cp.proxy = Some(list);
        cp.nat_addrs = Some(addrs);
        Ok(n)
    })
}

/// The proxy ARP list the workers use.
fn proxy_in_force(cp: &Plane) -> Arc<[ProxyArp]> {
    cp.proxy
        .clone()
        .unwrap_or_else(|| cp.init.as_ref().expect("initialised").0.proxy.clone())
}

/// The forward part of `reload`: when the [forward] section or a port address changed,
/// compiles the new tables (learnt neighbours carried over) and returns the step that swaps
/// them into every worker. Routes added live with `route.add` are replaced by the file's.
pub(super) fn prepare_reload(
    ctx: &OpCtx<'_>,
    old: &Config,
    new: &Config,
) -> Result<Option<Commit>, String> {
    // The interfaces' keys that are the forward stage's (changeable live): address, MSS
    // clamp, router advertisements.
    type Keys = (Option<Addresses>, Option<u16>, Option<bool>);
    let addrs = |c: &Config| -> Vec<Keys> {
        c.ifaces()
            .map(|i| {
                (
                    i.address.map(|a| a.get_ref().clone()),
                    i.mss_clamp.map(|m| *m.get_ref()),
                    i.ra.map(|r| *r.get_ref()),
                )
            })
            .collect()
    };
    if old.forward == new.forward && addrs(old) == addrs(new) {
        return Ok(None);
    }
    if !ctx.runs(STAGE) {
        return Ok(None);
    }
    let (port_ids, port_macs, port_mtus) = crate::state::iface_facts(&ctx.state.ifaces);
    let (old_shared, old_table, nat_addrs, synced, synced6, generation) = with_cp(ctx, |cp| {
        let (s, t) = cp.init.as_ref().expect("initialised");
        Ok((
            s.clone(),
            t.clone(),
            cp.nat_addrs.clone(),
            cp.synced.clone(),
            cp.synced6.clone(),
            cp.synced_gen,
        ))
    })?;
    // NAT addresses changed live stay (a NAT reload that changes them pushes its own list);
    // so do the routes taken from the kernel; multipath routes keep their flows' next hops.
    let mut b = build(
        new,
        &port_ids,
        &port_macs,
        &port_mtus,
        nat_addrs.as_deref(),
        (&synced, &synced6),
        Some(&*old_table),
    )?;
    // A reload that leaves what the shared state is made of as it was (interfaces, proxy ARP,
    // tunables, static neighbours: routes are the table's) keeps the running one, neighbour
    // tables and all, instead of a copy: the new one just built is dropped here, before
    // anything else is allocated, so its tables (384 KiB at the default capacity) neither stay
    // allocated under the next ACL build pool of this thread's malloc arena (the soak's RSS
    // steps at reloads, docs/reliability.md) nor lose what workers learn during the switch.
    let keep = b.shared.ifaces == old_shared.ifaces
        && b.shared.proxy == old_shared.proxy
        && b.shared.params == old_shared.params
        && conf::neighbors(old) == conf::neighbors(new)
        && conf::neighbors6(old) == conf::neighbors6(new);
    let shared = if keep {
        drop(b.shared);
        old_shared
    } else {
        b.shared.inherit(&old_shared);
        Arc::new(b.shared)
    };
    let t = Arc::new(b.table);
    let statics = b.statics;
    let statics6 = b.statics6;
    Ok(Some(Box::new(move |ctx: &OpCtx<'_>| {
        let n = ctx.broadcast(STAGE, |_| Install {
            table: t.clone(),
            shared: shared.clone(),
        })?;
        let routes = t.routes();
        with_cp(ctx, |cp| {
            cp.init = Some((shared.clone(), t.clone()));
            cp.table_gen += 1;
            cp.statics = super::state::by_prefix(&statics, |r| r.prefix);
            cp.statics6 = super::state::by_prefix(&statics6, |r| r.prefix);
            cp.proxy = None;
            // Routes from the kernel changed since this table was built: one more.
            if cp.synced_gen != generation {
                let (s4, s6) = (cp.statics.clone(), cp.statics6.clone());
                install(ctx, cp, s4, s6)?;
            }
            Ok(())
        })?;
        Ok(format!("forward: {routes} route(s) on {n} worker(s)"))
    })))
}

/// The `pollfwd_forward_*` Prometheus families: every `forward.stats` counter per worker,
/// the neighbour table's size and reuse.
pub(super) fn metrics(ctx: &OpCtx<'_>) -> String {
    use std::fmt::Write as _;
    let Ok((shared, table, mut st)) = with_cp(ctx, |cp| {
        let (shared, table) = cp.init.as_ref().expect("initialised");
        Ok((shared.clone(), table.clone(), shared.stats()))
    }) else {
        return String::new();
    };
    st.sort_by_key(|(w, _)| *w);
    let mut o = String::new();
    if let Some((_, first)) = st.first() {
        for (i, (name, _)) in first.values().iter().enumerate() {
            let _ = writeln!(
                o,
                "# HELP pollfwd_forward_{name}_total Forward stage: {} (forward.stats).",
                name.replace('_', " ")
            );
            let _ = writeln!(o, "# TYPE pollfwd_forward_{name}_total counter");
            for (w, s) in &st {
                let v = s.values()[i].1;
                let _ = writeln!(o, "pollfwd_forward_{name}_total{{worker=\"{w}\"}} {v}");
            }
        }
    }
    let now = dpdk::rdtsc();
    let _ = writeln!(
        o,
        "# HELP pollfwd_forward_neighbors IPv4 neighbour table entries (all states).\n\
         # TYPE pollfwd_forward_neighbors gauge\n\
         pollfwd_forward_neighbors {}",
        shared.neigh.entries(now).len()
    );
    let _ = writeln!(
        o,
        "# HELP pollfwd_forward_neighbors6 IPv6 neighbour table entries (all states).\n\
         # TYPE pollfwd_forward_neighbors6 gauge\n\
         pollfwd_forward_neighbors6 {}",
        shared.neigh6.entries(now).len()
    );
    let _ = writeln!(
        o,
        "# HELP pollfwd_forward_neighbor_capacity Neighbour table slots.\n\
         # TYPE pollfwd_forward_neighbor_capacity gauge\n\
         pollfwd_forward_neighbor_capacity {}",
        shared.neigh.capacity()
    );
    let _ = writeln!(
        o,
        "# HELP pollfwd_forward_neigh_reclaimed_total Neighbour slots reused for new addresses.\n\
         # TYPE pollfwd_forward_neigh_reclaimed_total counter\n\
         pollfwd_forward_neigh_reclaimed_total {}",
        shared.neigh.reclaimed() + shared.neigh6.reclaimed()
    );
    let _ = writeln!(
        o,
        "# HELP pollfwd_forward_nexthop_packets_total Packets routed to each next hop of a multipath (ECMP) route, all workers.\n\
         # TYPE pollfwd_forward_nexthop_packets_total counter"
    );
    let port = |p: u16| {
        ctx.state
            .iface_name(p)
            .map(str::to_string)
            .unwrap_or_else(|| p.to_string())
    };
    for (prefix, g) in table.groups() {
        for (h, n) in g.members.iter().zip(g.packets()) {
            if let Hop::Forward { port: p, gateway } = *h {
                let _ = writeln!(
                    o,
                    "pollfwd_forward_nexthop_packets_total{{prefix=\"{prefix}\",via=\"{}\",port=\"{}\"}} {n}",
                    ip_text(gateway),
                    port(p)
                );
            }
        }
    }
    for (prefix, g) in table.v6().into_iter().flat_map(|t6| t6.groups()) {
        for (h, n) in g.members.iter().zip(g.packets()) {
            if let Hop6::Forward { port: p, gateway } = *h {
                let _ = writeln!(
                    o,
                    "pollfwd_forward_nexthop_packets_total{{prefix=\"{prefix}\",via=\"{}\",port=\"{}\"}} {n}",
                    ip6_text(gateway),
                    port(p)
                );
            }
        }
    }
    if *ctx.state.config.config.fib_sync.enable.get_ref() {
        o += &super::sync::fib_sync_metrics(ctx);
    }
    o
}

/// An interface's name (a port or a VLAN sub-interface), from its id.
fn port_name(state: &State, id: u16) -> Value {
    state.iface_name(id).map(|n| json!(n)).unwrap_or(json!(id))
}

/// An interface's id (a port or a VLAN sub-interface), from its name.
fn port_id(state: &State, name: &str) -> Option<u16> {
    state.ifaces.iter().find(|i| i.name == name).map(|i| i.id)
}

fn ip_text(a: u32) -> String {
    Ipv4Addr::from(a).to_string()
}

fn ip6_text(a: u128) -> String {
    Ipv6Addr::from(a).to_string()
}

/// A resolved route of either family.
#[derive(Clone, Copy)]
enum Entry {
    V4(RouteEntry),
    V6(RouteEntry6),
}

impl Entry {
    fn kind(&self) -> RouteKind {
        match self {
            Entry::V4(e) => e.kind,
            Entry::V6(e) => e.kind,
        }
    }

    /// (family, address, length) for sorting: IPv4 first.
    fn sort_key(&self) -> (u8, u128, u8) {
        match self {
            Entry::V4(e) => (4, e.prefix.addr as u128, e.prefix.len),
            Entry::V6(e) => (6, e.prefix.addr, e.prefix.len),
        }
    }
}

/// The origin of a route: its kind, or for a dynamic one who installed it in the kernel.
fn origin_of(cp: &Plane, e: &Entry) -> String {
    let proto = match e {
        Entry::V4(r) if r.kind == RouteKind::Dynamic => cp.synced.get(&r.prefix).map(|s| s.proto),
        Entry::V6(r) if r.kind == RouteKind::Dynamic => cp.synced6.get(&r.prefix).map(|s| s.proto),
        _ => return e.kind().name().to_string(),
    };
    proto.map_or_else(|| "kernel".into(), origin_name)
}

fn entry_json(state: &State, e: &Entry) -> Value {
    let (prefix, kind, via, port) = match e {
        Entry::V4(e) => match e.hop {
            Hop::Forward { port, gateway } => (
                e.prefix.to_string(),
                e.kind,
                (gateway != 0).then(|| ip_text(gateway)),
                Some(port),
            ),
            Hop::Local | Hop::Broadcast | Hop::Group(_) => {
                (e.prefix.to_string(), e.kind, None, None)
            }
        },
        Entry::V6(e) => match e.hop {
            Hop6::Forward { port, gateway } => (
                e.prefix.to_string(),
                e.kind,
                (gateway != 0).then(|| ip6_text(gateway)),
                Some(port),
            ),
            Hop6::Local | Hop6::Group(_) => (e.prefix.to_string(), e.kind, None, None),
        },
    };
    json!({
        "prefix": prefix,
        "kind": kind.name(),
        "via": via,
        "port": port.map(|p| port_name(state, p)),
    })
}

/// A route of the kernel's table not installed because its prefix is a connected or static
/// route of pollfwd.
/// A route with several next hops has `via` and `port` as lists (as in [`route_json`]).
fn shadowed_json(
    state: &State,
    prefix: String,
    proto: u8,
    hops: impl Iterator<Item = (Option<String>, Option<u16>)>,
) -> Value {
    let hops: Vec<(Value, Value)> = hops
        .map(|(via, port)| (json!(via), json!(port.map(|p| port_name(state, p)))))
        .collect();
    let (via, port) = match &hops[..] {
        [(v, p)] => (v.clone(), p.clone()),
        _ => (
            hops.iter().map(|h| h.0.clone()).collect(),
            hops.iter().map(|h| h.1.clone()).collect(),
        ),
    };
    json!({
        "prefix": prefix,
        "origin": origin_name(proto),
        "via": via,
        "port": port,
    })
}

/// A forwarding entry's (port, gateway) (gateway 0: on-link), for matching group members.
fn path_key(e: &Entry) -> Option<(u16, u128)> {
    match e {
        Entry::V4(e) => match e.hop {
            Hop::Forward { port, gateway } => Some((port, gateway as u128)),
            _ => None,
        },
        Entry::V6(e) => match e.hop {
            Hop6::Forward { port, gateway } => Some((port, gateway)),
            _ => None,
        },
    }
}

/// Packets each next hop of a multipath prefix was sent, all workers summed, from the table
/// the workers run: by (port, gateway).
fn path_packets(t: &FwdTable, e: &Entry) -> BTreeMap<(u16, u128), u64> {
    let mut m = BTreeMap::new();
    match e {
        Entry::V4(e) => {
            if let Some(g) = t.group_of(e.prefix) {
                for (h, n) in g.members.iter().zip(g.packets()) {
                    if let Hop::Forward { port, gateway } = *h {
                        m.insert((port, gateway as u128), n);
                    }
                }
            }
        }
        Entry::V6(e) => {
            if let Some(g) = t.v6().and_then(|t6| t6.group_of(e.prefix)) {
                for (h, n) in g.members.iter().zip(g.packets()) {
                    if let Hop6::Forward { port, gateway } = *h {
                        m.insert((port, gateway), n);
                    }
                }
            }
        }
    }
    m
}

/// A route (the entries of one prefix) as JSON: [`entry_json`]; a route with several next
/// hops has `via` and `port` as lists and `nexthops`: each one's via, port and packets.
fn route_json(state: &State, t: &FwdTable, es: &[Entry]) -> Value {
    let mut v = entry_json(state, &es[0]);
    if es.len() > 1 {
        let packets = path_packets(t, &es[0]);
        let hops: Vec<Value> = es
            .iter()
            .map(|e| {
                let mut h = entry_json(state, e);
                let n = path_key(e).and_then(|k| packets.get(&k)).copied();
                json!({"via": h["via"].take(), "port": h["port"].take(), "packets": n.unwrap_or(0)})
            })
            .collect();
        v["via"] = hops.iter().map(|h| h["via"].clone()).collect();
        v["port"] = hops.iter().map(|h| h["port"].clone()).collect();
        v["nexthops"] = json!(hops);
    }
    v
}

/// Every route of both families, IPv4 first.
fn all_entries(cp: &Plane) -> Result<Vec<Entry>, String> {
    let (shared, _) = cp.init.as_ref().expect("initialised by with_cp");
    let statics: Vec<StaticRoute> = cp.statics.values().flatten().copied().collect();
    let statics6: Vec<StaticRoute6> = cp.statics6.values().flatten().copied().collect();
    let (e4, e6) = resolve_all(&shared.ifaces, &statics, &statics6, &cp.synced, &cp.synced6)?;
    let mut v: Vec<Entry> = e4.into_iter().map(Entry::V4).collect();
    v.extend(e6.into_iter().map(Entry::V6));
    Ok(v)
}

fn route_list(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    let kind = a.get("kind").and_then(Value::as_str);
    if let Some(k) = kind
        && !["connected", "local", "broadcast", "static", "dynamic"].contains(&k)
    {
        return Err(
            format!("kind '{k}': one of connected, local, broadcast, static, dynamic").into(),
        );
    }
    let origin = a.get("origin").and_then(Value::as_str);
    let family = match a.get("family").and_then(Value::as_str) {
        None => None,
        Some("ipv4" | "4") => Some(4),
        Some("ipv6" | "6") => Some(6),
        Some(f) => return Err(format!("family '{f}': ipv4 or ipv6").into()),
    };
    with_cp(ctx, |cp| {
        let mut v = all_entries(cp)?;
        v.sort_by_key(Entry::sort_key);
        let t = cp.init.as_ref().expect("initialised").1.clone();
        let routes: Vec<Value> = v
            .chunk_by(|a, b| a.sort_key() == b.sort_key())
            .filter(|es| kind.is_none_or(|k| es[0].kind().name() == k))
            .filter(|es| family.is_none_or(|f| es[0].sort_key().0 == f))
            .filter_map(|es| {
                let o = origin_of(cp, &es[0]);
                if origin.is_some_and(|want| want != o) {
                    return None;
                }
                let mut j = route_json(ctx.state, &t, es);
                j["origin"] = json!(o);
                Some(j)
            })
            .collect();
        let mut reply = json!({"count": routes.len(), "routes": routes});
        // Routes of the kernel whose prefix is a connected or static route: held, not
        // installed (listed apart, only when there are any).
        let installed: std::collections::HashSet<String> = v
            .iter()
            .filter(|e| e.kind() != RouteKind::Dynamic)
            .map(entry_prefix)
            .collect();
        let mut shadowed: Vec<Value> = Vec::new();
        if family != Some(6) {
            for (p, r) in &cp.synced {
                let t = p.to_string();
                if installed.contains(&t) {
                    shadowed.push(shadowed_json(
                        ctx.state,
                        t,
                        r.proto,
                        r.hops.iter().map(|h| (h.via.map(ip_text), h.port)),
                    ));
                }
            }
        }
        if family != Some(4) {
            for (p, r) in &cp.synced6 {
                let t = p.to_string();
                if installed.contains(&t) {
                    shadowed.push(shadowed_json(
                        ctx.state,
                        t,
                        r.proto,
                        r.hops.iter().map(|h| (h.via.map(ip6_text), h.port)),
                    ));
                }
            }
        }
        shadowed.retain(|s| origin.is_none_or(|o| s["origin"] == o));
        if !shadowed.is_empty() {
            reply["shadowed"] = json!(shadowed);
        }
        Ok(reply)
    })
    .map_err(OpError::from)
}

/// Parses one route object of the arguments into static routes over DPDK port ids: one per
/// gateway of `via` (a string, several separated by commas, or an array of strings: ECMP).
fn parse_route(state: &State, ifaces: &[Iface], r: &Value) -> Result<Vec<Route>, String> {
    let s = |k: &str| -> Result<Option<&str>, String> {
        match r.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("argument '{k}' must be a string")),
        }
    };
    let prefix = s("prefix")?.ok_or("missing string argument 'prefix'")?;
    let vias: Vec<Option<&str>> = match r.get("via") {
        None | Some(Value::Null) => vec![None],
        Some(Value::String(v)) => v.split(',').map(|g| Some(g.trim())).collect(),
        Some(Value::Array(v)) => v
            .iter()
            .map(|g| g.as_str().map(Some))
            .collect::<Option<_>>()
            .ok_or("argument 'via' must be a string or an array of strings")?,
        Some(_) => return Err("argument 'via' must be a string or an array of strings".into()),
    };
    if vias.is_empty() {
        return Err("argument 'via' lists no gateway".into());
    }
    if vias.len() > MAX_PATHS {
        return Err(format!("at most {MAX_PATHS} next hops per route"));
    }
    let mut out: Vec<Route> = Vec::new();
    for via in vias {
        let text = RouteText {
            prefix,
            via,
            port: s("port")?,
        };
        let mut sr = text.parse(&state.config.config).map_err(|(_, e)| e)?;
        if let Some(p) = text.port {
            sr = sr.with_port(Some(
                port_id(state, p).ok_or_else(|| format!("unknown port or interface '{p}'"))?,
            ));
        }
        match &sr {
            Route::V4(r) => table::resolve_static(ifaces, r).map(|_| ())?,
            Route::V6(r) => table6::resolve_static6(ifaces, r).map(|_| ())?,
        }
        if out.contains(&sr) {
            return Err(format!(
                "{}: gateway {} is given twice",
                sr.prefix_text(),
                via.unwrap_or_default()
            ));
        }
        out.push(sr);
    }
    Ok(out)
}

/// The route objects of `a`: `{routes: [...]}` or the object itself.
fn route_args(a: &Value) -> Result<Vec<&Value>, String> {
    match a.get("routes") {
        Some(Value::Array(v)) => Ok(v.iter().collect()),
        Some(_) => Err("argument 'routes' must be an array of route objects".into()),
        None => Ok(vec![a]),
    }
}

fn route_add(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    // Before the control-plane lock: it broadcasts from inside it (txn::change_lock).
    let _change = crate::txn::change_lock();
    let replace = a.get("replace").and_then(Value::as_bool).unwrap_or(false);
    with_cp(ctx, |cp| {
        let shared = cp.init.as_ref().expect("initialised").0.clone();
        let mut next = cp.statics.clone();
        let mut next6 = cp.statics6.clone();
        let mut added = 0usize;
        let mut replaced = 0usize;
        for (i, r) in route_args(a)?.into_iter().enumerate() {
            let hops = parse_route(ctx.state, &shared.ifaces, r)
                .map_err(|e| format!("route {}: {e}", i + 1))?;
            let sr = hops[0];
            let existed = match sr {
                Route::V4(r) => {
                    let v = hops.iter().filter_map(|h| match h {
                        Route::V4(h) => Some(*h),
                        Route::V6(_) => None,
                    });
                    next.insert(r.prefix, v.collect()).is_some()
                }
                Route::V6(r) => {
                    let v = hops.iter().filter_map(|h| match h {
                        Route::V6(h) => Some(*h),
                        Route::V4(_) => None,
                    });
                    next6.insert(r.prefix, v.collect()).is_some()
                }
            };
            match existed {
                true if !replace => {
                    return Err(format!(
                        "route {}: {} exists (pass \"replace\": true to change it)",
                        i + 1,
                        sr.prefix_text()
                    ));
                }
                true => replaced += 1,
                false => added += 1,
            }
        }
        let r = install(ctx, cp, next, next6)?;
        Ok(json!({
            "added": added, "replaced": replaced, "routes": r.routes,
            "workers": r.workers, "build_ms": r.build_ms,
        }))
    })
    .map_err(OpError::from)
}

fn route_del(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    // Before the control-plane lock: it broadcasts from inside it (txn::change_lock).
    let _change = crate::txn::change_lock();
    let prefixes: Vec<&str> = match (a.get("prefix"), a.get("prefixes")) {
        (Some(Value::String(p)), None) => vec![p.as_str()],
        (None, Some(Value::Array(v))) => v
            .iter()
            .map(|p| p.as_str().ok_or("'prefixes' must be an array of strings"))
            .collect::<Result<_, _>>()?,
        _ => return Err("give 'prefix' (a string) or 'prefixes' (an array)".into()),
    };
    with_cp(ctx, |cp| {
        let mut next = cp.statics.clone();
        let mut next6 = cp.statics6.clone();
        for p in &prefixes {
            let (removed, text) = if p.contains(':') {
                let pf = Prefix6::parse(p)?;
                (next6.remove(&pf).is_some(), pf.to_string())
            } else {
                let pf = Prefix::parse(p)?;
                (next.remove(&pf).is_some(), pf.to_string())
            };
            if !removed {
                let what = all_entries(cp)?
                    .into_iter()
                    .find(|e| entry_prefix(e) == text)
                    .map(|e| match e.kind() {
                        RouteKind::Dynamic => format!(
                            "{text} is a route from the kernel's table, origin {} (withdraw it in the routing daemon)",
                            origin_of(cp, &e)
                        ),
                        k => format!(
                            "{text} is a {} route (change the port's address)",
                            k.name()
                        ),
                    })
                    .unwrap_or_else(|| format!("no static route {text}"));
                return Err(what);
            }
        }
        let r = install(ctx, cp, next, next6)?;
        Ok(json!({
            "deleted": prefixes.len(), "routes": r.routes,
            "workers": r.workers, "build_ms": r.build_ms,
        }))
    })
    .map_err(OpError::from)
}

fn entry_prefix(e: &Entry) -> String {
    match e {
        Entry::V4(e) => e.prefix.to_string(),
        Entry::V6(e) => e.prefix.to_string(),
    }
}

fn route_lookup(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    let s = crate::ops::args::str(a, "address")?;
    let ip: std::net::IpAddr = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not an IPv4 or IPv6 address"))?;
    with_cp(ctx, |cp| {
        let all = all_entries(cp)?;
        let best = match ip {
            std::net::IpAddr::V4(ip) => {
                let ip = u32::from(ip);
                all.iter()
                    .copied()
                    .filter(|e| matches!(e, Entry::V4(r) if r.prefix.contains(ip)))
                    .max_by_key(|e| e.sort_key().2)
            }
            std::net::IpAddr::V6(ip) => {
                let ip = u128::from(ip);
                all.iter()
                    .copied()
                    .filter(|e| matches!(e, Entry::V6(r) if r.prefix.contains(ip)))
                    .max_by_key(|e| e.sort_key().2)
            }
        };
        let text = ip.to_string();
        Ok(match best {
            None => json!({"address": text, "route": Value::Null}),
            Some(e) => {
                let same: Vec<Entry> = all
                    .iter()
                    .filter(|x| x.sort_key() == e.sort_key())
                    .copied()
                    .collect();
                let t = cp.init.as_ref().expect("initialised").1.clone();
                let mut v = route_json(ctx.state, &t, &same);
                v["address"] = json!(text);
                v["route"] = json!(entry_prefix(&e));
                if same.len() > 1 {
                    // Which next hop depends on the flow: `nexthops` lists them.
                    return Ok(v);
                }
                let on_link = matches!(
                    e.kind(),
                    RouteKind::Connected | RouteKind::Static | RouteKind::Dynamic
                );
                let gw = match e {
                    Entry::V4(r) => match r.hop {
                        Hop::Forward { gateway, .. } => {
                            Some((gateway != 0).then(|| ip_text(gateway)))
                        }
                        _ => None,
                    },
                    Entry::V6(r) => match r.hop {
                        Hop6::Forward { gateway, .. } => {
                            Some((gateway != 0).then(|| ip6_text(gateway)))
                        }
                        _ => None,
                    },
                };
                match gw {
                    Some(None) if on_link => v["next_hop"] = json!(text),
                    Some(Some(g)) => v["next_hop"] = json!(g),
                    _ => {}
                }
                v
            }
        })
    })
    .map_err(OpError::from)
}

fn neigh_list(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    let family = match a.get("family").and_then(Value::as_str) {
        None => None,
        Some("ipv4" | "4") => Some(4),
        Some("ipv6" | "6") => Some(6),
        Some(f) => return Err(format!("family '{f}': ipv4 or ipv6").into()),
    };
    with_cp(ctx, |cp| {
        let (shared, _) = cp.init.as_ref().expect("initialised");
        let hz = shared.tsc_hz.max(1) as f64;
        let now = dpdk::rdtsc();
        let row = |address: String, mac: Option<[u8; 6]>, port, state: &str, age, probes| {
            json!({
                "address": address,
                "mac": mac.map(|m| table::fmt_mac(&m)),
                "port": port_name(ctx.state, port),
                "state": state,
                "age_s": (age as f64 / hz * 1000.0).round() / 1000.0,
                "probes": probes,
            })
        };
        let mut list: Vec<Value> = Vec::new();
        if family != Some(6) {
            list.extend(shared.neigh.entries(now).into_iter().map(|e| {
                row(
                    ip_text(e.ip),
                    e.mac,
                    e.port,
                    e.state.name(),
                    e.age,
                    e.probes,
                )
            }));
        }
        if family != Some(4) {
            list.extend(shared.neigh6.entries(now).into_iter().map(|e| {
                row(
                    ip6_text(e.ip),
                    e.mac,
                    e.port,
                    e.state.name(),
                    e.age,
                    e.probes,
                )
            }));
        }
        Ok(json!({
            "count": list.len(),
            "capacity": shared.neigh.capacity(),
            "capacity6": shared.neigh6.capacity(),
            "reclaimed": shared.neigh.reclaimed() + shared.neigh6.reclaimed(),
            "neighbors": list,
        }))
    })
    .map_err(OpError::from)
}

pub(super) fn forward_stats(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    with_cp(ctx, |cp| {
        let (shared, t) = cp.init.as_ref().expect("initialised");
        let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut workers = Vec::new();
        let mut st = shared.stats();
        st.sort_by_key(|(w, _)| *w);
        for (w, s) in st {
            let mut o = Map::new();
            o.insert("worker".into(), json!(w));
            for (k, v) in s.values() {
                o.insert(k.into(), json!(v));
                *totals.entry(k).or_default() += v;
            }
            workers.push(Value::Object(o));
        }
        let proxy: Vec<Value> = proxy_in_force(cp)
            .iter()
            .map(|x| {
                json!({
                    "prefix": x.prefix.to_string(),
                    "port": x.port.map(|p| port_name(ctx.state, p)),
                })
            })
            .collect();
        Ok(json!({
            "routes": t.routes(),
            "next_hops": t.next_hops(),
            "proxy_arp": proxy,
            "neigh_reclaimed": shared.neigh.reclaimed() + shared.neigh6.reclaimed(),
            "totals": totals,
            "workers": workers,
        }))
    })
    .map_err(OpError::from)
}
