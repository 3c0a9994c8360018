//! `pollfwdctl watch`: per-second rates per port and lcore, and drops per reason.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{Client, Failure};
use crate::render::{s, si, table};

pub(crate) fn watch(
    c: &mut Client,
    interval: f64,
    count: Option<u64>,
    as_json: bool,
) -> Result<(), Failure> {
    let iv = Duration::from_secs_f64(interval.max(0.1));
    let tty = std::io::stdout().is_terminal() && !as_json;
    let mut prev = c.call("stats", json!({}))?;
    let mut t_prev = Instant::now();
    let mut n = 0u64;
    loop {
        std::thread::sleep(iv);
        let cur = c.call("stats", json!({}))?;
        let now = Instant::now();
        let dt = (now - t_prev).as_secs_f64();
        let rate = |a: &Value, b: &Value, k: &str| {
            (b[k]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(a[k].as_u64().unwrap_or(0))) as f64
                / dt
        };
        let mut ports = Vec::new();
        for (a, b) in prev["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(cur["ports"].as_array().into_iter().flatten())
        {
            ports.push(json!({
                "port": b["name"],
                "rx_pps": rate(a, b, "rx_packets"), "rx_bps": rate(a, b, "rx_bytes") * 8.0,
                "tx_pps": rate(a, b, "tx_packets"), "tx_bps": rate(a, b, "tx_bytes") * 8.0,
                "missed_pps": rate(a, b, "rx_missed"),
            }));
        }
        let mut lcores = Vec::new();
        for (a, b) in prev["lcores"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(cur["lcores"].as_array().into_iter().flatten())
        {
            let mut drops = serde_json::Map::new();
            if let Some(m) = b["drops_by_reason"].as_object() {
                for (k, v) in m {
                    let before = a["drops_by_reason"][k].as_u64().unwrap_or(0);
                    let r = (v.as_u64().unwrap_or(0).saturating_sub(before)) as f64 / dt;
                    if r > 0.0 {
                        drops.insert(k.clone(), json!(r));
                    }
                }
            }
            lcores.push(json!({
                "lcore": b["lcore"], "busy_pct": b["busy_pct"],
                "rx_pps": rate(a, b, "rx_packets"), "tx_pps": rate(a, b, "tx_packets"),
                "drop_pps": rate(a, b, "drops"), "drops_per_s": drops,
            }));
        }
        let sample = json!({"t": cur["uptime_s"], "ports": ports, "lcores": lcores});
        if as_json {
            println!("{sample}");
        } else {
            let mut o = String::new();
            if tty {
                o += "\x1b[H\x1b[2J";
            }
            o += &format!(
                "pollfwd at {}   uptime {:.1} s   every {interval} s\n\n",
                c.socket.display(),
                cur["uptime_s"].as_f64().unwrap_or(0.0)
            );
            let mut rows = vec![
                ["port", "rx-pps", "rx-bps", "tx-pps", "tx-bps", "missed/s"]
                    .map(String::from)
                    .to_vec(),
            ];
            for p in &ports {
                rows.push(vec![
                    s(&p["port"]),
                    si(p["rx_pps"].as_f64().unwrap_or(0.0)),
                    si(p["rx_bps"].as_f64().unwrap_or(0.0)),
                    si(p["tx_pps"].as_f64().unwrap_or(0.0)),
                    si(p["tx_bps"].as_f64().unwrap_or(0.0)),
                    si(p["missed_pps"].as_f64().unwrap_or(0.0)),
                ]);
            }
            o += &table(&rows);
            o += "\n";
            let mut rows = vec![
                ["lcore", "busy%", "rx-pps", "tx-pps", "drops/s", "by reason"]
                    .map(String::from)
                    .to_vec(),
            ];
            for l in &lcores {
                let by: Vec<String> = l["drops_per_s"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", si(v.as_f64().unwrap_or(0.0))))
                            .collect()
                    })
                    .unwrap_or_default();
                rows.push(vec![
                    s(&l["lcore"]),
                    s(&l["busy_pct"]),
                    si(l["rx_pps"].as_f64().unwrap_or(0.0)),
                    si(l["tx_pps"].as_f64().unwrap_or(0.0)),
                    si(l["drop_pps"].as_f64().unwrap_or(0.0)),
                    if by.is_empty() {
                        "-".into()
                    } else {
                        by.join(" ")
                    },
                ]);
            }
            o += &table(&rows);
            print!("{o}");
            if !tty {
                println!();
            }
            let _ = std::io::stdout().flush();
        }
        prev = cur;
        t_prev = now;
        n += 1;
        if count.is_some_and(|c| n >= c) {
            return Ok(());
        }
    }
}
