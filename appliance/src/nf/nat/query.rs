//! Reading NAT's state from the control thread: its control-plane part, and the sessions the
//! workers hold (asked for in bounded steps). Shared by the operations (`ops`) and the
//! `nat.who` query (`who`).

use std::sync::{Arc, Mutex};

use pollfwd_nf::nat::{NatMsg, SessionInfo, SessionPage, SessionQuery};

use super::state::Plane;
use crate::ops::{OpCtx, OpError};

/// Runs `f` on NAT's control-plane state (set up at start-up when the config has [nat]; a
/// reload cannot add or remove the section).
pub(super) fn with_cp<R>(
    ctx: &OpCtx<'_>,
    f: impl FnOnce(&mut Plane) -> Result<R, String>,
) -> Result<R, String> {
    if ctx.state.config.config.nat.is_none() {
        return Err("no [nat] section in the configuration".into());
    }
    ctx.cp(|cp| f(&mut cp.nat))
}

/// The sessions of every NAT worker matching `inside` / `outside`, at most `limit` per
/// worker (unsorted).
pub(super) fn collect_sessions(
    ctx: &OpCtx<'_>,
    inside: Option<u32>,
    outside: Option<(u32, u16)>,
    limit: usize,
) -> Result<Vec<SessionInfo>, OpError> {
    // Every NAT worker walks its table a bounded step per message (LIST_SLOTS slots, between
    // two bursts); the steps repeat from where each stopped until every table was seen or
    // each worker found `limit` sessions. A worker that is done gets an empty step.
    let mut pages: std::collections::HashMap<usize, Arc<Mutex<SessionPage>>> = Default::default();
    let mut list: Vec<SessionInfo> = Vec::new();
    let mut steps = 0usize;
    loop {
        let mut more = false;
        for p in pages.values() {
            let p = p.lock().unwrap_or_else(|e| e.into_inner());
            more |= p.next.is_some() && p.sessions.len() < limit;
        }
        if steps > 0 && !more {
            break;
        }
        steps += 1;
        ctx.broadcast("nat", |w| {
            let page = pages.entry(w).or_insert_with(|| {
                Arc::new(Mutex::new(SessionPage {
                    sessions: Vec::new(),
                    next: Some(0),
                }))
            });
            let (start, found) = {
                let p = page.lock().unwrap_or_else(|e| e.into_inner());
                (p.next.unwrap_or(u32::MAX), p.sessions.len())
            };
            NatMsg::Sessions(SessionQuery {
                inside,
                outside,
                limit: limit.saturating_sub(found),
                start,
                out: page.clone(),
            })
        })?;
    }
    for p in pages.values() {
        list.append(&mut p.lock().unwrap_or_else(|e| e.into_inner()).sessions);
    }
    Ok(list)
}
