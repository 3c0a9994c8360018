//! Routing of both families: routes, neighbours, proxy ARP, ICMP (section [forward]), plus
//! the `address` of each `[[port]]` and `[[interface]]` (its connected routes).
//!
//! ```toml
//! [[port]]
//! name = "lan"
//! device = "net_pcap0,..."
//! address = ["192.0.2.1/24", "2001:db8:1::1/64"] # connected routes; one string is fine too
//! mss_clamp = 1360                     # TCP SYNs in or out of this port: MSS at most 1360
//!
//! [forward]
//! routes = [
//!   { prefix = "198.51.100.0/24", via = "192.0.2.2" },          # port found from the gateway
//!   { prefix = "0.0.0.0/0", via = "203.0.113.1", port = "wan" }, # both given
//!   { prefix = "10.9.0.0/16", port = "lan" },                    # on-link: ARP for each host
//!   { prefix = "2001:db8:99::/48", via = "2001:db8:1::2" },      # IPv6: same rules
//!   { prefix = "::/0", via = "fe80::1", port = "wan" },          # link-local gateway + port
//!   { prefix = "203.0.113.0/24", via = ["192.0.2.2", "192.0.2.3"] }, # ECMP: up to 16
//! ]
//! ecmp_hash = "5-tuple"     # or "symmetric": both directions of a flow take one next hop
//! neighbors = [{ address = "192.0.2.2", mac = "02:00:00:00:00:02", port = "lan" }]
//! proxy_arp = [{ prefix = "203.0.113.16/28", port = "wan" }]     # port optional: every port
//! arp_timeout_s = 300       # a learnt neighbour is used this long after its last answer
//! arp_retry_ms = 1000       # one ARP request per neighbour per interval
//! arp_retries = 3           # unanswered requests before the neighbour fails
//! arp_queue = 64            # packets each worker parks while ARP resolves
//! icmp_errors_per_s = 100   # ICMP errors per second, all workers together (0 = none)
//! icmp_burst = 10
//! arp_requests_per_s = 1000 # broadcast ARP requests per second, all workers together
//! neighbor_capacity = 4096
//! ```
//!
//! The ARP settings apply to IPv6 neighbour discovery alike (RFC 4861's timers: reachable
//! time = `arp_timeout_s`, retransmission = `arp_retry_ms`, solicitations = `arp_retries`).
//! The route syntax is shared with the `route.add` operation ([`RouteText`]).

use std::collections::BTreeMap;
use std::ops::Range;

use pollfwd_nf::forward::ecmp::MAX_PATHS;
use pollfwd_nf::forward::table::{self, Iface, Prefix, StaticRoute};
use pollfwd_nf::forward::table6::{self, Prefix6, StaticRoute6};
use pollfwd_nf::forward::{FwdParams, ProxyArp, StaticNeighbor, StaticNeighbor6};
use toml::Spanned;

use crate::config::{Config, ConfigError, ErrAt};

/// Most static routes a configuration may hold.
pub const MAX_ROUTES: usize = 1_000_000;

pub use super::section::*;

/// A route as text (config or the `route.add` operation): parsed against port names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteText<'a> {
    pub prefix: &'a str,
    pub via: Option<&'a str>,
    pub port: Option<&'a str>,
}

/// Which field of a route text an error is about (for positions in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Prefix,
    Via,
    Port,
    Route,
}

/// A static route of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    V4(StaticRoute),
    V6(StaticRoute6),
}

impl Route {
    /// The prefix as text.
    pub fn prefix_text(&self) -> String {
        match self {
            Route::V4(r) => r.prefix.to_string(),
            Route::V6(r) => r.prefix.to_string(),
        }
    }

    /// The egress interface, if given.
    pub fn port(&self) -> Option<u16> {
        match self {
            Route::V4(r) => r.port,
            Route::V6(r) => r.port,
        }
    }

    /// The same route out of `port`.
    pub fn with_port(self, port: Option<u16>) -> Route {
        match self {
            Route::V4(r) => Route::V4(StaticRoute { port, ..r }),
            Route::V6(r) => Route::V6(StaticRoute6 { port, ..r }),
        }
    }
}

impl RouteText<'_> {
    /// Parses the texts into a route over interface *indices* (`Config::iface_index`). The
    /// prefix's family (':' makes it IPv6) is the route's; the gateway must be of the same.
    pub fn parse(&self, c: &Config) -> Result<Route, (Field, String)> {
        let port = match self.port {
            None => None,
            Some(p) => Some(
                c.iface_index(p)
                    .ok_or_else(|| (Field::Port, format!("unknown port or interface '{p}'")))?
                    as u16,
            ),
        };
        if self.via.is_none() && port.is_none() {
            return Err((
                Field::Route,
                format!(
                    "route {}: give `via` (a gateway), `port`, or both",
                    self.prefix.trim()
                ),
            ));
        }
        if self.prefix.contains(':') {
            let prefix = Prefix6::parse(self.prefix).map_err(|e| (Field::Prefix, e))?;
            let via = match self.via {
                None => None,
                Some(v) => {
                    let a: std::net::Ipv6Addr = v
                        .trim()
                        .parse()
                        .map_err(|_| (Field::Via, format!("via '{v}' is not an IPv6 address")))?;
                    Some(u128::from(a))
                }
            };
            return Ok(Route::V6(StaticRoute6 { prefix, via, port }));
        }
        let prefix = Prefix::parse(self.prefix).map_err(|e| (Field::Prefix, e))?;
        let via = match self.via {
            None => None,
            Some(v) => {
                let a: std::net::Ipv4Addr = v
                    .trim()
                    .parse()
                    .map_err(|_| (Field::Via, format!("via '{v}' is not an IPv4 address")))?;
                Some(u32::from(a))
            }
        };
        Ok(Route::V4(StaticRoute { prefix, via, port }))
    }
}

/// What the running appliance knows of its interfaces, by interface index: ids, MACs, MTUs.
pub type PortFacts<'a> = (&'a [u16], &'a [[u8; 6]], &'a [u16]);

/// The router's interfaces (ports and VLAN sub-interfaces) with interface *indices* as ids,
/// no MACs and the configured MTUs (a sub-interface without one: its port's; else 1500): what
/// validation can know before EAL starts. `ids`/`macs`/`mtus` give the real ones at run time.
pub fn ifaces(c: &Config, ids: Option<PortFacts<'_>>) -> Vec<Iface> {
    let cfg_mtu = |m: Option<&Spanned<u16>>| m.map(|m| *m.get_ref());
    c.ifaces()
        .enumerate()
        .map(|(i, f)| {
            let parent_mtu = c
                .ports
                .get(f.port)
                .and_then(|p| cfg_mtu(p.get_ref().mtu.as_ref()));
            Iface {
                port: ids.map(|(id, _, _)| id[i]).unwrap_or(i as u16),
                name: f.name.get_ref().clone(),
                mac: ids.map(|(_, m, _)| m[i]).unwrap_or_default(),
                mtu: ids
                    .map(|(_, _, m)| m[i])
                    .unwrap_or_else(|| cfg_mtu(f.mtu).or(parent_mtu).unwrap_or(table::DEFAULT_MTU)),
                addr: f
                    .address
                    .and_then(|a| a.get_ref().v4().next())
                    .and_then(|a| table::parse_if_addr(a).ok()),
                addr6: f
                    .address
                    .map(|a| {
                        a.get_ref()
                            .v6()
                            .filter_map(|a| table6::parse_if_addr6(a).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
                mss_clamp: f.mss_clamp.map(|m| *m.get_ref()),
                ra: f.ra.is_some_and(|r| *r.get_ref()),
            }
        })
        .collect()
}

/// The tunables, defaults filled in.
pub fn params(c: &Config) -> FwdParams {
    let d = FwdParams::default();
    let Some(f) = c.forward.as_ref().map(|f| f.get_ref()) else {
        return d;
    };
    let v = |o: &Option<Spanned<u64>>, d: u64| o.as_ref().map(|s| *s.get_ref()).unwrap_or(d);
    FwdParams {
        arp_timeout_s: v(&f.arp_timeout_s, d.arp_timeout_s),
        arp_retry_ms: v(&f.arp_retry_ms, d.arp_retry_ms),
        arp_retries: f
            .arp_retries
            .as_ref()
            .map(|s| *s.get_ref())
            .unwrap_or(d.arp_retries),
        arp_queue: f
            .arp_queue
            .as_ref()
            .map(|s| *s.get_ref())
            .unwrap_or(d.arp_queue),
        icmp_errors_per_s: f
            .icmp_errors_per_s
            .as_ref()
            .map(|s| *s.get_ref())
            .unwrap_or(d.icmp_errors_per_s),
        icmp_burst: f
            .icmp_burst
            .as_ref()
            .map(|s| *s.get_ref())
            .unwrap_or(d.icmp_burst),
        arp_requests_per_s: f
            .arp_requests_per_s
            .as_ref()
            .map(|s| *s.get_ref())
            .unwrap_or(d.arp_requests_per_s),
        neighbor_capacity: f
            .neighbor_capacity
            .as_ref()
            .map(|s| *s.get_ref())
            .unwrap_or(d.neighbor_capacity),
        ecmp_symmetric: f
            .ecmp_hash
            .as_ref()
            .is_some_and(|h| h.get_ref() == "symmetric"),
    }
}

/// Static IPv4 routes over port indices (validated config: cannot fail).
pub fn static_routes(c: &Config) -> Vec<StaticRoute> {
    all_static_routes(c)
        .filter_map(|r| match r {
            Route::V4(r) => Some(r),
            Route::V6(_) => None,
        })
        .collect()
}

/// Static IPv6 routes over port indices (validated config: cannot fail).
pub fn static_routes6(c: &Config) -> Vec<StaticRoute6> {
    all_static_routes(c)
        .filter_map(|r| match r {
            Route::V6(r) => Some(r),
            Route::V4(_) => None,
        })
        .collect()
}

fn all_static_routes(c: &Config) -> impl Iterator<Item = Route> + '_ {
    c.forward
        .as_ref()
        .map(|f| f.get_ref().routes.as_slice())
        .unwrap_or_default()
        .iter()
        .flat_map(|r| route_texts(r.get_ref()))
        .filter_map(|t| t.parse(c).ok())
}

/// The route texts of a configured route: one per gateway (several: ECMP), or one without.
fn route_texts(r: &RouteConfig) -> Vec<RouteText<'_>> {
    let text = |via| RouteText {
        prefix: r.prefix.get_ref(),
        via,
        port: r.port.as_ref().map(|v| v.get_ref().as_str()),
    };
    match &r.via {
        None => vec![text(None)],
        Some(v) => v
            .get_ref()
            .0
            .iter()
            .map(|g| text(Some(g.as_str())))
            .collect(),
    }
}

/// Static IPv4 neighbours over port indices.
pub fn neighbors(c: &Config) -> Vec<StaticNeighbor> {
    neighbor_configs(c)
        .filter_map(|(ip, mac, port)| {
            Some(StaticNeighbor {
                ip: u32::from(ip.parse::<std::net::Ipv4Addr>().ok()?),
                mac,
                port,
            })
        })
        .collect()
}

/// Static IPv6 neighbours over port indices.
pub fn neighbors6(c: &Config) -> Vec<StaticNeighbor6> {
    neighbor_configs(c)
        .filter_map(|(ip, mac, port)| {
            Some(StaticNeighbor6 {
                ip: u128::from(ip.parse::<std::net::Ipv6Addr>().ok()?),
                mac,
                port,
            })
        })
        .collect()
}

/// (address text, MAC, port index) of every well-formed static neighbour.
fn neighbor_configs(c: &Config) -> impl Iterator<Item = (&str, [u8; 6], u16)> + '_ {
    c.forward
        .as_ref()
        .map(|f| f.get_ref().neighbors.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|n| {
            let n = n.get_ref();
            Some((
                n.address.get_ref().trim(),
                table::parse_mac(n.mac.get_ref()).ok()?,
                c.iface_index(n.port.get_ref())? as u16,
            ))
        })
}

/// Proxy ARP ranges over port indices: the configured ones (`[forward] proxy_arp`), plus the
/// NAT's pool and static outside addresses of the configuration on its outside ports (so
/// replies to translated traffic find the box).
pub fn proxy_arp(c: &Config) -> Vec<ProxyArp> {
    let nat: Vec<u32> = crate::nf::nat::config::nat_outside_addresses(c)
        .into_iter()
        .map(u32::from)
        .collect();
    let mut v = configured_proxy_arp(c);
    v.extend(nat_proxy_arp(c, &nat));
    v
}

/// The `[forward] proxy_arp` ranges alone, over port indices.
pub fn configured_proxy_arp(c: &Config) -> Vec<ProxyArp> {
    let Some(f) = c.forward.as_ref().map(|f| f.get_ref()) else {
        return Vec::new();
    };
    f.proxy_arp
        .iter()
        .filter_map(|x| {
            let x = x.get_ref();
            Some(ProxyArp {
                prefix: Prefix::parse(x.prefix.get_ref()).ok()?,
                port: match &x.port {
                    None => None,
                    Some(p) => Some(c.iface_index(p.get_ref())? as u16),
                },
            })
        })
        .collect()
}

/// Proxy ARP entries for NAT outside addresses `addrs`: each address as a /32 on every NAT
/// outside port (port indices). Empty without a `[nat]` section.
pub fn nat_proxy_arp(c: &Config, addrs: &[u32]) -> Vec<ProxyArp> {
    let Some(n) = c.nat.as_ref().map(|n| n.get_ref()) else {
        return Vec::new();
    };
    let ports: Vec<u16> = n
        .outside
        .get_ref()
        .iter()
        .filter_map(|p| c.iface_index(p.get_ref()).map(|i| i as u16))
        .collect();
    let mut v = Vec::new();
    for &a in addrs {
        for &port in &ports {
            v.push(ProxyArp {
                prefix: Prefix { addr: a, len: 32 },
                port: Some(port),
            });
        }
    }
    v
}

fn range_check<T: PartialOrd + Copy + std::fmt::Display>(
    v: &Option<Spanned<T>>,
    lo: T,
    hi: T,
    what: &str,
    err: ErrAt<'_>,
) -> Result<(), ConfigError> {
    if let Some(s) = v
        && (*s.get_ref() < lo || *s.get_ref() > hi)
    {
        return Err(err(
            s.span(),
            format!("forward.{what} {} must be {lo}..={hi}", s.get_ref()),
        ));
    }
    Ok(())
}

pub fn validate(c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
    // Interface addresses (every port and sub-interface, whether or not a forward stage
    // runs).
    for p in c.ifaces() {
        if let (Some(r), None) = (p.ra, p.address)
            && *r.get_ref()
        {
            return Err(err(
                r.span(),
                format!(
                    "interface '{}': ra = true needs an IPv6 address to advertise",
                    p.name.get_ref()
                ),
            ));
        }
        let Some(a) = p.address else { continue };
        let name = p.name.get_ref();
        for (k, v4) in a.get_ref().v4().enumerate() {
            if k == 1 {
                return Err(err(
                    a.span(),
                    format!(
                        "interface '{name}': one IPv4 address per interface ('{v4}' is a second)"
                    ),
                ));
            }
            table::parse_if_addr(v4)
                .map_err(|e| err(a.span(), format!("interface '{name}': address {e}")))?;
        }
        if let Some(r) = p.ra
            && *r.get_ref()
            && a.get_ref().v6().next().is_none()
        {
            return Err(err(
                r.span(),
                format!("interface '{name}': ra = true needs an IPv6 address to advertise"),
            ));
        }
        let mut seen6 = std::collections::BTreeSet::new();
        // RFC 8200 section 5: every link carrying IPv6 has an MTU of at least 1280.
        let mtu = p.mtu.or_else(|| {
            c.ports
                .get(p.port)
                .and_then(|port| port.get_ref().mtu.as_ref())
        });
        if let Some(m) = mtu
            && *m.get_ref() < 1280
            && a.get_ref().v6().next().is_some()
        {
            return Err(err(
                m.span(),
                format!(
                    "interface '{name}': mtu {} is below IPv6's minimum of 1280 (RFC 8200): no IPv6 address on it",
                    m.get_ref()
                ),
            ));
        }
        for v6 in a.get_ref().v6() {
            let (ip, _) = table6::parse_if_addr6(v6)
                .map_err(|e| err(a.span(), format!("interface '{name}': address {e}")))?;
            if !seen6.insert(ip) {
                return Err(err(
                    a.span(),
                    format!("interface '{name}': address '{v6}' is given twice"),
                ));
            }
        }
    }
    let ifs = ifaces(c, None);
    let second_address = || {
        c.ifaces()
            .filter_map(|p| p.address)
            .nth(1)
            .map(|a| a.span())
            .unwrap_or(0..0)
    };
    table::interface_routes(&ifs).map_err(|e| err(second_address(), e))?;
    table6::interface_routes6(&ifs).map_err(|e| err(second_address(), e))?;
    let Some(f) = &c.forward else {
        return Ok(());
    };
    let f = f.get_ref();
    range_check(&f.arp_timeout_s, 1, 86_400, "arp_timeout_s", err)?;
    range_check(&f.arp_retry_ms, 10, 60_000, "arp_retry_ms", err)?;
    range_check(&f.arp_retries, 1, 100, "arp_retries", err)?;
    range_check(&f.arp_queue, 0, 4096, "arp_queue", err)?;
    range_check(&f.icmp_errors_per_s, 0, 1_000_000, "icmp_errors_per_s", err)?;
    range_check(&f.icmp_burst, 1, 10_000, "icmp_burst", err)?;
    range_check(
        &f.arp_requests_per_s,
        1,
        1_000_000,
        "arp_requests_per_s",
        err,
    )?;
    range_check(&f.neighbor_capacity, 16, 1 << 22, "neighbor_capacity", err)?;
    if let Some(h) = &f.ecmp_hash
        && !["5-tuple", "symmetric"].contains(&h.get_ref().as_str())
    {
        return Err(err(
            h.span(),
            format!(
                "forward.ecmp_hash: '{}': \"5-tuple\" or \"symmetric\"",
                h.get_ref()
            ),
        ));
    }
    if f.routes.len() > MAX_ROUTES {
        return Err(err(
            f.routes[MAX_ROUTES].span(),
            format!("forward.routes: at most {MAX_ROUTES} routes"),
        ));
    }
    // Routes: each parses and resolves; no prefix twice, none equal to an interface route.
    let mut seen: BTreeMap<Prefix, Range<usize>> = BTreeMap::new();
    for e in table::interface_routes(&ifs).unwrap_or_default() {
        seen.insert(e.prefix, 0..0);
    }
    let mut seen6: BTreeMap<Prefix6, Range<usize>> = BTreeMap::new();
    for e in table6::interface_routes6(&ifs).unwrap_or_default() {
        seen6.insert(e.prefix, 0..0);
    }
    for r in &f.routes {
        let rc = r.get_ref();
        let span_of = |fl: Field| match fl {
            Field::Prefix => rc.prefix.span(),
            Field::Via => rc.via.as_ref().map(|v| v.span()).unwrap_or(r.span()),
            Field::Port => rc.port.as_ref().map(|v| v.span()).unwrap_or(r.span()),
            Field::Route => r.span(),
        };
        let texts = route_texts(rc);
        if texts.is_empty() {
            return Err(err(
                span_of(Field::Via),
                "forward.routes: `via` lists no gateway".to_string(),
            ));
        }
        if texts.len() > MAX_PATHS {
            return Err(err(
                span_of(Field::Via),
                format!("forward.routes: at most {MAX_PATHS} next hops per route"),
            ));
        }
        let mut hops: Vec<Route> = Vec::new();
        for t in texts {
            let sr = t
                .parse(c)
                .map_err(|(fl, e)| err(span_of(fl), format!("forward.routes: {e}")))?;
            let resolved = match &sr {
                Route::V4(sr) => table::resolve_static(&ifs, sr).map(|_| ()),
                Route::V6(sr) => table6::resolve_static6(&ifs, sr).map(|_| ()),
            };
            resolved.map_err(|e| {
                let fl = if rc.via.is_some() && rc.port.is_none() {
                    Field::Via
                } else {
                    Field::Route
                };
                err(span_of(fl), format!("forward.routes: {e}"))
            })?;
            if hops.contains(&sr) {
                return Err(err(
                    span_of(Field::Via),
                    format!(
                        "forward.routes: {}: gateway {} is given twice",
                        sr.prefix_text(),
                        t.via.unwrap_or_default().trim()
                    ),
                ));
            }
            hops.push(sr);
        }
        let sr = hops[0];
        let prev = match &sr {
            Route::V4(sr) => seen.insert(sr.prefix, rc.prefix.span()),
            Route::V6(sr) => seen6.insert(sr.prefix, rc.prefix.span()),
        };
        if let Some(prev) = prev {
            let what = if prev == (0..0) {
                "is an interface (connected, local or broadcast) route".to_string()
            } else {
                "is given twice".to_string()
            };
            return Err(err(
                rc.prefix.span(),
                format!("forward.routes: {} {what}", sr.prefix_text()),
            ));
        }
    }
    // Static neighbours.
    let mut nseen = std::collections::BTreeSet::new();
    for n in &f.neighbors {
        let nc = n.get_ref();
        let ip: std::net::IpAddr = nc.address.get_ref().trim().parse().map_err(|_| {
            err(
                nc.address.span(),
                format!(
                    "forward.neighbors: '{}' is not an IPv4 or IPv6 address",
                    nc.address.get_ref()
                ),
            )
        })?;
        let mac = table::parse_mac(nc.mac.get_ref())
            .map_err(|e| err(nc.mac.span(), format!("forward.neighbors: {e}")))?;
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(err(
                nc.mac.span(),
                "forward.neighbors: a neighbour's MAC must be a unicast address".to_string(),
            ));
        }
        if c.iface_index(nc.port.get_ref()).is_none() {
            return Err(err(
                nc.port.span(),
                format!(
                    "forward.neighbors: unknown port or interface '{}'",
                    nc.port.get_ref()
                ),
            ));
        }
        let bad = match ip {
            std::net::IpAddr::V4(ip) => {
                let ip = u32::from(ip);
                pollfwd_nf::forward::ipv4::bad_source(ip)
                    || ifs.iter().any(|i| i.addr.is_some_and(|(a, _)| a == ip))
            }
            std::net::IpAddr::V6(ip) => {
                let ip = u128::from(ip);
                !table6::is_unicast6(ip)
                    || ifs.iter().any(|i| {
                        i.addr6.iter().any(|&(a, _)| a == ip) || i.link_local() == Some(ip)
                    })
            }
        };
        if bad {
            return Err(err(
                nc.address.span(),
                format!(
                    "forward.neighbors: {ip} cannot be a neighbour (own or non-unicast address)"
                ),
            ));
        }
        if !nseen.insert(ip) {
            return Err(err(
                nc.address.span(),
                format!("forward.neighbors: {ip} is given twice"),
            ));
        }
    }
    let cap = f
        .neighbor_capacity
        .as_ref()
        .map(|s| *s.get_ref())
        .unwrap_or(FwdParams::default().neighbor_capacity);
    if f.neighbors.len() > cap / 2 {
        return Err(err(
            f.neighbors[0].span(),
            format!(
                "forward.neighbors: {} static neighbours need neighbor_capacity >= {}",
                f.neighbors.len(),
                f.neighbors.len() * 2
            ),
        ));
    }
    // Proxy ARP.
    for x in &f.proxy_arp {
        let xc = x.get_ref();
        let p = Prefix::parse(xc.prefix.get_ref())
            .map_err(|e| err(xc.prefix.span(), format!("forward.proxy_arp: {e}")))?;
        if p.len < 16 {
            return Err(err(
                xc.prefix.span(),
                format!(
                    "forward.proxy_arp: {p} is wider than a /16: answering ARP for that many addresses is surely a mistake"
                ),
            ));
        }
        if let Some(port) = &xc.port
            && c.iface_index(port.get_ref()).is_none()
        {
            return Err(err(
                port.span(),
                format!(
                    "forward.proxy_arp: unknown port or interface '{}'",
                    port.get_ref()
                ),
            ));
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
device = "net_pcap0,rx_pcap=a.pcap"
address = "192.0.2.1/24"

[[port]]
name = "p1"
device = "net_pcap1,rx_pcap=b.pcap"
address = "198.51.100.1/24"

[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["forward"]
"#;

    fn err(extra: &str) -> crate::config::ConfigError {
        parse("t.toml", &format!("{BASE}{extra}")).expect_err("should be refused")
    }

    #[test]
    fn good_router_config() {
        let extra = r#"
[forward]
routes = [
  { prefix = "203.0.113.0/24", via = "198.51.100.2" },
  { prefix = "0.0.0.0/0", via = "192.0.2.254", port = "p0" },
  { prefix = "10.9.0.0/16", port = "p1" },
]
neighbors = [{ address = "198.51.100.2", mac = "02:00:00:00:00:02", port = "p1" }]
proxy_arp = [{ prefix = "198.51.100.16/28", port = "p1" }, { prefix = "192.0.2.77" }]
arp_timeout_s = 60
icmp_errors_per_s = 10
"#;
        let (c, _) = parse("t.toml", &format!("{BASE}{extra}")).unwrap();
        assert_eq!(super::static_routes(&c).len(), 3);
        assert_eq!(super::neighbors(&c).len(), 1);
        assert_eq!(super::proxy_arp(&c).len(), 2);
        let p = super::params(&c);
        assert_eq!(
            (p.arp_timeout_s, p.icmp_errors_per_s, p.arp_retries),
            (60, 10, 3)
        );
        let ifs = super::ifaces(&c, None);
        assert_eq!(ifs[1].addr, Some((0xc633_6401, 24)));
    }

    #[test]
    fn routes_with_several_next_hops() {
        let extra = r#"
[forward]
routes = [
  { prefix = "203.0.113.0/24", via = ["198.51.100.2", "198.51.100.3", "192.0.2.9"] },
  { prefix = "10.0.0.0/8", via = "198.51.100.2" },
]
ecmp_hash = "symmetric"
"#;
        let (c, _) = parse("t.toml", &format!("{BASE}{extra}")).unwrap();
        let r = super::static_routes(&c);
        assert_eq!(r.len(), 4);
        assert!(r[..3].iter().all(|x| x.prefix == r[0].prefix));
        assert_eq!(
            r[..3].iter().map(|r| r.via.unwrap()).collect::<Vec<_>>(),
            [0xc633_6402, 0xc633_6403, 0xc000_0209]
        );
        assert!(super::params(&c).ecmp_symmetric);
        assert!(!super::params(&parse("t.toml", BASE).unwrap().0).ecmp_symmetric);

        // Errors at the `via` list: a gateway twice, the other family, too many, none.
        let e = err(
            "[forward]\nroutes = [{ prefix = \"10.0.0.0/8\", via = [\"192.0.2.2\", \"192.0.2.2\"] }]\n",
        );
        assert!(e.msg.contains("192.0.2.2 is given twice"), "{e}");
        assert_eq!((e.line, e.col), (17, 42), "{e}");
        let e = err(
            "[forward]\nroutes = [{ prefix = \"10.0.0.0/8\", via = [\"192.0.2.2\", \"2001:db8::2\"] }]\n",
        );
        assert!(e.msg.contains("not an IPv4 address"), "{e}");
        assert_eq!((e.line, e.col), (17, 42), "{e}");
        let many: Vec<String> = (2..19).map(|k| format!("\"192.0.2.{k}\"")).collect();
        let e = err(&format!(
            "[forward]\nroutes = [{{ prefix = \"10.0.0.0/8\", via = [{}] }}]\n",
            many.join(", ")
        ));
        assert!(e.msg.contains("at most 16 next hops"), "{e}");
        let e = err("[forward]\nroutes = [{ prefix = \"10.0.0.0/8\", via = [] }]\n");
        assert!(e.msg.contains("no gateway"), "{e}");
        let e = err("[forward]\necmp_hash = \"crc\"\n");
        assert!(e.msg.contains("symmetric"), "{e}");
        assert_eq!((e.line, e.col), (17, 13), "{e}");
    }

    #[test]
    fn errors_name_the_position() {
        let e = parse(
            "t.toml",
            &BASE.replace("address = \"192.0.2.1/24\"", "address = \"192.0.2.0/24\""),
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (5, 11), "{e}");
        assert!(e.msg.contains("network address"), "{e}");

        let e = err("[forward]\nroutes = [{ prefix = \"10.0.0.1/8\", via = \"192.0.2.2\" }]\n");
        assert_eq!((e.line, e.col), (17, 22), "{e}");
        assert!(e.msg.contains("host bits"), "{e}");

        let e = err("[forward]\nroutes = [{ prefix = \"10.0.0.0/8\", via = \"10.1.1.1\" }]\n");
        assert_eq!((e.line, e.col), (17, 42), "{e}");
        assert!(e.msg.contains("not on a connected subnet"), "{e}");

        let e = err("[forward]\nroutes = [{ prefix = \"10.0.0.0/8\", port = \"p9\" }]\n");
        assert!(e.msg.contains("unknown port or interface 'p9'"), "{e}");
        assert_eq!((e.line, e.col), (17, 43), "{e}");

        let e = err("[forward]\nroutes = [{ prefix = \"10.0.0.0/8\" }]\n");
        assert!(e.msg.contains("give `via`"), "{e}");

        let e = err(
            "[forward]\nroutes = [\n { prefix = \"10.0.0.0/8\", via = \"192.0.2.2\" },\n { prefix = \"10.0.0.0/8\", via = \"192.0.2.3\" },\n]\n",
        );
        assert!(e.msg.contains("given twice"), "{e}");
        assert_eq!(e.line, 19, "{e}");

        let e = err("[forward]\nroutes = [{ prefix = \"192.0.2.0/24\", port = \"p1\" }]\n");
        assert!(e.msg.contains("interface"), "{e}");

        let e = err(
            "[forward]\nneighbors = [{ address = \"192.0.2.9\", mac = \"01:00:5e:00:00:01\", port = \"p0\" }]\n",
        );
        assert!(e.msg.contains("unicast"), "{e}");
        assert_eq!((e.line, e.col), (17, 45), "{e}");

        let e = err("[forward]\narp_retries = 0\n");
        assert!(e.msg.contains("arp_retries 0"), "{e}");
        assert_eq!((e.line, e.col), (17, 15), "{e}");

        let e = err("[forward]\nproxy_arp = [{ prefix = \"10.0.0.0/8\" }]\n");
        assert!(e.msg.contains("wider than a /16"), "{e}");

        let e = err("[forward]\nroute = []\n");
        assert!(e.msg.contains("unknown field `route`"), "{e}");
    }

    #[test]
    fn dual_stack_addresses_routes_and_neighbours() {
        let dual = BASE
            .replace(
                "address = \"192.0.2.1/24\"",
                "address = [\"192.0.2.1/24\", \"2001:db8:1::1/64\", \"2001:db8:a::1/48\"]",
            )
            .replace(
                "address = \"198.51.100.1/24\"",
                "address = [\"2001:db8:2::1/64\"]",
            );
        let extra = r#"
[forward]
routes = [
  { prefix = "2001:db8:99::/48", via = "2001:db8:2::2" },
  { prefix = "::/0", via = "fe80::1", port = "p1" },
  { prefix = "10.0.0.0/8", via = "192.0.2.2" },
]
neighbors = [
  { address = "2001:db8:2::2", mac = "02:00:00:00:00:02", port = "p1" },
  { address = "192.0.2.2", mac = "02:00:00:00:00:03", port = "p0" },
]
"#;
        let (c, _) = parse("t.toml", &format!("{dual}{extra}")).unwrap();
        let ifs = super::ifaces(&c, None);
        assert_eq!(ifs[0].addr, Some((0xc000_0201, 24)));
        assert_eq!(ifs[0].addr6.len(), 2);
        assert_eq!((ifs[1].addr, ifs[1].addr6.len()), (None, 1));
        assert_eq!(super::static_routes(&c).len(), 1);
        let r6 = super::static_routes6(&c);
        assert_eq!(r6.len(), 2);
        assert_eq!(r6[1].port, Some(1));
        assert_eq!(super::neighbors(&c).len(), 1);
        assert_eq!(super::neighbors6(&c).len(), 1);

        let bad = |t: &str, extra: &str| parse("t.toml", &format!("{t}{extra}")).unwrap_err();
        let e = bad(
            &BASE.replace(
                "address = \"192.0.2.1/24\"",
                "address = [\"192.0.2.1/24\", \"192.0.3.1/24\"]",
            ),
            "",
        );
        assert!(e.msg.contains("one IPv4 address per interface"), "{e}");
        assert_eq!((e.line, e.col), (5, 11), "{e}");
        let e = bad(
            &dual.replace(
                "address = [\"2001:db8:2::1/64\"]",
                "address = [\"2001:db8:2::1/64\"]\nmtu = 1000",
            ),
            "",
        );
        assert!(e.msg.contains("below IPv6's minimum of 1280"), "{e}");
        assert_eq!(e.line, 11, "{e}");
        let e = bad(&dual.replace("2001:db8:1::1/64", "fe80::1/64"), "");
        assert!(e.msg.contains("EUI-64"), "{e}");
        assert_eq!((e.line, e.col), (5, 11), "{e}");
        let e = bad(&dual.replace("2001:db8:1::1/64", "2001:db8:2::9/64"), "");
        assert!(e.msg.contains("overlapping"), "{e}");
        let e = bad(&dual.replace("2001:db8:1::1/64", "2001:db8:a::5/64"), "");
        assert!(
            e.msg.contains("overlapping"),
            "one interface's own two: {e}"
        );
        let e = bad(
            &dual,
            "[forward]\nroutes = [{ prefix = \"::/0\", via = \"fe80::1\" }]\n",
        );
        assert!(e.msg.contains("link-local: give the `port`"), "{e}");
        assert_eq!((e.line, e.col), (17, 36), "{e}");
        let e = bad(
            &dual,
            "[forward]\nroutes = [{ prefix = \"2001:db8:99::/48\", via = \"192.0.2.2\" }]\n",
        );
        assert!(e.msg.contains("not an IPv6 address"), "{e}");
        let e = bad(
            &dual,
            "[forward]\nroutes = [{ prefix = \"2001:db8:99::1/48\", via = \"2001:db8:2::2\" }]\n",
        );
        assert!(e.msg.contains("did you mean 2001:db8:99::/48"), "{e}");
        let e = bad(
            &dual,
            "[forward]\nroutes = [{ prefix = \"2001:db8:2::/64\", via = \"2001:db8:1::2\" }]\n",
        );
        assert!(e.msg.contains("interface"), "{e}");
        let e = bad(
            &dual,
            "[forward]\nneighbors = [{ address = \"ff02::1\", mac = \"02:00:00:00:00:02\", port = \"p1\" }]\n",
        );
        assert!(e.msg.contains("cannot be a neighbour"), "{e}");
        let e = bad(
            &dual,
            "[forward]\nneighbors = [{ address = \"2001:db8:2::1\", mac = \"02:00:00:00:00:02\", port = \"p1\" }]\n",
        );
        assert!(e.msg.contains("cannot be a neighbour"), "own address: {e}");
    }

    #[test]
    fn overlapping_interfaces_are_refused() {
        let t = BASE.replace("198.51.100.1/24", "192.0.2.129/25");
        let e = parse("t.toml", &t).unwrap_err();
        assert!(e.msg.contains("overlapping"), "{e}");
        assert_eq!(e.line, 10, "{e}");
    }
}
