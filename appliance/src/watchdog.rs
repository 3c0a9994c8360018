//! The worker watchdog: the management thread watches every worker's heartbeat (the TSC a
//! worker stores at each TX drain, every `runtime.tx_drain_us`) and how its loop ended. A
//! worker whose heartbeat has not moved for [`stall_after`] is *stalled*; one whose loop ended
//! (a panic, or a return) while pollfwd was not stopping is *dead*. Each change is logged at
//! once and shown in `stats`/`lcores` (`state`) and Prometheus (`pollfwd_lcore_up`); what the
//! daemon then does is `runtime.on_worker_failure`'s business (`daemon.rs`).

use std::time::{Duration, Instant};

use pollfwd_pipeline::{EXIT_PANICKED, EXIT_RETURNED};

use crate::health::Health;
use crate::state::{LcoreRt, State};

/// How long a heartbeat may stand still before its worker counts as stalled: half a second,
/// or two drain periods and a margin when `tx_drain_us` is long.
pub fn stall_after(tx_drain_us: u64) -> Duration {
    Duration::from_millis(500)
        .max(Duration::from_micros(2 * tx_drain_us) + Duration::from_millis(100))
}

/// A change of a worker's health, to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub lcore: u32,
    pub worker: usize,
    pub health: Health,
    /// Time since the worker's last heartbeat.
    pub silent: Duration,
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (l, w) = (self.lcore, self.worker);
        match self.health {
            Health::Running => write!(f, "lcore {l} (worker {w}) is running again"),
            Health::Stalled => write!(
                f,
                "lcore {l} (worker {w}) stalled: no loop round for {:.1} s",
                self.silent.as_secs_f64()
            ),
            Health::Panicked => write!(f, "lcore {l} (worker {w}) died: its loop panicked"),
            Health::Returned => write!(f, "lcore {l} (worker {w}) died: its loop returned"),
        }
    }
}

/// The management thread's view of the workers' heartbeats.
pub struct Watchdog {
    stall: Duration,
    /// Per worker: the last heartbeat value and when it was first seen.
    seen: Vec<(u64, Instant)>,
}

impl Watchdog {
    /// Starts watching `state`'s workers (just launched) at `now`.
    pub fn new(state: &State, now: Instant) -> Watchdog {
        let rt = &state.config.config.runtime;
        Watchdog {
            stall: if rt.watchdog {
                stall_after(*rt.tx_drain_us.get_ref())
            } else {
                Duration::MAX
            },
            seen: state
                .lcores
                .iter()
                .map(|l| (l.counters.heartbeat.get(), now))
                .collect(),
        }
    }

    /// Looks at every worker at `now`; publishes and returns the changes.
    pub fn check(&mut self, lcores: &[LcoreRt], now: Instant) -> Vec<Event> {
        let mut ev = Vec::new();
        for (l, seen) in lcores.iter().zip(self.seen.iter_mut()) {
            let hb = l.counters.heartbeat.get();
            if hb != seen.0 {
                *seen = (hb, now);
            }
            let silent = now.saturating_duration_since(seen.1);
            let health = match l.counters.exited.get() {
                EXIT_PANICKED => Health::Panicked,
                EXIT_RETURNED => Health::Returned,
                _ if silent >= self.stall => Health::Stalled,
                _ => Health::Running,
            };
            if health != l.health.get() {
                l.health.set(health);
                ev.push(Event {
                    lcore: l.id,
                    worker: l.index,
                    health,
                    silent,
                });
            }
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_threshold_follows_the_drain_period() {
        assert_eq!(stall_after(100), Duration::from_millis(500));
        assert_eq!(stall_after(1_000_000), Duration::from_millis(2100));
    }
}
