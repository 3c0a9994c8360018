//! The punt path's Linux side (docs/punt.md): one TAP interface per pollfwd interface that has
//! an address, created with DPDK's `net_tap` (its ethdev port is where the forward stage
//! punts and where workers read what the kernel sends), named `<prefix><interface name>`,
//! with the interface's MAC and MTU, link up, and the interface's addresses (set over
//! rtnetlink, `netlink-packet-route`).
//!
//! The kernel side must not answer what the data plane answers: the data plane answers ARP
//! requests and neighbour solicitations for the box's addresses and never punts them, so the
//! kernel only sees the replies and advertisements to the requests it sent itself. IPv6
//! addresses are added with `IFA_F_NODAD` (the data plane owns them; a duplicate address
//! detection probe would only delay them) and `accept_dad`, `accept_ra` and
//! `router_solicitations` are off on the TAP; `arp_ignore = 1`, `arp_announce = 2` keep the
//! kernel from answering for or announcing addresses of its other interfaces there.

use std::net::IpAddr;

use dpdk::Port;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::state::State;

/// The Linux name of the punt interface of pollfwd interface `iface` (`<prefix><iface>`).
/// Stable: routes the kernel holds through it name the pollfwd interface (see
/// [`iface_of_tap`]).
pub fn tap_name(prefix: &str, iface: &str) -> String {
    format!("{prefix}{iface}")
}

/// The pollfwd interface whose punt interface is the Linux interface `tap` (None: not one of
/// them, or punt is off). For readers of the kernel's routes (a route out of `pf-p0` is a
/// route out of `p0`).
pub fn iface_of_tap<'c>(c: &'c Config, tap: &str) -> Option<&'c str> {
    if !c.punt.enable {
        return None;
    }
    let name = tap.strip_prefix(c.punt.prefix.get_ref().as_str())?;
    c.ifaces()
        .find(|i| i.address.is_some() && i.name.get_ref() == name)
        .map(|i| i.name.get_ref().as_str())
}

/// One punt interface at run time.
#[derive(Debug)]
pub struct PuntRt {
    /// The pollfwd interface (port or sub-interface), its name and id.
    pub iface: String,
    pub iface_id: u16,
    /// The Linux interface's name.
    pub tap: String,
    /// The DPDK device (`net_tap<k>`) and its port.
    pub device: String,
    pub port: Port,
}

/// An interface that gets a punt interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Its interface index (`Config::iface_index`) and name.
    pub index: usize,
    pub name: String,
    /// Its addresses and prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
}

/// The interfaces that get a punt interface, with their addresses (by interface index).
pub fn wanted(c: &Config) -> Vec<Wanted> {
    if !c.punt.enable {
        return Vec::new();
    }
    c.ifaces()
        .enumerate()
        .filter_map(|(k, i)| {
            let a = i.address?.get_ref();
            let addrs =
                a.0.iter()
                    .filter_map(|s| {
                        let (ip, len) = s.split_once('/')?;
                        Some((ip.parse().ok()?, len.parse().ok()?))
                    })
                    .collect();
            Some(Wanted {
                index: k,
                name: i.name.get_ref().clone(),
                addrs,
            })
        })
        .collect()
}

/// Creates the TAP device for an interface: `net_tap<k>` with the interface's Linux name and
/// MAC. Returns the device name and its port.
pub fn create_tap(k: usize, tap: &str, mac: [u8; 6]) -> Result<(String, Port), String> {
    let device = format!("net_tap{k}");
    let m = mac.map(|b| format!("{b:02x}")).join(":");
    dpdk::vdev::create(&device, &format!("iface={tap},mac={m}")).map_err(|e| e.to_string())?;
    let port = Port::by_name(&device).map_err(|e| e.to_string())?;
    Ok((device, port))
}

/// The kernel side of a TAP once its port is started (link up): the sysctls above, then the
/// addresses.
pub fn configure_kernel(tap: &str, addrs: &[(IpAddr, u8)]) -> Result<(), String> {
    for (path, v) in [
        (format!("/proc/sys/net/ipv4/conf/{tap}/arp_ignore"), "1"),
        (format!("/proc/sys/net/ipv4/conf/{tap}/arp_announce"), "2"),
        (format!("/proc/sys/net/ipv6/conf/{tap}/accept_dad"), "0"),
        (format!("/proc/sys/net/ipv6/conf/{tap}/accept_ra"), "0"),
        (
            format!("/proc/sys/net/ipv6/conf/{tap}/router_solicitations"),
            "0",
        ),
        // Last: IPv6 on (a host whose default is off) once nothing would probe or solicit.
        (
            format!("/proc/sys/net/ipv6/conf/{tap}/disable_ipv6"),
            if addrs.iter().any(|a| a.0.is_ipv6()) {
                "0"
            } else {
                "1"
            },
        ),
    ] {
        // IPv6 may be disabled on the host: then its files are absent, which is fine.
        if std::path::Path::new(&path).exists() {
            std::fs::write(&path, v).map_err(|e| format!("{path}: {e}"))?;
        }
    }
    let index = ifindex(tap)?;
    let mut nl = Socket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
    nl.bind_auto().map_err(|e| format!("netlink bind: {e}"))?;
    nl.connect(&SocketAddr::new(0, 0))
        .map_err(|e| format!("netlink connect: {e}"))?;
    for (seq, &(ip, len)) in addrs.iter().enumerate() {
        add_address(&nl, seq as u32 + 1, index, ip, len)
            .map_err(|e| format!("{tap}: address {ip}/{len}: {e}"))?;
    }
    Ok(())
}

/// The kernel's index of interface `name`.
fn ifindex(name: &str) -> Result<u32, String> {
    let path = format!("/sys/class/net/{name}/ifindex");
    std::fs::read_to_string(&path)
        .map_err(|e| format!("{path}: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("{path}: {e}"))
}

/// RTM_NEWADDR for `ip/len` on interface `index` (replacing an equal one), waiting for the
/// kernel's acknowledgement.
fn add_address(nl: &Socket, seq: u32, index: u32, ip: IpAddr, len: u8) -> Result<(), String> {
    let mut msg = AddressMessage::default();
    msg.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = len;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(ip));
    msg.attributes.push(AddressAttribute::Address(ip));
    if ip.is_ipv6() {
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    header.sequence_number = seq;
    let mut req = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::NewAddress(msg)),
    );
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    nl.send(&buf, 0).map_err(|e| format!("netlink send: {e}"))?;
    let mut rx = vec![0u8; 8192];
    loop {
        let n = nl
            .recv(&mut &mut rx[..], 0)
            .map_err(|e| format!("netlink recv: {e}"))?;
        let mut off = 0;
        while off < n {
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[off..n])
                .map_err(|e| format!("netlink reply: {e}"))?;
            let len = m.header.length as usize;
            if m.header.sequence_number == seq
                && let NetlinkPayload::Error(e) = m.payload
            {
                return match e.code {
                    None => Ok(()),
                    Some(c) => Err(std::io::Error::from_raw_os_error(-c.get()).to_string()),
                };
            }
            if len == 0 {
                break;
            }
            off += len;
        }
    }
}

/// The punt counters of the forward stage, summed over the workers: punted,
/// punt_rate_limited, punt_failed (all zero when no worker runs the stage).
pub fn stage_totals(s: &State) -> [(&'static str, u64); 3] {
    let mut t = [("punted", 0), ("punt_rate_limited", 0), ("punt_failed", 0)];
    let cp = s.control.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((shared, _)) = cp.forward.init.as_ref() {
        for (_, w) in shared.punt_stats() {
            for (k, (_, v)) in w.values().into_iter().enumerate() {
                t[k].1 += v;
            }
        }
    }
    t
}

/// The `punt` object of `stats`: whether it is on, the rate, the forward stage's counters
/// (punted, punt_rate_limited, punt_failed), `injected` (frames the kernel sent, from the
/// workers), and each punt interface with its TAP port's counters.
pub fn punt_json(s: &State) -> Value {
    let pc = &s.config.config.punt;
    let mut o = Map::new();
    o.insert("enable".into(), json!(pc.enable));
    o.insert("rate_pps".into(), json!(pc.rate_pps.get_ref()));
    o.insert("burst".into(), json!(pc.burst.get_ref()));
    for (k, v) in stage_totals(s) {
        o.insert(k.into(), json!(v));
    }
    let injected: u64 = s.lcores.iter().map(|l| l.counters.injected.get()).sum();
    o.insert("injected".into(), json!(injected));
    let list: Vec<Value> = s.punt.iter().map(tap_json).collect();
    o.insert("interfaces".into(), json!(list));
    Value::Object(o)
}

/// One punt interface: its names and its TAP port's counters (`to_kernel`: frames punted
/// and written to the TAP; `from_kernel`: frames the kernel sent, read by the workers).
fn tap_json(p: &PuntRt) -> Value {
    let st = p.port.stats();
    json!({
        "interface": p.iface, "tap": p.tap, "device": p.device, "port": p.port.id(),
        "to_kernel_packets": st.opackets, "to_kernel_bytes": st.obytes,
        "from_kernel_packets": st.ipackets, "from_kernel_bytes": st.ibytes,
        "to_kernel_errors": st.oerrors,
    })
}

/// The `punt` field of interface `id` in `interfaces`: its punt interface, or null.
pub fn iface_json(s: &State, id: u16) -> Value {
    s.punt
        .iter()
        .find(|p| p.iface_id == id)
        .map_or(Value::Null, tap_json)
}

/// Prometheus families of the punt path (empty when it is off).
pub fn metrics(s: &State) -> String {
    use std::fmt::Write as _;
    if s.punt.is_empty() {
        return String::new();
    }
    let mut o = String::new();
    for (k, v) in stage_totals(s) {
        let _ = writeln!(
            o,
            "# HELP pollfwd_punt_{k}_total Punt path: {} (all workers).\n# TYPE pollfwd_punt_{k}_total counter\npollfwd_punt_{k}_total {v}",
            k.replace('_', " ")
        );
    }
    let injected: u64 = s.lcores.iter().map(|l| l.counters.injected.get()).sum();
    let _ = writeln!(
        o,
        "# HELP pollfwd_punt_injected_total Punt path: frames the kernel sent out of a wire interface.\n# TYPE pollfwd_punt_injected_total counter\npollfwd_punt_injected_total {injected}"
    );
    let _ = writeln!(
        o,
        "# HELP pollfwd_punt_tap_packets_total Frames through a punt interface, by direction.\n# TYPE pollfwd_punt_tap_packets_total counter"
    );
    for p in &s.punt {
        let st = p.port.stats();
        let _ = writeln!(
            o,
            "pollfwd_punt_tap_packets_total{{interface=\"{}\",tap=\"{}\",direction=\"to_kernel\"}} {}\n\
             pollfwd_punt_tap_packets_total{{interface=\"{}\",tap=\"{}\",direction=\"from_kernel\"}} {}",
            p.iface, p.tap, st.opackets, p.iface, p.tap, st.ipackets
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_map_back_to_interfaces() {
        let text = r#"
[[port]]
name = "p0"
device = "net_null0"
address = ["192.0.2.1/24", "2001:db8::1/64"]
[[port]]
name = "p1"
device = "net_null1"
[[interface]]
name = "v10"
port = "p0"
vlan = 10
address = "198.51.100.1/24"
[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["forward"]
[punt]
enable = true
"#;
        let (c, _) = crate::config::parse_core("t.toml", text).unwrap();
        assert_eq!(tap_name("pf-", "p0"), "pf-p0");
        assert_eq!(iface_of_tap(&c, "pf-p0"), Some("p0"));
        assert_eq!(iface_of_tap(&c, "pf-v10"), Some("v10"));
        // No address, no punt interface.
        assert_eq!(iface_of_tap(&c, "pf-p1"), None);
        assert_eq!(iface_of_tap(&c, "eth0"), None);
        let w = wanted(&c);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].name, "p0");
        assert_eq!(w[0].addrs.len(), 2);
        assert_eq!(w[1].index, 2);
    }

    #[test]
    fn long_tap_names_refused_with_position() {
        let text = "[[port]]\nname = \"outside-long0\"\ndevice = \"net_null0\"\naddress = \"192.0.2.1/24\"\n[[lcore]]\nid = 1\nrx = [{ port = \"outside-long0\" }]\nstages = [\"forward\"]\n[punt]\nenable = true\n";
        let e = crate::config::parse_core("t.toml", text).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("t.toml:2:8:"), "{s}");
        assert!(s.contains("'pf-outside-long0' is 16 bytes"), "{s}");
        // Off: no limit.
        let off = text.replace("enable = true", "enable = false");
        assert!(crate::config::parse_core("t.toml", &off).is_ok());
    }
}
