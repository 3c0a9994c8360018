//! Burst-level prefetching, VPP style: before translating a burst, NAT computes each packet's
//! lookup hash and prefetches its index slot, then prefetches the session the slot points at,
//! so the misses of the whole burst overlap instead of costing a memory round trip each, one
//! packet after the other. Pure hints: a wrong guess costs nothing but the prefetch.

use dpdk::PktMeta;

use super::pkt::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use super::table::{NONE, key_hash};
use super::{DIR_IN, DIR_NONE, NatCore, aux};
use crate::wire::{ether, icmp, ipv4, udp};

/// Most packets prefetched at once.
pub const PREFETCH_MAX: usize = 64;

/// What the first pass found for one packet: the hash and which index (0 none, 1 i2o, 2 o2i).
#[derive(Debug, Clone, Copy, Default)]
pub struct Hint {
    h: u64,
    which: u8,
}

impl NatCore {
    /// First pass: hash the flow key of frame `i` of the burst and prefetch its index slot.
    /// Reads only what it checks is present; anything unusual is simply not prefetched.
    #[inline]
    pub fn prefetch_index(&mut self, i: usize, f: &[u8], meta: &PktMeta) {
        if i >= PREFETCH_MAX {
            return;
        }
        self.hints[i] = Hint::default();
        let d = match self.dir.get(meta.in_port as usize) {
            Some(&d) if d != DIR_NONE && meta.aux & aux::HAIRPIN == 0 => d,
            _ => return,
        };
        let min = ether::HEADER_LEN + ipv4::MIN_HEADER_LEN + 8;
        if f.len() < min || ether::Frame::new_unchecked(f).ethertype_raw() != ether::ethertype::IPV4
        {
            return;
        }
        let l3 = ether::HEADER_LEN;
        let ip = ipv4::Packet::new_unchecked(&f[l3..]);
        let l4 = l3 + ip.header_len();
        let proto = ip.protocol();
        if f.len() < l4 + 8 || ip.frag_offset() != 0 {
            return;
        }
        let (src, dst) = (ip.src(), ip.dst());
        let l4b = &f[l4..];
        let (sp, dp) = match proto {
            // The ports are the first two fields of TCP and UDP alike.
            PROTO_TCP | PROTO_UDP => {
                let u = udp::Packet::new_unchecked(l4b);
                (u.src_port(), u.dst_port())
            }
            PROTO_ICMP
                if matches!(
                    l4b[icmp::field::TYPE],
                    icmp::msg::ECHO_REPLY | icmp::msg::ECHO_REQUEST
                ) =>
            {
                (icmp::Packet::new_unchecked(l4b).ident(), 0)
            }
            _ => return,
        };
        let (h, which, tab) = if d == DIR_IN {
            (key_hash(proto, src, sp, dst, dp, self.seed), 1, &self.i2o)
        } else if proto == PROTO_ICMP {
            (key_hash(proto, dst, sp, src, 0, !self.seed), 2, &self.o2i)
        } else {
            (key_hash(proto, dst, dp, src, sp, !self.seed), 2, &self.o2i)
        };
        tab.prefetch(h);
        self.hints[i] = Hint { h, which };
    }

    /// The flow key hash the first pass computed for packet `i`, if it computed one: the
    /// fast path's lookup uses it ([`NatCore::fast`]).
    #[inline]
    pub fn hint_hash(&self, i: usize) -> Option<u64> {
        self.hints.get(i).filter(|h| h.which != 0).map(|h| h.h)
    }

    /// Second pass: prefetch the session the slot of packet `i` points at.
    #[inline]
    pub fn prefetch_session(&self, i: usize) {
        let Some(hint) = self.hints.get(i) else {
            return;
        };
        let idx = match hint.which {
            1 => self.i2o.peek(hint.h),
            2 => self.o2i.peek(hint.h),
            _ => NONE,
        };
        if let Some(s) = self.sess.s.get(idx as usize) {
            dpdk::prefetch(s);
        }
    }
}
