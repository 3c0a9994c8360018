//! NAT44: inside/outside ports, address pool and port range, filtering, static mappings and
//! port forwards, timeouts, table capacity (section [nat]). See docs/nat.md.
//!
//! ```toml
//! [nat]
//! inside = ["p0"]                       # ports facing the inside hosts
//! outside = ["p1"]                      # ports facing the outside
//! pool = ["198.51.100.10", "198.51.100.16/30", "198.51.100.20-198.51.100.22"]
//! port_range = [1024, 65535]            # dynamic ports, split between NAT workers
//! filtering = "address-and-port-dependent"   # | "address-dependent" | "endpoint-independent"
//! max_sessions = 262144                 # per NAT worker (88 bytes each)
//! lru_reclaim = false                   # when full: reclaim the least recently used session
//! max_sessions_per_host = 0             # 0 = no limit
//! no_nat = ["10.1.0.0/16"]              # more destinations never translated
//! static = [
//!   { outside = "203.0.113.5:443", inside = "10.0.0.5:8443", proto = "tcp" },
//!   { outside = "203.0.113.6", inside = "10.0.0.6" },   # 1:1, every protocol and port
//! ]
//! port_block = 512                      # pool ports in blocks per host (0/absent: per session)
//! blocks_per_host = 1                   # blocks a host may hold (1..=4)
//! block_log = "/var/log/pollfwd/nat-blocks.log"   # one RFC 5424 line per block taken/freed
//! deterministic = [                     # RFC 7422: a fixed address and port block per host
//!   { inside = "10.9.0.0/24", outside = "198.51.100.0/30", stateless_inbound = false },
//! ]
//! [nat.timeouts]                        # seconds
//! tcp_established = 7440
//! tcp_transitory = 240
//! udp = 300
//! icmp = 60
//! ```

use std::net::Ipv4Addr;
use std::ops::Range;
use std::sync::Arc;

use pollfwd_nf::nat::det::{DetMap, DetTable};
use pollfwd_nf::nat::statics::{StaticMapping, StaticTable};
use pollfwd_nf::nat::{Filtering, NatParams, Timeouts};
use toml::Spanned;

use crate::config::addr::{self, PrefixError};
use crate::config::{Config, ConfigError, ErrAt};

/// Most pool addresses (each costs 768 KiB of port tables, split between the workers).
pub const MAX_POOL: usize = 1024;
/// Largest session table per worker.
pub const MAX_SESSIONS: u32 = 1 << 26;

pub use super::section::*;

pub const DEFAULT_MAX_SESSIONS: u32 = 262_144;

fn parse_filtering(s: &str) -> Option<Filtering> {
    Some(match s {
        "endpoint-independent" => Filtering::EndpointIndependent,
        "address-dependent" => Filtering::AddressDependent,
        "address-and-port-dependent" => Filtering::AddressAndPortDependent,
        _ => return None,
    })
}

/// "a.b.c.d", "a.b.c.d/len" or "a.b.c.d-e.f.g.h" to a list of addresses.
pub fn parse_pool_item(s: &str) -> Result<Vec<u32>, String> {
    let s = s.trim();
    let range = if let Some((a, len)) = s.split_once('/') {
        let a: Ipv4Addr = a.parse().map_err(|_| format!("'{s}': bad address"))?;
        let len: u32 = len
            .parse()
            .map_err(|_| format!("'{s}': bad prefix length"))?;
        if !(16..=32).contains(&len) {
            return Err(format!("'{s}': prefix length must be 16..=32"));
        }
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let net = u32::from(a) & mask;
        net..=(net | !mask)
    } else if let Some((a, b)) = s.split_once('-') {
        let a: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("'{s}': bad address"))?;
        let b: Ipv4Addr = b
            .trim()
            .parse()
            .map_err(|_| format!("'{s}': bad address"))?;
        if u32::from(b) < u32::from(a) {
            return Err(format!("'{s}': range ends before it starts"));
        }
        u32::from(a)..=u32::from(b)
    } else {
        let a: Ipv4Addr = s.parse().map_err(|_| format!("'{s}': bad address"))?;
        u32::from(a)..=u32::from(a)
    };
    if range.end() - range.start() >= MAX_POOL as u32 {
        return Err(format!("'{s}': more than {MAX_POOL} addresses"));
    }
    Ok(range.collect())
}

/// "a.b.c.d/len" to (network, mask).
pub fn parse_prefix(s: &str) -> Result<(u32, u32), String> {
    let (a, len) = addr::parse_prefix(s).map_err(|e| match e {
        PrefixError::Address => format!("'{s}': bad address"),
        PrefixError::Length => format!("'{s}': bad prefix length"),
    })?;
    let mask = addr::mask(len);
    Ok((a & mask, mask))
}

fn parse_ep(s: &str, want_port: bool) -> Result<(u32, u16), String> {
    let (a, p) = match s.rsplit_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: Ipv4Addr = a
        .trim()
        .parse()
        .map_err(|_| format!("'{s}': bad address"))?;
    let port = match (p, want_port) {
        (Some(p), true) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("'{s}': bad port"))?,
        (None, false) => 0,
        (Some(_), false) => {
            return Err(format!(
                "'{s}': a 1:1 mapping has no port (give `proto` for a port forward)"
            ));
        }
        (None, true) => return Err(format!("'{s}': a port forward needs address:port")),
    };
    Ok((u32::from(addr), port))
}

/// Parses one static entry.
pub fn parse_static(
    outside: &str,
    inside: &str,
    proto: Option<&str>,
) -> Result<StaticMapping, String> {
    let proto = match proto {
        None => None,
        Some("tcp") => Some(pollfwd_nf::nat::pkt::PROTO_TCP),
        Some("udp") => Some(pollfwd_nf::nat::pkt::PROTO_UDP),
        Some(p) => return Err(format!("proto '{p}': tcp or udp")),
    };
    let (out_addr, out_port) = parse_ep(outside, proto.is_some())?;
    let (in_addr, in_port) = parse_ep(inside, proto.is_some())?;
    Ok(StaticMapping {
        proto,
        out_addr,
        out_port,
        in_addr,
        in_port,
    })
}

/// The pool (sorted, unique) and dynamic port range of a section.
fn pool_and_range(n: &NatConfig, err: ErrAt<'_>) -> Result<(Vec<u32>, u16, u16), ConfigError> {
    let mut pool = Vec::new();
    for p in &n.pool {
        pool.extend(
            parse_pool_item(p.get_ref()).map_err(|m| err(p.span(), format!("nat.pool: {m}")))?,
        );
    }
    pool.sort_unstable();
    pool.dedup();
    if pool.len() > MAX_POOL {
        let span = n.pool.first().map(|p| p.span()).unwrap_or(0..0);
        return Err(err(
            span,
            format!("nat.pool: {} addresses, at most {MAX_POOL}", pool.len()),
        ));
    }
    let (lo, hi) = match &n.port_range {
        None => (1024, 65535),
        Some(r) => {
            let [lo, hi] = *r.get_ref();
            if lo == 0 || lo > hi || hi > 65535 {
                return Err(err(
                    r.span(),
                    format!("nat.port_range [{lo}, {hi}]: need 1 <= first <= last <= 65535"),
                ));
            }
            (lo as u16, hi as u16)
        }
    };
    Ok((pool, lo, hi))
}

/// The pool (sorted, unique) and dynamic port range of the configuration's [nat] section.
pub fn pool_and_range_of(c: &Config) -> Result<(Vec<u32>, u16, u16), ConfigError> {
    let err = |_: Range<usize>, msg: String| ConfigError {
        file: String::new(),
        line: 0,
        col: 0,
        msg,
    };
    match &c.nat {
        Some(n) => pool_and_range(n.get_ref(), &err),
        None => Ok((Vec::new(), 1024, 65535)),
    }
}

/// The static mappings of a section, validated against the pool and range.
pub fn statics(c: &Config, err: ErrAt<'_>) -> Result<Vec<StaticMapping>, ConfigError> {
    let Some(n) = &c.nat else {
        return Ok(Vec::new());
    };
    let n = n.get_ref();
    let (pool, lo, hi) = pool_and_range(n, err)?;
    let mut v: Vec<StaticMapping> = Vec::new();
    for e in &n.statics {
        let s = e.get_ref();
        let m = parse_static(
            s.outside.get_ref(),
            s.inside.get_ref(),
            s.proto.as_ref().map(|p| p.get_ref().as_str()),
        )
        .map_err(|m| err(e.span(), format!("nat.static: {m}")))?;
        check_static(&m, &pool, lo, hi).map_err(|m| err(e.span(), format!("nat.static: {m}")))?;
        v.push(m);
        StaticTable::new(&v).map_err(|m| err(e.span(), format!("nat.static: {m}")))?;
    }
    Ok(v)
}

/// The deterministic maps of a section, checked (prefixes, overlaps, against the pool and the
/// static mappings' outside addresses), errors at the entry.
pub fn det_maps(n: &NatConfig, err: ErrAt<'_>) -> Result<Vec<DetMap>, ConfigError> {
    let mut v: Vec<DetMap> = Vec::new();
    if n.deterministic.is_empty() {
        return Ok(v);
    }
    let (pool, _, _) = pool_and_range(n, err)?;
    for e in &n.deterministic {
        let d = e.get_ref();
        let prefix = |s: &Spanned<String>, what: &str| {
            addr::parse_prefix(s.get_ref()).map_err(|e| {
                let m = match e {
                    PrefixError::Address => "bad address",
                    PrefixError::Length => "bad prefix length",
                };
                err(
                    s.span(),
                    format!("nat.deterministic: {what} '{}': {m}", s.get_ref()),
                )
            })
        };
        let (i, o) = (prefix(&d.inside, "inside")?, prefix(&d.outside, "outside")?);
        let m = DetMap::new(i, o, d.stateless_inbound)
            .map_err(|m| err(e.span(), format!("nat.deterministic: {m}")))?;
        if let Some(a) = pool.iter().find(|a| m.contains_outside(**a)) {
            return Err(err(
                d.outside.span(),
                format!(
                    "nat.deterministic: outside {} holds pool address {}: give the pool other addresses",
                    d.outside.get_ref(),
                    Ipv4Addr::from(*a)
                ),
            ));
        }
        for s in &n.statics {
            let so = s.get_ref().outside.get_ref();
            let a = so.rsplit_once(':').map_or(so.as_str(), |x| x.0);
            if let Ok(a) = a.trim().parse::<Ipv4Addr>()
                && m.contains_outside(u32::from(a))
            {
                return Err(err(
                    s.span(),
                    format!(
                        "nat.static: outside {a} is in the deterministic outside {}",
                        d.outside.get_ref()
                    ),
                ));
            }
        }
        v.push(m);
        DetTable::new(&v).map_err(|m| err(e.span(), format!("nat.deterministic: {m}")))?;
    }
    Ok(v)
}

/// A static mapping must not collide with the dynamic pool: a 1:1 outside address is not a
/// pool address, and a port forward on a pool address uses a port outside the dynamic range.
pub fn check_static(m: &StaticMapping, pool: &[u32], lo: u16, hi: u16) -> Result<(), String> {
    let in_pool = pool.binary_search(&m.out_addr).is_ok();
    match m.proto {
        None if in_pool => Err(format!(
            "{} is a pool address: a 1:1 mapping needs an address of its own",
            Ipv4Addr::from(m.out_addr)
        )),
        Some(_) if in_pool && (lo..=hi).contains(&m.out_port) => Err(format!(
            "port {} of pool address {} is in the dynamic range {lo}-{hi}: forward a port outside it",
            m.out_port,
            Ipv4Addr::from(m.out_addr)
        )),
        _ => Ok(()),
    }
}

fn seconds(
    t: &Option<Spanned<f64>>,
    default_ms: u32,
    what: &str,
    err: ErrAt<'_>,
) -> Result<u32, ConfigError> {
    match t {
        None => Ok(default_ms),
        Some(s) => {
            let v = *s.get_ref();
            if !v.is_finite() || !(0.001..=86_400.0 * 7.0).contains(&v) {
                return Err(err(
                    s.span(),
                    format!("nat.timeouts.{what}: {v} s must be 0.001..=604800"),
                ));
            }
            Ok((v * 1000.0).round() as u32)
        }
    }
}

/// Timeouts of a section.
pub fn timeouts(n: &NatConfig, err: ErrAt<'_>) -> Result<Timeouts, ConfigError> {
    let d = Timeouts::default();
    let t = &n.timeouts;
    Ok(Timeouts {
        tcp_established: seconds(
            &t.tcp_established,
            d.tcp_established,
            "tcp_established",
            err,
        )?,
        tcp_transitory: seconds(&t.tcp_transitory, d.tcp_transitory, "tcp_transitory", err)?,
        udp: seconds(&t.udp, d.udp, "udp", err)?,
        icmp: seconds(&t.icmp, d.icmp, "icmp", err)?,
    })
}

fn ports_of(
    c: &Config,
    list: &Spanned<Vec<Spanned<String>>>,
    what: &str,
    err: ErrAt<'_>,
) -> Result<Vec<usize>, ConfigError> {
    if list.get_ref().is_empty() {
        return Err(err(list.span(), format!("nat.{what}: at least one port")));
    }
    list.get_ref()
        .iter()
        .map(|p| {
            c.iface_index(p.get_ref()).ok_or_else(|| {
                err(
                    p.span(),
                    format!("nat.{what}: unknown port or interface '{}'", p.get_ref()),
                )
            })
        })
        .collect()
}

/// Refuses a `max_sessions` whose tables (one per NAT worker, allocated at start) do not fit
/// in `available` bytes of memory, at the key (or the `[nat]` section when it is the default).
pub fn fits_memory(c: &Config, available: Option<u64>, err: ErrAt<'_>) -> Result<(), ConfigError> {
    let (Some(n), Some(available)) = (&c.nat, available) else {
        return Ok(());
    };
    let workers = nat_workers(c).len() as u64;
    let ns = n.get_ref();
    let max = ns
        .max_sessions
        .as_ref()
        .map_or(DEFAULT_MAX_SESSIONS, |m| *m.get_ref());
    let per = pollfwd_nf::nat::NatCore::session_table_bytes(max, ns.max_sessions_per_host > 0);
    let need = per * workers;
    if need <= available {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let span = ns.max_sessions.as_ref().map_or(n.span(), |m| m.span());
    Err(err(
        span,
        format!(
            "nat.max_sessions {max}: {workers} NAT worker(s) need {:.2} GiB of session tables, \
             more than the {:.2} GiB of memory available (MemAvailable); lower it or free memory",
            gib(need),
            gib(available)
        ),
    ))
}

/// Worker indices (config lcore order) whose chain runs "nat".
pub fn nat_workers(c: &Config) -> Vec<u16> {
    c.lcores
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.get_ref()
                .stages
                .get_ref()
                .iter()
                .any(|s| s.get_ref() == "nat")
        })
        .map(|(i, _)| i as u16)
        .collect()
}

pub fn validate(c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
    let uses: Vec<Range<usize>> = c
        .lcores
        .iter()
        .flat_map(|l| l.get_ref().stages.get_ref().iter())
        .filter(|s| s.get_ref() == "nat")
        .map(|s| s.span())
        .collect();
    let Some(ns) = &c.nat else {
        if let Some(span) = uses.first() {
            return Err(err(
                span.clone(),
                "stage 'nat' needs a [nat] section".into(),
            ));
        }
        return Ok(());
    };
    let n = ns.get_ref();
    let inside = ports_of(c, &n.inside, "inside", err)?;
    let outside = ports_of(c, &n.outside, "outside", err)?;
    for (i, p) in n.outside.get_ref().iter().enumerate() {
        if inside.contains(&outside[i]) {
            return Err(err(
                p.span(),
                format!("nat: port '{}' is both inside and outside", p.get_ref()),
            ));
        }
    }
    let (pool, lo, hi) = pool_and_range(n, err)?;
    let st = statics(c, err)?;
    let det = det_maps(n, err)?;
    if pool.is_empty() && st.is_empty() && det.is_empty() {
        return Err(err(
            ns.span(),
            "nat: give a `pool` (or a `deterministic` map, or a `static` mapping)".into(),
        ));
    }
    let workers = nat_workers(c).len().max(1) as u32;
    if (hi as u32 - lo as u32 + 1) < workers {
        let span = n.port_range.as_ref().map(|r| r.span()).unwrap_or(ns.span());
        return Err(err(
            span,
            format!(
                "nat.port_range: {} ports for {workers} NAT workers",
                hi as u32 - lo as u32 + 1
            ),
        ));
    }
    if let Some(f) = &n.filtering
        && parse_filtering(f.get_ref()).is_none()
    {
        return Err(err(
            f.span(),
            format!(
                "nat.filtering '{}': endpoint-independent, address-dependent or address-and-port-dependent",
                f.get_ref()
            ),
        ));
    }
    if let Some(m) = &n.max_sessions
        && (*m.get_ref() == 0 || *m.get_ref() > MAX_SESSIONS)
    {
        return Err(err(
            m.span(),
            format!(
                "nat.max_sessions {} must be 1..={MAX_SESSIONS}",
                m.get_ref()
            ),
        ));
    }
    if let Some(b) = &n.expiry_budget
        && *b.get_ref() == 0
    {
        return Err(err(b.span(), "nat.expiry_budget must be >= 1".into()));
    }
    validate_blocks(n, hi as u32 - lo as u32 + 1, workers, err)?;
    for p in &n.no_nat {
        parse_prefix(p.get_ref()).map_err(|m| err(p.span(), format!("nat.no_nat: {m}")))?;
    }
    timeouts(n, err)?;
    Ok(())
}

/// `port_block`, `blocks_per_host`, `block_log`: a block fits in every NAT worker's slice of
/// the `range` ports; the log's directory exists.
fn validate_blocks(
    n: &NatConfig,
    range: u32,
    workers: u32,
    err: ErrAt<'_>,
) -> Result<(), ConfigError> {
    let slice = range / workers.max(1);
    if let Some(b) = &n.port_block {
        let v = *b.get_ref();
        if v != 0 && !(8..=slice).contains(&v) {
            return Err(err(
                b.span(),
                format!(
                    "nat.port_block {v}: 0 (off) or 8..={slice} (the ports of one NAT worker's slice:                      {range} ports of port_range for {workers} worker(s))"
                ),
            ));
        }
    }
    let on = n.port_block.as_ref().is_some_and(|b| *b.get_ref() > 0);
    if let Some(k) = &n.blocks_per_host {
        if !(1..=pollfwd_nf::nat::blocks::MAX_PER_HOST as u32).contains(k.get_ref()) {
            return Err(err(
                k.span(),
                format!(
                    "nat.blocks_per_host {}: 1..={}",
                    k.get_ref(),
                    pollfwd_nf::nat::blocks::MAX_PER_HOST
                ),
            ));
        }
        if !on {
            return Err(err(k.span(), "nat.blocks_per_host needs port_block".into()));
        }
    }
    if let Some(l) = &n.block_log {
        if !on {
            return Err(err(l.span(), "nat.block_log needs port_block".into()));
        }
        let p = std::path::Path::new(l.get_ref());
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        if p.is_dir() || dir.is_some_and(|d| !d.is_dir()) || l.get_ref().is_empty() {
            return Err(err(
                l.span(),
                format!(
                    "nat.block_log '{}': a file in an existing directory",
                    l.get_ref()
                ),
            ));
        }
    }
    Ok(())
}

/// Outside addresses of the NAT (pool, static and deterministic), for proxy ARP by the forward
/// stage.
pub fn nat_outside_addresses(c: &Config) -> Vec<Ipv4Addr> {
    let err = |_: Range<usize>, msg: String| ConfigError {
        file: String::new(),
        line: 0,
        col: 0,
        msg,
    };
    let Some(n) = &c.nat else {
        return Vec::new();
    };
    let mut v = pool_and_range(n.get_ref(), &err)
        .map(|p| p.0)
        .unwrap_or_default();
    v.extend(
        statics(c, &err)
            .unwrap_or_default()
            .iter()
            .map(|m| m.out_addr),
    );
    for m in det_maps(n.get_ref(), &err).unwrap_or_default() {
        v.extend((0..m.outside_count()).map(|i| m.out_net + i));
    }
    v.sort_unstable();
    v.dedup();
    v.into_iter().map(Ipv4Addr::from).collect()
}

/// The parameters of the NAT worker at `worker` (config lcore index); `port_ids` are the
/// interface ids by interface index (`Config::iface_index`).
pub fn params(c: &Config, port_ids: &[u16], worker: usize) -> Result<NatParams, String> {
    let e = |_: Range<usize>, msg: String| ConfigError {
        file: String::new(),
        line: 0,
        col: 0,
        msg,
    };
    let err: ErrAt<'_> = &e;
    let n = c
        .nat
        .as_ref()
        .ok_or("stage 'nat' needs a [nat] section")?
        .get_ref();
    let inside = ports_of(c, &n.inside, "inside", err).map_err(|e| e.msg)?;
    let outside = ports_of(c, &n.outside, "outside", err).map_err(|e| e.msg)?;
    let (pool, lo, hi) = pool_and_range(n, err).map_err(|e| e.msg)?;
    let st = statics(c, err).map_err(|e| e.msg)?;
    let det = det_maps(n, err).map_err(|e| e.msg)?;
    let workers = nat_workers(c);
    let me = workers
        .iter()
        .position(|&w| w as usize == worker)
        .ok_or("this lcore does not run 'nat'")?;
    // Never translated: the appliance's own addresses, the inside ports' networks, no_nat.
    let mut no_nat = Vec::new();
    for (i, p) in c.ifaces().enumerate() {
        if let Some(a) = p.address.and_then(|a| a.get_ref().v4().next())
            && let Ok((net, mask)) = parse_prefix(a)
        {
            let addr = a
                .split('/')
                .next()
                .and_then(|s| s.trim().parse::<Ipv4Addr>().ok());
            if let Some(addr) = addr {
                no_nat.push((u32::from(addr), u32::MAX));
            }
            if inside.contains(&i) {
                no_nat.push((net, mask));
            }
        }
    }
    for p in &n.no_nat {
        no_nat.push(parse_prefix(p.get_ref())?);
    }
    Ok(NatParams {
        inside_ports: inside.iter().map(|&i| port_ids[i]).collect(),
        outside_ports: outside.iter().map(|&i| port_ids[i]).collect(),
        pool,
        port_lo: lo,
        port_hi: hi,
        filtering: n
            .filtering
            .as_ref()
            .and_then(|f| parse_filtering(f.get_ref()))
            .unwrap_or_default(),
        timeouts: timeouts(n, err).map_err(|e| e.msg)?,
        max_sessions: n
            .max_sessions
            .as_ref()
            .map(|m| *m.get_ref())
            .unwrap_or(DEFAULT_MAX_SESSIONS),
        lru_reclaim: n.lru_reclaim,
        max_sessions_per_host: n.max_sessions_per_host,
        statics: Arc::new(StaticTable::new(&st)?),
        det: Arc::new(DetTable::new(&det)?),
        port_block: n.port_block.as_ref().map_or(0, |b| *b.get_ref()),
        blocks_per_host: n.blocks_per_host.as_ref().map_or(1, |k| *k.get_ref() as u8),
        no_nat,
        workers,
        me,
        seed: n.seed.unwrap_or(0),
        ttl_expiry_downstream: c.lcores.get(worker).is_some_and(|l| {
            let s = l.get_ref().stages.get_ref();
            let pos = |name: &str| s.iter().position(|x| x.get_ref() == name);
            matches!((pos("nat"), pos("forward")), (Some(a), Some(b)) if a < b)
        }),
        expiry_budget: n
            .expiry_budget
            .as_ref()
            .map(|b| *b.get_ref())
            .unwrap_or(256),
    })
}

#[cfg(test)]
mod tests {
    use crate::registry::parse;

    const BASE: &str = r#"
[[port]]
name = "p0"
device = "net_null0"
address = "10.0.0.1/24"

[[port]]
name = "p1"
device = "net_null1"

[[lcore]]
id = 1
rx = [{ port = "p0" }, { port = "p1" }]
stages = ["nat", "xconnect"]

[xconnect]
pairs = [["p0", "p1"]]
"#;

    fn cfg(nat: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        parse("t.toml", &format!("{BASE}\n[nat]\n{nat}\n")).map(|r| r.0)
    }

    #[test]
    fn max_sessions_that_cannot_be_allocated_is_refused_at_its_key() {
        let text = "[[port]]\nname = \"a\"\ndevice = \"net_null0\"\naddress = \"10.0.0.1/24\"\n\
                    [[port]]\nname = \"b\"\ndevice = \"net_null1\"\naddress = \"192.0.2.1/24\"\n\
                    [[lcore]]\nid = 1\nrx = [{ port = \"a\" }, { port = \"b\" }]\n\
                    stages = [\"nat\", \"forward\"]\n[forward]\n\
                    [nat]\ninside = [\"a\"]\noutside = [\"b\"]\npool = [\"192.0.2.1/32\"]\n\
                    max_sessions = 67108864\n";
        let (c, _) = crate::registry::parse("t.toml", text).unwrap();
        let pos = crate::config::Pos {
            file: "t.toml",
            text,
        };
        let err = |s, m| pos.err(s, m);
        let e = super::fits_memory(&c, Some(1 << 30), &err).unwrap_err();
        assert_eq!((e.line, e.col), (18, 16), "{e}");
        assert!(e.msg.contains("1 NAT worker(s) need 5.50 GiB"), "{e}");
        assert!(super::fits_memory(&c, Some(8 << 30), &err).is_ok());
        assert!(
            super::fits_memory(&c, None, &err).is_ok(),
            "unknown: not refused"
        );
    }

    #[test]
    fn good_section_and_params() {
        let c = cfg(r#"inside = ["p0"]
outside = ["p1"]
pool = ["198.51.100.10", "198.51.100.16/30", "198.51.100.20-198.51.100.21"]
port_range = [2000, 3000]
filtering = "endpoint-independent"
static = [{ outside = "203.0.113.5:443", inside = "10.0.0.5:8443", proto = "tcp" },
          { outside = "203.0.113.6", inside = "10.0.0.6" }]
[nat.timeouts]
udp = 0.5
"#)
        .unwrap();
        let p = super::params(&c, &[0, 1], 0).unwrap();
        assert_eq!(p.pool.len(), 7);
        assert_eq!((p.port_lo, p.port_hi), (2000, 3000));
        assert_eq!(p.timeouts.udp, 500);
        assert_eq!(p.timeouts.tcp_established, 7_440_000);
        assert_eq!(p.workers, vec![0]);
        assert!(p.no_nat.contains(&(0x0a00_0001, u32::MAX)));
        assert!(p.no_nat.contains(&(0x0a00_0000, 0xffff_ff00)));
        let out = super::nat_outside_addresses(&c);
        assert_eq!(out.len(), 9);
        assert!(out.contains(&"203.0.113.5".parse().unwrap()));
    }

    fn err_of(nat: &str) -> crate::config::ConfigError {
        cfg(nat).expect_err("must be refused")
    }

    #[test]
    fn errors_have_positions() {
        let e = err_of("inside = [\"p0\"]\noutside = [\"p9\"]\npool = [\"198.51.100.1\"]");
        assert!(e.msg.contains("unknown port or interface 'p9'"), "{e}");
        assert_eq!((e.line, e.col), (21, 12), "{e}");
        let e = err_of("inside = [\"p0\"]\noutside = [\"p0\"]\npool = [\"198.51.100.1\"]");
        assert!(e.msg.contains("both inside and outside"), "{e}");
        let e = err_of("inside = [\"p0\"]\noutside = [\"p1\"]\npool = [\"198.51.100.300\"]");
        assert!(e.msg.contains("bad address"), "{e}");
        assert_eq!(e.line, 22);
        let e = err_of(
            "inside = [\"p0\"]\noutside = [\"p1\"]\npool = [\"198.51.100.1\"]\nfiltering = \"full-cone\"",
        );
        assert!(e.msg.contains("full-cone"), "{e}");
        assert_eq!((e.line, e.col), (23, 13));
        let e = err_of("inside = [\"p0\"]\noutside = [\"p1\"]");
        assert!(e.msg.contains("give a `pool`"), "{e}");
        let e = err_of(
            "inside = [\"p0\"]\noutside = [\"p1\"]\npool = [\"198.51.100.1\"]\nstatic = [{ outside = \"198.51.100.1:2000\", inside = \"10.0.0.5:80\", proto = \"tcp\" }]",
        );
        assert!(e.msg.contains("dynamic range"), "{e}");
        assert_eq!(e.line, 23);
        let e = err_of(
            "inside = [\"p0\"]\noutside = [\"p1\"]\npool = [\"198.51.100.1\"]\nstatic = [{ outside = \"203.0.113.1:80\", inside = \"10.0.0.5:80\", proto = \"tcp\" }, { outside = \"203.0.113.1:80\", inside = \"10.0.0.6:80\", proto = \"tcp\" }]",
        );
        assert!(e.msg.contains("already forwarded"), "{e}");
        let e = err_of(
            "inside = [\"p0\"]\noutside = [\"p1\"]\npool = [\"198.51.100.1\"]\n[nat.timeouts]\nudp = -1",
        );
        assert!(e.msg.contains("nat.timeouts.udp"), "{e}");
        assert_eq!((e.line, e.col), (24, 7));
        let e = err_of(
            "inside = [\"p0\"]\noutside = [\"p1\"]\npool = [\"198.51.100.1\"]\nport_range = [100, 50]",
        );
        assert!(e.msg.contains("port_range"), "{e}");
        let e = err_of(
            "inside = [\"p0\"]\noutside = [\"p1\"]\npool = [\"198.51.100.1\"]\nsessions = 5",
        );
        assert!(e.msg.contains("unknown field `sessions`"), "{e}");
    }

    #[test]
    fn nat_stage_needs_section() {
        let e = parse("t.toml", BASE).expect_err("no [nat]");
        assert!(e.msg.contains("needs a [nat] section"), "{e}");
        assert_eq!((e.line, e.col), (14, 11));
    }
}
