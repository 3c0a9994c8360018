//! NAT44's operator commands `nat.summary`,
//! `nat.sessions`, `nat.static.list`, `nat.static.add`, `nat.static.del`, and `nat.det`,
//! `nat.who` (in `who.rs`) (described in docs/control-protocol.md).
//!
//! Static mapping changes build the new table here, off the data path, and hand it to every
//! NAT worker with [`OpCtx::broadcast`]; each swaps it in between bursts, and purges the
//! sessions of removed mappings incrementally in housekeeping.

use std::net::Ipv4Addr;
use std::sync::Arc;

use pollfwd_nf::nat::NatMsg;
use pollfwd_nf::nat::statics::{StaticMapping, StaticTable};
use pollfwd_nf::nat::stats::NatShared;
use pollfwd_pipeline::DropReason;
use serde_json::{Value, json};

use super::config as conf;
use super::query::{collect_sessions, with_cp};
use super::state::Plane;
use crate::config::{Config, no_pos};
use crate::ops::{CliDoc, Op, OpCtx, OpError, arg, args, req};

pub const OPS: &[Op] = &[
    Op {
        name: "nat.summary",
        help: "NAT: sessions per worker, ports in use per pool address, counters, drops by reason",
        run: summary,
        cli: Some(CliDoc {
            words: &["nat", "summary"],
            about: "NAT: sessions per worker, ports in use per pool address, counters, drops",
            args: &[],
            example: "pollfwdctl nat summary",
        }),
    },
    Op {
        name: "nat.sessions",
        help: "NAT sessions: {inside?: \"10.0.0.5\", limit?: 100}",
        run: sessions,
        cli: Some(CliDoc {
            words: &["nat", "sessions"],
            about: "NAT sessions, sorted by inside endpoint",
            args: &[
                arg("inside", "A.B.C.D", "only this inside host"),
                arg("limit", "N", "at most N sessions (default 100)"),
            ],
            example: "pollfwdctl nat sessions --inside 10.0.0.5 --limit 10",
        }),
    },
    Op {
        name: "nat.static.list",
        help: "NAT static mappings and port forwards",
        run: static_list,
        cli: Some(CliDoc {
            words: &["nat", "static", "list"],
            about: "NAT static mappings and port forwards",
            args: &[],
            example: "pollfwdctl nat static list",
        }),
    },
    Op {
        name: "nat.static.add",
        help: "add a static mapping: {outside: \"203.0.113.5[:443]\", inside: \"10.0.0.5[:8443]\", proto?: \"tcp\"|\"udp\"}",
        run: static_add,
        cli: Some(CliDoc {
            words: &["nat", "static", "add"],
            about: "Add a static mapping (with ports and proto: a port forward) live",
            args: &[
                req("outside", "A.B.C.D[:PORT]", "public address"),
                req("inside", "A.B.C.D[:PORT]", "inside host"),
                arg("proto", "tcp|udp", "for a port forward"),
            ],
            example: "pollfwdctl nat static add outside=203.0.113.5:443 inside=10.0.0.5:8443 proto=tcp",
        }),
    },
    Op {
        name: "nat.static.del",
        help: "delete a static mapping: {outside: \"203.0.113.5[:443]\", proto?: \"tcp\"|\"udp\"}",
        run: static_del,
        cli: Some(CliDoc {
            words: &["nat", "static", "del"],
            about: "Delete a static mapping live",
            args: &[
                req("outside", "A.B.C.D[:PORT]", "as when added"),
                arg("proto", "tcp|udp", "as when added"),
            ],
            example: "pollfwdctl nat static del outside=203.0.113.5:443 proto=tcp",
        }),
    },
    Op {
        name: "nat.det",
        help: "deterministic NAT maps, or one host's outside address and port block: {inside?: \"10.9.0.70\"}",
        run: super::who::det,
        cli: Some(CliDoc {
            words: &["nat", "det"],
            about: "Deterministic NAT maps, or the outside address and port block of one inside host",
            args: &[arg(
                "inside",
                "A.B.C.D",
                "this inside host's address and block",
            )],
            example: "pollfwdctl nat det --inside 10.9.0.70",
        }),
    },
    Op {
        name: "nat.who",
        help: "which inside host used an outside endpoint: {outside: \"198.51.100.1:40000\", proto?: \"tcp\"|\"udp\"|\"icmp\", at?: RFC 3339 or Unix seconds}",
        run: super::who::who,
        cli: Some(CliDoc {
            words: &["nat", "who"],
            about: "Which inside host used outside address:port (at a time): deterministic and static maps, live sessions",
            args: &[
                req(
                    "outside",
                    "A.B.C.D:PORT",
                    "the outside endpoint (from an abuse report, a log)",
                ),
                arg("proto", "tcp|udp|icmp", "only this protocol's sessions"),
                arg(
                    "at",
                    "TIME",
                    "RFC 3339 (2026-12-07T06:30:00Z) or Unix seconds; default now",
                ),
            ],
            example: "pollfwdctl nat who outside=198.51.100.1:40000 --at 2026-12-07T06:30:00Z",
        }),
    },
];

/// The NAT workers' shared counters, in worker order.
fn registry(ctx: &OpCtx<'_>) -> Vec<Arc<NatShared>> {
    let mut v = ctx.cp(|cp| cp.nat.workers.clone());
    v.sort_by_key(|c| c.worker);
    v
}

fn ip(a: u32) -> String {
    Ipv4Addr::from(a).to_string()
}

fn proto_name(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        1 => "icmp",
        _ => "?",
    }
}

pub(super) fn summary(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    let reg = registry(ctx);
    if reg.is_empty() {
        return Err("no worker runs the 'nat' stage".into());
    }
    let workers: Vec<Value> = reg
        .iter()
        .map(|w| {
            let mut counters = serde_json::Map::new();
            for (k, v) in w.counter_list() {
                counters.insert(k.into(), v.into());
            }
            let lc = ctx.state.lcores.iter().find(|l| l.index == w.worker);
            let hand = |f: fn(&pollfwd_pipeline::LcoreCounters) -> u64| {
                lc.map(|l| f(&l.counters)).unwrap_or(0)
            };
            json!({
                "worker": w.worker,
                "lcore": w.lcore,
                "handoff_out": hand(|c| c.handoff_out.get()),
                "handoff_in": hand(|c| c.handoff_in.get()),
                "sessions": w.sessions(),
                "capacity": w.capacity,
                "ports": {"first": w.slice.0, "count": w.slice.1},
                "table_bytes": w.table_bytes,
                "counters": counters,
            })
        })
        .collect();
    let pool = &reg[0].pool;
    let addresses: Vec<Value> = pool
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let sum = |pi: usize| -> u64 {
                reg.iter()
                    .map(|w| w.ports[i][pi].load(std::sync::atomic::Ordering::Relaxed) as u64)
                    .sum()
            };
            json!({"address": ip(*a), "tcp": sum(0), "udp": sum(1), "icmp": sum(2)})
        })
        .collect();
    let mut drops = serde_json::Map::new();
    for r in DropReason::ALL {
        if r.name().starts_with("nat_") || *r == DropReason::HandoffFull {
            let n: u64 = ctx
                .state
                .lcores
                .iter()
                .filter(|l| l.stages.contains(&"nat"))
                .map(|l| l.counters.drops[*r as usize].get())
                .sum();
            drops.insert(r.name().into(), n.into());
        }
    }
    let total: u64 = reg.iter().map(|w| w.sessions()).sum();
    let capacity: u64 = reg.iter().map(|w| w.capacity as u64).sum();
    let bytes: u64 = reg.iter().map(|w| w.session_bytes).sum();
    let table_bytes: u64 = reg.iter().map(|w| w.table_bytes).sum();
    Ok(json!({
        "sessions": total,
        "capacity": capacity,
        "bytes_per_session": if capacity > 0 { bytes as f64 / capacity as f64 } else { 0.0 },
        "table_bytes": table_bytes,
        "workers": workers,
        "ports_in_use": addresses,
        "drops": drops,
    }))
}

fn sessions(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    let inside = match args::opt_str(a, "inside") {
        Some(s) => Some(u32::from(
            s.parse::<Ipv4Addr>()
                .map_err(|_| format!("inside '{s}': not an IPv4 address"))?,
        )),
        None => None,
    };
    let limit = args::opt_u64(a, "limit")?.unwrap_or(100).min(100_000) as usize;
    let mut list = collect_sessions(ctx, inside, None, limit)?;
    list.sort_by_key(|s| (s.inside, s.remote, s.proto));
    list.truncate(limit);
    Ok(Value::Array(
        list.iter()
            .map(|s| {
                json!({
                    "worker": s.worker,
                    "proto": proto_name(s.proto),
                    "inside": format!("{}:{}", ip(s.inside.0), s.inside.1),
                    "outside": format!("{}:{}", ip(s.outside.0), s.outside.1),
                    "remote": format!("{}:{}", ip(s.remote.0), s.remote.1),
                    "state": s.state,
                    "idle_s": s.idle_ms as f64 / 1000.0,
                    "age_s": s.age_ms as f64 / 1000.0,
                    "packets_in2out": s.pkts_in2out,
                    "packets_out2in": s.pkts_out2in,
                    "static": s.is_static,
                })
            })
            .collect(),
    ))
}

fn mapping_json(m: &StaticMapping) -> Value {
    match m.proto {
        None => json!({"outside": ip(m.out_addr), "inside": ip(m.in_addr), "proto": "any"}),
        Some(p) => json!({
            "outside": format!("{}:{}", ip(m.out_addr), m.out_port),
            "inside": format!("{}:{}", ip(m.in_addr), m.in_port),
            "proto": proto_name(p),
        }),
    }
}

fn static_list(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    with_cp(ctx, |cp| {
        Ok(Value::Array(cp.statics.iter().map(mapping_json).collect()))
    })
    .map_err(OpError::from)
}

/// Installs `list` on every NAT worker; on success it becomes the control-plane state.
/// Returns the workers and NAT's outside addresses now (pool and static), for proxy ARP.
fn install(
    ctx: &OpCtx<'_>,
    cp: &mut Plane,
    list: Vec<StaticMapping>,
) -> Result<(usize, Vec<u32>), String> {
    let table = Arc::new(StaticTable::new(&list)?);
    let n = ctx.broadcast("nat", |_| NatMsg::SetStatic(table.clone()))?;
    cp.statics = list;
    let mut addrs: Vec<u32> = cp.pool.clone();
    addrs.extend(cp.statics.iter().map(|m| m.out_addr));
    addrs.sort_unstable();
    addrs.dedup();
    Ok((n, addrs))
}

/// After a static change: the forward stage's proxy ARP follows NAT's outside addresses
/// (`c`: the configuration in force). Called outside `with_cp` (one control-plane lock).
fn update_proxy_arp(ctx: &OpCtx<'_>, c: &Config, addrs: Vec<u32>) -> Result<usize, String> {
    crate::nf::forward::ops::set_nat_addresses(ctx, c, addrs).map_err(|e| {
        format!("static mappings changed, but forward's proxy ARP was not updated: {e}")
    })
}

fn static_add(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    // Before the control-plane lock: it broadcasts from inside it (txn::change_lock).
    let _change = crate::txn::change_lock();
    let m = conf::parse_static(
        args::str(a, "outside")?,
        args::str(a, "inside")?,
        args::opt_str(a, "proto"),
    )?;
    let (n, addrs) = with_cp(ctx, |cp| {
        conf::check_static(&m, &cp.pool, cp.range.0, cp.range.1)?;
        if let Some(d) = cp.det.iter().find(|d| d.contains_outside(m.out_addr)) {
            return Err(format!(
                "{} is in the deterministic outside {}/{}: a static mapping needs an address of its own",
                ip(m.out_addr),
                ip(d.out_net),
                d.out_len
            ));
        }
        let mut list = cp.statics.clone();
        list.push(m);
        install(ctx, cp, list)
    })?;
    let c = ctx.config_in_force();
    let fw = update_proxy_arp(ctx, &c, addrs)?;
    Ok(json!({"added": mapping_json(&m), "workers": n, "proxy_arp_workers": fw}))
}

fn static_del(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    // Before the control-plane lock: it broadcasts from inside it (txn::change_lock).
    let _change = crate::txn::change_lock();
    let outside = args::str(a, "outside")?;
    let proto = args::opt_str(a, "proto");
    // Parse as the outside half of a mapping (the inside half is a placeholder).
    let inside_ph = if proto.is_some() {
        "0.0.0.0:1"
    } else {
        "0.0.0.0"
    };
    let key = conf::parse_static(outside, inside_ph, proto)?;
    let (n, addrs) = with_cp(ctx, |cp| {
        let before = cp.statics.len();
        let list: Vec<StaticMapping> = cp
            .statics
            .iter()
            .copied()
            .filter(|m| {
                !(m.proto == key.proto && m.out_addr == key.out_addr && m.out_port == key.out_port)
            })
            .collect();
        if list.len() == before {
            return Err(format!(
                "no static mapping for {outside}{}",
                proto.map(|p| format!("/{p}")).unwrap_or_default()
            ));
        }
        install(ctx, cp, list)
    })?;
    let c = ctx.config_in_force();
    let fw = update_proxy_arp(ctx, &c, addrs)?;
    Ok(json!({"deleted": outside, "workers": n, "proxy_arp_workers": fw}))
}

/// NAT's Prometheus families (`pollfwd_nat_*`), for the `metrics` exposition: sessions in
/// use and capacity per worker, the event counters per worker, ports in use per pool address
/// and protocol. Empty when no worker runs NAT.
pub(super) fn metrics(ctx: &OpCtx<'_>) -> String {
    use std::fmt::Write as _;
    let reg = registry(ctx);
    let mut o = String::new();
    if reg.is_empty() {
        return o;
    }
    let lbl = |w: &NatShared| format!("{{worker=\"{}\",lcore=\"{}\"}}", w.worker, w.lcore);
    let _ = writeln!(o, "# HELP pollfwd_nat_sessions NAT sessions in use.");
    let _ = writeln!(o, "# TYPE pollfwd_nat_sessions gauge");
    for w in &reg {
        let _ = writeln!(o, "pollfwd_nat_sessions{} {}", lbl(w), w.sessions());
    }
    let _ = writeln!(o, "# HELP pollfwd_nat_capacity NAT session table capacity.");
    let _ = writeln!(o, "# TYPE pollfwd_nat_capacity gauge");
    for w in &reg {
        let _ = writeln!(o, "pollfwd_nat_capacity{} {}", lbl(w), w.capacity);
    }
    let names: Vec<&'static str> = reg[0].counter_list().iter().map(|(k, _)| *k).collect();
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            o,
            "# HELP pollfwd_nat_{name}_total NAT {}.",
            name.replace('_', " ")
        );
        let _ = writeln!(o, "# TYPE pollfwd_nat_{name}_total counter");
        for w in &reg {
            let _ = writeln!(
                o,
                "pollfwd_nat_{name}_total{} {}",
                lbl(w),
                w.counter_list()[i].1
            );
        }
    }
    let _ = writeln!(
        o,
        "# HELP pollfwd_nat_ports_in_use Outside ports in use per pool address and protocol."
    );
    let _ = writeln!(o, "# TYPE pollfwd_nat_ports_in_use gauge");
    for (i, a) in reg[0].pool.iter().enumerate() {
        for (pi, p) in ["tcp", "udp", "icmp"].iter().enumerate() {
            let n: u64 = reg
                .iter()
                .map(|w| w.ports[i][pi].load(std::sync::atomic::Ordering::Relaxed) as u64)
                .sum();
            let _ = writeln!(
                o,
                "pollfwd_nat_ports_in_use{{address=\"{}\",proto=\"{p}\"}} {n}",
                ip(*a)
            );
        }
    }
    o
}

/// `reload`: static mappings change live (validated, swapped on every NAT worker, sessions of
/// removed mappings purged); any other change of [nat] needs a restart and refuses the reload.
pub(super) fn prepare_reload(
    _ctx: &OpCtx<'_>,
    old: &Config,
    new: &Config,
) -> Result<Option<crate::ops::Commit>, String> {
    let strip = |c: &Config| {
        c.nat.as_ref().map(|n| {
            let mut n = n.get_ref().clone();
            n.statics.clear();
            n
        })
    };
    if strip(old) != strip(new) {
        return Err(
            "[nat] changed beyond `static`: ports, pool, range, filtering, timeouts and \
                    table sizes are fixed at start, restart to change them"
                .into(),
        );
    }
    let before = conf::statics(old, &no_pos).map_err(|e| e.msg)?;
    let after = conf::statics(new, &no_pos).map_err(|e| e.msg)?;
    if before == after {
        return Ok(None);
    }
    StaticTable::new(&after)?;
    let new = new.clone();
    Ok(Some(Box::new(move |ctx: &OpCtx<'_>| {
        let n = after.len();
        let (w, addrs) = with_cp(ctx, |cp| install(ctx, cp, after))?;
        let fw = update_proxy_arp(ctx, &new, addrs)?;
        Ok(format!(
            "nat: {n} static mapping(s) on {w} worker(s), proxy ARP on {fw} forward worker(s)"
        ))
    })))
}
