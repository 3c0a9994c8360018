//! What the fuzz targets share: one EAL per fuzz process (for the targets that need mbufs),
//! the configuration the stage targets boot from, and an independent checksum check
//! (smoltcp's wire module).

use std::sync::OnceLock;

use dpdk::Mempool;

/// Mbufs of the fuzz pool: a burst of input, what a stage holds (ARP queue) and originates.
pub const POOL_MBUFS: u32 = 1023;

/// The EAL and the mbuf pool of this fuzz process, started on first use: `--no-pci
/// --in-memory` (no hugepage files left behind), a file prefix unique to the process (its
/// runtime directory is removed at once), lcore 0 allowed on every CPU (nothing polls: the
/// fuzzer is one ordinary thread). No busy-polling lock is taken: nothing here busy-polls.
pub fn pool() -> Mempool {
    static POOL: OnceLock<(dpdk::Eal, Mempool)> = OnceLock::new();
    POOL.get_or_init(|| {
        let prefix = format!("pf-fuzz-{}", std::process::id());
        let args: Vec<String> = [
            "pollfwd-fuzz",
            "--no-pci",
            "--in-memory",
            "--no-telemetry",
            "--lcores=0@(0-1)",
            "--log-level=error",
            "-m",
            "64",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--file-prefix={prefix}")])
        .collect();
        let eal = dpdk::Eal::init(&args).expect("EAL init");
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
        let pool = Mempool::create("fuzz", POOL_MBUFS, 0, 2176, -1).expect("mempool");
        (eal, pool)
    })
    .1
}

/// Whether every checksum of an Ethernet/IPv4 frame verifies (smoltcp: the IPv4 header,
/// the TCP/UDP checksum of a whole datagram, ICMP, an ICMP error's embedded header); frames
/// that are not IPv4 pass.
pub fn checksums_ok(frame: &[u8]) -> Result<(), String> {
    if frame.len() < 14 || frame[12..14] != [0x08, 0x00] {
        return Ok(());
    }
    pollfwd_nf::nat::testpkt::verify(frame)
}

/// Whether the IPv4 header of an untagged Ethernet frame is sane enough to check (smoltcp's
/// `new_checked`) and its header checksum is right. None: not IPv4 or not checkable.
pub fn ipv4_header_ok(frame: &[u8]) -> Option<bool> {
    use smoltcp::wire::{EthernetFrame, EthernetProtocol, Ipv4Packet};
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    Some(ip.verify_checksum())
}
