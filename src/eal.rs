//! EAL initialisation (once per process), lcore enumeration, launch and wait.

use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::error::{Error, Result};
use crate::ffi;

const NEVER: u8 = 0;
const RUNNING: u8 = 1;
const UP: u8 = 2;
const CLEANED: u8 = 3;
static STATE: AtomicU8 = AtomicU8::new(NEVER);

/// Whether EAL has been initialised (and not cleaned up) in this process.
pub fn is_initialized() -> bool {
    STATE.load(Ordering::Acquire) == UP
}

/// Proof that EAL is up. Only one exists per process; cleanup consumes it.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

/// A function running on a worker lcore (from [`Eal::launch`]).
#[derive(Debug)]
pub struct Launched {
    lcore: u32,
    done: Arc<AtomicBool>,
}

impl Launched {
    /// The lcore it runs on.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Whether the function has returned (or panicked): [`Eal::wait`] then returns at once.
    pub fn is_finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// Whether an EAL argument list keeps DPDK off the PCI bus, or names the PCI devices it may use.
///
/// pollfwd never lets EAL scan the whole PCI bus: either `--no-pci`, or an explicit allow-list
/// (`-a`/`--allow`) of the devices the configuration names.
pub fn pci_policy_ok(args: &[String]) -> bool {
    args.iter().any(|a| {
        a == "--no-pci"
            || a == "-a"
            || a.starts_with("--allow")
            || (a.starts_with("-a") && a.len() > 2)
    })
}

impl Eal {
    /// The EAL of a test binary or a micro-benchmark: takes the machine's busy-polling lock
    /// (`/tmp/pollfwd-busy.lock`, held until the returned file is dropped), then initialises
    /// EAL on lcore 0 with `--no-pci --in-memory --no-telemetry`, a file prefix unique to
    /// this process and `extra` arguments (e.g. `--vdev=...`), and removes the runtime
    /// directory EAL creates (nothing in it is needed with `--in-memory`).
    pub fn init_private(name: &str, extra: &[&str]) -> Result<(Eal, std::fs::File)> {
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/pollfwd-busy.lock")
            .map_err(|e| Error::invalid(format!("busy lock: {e}")))?;
        lock.lock()
            .map_err(|e| Error::invalid(format!("busy lock: {e}")))?;
        let prefix = format!("pf-{name}-{}", std::process::id());
        let mut args: Vec<String> = [
            name,
            "--no-pci",
            "--in-memory",
            "--no-telemetry",
            "-l",
            "0",
            "--log-level=warning",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(format!("--file-prefix={prefix}"));
        let eal = Eal::init(&args)?;
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
        Ok((eal, lock))
    }

    /// Initialises EAL with `args` (args[0] is the program name).
    ///
    /// Fails if EAL was already initialised in this process (DPDK cannot re-initialise, even
    /// after cleanup) or if the arguments would let EAL probe every PCI device.
    pub fn init(args: &[String]) -> Result<Eal> {
        if !pci_policy_ok(args) {
            return Err(Error::invalid(
                "rte_eal_init: refusing to start without --no-pci or a PCI allow-list (-a)",
            ));
        }
        if STATE
            .compare_exchange(NEVER, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Error::new(
                "rte_eal_init: EAL can be initialised once per process",
                libc::EALREADY,
            ));
        }
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| {
                CString::new(a.as_str())
                    .map_err(|_| Error::invalid("rte_eal_init: NUL in argument"))
            })
            .collect::<Result<_>>()?;
        // EAL keeps pointers into argv (and may permute it): leak both, once per process.
        let cargs: &'static [CString] = Box::leak(cargs.into_boxed_slice());
        let argv: &'static mut [*mut c_char] = Box::leak(
            cargs
                .iter()
                .map(|c| c.as_ptr() as *mut c_char)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        // SAFETY: argv holds argc valid NUL-terminated strings that live for the rest of the
        // process (leaked above); STATE guarantees this is the only call in the process.
        let rc = unsafe { ffi::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if rc < 0 {
            STATE.store(CLEANED, Ordering::Release);
            return Err(Error::from_errno(format!(
                "rte_eal_init({})",
                args.join(" ")
            )));
        }
        STATE.store(UP, Ordering::Release);
        Ok(Eal { _private: () })
    }

    /// The main lcore (the thread that called `init`).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is up (self exists).
        unsafe { ffi::rte_get_main_lcore() }
    }

    /// Enabled worker lcores (all lcores but the main one), in id order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut v = Vec::new();
        let mut i = u32::MAX; // rte_get_next_lcore(-1, ...) starts from lcore 0
        loop {
            // SAFETY: EAL is up; the function only reads the lcore configuration.
            i = unsafe { ffi::rte_get_next_lcore(i, 1, 0) };
            if i >= ffi::RTE_MAX_LCORE {
                break;
            }
            v.push(i);
        }
        v
    }

    /// NUMA node of an lcore.
    pub fn lcore_socket(&self, lcore: u32) -> u32 {
        // SAFETY: EAL is up; out-of-range ids return an error value, no UB.
        unsafe { ffi::rte_lcore_to_socket_id(lcore) }
    }

    /// CPU an lcore is pinned to (its first CPU).
    pub fn lcore_cpu(&self, lcore: u32) -> i32 {
        // SAFETY: EAL is up; out-of-range ids return -1.
        unsafe { ffi::rte_lcore_to_cpu_id(lcore as c_int) }
    }

    /// Runs `f` on worker lcore `lcore`. The lcore must be a worker and idle. The returned
    /// handle tells, without blocking, whether `f` has returned (then [`Eal::wait`] returns at
    /// once).
    ///
    /// A panic inside `f` is caught and turned into return value -1 (a panic across the C
    /// boundary would abort the process).
    pub fn launch<F>(&self, lcore: u32, f: F) -> Result<Launched>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        type Job = Box<dyn FnOnce() -> i32 + Send>;
        extern "C" fn trampoline(arg: *mut c_void) -> c_int {
            // SAFETY: arg is the Box<Job> leaked by `launch` below, handed to exactly one
            // lcore, so we are its only owner.
            let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
            (*job)()
        }
        if lcore == self.main_lcore() || !self.worker_lcores().contains(&lcore) {
            return Err(Error::invalid(format!(
                "launch: lcore {lcore} is not a worker lcore"
            )));
        }
        let done = Arc::new(AtomicBool::new(false));
        let finished = done.clone();
        let job: Job = Box::new(move || {
            let rc = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(-1);
            finished.store(true, Ordering::Release);
            rc
        });
        let job: Box<Job> = Box::new(job);
        let arg = Box::into_raw(job) as *mut c_void;
        // SAFETY: trampoline has the lcore_function_t signature; arg points to a valid Box<Job>
        // whose ownership passes to the trampoline on success.
        let rc = unsafe { ffi::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if rc < 0 {
            // SAFETY: launch failed, so the trampoline never ran and we still own arg.
            drop(unsafe { Box::from_raw(arg as *mut Job) });
            return Err(Error::new(
                format!("rte_eal_remote_launch(lcore {lcore})"),
                rc,
            ));
        }
        Ok(Launched { lcore, done })
    }

    /// Waits for the function running on `lcore` to return, and gives its return value.
    pub fn wait(&self, lcore: u32) -> i32 {
        // SAFETY: EAL is up; waiting on an idle lcore returns 0 at once.
        unsafe { ffi::rte_eal_wait_lcore(lcore) }
    }

    /// Releases EAL resources (hugepage files of this process, etc.). Ports must be closed.
    pub fn cleanup(self) -> Result<()> {
        STATE.store(CLEANED, Ordering::Release);
        // SAFETY: called once (self is consumed), from the main lcore, after workers returned.
        let rc = unsafe { ffi::rte_eal_cleanup() };
        crate::error::check(rc, || "rte_eal_cleanup".into()).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::pci_policy_ok;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pci_policy() {
        assert!(pci_policy_ok(&v(&["x", "--no-pci", "--vdev=net_null0"])));
        assert!(pci_policy_ok(&v(&["x", "-a", "0000:01:00.0"])));
        assert!(pci_policy_ok(&v(&["x", "-a0000:01:00.0"])));
        assert!(!pci_policy_ok(&v(&["x", "--vdev=net_null0"])));
        assert!(!pci_policy_ok(&v(&["x", "--in-memory"])));
    }
}
