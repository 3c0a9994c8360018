//! DPDK telemetry commands (`dpdk-telemetry.py` lists and calls them) and pdump (so that
//! `dpdk-dumpcap` can capture from a running pollfwd).
//!
//! DPDK 22.11 telemetry callbacks carry no user pointer, so one C callback looks the command up
//! in a registry of Rust closures. Callbacks run on DPDK's telemetry thread, never on a worker.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result, check};
use crate::ffi;

/// A value in a telemetry reply dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelValue {
    U64(u64),
    Str(String),
}

type Handler = Box<dyn Fn() -> Vec<(String, TelValue)> + Send + Sync>;

fn registry() -> &'static Mutex<HashMap<String, Handler>> {
    static R: OnceLock<Mutex<HashMap<String, Handler>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

extern "C" fn dispatch(
    cmd: *const c_char,
    _params: *const c_char,
    d: *mut ffi::rte_tel_data,
) -> c_int {
    if cmd.is_null() || d.is_null() {
        return -libc::EINVAL;
    }
    // SAFETY: DPDK passes the NUL-terminated command string it matched.
    let name = unsafe { CStr::from_ptr(cmd) }
        .to_string_lossy()
        .into_owned();
    let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    let Some(h) = reg.get(&name) else {
        return -libc::ENOENT;
    };
    let items = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(h)) {
        Ok(i) => i,
        Err(_) => return -libc::EIO,
    };
    // SAFETY: d is the reply object DPDK handed us for this call.
    unsafe { ffi::rte_tel_data_start_dict(d) };
    for (k, v) in items {
        let Ok(key) = CString::new(k) else { continue };
        match v {
            // SAFETY: d is valid for this call; key is NUL-terminated and copied by DPDK.
            TelValue::U64(n) => unsafe {
                ffi::rte_tel_data_add_dict_u64(d, key.as_ptr(), n);
            },
            TelValue::Str(s) => {
                let Ok(val) = CString::new(s) else { continue };
                // SAFETY: as above; val is NUL-terminated and copied by DPDK.
                unsafe { ffi::rte_tel_data_add_dict_string(d, key.as_ptr(), val.as_ptr()) };
            }
        }
    }
    0
}

/// Registers telemetry command `cmd` (must start with '/', e.g. "/pollfwd/stats").
pub fn register(
    cmd: &str,
    help: &str,
    f: impl Fn() -> Vec<(String, TelValue)> + Send + Sync + 'static,
) -> Result<()> {
    if !crate::eal::is_initialized() {
        return Err(Error::invalid("telemetry: EAL is not initialised"));
    }
    let c = CString::new(cmd).map_err(|_| Error::invalid("telemetry command has NUL"))?;
    let h = CString::new(help).map_err(|_| Error::invalid("telemetry help has NUL"))?;
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(cmd.to_string(), Box::new(f));
    // DPDK keeps the command and help pointers: leak them (a few per process).
    let (c, h) = (c.into_raw(), h.into_raw());
    // SAFETY: c and h are NUL-terminated strings that live forever (leaked above); dispatch
    // has the telemetry_cb signature.
    let rc = unsafe { ffi::rte_telemetry_register_cmd(c, Some(dispatch), h) };
    check(rc, || format!("rte_telemetry_register_cmd({cmd})")).map(|_| ())
}

/// Initialises the packet-capture framework so `dpdk-dumpcap` (a secondary process) can capture.
/// Needs multi-process support: not available with `--in-memory`.
pub fn pdump_init() -> Result<()> {
    // SAFETY: called once on the main lcore after EAL init.
    let rc = unsafe { ffi::rte_pdump_init() };
    check(rc, || "rte_pdump_init".into()).map(|_| ())
}

/// Releases pdump (before ports are closed).
pub fn pdump_uninit() {
    // SAFETY: plain call; harmless if init failed.
    unsafe { ffi::rte_pdump_uninit() };
}
