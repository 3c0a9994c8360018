//! The classify NF's control-plane state: the rule list (ids never reused), the default
//! action, the table the workers run with each worker's hit counters, and the hits of
//! replaced tables (counters follow a rule across rebuilds by its id).

use std::collections::HashMap;
use std::sync::Arc;

use pollfwd_nf::classify::{AclTable, Action, HitCounters};

use super::config::CompiledRule;

/// A rule of the list.
#[derive(Clone, Copy)]
pub struct Entry {
    pub id: u32,
    pub rule: CompiledRule,
}

/// The table the workers run and each worker's counters for it.
#[derive(Clone)]
pub struct Installed {
    pub table: Arc<AclTable>,
    pub hits: Vec<(usize, HitCounters)>,
}

/// Control-plane state of the classify NF.
#[derive(Default, Clone)]
pub struct Plane {
    /// Rules in list order (config order, then added ones).
    pub entries: Vec<Entry>,
    pub next_id: u32,
    pub default: Action,
    pub installed: Option<Installed>,
    /// Hits of replaced tables, by rule id (0: the default action).
    pub retired: HashMap<u32, (u64, u64)>,
}
