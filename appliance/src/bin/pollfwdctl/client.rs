//! The control-socket client: one JSON request per line, one reply per line.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

/// Why a command failed, and the exit code that goes with it.
pub(crate) enum Failure {
    /// The daemon answered with an error (exit 1).
    Reply(String),
    /// The daemon cannot be reached (exit 2).
    Unreachable(String),
    /// Bad local input (exit 1).
    Local(String),
}

/// A connection to the daemon's control socket, opened on first use.
pub(crate) struct Client {
    pub(crate) socket: PathBuf,
    pub(crate) timeout: Duration,
    conn: Option<(UnixStream, BufReader<UnixStream>)>,
}

impl Client {
    pub(crate) fn new(socket: PathBuf, timeout: Duration) -> Client {
        Client {
            socket,
            timeout,
            conn: None,
        }
    }

    pub(crate) fn unreachable(&self, e: &std::io::Error) -> Failure {
        let p = self.socket.display();
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such socket: pollfwd is not running (or uses another [control] socket; pass --socket)".to_string(),
            std::io::ErrorKind::ConnectionRefused => "connection refused: the socket is stale, pollfwd is not running".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied: only root and the [control] group may use it".to_string(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out: pollfwd is running but not answering".to_string(),
            _ => format!("{e}"),
        };
        Failure::Unreachable(format!("cannot reach pollfwd at {p}: {why}"))
    }

    /// Sends one request. A kept connection the server closed meanwhile (it closes idle ones
    /// after client_timeout_ms, e.g. between `watch` rounds) is replaced once by a new one.
    pub(crate) fn call(&mut self, cmd: &str, args: Value) -> Result<Value, Failure> {
        let reused = self.conn.is_some();
        match self.call_once(cmd, &args) {
            Err(Failure::Unreachable(_)) if reused => self.call_once(cmd, &args),
            r => r,
        }
    }

    pub(crate) fn call_once(&mut self, cmd: &str, args: &Value) -> Result<Value, Failure> {
        if self.conn.is_none() {
            let s = UnixStream::connect(&self.socket).map_err(|e| self.unreachable(&e))?;
            s.set_read_timeout(Some(self.timeout)).ok();
            s.set_write_timeout(Some(self.timeout)).ok();
            let r = BufReader::new(s.try_clone().map_err(|e| self.unreachable(&e))?);
            self.conn = Some((s, r));
        }
        let req = json!({"v": 1, "cmd": cmd, "args": args});
        let (w, r) = self.conn.as_mut().expect("connected");
        let sent = writeln!(w, "{req}");
        let mut line = String::new();
        // Read even when the write failed: a server that refuses a client (credentials, too
        // many clients) answers and closes without reading the request, and its answer is
        // there to read although the request could not be sent.
        let got = r.read_line(&mut line);
        match (sent, got) {
            (_, Ok(n)) if n > 0 => {}
            (Err(e), _) | (Ok(()), Err(e)) => {
                self.conn = None;
                return Err(self.unreachable(&e));
            }
            (Ok(()), Ok(_)) => {
                self.conn = None;
                return Err(Failure::Unreachable(format!(
                    "cannot reach pollfwd at {}: it closed the connection",
                    self.socket.display()
                )));
            }
        }
        let reply: Value = serde_json::from_str(&line)
            .map_err(|e| Failure::Reply(format!("unreadable reply from pollfwd: {e}")))?;
        if reply["ok"] == true {
            Ok(reply["data"].clone())
        } else {
            Err(Failure::Reply(
                reply["error"]
                    .as_str()
                    .unwrap_or("error without a message")
                    .to_string(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client whose connection's other end is `peer` (as if connected to a server).
    fn connected() -> (Client, UnixStream) {
        let (mine, peer) = UnixStream::pair().expect("socketpair");
        let mut c = Client::new(
            PathBuf::from("/nonexistent/ctl.sock"),
            Duration::from_secs(2),
        );
        let r = BufReader::new(mine.try_clone().expect("clone"));
        c.conn = Some((mine, r));
        (c, peer)
    }

    #[test]
    fn a_refusal_sent_before_the_server_closed_is_read_although_the_request_was_not_sent() {
        // The server answers and closes without reading (a refused client): the request's
        // write fails (the peer is gone), the answer is still there to read.
        let (mut c, mut peer) = connected();
        writeln!(
            peer,
            "{}",
            json!({"v": 1, "ok": false, "error": "permission denied: uid 65534 is not root"})
        )
        .unwrap();
        drop(peer);
        match c.call_once("version", &json!({})) {
            Err(Failure::Reply(e)) => assert!(e.contains("uid 65534 is not root"), "{e}"),
            Err(Failure::Unreachable(e)) => panic!("unreachable instead of the answer: {e}"),
            _ => panic!("expected the server's error"),
        }
    }

    #[test]
    fn a_server_that_closes_without_answering_is_unreachable() {
        let (mut c, peer) = connected();
        drop(peer);
        assert!(matches!(
            c.call_once("version", &json!({})),
            Err(Failure::Unreachable(_))
        ));
        // And one that answers is read as usual.
        let (mut c, mut peer) = connected();
        writeln!(
            peer,
            "{}",
            json!({"v": 1, "ok": true, "data": {"protocol": 1}})
        )
        .unwrap();
        match c.call_once("version", &json!({})) {
            Ok(d) => assert_eq!(d["protocol"], 1),
            _ => panic!("expected the reply"),
        }
    }
}
