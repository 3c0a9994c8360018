//! FIB sync (`[fib_sync]`, docs/forward.md "Routes from a routing daemon"): a thread of the
//! management side reads the kernel's routing table of pollfwd's namespace over rtnetlink
//! (`netlink-sys`, `netlink-packet-route`) and keeps the forward stage's routes from it in
//! step: a dump of the table at start, then the kernel's route notifications
//! (`RTNLGRP_IPV4_ROUTE`, `RTNLGRP_IPV6_ROUTE`). A route out of a punt interface
//! (`<prefix><interface>`) is a route out of that pollfwd interface; a route with several
//! next hops (`RTA_MULTIPATH`) is a multipath route (an ECMP group in the forward table),
//! whose next hops follow the kernel's (an IPv6 next hop deleted alone leaves the others).
//! Routes over nexthop objects (`RTA_NH_ID`, what FRR's zebra installs) are taken from the
//! next hops the kernel expands in them (`net.ipv4.nexthop_compat_mode`, on by default); a
//! change of a nexthop object that routes held use reads the table again. Changes are collected
//! until none came for `batch_ms` (at most 50 ms after the first, or twice the last table
//! build when that is longer) and
//! installed as one new table. When notifications are lost (the socket overflowed) or the
//! socket fails, the table is dumped again and replaces what was held: unchanged routes stay
//! installed throughout.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NLM_F_APPEND, NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NlaBuffer, NlasIterator,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHopFlags, RouteProtocol,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use pollfwd_nf::forward::ecmp::MAX_PATHS;
use pollfwd_nf::forward::table::{FwdTable, Prefix, RouteEntry, StaticRoute};
use pollfwd_nf::forward::table6::{Prefix6, RouteEntry6, StaticRoute6};

use crate::nf::forward::state::{SyncStats, Synced};
use crate::nf::forward::sync::{Reuse, SyncChange, SyncReport, apply_synced, sync_stats_update};
use crate::ops::OpCtx;
use crate::state::State;

/// Multicast groups of the kernel's route notifications (linux/rtnetlink.h).
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV6_ROUTE: u32 = 11;
/// ... and of nexthop objects (`ip nexthop`).
const RTNLGRP_NEXTHOP: u32 = 32;
/// Nexthop object messages (linux/rtnetlink.h) and their id attribute (linux/nexthop.h);
/// `netlink-packet-route` does not parse them: only the id is read.
const RTM_NEWNEXTHOP: u16 = 104;
const RTM_DELNEXTHOP: u16 = 105;
const NHA_ID: u16 = 1;
/// Size of `struct nhmsg`.
const NHMSG_LEN: usize = 8;
/// The kernel's own connected routes (of the punt interfaces' addresses: pollfwd has them).
const RTPROT_KERNEL: u8 = 2;

/// Starts the reader when `[fib_sync]` is on and a worker runs the forward stage.
pub fn start(state: &Arc<State>) {
    let fc = &state.config.config.fib_sync;
    if !*fc.enable.get_ref() {
        return;
    }
    if std::fs::read_to_string("/proc/sys/net/ipv4/nexthop_compat_mode")
        .is_ok_and(|v| v.trim() == "0")
    {
        eprintln!(
            "pollfwd: warning: [fib_sync]: net.ipv4.nexthop_compat_mode is 0: routes over nexthop objects (FRR's zebra) carry no next hop pollfwd can read and are ignored (counted as nexthop_object); set it to 1"
        );
    }
    if !(OpCtx { state }).runs("forward") {
        eprintln!(
            "pollfwd: warning: [fib_sync] is on but no worker runs the forward stage: no route is taken from the kernel"
        );
        return;
    }
    let state = state.clone();
    let spawned = std::thread::Builder::new()
        .name("pollfwd-fibsync".into())
        .spawn(move || run(&state));
    if let Err(e) = spawned {
        eprintln!("pollfwd: fib_sync: cannot start its thread: {e}");
    }
}

/// Dumps and follows the table for ever; after an error, starts again (a new dump).
fn run(state: &State) {
    loop {
        let e = session(state);
        eprintln!("pollfwd: fib_sync: {e}; reading the kernel's table again");
        let ctx = OpCtx { state };
        sync_stats_update(&ctx, |s| s.last_error = Some(e.clone()));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A route of the kernel's table as pollfwd takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KRoute {
    V4(Synced<StaticRoute>),
    V6(Synced<StaticRoute6>),
}

impl KRoute {
    fn paths(&self) -> usize {
        match self {
            KRoute::V4(s) => s.hops.len(),
            KRoute::V6(s) => s.hops.len(),
        }
    }

    /// This route with the next hops of `o` it lacks added (at most [`MAX_PATHS`]).
    fn union(&self, o: &KRoute) -> KRoute {
        fn u<R: Copy + PartialEq>(a: &Synced<R>, b: &Synced<R>) -> Synced<R> {
            let mut v: Vec<R> = a.hops.to_vec();
            for h in b.hops.iter() {
                if !v.contains(h) && v.len() < MAX_PATHS {
                    v.push(*h);
                }
            }
            Synced {
                hops: v.into(),
                proto: b.proto,
            }
        }
        match (self, o) {
            (KRoute::V4(a), KRoute::V4(b)) => KRoute::V4(u(a, b)),
            (KRoute::V6(a), KRoute::V6(b)) => KRoute::V6(u(a, b)),
            _ => o.clone(),
        }
    }

    /// This route without the next hops of `o` (None: none left).
    fn without(&self, o: &KRoute) -> Option<KRoute> {
        fn w<R: Copy + PartialEq>(a: &Synced<R>, b: &Synced<R>) -> Option<Synced<R>> {
            let v: Vec<R> = a
                .hops
                .iter()
                .filter(|h| !b.hops.contains(h))
                .copied()
                .collect();
            (!v.is_empty()).then(|| Synced {
                hops: v.into(),
                proto: a.proto,
            })
        }
        match (self, o) {
            (KRoute::V4(a), KRoute::V4(b)) => w(a, b).map(KRoute::V4),
            (KRoute::V6(a), KRoute::V6(b)) => w(a, b).map(KRoute::V6),
            _ => None,
        }
    }
}

/// A route held: what pollfwd takes, and the nexthop object it uses in the kernel (0: none).
#[derive(Debug, Clone)]
struct Held {
    route: KRoute,
    nh: u32,
}

/// How the next hops of a kernel route were taken.
#[derive(Debug, Clone, Copy, Default)]
struct PathNotes {
    /// Next hops of unequal weights (or one listed twice): installed with equal shares.
    weights: bool,
    /// More than [`MAX_PATHS`] next hops: the first ones are taken.
    truncated: bool,
    /// Some next hops are not out of a punt interface: the others are taken.
    partial: bool,
}

/// A kernel route's key: prefix and metric (the kernel holds several routes of one prefix
/// with different metrics; the lowest one is used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    V4(Prefix, u32),
    V6(Prefix6, u32),
}

impl Key {
    /// The same prefix with the lowest metric (range start).
    fn first(&self) -> Key {
        match *self {
            Key::V4(p, _) => Key::V4(p, 0),
            Key::V6(p, _) => Key::V6(p, 0),
        }
    }
    fn same_prefix(&self, o: &Key) -> bool {
        match (self, o) {
            (Key::V4(a, _), Key::V4(b, _)) => a == b,
            (Key::V6(a, _), Key::V6(b, _)) => a == b,
            _ => false,
        }
    }
}

/// What one route message is for pollfwd.
enum Parsed {
    /// A route (its next hops out of punt interfaces), its nexthop object id (0: none).
    Route(Key, KRoute, u32, PathNotes),
    /// A route pollfwd does not take, and why (the counter's name).
    Ignored(Key, &'static str),
    /// Not a route pollfwd can name at all.
    Skip(&'static str),
}

/// The reader's view of the kernel's table and the interfaces it maps.
struct Reader<'s> {
    state: &'s State,
    table: u32,
    max: usize,
    batch: Duration,
    /// The netlink socket's receive buffer asked for, bytes (`socket_buffer_kb`).
    rcvbuf: usize,
    /// The kernel's routes pollfwd takes, by prefix and metric.
    kernel: BTreeMap<Key, Held>,
    /// Kernel interface index -> pollfwd interface id (None: not a punt interface).
    ifaces: HashMap<u32, Option<u16>>,
    /// Counters to add under the control lock with the next batch.
    ignored: BTreeMap<&'static str, u64>,
    multipath: u64,
    weights_ignored: u64,
    truncated: u64,
    partial: u64,
    /// A nexthop object that routes held use changed: the table is read again after the
    /// batch (the kernel does not always notify the routes: a group member deleted).
    nh_changed: bool,
    /// Routes were refused for the limit: when some are withdrawn, the kernel's routes are
    /// offered again (those refused get the room).
    refused: bool,
    /// Longest a batch collects: 50 ms, or twice the last table build (during a long burst
    /// a slow build is not repeated for every few routes).
    cap: Duration,
    /// The table the last batch replaced, changed in place by the next one.
    reuse: Option<Reuse>,
    /// A helper thread: frees tables (DPDK zeroes memory when it is freed: tens of ms for a
    /// 2^24-entry level, which would delay the next batch) and builds twins of large tables
    /// (a build of 100k routes takes seconds; a twin ready before the next batch lets that
    /// one change it in place).
    helper: Option<Helper>,
}

enum Job {
    Free(Arc<FwdTable>),
    Twin(Vec<RouteEntry>, Vec<RouteEntry6>, u64, Arc<FwdTable>),
}

struct Helper {
    jobs: std::sync::mpsc::Sender<Job>,
    twins: std::sync::mpsc::Receiver<Reuse>,
}

fn helper() -> Option<Helper> {
    let (jobs, rx) = std::sync::mpsc::channel::<Job>();
    let (done, twins) = std::sync::mpsc::channel::<Reuse>();
    std::thread::Builder::new()
        .name("pollfwd-fibhelp".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                let (e4, e6, generation, cur) = match job {
                    Job::Free(t) => {
                        drop(t);
                        continue;
                    }
                    Job::Twin(e4, e6, g, cur) => (e4, e6, g, cur),
                };
                {
                    // Multipath groups share the buckets and counters of the table in force.
                    let built = FwdTable::build_after(
                        &e4,
                        &e6,
                        dpdk::ffi::SOCKET_ID_ANY,
                        Some(&*cur),
                        cur.workers(),
                    );
                    drop(cur);
                    match built {
                        Ok(t) => {
                            let _ = done.send(Reuse {
                                table: Arc::new(t),
                                generation,
                                delta: Default::default(),
                            });
                        }
                        Err(e) => eprintln!("pollfwd: fib_sync: twin table: {e}"),
                    }
                }
            }
        })
        .ok()?;
    Some(Helper { jobs, twins })
}

fn session(state: &State) -> String {
    let fc = &state.config.config.fib_sync;
    let mut r = Reader {
        state,
        table: *fc.table.get_ref(),
        max: *fc.max_routes.get_ref(),
        batch: Duration::from_millis(*fc.batch_ms.get_ref()),
        rcvbuf: (*fc.socket_buffer_kb.get_ref() as usize) << 10,
        kernel: BTreeMap::new(),
        ifaces: HashMap::new(),
        ignored: BTreeMap::new(),
        multipath: 0,
        weights_ignored: 0,
        truncated: 0,
        partial: 0,
        nh_changed: false,
        refused: false,
        cap: Duration::from_millis(50),
        reuse: None,
        helper: helper(),
    };
    match r.follow() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

impl Reader<'_> {
    /// Subscribes, dumps, then applies notifications in batches; returns only on error.
    fn follow(&mut self) -> Result<Never, String> {
        let ev = Socket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
        let mut ev = ev;
        ev.bind_auto().map_err(|e| format!("netlink bind: {e}"))?;
        // A full BGP table arrives as a burst: a large buffer (`socket_buffer_kb`, capped by
        // rmem_max); when it overflows anyway the table is dumped again.
        match dpdk::sys::set_recv_buffer(&ev, self.rcvbuf) {
            Ok(got) => {
                let ctx = OpCtx { state: self.state };
                sync_stats_update(&ctx, |s| s.socket_buffer = got);
            }
            Err(e) => eprintln!("pollfwd: fib_sync: netlink receive buffer: {e}"),
        }
        for g in [RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_NEXTHOP] {
            ev.add_membership(g)
                .map_err(|e| format!("netlink group {g}: {e}"))?;
        }
        // Subscribed before the dump: nothing between them is missed (a notification of a
        // route the dump already had changes nothing).
        self.resync()?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            // Idle: block until the kernel says something.
            let mut pending: BTreeMap<Key, ()> = BTreeMap::new();
            let n = match ev.recv(&mut &mut buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.overflow(&ev, &mut buf)?;
                    continue;
                }
                Err(e) => return Err(format!("netlink recv: {e}")),
            };
            self.take(&buf[..n], &mut pending);
            // Collect until quiet for `batch`, at most 50 ms after the first change.
            let first = Instant::now();
            let mut last = first;
            let mut lost = false;
            loop {
                match ev.recv(&mut &mut buf[..], libc::MSG_DONTWAIT) {
                    Ok(n) => {
                        self.take(&buf[..n], &mut pending);
                        last = Instant::now();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let now = Instant::now();
                        if now - last >= self.batch || now - first >= self.cap {
                            break;
                        }
                        std::thread::sleep(Duration::from_micros(500));
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        lost = true;
                        break;
                    }
                    Err(e) => return Err(format!("netlink recv: {e}")),
                }
            }
            if lost {
                self.overflow(&ev, &mut buf)?;
                continue;
            }
            if std::mem::take(&mut self.nh_changed) {
                // A nexthop object in use changed: the whole table, as after a dump.
                self.resync()?;
                continue;
            }
            let changes: Vec<SyncChange> = pending.keys().map(|k| self.effective(k)).collect();
            let window = (first.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
            self.apply(changes, false)?;
            // From the first notification read to the new table in every worker.
            let ms = (first.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
            let ctx = OpCtx { state: self.state };
            sync_stats_update(&ctx, |s| {
                s.last_batch_latency_ms = ms;
                s.last_batch_window_ms = window;
            });
        }
    }

    /// Notifications were lost: counted, the socket's queue emptied, and the table read
    /// again. Emptied first: the kernel reports an overflow (ENOBUFS) once, then drops
    /// further notifications silently until the queue has been read empty (netlink's
    /// "congested" state); so the queue is read empty before the dump, and a notification
    /// lost after that is reported again. Notifications queued after the drain are read
    /// after the dump, in order: a change the dump already shows is applied again, to the
    /// same end.
    fn overflow(&mut self, ev: &Socket, buf: &mut [u8]) -> Result<(), String> {
        eprintln!(
            "pollfwd: fib_sync: route notifications lost (socket overflow): reading the kernel's table again"
        );
        let ctx = OpCtx { state: self.state };
        sync_stats_update(&ctx, |s| s.overflows += 1);
        loop {
            match ev.recv(&mut &mut buf[..], libc::MSG_DONTWAIT) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(format!("netlink recv: {e}")),
            }
        }
        self.resync()
    }

    /// Dumps the kernel's table (both families) and makes it the whole of what is held.
    fn resync(&mut self) -> Result<(), String> {
        let msgs = dump()?;
        self.kernel.clear();
        let mut pending = BTreeMap::new();
        for m in &msgs {
            self.one(m, true, &mut pending);
        }
        let changes = self.all_changes();
        let ctx = OpCtx { state: self.state };
        sync_stats_update(&ctx, |s| s.dumps += 1);
        self.apply(changes, true)
    }

    /// Hands changes to the forward stage (one table), with the counters gathered so far.
    fn apply(&mut self, changes: Vec<SyncChange>, full: bool) -> Result<(), String> {
        // Before the control-plane lock, which `apply_synced` broadcasts from inside (as an
        // operator's route change does: txn::change_lock).
        let _change = crate::txn::change_lock();
        let ctx = OpCtx { state: self.state };
        let ignored = std::mem::take(&mut self.ignored);
        let multipath = std::mem::take(&mut self.multipath);
        let weights = std::mem::take(&mut self.weights_ignored);
        let truncated = std::mem::take(&mut self.truncated);
        let partial = std::mem::take(&mut self.partial);
        sync_stats_update(&ctx, |s: &mut SyncStats| {
            for (k, v) in ignored {
                *s.ignored.entry(k).or_default() += v;
            }
            s.multipath += multipath;
            s.multipath_weights_ignored += weights;
            s.multipath_truncated += truncated;
            s.multipath_partial += partial;
        });
        let n = changes.len();
        // After a dump, a table is installed even when nothing changed: its predecessor
        // is the one the next batch changes in place.
        self.take_twin();
        let force = full && self.reuse.is_none();
        let mut rep = apply_synced(&ctx, changes, full, force, self.max, self.reuse.take())?;
        if self.refused && !full && rep.withdrawn > 0 {
            // Room again: the whole table, as after a dump (unchanged routes stay).
            let all = self.all_changes();
            self.retire(&mut rep);
            rep = apply_synced(&ctx, all, true, false, self.max, self.reuse.take())?;
        }
        self.retire(&mut rep);
        self.refused = rep.refused_limit > 0;
        if let Some(ms) = rep.build_ms {
            self.cap = Duration::from_millis(50).max(Duration::from_secs_f64(ms * 2.0 / 1000.0));
        }
        if rep.refused_limit > 0 {
            eprintln!(
                "pollfwd: fib_sync: {} route(s) refused: the FIB limit of {} routes from the kernel ([fib_sync] max_routes) is reached; the routes held stay",
                rep.refused_limit, self.max
            );
        }
        if let Some(e) = &rep.first_invalid {
            eprintln!(
                "pollfwd: fib_sync: {} route(s) refused, first: {e}",
                rep.refused_invalid
            );
        }
        if let Some(ms) = rep.build_ms
            && (full || n >= 1000)
        {
            eprintln!(
                "pollfwd: fib_sync: {} {} change(s): {} installed, {} withdrawn, {} held ({ms} ms)",
                if full { "dump:" } else { "batch:" },
                n,
                rep.installed,
                rep.withdrawn,
                rep.held
            );
        }
        Ok(())
    }

    /// Every prefix of the kernel's table with its route.
    fn all_changes(&self) -> Vec<SyncChange> {
        let firsts: std::collections::BTreeSet<Key> = self.kernel.keys().map(Key::first).collect();
        firsts.iter().map(|k| self.effective(k)).collect()
    }

    /// Keeps the table a batch replaced for the next one (or asks for a twin of the one in
    /// force), frees the others off this thread.
    fn retire(&mut self, rep: &mut SyncReport) {
        self.reuse = rep.retired.take();
        let discard: Vec<Arc<FwdTable>> = rep.discard.drain(..).collect();
        let Some(h) = &self.helper else {
            return;
        };
        for t in discard {
            let _ = h.jobs.send(Job::Free(t));
        }
        if let Some((e4, e6, g, cur)) = rep.twin.take() {
            let _ = h.jobs.send(Job::Twin(e4, e6, g, cur));
        }
    }

    /// A twin the helper finished becomes the table the next batch changes in place.
    fn take_twin(&mut self) {
        let Some(h) = &self.helper else {
            return;
        };
        while let Ok(t) = h.twins.try_recv() {
            if let Some(old) = self.reuse.replace(t) {
                let _ = h.jobs.send(Job::Free(old.table));
            }
        }
    }

    /// The change for the prefix of `k`: its route with the lowest metric, or none.
    fn effective(&self, k: &Key) -> SyncChange {
        let best = self
            .kernel
            .range(k.first()..)
            .next()
            .filter(|(b, _)| b.same_prefix(k))
            .map(|(_, h)| h.route.clone());
        match (k, best) {
            (Key::V4(p, _), Some(KRoute::V4(r))) => SyncChange::V4(*p, Some(r)),
            (Key::V6(p, _), Some(KRoute::V6(r))) => SyncChange::V6(*p, Some(r)),
            (Key::V4(p, _), _) => SyncChange::V4(*p, None),
            (Key::V6(p, _), _) => SyncChange::V6(*p, None),
        }
    }

    /// Takes every route message of a datagram.
    fn take(&mut self, buf: &[u8], pending: &mut BTreeMap<Key, ()>) {
        let mut off = 0;
        while off < buf.len() {
            let Ok(nb) = NetlinkBuffer::new_checked(&buf[off..]) else {
                break;
            };
            let len = nb.length() as usize;
            match nb.message_type() {
                RTM_NEWNEXTHOP | RTM_DELNEXTHOP => {
                    if let Some(id) = nexthop_id(nb.payload())
                        && self.kernel.values().any(|h| h.nh == id)
                    {
                        self.nh_changed = true;
                    }
                }
                _ => {
                    if let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..]) {
                        self.one(&m, false, pending);
                    }
                }
            }
            if len == 0 {
                break;
            }
            off += len.next_multiple_of(4);
        }
    }

    /// One route message: updates `kernel`, notes the prefix touched, counts what is ignored.
    ///
    /// A new route replaces what the kernel held for its prefix and metric (the kernel's
    /// notifications carry every next hop of a multipath route), except an IPv6 next hop
    /// appended (`NLM_F_APPEND`: kernels before 5.x notified only the new one; newer ones
    /// all, which changes nothing) or a dump's IPv6 route listed once per next hop (older
    /// kernels): those add their next hops. An IPv4 route appended to one of the same prefix
    /// and metric is not used by the kernel: the first stays. A deleted IPv6 route removes
    /// only the next hops it names (`ip -6 route del P via G` removes one of a multipath
    /// route); a deleted IPv4 route the whole route.
    fn one(
        &mut self,
        m: &NetlinkMessage<RouteNetlinkMessage>,
        dumping: bool,
        pending: &mut BTreeMap<Key, ()>,
    ) {
        let (rm, add) = match &m.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => (r, true),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(r)) => (r, false),
            _ => return,
        };
        let append = m.header.flags & NLM_F_APPEND != 0;
        let parsed = self.parse(rm);
        match parsed {
            Parsed::Skip(why) => {
                // Other tables' routes are many (local table): counted, never held.
                if add {
                    *self.ignored.entry(why).or_default() += 1;
                }
            }
            Parsed::Ignored(k, why) => {
                if add {
                    *self.ignored.entry(why).or_default() += 1;
                }
                // An IPv6 next hop out of another interface deleted or appended: the route's
                // next hops out of punt interfaces stay.
                if matches!(k, Key::V6(..)) && why == "not_punt_interface" && (!add || append) {
                    return;
                }
                // A route of this prefix and metric replaced by one pollfwd does not take
                // (e.g. a blackhole): the old one is gone.
                if self.kernel.remove(&k).is_some() && !dumping {
                    pending.insert(k.first(), ());
                }
            }
            Parsed::Route(k, r, nh, notes) => {
                let v6 = matches!(k, Key::V6(..));
                let old = self.kernel.get(&k);
                let new = if add {
                    match old {
                        Some(o) if v6 && (dumping || append) => Some(o.route.union(&r)),
                        Some(_) if !v6 && (dumping || append) => return,
                        _ => Some(r),
                    }
                } else if v6 {
                    old.and_then(|o| o.route.without(&r))
                } else {
                    None
                };
                if add {
                    if new.as_ref().is_some_and(|n| n.paths() > 1) {
                        self.multipath += 1;
                    }
                    self.weights_ignored += u64::from(notes.weights);
                    self.truncated += u64::from(notes.truncated);
                    self.partial += u64::from(notes.partial);
                }
                match new {
                    Some(route) => {
                        let nh = if add { nh } else { old.map_or(0, |o| o.nh) };
                        self.kernel.insert(k, Held { route, nh });
                    }
                    None => {
                        self.kernel.remove(&k);
                    }
                }
                if !dumping {
                    pending.insert(k.first(), ());
                }
            }
        }
    }

    fn parse(&mut self, rm: &RouteMessage) -> Parsed {
        let h = &rm.header;
        let mut table = h.table as u32;
        let mut dst: Option<IpAddr> = None;
        let mut gw: Option<IpAddr> = None;
        let mut oif: Option<u32> = None;
        let mut prio = 0u32;
        let mut via_other = false;
        let mut nh_id = 0u32;
        // RTA_MULTIPATH: (interface, gateway, weight) of each next hop.
        let mut multi: Vec<(u32, Option<IpAddr>, u16)> = Vec::new();
        let mut dead = 0usize;
        for a in &rm.attributes {
            match a {
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = Some((*a).into()),
                RouteAttribute::Destination(RouteAddress::Inet6(a)) => dst = Some((*a).into()),
                RouteAttribute::Gateway(RouteAddress::Inet(a)) => gw = Some((*a).into()),
                RouteAttribute::Gateway(RouteAddress::Inet6(a)) => gw = Some((*a).into()),
                RouteAttribute::Via(_) => via_other = true,
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Priority(p) => prio = *p,
                RouteAttribute::NhId(id) => nh_id = *id,
                RouteAttribute::MultiPath(hops) => {
                    for nh in hops {
                        // A next hop the kernel marks dead (its interface down, or removed)
                        // carries no traffic there: none here either.
                        if nh.flags.contains(RouteNextHopFlags::Dead) {
                            dead += 1;
                            continue;
                        }
                        let mut g = None;
                        for na in &nh.attributes {
                            match na {
                                RouteAttribute::Gateway(RouteAddress::Inet(a)) => {
                                    g = Some((*a).into())
                                }
                                RouteAttribute::Gateway(RouteAddress::Inet6(a)) => {
                                    g = Some((*a).into())
                                }
                                RouteAttribute::Via(_) => via_other = true,
                                _ => {}
                            }
                        }
                        multi.push((nh.interface_index, g, u16::from(nh.hops) + 1));
                    }
                }
                _ => {}
            }
        }
        if table != self.table {
            return Parsed::Skip("other_table");
        }
        let len = h.destination_prefix_length;
        let key = match h.address_family {
            AddressFamily::Inet => {
                let a = match dst {
                    Some(IpAddr::V4(a)) => u32::from(a),
                    None => 0,
                    _ => return Parsed::Skip("malformed"),
                };
                if len > 32 {
                    return Parsed::Skip("malformed");
                }
                Key::V4(Prefix::new(a, len), prio)
            }
            AddressFamily::Inet6 => {
                let a = match dst {
                    Some(IpAddr::V6(a)) => u128::from(a),
                    None => 0,
                    _ => return Parsed::Skip("malformed"),
                };
                if len > 128 {
                    return Parsed::Skip("malformed");
                }
                Key::V6(Prefix6::new(a, len), prio)
            }
            _ => return Parsed::Skip("other_family"),
        };
        match h.kind {
            RouteType::Unicast => {}
            RouteType::BlackHole => return Parsed::Ignored(key, "blackhole"),
            RouteType::Unreachable | RouteType::Prohibit => {
                return Parsed::Ignored(key, "unreachable");
            }
            _ => return Parsed::Ignored(key, "route_type"),
        }
        let proto = u8::from(h.protocol);
        if h.protocol == RouteProtocol::Kernel || proto == RTPROT_KERNEL {
            return Parsed::Ignored(key, "kernel_connected");
        }
        if h.source_prefix_length != 0 || h.tos != 0 {
            return Parsed::Ignored(key, "source_or_tos");
        }
        if let Key::V6(p, _) = key
            && (p.addr >> 118 == 0x3fa || p.addr >> 120 == 0xff)
        {
            // fe80::/10 and multicast: the interface's own, never forwarded.
            return Parsed::Ignored(key, "link_local");
        }
        if via_other {
            return Parsed::Ignored(key, "gateway_family");
        }
        if multi.is_empty() && dead > 0 {
            return Parsed::Ignored(key, "dead_next_hops");
        }
        if multi.is_empty() {
            match oif {
                Some(i) => multi.push((i, gw, 1)),
                // A route over a nexthop object whose next hops the kernel does not expand
                // (nexthop_compat_mode 0): nothing pollfwd can name.
                None if nh_id != 0 => return Parsed::Ignored(key, "nexthop_object"),
                None => return Parsed::Ignored(key, "no_interface"),
            }
        }
        let mut notes = PathNotes::default();
        let w0 = multi[0].2;
        notes.weights = multi.iter().any(|x| x.2 != w0);
        // Next hops out of punt interfaces, each once, at most MAX_PATHS.
        let mut hops: Vec<(u16, Option<IpAddr>)> = Vec::new();
        for (i, g, _) in multi {
            let Some(port) = self.iface_of(i) else {
                notes.partial = true;
                continue;
            };
            match g {
                Some(IpAddr::V4(_)) if matches!(key, Key::V6(..)) => {
                    return Parsed::Ignored(key, "gateway_family");
                }
                Some(IpAddr::V6(_)) if matches!(key, Key::V4(..)) => {
                    return Parsed::Ignored(key, "gateway_family");
                }
                _ => {}
            }
            if hops.contains(&(port, g)) {
                // Listed twice: a weight in effect.
                notes.weights = true;
            } else if hops.len() == MAX_PATHS {
                notes.truncated = true;
            } else {
                hops.push((port, g));
            }
        }
        if hops.is_empty() {
            return Parsed::Ignored(key, "not_punt_interface");
        }
        let r = match key {
            Key::V4(p, _) => KRoute::V4(Synced {
                hops: hops
                    .iter()
                    .map(|&(port, g)| StaticRoute {
                        prefix: p,
                        via: match g {
                            Some(IpAddr::V4(g)) => Some(u32::from(g)),
                            _ => None,
                        },
                        port: Some(port),
                    })
                    .collect(),
                proto,
            }),
            Key::V6(p, _) => KRoute::V6(Synced {
                hops: hops
                    .iter()
                    .map(|&(port, g)| StaticRoute6 {
                        prefix: p,
                        via: match g {
                            Some(IpAddr::V6(g)) => Some(u128::from(g)),
                            _ => None,
                        },
                        port: Some(port),
                    })
                    .collect(),
                proto,
            }),
        };
        Parsed::Route(key, r, nh_id, notes)
    }

    /// The pollfwd interface id of kernel interface `index`, through its punt interface's
    /// name (cached; the punt interfaces live as long as pollfwd).
    fn iface_of(&mut self, index: u32) -> Option<u16> {
        if let Some(v) = self.ifaces.get(&index) {
            return *v;
        }
        let state = self.state;
        let v = ifname(index).and_then(|name| {
            let iface = crate::punt::iface_of_tap(&state.config.config, &name)?;
            state.ifaces.iter().find(|i| i.name == iface).map(|i| i.id)
        });
        // Unknown names are not cached: an interface created later may take the index.
        if v.is_some() {
            self.ifaces.insert(index, v);
        }
        v
    }
}

/// The id (`NHA_ID`) of a nexthop object message's payload (`struct nhmsg` and attributes).
fn nexthop_id(payload: &[u8]) -> Option<u32> {
    for nla in NlasIterator::new(payload.get(NHMSG_LEN..)?) {
        let nla: NlaBuffer<&[u8]> = nla.ok()?;
        if nla.kind() == NHA_ID {
            return nla
                .value()
                .get(..4)
                .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")));
        }
    }
    None
}

/// The name of kernel interface `index` (None: no such interface).
fn ifname(index: u32) -> Option<String> {
    for e in std::fs::read_dir("/sys/class/net").ok()?.flatten() {
        let p = e.path().join("ifindex");
        if std::fs::read_to_string(&p)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(index)
        {
            return e.file_name().into_string().ok();
        }
    }
    None
}

/// Every route of the kernel (both families, all tables: the caller keeps its table's).
fn dump() -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, String> {
    let mut nl = Socket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
    nl.bind_auto().map_err(|e| format!("netlink bind: {e}"))?;
    nl.connect(&SocketAddr::new(0, 0))
        .map_err(|e| format!("netlink connect: {e}"))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for (seq, family) in [(1u32, AddressFamily::Inet), (2, AddressFamily::Inet6)] {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        let mut req = NetlinkMessage::new(
            header,
            NetlinkPayload::from(RouteNetlinkMessage::GetRoute(msg)),
        );
        req.finalize();
        let mut tx = vec![0u8; req.buffer_len()];
        req.serialize(&mut tx);
        nl.send(&tx, 0).map_err(|e| format!("netlink send: {e}"))?;
        'recv: loop {
            let n = nl
                .recv(&mut &mut buf[..], 0)
                .map_err(|e| format!("netlink dump: {e}"))?;
            let mut off = 0;
            while off < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..n])
                    .map_err(|e| format!("netlink dump: {e}"))?;
                let len = m.header.length as usize;
                match &m.payload {
                    NetlinkPayload::Done(_) => break 'recv,
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(format!("netlink dump: {e}"));
                    }
                    _ => {}
                }
                if m.header.sequence_number == seq {
                    out.push(m);
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }
    Ok(out)
}
