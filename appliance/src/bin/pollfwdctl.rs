//! `pollfwdctl`: the operator CLI of pollfwd (control socket client), and lab helpers.
//!
//! Exit codes: 0 ok, 1 the daemon answered with an error, 2 the daemon cannot be reached.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use appliance::traffic::{self, GenSpec};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(
    name = "pollfwdctl",
    version,
    about = "Operator CLI of the pollfwd forwarding appliance"
)]
struct Cli {
    /// Control socket of the pollfwd instance ([control] socket in its config).
    #[arg(
        long,
        global = true,
        env = "POLLFWD_SOCKET",
        default_value = "/run/pollfwd/pollfwd.sock"
    )]
    socket: PathBuf,
    /// Print the daemon's JSON reply (for scripts) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for the daemon.
    #[arg(long, global = true, default_value_t = 5.0)]
    timeout: f64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build, DPDK version, uptime.
    Version,
    /// Ports: link, speed, MAC, NUMA node, queues, counters.
    Ports {
        /// Include the device's extended stats.
        #[arg(long)]
        xstats: bool,
    },
    /// Worker lcores: CPU, node, pool, polled queues, busy %.
    Lcores,
    /// Everything: ports, lcores, drops by reason, rings.
    Stats,
    /// Per stage: calls, packets, packets/call, cycles/packet; dwell-time percentiles.
    Runtime,
    /// Mbuf pools: size, in use, free.
    Mempools,
    /// Pipeline and hand-off rings.
    Rings,
    /// CPUs, NUMA nodes, ports, lcores and pools.
    Topology,
    /// Zero port and lcore counters.
    Clear,
    /// Prometheus text exposition of every counter.
    Metrics,
    /// The table of drop reasons.
    DropReasons,
    /// Per-second rates per port and per lcore, and drops per reason, until Ctrl-C.
    Watch {
        /// Seconds between samples.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Stop after this many samples (default: until Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Re-read the config file, validate it and apply the difference live (or refuse it and
    /// keep the old config).
    Reload {
        /// Another file than the one pollfwd started with.
        #[arg(long)]
        path: Option<PathBuf>,
    },
    /// List the daemon's commands.
    Commands,
    /// Send any command with JSON arguments, print the JSON reply: `call route.add '{"prefix":..}'`.
    Call {
        command: String,
        #[arg(default_value = "{}")]
        args: String,
    },
    /// Write a pcap of synthetic IPv4 traffic (lab input for net_pcap ports).
    GenPcap(GenArgs),
    /// Network-function commands: words name the command, `key=value` or `--key value` give
    /// its arguments. `pollfwdctl route add prefix=10.0.0.0/8 via=192.0.2.2`,
    /// `pollfwdctl acl list`, `pollfwdctl nat sessions --inside 10.0.0.5 --limit 10`,
    /// `pollfwdctl nat static add ...`, `pollfwdctl policer counters`. `commands` lists them.
    #[command(external_subcommand)]
    Nf(Vec<String>),
}

/// Turns `["nat", "sessions", "--limit", "5", "inside=10.0.0.5"]` into
/// `("nat.sessions", {"limit": 5, "inside": "10.0.0.5"})`. Values that parse as JSON (numbers,
/// true/false, arrays, objects) are passed as such, anything else as a string.
fn nf_command(words: &[String]) -> Result<(String, Value), String> {
    let mut name = Vec::new();
    let mut args = serde_json::Map::new();
    let value =
        |v: &str| serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if let Some(k) = w.strip_prefix("--") {
            if let Some((k, v)) = k.split_once('=') {
                args.insert(k.replace('-', "_"), value(v));
            } else if i + 1 < words.len() && !words[i + 1].starts_with("--") {
                args.insert(k.replace('-', "_"), value(&words[i + 1]));
                i += 1;
            } else {
                args.insert(k.replace('-', "_"), Value::Bool(true));
            }
        } else if let Some((k, v)) = w.split_once('=') {
            args.insert(k.to_string(), value(v));
        } else if args.is_empty() {
            name.push(w.as_str());
        } else {
            return Err(format!("'{w}': give arguments as key=value or --key value"));
        }
        i += 1;
    }
    if name.is_empty() {
        return Err("no command".into());
    }
    Ok((name.join("."), Value::Object(args)))
}

/// Generic rendering: an array of objects becomes a table, an object a key/value list.
fn render_generic(d: &Value) -> String {
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

#[derive(Debug, clap::Args)]
struct GenArgs {
    /// Output file.
    #[arg(short, long)]
    out: PathBuf,
    /// Number of frames.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    count: usize,
    /// Distinct flows (source address and port vary per flow).
    #[arg(long, default_value_t = 16)]
    flows: usize,
    /// Frame sizes on the wire incl. FCS: "64", "64,128,1518" (cycled) or "imix".
    #[arg(long, default_value = "64")]
    sizes: String,
    /// udp, tcp, icmp or mix.
    #[arg(long, default_value = "udp")]
    proto: String,
    #[arg(long, default_value = "198.18.0.1")]
    src_ip: Ipv4Addr,
    #[arg(long, default_value = "198.19.0.1")]
    dst_ip: Ipv4Addr,
    #[arg(long, default_value = "02:00:00:00:00:01")]
    src_mac: String,
    #[arg(long, default_value = "02:00:00:00:00:02")]
    dst_mac: String,
    #[arg(long, default_value_t = 1024)]
    src_port: u16,
    #[arg(long, default_value_t = 9)]
    dst_port: u16,
    #[arg(long, default_value_t = 64)]
    ttl: u8,
    /// Append the malformed frames of the robustness tests (runt, bad version, bad IHL,
    /// bad length, bad checksum) at the end.
    #[arg(long)]
    garbage: bool,
}

/// Why a command failed, and the exit code that goes with it.
enum Failure {
    /// The daemon answered with an error (exit 1).
    Reply(String),
    /// The daemon cannot be reached (exit 2).
    Unreachable(String),
    /// Bad local input (exit 1).
    Local(String),
}

struct Client {
    socket: PathBuf,
    timeout: Duration,
    conn: Option<(UnixStream, BufReader<UnixStream>)>,
}

impl Client {
    fn unreachable(&self, e: &std::io::Error) -> Failure {
        let p = self.socket.display();
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such socket: pollfwd is not running (or uses another [control] socket; pass --socket)".to_string(),
            std::io::ErrorKind::ConnectionRefused => "connection refused: the socket is stale, pollfwd is not running".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied: only root and the [control] group may use it".to_string(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out: pollfwd is running but not answering".to_string(),
            _ => format!("{e}"),
        };
        Failure::Unreachable(format!("cannot reach pollfwd at {p}: {why}"))
    }

    /// Sends one request. A kept connection the server closed meanwhile (it closes idle ones
    /// after client_timeout_ms, e.g. between `watch` rounds) is replaced once by a new one.
    fn call(&mut self, cmd: &str, args: Value) -> Result<Value, Failure> {
        let reused = self.conn.is_some();
        match self.call_once(cmd, &args) {
            Err(Failure::Unreachable(_)) if reused => self.call_once(cmd, &args),
            r => r,
        }
    }

    fn call_once(&mut self, cmd: &str, args: &Value) -> Result<Value, Failure> {
        if self.conn.is_none() {
            let s = UnixStream::connect(&self.socket).map_err(|e| self.unreachable(&e))?;
            s.set_read_timeout(Some(self.timeout)).ok();
            s.set_write_timeout(Some(self.timeout)).ok();
            let r = BufReader::new(s.try_clone().map_err(|e| self.unreachable(&e))?);
            self.conn = Some((s, r));
        }
        let req = json!({"v": 1, "cmd": cmd, "args": args});
        let (w, r) = self.conn.as_mut().expect("connected");
        let sent = writeln!(w, "{req}");
        let mut line = String::new();
        let got = sent.and_then(|_| r.read_line(&mut line));
        match got {
            Ok(0) => {
                self.conn = None;
                return Err(Failure::Unreachable(format!(
                    "cannot reach pollfwd at {}: it closed the connection",
                    self.socket.display()
                )));
            }
            Ok(_) => {}
            Err(e) => {
                self.conn = None;
                return Err(self.unreachable(&e));
            }
        }
        let reply: Value = serde_json::from_str(&line)
            .map_err(|e| Failure::Reply(format!("unreadable reply from pollfwd: {e}")))?;
        if reply["ok"] == true {
            Ok(reply["data"].clone())
        } else {
            Err(Failure::Reply(
                reply["error"]
                    .as_str()
                    .unwrap_or("error without a message")
                    .to_string(),
            ))
        }
    }
}

/// Aligned text table: first row is the header.
fn table(rows: &[Vec<String>]) -> String {
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

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(","),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

fn si(v: f64) -> String {
    appliance::summary::si(v)
}

fn render_ports(d: &Value) -> String {
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

fn render_lcores(d: &Value) -> String {
    let mut rows = vec![
        [
            "lcore", "cpu", "node", "pool", "busy%", "rx-pkts", "tx-pkts", "drops", "polls",
            "stages",
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

fn render_drops(by: &Value) -> String {
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

fn render_stats(d: &Value) -> String {
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

fn render_rings(d: &Value) -> String {
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

fn render_runtime(d: &Value) -> String {
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

fn render_mempools(d: &Value) -> String {
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

fn render(cmd: &str, d: &Value) -> String {
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

fn watch(c: &mut Client, interval: f64, count: Option<u64>, as_json: bool) -> Result<(), Failure> {
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

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad MAC address '{s}'"))?;
    v.try_into().map_err(|_| format!("bad MAC address '{s}'"))
}

fn gen_pcap(a: &GenArgs) -> Result<(), String> {
    let spec = GenSpec {
        count: a.count,
        flows: a.flows,
        sizes: traffic::parse_sizes(&a.sizes)?,
        proto: traffic::parse_proto(&a.proto)?,
        src_mac: parse_mac(&a.src_mac)?,
        dst_mac: parse_mac(&a.dst_mac)?,
        src_ip: a.src_ip,
        dst_ip: a.dst_ip,
        src_port: a.src_port,
        dst_port: a.dst_port,
        ttl: a.ttl,
        ..GenSpec::default()
    };
    traffic::validate(&spec)?;
    let mut w = appliance::pcap::PcapWriter::create(&a.out)
        .map_err(|e| format!("{}: {e}", a.out.display()))?;
    let mut n = 0;
    for (i, f) in traffic::generate(&spec).enumerate() {
        w.write_packet(i as u64 * 1000, &f)
            .map_err(|e| e.to_string())?;
        n += 1;
    }
    if a.garbage {
        for f in traffic::garbage_frames() {
            w.write_packet(n as u64 * 1000, &f)
                .map_err(|e| e.to_string())?;
            n += 1;
        }
    }
    w.flush().map_err(|e| e.to_string())?;
    println!("{}: {n} frames", a.out.display());
    Ok(())
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let mut c = Client {
        socket: cli.socket.clone(),
        timeout: Duration::from_secs_f64(cli.timeout.max(0.1)),
        conn: None,
    };
    let (cmd, args): (&str, Value) = match &cli.cmd {
        Cmd::GenPcap(a) => return gen_pcap(a).map_err(Failure::Local),
        Cmd::Watch { interval, count } => return watch(&mut c, *interval, *count, cli.json),
        Cmd::Version => ("version", json!({})),
        Cmd::Ports { xstats } => ("ports", json!({"xstats": xstats})),
        Cmd::Lcores => ("lcores", json!({})),
        Cmd::Stats => ("stats", json!({})),
        Cmd::Runtime => ("runtime", json!({})),
        Cmd::Mempools => ("mempools", json!({})),
        Cmd::Rings => ("rings", json!({})),
        Cmd::Topology => ("topology", json!({})),
        Cmd::Clear => ("clear", json!({})),
        Cmd::Metrics => ("metrics", json!({})),
        Cmd::DropReasons => ("drop-reasons", json!({})),
        Cmd::Commands => ("help", json!({})),
        Cmd::Reload { path } => (
            "reload",
            match path {
                Some(p) => json!({"path": p.display().to_string()}),
                None => json!({}),
            },
        ),
        Cmd::Call { command, args } => {
            let a: Value = serde_json::from_str(args)
                .map_err(|e| Failure::Local(format!("arguments are not JSON: {e}")))?;
            (command.as_str(), a)
        }
        Cmd::Nf(words) => {
            let (name, a) = nf_command(words).map_err(Failure::Local)?;
            let data = c.call(&name, a)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&data).unwrap_or_default()
                );
            } else {
                print!("{}", render_generic(&data));
            }
            return Ok(());
        }
    };
    let data = c.call(cmd, args)?;
    if cli.json || matches!(cli.cmd, Cmd::Call { .. }) {
        println!(
            "{}",
            serde_json::to_string_pretty(&data).unwrap_or_default()
        );
    } else if cmd == "metrics" {
        print!("{}", s(&data));
    } else {
        print!("{}", render(cmd, &data));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Reply(e)) | Err(Failure::Local(e)) => {
            eprintln!("pollfwdctl: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Unreachable(e)) => {
            eprintln!("pollfwdctl: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nf_words_become_command_and_arguments() {
        let (n, a) = nf_command(&w(&[
            "nat", "sessions", "--inside", "10.0.0.5", "--limit", "10",
        ]))
        .unwrap();
        assert_eq!(n, "nat.sessions");
        assert_eq!(a, json!({"inside": "10.0.0.5", "limit": 10}));
        let (n, a) =
            nf_command(&w(&["route", "add", "prefix=10.0.0.0/8", "via=192.0.2.2"])).unwrap();
        assert_eq!(n, "route.add");
        assert_eq!(a, json!({"prefix": "10.0.0.0/8", "via": "192.0.2.2"}));
        let (n, a) = nf_command(&w(&["nat", "static", "list"])).unwrap();
        assert_eq!((n.as_str(), a), ("nat.static.list", json!({})));
        let (_, a) = nf_command(&w(&["acl", "add", "--dport=80", "--deny"])).unwrap();
        assert_eq!(a, json!({"dport": 80, "deny": true}));
        assert!(nf_command(&w(&["acl", "add", "x=1", "stray"])).is_err());
    }

    #[test]
    fn generic_rendering_makes_tables() {
        let t = render_generic(&json!([{"a": 1, "b": "x"}, {"a": 22, "c": true}]));
        assert!(t.starts_with("a   b  c"), "{t}");
        assert!(t.contains("22  -  yes"), "{t}");
        assert_eq!(render_generic(&json!([])), "(none)\n");
    }
}
