//! The TOML configuration: parsed with serde (unknown keys are errors) and validated as a whole
//! before EAL starts. Every error names `file:line:col` and what is wrong.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// A configuration error at a position in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.msg)
    }
}

impl std::error::Error for ConfigError {}

fn d_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub eal: EalConfig,
    #[serde(default)]
    pub mempool: MempoolConfig,
    #[serde(default, rename = "port")]
    pub ports: Vec<Spanned<PortConfig>>,
    #[serde(default, rename = "lcore")]
    pub lcores: Vec<Spanned<LcoreConfig>>,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub control: ControlConfig,
    pub xconnect: Option<Spanned<XconnectConfig>>,
    pub forward: Option<Spanned<crate::nfconf::forward::ForwardConfig>>,
    pub classify: Option<Spanned<crate::nfconf::classify::ClassifyConfig>>,
    pub nat: Option<Spanned<crate::nfconf::nat::NatConfig>>,
    pub policer: Option<Spanned<crate::nfconf::policer::PolicerConfig>>,
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
    pub memory_mb: Option<u32>,
    /// `--log-level`, e.g. "notice" or "pmd.net.pcap:debug".
    pub log_level: Option<String>,
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

/// Mbuf pools: one per NUMA node in use, each of this size.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolConfig {
    /// Mbufs per pool (best 2^n - 1).
    #[serde(default = "MempoolConfig::d_mbufs")]
    pub mbufs: Spanned<u32>,
    /// Per-lcore cache.
    #[serde(default = "MempoolConfig::d_cache")]
    pub cache: u32,
    /// Buffer size incl. 128 bytes headroom.
    #[serde(default = "MempoolConfig::d_room")]
    pub data_room: Spanned<u16>,
}

impl MempoolConfig {
    fn d_mbufs() -> Spanned<u32> {
        Spanned::new(0..0, 16383)
    }
    fn d_cache() -> u32 {
        256
    }
    fn d_room() -> Spanned<u16> {
        Spanned::new(0..0, 2176)
    }
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            mbufs: Self::d_mbufs(),
            cache: Self::d_cache(),
            data_room: Self::d_room(),
        }
    }
}

fn d_one() -> u16 {
    1
}
fn d_desc() -> u16 {
    1024
}

/// One port: a virtual device (`device = "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap"`) or a
/// PCI device (`pci = "0000:01:00.0"`, which puts it on EAL's allow-list).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Name used everywhere else in the config and in the CLI.
    pub name: Spanned<String>,
    pub device: Option<Spanned<String>>,
    pub pci: Option<Spanned<String>>,
    #[serde(default = "d_one")]
    pub rx_queues: u16,
    /// Default: one per lcore that may transmit on the port.
    pub tx_queues: Option<Spanned<u16>>,
    #[serde(default = "d_desc")]
    pub rx_desc: u16,
    #[serde(default = "d_desc")]
    pub tx_desc: u16,
    pub mtu: Option<Spanned<u16>>,
    #[serde(default = "d_true")]
    pub promiscuous: bool,
    /// IPv4 address and prefix of the interface, "192.0.2.1/24" (forward stage).
    pub address: Option<Spanned<String>>,
}

impl PortConfig {
    /// The DPDK device name: the vdev name before the first comma, or the PCI address.
    pub fn dev_name(&self) -> &str {
        match (&self.device, &self.pci) {
            (Some(d), _) => d.get_ref().split(',').next().unwrap_or("").trim(),
            (None, Some(p)) => p.get_ref().as_str(),
            _ => "",
        }
    }
}

/// A (port, queue) an lcore polls.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RxRef {
    pub port: String,
    #[serde(default)]
    pub queue: u16,
}

/// One worker lcore.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LcoreConfig {
    /// EAL lcore id.
    pub id: Spanned<u32>,
    /// CPU it is pinned to (default: same number as the id). Never the main lcore's CPU
    /// unless `eal.share_main_cpu`.
    pub cpu: Option<Spanned<u32>>,
    /// Port queues it polls.
    #[serde(default)]
    pub rx: Vec<Spanned<RxRef>>,
    /// Stage chain, in order.
    pub stages: Spanned<Vec<Spanned<String>>>,
    /// Ports it may transmit on (default: all). Each gets one TX queue per such lcore.
    pub tx_ports: Option<Vec<Spanned<String>>>,
    /// Pipeline mode: packets that survive this lcore's chain go to this lcore over an SP/SC
    /// ring, and continue with that lcore's chain.
    pub pipeline_to: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Packets per rx burst (1..=64).
    #[serde(default = "RuntimeConfig::d_burst")]
    pub burst: Spanned<usize>,
    /// TX buffer drain period, microseconds.
    #[serde(default = "RuntimeConfig::d_drain")]
    pub tx_drain_us: u64,
    /// Stage housekeeping period (ageing, expiry), microseconds.
    #[serde(default = "RuntimeConfig::d_hk")]
    pub housekeeping_us: u64,
    /// Slots of each pipeline ring (power of two).
    #[serde(default = "RuntimeConfig::d_ring")]
    pub ring_size: Spanned<u32>,
}

impl RuntimeConfig {
    fn d_burst() -> Spanned<usize> {
        Spanned::new(0..0, 32)
    }
    fn d_drain() -> u64 {
        100
    }
    fn d_hk() -> u64 {
        1000
    }
    fn d_ring() -> Spanned<u32> {
        Spanned::new(0..0, 1024)
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            burst: Self::d_burst(),
            tx_drain_us: Self::d_drain(),
            housekeeping_us: Self::d_hk(),
            ring_size: Self::d_ring(),
        }
    }
}

/// Management: control socket and metrics.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    #[serde(default = "ControlConfig::d_socket")]
    pub socket: String,
    /// Group whose members may use the socket (besides root).
    pub group: Option<Spanned<String>>,
    /// Loopback address:port of the Prometheus listener (off when absent).
    pub prometheus: Option<Spanned<String>>,
    #[serde(default = "ControlConfig::d_clients")]
    pub max_clients: usize,
    /// A client silent for this long is disconnected, milliseconds.
    #[serde(default = "ControlConfig::d_timeout")]
    pub client_timeout_ms: u64,
}

impl ControlConfig {
    fn d_socket() -> String {
        "/run/pollfwd/pollfwd.sock".into()
    }
    fn d_clients() -> usize {
        16
    }
    fn d_timeout() -> u64 {
        5000
    }
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: Self::d_socket(),
            group: None,
            prometheus: None,
            max_clients: Self::d_clients(),
            client_timeout_ms: Self::d_timeout(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XconnectConfig {
    pub pairs: Vec<Spanned<[String; 2]>>,
}

/// Stages pollfwd knows, and whether each chooses an egress port.
pub const STAGES: &[(&str, bool)] = &[
    ("xconnect", true),
    ("macswap", false),
    ("classify", false),
    ("nat", false),
    ("policer", false),
    ("forward", true),
];

/// A configuration that passed validation, with the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub text: String,
    pub config: Config,
    /// Warnings (valid but probably not meant).
    pub warnings: Vec<String>,
}

struct Pos<'a> {
    file: &'a str,
    text: &'a str,
}

impl Pos<'_> {
    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> ConfigError {
        let (line, col) = line_col(self.text, span.start);
        ConfigError {
            file: self.file.to_string(),
            line,
            col,
            msg: msg.into(),
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        col: 0,
        msg: format!("cannot read: {e}"),
    })?;
    parse(&path.display().to_string(), &text).map(|(config, warnings)| Loaded {
        path: path.to_path_buf(),
        text,
        config,
        warnings,
    })
}

/// Parses and validates config text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<(Config, Vec<String>), ConfigError> {
    let pos = Pos { file, text };
    let config: Config = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        pos.err(span, e.message().trim().to_string())
    })?;
    let warnings = validate(&config, &pos)?;
    Ok((config, warnings))
}

fn validate(c: &Config, pos: &Pos<'_>) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    // Ports.
    let mut port_idx: HashMap<&str, usize> = HashMap::new();
    let mut devs: BTreeSet<&str> = BTreeSet::new();
    for (i, p) in c.ports.iter().enumerate() {
        let pr = p.get_ref();
        let name = pr.name.get_ref().as_str();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            return Err(pos.err(
                pr.name.span(),
                format!("port name '{name}': use letters, digits, '_' or '-'"),
            ));
        }
        if port_idx.insert(name, i).is_some() {
            return Err(pos.err(pr.name.span(), format!("port '{name}' is defined twice")));
        }
        match (&pr.device, &pr.pci) {
            (Some(_), Some(pci)) => {
                return Err(pos.err(
                    pci.span(),
                    format!("port '{name}': give either `device` or `pci`, not both"),
                ));
            }
            (None, None) => {
                return Err(pos.err(
                    p.span(),
                    format!(
                        "port '{name}': missing `device` (vdev devargs) or `pci` (PCI address)"
                    ),
                ));
            }
            (Some(d), None) => {
                let dev = pr.dev_name();
                if !dev.starts_with("net_") {
                    return Err(pos.err(
                        d.span(),
                        format!("port '{name}': device '{dev}' is not a virtual device name (net_pcap0, net_ring0, net_memif0...); use `pci` for a PCI device"),
                    ));
                }
            }
            (None, Some(pci)) => {
                if !is_pci_addr(pci.get_ref()) {
                    return Err(pos.err(
                        pci.span(),
                        format!(
                            "port '{name}': '{}' is not a PCI address (DDDD:BB:DD.F)",
                            pci.get_ref()
                        ),
                    ));
                }
            }
        }
        if !devs.insert(pr.dev_name()) {
            let span = pr
                .device
                .as_ref()
                .map(|d| d.span())
                .or(pr.pci.as_ref().map(|d| d.span()))
                .unwrap_or(p.span());
            return Err(pos.err(
                span,
                format!(
                    "port '{name}': device '{}' is used by another port",
                    pr.dev_name()
                ),
            ));
        }
        if pr.rx_queues == 0 || pr.rx_queues > 64 {
            return Err(pos.err(p.span(), format!("port '{name}': rx_queues must be 1..=64")));
        }
        if let Some(t) = &pr.tx_queues
            && (*t.get_ref() == 0 || *t.get_ref() > 64)
        {
            return Err(pos.err(t.span(), format!("port '{name}': tx_queues must be 1..=64")));
        }
        if let Some(m) = &pr.mtu {
            let room = *c.mempool.data_room.get_ref() as u32;
            if (*m.get_ref() as u32) < 68 || *m.get_ref() as u32 + 18 + 128 > room {
                return Err(pos.err(
                    m.span(),
                    format!("port '{name}': mtu {} must be 68..={} (mempool data_room {room} minus 128 headroom and 18 header)", m.get_ref(), room.saturating_sub(146)),
                ));
            }
        }
    }
    let has_pci = c.ports.iter().any(|p| p.get_ref().pci.is_some());
    // Lcores.
    let mut lcore_ids: BTreeMap<u32, usize> = BTreeMap::new();
    let mut polled: HashMap<(&str, u16), u32> = HashMap::new();
    let known: HashMap<&str, bool> = STAGES.iter().copied().collect();
    if c.lcores.is_empty() {
        return Err(pos.err(0..0, "no [[lcore]]: at least one worker lcore is needed"));
    }
    for (i, l) in c.lcores.iter().enumerate() {
        let lr = l.get_ref();
        let id = *lr.id.get_ref();
        if id == c.eal.main_lcore {
            return Err(pos.err(
                lr.id.span(),
                format!(
                    "lcore {id} is the main lcore (eal.main_lcore): workers need their own lcores"
                ),
            ));
        }
        let cpu = lr.cpu.as_ref().map_or(id, |c| *c.get_ref());
        let main_cpu = c.eal.main_cpu.unwrap_or(c.eal.main_lcore);
        if cpu == main_cpu {
            let span = lr.cpu.as_ref().map_or(lr.id.span(), |c| c.span());
            if !c.eal.share_main_cpu {
                return Err(pos.err(
                    span,
                    format!(
                        "lcore {id} runs on CPU {cpu}, the main lcore's CPU (eal.main_cpu, default eal.main_lcore), where the management thread runs: give it another cpu (or set eal.share_main_cpu = true on a machine with too few CPUs)"
                    ),
                ));
            }
            warnings.push(format!(
                "lcore {id} shares CPU {cpu} with the main lcore (eal.share_main_cpu): the management thread takes time from it while serving clients"
            ));
        }
        if id >= 128 {
            return Err(pos.err(
                lr.id.span(),
                format!("lcore {id}: ids must be below 128 (RTE_MAX_LCORE)"),
            ));
        }
        if lcore_ids.insert(id, i).is_some() {
            return Err(pos.err(lr.id.span(), format!("lcore {id} is defined twice")));
        }
        for r in &lr.rx {
            let rr = r.get_ref();
            let Some(&pi) = port_idx.get(rr.port.as_str()) else {
                return Err(pos.err(r.span(), format!("lcore {id}: unknown port '{}'", rr.port)));
            };
            let nq = c.ports[pi].get_ref().rx_queues;
            if rr.queue >= nq {
                return Err(pos.err(
                    r.span(),
                    format!(
                        "lcore {id}: port '{}' has {nq} rx queue(s), no queue {}",
                        rr.port, rr.queue
                    ),
                ));
            }
            if let Some(other) = polled.insert(
                (c.ports[pi].get_ref().name.get_ref().as_str(), rr.queue),
                id,
            ) {
                return Err(pos.err(
                    r.span(),
                    format!(
                        "lcore {id}: port '{}' queue {} is already polled by lcore {other}",
                        rr.port, rr.queue
                    ),
                ));
            }
        }
        let chain = lr.stages.get_ref();
        for s in chain {
            if !known.contains_key(s.get_ref().as_str()) {
                let names: Vec<&str> = STAGES.iter().map(|s| s.0).collect();
                return Err(pos.err(
                    s.span(),
                    format!(
                        "unknown stage '{}' (known: {})",
                        s.get_ref(),
                        names.join(", ")
                    ),
                ));
            }
        }
        if chain.len() > pollfwd_pipeline::MAX_STAGES {
            return Err(pos.err(
                lr.stages.span(),
                format!(
                    "lcore {id}: at most {} stages",
                    pollfwd_pipeline::MAX_STAGES
                ),
            ));
        }
        let routes = chain.iter().any(|s| known[s.get_ref().as_str()]);
        if lr.pipeline_to.is_none() && !routes {
            let last = chain
                .last()
                .map(|s| s.get_ref().as_str())
                .unwrap_or("(none)");
            return Err(pos.err(
                lr.stages.span(),
                format!("lcore {id}: the chain ends with '{last}' and no stage chooses an egress port; add 'xconnect' (or set pipeline_to)"),
            ));
        }
        if let Some(tp) = &lr.tx_ports {
            for p in tp {
                if !port_idx.contains_key(p.get_ref().as_str()) {
                    return Err(pos.err(
                        p.span(),
                        format!("lcore {id}: unknown port '{}' in tx_ports", p.get_ref()),
                    ));
                }
            }
        }
        if chain.iter().any(|s| s.get_ref() == "xconnect") && c.xconnect.is_none() {
            return Err(pos.err(
                lr.stages.span(),
                format!("lcore {id}: stage 'xconnect' needs an [xconnect] section with pairs"),
            ));
        }
    }
    // Pipelines: each target exists, is not the source, receives from one lcore, no cycles.
    let mut ring_src: HashMap<u32, u32> = HashMap::new();
    for l in &c.lcores {
        let lr = l.get_ref();
        if let Some(to) = &lr.pipeline_to {
            let (from, t) = (*lr.id.get_ref(), *to.get_ref());
            if t == from || !lcore_ids.contains_key(&t) {
                return Err(pos.err(
                    to.span(),
                    format!("lcore {from}: pipeline_to {t} is not another worker lcore"),
                ));
            }
            if let Some(other) = ring_src.insert(t, from) {
                return Err(pos.err(
                    to.span(),
                    format!("lcore {t} already receives the pipeline of lcore {other}"),
                ));
            }
        }
    }
    for &start in lcore_ids.keys() {
        let mut seen = BTreeSet::new();
        let mut cur = start;
        while let Some(to) = c.lcores[lcore_ids[&cur]]
            .get_ref()
            .pipeline_to
            .as_ref()
            .map(|t| *t.get_ref())
        {
            if !seen.insert(cur) {
                let span = c.lcores[lcore_ids[&start]].get_ref().id.span();
                return Err(pos.err(span, format!("lcore {start}: pipeline_to forms a cycle")));
            }
            cur = to;
        }
    }
    for l in &c.lcores {
        let lr = l.get_ref();
        let id = *lr.id.get_ref();
        if lr.rx.is_empty() && !ring_src.contains_key(&id) {
            return Err(pos.err(
                lr.id.span(),
                format!(
                    "lcore {id} polls nothing: give it `rx` queues or make it a pipeline_to target"
                ),
            ));
        }
    }
    // Every rx queue is polled (an unpolled queue fills up and silently drops).
    for p in &c.ports {
        let pr = p.get_ref();
        for q in 0..pr.rx_queues {
            if !polled.contains_key(&(pr.name.get_ref().as_str(), q)) {
                return Err(pos.err(
                    p.span(),
                    format!(
                        "port '{}' rx queue {q} is polled by no lcore",
                        pr.name.get_ref()
                    ),
                ));
            }
        }
    }
    // Xconnect pairs.
    if let Some(x) = &c.xconnect {
        let mut used = BTreeSet::new();
        for pair in &x.get_ref().pairs {
            let [a, b] = pair.get_ref();
            for n in [a, b] {
                if !port_idx.contains_key(n.as_str()) {
                    return Err(pos.err(pair.span(), format!("xconnect: unknown port '{n}'")));
                }
                if !used.insert(n.as_str()) {
                    return Err(
                        pos.err(pair.span(), format!("xconnect: port '{n}' is in two pairs"))
                    );
                }
            }
            if a == b {
                return Err(pos.err(
                    pair.span(),
                    format!("xconnect: port '{a}' paired with itself"),
                ));
            }
        }
    }
    // Runtime.
    let burst = *c.runtime.burst.get_ref();
    if burst == 0 || burst > dpdk::BURST_MAX {
        return Err(pos.err(
            c.runtime.burst.span(),
            format!("runtime.burst {burst} must be 1..={}", dpdk::BURST_MAX),
        ));
    }
    let rs = *c.runtime.ring_size.get_ref();
    if !rs.is_power_of_two() || rs < 64 {
        return Err(pos.err(
            c.runtime.ring_size.span(),
            format!("runtime.ring_size {rs} must be a power of two >= 64"),
        ));
    }
    let mb = *c.mempool.mbufs.get_ref();
    if mb < 1024 {
        return Err(pos.err(
            c.mempool.mbufs.span(),
            format!("mempool.mbufs {mb} is too small (>= 1024)"),
        ));
    }
    if *c.mempool.data_room.get_ref() < 256 + 128 {
        return Err(pos.err(
            c.mempool.data_room.span(),
            "mempool.data_room must be >= 384",
        ));
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
    if let Some(p) = &c.control.prometheus {
        match p.get_ref().parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => {}
            Ok(_) => {
                return Err(pos.err(
                    p.span(),
                    "control.prometheus must be a loopback address (127.0.0.1:PORT or [::1]:PORT)",
                ));
            }
            Err(_) => {
                return Err(pos.err(
                    p.span(),
                    format!(
                        "control.prometheus '{}' is not an address:port",
                        p.get_ref()
                    ),
                ));
            }
        }
    }
    if c.control.max_clients == 0 {
        warnings.push("control.max_clients = 0: the control socket accepts nobody".into());
    }
    crate::nfconf::validate(c, &|span, msg| pos.err(span, msg))?;
    if has_pci {
        warnings.push(
            "PCI ports configured: EAL gets an explicit allow-list (-a) of exactly those devices"
                .into(),
        );
    }
    Ok(warnings)
}

fn is_pci_addr(s: &str) -> bool {
    // DDDD:BB:DD.F (domain optional).
    let parts: Vec<&str> = s.split(':').collect();
    let (bus, devfn) = match parts.as_slice() {
        [d, b, df] if d.len() == 4 && d.chars().all(|c| c.is_ascii_hexdigit()) => (*b, *df),
        [b, df] => (*b, *df),
        _ => return false,
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    bus.len() == 2
        && bus.chars().all(|c| c.is_ascii_hexdigit())
        && dev.len() == 2
        && dev.chars().all(|c| c.is_ascii_hexdigit())
        && func.len() == 1
        && func.chars().all(|c| c.is_digit(8))
}

impl Config {
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports
            .iter()
            .position(|p| p.get_ref().name.get_ref() == name)
    }

    /// Lcores allowed to transmit on port `name`, in config order.
    pub fn tx_lcores(&self, name: &str) -> Vec<u32> {
        self.lcores
            .iter()
            .map(|l| l.get_ref())
            .filter(|l| match &l.tx_ports {
                // By default an lcore transmits on every port if its chain can choose an egress
                // port (xconnect, forward); a chain that only hands on to a pipeline never does.
                None => l
                    .stages
                    .get_ref()
                    .iter()
                    .any(|s| STAGES.iter().any(|(n, routes)| *routes && n == s.get_ref())),
                Some(v) => v.iter().any(|p| p.get_ref() == name),
            })
            .map(|l| *l.id.get_ref())
            .collect()
    }

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
            a.push(e.memory_mb.unwrap_or(512).to_string());
        } else if let Some(m) = e.memory_mb {
            a.push("-m".into());
            a.push(m.to_string());
        }
        if let Some(l) = &e.log_level {
            a.push(format!("--log-level={l}"));
        }
        a.extend(e.extra_args.iter().map(|s| s.get_ref().clone()));
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.control.socket, "/run/pollfwd/pollfwd.sock");
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
}
