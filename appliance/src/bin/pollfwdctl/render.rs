//! Rendering of the daemon's replies as tables and key/value lists.

use serde_json::Value;

/// Generic rendering: an array of objects becomes a table, an object a key/value list.
pub(crate) fn render_generic(d: &Value) -> String {
    match d {
        Value::Array(rows) if rows.iter().all(Value::is_object) && !rows.is_empty() => {
            let mut cols: Vec<String> = Vec::new();
            for r in rows {
                for k in r.as_object().unwrap().keys() {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            let mut t = vec![cols.clone()];
            for r in rows {
                t.push(cols.iter().map(|c| s(&r[c])).collect());
            }
            table(&t)
        }
        Value::Array(rows) if rows.is_empty() => "(none)\n".into(),
        Value::Object(m) => {
            let mut o = String::new();
            for (k, v) in m {
                match v {
                    Value::Array(a) if a.iter().all(Value::is_object) && !a.is_empty() => {
                        o += &format!("{k}:\n");
                        for line in render_generic(v).lines() {
                            o += &format!("  {line}\n");
                        }
                    }
                    Value::Object(_) => {
                        o += &format!("{k}:\n");
                        for line in render_generic(v).lines() {
                            o += &format!("  {line}\n");
                        }
                    }
                    _ => o += &format!("{k}: {}\n", s(v)),
                }
            }
            o
        }
        other => serde_json::to_string_pretty(other).unwrap_or_default() + "\n",
    }
}

/// Aligned text table: first row is the header.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let w: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut o = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // Numbers right-aligned, text left-aligned.
                if i > 0 && s.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    format!("{s:>width$}", width = w[i])
                } else {
                    format!("{s:<width$}", width = w[i])
                }
            })
            .collect();
        o += line.join("  ").trim_end();
        o.push('\n');
    }
    o
}

pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(","),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

pub(crate) fn si(v: f64) -> String {
    appliance::summary::si(v)
}

fn render_interfaces(d: &Value) -> String {
    let mut rows = vec![
        [
            "interface",
            "id",
            "port",
            "vlan",
            "mac",
            "mtu",
            "address",
            "rx-pkts",
            "rx-bytes",
            "tx-pkts",
            "tx-bytes",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for i in d.as_array().into_iter().flatten() {
        let vlan = match (i["vlan"].as_u64(), i["outer_vlan"].as_u64()) {
            (Some(v), Some(o)) => format!("{o}.{v}"),
            (Some(v), None) => v.to_string(),
            _ => "-".into(),
        };
        rows.push(vec![
            s(&i["name"]),
            s(&i["id"]),
            s(&i["port"]),
            vlan,
            s(&i["mac"]),
            s(&i["mtu"]),
            i["address"].as_str().unwrap_or("-").to_string(),
            s(&i["rx_packets"]),
            s(&i["rx_bytes"]),
            s(&i["tx_packets"]),
            s(&i["tx_bytes"]),
        ]);
    }
    table(&rows)
}

pub(crate) fn render_ports(d: &Value) -> String {
    let mut rows = vec![
        [
            "port", "id", "driver", "link", "speed", "mac", "node", "rxq", "txq", "rx-pkts",
            "rx-bytes", "tx-pkts", "tx-bytes", "missed", "rx-err", "tx-err", "nombuf",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in d.as_array().into_iter().flatten() {
        rows.push(vec![
            s(&p["name"]),
            s(&p["port"]),
            s(&p["driver"]),
            if p["link_up"] == true {
                "up".into()
            } else {
                "down".into()
            },
            format!("{}M", p["speed_mbps"]),
            s(&p["mac"]),
            s(&p["numa_node"]),
            s(&p["rx_queues"]),
            s(&p["tx_queues"]),
            s(&p["rx_packets"]),
            s(&p["rx_bytes"]),
            s(&p["tx_packets"]),
            s(&p["tx_bytes"]),
            s(&p["rx_missed"]),
            s(&p["rx_errors"]),
            s(&p["tx_errors"]),
            s(&p["rx_nombuf"]),
        ]);
    }
    let mut o = table(&rows);
    for p in d.as_array().into_iter().flatten() {
        if let Some(x) = p["xstats"].as_object() {
            o += &format!("xstats {}:\n", s(&p["name"]));
            for (k, v) in x {
                o += &format!("  {k:<40} {v}\n");
            }
        }
    }
    o
}

pub(crate) fn render_lcores(d: &Value) -> String {
    let mut rows = vec![
        [
            "lcore", "cpu", "node", "pool", "state", "busy%", "rx-pkts", "tx-pkts", "drops",
            "polls", "stages",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for l in d.as_array().into_iter().flatten() {
        rows.push(vec![
            s(&l["lcore"]),
            s(&l["cpu"]),
            s(&l["numa_node"]),
            s(&l["pool"]),
            s(&l["state"]),
            s(&l["busy_pct"]),
            s(&l["rx_packets"]),
            s(&l["tx_packets"]),
            s(&l["drops"]),
            s(&l["polls"]),
            l["stages"]
                .as_array()
                .map(|a| a.iter().map(s).collect::<Vec<_>>().join(" -> "))
                .unwrap_or_default(),
        ]);
    }
    table(&rows)
}

pub(crate) fn render_drops(by: &Value) -> String {
    let m = by.as_object().cloned().unwrap_or_default();
    if m.is_empty() {
        return "drops: none\n".into();
    }
    let mut rows = vec![vec!["reason".to_string(), "packets".to_string()]];
    for (k, v) in m {
        rows.push(vec![k, s(&v)]);
    }
    table(&rows)
}

pub(crate) fn render_stats(d: &Value) -> String {
    let t = &d["totals"];
    let mut o = format!(
        "uptime {:.1} s   rx {} pkts   tx {} pkts   drops {}\n\n",
        d["uptime_s"].as_f64().unwrap_or(0.0),
        s(&t["rx_packets"]),
        s(&t["tx_packets"]),
        s(&t["drops"])
    );
    o += &render_ports(&d["ports"]);
    o += "\n";
    o += &render_lcores(&d["lcores"]);
    o += "\n";
    o += &render_drops(&t["drops_by_reason"]);
    if let Some(r) = d["rings"].as_array().filter(|r| !r.is_empty()) {
        o += "\n";
        o += &render_rings(&Value::Array(r.clone()));
    }
    o
}

pub(crate) fn render_rings(d: &Value) -> String {
    let mut rows = vec![vec![
        "ring".to_string(),
        "count".to_string(),
        "capacity".to_string(),
        "drops".to_string(),
    ]];
    for r in d.as_array().into_iter().flatten() {
        rows.push(vec![
            s(&r["name"]),
            s(&r["count"]),
            s(&r["capacity"]),
            s(&r["drops"]),
        ]);
    }
    table(&rows)
}

pub(crate) fn render_runtime(d: &Value) -> String {
    let mut o = String::new();
    for l in d["lcores"].as_array().into_iter().flatten() {
        let dw = &l["dwell"];
        o += &format!(
            "lcore {}: busy {}%, polls {} (empty {}); dwell p50 {:.0} ns, p99 {:.0} ns, p99.9 {:.0} ns over {} bursts\n",
            s(&l["lcore"]),
            s(&l["busy_pct"]),
            s(&l["polls"]),
            s(&l["empty_polls"]),
            dw["p50_ns"].as_f64().unwrap_or(0.0),
            dw["p99_ns"].as_f64().unwrap_or(0.0),
            dw["p999_ns"].as_f64().unwrap_or(0.0),
            s(&dw["bursts"])
        );
        let mut rows = vec![
            ["stage", "calls", "packets", "packets/call", "cycles/packet"]
                .map(String::from)
                .to_vec(),
        ];
        for st in l["stages"].as_array().into_iter().flatten() {
            rows.push(vec![
                s(&st["stage"]),
                s(&st["calls"]),
                s(&st["packets"]),
                s(&st["packets_per_call"]),
                s(&st["cycles_per_packet"]),
            ]);
        }
        o += &table(&rows);
        o += "\n";
    }
    o
}

pub(crate) fn render_mempools(d: &Value) -> String {
    let mut rows = vec![
        ["pool", "node", "size", "in-use", "free"]
            .map(String::from)
            .to_vec(),
    ];
    for p in d.as_array().into_iter().flatten() {
        rows.push(vec![
            s(&p["name"]),
            s(&p["numa_node"]),
            s(&p["size"]),
            s(&p["in_use"]),
            s(&p["free"]),
        ]);
    }
    table(&rows)
}

pub(crate) fn render(cmd: &str, d: &Value) -> String {
    match cmd {
        "version" => format!(
            "pollfwd {} ({} build, commit {}; DPDK {} built, {} running), protocol {}, up {:.1} s, config {}\n",
            s(&d["pollfwd"]),
            s(&d["build"]["profile"]),
            d["build"]["git_commit"]
                .as_str()
                .map_or("unknown", |c| &c[..c.len().min(12)]),
            s(&d["dpdk_build"]),
            s(&d["dpdk_runtime"]),
            s(&d["protocol"]),
            d["uptime_s"].as_f64().unwrap_or(0.0),
            s(&d["config"])
        ),
        "ports" => render_ports(d),
        "interfaces" => render_interfaces(d),
        "lcores" => render_lcores(d),
        "stats" => render_stats(d),
        "runtime" => render_runtime(d),
        "mempools" => render_mempools(d),
        "rings" => render_rings(d),
        "topology" => s(&d["text"]),
        "clear" => "counters cleared\n".into(),
        "reload" => {
            let applied: Vec<String> = d["applied"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect();
            if applied.is_empty() {
                format!("{}: no change\n", s(&d["path"]))
            } else {
                format!("{}: applied\n  {}\n", s(&d["path"]), applied.join("\n  "))
            }
        }
        "metrics" => s(d),
        "help" | "drop-reasons" => {
            let mut rows = Vec::new();
            for c in d.as_array().into_iter().flatten() {
                let name = if c["command"].is_null() {
                    &c["reason"]
                } else {
                    &c["command"]
                };
                rows.push(vec![s(name), s(&c["help"])]);
            }
            table(&rows)
        }
        _ => render_generic(d),
    }
}
