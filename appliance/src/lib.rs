//! The pollfwd appliance: configuration, topology, the daemon's set-up and lifecycle, the
//! control socket and its operations, and every network function's appliance side.
//!
//! Layers, each using only those below it:
//! - `daemon` (lifecycle: EAL, pools, ports, workers, wait, shutdown, summary) and `notify`
//!   (systemd's readiness protocol);
//! - `server` (control socket, Prometheus listener) and `telemetry`;
//! - `dispatch` (operation lookup), `core_ops`, `reload`, `summary`, `registry` (every NF);
//! - `nf::<name>` (one folder per network function), `module` (the `Nf` trait);
//! - `ops` (operation context), `txn` (changes that reach the workers), `state`,
//!   `nf::plane` (control-plane state);
//! - `config` (the file: core sections; NF sections from `nf::<name>::section`), `topology`.

pub mod config;
pub mod core_ops;
pub mod daemon;
pub mod dispatch;
pub mod fib_sync;
pub mod health;
pub mod module;
pub mod nf;
pub mod notify;
pub mod ops;
pub mod punt;
pub mod registry;
pub mod reload;
pub mod server;
pub mod state;
pub mod summary;
pub mod telemetry;
pub mod topology;
pub mod txn;
pub mod watchdog;
