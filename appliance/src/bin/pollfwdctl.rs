//! `pollfwdctl`: the operator CLI of pollfwd (control socket client), and lab helpers.
//!
//! Exit codes: 0 ok, 1 the daemon answered with an error, 2 the daemon cannot be reached.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use appliance::ops::{ArgDoc as NfArg, CliDoc as NfCmd};
use clap::{
    Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches, Parser, Subcommand,
};
use clap_mangen::Man;
use lab::traffic::{self, GenSpec};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(
    name = "pollfwdctl",
    version,
    about = "Operator CLI of the pollfwd forwarding appliance",
    subcommand_required = true,
    arg_required_else_help = true
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
    /// `None` for a network-function command (`route add ...`): those are built from [`nf_cmds`]
    /// and read by [`nf_words`].
    #[command(subcommand)]
    cmd: Option<Cmd>,
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
    /// List the commands a running daemon answers.
    Commands,
    /// Send any command with JSON arguments, print the JSON reply: `call route.add '{"prefix":..}'`.
    Call {
        command: String,
        #[arg(default_value = "{}")]
        args: String,
    },
    /// Write a pcap of synthetic IPv4 traffic (lab input for net_pcap ports).
    GenPcap(GenArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// `pollfwdctl completions bash > /etc/bash_completion.d/pollfwdctl`; zsh: write
    /// `_pollfwdctl` into a directory of `$fpath`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one page per command into a directory.
    ///
    /// `pollfwdctl man > pollfwdctl.1`; `pollfwdctl man --dir DIR` writes pollfwdctl.1,
    /// pollfwdctl-route-add.1, ...
    Man {
        /// Write pollfwdctl.1, pollfwdctl-route-add.1, ... into this directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Every network-function command: the CLI part of each NF's operations
/// (`appliance::ops::CliDoc`, in `appliance/src/nf/<name>/ops.rs`).
fn nf_cmds() -> impl Iterator<Item = &'static NfCmd> {
    appliance::dispatch::all()
        .into_iter()
        .filter_map(|o| o.cli.as_ref())
}

/// The groups the words of the NF commands form (`pollfwdctl route --help`), from each NF.
fn nf_groups() -> impl Iterator<Item = &'static (&'static [&'static str], &'static str)> {
    appliance::registry::ALL
        .iter()
        .flat_map(|nf| nf.cli_groups().iter())
}

/// Id of the argument that takes what follows an NF command's words.
const NF_ARGS: &str = "args";

/// How the help writes an argument: `prefix=A.B.C.D/LEN`, optional ones in brackets.
fn nf_arg_synopsis(a: &NfArg) -> String {
    if a.required {
        format!("{}={}", a.key, a.value)
    } else {
        format!("[{}={}]", a.key, a.value)
    }
}

fn nf_synopsis(c: &NfCmd) -> String {
    let mut v = vec![c.words.join(" ")];
    v.extend(c.args.iter().map(nf_arg_synopsis));
    v.join(" ")
}

/// The clap command of one NF command: its words' last, the arguments and example in its
/// help, and one hidden argument that takes everything after the words as given.
fn nf_leaf(c: &NfCmd) -> Command {
    let header = Command::new("x").get_styles().get_header().to_owned();
    let h = |t: &str| format!("{}{t}{}", header.render(), header.render_reset());
    let mut tpl = String::from("{about-with-newline}\n{usage-heading} {usage}\n\n");
    if !c.args.is_empty() {
        tpl += &h("Arguments");
        tpl += " (key=value or --key value; the daemon checks them):\n";
        let w = c
            .args
            .iter()
            .map(|a| a.key.len() + a.value.len() + 1)
            .max()
            .unwrap_or(0);
        for a in c.args {
            let kv = format!("{}={}", a.key, a.value);
            let req = if a.required { " (required)" } else { "" };
            tpl += &format!("  {kv:<w$}  {}{req}\n", a.help);
        }
        tpl += "\n";
    }
    tpl += "{all-args}\n\n";
    tpl += &h("Example:");
    tpl += &format!("\n  {}\n", c.example);
    let usage: Vec<String> = c.args.iter().map(nf_arg_synopsis).collect();
    Command::new(*c.words.last().expect("words"))
        .about(c.about)
        // For the man pages (the help template above shows the same).
        .after_long_help(nf_args_text(c))
        .override_usage(format!(
            "pollfwdctl {} [OPTIONS] {}",
            c.words.join(" "),
            usage.join(" ")
        ))
        .help_template(tpl)
        .arg(
            Arg::new(NF_ARGS)
                .num_args(1..)
                .action(ArgAction::Append)
                .allow_hyphen_values(true)
                .hide(true),
        )
}

/// Arguments and example of an NF command as plain text (its man page).
fn nf_args_text(c: &NfCmd) -> String {
    let mut o = String::new();
    for a in c.args {
        let req = if a.required { " (required)" } else { "" };
        o += &format!("{}={}: {}{req}\n", a.key, a.value, a.help);
    }
    o + &format!("Example: {}", c.example)
}

/// The group command `words` (e.g. `nat static`) with every NF command below it.
fn nf_group(words: &'static [&'static str]) -> Command {
    let about = nf_groups()
        .find(|(w, _)| *w == words)
        .map_or("", |(_, a)| *a);
    let mut g = Command::new(*words.last().expect("words"))
        .about(about)
        .subcommand_required(true)
        .arg_required_else_help(true)
        // Words the CLI does not know go to the daemon as they are (it answers "unknown
        // command"), as for top-level words.
        .allow_external_subcommands(true)
        .external_subcommand_value_parser(clap::value_parser!(String));
    let mut seen: Vec<&str> = Vec::new();
    for c in nf_cmds().filter(|c| c.words.starts_with(words)) {
        let next = c.words[words.len()];
        if c.words.len() == words.len() + 1 {
            g = g.subcommand(nf_leaf(c));
        } else if !seen.contains(&next) {
            seen.push(next);
            g = g.subcommand(nf_group(&c.words[..=words.len()]));
        }
    }
    g
}

/// The top-level help's list of NF commands: synopsis and example of each.
fn nf_overview() -> String {
    let header = Command::new("x").get_styles().get_header().to_owned();
    let mut o = format!(
        "{}Network-function commands{} (arguments as key=value or --key value; `pollfwdctl route add --help` explains one; the daemon checks them):\n",
        header.render(),
        header.render_reset()
    );
    for c in nf_cmds() {
        o += &format!("  {}\n", nf_synopsis(c));
        // An example without arguments would only repeat the line.
        if c.example != format!("pollfwdctl {}", c.words.join(" ")) {
            o += &format!("      e.g. {}\n", c.example);
        }
    }
    o += "\nAny daemon command also as JSON: pollfwdctl call route.add '{\"prefix\": \"10.0.0.0/8\", \"via\": \"198.51.100.2\"}'\n";
    o += "What a running daemon answers: pollfwdctl commands";
    o
}

/// The whole CLI: the derived commands, then the NF groups.
fn command() -> Command {
    let mut cmd = Cli::command()
        .allow_external_subcommands(true)
        .external_subcommand_value_parser(clap::value_parser!(String))
        .after_help(nf_overview());
    let mut seen: Vec<&str> = Vec::new();
    for c in nf_cmds() {
        if !seen.contains(&c.words[0]) {
            seen.push(c.words[0]);
            cmd = cmd.subcommand(nf_group(&c.words[..1]));
        }
    }
    // The help lists the NF groups after `reload`, before the generic and lab commands.
    let generic = ["commands", "call", "gen-pcap", "completions", "man"];
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let (tail, head): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| generic.contains(&n.as_str()));
    for (i, n) in head.into_iter().chain(tail).enumerate() {
        cmd = cmd.mut_subcommand(n, |c| c.display_order(i));
    }
    cmd
}

/// The words and arguments of an NF command as typed (`["route", "add", "prefix=..."]`), or
/// `None` for a derived command.
fn nf_words(m: &ArgMatches) -> Option<Vec<String>> {
    let (name, mut cur) = m.subcommand()?;
    let mut words = vec![name.to_string()];
    loop {
        if let Ok(Some(rest)) = cur.try_get_many::<String>("") {
            // A word the CLI does not know, and what follows it.
            words.extend(rest.cloned());
            return Some(words);
        }
        if let Ok(args) = cur.try_get_many::<String>(NF_ARGS) {
            words.extend(args.into_iter().flatten().cloned());
            return Some(words);
        }
        match cur.subcommand() {
            Some((n, s)) => {
                words.push(n.to_string());
                cur = s;
            }
            None => return Some(words),
        }
    }
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
    let garbage = a.garbage.then(traffic::garbage_frames).unwrap_or_default();
    let n = lab::pcap::write_frames(&a.out, traffic::generate(&spec).chain(garbage))
        .map_err(|e| e.to_string())?;
    println!("{}: {n} frames", a.out.display());
    Ok(())
}

/// Sends an NF command (`["route", "add", "prefix=..."]`) and prints the reply.
fn run_nf(c: &mut Client, words: &[String], as_json: bool) -> Result<(), Failure> {
    let (name, a) = nf_command(words).map_err(Failure::Local)?;
    let data = c.call(&name, a)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&data).unwrap_or_default()
        );
    } else {
        print!("{}", render_generic(&data));
    }
    Ok(())
}

fn run(cli: &Cli, nf: Option<Vec<String>>) -> Result<(), Failure> {
    let mut c = Client {
        socket: cli.socket.clone(),
        timeout: Duration::from_secs_f64(cli.timeout.max(0.1)),
        conn: None,
    };
    let Some(sub) = &cli.cmd else {
        return run_nf(&mut c, &nf.unwrap_or_default(), cli.json);
    };
    let (cmd, args): (&str, Value) = match sub {
        Cmd::GenPcap(a) => return gen_pcap(a).map_err(Failure::Local),
        Cmd::Completions { shell } => {
            clap_complete::generate(*shell, &mut command(), "pollfwdctl", &mut std::io::stdout());
            return Ok(());
        }
        Cmd::Man { dir } => return man(dir.as_deref()).map_err(Failure::Local),
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
    };
    let data = c.call(cmd, args)?;
    if cli.json || matches!(sub, Cmd::Call { .. }) {
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

/// The man page pollfwdctl(1): clap's sections, with the NF commands (synopsis, what it
/// does, example) in a section of their own instead of the help's plain-text list.
fn man_page() -> Vec<u8> {
    use clap_mangen::roff::{Roff, bold, italic, roman};
    let cmd = command().after_help("").after_long_help("");
    let m = clap_mangen::Man::new(cmd);
    let mut out = Vec::new();
    let mut nf = Roff::new();
    nf.control("SH", ["NETWORK-FUNCTION COMMANDS"]).text([roman(
        "Arguments are given as key=value or --key value and checked by the daemon; \
         \"pollfwdctl WORDS --help\" explains each. Any daemon command can also be sent as \
         JSON: pollfwdctl call route.add '{\"prefix\": \"10.0.0.0/8\", \"via\": \"198.51.100.2\"}'.",
    )]);
    for c in nf_cmds() {
        nf.control("TP", [] as [&str; 0])
            .text([bold(nf_synopsis(c))])
            .text([roman(c.about)]);
        for a in c.args {
            let req = if a.required { " (required)" } else { "" };
            nf.control("br", [] as [&str; 0]).text([
                italic(format!("{}={}", a.key, a.value)),
                roman(format!(": {}{req}", a.help)),
            ]);
        }
        nf.control("br", [] as [&str; 0])
            .text([roman(format!("Example: {}", c.example))]);
    }
    for part in [
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
        Man::render_subcommands_section,
    ] {
        part(&m, &mut out).expect("write to memory");
    }
    nf.to_writer(&mut out).expect("write to memory");
    m.render_version_section(&mut out).expect("write to memory");
    // Each part starts with the same two-line preamble (the apostrophe string): keep the first.
    let text = String::from_utf8(out).expect("roff is UTF-8");
    let mut lines: Vec<&str> = Vec::new();
    for l in text.lines() {
        if !(l.starts_with(".ie \\n(.g .ds Aq") || l.starts_with(".el .ds Aq")) || lines.len() < 2 {
            lines.push(l);
        }
    }
    (lines.join("\n") + "\n").into_bytes()
}

/// The man page on stdout, or one page per command into `dir`.
fn man(dir: Option<&std::path::Path>) -> Result<(), String> {
    let Some(d) = dir else {
        return std::io::stdout()
            .write_all(&man_page())
            .map_err(|e| e.to_string());
    };
    let err = |e: std::io::Error| format!("{}: {e}", d.display());
    std::fs::create_dir_all(d).map_err(err)?;
    clap_mangen::generate_to(command(), d).map_err(err)?;
    std::fs::write(d.join("pollfwdctl.1"), man_page()).map_err(err)
}

fn main() -> ExitCode {
    let m = command().get_matches();
    let cli = Cli::from_arg_matches(&m).unwrap_or_else(|e| e.exit());
    let nf = if cli.cmd.is_none() {
        nf_words(&m)
    } else {
        None
    };
    match run(&cli, nf) {
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

    /// What the command line `argv` (after `pollfwdctl`) sends to the daemon for an NF command.
    fn parsed(argv: &[&str]) -> (String, Value) {
        let m = command()
            .try_get_matches_from(std::iter::once("pollfwdctl").chain(argv.iter().copied()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        let cli = Cli::from_arg_matches(&m).unwrap();
        assert!(cli.cmd.is_none(), "{argv:?} is not an NF command");
        nf_command(&nf_words(&m).unwrap()).unwrap()
    }

    /// The daemon's operations that are not NF commands, and the CLI command of each.
    fn core_command(op: &str) -> &str {
        if op == "help" { "commands" } else { op }
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_daemon_operation_has_a_cli_command_and_back() {
        let ops = appliance::dispatch::all();
        let names: Vec<&str> = ops.iter().map(|o| o.name).collect();
        let derived: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        for op in &ops {
            let nf = nf_cmds().find(|c| c.words.join(".") == op.name);
            match nf {
                Some(c) => assert!(
                    c.example
                        .starts_with(&format!("pollfwdctl {}", c.words.join(" "))),
                    "{}: example '{}'",
                    op.name,
                    c.example
                ),
                None => assert!(
                    derived.iter().any(|d| d == core_command(op.name)),
                    "daemon operation '{}' has no pollfwdctl command: give its Op a `cli` doc (appliance/src/nf/<name>/ops.rs)",
                    op.name
                ),
            }
        }
        for c in nf_cmds() {
            let name = c.words.join(".");
            assert!(
                names.contains(&name.as_str()),
                "pollfwdctl's '{}' names no daemon operation",
                c.words.join(" ")
            );
            assert!(
                !derived.contains(&c.words[0].to_string()),
                "'{}' is also a derived command",
                c.words[0]
            );
            assert!(!c.about.is_empty(), "{name}");
        }
    }

    #[test]
    fn every_example_parses_into_its_operation_with_documented_arguments() {
        for c in nf_cmds() {
            let argv: Vec<&str> = c.example.split_whitespace().skip(1).collect();
            let (name, args) = parsed(&argv);
            assert_eq!(name, c.words.join("."), "{}", c.example);
            let args = args.as_object().unwrap();
            for k in args.keys() {
                assert!(
                    c.args.iter().any(|a| a.key == k),
                    "{}: argument '{k}' is not in its help",
                    c.example
                );
            }
            // A required argument may only be absent where another form replaces it
            // (route add routes=..., route del prefixes=...).
            for a in c.args.iter().filter(|a| a.required) {
                assert!(args.contains_key(a.key), "{}: no {}", c.example, a.key);
            }
        }
    }

    #[test]
    fn nf_command_lines_send_what_they_did_before() {
        assert_eq!(
            parsed(&["route", "add", "prefix=10.0.0.0/8", "via=198.51.100.2"]),
            (
                "route.add".into(),
                json!({"prefix": "10.0.0.0/8", "via": "198.51.100.2"})
            )
        );
        assert_eq!(
            parsed(&["nat", "sessions", "--inside", "10.0.0.5", "--limit", "10"]),
            (
                "nat.sessions".into(),
                json!({"inside": "10.0.0.5", "limit": 10})
            )
        );
        assert_eq!(
            parsed(&["acl", "add", "--dport=80", "--priority", "-5", "--deny"]),
            (
                "acl.add".into(),
                json!({"dport": 80, "priority": -5, "deny": true})
            )
        );
        assert_eq!(
            parsed(&["policer", "counters", "--per-worker"]),
            ("policer.counters".into(), json!({"per_worker": true}))
        );
        assert_eq!(
            parsed(&["nat", "static", "list"]),
            ("nat.static.list".into(), json!({}))
        );
        // Words the CLI does not know still go to the daemon (it says "unknown command").
        assert_eq!(
            parsed(&["vlan", "list", "id=3"]),
            ("vlan.list".into(), json!({"id": 3}))
        );
        assert_eq!(
            parsed(&["nat", "nope", "x=1"]),
            ("nat.nope".into(), json!({"x": 1}))
        );
        // Global options after the words are options, not arguments.
        let m = command()
            .try_get_matches_from(["pollfwdctl", "route", "list", "--json", "kind=static"])
            .unwrap();
        assert!(Cli::from_arg_matches(&m).unwrap().json);
        assert_eq!(
            nf_command(&nf_words(&m).unwrap()).unwrap(),
            ("route.list".into(), json!({"kind": "static"}))
        );
        // Derived commands are unchanged.
        let m = command()
            .try_get_matches_from(["pollfwdctl", "call", "route.add", "{}"])
            .unwrap();
        let cli = Cli::from_arg_matches(&m).unwrap();
        assert!(matches!(cli.cmd, Some(Cmd::Call { ref command, .. }) if command == "route.add"));
        // A group alone shows its help instead of sending anything.
        let e = command()
            .try_get_matches_from(["pollfwdctl", "nat", "static"])
            .unwrap_err();
        assert!(e.to_string().contains("list"), "{e}");
    }

    #[test]
    fn help_lists_every_nf_command_with_arguments_and_example() {
        let top = command().render_long_help().to_string();
        for c in nf_cmds() {
            assert!(top.contains(&nf_synopsis(c)), "{top}");
            let leaf = c.words.iter().fold(command(), |cmd, w| {
                cmd.find_subcommand(w).expect("subcommand").clone()
            });
            let mut leaf = leaf;
            let h = leaf.render_long_help().to_string();
            assert!(h.contains(c.example), "{h}");
            assert!(h.contains(c.about), "{h}");
            for a in c.args {
                assert!(h.contains(&format!("{}={}", a.key, a.value)), "{h}");
                assert!(h.contains(a.help), "{h}");
            }
        }
        for g in ["route", "neigh", "forward", "acl", "nat", "policer"] {
            assert!(top.contains(&format!("\n  {g} ")), "{top}");
        }
    }

    #[test]
    fn completions_and_man_page_know_the_nf_commands() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command(), "pollfwdctl", &mut out);
            let text = String::from_utf8(out).unwrap();
            for w in [
                "route", "lookup", "neigh", "acl", "counters", "nat", "static", "policer",
                "gen-pcap",
            ] {
                assert!(text.contains(w), "{shell}: no {w}");
            }
        }
        let text = String::from_utf8(man_page()).unwrap();
        assert!(text.contains(".TH pollfwdctl 1"), "{}", &text[..200]);
        assert!(text.contains(".SH \"NETWORK-FUNCTION COMMANDS\""), "{text}");
        assert_eq!(text.matches(".ds Aq").count(), 2, "{text}");
        for c in nf_cmds() {
            let roff = |t: &str| t.replace('-', "\\-").replace('\'', "\\*(Aq");
            assert!(
                text.contains(&roff(&nf_synopsis(c))),
                "no {}",
                nf_synopsis(c)
            );
            assert!(text.contains(&roff(c.example)), "no {}", c.example);
        }
        let dir = std::env::temp_dir().join(format!("pollfwdctl-man-{}", std::process::id()));
        man(Some(&dir)).unwrap();
        for page in [
            "pollfwdctl.1",
            "pollfwdctl-route-add.1",
            "pollfwdctl-nat-static-del.1",
        ] {
            let p =
                std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
            assert!(p.contains(".TH"), "{page}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn generic_rendering_makes_tables() {
        let t = render_generic(&json!([{"a": 1, "b": "x"}, {"a": 22, "c": true}]));
        assert!(t.starts_with("a   b  c"), "{t}");
        assert!(t.contains("22  -  yes"), "{t}");
        assert_eq!(render_generic(&json!([])), "(none)\n");
    }
}
