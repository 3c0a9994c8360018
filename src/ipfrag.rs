//! DPDK's IPv4 fragmenters (librte_ip_frag), measured against the forward stage's own in
//! `appliance/examples/frag_bench.rs` (see docs/forward.md, "Fragmentation"). The forward
//! stage does not use them: its fragmenter copies into single-segment mbufs and keeps the
//! original mbuf as the first fragment.
//!
//! Both functions take a datagram whose data starts at the IPv4 header (no Ethernet header:
//! the caller strips it, and prepends one to every fragment with [`Mbuf::prepend`]).

use crate::ffi;
use crate::mbuf::{BURST_MAX, Mbuf};
use crate::mempool::Mempool;

/// Fragments `m` with `rte_ipv4_fragment_packet`: every fragment is a direct mbuf from
/// `direct` holding its IPv4 header, chained to an indirect mbuf from `indirect` that points
/// into `m`'s data (no payload copy; two segments per fragment, so the TX PMD must take
/// multi-segment packets). `m` is consumed: its buffer lives on while a fragment refers to
/// it. Fragments are appended to `out`; returns their number, or DPDK's negative errno
/// (more than [`BURST_MAX`] fragments, pool empty).
pub fn fragment_zero_copy(
    m: Mbuf,
    out: &mut Vec<Mbuf>,
    mtu: u16,
    direct: &Mempool,
    indirect: &Mempool,
) -> Result<usize, i32> {
    let mut frags = [std::ptr::null_mut::<ffi::rte_mbuf>(); BURST_MAX];
    let p = m.into_raw();
    // SAFETY: `p` is a valid mbuf we own; `frags` has room for BURST_MAX pointers, as
    // declared; both pools are valid. DPDK attaches the indirect mbufs to `p`'s buffer
    // (raising its reference count) and does not free `p`.
    let n = unsafe {
        ffi::pf_ipv4_fragment_packet(
            p,
            frags.as_mut_ptr(),
            BURST_MAX as u16,
            mtu,
            direct.as_ptr(),
            indirect.as_ptr(),
        )
    };
    // SAFETY: we own `p`; freeing drops our reference (the buffer stays while fragments
    // point into it).
    unsafe { ffi::pf_pktmbuf_free(p) };
    take(n, &frags, out)
}

/// Fragments `m` with `rte_ipv4_fragment_copy_nonseg_packet` (experimental in 22.11): every
/// fragment is a fresh single-segment mbuf from `direct` with header and data copied. `m` is
/// left as it was. Fragments are appended to `out`; returns their number or the negative
/// errno.
pub fn fragment_copy(
    m: &Mbuf,
    out: &mut Vec<Mbuf>,
    mtu: u16,
    direct: &Mempool,
) -> Result<usize, i32> {
    let mut frags = [std::ptr::null_mut::<ffi::rte_mbuf>(); BURST_MAX];
    // SAFETY: `m` is a valid mbuf that DPDK only reads; `frags` has room for BURST_MAX
    // pointers; the pool is valid.
    let n = unsafe {
        ffi::pf_ipv4_fragment_copy_nonseg(
            m.as_ptr(),
            frags.as_mut_ptr(),
            BURST_MAX as u16,
            mtu,
            direct.as_ptr(),
        )
    };
    take(n, &frags, out)
}

fn take(
    n: i32,
    frags: &[*mut ffi::rte_mbuf; BURST_MAX],
    out: &mut Vec<Mbuf>,
) -> Result<usize, i32> {
    if n < 0 {
        return Err(n);
    }
    for &f in &frags[..n as usize] {
        if let Some(p) = std::ptr::NonNull::new(f) {
            out.push(Mbuf::from_nonnull(p));
        }
    }
    Ok(n as usize)
}
