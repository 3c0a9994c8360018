//! Operator commands of the classify stage (`acl.list`, `acl.add`, `acl.del`, `acl.counters`).
//! JSON formats: docs/control-protocol.md.
//!
//! The control plane keeps the rule list (ids, compiled form) and the installed table. A change compiles a complete new [`AclTable`] here, off the data path, then
//! [`OpCtx::broadcast`]s it with fresh per-worker hit counters: each worker swaps table and
//! counters between two bursts, and the replaced ones are freed after every worker switched.
//! Counters follow a rule across rebuilds by its id: the final counts of a replaced table are
//! folded into `retired` and added to the live ones when reported.
//!
//! Start-up compiles the config's rule set with [`compile`], as a change does; each worker's
//! stage then gets that table and its own counters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use pollfwd_nf::classify::{AclTable, Action, Family, HitCounters, Install, TableRule, new_hits};
use serde_json::{Value, json};

use super::config::{
    self as conf, CompiledRule, RuleText, compiled_rules, default_action, range_text,
};
use super::state::{Entry, Installed, Plane};
use crate::config::Config;
use crate::ops::{CliDoc, Op, OpCtx, OpError, arg, args, req};
use crate::state::State;

pub const OPS: &[Op] = &[
    Op {
        name: "acl.list",
        help: "ACL rules in precedence order with their hit counters; default action, classes",
        run: list,
        cli: Some(CliDoc {
            words: &["acl", "list"],
            about: "ACL rules in precedence order with their hit counters; default action, classes",
            args: &[],
            example: "pollfwdctl acl list",
        }),
    },
    Op {
        name: "acl.add",
        help: "add an ACL rule {src, dst, proto, sport, dport, in_port, priority, action, class}",
        run: add,
        cli: Some(CliDoc {
            words: &["acl", "add"],
            about: "Add an ACL rule live (the config's rule keys; absent keys match anything)",
            args: &[
                arg(
                    "src",
                    "A.B.C.D[/LEN]|X:Y::Z[/LEN]",
                    "source prefix, IPv4 or IPv6 (the rule's family)",
                ),
                arg(
                    "dst",
                    "A.B.C.D[/LEN]|X:Y::Z[/LEN]",
                    "destination prefix, IPv4 or IPv6 (the rule's family)",
                ),
                arg(
                    "proto",
                    "tcp|udp|icmp|icmpv6|sctp|N",
                    "IP protocol (IPv6: the upper layer)",
                ),
                arg("sport", "N|N-M", "source port or range"),
                arg("dport", "N|N-M", "destination port or range"),
                arg("in_port", "NAME", "ingress port"),
                arg(
                    "priority",
                    "N",
                    "higher wins, default 0 (ties: the earlier rule)",
                ),
                arg("action", "permit|deny", "default permit"),
                arg("class", "NAME", "class label of a permit rule"),
            ],
            example: "pollfwdctl acl add dst=203.0.113.0/24 proto=udp action=deny",
        }),
    },
    Op {
        name: "acl.del",
        help: "delete an ACL rule {id}",
        run: del,
        cli: Some(CliDoc {
            words: &["acl", "del"],
            about: "Delete an ACL rule live",
            args: &[req("id", "N", "the rule's id (acl list)")],
            example: "pollfwdctl acl del id=7",
        }),
    },
    Op {
        name: "acl.counters",
        help: "per-rule hit counters (packets, bytes) summed over workers, and the default's",
        run: counters,
        cli: Some(CliDoc {
            words: &["acl", "counters"],
            about: "Per-rule hit counters (packets, bytes) summed over workers, and the default's",
            args: &[],
            example: "pollfwdctl acl counters",
        }),
    },
];

const STAGE: &str = "classify";

fn table_rules<'a>(
    entries: impl Iterator<Item = (u32, &'a CompiledRule)>,
    port_ids: &[u16],
) -> Vec<TableRule> {
    entries
        .map(|(id, r)| TableRule {
            id,
            m: r.with_port_ids(port_ids),
            priority: r.priority,
            action: r.action,
        })
        .collect()
}

/// Interface ids by interface index.
fn port_ids(state: &State) -> Vec<u16> {
    state.ifaces.iter().map(|i| i.id).collect()
}

/// Loads the config's rules and default action into the control plane (start-up).
pub(super) fn load(cp: &mut Plane, c: &Config) -> Result<(), String> {
    let rules = compiled_rules(c)?;
    cp.default = default_action(c);
    cp.entries = rules
        .iter()
        .enumerate()
        .map(|(i, r)| Entry {
            id: i as u32 + 1,
            rule: *r,
        })
        .collect();
    cp.next_id = rules.len() as u32 + 1;
    Ok(())
}

/// Compiles `entries` with `default` into the table the workers run (ports named by their
/// DPDK ids `port_ids`); also says how long it took, in ms.
pub(super) fn compile(
    entries: &[Entry],
    default: Action,
    port_ids: &[u16],
) -> Result<(Arc<AclTable>, f64), String> {
    let t0 = Instant::now();
    let trs = table_rules(entries.iter().map(|e| (e.id, &e.rule)), port_ids);
    let table = Arc::new(AclTable::build(&trs, default)?);
    Ok((table, t0.elapsed().as_secs_f64() * 1000.0))
}

/// Hits of every rule id (0 = default) over live and retired counters.
fn totals(cp: &Plane) -> HashMap<u32, (u64, u64)> {
    let mut t = cp.retired.clone();
    if let Some(inst) = &cp.installed {
        for (_, hits) in &inst.hits {
            for (slot, &id) in inst.table.ids().iter().enumerate() {
                let e = t.entry(id).or_default();
                e.0 += hits[slot].packets.get();
                e.1 += hits[slot].bytes.get();
            }
        }
    }
    t
}

/// Compiles `entries` with `default`, installs the table on every classify worker and, once
/// they switched, retires the old counters. On a compile error nothing changes.
fn apply(
    ctx: &OpCtx<'_>,
    cp: &mut Plane,
    entries: Vec<Entry>,
    default: Action,
) -> Result<Value, String> {
    let (table, build_ms) = compile(&entries, default, &port_ids(ctx.state))?;
    let hits: Vec<(usize, HitCounters)> = ctx
        .state
        .lcores
        .iter()
        .filter(|l| l.stages.contains(&STAGE))
        .map(|l| (l.index, new_hits(&table)))
        .collect();
    // All or nothing: on an error no worker runs the new table (see `broadcast`).
    let workers = ctx.broadcast(STAGE, |w| {
        let h = hits
            .iter()
            .find(|(i, _)| *i == w)
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| new_hits(&table));
        Install {
            table: table.clone(),
            hits: h,
        }
    })?;
    if let Some(old) = cp.installed.take() {
        for (_, h) in &old.hits {
            for (slot, &id) in old.table.ids().iter().enumerate() {
                let e = cp.retired.entry(id).or_default();
                e.0 += h[slot].packets.get();
                e.1 += h[slot].bytes.get();
            }
        }
    }
    cp.installed = Some(Installed {
        table: table.clone(),
        hits,
    });
    cp.entries = entries;
    cp.default = default;
    let live: std::collections::HashSet<u32> = cp.entries.iter().map(|e| e.id).collect();
    cp.retired.retain(|id, _| *id == 0 || live.contains(id));
    Ok(json!({
        "rules": table.len(),
        "workers": workers,
        "build_ms": (build_ms * 100.0).round() / 100.0,
    }))
}

fn proto_text(p: u8) -> Value {
    match p {
        1 => json!("icmp"),
        6 => json!("tcp"),
        17 => json!("udp"),
        58 => json!("icmpv6"),
        132 => json!("sctp"),
        n => json!(n),
    }
}

fn prefix_text((a, l): (u32, u8)) -> String {
    format!("{}/{l}", std::net::Ipv4Addr::from(a))
}

fn prefix6_text((a, l): (u128, u8)) -> String {
    format!("{}/{l}", std::net::Ipv6Addr::from(a))
}

/// A rule as the listing shows it: id, priority, action always; other fields when not "any".
fn rule_json(e: &Entry, classes: &[String], ports: &[String]) -> serde_json::Map<String, Value> {
    let r = &e.rule;
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(e.id));
    o.insert("priority".into(), json!(r.priority));
    if r.m.family != Family::Any {
        o.insert("family".into(), json!(conf::family_text(r.m.family)));
    }
    if r.m.family == Family::Ipv6 {
        if r.m.src6.1 > 0 {
            o.insert("src".into(), json!(prefix6_text(r.m.src6)));
        }
        if r.m.dst6.1 > 0 {
            o.insert("dst".into(), json!(prefix6_text(r.m.dst6)));
        }
    } else {
        if r.m.src.1 > 0 {
            o.insert("src".into(), json!(prefix_text(r.m.src)));
        }
        if r.m.dst.1 > 0 {
            o.insert("dst".into(), json!(prefix_text(r.m.dst)));
        }
    }
    if let Some(p) = r.m.proto {
        o.insert("proto".into(), proto_text(p));
    }
    if r.m.sport != (0, u16::MAX) {
        o.insert("sport".into(), json!(range_text(r.m.sport)));
    }
    if r.m.dport != (0, u16::MAX) {
        o.insert("dport".into(), json!(range_text(r.m.dport)));
    }
    if let Some(i) = r.in_port {
        o.insert(
            "in_port".into(),
            json!(ports.get(i).cloned().unwrap_or_default()),
        );
    }
    o.insert(
        "action".into(),
        json!(if r.action.deny { "deny" } else { "permit" }),
    );
    if r.action.class > 0 {
        let name = classes
            .get(r.action.class as usize - 1)
            .cloned()
            .unwrap_or_default();
        o.insert("class".into(), json!(name));
    }
    o
}

fn action_text(a: Action) -> &'static str {
    if a.deny { "deny" } else { "permit" }
}

/// Entry indices in precedence order: priority descending, then list order.
fn precedence(entries: &[Entry]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(entries[i].rule.priority));
    order
}

fn with_cp<R>(
    ctx: &OpCtx<'_>,
    f: impl FnOnce(&mut Plane) -> Result<R, String>,
) -> Result<R, String> {
    ctx.cp(|cp| f(&mut cp.classify))
}

fn list(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    let c = &ctx.state.config.config;
    let (classes, ports) = (conf::classes(c), conf::port_names(c));
    with_cp(ctx, |cp| {
        let t = totals(cp);
        let rules: Vec<Value> = precedence(&cp.entries)
            .into_iter()
            .map(|i| {
                let e = &cp.entries[i];
                let mut o = rule_json(e, &classes, &ports);
                let (p, b) = t.get(&e.id).copied().unwrap_or_default();
                o.insert("packets".into(), json!(p));
                o.insert("bytes".into(), json!(b));
                Value::Object(o)
            })
            .collect();
        Ok(json!({
            "default": action_text(cp.default),
            "classes": classes,
            "workers": ctx.workers(STAGE),
            "rules": rules,
        }))
    })
    .map_err(OpError::from)
}

fn counters(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    let workers = ctx.workers(STAGE);
    with_cp(ctx, |cp| Ok(counters_json(cp, workers))).map_err(OpError::from)
}

/// The `rte_acl` classify method of the installed table (`avx512x16`, `avx2`, ...), null
/// without one (no worker runs the stage, or no rules).
pub(super) fn method(cp: &Plane) -> Value {
    cp.installed
        .as_ref()
        .and_then(|i| i.table.alg())
        .map_or(Value::Null, |a| json!(a.name()))
}

/// `acl.counters`: hits per rule and of the default action, and how many `workers` run them.
pub(super) fn counters_json(cp: &Plane, workers: usize) -> Value {
    let t = totals(cp);
    let rules: Vec<Value> = cp
        .entries
        .iter()
        .map(|e| {
            let (p, b) = t.get(&e.id).copied().unwrap_or_default();
            json!({"id": e.id, "packets": p, "bytes": b})
        })
        .collect();
    let (dp, db) = t.get(&0).copied().unwrap_or_default();
    json!({
        "default": {"action": action_text(cp.default), "packets": dp, "bytes": db},
        "workers": workers,
        "method": method(cp),
        "rules": rules,
    })
}

fn add(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    // Before the control-plane lock: it broadcasts from inside it (txn::change_lock).
    let _change = crate::txn::change_lock();
    let text: RuleText = serde_json::from_value(a.clone()).map_err(|e| format!("acl.add: {e}"))?;
    let c = &ctx.state.config.config;
    if c.classify.is_none() {
        return Err("acl.add: no [classify] section in the configuration".into());
    }
    let rule = text
        .compile(&conf::classes(c), &conf::port_names(c))
        .map_err(|(_, e)| format!("acl.add: {e}"))?;
    with_cp(ctx, |cp| {
        if cp.entries.len() >= conf::MAX_RULES {
            return Err(format!("acl.add: already {} rules", conf::MAX_RULES));
        }
        // Ids are never reused, even when the add fails.
        let id = cp.next_id;
        cp.next_id += 1;
        let mut entries = cp.entries.clone();
        entries.push(Entry { id, rule });
        let default = cp.default;
        let mut out = apply(ctx, cp, entries, default)?;
        out["id"] = json!(id);
        Ok(out)
    })
    .map_err(OpError::from)
}

fn del(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    // Before the control-plane lock: it broadcasts from inside it (txn::change_lock).
    let _change = crate::txn::change_lock();
    let id = args::opt_u64(a, "id")?.ok_or("acl.del: missing argument 'id'")?;
    with_cp(ctx, |cp| {
        let Some(pos) = cp.entries.iter().position(|e| u64::from(e.id) == id) else {
            return Err(format!("acl.del: no rule with id {id} (see acl.list)"));
        };
        let mut entries = cp.entries.clone();
        entries.remove(pos);
        let default = cp.default;
        let mut out = apply(ctx, cp, entries, default)?;
        out["deleted"] = json!(id);
        Ok(out)
    })
    .map_err(OpError::from)
}

/// `reload`: when the file's rule set or default action changed, it replaces the live one (the
/// file is the truth; rules added with `acl.add` since start are dropped). The new set is
/// compiled here first, so a rule set that does not build refuses the whole reload.
pub(super) fn prepare_reload(
    ctx: &OpCtx<'_>,
    old: &crate::config::Config,
    new: &crate::config::Config,
) -> Result<Option<crate::ops::Commit>, String> {
    if conf::classes(old) != conf::classes(new) {
        return Err(
            "[classify] classes changed: class ids are fixed at start, restart to change them"
                .into(),
        );
    }
    let rules = compiled_rules(new)?;
    let default = default_action(new);
    if compiled_rules(old)? == rules && default_action(old) == default {
        return Ok(None);
    }
    let ids = port_ids(ctx.state);
    let trs = table_rules(
        rules.iter().enumerate().map(|(i, r)| (i as u32 + 1, r)),
        &ids,
    );
    AclTable::build(&trs, default).map_err(|e| format!("new rule set does not build: {e}"))?;
    Ok(Some(Box::new(move |ctx: &OpCtx<'_>| {
        with_cp(ctx, |cp| {
            let first = cp.next_id;
            let entries: Vec<Entry> = rules
                .iter()
                .enumerate()
                .map(|(i, r)| Entry {
                    id: first + i as u32,
                    rule: *r,
                })
                .collect();
            cp.next_id = first + rules.len() as u32;
            let r = apply(ctx, cp, entries, default)?;
            Ok(format!(
                "classify: {} rule(s) on {} worker(s)",
                r["rules"], r["workers"]
            ))
        })
    })))
}
