//! The few OS calls outside DPDK that need `unsafe`: signal handling and Unix-socket peer
//! credentials. Kept here so the other crates stay free of `unsafe`.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

static QUIT: AtomicBool = AtomicBool::new(false);
static LAST_SIGNAL: AtomicI32 = AtomicI32::new(0);
static SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Async-signal-safe: atomic operations only.
    LAST_SIGNAL.store(sig, Ordering::Relaxed);
    SIGNALS.fetch_add(1, Ordering::AcqRel);
    QUIT.store(true, Ordering::Release);
}

/// Makes glibc serve every allocation of `bytes` or more with a mapping of its own, given
/// back to the kernel when it is freed (`mallopt(M_MMAP_THRESHOLD)`; fixing the threshold
/// also stops glibc raising it after the first large free). The control plane's large,
/// short-lived buffers (DPDK's 8 MiB ACL build pools, on whichever client thread builds) then
/// leave nothing behind in the threads' malloc arenas, so RSS stays flat across reloads.
/// False if glibc refused the value.
pub fn malloc_mmap_threshold(bytes: usize) -> bool {
    let Ok(v) = i32::try_from(bytes) else {
        return false;
    };
    // SAFETY: mallopt only sets an allocator parameter; glibc checks the value (at most
    // HEAP_MAX_SIZE / 2) and returns 0 for one it refuses; no memory is touched.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, v) == 1 }
}

/// Installs SIGINT/SIGTERM handlers that set a flag (checked by the main loop), and ignores
/// SIGPIPE (a control client that goes away must not kill the daemon).
pub fn install_quit_handlers() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction with a zeroed struct plus handler is the documented way to install a
        // handler; on_signal only performs async-signal-safe atomic stores.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: setting SIGPIPE to SIG_IGN has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    Ok(())
}

/// Whether SIGINT/SIGTERM arrived.
pub fn quit_requested() -> bool {
    QUIT.load(Ordering::Acquire)
}

/// How many SIGINT/SIGTERM arrived so far (a second one during shutdown forces the exit).
pub fn quit_signals() -> u32 {
    SIGNALS.load(Ordering::Acquire)
}

/// The last quit signal received (0 = none).
pub fn last_signal() -> i32 {
    LAST_SIGNAL.load(Ordering::Relaxed)
}

/// Ends the process at once with `code`, after flushing stdout and stderr, without running
/// exit handlers or destructors (`_exit`): for a forced shutdown, while a worker lcore that
/// did not stop may still use DPDK memory that those handlers would release under it.
pub fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit has no preconditions; it ends the process without touching Rust state.
    unsafe { libc::_exit(code) }
}

/// Credentials of the process at the other end of a Unix stream socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// SO_PEERCRED of a connected Unix socket.
pub fn peer_cred(sock: &impl AsRawFd) -> std::io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid out-pointers of the sizes given; the fd is open for the
    // borrow's duration.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Sets a socket's receive buffer to `bytes` (the kernel doubles it for its bookkeeping):
/// SO_RCVBUFFORCE, which goes beyond `net.core.rmem_max` for a process with CAP_NET_ADMIN,
/// else SO_RCVBUF (capped at rmem_max). Returns the size the kernel reports afterwards.
pub fn set_recv_buffer(sock: &impl AsRawFd, bytes: usize) -> std::io::Result<usize> {
    let want = bytes.min(i32::MAX as usize / 2) as libc::c_int;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: `want` is a valid c_int for the call's duration, its size given; the fd is
        // open for the borrow's duration.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &want as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
        if opt == libc::SO_RCVBUF {
            return Err(std::io::Error::last_os_error());
        }
    }
    let mut got: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: got and len are valid out-pointers of the sizes given; the fd is open.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &mut got as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(got.max(0) as usize)
}

/// Group id and member user names of group `name` (None if it does not exist).
pub fn group_by_name(name: &str) -> Option<(u32, Vec<String>)> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || f[0] != name {
            return None;
        }
        let members = f[3]
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Some((f[2].parse().ok()?, members))
    })
}

/// Supplementary groups of the process `pid` (from /proc/PID/status).
pub fn process_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Groups:")).map(|l| {
                l[7..]
                    .split_whitespace()
                    .filter_map(|g| g.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// Changes the group owner of a path (chown with uid unchanged).
pub fn chgrp(path: &std::path::Path, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, None, Some(gid))
}

/// Asks the kernel to back `buf` with transparent huge pages (`madvise(MADV_HUGEPAGE)`), for
/// large per-lcore tables allocated on the Rust heap (NAT sessions): random access over
/// hundreds of MiB costs a TLB miss per access with 4 KiB pages. Call it before the memory is
/// first touched. Advisory only: returns false (and changes nothing) when the kernel declines.
pub fn advise_hugepages<T>(buf: &mut [std::mem::MaybeUninit<T>]) -> bool {
    const HUGE: usize = 2 << 20;
    let start = buf.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(buf);
    // The whole 2 MiB pages inside the buffer.
    let a = start.div_ceil(HUGE) * HUGE;
    let b = end / HUGE * HUGE;
    if b <= a {
        return false;
    }
    // SAFETY: [a, b) lies inside `buf`, memory this process owns and keeps mapped while the
    // call runs (the exclusive borrow); MADV_HUGEPAGE only changes how the kernel backs the
    // pages, never their contents, so no Rust-visible memory changes.
    unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_HUGEPAGE) == 0 }
}
