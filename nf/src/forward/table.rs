//! The routing table: interfaces and their connected routes, static routes, and the compiled
//! form the data path reads — an `rte_fib` (DIR24_8, [`dpdk::fib`]) whose next-hop values index
//! a small array of [`Hop`]s.
//!
//! A table is built off the data path from the whole route list, shared read-only by every
//! worker through an `Arc`, and replaced as a whole (never changed in place) when routes
//! change, so a worker never sees a half-applied change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::Ipv4Addr;

use dpdk::fib::{Fib, FibConfig, MISS};

use super::ecmp::{Group, Groups, MAX_PATHS, MAX_WORKERS};
use super::table6::{Prefix6, RouteEntry6, Table6};

/// An IPv4 prefix, address in host order with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: u32,
    pub len: u8,
}

/// The network mask of a prefix length (0..=32).
#[inline]
pub fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// "address/len" or a bare address (length `max`): the address parsed as `A` and the length,
/// checked against `max`; `what` names the expected form in the error.
pub(super) fn split_prefix<A: std::str::FromStr>(
    s: &str,
    max: u8,
    what: &str,
) -> Result<(A, u8), String> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr = a
        .trim()
        .parse::<A>()
        .map_err(|_| format!("'{s}' is not {what}"))?;
    let len = match l {
        None => max,
        Some(l) => l
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("'{s}': prefix length must be 0..={max}"))?,
    };
    Ok((addr, len))
}

impl Prefix {
    pub fn new(addr: u32, len: u8) -> Prefix {
        Prefix {
            addr: addr & mask(len),
            len,
        }
    }

    /// Parses "a.b.c.d/len" (a bare address is a /32). Host bits must be zero (RFC 4632
    /// section 3.1: a prefix is written with its host part zeroed).
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let (addr, len) = split_prefix::<Ipv4Addr>(s, 32, "an IPv4 prefix (a.b.c.d/len)")?;
        let addr = u32::from(addr);
        if addr & !mask(len) != 0 {
            return Err(format!(
                "'{s}' has host bits set: did you mean {}?",
                Prefix::new(addr, len)
            ));
        }
        Ok(Prefix { addr, len })
    }

    #[inline]
    pub fn contains(&self, ip: u32) -> bool {
        ip & mask(self.len) == self.addr
    }

    /// The directed broadcast address of the prefix.
    pub fn broadcast(&self) -> u32 {
        self.addr | !mask(self.len)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.len)
    }
}

/// Parses an interface address "192.0.2.1/24": address and prefix length. The address must be
/// a usable host address of its subnet (not the network or broadcast address, except on /31
/// and /32, RFC 3021).
pub fn parse_if_addr(s: &str) -> Result<(u32, u8), String> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| format!("'{s}': give the address with its prefix length, a.b.c.d/len"))?;
    let addr: Ipv4Addr = a
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not an IPv4 address/len"))?;
    let len: u8 = l
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=32).contains(l))
        .ok_or_else(|| format!("'{s}': prefix length must be 1..=32"))?;
    let ip = u32::from(addr);
    if super::ipv4::bad_source(ip) {
        return Err(format!(
            "'{s}': {addr} cannot be an interface address (0/8, loopback, multicast or class E)"
        ));
    }
    let p = Prefix::new(ip, len);
    if len < 31 && (ip == p.addr || ip == p.broadcast()) {
        return Err(format!(
            "'{s}': {addr} is the {} address of {p}",
            if ip == p.addr { "network" } else { "broadcast" }
        ));
    }
    Ok((ip, len))
}

/// Parses a MAC address "02:00:00:00:00:01" (or with '-').
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(format!("'{s}' is not a MAC address (xx:xx:xx:xx:xx:xx)"));
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16)
            .ok()
            .filter(|_| p.len() == 2)
            .ok_or_else(|| format!("'{s}' is not a MAC address (xx:xx:xx:xx:xx:xx)"))?;
    }
    Ok(m)
}

/// A MAC address as text.
pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A DPDK port as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    /// DPDK port id.
    pub port: u16,
    /// Port name from the configuration.
    pub name: String,
    pub mac: [u8; 6],
    /// IPv4 interface address and prefix length.
    pub addr: Option<(u32, u8)>,
    /// IPv6 global addresses and prefix lengths (the link-local one is derived:
    /// [`Iface::link_local`]).
    pub addr6: Vec<(u128, u8)>,
    /// Egress MTU (IPv4 datagram bytes, Ethernet header not counted): bigger datagrams are
    /// fragmented or refused with ICMP "fragmentation needed" (RFC 1191, RFC 1812 5.2.6).
    pub mtu: u16,
    /// MSS clamping: TCP SYNs and SYN-ACKs that enter or leave through this interface carry a
    /// maximum segment size option of at most this value (`None`: not clamped here).
    pub mss_clamp: Option<u16>,
    /// IPv6 router advertisements on the interface (RFC 4861 6.2).
    pub ra: bool,
}

/// The MTU of a port that sets none and whose device does not say (Ethernet, RFC 894).
pub const DEFAULT_MTU: u16 = 1500;

impl Iface {
    /// The connected subnet.
    pub fn subnet(&self) -> Option<Prefix> {
        self.addr.map(|(a, l)| Prefix::new(a, l))
    }

    /// The IPv6 link-local address (EUI-64 from the MAC), on an interface with any IPv6
    /// address.
    pub fn link_local(&self) -> Option<u128> {
        (!self.addr6.is_empty()).then(|| crate::wire::ipv6::link_local_from_mac(self.mac))
    }
}

/// Where the data path sends a packet whose destination matched a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hop {
    /// Out of `port`, to `gateway`'s MAC (or, for gateway 0, to the destination's own MAC:
    /// a connected or on-link route).
    Forward { port: u16, gateway: u32 },
    /// One of the appliance's own addresses.
    Local,
    /// A directed broadcast of a connected subnet (consumed, not forwarded: RFC 1812 4.2.2.11
    /// leaves forwarding them off by default, RFC 2644 makes it the rule).
    Broadcast,
    /// Several next hops (ECMP): group `n` of the compiled table ([`FwdTable::group`]), whose
    /// members are [`Hop::Forward`]s. Only in a compiled table, never in a route entry.
    Group(u32),
}

/// What kind of route an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Connected,
    Local,
    Broadcast,
    Static,
    /// Learnt from a routing daemon through the kernel's routing table (the appliance's
    /// `[fib_sync]`); resolved like a static route out of a given port.
    Dynamic,
}

impl RouteKind {
    pub fn name(self) -> &'static str {
        match self {
            RouteKind::Connected => "connected",
            RouteKind::Local => "local",
            RouteKind::Broadcast => "broadcast",
            RouteKind::Static => "static",
            RouteKind::Dynamic => "dynamic",
        }
    }
}

/// A static route as configured: a prefix via a gateway, out of a port, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: Prefix,
    pub via: Option<u32>,
    pub port: Option<u16>,
}

/// One resolved entry of the routing table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteEntry {
    pub prefix: Prefix,
    pub kind: RouteKind,
    pub hop: Hop,
}

/// Resolves a static route against the interfaces: the port is given, or is the one whose
/// connected subnet holds the gateway.
pub fn resolve_static(ifaces: &[Iface], r: &StaticRoute) -> Result<RouteEntry, String> {
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
        (Some(gw), None) => ifaces
            .iter()
            .find(|i| i.subnet().is_some_and(|s| s.contains(gw)))
            .map(|i| i.port)
            .ok_or_else(|| {
                format!(
                    "route {}: gateway {} is not on a connected subnet (add `port` to send to it on-link)",
                    r.prefix,
                    Ipv4Addr::from(gw)
                )
            })?,
    };
    if let Some(gw) = r.via {
        if ifaces.iter().any(|i| i.addr.is_some_and(|(a, _)| a == gw)) {
            return Err(format!(
                "route {}: gateway {} is one of the appliance's own addresses",
                r.prefix,
                Ipv4Addr::from(gw)
            ));
        }
        if super::ipv4::bad_source(gw) {
            return Err(format!(
                "route {}: gateway {} is not a unicast address",
                r.prefix,
                Ipv4Addr::from(gw)
            ));
        }
    }
    Ok(RouteEntry {
        prefix: r.prefix,
        kind: RouteKind::Static,
        hop: Hop::Forward {
            port,
            gateway: r.via.unwrap_or(0),
        },
    })
}

/// The interface routes: connected subnet, the address itself (local), and the subnet's
/// directed broadcast (for subnets shorter than /31).
pub fn interface_routes(ifaces: &[Iface]) -> Result<Vec<RouteEntry>, String> {
    let mut v: Vec<RouteEntry> = Vec::new();
    for i in ifaces {
        let Some((a, l)) = i.addr else { continue };
        let net = Prefix::new(a, l);
        for o in ifaces {
            if o.port != i.port
                && let Some(os) = o.subnet()
                && (os.contains(net.addr) || net.contains(os.addr))
            {
                return Err(format!(
                    "interfaces '{}' ({net}) and '{}' ({os}) have overlapping subnets",
                    i.name, o.name
                ));
            }
        }
        v.push(RouteEntry {
            prefix: net,
            kind: RouteKind::Connected,
            hop: Hop::Forward {
                port: i.port,
                gateway: 0,
            },
        });
        v.push(RouteEntry {
            prefix: Prefix::new(a, 32),
            kind: RouteKind::Local,
            hop: Hop::Local,
        });
        if l < 31 {
            v.push(RouteEntry {
                prefix: Prefix::new(net.broadcast(), 32),
                kind: RouteKind::Broadcast,
                hop: Hop::Broadcast,
            });
        }
    }
    Ok(v)
}

/// The complete route list: interface routes, then the static routes. Fails on a static
/// route that cannot be resolved or that collides with an interface route or another static
/// route.
pub fn resolve(ifaces: &[Iface], statics: &[StaticRoute]) -> Result<Vec<RouteEntry>, String> {
    let mut v = interface_routes(ifaces)?;
    let mut seen: BTreeMap<Prefix, RouteKind> = v.iter().map(|e| (e.prefix, e.kind)).collect();
    for r in statics {
        let e = resolve_static(ifaces, r)?;
        match seen.insert(e.prefix, RouteKind::Static) {
            None => {}
            Some(RouteKind::Static) => check_path(&v, &e)?,
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

/// A further next hop of a static route's prefix (ECMP): not one it has already, and no more
/// than [`MAX_PATHS`].
fn check_path(v: &[RouteEntry], e: &RouteEntry) -> Result<(), String> {
    let same: Vec<&RouteEntry> = v.iter().filter(|x| x.prefix == e.prefix).collect();
    if same.iter().any(|x| x.hop == e.hop) {
        return Err(format!("route {}: a next hop is given twice", e.prefix));
    }
    if same.len() >= MAX_PATHS {
        return Err(format!("route {}: at most {MAX_PATHS} next hops", e.prefix));
    }
    Ok(())
}

/// The entries of a route list grouped by prefix, in order of first appearance: one hop,
/// or several (a static route with several next hops).
pub(crate) fn by_prefix<P: Ord + Copy, H: Copy>(
    entries: impl Iterator<Item = (P, H)>,
) -> Vec<(P, Vec<H>)> {
    let mut out: Vec<(P, Vec<H>)> = Vec::new();
    let mut at: BTreeMap<P, usize> = BTreeMap::new();
    for (p, h) in entries {
        match at.get(&p) {
            Some(&k) => out[k].1.push(h),
            None => {
                at.insert(p, out.len());
                out.push((p, vec![h]));
            }
        }
    }
    out
}

/// The compiled table the data path reads: IPv4, and IPv6 when any IPv6 route exists.
pub struct FwdTable {
    fib: Fib,
    hops: Vec<Hop>,
    groups: Groups<Prefix, Hop>,
    routes: usize,
    v6: Option<Table6>,
}

impl FwdTable {
    /// Compiles the resolved route lists of both families (EAL must be up). Sized for the
    /// lists with room to spare; no IPv6 table when there is no IPv6 route. Its multipath
    /// groups count for up to [`MAX_WORKERS`] workers.
    pub fn build(
        entries: &[RouteEntry],
        entries6: &[RouteEntry6],
        socket: i32,
    ) -> Result<FwdTable, String> {
        FwdTable::build_after(entries, entries6, socket, None, MAX_WORKERS)
    }

    /// [`FwdTable::build`] for a table that replaces `prev`: a prefix with several next hops
    /// keeps its group's bucket assignment and counts for the next hops it still has
    /// ([`super::ecmp::spread`]), so that flows on them keep their next hop. `workers`: the
    /// workers of the configuration (worker indexes below it), each of which gets its own
    /// counters in every group (128 bytes a group).
    pub fn build_after(
        entries: &[RouteEntry],
        entries6: &[RouteEntry6],
        socket: i32,
        prev: Option<&FwdTable>,
        workers: usize,
    ) -> Result<FwdTable, String> {
        let v6 = if entries6.is_empty() {
            None
        } else {
            Some(Table6::build_after(
                entries6,
                socket,
                prev.and_then(|p| p.v6.as_ref()),
                workers,
            )?)
        };
        let long_groups: BTreeSet<u32> = entries
            .iter()
            .filter(|e| e.prefix.len > 24)
            .map(|e| e.prefix.addr >> 8)
            .collect();
        let cfg = FibConfig {
            max_routes: (entries.len() as u32 + entries.len() as u32 / 4 + 64).max(1024),
            tbl8s: (long_groups.len() as u32 + long_groups.len() as u32 / 4 + 16).max(64),
            socket,
        };
        let mut fib = Fib::new(cfg).map_err(|e| e.to_string())?;
        let mut hops: Vec<Hop> = Vec::new();
        let mut groups: Groups<Prefix, Hop> = Groups::new(workers);
        let mut ids: HashMap<Hop, u32> = HashMap::new();
        let by = by_prefix(entries.iter().map(|e| (e.prefix, e.hop)));
        let prefixes = by.len();
        for (prefix, members) in by {
            let hop = if members.len() == 1 {
                members[0]
            } else {
                let old = prev.and_then(|p| p.groups.of(prefix));
                Hop::Group(groups.set(prefix, members, old)?)
            };
            let id = *ids.entry(hop).or_insert_with(|| {
                hops.push(hop);
                (hops.len() - 1) as u32
            });
            fib.add(prefix.addr, prefix.len, id)
                .map_err(|err| format!("route {prefix}: {err}"))?;
        }
        Ok(FwdTable {
            fib,
            hops,
            groups,
            routes: prefixes,
            v6,
        })
    }

    /// Changes routes in place, for a table no worker reads (one replaced and taken back:
    /// [`std::sync::Arc::get_mut`]): removes `del`, adds or replaces `add` (both families;
    /// `routes`/`routes6`: the route counts after). Much cheaper than [`FwdTable::build`]
    /// for a few changes to a large table (no new 64 MiB tbl24 to allocate and fill, no
    /// pass over every route). A prefix listed several times in `add` (several next hops) gets a next-hop
    /// group whose buckets and counts follow the group of that prefix in `cur` (the table in
    /// force: flows keep their next hops, as with [`FwdTable::build_after`]), or in this
    /// table without it. An error (no room: rules, tbl8 groups, no IPv6 table) may leave the table
    /// half changed: the caller builds a new one instead.
    pub fn update(
        &mut self,
        del: &[Prefix],
        add: &[RouteEntry],
        del6: &[Prefix6],
        add6: &[RouteEntry6],
        routes: (usize, usize),
        cur: Option<&FwdTable>,
    ) -> Result<(), String> {
        let cfg = self.fib.config();
        if routes.0 as u64 + 64 > cfg.max_routes as u64 {
            return Err("IPv4 table full".into());
        }
        for p in del {
            // Absent (never installed) is fine.
            let _ = self.fib.delete(p.addr, p.len);
            self.groups.remove(*p);
        }
        let mut ids: HashMap<Hop, u32> = self
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
                Hop::Group(g)
            };
            let id = *ids.entry(hop).or_insert_with(|| {
                self.hops.push(hop);
                (self.hops.len() - 1) as u32
            });
            self.fib
                .add(prefix.addr, prefix.len, id)
                .map_err(|err| format!("route {prefix}: {err}"))?;
        }
        self.routes = routes.0;
        if !del6.is_empty() || !add6.is_empty() {
            match self.v6.as_mut() {
                Some(t) if routes.1 > 0 => {
                    t.update(del6, add6, routes.1, cur.and_then(|c| c.v6.as_ref()))?
                }
                _ => return Err("no IPv6 table, or an empty one".into()),
            }
        }
        Ok(())
    }

    /// Next-hop group `g` (from a [`Hop::Group`] of this table).
    #[inline(always)]
    pub fn group(&self, g: u32) -> &Group<Hop> {
        self.groups.get(g)
    }

    /// The groups (prefixes with several next hops) and their prefixes.
    pub fn groups(&self) -> impl Iterator<Item = (Prefix, &Group<Hop>)> {
        self.groups.iter()
    }

    /// The group of `prefix` (a route with several next hops).
    pub fn group_of(&self, prefix: Prefix) -> Option<&Group<Hop>> {
        self.groups.of(prefix)
    }

    /// The workers the groups count for ([`FwdTable::build_after`]).
    pub fn workers(&self) -> usize {
        self.groups.workers()
    }

    /// Next-hop id of `ip` ([`MISS`] = no route), inlined into the caller.
    #[inline(always)]
    pub fn lookup_one(&self, ip: u32) -> u32 {
        self.fib.lookup_one(ip)
    }

    /// The FIB by value, for a burst's fast-path tests ([`dpdk::fib::FibView`]).
    #[inline(always)]
    pub fn fib_view(&self) -> dpdk::fib::FibView<'_> {
        self.fib.view()
    }

    /// The hop of a next-hop id from a lookup (`None` for [`MISS`]).
    #[inline]
    pub fn hop(&self, id: u32) -> Option<Hop> {
        if id == MISS {
            None
        } else {
            self.hops.get(id as usize).copied()
        }
    }

    /// The hop for one address.
    pub fn lookup(&self, ip: u32) -> Option<Hop> {
        self.fib.lookup(ip).and_then(|id| self.hop(id))
    }

    /// Number of routes (prefixes: a route with several next hops is one) compiled in (both
    /// families).
    pub fn routes(&self) -> usize {
        self.routes + self.v6.as_ref().map_or(0, |t| t.routes())
    }

    /// Number of distinct next hops (both families).
    pub fn next_hops(&self) -> usize {
        self.hops.len() + self.v6.as_ref().map_or(0, |t| t.next_hops())
    }

    /// The IPv6 table (None: no IPv6 route).
    #[inline]
    pub fn v6(&self) -> Option<&Table6> {
        self.v6.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn prefixes_of_both_families_parse_alike() {
        use crate::forward::table6::Prefix6;
        assert_eq!(
            Prefix::parse(" 10.0.0.0 / 8 "),
            Ok(Prefix::new(ip("10.0.0.0"), 8))
        );
        assert_eq!(
            Prefix::parse("192.0.2.7"),
            Ok(Prefix::new(ip("192.0.2.7"), 32))
        );
        assert_eq!(Prefix::parse("0.0.0.0/0"), Ok(Prefix::new(0, 0)));
        let e = Prefix::parse("10.0.0.1/8").unwrap_err();
        assert!(e.contains("host bits set: did you mean 10.0.0.0/8?"), "{e}");
        let e = Prefix::parse("10.0.0.0/33").unwrap_err();
        assert!(e.contains("prefix length must be 0..=32"), "{e}");
        let e = Prefix::parse("2001:db8::/32").unwrap_err();
        assert!(e.contains("is not an IPv4 prefix (a.b.c.d/len)"), "{e}");
        let p = Prefix6::parse("2001:db8::/32").unwrap();
        assert_eq!((p.addr >> 96, p.len), (0x2001_0db8, 32));
        assert_eq!(Prefix6::parse("::1").unwrap().len, 128);
        let e = Prefix6::parse("2001:db8::1/64").unwrap_err();
        assert!(
            e.contains("host bits set: did you mean 2001:db8::/64?"),
            "{e}"
        );
        let e = Prefix6::parse("2001:db8::/129").unwrap_err();
        assert!(e.contains("prefix length must be 0..=128"), "{e}");
        let e = Prefix6::parse("10.0.0.0/8").unwrap_err();
        assert!(e.contains("is not an IPv6 prefix (x:y::z/len)"), "{e}");
    }

    fn ifaces() -> Vec<Iface> {
        vec![
            Iface {
                port: 0,
                name: "p0".into(),
                mac: [2, 0, 0, 0, 0, 1],
                addr: Some((ip("192.0.2.1"), 24)),
                addr6: Vec::new(),
                mtu: 1500,
                mss_clamp: None,
                ra: false,
            },
            Iface {
                port: 1,
                name: "p1".into(),
                mac: [2, 0, 0, 0, 0, 2],
                addr: Some((ip("198.51.100.1"), 24)),
                addr6: Vec::new(),
                mtu: 1500,
                mss_clamp: None,
                ra: false,
            },
            Iface {
                port: 2,
                name: "p2".into(),
                mac: [2, 0, 0, 0, 0, 3],
                addr: None,
                addr6: Vec::new(),
                mtu: 1500,
                mss_clamp: None,
                ra: false,
            },
        ]
    }

    #[test]
    fn a_hop_is_eight_bytes_with_a_group_of_32_bits() {
        // The hop array is read per packet: a group index of 32 bits (no limit of 65,536
        // multipath prefixes) keeps it at 8 bytes.
        assert_eq!(std::mem::size_of::<Hop>(), 8);
    }

    #[test]
    fn prefixes_parse_strictly() {
        assert_eq!(
            Prefix::parse("10.0.0.0/8").unwrap(),
            Prefix {
                addr: ip("10.0.0.0"),
                len: 8
            }
        );
        assert_eq!(Prefix::parse("10.1.2.3").unwrap().len, 32);
        assert_eq!(Prefix::parse("0.0.0.0/0").unwrap().len, 0);
        assert!(
            Prefix::parse("10.0.0.1/8")
                .unwrap_err()
                .contains("did you mean 10.0.0.0/8")
        );
        assert!(Prefix::parse("10.0.0.0/33").is_err());
        assert!(Prefix::parse("10.0.0/8").is_err());
        assert_eq!(
            Prefix::parse("192.0.2.0/24").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            Prefix::parse("192.0.2.0/24").unwrap().broadcast(),
            ip("192.0.2.255")
        );
    }

    #[test]
    fn interface_addresses_and_macs() {
        assert_eq!(
            parse_if_addr("192.0.2.1/24").unwrap(),
            (ip("192.0.2.1"), 24)
        );
        assert!(
            parse_if_addr("192.0.2.0/24")
                .unwrap_err()
                .contains("network")
        );
        assert!(
            parse_if_addr("192.0.2.255/24")
                .unwrap_err()
                .contains("broadcast")
        );
        assert!(parse_if_addr("192.0.2.0/31").is_ok(), "RFC 3021");
        assert!(parse_if_addr("192.0.2.1").is_err());
        assert!(parse_if_addr("127.0.0.1/8").is_err());
        assert_eq!(
            parse_mac("02:00:0a:0B:00:ff").unwrap(),
            [2, 0, 10, 11, 0, 255]
        );
        assert!(parse_mac("02:00:0a:0b:00").is_err());
        assert!(parse_mac("02:00:0a:0b:00:fff").is_err());
        assert_eq!(fmt_mac(&[2, 0, 10, 11, 0, 255]), "02:00:0a:0b:00:ff");
    }

    #[test]
    fn resolution_rules() {
        let i = ifaces();
        let r = |p: &str, via: Option<&str>, port: Option<u16>| StaticRoute {
            prefix: Prefix::parse(p).unwrap(),
            via: via.map(ip),
            port,
        };
        let e = resolve(&i, &[r("203.0.113.0/24", Some("198.51.100.2"), None)]).unwrap();
        // 2 interfaces x (connected, local, broadcast) + 1 static.
        assert_eq!(e.len(), 7);
        assert_eq!(
            e[6].hop,
            Hop::Forward {
                port: 1,
                gateway: ip("198.51.100.2")
            }
        );
        assert_eq!(e[0].kind, RouteKind::Connected);
        let on_link = resolve(&i, &[r("10.9.0.0/16", None, Some(2))]).unwrap();
        assert_eq!(
            on_link[6].hop,
            Hop::Forward {
                port: 2,
                gateway: 0
            }
        );
        assert!(
            resolve(&i, &[r("10.0.0.0/8", Some("10.1.1.1"), None)])
                .unwrap_err()
                .contains("not on a connected subnet")
        );
        assert!(resolve(&i, &[r("10.0.0.0/8", None, None)]).is_err());
        assert!(resolve(&i, &[r("10.0.0.0/8", None, Some(9))]).is_err());
        assert!(
            resolve(&i, &[r("10.0.0.0/8", Some("192.0.2.1"), None)])
                .unwrap_err()
                .contains("own addresses")
        );
        assert!(
            resolve(&i, &[r("192.0.2.0/24", Some("198.51.100.2"), None)])
                .unwrap_err()
                .contains("already a connected route")
        );
        // Several next hops for one prefix: ECMP, each once, at most MAX_PATHS.
        let multi = [
            r("10.0.0.0/8", Some("192.0.2.2"), None),
            r("10.0.0.0/8", Some("198.51.100.3"), None),
        ];
        let e = resolve(&i, &multi).unwrap();
        assert_eq!(e.len(), 8);
        assert_eq!(
            by_prefix(e.iter().map(|e| (e.prefix, e.hop)))
                .last()
                .unwrap()
                .1,
            vec![
                Hop::Forward {
                    port: 0,
                    gateway: ip("192.0.2.2")
                },
                Hop::Forward {
                    port: 1,
                    gateway: ip("198.51.100.3")
                }
            ]
        );
        let dup = [
            r("10.0.0.0/8", Some("192.0.2.2"), None),
            r("10.0.0.0/8", Some("192.0.2.2"), None),
        ];
        assert!(resolve(&i, &dup).unwrap_err().contains("given twice"));
        let many: Vec<StaticRoute> = (0..=MAX_PATHS as u32)
            .map(|k| StaticRoute {
                prefix: Prefix::parse("10.0.0.0/8").unwrap(),
                via: Some(ip("192.0.2.10") + k),
                port: None,
            })
            .collect();
        assert!(resolve(&i, &many[..MAX_PATHS]).is_ok());
        assert!(resolve(&i, &many).unwrap_err().contains("at most 16"));
        let mut overlap = ifaces();
        overlap[1].addr = Some((ip("192.0.2.129"), 25));
        assert!(
            interface_routes(&overlap)
                .unwrap_err()
                .contains("overlapping")
        );
    }
}
