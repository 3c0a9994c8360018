//! `[[port]]`: virtual or PCI devices, their queues, MTU, address and MSS clamp.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use toml::Spanned;

use super::Config;
use super::addr::Addresses;
use super::eal::d_true;
use super::error::{ConfigError, Pos};

fn d_one() -> u16 {
    1
}
fn d_desc() -> Spanned<u16> {
    Spanned::new(0..0, 1024)
}

/// Descriptors per queue accepted by the config (DPDK then adjusts them to the device's
/// limits and alignment).
pub const DESC_RANGE: std::ops::RangeInclusive<u16> = 32..=32768;

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
    pub rx_desc: Spanned<u16>,
    #[serde(default = "d_desc")]
    pub tx_desc: Spanned<u16>,
    pub mtu: Option<Spanned<u16>>,
    #[serde(default = "d_true")]
    pub promiscuous: bool,
    /// Addresses and prefixes of the interface (forward stage): "192.0.2.1/24", or a list
    /// with IPv6 ones, ["192.0.2.1/24", "2001:db8:1::1/64"].
    pub address: Option<Spanned<Addresses>>,
    /// With VLAN sub-interfaces: let the device strip 802.1Q tags on receive and insert them
    /// on transmit where it can (else the runtime does it in software).
    #[serde(default = "d_true")]
    pub vlan_offload: bool,
    /// TCP MSS clamping (forward stage): SYNs and SYN-ACKs entering or leaving through the
    /// port carry an MSS option of at most this value ([`MSS_CLAMP_RANGE`]).
    pub mss_clamp: Option<Spanned<u16>>,
    /// IPv6 router advertisements on the interface (forward stage, RFC 4861 6.2): its
    /// prefixes, MTU and the box as default router, periodically and when solicited.
    pub ra: Option<Spanned<bool>>,
}

/// Values `mss_clamp` accepts: from the smallest MSS every IPv4 host must accept (RFC 9293
/// 3.7.1: 576 - 40) to the largest an IPv4 datagram can carry (65535 - 40).
pub const MSS_CLAMP_RANGE: std::ops::RangeInclusive<u16> = 536..=65495;

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

/// Validates every port; returns the index of each port by name.
pub(super) fn validate<'c>(
    c: &'c Config,
    pos: &Pos<'_>,
    warnings: &mut Vec<String>,
) -> Result<HashMap<&'c str, usize>, ConfigError> {
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
        for (key, d) in [("rx_desc", &pr.rx_desc), ("tx_desc", &pr.tx_desc)] {
            if !DESC_RANGE.contains(d.get_ref()) {
                return Err(pos.err(
                    d.span(),
                    format!(
                        "port '{name}': {key} {} must be {}..={}",
                        d.get_ref(),
                        DESC_RANGE.start(),
                        DESC_RANGE.end()
                    ),
                ));
            }
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
                    format!(
                        "port '{name}': mtu {} must be 68..={} (mempool data_room {room} minus 128 headroom and 18 header); a jumbo MTU needs mempool.data_room >= mtu + 146 (e.g. 9216 for 9000)",
                        m.get_ref(),
                        room.saturating_sub(146)
                    ),
                ));
            }
        }
        if let Some(m) = &pr.mss_clamp {
            let mtu = pr.mtu.as_ref().map(|m| *m.get_ref());
            check_mss_clamp(&format!("port '{name}'"), m, mtu, pos, warnings)?;
        }
    }
    if c.ports.iter().any(|p| p.get_ref().pci.is_some()) {
        warnings.push(
            "PCI ports configured: EAL gets an explicit allow-list (-a) of exactly those devices"
                .into(),
        );
    }
    Ok(port_idx)
}

/// Checks an `mss_clamp` of `what` (e.g. "port 'wan'") against [`MSS_CLAMP_RANGE`]; warns
/// when it is above what the interface's configured `mtu` carries.
pub(super) fn check_mss_clamp(
    what: &str,
    m: &Spanned<u16>,
    mtu: Option<u16>,
    pos: &Pos<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let v = *m.get_ref();
    if !MSS_CLAMP_RANGE.contains(&v) {
        return Err(pos.err(
            m.span(),
            format!(
                "{what}: mss_clamp {v} must be {}..={} (bytes of TCP payload per segment; e.g. 1360 for a 1400-byte path)",
                MSS_CLAMP_RANGE.start(),
                MSS_CLAMP_RANGE.end()
            ),
        ));
    }
    if let Some(mtu) = mtu
        && v as u32 + 40 > mtu as u32
    {
        warnings.push(
            pos.err(
                m.span(),
                format!(
                    "{what}: mss_clamp {v} is more than mtu {mtu} carries ({} bytes of TCP payload): SYNs through it may still announce segments too big for it",
                    mtu.saturating_sub(40)
                ),
            )
            .to_string(),
        );
    }
    Ok(())
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
}
