//! The TOML configuration: parsed with serde (unknown keys are errors) and validated as a whole
//! before EAL starts. Every error names `file:line:col` and what is wrong.
//!
//! One file per core section (`eal`, `mempool`, `port`, `interface`, `lcore`, `runtime`,
//! `control`); the network functions' sections are defined in their own folders
//! (`crate::nf::<name>::section`) and listed once, in `crate::nf::list`. This module validates the core sections; each NF
//! validates its own section (`crate::registry::parse` runs both).

pub mod addr;
pub mod control;
pub mod eal;
pub mod error;
pub mod fib_sync;
pub mod iface;
pub mod lcore;
pub mod mempool;
pub mod port;
pub mod punt;
pub mod runtime;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use control::ControlConfig;
pub use eal::EalConfig;
pub use error::{ConfigError, ErrAt, Pos, line_col, no_pos};
pub use fib_sync::FibSyncConfig;
pub use iface::{Iface, InterfaceConfig};
pub use lcore::{LcoreConfig, RxRef};
pub use mempool::MempoolConfig;
pub use port::PortConfig;
pub use punt::PuntConfig;
pub use runtime::RuntimeConfig;

/// Defines [`Config`] (the core sections, then one optional section per network function,
/// named as the NF) and [`STAGES`] from the NF list.
macro_rules! config_with_nfs {
    ($($nf:ident),* $(,)?) => {
        /// The whole configuration file.
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Config {
            #[serde(default)]
            pub eal: EalConfig,
            #[serde(default)]
            pub mempool: MempoolConfig,
            #[serde(default, rename = "port")]
            pub ports: Vec<Spanned<PortConfig>>,
            #[serde(default, rename = "interface")]
            pub interfaces: Vec<Spanned<InterfaceConfig>>,
            #[serde(default, rename = "lcore")]
            pub lcores: Vec<Spanned<LcoreConfig>>,
            #[serde(default)]
            pub runtime: RuntimeConfig,
            #[serde(default)]
            pub control: ControlConfig,
            #[serde(default)]
            pub punt: PuntConfig,
            #[serde(default)]
            pub fib_sync: FibSyncConfig,
            $(pub $nf: Option<Spanned<crate::nf::$nf::section::Section>>,)*
        }

        /// Stages pollfwd knows (one per network function, in the NF list's order), and whether
        /// each chooses an egress port.
        pub const STAGES: &[(&str, bool)] = &[
            $((stringify!($nf), crate::nf::$nf::section::CHOOSES_EGRESS),)*
        ];
    };
}
crate::nf::list::nf_list!(config_with_nfs);

/// A configuration that passed validation, with the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub text: String,
    pub config: Config,
    /// Warnings (valid but probably not meant).
    pub warnings: Vec<String>,
}

/// Largest config or rules file pollfwd reads (a million ACL rules fit).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads a config file (the text, to be parsed with [`parse_core`] and the NFs' checks).
pub fn read(path: &Path) -> Result<String, ConfigError> {
    read_text(path).map_err(|msg| ConfigError {
        file: path.display().to_string(),
        line: 0,
        col: 0,
        msg,
    })
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] as UTF-8 text. The file is opened
/// non-blocking and checked on the open descriptor, so a FIFO, a device (`/dev/zero`) or a
/// socket is refused at once instead of blocking the caller or filling its memory, whatever
/// the path named when it was checked.
pub fn read_text(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let md = f.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !md.is_file() {
        return Err("cannot read: not a regular file".into());
    }
    let too_big = || format!("cannot read: larger than {MAX_FILE_BYTES} bytes");
    if md.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(md.len() as usize);
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "cannot read: not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Parses config text and validates its core sections (ports, lcores and their chains,
/// runtime, pools, EAL, control); `file` names it in errors. The NF sections are only parsed
/// here: `crate::registry::parse` also runs each NF's own validation.
pub fn parse_core(file: &str, text: &str) -> Result<(Config, Vec<String>), ConfigError> {
    let pos = Pos { file, text };
    let config: Config = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        pos.err(span, e.message().trim().to_string())
    })?;
    let mut warnings = Vec::new();
    let port_idx = port::validate(&config, &pos, &mut warnings)?;
    lcore::validate(&config, &pos, &port_idx, &mut warnings)?;
    iface::validate(&config, &pos, &port_idx, &mut warnings)?;
    runtime::validate(&config, &pos)?;
    mempool::validate(&config, &pos)?;
    eal::validate(&config, &pos)?;
    control::validate(&config, &pos, &mut warnings)?;
    punt::validate(&config, &pos)?;
    fib_sync::validate(&config, &pos)?;
    Ok((config, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::parse;

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = std::env::temp_dir().join(format!("pf-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = read_text(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e, "cannot read: not a regular file");
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // Opening a FIFO with no writer would block; it is refused at once.
        assert_eq!(
            read_text(&fifo).unwrap_err(),
            "cannot read: not a regular file"
        );
        let big = dir.join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        assert!(read_text(&big).unwrap_err().contains("larger than"));
        let bin = dir.join("bin");
        std::fs::write(&bin, b"a = 1\n\xff").unwrap();
        assert_eq!(
            read_text(&bin).unwrap_err(),
            "cannot read: not UTF-8 text (byte 6)"
        );
        std::fs::write(&bin, b"a = 1\n").unwrap();
        assert_eq!(read_text(&bin).unwrap(), "a = 1\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const GOOD: &str = r#"
[eal]
main_lcore = 0
file_prefix = "t1"

[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/out0.pcap"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=/tmp/empty.pcap,tx_pcap=/tmp/out1.pcap"

[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1", queue = 0 }]
stages = ["macswap", "xconnect"]

[xconnect]
pairs = [["p0", "p1"]]
"#;

    fn err(text: &str) -> ConfigError {
        parse("t.toml", text).expect_err("config should be refused")
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let (c, w) = parse("t.toml", GOOD).unwrap();
        assert!(w.is_empty());
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.ports[0].get_ref().dev_name(), "net_pcap0");
        assert_eq!(*c.runtime.burst.get_ref(), 32);
        assert_eq!(*c.mempool.mbufs.get_ref(), 16383);
        assert_eq!(c.control.socket.get_ref(), "/run/pollfwd/pollfwd.sock");
        let a = c.eal_args();
        assert!(a.contains(&"--no-pci".to_string()));
        assert!(a.contains(&"--lcores=0@0,1@1".to_string()));
        assert!(
            a.contains(&"--vdev=net_pcap0,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/out0.pcap".to_string())
        );
        assert!(a.contains(&"--file-prefix=t1".to_string()));
        assert!(a.contains(&"--in-memory".to_string()));
        assert_eq!(c.tx_lcores("p1"), vec![1]);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 3), (2, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn unknown_key_is_refused_with_position() {
        let t = GOOD.replace(
            "file_prefix = \"t1\"",
            "file_prefix = \"t1\"\nfile_prefx = \"x\"",
        );
        let e = err(&t);
        assert_eq!((e.line, e.col), (5, 1), "{e}");
        assert!(e.msg.contains("unknown field `file_prefx`"), "{e}");
        assert!(e.to_string().starts_with("t.toml:5:1: "), "{e}");
    }

    #[test]
    fn jumbo_mtu_needs_a_data_room_that_holds_it() {
        let t = GOOD.replace("name = \"p1\"\n", "name = \"p1\"\nmtu = 9000\n");
        let e = err(&t);
        assert_eq!((e.line, e.col), (12, 7), "{e}");
        assert!(e.to_string().starts_with("t.toml:12:7: "), "{e}");
        assert!(e.msg.contains("mtu 9000 must be 68..=2030"), "{e}");
        assert!(e.msg.contains("mempool.data_room >= mtu + 146"), "{e}");
        let t = t.replace(
            "[[port]]\nname = \"p0\"",
            "[mempool]\ndata_room = 9146\n\n[[port]]\nname = \"p0\"",
        );
        let (c, _) = parse("t.toml", &t).expect("data_room 9146 holds MTU 9000");
        assert_eq!(
            c.ports[1].get_ref().mtu.as_ref().map(|m| *m.get_ref()),
            Some(9000)
        );
        let e = err(&t.replace("data_room = 9146", "data_room = 9145"));
        assert!(e.msg.contains("mtu 9000 must be 68..=8999"), "{e}");
    }

    #[test]
    fn mss_clamp_is_checked_with_its_position() {
        let with = |v: &str| {
            GOOD.replace(
                "name = \"p1\"\n",
                &format!("name = \"p1\"\nmss_clamp = {v}\n"),
            )
        };
        let (c, w) = parse("t.toml", &with("1360")).expect("1360 is a clamp");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            c.ports[1]
                .get_ref()
                .mss_clamp
                .as_ref()
                .map(|m| *m.get_ref()),
            Some(1360)
        );
        for (v, bound) in [
            ("535", true),
            ("65496", true),
            ("0", true),
            ("70000", false),
        ] {
            let e = err(&with(v));
            assert_eq!((e.line, e.col), (12, 13), "{e}");
            if bound {
                assert!(
                    e.msg
                        .contains(&format!("mss_clamp {v} must be 536..=65495")),
                    "{e}"
                );
            }
        }
        parse("t.toml", &with("536")).expect("536");
        parse("t.toml", &with("65495")).expect("65495");
        // A clamp above what the port's MTU carries is allowed, with a warning at its place.
        let t = with("1460").replace("mss_clamp", "mtu = 1400\nmss_clamp");
        let (_, w) = parse("t.toml", &t).expect("a warning only");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "t.toml:13:13: port 'p1': mss_clamp 1460 is more than mtu 1400 carries (1360 bytes"
            ),
            "{w:?}"
        );
    }

    #[test]
    fn syntax_error_position() {
        let e = err("[eal]\nmain_lcore = = 1\n");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn wrong_type_position() {
        let t = GOOD.replace("main_lcore = 0", "main_lcore = \"zero\"");
        let e = err(&t);
        assert_eq!((e.line, e.col), (3, 14), "{e}");
    }

    #[test]
    fn unknown_port_in_rx() {
        let t = GOOD.replace(
            "{ port = \"p1\", queue = 0 }",
            "{ port = \"p9\", queue = 0 }",
        );
        let e = err(&t);
        assert_eq!(e.line, 16, "{e}");
        assert_eq!(e.col, 24, "{e}");
        assert!(e.msg.contains("unknown port 'p9'"), "{e}");
    }

    #[test]
    fn queue_out_of_range() {
        let t = GOOD.replace(
            "{ port = \"p1\", queue = 0 }",
            "{ port = \"p1\", queue = 3 }",
        );
        let e = err(&t);
        assert!(e.msg.contains("no queue 3"), "{e}");
        assert_eq!(e.line, 16);
    }

    #[test]
    fn unknown_stage() {
        let t = GOOD.replace("\"macswap\", \"xconnect\"", "\"macswap\", \"teleport\"");
        let e = err(&t);
        assert_eq!((e.line, e.col), (17, 22), "{e}");
        assert!(e.msg.contains("unknown stage 'teleport'"), "{e}");
    }

    #[test]
    fn chain_without_egress() {
        let t = GOOD.replace("\"macswap\", \"xconnect\"", "\"macswap\"");
        let e = err(&t);
        assert!(e.msg.contains("no stage chooses an egress port"), "{e}");
        assert_eq!((e.line, e.col), (17, 10));
    }

    #[test]
    fn duplicate_queue_poll() {
        let t = format!(
            "{GOOD}\n[[lcore]]\nid = 2\nrx = [{{ port = \"p0\" }}]\nstages = [\"xconnect\"]\n"
        );
        let e = err(&t);
        assert!(e.msg.contains("already polled by lcore 1"), "{e}");
        assert_eq!(e.line, 24, "{e}");
    }

    #[test]
    fn main_lcore_cannot_be_worker() {
        let t = GOOD.replace("id = 1", "id = 0");
        let e = err(&t);
        assert!(e.msg.contains("main lcore"), "{e}");
        assert_eq!((e.line, e.col), (15, 6));
    }

    #[test]
    fn worker_cannot_share_the_main_lcores_cpu() {
        // An explicit cpu: the error points at it.
        let t = GOOD.replace("id = 1", "id = 1\ncpu = 0");
        let e = err(&t);
        assert!(
            e.msg
                .contains("lcore 1 runs on CPU 0, the main lcore's CPU"),
            "{e}"
        );
        assert_eq!((e.line, e.col), (16, 7), "{e}");
        // The default cpu (= id) against an explicit main_cpu: the error points at the id.
        let t = GOOD.replace("main_lcore = 0", "main_lcore = 0\nmain_cpu = 1");
        let e = err(&t);
        assert!(e.msg.contains("CPU 1, the main lcore's CPU"), "{e}");
        assert_eq!((e.line, e.col), (16, 6), "{e}");
        // Allowed on request, with a warning.
        let t = GOOD.replace(
            "main_lcore = 0",
            "main_lcore = 0\nmain_cpu = 1\nshare_main_cpu = true",
        );
        let (c, w) = parse("t.toml", &t).unwrap();
        assert!(w.iter().any(|w| w.contains("shares CPU 1")), "{w:?}");
        assert!(c.eal_args().contains(&"--lcores=0@1,1@1".to_string()));
        // Main lcore and worker on different CPUs: fine.
        let t = GOOD.replace("id = 1", "id = 1\ncpu = 1");
        parse("t.toml", &t).unwrap();
    }

    #[test]
    fn prometheus_must_listen_on_loopback() {
        for addr in ["0.0.0.0:9470", "192.0.2.1:9470", "[::]:9470"] {
            let t = format!("{GOOD}\n[control]\nprometheus = \"{addr}\"\n");
            let e = err(&t);
            assert!(e.msg.contains("must be a loopback address"), "{addr}: {e}");
            assert_eq!((e.line, e.col), (23, 14), "{e}");
        }
        let t = format!("{GOOD}\n[control]\nprometheus = \"localhost\"\n");
        assert!(err(&t).msg.contains("is not an address:port"));
        for addr in ["127.0.0.1:9470", "[::1]:9470"] {
            let t = format!("{GOOD}\n[control]\nprometheus = \"{addr}\"\n");
            parse("t.toml", &t).unwrap();
        }
    }

    #[test]
    fn unpolled_queue_and_bad_pair() {
        let t = GOOD.replace(
            "rx = [{ port = \"p0\" }, { port = \"p1\", queue = 0 }]",
            "rx = [{ port = \"p0\" }]",
        );
        assert!(
            err(&t)
                .msg
                .contains("port 'p1' rx queue 0 is polled by no lcore")
        );
        let t = GOOD.replace("[\"p0\", \"p1\"]]", "[\"p0\", \"p0\"]]");
        let e = err(&t);
        assert!(
            e.msg.contains("in two pairs") || e.msg.contains("itself"),
            "{e}"
        );
        assert_eq!(e.line, 20);
    }

    #[test]
    fn pci_policy() {
        let t = GOOD.replace(
            "device = \"net_pcap0,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/out0.pcap\"",
            "pci = \"0000:03:00.0\"",
        );
        let (c, w) = parse("t.toml", &t).unwrap();
        let a = c.eal_args();
        assert!(!a.contains(&"--no-pci".to_string()));
        assert!(a.windows(2).any(|w| w[0] == "-a" && w[1] == "0000:03:00.0"));
        assert!(!w.is_empty());
        let t2 = GOOD.replace(
            "file_prefix = \"t1\"",
            "file_prefix = \"t1\"\nextra_args = [\"-a\", \"0000:01:00.0\"]",
        );
        let e = err(&t2);
        assert!(e.msg.contains("managed by pollfwd"), "{e}");
        let t3 = GOOD.replace(
            "device = \"net_pcap0,rx_pcap=/tmp/in.pcap,tx_pcap=/tmp/out0.pcap\"",
            "pci = \"03:00\"",
        );
        assert!(err(&t3).msg.contains("not a PCI address"));
    }

    #[test]
    fn pipeline_checks() {
        let t = GOOD.replace(
            "stages = [\"macswap\", \"xconnect\"]",
            "stages = [\"macswap\"]\npipeline_to = 2",
        ) + "\n[[lcore]]\nid = 2\nstages = [\"xconnect\"]\n";
        parse("t.toml", &t).unwrap();
        let bad = GOOD.replace(
            "stages = [\"macswap\", \"xconnect\"]",
            "stages = [\"macswap\"]\npipeline_to = 7",
        );
        assert!(
            err(&bad)
                .msg
                .contains("pipeline_to 7 is not another worker lcore")
        );
    }

    #[test]
    fn burst_bounds() {
        let t = format!("{GOOD}\n[runtime]\nburst = 500\n");
        let e = err(&t);
        assert!(e.msg.contains("runtime.burst 500"), "{e}");
        assert_eq!((e.line, e.col), (23, 9));
    }

    /// Values that used to fail late (at EAL, port or pool set-up, or by overflowing when
    /// scaled to TSC ticks) are refused with their position.
    #[test]
    fn late_failing_values_are_refused_with_their_position() {
        let eal = |extra: &str| {
            GOOD.replace(
                "file_prefix = \"t1\"",
                &format!("file_prefix = \"t1\"\n{extra}"),
            )
        };
        let cases: Vec<(String, &str, (usize, usize))> = vec![
            (
                format!("{GOOD}\n[runtime]\ntx_drain_us = 18446744073709"),
                "runtime.tx_drain_us",
                (23, 15),
            ),
            (
                format!("{GOOD}\n[runtime]\nhousekeeping_us = 0"),
                "runtime.housekeeping_us 0",
                (23, 19),
            ),
            (
                format!("{GOOD}\n[mempool]\nmbufs = 2047\ncache = 2000"),
                "mempool.cache 2000",
                (24, 9),
            ),
            (
                format!("{GOOD}\n[mempool]\nmbufs = 1024\ncache = 700"),
                "mempool.cache 700",
                (24, 9),
            ),
            (
                GOOD.replace("name = \"p1\"", "name = \"p1\"\nrx_desc = 8"),
                "port 'p1': rx_desc 8 must be 32..=32768",
                (12, 11),
            ),
            (eal("memory_mb = 1"), "eal.memory_mb 1", (5, 13)),
            (
                eal("log_level = \"pmd.net.pcap:loud\""),
                "eal.log_level 'pmd.net.pcap:loud'",
                (5, 13),
            ),
            (
                format!("{GOOD}\n[control]\nsocket = \"/tmp/{}\"", "x".repeat(120)),
                "control.socket",
                (23, 10),
            ),
            (
                format!("{GOOD}\n[control]\nclient_timeout_ms = 0"),
                "control.client_timeout_ms 0",
                (23, 21),
            ),
        ];
        for (text, msg, at) in cases {
            let e = err(&text);
            assert!(e.msg.contains(msg), "{msg}: {e}");
            assert_eq!((e.line, e.col), at, "{msg}: {e}");
        }
        // The limits themselves are accepted.
        let ok = [
            format!("{GOOD}\n[runtime]\ntx_drain_us = 1000000\nhousekeeping_us = 10000000"),
            format!("{GOOD}\n[mempool]\nmbufs = 1024\ncache = 512"),
            eal("memory_mb = 64\nlog_level = \"pmd.net.pcap:debug\""),
            eal("log_level = \"8\""),
            format!("{GOOD}\n[control]\nclient_timeout_ms = 10"),
        ];
        for text in ok {
            parse("t.toml", &text).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
