//! `pollfwdctl`: the operator CLI of pollfwd, and lab helpers.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use appliance::traffic::{self, GenSpec};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pollfwdctl",
    version,
    about = "Operator CLI of the pollfwd forwarding appliance"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write a pcap of synthetic IPv4 traffic (lab input for net_pcap ports).
    GenPcap(GenArgs),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::GenPcap(a) => gen_pcap(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pollfwdctl: {e}");
            ExitCode::from(1)
        }
    }
}
