//! The port block log (`[nat] port_block`, `block_log`): a management thread drains the NAT
//! workers' block events every 100 ms and writes one RFC 5424 syslog line per block taken
//! or freed, to the `block_log` file (appended) and to a bounded in-memory history; `nat.who`
//! replays them to answer "which host held outside ip:port at time T". docs/nat.md has the
//! format.
//!
//! ```text
//! <134>1 2026-12-07T06:50:01.123456Z box1 pollfwd 4242 NATBLOCK [pollfwd@32473 event="alloc" inside="10.0.0.5" outside="198.51.100.10" first="20000" last="20511"]
//! <134>1 2026-12-07T06:49:58.000001Z box1 pollfwd 4242 NATSTART [pollfwd@32473 event="start"]
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::ops::OpCtx;
use crate::state::State;

/// Records kept in memory (the file keeps all).
pub const HISTORY: usize = 100_000;
/// How often the workers' queues are drained (the records' time resolution).
pub const DRAIN: Duration = Duration::from_millis(100);
/// PRI: facility local0 (16), severity informational (6) (RFC 5424 section 6.2.1).
const PRI: u32 = 16 * 8 + 6;
/// SD-ID: `pollfwd@32473` (32473: the enterprise number RFC 5612 reserves for examples).
const SD_ID: &str = "pollfwd@32473";

/// One record: a block taken (`alloc`) or freed, or a start of pollfwd (every block free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub time: SystemTime,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Start,
    Block {
        alloc: bool,
        host: u32,
        addr: u32,
        first: u16,
        last: u16,
    },
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
        .unwrap_or_else(|| "-".into())
}

/// The RFC 5424 line of a record (no trailing newline).
pub fn line(r: &Record, host: &str, pid: u32) -> String {
    let ts = humantime::format_rfc3339_micros(r.time);
    match r.kind {
        Kind::Start => {
            format!("<{PRI}>1 {ts} {host} pollfwd {pid} NATSTART [{SD_ID} event=\"start\"]")
        }
        Kind::Block {
            alloc,
            host: h,
            addr,
            first,
            last,
        } => format!(
            "<{PRI}>1 {ts} {host} pollfwd {pid} NATBLOCK [{SD_ID} event=\"{}\" inside=\"{}\" \
             outside=\"{}\" first=\"{first}\" last=\"{last}\"]",
            if alloc { "alloc" } else { "free" },
            Ipv4Addr::from(h),
            Ipv4Addr::from(addr),
        ),
    }
}

/// Parses a line written by [`line`]; None for anything else.
pub fn parse(l: &str) -> Option<Record> {
    let mut it = l.splitn(7, ' ');
    let (_pri, ts, _host, app, _pid, msgid, sd) = (
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    );
    if app != "pollfwd" {
        return None;
    }
    let time = humantime::parse_rfc3339(ts).ok()?;
    let param = |k: &str| -> Option<&str> {
        let at = sd.find(&format!(" {k}=\""))? + k.len() + 3;
        let end = sd[at..].find('"')?;
        Some(&sd[at..at + end])
    };
    let kind = match msgid {
        "NATSTART" => Kind::Start,
        "NATBLOCK" => Kind::Block {
            alloc: match param("event")? {
                "alloc" => true,
                "free" => false,
                _ => return None,
            },
            host: param("inside")?.parse::<Ipv4Addr>().ok()?.into(),
            addr: param("outside")?.parse::<Ipv4Addr>().ok()?.into(),
            first: param("first")?.parse().ok()?,
            last: param("last")?.parse().ok()?,
        },
        _ => return None,
    };
    Some(Record { time, kind })
}

/// Who held the block of `addr` containing `port` at `at`, replaying `records` (in time
/// order): (host, first, last, taken at).
pub fn holder(
    records: impl Iterator<Item = Record>,
    addr: u32,
    port: u16,
    at: SystemTime,
) -> Option<(u32, u16, u16, SystemTime)> {
    let mut held: BTreeMap<u16, (u32, u16, SystemTime)> = BTreeMap::new();
    for r in records {
        if r.time > at {
            break;
        }
        match r.kind {
            Kind::Start => held.clear(),
            Kind::Block {
                alloc,
                host,
                addr: a,
                first,
                last,
            } if a == addr => {
                if alloc {
                    held.insert(first, (host, last, r.time));
                } else {
                    held.remove(&first);
                }
            }
            Kind::Block { .. } => {}
        }
    }
    let (&first, &(host, last, t)) = held.range(..=port).next_back()?;
    (port <= last).then_some((host, first, last, t))
}

/// Starts the drain thread when the configuration has port blocks.
pub fn start(state: &Arc<State>) {
    let on = state
        .config
        .config
        .nat
        .as_ref()
        .and_then(|n| n.get_ref().port_block.as_ref())
        .is_some_and(|b| *b.get_ref() > 0);
    if !on {
        return;
    }
    drain(
        state,
        Some(Record {
            time: SystemTime::now(),
            kind: Kind::Start,
        }),
    );
    let state = state.clone();
    let spawned = std::thread::Builder::new()
        .name("pollfwd-natlog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(DRAIN);
                drain(&state, None);
            }
        });
    if let Err(e) = spawned {
        eprintln!("pollfwd: nat: cannot start the block log thread: {e}");
    }
}

/// Takes the workers' waiting block events (and `extra` first), stamps them, appends them to
/// the history and the file. Also called once more at shutdown.
pub fn drain(state: &State, extra: Option<Record>) {
    let ctx = OpCtx { state };
    let queues: Vec<_> = ctx.cp(|cp| {
        cp.nat
            .workers
            .iter()
            .filter_map(|w| w.block_events.clone())
            .collect()
    });
    let now = SystemTime::now();
    let mut recs: Vec<Record> = extra.into_iter().collect();
    for q in &queues {
        while let Some(e) = q.pop() {
            recs.push(Record {
                time: now,
                kind: Kind::Block {
                    alloc: e.alloc,
                    host: e.host,
                    addr: e.addr,
                    first: e.first,
                    last: e.last,
                },
            });
        }
    }
    if recs.is_empty() {
        return;
    }
    let path = state
        .config
        .config
        .nat
        .as_ref()
        .and_then(|n| n.get_ref().block_log.as_ref())
        .map(|p| p.get_ref().clone());
    let log = ctx.cp(|cp| cp.nat.block_log.clone());
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    {
        if let Some(path) = &path {
            if log.file.is_none() {
                match std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    Ok(f) => log.file = Some(f),
                    Err(e) => {
                        if !log.warned {
                            eprintln!(
                                "pollfwd: nat: block_log {path}: {e}: records kept in memory only"
                            );
                            log.warned = true;
                        }
                    }
                }
            }
            if let Some(f) = &mut log.file {
                let host = hostname();
                let pid = std::process::id();
                let mut text = String::new();
                for r in &recs {
                    text.push_str(&line(r, &host, pid));
                    text.push('\n');
                }
                if let Err(e) = f.write_all(text.as_bytes()) {
                    log.write_errors += 1;
                    if !log.warned {
                        eprintln!("pollfwd: nat: block_log {path}: {e}");
                        log.warned = true;
                    }
                }
            }
        }
        for r in recs {
            if log.history.len() >= HISTORY {
                log.history.pop_front();
            }
            log.history.push_back(r);
            log.written += 1;
        }
    }
}

/// The block log's control-plane state (shared by the plane's clones: a reload that puts the
/// plane back keeps the records).
#[derive(Debug, Default)]
pub struct BlockLog {
    pub file: Option<std::fs::File>,
    pub history: VecDeque<Record>,
    pub written: u64,
    pub write_errors: u64,
    pub warned: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn blk(s: u64, alloc: bool, host: u32, first: u16) -> Record {
        Record {
            time: t(s),
            kind: Kind::Block {
                alloc,
                host,
                addr: 0xc633_640a,
                first,
                last: first + 511,
            },
        }
    }

    #[test]
    fn lines_are_rfc5424_and_parse_back() {
        let r = blk(5, true, 0x0a00_0005, 20000);
        let l = line(&r, "box1", 4242);
        assert_eq!(
            l,
            "<134>1 2027-01-15T08:00:05.000000Z box1 pollfwd 4242 NATBLOCK [pollfwd@32473 \
             event=\"alloc\" inside=\"10.0.0.5\" outside=\"198.51.100.10\" first=\"20000\" \
             last=\"20511\"]"
        );
        assert_eq!(parse(&l), Some(r));
        let s = Record {
            time: t(1),
            kind: Kind::Start,
        };
        assert_eq!(parse(&line(&s, "-", 1)), Some(s));
        assert_eq!(parse("<13>1 2027-01-15T08:00:05Z h other 1 X [x]"), None);
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn holder_replays_allocations_releases_and_restarts() {
        let recs = [
            Record {
                time: t(0),
                kind: Kind::Start,
            },
            blk(10, true, 1, 20000),
            blk(20, false, 1, 20000),
            blk(30, true, 2, 20000),
            blk(31, true, 3, 20512),
            Record {
                time: t(40),
                kind: Kind::Start,
            },
            blk(50, true, 4, 20512),
        ];
        let who = |port, s| holder(recs.iter().copied(), 0xc633_640a, port, t(s)).map(|h| h.0);
        assert_eq!(who(20100, 5), None, "before any block");
        assert_eq!(who(20100, 15), Some(1));
        assert_eq!(who(20511, 15), Some(1));
        assert_eq!(who(20512, 15), None);
        assert_eq!(who(20100, 25), None, "freed");
        assert_eq!(who(20100, 35), Some(2));
        assert_eq!(who(20600, 35), Some(3));
        assert_eq!(who(20600, 45), None, "a restart frees every block");
        assert_eq!(who(20600, 55), Some(4));
        assert_eq!(
            holder(recs.iter().copied(), 0xc633_640b, 20100, t(35)),
            None
        );
    }
}
