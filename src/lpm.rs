//! IPv4 longest-prefix match with DPDK's `rte_lpm` (DIR-24-8: one tbl24 read per lookup, a
//! second tbl8 read for prefixes longer than /24).
//!
//! Invariants every `unsafe` below relies on:
//! - `Lpm::ptr` is a live `rte_lpm` created by `rte_lpm_create` and owned by this value alone;
//!   it is freed exactly once, in `Drop`;
//! - mutation (`add`, `delete`, `delete_all`) takes `&mut self`; lookups take `&self` and only
//!   read the tables, so any number of threads may look up at once (the type is `Sync`) while
//!   no thread can change it (a changed table is a new `Lpm`, swapped in between bursts);
//! - `Lpm::tbl24` / `Lpm::tbl8` point at that table's two arrays, read once after creation:
//!   `rte_lpm_create` allocates them and nothing in DPDK 22.11 moves them afterwards.
//!
//! `rte_lpm` takes depths 1..=32 only; the default route (depth 0) is kept beside the table
//! and answered when the table misses.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result, check};
use crate::ffi;

/// Largest next-hop value `rte_lpm` stores (24 bits).
pub const MAX_NEXT_HOP: u32 = (1 << 24) - 1;
/// Value [`Lpm::lookup_bulk`] writes for an address no route covers.
pub const MISS: u32 = u32::MAX;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Sizing of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LpmConfig {
    /// Most rules (prefixes of depth 1..=32) the table holds.
    pub max_rules: u32,
    /// tbl8 groups: one per distinct /24 that has prefixes longer than /24.
    pub tbl8s: u32,
    /// NUMA node for the tables (`-1`: any).
    pub socket: i32,
}

impl Default for LpmConfig {
    fn default() -> Self {
        LpmConfig {
            max_rules: 1024,
            tbl8s: 256,
            socket: ffi::SOCKET_ID_ANY,
        }
    }
}

/// An IPv4 LPM table mapping prefixes to 24-bit next-hop values. Addresses are host order.
#[derive(Debug)]
pub struct Lpm {
    ptr: NonNull<ffi::rte_lpm>,
    /// The table's tbl24 array (`RTE_LPM_TBL24_NUM_ENTRIES` entries) and tbl8 array
    /// (`tbl8_entries` entries), for [`Lpm::lookup_one`]; both allocated by `rte_lpm_create`
    /// and never moved while the table lives.
    tbl24: *const u32,
    tbl8: *const u32,
    tbl8_entries: usize,
    name: String,
    config: LpmConfig,
    default: Option<u32>,
}

// SAFETY: the table is owned by this value; moving it to another thread moves that ownership.
unsafe impl Send for Lpm {}
// SAFETY: shared references only allow lookups, which read the tables and write nothing
// (rte_lpm lookups are lock-free readers); mutation needs `&mut self`.
unsafe impl Sync for Lpm {}

fn valid_depth(depth: u8) -> Result<()> {
    if depth > 32 {
        return Err(Error::invalid(format!("lpm: depth {depth} > 32")));
    }
    Ok(())
}

impl Lpm {
    /// Creates an empty table (EAL must be up). Each table gets a unique DPDK name.
    pub fn new(config: LpmConfig) -> Result<Lpm> {
        if config.max_rules == 0 {
            return Err(Error::invalid("rte_lpm_create: max_rules must be > 0"));
        }
        let name = format!("pf_lpm_{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let cname = CString::new(name.clone()).expect("no NUL in generated name");
        let cfg = ffi::rte_lpm_config {
            max_rules: config.max_rules,
            number_tbl8s: config.tbl8s.max(1),
            flags: 0,
        };
        // SAFETY: cname is a valid NUL-terminated string and cfg a valid config for the call's
        // duration (DPDK copies both); rte_lpm_create checks EAL state itself and returns
        // NULL with rte_errno on failure.
        let p = unsafe { ffi::rte_lpm_create(cname.as_ptr(), config.socket, &cfg) };
        let ptr = NonNull::new(p).ok_or_else(|| {
            Error::from_errno(format!(
                "rte_lpm_create({name}, max_rules={}, tbl8s={})",
                config.max_rules, config.tbl8s
            ))
        })?;
        // SAFETY: ptr is the live table just created; the calls only read two of its fields.
        let (tbl24, tbl8) = unsafe {
            (
                ffi::pf_lpm_tbl24(ptr.as_ptr()),
                ffi::pf_lpm_tbl8(ptr.as_ptr()),
            )
        };
        Ok(Lpm {
            ptr,
            tbl24,
            tbl8,
            tbl8_entries: cfg.number_tbl8s as usize * ffi::RTE_LPM_TBL8_GROUP_NUM_ENTRIES as usize,
            name,
            config,
            default: None,
        })
    }

    /// DPDK name of the table.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> LpmConfig {
        self.config
    }

    /// Adds (or replaces) the route `ip/depth -> next_hop`. Host bits of `ip` are ignored.
    /// Depth 0 is the default route.
    pub fn add(&mut self, ip: u32, depth: u8, next_hop: u32) -> Result<()> {
        valid_depth(depth)?;
        if next_hop > MAX_NEXT_HOP {
            return Err(Error::invalid(format!(
                "lpm: next hop {next_hop} does not fit in 24 bits"
            )));
        }
        if depth == 0 {
            self.default = Some(next_hop);
            return Ok(());
        }
        // SAFETY: ptr is a live table we own exclusively (&mut self); arguments are in range.
        let rc = unsafe { ffi::rte_lpm_add(self.ptr.as_ptr(), ip, depth, next_hop) };
        check(rc, || {
            format!(
                "rte_lpm_add({}/{depth}) in {} (max_rules {}, tbl8s {})",
                std::net::Ipv4Addr::from(ip),
                self.name,
                self.config.max_rules,
                self.config.tbl8s
            )
        })
        .map(|_| ())
    }

    /// Removes the route `ip/depth`. Fails with ENOENT if there is none.
    pub fn delete(&mut self, ip: u32, depth: u8) -> Result<()> {
        valid_depth(depth)?;
        if depth == 0 {
            return match self.default.take() {
                Some(_) => Ok(()),
                None => Err(Error::new("lpm: no default route", libc::ENOENT)),
            };
        }
        // SAFETY: as in `add`.
        let rc = unsafe { ffi::rte_lpm_delete(self.ptr.as_ptr(), ip, depth) };
        if rc < 0 {
            return Err(Error::new(
                format!(
                    "rte_lpm_delete({}/{depth}): no such route",
                    std::net::Ipv4Addr::from(ip)
                ),
                libc::ENOENT,
            ));
        }
        Ok(())
    }

    /// Removes every route.
    pub fn delete_all(&mut self) {
        self.default = None;
        // SAFETY: as in `add`.
        unsafe { ffi::rte_lpm_delete_all(self.ptr.as_ptr()) }
    }

    /// The next hop of the longest prefix covering `ip`.
    #[inline]
    pub fn lookup(&self, ip: u32) -> Option<u32> {
        let mut nh = 0u32;
        // SAFETY: ptr is a live table; lookups only read it (shared access is fine, see the
        // Sync impl); nh is a valid out-pointer.
        let rc = unsafe { ffi::pf_lpm_lookup(self.ptr.as_ptr(), ip, &mut nh) };
        if rc == 0 { Some(nh) } else { self.default }
    }

    /// The next hop of the longest prefix covering `ip`, or [`MISS`] (the default route's
    /// when there is one): `rte_lpm_lookup`'s steps (tbl24 entry, tbl8 entry for an extended
    /// one) in Rust so that the compiler inlines them into the caller's per-packet loop, where
    /// a call through the C shim cannot be (see docs/performance.md, "Forward").
    #[inline(always)]
    pub fn lookup_one(&self, ip: u32) -> u32 {
        const EXT: u32 = ffi::RTE_LPM_VALID_EXT_ENTRY_BITMASK;
        let mut e = self.view().entry(ip);
        if e & EXT == EXT {
            // An extended entry holds a tbl8 group index, below number_tbl8s; the bound is
            // checked anyway (a bad entry reads as a miss, not out of bounds).
            let i = (e & MAX_NEXT_HOP) as usize * ffi::RTE_LPM_TBL8_GROUP_NUM_ENTRIES as usize
                + (ip & 0xff) as usize;
            e = if i < self.tbl8_entries {
                // SAFETY: i < tbl8_entries, the tbl8 array's length; read-only as above.
                unsafe { *self.tbl8.add(i) }
            } else {
                0
            };
        }
        if e & ffi::RTE_LPM_LOOKUP_SUCCESS != 0 {
            e & MAX_NEXT_HOP
        } else {
            self.default.unwrap_or(MISS)
        }
    }

    /// A by-value handle for a burst's lookups ([`LpmView`]): the table's pointers in locals
    /// (registers) instead of behind `&self`, which the compiler reloads after every store
    /// to packet bytes.
    #[inline(always)]
    pub fn view(&self) -> LpmView<'_> {
        LpmView {
            tbl24: self.tbl24,
            default: self.default,
            _table: std::marker::PhantomData,
        }
    }

    /// Looks up every address of `ips`, writing each next hop (or [`MISS`]) to the same index
    /// of `out`. Only `min(ips.len(), out.len())` entries are looked up.
    #[inline]
    pub fn lookup_bulk(&self, ips: &[u32], out: &mut [u32]) {
        let n = ips.len().min(out.len());
        if n == 0 {
            return;
        }
        // SAFETY: ptr is a live table (read only); ips and out are valid for n elements.
        unsafe {
            ffi::pf_lpm_lookup_bulk(self.ptr.as_ptr(), ips.as_ptr(), out.as_mut_ptr(), n as u32)
        };
        let miss = self.default.unwrap_or(MISS);
        for v in &mut out[..n] {
            // Each result is the raw table entry: next hop in bits 0..24, valid flag in bit 24
            // (RTE_LPM_LOOKUP_SUCCESS).
            *v = if *v & ffi::RTE_LPM_LOOKUP_SUCCESS != 0 {
                *v & MAX_NEXT_HOP
            } else {
                miss
            };
        }
    }
}

impl Drop for Lpm {
    fn drop(&mut self) {
        // SAFETY: we own the table; no lookup can run concurrently because every reader holds a
        // shared borrow (or an Arc) that has ended when Drop runs.
        unsafe { ffi::rte_lpm_free(self.ptr.as_ptr()) }
    }
}

/// A borrowed view of an [`Lpm`] for the per-packet test "does `ip` go where the previous
/// packet went": one tbl24 read and a compare ([`LpmView::routes_to`]). Anything else
/// (a /25../32 range, a miss) is left to [`Lpm::lookup_one`].
#[derive(Clone, Copy)]
pub struct LpmView<'a> {
    tbl24: *const u32,
    default: Option<u32>,
    _table: std::marker::PhantomData<&'a Lpm>,
}

/// tbl24 entry bits of `rte_lpm_tbl_entry`: next hop (24), valid (1), valid_group (1); the
/// depth (6 bits) above them is masked off.
const ENTRY_MASK: u32 = MAX_NEXT_HOP | ffi::RTE_LPM_VALID_EXT_ENTRY_BITMASK;

impl LpmView<'_> {
    /// What [`LpmView::routes_to`] compares tbl24 entries with for next hop `hop`.
    #[inline(always)]
    pub fn key(&self, hop: u32) -> RouteKey {
        if hop > MAX_NEXT_HOP {
            return RouteKey::NONE;
        }
        RouteKey {
            entry: ffi::RTE_LPM_LOOKUP_SUCCESS | (hop & MAX_NEXT_HOP),
            // A miss in the table is the default route's: such addresses (no valid bit in
            // their tbl24 entry) match too. Otherwise a test no entry passes.
            miss: if self.default == Some(hop) {
                (ffi::RTE_LPM_VALID_EXT_ENTRY_BITMASK, 0)
            } else {
                (0, 1)
            },
        }
    }

    /// Whether [`Lpm::lookup_one`]`(ip)` is the next hop `key` was made for, decided from the
    /// tbl24 entry alone: `true` only when it certainly is (a direct entry for that hop, or
    /// an empty entry when that hop is the default route's); `false` means "not known here"
    /// (an extended entry, another hop).
    #[inline(always)]
    pub fn routes_to(&self, ip: u32, key: RouteKey) -> bool {
        let e = self.entry(ip) & ENTRY_MASK;
        e == key.entry || e & key.miss.0 == key.miss.1
    }

    /// The raw tbl24 entry of `ip` (`rte_lpm_tbl_entry` as a 32-bit word).
    #[inline(always)]
    pub fn entry(&self, ip: u32) -> u32 {
        // SAFETY: tbl24 has RTE_LPM_TBL24_NUM_ENTRIES = 1 << 24 entries and `ip >> 8` is below
        // that; entries are plain 32-bit words (rte_lpm_tbl_entry's bitfields, which DPDK's own
        // inline lookup reads as uint32_t); the table outlives the view ('a) and is only
        // written through `&mut Lpm`, which the view's borrow excludes.
        unsafe { *self.tbl24.add((ip >> 8) as usize) }
    }
}

/// A next hop as [`LpmView::routes_to`] recognises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteKey {
    entry: u32,
    /// (mask, value): an entry whose masked bits equal the value matches as well.
    miss: (u32, u32),
}

impl RouteKey {
    /// A key no address matches.
    pub const NONE: RouteKey = RouteKey {
        // Masked entries never have the depth bits set.
        entry: u32::MAX,
        miss: (0, 1),
    };
}
