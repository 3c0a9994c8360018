//! IPv6 routes: prefixes, interface routes (connected, local, the link-local address), static
//! routes, and the compiled table the data path reads — a [`dpdk::fib6::Fib6`] whose next-hop
//! values index a small array of [`Hop6`]s. Built and replaced like the IPv4 table
//! ([`super::table`]): off the data path, from the whole route list, shared read-only.
//!
//! Addresses are `u128` in host order (the wire module's convention).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv6Addr;

use dpdk::fib6::{Fib6, Fib6Config, NextHopSize, tbl8s_for};

use super::ecmp::{Group, Groups, MAX_PATHS, MAX_WORKERS};
use super::table::{Iface, RouteKind, by_prefix};
use crate::wire::ipv6;

/// An IPv6 prefix, address in host order with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix6 {
    pub addr: u128,
    pub len: u8,
}

/// The network mask of a prefix length (0..=128).
#[inline]
pub fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len.min(128) as u32)
    }
}

impl Prefix6 {
    pub fn new(addr: u128, len: u8) -> Prefix6 {
        Prefix6 {
            addr: addr & mask6(len),
            len,
        }
    }

    /// Parses "x:y::z/len" (a bare address is a /128). Host bits must be zero.
    pub fn parse(s: &str) -> Result<Prefix6, String> {
        let (addr, len) =
            super::table::split_prefix::<Ipv6Addr>(s, 128, "an IPv6 prefix (x:y::z/len)")?;
        let addr = u128::from(addr);
        if addr & !mask6(len) != 0 {
            return Err(format!(
                "'{s}' has host bits set: did you mean {}?",
                Prefix6::new(addr, len)
            ));
        }
        Ok(Prefix6 { addr, len })
    }

    #[inline]
    pub fn contains(&self, ip: u128) -> bool {
        ip & mask6(self.len) == self.addr
    }
}

impl fmt::Display for Prefix6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv6Addr::from(self.addr), self.len)
    }
}

/// Whether `a` can be a unicast address of a host or router: not unspecified, loopback,
/// multicast, or IPv4-mapped (RFC 4291 2.5.5.2: never on the wire).
pub fn is_unicast6(a: u128) -> bool {
    !(ipv6::is_unspecified(a)
        || ipv6::is_loopback(a)
        || ipv6::is_multicast(a)
        || ipv6::is_v4_mapped(a))
}

/// Parses an interface address "2001:db8:1::1/64": address and prefix length. The address
/// must be a global unicast one (link-local addresses are derived from the MAC), not the
/// prefix's Subnet-Router anycast address (host part zero, RFC 4291 2.6.1) except on /127 and
/// /128 (RFC 6164).
pub fn parse_if_addr6(s: &str) -> Result<(u128, u8), String> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| format!("'{s}': give the address with its prefix length, x:y::z/len"))?;
    let addr: Ipv6Addr = a
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not an IPv6 address/len"))?;
    let len: u8 = l
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=128).contains(l))
        .ok_or_else(|| format!("'{s}': prefix length must be 1..=128"))?;
    let ip = u128::from(addr);
    if !is_unicast6(ip) {
        return Err(format!(
            "'{s}': {addr} cannot be an interface address (unspecified, loopback, multicast or IPv4-mapped)"
        ));
    }
    if ipv6::is_link_local(ip) {
        return Err(format!(
            "'{s}': link-local addresses are not configured: every interface with an IPv6 address has fe80::/64 from its MAC (EUI-64)"
        ));
    }
    if len < 127 && ip & !mask6(len) == 0 {
        return Err(format!(
            "'{s}': {addr} is the Subnet-Router anycast address of {}",
            Prefix6::new(ip, len)
        ));
    }
    Ok((ip, len))
}

/// Where the data path sends a packet whose IPv6 destination matched a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hop6 {
    /// Out of `port`, to `gateway`'s MAC (global or link-local); gateway 0: the destination
    /// itself (a connected or on-link route).
    Forward { port: u16, gateway: u128 },
    /// One of the appliance's own addresses.
    Local,
    /// Several next hops (ECMP): group `n` of the compiled table ([`Table6::group`]), whose
    /// members are [`Hop6::Forward`]s. Only in a compiled table, never in a route entry.
    Group(u32),
}

/// A static IPv6 route as configured: a prefix via a gateway, out of a port, or both (a
/// link-local gateway needs the port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute6 {
    pub prefix: Prefix6,
    pub via: Option<u128>,
    pub port: Option<u16>,
}

/// One resolved entry of the IPv6 routing table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteEntry6 {
    pub prefix: Prefix6,
    pub kind: RouteKind,
    pub hop: Hop6,
}

/// The interface's IPv6 subnets.
fn subnets6(i: &Iface) -> impl Iterator<Item = Prefix6> + '_ {
    i.addr6.iter().map(|&(a, l)| Prefix6::new(a, l))
}

/// Resolves a static route against the interfaces: the port is given, or is the one whose
/// connected subnet holds the gateway.
pub fn resolve_static6(ifaces: &[Iface], r: &StaticRoute6) -> Result<RouteEntry6, String> {
    let port = match (r.via, r.port) {
        (None, None) => {
            return Err(format!("route {}: give `via` (a gateway), `port`, or both", r.prefix));
        }
        (_, Some(p)) => {
            if !ifaces.iter().any(|i| i.port == p) {
                return Err(format!("route {}: port {p} is not a router interface", r.prefix));
            }
            p
        }
        (Some(gw), None) if ipv6::is_link_local(gw) => {
            return Err(format!(
                "route {}: gateway {} is link-local: give the `port` it is on",
                r.prefix,
                Ipv6Addr::from(gw)
            ));
        }
        (Some(gw), None) => ifaces
            .iter()
            .find(|i| subnets6(i).any(|s| s.contains(gw)))
            .map(|i| i.port)
            .ok_or_else(|| {
                format!(
                    "route {}: gateway {} is not on a connected subnet (add `port` to send to it on-link)",
                    r.prefix,
                    Ipv6Addr::from(gw)
                )
            })?,
    };
    if let Some(gw) = r.via {
        if ifaces
            .iter()
            .any(|i| i.addr6.iter().any(|&(a, _)| a == gw) || i.link_local() == Some(gw))
        {
            return Err(format!(
                "route {}: gateway {} is one of the appliance's own addresses",
                r.prefix,
                Ipv6Addr::from(gw)
            ));
        }
        if !is_unicast6(gw) {
            return Err(format!(
                "route {}: gateway {} is not a unicast address",
                r.prefix,
                Ipv6Addr::from(gw)
            ));
        }
    }
    Ok(RouteEntry6 {
        prefix: r.prefix,
        kind: RouteKind::Static,
        hop: Hop6::Forward {
            port,
            gateway: r.via.unwrap_or(0),
        },
    })
}

/// The interface routes: each address's connected subnet and the address itself (local),
/// and each interface's link-local address (local; fe80::/10 itself is never routed).
pub fn interface_routes6(ifaces: &[Iface]) -> Result<Vec<RouteEntry6>, String> {
    let mut v: Vec<RouteEntry6> = Vec::new();
    for i in ifaces {
        for net in subnets6(i) {
            for o in ifaces {
                for os in subnets6(o) {
                    if (o.port != i.port || os != net)
                        && (os.contains(net.addr) || net.contains(os.addr))
                    {
                        return Err(format!(
                            "interfaces '{}' ({net}) and '{}' ({os}) have overlapping subnets",
                            i.name, o.name
                        ));
                    }
                }
            }
            v.push(RouteEntry6 {
                prefix: net,
                kind: RouteKind::Connected,
                hop: Hop6::Forward {
                    port: i.port,
                    gateway: 0,
                },
            });
        }
        for &(a, _) in &i.addr6 {
            v.push(RouteEntry6 {
                prefix: Prefix6::new(a, 128),
                kind: RouteKind::Local,
                hop: Hop6::Local,
            });
        }
        if let Some(ll) = i.link_local() {
            v.push(RouteEntry6 {
                prefix: Prefix6::new(ll, 128),
                kind: RouteKind::Local,
                hop: Hop6::Local,
            });
        }
    }
    // Two interfaces with one MAC (possible with sub-interfaces) share a link-local address:
    // one local route for it.
    let mut seen = std::collections::HashSet::new();
    v.retain(|e| seen.insert(e.prefix));
    Ok(v)
}

/// The complete IPv6 route list: interface routes, then the static routes.
pub fn resolve6(ifaces: &[Iface], statics: &[StaticRoute6]) -> Result<Vec<RouteEntry6>, String> {
    let mut v = interface_routes6(ifaces)?;
    let mut seen: BTreeMap<Prefix6, RouteKind> = v.iter().map(|e| (e.prefix, e.kind)).collect();
    for r in statics {
        let e = resolve_static6(ifaces, r)?;
        match seen.insert(e.prefix, RouteKind::Static) {
            None => {}
            Some(RouteKind::Static) => {
                let same: Vec<&RouteEntry6> = v.iter().filter(|x| x.prefix == e.prefix).collect();
                if same.iter().any(|x| x.hop == e.hop) {
                    return Err(format!("route {}: a next hop is given twice", e.prefix));
                }
                if same.len() >= MAX_PATHS {
                    return Err(format!("route {}: at most {MAX_PATHS} next hops", e.prefix));
                }
            }
            Some(k) => {
                return Err(format!(
                    "route {}: the prefix is already a {} route",
                    e.prefix,
                    k.name()
                ));
            }
        }
        v.push(e);
    }
    Ok(v)
}

/// The compiled IPv6 table the data path reads.
pub struct Table6 {
    fib: Fib6,
    hops: Vec<Hop6>,
    groups: Groups<Prefix6, Hop6>,
    routes: usize,
}

impl Table6 {
    /// Compiles a resolved route list (EAL must be up), sized for these routes
    /// ([`dpdk::fib6::tbl8s_for`]) and a quarter more. A table in use is never changed in
    /// place; a replaced one may be ([`Table6::update`], until it is full: DPDK 22.11's
    /// rte_fib6 keeps a deleted prefix's tbl8 groups reserved), otherwise a route change
    /// builds a new one.
    pub fn build(entries: &[RouteEntry6], socket: i32) -> Result<Table6, String> {
        Table6::build_after(entries, socket, None, MAX_WORKERS)
    }

    /// [`Table6::build`] for a table that replaces `prev`: groups keep their buckets and
    /// counts for the next hops they still have (as [`super::table::FwdTable::build_after`],
    /// `workers` likewise).
    pub fn build_after(
        entries: &[RouteEntry6],
        socket: i32,
        prev: Option<&Table6>,
        workers: usize,
    ) -> Result<Table6, String> {
        let tbl8s = tbl8s_for(entries.iter().map(|e| e.prefix.len));
        let n = entries.len() as u32;
        // A quarter more of each, as the IPv4 table: room for the FIB sync's changes in
        // place ([`Table6::update`]).
        let cfg = Fib6Config {
            max_routes: (n + n / 4 + 64).max(16),
            tbl8s: (tbl8s + tbl8s / 4 + 64).max(16),
            next_hop_size: NextHopSize::B4,
            socket,
        };
        let mut fib = Fib6::new(cfg).map_err(|e| e.to_string())?;
        let mut groups: Groups<Prefix6, Hop6> = Groups::new(workers);
        let mut routes: Vec<RouteEntry6> = Vec::new();
        for (prefix, members) in by_prefix(entries.iter().map(|e| (e.prefix, e.hop))) {
            let hop = if members.len() == 1 {
                members[0]
            } else {
                let old = prev.and_then(|p| p.groups.of(prefix));
                Hop6::Group(groups.set(prefix, members, old)?)
            };
            routes.push(RouteEntry6 {
                prefix,
                kind: RouteKind::Static,
                hop,
            });
        }
        let (hops, ids) = hop_ids(&routes);
        for (e, id) in routes.iter().zip(ids) {
            fib.add(e.prefix.addr.to_be_bytes(), e.prefix.len, id)
                .map_err(|err| format!("route {}: {err}", e.prefix))?;
        }
        Ok(Table6 {
            fib,
            hops,
            groups,
            routes: routes.len(),
        })
    }

    /// Changes routes in place (a table no worker reads): removes `del`, adds or replaces
    /// `add`; `routes` is the route count after; a prefix listed several times in `add`
    /// gets a group that follows `cur`'s (as [`super::table::FwdTable::update`]). An error
    /// (no room) leaves the table half changed: the caller builds a new one instead.
    pub fn update(
        &mut self,
        del: &[Prefix6],
        add: &[RouteEntry6],
        routes: usize,
        cur: Option<&Table6>,
    ) -> Result<(), String> {
        for p in del {
            // Absent (never installed) is fine.
            let _ = self.fib.delete(p.addr.to_be_bytes(), p.len);
            self.groups.remove(*p);
        }
        let mut ids: HashMap<Hop6, u32> = self
            .hops
            .iter()
            .enumerate()
            .map(|(i, h)| (*h, i as u32))
            .collect();
        for (prefix, members) in by_prefix(add.iter().map(|e| (e.prefix, e.hop))) {
            let hop = if members.len() == 1 {
                self.groups.remove(prefix);
                members[0]
            } else {
                let old = cur.and_then(|c| c.groups.of(prefix));
                let g = self.groups.replace(prefix, members, old)?;
                Hop6::Group(g)
            };
            let id = *ids.entry(hop).or_insert_with(|| {
                self.hops.push(hop);
                (self.hops.len() - 1) as u32
            });
            self.fib
                .add(prefix.addr.to_be_bytes(), prefix.len, id)
                .map_err(|err| format!("route {prefix}: {err}"))?;
        }
        self.routes = routes;
        Ok(())
    }

    /// Next-hop group `g` (from a [`Hop6::Group`] of this table).
    #[inline(always)]
    pub fn group(&self, g: u32) -> &Group<Hop6> {
        self.groups.get(g)
    }

    /// The groups (prefixes with several next hops) and their prefixes.
    pub fn groups(&self) -> impl Iterator<Item = (Prefix6, &Group<Hop6>)> {
        self.groups.iter()
    }

    /// The group of `prefix` (a route with several next hops).
    pub fn group_of(&self, prefix: Prefix6) -> Option<&Group<Hop6>> {
        self.groups.of(prefix)
    }

    /// The hop for one address (network-order bytes, as in the packet).
    #[inline]
    pub fn lookup(&self, ip: [u8; 16]) -> Option<Hop6> {
        self.fib
            .lookup(ip)
            .and_then(|id| self.hops.get(id as usize).copied())
    }

    /// Next-hop ids of a burst's destinations (network-order bytes): `ids[k]` for
    /// `addrs[k]`, [`dpdk::fib6::MISS`] where no route covers it; one call into DPDK per up to
    /// [`dpdk::fib6::BULK_CHUNK`] addresses. [`Table6::hop`] turns an id into its hop.
    #[inline]
    pub fn lookup_bulk(&self, addrs: &[[u8; 16]], ids: &mut [u32]) {
        self.fib.lookup_bulk(addrs, ids);
    }

    /// The hop of a next-hop id from [`Table6::lookup_bulk`] (None for a miss).
    #[inline]
    pub fn hop(&self, id: u32) -> Option<Hop6> {
        self.hops.get(id as usize).copied()
    }

    /// Number of routes compiled in.
    pub fn routes(&self) -> usize {
        self.routes
    }

    /// Number of distinct next hops.
    pub fn next_hops(&self) -> usize {
        self.hops.len()
    }
}

/// Next-hop ids of a route list: one per distinct hop, in order of first use.
pub(crate) fn hop_ids(entries: &[RouteEntry6]) -> (Vec<Hop6>, Vec<u32>) {
    let mut hops: Vec<Hop6> = Vec::new();
    let mut ids: HashMap<Hop6, u32> = HashMap::new();
    let per_entry = entries
        .iter()
        .map(|e| {
            *ids.entry(e.hop).or_insert_with(|| {
                hops.push(e.hop);
                (hops.len() - 1) as u32
            })
        })
        .collect();
    (hops, per_entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> u128 {
        u128::from(s.parse::<Ipv6Addr>().unwrap())
    }

    fn ifaces() -> Vec<Iface> {
        let mut v = vec![
            Iface {
                port: 0,
                name: "p0".into(),
                mac: [2, 0, 0, 0, 0, 1],
                addr: None,
                addr6: vec![(ip("2001:db8:1::1"), 64)],
                mtu: 1500,
                mss_clamp: None,
                ra: false,
            },
            Iface {
                port: 1,
                name: "p1".into(),
                mac: [2, 0, 0, 0, 0, 2],
                addr: None,
                addr6: vec![(ip("2001:db8:2::1"), 64), (ip("2001:db8:3::1"), 120)],
                mtu: 1500,
                mss_clamp: None,
                ra: false,
            },
        ];
        v.push(Iface {
            port: 2,
            name: "p2".into(),
            addr6: Vec::new(),
            ..v[0].clone()
        });
        v
    }

    #[test]
    fn prefixes_and_interface_addresses_parse_strictly() {
        assert_eq!(
            Prefix6::parse("2001:db8::/32").unwrap(),
            Prefix6 {
                addr: ip("2001:db8::"),
                len: 32
            }
        );
        assert_eq!(Prefix6::parse("::/0").unwrap().len, 0);
        assert_eq!(Prefix6::parse("2001:db8::1").unwrap().len, 128);
        assert!(
            Prefix6::parse("2001:db8::1/64")
                .unwrap_err()
                .contains("did you mean 2001:db8::/64")
        );
        assert!(Prefix6::parse("2001:db8::/129").is_err());
        assert!(Prefix6::parse("10.0.0.0/8").is_err());
        assert!(
            Prefix6::parse("2001:db8::/48")
                .unwrap()
                .contains(ip("2001:db8:0:ffff::9"))
        );
        assert!(
            !Prefix6::parse("2001:db8::/48")
                .unwrap()
                .contains(ip("2001:db8:1::9"))
        );
        assert_eq!(
            parse_if_addr6("2001:db8::1/64").unwrap(),
            (ip("2001:db8::1"), 64)
        );
        assert!(
            parse_if_addr6("2001:db8::/64")
                .unwrap_err()
                .contains("anycast")
        );
        assert!(parse_if_addr6("2001:db8::/127").is_ok(), "RFC 6164");
        assert!(parse_if_addr6("fe80::1/64").unwrap_err().contains("EUI-64"));
        assert!(parse_if_addr6("ff02::1/64").is_err());
        assert!(parse_if_addr6("::1/128").is_err());
        assert!(parse_if_addr6("::ffff:10.0.0.1/96").is_err());
        assert!(parse_if_addr6("2001:db8::1").is_err());
        assert!(parse_if_addr6("2001:db8::1/0").is_err());
    }

    #[test]
    fn interfaces_with_ipv6_have_a_link_local_address() {
        // RFC 4291 appendix A: 02:00:00:00:00:01 -> fe80::ff:fe00:1 (U/L bit inverted).
        let i = ifaces();
        assert_eq!(i[0].link_local(), Some(ip("fe80::ff:fe00:1")));
        assert_eq!(i[2].link_local(), None, "no IPv6 address: no link-local");
    }

    #[test]
    fn resolution_rules() {
        let i = ifaces();
        let r = |p: &str, via: Option<&str>, port: Option<u16>| StaticRoute6 {
            prefix: Prefix6::parse(p).unwrap(),
            via: via.map(ip),
            port,
        };
        let e = resolve6(&i, &[r("2001:db8:99::/48", Some("2001:db8:2::2"), None)]).unwrap();
        // 3 connected + 3 local + 2 link-local + 1 static.
        assert_eq!(e.len(), 9);
        assert_eq!(
            e[8].hop,
            Hop6::Forward {
                port: 1,
                gateway: ip("2001:db8:2::2")
            }
        );
        assert!(
            e.iter()
                .any(|x| x.prefix == Prefix6::new(ip("fe80::ff:fe00:2"), 128)
                    && x.hop == Hop6::Local)
        );
        let ll = resolve6(&i, &[r("::/0", Some("fe80::1"), Some(1))]).unwrap();
        assert_eq!(
            ll[8].hop,
            Hop6::Forward {
                port: 1,
                gateway: ip("fe80::1")
            }
        );
        assert!(
            resolve6(&i, &[r("::/0", Some("fe80::1"), None)])
                .unwrap_err()
                .contains("link-local")
        );
        assert!(
            resolve6(&i, &[r("::/0", Some("2001:db8:9::1"), None)])
                .unwrap_err()
                .contains("not on a connected subnet")
        );
        assert!(
            resolve6(&i, &[r("::/0", Some("2001:db8:1::1"), None)])
                .unwrap_err()
                .contains("own addresses")
        );
        assert!(
            resolve6(&i, &[r("::/0", Some("ff02::1"), Some(0))])
                .unwrap_err()
                .contains("not a unicast")
        );
        assert!(
            resolve6(&i, &[r("2001:db8:1::/64", Some("2001:db8:2::2"), None)])
                .unwrap_err()
                .contains("already a connected route")
        );
        let mut overlap = ifaces();
        overlap[2].addr6 = vec![(ip("2001:db8:1::8:1"), 112)];
        assert!(
            interface_routes6(&overlap)
                .unwrap_err()
                .contains("overlapping")
        );
        let (hops, ids) = hop_ids(&e);
        assert_eq!(ids.len(), e.len());
        assert_eq!(hops[ids[8] as usize], e[8].hop);
    }
}
