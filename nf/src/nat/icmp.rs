//! ICMP error translation (RFC 5508 section 4, REQ-3 and REQ-4): an error about a
//! translated flow carries that flow's packet (IP header + at least 8 bytes). NAT finds the
//! session from the embedded packet and rewrites both the outer header and the embedded
//! one — addresses, port or query identifier, the embedded IP header checksum and, when its
//! bytes are present, the embedded TCP/UDP/ICMP checksum — then updates the ICMP checksum
//! for every word it changed. Errors for which no session exists are dropped silently
//! (REQ-4 b). An error does not refresh its session, nor remove it (RFC 4787 REQ-12). ICMP
//! queries are sessions keyed by their identifier (RFC 5508 REQ-1, REQ-2), see `in2out`.

use dpdk::PktMeta;
use pollfwd_pipeline::{DropReason, Verdict};

use super::NatCore;
use super::pkt::{self, PROTO_ICMP, Pkt, rewrite};

impl NatCore {
    /// An error from outside about a packet this NAT sent out: the embedded packet's source
    /// is our outside endpoint, its destination the remote.
    pub(crate) fn o2i_icmp_error(&mut self, f: &mut [u8], p: &Pkt, meta: &mut PktMeta) -> Verdict {
        let inner = match pkt::parse_inner(f, p) {
            Ok(i) => i,
            Err(r) => return Verdict::Drop(r),
        };
        let (lport, rport) = if inner.proto == PROTO_ICMP {
            (inner.sport, 0)
        } else {
            (inner.sport, inner.dport)
        };
        let Some(si) = self.find_o2i(inner.proto, inner.src, lport, inner.dst, rport) else {
            return Verdict::Drop(DropReason::NatNoSession);
        };
        let s = self.sess.s[si as usize];
        rewrite::ip_addr(f, p.l3, false, s.in_addr);
        let d = self.rewrite_inner(f, &inner, true, s.in_addr, s.in_port);
        rewrite::icmp_csum(f, p.l4, d);
        meta.dst_ip = s.in_addr;
        meta.flags |= dpdk::meta::flags::MODIFIED | dpdk::meta::flags::NATTED;
        self.tally.icmp_errors += 1;
        Verdict::Continue
    }

    /// An error from inside about a packet that came in through the NAT: the embedded
    /// packet's destination is the inside endpoint, its source the remote.
    pub(crate) fn i2o_icmp_error(&mut self, f: &mut [u8], p: &Pkt, meta: &mut PktMeta) -> Verdict {
        let inner = match pkt::parse_inner(f, p) {
            Ok(i) => i,
            Err(r) => return Verdict::Drop(r),
        };
        let (lport, rport) = if inner.proto == PROTO_ICMP {
            (inner.sport, 0)
        } else {
            (inner.dport, inner.sport)
        };
        let Some(si) = self.find_i2o(inner.proto, inner.dst, lport, inner.src, rport) else {
            return Verdict::Drop(DropReason::NatNoSession);
        };
        let s = self.sess.s[si as usize];
        // The outer source (the inside host, or an inside router) leaves as the mapping's
        // outside address.
        rewrite::ip_addr(f, p.l3, true, s.out_addr);
        let d = self.rewrite_inner(f, &inner, false, s.out_addr, s.out_port);
        rewrite::icmp_csum(f, p.l4, d);
        meta.src_ip = s.out_addr;
        meta.flags |= dpdk::meta::flags::MODIFIED | dpdk::meta::flags::NATTED;
        self.tally.icmp_errors += 1;
        if s.flags & super::table::sflag::HAIRPIN != 0 {
            // About a hairpinned packet: the error goes back inside, to the sender's worker,
            // like the packet's replies (RFC 4787 REQ-9).
            let mut q = *p;
            q.src = s.out_addr;
            let owner = self.outside_owner(inner.proto, inner.src, inner.sport);
            return match owner {
                Some(o) if self.multi && o != self.p.me => {
                    meta.aux |= super::aux::HAIRPIN;
                    self.handoff(meta, o)
                }
                _ => self.o2i_icmp_error(f, &q, meta),
            };
        }
        Verdict::Continue
    }

    /// Rewrites the embedded packet's source (`src`) or destination endpoint; returns the
    /// delta of every ICMP payload word changed.
    fn rewrite_inner(
        &self,
        f: &mut [u8],
        inner: &pkt::Inner,
        src: bool,
        addr: u32,
        port: u16,
    ) -> crate::wire::checksum::Delta {
        let old_ic = rewrite::ip_csum(f, inner.l3);
        let da = rewrite::ip_addr(f, inner.l3, src, addr);
        let new_ic = rewrite::ip_csum(f, inner.l3);
        let mut d = da.word(old_ic, new_ic);
        if inner.proto == PROTO_ICMP {
            // The query identifier; the embedded ICMP checksum covers no pseudo-header.
            d = d.merge(rewrite::icmp_id(f, inner.l4, port));
        } else {
            d = d.merge(rewrite::l4_port(
                f,
                inner.proto,
                inner.l4,
                inner.end - inner.l4,
                src,
                port,
                da,
            ));
        }
        d
    }
}
