//! End to end with the real `pollfwd` binary on net_pcap ports (all EAL runs use --no-pci,
//! added by pollfwd itself because no port is PCI).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use lab::traffic::{self, GenSpec, Proto, Sizes};

fn mixed_spec(count: usize) -> GenSpec {
    GenSpec {
        count,
        flows: 64,
        sizes: Sizes::List(vec![64, 128, 256, 512, 1024, 1280, 1518]),
        proto: Proto::Mix,
        ..Default::default()
    }
}

#[test]
fn xconnect_forwards_every_frame_unchanged_and_in_order() {
    let lab = Lab::new("xc");
    let spec = mixed_spec(10_000);
    traffic::write_pcap(&spec, &lab.path("in.pcap")).unwrap();
    let cfg = pcap_config(&lab, "in.pcap", r#"["xconnect"]"#, "");
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);

    let input = read_pcap(&lab.path("in.pcap"));
    let output = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(input.len(), 10_000);
    assert_eq!(output.len(), input.len(), "frames out of p1");
    assert!(
        output == input,
        "p1-out.pcap differs from in.pcap (content or order)"
    );
    assert!(read_pcap(&lab.path("p0-out.pcap")).is_empty());

    let bytes: u64 = input.iter().map(|f| f.len() as u64).sum();
    assert_eq!(port(&s, "p0")["rx_packets"], 10_000);
    assert_eq!(port(&s, "p0")["rx_bytes"], bytes);
    assert_eq!(port(&s, "p1")["tx_packets"], 10_000);
    assert_eq!(port(&s, "p1")["tx_bytes"], bytes);
    assert_eq!(lcore_sum(&s, "rx_packets"), 10_000);
    assert_eq!(lcore_sum(&s, "tx_packets"), 10_000);
    assert_eq!(s["totals"]["drops"], 0);
}

#[test]
fn macswap_swaps_macs_and_nothing_else() {
    let lab = Lab::new("ms");
    let spec = mixed_spec(2_000);
    traffic::write_pcap(&spec, &lab.path("in.pcap")).unwrap();
    let cfg = pcap_config(&lab, "in.pcap", r#"["macswap", "xconnect"]"#, "");
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let input = read_pcap(&lab.path("in.pcap"));
    let output = read_pcap(&lab.path("p1-out.pcap"));
    assert_eq!(output.len(), input.len());
    for (i, (a, b)) in input.iter().zip(&output).enumerate() {
        assert_eq!(a.len(), b.len(), "frame {i} length");
        assert_eq!(&b[0..6], &a[6..12], "frame {i} dst MAC");
        assert_eq!(&b[6..12], &a[0..6], "frame {i} src MAC");
        assert_eq!(&b[12..], &a[12..], "frame {i} beyond the MACs");
    }
    assert_eq!(port(&s, "p1")["tx_packets"], 2_000);
    // The runtime shows both stages with every packet.
    let l = &s["lcores"][0];
    assert_eq!(l["stages"], serde_json::json!(["macswap", "xconnect"]));
}

#[test]
fn garbage_frames_are_dropped_with_a_reason_never_a_crash() {
    let lab = Lab::new("garbage");
    let good = traffic::generate(&mixed_spec(100)).collect::<Vec<_>>();
    let garbage = traffic::garbage_frames();
    let runts = garbage.iter().filter(|f| f.len() < 14).count() as u64;
    assert!(runts >= 1);
    // Interleave garbage between good frames; add an empty-ish 1-byte frame too.
    let mut input = Vec::new();
    for (i, f) in good.iter().enumerate() {
        input.push(f.clone());
        if i % 20 == 0 {
            input.extend(garbage.iter().cloned());
            input.push(vec![0xff]);
        }
    }
    let n = input.len() as u64;
    write_frames(&lab.path("in.pcap"), &input);
    let cfg = pcap_config(&lab, "in.pcap", r#"["macswap", "xconnect"]"#, "");
    let s = lab.run_json(&cfg, &["--exit-idle", "400"]);
    let rounds = 5u64;
    let expect_runts = rounds * (runts + 1);
    assert_eq!(port(&s, "p0")["rx_packets"], n);
    assert_eq!(s["totals"]["drops_by_reason"]["runt"], expect_runts, "{s}");
    assert_eq!(s["totals"]["drops"], expect_runts);
    assert_eq!(port(&s, "p1")["tx_packets"], n - expect_runts);
    assert_eq!(
        read_pcap(&lab.path("p1-out.pcap")).len() as u64,
        n - expect_runts
    );
}

#[test]
fn bad_config_exits_nonzero_with_its_position() {
    let lab = Lab::new("badcfg");
    let cfg = pcap_config(&lab, "in.pcap", r#"["xconnect", "warp"]"#, "");
    let out = lab.run(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("{}:19:23:", cfg.display());
    assert!(err.contains(&want), "stderr should name {want}: {err}");
    assert!(err.contains("unknown stage 'warp'"), "{err}");
    assert!(
        !err.contains("EAL:"),
        "EAL must not start on a bad config: {err}"
    );
    // --check on the same file: same error, same code.
    let out = lab.run(&["--config", cfg.to_str().unwrap(), "--check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sigterm_gives_exit_zero_and_a_summary() {
    let lab = Lab::new("term");
    traffic::write_pcap(&mixed_spec(500), &lab.path("in.pcap")).unwrap();
    let cfg = pcap_config(&lab, "in.pcap", r#"["xconnect"]"#, "");
    let _g = busy_lock();
    let mut child = lab.spawn(&["--config", cfg.to_str().unwrap(), "--summary", "json"]);
    // Signal once the daemon is up and the 500 frames are through, however slow start-up was.
    wait_for_socket(&lab.path("ctl.sock"), &mut child);
    wait_for_ports(&lab.path("ctl.sock"), "tx_packets", 500);
    signal(&child, "TERM");
    let out = wait_with_deadline(child, 20);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary on stdout");
    assert_eq!(port(&s, "p1")["tx_packets"], 500);
}

#[test]
fn restart_after_sigkill_and_two_instances_side_by_side() {
    // Not in-memory: EAL keeps runtime and hugepage files under the prefix, which a SIGKILL
    // leaves behind; the next start with the same prefix must still work.
    let a = Lab::new("kill-a");
    let b = Lab::new("kill-b");
    traffic::write_pcap(&mixed_spec(300), &a.path("in.pcap")).unwrap();
    traffic::write_pcap(&mixed_spec(200), &b.path("in.pcap")).unwrap();
    let cfg_a = pcap_config(&a, "in.pcap", r#"["xconnect"]"#, "");
    let cfg_b = pcap_config(&b, "in.pcap", r#"["xconnect"]"#, "");
    for cfg in [&cfg_a, &cfg_b] {
        let t = std::fs::read_to_string(cfg)
            .unwrap()
            .replace("[eal]\n", "[eal]\nin_memory = false\n");
        std::fs::write(cfg, t).unwrap();
    }
    let _g = busy_lock();
    let child = a.spawn(&["--config", cfg_a.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "KILL");
    let _ = wait_with_deadline(child, 10);
    assert!(std::path::Path::new(&format!("/var/run/dpdk/{}", a.prefix())).exists());

    // Restart A and start B next to it (two workers: the machine's busy-polling budget).
    let ca = a.spawn(&[
        "--config",
        cfg_a.to_str().unwrap(),
        "--summary",
        "json",
        "--exit-idle",
        "1000",
    ]);
    let cb = b.spawn(&[
        "--config",
        cfg_b.to_str().unwrap(),
        "--summary",
        "json",
        "--exit-idle",
        "1000",
    ]);
    let oa = wait_with_deadline(ca, 30);
    let ob = wait_with_deadline(cb, 30);
    assert!(
        oa.status.success(),
        "restart failed: {}",
        String::from_utf8_lossy(&oa.stderr)
    );
    assert!(
        ob.status.success(),
        "second instance failed: {}",
        String::from_utf8_lossy(&ob.stderr)
    );
    let sa: serde_json::Value = serde_json::from_slice(&oa.stdout).unwrap();
    let sb: serde_json::Value = serde_json::from_slice(&ob.stdout).unwrap();
    assert_eq!(port(&sa, "p1")["tx_packets"], 300);
    assert_eq!(port(&sb, "p1")["tx_packets"], 200);
}

#[test]
fn topology_names_ports_nodes_and_pools() {
    let lab = Lab::new("topo");
    traffic::write_pcap(&mixed_spec(10), &lab.path("in.pcap")).unwrap();
    let cfg = pcap_config(&lab, "in.pcap", r#"["xconnect"]"#, "");
    let out = lab.run(&["--config", cfg.to_str().unwrap(), "--topology"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("NUMA nodes"), "{t}");
    assert!(t.contains("net_pcap0") && t.contains("net_pcap1"), "{t}");
    assert!(t.contains("pf_mbuf_n0"), "{t}");
    assert!(t.contains("p0:0,p1:0"), "{t}");
}

#[test]
fn every_bundled_config_passes_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(root.join("configs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let out = std::process::Command::new(bin("pollfwd"))
                .args(["--check", "--config"])
                .arg(&p)
                .current_dir(root)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 5, "configs found: {n}");
}

/// `pollfwdctl gen-pcap` writes, for the same options, the very bytes it wrote before the lab
/// tooling moved to its own crate and to `pcap-file`: the files in lab-tools/testdata were
/// made by the old hand-written writer.
#[test]
fn gen_pcap_output_is_byte_identical_to_the_old_writer() {
    let lab = Lab::new("gen-pcap");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-tools/testdata");
    let cases: [(&str, &[&str]); 4] = [
        ("gen-default.pcap", &["-n", "40"]),
        (
            "gen-mix-imix-garbage.pcap",
            &[
                "-n",
                "36",
                "--proto",
                "mix",
                "--sizes",
                "imix",
                "--flows",
                "5",
                "--src-ip",
                "10.1.255.254",
                "--dst-ip",
                "192.0.2.9",
                "--src-mac",
                "0a:0b:0c:0d:0e:0f",
                "--dst-mac",
                "12:22:33:44:55:66",
                "--src-port",
                "65000",
                "--dst-port",
                "53",
                "--ttl",
                "7",
                "--garbage",
            ],
        ),
        (
            "gen-tcp-list.pcap",
            &[
                "-n",
                "7",
                "--proto",
                "tcp",
                "--sizes",
                "64,128,1518",
                "--flows",
                "3",
            ],
        ),
        (
            "gen-icmp.pcap",
            &[
                "-n", "5", "--proto", "icmp", "--sizes", "100", "--flows", "2",
            ],
        ),
    ];
    for (name, args) in cases {
        let out_path = lab.path(name);
        let out = Command::new(bin("pollfwdctl"))
            .arg("gen-pcap")
            .arg("-o")
            .arg(&out_path)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let frames = read_pcap(&golden.join(name)).len();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}: {frames} frames\n", out_path.display())
        );
        assert!(
            std::fs::read(&out_path).unwrap() == std::fs::read(golden.join(name)).unwrap(),
            "{name}: not the bytes of the old writer"
        );
    }
}

/// `pollfwdctl gen-pcap --ipv6`: IPv6 UDP frames with the given addresses, destinations spread
/// over `--dst-nets` /48s; IPv4 addresses with --ipv6 (or IPv6 ones without it) are refused,
/// as are frames too small for IPv6 headers.
#[test]
fn gen_pcap_writes_ipv6_frames() {
    let lab = Lab::new("gen-pcap6");
    let gen_pcap = |args: &[&str]| {
        Command::new(bin("pollfwdctl"))
            .arg("gen-pcap")
            .arg("-o")
            .arg(lab.path("v6.pcap"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = gen_pcap(&[
        "-n",
        "64",
        "--flows",
        "64",
        "--sizes",
        "78",
        "--ipv6",
        "--src-ip",
        "2001:db8:ffff::10",
        "--dst-ip",
        "2001:db8::1",
        "--dst-nets",
        "100",
        "--dst-net-len",
        "48",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = read_pcap(&lab.path("v6.pcap"));
    assert_eq!(frames.len(), 64);
    let mut nets = std::collections::HashSet::new();
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.len(), 74);
        assert_eq!(&f[12..14], &[0x86, 0xdd], "EtherType IPv6");
        assert_eq!(
            (f[14] >> 4, f[20], f[21]),
            (6, 17, 64),
            "version, UDP, hop limit"
        );
        let src = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
        let dst = u128::from_be_bytes(f[38..54].try_into().unwrap());
        assert_eq!(
            src,
            format!("2001:db8:ffff::{:x}", 0x10 + i)
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
        );
        assert_eq!(dst >> 96, 0x2001_0db8);
        assert!(((dst >> 80) as u16) < 100, "inside the 100 /48s");
        assert_eq!(dst as u16, 1 + i as u16);
        nets.insert((dst >> 80) as u16);
    }
    assert!(nets.len() > 30, "spread over the /48s: {}", nets.len());
    for bad in [
        &["--ipv6", "--dst-ip", "198.18.0.1"][..],
        &["--dst-ip", "2001:db8::1"],
        &["--ipv6", "--sizes", "64"],
    ] {
        let out = gen_pcap(bad);
        assert!(!out.status.success(), "{bad:?} accepted");
    }
}
