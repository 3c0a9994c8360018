//! Hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8): an inside host reaching another inside host
//! through its outside address. The packet is first translated inside-to-outside (its source
//! becomes the sender's outside endpoint, as REQ-9 b requires), then processed as if it had
//! arrived from outside, by the worker owning the destination mapping — here, or through a
//! hand-off marked `aux::HAIRPIN`. Filtering applies as to any outside packet.

use dpdk::PktMeta;
use pollfwd_pipeline::Verdict;

use super::pkt::{PROTO_ICMP, PROTO_TCP, PROTO_UDP, Pkt};
use super::{NatCore, aux};

impl NatCore {
    /// Second half of hairpinning for a packet `q` already translated inside-to-outside.
    pub(crate) fn hairpin(&mut self, f: &mut [u8], q: &Pkt, meta: &mut PktMeta) -> Verdict {
        let owner = match q.proto {
            PROTO_TCP | PROTO_UDP => self.outside_owner(q.proto, q.dst, q.dport),
            PROTO_ICMP => self.outside_owner(PROTO_ICMP, q.dst, q.sport),
            _ => None,
        };
        match owner {
            Some(o) if self.multi && o != self.p.me => {
                meta.aux |= aux::HAIRPIN;
                self.handoff(meta, o)
            }
            _ => self.out2in_owned(f, q, meta, true),
        }
    }
}
