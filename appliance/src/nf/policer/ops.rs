//! The policer's operator commands `policer.list`, `policer.set`,
//! `policer.counters`, `policer.sources`, `policer.clear` (see docs/control-protocol.md).
//!
//! `policer.set` builds the new meter profiles here, off the data path, and hands every worker
//! that runs the stage a new table through [`OpCtx::broadcast`]; each swaps it in between two
//! bursts (meters keep their tokens, counters carry over) and the old table is freed here once
//! all of them have answered.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use dpdk::meter::Color;
use pollfwd_nf::policer::{
    ClearCounters, ListSources, PolicerTable, SourceEntry, SourcePage, Update, WorkerCounters,
};
use serde_json::{Value, json};

use super::config::{self as conf, Kind, PolicerSpec, parse_action};
use super::state::Plane;
use crate::config::{Config, no_pos};
use crate::ops::{CliDoc, Op, OpCtx, OpError, arg, args, req};

pub const OPS: &[Op] = &[
    Op {
        name: "policer.list",
        help: "policers: algorithm, rates, bursts, colour mode, actions, binding",
        run: list,
        cli: Some(CliDoc {
            words: &["policer", "list"],
            about: "Policers: algorithm, rates, bursts, colour mode, actions, binding",
            args: &[],
            example: "pollfwdctl policer list",
        }),
    },
    Op {
        name: "policer.set",
        help: "change a policer live: {name, cir?, pir?, cbs?, ebs?, pbs?, units?, kind?, color_mode?, green?, yellow?, red?}",
        run: set,
        cli: Some(CliDoc {
            words: &["policer", "set"],
            about: "Change a policer live (binding changes need the config and reload)",
            args: &[
                req("name", "NAME", "the policer"),
                arg(
                    "cir",
                    "N",
                    "committed rate, in the policer's units per second",
                ),
                arg("pir", "N", "peak rate (trtcm)"),
                arg("cbs", "BYTES", "committed burst"),
                arg("ebs", "BYTES", "excess burst (srtcm)"),
                arg("pbs", "BYTES", "peak burst (trtcm)"),
                arg("units", "bits|bytes", "unit of the rates"),
                arg(
                    "kind",
                    "srtcm|trtcm",
                    "algorithm (then give the other one's parameters)",
                ),
                arg("color_mode", "blind|aware", "colour mode"),
                arg("green", "ACTION", "transmit, drop or remark:<DSCP>"),
                arg("yellow", "ACTION", "transmit, drop or remark:<DSCP>"),
                arg("red", "ACTION", "transmit, drop or remark:<DSCP>"),
            ],
            example: "pollfwdctl policer set name=bulk cir=500000000",
        }),
    },
    Op {
        name: "policer.counters",
        help: "packets and bytes per policer per colour, remarks, per-source tables: {name?, per_worker?}",
        run: counters,
        cli: Some(CliDoc {
            words: &["policer", "counters"],
            about: "Packets and bytes per policer per colour, remarks, per-source tables",
            args: &[
                arg("name", "NAME", "only this policer"),
                arg("per_worker", "true", "each worker's counters too"),
            ],
            example: "pollfwdctl policer counters name=bulk --per-worker",
        }),
    },
    Op {
        name: "policer.sources",
        help: "the sources a per-source policer meters now (IPv4 addresses, IPv6 prefixes): {name, limit?}",
        run: sources,
        cli: Some(CliDoc {
            words: &["policer", "sources"],
            about: "Sources a per-source policer meters now: IPv4 addresses, IPv6 prefixes",
            args: &[
                req("name", "NAME", "the per-source policer"),
                arg("limit", "N", "at most N sources per worker (default 100)"),
            ],
            example: "pollfwdctl policer sources name=per-host limit=20",
        }),
    },
    Op {
        name: "policer.clear",
        help: "zero the policer counters on every worker",
        run: clear,
        cli: Some(CliDoc {
            words: &["policer", "clear"],
            about: "Zero the policer counters on every worker",
            args: &[],
            example: "pollfwdctl policer clear",
        }),
    },
];

/// Every policer worker's counters, in worker order.
fn registry(ctx: &OpCtx<'_>) -> Vec<Arc<WorkerCounters>> {
    let mut v = ctx.cp(|cp| cp.policer.workers.clone());
    v.sort_by_key(|c| c.worker);
    v
}

/// The policers of a configuration (profiles checked), and its DSCP pre-colours.
pub(super) fn resolve(c: &Config) -> Result<(Vec<PolicerSpec>, [Color; 64]), String> {
    conf::specs(c, &no_pos).map_err(|e| e.msg)
}

/// Runs `f` on the policer's control-plane state (the policers in force, set at start-up).
fn with_cp<R>(
    ctx: &OpCtx<'_>,
    f: impl FnOnce(&mut Plane) -> Result<R, String>,
) -> Result<R, String> {
    ctx.cp(|cp| f(&mut cp.policer))
}

/// Sends `table` to every worker running the stage; returns how many took it.
/// `current` is the table they run now (see [`Update::new`]).
fn install(ctx: &OpCtx<'_>, table: &PolicerTable, current: &PolicerTable) -> Result<usize, String> {
    ctx.broadcast("policer", |_| Update::new(table.clone(), current))
        .map_err(String::from)
}

/// The table the workers run now, built again from the control-plane state.
fn current_table(ctx: &OpCtx<'_>) -> Result<PolicerTable, String> {
    let tsc_hz = ctx.state.tsc_hz;
    with_cp(ctx, |cp| conf::table(&cp.specs, cp.precolor, tsc_hz))
}

fn list(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    let n = ctx.workers("policer");
    with_cp(ctx, |cp| {
        let dscps = |c: Color| -> Vec<usize> { (0..64).filter(|&d| cp.precolor[d] == c).collect() };
        Ok(json!({
            "workers": n,
            "policers": cp.specs.iter().map(PolicerSpec::to_json).collect::<Vec<_>>(),
            "precolor": {"yellow": dscps(Color::Yellow), "red": dscps(Color::Red)},
        }))
    })
    .map_err(OpError::from)
}

fn set(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    // Before the control-plane lock: it broadcasts from inside it (txn::change_lock).
    let _change = crate::txn::change_lock();
    let name = args::str(a, "name")?.to_string();
    const KNOWN: &[&str] = &[
        "name",
        "cir",
        "pir",
        "cbs",
        "ebs",
        "pbs",
        "units",
        "kind",
        "color_mode",
        "green",
        "yellow",
        "red",
    ];
    if let Some(k) = a
        .as_object()
        .and_then(|o| o.keys().find(|k| !KNOWN.contains(&k.as_str())))
    {
        return Err(if k == "bind" || k == "class" || k == "per_source" {
            format!(
                "'{k}' cannot change live (it changes which packets a policer sees): edit the config and reload"
            ).into()
        } else {
            format!("unknown argument '{k}' (known: {})", KNOWN.join(", ")).into()
        });
    }
    let tsc_hz = ctx.state.tsc_hz;
    // Build everything before touching the workers; the control-plane lock is held so two
    // clients cannot interleave their changes.
    with_cp(ctx, |cp| {
        let i = cp
            .specs
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| format!("no policer '{name}'"))?;
        let mut s = cp.specs[i].clone();
        if let Some(k) = args::opt_str(a, "kind") {
            let k = Kind::parse(k).ok_or_else(|| format!("kind '{k}': srtcm or trtcm"))?;
            if k != s.kind {
                // The other algorithm's parameters must be given anew.
                s.pir = 0;
                s.pbs = 0;
                s.ebs = 0;
                s.kind = k;
            }
        }
        if let Some(u) = args::opt_str(a, "units") {
            s.bits = conf::units_are_bits(u)
                .ok_or_else(|| format!("units '{u}': \"bits\" or \"bytes\""))?;
        }
        for (k, f) in [
            ("cir", &mut s.cir),
            ("pir", &mut s.pir),
            ("cbs", &mut s.cbs),
            ("ebs", &mut s.ebs),
            ("pbs", &mut s.pbs),
        ] {
            if let Some(v) = args::opt_u64(a, k)? {
                *f = v;
            }
        }
        match s.kind {
            Kind::Srtcm if s.pir != 0 || s.pbs != 0 => {
                return Err(
                    "pir and pbs are trtcm parameters (RFC 2698); this policer is srtcm".into(),
                );
            }
            Kind::Trtcm if s.ebs != 0 => {
                return Err("ebs is an srtcm parameter (RFC 2697); this policer is trtcm".into());
            }
            _ => {}
        }
        if let Some(m) = args::opt_str(a, "color_mode") {
            s.color_aware = conf::color_aware(m)
                .ok_or_else(|| format!("color_mode '{m}': \"blind\" or \"aware\""))?;
        }
        for (ci, k) in ["green", "yellow", "red"].iter().enumerate() {
            if let Some(v) = args::opt_str(a, k) {
                s.actions[ci] = parse_action(v).map_err(|e| format!("{k}: {e}"))?;
            }
        }
        s.check().map_err(|e| format!("policer '{name}': {e}"))?;
        let mut specs = cp.specs.clone();
        specs[i] = s.clone();
        let table = conf::table(&specs, cp.precolor, tsc_hz)?;
        let current = conf::table(&cp.specs, cp.precolor, tsc_hz)?;
        let n = install(ctx, &table, &current)?;
        cp.specs = specs;
        Ok(json!({"policer": s.to_json(), "workers": n}))
    })
    .map_err(OpError::from)
}

/// A source as the operator writes it: `198.18.0.1`, or an IPv6 prefix `2001:db8:1:2::/64`.
pub fn source_text(e: &SourceEntry) -> String {
    if e.ipv6 {
        format!("{}/{}", Ipv6Addr::from(e.key), e.prefix)
    } else {
        Ipv4Addr::from(e.key as u32).to_string()
    }
}

fn sources(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    // For the whole walk: the policer's index stays the one looked up here (no reload can
    // reorder the policers between two steps).
    let _change = crate::txn::change_lock();
    let name = args::str(a, "name")?.to_string();
    let limit = args::opt_u64(a, "limit")?.unwrap_or(100).min(100_000) as usize;
    let (index, prefix6) = with_cp(ctx, |cp| {
        let i = cp
            .specs
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| format!("no policer '{name}'"))?;
        let ps = cp.specs[i]
            .per_source
            .ok_or_else(|| format!("policer '{name}' is not per source"))?;
        Ok((i, ps.ipv6_prefix))
    })?;
    // Each worker walks its tables a bounded step per message (LIST_SLOTS slots, between two
    // bursts); the steps repeat from where each stopped until every table was seen or each
    // worker found `limit` sources.
    let mut pages: std::collections::BTreeMap<usize, Arc<Mutex<SourcePage>>> = Default::default();
    let mut steps = 0usize;
    loop {
        let more = pages.values().any(|p| {
            let p = p.lock().unwrap_or_else(|e| e.into_inner());
            p.next.is_some()
        });
        if steps > 0 && !more {
            break;
        }
        steps += 1;
        ctx.broadcast("policer", |w| {
            let page = pages.entry(w).or_insert_with(|| {
                Arc::new(Mutex::new(SourcePage {
                    sources: Vec::new(),
                    next: Some(0),
                }))
            });
            let start = page
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .next
                .unwrap_or(usize::MAX);
            ListSources {
                policer: index,
                start,
                limit,
                out: page.clone(),
            }
        })?;
    }
    let now = dpdk::rdtsc();
    let hz = ctx.state.tsc_hz.max(1) as f64;
    let lcores: std::collections::HashMap<usize, u32> =
        ctx.state.lcores.iter().map(|l| (l.index, l.id)).collect();
    let mut list = Vec::new();
    for (w, p) in &pages {
        let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
        p.sources.sort_by_key(|e| (e.ipv6, e.key));
        for e in &p.sources {
            list.push(json!({
                "worker": w,
                "lcore": lcores.get(w),
                "source": source_text(e),
                "family": if e.ipv6 { "ipv6" } else { "ipv4" },
                "idle_s": now.saturating_sub(e.last) as f64 / hz,
                "tokens": [e.tokens.0, e.tokens.1],
            }));
        }
    }
    Ok(json!({"name": name, "ipv6_prefix": prefix6, "sources": list}))
}

fn clear(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    // Before the control-plane lock: it broadcasts from inside it (txn::change_lock).
    let _change = crate::txn::change_lock();
    let n = ctx.broadcast("policer", |_| ClearCounters)?;
    Ok(json!({"workers": n}))
}

pub(super) fn counters(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    let only = args::opt_str(a, "name").map(str::to_string);
    let per_worker = a
        .get("per_worker")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let regs = registry(ctx);
    with_cp(ctx, |cp| {
        if let Some(n) = &only
            && !cp.specs.iter().any(|s| &s.name == n)
        {
            return Err(format!("no policer '{n}'"));
        }
        let mut out = Vec::new();
        for (i, s) in cp.specs.iter().enumerate() {
            if only.as_ref().is_some_and(|n| n != &s.name) {
                continue;
            }
            let one = |w: &WorkerCounters| {
                let c = w.snapshot(i);
                let mut v = json!({});
                for col in Color::ALL {
                    v[col.name()] = json!({
                        "packets": c.packets[col as usize],
                        "bytes": c.bytes[col as usize],
                    });
                }
                v["remarked"] = json!(c.remarked);
                if s.per_source.is_some() {
                    v["sources"] = json!({
                        "active": c.sources,
                        "created": c.sources_created,
                        "aged": c.sources_aged,
                        "table_full": c.table_full,
                        "probe_limit": c.probe_limit,
                    });
                }
                v
            };
            let per: Vec<Value> = regs
                .iter()
                .map(|w| {
                    let mut v = one(w);
                    v["worker"] = json!(w.worker);
                    v["lcore"] = json!(w.lcore);
                    v
                })
                .collect();
            // Totals: the sum over workers of every number.
            let mut total = one(&WorkerCounters::new(0, 0));
            for w in &per {
                add_numbers(&mut total, w);
            }
            total["name"] = json!(s.name);
            if let Some(ps) = s.per_source {
                total["sources"]["max_per_worker"] = json!(ps.max_sources);
            }
            if per_worker {
                total["workers"] = Value::Array(per);
            }
            out.push(total);
        }
        Ok(json!({"policers": out}))
    })
    .map_err(OpError::from)
}

/// Adds every number of `b` to the same path in `a` (both built by the same function).
fn add_numbers(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x.iter_mut() {
                if let Some(w) = y.get(k) {
                    add_numbers(v, w);
                }
            }
        }
        (a @ Value::Number(_), Value::Number(n)) => {
            *a = json!(a.as_u64().unwrap_or(0) + n.as_u64().unwrap_or(0));
        }
        _ => {}
    }
}

/// `reload`: when the file's `[policer]` section resolves to other policers (or DSCP
/// pre-colours) than the ones in force, the new table is built here, off the data path (an
/// error refuses the whole reload), and installed on commit. Policers that keep their name keep
/// their meters and counters. The file is the truth: `policer.set` changes since start are
/// replaced.
pub(super) fn prepare_reload(
    ctx: &OpCtx<'_>,
    _old: &Config,
    new: &Config,
) -> Result<Option<crate::ops::Commit>, String> {
    let (specs, precolor) = resolve(new)?;
    let same = with_cp(ctx, |cp| Ok(cp.specs == specs && cp.precolor == precolor))?;
    if same || !ctx.runs("policer") {
        return Ok(None);
    }
    let table = conf::table(&specs, precolor, ctx.state.tsc_hz)?;
    let current = current_table(ctx)?;
    Ok(Some(Box::new(move |ctx: &OpCtx<'_>| {
        let n = install(ctx, &table, &current)?;
        let count = specs.len();
        with_cp(ctx, |cp| {
            cp.specs = specs;
            cp.precolor = precolor;
            Ok(())
        })?;
        Ok(format!("policer: {count} policer(s) on {n} worker(s)"))
    })))
}
