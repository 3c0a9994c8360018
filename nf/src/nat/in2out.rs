//! Inside to outside: find the session of the 5-tuple (fast path) or create it (slow path:
//! static mapping, else the inside endpoint's existing mapping — endpoint-independent
//! mapping, RFC 4787 REQ-1 — else a new port on the host's paired pool address, REQ-2),
//! then rewrite source address and port with incremental checksum updates.

use dpdk::PktMeta;
use pollfwd_pipeline::{DropReason, Verdict};

use super::pkt::{self, Frag, IcmpKind, PROTO_ICMP, PROTO_TCP, PROTO_UDP, Pkt, rewrite};
use super::ports::proto_index;
use super::table::{CLASS_ICMP, CLASS_TCP_TRANS, CLASS_UDP, NONE, key_hash, sflag};
use super::{NatCore, Res};

impl NatCore {
    /// A packet from an inside port.
    pub(crate) fn in2out(&mut self, f: &mut [u8], p: &Pkt, meta: &mut PktMeta) -> Verdict {
        if self.no_nat(p.dst) {
            self.tally.passthrough += 1;
            return Verdict::Continue;
        }
        // The owner is the worker of the inside host; for an ICMP error about an inbound
        // packet, the host is the embedded destination.
        let host = if p.proto == PROTO_ICMP
            && p.frag == Frag::No
            && pkt::icmp_kind(p.l4_flags) == IcmpKind::Error
        {
            match pkt::parse_inner(f, p) {
                Ok(inner) => inner.dst,
                Err(r) => return Verdict::Drop(r),
            }
        } else {
            p.src
        };
        if self.multi
            && let Some(v) = self.route(meta, Some(self.inside_owner(host)))
        {
            return v;
        }
        if p.frag == Frag::NonFirst {
            return self.frag_nonfirst(f, p, meta, true);
        }
        match p.proto {
            PROTO_TCP | PROTO_UDP => self.i2o_l4(f, p, meta),
            PROTO_ICMP => match pkt::icmp_kind(p.l4_flags) {
                IcmpKind::QueryRequest | IcmpKind::QueryReply => self.i2o_l4(f, p, meta),
                IcmpKind::Error => self.i2o_icmp_error(f, p, meta),
                IcmpKind::Other => Verdict::Drop(DropReason::NatUnsupported),
            },
            _ => Verdict::Drop(DropReason::NatUnsupported),
        }
    }

    /// Finds the in2out session of (proto, inside, remote), dropping it if it expired.
    #[inline]
    pub(crate) fn find_i2o(
        &mut self,
        proto: u8,
        ia: u32,
        ip: u16,
        ra: u32,
        rp: u16,
    ) -> Option<u32> {
        // A session found expired or stale is deleted: look again, another session with
        // the same key may be behind it (a stale static one shares its key with the
        // session made under the new mapping; found by fuzzing).
        let h = key_hash(proto, ia, ip, ra, rp, self.seed);
        loop {
            let s = &self.sess.s;
            let hit = self
                .i2o
                .find(h, |i| s[i as usize].is_inside(proto, ia, ip, ra, rp));
            let hit = hit.map(|(_, i)| i);
            match self.live(hit) {
                None if hit.is_some() => continue,
                found => return found,
            }
        }
    }

    /// TCP, UDP and ICMP queries.
    fn i2o_l4(&mut self, f: &mut [u8], p: &Pkt, meta: &mut PktMeta) -> Verdict {
        let (lport, rport) = if p.proto == PROTO_ICMP {
            (p.sport, 0)
        } else {
            (p.sport, p.dport)
        };
        let si = match self.find_i2o(p.proto, p.src, lport, p.dst, rport) {
            Some(i) => i,
            None => {
                if p.proto == PROTO_ICMP && pkt::icmp_kind(p.l4_flags) == IcmpKind::QueryReply {
                    // Replies never open sessions (RFC 5508 REQ-1 allows queries from inside).
                    return Verdict::Drop(DropReason::NatNoSession);
                }
                match self.create_i2o(p.proto, p.src, lport, p.dst, rport) {
                    Ok(i) => i,
                    Err(r) => return Verdict::Drop(r),
                }
            }
        };
        let s = self.sess.s[si as usize];
        let d = rewrite::ip_addr(f, p.l3, true, s.out_addr);
        if p.proto == PROTO_ICMP {
            if s.out_port != lport {
                rewrite::icmp_id(f, p.l4, s.out_port);
            }
        } else {
            rewrite::l4_port(f, p.proto, p.l4, p.end - p.l4, true, s.out_port, d);
        }
        self.touch(si, true, p.l4_flags);
        meta.src_ip = s.out_addr;
        meta.src_port = s.out_port;
        meta.flags |= dpdk::meta::flags::MODIFIED | dpdk::meta::flags::NATTED;
        self.tally.in2out += 1;
        let mut q = *p;
        q.src = s.out_addr;
        q.sport = s.out_port;
        if s.flags & sflag::HAIRPIN != 0 {
            return self.hairpin(f, &q, meta);
        }
        if p.frag == Frag::First {
            self.frag_record(p, true, s.out_addr, p.dst);
        }
        Verdict::Continue
    }

    /// Slow path: a new session for an outbound packet.
    pub(crate) fn create_i2o(&mut self, proto: u8, ia: u32, ip: u16, ra: u32, rp: u16) -> Res<u32> {
        if let Some(h) = &self.hosts
            && h.count(ia) >= self.p.max_sessions_per_host
        {
            return Err(DropReason::NatHostLimit);
        }
        let (si, _) = self.take_slot()?;
        let pi = proto_index(proto);
        let det = if self.det.is_empty() {
            None
        } else {
            self.det.inside(ia)
        };
        let (out_addr, out_port, pool_idx, stat, rep) =
            if let Some((oa, op)) = self.statics.lookup_in(proto, ia, ip) {
                (oa, op, 0u16, true, NONE)
            } else if det.is_none() && self.p.pool.is_empty() {
                self.sess.release(si);
                return Err(DropReason::NatPortsExhausted);
            } else {
                let h = self.h_iep(proto, ia, ip);
                let s = &self.sess.s;
                let found = self.iep.find(h, |i| {
                    let x = &s[i as usize];
                    x.in_addr == ia && x.in_port == ip && x.proto == proto
                });
                match found {
                    Some((_, rep)) => {
                        let r = &self.sess.s[rep as usize];
                        (r.out_addr, r.out_port, r.pool_idx, false, rep)
                    }
                    None if let Some(b) = det => {
                        // Deterministic: the host's block, the self-inverting port first.
                        let (a, prefer) = (b.addr_index, b.preferred(ip));
                        let port = match self.det_ports.alloc_in(a, pi, b.lo, b.len, prefer) {
                            Some(port) => port,
                            None => {
                                self.expire(64);
                                match self.det_ports.alloc_in(a, pi, b.lo, b.len, prefer) {
                                    Some(port) => port,
                                    None => {
                                        self.sess.release(si);
                                        return Err(DropReason::NatBlockExhausted);
                                    }
                                }
                            }
                        };
                        self.tally.det_created += 1;
                        let idx = (self.p.pool.len() + a) as u16;
                        (b.out_addr, port, idx, false, NONE)
                    }
                    None if self.blocks.is_some() => {
                        // Port blocks: a port of the host's blocks, or a new block.
                        let a = self.pool_index_for(ia);
                        let port = match self.block_port(ia, a, pi) {
                            Some(port) => port,
                            None => {
                                self.expire(64);
                                match self.block_port(ia, a, pi) {
                                    Some(port) => port,
                                    None => {
                                        self.sess.release(si);
                                        return Err(DropReason::NatBlockExhausted);
                                    }
                                }
                            }
                        };
                        (self.p.pool[a], port, a as u16, false, NONE)
                    }
                    None => {
                        let a = self.pool_index_for(ia);
                        let port = match self.ports.alloc(a, pi) {
                            Some(port) => port,
                            None => {
                                // Ports come back as sessions expire: try that first.
                                self.expire(64);
                                match self.ports.alloc(a, pi) {
                                    Some(port) => port,
                                    None => {
                                        self.sess.release(si);
                                        return Err(DropReason::NatPortsExhausted);
                                    }
                                }
                            }
                        };
                        (self.p.pool[a], port, a as u16, false, NONE)
                    }
                }
            };
        let hairpin = self.is_outside_addr(ra);
        {
            let s = &mut self.sess.s[si as usize];
            s.proto = proto;
            s.in_addr = ia;
            s.in_port = ip;
            s.out_addr = out_addr;
            s.out_port = out_port;
            s.rem_addr = ra;
            s.rem_port = rp;
            s.pool_idx = pool_idx;
            s.class = match proto {
                PROTO_TCP => CLASS_TCP_TRANS,
                PROTO_UDP => CLASS_UDP,
                _ => CLASS_ICMP,
            };
            s.flags =
                if stat { sflag::STATIC } else { 0 } | if hairpin { sflag::HAIRPIN } else { 0 };
        }
        self.commit(si, rep);
        Ok(si)
    }
}
