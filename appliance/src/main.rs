//! `pollfwd`: the forwarding daemon.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use appliance::daemon::{self, RunOptions};
use appliance::registry;
use appliance::topology::HostTopology;
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SummaryFormat {
    Text,
    Json,
}

/// DPDK poll-mode forwarding appliance.
#[derive(Debug, Parser)]
#[command(name = "pollfwd", version)]
struct Args {
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Validate the configuration and exit (EAL is not started).
    #[arg(long)]
    check: bool,
    /// Print cores, NUMA nodes, ports and which pool each lcore uses, then exit. Without
    /// --config only the host part is printed.
    #[arg(long)]
    topology: bool,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Stop once no packet has arrived for this many milliseconds (pcap labs and tests).
    #[arg(long, value_name = "MS")]
    exit_idle: Option<u64>,
    /// Print per-port rates every SECONDS to stderr.
    #[arg(long, value_name = "SECONDS")]
    stats_interval: Option<f64>,
    /// Format of the summary printed at exit.
    #[arg(long, value_enum, default_value = "text")]
    summary: SummaryFormat,
}

fn secs(v: f64, what: &str) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("--{what} must be a positive number of seconds"))
    }
}

fn main() -> ExitCode {
    // Large control-plane buffers (ACL builds) go back to the kernel when freed: RSS stays
    // flat over reloads (docs/reliability.md, "Memory"). Before any thread starts.
    dpdk::sys::malloc_mmap_threshold(128 * 1024);
    let args = Args::parse();
    let Some(path) = args.config.clone() else {
        if args.topology {
            print!("{}", HostTopology::discover().render());
            return ExitCode::SUCCESS;
        }
        eprintln!("pollfwd: --config FILE is required (see configs/ and docs/configuration.md)");
        return ExitCode::from(2);
    };
    let loaded = match registry::load(&path).and_then(|l| registry::preflight(&l).map(|_| l)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pollfwd: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        for w in &loaded.warnings {
            eprintln!("pollfwd: warning: {w}");
        }
        println!(
            "{}: OK ({} port(s), {} worker lcore(s))",
            path.display(),
            loaded.config.ports.len(),
            loaded.config.lcores.len()
        );
        return ExitCode::SUCCESS;
    }
    let opts = (|| -> Result<RunOptions, String> {
        Ok(RunOptions {
            duration: args.duration.map(|d| secs(d, "duration")).transpose()?,
            exit_idle: args.exit_idle.map(Duration::from_millis),
            stats_interval: args
                .stats_interval
                .map(|d| secs(d, "stats-interval"))
                .transpose()?,
            summary_json: matches!(args.summary, SummaryFormat::Json),
            topology_only: args.topology,
        })
    })();
    let opts = match opts {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pollfwd: {e}");
            return ExitCode::from(2);
        }
    };
    match daemon::run(loaded, &opts, |_| {}) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("pollfwd: {e}");
            ExitCode::from(1)
        }
    }
}
