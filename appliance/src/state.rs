//! What the management side sees of the running appliance: ports, pools, worker lcores with
//! their counters and mailboxes, rings, and the control-plane state of the network functions.
//! Built by the daemon at start-up; read by the control socket, operations, summary and
//! telemetry while the workers run.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dpdk::{Mempool, Port, RingStats};
use pollfwd_pipeline::{LcoreCounters, Mailbox};

use crate::config::Loaded;
use crate::nf::plane::ControlPlane;
use crate::topology::HostTopology;

/// A configured port at run time.
pub struct PortRt {
    pub name: String,
    pub port: Port,
    pub device: String,
    pub driver: String,
    /// NUMA node of the device (None: unknown, e.g. a virtual device).
    pub socket: Option<u32>,
    pub mac: [u8; 6],
    pub rx_queues: u16,
    pub tx_queues: u16,
}

/// A worker lcore at run time, as the management thread sees it.
pub struct LcoreRt {
    pub id: u32,
    pub index: usize,
    pub cpu: i32,
    pub socket: u32,
    pub pool: String,
    /// "port:queue" or "ring<-lcore N" per source.
    pub sources: Vec<String>,
    pub stages: Vec<&'static str>,
    pub pipeline_to: Option<u32>,
    pub counters: Arc<LcoreCounters>,
    pub mailbox: Arc<Mailbox>,
    /// What the watchdog last saw (`crate::watchdog`).
    pub health: crate::health::HealthCell,
}

/// Everything the management thread may read while workers run. All of it is `Sync`: counters
/// are single-writer atomics, ports and pools are DPDK handles safe to query concurrently.
pub struct State {
    pub config: Loaded,
    pub topology: HostTopology,
    pub ports: Vec<PortRt>,
    pub pools: BTreeMap<u32, Mempool>,
    pub lcores: Vec<LcoreRt>,
    pub rings: Vec<RingStats>,
    pub main_lcore: u32,
    pub tsc_hz: u64,
    pub started: Instant,
    pub quit: Arc<AtomicBool>,
    /// Control-plane state of the NFs (route lists, rule sets...): management side only.
    pub control: Mutex<ControlPlane>,
}

/// Topology report: host CPUs and nodes, ports with their node, lcores with CPU, node, pool.
pub fn render_topology(s: &State) -> String {
    let mut out = s.topology.render();
    out += "ports:\n  id  name        device          driver          node  rxq  txq  mac\n";
    for p in &s.ports {
        out += &format!(
            "  {:>2}  {:<10}  {:<14}  {:<14}  {:>4}  {:>3}  {:>3}  {}\n",
            p.port.id(),
            p.name,
            p.device,
            p.driver,
            p.socket
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            p.rx_queues,
            p.tx_queues,
            mac(&p.mac)
        );
    }
    out += &format!("main lcore: {} (management thread)\n", s.main_lcore);
    out += "worker lcores:\n  lcore  cpu  node  pool         polls                 stages\n";
    for l in &s.lcores {
        let mut polls = l.sources.join(",");
        if let Some(t) = l.pipeline_to {
            polls += &format!(" ->lcore{t}");
        }
        out += &format!(
            "  {:>5}  {:>3}  {:>4}  {:<11}  {:<20}  {}\n",
            l.id,
            l.cpu,
            l.socket,
            l.pool,
            polls,
            l.stages.join(" -> ")
        );
    }
    out += "mempools:\n";
    for (node, p) in &s.pools {
        out += &format!("  node {node}: {} ({} mbufs)\n", p.name(), p.size());
    }
    out
}

/// A MAC address as `02:00:00:00:00:01`.
pub fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
