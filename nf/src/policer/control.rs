//! Control messages: a new table with its fresh state ([`Update`], carried over by name and
//! undone by sending back the reply) and [`ClearCounters`].

use std::sync::{Arc, Mutex};

use super::sources::Sources;
use super::table::{PolicerState, PolicerTable};

/// A new table for the stage, with fresh run-time state built off the data path. The worker
/// carries over the state of policers that keep their name (meters, source tables, counters);
/// the replaced table and state come back in the reply and are freed by the management thread,
/// or sent back to undo the change.
pub struct Update {
    pub table: PolicerTable,
    /// Its run-time state; a per-source policer's table is None where the worker's running
    /// table of that name serves as it is (see [`PolicerTable::state_replacing`]).
    pub state: PolicerState,
    /// Empty source tables of the sizes being replaced, indexed like the replaced table's
    /// policers (see [`Update::new`]).
    pub spare: Vec<Option<Sources>>,
}

impl Update {
    /// An update from `current` (the table the workers run) to `table`. A per-source policer
    /// whose binding keeps its table's shape (size, IPv6 prefix) gets no new table: the worker
    /// moves its running one over, and the reply says the same for the way back, so a reload
    /// or `policer.set` that leaves the bindings alone allocates and frees no source table. A
    /// per-source policer whose table changes size moves its sources into the new table during
    /// housekeeping, so its old table cannot come back in the reply; an empty table of the old
    /// size, allocated here, takes its place there. The reply is then a complete update to
    /// send back (an undo restores the old sizes, the sources moving back the same way), and
    /// the worker allocates nothing.
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
            state: table.state_replacing(Some(current)),
            table,
            spare,
        }
    }
}

/// Zero this worker's policer counters.
pub struct ClearCounters;

/// Table slots one [`ListSources`] step looks at (4096 x 64 bytes: tens of microseconds on the
/// worker, between two bursts).
pub const LIST_SLOTS: usize = 4096;

/// One step of the operator's listing of a per-source policer's sources (`policer.sources`):
/// the worker looks at [`LIST_SLOTS`] slots from `start` and appends the sources it finds
/// (while `out` holds fewer than `limit`) and the cursor to continue at.
pub struct ListSources {
    /// The policer's index in the table.
    pub policer: usize,
    pub start: usize,
    pub limit: usize,
    pub out: Arc<Mutex<SourcePage>>,
}

/// What the listing steps of one worker found so far.
#[derive(Debug, Default)]
pub struct SourcePage {
    pub sources: Vec<SourceEntry>,
    /// Where the next step starts; None: done (end of the table, or not a per-source policer).
    pub next: Option<usize>,
}

/// One metered source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceEntry {
    /// An IPv6 prefix of `prefix` bits (else an IPv4 address, `prefix` 32).
    pub ipv6: bool,
    /// The address or prefix, host order.
    pub key: u128,
    pub prefix: u8,
    /// TSC when it was last seen.
    pub last: u64,
    /// Tokens in its buckets, bytes: (C, E) for srTCM, (C, P) for trTCM.
    pub tokens: (u64, u64),
}
