//! `nat.det` (the deterministic maps, or one host's address and port block) and `nat.who`
//! (which inside host used an outside endpoint, at a time): answered from the configuration
//! for deterministic and static mappings, from the live sessions for the dynamic pool.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use pollfwd_nf::nat::det::DetMap;
use serde_json::{Value, json};

use super::query::{collect_sessions, with_cp};
use crate::ops::{OpCtx, OpError, args};

fn ip(a: u32) -> String {
    Ipv4Addr::from(a).to_string()
}

fn when(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn map_json(m: &DetMap) -> Value {
    json!({
        "inside": format!("{}/{}", ip(m.in_net), m.in_len),
        "outside": format!("{}/{}", ip(m.out_net), m.out_len),
        "hosts_per_address": m.ratio(),
        "ports_per_host": m.ports_per_host(),
        "stateless_inbound": m.stateless_inbound,
    })
}

fn block_json(m: &DetMap, host: u32) -> Value {
    let (oa, lo, len) = m.forward(host);
    json!({
        "inside": ip(host),
        "outside": ip(oa),
        "ports": {"first": lo, "last": lo as u32 + len - 1, "count": len},
        "map": map_json(m),
    })
}

/// `nat.det {inside?}`: the maps, or the outside address and block of one inside host.
pub(super) fn det(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    let maps = with_cp(ctx, |cp| Ok(cp.det.clone()))?;
    let Some(h) = args::opt_str(a, "inside") else {
        return Ok(Value::Array(maps.iter().map(map_json).collect()));
    };
    let host: Ipv4Addr = h
        .parse()
        .map_err(|_| OpError::Arg(format!("inside '{h}': not an IPv4 address")))?;
    let host = u32::from(host);
    match maps.iter().find(|m| m.contains_inside(host)) {
        Some(m) => Ok(block_json(m, host)),
        None => Err(OpError::Arg(format!(
            "inside {h}: in no deterministic map ({} map(s))",
            maps.len()
        ))),
    }
}

/// "A.B.C.D:PORT".
fn endpoint(s: &str) -> Result<(u32, u16), OpError> {
    let bad = || {
        OpError::Arg(format!(
            "outside '{s}': give address:port, e.g. 198.51.100.1:40000"
        ))
    };
    let (a, p) = s.rsplit_once(':').ok_or_else(bad)?;
    let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
    let p: u16 = p.trim().parse().map_err(|_| bad())?;
    Ok((u32::from(a), p))
}

/// RFC 3339 ("2026-12-07T06:30:00Z") or Unix seconds.
fn time_arg(s: &str) -> Result<SystemTime, OpError> {
    if let Ok(secs) = s.trim().parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    humantime::parse_rfc3339_weak(s.trim()).map_err(|e| {
        OpError::Arg(format!(
            "at '{s}': {e} (RFC 3339, e.g. 2026-12-07T06:30:00Z, or Unix seconds)"
        ))
    })
}

fn proto_arg(a: &Value) -> Result<Option<u8>, OpError> {
    Ok(match args::opt_str(a, "proto") {
        None => None,
        Some("tcp") => Some(6),
        Some("udp") => Some(17),
        Some("icmp") => Some(1),
        Some(p) => return Err(OpError::Arg(format!("proto '{p}': tcp, udp or icmp"))),
    })
}

/// How far in the past `at` may be for live sessions to answer for it.
const NOW_SLACK: Duration = Duration::from_secs(5);

/// `nat.who {outside: "A:PORT", proto?, at?}`.
pub(super) fn who(ctx: &OpCtx<'_>, a: &Value) -> Result<Value, OpError> {
    let (addr, port) = endpoint(args::str(a, "outside")?)?;
    let proto = proto_arg(a)?;
    let now = SystemTime::now();
    let at = match a.get("at") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => time_arg(s)?,
        Some(Value::Number(n)) => time_arg(&n.to_string())?,
        Some(v) => {
            return Err(OpError::Arg(format!(
                "at {v}: RFC 3339 (2026-12-07T06:30:00Z) or Unix seconds"
            )));
        }
    };
    let (maps, statics, pool, since, blog) = with_cp(ctx, |cp| {
        Ok((
            cp.det.clone(),
            cp.statics.clone(),
            cp.pool.clone(),
            cp.since,
            cp.block_log.clone(),
        ))
    })?;
    let nat = ctx.state.config.config.nat.as_ref().map(|n| n.get_ref());
    let blocks_on = nat
        .and_then(|n| n.port_block.as_ref())
        .is_some_and(|b| *b.get_ref() > 0);
    let log_path = nat
        .and_then(|n| n.block_log.as_ref())
        .map(|p| p.get_ref().clone());
    let since = since.unwrap_or(now);
    let is_now = at + NOW_SLACK >= now && at <= now + NOW_SLACK;
    let mut out = json!({
        "outside": format!("{}:{port}", ip(addr)),
        "at": when(at),
        "configuration_since": when(since),
    });
    // Live sessions of the endpoint (the inside port they use), when asked about now.
    let sessions = if is_now {
        let mut v = collect_sessions(ctx, None, Some((addr, port)), 64)?;
        v.retain(|s| proto.is_none_or(|p| p == s.proto));
        v.sort_by_key(|s| (s.inside, s.remote));
        v.iter()
            .map(|s| {
                json!({
                    "proto": match s.proto { 6 => "tcp", 17 => "udp", 1 => "icmp", _ => "?" },
                    "inside": format!("{}:{}", ip(s.inside.0), s.inside.1),
                    "remote": format!("{}:{}", ip(s.remote.0), s.remote.1),
                    "state": s.state,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let (by, inside, note): (&str, Option<String>, String) = if let Some(m) =
        maps.iter().find(|m| m.contains_outside(addr))
    {
        match m.reverse(addr, port) {
            Some(h) => {
                out["block"] = block_json(m, h);
                let note = if at < since {
                    format!(
                        "from the deterministic map in force now; the configuration was loaded at \
                         {}: check that the map was the same at {}",
                        when(since),
                        when(at)
                    )
                } else {
                    "from the deterministic map: the host owns this port's block".into()
                };
                ("deterministic", Some(ip(h)), note)
            }
            None => (
                "deterministic",
                None,
                "the port is in no host's block (below 1024, or past the last block)".into(),
            ),
        }
    } else if let Some(s) = statics.iter().find(|s| {
        s.out_addr == addr
            && match s.proto {
                None => true,
                Some(p) => s.out_port == port && proto.is_none_or(|q| q == p),
            }
    }) {
        let inside = match s.proto {
            None => ip(s.in_addr),
            Some(_) => format!("{}:{}", ip(s.in_addr), s.in_port),
        };
        (
            "static",
            Some(inside),
            "a static mapping in force now".into(),
        )
    } else if pool.contains(&addr) && blocks_on {
        // Port blocks: replay the records (the file when there is one: it also holds earlier
        // runs; else the history kept in memory since the start).
        let (found, from) = match &log_path {
            Some(p) => (
                super::blocklog::holder(read_log(p)?, addr, port, at),
                format!("the block log {p}"),
            ),
            None => {
                let h = blog.lock().unwrap_or_else(|e| e.into_inner());
                (
                    super::blocklog::holder(h.history.iter().copied(), addr, port, at),
                    "the block records in memory (no block_log file)".to_string(),
                )
            }
        };
        match found {
            Some((h, first, last, t)) => {
                out["block"] = json!({
                    "inside": ip(h),
                    "outside": ip(addr),
                    "ports": {"first": first, "last": last},
                    "allocated_at": when(t),
                });
                (
                    "block-log",
                    Some(ip(h)),
                    format!("the host held the port's block at that time, from {from}"),
                )
            }
            None => (
                "block-log",
                None,
                format!("no host held a block with this port at that time, from {from}"),
            ),
        }
    } else if pool.contains(&addr) {
        if !is_now {
            (
                "pool",
                None,
                "a dynamic pool address: pollfwd keeps no log of its mappings, only the \
                 sessions in use now are known (ask without `at`)"
                    .into(),
            )
        } else {
            let hosts: std::collections::BTreeSet<&str> = sessions
                .iter()
                .filter_map(|s| s["inside"].as_str())
                .filter_map(|s| s.rsplit_once(':').map(|x| x.0))
                .collect();
            match hosts.iter().next() {
                Some(h) if hosts.len() == 1 => (
                    "session",
                    Some(h.to_string()),
                    "a live session of the dynamic pool".into(),
                ),
                _ => ("session", None, "no live session uses this endpoint".into()),
            }
        }
    } else {
        ("none", None, "not an outside address of this NAT".into())
    };
    out["by"] = by.into();
    out["inside"] = inside.map_or(Value::Null, Value::from);
    out["note"] = note.into();
    out["sessions"] = Value::Array(sessions);
    Ok(out)
}

/// The records of a block log file, in file order, read as they are replayed (lines of
/// other formats skipped).
fn read_log(path: &str) -> Result<impl Iterator<Item = super::blocklog::Record>, OpError> {
    use std::io::BufRead as _;
    let f =
        std::fs::File::open(path).map_err(|e| OpError::from(format!("block_log {path}: {e}")))?;
    Ok(std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| super::blocklog::parse(&l)))
}
