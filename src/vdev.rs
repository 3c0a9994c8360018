//! Virtual devices created after EAL starts (`rte_vdev_init`): the punt path's `net_tap`
//! ports, whose arguments (the wire port's MAC) are only known once EAL has probed the ports.

use std::ffi::CString;

use crate::error::{Error, Result};
use crate::ffi;

/// Creates the virtual device `name` (e.g. `net_tap0`) with driver arguments `args` (e.g.
/// `iface=pf-p0,mac=02:00:00:00:00:01`); its ethdev port is then found with
/// [`crate::Port::by_name`]. EAL must be up.
pub fn create(name: &str, args: &str) -> Result<()> {
    let n = CString::new(name).map_err(|_| Error::invalid("vdev name has NUL"))?;
    let a = CString::new(args).map_err(|_| Error::invalid("vdev arguments have NUL"))?;
    // SAFETY: both are valid C strings for the call's duration; DPDK copies them.
    let rc = unsafe { ffi::rte_vdev_init(n.as_ptr(), a.as_ptr()) };
    if rc < 0 {
        return Err(Error::new(format!("rte_vdev_init({name}, {args})"), rc));
    }
    Ok(())
}

/// Removes the virtual device `name` (after its port was stopped and closed).
pub fn remove(name: &str) -> Result<()> {
    let n = CString::new(name).map_err(|_| Error::invalid("vdev name has NUL"))?;
    // SAFETY: a valid C string; DPDK looks the device up by name.
    let rc = unsafe { ffi::rte_vdev_uninit(n.as_ptr()) };
    if rc < 0 {
        return Err(Error::new(format!("rte_vdev_uninit({name})"), rc));
    }
    Ok(())
}
