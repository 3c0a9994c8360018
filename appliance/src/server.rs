//! The control socket server, on the management thread: a plain (non-EAL) thread pinned to the main lcore's CPU, never to a
//! worker's. It serves the control socket (one JSON request per line, one JSON reply per line;
//! see docs/control-protocol.md) and the optional Prometheus listener. It only reads the
//! workers' counters (lock-free) and talks to workers through their mailboxes: nothing a client
//! does can stall a worker.
//!
//! Lock-down: socket mode 0660 in a 0750 directory (created if missing), optional group; the
//! peer's SO_PEERCRED is checked (root or the configured group); requests over 64 KiB, malformed
//! lines and unknown commands get an error reply and the connection stays usable; silent
//! clients time out; concurrent clients are capped. A path that exists and is not a socket is
//! refused, never deleted ([`check_socket_path`], also run before EAL starts).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::ops::PROTOCOL_VERSION;
use crate::state::State;

/// Largest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Who may use the socket.
#[derive(Debug, Clone)]
pub struct Access {
    /// Group id allowed besides root, and its member names.
    pub group: Option<(String, u32, Vec<String>)>,
}

impl Access {
    /// Root is always allowed; otherwise the peer's primary or supplementary groups must
    /// include the configured group.
    pub fn check(&self, cred: dpdk::sys::PeerCred, supplementary: &[u32]) -> Result<(), String> {
        if cred.uid == 0 {
            return Ok(());
        }
        match &self.group {
            Some((name, gid, _)) if cred.gid == *gid || supplementary.contains(gid) => {
                let _ = name;
                Ok(())
            }
            Some((name, _, _)) => Err(format!(
                "permission denied: uid {} is neither root nor in group '{name}'",
                cred.uid
            )),
            None => Err(format!(
                "permission denied: uid {} is not root (no control group configured)",
                cred.uid
            )),
        }
    }
}

/// The running management side.
pub struct Mgmt {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    socket: PathBuf,
}

impl Mgmt {
    /// Stops accepting, waits for the server threads (client threads end by themselves within
    /// their timeout), removes the socket file.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            let _ = t.join();
        }
        // Only our socket: whatever replaced it meanwhile stays.
        if std::fs::symlink_metadata(&self.socket).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

/// Pins the calling thread to the main lcore's CPU (config validation keeps workers off it).
/// A failure is logged, not fatal: the thread then keeps the mask it inherited from EAL's
/// main thread, which EAL pinned to the same CPU.
fn pin_to_main(state: &State) {
    let cpu = state
        .config
        .config
        .eal
        .main_cpu
        .unwrap_or(state.config.config.eal.main_lcore) as usize;
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        let name = std::thread::current()
            .name()
            .unwrap_or("management")
            .to_string();
        eprintln!(
            "pollfwd: warning: {name} thread: cannot pin to CPU {cpu} (the main lcore's): {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Why the control socket (or the Prometheus listener) could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A file system step on the socket or its directory.
    #[error("{}: {source}", path.display())]
    Path {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: another pollfwd is serving this control socket (set [control] socket)", .0.display())]
    InUse(PathBuf),
    #[error("{}: exists and is not a socket ({kind}): not replacing it (remove it or set [control] socket)", path.display())]
    NotASocket { path: PathBuf, kind: &'static str },
    #[error("[control] group '{0}' does not exist")]
    NoGroup(String),
    #[error("prometheus listener {addr}: {source}")]
    Prometheus {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Thread(std::io::Error),
}

/// Attaches `path` to an I/O error.
fn at(path: &Path) -> impl Fn(std::io::Error) -> ServerError + '_ {
    move |source| ServerError::Path {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks the control socket path before anything is started: `Ok(true)` if a stale socket
/// is there (one nobody listens on: [`start`] replaces it), `Ok(false)` if nothing is; refuses
/// a live socket (another pollfwd) and anything that is not a socket (a regular file, a
/// directory, a symbolic link...), which pollfwd never deletes.
pub fn check_socket_path(path: &Path) -> Result<bool, ServerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(at(path)(e)),
    };
    let t = meta.file_type();
    if !t.is_socket() {
        let kind = if t.is_file() {
            "a regular file"
        } else if t.is_dir() {
            "a directory"
        } else if t.is_symlink() {
            "a symbolic link"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else {
            "another kind of file"
        };
        return Err(ServerError::NotASocket {
            path: path.to_path_buf(),
            kind,
        });
    }
    if UnixStream::connect(path).is_ok() {
        return Err(ServerError::InUse(path.to_path_buf()));
    }
    Ok(true)
}

/// What [`start`] would refuse, checked before anything is started: the socket path
/// ([`check_socket_path`]) and the `[control] group`.
pub fn preflight(cc: &crate::config::ControlConfig) -> Result<(), ServerError> {
    if let Some(g) = &cc.group
        && dpdk::sys::group_by_name(g.get_ref()).is_none()
    {
        return Err(ServerError::NoGroup(g.get_ref().clone()));
    }
    check_socket_path(Path::new(cc.socket.get_ref())).map(|_| ())
}

/// Prepares the socket path: creates the directory (0750) if missing, removes a stale socket
/// (a socket nobody listens on), refuses to take over a live one or to replace anything that
/// is not a socket.
fn prepare_socket(path: &Path, gid: Option<u32>) -> Result<(), ServerError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(at(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).map_err(at(dir))?;
        if let Some(g) = gid {
            dpdk::sys::chgrp(dir, g).map_err(at(dir))?;
        }
    }
    if check_socket_path(path)? {
        std::fs::remove_file(path).map_err(at(path))?;
    }
    Ok(())
}

/// Starts the management thread (and the Prometheus listener if configured).
pub fn start(state: Arc<State>) -> Result<Mgmt, ServerError> {
    let cc = &state.config.config.control;
    let socket = PathBuf::from(cc.socket.get_ref());
    let group = match &cc.group {
        None => None,
        Some(g) => {
            let name = g.get_ref().clone();
            let (gid, members) = dpdk::sys::group_by_name(&name)
                .ok_or_else(|| ServerError::NoGroup(name.clone()))?;
            Some((name, gid, members))
        }
    };
    prepare_socket(&socket, group.as_ref().map(|g| g.1))?;
    let listener = UnixListener::bind(&socket).map_err(at(&socket))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))
        .map_err(at(&socket))?;
    if let Some((_, gid, _)) = &group {
        dpdk::sys::chgrp(&socket, *gid).map_err(at(&socket))?;
    }
    listener.set_nonblocking(true).map_err(at(&socket))?;
    let stop = Arc::new(AtomicBool::new(false));
    let access = Access { group };
    let mut threads = Vec::new();
    {
        let (state, stop) = (state.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name("pollfwd-mgmt".into())
                .spawn(move || serve_socket(state, listener, access, stop))
                .map_err(ServerError::Thread)?,
        );
    }
    if let Some(addr) = &state.config.config.control.prometheus {
        let prom = |source| ServerError::Prometheus {
            addr: addr.get_ref().clone(),
            source,
        };
        let l = TcpListener::bind(addr.get_ref().as_str()).map_err(prom)?;
        l.set_nonblocking(true).map_err(prom)?;
        let (state, stop) = (state.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name("pollfwd-metrics".into())
                .spawn(move || serve_metrics(state, l, stop))
                .map_err(ServerError::Thread)?,
        );
    }
    Ok(Mgmt {
        stop,
        threads,
        socket,
    })
}

fn serve_socket(state: Arc<State>, listener: UnixListener, access: Access, stop: Arc<AtomicBool>) {
    pin_to_main(&state);
    let clients = Arc::new(AtomicUsize::new(0));
    let max = state.config.config.control.max_clients;
    let timeout = Duration::from_millis(*state.config.config.control.client_timeout_ms.get_ref());
    while !stop.load(Ordering::Acquire) {
        let (mut conn, _) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_write_timeout(Some(timeout));
        let verdict = match dpdk::sys::peer_cred(&conn) {
            Ok(cred) => access.check(cred, &dpdk::sys::process_groups(cred.pid)),
            Err(e) => Err(format!("cannot read peer credentials: {e}")),
        };
        if let Err(reason) = verdict {
            let _ = writeln!(conn, "{}", error_reply(Value::Null, &reason));
            continue;
        }
        if clients.load(Ordering::Acquire) >= max {
            let _ = writeln!(
                conn,
                "{}",
                error_reply(
                    Value::Null,
                    &format!("too many control clients (max {max}); try again")
                )
            );
            continue;
        }
        clients.fetch_add(1, Ordering::AcqRel);
        let (state, clients, stop) = (state.clone(), clients.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("pollfwd-ctl".into())
            .spawn(move || {
                serve_client(&state, conn, timeout, &stop);
                clients.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            // Could not start a thread: the connection was dropped with the closure.
        }
    }
}

fn error_reply(id: Value, msg: &str) -> Value {
    json!({"v": PROTOCOL_VERSION, "id": id, "ok": false, "error": msg})
}

/// What [`read_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// The peer closed the connection between requests.
    Eof,
    /// A whole request is in the buffer.
    Request,
    /// A line over MAX_REQUEST bytes was read and discarded.
    TooLong,
    /// Nothing arrived for the idle timeout between requests.
    Idle,
    /// A request was started but not finished (newline) within the request deadline: a slow
    /// client, or an endless line.
    Slow,
}

/// Reads one line of at most MAX_REQUEST bytes. Between requests the peer may stay silent for
/// `idle`; once the first byte of a request arrived, the whole line (including the rest of an
/// oversize line being discarded) must arrive within `limit` of it. The read timeout is set
/// before each read from the socket (SO_RCVTIMEO applies per read(), so the remaining time is
/// what bounds a client that trickles bytes).
fn read_line(
    r: &mut BufReader<UnixStream>,
    buf: &mut Vec<u8>,
    idle: Duration,
    limit: Duration,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    let mut started: Option<Instant> = None;
    loop {
        if r.buffer().is_empty() {
            let wait = match started {
                None => idle,
                Some(t0) => {
                    let left = limit.saturating_sub(t0.elapsed());
                    if left.is_zero() {
                        return Ok(Line::Slow);
                    }
                    left
                }
            };
            r.get_ref()
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        }
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(if started.is_some() {
                    Line::Slow
                } else {
                    Line::Idle
                });
            }
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            // End of stream: a partial last line still counts as a request.
            return Ok(match (started, too_long) {
                (None, _) => Line::Eof,
                (Some(_), true) => Line::TooLong,
                (Some(_), false) => Line::Request,
            });
        }
        started.get_or_insert_with(Instant::now);
        let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], Some(i + 1)),
            None => (avail, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > MAX_REQUEST {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(avail.len());
        r.consume(used);
        if done.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Request
            });
        }
    }
}

fn serve_client(state: &State, conn: UnixStream, timeout: Duration, stop: &AtomicBool) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::with_capacity(16 * 1024, conn);
    let mut buf = Vec::new();
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let reply = match read_line(&mut r, &mut buf, timeout, timeout) {
            // A silent client is disconnected without a reply: a reply it did not ask for
            // would be read as the answer to its next request.
            Ok(Line::Eof | Line::Idle) | Err(_) => return,
            Ok(Line::Slow) => {
                let _ = writeln!(
                    out,
                    "{}",
                    error_reply(
                        Value::Null,
                        &format!(
                            "request not completed within {} ms (client_timeout_ms): disconnecting",
                            timeout.as_millis()
                        ),
                    )
                );
                return;
            }
            Ok(Line::TooLong) => error_reply(
                Value::Null,
                &format!("request larger than {MAX_REQUEST} bytes"),
            ),
            Ok(Line::Request) => handle_line(state, &buf),
        };
        if writeln!(out, "{reply}").is_err() {
            return;
        }
    }
}

/// A request line, parsed (docs/control-protocol.md): the command, its arguments (`{}` when
/// absent) and the client's `id` (echoed in the reply; `null` when absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub cmd: String,
    pub args: Value,
    pub id: Value,
}

/// Parses one request line: `{"cmd": "stats", "args": {...}, "id": any, "v": 1}`. A line
/// that is not a request gives the error reply to send.
pub fn parse_request(line: &[u8]) -> Result<Request, Value> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return Err(error_reply(Value::Null, "empty request"));
    }
    let req: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(error_reply(Value::Null, &format!("malformed JSON: {e}"))),
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(cmd) = req.get("cmd").and_then(Value::as_str) else {
        return Err(error_reply(id, "request needs a string field 'cmd'"));
    };
    if let Some(v) = req.get("v").and_then(Value::as_u64)
        && v != PROTOCOL_VERSION
    {
        return Err(error_reply(
            id,
            &format!("protocol version {v} not supported (server speaks {PROTOCOL_VERSION})"),
        ));
    }
    Ok(Request {
        cmd: cmd.to_string(),
        args: req.get("args").cloned().unwrap_or(json!({})),
        id,
    })
}

/// Parses and runs one request line: `{"cmd": "stats", "args": {...}, "id": any}`.
pub fn handle_line(state: &State, line: &[u8]) -> Value {
    let req = match parse_request(line) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    match crate::dispatch::dispatch(state, &req.cmd, &req.args) {
        Ok(data) => json!({"v": PROTOCOL_VERSION, "id": req.id, "ok": true, "data": data}),
        Err(e) => error_reply(req.id, &e.to_string()),
    }
}

fn serve_metrics(state: Arc<State>, l: TcpListener, stop: Arc<AtomicBool>) {
    pin_to_main(&state);
    while !stop.load(Ordering::Acquire) {
        let mut s = match l.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let mut req = [0u8; 2048];
        let n = s.read(&mut req).unwrap_or(0);
        let head = String::from_utf8_lossy(&req[..n]);
        let first = head.lines().next().unwrap_or("");
        let (status, body, ctype) = if first.starts_with("GET /metrics ") || first == "GET /metrics"
        {
            (
                "200 OK",
                crate::core_ops::metrics_text(&state),
                "text/plain; version=0.0.4",
            )
        } else {
            (
                "404 Not Found",
                "only GET /metrics is served\n".to_string(),
                "text/plain",
            )
        };
        let _ = write!(
            s,
            "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpdk::sys::PeerCred;

    fn cred(uid: u32, gid: u32) -> PeerCred {
        PeerCred { pid: 1, uid, gid }
    }

    fn ops_group() -> Access {
        Access {
            group: Some(("pfops".into(), 4242, vec!["alice".into()])),
        }
    }

    #[test]
    fn root_is_always_allowed() {
        assert!(Access { group: None }.check(cred(0, 0), &[]).is_ok());
        assert!(ops_group().check(cred(0, 7), &[]).is_ok());
    }

    #[test]
    fn primary_group_matches() {
        assert!(ops_group().check(cred(1000, 4242), &[]).is_ok());
    }

    #[test]
    fn supplementary_group_matches() {
        assert!(ops_group().check(cred(1000, 1000), &[27, 4242]).is_ok());
    }

    #[test]
    fn others_are_refused_naming_the_group() {
        let e = ops_group().check(cred(1000, 1000), &[27, 100]).unwrap_err();
        assert!(e.contains("uid 1000"), "{e}");
        assert!(e.contains("group 'pfops'"), "{e}");
        let e = Access { group: None }
            .check(cred(65534, 65534), &[65534])
            .unwrap_err();
        assert!(
            e.contains("not root") && e.contains("no control group"),
            "{e}"
        );
    }

    #[test]
    fn socket_path_that_is_not_a_socket_is_refused_and_kept() {
        let dir = std::env::temp_dir().join(format!("pf-sockpath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("none.sock");
        assert!(!check_socket_path(&missing).unwrap());

        let file = dir.join("file.sock");
        std::fs::write(&file, "keep me").unwrap();
        let e = prepare_socket(&file, None).unwrap_err().to_string();
        assert!(
            e.contains(&*file.to_string_lossy()) && e.contains("not a socket (a regular file)"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

        let sub = dir.join("dir.sock");
        std::fs::create_dir(&sub).unwrap();
        let e = check_socket_path(&sub).unwrap_err().to_string();
        assert!(e.contains("(a directory)"), "{e}");
        let link = dir.join("link.sock");
        std::os::unix::fs::symlink(&missing, &link).unwrap();
        let e = check_socket_path(&link).unwrap_err().to_string();
        assert!(e.contains("(a symbolic link)"), "{e}");
        assert!(std::fs::symlink_metadata(&link).is_ok());

        // A live socket is refused, a stale one (nobody listening) is replaced.
        let live = dir.join("live.sock");
        let l = UnixListener::bind(&live).unwrap();
        assert!(matches!(
            check_socket_path(&live),
            Err(ServerError::InUse(_))
        ));
        drop(l);
        assert!(check_socket_path(&live).unwrap());
        prepare_socket(&live, None).unwrap();
        assert!(!live.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn pair() -> (UnixStream, BufReader<UnixStream>) {
        let (a, b) = UnixStream::pair().unwrap();
        (a, BufReader::new(b))
    }

    #[allow(non_snake_case)]
    fn MS(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn lines_are_read_one_by_one() {
        let (mut w, mut r) = pair();
        w.write_all(b"{\"cmd\":\"a\"}\n{\"cmd\":\"b\"}\npartial")
            .unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, &mut buf, MS(500), MS(500)).unwrap(),
            Line::Request
        );
        assert_eq!(buf, b"{\"cmd\":\"a\"}");
        assert_eq!(
            read_line(&mut r, &mut buf, MS(500), MS(500)).unwrap(),
            Line::Request
        );
        assert_eq!(buf, b"{\"cmd\":\"b\"}");
        drop(w);
        assert_eq!(
            read_line(&mut r, &mut buf, MS(500), MS(500)).unwrap(),
            Line::Request
        );
        assert_eq!(buf, b"partial");
        assert_eq!(
            read_line(&mut r, &mut buf, MS(500), MS(500)).unwrap(),
            Line::Eof
        );
    }

    #[test]
    fn silent_peer_is_idle() {
        let (_w, mut r) = pair();
        let t0 = Instant::now();
        let got = read_line(&mut r, &mut Vec::new(), MS(100), MS(5000)).unwrap();
        assert_eq!(got, Line::Idle);
        assert!(t0.elapsed() < MS(2000), "{:?}", t0.elapsed());
    }

    /// A peer sending one byte every 20 ms never trips a per-read timeout of 100 ms; the
    /// request deadline (200 ms from its first byte) ends it.
    fn trickle(prefix: Vec<u8>) {
        let (mut w, mut r) = pair();
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(&prefix);
            for _ in 0..150 {
                if w.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(MS(20));
            }
        });
        let t0 = Instant::now();
        let got = read_line(&mut r, &mut Vec::new(), MS(100), MS(200)).unwrap();
        let took = t0.elapsed();
        drop(r);
        writer.join().unwrap();
        assert_eq!(got, Line::Slow);
        assert!(took >= MS(150) && took < MS(1500), "{took:?}");
    }

    #[test]
    fn trickling_peer_hits_the_request_deadline() {
        trickle(b"{\"cmd\": ".to_vec());
    }

    #[test]
    fn deadline_also_bounds_discarding_an_oversize_line() {
        trickle(vec![b'x'; MAX_REQUEST + 10]);
    }

    #[test]
    fn oversize_line_is_discarded_and_the_next_one_read() {
        let (mut w, mut r) = pair();
        let writer = std::thread::spawn(move || {
            w.write_all(&vec![b'x'; MAX_REQUEST + 1]).unwrap();
            w.write_all(b"\n{\"cmd\":\"version\"}\n").unwrap();
            w
        });
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut r, &mut buf, MS(2000), MS(2000)).unwrap(),
            Line::TooLong
        );
        assert_eq!(
            read_line(&mut r, &mut buf, MS(2000), MS(2000)).unwrap(),
            Line::Request
        );
        assert_eq!(buf, b"{\"cmd\":\"version\"}");
        drop(writer.join().unwrap());
    }
}
