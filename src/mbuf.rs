//! The owned packet buffer [`Mbuf`] and the fixed-capacity [`Burst`] of them.
//!
//! Invariants every `unsafe` below relies on:
//! - an `Mbuf` is the only owner of a valid, single-reference `rte_mbuf` that came from one of
//!   pollfwd's pools (so its private area holds a [`PktMeta`]); dropping it frees the mbuf;
//! - `Burst` slots `0..len` hold such owned mbufs, slots `len..` are garbage never read.

use std::ptr::NonNull;

use crate::ffi;
use crate::meta::PktMeta;

/// Largest burst pollfwd moves at once (rx, stage, tx, ring).
pub const BURST_MAX: usize = 64;

/// An owned mbuf (single segment as far as the accessors go: `data()` is the first segment).
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<ffi::rte_mbuf>);

// SAFETY: an Mbuf is the sole owner of its rte_mbuf; moving it to another thread moves that
// ownership (this is how mbufs cross lcores through rings). DPDK's free is thread-safe.
unsafe impl Send for Mbuf {}

impl Mbuf {
    pub(crate) fn from_nonnull(p: NonNull<ffi::rte_mbuf>) -> Mbuf {
        Mbuf(p)
    }

    /// The raw pointer, still owned by `self` (for DPDK calls that only read the mbuf).
    pub(crate) fn as_ptr(&self) -> *mut ffi::rte_mbuf {
        self.0.as_ptr()
    }

    /// Gives up ownership without freeing (the caller passes the pointer to DPDK).
    pub(crate) fn into_raw(self) -> *mut ffi::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    #[inline]
    fn raw(&self) -> &ffi::rte_mbuf {
        // SAFETY: we own a valid rte_mbuf (module invariant).
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut ffi::rte_mbuf {
        // SAFETY: we own a valid rte_mbuf exclusively (module invariant).
        unsafe { self.0.as_mut() }
    }

    /// Bytes of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer (DPDK keeps
        // data_off + data_len <= buf_len); the buffer is owned with the mbuf.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// Mutable bytes of the first segment.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as in `data`; `&mut self` makes the access exclusive, and the refcount of an
        // owned pollfwd mbuf is 1 (no clones or indirect buffers are created).
        unsafe {
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// Total packet length over all segments.
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// Length of the first segment.
    #[inline]
    pub fn data_len(&self) -> u16 {
        self.raw().data_len
    }

    /// Number of segments.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Port the mbuf was received on (set by the PMD).
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Re-labels the packet's input: the interface it belongs to once its VLAN tags are read
    /// (pollfwd's interface ids extend DPDK's port ids, see `pollfwd_pipeline::vlan`).
    #[inline]
    pub fn set_port(&mut self, port: u16) {
        self.raw_mut().port = port;
    }

    /// The VLAN tags the PMD stripped on receive, if it did (`RTE_MBUF_F_RX_VLAN_STRIPPED`:
    /// the tag's TCI in `vlan_tci`; with `RTE_MBUF_F_RX_QINQ_STRIPPED` also the outer one in
    /// `vlan_tci_outer`): `(tci, outer tci)`.
    #[inline]
    pub fn rx_stripped_vlan(&self) -> Option<(u16, Option<u16>)> {
        let m = self.raw();
        if m.ol_flags & ffi::RTE_MBUF_F_RX_VLAN_STRIPPED as u64 == 0 {
            return None;
        }
        let outer =
            (m.ol_flags & ffi::RTE_MBUF_F_RX_QINQ_STRIPPED as u64 != 0).then_some(m.vlan_tci_outer);
        Some((m.vlan_tci, outer))
    }

    /// Asks the device to insert an 802.1Q tag with `tci` on transmit (`RTE_MBUF_F_TX_VLAN`;
    /// only for a port configured with the VLAN insert offload).
    #[inline]
    pub fn set_tx_vlan(&mut self, tci: u16) {
        let m = self.raw_mut();
        m.ol_flags |= ffi::RTE_MBUF_F_TX_VLAN;
        m.vlan_tci = tci;
    }

    /// Forgets what the PMD said about stripped VLAN tags (once they are accounted for).
    #[inline]
    pub fn clear_rx_vlan(&mut self) {
        let m = self.raw_mut();
        m.ol_flags &= !((ffi::RTE_MBUF_F_RX_VLAN
            | ffi::RTE_MBUF_F_RX_VLAN_STRIPPED
            | ffi::RTE_MBUF_F_RX_QINQ
            | ffi::RTE_MBUF_F_RX_QINQ_STRIPPED) as u64);
    }

    /// Bytes free in front of the data.
    #[inline]
    pub fn headroom(&self) -> u16 {
        self.raw().data_off
    }

    /// Bytes free after the data in the first (and only) segment.
    #[inline]
    pub fn tailroom(&self) -> u16 {
        let m = self.raw();
        m.buf_len - m.data_off - m.data_len
    }

    /// Sets the length of a single-segment packet to `len` bytes (growing into tailroom or
    /// shrinking). Returns false, changing nothing, if the packet has several segments or the
    /// room is not there.
    pub fn set_len(&mut self, len: u16) -> bool {
        let m = self.raw_mut();
        if m.nb_segs != 1 || m.data_off as u32 + len as u32 > m.buf_len as u32 {
            return false;
        }
        m.data_len = len;
        m.pkt_len = len as u32;
        true
    }

    /// Prepends `len` bytes into the first segment's headroom (any number of segments) and
    /// returns the first segment's bytes, now starting with them; `None`, changing nothing,
    /// if the headroom is too small.
    pub fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: we own the mbuf; rte_pktmbuf_prepend checks the headroom and updates
        // data_off, data_len and pkt_len, or returns NULL changing nothing.
        let p = unsafe { ffi::pf_pktmbuf_prepend(self.0.as_ptr(), len) };
        if p.is_null() {
            None
        } else {
            Some(self.data_mut())
        }
    }

    /// Moves the start of the data by `delta` bytes (negative: prepend into headroom, positive:
    /// strip from the front). Returns false, changing nothing, if out of range.
    pub fn adjust_front(&mut self, delta: i32) -> bool {
        let m = self.raw_mut();
        let off = m.data_off as i32 + delta;
        let len = m.data_len as i32 - delta;
        if m.nb_segs != 1 || off < 0 || len < 0 || off + len > m.buf_len as i32 {
            return false;
        }
        m.data_off = off as u16;
        m.data_len = len as u16;
        m.pkt_len = len as u32;
        true
    }

    /// Adds `len` bytes in front of the packet from the first segment's headroom (as
    /// `rte_pktmbuf_prepend`, without the call: any number of segments) and returns the first
    /// segment's bytes, now starting with them; `None`, changing nothing, if the headroom is
    /// too small.
    #[inline]
    pub fn grow_front(&mut self, len: u16) -> Option<&mut [u8]> {
        let m = self.raw_mut();
        if len > m.data_off {
            return None;
        }
        m.data_off -= len;
        m.data_len += len;
        m.pkt_len += len as u32;
        Some(self.data_mut())
    }

    /// Removes `len` bytes from the front of the packet (`rte_pktmbuf_adj`: any number of
    /// segments, the bytes taken from the first). Returns false, changing nothing, if the
    /// first segment holds fewer.
    #[inline]
    pub fn strip_front(&mut self, len: u16) -> bool {
        let m = self.raw_mut();
        if len > m.data_len {
            return false;
        }
        m.data_off += len;
        m.data_len -= len;
        m.pkt_len -= len as u32;
        true
    }

    #[inline]
    fn meta_ptr(&self) -> *mut PktMeta {
        let m = self.raw();
        assert!(
            m.priv_size as usize >= std::mem::size_of::<PktMeta>(),
            "mbuf from a pool without PktMeta private area"
        );
        // SAFETY: pointer arithmetic only: the private area starts right after the
        // rte_mbuf header (rte_mbuf_to_priv), and the assert above checked its size.
        unsafe {
            (self.0.as_ptr() as *mut u8).add(std::mem::size_of::<ffi::rte_mbuf>()) as *mut PktMeta
        }
    }

    /// Starts loading the mbuf's two header cache lines into the cache: the rx/tx fields, and
    /// `next`/`priv_size` that metadata access and freeing read. For packets that arrive from
    /// another lcore (pipeline and hand-off rings), so that a burst's cross-core cache misses
    /// overlap instead of stalling packet by packet.
    #[inline]
    pub fn prefetch(&self) {
        let m = self.raw();
        crate::prefetch(m);
        crate::prefetch(&m.next);
    }

    /// The packet's metadata.
    #[inline]
    pub fn meta(&self) -> &PktMeta {
        // SAFETY: meta_ptr points to priv_size >= size_of::<PktMeta>() bytes owned with the
        // mbuf, 8-byte aligned (RTE_MBUF_PRIV_ALIGN); PktMeta is plain data valid for any bits.
        unsafe { &*self.meta_ptr() }
    }

    /// The bytes of the first segment and the metadata, both writable at once (a stage that
    /// rewrites a frame and records what it did, without copying the metadata out and back).
    #[inline]
    pub fn data_and_meta_mut(&mut self) -> (&mut [u8], &mut PktMeta) {
        let meta = self.meta_ptr();
        let m = self.raw_mut();
        let data = (m.buf_addr as *mut u8).wrapping_add(m.data_off as usize);
        let len = m.data_len as usize;
        // The two regions must not overlap: the metadata is in the private area right after
        // the mbuf header, a direct mbuf's data after that area (and an attached or external
        // buffer elsewhere). Checked, not assumed: two compares.
        let (d, e) = (data as usize, data as usize + len);
        let (ms, me) = (
            meta as usize,
            meta as usize + std::mem::size_of::<PktMeta>(),
        );
        assert!(e <= ms || d >= me, "mbuf data overlaps its metadata");
        // SAFETY: `data..data + len` is the first segment's data as in `data_mut`, `meta` the
        // private area as in `meta_mut`; the assert above proved them disjoint, and `&mut self`
        // makes both accesses exclusive for the borrow's lifetime.
        unsafe { (std::slice::from_raw_parts_mut(data, len), &mut *meta) }
    }

    /// The packet's metadata, writable.
    #[inline]
    pub fn meta_mut(&mut self) -> &mut PktMeta {
        // SAFETY: as in `meta`, and `&mut self` makes the access exclusive.
        unsafe { &mut *self.meta_ptr() }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; after this it is never touched again.
        unsafe { ffi::pf_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// A fixed-capacity burst of owned mbufs (no allocation per burst).
pub struct Burst {
    pkts: [*mut ffi::rte_mbuf; BURST_MAX],
    len: usize,
}

// SAFETY: a Burst owns its mbufs exactly like a Vec<Mbuf> would.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Burst::new()
    }
}

impl Burst {
    pub const fn new() -> Burst {
        Burst {
            pkts: [std::ptr::null_mut(); BURST_MAX],
            len: 0,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BURST_MAX
    }

    /// Free slots.
    #[inline]
    pub fn room(&self) -> usize {
        BURST_MAX - self.len
    }

    /// The packets, as owned mbufs that can be read and modified in place.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over NonNull<rte_mbuf>, which has the layout of
        // *mut rte_mbuf; slots 0..len hold non-null owned mbufs (module invariant).
        unsafe { std::slice::from_raw_parts_mut(self.pkts.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: as in `as_mut_slice`.
        unsafe { std::slice::from_raw_parts(self.pkts.as_ptr() as *const Mbuf, self.len) }
    }

    /// Appends a packet; gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST_MAX {
            return Err(m);
        }
        self.pkts[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Moves the first `n` packets (at most as many as there are, and as `to` has room for)
    /// to the end of `to`, in order; the rest move forward. Returns how many moved. Copies
    /// pointers only (no call per packet).
    #[inline]
    pub fn move_front_to(&mut self, to: &mut Burst, n: usize) -> usize {
        let n = n.min(self.len).min(to.room());
        to.pkts[to.len..to.len + n].copy_from_slice(&self.pkts[..n]);
        to.len += n;
        // The moved pointers are owned by `to` now: forget them here.
        self.consume_front(n);
        n
    }

    /// Moves the packets whose bit is set in `mask` (bit i: packet i) to the end of `to`, in
    /// order, and compacts the others to the front, order kept; returns how many moved. The
    /// compaction has no branch per packet (for a few drops among many packets). Bits past
    /// the burst's length are ignored; a packet `to` has no room for stays.
    #[inline]
    pub fn take_masked(&mut self, mask: u64, to: &mut Burst) -> usize {
        let n = self.len;
        let mut mask = if n >= 64 {
            mask
        } else {
            mask & ((1u64 << n) - 1)
        };
        // Packets beyond `to`'s room stay: clear their bits (the highest ones).
        while mask.count_ones() as usize > to.room() {
            mask &= !(1u64 << (63 - mask.leading_zeros()));
        }
        let moved = mask.count_ones() as usize;
        // Ownership: the moved pointers belong to `to` now; the kept ones between two moved
        // ones slide down as a block over the gap (one move per moved packet, not a step per
        // packet); those before the first moved packet stay where they are, and every slot
        // from the new length on is garbage past len.
        let mut m = mask;
        let mut k = (mask.trailing_zeros() as usize).min(n);
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            to.pkts[to.len] = self.pkts[i];
            to.len += 1;
            let end = if m == 0 {
                n
            } else {
                m.trailing_zeros() as usize
            };
            self.pkts.copy_within(i + 1..end, k);
            k += end - (i + 1);
        }
        self.len = k;
        moved
    }

    /// Takes every packet out, in order, handing each to `f` with its index. `f` keeps a
    /// packet in the burst by returning it (`Some`), or consumes it (transmit, drop, enqueue).
    /// Kept packets are compacted to the front, order preserved.
    #[inline]
    pub fn dispatch(&mut self, mut f: impl FnMut(usize, Mbuf) -> Option<Mbuf>) {
        let n = self.len;
        self.len = 0;
        for i in 0..n {
            // SAFETY: slot i < n held an owned non-null mbuf; we move it out exactly once and
            // the slot is either overwritten by a kept packet or becomes part of the garbage
            // tail (len only counts kept packets).
            let m = Mbuf(unsafe { NonNull::new_unchecked(self.pkts[i]) });
            if let Some(kept) = f(i, m) {
                self.pkts[self.len] = kept.into_raw();
                self.len += 1;
            }
        }
    }

    /// Frees every packet with one bulk call.
    #[inline]
    pub fn free_all(&mut self) {
        if self.len > 0 {
            // SAFETY: slots 0..len are owned mbufs; after the call we forget them (len = 0).
            unsafe { ffi::pf_pktmbuf_free_bulk(self.pkts.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// Raw slot pointer for filling by rx/dequeue: slots len..BURST_MAX.
    pub(crate) fn spare_ptr(&mut self) -> (*mut *mut ffi::rte_mbuf, usize) {
        // SAFETY: arithmetic only: len <= BURST_MAX so the pointer is in bounds or one past.
        (
            unsafe { self.pkts.as_mut_ptr().add(self.len) },
            BURST_MAX - self.len,
        )
    }

    /// Marks `n` more slots (filled through `spare_ptr`) as owned packets.
    ///
    /// # Safety
    /// The caller wrote `n` owned, non-null mbuf pointers at `spare_ptr()`.
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(self.len + n <= BURST_MAX);
        self.len += n;
    }

    /// The first `n` packets, as raw pointers for a tx/enqueue call.
    pub(crate) fn raw_ptr(&mut self) -> *mut *mut ffi::rte_mbuf {
        self.pkts.as_mut_ptr()
    }

    /// Forgets the first `n` packets (they were handed to DPDK) and shifts the rest forward.
    pub(crate) fn consume_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.pkts.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.free_all();
    }
}
