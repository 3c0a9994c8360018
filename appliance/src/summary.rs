//! End-of-run summary (text or one JSON object) and the per-second rate line.

use std::time::Duration;

use dpdk::port::PortStats;
use pollfwd_pipeline::{DropReason, LcoreSnapshot};
use serde_json::{Value, json};

use crate::state::State;
pub use crate::state::mac;

/// Port counters at one instant, in port order.
pub fn port_totals(s: &State) -> Vec<PortStats> {
    s.ports.iter().map(|p| p.stats()).collect()
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// Human units: 1.23M, 456.0k.
pub fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// One line of per-port rates between two samples `secs` apart.
pub fn rate_line(s: &State, prev: &[PortStats], cur: &[PortStats], secs: f64, t: f64) -> String {
    let mut out = format!("[{t:6.1}s]");
    for (i, p) in s.ports.iter().enumerate() {
        let (a, b) = (&prev[i], &cur[i]);
        out += &format!(
            " {}: rx {}pps {}bps tx {}pps {}bps |",
            p.name,
            si(rate(b.ipackets - a.ipackets, secs)),
            si(rate((b.ibytes - a.ibytes) * 8, secs)),
            si(rate(b.opackets - a.opackets, secs)),
            si(rate((b.obytes - a.obytes) * 8, secs)),
        );
    }
    let drops: u64 = s
        .lcores
        .iter()
        .map(|l| l.counters.drops.iter().map(|c| c.get()).sum::<u64>())
        .sum();
    out + &format!(" drops {drops}")
}

/// Everything the summary reports.
pub struct Summary {
    pub secs: f64,
    pub ports: Vec<(String, u16, PortStats)>,
    /// VLAN sub-interfaces and their counters.
    pub vlans: Vec<VlanLine>,
    pub lcores: Vec<(u32, Vec<&'static str>, LcoreSnapshot)>,
    pub tsc_hz: u64,
    /// End-of-run figures of the network functions, by NF name (e.g. `classify`: per-rule hits).
    pub nf: serde_json::Map<String, Value>,
    /// Workers the watchdog found stalled or dead at the end: (lcore, state).
    pub failed: Vec<(u32, &'static str)>,
}

/// A VLAN sub-interface in the summary and `interfaces`: name, parent port, VLAN id, QinQ
/// outer tag (TPID, VLAN id), and rx packets, rx bytes, tx packets, tx bytes (all workers).
#[derive(Debug, Clone)]
pub struct VlanLine {
    pub name: String,
    pub port: String,
    pub vlan: u16,
    pub outer: Option<(u16, u16)>,
    pub counts: [u64; 4],
}

impl VlanLine {
    pub fn to_json(&self) -> Value {
        let [rxp, rxb, txp, txb] = self.counts;
        json!({
            "name": self.name, "port": self.port, "vlan": self.vlan,
            "outer_vlan": self.outer.map(|o| o.1),
            "outer_tpid": self.outer.map(|o| format!("{:#06x}", o.0)),
            "rx_packets": rxp, "rx_bytes": rxb, "tx_packets": txp, "tx_bytes": txb,
        })
    }
}

/// Every VLAN sub-interface with its counters now.
pub fn vlan_lines(s: &State) -> Vec<VlanLine> {
    s.ifaces
        .iter()
        .filter_map(|i| {
            let (vlan, outer) = i.vlan?;
            Some(VlanLine {
                name: i.name.clone(),
                port: s.ports[i.port].name.clone(),
                vlan,
                outer,
                counts: s.vlan_totals(i.id),
            })
        })
        .collect()
}

/// The NF sections of the summary and of `stats` (`nf.<name>`): every network function with
/// figures to report.
pub fn nf_summaries(s: &State) -> serde_json::Map<String, Value> {
    let ctx = crate::ops::OpCtx { state: s };
    crate::registry::ALL
        .iter()
        .filter_map(|nf| nf.summary(&ctx).map(|v| (nf.name().to_string(), v)))
        .collect()
}

/// Drops as (name, count) for the non-zero reasons.
pub fn drops_by_reason(d: &[u64]) -> Vec<(&'static str, u64)> {
    DropReason::ALL
        .iter()
        .zip(d)
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| (r.name(), *n))
        .collect()
}

fn busy_pct(l: &LcoreSnapshot) -> f64 {
    let t = l.busy_cycles + l.idle_cycles;
    if t == 0 {
        0.0
    } else {
        100.0 * l.busy_cycles as f64 / t as f64
    }
}

impl Summary {
    pub fn collect(s: &State, ran: Duration) -> Summary {
        Summary {
            secs: ran.as_secs_f64(),
            ports: s
                .ports
                .iter()
                .map(|p| (p.name.clone(), p.port.id(), p.stats()))
                .collect(),
            vlans: vlan_lines(s),
            lcores: s
                .lcores
                .iter()
                .map(|l| (l.id, l.stages.clone(), l.counters.snapshot()))
                .collect(),
            tsc_hz: s.tsc_hz,
            nf: nf_summaries(s),
            failed: s
                .lcores
                .iter()
                .filter(|l| !l.health.get().is_up())
                .map(|l| (l.id, l.health.get().name()))
                .collect(),
        }
    }

    fn total_drops(&self) -> Vec<u64> {
        let mut d = vec![0u64; DropReason::COUNT];
        for (_, _, l) in &self.lcores {
            for (i, n) in l.drops.iter().enumerate() {
                d[i] += n;
            }
        }
        d
    }

    pub fn to_json(&self) -> Value {
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|(name, id, st)| {
                json!({
                    "name": name, "port": id,
                    "rx_packets": st.ipackets, "rx_bytes": st.ibytes,
                    "tx_packets": st.opackets, "tx_bytes": st.obytes,
                    "rx_missed": st.imissed, "rx_errors": st.ierrors,
                    "tx_errors": st.oerrors, "rx_nombuf": st.rx_nombuf,
                })
            })
            .collect();
        let lcores: Vec<Value> = self
            .lcores
            .iter()
            .map(|(id, stages, l)| {
                let drops: serde_json::Map<String, Value> = drops_by_reason(&l.drops)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                let runtime: Vec<Value> = stages
                    .iter()
                    .zip(&l.stages)
                    .map(|(name, st)| {
                        let (calls, pkts) = (st.calls, st.packets);
                        json!({
                            "stage": name, "calls": calls, "packets": pkts,
                            "cycles": st.cycles, "timed_packets": st.timed_packets,
                            "packets_per_call": if calls > 0 { pkts as f64 / calls as f64 } else { 0.0 },
                            "cycles_per_packet": st.cycles_per_packet(),
                        })
                    })
                    .collect();
                json!({
                    "lcore": id, "stages": stages, "runtime": runtime,
                    "busy_cycles": l.busy_cycles, "idle_cycles": l.idle_cycles,
                    "dwell_p50_cycles": l.dwell_percentile(0.5),
                    "dwell_p99_cycles": l.dwell_percentile(0.99),
                    "dwell_p999_cycles": l.dwell_percentile(0.999),
                    "rx_packets": l.rx_packets, "rx_bytes": l.rx_bytes,
                    "tx_packets": l.tx_packets, "tx_bytes": l.tx_bytes,
                    "ring_in": l.ring_in, "ring_out": l.ring_out,
                    "drops": l.total_drops(), "drops_by_reason": drops,
                    "polls": l.polls, "empty_polls": l.empty_polls,
                    "busy_pct": (busy_pct(l) * 10.0).round() / 10.0,
                })
            })
            .collect();
        let total = self.total_drops();
        let by: serde_json::Map<String, Value> = drops_by_reason(&total)
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let sum =
            |f: fn(&LcoreSnapshot) -> u64| self.lcores.iter().map(|(_, _, l)| f(l)).sum::<u64>();
        json!({
            "duration_s": (self.secs * 1000.0).round() / 1000.0,
            "tsc_hz": self.tsc_hz,
            "ports": ports,
            "interfaces": self.vlans.iter().map(VlanLine::to_json).collect::<Vec<_>>(),
            "lcores": lcores,
            "failed_lcores": self
                .failed
                .iter()
                .map(|(id, st)| json!({"lcore": id, "state": st}))
                .collect::<Vec<_>>(),
            "nf": self.nf,
            "totals": {
                "rx_packets": sum(|l| l.rx_packets),
                "tx_packets": sum(|l| l.tx_packets),
                "drops": total.iter().sum::<u64>(),
                "drops_by_reason": by,
            }
        })
    }

    pub fn render(&self) -> String {
        let mut o = format!("pollfwd summary: ran {:.1} s\n", self.secs);
        for (id, st) in &self.failed {
            o += &format!("worker lcore {id}: {st}\n");
        }
        o += &format!(
            "{:<10} {:>4} {:>12} {:>14} {:>12} {:>14} {:>8} {:>8} {:>8} {:>8}\n",
            "port",
            "id",
            "rx-pkts",
            "rx-bytes",
            "tx-pkts",
            "tx-bytes",
            "missed",
            "rx-err",
            "tx-err",
            "nombuf"
        );
        for (name, id, s) in &self.ports {
            o += &format!(
                "{:<10} {:>4} {:>12} {:>14} {:>12} {:>14} {:>8} {:>8} {:>8} {:>8}\n",
                name,
                id,
                s.ipackets,
                s.ibytes,
                s.opackets,
                s.obytes,
                s.imissed,
                s.ierrors,
                s.oerrors,
                s.rx_nombuf
            );
        }
        if !self.vlans.is_empty() {
            o += &format!(
                "{:<14} {:<10} {:>10} {:>12} {:>14} {:>12} {:>14}\n",
                "interface", "port", "vlan", "rx-pkts", "rx-bytes", "tx-pkts", "tx-bytes"
            );
            for v in &self.vlans {
                let tag = match v.outer {
                    Some((_, o)) => format!("{o}.{}", v.vlan),
                    None => v.vlan.to_string(),
                };
                o += &format!(
                    "{:<14} {:<10} {:>10} {:>12} {:>14} {:>12} {:>14}\n",
                    v.name, v.port, tag, v.counts[0], v.counts[1], v.counts[2], v.counts[3]
                );
            }
        }
        o += &format!(
            "{:<6} {:>12} {:>12} {:>10} {:>12} {:>6}  stages\n",
            "lcore", "rx-pkts", "tx-pkts", "drops", "empty-polls", "busy%"
        );
        for (id, stages, l) in &self.lcores {
            o += &format!(
                "{:<6} {:>12} {:>12} {:>10} {:>12} {:>6.1}  {}\n",
                id,
                l.rx_packets,
                l.tx_packets,
                l.total_drops(),
                l.empty_polls,
                busy_pct(l),
                stages.join(" -> ")
            );
        }
        let total = self.total_drops();
        let by = drops_by_reason(&total);
        if by.is_empty() {
            o += "drops: none\n";
        } else {
            o += "drops by reason:\n";
            for (name, n) in by {
                let help = DropReason::from_name(name).map(|r| r.help()).unwrap_or("");
                o += &format!("  {name:<22} {n:>12}  {help}\n");
            }
        }
        o
    }
}
