//! IPv4 longest-prefix match with DPDK's `rte_fib` (type DIR24_8 over an `rte_rib` trie): the
//! same DIR-24-8 lookup as `rte_lpm` (one tbl24 read, a second tbl8 read for prefixes longer
//! than /24), but routes are kept in a binary trie, so adding one costs O(32) trie steps plus
//! the table entries it covers, where `rte_lpm_add` scans every rule of its prefix length
//! (DPDK 22.11): 100k routes build in ~0.1 s instead of ~2-3 s (docs/performance.md, "IPv4
//! FIB: rte_fib vs rte_lpm").
//!
//! Invariants every `unsafe` below relies on:
//! - `Fib::ptr` is a live `rte_fib` created by `rte_fib_create` and owned by this value alone;
//!   it is freed exactly once, in `Drop`;
//! - mutation (`add`, `delete`) takes `&mut self`; lookups take `&self` and only read the
//!   tables, so any number of threads may look up at once (the type is `Sync`) while no thread
//!   can change it (a changed table is a new `Fib`, or one no worker reads any more);
//! - `Fib::tbl24` / `Fib::tbl8` point at the DIR24_8 table's two arrays of 4-byte entries, read
//!   once after creation through the shim's copy of DPDK 22.11's internal `struct dir24_8_tbl`
//!   and checked then (entry width, tbl8 count, default entries; [`Fib::new`] refuses a table
//!   that does not match); `rte_fib_create` allocates them and nothing moves them afterwards.
//!
//! Entries are `next_hop << 1`, bit 0 set for an extended entry (a tbl8 group index above
//! it). The default route (depth 0) is an ordinary route of the table; an address no route
//! covers reads the table's default next hop, a value no route may use, reported as [`MISS`].

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result, check};
use crate::ffi;

/// Largest next-hop value a route may carry (the table's 4-byte entries keep 31 bits; the
/// largest of those is the miss marker).
pub const MAX_NEXT_HOP: u32 = (1 << 31) - 2;
/// What the table holds for an address no route covers (`default_nh`).
const RAW_MISS: u32 = MAX_NEXT_HOP + 1;
/// Value [`Fib::lookup_one`] and [`Fib::lookup_bulk`] give for an address no route covers.
pub const MISS: u32 = u32::MAX;
/// Addresses [`Fib::lookup_bulk`] hands DPDK per call (the size of its stack buffer of 64-bit
/// results); longer slices are looked up in chunks of this many.
pub const BULK_CHUNK: usize = 64;
/// tbl24 entries (one per /24).
const TBL24_ENTRIES: usize = 1 << 24;
/// Entries of a tbl8 group (one per address of a /24).
const TBL8_GROUP: usize = 256;
/// DIR24_8 rounds its tbl8 group count up to a multiple of this (its free-group bitmap's
/// slab).
const TBL8_ALIGN: u32 = 64;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Sizing of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibConfig {
    /// Most routes (prefixes of depth 0..=32, the default route included) the table holds;
    /// one more is refused with `ENOSPC`.
    pub max_routes: u32,
    /// tbl8 groups: one per distinct /24 that has prefixes longer than /24 (DPDK rounds the
    /// count up to a multiple of 64). A route that would need one more is refused with
    /// `ENOSPC`.
    pub tbl8s: u32,
    /// NUMA node for the tables (`-1`: any).
    pub socket: i32,
}

impl Default for FibConfig {
    fn default() -> Self {
        FibConfig {
            max_routes: 1024,
            tbl8s: 256,
            socket: ffi::SOCKET_ID_ANY,
        }
    }
}

/// An IPv4 FIB mapping prefixes to next-hop values. Addresses are host order.
#[derive(Debug)]
pub struct Fib {
    ptr: NonNull<ffi::rte_fib>,
    tbl24: *const u32,
    tbl8: *const u32,
    tbl8_entries: usize,
    routes: u32,
    name: String,
    config: FibConfig,
}

// SAFETY: the table is owned by this value; moving it to another thread moves that ownership.
unsafe impl Send for Fib {}
// SAFETY: shared references only allow lookups, which read the tables and write nothing but
// the caller's output; mutation needs `&mut self`.
unsafe impl Sync for Fib {}

fn valid_depth(depth: u8) -> Result<()> {
    if depth > 32 {
        return Err(Error::invalid(format!("fib: depth {depth} > 32")));
    }
    Ok(())
}

/// `ip` with the bits beyond `depth` cleared.
fn mask(ip: u32, depth: u8) -> u32 {
    ip & u32::MAX.checked_shl(32 - u32::from(depth)).unwrap_or(0)
}

impl Fib {
    /// Creates an empty table (EAL must be up). Each table gets a unique DPDK name.
    pub fn new(config: FibConfig) -> Result<Fib> {
        if config.max_routes == 0 || config.max_routes > i32::MAX as u32 / 2 {
            return Err(Error::invalid(format!(
                "rte_fib_create: max_routes {} not in 1..=2^30",
                config.max_routes
            )));
        }
        if config.tbl8s == 0 || config.tbl8s > MAX_NEXT_HOP {
            return Err(Error::invalid(format!(
                "rte_fib_create: tbl8s {} not in 1..={MAX_NEXT_HOP}",
                config.tbl8s
            )));
        }
        let name = format!("pf_fib_{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let cname = CString::new(name.clone()).expect("no NUL in generated name");
        let mut cfg = ffi::rte_fib_conf {
            type_: ffi::RTE_FIB_DIR24_8,
            default_nh: u64::from(RAW_MISS),
            // The RIB holds 2 * max_routes nodes (routes and branch points): enough for
            // max_routes routes whatever their shape; the route count itself is enforced here.
            max_routes: config.max_routes as i32,
            rib_ext_sz: 0,
            ..Default::default()
        };
        cfg.__bindgen_anon_1.dir24_8.nh_sz = ffi::RTE_FIB_DIR24_8_4B;
        cfg.__bindgen_anon_1.dir24_8.num_tbl8 = config.tbl8s;
        // SAFETY: cname is a valid NUL-terminated string and cfg a valid config for the call's
        // duration (DPDK copies both); rte_fib_create returns NULL with rte_errno on failure.
        let p = unsafe { ffi::rte_fib_create(cname.as_ptr(), config.socket, &mut cfg) };
        let ptr = NonNull::new(p).ok_or_else(|| {
            Error::from_errno(format!(
                "rte_fib_create({name}, max_routes={}, tbl8s={})",
                config.max_routes, config.tbl8s
            ))
        })?;
        let mut dp = ffi::pf_dir24_8 {
            tbl24: std::ptr::null(),
            tbl8: std::ptr::null(),
            number_tbl8s: 0,
            nh_sz: 0,
            def_nh: 0,
        };
        // SAFETY: ptr is the live table just created; the shim only reads its data-plane
        // struct's fields into `dp`, a valid out-pointer.
        let rc = unsafe { ffi::pf_fib_dir24_8(ptr.as_ptr(), &mut dp) };
        let fib = Fib {
            ptr,
            tbl24: dp.tbl24,
            tbl8: dp.tbl8,
            tbl8_entries: dp.number_tbl8s as usize * TBL8_GROUP,
            routes: 0,
            name,
            config,
        };
        // What the shim read must be this table as configured, or the layout it assumes is not
        // this DPDK's: refused (dropping `fib` frees the table).
        let layout_ok = rc == 0
            && !dp.tbl24.is_null()
            && !dp.tbl8.is_null()
            && dp.nh_sz == ffi::RTE_FIB_DIR24_8_4B
            && dp.number_tbl8s == config.tbl8s.next_multiple_of(TBL8_ALIGN)
            && dp.def_nh == u64::from(RAW_MISS)
            && {
                // SAFETY: tbl24 is non-null and, the fields above agreeing with the config,
                // the table's array of TBL24_ENTRIES 4-byte entries; read only.
                let (first, last) = unsafe { (*dp.tbl24, *dp.tbl24.add(TBL24_ENTRIES - 1)) };
                first == RAW_MISS << 1 && last == RAW_MISS << 1
            };
        if !layout_ok {
            return Err(Error::invalid(format!(
                "rte_fib {}: the DIR24_8 table does not have DPDK 22.11's layout",
                fib.name
            )));
        }
        Ok(fib)
    }

    /// DPDK name of the table.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> FibConfig {
        self.config
    }

    /// Routes in the table (the default route included).
    pub fn len(&self) -> u32 {
        self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }

    /// Whether the route `ip/depth` is in the table (host bits ignored).
    pub fn contains(&self, ip: u32, depth: u8) -> bool {
        if depth > 32 {
            return false;
        }
        // SAFETY: ptr is a live table; rte_fib_get_rib returns its RIB (alive as long as the
        // table), which rte_rib_lookup_exact only reads.
        let node = unsafe {
            let rib = ffi::rte_fib_get_rib(self.ptr.as_ptr());
            ffi::rte_rib_lookup_exact(rib, mask(ip, depth), depth)
        };
        !node.is_null()
    }

    /// Adds (or replaces) the route `ip/depth -> next_hop`. Host bits of `ip` are ignored.
    /// Depth 0 is the default route. Fails with `EINVAL` for a depth above 32 or a next hop
    /// above [`MAX_NEXT_HOP`], with `ENOSPC` when the table has `max_routes` routes or lacks
    /// the tbl8 group the route needs; a refused route changes nothing.
    pub fn add(&mut self, ip: u32, depth: u8, next_hop: u32) -> Result<()> {
        valid_depth(depth)?;
        if next_hop > MAX_NEXT_HOP {
            return Err(Error::invalid(format!(
                "fib: next hop {next_hop} > {MAX_NEXT_HOP}"
            )));
        }
        let a = mask(ip, depth);
        let new = !self.contains(a, depth);
        if new && self.routes >= self.config.max_routes {
            return Err(Error::new(
                format!(
                    "fib {}: {}/{depth}: table full ({} routes)",
                    self.name,
                    std::net::Ipv4Addr::from(a),
                    self.config.max_routes
                ),
                libc::ENOSPC,
            ));
        }
        // SAFETY: ptr is a live table we own exclusively (&mut self); depth and next hop are
        // in range (checked above).
        let rc = unsafe { ffi::rte_fib_add(self.ptr.as_ptr(), a, depth, u64::from(next_hop)) };
        check(rc, || {
            format!(
                "rte_fib_add({}/{depth}) in {} (max_routes {}, tbl8s {})",
                std::net::Ipv4Addr::from(a),
                self.name,
                self.config.max_routes,
                self.config.tbl8s
            )
        })?;
        self.routes += u32::from(new);
        Ok(())
    }

    /// Removes the route `ip/depth` (host bits ignored): addresses it covered fall back to the
    /// next shorter prefix. Fails with `ENOENT` if there is none.
    pub fn delete(&mut self, ip: u32, depth: u8) -> Result<()> {
        valid_depth(depth)?;
        let a = mask(ip, depth);
        // SAFETY: as in `add`.
        let rc = unsafe { ffi::rte_fib_delete(self.ptr.as_ptr(), a, depth) };
        if rc == -libc::ENOENT {
            return Err(Error::new(
                format!(
                    "rte_fib_delete({}/{depth}): no such route",
                    std::net::Ipv4Addr::from(a)
                ),
                libc::ENOENT,
            ));
        }
        check(rc, || {
            format!(
                "rte_fib_delete({}/{depth}) in {}",
                std::net::Ipv4Addr::from(a),
                self.name
            )
        })?;
        self.routes -= 1;
        Ok(())
    }

    /// The next hop of the longest prefix covering `ip`.
    #[inline]
    pub fn lookup(&self, ip: u32) -> Option<u32> {
        let v = self.lookup_one(ip);
        (v != MISS).then_some(v)
    }

    /// The next hop of the longest prefix covering `ip`, or [`MISS`]: DIR24_8's lookup steps
    /// (tbl24 entry, tbl8 entry for an extended one) in Rust so that the compiler inlines them
    /// into the caller's per-packet loop, where a call into DPDK cannot be (see
    /// docs/performance.md, "Forward").
    #[inline(always)]
    pub fn lookup_one(&self, ip: u32) -> u32 {
        let mut e = self.view().entry(ip);
        if e & 1 == 1 {
            // An extended entry holds a tbl8 group index, below number_tbl8s; the bound is
            // checked anyway (a bad entry reads as a miss, not out of bounds).
            let i = (e >> 1) as usize * TBL8_GROUP + (ip & 0xff) as usize;
            e = if i < self.tbl8_entries {
                // SAFETY: i < tbl8_entries, the tbl8 array's length; read-only as above.
                unsafe { *self.tbl8.add(i) }
            } else {
                RAW_MISS << 1
            };
        }
        let nh = e >> 1;
        if nh == RAW_MISS { MISS } else { nh }
    }

    /// A by-value handle for a burst's lookups ([`FibView`]): the table's pointer in a local
    /// (register) instead of behind `&self`, which the compiler reloads after every store to
    /// packet bytes.
    #[inline(always)]
    pub fn view(&self) -> FibView<'_> {
        FibView {
            tbl24: self.tbl24,
            _table: std::marker::PhantomData,
        }
    }

    /// Looks up every address of `ips` with DPDK's bulk lookup, writing each next hop (or
    /// [`MISS`]) to the same index of `out`. Only `min(ips.len(), out.len())` entries are
    /// looked up, in calls of up to [`BULK_CHUNK`] addresses; nothing is allocated.
    #[inline]
    pub fn lookup_bulk(&self, ips: &[u32], out: &mut [u32]) {
        let n = ips.len().min(out.len());
        let mut raw = [0u64; BULK_CHUNK];
        for (a, o) in ips[..n]
            .chunks(BULK_CHUNK)
            .zip(out[..n].chunks_mut(BULK_CHUNK))
        {
            // SAFETY: ptr is a live table (lookups only read it, see the Sync impl); `a` holds
            // a.len() <= BULK_CHUNK addresses, which DPDK reads and does not write (the C
            // prototype lacks `const`); raw has room for a.len() results.
            unsafe {
                ffi::rte_fib_lookup_bulk(
                    self.ptr.as_ptr(),
                    a.as_ptr() as *mut u32,
                    raw.as_mut_ptr(),
                    a.len() as i32,
                )
            };
            for (v, r) in o.iter_mut().zip(&raw) {
                *v = if *r == u64::from(RAW_MISS) {
                    MISS
                } else {
                    *r as u32
                };
            }
        }
    }
}

impl Drop for Fib {
    fn drop(&mut self) {
        // SAFETY: we own the table; no lookup can run concurrently because every reader holds a
        // shared borrow (or an Arc) that has ended when Drop runs.
        unsafe { ffi::rte_fib_free(self.ptr.as_ptr()) }
    }
}

/// A borrowed view of a [`Fib`] for the per-packet test "does `ip` go where the previous
/// packet went": one tbl24 read and a compare ([`FibView::routes_to`]). Anything else (a
/// /25../32 range, a miss) is left to [`Fib::lookup_one`].
#[derive(Clone, Copy)]
pub struct FibView<'a> {
    tbl24: *const u32,
    _table: std::marker::PhantomData<&'a Fib>,
}

impl FibView<'_> {
    /// What [`FibView::routes_to`] compares tbl24 entries with for next hop `hop`.
    #[inline(always)]
    pub fn key(&self, hop: u32) -> RouteKey {
        if hop > MAX_NEXT_HOP {
            return RouteKey::NONE;
        }
        RouteKey { entry: hop << 1 }
    }

    /// Whether [`Fib::lookup_one`]`(ip)` is the next hop `key` was made for, decided from the
    /// tbl24 entry alone: `true` only when it certainly is (a direct entry for that hop: the
    /// default route's entries are direct too); `false` means "not known here" (an extended
    /// entry, another hop, a miss).
    #[inline(always)]
    pub fn routes_to(&self, ip: u32, key: RouteKey) -> bool {
        self.entry(ip) == key.entry
    }

    /// The raw tbl24 entry of `ip` (`next_hop << 1`, bit 0 for an extended entry).
    #[inline(always)]
    pub fn entry(&self, ip: u32) -> u32 {
        // SAFETY: tbl24 has TBL24_ENTRIES = 1 << 24 entries of 4 bytes (checked when the table
        // was created) and `ip >> 8` is below that; the table outlives the view ('a) and is
        // only written through `&mut Fib`, which the view's borrow excludes.
        unsafe { *self.tbl24.add((ip >> 8) as usize) }
    }
}

/// A next hop as [`FibView::routes_to`] recognises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteKey {
    entry: u32,
}

impl RouteKey {
    /// A key no address matches (entries are even or extended, never all ones).
    pub const NONE: RouteKey = RouteKey { entry: u32::MAX };
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn mask_clears_host_bits() {
        assert_eq!(mask(0xffff_ffff, 0), 0);
        assert_eq!(mask(0xffff_ffff, 32), 0xffff_ffff);
        assert_eq!(mask(0xc000_02ff, 24), 0xc000_0200);
        assert_eq!(mask(0xc000_02ff, 25), 0xc000_0280);
    }
}
