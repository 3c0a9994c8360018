//! `[eal]`: EAL options, the EAL argument list built from the whole config, and the rule that
//! no EAL argument may open the PCI bus behind the config's back.

use serde::Deserialize;
use toml::Spanned;

use super::Config;
use super::error::{ConfigError, Pos};

pub(crate) fn d_true() -> bool {
    true
}

/// EAL options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EalConfig {
    /// The main lcore: runs the management thread, never a worker.
    #[serde(default)]
    pub main_lcore: u32,
    /// CPU of the main lcore (default: same number as the lcore). The management thread runs
    /// there; no worker may (unless `share_main_cpu`).
    pub main_cpu: Option<u32>,
    /// Let workers run on the main lcore's CPU (default false). Only for machines with too few
    /// CPUs: the management thread then takes time from that worker while it serves a client.
    #[serde(default)]
    pub share_main_cpu: bool,
    /// `--file-prefix`: needed to run several instances side by side (default "pollfwd").
    pub file_prefix: Option<String>,
    /// `--in-memory`: no hugepage files, no shared runtime files (default true). Set false to
    /// let DPDK's secondary-process tools (dpdk-dumpcap, dpdk-proc-info) attach.
    #[serde(default = "d_true")]
    pub in_memory: bool,
    /// Use hugepages (default true). false = `--no-huge` (about half the throughput).
    #[serde(default = "d_true")]
    pub hugepages: bool,
    /// `-m`: memory in MiB to reserve (needed with hugepages = false; default 512 then).
    pub memory_mb: Option<Spanned<u32>>,
    /// `--log-level`, e.g. "notice" or "pmd.net.pcap:debug".
    pub log_level: Option<Spanned<String>>,
    /// Extra EAL arguments, appended as given.
    #[serde(default)]
    pub extra_args: Vec<Spanned<String>>,
}

impl Default for EalConfig {
    fn default() -> Self {
        EalConfig {
            main_lcore: 0,
            main_cpu: None,
            share_main_cpu: false,
            file_prefix: None,
            in_memory: true,
            hugepages: true,
            memory_mb: None,
            log_level: None,
            extra_args: Vec::new(),
        }
    }
}

/// `[eal]` on its own: extra arguments may not set what the config manages.
/// EAL's log levels (`--log-level=[<type-pattern>:]<level>`), by name or number 1..=8.
const LOG_LEVELS: &[&str] = &[
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "info",
    "debug",
];

pub(super) fn validate(c: &Config, pos: &Pos<'_>) -> Result<(), ConfigError> {
    if let Some(m) = &c.eal.memory_mb {
        let v = *m.get_ref();
        if !(64..=1_048_576).contains(&v) {
            return Err(pos.err(
                m.span(),
                format!("eal.memory_mb {v} must be 64..=1048576 (MiB)"),
            ));
        }
    }
    if let Some(l) = &c.eal.log_level {
        let s = l.get_ref();
        let level = s.rsplit_once(':').map_or(s.as_str(), |(_, lv)| lv);
        let ok =
            LOG_LEVELS.contains(&level) || level.parse::<u8>().is_ok_and(|n| (1..=8).contains(&n));
        if !ok || s.starts_with(':') {
            return Err(pos.err(
                l.span(),
                format!(
                    "eal.log_level '{s}': give [<type pattern>:]<level>, the level one of {} or 1..=8",
                    LOG_LEVELS.join(", ")
                ),
            ));
        }
    }
    // EAL arguments must not open the PCI bus behind the config's back.
    for a in &c.eal.extra_args {
        let s = a.get_ref().as_str();
        if s.starts_with("-a")
            || s.starts_with("--allow")
            || s.starts_with("-b")
            || s.starts_with("--block")
            || s == "--no-pci"
        {
            return Err(pos.err(a.span(), format!("eal.extra_args: '{s}' is managed by pollfwd (use `pci = ...` on a port; --no-pci is added when no port is PCI)")));
        }
        if s.starts_with("--vdev")
            || s.starts_with("-l")
            || s.starts_with("--lcores")
            || s.starts_with("--file-prefix")
            || s == "--in-memory"
        {
            return Err(pos.err(a.span(), format!("eal.extra_args: '{s}' is set from the config (ports, lcores, eal.file_prefix, eal.in_memory)")));
        }
    }
    Ok(())
}

impl Config {
    /// The EAL argument list (argv[0] included). Never without `--no-pci` or an allow-list.
    pub fn eal_args(&self) -> Vec<String> {
        let e = &self.eal;
        let mut a = vec!["pollfwd".to_string()];
        let main_cpu = e.main_cpu.unwrap_or(e.main_lcore);
        let mut lc = vec![format!("{}@{}", e.main_lcore, main_cpu)];
        for l in &self.lcores {
            let l = l.get_ref();
            lc.push(format!(
                "{}@{}",
                l.id.get_ref(),
                l.cpu.as_ref().map_or(*l.id.get_ref(), |c| *c.get_ref())
            ));
        }
        a.push(format!("--lcores={}", lc.join(",")));
        a.push(format!("--main-lcore={}", e.main_lcore));
        let pci: Vec<&str> = self
            .ports
            .iter()
            .filter_map(|p| p.get_ref().pci.as_ref().map(|s| s.get_ref().as_str()))
            .collect();
        if pci.is_empty() {
            a.push("--no-pci".into());
        } else {
            for p in pci {
                a.push("-a".into());
                a.push(p.to_string());
            }
        }
        for p in &self.ports {
            if let Some(d) = &p.get_ref().device {
                a.push(format!("--vdev={}", d.get_ref()));
            }
        }
        a.push(format!(
            "--file-prefix={}",
            e.file_prefix.as_deref().unwrap_or("pollfwd")
        ));
        // --in-memory together with --no-huge fails to start: without hugepages there are no
        // hugepage files to keep out of the file system anyway.
        if e.in_memory && e.hugepages {
            a.push("--in-memory".into());
        }
        if !e.hugepages {
            a.push("--no-huge".into());
            a.push("-m".into());
            a.push(
                e.memory_mb
                    .as_ref()
                    .map_or(512, |m| *m.get_ref())
                    .to_string(),
            );
        } else if let Some(m) = &e.memory_mb {
            a.push("-m".into());
            a.push(m.get_ref().to_string());
        }
        if let Some(l) = &e.log_level {
            a.push(format!("--log-level={}", l.get_ref()));
        }
        a.extend(e.extra_args.iter().map(|s| s.get_ref().clone()));
        a
    }
}
