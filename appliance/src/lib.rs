//! The pollfwd appliance: configuration, topology, the daemon's set-up and lifecycle, the
//! management thread and control socket, and lab helpers (pcap traffic generation).

pub mod config;
pub mod control;
pub mod daemon;
pub mod mgmt;
pub mod nfconf;
pub mod ops;
pub mod ops_classify;
pub mod ops_forward;
pub mod ops_nat;
pub mod ops_policer;
pub mod pcap;
pub mod reload;
pub mod stages;
pub mod summary;
pub mod topology;
pub mod traffic;
