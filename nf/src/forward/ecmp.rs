//! Equal-cost multipath: next-hop groups and the flow hash that picks a group's member.
//!
//! A prefix with several next hops compiles to one next-hop id in the LPM/FIB whose hop is a
//! group ([`super::table::Hop::Group`], [`super::table6::Hop6::Group`]). A group holds its
//! members and a table of [`BUCKETS`] buckets, each naming a member; a packet's flow hash
//! ([`flow_hash4`], [`flow_hash6`]) picks a bucket. Buckets are shared out evenly and kept
//! stable across table rebuilds ([`spread`]: resilient hashing): a member that leaves gives
//! only its own buckets to the others, a member that joins takes an equal share from each,
//! and every other flow keeps its next hop.
//!
//! Each group counts the packets sent to each member, per worker (one slot per worker and
//! member, written by that worker only: no shared cache line between workers).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets per group.
pub const BUCKETS: usize = 256;

/// Most next hops of one route.
pub const MAX_PATHS: usize = 16;

/// Workers whose per-member packet counts a group keeps apart, at most (more share the last
/// slot). A table's groups have one slot per worker of the configuration
/// ([`super::table::FwdTable::build_after`]'s `workers`): 128 bytes each per group.
pub const MAX_WORKERS: usize = 64;

/// A next-hop group: members and the bucket table that shares flows out between them.
pub struct Group<H> {
    pub members: Vec<H>,
    pub buckets: [u8; BUCKETS],
    /// Packets per worker and member: `counts[worker][member]`. Shared with the group of the
    /// same prefix and members in the tables before and after (a route change elsewhere, or
    /// the FIB sync's tables changed in place, keep counting into the same slots).
    counts: Arc<[Slot]>,
}

/// One worker's per-member counters, on cache lines of their own.
#[repr(align(128))]
#[derive(Default)]
struct Slot([AtomicU64; MAX_PATHS]);

impl<H: Copy + Ord> Group<H> {
    /// A group of `members` (at most [`MAX_PATHS`], at least one). `prev`: the group this
    /// one replaces (same prefix in the table before), whose buckets and counts carry over
    /// for the members both have (same members: the very same counters; others: the counts
    /// so far are copied, and packets counted in the old table after the copy are lost).
    /// `workers`: the counter slots of a new set of counters (1..=[`MAX_WORKERS`]).
    pub fn new(members: Vec<H>, prev: Option<&Group<H>>, workers: usize) -> Group<H> {
        assert!(!members.is_empty() && members.len() <= MAX_PATHS);
        let buckets = spread(prev.map(|p| (&p.members[..], &p.buckets)), &members);
        if let Some(p) = prev.filter(|p| p.members == members) {
            return Group {
                members,
                buckets,
                counts: p.counts.clone(),
            };
        }
        let counts: Arc<[Slot]> = (0..workers.clamp(1, MAX_WORKERS))
            .map(|_| Slot::default())
            .collect();
        if let Some(p) = prev {
            for (w, slot) in p.counts.iter().enumerate().take(counts.len()) {
                for (j, m) in p.members.iter().enumerate() {
                    if let Some(k) = members.iter().position(|x| x == m) {
                        counts[w].0[k].store(slot.0[j].load(Ordering::Relaxed), Ordering::Relaxed);
                    }
                }
            }
        }
        Group {
            members,
            buckets,
            counts,
        }
    }

    /// The member index for a flow hash.
    #[inline(always)]
    pub fn pick(&self, hash: u32) -> usize {
        self.buckets[(hash as usize) % BUCKETS] as usize
    }

    /// Counts a packet sent to member `k` by `worker` (only that worker writes its slot: a
    /// load and a store, no locked instruction). Workers beyond the slots (more than
    /// [`MAX_WORKERS`]) share the last one, with an atomic add.
    #[inline(always)]
    pub fn count(&self, worker: usize, k: usize) {
        self.count_n(worker, k, 1);
    }

    /// Counts `n` packets sent to member `k` by `worker` ([`Group::count`] for a run of them).
    #[inline(always)]
    pub fn count_n(&self, worker: usize, k: usize, n: u64) {
        let len = self.counts.len();
        if worker + 1 < len || len < MAX_WORKERS {
            let c = &self.counts[worker.min(len - 1)].0[k];
            c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        } else {
            self.counts[len - 1].0[k].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Packets sent to each member, all workers summed.
    pub fn packets(&self) -> Vec<u64> {
        (0..self.members.len())
            .map(|k| {
                self.counts
                    .iter()
                    .map(|s| s.0[k].load(Ordering::Relaxed))
                    .sum()
            })
            .collect()
    }
}

/// The next-hop groups of a compiled table, by prefix: group `g` is what a
/// [`super::table::Hop::Group`]`(g)` names. A table changed in place
/// ([`super::table::FwdTable::update`]) replaces a prefix's group in its slot, and reuses the
/// slot of a prefix that lost its group for the next new one.
pub struct Groups<P, H> {
    /// Counter slots of new groups (workers).
    workers: usize,
    groups: Vec<Group<H>>,
    /// The prefix of each slot (None: free).
    prefix: Vec<Option<P>>,
    at: std::collections::HashMap<P, u32>,
    free: Vec<u32>,
}

impl<P, H> Groups<P, H> {
    /// No group yet; new ones count for `workers` workers ([`Group::new`]).
    pub fn new(workers: usize) -> Self {
        Groups {
            workers,
            groups: Vec::new(),
            prefix: Vec::new(),
            at: std::collections::HashMap::new(),
            free: Vec::new(),
        }
    }
}

impl<P: Copy + Eq + std::hash::Hash + std::fmt::Display, H: Copy + Ord> Groups<P, H> {
    /// Counter slots of new groups.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Group `g`.
    #[inline(always)]
    pub fn get(&self, g: u32) -> &Group<H> {
        &self.groups[g as usize]
    }

    /// The group of `prefix`, if it has one.
    pub fn of(&self, prefix: P) -> Option<&Group<H>> {
        self.at.get(&prefix).map(|&g| &self.groups[g as usize])
    }

    /// Makes `members` the group of `prefix` (in its slot, or a new one) and returns its
    /// slot; `prev`: the group it replaces ([`Group::new`]).
    pub fn set(
        &mut self,
        prefix: P,
        members: Vec<H>,
        prev: Option<&Group<H>>,
    ) -> Result<u32, String> {
        let g = Group::new(members, prev, self.workers);
        self.place(prefix, g)
    }

    /// [`Groups::set`] for a table changed in place: the group replaced is the one of
    /// `prefix` in `cur` (the table in force) when it has one, else this table's own.
    pub fn replace(
        &mut self,
        prefix: P,
        members: Vec<H>,
        cur: Option<&Group<H>>,
    ) -> Result<u32, String> {
        let g = Group::new(members, cur.or(self.of(prefix)), self.workers);
        self.place(prefix, g)
    }

    /// Puts `g` in the slot of `prefix` (or a new one) and returns the slot.
    fn place(&mut self, prefix: P, g: Group<H>) -> Result<u32, String> {
        if let Some(&k) = self.at.get(&prefix) {
            self.groups[k as usize] = g;
            return Ok(k);
        }
        let k = match self.free.pop() {
            Some(k) => {
                self.groups[k as usize] = g;
                self.prefix[k as usize] = Some(prefix);
                k
            }
            None => {
                let k = u32::try_from(self.groups.len()).map_err(|_| {
                    format!("route {prefix}: too many routes with several next hops")
                })?;
                self.groups.push(g);
                self.prefix.push(Some(prefix));
                k
            }
        };
        self.at.insert(prefix, k);
        Ok(k)
    }

    /// `prefix` has no group any more (deleted, or a single next hop now).
    pub fn remove(&mut self, prefix: P) {
        if let Some(k) = self.at.remove(&prefix) {
            self.prefix[k as usize] = None;
            self.free.push(k);
        }
    }

    /// Every group with its prefix.
    pub fn iter(&self) -> impl Iterator<Item = (P, &Group<H>)> {
        self.prefix
            .iter()
            .zip(&self.groups)
            .filter_map(|(p, g)| p.map(|p| (p, g)))
    }
}

/// The bucket table of a group of `members`: each member gets `BUCKETS / n` or one more
/// bucket. With `old` (the members and buckets of the group this one replaces), a bucket
/// keeps its member when that member is still in the group and holds no more than its
/// share; the buckets of members that left, and the excess of the others, go to the members
/// with the fewest buckets. So removing a member moves only its buckets, and adding one
/// moves only the buckets it takes. Ties go to the smallest member (by value, not by its place
/// in the list): without `old`, the table depends on the set of members alone, so two
/// prefixes with the same next hops listed in another order, or two boxes, hash a flow to
/// the same member (what `ecmp_hash = "symmetric"` needs for both directions of a flow).
pub fn spread<H: Ord>(old: Option<(&[H], &[u8; BUCKETS])>, members: &[H]) -> [u8; BUCKETS] {
    let n = members.len();
    assert!(n > 0 && n <= MAX_PATHS);
    let mut by_value: Vec<usize> = (0..n).collect();
    by_value.sort_by(|&a, &b| members[a].cmp(&members[b]));
    // The first `BUCKETS % n` members that reach it may hold `BUCKETS / n + 1`.
    let base = BUCKETS / n;
    let mut extra = BUCKETS % n;
    let mut count = [0usize; MAX_PATHS];
    let mut out = [u8::MAX; BUCKETS];
    if let Some((om, ob)) = old {
        // Old member index -> new index.
        let map: Vec<Option<usize>> = om
            .iter()
            .map(|m| members.iter().position(|x| x == m))
            .collect();
        for (b, &o) in ob.iter().enumerate() {
            let Some(&Some(k)) = map.get(o as usize) else {
                continue;
            };
            if count[k] < base {
                count[k] += 1;
                out[b] = k as u8;
            } else if count[k] == base && extra > 0 {
                count[k] += 1;
                extra -= 1;
                out[b] = k as u8;
            }
        }
    }
    for slot in out.iter_mut().filter(|s| **s == u8::MAX) {
        // The member with the fewest buckets (the smallest first).
        let k = by_value
            .iter()
            .copied()
            .min_by_key(|&k| count[k])
            .expect("n > 0");
        count[k] += 1;
        *slot = k as u8;
    }
    out
}

/// Final mix of a 64-bit value (MurmurHash3's fmix64): every input bit affects every output
/// bit, so the low bits that pick a bucket spread well.
#[inline(always)]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The flow hash of an IPv4 packet: source, destination, protocol and ports (`ports` =
/// source port << 16 | destination port; 0 for a packet without them). `symmetric`: both
/// directions of a flow hash alike (the addresses and the ports are combined with XOR, which
/// does not depend on their order).
#[inline(always)]
pub fn flow_hash4(src: u32, dst: u32, proto: u8, ports: u32, symmetric: bool) -> u32 {
    let (a, p) = if symmetric {
        ((src ^ dst) as u64, (ports >> 16) ^ (ports & 0xffff))
    } else {
        ((src as u64) << 32 | dst as u64, ports)
    };
    let h = fmix64(a ^ ((p as u64) << 8 | proto as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    (h >> 32) as u32 ^ h as u32
}

/// The flow hash of an IPv6 packet ([`flow_hash4`] over the addresses folded to 64 bits).
#[inline(always)]
pub fn flow_hash6(src: u128, dst: u128, proto: u8, ports: u32, symmetric: bool) -> u32 {
    let fold = |a: u128| (a >> 64) as u64 ^ a as u64;
    let (a, p) = if symmetric {
        (fold(src ^ dst), (ports >> 16) ^ (ports & 0xffff))
    } else {
        (fold(src) ^ fold(dst).rotate_left(29), ports)
    };
    let h = fmix64(a ^ ((p as u64) << 8 | proto as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    (h >> 32) as u32 ^ h as u32
}

/// Whether a protocol's first four payload bytes are source and destination ports (TCP,
/// UDP, SCTP, UDP-Lite).
#[inline(always)]
pub fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132 | 136)
}

/// The flow hash of the IPv4 packet whose header is at `d[l3..]` (checked by the caller).
/// Ports count for TCP, UDP, SCTP and UDP-Lite when the packet is not a fragment (every
/// fragment of a datagram hashes alike, with ports 0).
#[inline]
pub fn packet_hash4(d: &[u8], l3: usize, symmetric: bool) -> u32 {
    let Some(h) = d.get(l3..l3 + 20) else {
        return 0;
    };
    let w = |o: usize| u32::from_be_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
    let proto = h[9];
    let frag = u16::from_be_bytes([h[6], h[7]]) & 0x3fff;
    let l4 = l3 + (h[0] as usize & 0xf) * 4;
    let ports = match d.get(l4..l4 + 4) {
        Some(p) if frag == 0 && has_ports(proto) => u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
        _ => 0,
    };
    flow_hash4(w(12), w(16), proto, ports, symmetric)
}

/// The flow hash of the IPv6 packet whose header is at `d[l3..]`: addresses, the fixed
/// header's next header, and the ports when that is TCP, UDP, SCTP or UDP-Lite (a packet with
/// extension headers hashes on its addresses and first next header).
#[inline]
pub fn packet_hash6(d: &[u8], l3: usize, symmetric: bool) -> u32 {
    let Some(h) = d.get(l3..l3 + 40) else {
        return 0;
    };
    let a = |o: usize| u128::from_be_bytes(h[o..o + 16].try_into().expect("16 bytes"));
    let proto = h[6];
    let ports = match d.get(l3 + 40..l3 + 44) {
        Some(p) if has_ports(proto) => u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
        _ => 0,
    };
    flow_hash6(a(8), a(24), proto, ports, symmetric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(b: &[u8; BUCKETS], n: usize) -> Vec<usize> {
        (0..n)
            .map(|k| b.iter().filter(|&&x| x as usize == k).count())
            .collect()
    }

    #[test]
    fn workers_beyond_the_slots_share_the_last_and_lose_nothing() {
        let g = Group::new(vec![1u32, 2], None, MAX_WORKERS + 8);
        std::thread::scope(|s| {
            for w in MAX_WORKERS - 2..MAX_WORKERS + 6 {
                let g = &g;
                s.spawn(move || {
                    for _ in 0..10_000 {
                        g.count(w, 1);
                    }
                });
            }
        });
        assert_eq!(g.packets(), vec![0, 80_000]);
    }

    #[test]
    fn a_new_table_depends_on_the_members_not_their_order() {
        let a = [7u32, 3, 11, 5];
        let b = [11u32, 5, 7, 3];
        let (ta, tb) = (spread(None, &a), spread(None, &b));
        for k in 0..BUCKETS {
            assert_eq!(a[ta[k] as usize], b[tb[k] as usize], "bucket {k}");
        }
        // Carried over from the same members in another order: the same table too.
        let tc = spread(Some((&a, &ta)), &b);
        for k in 0..BUCKETS {
            assert_eq!(b[tc[k] as usize], a[ta[k] as usize], "bucket {k}");
        }
    }

    #[test]
    fn buckets_are_shared_evenly() {
        for n in 1..=MAX_PATHS {
            let m: Vec<u32> = (0..n as u32).collect();
            let b = spread(None, &m);
            let s = shares(&b, n);
            assert_eq!(s.iter().sum::<usize>(), BUCKETS);
            let (lo, hi) = (s.iter().min().unwrap(), s.iter().max().unwrap());
            assert!(hi - lo <= 1, "{n} members: {s:?}");
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_buckets() {
        let old = [10u32, 11, 12];
        let ob = spread(None, &old);
        let new = [10u32, 12];
        let nb = spread(Some((&old, &ob)), &new);
        let mut moved = 0;
        for b in 0..BUCKETS {
            let was = old[ob[b] as usize];
            let is = new[nb[b] as usize];
            if was != 11 {
                assert_eq!(was, is, "bucket {b} moved off a member that stayed");
            } else {
                moved += 1;
            }
        }
        assert_eq!(moved, shares(&ob, 3)[1]);
        let s = shares(&nb, 2);
        assert!(s[0].abs_diff(s[1]) <= 1, "{s:?}");
        // Members given in another order keep their buckets too.
        let swapped = [12u32, 10];
        let sb = spread(Some((&old, &ob)), &swapped);
        for b in 0..BUCKETS {
            if old[ob[b] as usize] != 11 {
                assert_eq!(old[ob[b] as usize], swapped[sb[b] as usize]);
            }
        }
    }

    #[test]
    fn adding_a_member_takes_a_share_from_each() {
        let old = [10u32, 12];
        let ob = spread(None, &old);
        let new = [10u32, 11, 12];
        let nb = spread(Some((&old, &ob)), &new);
        let s = shares(&nb, 3);
        assert!(
            s.iter().max().unwrap() - s.iter().min().unwrap() <= 1,
            "{s:?}"
        );
        for b in 0..BUCKETS {
            let is = new[nb[b] as usize];
            // A bucket either stays with its member or goes to the new one.
            assert!(is == old[ob[b] as usize] || is == 11, "bucket {b}");
        }
        let moved = (0..BUCKETS).filter(|&b| new[nb[b] as usize] == 11).count();
        assert_eq!(moved, s[1]);
        // Unchanged members: nothing moves.
        assert_eq!(spread(Some((&new, &nb)), &new), nb);
    }

    #[test]
    fn counts_carry_over_for_members_that_stay() {
        let g = Group::new(vec![1u32, 2, 3], None, 2);
        g.count(0, 0);
        g.count(1, 2);
        g.count(1, 2);
        assert_eq!(g.packets(), vec![1, 0, 2]);
        let h = Group::new(vec![3u32, 1], Some(&g), 2);
        assert_eq!(h.packets(), vec![2, 1]);
        // Same members: one set of counters, whichever table counts.
        let k = Group::new(vec![3u32, 1], Some(&h), 2);
        assert_eq!(k.buckets, h.buckets);
        h.count(0, 0);
        k.count(1, 1);
        assert_eq!((h.packets(), k.packets()), (vec![3, 2], vec![3, 2]));
    }

    #[test]
    fn hashes_spread_and_the_symmetric_one_ignores_direction() {
        let (a, b) = (0xc000_0201u32, 0xcb00_7109u32);
        let ports = |s: u32, d: u32| s << 16 | d;
        assert_eq!(
            flow_hash4(a, b, 6, ports(1234, 80), true),
            flow_hash4(b, a, 6, ports(80, 1234), true)
        );
        assert_ne!(
            flow_hash4(a, b, 6, ports(1234, 80), false),
            flow_hash4(b, a, 6, ports(80, 1234), false)
        );
        let (x, y) = (0x2001_0db8_u128 << 96 | 1, 0x2001_0db8_0002_u128 << 80 | 7);
        assert_eq!(
            flow_hash6(x, y, 17, ports(5000, 53), true),
            flow_hash6(y, x, 17, ports(53, 5000), true)
        );
        assert_ne!(
            flow_hash6(x, y, 17, ports(5000, 53), false),
            flow_hash6(y, x, 17, ports(53, 5000), false)
        );
        // 4096 flows (source ports) over 3 members: each within 20% of a third.
        for sym in [false, true] {
            let g = Group::new(vec![0u8, 1, 2], None, 1);
            let mut n4 = [0usize; 3];
            let mut n6 = [0usize; 3];
            for sp in 0..4096u32 {
                n4[g.pick(flow_hash4(a, b, 17, ports(10000 + sp, 53), sym))] += 1;
                n6[g.pick(flow_hash6(x, y, 6, ports(10000 + sp, 443), sym))] += 1;
            }
            for c in n4.iter().chain(&n6) {
                assert!((1092..=1638).contains(c), "{n4:?} {n6:?}");
            }
        }
    }
}
