//! The core operations: version, ports, interfaces, lcores, stats, runtime, mempools, rings, topology,
//! clear, metrics, drop-reasons, reload (`help` is the dispatcher's). Each reads counters lock-free (per-lcore single-writer atomics, DPDK
//! port stats) and never waits for a worker, except `clear`, which asks each worker to zero its
//! own counters between two bursts.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pollfwd_pipeline::{DropReason, LcoreSnapshot, Msg};
use serde_json::{Map, Value, json};

use crate::ops::{Op, OpCtx, OpError};
use crate::state::State;
use crate::summary::{drops_by_reason, mac};

pub const CORE_OPS: &[Op] = &[
    Op {
        name: "version",
        help: "build, DPDK version, uptime",
        run: version,
        cli: None,
    },
    Op {
        name: "ports",
        help: "ports: link, speed, MAC, NUMA node, queues, counters (args: xstats=true)",
        run: ports,
        cli: None,
    },
    Op {
        name: "interfaces",
        help: "interfaces: ports and VLAN sub-interfaces with tags, MAC, MTU, address, counters",
        run: interfaces,
        cli: None,
    },
    Op {
        name: "lcores",
        help: "worker lcores: CPU, node, pool, polled queues, busy %",
        run: lcores,
        cli: None,
    },
    Op {
        name: "stats",
        help: "everything: ports, lcores, drops by reason, rings",
        run: stats,
        cli: None,
    },
    Op {
        name: "runtime",
        help: "per stage: calls, packets, packets/call, cycles/packet; dwell percentiles",
        run: runtime,
        cli: None,
    },
    Op {
        name: "mempools",
        help: "mbuf pools: size, in use, free",
        run: mempools,
        cli: None,
    },
    Op {
        name: "rings",
        help: "pipeline and hand-off rings: occupancy",
        run: rings,
        cli: None,
    },
    Op {
        name: "topology",
        help: "CPUs, NUMA nodes, ports, lcores and their pools",
        run: topology,
        cli: None,
    },
    Op {
        name: "clear",
        help: "zero port and lcore counters",
        run: clear,
        cli: None,
    },
    Op {
        name: "metrics",
        help: "Prometheus text exposition of every counter",
        run: metrics,
        cli: None,
    },
    Op {
        name: "drop-reasons",
        help: "the table of drop reasons",
        run: drop_reasons,
        cli: None,
    },
    Op {
        name: "reload",
        help: "re-read the config file (args: path), validate it, apply the difference live or refuse it",
        run: crate::reload::reload,
        cli: None,
    },
];

fn version(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    Ok(json!({
        "pollfwd": env!("CARGO_PKG_VERSION"),
        "build": {
            "version": env!("CARGO_PKG_VERSION"),
            "git_commit": option_env!("POLLFWD_GIT_COMMIT"),
            "profile": option_env!("POLLFWD_PROFILE").unwrap_or("unknown"),
        },
        "dpdk_build": dpdk::BUILD_DPDK_VERSION,
        "dpdk_runtime": dpdk::runtime_version(),
        "uptime_s": ctx.state.started.elapsed().as_secs_f64(),
        "config": ctx.state.config.path.display().to_string(),
        "protocol": crate::ops::PROTOCOL_VERSION,
    }))
}

fn port_json(s: &State, i: usize, xstats: bool) -> Value {
    let p = &s.ports[i];
    let st = p.stats();
    let link = p.port.link();
    let mut v = json!({
        "name": p.name, "port": p.port.id(), "device": p.device, "driver": p.driver,
        "link_up": link.up, "speed_mbps": link.speed, "full_duplex": link.full_duplex,
        "mac": mac(&p.mac), "numa_node": p.socket,
        "rx_queues": p.rx_queues, "tx_queues": p.tx_queues,
        "rx_packets": st.ipackets, "rx_bytes": st.ibytes,
        "tx_packets": st.opackets, "tx_bytes": st.obytes,
        "rx_missed": st.imissed, "rx_errors": st.ierrors, "tx_errors": st.oerrors,
        "rx_nombuf": st.rx_nombuf, "pmd_resets": p.pmd_resets(),
    });
    if xstats {
        let x: Map<String, Value> = p
            .port
            .xstats()
            .into_iter()
            .map(|(k, n)| (k, json!(n)))
            .collect();
        v["xstats"] = Value::Object(x);
    }
    v
}

fn ports(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    let x = a.get("xstats").and_then(Value::as_bool).unwrap_or(false);
    Ok(Value::Array(
        (0..ctx.state.ports.len())
            .map(|i| port_json(ctx.state, i, x))
            .collect(),
    ))
}

/// Every interface: the ports (their device's counters) and the VLAN sub-interfaces (the
/// workers' counters of their tagged traffic).
fn interfaces(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    let s = ctx.state;
    // Addresses change with reloads: the configuration in force, not the one started with.
    let cfg = ctx.config_in_force();
    let addrs: Vec<Vec<String>> = cfg
        .ifaces()
        .map(|i| i.address.map(|a| a.get_ref().0.clone()).unwrap_or_default())
        .collect();
    let vlans = crate::summary::vlan_lines(s);
    let mut k = 0;
    Ok(Value::Array(
        s.ifaces
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut v = match f.vlan {
                    None => {
                        let st = s.ports[f.port].stats();
                        json!({"kind": "port", "rx_packets": st.ipackets, "rx_bytes": st.ibytes,
                            "tx_packets": st.opackets, "tx_bytes": st.obytes})
                    }
                    Some(_) => {
                        k += 1;
                        vlans[k - 1].to_json()
                    }
                };
                v["kind"] = json!(if f.vlan.is_some() { "vlan" } else { "port" });
                v["name"] = json!(f.name);
                v["id"] = json!(f.id);
                v["port"] = json!(s.ports[f.port].name);
                v["mac"] = json!(mac(&f.mac));
                v["mtu"] = json!(f.mtu);
                // The configured addresses, and the link-local one of an IPv6 interface.
                let mut a = addrs.get(i).cloned().unwrap_or_default();
                if a.iter().any(|x| x.contains(':')) {
                    let ll = pollfwd_nf::wire::ipv6::link_local_from_mac(f.mac);
                    a.push(format!("{}/64", std::net::Ipv6Addr::from(ll)));
                }
                v["address"] = if a.is_empty() {
                    Value::Null
                } else {
                    json!(a.join(", "))
                };
                v["addresses"] = json!(a);
                // Its punt interface (`[punt]`), with that interface's counters.
                v["punt"] = crate::punt::iface_json(s, f.id);
                v
            })
            .collect(),
    ))
}

fn busy_pct(l: &LcoreSnapshot) -> f64 {
    let t = l.busy_cycles + l.idle_cycles;
    if t == 0 {
        0.0
    } else {
        (1000.0 * l.busy_cycles as f64 / t as f64).round() / 10.0
    }
}

fn lcore_json(s: &State, i: usize) -> Value {
    let l = &s.lcores[i];
    let c = l.counters.snapshot();
    let drops: Map<String, Value> = drops_by_reason(&c.drops)
        .into_iter()
        .map(|(k, n)| (k.into(), json!(n)))
        .collect();
    json!({
        "lcore": l.id, "cpu": l.cpu, "numa_node": l.socket, "pool": l.pool,
        "polls": l.sources, "stages": l.stages, "pipeline_to": l.pipeline_to,
        "state": l.health.get().name(),
        "busy_pct": busy_pct(&c),
        "rx_packets": c.rx_packets, "rx_bytes": c.rx_bytes,
        "tx_packets": c.tx_packets, "tx_bytes": c.tx_bytes,
        "ring_in": c.ring_in, "ring_out": c.ring_out,
        "handoff_in": c.handoff_in, "handoff_out": c.handoff_out,
        "injected": c.injected,
        "polls_total": c.polls, "empty_polls": c.empty_polls,
        "busy_cycles": c.busy_cycles, "idle_cycles": c.idle_cycles,
        "drops": c.total_drops(), "drops_by_reason": drops,
    })
}

fn lcores(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    Ok(Value::Array(
        (0..ctx.state.lcores.len())
            .map(|i| lcore_json(ctx.state, i))
            .collect(),
    ))
}

fn total_drops(s: &State) -> Vec<u64> {
    let mut d = vec![0u64; DropReason::COUNT];
    for l in &s.lcores {
        for (i, c) in l.counters.drops.iter().enumerate() {
            d[i] += c.get();
        }
    }
    d
}

fn rings_json(s: &State) -> Value {
    Value::Array(
        s.rings
            .iter()
            .map(|r| {
                json!({"name": r.name(), "count": r.count(), "capacity": r.capacity(),
                       "drops": r.full()})
            })
            .collect(),
    )
}

fn stats(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    let s = ctx.state;
    let d = total_drops(s);
    let by: Map<String, Value> = drops_by_reason(&d)
        .into_iter()
        .map(|(k, n)| (k.into(), json!(n)))
        .collect();
    let lc: Vec<Value> = (0..s.lcores.len()).map(|i| lcore_json(s, i)).collect();
    let sum = |k: &str| lc.iter().map(|l| l[k].as_u64().unwrap_or(0)).sum::<u64>();
    Ok(json!({
        "uptime_s": s.started.elapsed().as_secs_f64(),
        "ports": (0..s.ports.len()).map(|i| port_json(s, i, false)).collect::<Vec<_>>(),
        "interfaces": crate::summary::vlan_lines(s).iter().map(|v| v.to_json()).collect::<Vec<_>>(),
        "totals": {
            "rx_packets": sum("rx_packets"), "rx_bytes": sum("rx_bytes"),
            "tx_packets": sum("tx_packets"), "tx_bytes": sum("tx_bytes"),
            "drops": d.iter().sum::<u64>(), "drops_by_reason": by,
        },
        "lcores": lc,
        "rings": rings_json(s),
        "nf": crate::summary::nf_summaries(s),
        "punt": crate::punt::punt_json(s),
    }))
}

fn runtime(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    let s = ctx.state;
    let ns = |cycles: u64| {
        if s.tsc_hz > 0 {
            cycles as f64 * 1e9 / s.tsc_hz as f64
        } else {
            0.0
        }
    };
    let mut out = Vec::new();
    for l in &s.lcores {
        let c = l.counters.snapshot();
        let stages: Vec<Value> = l
            .stages
            .iter()
            .zip(&c.stages)
            .map(|(name, st)| {
                let (calls, pkts) = (st.calls, st.packets);
                json!({
                    "stage": name, "calls": calls, "packets": pkts,
                    "cycles": st.cycles, "timed_packets": st.timed_packets,
                    "packets_per_call": if calls > 0 { (pkts as f64 / calls as f64 * 100.0).round() / 100.0 } else { 0.0 },
                    "cycles_per_packet": (st.cycles_per_packet() * 10.0).round() / 10.0,
                })
            })
            .collect();
        let (p50, p99, p999) = (
            c.dwell_percentile(0.5),
            c.dwell_percentile(0.99),
            c.dwell_percentile(0.999),
        );
        out.push(json!({
            "lcore": l.id, "busy_pct": busy_pct(&c), "stages": stages,
            "polls": c.polls, "empty_polls": c.empty_polls,
            "dwell": {
                "note": "rx-to-tx time per burst, upper bound of its log2 bucket",
                "p50_cycles": p50, "p99_cycles": p99, "p999_cycles": p999,
                "p50_ns": ns(p50), "p99_ns": ns(p99), "p999_ns": ns(p999),
                "bursts": c.dwell.iter().sum::<u64>(),
            },
        }));
    }
    Ok(json!({"tsc_hz": s.tsc_hz, "lcores": out}))
}

fn mempools(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    Ok(Value::Array(
        ctx.state
            .pools
            .iter()
            .map(|(node, p)| {
                json!({"name": p.name(), "numa_node": node, "size": p.size(),
                       "in_use": p.in_use(), "free": p.avail()})
            })
            .collect(),
    ))
}

fn rings(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    Ok(rings_json(ctx.state))
}

fn topology(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    let s = ctx.state;
    Ok(json!({
        "text": crate::state::render_topology(s),
        "cpus": s.topology.cpus.iter().map(|c| json!({"cpu": c.cpu, "core": c.core, "node": c.node})).collect::<Vec<_>>(),
        "nodes": s.topology.nodes,
        "main_lcore": s.main_lcore,
        "lcores": s.lcores.iter().map(|l| json!({"lcore": l.id, "cpu": l.cpu, "node": l.socket, "pool": l.pool, "polls": l.sources})).collect::<Vec<_>>(),
        "ports": s.ports.iter().map(|p| json!({"name": p.name, "port": p.port.id(), "node": p.socket})).collect::<Vec<_>>(),
    }))
}

fn clear(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    let s = ctx.state;
    let before: Vec<u64> = s.lcores.iter().map(|l| l.counters.messages.get()).collect();
    for l in &s.lcores {
        l.mailbox
            .to_worker
            .push(Msg::ClearCounters)
            .map_err(|_| format!("lcore {}: mailbox full, try again", l.id))?;
    }
    for p in &s.ports {
        p.clear_stats();
    }
    // Wait (bounded) until each worker has applied it.
    let deadline = Instant::now() + Duration::from_secs(2);
    for (l, b) in s.lcores.iter().zip(before) {
        while l.counters.messages.get() == b {
            if Instant::now() > deadline {
                return Err(format!("lcore {} did not clear within 2 s", l.id).into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    // Pairs with the worker's release fence before it counts the message.
    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
    Ok(json!({"cleared": true}))
}

fn drop_reasons(_: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    Ok(Value::Array(
        DropReason::ALL
            .iter()
            .map(|r| json!({"reason": r.name(), "help": r.help()}))
            .collect(),
    ))
}

fn metrics(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    Ok(Value::String(metrics_text(ctx.state)))
}

/// Prometheus text exposition (version 0.0.4) of every counter.
pub fn metrics_text(s: &State) -> String {
    let mut o = String::new();
    let family = |o: &mut String,
                  name: &str,
                  kind: &str,
                  help: &str,
                  samples: &mut dyn Iterator<Item = (String, f64)>| {
        let _ = writeln!(o, "# HELP pollfwd_{name} {help}");
        let _ = writeln!(o, "# TYPE pollfwd_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(o, "pollfwd_{name}{labels} {v}");
        }
    };
    let ports: Vec<_> = s
        .ports
        .iter()
        .map(|p| (p.name.clone(), p.stats(), p.port.link()))
        .collect();
    let port_metric = |f: fn(&dpdk::PortStats) -> u64| -> Vec<(String, f64)> {
        ports
            .iter()
            .map(|(n, st, _)| (format!("{{port=\"{n}\"}}"), f(st) as f64))
            .collect()
    };
    family(
        &mut o,
        "port_rx_packets_total",
        "counter",
        "Packets received by the port.",
        &mut port_metric(|s| s.ipackets).into_iter(),
    );
    family(
        &mut o,
        "port_rx_bytes_total",
        "counter",
        "Bytes received by the port.",
        &mut port_metric(|s| s.ibytes).into_iter(),
    );
    family(
        &mut o,
        "port_tx_packets_total",
        "counter",
        "Packets sent by the port.",
        &mut port_metric(|s| s.opackets).into_iter(),
    );
    family(
        &mut o,
        "port_tx_bytes_total",
        "counter",
        "Bytes sent by the port.",
        &mut port_metric(|s| s.obytes).into_iter(),
    );
    family(
        &mut o,
        "port_rx_missed_total",
        "counter",
        "Packets the NIC dropped for lack of RX descriptors.",
        &mut port_metric(|s| s.imissed).into_iter(),
    );
    family(
        &mut o,
        "port_rx_errors_total",
        "counter",
        "Erroneous received packets.",
        &mut port_metric(|s| s.ierrors).into_iter(),
    );
    family(
        &mut o,
        "port_tx_errors_total",
        "counter",
        "Failed transmissions.",
        &mut port_metric(|s| s.oerrors).into_iter(),
    );
    family(
        &mut o,
        "port_rx_nombuf_total",
        "counter",
        "RX mbuf allocation failures.",
        &mut port_metric(|s| s.rx_nombuf).into_iter(),
    );
    family(
        &mut o,
        "port_link_up",
        "gauge",
        "1 if the link is up.",
        &mut ports
            .iter()
            .map(|(n, _, l)| (format!("{{port=\"{n}\"}}"), if l.up { 1.0 } else { 0.0 })),
    );
    let vlans = crate::summary::vlan_lines(s);
    for (k, (name, help)) in [
        (
            "rx_packets",
            "Packets received on the VLAN sub-interface (tags popped).",
        ),
        (
            "rx_bytes",
            "Bytes received on the VLAN sub-interface, tags popped.",
        ),
        (
            "tx_packets",
            "Packets sent to the VLAN sub-interface's port with its tags.",
        ),
        (
            "tx_bytes",
            "Bytes sent to the VLAN sub-interface's port, tags included.",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        if vlans.is_empty() {
            break;
        }
        family(
            &mut o,
            &format!("interface_{name}_total"),
            "counter",
            help,
            &mut vlans.iter().map(|v| {
                (
                    format!("{{interface=\"{}\",port=\"{}\"}}", v.name, v.port),
                    v.counts[k] as f64,
                )
            }),
        );
    }
    let snaps: Vec<(u32, &Vec<&'static str>, LcoreSnapshot)> = s
        .lcores
        .iter()
        .map(|l| (l.id, &l.stages, l.counters.snapshot()))
        .collect();
    let lc = |f: fn(&LcoreSnapshot) -> u64| -> Vec<(String, f64)> {
        snaps
            .iter()
            .map(|(id, _, c)| (format!("{{lcore=\"{id}\"}}"), f(c) as f64))
            .collect()
    };
    family(
        &mut o,
        "lcore_up",
        "gauge",
        "1 while the worker lcore runs, 0 when the watchdog found it stalled or dead.",
        &mut s.lcores.iter().map(|l| {
            (
                format!("{{lcore=\"{}\"}}", l.id),
                f64::from(u8::from(l.health.get().is_up())),
            )
        }),
    );
    family(
        &mut o,
        "lcore_rx_packets_total",
        "counter",
        "Packets received by the worker lcore.",
        &mut lc(|c| c.rx_packets).into_iter(),
    );
    family(
        &mut o,
        "lcore_rx_bytes_total",
        "counter",
        "Bytes received by the worker lcore.",
        &mut lc(|c| c.rx_bytes).into_iter(),
    );
    family(
        &mut o,
        "lcore_tx_packets_total",
        "counter",
        "Packets transmitted by the worker lcore.",
        &mut lc(|c| c.tx_packets).into_iter(),
    );
    family(
        &mut o,
        "lcore_tx_bytes_total",
        "counter",
        "Bytes transmitted by the worker lcore.",
        &mut lc(|c| c.tx_bytes).into_iter(),
    );
    family(
        &mut o,
        "lcore_polls_total",
        "counter",
        "Poll calls of the worker lcore.",
        &mut lc(|c| c.polls).into_iter(),
    );
    family(
        &mut o,
        "lcore_empty_polls_total",
        "counter",
        "Poll calls that returned nothing.",
        &mut lc(|c| c.empty_polls).into_iter(),
    );
    family(
        &mut o,
        "lcore_busy_cycles_total",
        "counter",
        "TSC cycles in loop rounds that moved packets.",
        &mut lc(|c| c.busy_cycles).into_iter(),
    );
    family(
        &mut o,
        "lcore_idle_cycles_total",
        "counter",
        "TSC cycles in loop rounds that found nothing.",
        &mut lc(|c| c.idle_cycles).into_iter(),
    );
    let mut drops = Vec::new();
    for (id, _, c) in &snaps {
        for (i, n) in c.drops.iter().enumerate() {
            drops.push((
                format!(
                    "{{lcore=\"{id}\",reason=\"{}\"}}",
                    DropReason::ALL[i].name()
                ),
                *n as f64,
            ));
        }
    }
    family(
        &mut o,
        "drops_total",
        "counter",
        "Dropped packets by lcore and reason.",
        &mut drops.into_iter(),
    );
    let mut st_pk = Vec::new();
    let mut st_cy = Vec::new();
    let mut st_ca = Vec::new();
    let mut st_tp = Vec::new();
    for (id, names, c) in &snaps {
        for (name, st) in names.iter().zip(&c.stages) {
            let l = format!("{{lcore=\"{id}\",stage=\"{name}\"}}");
            st_ca.push((l.clone(), st.calls as f64));
            st_pk.push((l.clone(), st.packets as f64));
            st_tp.push((l.clone(), st.timed_packets as f64));
            st_cy.push((l, st.cycles as f64));
        }
    }
    family(
        &mut o,
        "stage_calls_total",
        "counter",
        "Bursts handed to the stage.",
        &mut st_ca.into_iter(),
    );
    family(
        &mut o,
        "stage_packets_total",
        "counter",
        "Packets handed to the stage.",
        &mut st_pk.into_iter(),
    );
    family(
        &mut o,
        "stage_cycles_total",
        "counter",
        "TSC cycles spent in the stage over the timed bursts (a sample of them).",
        &mut st_cy.into_iter(),
    );
    family(
        &mut o,
        "stage_timed_packets_total",
        "counter",
        "Packets of the timed bursts: cycles per packet = stage_cycles / stage_timed_packets.",
        &mut st_tp.into_iter(),
    );
    // Dwell histogram as a Prometheus histogram over seconds. No `_sum`: workers keep only the
    // per-bucket counts (one store per timed burst), not the sum of the times, and a sum made up
    // from bucket bounds would be wrong by up to 2x; `_count` and the buckets are exact.
    let _ = writeln!(
        o,
        "# HELP pollfwd_dwell_seconds RX-to-TX time per burst inside pollfwd."
    );
    let _ = writeln!(o, "# TYPE pollfwd_dwell_seconds histogram");
    let hz = s.tsc_hz.max(1) as f64;
    for (id, _, c) in &snaps {
        let mut acc = 0u64;
        for (i, n) in c.dwell.iter().enumerate() {
            acc += n;
            if *n > 0 || i + 1 == c.dwell.len() {
                let le = (1u64 << (i + 1)) as f64 / hz;
                let _ = writeln!(
                    o,
                    "pollfwd_dwell_seconds_bucket{{lcore=\"{id}\",le=\"{le:e}\"}} {acc}"
                );
            }
        }
        let _ = writeln!(
            o,
            "pollfwd_dwell_seconds_bucket{{lcore=\"{id}\",le=\"+Inf\"}} {acc}"
        );
        let _ = writeln!(o, "pollfwd_dwell_seconds_count{{lcore=\"{id}\"}} {acc}");
    }
    // The same percentiles as `runtime` (upper bound of the log2 bucket holding them).
    for (q, name) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")] {
        family(
            &mut o,
            &format!("dwell_{name}_seconds"),
            "gauge",
            &format!(
                "{name} of the RX-to-TX time per burst since start or clear (upper bound of its log2 bucket; 0 before any burst)."
            ),
            &mut snaps.iter().map(|(id, _, c)| {
                (
                    format!("{{lcore=\"{id}\"}}"),
                    c.dwell_percentile(q) as f64 / hz,
                )
            }),
        );
    }
    let pools: Vec<_> = s
        .pools
        .values()
        .map(|p| (p.name(), p.in_use(), p.avail()))
        .collect();
    family(
        &mut o,
        "mempool_in_use",
        "gauge",
        "Mbufs in use.",
        &mut pools
            .iter()
            .map(|(n, u, _)| (format!("{{pool=\"{n}\"}}"), *u as f64)),
    );
    family(
        &mut o,
        "mempool_free",
        "gauge",
        "Mbufs free.",
        &mut pools
            .iter()
            .map(|(n, _, f)| (format!("{{pool=\"{n}\"}}"), *f as f64)),
    );
    family(
        &mut o,
        "ring_count",
        "gauge",
        "Packets waiting in a pipeline or hand-off ring.",
        &mut s
            .rings
            .iter()
            .map(|r| (format!("{{ring=\"{}\"}}", r.name()), r.count() as f64)),
    );
    family(
        &mut o,
        "ring_full_drops_total",
        "counter",
        "Packets dropped because a pipeline or hand-off ring was full.",
        &mut s
            .rings
            .iter()
            .map(|r| (format!("{{ring=\"{}\"}}", r.name()), r.full() as f64)),
    );
    family(
        &mut o,
        "uptime_seconds",
        "gauge",
        "Seconds since the data plane started.",
        &mut std::iter::once((String::new(), s.started.elapsed().as_secs_f64())),
    );
    // Network functions' own families.
    let ctx = OpCtx { state: s };
    for nf in crate::registry::ALL {
        o += &nf.metrics(&ctx);
    }
    o += &crate::punt::metrics(s);
    o
}
