//! Packet mbuf pools. A pool lives for the rest of the process once created: mbufs hold raw
//! pointers back to their pool, so freeing a pool while any mbuf (in a ring, a NIC queue, a
//! TX buffer) still refers to it would be a use-after-free. An appliance creates its pools
//! once at start, so the handle is `Copy` and never frees.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

use crate::error::{Error, Result};
use crate::ffi;
use crate::mbuf::Mbuf;
use crate::meta::PktMeta;

/// Handle to a packet mbuf pool whose mbufs carry a [`PktMeta`] in their private area.
#[derive(Debug, Clone, Copy)]
pub struct Mempool {
    ptr: NonNull<ffi::rte_mempool>,
}

// SAFETY: rte_mempool is designed for concurrent use from many threads (per-lcore caches,
// lock-free ring underneath); the pool is never freed, so the pointer stays valid.
unsafe impl Send for Mempool {}
// SAFETY: as above; all methods only call DPDK's thread-safe mempool functions.
unsafe impl Sync for Mempool {}

/// Size of the mbuf private area: [`PktMeta`] rounded up to a whole cache line (64 bytes), so
/// that packet data (after the 128-byte rte_mbuf, this area and the headroom) starts on a cache
/// line, as it does without a private area. With a 48-byte area a 64-byte frame straddles two
/// lines and the PMD's copy into the mbuf costs more (pollfwd xconnect on net_pcap, 64-byte
/// frames: 51.2 -> 52.0 Mpps on the development VM).
pub const PRIV_SIZE: u16 = (std::mem::size_of::<PktMeta>().div_ceil(64) * 64) as u16;

impl Mempool {
    /// Creates a pool of `n` mbufs on NUMA node `socket` with a per-lcore cache of `cache`
    /// and `data_room` bytes of buffer (headroom included).
    pub fn create(name: &str, n: u32, cache: u32, data_room: u16, socket: i32) -> Result<Mempool> {
        let cname = CString::new(name).map_err(|_| Error::invalid("mempool name has NUL"))?;
        // SAFETY: EAL must be up — rte_pktmbuf_pool_create checks its own state and fails with
        // an errno otherwise; cname is a valid NUL-terminated string for the call's duration
        // (DPDK copies the name).
        let p = unsafe {
            ffi::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, PRIV_SIZE, data_room, socket)
        };
        NonNull::new(p).map(|ptr| Mempool { ptr }).ok_or_else(|| {
            Error::from_errno(format!(
                "rte_pktmbuf_pool_create({name}, n={n}, cache={cache}, socket={socket})"
            ))
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Mbufs available (in the pool and the lcore caches).
    pub fn avail(&self) -> u32 {
        // SAFETY: the pool pointer is valid for the process lifetime (never freed).
        unsafe { ffi::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs handed out (in NIC rings, software rings, TX buffers, stages).
    pub fn in_use(&self) -> u32 {
        // SAFETY: as in `avail`.
        unsafe { ffi::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// Total number of mbufs.
    pub fn size(&self) -> u32 {
        // SAFETY: as in `avail`; reads one field.
        unsafe { ffi::pf_mempool_size(self.ptr.as_ptr()) }
    }

    /// NUMA node the pool's memory is on.
    pub fn socket(&self) -> i32 {
        // SAFETY: as in `avail`; reads one field.
        unsafe { ffi::pf_mempool_socket(self.ptr.as_ptr()) }
    }

    pub fn name(&self) -> String {
        // SAFETY: the name is a NUL-terminated array inside the (never freed) pool.
        unsafe { CStr::from_ptr(ffi::pf_mempool_name(self.ptr.as_ptr())) }
            .to_string_lossy()
            .into_owned()
    }

    /// Allocates one mbuf (control path: ARP requests, ICMP errors, tests).
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid; a non-null result is a fresh mbuf we now own.
        let m = unsafe { ffi::pf_pktmbuf_alloc(self.ptr.as_ptr()) };
        NonNull::new(m).map(Mbuf::from_nonnull)
    }
}
