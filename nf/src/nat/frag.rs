//! Fragments. First fragments carry the L4 header and are translated like whole packets
//! (the L4 checksum covers the whole datagram and is updated incrementally, so the receiver's
//! reassembly still verifies). Non-first fragments have no ports: NAT remembers, per worker,
//! what it did with each first fragment — (source, destination, protocol, IP id, direction)
//! -> new addresses, or the worker it was handed to — in a small direct-mapped cache (4096
//! entries, 2 s lifetime), and applies the same to the later fragments of that datagram.
//! A non-first fragment that arrives before its first fragment is held (virtual reassembly
//! without reassembling): the stage keeps up to [`HOLD_MAX`] such fragments per worker for
//! [`HOLD_MS`], and when the first fragment of their datagram has been translated they go
//! through NAT again (`StageCtx::later`) and are translated like it. One that waited in vain
//! is dropped as `nat_fragment_timeout`; one that finds the hold queue full, or still no
//! entry when it comes back (overwritten), is dropped as `nat_fragment`.
//! NAT does not reassemble.

use dpdk::PktMeta;
use pollfwd_pipeline::{DropReason, Verdict};

use super::pkt::{Pkt, rewrite};
use super::{NatCore, aux};
use crate::fragmemo::{FragKey, FragMemo};

/// Lifetime of a fragment cache entry, milliseconds.
pub const FRAG_TTL_MS: u32 = 2000;
/// Non-first fragments a worker holds while their first fragment has not come.
pub const HOLD_MAX: usize = 64;
/// How long a held fragment waits for its first fragment, milliseconds.
pub const HOLD_MS: u32 = 1000;

/// First fragments a worker remembers between two releases of its held fragments, so that
/// a release looks at the held fragments of those datagrams only (more: all of them).
const FIRST_SEEN_MAX: usize = 8;

/// The datagrams whose first fragment NAT translated (or handed off) since the last release
/// of held fragments: a release compares each held fragment with these keys instead of
/// looking every one up (an orphan flood keeps the hold queue full; a first fragment must
/// not cost a lookup per held fragment).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FirstSeen {
    keys: [FragKey; FIRST_SEEN_MAX],
    n: usize,
    /// More than [`FIRST_SEEN_MAX`]: any held fragment may be released.
    overflow: bool,
}

impl FirstSeen {
    pub(crate) fn note(&mut self, k: FragKey) {
        if self.n < FIRST_SEEN_MAX {
            self.keys[self.n] = k;
            self.n += 1;
        } else {
            self.overflow = true;
        }
    }

    pub(crate) fn clear(&mut self) {
        (self.n, self.overflow) = (0, false);
    }

    pub(crate) fn any(&self) -> bool {
        self.n > 0 || self.overflow
    }

    /// Whether the first fragment of `k`'s datagram may be among those seen.
    pub(crate) fn may_have(&self, k: &FragKey) -> bool {
        self.overflow || self.keys[..self.n].contains(k)
    }
}

/// What NAT did with a datagram's first fragment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Done {
    /// 1 translate, 2 hand off.
    kind: u8,
    worker: u16,
    new_src: u32,
    new_dst: u32,
}

/// The per-worker fragment cache: the shared first-fragment memo, NAT's clock (ms).
pub(crate) type FragCache = FragMemo<Done>;

/// The cache key of a parsed packet travelling `inside` (from inside) or not.
fn key(p: &Pkt, inside: bool) -> FragKey {
    FragKey {
        src: p.src,
        dst: p.dst,
        id: p.ip_id,
        proto: p.proto,
        dir: inside,
    }
}

impl NatCore {
    /// Whether the first fragment of held fragment `k` has come (its translation is known).
    pub fn first_fragment_seen(&self, k: &FragKey) -> bool {
        self.frags
            .get(k, self.now as u64, FRAG_TTL_MS as u64)
            .is_some()
    }

    /// Whether a first fragment was recorded since the last call (held fragments may go);
    /// which ones, [`NatCore::first_fragment_recent`] tells until the next call.
    pub fn take_first_fragments(&mut self) -> bool {
        if self.first_seen.any() {
            self.first_seen_last = std::mem::take(&mut self.first_seen);
            true
        } else {
            // Nothing to copy (the common case, once per burst).
            self.first_seen_last.clear();
            false
        }
    }

    /// Whether the first fragment of held fragment `k` may be among those the last
    /// [`NatCore::take_first_fragments`] took (then [`NatCore::first_fragment_seen`] says).
    pub fn first_fragment_recent(&self, k: &FragKey) -> bool {
        self.first_seen_last.may_have(k)
    }

    /// Makes the next [`NatCore::take_first_fragments`] include `k` (a fragment held after
    /// the release that saw its first fragment: it must be looked at in the next one).
    pub fn recheck_first_fragment(&mut self, k: FragKey) {
        self.first_seen.note(k);
    }

    /// The key a non-first fragment is held under (its metadata as NAT filled it, the
    /// frame for the IP id), or None if it is not one NAT holds.
    pub fn hold_key(&self, f: &[u8], meta: &PktMeta) -> Option<FragKey> {
        use dpdk::meta::flags;
        if meta.flags & flags::FRAG_NONFIRST == 0 || meta.aux & aux::RETRIED != 0 {
            return None;
        }
        let ip = f.get(meta.l3_off as usize..)?;
        let id = u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]);
        let inside = self.dir.get(meta.in_port as usize) == Some(&super::DIR_IN)
            && meta.aux & aux::HAIRPIN == 0;
        Some(FragKey {
            src: meta.src_ip,
            dst: meta.dst_ip,
            id,
            proto: meta.proto,
            dir: inside,
        })
    }

    /// NAT's clock, milliseconds.
    pub fn now_ms(&self) -> u32 {
        self.now
    }

    /// Remembers the translation of a first fragment (original addresses in `p`).
    pub(crate) fn frag_record(&mut self, p: &Pkt, inside: bool, new_src: u32, new_dst: u32) {
        let d = Done {
            kind: 1,
            worker: 0,
            new_src,
            new_dst,
        };
        let k = key(p, inside);
        self.frags.put(k, self.now as u64, d);
        self.first_seen.note(k);
    }

    /// Remembers that a first fragment from outside went to worker `w`.
    pub(crate) fn frag_record_owner(&mut self, p: &Pkt, w: u16) {
        let d = Done {
            kind: 2,
            worker: w,
            new_src: 0,
            new_dst: 0,
        };
        let k = key(p, false);
        self.frags.put(k, self.now as u64, d);
        self.first_seen.note(k);
    }

    /// A non-first fragment: do what was done to its first fragment.
    pub(crate) fn frag_nonfirst(
        &mut self,
        f: &mut [u8],
        p: &Pkt,
        meta: &mut PktMeta,
        inside: bool,
    ) -> Verdict {
        let Some(e) = self
            .frags
            .get(&key(p, inside), self.now as u64, FRAG_TTL_MS as u64)
        else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn k(id: u16) -> FragKey {
        FragKey {
            src: 0x0a00_0002,
            dst: 0xc000_0201,
            id,
            proto: 17,
            dir: true,
        }
    }

    #[test]
    fn a_release_looks_at_the_datagrams_whose_first_fragment_came_or_all_past_the_limit() {
        let mut s = FirstSeen::default();
        assert!(!s.any() && !s.may_have(&k(1)));
        s.note(k(1));
        s.note(k(2));
        assert!(s.any() && s.may_have(&k(1)) && s.may_have(&k(2)));
        assert!(!s.may_have(&k(3)), "another datagram");
        assert!(
            !s.may_have(&FragKey { dir: false, ..k(1) }),
            "the other direction"
        );
        for id in 3..=(FIRST_SEEN_MAX as u16 + 1) {
            s.note(k(id));
        }
        assert!(
            s.may_have(&k(999)),
            "past the limit every held fragment is looked up"
        );
        s.clear();
        assert!(!s.any() && !s.may_have(&k(1)));
    }
}
