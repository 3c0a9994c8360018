//! Routes from the kernel's table (`[fib_sync]`, the reader in `crate::fib_sync`): a batch of
//! changes applied to the routes held and installed as one table (built, or the table the last
//! batch replaced changed in place), the `route.sync` operation and the `pollfwd_fib_sync_*`
//! Prometheus families.

use std::collections::BTreeMap;
use std::sync::Arc;

use pollfwd_nf::forward::table::{self, FwdTable, Prefix, RouteEntry, RouteKind, StaticRoute};
use pollfwd_nf::forward::table6::{self, Prefix6, RouteEntry6, StaticRoute6};
use serde_json::{Value, json};

use super::install::{install, origin_name, resolve_all, swap_in, with_cp};
use super::state::Synced;
use crate::ops::{OpCtx, OpError};

/// One change of the kernel's table at prefix level: the route the prefix has now (over a
/// DPDK interface id; several next hops: ECMP), or None (it has none any more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncChange {
    V4(Prefix, Option<Synced<StaticRoute>>),
    V6(Prefix6, Option<Synced<StaticRoute6>>),
}

/// Route changes of a table, to make one table equal to another in place.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    pub del: Vec<Prefix>,
    pub add: Vec<RouteEntry>,
    pub del6: Vec<Prefix6>,
    pub add6: Vec<RouteEntry6>,
}

/// A table replaced by a FIB sync batch, and what it lacks to equal the one in force
/// (`delta`) while that one is generation `generation` of the control plane: the next batch
/// changes it in place instead of building a table ([`FwdTable::update`]).
pub struct Reuse {
    pub table: Arc<FwdTable>,
    pub generation: u64,
    pub delta: Delta,
}

/// What a twin is built from: the routes of the table in force, its generation, and the
/// table itself.
pub type Twin = (Vec<RouteEntry>, Vec<RouteEntry6>, u64, Arc<FwdTable>);

/// What [`apply_synced`] did.
#[derive(Default)]
pub struct SyncReport {
    /// Routes added or changed, removed.
    pub installed: u64,
    pub withdrawn: u64,
    /// New prefixes refused (beyond `max`), routes that do not resolve (the first error).
    pub refused_limit: u64,
    pub refused_invalid: u64,
    pub first_invalid: Option<String>,
    /// Routes held from the kernel after the change.
    pub held: usize,
    /// Time to make the table, in place or built (ms); None: nothing changed.
    pub build_ms: Option<f64>,
    /// Whether the table was changed in place.
    pub in_place: bool,
    /// The table replaced, for the next batch ([`Reuse`]).
    pub retired: Option<Reuse>,
    /// Tables not reused, for the caller to free where it costs nothing (DPDK zeroes freed
    /// memory: tens of ms for a 2^24-entry level).
    pub discard: Vec<Arc<FwdTable>>,
    /// A table was built and the one it replaced is too far behind to catch up in place:
    /// the routes of the table in force and its generation, for the caller to build a twin
    /// of it off this thread (the next batch's [`Reuse`], with no delta).
    /// The table in force comes along: the twin's multipath groups share its buckets and
    /// counters ([`FwdTable::build_after`]).
    pub twin: Option<Twin>,
}

/// Applies changes of the kernel's table to the routes taken from it and installs one new
/// table with all of them (one table per batch, whatever its size). `full`: the changes are
/// the whole table (a dump): prefixes not in them are withdrawn; `force`: a table is
/// installed even when nothing changed (to get a [`Reuse`]). At most `max` routes are held:
/// a new prefix beyond that is refused (counted), nothing held is dropped for it. `reuse`:
/// the table the last batch replaced, changed in place when it still fits.
pub fn apply_synced(
    ctx: &OpCtx<'_>,
    changes: Vec<SyncChange>,
    full: bool,
    force: bool,
    max: usize,
    reuse: Option<Reuse>,
) -> Result<SyncReport, String> {
    with_cp(ctx, |cp| {
        let shared = cp.init.as_ref().expect("initialised").0.clone();
        let mut rep = SyncReport::default();
        // Prefixes of interface and static routes are theirs, whatever the kernel says.
        let mut fixed: std::collections::HashSet<Prefix> = table::interface_routes(&shared.ifaces)?
            .iter()
            .map(|e| e.prefix)
            .collect();
        fixed.extend(cp.statics.keys().copied());
        let mut fixed6: std::collections::HashSet<Prefix6> =
            table6::interface_routes6(&shared.ifaces)?
                .iter()
                .map(|e| e.prefix)
                .collect();
        fixed6.extend(cp.statics6.keys().copied());
        // Changed in place, undone on error.
        let mut e4 = Edit::begin(&mut cp.synced, full);
        let mut e6 = Edit::begin(&mut cp.synced6, full);
        let mut touched: std::collections::BTreeSet<Prefix> = Default::default();
        let mut touched6: std::collections::BTreeSet<Prefix6> = Default::default();
        if let Some(m) = &e4.full {
            touched.extend(m.keys().copied());
        }
        if let Some(m) = &e6.full {
            touched6.extend(m.keys().copied());
        }
        let invalid = |rep: &mut SyncReport, e: String| {
            rep.refused_invalid += 1;
            rep.first_invalid.get_or_insert(e);
        };
        for c in changes {
            let held = cp.synced.len() + cp.synced6.len();
            match c {
                SyncChange::V4(p, None) => {
                    e4.set(&mut cp.synced, p, None);
                    touched.insert(p);
                }
                SyncChange::V6(p, None) => {
                    e6.set(&mut cp.synced6, p, None);
                    touched6.insert(p);
                }
                SyncChange::V4(p, Some(r)) => {
                    let bad = r
                        .hops
                        .iter()
                        .find_map(|h| table::resolve_static(&shared.ifaces, h).err());
                    if let Some(e) = bad {
                        invalid(&mut rep, e);
                    } else if !cp.synced.contains_key(&p) && held >= max {
                        rep.refused_limit += 1;
                    } else {
                        e4.set(&mut cp.synced, p, Some(r));
                        touched.insert(p);
                    }
                }
                SyncChange::V6(p, Some(r)) => {
                    let bad = r
                        .hops
                        .iter()
                        .find_map(|h| table6::resolve_static6(&shared.ifaces, h).err());
                    if let Some(e) = bad {
                        invalid(&mut rep, e);
                    } else if !cp.synced6.contains_key(&p) && held >= max {
                        rep.refused_limit += 1;
                    } else {
                        e6.set(&mut cp.synced6, p, Some(r));
                        touched6.insert(p);
                    }
                }
            }
        }
        for p in &touched {
            match (e4.old(&cp.synced, p), cp.synced.get(p)) {
                (o, Some(n)) if o.as_ref() != Some(n) => rep.installed += 1,
                (Some(_), None) => rep.withdrawn += 1,
                _ => {}
            }
        }
        for p in &touched6 {
            match (e6.old(&cp.synced6, p), cp.synced6.get(p)) {
                (o, Some(n)) if o.as_ref() != Some(n) => rep.installed += 1,
                (Some(_), None) => rep.withdrawn += 1,
                _ => {}
            }
        }
        rep.held = cp.synced.len() + cp.synced6.len();
        let changed = rep.installed + rep.withdrawn > 0;
        if changed || force {
            let t0 = std::time::Instant::now();
            let (cur, r6_now) = {
                let t = &cp.init.as_ref().expect("initialised").1;
                let r6 = t.v6().map_or(0, |x| x.routes());
                (t.clone(), r6)
            };
            let (mut r4, mut r6) = (cur.routes() - r6_now, r6_now);
            let (r4_now, r6_before) = (r4, r6);
            let mut d = Delta::default();
            for p in touched.iter().filter(|p| !fixed.contains(p)) {
                match (e4.old(&cp.synced, p), cp.synced.get(p)) {
                    (o, Some(n)) if o.as_ref() != Some(n) => {
                        // Resolved when taken; every next hop (several: a group).
                        for h in n.hops.iter() {
                            if let Ok(mut e) = table::resolve_static(&shared.ifaces, h) {
                                e.kind = RouteKind::Dynamic;
                                d.add.push(e);
                            }
                        }
                        r4 += usize::from(o.is_none());
                    }
                    (Some(_), None) => {
                        d.del.push(*p);
                        r4 -= 1;
                    }
                    _ => {}
                }
            }
            for p in touched6.iter().filter(|p| !fixed6.contains(p)) {
                match (e6.old(&cp.synced6, p), cp.synced6.get(p)) {
                    (o, Some(n)) if o.as_ref() != Some(n) => {
                        for h in n.hops.iter() {
                            if let Ok(mut e) = table6::resolve_static6(&shared.ifaces, h) {
                                e.kind = RouteKind::Dynamic;
                                d.add6.push(e);
                            }
                        }
                        r6 += usize::from(o.is_none());
                    }
                    (Some(_), None) => {
                        d.del6.push(*p);
                        r6 -= 1;
                    }
                    _ => {}
                }
            }
            // In place: the table the last batch replaced, when nothing else installed a
            // table since and no worker holds it any more. Its multipath groups follow those
            // of the table in force (`cur`).
            let mut table: Option<Arc<FwdTable>> = None;
            if let Some(mut r) = reuse {
                // Changing k routes in place (twice: this table catches up on the last
                // batch too) costs 2k trie steps; a build, n routes and a new 64 MiB tbl24
                // to fill: a large change is built.
                let k = d.add.len() + d.del.len() + d.add6.len() + d.del6.len();
                let k = k + r.delta.add.len() + r.delta.del.len();
                let k = k + r.delta.add6.len() + r.delta.del6.len();
                let small = k <= (r4 + r6) / 8 + 64;
                let fits = r.generation == cp.table_gen
                    && !force
                    && small
                    && Arc::get_mut(&mut r.table).is_some_and(|t| {
                        t.update(
                            &r.delta.del,
                            &r.delta.add,
                            &r.delta.del6,
                            &r.delta.add6,
                            (r4_now, r6_before),
                            Some(&cur),
                        )
                        .and_then(|_| {
                            t.update(&d.del, &d.add, &d.del6, &d.add6, (r4, r6), Some(&cur))
                        })
                        .is_ok()
                    });
                if fits {
                    table = Some(r.table);
                } else {
                    rep.discard.push(r.table);
                }
            }
            // The table in force is retired below: no reference of this batch may hold it.
            drop(cur);
            rep.in_place = table.is_some();
            let res = match table {
                Some(t) => swap_in(ctx, cp, t).map(|(_, retired)| (retired, None)),
                None => {
                    let (statics, statics6) = (cp.statics.clone(), cp.statics6.clone());
                    install(ctx, cp, statics, statics6).map(|i| (i.retired, Some(i.entries)))
                }
            };
            match res {
                Ok((retired, built)) => {
                    rep.build_ms = Some((t0.elapsed().as_secs_f64() * 10_000.0).round() / 10.0);
                    let n = r4 + r6;
                    let k = d.add.len() + d.del.len() + d.add6.len() + d.del6.len();
                    match built {
                        // Built, and far from the table it replaced: a twin is cheaper.
                        Some((e4, e6)) if k > n / 8 + 64 => {
                            rep.discard.extend(retired);
                            let cur = cp.init.as_ref().expect("initialised").1.clone();
                            rep.twin = Some((e4, e6, cp.table_gen, cur));
                        }
                        _ => {
                            rep.retired = retired.map(|table| Reuse {
                                table,
                                generation: cp.table_gen,
                                delta: d,
                            });
                        }
                    }
                }
                Err(e) => {
                    // Nothing changes: the routes held and the table in force stay.
                    e4.rollback(&mut cp.synced);
                    e6.rollback(&mut cp.synced6);
                    return Err(e);
                }
            }
            if changed {
                cp.synced_gen += 1;
            }
        } else if let Some(r) = reuse {
            // Nothing to do: the table stays reusable.
            rep.retired = Some(r);
        }
        let st = &mut cp.sync_stats;
        st.installed += rep.installed;
        st.withdrawn += rep.withdrawn;
        st.refused_limit += rep.refused_limit;
        st.refused_invalid += rep.refused_invalid;
        if let Some(ms) = rep.build_ms {
            st.batches += 1;
            st.in_place += u64::from(rep.in_place);
            st.last_batch_changes = rep.installed + rep.withdrawn;
            st.last_batch_ms = ms;
        }
        Ok(rep)
    })
}

/// Changes to a map of routes, undone on error: the whole old map (a full replacement),
/// or the old value of each key changed.
struct Edit<K: Ord + Copy, V: Clone> {
    full: Option<BTreeMap<K, V>>,
    undo: BTreeMap<K, Option<V>>,
}

impl<K: Ord + Copy, V: Clone> Edit<K, V> {
    /// Starts changing `map`; `full`: it is replaced (emptied here).
    fn begin(map: &mut BTreeMap<K, V>, full: bool) -> Self {
        Edit {
            full: full.then(|| std::mem::take(map)),
            undo: BTreeMap::new(),
        }
    }

    fn set(&mut self, map: &mut BTreeMap<K, V>, k: K, v: Option<V>) {
        if self.full.is_none() {
            self.undo.entry(k).or_insert_with(|| map.get(&k).cloned());
        }
        match v {
            Some(v) => map.insert(k, v),
            None => map.remove(&k),
        };
    }

    /// The value of `k` before the changes.
    fn old(&self, map: &BTreeMap<K, V>, k: &K) -> Option<V> {
        match &self.full {
            Some(m) => m.get(k).cloned(),
            None => match self.undo.get(k) {
                Some(v) => v.clone(),
                None => map.get(k).cloned(),
            },
        }
    }

    fn rollback(self, map: &mut BTreeMap<K, V>) {
        match self.full {
            Some(m) => *map = m,
            None => {
                for (k, v) in self.undo {
                    match v {
                        Some(v) => map.insert(k, v),
                        None => map.remove(&k),
                    };
                }
            }
        }
    }
}

/// Updates the FIB sync counters (the reader's own: ignored routes, dumps, overflows, errors).
pub fn sync_stats_update(ctx: &OpCtx<'_>, f: impl FnOnce(&mut super::state::SyncStats)) {
    ctx.cp(|cp| f(&mut cp.forward.sync_stats));
}

pub(super) fn route_sync(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    let fc = ctx.config_in_force().fib_sync;
    with_cp(ctx, |cp| {
        let (shared, _) = cp.init.as_ref().expect("initialised");
        let statics: Vec<StaticRoute> = cp.statics.values().flatten().copied().collect();
        let statics6: Vec<StaticRoute6> = cp.statics6.values().flatten().copied().collect();
        let (e4, e6) = resolve_all(&shared.ifaces, &statics, &statics6, &cp.synced, &cp.synced6)?;
        // Prefixes (a multipath route's entries, one per next hop, are one route).
        let dynamic = e4
            .iter()
            .filter(|e| e.kind == RouteKind::Dynamic)
            .map(|e| e.prefix)
            .collect::<std::collections::HashSet<_>>()
            .len()
            + e6.iter()
                .filter(|e| e.kind == RouteKind::Dynamic)
                .map(|e| e.prefix)
                .collect::<std::collections::HashSet<_>>()
                .len();
        let held = cp.synced.len() + cp.synced6.len();
        let mut by_origin: BTreeMap<String, u64> = BTreeMap::new();
        for p in cp
            .synced
            .values()
            .map(|s| s.proto)
            .chain(cp.synced6.values().map(|s| s.proto))
        {
            *by_origin.entry(origin_name(p)).or_default() += 1;
        }
        let st = &cp.sync_stats;
        Ok(json!({
            "enable": fc.enable.get_ref(),
            "table": fc.table.get_ref(),
            "max_routes": fc.max_routes.get_ref(),
            "batch_ms": fc.batch_ms.get_ref(),
            "socket_buffer_kb": fc.socket_buffer_kb.get_ref(),
            "socket_buffer_bytes": st.socket_buffer,
            "routes": held,
            "installed_routes": dynamic,
            "shadowed": held - dynamic,
            "by_origin": by_origin,
            "counters": {
                "installed": st.installed,
                "withdrawn": st.withdrawn,
                "ignored": st.ignored,
                "ignored_total": st.ignored.values().sum::<u64>(),
                "refused_limit": st.refused_limit,
                "refused_invalid": st.refused_invalid,
                "multipath": st.multipath,
                "multipath_weights_ignored": st.multipath_weights_ignored,
                "multipath_truncated": st.multipath_truncated,
                "multipath_partial": st.multipath_partial,
                "batches": st.batches,
                "in_place": st.in_place,
                "dumps": st.dumps,
                "overflows": st.overflows,
            },
            "last_batch": {
                "changes": st.last_batch_changes,
                "build_ms": st.last_batch_ms,
                "latency_ms": st.last_batch_latency_ms,
                "window_ms": st.last_batch_window_ms,
            },
            "last_error": st.last_error,
        }))
    })
    .map_err(OpError::from)
}

/// The `pollfwd_fib_sync_*` families (with `[fib_sync]` on): routes held, counters.
pub(super) fn fib_sync_metrics(ctx: &OpCtx<'_>) -> String {
    use std::fmt::Write as _;
    let Ok((held, st)) = with_cp(ctx, |cp| {
        Ok((cp.synced.len() + cp.synced6.len(), cp.sync_stats.clone()))
    }) else {
        return String::new();
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# HELP pollfwd_fib_sync_routes Routes held from the kernel's table (installed or shadowed).\n\
         # TYPE pollfwd_fib_sync_routes gauge\npollfwd_fib_sync_routes {held}"
    );
    for (k, v, what) in [
        (
            "installed",
            st.installed,
            "routes from the kernel added or changed",
        ),
        ("withdrawn", st.withdrawn, "routes from the kernel removed"),
        (
            "refused_limit",
            st.refused_limit,
            "routes refused beyond max_routes",
        ),
        (
            "refused_invalid",
            st.refused_invalid,
            "routes refused: not resolvable",
        ),
        ("batches", st.batches, "tables installed by the FIB sync"),
        ("dumps", st.dumps, "full reads of the kernel's table"),
        (
            "overflows",
            st.overflows,
            "route notifications lost (a dump follows)",
        ),
        (
            "multipath",
            st.multipath,
            "multipath routes taken (ECMP groups)",
        ),
        (
            "multipath_weights_ignored",
            st.multipath_weights_ignored,
            "multipath routes with unequal weights, installed with equal shares",
        ),
        (
            "multipath_truncated",
            st.multipath_truncated,
            "multipath routes beyond 16 next hops, the first 16 installed",
        ),
        (
            "multipath_partial",
            st.multipath_partial,
            "multipath routes with next hops out of other interfaces, those out of punt interfaces installed",
        ),
    ] {
        let _ = writeln!(
            o,
            "# HELP pollfwd_fib_sync_{k}_total FIB sync: {what}.\n\
             # TYPE pollfwd_fib_sync_{k}_total counter\npollfwd_fib_sync_{k}_total {v}"
        );
    }
    let _ = writeln!(
        o,
        "# HELP pollfwd_fib_sync_ignored_total FIB sync: kernel routes not taken, by reason.\n\
         # TYPE pollfwd_fib_sync_ignored_total counter"
    );
    for (r, v) in &st.ignored {
        let _ = writeln!(o, "pollfwd_fib_sync_ignored_total{{reason=\"{r}\"}} {v}");
    }
    o
}
