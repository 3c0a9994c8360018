//! A worker's health, as the watchdog (`crate::watchdog`) publishes it for the operations.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// A worker's health as the watchdog last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    Running = 0,
    /// No heartbeat for longer than [`crate::watchdog::stall_after`].
    Stalled = 1,
    /// Its loop panicked.
    Panicked = 2,
    /// Its loop returned while pollfwd was running.
    Returned = 3,
}

impl Health {
    pub fn name(self) -> &'static str {
        match self {
            Health::Running => "running",
            Health::Stalled => "stalled",
            Health::Panicked => "dead (panicked)",
            Health::Returned => "dead (returned)",
        }
    }

    pub fn is_up(self) -> bool {
        self == Health::Running
    }

    fn from_u8(v: u8) -> Health {
        match v {
            1 => Health::Stalled,
            2 => Health::Panicked,
            3 => Health::Returned,
            _ => Health::Running,
        }
    }
}

/// Where the watchdog publishes a worker's health (a field of [`LcoreRt`]).
#[derive(Debug, Default)]
pub struct HealthCell(AtomicU8);

impl HealthCell {
    pub fn get(&self) -> Health {
        Health::from_u8(self.0.load(Relaxed))
    }

    pub fn set(&self, h: Health) {
        self.0.store(h as u8, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_names_and_round_trip() {
        for h in [
            Health::Running,
            Health::Stalled,
            Health::Panicked,
            Health::Returned,
        ] {
            let c = HealthCell::default();
            c.set(h);
            assert_eq!(c.get(), h);
            assert_eq!(h.is_up(), h == Health::Running, "{}", h.name());
        }
    }
}
