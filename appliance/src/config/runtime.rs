//! `[runtime]`: the worker loop's burst size, periods and pipeline ring size.

use serde::Deserialize;
use toml::Spanned;

use super::Config;
use super::error::{ConfigError, Pos};

/// Longest TX drain period: 1 s.
pub const MAX_TX_DRAIN_US: u64 = 1_000_000;
/// Longest housekeeping period: 10 s.
pub const MAX_HOUSEKEEPING_US: u64 = 10_000_000;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Packets per rx burst (1..=64).
    #[serde(default = "RuntimeConfig::d_burst")]
    pub burst: Spanned<usize>,
    /// TX buffer drain period, microseconds (1..=1000000).
    #[serde(default = "RuntimeConfig::d_drain")]
    pub tx_drain_us: Spanned<u64>,
    /// Stage housekeeping period (ageing, expiry), microseconds (1..=10000000).
    #[serde(default = "RuntimeConfig::d_hk")]
    pub housekeeping_us: Spanned<u64>,
    /// Slots of each pipeline ring (power of two).
    #[serde(default = "RuntimeConfig::d_ring")]
    pub ring_size: Spanned<u32>,
    /// What a stalled or dead worker does to the appliance: `exit` (stop, exit status 1, so
    /// that a supervisor restarts it) or `degraded` (report it and keep running).
    #[serde(default = "RuntimeConfig::d_failure")]
    pub on_worker_failure: Spanned<String>,
    /// Whether the watchdog reports a worker whose heartbeat stands still (a dead worker is
    /// always reported). Off where a port blocks its worker by design (net_pcap reading a
    /// FIFO) or while a debugger stops workers.
    #[serde(default = "super::eal::d_true")]
    pub watchdog: bool,
}

impl RuntimeConfig {
    fn d_burst() -> Spanned<usize> {
        Spanned::new(0..0, 32)
    }
    fn d_drain() -> Spanned<u64> {
        Spanned::new(0..0, 100)
    }
    fn d_hk() -> Spanned<u64> {
        Spanned::new(0..0, 1000)
    }
    fn d_ring() -> Spanned<u32> {
        Spanned::new(0..0, 1024)
    }
    fn d_failure() -> Spanned<String> {
        Spanned::new(0..0, "exit".into())
    }

    /// Whether the appliance keeps running when a worker stalls or dies.
    pub fn keep_running_degraded(&self) -> bool {
        self.on_worker_failure.get_ref() == "degraded"
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            burst: Self::d_burst(),
            tx_drain_us: Self::d_drain(),
            housekeeping_us: Self::d_hk(),
            ring_size: Self::d_ring(),
            on_worker_failure: Self::d_failure(),
            watchdog: true,
        }
    }
}

pub(super) fn validate(c: &Config, pos: &Pos<'_>) -> Result<(), ConfigError> {
    let burst = *c.runtime.burst.get_ref();
    if burst == 0 || burst > dpdk::BURST_MAX {
        return Err(pos.err(
            c.runtime.burst.span(),
            format!("runtime.burst {burst} must be 1..={}", dpdk::BURST_MAX),
        ));
    }
    // Periods are turned into TSC ticks (tsc_hz * us / 1e6): bounded so that never overflows
    // and a worker still drains its TX buffers and does its housekeeping in time.
    for (name, v, max) in [
        ("tx_drain_us", &c.runtime.tx_drain_us, MAX_TX_DRAIN_US),
        (
            "housekeeping_us",
            &c.runtime.housekeeping_us,
            MAX_HOUSEKEEPING_US,
        ),
    ] {
        let x = *v.get_ref();
        if x == 0 || x > max {
            return Err(pos.err(
                v.span(),
                format!("runtime.{name} {x} must be 1..={max} (microseconds)"),
            ));
        }
    }
    let rs = *c.runtime.ring_size.get_ref();
    if !rs.is_power_of_two() || rs < 64 {
        return Err(pos.err(
            c.runtime.ring_size.span(),
            format!("runtime.ring_size {rs} must be a power of two >= 64"),
        ));
    }
    let f = &c.runtime.on_worker_failure;
    if !matches!(f.get_ref().as_str(), "exit" | "degraded") {
        return Err(pos.err(
            f.span(),
            format!(
                "runtime.on_worker_failure '{}': \"exit\" or \"degraded\"",
                f.get_ref()
            ),
        ));
    }
    Ok(())
}
