//! Single-producer/single-consumer `rte_ring` of mbufs, split into a producer half and a
//! consumer half. Each half is `Send` but not `Clone`, so the type system guarantees there is
//! exactly one enqueuing and one dequeuing thread, as `RING_F_SP_ENQ | RING_F_SC_DEQ` requires.

use std::ffi::{CString, c_void};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ffi;
use crate::mbuf::Burst;

#[derive(Debug)]
struct Inner {
    ptr: NonNull<ffi::rte_ring>,
    name: String,
    /// Packets the producer could not enqueue (ring full). Written by the producer only, once
    /// per congested burst.
    full: std::sync::atomic::AtomicU64,
}

// SAFETY: the ring is shared by exactly one producer and one consumer (enforced by the halves)
// plus read-only observers (count/free_count are safe to call concurrently).
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        // Both halves are gone: free the mbufs left in the ring, then the ring.
        let mut b = Burst::new();
        loop {
            let (p, room) = b.spare_ptr();
            // SAFETY: no producer or consumer exists any more (Inner is dropped with the last
            // Arc), so this thread is the only user; p has room slots.
            let n = unsafe {
                ffi::pf_ring_sc_dequeue_burst(self.ptr.as_ptr(), p as *mut *mut c_void, room as u32)
            };
            if n == 0 {
                break;
            }
            // SAFETY: dequeue wrote n owned mbuf pointers.
            unsafe { b.commit(n as usize) };
            b.free_all();
        }
        // SAFETY: the ring came from rte_ring_create and nobody uses it any more.
        unsafe { ffi::rte_ring_free(self.ptr.as_ptr()) };
    }
}

/// Enqueuing half.
#[derive(Debug)]
pub struct RingProducer {
    inner: Arc<Inner>,
}

/// Dequeuing half.
#[derive(Debug)]
pub struct RingConsumer {
    inner: Arc<Inner>,
}

/// Read-only view for the management thread: occupancy and congestion drops.
#[derive(Debug, Clone)]
pub struct RingStats {
    inner: Arc<Inner>,
}

/// Creates an SP/SC ring holding up to `size - 1` mbufs (`size` a power of two) on NUMA node
/// `socket` (-1: any).
pub fn spsc_ring(
    name: &str,
    size: u32,
    socket: i32,
) -> Result<(RingProducer, RingConsumer, RingStats)> {
    if !size.is_power_of_two() || size < 2 {
        return Err(Error::invalid(format!(
            "ring {name}: size {size} is not a power of two >= 2"
        )));
    }
    let c = CString::new(name).map_err(|_| Error::invalid("ring name has NUL"))?;
    // SAFETY: c is a valid C string (DPDK copies the name); flags select SP enqueue and SC
    // dequeue, which the split halves below enforce.
    let p = unsafe {
        ffi::rte_ring_create(
            c.as_ptr(),
            size,
            socket,
            ffi::RING_F_SP_ENQ | ffi::RING_F_SC_DEQ,
        )
    };
    let ptr = NonNull::new(p)
        .ok_or_else(|| Error::from_errno(format!("rte_ring_create({name}, {size})")))?;
    let inner = Arc::new(Inner {
        ptr,
        name: name.to_string(),
        full: std::sync::atomic::AtomicU64::new(0),
    });
    Ok((
        RingProducer {
            inner: inner.clone(),
        },
        RingConsumer {
            inner: inner.clone(),
        },
        RingStats { inner },
    ))
}

impl RingProducer {
    /// Zeroes the ring's congestion count ([`RingStats::full`]); the producer owns it, so an
    /// operator's `clear` reaches it through the producing worker.
    pub fn reset_full(&mut self) {
        self.inner
            .full
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Moves as many packets as fit from the front of `burst` into the ring; the rest stay in
    /// the burst (the caller drops them as congestion; the ring counts them too, see
    /// [`RingStats::full`]). Returns how many went in.
    #[inline]
    pub fn enqueue_burst(&mut self, burst: &mut Burst) -> usize {
        let n = burst.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: we are the only producer (this half is unique); the first n slots are owned
        // mbufs; the ring takes ownership of the first `k`, which we then forget.
        let k = unsafe {
            ffi::pf_ring_sp_enqueue_burst(
                self.inner.ptr.as_ptr(),
                burst.raw_ptr() as *const *mut c_void,
                n as u32,
            )
        } as usize;
        burst.consume_front(k);
        if k < n {
            // Single writer: a plain load and store, no read-modify-write.
            let f = &self.inner.full;
            f.store(
                f.load(std::sync::atomic::Ordering::Relaxed) + (n - k) as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        k
    }
}

impl RingConsumer {
    /// Dequeues up to `max` packets into the free slots of `burst`; returns how many arrived.
    #[inline]
    pub fn dequeue_burst(&mut self, burst: &mut Burst, max: usize) -> usize {
        let (p, room) = burst.spare_ptr();
        let room = room.min(max);
        // SAFETY: we are the only consumer (this half is unique); p has room slots.
        let n = unsafe {
            ffi::pf_ring_sc_dequeue_burst(
                self.inner.ptr.as_ptr(),
                p as *mut *mut c_void,
                room as u32,
            )
        } as usize;
        // SAFETY: dequeue wrote n owned mbuf pointers (only mbufs are ever enqueued).
        unsafe { burst.commit(n) };
        n
    }
}

impl RingStats {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Packets in the ring now.
    pub fn count(&self) -> u32 {
        // SAFETY: rte_ring_count only reads the head/tail indexes; safe concurrently.
        unsafe { ffi::pf_ring_count(self.inner.ptr.as_ptr()) }
    }

    /// Packets that found the ring full since it was created or the last
    /// [`RingProducer::reset_full`] (the producer dropped them).
    pub fn full(&self) -> u64 {
        self.inner.full.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Usable capacity.
    pub fn capacity(&self) -> u32 {
        // SAFETY: reads a constant field of a live ring.
        unsafe { ffi::pf_ring_get_capacity(self.inner.ptr.as_ptr()) }
    }
}
