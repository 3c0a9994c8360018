//! systemd's readiness protocol (`Type=notify`, sd_notify(3)): `READY=1` once the ports are
//! up, the workers poll and the control socket serves; `STOPPING=1` when shutdown starts;
//! `STATUS=` lines that `systemctl status` shows. Without `$NOTIFY_SOCKET` (not started by
//! systemd) nothing is sent. A failure to notify is logged, never fatal: systemd then times
//! the start out, which says more than pollfwd refusing to run.

use sd_notify::NotifyState;

fn send(what: &str, states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        eprintln!("pollfwd: warning: sd_notify {what}: {e}");
    }
}

/// Start-up done: `READY=1` with a status line.
pub fn ready(status: &str) {
    send("READY", &[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Shutdown started: `STOPPING=1`.
pub fn stopping() {
    send(
        "STOPPING",
        &[NotifyState::Stopping, NotifyState::Status("stopping")],
    );
}

/// A status line (`systemctl status` shows the last one).
pub fn status(status: &str) {
    send("STATUS", &[NotifyState::Status(status)]);
}
