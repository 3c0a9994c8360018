//! IPv6 longest-prefix match with DPDK's `rte_fib6` (TRIE type: a 2^24-entry table indexed by
//! the address's first 3 bytes, then one 256-entry tbl8 group per further byte of the
//! longest prefix under that entry; a /48 is 1 + 3 reads). Chosen over `rte_lpm6` by
//! measurement: docs/performance.md, "IPv6 FIB: rte_fib6 vs rte_lpm6".
//!
//! Addresses are `[u8; 16]` in network order, exactly as they sit in the IPv6 header and as
//! DPDK takes them: a packet's destination is looked up without conversion
//! (`std::net::Ipv6Addr::octets` and `Ipv6Addr::from([u8; 16])` convert on the control path).
//!
//! Invariants every `unsafe` below relies on:
//! - `Fib6::ptr` is a live `rte_fib6` created by `rte_fib6_create` and owned by this value
//!   alone; it is freed exactly once, in `Drop`;
//! - mutation (`add`, `delete`, `select_lookup`) takes `&mut self`; lookups take `&self` and
//!   only read the table (the trie and the lookup function pointer), so any number of threads
//!   may look up at once (the type is `Sync`) while no thread can change it (a changed table is
//!   a new `Fib6`, swapped in between bursts);
//! - every address pointer handed to DPDK points at 16 readable bytes (`[u8; 16]`).
//!
//! The default route (depth 0) is an ordinary route of the trie. A miss is the trie's
//! "default next hop", set at creation to a value no route may use ([`Fib6::max_next_hop`]` + 1`)
//! and reported as [`MISS`].

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result, check};
use crate::ffi;

/// Value [`Fib6::lookup_bulk`] writes for an address no route covers.
pub const MISS: u32 = u32::MAX;
/// Longest prefix (bits).
pub const MAX_DEPTH: u8 = 128;
/// Addresses [`Fib6::lookup_bulk`] hands DPDK per call (the size of its stack buffer of
/// 64-bit results); longer slices are looked up in chunks of this many.
pub const BULK_CHUNK: usize = 64;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Width of a next hop in the trie's tables (`enum rte_fib_trie_nh_sz`): the tables are
/// 2^24 entries of this width plus 256 per tbl8 group, and one bit of each entry is DPDK's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHopSize {
    /// 2 bytes: next hops 0..=32766 (a 32 MiB tbl24).
    B2,
    /// 4 bytes: next hops 0..=2^31 - 2 (a 64 MiB tbl24).
    B4,
    /// 8 bytes: next hops 0..=2^32 - 2, all [`Fib6::lookup`] can return (a 128 MiB tbl24).
    B8,
}

impl NextHopSize {
    /// Largest value an entry holds (DPDK's `get_max_nh`: one bit marks extended entries).
    fn raw_max(self) -> u64 {
        match self {
            NextHopSize::B2 => (1 << 15) - 1,
            NextHopSize::B4 => (1 << 31) - 1,
            NextHopSize::B8 => (1 << 63) - 1,
        }
    }

    fn raw(self) -> ffi::rte_fib_trie_nh_sz {
        match self {
            NextHopSize::B2 => ffi::RTE_FIB6_TRIE_2B,
            NextHopSize::B4 => ffi::RTE_FIB6_TRIE_4B,
            NextHopSize::B8 => ffi::RTE_FIB6_TRIE_8B,
        }
    }

    /// Bytes per entry.
    pub fn bytes(self) -> usize {
        match self {
            NextHopSize::B2 => 2,
            NextHopSize::B4 => 4,
            NextHopSize::B8 => 8,
        }
    }
}

/// The trie's lookup function (`enum rte_fib6_lookup_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// One address at a time, in C.
    Scalar,
    /// AVX-512, 8 addresses per step: needs a CPU with AVX512F/DQ/BW, a DPDK built with it and
    /// EAL's maximum SIMD width at 512 bits (`--force-max-simd-bitwidth=512`; 256 by default).
    Avx512,
}

impl Lookup {
    pub fn name(self) -> &'static str {
        match self {
            Lookup::Scalar => "scalar",
            Lookup::Avx512 => "avx512",
        }
    }
}

/// Sizing of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fib6Config {
    /// Most routes (prefixes of depth 0..=128, the default route included) the table holds;
    /// one more is refused with `ENOSPC`.
    pub max_routes: u32,
    /// tbl8 groups (256 entries each, allocated at creation): a prefix longer than /24 needs
    /// one per byte beyond the third that it does not share with a longer-than-/24 prefix
    /// already in the table (a lone /48 takes 3, a /64 under it 2 more), plus one for a moment
    /// while it is added; [`tbl8s_for`] gives a count that always suffices. A route that would
    /// need more is refused with `ENOSPC`.
    pub tbl8s: u32,
    /// Width of the table entries.
    pub next_hop_size: NextHopSize,
    /// NUMA node for the tables (`-1`: any).
    pub socket: i32,
}

impl Default for Fib6Config {
    fn default() -> Self {
        Fib6Config {
            max_routes: 1024,
            tbl8s: 4096,
            next_hop_size: NextHopSize::B4,
            socket: ffi::SOCKET_ID_ANY,
        }
    }
}

/// An IPv6 FIB mapping prefixes to next-hop values. Addresses are network order `[u8; 16]`.
#[derive(Debug)]
pub struct Fib6 {
    ptr: NonNull<ffi::rte_fib6>,
    /// What the trie answers for an address no route covers (`default_nh`).
    raw_miss: u64,
    routes: u32,
    lookup: Lookup,
    name: String,
    config: Fib6Config,
}

// SAFETY: the table is owned by this value; moving it to another thread moves that ownership.
unsafe impl Send for Fib6 {}
// SAFETY: shared references only allow lookups, which read the trie and the lookup function
// pointer and write nothing but the caller's output; mutation needs `&mut self`.
unsafe impl Sync for Fib6 {}

fn valid_depth(depth: u8) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(format!("fib6: depth {depth} > 128")));
    }
    Ok(())
}

/// tbl8 groups ([`Fib6Config::tbl8s`]) that make sure a new table takes every prefix of
/// `depths` (adds in any order, no deletes). A prefix longer than /24 uses at most one group
/// per byte beyond the third, `ceil(depth / 8) - 3` (3 for a /48, 5 for a /64, 13 for a /128),
/// and DPDK reserves no more than that for it; adding a prefix that ends on a byte boundary
/// takes one group more for a moment (DPDK 22.11 builds the path one byte deeper, then frees
/// that group), hence one spare.
pub fn tbl8s_for(depths: impl IntoIterator<Item = u8>) -> u32 {
    let (sum, long) = depths.into_iter().fold((0u32, false), |(sum, long), d| {
        let d = u32::from(d.min(MAX_DEPTH));
        (sum + d.div_ceil(8).saturating_sub(3), long || d > 24)
    });
    sum + u32::from(long)
}

/// `addr` with the bits beyond `depth` cleared.
pub fn mask(addr: [u8; 16], depth: u8) -> [u8; 16] {
    let bits = u128::from_be_bytes(addr);
    let m = u128::MAX
        .checked_shl(128 - u32::from(depth.min(128)))
        .unwrap_or(0);
    (bits & m).to_be_bytes()
}

impl Fib6 {
    /// Creates an empty table (EAL must be up). Each table gets a unique DPDK name. The lookup
    /// function is DPDK's default: AVX-512 where [`Lookup::Avx512`] is available, else scalar.
    pub fn new(config: Fib6Config) -> Result<Fib6> {
        if config.max_routes == 0 || config.max_routes > i32::MAX as u32 / 2 {
            return Err(Error::invalid(format!(
                "rte_fib6_create: max_routes {} not in 1..=2^30",
                config.max_routes
            )));
        }
        let raw_miss = config.next_hop_size.raw_max().min(u64::from(MISS));
        if config.tbl8s == 0 || u64::from(config.tbl8s) > config.next_hop_size.raw_max() {
            return Err(Error::invalid(format!(
                "rte_fib6_create: tbl8s {} not in 1..={}",
                config.tbl8s,
                config.next_hop_size.raw_max()
            )));
        }
        let name = format!("pf_fib6_{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let cname = CString::new(name.clone()).expect("no NUL in generated name");
        let mut cfg = ffi::rte_fib6_conf {
            type_: ffi::RTE_FIB6_TRIE,
            default_nh: raw_miss,
            // The RIB under the trie holds 2 * max_routes nodes (routes and branch points),
            // enough for max_routes routes whatever their shape; the route count itself is
            // enforced here (`add`).
            max_routes: config.max_routes as i32,
            rib_ext_sz: 0,
            ..Default::default()
        };
        cfg.__bindgen_anon_1.trie.nh_sz = config.next_hop_size.raw();
        cfg.__bindgen_anon_1.trie.num_tbl8 = config.tbl8s;
        // SAFETY: cname is a valid NUL-terminated string and cfg a valid config for the call's
        // duration (DPDK copies both); rte_fib6_create returns NULL with rte_errno on failure.
        let p = unsafe { ffi::rte_fib6_create(cname.as_ptr(), config.socket, &mut cfg) };
        let ptr = NonNull::new(p).ok_or_else(|| {
            Error::from_errno(format!(
                "rte_fib6_create({name}, max_routes={}, tbl8s={})",
                config.max_routes, config.tbl8s
            ))
        })?;
        let mut fib = Fib6 {
            ptr,
            raw_miss,
            routes: 0,
            lookup: Lookup::Scalar,
            name,
            config,
        };
        if fib.select_lookup(Lookup::Avx512).is_err() {
            fib.select_lookup(Lookup::Scalar)?;
        }
        Ok(fib)
    }

    /// DPDK name of the table.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> Fib6Config {
        self.config
    }

    /// Routes in the table (the default route included).
    pub fn len(&self) -> u32 {
        self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }

    /// Largest next hop the table stores: one below the value the trie answers for a miss
    /// (32766, 2^31 - 2 or 2^32 - 2 for [`NextHopSize`] B2, B4, B8).
    pub fn max_next_hop(&self) -> u32 {
        (self.raw_miss - 1) as u32
    }

    /// The lookup function in use.
    pub fn lookup_fn(&self) -> Lookup {
        self.lookup
    }

    /// Switches the lookup function. Fails with `EINVAL` (the old one stays) when DPDK refuses
    /// it: [`Lookup::Avx512`] without CPU or DPDK support or below EAL's SIMD width of 512.
    pub fn select_lookup(&mut self, lookup: Lookup) -> Result<()> {
        let raw = match lookup {
            Lookup::Scalar => ffi::RTE_FIB6_LOOKUP_TRIE_SCALAR,
            Lookup::Avx512 => ffi::RTE_FIB6_LOOKUP_TRIE_VECTOR_AVX512,
        };
        // SAFETY: ptr is a live table we own exclusively (&mut self); the call only replaces
        // the lookup function pointer, or fails and leaves it.
        let rc = unsafe { ffi::rte_fib6_select_lookup(self.ptr.as_ptr(), raw) };
        check(rc, || {
            format!("rte_fib6_select_lookup({}) in {}", lookup.name(), self.name)
        })?;
        self.lookup = lookup;
        Ok(())
    }

    /// Whether the route `addr/depth` is in the table (host bits ignored).
    pub fn contains(&self, addr: [u8; 16], depth: u8) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let a = mask(addr, depth);
        // SAFETY: ptr is a live table; rte_fib6_get_rib returns its RIB (alive as long as the
        // table), which rte_rib6_lookup_exact only reads; `a` is 16 readable bytes.
        let node = unsafe {
            let rib = ffi::rte_fib6_get_rib(self.ptr.as_ptr());
            ffi::rte_rib6_lookup_exact(rib, a.as_ptr(), depth)
        };
        !node.is_null()
    }

    /// Adds (or replaces) the route `addr/depth -> next_hop`. Host bits of `addr` are ignored.
    /// Depth 0 is the default route. Fails with `EINVAL` for a depth above 128 or a next hop
    /// above [`Fib6::max_next_hop`], with `ENOSPC` when the table has `max_routes` routes or
    /// lacks the tbl8 groups the route needs; a refused route changes nothing.
    pub fn add(&mut self, addr: [u8; 16], depth: u8, next_hop: u32) -> Result<()> {
        valid_depth(depth)?;
        if next_hop > self.max_next_hop() {
            return Err(Error::invalid(format!(
                "fib6: next hop {next_hop} > {}",
                self.max_next_hop()
            )));
        }
        let a = mask(addr, depth);
        let new = !self.contains(a, depth);
        if new && self.routes >= self.config.max_routes {
            return Err(Error::new(
                format!(
                    "fib6 {}: {}/{depth}: table full ({} routes)",
                    self.name,
                    std::net::Ipv6Addr::from(a),
                    self.config.max_routes
                ),
                libc::ENOSPC,
            ));
        }
        // SAFETY: ptr is a live table we own exclusively (&mut self); `a` is 16 readable
        // bytes; depth and next hop are in range (checked above).
        let rc =
            unsafe { ffi::rte_fib6_add(self.ptr.as_ptr(), a.as_ptr(), depth, u64::from(next_hop)) };
        check(rc, || {
            format!(
                "rte_fib6_add({}/{depth}) in {} (max_routes {}, tbl8s {})",
                std::net::Ipv6Addr::from(a),
                self.name,
                self.config.max_routes,
                self.config.tbl8s
            )
        })?;
        self.routes += u32::from(new);
        Ok(())
    }

    /// Removes the route `addr/depth` (host bits ignored): addresses it covered fall back to
    /// the next shorter prefix. Fails with `ENOENT` if there is none.
    ///
    /// DPDK 22.11's trie does not give back the tbl8 reservation of a deleted prefix longer
    /// than /24 (its groups are freed, its reservation stays counted; later DPDK releases
    /// rework this accounting): a table that sees many deletes and adds ends up refusing adds
    /// with `ENOSPC` while groups are free. Route changes therefore build a new table (as the
    /// IPv4 forward table does) rather than churn one in place.
    pub fn delete(&mut self, addr: [u8; 16], depth: u8) -> Result<()> {
        valid_depth(depth)?;
        let a = mask(addr, depth);
        // SAFETY: as in `add`.
        let rc = unsafe { ffi::rte_fib6_delete(self.ptr.as_ptr(), a.as_ptr(), depth) };
        check(rc, || {
            format!(
                "rte_fib6_delete({}/{depth}) in {}",
                std::net::Ipv6Addr::from(a),
                self.name
            )
        })?;
        self.routes -= 1;
        Ok(())
    }

    /// The next hop of the longest prefix covering `addr`.
    #[inline]
    pub fn lookup(&self, addr: [u8; 16]) -> Option<u32> {
        let mut raw = 0u64;
        // SAFETY: as in `lookup_bulk`, for one address and one result.
        unsafe {
            ffi::rte_fib6_lookup_bulk(
                self.ptr.as_ptr(),
                &addr as *const [u8; 16] as *mut [u8; 16],
                &mut raw,
                1,
            )
        };
        (raw != self.raw_miss).then_some(raw as u32)
    }

    /// Looks up every address of `addrs`, writing each next hop (or [`MISS`]) to the same
    /// index of `out`. Only `min(addrs.len(), out.len())` entries are looked up, in calls of
    /// up to [`BULK_CHUNK`] addresses; nothing is allocated.
    #[inline]
    pub fn lookup_bulk(&self, addrs: &[[u8; 16]], out: &mut [u32]) {
        let n = addrs.len().min(out.len());
        let mut raw = [0u64; BULK_CHUNK];
        for (a, o) in addrs[..n]
            .chunks(BULK_CHUNK)
            .zip(out[..n].chunks_mut(BULK_CHUNK))
        {
            // SAFETY: ptr is a live table (lookups only read it, see the Sync impl); `a` holds
            // a.len() <= BULK_CHUNK addresses of 16 bytes each, which DPDK reads and does not
            // write (the C prototype lacks `const`); raw has room for a.len() results.
            unsafe {
                ffi::rte_fib6_lookup_bulk(
                    self.ptr.as_ptr(),
                    a.as_ptr() as *mut [u8; 16],
                    raw.as_mut_ptr(),
                    a.len() as i32,
                )
            };
            for (v, r) in o.iter_mut().zip(&raw) {
                *v = if *r == self.raw_miss { MISS } else { *r as u32 };
            }
        }
    }
}

impl Drop for Fib6 {
    fn drop(&mut self) {
        // SAFETY: we own the table; no lookup can run concurrently because every reader holds a
        // shared borrow (or an Arc) that has ended when Drop runs.
        unsafe { ffi::rte_fib6_free(self.ptr.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::{mask, tbl8s_for};

    #[test]
    fn tbl8s_for_counts_bytes_beyond_the_third() {
        assert_eq!(tbl8s_for([0, 8, 24]), 0);
        assert_eq!(tbl8s_for([25, 32]), 2 + 1);
        assert_eq!(tbl8s_for([48, 64, 128]), 3 + 5 + 13 + 1);
        assert_eq!(tbl8s_for([200]), 13 + 1);
    }

    #[test]
    fn mask_clears_host_bits() {
        let a = [0xffu8; 16];
        assert_eq!(mask(a, 0), [0; 16]);
        assert_eq!(mask(a, 128), a);
        let m = mask(a, 50);
        assert_eq!(&m[..6], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(m[6], 0xc0);
        assert_eq!(&m[7..], &[0; 9]);
    }
}
