//! Multipath routes in the fast loops. A route with several next hops (ECMP, [`super::ecmp`])
//! sends each flow to the member its hash picks, so the one-route memo ([`super::Memo`]) never
//! holds it; without this, every packet of such a route took the general path (about 160
//! cycles a packet against 15: docs/performance.md, "ECMP"). The group memo holds one group's
//! route and the MACs of the members the general path has resolved; a packet the fast loop
//! sends along it is hashed as the general path hashes it ([`super::ecmp::packet_hash4`]'s
//! fields, from the words the loop loaded), and leaves for the general path when its member's
//! MACs are not known yet (which resolves them, and the memo learns them: [`GroupMemo::learn`]).
//!
//! The group memo lives like the route memo: at most [`super::MEMO_MS`] after its oldest
//! lookup, forgotten with it (a new table or configuration, ARP teaching the stage
//! anything), and learns nothing while packets are parked for ARP (the general path's rule
//! for the route memo: packets to a next hop with parked packets queue behind them) nor for
//! a member without a gateway (an on-link member, whose next hop is each destination).

use dpdk::Mbuf;
use dpdk::fib::{FibView, RouteKey};

use super::chained::{mark_forwarded, parsed_untagged, takes_parsed};
use super::ecmp::{BUCKETS, Group, MAX_PATHS, flow_hash4, has_ports};
use super::fast::takes_plain;
use super::table::Hop;
use super::{Forward, NO_HOP};
use crate::wire::{self, ether};

/// One multipath route and the Ethernet addresses of its resolved members.
#[derive(Clone, Copy)]
pub(super) struct GroupMemo {
    /// The route's next-hop id ([`NO_HOP`]: empty).
    pub hop: u32,
    /// Its group in the current table.
    pub group: u32,
    /// The members' port (one for all: forward.md, "Limits").
    pub port: u16,
    /// Bit `j`: `macs[j]` holds member `j`'s next-hop and egress MACs.
    pub known: u32,
    pub macs: [[u8; 12]; MAX_PATHS],
    /// TSC when the first member was learnt.
    pub born: u64,
}

impl GroupMemo {
    pub const EMPTY: GroupMemo = GroupMemo {
        hop: NO_HOP,
        group: 0,
        port: u16::MAX,
        known: 0,
        macs: [[0; 12]; MAX_PATHS],
        born: 0,
    };

    /// Records what the general path resolved for a packet of route `hop` (group `group`,
    /// member `j`, out of `port`): `macs` as looked up at TSC `seen`. A memo of another route
    /// (or an empty one) starts afresh; the memo's age is its oldest lookup's.
    #[inline]
    pub fn learn(
        &mut self,
        (hop, group): (u32, u32),
        j: usize,
        port: u16,
        macs: [u8; 12],
        seen: u64,
    ) {
        if self.hop != hop || self.port != port {
            *self = GroupMemo {
                hop,
                group,
                port,
                known: 0,
                macs: [[0; 12]; MAX_PATHS],
                born: seen,
            };
        }
        self.macs[j] = macs;
        self.known |= 1 << j;
        self.born = self.born.min(seen);
    }
}

/// The flow hash of a plain IPv4 packet as [`super::ecmp::packet_hash4`] computes it: `w` its
/// header's words, `l4` the frame's bytes after a 20-byte header.
#[inline(always)]
fn hash_of(w: &wire::ipv4::Words, l4: &[u8], symmetric: bool) -> u32 {
    // Flags and fragment offset: bytes 20..22 of the frame; a fragment hashes without ports.
    let frag = ((w.q14 >> 48) as u16).swap_bytes() & 0x3fff;
    let proto = w.protocol();
    let ports = match l4.first_chunk::<4>() {
        Some(p) if frag == 0 && has_ports(proto) => u32::from_be_bytes(*p),
        _ => 0,
    };
    flow_hash4(w.src(), w.dst(), proto, ports, symmetric)
}

/// What a run along the group memo's route uses.
pub(super) struct GroupRun<'a, 'l> {
    pub fib: &'a FibView<'l>,
    pub key: RouteKey,
    pub buckets: &'a [u8; BUCKETS],
    pub memo: &'a GroupMemo,
    pub frame_max: u32,
    pub symmetric: bool,
    /// Packets sent to each member by this run.
    pub counts: [u32; MAX_PATHS],
}

impl<'a, 'l> GroupRun<'a, 'l> {
    /// The run for `gm` (a non-empty memo) in `fwd`'s current table.
    #[inline(always)]
    pub fn new(fwd: &'a Forward, fib: &'a FibView<'l>, gm: &'a GroupMemo) -> Self {
        let group = fwd.table.group(gm.group);
        GroupRun {
            fib,
            key: fib.key(gm.hop),
            buckets: &group.buckets,
            memo: gm,
            frame_max: fwd.frame_max(gm.port),
            symmetric: fwd.shared.params.ecmp_symmetric,
            counts: [0; MAX_PATHS],
        }
    }

    /// The member of a packet with flow hash `h`, if its MACs are known.
    #[inline(always)]
    fn member(&self, h: u32) -> Option<usize> {
        let j = self.buckets[h as usize % BUCKETS] as usize;
        (self.memo.known & (1 << j) != 0).then_some(j)
    }

    /// The untagged fast loop's run ([`super::fast`]'s `Run::forward`, the same tests)
    /// along the group's route: returns how many packets from the start of `pkts` it
    /// forwarded and their bytes.
    #[inline(always)]
    pub fn forward(&mut self, pkts: &mut [Mbuf]) -> (usize, u64) {
        let mut i = 0;
        let mut rx_bytes = 0u64;
        for m in pkts {
            let pkt_len = m.pkt_len();
            let d = m.data_mut();
            let frame_len = (pkt_len as usize).max(d.len());
            let Some((h, l4)) = d.split_first_chunk_mut::<{ wire::ipv4::WORDS_LEN }>() else {
                break;
            };
            let w = wire::ipv4::Words::load(h);
            if !takes_plain(
                h[0],
                &w,
                (pkt_len, frame_len),
                self.frame_max,
                (self.fib, self.key),
            ) {
                break;
            }
            let Some(j) = self.member(hash_of(&w, l4, self.symmetric)) else {
                break;
            };
            w.store_ttl_decremented(h);
            ether::Frame::new_unchecked(&mut h[..]).set_addrs(&self.memo.macs[j]);
            self.counts[j] += 1;
            rx_bytes += pkt_len as u64;
            i += 1;
        }
        (i, rx_bytes)
    }

    /// The chained loop's run ([`super::chained`]'s, the same tests) along the group's
    /// route: returns how many packets from the start of `pkts` it forwarded.
    #[inline(always)]
    pub fn forward_meta(&mut self, pkts: &mut [Mbuf]) -> usize {
        let mut i = 0;
        for m in pkts {
            let (d, meta) = m.data_and_meta_mut();
            if !parsed_untagged(meta) {
                break;
            }
            let Some((h, l4)) = d.split_first_chunk_mut::<{ wire::ipv4::WORDS_LEN }>() else {
                break;
            };
            let w = wire::ipv4::Words::load(h);
            if !takes_parsed(meta, h[0], &w, self.frame_max, (self.fib, self.key)) {
                break;
            }
            // The general path hashes the header as it is in the packet, options and all:
            // an options header takes it (its ports are further on).
            if w.q14 as u8 != 0x45 {
                break;
            }
            let Some(j) = self.member(hash_of(&w, l4, self.symmetric)) else {
                break;
            };
            w.store_ttl_decremented(h);
            ether::Frame::new_unchecked(&mut h[..]).set_addrs(&self.memo.macs[j]);
            mark_forwarded(meta, self.memo.port, self.memo.hop as u16);
            self.counts[j] += 1;
            i += 1;
        }
        i
    }

    /// Adds the run's packets to the group's per-member counters.
    #[inline]
    pub fn count(&self, group: &Group<Hop>, worker: usize) {
        for (j, &c) in self.counts.iter().enumerate() {
            if c != 0 {
                group.count_n(worker, j, c as u64);
            }
        }
    }
}
