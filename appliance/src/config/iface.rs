//! `[[interface]]`: VLAN sub-interfaces of ports (802.1Q, and QinQ with an 802.1ad outer tag).
//!
//! Interfaces are what the router's configuration names wherever it takes a port (routes,
//! neighbours, proxy ARP, NAT inside/outside, ACL `in_port`): every `[[port]]` is the
//! interface of its untagged traffic, every `[[interface]]` one more. Interface *indices*
//! count the ports first (config order), then the sub-interfaces (config order); at run time
//! a port's interface id is its DPDK port id and a sub-interface's is
//! `pollfwd_pipeline::vlan::IFACE_BASE` + its position among the sub-interfaces.

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;

use super::Config;
use super::addr::Addresses;
use super::error::{ConfigError, Pos};
use pollfwd_pipeline::vlan::{MAX_VLAN_IFACES, TPID_8021AD, TPID_8021Q};

/// One VLAN sub-interface.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Name used everywhere else in the config and in the CLI (unique among ports and
    /// interfaces).
    pub name: Spanned<String>,
    /// The parent port.
    pub port: Spanned<String>,
    /// VLAN id of its 802.1Q tag (the inner tag with `outer_vlan`), 1..=4094.
    pub vlan: Spanned<u16>,
    /// QinQ: VLAN id of the outer tag, 1..=4094.
    pub outer_vlan: Option<Spanned<u16>>,
    /// TPID of the outer tag pushed on transmit: 0x88a8 (802.1ad, default) or 0x8100. Frames
    /// received with either are accepted.
    pub outer_tpid: Option<Spanned<u16>>,
    /// Addresses and prefixes, like a port's: "192.0.2.1/24" or a list with IPv6 ones.
    pub address: Option<Spanned<Addresses>>,
    /// Egress MTU (default: the parent port's); at most the parent's configured MTU.
    pub mtu: Option<Spanned<u16>>,
    /// TCP MSS clamping for SYNs into or out of this interface (forward stage), like a port's.
    pub mss_clamp: Option<Spanned<u16>>,
    /// IPv6 router advertisements on the sub-interface, like a port's.
    pub ra: Option<Spanned<bool>>,
}

impl InterfaceConfig {
    /// The outer tag's TPID and VLAN id, for QinQ.
    pub fn outer(&self) -> Option<(u16, u16)> {
        self.outer_vlan.as_ref().map(|v| {
            (
                self.outer_tpid
                    .as_ref()
                    .map_or(TPID_8021AD, |t| *t.get_ref()),
                *v.get_ref(),
            )
        })
    }
}

/// An interface of the configuration: a port (its untagged traffic) or a sub-interface.
#[derive(Debug, Clone, Copy)]
pub struct Iface<'c> {
    pub name: &'c Spanned<String>,
    pub address: Option<&'c Spanned<Addresses>>,
    /// The configured MTU, if any (a sub-interface without one takes its parent's).
    pub mtu: Option<&'c Spanned<u16>>,
    /// The configured MSS clamp, if any (a sub-interface does not take its parent's).
    pub mss_clamp: Option<&'c Spanned<u16>>,
    /// Router advertisements, if configured.
    pub ra: Option<&'c Spanned<bool>>,
    /// Index of the port it belongs to (itself for a port).
    pub port: usize,
    /// The sub-interface's configuration; `None` for a port.
    pub vlan: Option<&'c InterfaceConfig>,
}

impl Config {
    /// Every interface by index: the ports, then the sub-interfaces.
    pub fn ifaces(&self) -> impl Iterator<Item = Iface<'_>> {
        let ports = self.ports.iter().enumerate().map(|(i, p)| {
            let p = p.get_ref();
            Iface {
                name: &p.name,
                address: p.address.as_ref(),
                mtu: p.mtu.as_ref(),
                mss_clamp: p.mss_clamp.as_ref(),
                ra: p.ra.as_ref(),
                port: i,
                vlan: None,
            }
        });
        let vlans = self.interfaces.iter().map(|v| {
            let v = v.get_ref();
            Iface {
                name: &v.name,
                address: v.address.as_ref(),
                mtu: v.mtu.as_ref(),
                mss_clamp: v.mss_clamp.as_ref(),
                ra: v.ra.as_ref(),
                port: self.port_index(v.port.get_ref()).unwrap_or(usize::MAX),
                vlan: Some(v),
            }
        });
        ports.chain(vlans)
    }

    /// The index of interface `name` (a port or a sub-interface).
    pub fn iface_index(&self, name: &str) -> Option<usize> {
        self.port_index(name).or_else(|| {
            self.interfaces
                .iter()
                .position(|v| v.get_ref().name.get_ref() == name)
                .map(|k| self.ports.len() + k)
        })
    }

    /// Number of interfaces (ports and sub-interfaces).
    pub fn iface_count(&self) -> usize {
        self.ports.len() + self.interfaces.len()
    }
}

/// Validates the sub-interfaces (after the ports): names, parents, tags, MTUs, and that no
/// lcore with an L2 chain (xconnect, macswap: they pass frames through as they are) polls a
/// port that has sub-interfaces.
pub(super) fn validate(
    c: &Config,
    pos: &Pos<'_>,
    port_idx: &HashMap<&str, usize>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if c.interfaces.len() > MAX_VLAN_IFACES {
        return Err(pos.err(
            c.interfaces[MAX_VLAN_IFACES].span(),
            format!("at most {MAX_VLAN_IFACES} [[interface]]"),
        ));
    }
    let mut names: HashMap<&str, ()> = port_idx.keys().map(|k| (*k, ())).collect();
    let mut tags: HashMap<(usize, Option<u16>, u16), &str> = HashMap::new();
    for i in &c.interfaces {
        let v = i.get_ref();
        let name = v.name.get_ref().as_str();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.')
        {
            return Err(pos.err(
                v.name.span(),
                format!("interface name '{name}': use letters, digits, '_', '-' or '.'"),
            ));
        }
        if names.insert(name, ()).is_some() {
            return Err(pos.err(
                v.name.span(),
                format!("interface '{name}': the name of another port or interface"),
            ));
        }
        let Some(&pi) = port_idx.get(v.port.get_ref().as_str()) else {
            return Err(pos.err(
                v.port.span(),
                format!(
                    "interface '{name}': unknown port '{}' (a sub-interface's parent is a [[port]])",
                    v.port.get_ref()
                ),
            ));
        };
        for (key, t) in [
            ("vlan", Some(&v.vlan)),
            ("outer_vlan", v.outer_vlan.as_ref()),
        ] {
            if let Some(t) = t
                && !(1..=4094).contains(t.get_ref())
            {
                return Err(pos.err(
                    t.span(),
                    format!(
                        "interface '{name}': {key} {} must be 1..=4094 (0 is priority tagging, 4095 reserved)",
                        t.get_ref()
                    ),
                ));
            }
        }
        if let Some(t) = &v.outer_tpid {
            if v.outer_vlan.is_none() {
                return Err(pos.err(
                    t.span(),
                    format!("interface '{name}': outer_tpid without outer_vlan"),
                ));
            }
            if ![TPID_8021AD, TPID_8021Q].contains(t.get_ref()) {
                return Err(pos.err(
                    t.span(),
                    format!(
                        "interface '{name}': outer_tpid {:#06x} must be 0x88a8 (802.1ad) or 0x8100",
                        t.get_ref()
                    ),
                ));
            }
        }
        let key = (
            pi,
            v.outer_vlan.as_ref().map(|o| *o.get_ref()),
            *v.vlan.get_ref(),
        );
        if let Some(other) = tags.insert(key, name) {
            return Err(pos.err(
                v.vlan.span(),
                format!(
                    "interface '{name}': port '{}' already has these tags (interface '{other}')",
                    v.port.get_ref()
                ),
            ));
        }
        if let Some(m) = &v.mtu {
            let parent = c.ports[pi].get_ref().mtu.as_ref().map(|m| *m.get_ref());
            let room = *c.mempool.data_room.get_ref() as u32;
            let max = parent.map_or(room.saturating_sub(146), u32::from);
            if (*m.get_ref() as u32) < 68 || *m.get_ref() as u32 > max {
                return Err(pos.err(
                    m.span(),
                    format!(
                        "interface '{name}': mtu {} must be 68..={max} (at most the parent port's mtu)",
                        m.get_ref()
                    ),
                ));
            }
        }
        if let Some(m) = &v.mss_clamp {
            let mtu = v
                .mtu
                .as_ref()
                .or(c.ports[pi].get_ref().mtu.as_ref())
                .map(|m| *m.get_ref());
            super::port::check_mss_clamp(&format!("interface '{name}'"), m, mtu, pos, warnings)?;
        }
        // Lcores whose chain passes frames through untouched cannot poll a trunk.
        for l in &c.lcores {
            let l = l.get_ref();
            let polls = l.rx.iter().any(|r| r.get_ref().port == *v.port.get_ref());
            let l2 = l
                .stages
                .get_ref()
                .iter()
                .find(|s| matches!(s.get_ref().as_str(), "xconnect" | "macswap"));
            if let (true, Some(s)) = (polls, l2) {
                return Err(pos.err(
                    s.span(),
                    format!(
                        "lcore {}: '{}' passes frames through as they are and cannot poll port '{}', which has VLAN sub-interfaces (interface '{name}')",
                        l.id.get_ref(),
                        s.get_ref(),
                        v.port.get_ref()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::registry::parse;

    const BASE: &str = r#"
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=/tmp/in.pcap"
mtu = 1500

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=/tmp/in.pcap"

[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["forward"]
"#;

    fn refused(extra: &str, needle: &str) -> String {
        let text = format!("{BASE}{extra}");
        let e = parse("t.toml", &text).expect_err("config should be refused");
        let at = text.find(needle).unwrap_or_else(|| panic!("{needle}"));
        let line = text[..at].matches('\n').count() + 1;
        assert_eq!(e.line, line, "{e}");
        e.msg
    }

    #[test]
    fn sub_interfaces_are_named_like_ports_everywhere() {
        let text = format!(
            "{BASE}{}",
            r#"
[[interface]]
name = "p0.10"
port = "p0"
vlan = 10
address = "10.10.0.1/24"
mtu = 1400

[[interface]]
name = "p0.100.30"
port = "p0"
outer_vlan = 100
vlan = 30

[forward]
routes = [{ prefix = "192.0.2.0/24", via = "10.10.0.9" }]
neighbors = [{ address = "10.10.0.9", mac = "02:00:00:00:00:09", port = "p0.10" }]
"#
        );
        let (c, _) = parse("t.toml", &text).unwrap();
        assert_eq!(c.iface_index("p1"), Some(1));
        assert_eq!(c.iface_index("p0.10"), Some(2));
        assert_eq!(c.iface_index("p0.100.30"), Some(3));
        assert_eq!(c.iface_count(), 4);
        let v = c.ifaces().nth(3).unwrap();
        assert_eq!((v.port, v.vlan.unwrap().outer()), (0, Some((0x88a8, 100))));
    }

    #[test]
    fn bad_sub_interfaces_are_refused_at_their_key() {
        let m = refused(
            "[[interface]]\nname = \"v\"\nport = \"p9\"\nvlan = 10\n",
            "port = \"p9\"",
        );
        assert!(m.contains("unknown port 'p9'"), "{m}");
        let m = refused(
            "[[interface]]\nname = \"v\"\nport = \"p0\"\nvlan = 4095\n",
            "vlan = 4095",
        );
        assert!(m.contains("1..=4094"), "{m}");
        let m = refused(
            "[[interface]]\nname = \"p1\"\nport = \"p0\"\nvlan = 10\n",
            "name = \"p1\"\nport",
        );
        assert!(m.contains("another port or interface"), "{m}");
        let m = refused(
            "[[interface]]\nname = \"a\"\nport = \"p0\"\nvlan = 10\n[[interface]]\nname = \"b\"\nport = \"p0\"\nvlan = 10 # b\n",
            "vlan = 10 # b",
        );
        assert!(m.contains("already has these tags (interface 'a')"), "{m}");
        let m = refused(
            "[[interface]]\nname = \"a\"\nport = \"p0\"\nvlan = 10\nmtu = 1600\n",
            "mtu = 1600",
        );
        assert!(m.contains("at most the parent port's mtu"), "{m}");
        let m = refused(
            "[[interface]]\nname = \"a\"\nport = \"p0\"\nvlan = 10\nouter_tpid = 0x9100\nouter_vlan = 5\n",
            "outer_tpid",
        );
        assert!(m.contains("0x88a8"), "{m}");
        let m = refused(
            "[[interface]]\nname = \"a\"\nport = \"p0\"\nvlan = 10\naddress = \"10.0.0.300/24\"\n",
            "address = \"10.0.0.300",
        );
        assert!(m.contains("interface 'a': address"), "{m}");
        let m = refused(
            "[[interface]]\nname = \"a\"\nport = \"p0\"\nvlan = 10\n[forward]\nroutes = [{ prefix = \"192.0.2.0/24\", port = \"b\" }]\n",
            "routes",
        );
        assert!(m.contains("unknown port or interface 'b'"), "{m}");
    }

    #[test]
    fn an_l2_chain_cannot_poll_a_trunk() {
        let text = r#"
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=/tmp/in.pcap"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=/tmp/in.pcap"

[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["xconnect"]

[xconnect]
pairs = [["p0", "p1"]]

[[interface]]
name = "v"
port = "p0"
vlan = 10
"#;
        let e = parse("t.toml", text).unwrap_err();
        assert!(e.msg.contains("cannot poll port 'p0'"), "{e}");
        assert_eq!(e.line, 13, "{e}");
    }
}
