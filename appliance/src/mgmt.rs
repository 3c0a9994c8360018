//! The management thread: a plain (non-EAL) thread pinned to the main lcore's CPU, never to a
//! worker's. It serves the control socket (one JSON request per line, one JSON reply per line;
//! see docs/control-protocol.md) and the optional Prometheus listener. It only reads the
//! workers' counters (lock-free) and talks to workers through their mailboxes: nothing a client
//! does can stall a worker.
//!
//! Lock-down: socket mode 0660 in a 0750 directory (created if missing), optional group; the
//! peer's SO_PEERCRED is checked (root or the configured group); requests over 64 KiB, malformed
//! lines and unknown commands get an error reply and the connection stays usable; silent
//! clients time out; concurrent clients are capped.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use crate::daemon::State;

/// Largest request line accepted.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Protocol version carried in every reply.
pub const PROTOCOL_VERSION: u64 = 1;

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
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn pin_to_main(state: &State) {
    let cpu = state
        .config
        .config
        .eal
        .main_cpu
        .unwrap_or(state.config.config.eal.main_lcore) as usize;
    let _ = core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
}

/// Prepares the socket path: creates the directory (0750) if missing, removes a stale socket
/// (a file nobody listens on), refuses to take over a live one.
fn prepare_socket(path: &Path, gid: Option<u32>) -> Result<(), String> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(g) = gid {
            dpdk::sys::chgrp(dir, g).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    if path.exists() {
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(format!(
                    "{}: another pollfwd is serving this control socket (set [control] socket)",
                    path.display()
                ));
            }
            Err(_) => {
                std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Starts the management thread (and the Prometheus listener if configured).
pub fn start(state: Arc<State>) -> Result<Mgmt, String> {
    let cc = &state.config.config.control;
    let socket = PathBuf::from(&cc.socket);
    let group = match &cc.group {
        None => None,
        Some(g) => {
            let name = g.get_ref().clone();
            let (gid, members) = dpdk::sys::group_by_name(&name)
                .ok_or_else(|| format!("[control] group '{name}' does not exist"))?;
            Some((name, gid, members))
        }
    };
    prepare_socket(&socket, group.as_ref().map(|g| g.1))?;
    let listener = UnixListener::bind(&socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    if let Some((_, gid, _)) = &group {
        dpdk::sys::chgrp(&socket, *gid).map_err(|e| format!("{}: {e}", socket.display()))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let access = Access { group };
    let mut threads = Vec::new();
    {
        let (state, stop) = (state.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name("pollfwd-mgmt".into())
                .spawn(move || serve_socket(state, listener, access, stop))
                .map_err(|e| e.to_string())?,
        );
    }
    if let Some(addr) = &state.config.config.control.prometheus {
        let l = TcpListener::bind(addr.get_ref().as_str())
            .map_err(|e| format!("prometheus listener {}: {e}", addr.get_ref()))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let (state, stop) = (state.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name("pollfwd-metrics".into())
                .spawn(move || serve_metrics(state, l, stop))
                .map_err(|e| e.to_string())?,
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
    let timeout = Duration::from_millis(state.config.config.control.client_timeout_ms.max(10));
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

/// Reads one line of at most MAX_REQUEST bytes. Ok(None) at end of stream; Err(too_long) after
/// discarding the rest of an oversize line.
fn read_line(r: &mut BufReader<UnixStream>, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if buf.is_empty() && !too_long {
                None
            } else {
                Some(too_long)
            });
        }
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
            return Ok(Some(too_long));
        }
    }
}

fn serve_client(state: &State, conn: UnixStream, timeout: Duration, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(timeout));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::with_capacity(16 * 1024, conn);
    let mut buf = Vec::new();
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let reply = match read_line(&mut r, &mut buf) {
            Ok(None) => return,
            Err(_) => return, // timeout or error: a silent client is disconnected
            Ok(Some(true)) => error_reply(
                Value::Null,
                &format!("request larger than {MAX_REQUEST} bytes"),
            ),
            Ok(Some(false)) => handle_line(state, &buf),
        };
        if writeln!(out, "{reply}").is_err() {
            return;
        }
    }
}

/// Parses and runs one request line: `{"cmd": "stats", "args": {...}, "id": any}`.
pub fn handle_line(state: &State, line: &[u8]) -> Value {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if text.is_empty() {
        return error_reply(Value::Null, "empty request");
    }
    let req: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return error_reply(Value::Null, &format!("malformed JSON: {e}")),
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(cmd) = req.get("cmd").and_then(Value::as_str) else {
        return error_reply(id, "request needs a string field 'cmd'");
    };
    if let Some(v) = req.get("v").and_then(Value::as_u64)
        && v != PROTOCOL_VERSION
    {
        return error_reply(
            id,
            &format!("protocol version {v} not supported (server speaks {PROTOCOL_VERSION})"),
        );
    }
    let args = req.get("args").cloned().unwrap_or(json!({}));
    match crate::ops::dispatch(state, cmd, &args) {
        Ok(data) => json!({"v": PROTOCOL_VERSION, "id": id, "ok": true, "data": data}),
        Err(e) => error_reply(id, &e),
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
                crate::control::metrics_text(&state),
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
