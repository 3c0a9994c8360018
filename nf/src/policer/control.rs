//! Control messages: a new table with its fresh state ([`Update`], carried over by name and
//! undone by sending back the reply) and [`ClearCounters`].

use super::sources::Sources;
use super::table::{PolicerState, PolicerTable};

/// A new table for the stage, with fresh run-time state built off the data path. The worker
/// carries over the state of policers that keep their name (meters, source tables, counters);
/// the replaced table and state come back in the reply and are freed by the management thread,
/// or sent back to undo the change.
pub struct Update {
    pub table: PolicerTable,
    pub state: PolicerState,
    /// Empty source tables of the sizes being replaced, indexed like the replaced table's
    /// policers (see [`Update::new`]).
    pub spare: Vec<Option<Sources>>,
}

impl Update {
    /// An update from `current` (the table the workers run) to `table`. A per-source policer
    /// whose table changes size moves its sources into the new table during housekeeping, so
    /// its old table cannot come back in the reply; an empty table of the old size, allocated
    /// here, takes its place there. The reply is then a complete update to send back (an undo
    /// restores the old sizes, the sources moving back the same way), and the worker allocates
    /// nothing.
    pub fn new(table: PolicerTable, current: &PolicerTable) -> Update {
        let spare = current
            .defs
            .iter()
            .map(|o| {
                let old = o.per_source?;
                let new = table.defs.iter().find(|d| d.name == o.name)?.per_source?;
                (new.max_sources != old.max_sources)
                    .then(|| Sources::new(old.max_sources, old.idle_ticks, old.ipv6_prefix))
            })
            .collect();
        Update {
            state: table.fresh_state(),
            table,
            spare,
        }
    }
}

/// Zero this worker's policer counters.
pub struct ClearCounters;
