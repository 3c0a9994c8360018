//! One error type for every DPDK call: the operation and DPDK's errno.

use std::fmt;

use crate::ffi;

/// A failed DPDK call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What was being done, e.g. `rte_eth_dev_configure(port 0)`.
    pub op: String,
    /// Positive errno value (DPDK returns negative codes or sets rte_errno).
    pub code: i32,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(op: impl Into<String>, code: i32) -> Self {
        Error {
            op: op.into(),
            code: code.abs(),
        }
    }

    /// Builds an error from the current `rte_errno`.
    pub fn from_errno(op: impl Into<String>) -> Self {
        // SAFETY: rte_errno is a per-thread variable; reading it has no preconditions.
        let code = unsafe { ffi::pf_errno() };
        Error::new(op, code)
    }

    /// An error that did not come from DPDK itself (bad argument, state).
    pub fn invalid(op: impl Into<String>) -> Self {
        Error::new(op, libc::EINVAL)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: rte_strerror returns a pointer to a NUL-terminated string valid until the next
        // call on this thread; we copy it at once.
        let msg = unsafe { std::ffi::CStr::from_ptr(ffi::rte_strerror(self.code)) }
            .to_string_lossy()
            .into_owned();
        write!(f, "{}: {} (errno {})", self.op, msg, self.code)
    }
}

impl std::error::Error for Error {}

/// Maps DPDK's `int` convention (negative errno on failure) to a `Result`.
pub(crate) fn check(rc: i32, op: impl FnOnce() -> String) -> Result<i32> {
    if rc < 0 {
        Err(Error::new(op(), rc))
    } else {
        Ok(rc)
    }
}
