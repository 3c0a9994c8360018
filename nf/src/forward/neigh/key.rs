//! How a slot stores its address, per address family: the IPv4 key is the address itself in
//! one `AtomicU32`; the IPv6 key is a tag word plus the address in two `AtomicU64` (see the
//! parent module's notes for the protocol and why it is safe).

use std::fmt::Debug;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

/// An address family the neighbour table can be keyed by: `u32` (IPv4) or `u128` (IPv6), both
/// in host order.
pub trait NeighAddr: Copy + Eq + Ord + Debug + Send + Sync + 'static {
    /// The atomics holding a slot's address.
    type Key: SlotKey;
    fn bits(self) -> <Self::Key as SlotKey>::Bits;
    fn from_bits(bits: <Self::Key as SlotKey>::Bits) -> Self;
    /// The slot index comes from the low bits; the IPv6 key tag from bits 40..64.
    fn hash(self) -> u64;
    /// Whether the address may be stored (0 and reserved key values may not).
    fn storable(self) -> bool;
}

/// The operations the table does on a slot's key. The key word (a `u32`) is 0 when free;
/// what a reader loaded of it is what it re-checks later (`still`).
pub trait SlotKey: Default + Send + Sync {
    /// The address as stored.
    type Bits: Copy + Eq;
    /// A zero-sized field giving the slot its alignment (a slot in one cache line).
    type Align: Default + Send + Sync;
    /// Loads the key word (Acquire).
    fn load(&self) -> u32;
    /// Like `load`, for an inserter of an address of hash `h`: may wait (bounded) for a
    /// claim of that address under way.
    fn load_settled(&self, _h: u64) -> u32 {
        self.load()
    }
    /// Whether key word `k`, just loaded, is that of address `a` (hash `h`).
    fn holds(&self, k: u32, a: Self::Bits, h: u64) -> bool;
    /// Whether key word `k` holds an address (not free, not changing hands).
    fn live(k: u32) -> bool;
    /// The address of live key word `k`, just loaded (re-check it with `still`).
    fn get(&self, k: u32) -> Self::Bits;
    /// Whether the key word is still `k` (after loading the slot's entry).
    #[inline(always)]
    fn still(&self, k: u32) -> bool {
        self.load() == k
    }
    /// Claims a free slot for `a`: `Ok` if ours (publish it with `publish_claimed` after
    /// initialising the entry), else the key word found instead.
    fn claim(&self, a: Self::Bits, h: u64) -> Result<(), u32>;
    /// Publishes a claimed slot; returns its key word.
    fn publish_claimed(&self, a: Self::Bits, h: u64) -> u32;
    /// Takes a slot from the address of key word `k`, for `a`: true if ours (only one wins);
    /// publish it with `publish_taken` after resetting the entry.
    fn take(&self, k: u32, a: Self::Bits, h: u64) -> bool;
    /// Publishes a taken slot whose entry now has generation `generation` (6 bits); returns
    /// its key word.
    fn publish_taken(&self, a: Self::Bits, h: u64, generation: u64) -> u32;
}

/// Alignment of a 32-byte slot.
#[repr(align(32))]
#[derive(Default)]
pub struct Align32;

/// Alignment of a 64-byte slot.
#[repr(align(64))]
#[derive(Default)]
pub struct Align64;

/// The IPv4 key of a slot while it is being reclaimed (255.255.255.255 is never a neighbour).
pub const RECLAIMING: u32 = u32::MAX;

impl NeighAddr for u32 {
    type Key = AtomicU32;
    #[inline(always)]
    fn bits(self) -> u32 {
        self
    }
    #[inline(always)]
    fn from_bits(bits: u32) -> u32 {
        bits
    }
    #[inline(always)]
    fn hash(self) -> u64 {
        (self.wrapping_mul(0x9e37_79b1) ^ (self >> 16)) as u64
    }
    #[inline(always)]
    fn storable(self) -> bool {
        self != 0 && self != RECLAIMING
    }
}

/// IPv4: the address is the key word; 0 = free, [`RECLAIMING`] while the slot changes hands.
impl SlotKey for AtomicU32 {
    type Bits = u32;
    type Align = Align32;

    #[inline(always)]
    fn load(&self) -> u32 {
        self.load(Acquire)
    }

    #[inline(always)]
    fn holds(&self, k: u32, a: u32, _: u64) -> bool {
        k == a
    }

    #[inline(always)]
    fn live(k: u32) -> bool {
        k != 0 && k != RECLAIMING
    }

    #[inline(always)]
    fn get(&self, k: u32) -> u32 {
        k
    }

    #[inline(always)]
    fn claim(&self, a: u32, _: u64) -> Result<(), u32> {
        self.compare_exchange(0, a, AcqRel, Acquire).map(|_| ())
    }

    #[inline(always)]
    fn publish_claimed(&self, a: u32, _: u64) -> u32 {
        // The claim's compare-and-swap published the address.
        a
    }

    #[inline(always)]
    fn take(&self, k: u32, _: u32, _: u64) -> bool {
        self.compare_exchange(k, RECLAIMING, AcqRel, Acquire)
            .is_ok()
    }

    #[inline(always)]
    fn publish_taken(&self, a: u32, _: u64, _: u64) -> u32 {
        self.store(a, Release);
        a
    }
}

impl NeighAddr for u128 {
    type Key = WideKey;
    #[inline(always)]
    fn bits(self) -> u128 {
        self
    }
    #[inline(always)]
    fn from_bits(bits: u128) -> u128 {
        bits
    }
    #[inline]
    fn hash(self) -> u64 {
        let (hi, lo) = split(self);
        let x = (lo ^ hi.wrapping_mul(0xff51_afd7_ed55_8ccd)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^ (x >> 32)
    }
    #[inline(always)]
    fn storable(self) -> bool {
        // :: (unspecified) is never a neighbour.
        self != 0
    }
}

/// State of an IPv6 key (tag bits 0..2). A free slot's tag is 0.
const STATE: u32 = 0b11;
const LIVE: u32 = 0b01;
const CLAIMING: u32 = 0b10;
const RECLAIMING6: u32 = 0b11;
/// The entry's generation (6 bits) sits at bits 2..8 of a live tag.
const GEN_SHIFT: u32 = 2;
const GEN_BITS: u32 = 0x3f << GEN_SHIFT;
/// The address's hash tag (24 bits) sits at bits 8..32.
const TAG_SHIFT: u32 = 8;
/// Tag loads an inserter makes while a slot is being claimed or reclaimed for what may be its
/// own address (same hash tag) before it takes the slot as another address's: at most about
/// a microsecond, on the insert of a new neighbour only. The claimer's window is a few
/// stores; the bound only matters if it is preempted in it (then a duplicate may be made,
/// which the parent module's notes show to be harmless).
const SETTLE_SPINS: u32 = 128;

#[inline(always)]
fn split(a: u128) -> (u64, u64) {
    ((a >> 64) as u64, a as u64)
}

#[inline(always)]
fn hash_tag(h: u64) -> u32 {
    ((h >> 40) as u32) << TAG_SHIFT
}

/// IPv6: `tag` (0 free; else state, generation and hash tag) and the address in `hi`/`lo`,
/// written by the slot's claimer before it publishes the live tag.
#[repr(C)]
#[derive(Default)]
pub struct WideKey {
    tag: AtomicU32,
    hi: AtomicU64,
    lo: AtomicU64,
}

impl WideKey {
    #[inline(always)]
    fn write(&self, a: u128) {
        // Release: a reader that loads either half has the tag change before it in view, so
        // its re-check of the tag fails.
        let (hi, lo) = split(a);
        self.hi.store(hi, Release);
        self.lo.store(lo, Release);
    }
}

impl SlotKey for WideKey {
    type Bits = u128;
    type Align = Align64;

    #[inline(always)]
    fn load(&self) -> u32 {
        self.tag.load(Acquire)
    }

    fn load_settled(&self, h: u64) -> u32 {
        let mut t = self.tag.load(Acquire);
        for _ in 0..SETTLE_SPINS {
            // Claiming or reclaiming (bit 1 set) for the same hash tag: wait.
            if t & CLAIMING == 0 || t & !(GEN_BITS | STATE) != hash_tag(h) {
                break;
            }
            spin_loop();
            t = self.tag.load(Acquire);
        }
        t
    }

    #[inline(always)]
    fn holds(&self, t: u32, a: u128, h: u64) -> bool {
        // Live with a's hash tag (state and generation bits masked), then the address.
        if t & !GEN_BITS != hash_tag(h) | LIVE {
            return false;
        }
        let (hi, lo) = split(a);
        self.hi.load(Acquire) == hi && self.lo.load(Acquire) == lo
    }

    #[inline(always)]
    fn live(t: u32) -> bool {
        t & STATE == LIVE
    }

    #[inline(always)]
    fn get(&self, _: u32) -> u128 {
        let hi = self.hi.load(Acquire);
        let lo = self.lo.load(Acquire);
        ((hi as u128) << 64) | lo as u128
    }

    fn claim(&self, a: u128, h: u64) -> Result<(), u32> {
        match self
            .tag
            .compare_exchange(0, CLAIMING | hash_tag(h), AcqRel, Acquire)
        {
            Ok(_) => {
                self.write(a);
                Ok(())
            }
            Err(_) => Err(self.load_settled(h)),
        }
    }

    fn publish_claimed(&self, _: u128, h: u64) -> u32 {
        // A slot never used before: its entry has generation 0.
        let t = LIVE | hash_tag(h);
        self.tag.store(t, Release);
        t
    }

    fn take(&self, t: u32, a: u128, h: u64) -> bool {
        if self
            .tag
            .compare_exchange(t, RECLAIMING6 | hash_tag(h), AcqRel, Acquire)
            .is_err()
        {
            return false;
        }
        self.write(a);
        true
    }

    fn publish_taken(&self, _: u128, h: u64, generation: u64) -> u32 {
        let t = LIVE | (((generation as u32) << GEN_SHIFT) & GEN_BITS) | hash_tag(h);
        self.tag.store(t, Release);
        t
    }
}
