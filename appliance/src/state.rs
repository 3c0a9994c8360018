//! What the management side sees of the running appliance: ports, pools, worker lcores with
//! their counters and mailboxes, rings, and the control-plane state of the network functions.
//! Built by the daemon at start-up; read by the control socket, operations, summary and
//! telemetry while the workers run.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dpdk::{Mempool, Port, PortStats, RingStats};
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
    /// The MTU the router enforces on egress: the port's `mtu`, else the device's, else 1500.
    pub mtu: u16,
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// Monotonic totals over the device's counters (see [`PortRt::stats`]).
    pub totals: Mutex<PortTotals>,
}

/// A port's counters as the operator sees them: they never go backwards. Some PMDs zero their
/// counters on their own (memif when its peer goes away, a port stop/start): every reading
/// that finds a counter below the previous reading adds the previous reading to that
/// counter's base. The daemon reads every port every 100 ms, so at most what a port counted
/// in the last 100 ms before such a reset is lost.
#[derive(Debug, Default)]
pub struct PortTotals {
    last: PortStats,
    base: PortStats,
    /// Readings that found a counter reset by the PMD.
    pub resets: u64,
}

/// Applies `f` to each pair of counters of two [`PortStats`].
fn each_counter(a: &mut PortStats, b: &PortStats, mut f: impl FnMut(&mut u64, u64)) {
    f(&mut a.ipackets, b.ipackets);
    f(&mut a.opackets, b.opackets);
    f(&mut a.ibytes, b.ibytes);
    f(&mut a.obytes, b.obytes);
    f(&mut a.imissed, b.imissed);
    f(&mut a.ierrors, b.ierrors);
    f(&mut a.oerrors, b.oerrors);
    f(&mut a.rx_nombuf, b.rx_nombuf);
}

impl PortTotals {
    /// Takes a raw reading of the device's counters; returns the monotonic totals.
    pub fn update(&mut self, raw: &PortStats) -> PortStats {
        // Per counter: the reading before a reset, 0 where none happened.
        let mut before = self.last;
        let mut reset = false;
        each_counter(&mut before, raw, |p, r| {
            if r < *p {
                reset = true;
            } else {
                *p = 0;
            }
        });
        each_counter(&mut self.base, &before, |b, p| *b += p);
        self.last = *raw;
        self.resets += reset as u64;
        let mut out = *raw;
        each_counter(&mut out, &self.base, |o, b| *o += b);
        out
    }

    /// Zeroes the totals (the operator's `clear`, which resets the device's counters too).
    pub fn clear(&mut self) {
        *self = PortTotals::default();
    }
}

impl PortRt {
    /// The port's counters, monotonic across resets by the PMD.
    pub fn stats(&self) -> PortStats {
        let raw = self.port.stats();
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(&raw)
    }

    /// Readings that found the PMD had reset its counters since start (or the last clear).
    pub fn pmd_resets(&self) -> u64 {
        self.totals.lock().unwrap_or_else(|e| e.into_inner()).resets
    }

    /// Zeroes the device's counters and the totals (the operator's `clear`).
    pub fn clear_stats(&self) {
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        self.port.reset_stats();
        t.clear();
    }
}

/// An interface at run time: a port (its untagged traffic) or a VLAN sub-interface. Stages
/// know interfaces by `id` (a port's DPDK port id; for a sub-interface
/// `pollfwd_pipeline::vlan::IFACE_BASE` + its position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceRt {
    pub name: String,
    pub id: u16,
    pub mac: [u8; 6],
    /// The MTU the router enforces on egress (a sub-interface's: its `mtu`, at most its
    /// parent's, else the parent's).
    pub mtu: u16,
    /// Index of its port in [`State::ports`].
    pub port: usize,
    /// A sub-interface's VLAN id and QinQ outer tag (TPID, VLAN id).
    pub vlan: Option<(u16, Option<(u16, u16)>)>,
}

/// Ids, MACs and MTUs of interfaces, in index order (what stages are built from).
pub fn iface_facts(ifaces: &[IfaceRt]) -> (Vec<u16>, Vec<[u8; 6]>, Vec<u16>) {
    (
        ifaces.iter().map(|i| i.id).collect(),
        ifaces.iter().map(|i| i.mac).collect(),
        ifaces.iter().map(|i| i.mtu).collect(),
    )
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
    /// Every interface by index: the ports, then the VLAN sub-interfaces (config order).
    pub ifaces: Vec<IfaceRt>,
    /// Each worker's counters of the VLAN sub-interfaces (worker index order).
    pub vlan_counters: Vec<Arc<pollfwd_pipeline::vlan::VlanCounters>>,
    pub pools: BTreeMap<u32, Mempool>,
    pub lcores: Vec<LcoreRt>,
    pub rings: Vec<RingStats>,
    pub main_lcore: u32,
    pub tsc_hz: u64,
    pub started: Instant,
    pub quit: Arc<AtomicBool>,
    /// Control-plane state of the NFs (route lists, rule sets...): management side only.
    pub control: Mutex<ControlPlane>,
    /// The punt path's TAP interfaces (`[punt]`, docs/punt.md); not ports of the data plane.
    pub punt: Vec<crate::punt::PuntRt>,
}

impl State {
    /// The name of the interface with id `id` (a port's DPDK id or a sub-interface's).
    pub fn iface_name(&self, id: u16) -> Option<&str> {
        self.ifaces
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.name.as_str())
    }

    /// A sub-interface's counters summed over the workers: rx packets, rx bytes, tx packets,
    /// tx bytes.
    pub fn vlan_totals(&self, id: u16) -> [u64; 4] {
        let mut t = [0u64; 4];
        for w in &self.vlan_counters {
            if let Some(c) = w.get(id) {
                t[0] += c.rx_packets.get();
                t[1] += c.rx_bytes.get();
                t[2] += c.tx_packets.get();
                t[3] += c.tx_bytes.get();
            }
        }
        t
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn st(rx: u64, tx: u64) -> PortStats {
        PortStats {
            ipackets: rx,
            opackets: tx,
            ..Default::default()
        }
    }

    #[test]
    fn port_totals_never_go_backwards_across_pmd_resets() {
        let mut t = PortTotals::default();
        assert_eq!(t.update(&st(10, 5)), st(10, 5));
        assert_eq!(t.update(&st(30, 5)), st(30, 5));
        // The PMD zeroed its counters (memif peer gone), then counted again.
        assert_eq!(t.update(&st(0, 0)), st(30, 5));
        assert_eq!(t.update(&st(7, 2)), st(37, 7));
        assert_eq!(t.resets, 1);
        // Only one counter reset (tx): rx keeps going.
        assert_eq!(t.update(&st(9, 1)), st(39, 8));
        assert_eq!(t.resets, 2);
        t.clear();
        assert_eq!(t.update(&st(3, 3)), st(3, 3));
    }
}
