//! What the management side's watchdog reads of a worker besides its heartbeat: how its loop
//! ended (an exit mark set even when it panics), and the faults tests inject into a worker.

use std::sync::Arc;
use std::time::Duration;

use crate::counters::LcoreCounters;

/// A fault a worker injects into itself once, some time after it starts: how the watchdog
/// is tested against a real worker (the appliance enables it in debug builds only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The worker panics.
    Panic,
    /// The worker stops looping for this long, then goes on.
    Stall(Duration),
}

/// Sets [`LcoreCounters::exited`] when the worker's loop ends, by return or by panic.
pub(crate) struct ExitMark(pub(crate) Arc<LcoreCounters>);

impl Drop for ExitMark {
    fn drop(&mut self) {
        let how = if std::thread::panicking() {
            crate::counters::EXIT_PANICKED
        } else {
            crate::counters::EXIT_RETURNED
        };
        self.0.exited.set(how);
    }
}
