//! `pollfwdctl`: the operator CLI of pollfwd (control socket client), and lab helpers.
//!
//! Exit codes: 0 ok, 1 the daemon answered with an error, 2 the daemon cannot be reached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{FromArgMatches, Parser, Subcommand};
use lab::traffic::{self, GenSpec};
use lab::traffic6;
use serde_json::{Value, json};

mod client;
mod man;
mod nfcmd;
mod render;
mod watch;

use client::{Client, Failure};
use man::man;
use nfcmd::{command, nf_command, nf_words};
use render::{render, render_generic, s};
use watch::watch;

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
    /// Interfaces: ports and VLAN sub-interfaces with tags, MAC, MTU, address, counters.
    Interfaces,
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
    /// Write a pcap of synthetic IPv4 (or, with --ipv6, IPv6) traffic (lab input for
    /// net_pcap ports).
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
    /// Source address of flow 0 (IPv4; with --ipv6 an IPv6 address, default 2001:db8::1).
    #[arg(long)]
    src_ip: Option<IpAddr>,
    /// Destination address (IPv4 default 198.19.0.1; with --ipv6, default 2001:db8:1::1).
    #[arg(long)]
    dst_ip: Option<IpAddr>,
    /// IPv6 frames (UDP at least 66 bytes, TCP 78; ICMP is ICMPv6 echo request).
    #[arg(long)]
    ipv6: bool,
    /// With --ipv6: spread the flows' destinations over this many networks of
    /// --dst-net-len bits counted up from --dst-ip (2001:db8::1 with /48: 2001:db8:N::1).
    #[arg(long, requires = "ipv6", default_value_t = 0)]
    dst_nets: u32,
    /// With --dst-nets: their prefix length.
    #[arg(long, requires = "dst_nets", default_value_t = 48)]
    dst_net_len: u8,
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
    /// Tag every frame with an 802.1Q tag of this VLAN id (the frame grows by 4 bytes: the
    /// sizes are those of the untagged frames), for a port's VLAN sub-interface.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=4094))]
    vlan: Option<u16>,
    /// QinQ: an 802.1ad outer tag of this VLAN id before the `--vlan` tag (4 more bytes).
    #[arg(long, requires = "vlan", value_parser = clap::value_parser!(u16).range(1..=4094))]
    outer_vlan: Option<u16>,
}

/// `f` with the tags of `a` after its MAC addresses (outer first).
fn tagged(a: &GenArgs, f: Vec<u8>) -> Vec<u8> {
    let Some(vid) = a.vlan else {
        return f;
    };
    let mut o = Vec::with_capacity(f.len() + 8);
    o.extend_from_slice(&f[..12]);
    if let Some(outer) = a.outer_vlan {
        o.extend_from_slice(&[0x88, 0xa8]);
        o.extend_from_slice(&outer.to_be_bytes());
    }
    o.extend_from_slice(&[0x81, 0x00]);
    o.extend_from_slice(&vid.to_be_bytes());
    o.extend_from_slice(&f[12..]);
    o
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad MAC address '{s}'"))?;
    v.try_into().map_err(|_| format!("bad MAC address '{s}'"))
}

/// The IPv4 address of `--src-ip`/`--dst-ip` (or its default).
fn v4(a: Option<IpAddr>, default: Ipv4Addr, what: &str) -> Result<Ipv4Addr, String> {
    match a {
        None => Ok(default),
        Some(IpAddr::V4(a)) => Ok(a),
        Some(IpAddr::V6(a)) => Err(format!("{what} {a} is IPv6: add --ipv6")),
    }
}

/// The IPv6 address of `--src-ip`/`--dst-ip` with `--ipv6` (or its default).
fn v6(a: Option<IpAddr>, default: Ipv6Addr, what: &str) -> Result<Ipv6Addr, String> {
    match a {
        None => Ok(default),
        Some(IpAddr::V6(a)) => Ok(a),
        Some(IpAddr::V4(a)) => Err(format!("{what} {a} is IPv4: --ipv6 takes IPv6 addresses")),
    }
}

fn gen_pcap(a: &GenArgs) -> Result<(), String> {
    let mut spec = GenSpec {
        count: a.count,
        flows: a.flows,
        sizes: traffic::parse_sizes(&a.sizes)?,
        proto: traffic::parse_proto(&a.proto)?,
        src_mac: parse_mac(&a.src_mac)?,
        dst_mac: parse_mac(&a.dst_mac)?,
        src_port: a.src_port,
        dst_port: a.dst_port,
        ttl: a.ttl,
        ..GenSpec::default()
    };
    let garbage = a.garbage.then(traffic::garbage_frames).unwrap_or_default();
    let n = if a.ipv6 {
        let d = traffic6::Addrs6::default();
        let addrs = traffic6::Addrs6 {
            src_ip: v6(a.src_ip, d.src_ip, "--src-ip")?,
            dst_ip: v6(a.dst_ip, d.dst_ip, "--dst-ip")?,
            dst_nets: a.dst_nets,
            dst_net_len: a.dst_net_len,
        };
        traffic6::validate(&spec, &addrs)?;
        let frames = traffic6::generate(&spec, &addrs).map(|f| tagged(a, f));
        lab::pcap::write_frames(&a.out, frames.chain(garbage))
    } else {
        spec.src_ip = v4(a.src_ip, spec.src_ip, "--src-ip")?;
        spec.dst_ip = v4(a.dst_ip, spec.dst_ip, "--dst-ip")?;
        traffic::validate(&spec)?;
        let frames = traffic::generate(&spec).map(|f| tagged(a, f));
        lab::pcap::write_frames(&a.out, frames.chain(garbage))
    }
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
    let mut c = Client::new(
        cli.socket.clone(),
        Duration::from_secs_f64(cli.timeout.max(0.1)),
    );
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
        Cmd::Interfaces => ("interfaces", json!({})),
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
    use crate::man::man_page;
    use crate::nfcmd::*;
    use clap::CommandFactory;

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
