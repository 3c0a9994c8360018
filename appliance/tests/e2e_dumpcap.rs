//! End to end: DPDK's `dpdk-dumpcap` captures from a running pollfwd (through the pdump server
//! pollfwd starts when it runs with `in_memory = false`).
//!
//! dpdk-dumpcap 22.11 takes no EAL arguments, so it is run through scripts/dumpcap-nopci.sh,
//! which adds `--no-pci` (LD_PRELOAD shim) and points DPDK's PCI scan at an empty directory:
//! the tool never touches the PCI bus of these machines.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use lab::traffic::{self, GenSpec};

#[test]
fn dpdk_dumpcap_captures_what_pollfwd_receives() {
    let lab = Lab::new("dumpcap");
    let spec = GenSpec {
        count: 256,
        flows: 16,
        ..Default::default()
    };
    traffic::write_pcap(&spec, &lab.path("in.pcap")).unwrap();
    // p1 is a pure sink; neither port writes a file (short devargs: the secondary re-parses
    // them, and net_pcap 22.11 fails on long ones).
    let cfg = pcap_config(&lab, "in.pcap,infinite_rx=1", r#"["xconnect"]"#, "");
    let t = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(",tx_pcap=p0-out.pcap", "")
        .replace(",tx_pcap=p1-out.pcap", "");
    std::fs::write(&cfg, t).unwrap();
    attachable(&lab, &cfg);
    let sock = lab.path("ctl.sock");
    let _g = busy_lock();
    let child = lab.start(&cfg, 60, &sock);
    wait_for_ports(&sock, "rx_packets", 1);

    let cap = lab.path("cap.pcap");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/dumpcap-nopci.sh");
    // 100 packets from port 0 (p0, which receives the traffic), libpcap format; bounded by
    // dumpcap's own autostop and by the wait below.
    let dc = Command::new("bash")
        .arg(&script)
        .arg(format!("--file-prefix={}", lab.prefix()))
        .args([
            "-i",
            "0",
            "-c",
            "100",
            "-a",
            "duration:20",
            "-P",
            "-q",
            "-w",
        ])
        .arg(&cap)
        .env("POLLFWD_CACHE", lab.path("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_deadline(dc, 40);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dpdk-dumpcap: {:?}\n{err}",
        out.status
    );
    // The shim really ran (its line): EAL started with --no-pci.
    assert!(err.contains("EAL started with --no-pci"), "{err}");
    let frames = read_pcap(&cap);
    // dumpcap stops after the burst that reaches the count: at least 100.
    assert!(
        frames.len() >= 100,
        "{} frames; dumpcap: {err}",
        frames.len()
    );
    // What was captured is what pollfwd received: frames of the input pcap, in its order.
    let sent: Vec<Vec<u8>> = traffic::generate(&spec).collect();
    let first = sent
        .iter()
        .position(|f| f == &frames[0])
        .expect("first captured frame is not an input frame");
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(f, &sent[(first + k) % sent.len()], "captured frame {k}");
    }

    // The capture did not disturb forwarding: everything received was sent, nothing dropped.
    let s = stop(child);
    assert_eq!(s["totals"]["drops"], 0, "{s}");
    let rx = lcore_sum(&s, "rx_packets");
    assert!(rx > 100, "{s}");
    assert_eq!(lcore_sum(&s, "tx_packets"), rx, "{s}");
}
