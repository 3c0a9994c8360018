//! pollfwd's DPDK binding: the only crate of the workspace that contains `unsafe`.
//!
//! `build.rs` generates allowlisted bindings (`ffi`) and compiles `shim.c`, which gives DPDK's
//! static-inline functions real symbols. Everything else here is a safe wrapper whose
//! invariants are written next to each `unsafe` block:
//!
//! - [`eal`]: EAL init (once per process, refuses to touch the PCI bus unless told which devices),
//!   lcore launch and wait.
//! - [`mempool`]: mbuf pools, one per NUMA node, alive for the whole process.
//! - [`mbuf`]: the owned [`Mbuf`] (frees itself on drop) and the fixed-size [`Burst`].
//! - [`port`]: ethdev ports, queue handles that can be claimed once, stats, xstats, link.
//! - [`txbuf`]: per-lcore, per-port TX buffers that free and count what the NIC refuses.
//! - [`ring`]: single-producer/single-consumer `rte_ring` split into its two halves.
//! - [`meta`]: the per-packet metadata kept in the mbuf private area.
//! - [`lpm`], [`acl`], [`meter`]: DPDK's LPM, ACL and meter libraries.
//! - [`fib6`]: DPDK's IPv6 FIB (`rte_fib6`, trie), the IPv6 longest-prefix match.
//! - [`ipfrag`]: DPDK's IPv4 fragmenters (measured against the forward stage's own; not used by it).

pub mod ffi {
    #![allow(
        non_upper_case_globals,
        non_camel_case_types,
        non_snake_case,
        dead_code
    )]
    #![allow(
        unsafe_op_in_unsafe_fn,
        clippy::all,
        clippy::undocumented_unsafe_blocks
    )]
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub mod acl;
pub mod eal;
pub mod error;
pub mod fib;
pub mod fib6;
pub mod ipfrag;
pub mod lpm;
pub mod mbuf;
pub mod mempool;
pub mod meta;
pub mod meter;
pub mod port;
pub mod ring;
pub mod sys;
pub mod telemetry;
pub mod txbuf;
pub mod vdev;

pub use eal::{Eal, Launched};
pub use error::{Error, Result};
pub use mbuf::{BURST_MAX, Burst, Mbuf};
pub use mempool::Mempool;
pub use meta::PktMeta;
pub use port::{Port, PortInfo, PortSetup, PortStats, RxQueue, TxQueue};
pub use ring::{RingConsumer, RingProducer, RingStats, spsc_ring};
pub use txbuf::TxBuffer;

/// Port ids DPDK can give (`RTE_MAX_ETHPORTS`): every DPDK port id is below it.
pub const MAX_PORTS: u16 = ffi::RTE_MAX_ETHPORTS as u16;

/// The DPDK version pollfwd was built against (from pkg-config).
pub const BUILD_DPDK_VERSION: &str = env!("POLLFWD_DPDK_VERSION");

/// Reads the time-stamp counter, like `rte_rdtsc` (inlined: the shim call costs more than
/// the instruction).
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC is available on every x86_64 CPU and touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: rte_rdtsc reads the cycle counter; no memory is touched.
        unsafe { ffi::pf_rdtsc() }
    }
}

/// One spin-wait hint (`rte_pause`).
#[inline]
pub fn pause() {
    // SAFETY: rte_pause issues a PAUSE instruction only.
    unsafe { ffi::pf_pause() }
}

/// Prefetches the cache line holding `r` into every cache level (`rte_prefetch0`), so that a
/// burst's table lookups overlap their memory misses instead of taking them one by one.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint that never faults, whatever the address; SSE is part of the
    // x86_64 baseline, so the instruction exists on every CPU this code runs on.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            r as *const T as *const i8,
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// TSC ticks per second as measured by EAL (0 before EAL init).
pub fn tsc_hz() -> u64 {
    if !eal::is_initialized() {
        return 0;
    }
    // SAFETY: EAL is initialised (checked above), which is all rte_get_tsc_hz needs.
    unsafe { ffi::rte_get_tsc_hz() }
}

/// The lcore id of the calling thread, `None` for a non-EAL thread.
pub fn lcore_id() -> Option<u32> {
    // SAFETY: rte_lcore_id reads a thread-local variable; valid on any thread.
    let id = unsafe { ffi::pf_lcore_id() };
    (id < ffi::RTE_MAX_LCORE).then_some(id)
}

/// The version string of the DPDK library linked at run time.
pub fn runtime_version() -> String {
    // SAFETY: rte_version returns a pointer to a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(ffi::rte_version()) }
        .to_string_lossy()
        .into_owned()
}

/// `RTE_ETH_RX_OFFLOAD_VLAN_STRIP` and `RTE_ETH_TX_OFFLOAD_VLAN_INSERT`.
pub fn vlan_offload_bits() -> (u64, u64) {
    // SAFETY: pure functions returning constants computed by DPDK's macros.
    unsafe {
        (
            ffi::pf_rx_offload_vlan_strip(),
            ffi::pf_tx_offload_vlan_insert(),
        )
    }
}

/// RSS hash functions over IP, TCP and UDP (`RTE_ETH_RSS_IP | _TCP | _UDP`).
pub fn rss_ip_tcp_udp() -> u64 {
    // SAFETY: a pure function returning a constant computed by DPDK's macros.
    unsafe { ffi::pf_rss_ip_tcp_udp() }
}
