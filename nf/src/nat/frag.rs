//! Fragments. First fragments carry the L4 header and are translated like whole packets
//! (the L4 checksum covers the whole datagram and is updated incrementally, so the receiver's
//! reassembly still verifies). Non-first fragments have no ports: NAT remembers, per worker,
//! what it did with each first fragment — (source, destination, protocol, IP id, direction)
//! -> new addresses, or the worker it was handed to — in a small direct-mapped cache (4096
//! entries, 2 s lifetime), and applies the same to the later fragments of that datagram.
//! A non-first fragment that arrives before its first fragment (or after the entry was
//! overwritten or aged out) is dropped and counted as `nat_fragment`; NAT does not reassemble.

use dpdk::PktMeta;
use pollfwd_pipeline::{DropReason, Verdict};

use super::pkt::{Pkt, rewrite};
use super::{NatCore, aux};

/// Lifetime of a fragment cache entry, milliseconds.
pub const FRAG_TTL_MS: u32 = 2000;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    src: u32,
    dst: u32,
    id: u16,
    proto: u8,
    /// 0 empty, 1 translate, 2 hand off.
    kind: u8,
    inside: bool,
    worker: u16,
    new_src: u32,
    new_dst: u32,
    time: u32,
}

/// The per-worker fragment cache.
pub struct FragCache {
    e: Vec<Entry>,
    mask: usize,
}

impl FragCache {
    pub fn new(n: usize) -> FragCache {
        let n = n.next_power_of_two();
        FragCache {
            e: vec![Entry::default(); n],
            mask: n - 1,
        }
    }

    pub fn bytes(&self) -> usize {
        self.e.len() * std::mem::size_of::<Entry>()
    }

    #[inline]
    fn slot(&self, src: u32, dst: u32, id: u16, proto: u8, inside: bool) -> usize {
        let h = super::table::hash2(
            (src as u64) << 32 | dst as u64,
            (id as u64) << 16 | (proto as u64) << 1 | inside as u64,
            0x6a09_e667,
        );
        (h >> 40) as usize & self.mask
    }

    fn find(&self, p: &Pkt, inside: bool, now: u32) -> Option<Entry> {
        let e = self.e[self.slot(p.src, p.dst, p.ip_id, p.proto, inside)];
        (e.kind != 0
            && e.src == p.src
            && e.dst == p.dst
            && e.id == p.ip_id
            && e.proto == p.proto
            && e.inside == inside
            && now.wrapping_sub(e.time) < FRAG_TTL_MS)
            .then_some(e)
    }

    fn put(&mut self, p: &Pkt, inside: bool, e: Entry) {
        let i = self.slot(p.src, p.dst, p.ip_id, p.proto, inside);
        self.e[i] = e;
    }
}

impl NatCore {
    /// Remembers the translation of a first fragment (original addresses in `p`).
    pub(crate) fn frag_record(&mut self, p: &Pkt, inside: bool, new_src: u32, new_dst: u32) {
        let e = Entry {
            src: p.src,
            dst: p.dst,
            id: p.ip_id,
            proto: p.proto,
            kind: 1,
            inside,
            worker: 0,
            new_src,
            new_dst,
            time: self.now,
        };
        self.frags.put(p, inside, e);
    }

    /// Remembers that a first fragment from outside went to worker `w`.
    pub(crate) fn frag_record_owner(&mut self, p: &Pkt, w: u16) {
        let e = Entry {
            src: p.src,
            dst: p.dst,
            id: p.ip_id,
            proto: p.proto,
            kind: 2,
            inside: false,
            worker: w,
            new_src: 0,
            new_dst: 0,
            time: self.now,
        };
        self.frags.put(p, false, e);
    }

    /// A non-first fragment: do what was done to its first fragment.
    pub(crate) fn frag_nonfirst(
        &mut self,
        f: &mut [u8],
        p: &Pkt,
        meta: &mut PktMeta,
        inside: bool,
    ) -> Verdict {
        let Some(e) = self.frags.find(p, inside, self.now) else {
            return Verdict::Drop(DropReason::NatFragment);
        };
        if e.kind == 2 {
            if meta.aux & aux::HANDED != 0 {
                return Verdict::Drop(DropReason::NatFragment);
            }
            meta.aux |= aux::HANDED;
            return Verdict::Handoff(e.worker);
        }
        if e.new_src != p.src {
            rewrite::ip_addr(f, p.l3, true, e.new_src);
            meta.src_ip = e.new_src;
        }
        if e.new_dst != p.dst {
            rewrite::ip_addr(f, p.l3, false, e.new_dst);
            meta.dst_ip = e.new_dst;
        }
        meta.flags |= dpdk::meta::flags::MODIFIED | dpdk::meta::flags::NATTED;
        self.tally.fragments += 1;
        Verdict::Continue
    }
}
