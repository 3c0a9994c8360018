//! Outside to inside: packets to a pool or static address. The worker owning the session is
//! found from the destination port (its slice of the range) or the static mapping; a 5-tuple
//! hit is translated back; a miss may still be admitted by a static mapping or, for an
//! existing dynamic mapping, by the filtering mode (RFC 4787 REQ-8, RFC 5382 REQ-3):
//! endpoint-independent admits anyone, address-dependent only remote addresses the inside
//! endpoint has sent to, address-and-port-dependent nothing that missed the 5-tuple.

use dpdk::PktMeta;
use pollfwd_pipeline::{DropReason, Verdict};

use super::pkt::{self, Frag, IcmpKind, PROTO_ICMP, PROTO_TCP, PROTO_UDP, Pkt, rewrite};
use super::ports::proto_index;
use super::table::{CLASS_ICMP, CLASS_TCP_TRANS, CLASS_UDP, NONE, key_hash, sflag};
use super::{Filtering, NatCore, Res};

/// Most sessions of one mapping examined by address-dependent filtering (a bound on the
/// per-packet work; past it a packet is filtered, never wrongly admitted: docs/nat.md).
const ADF_SCAN: u32 = 256;

impl NatCore {
    /// A packet from an outside port.
    pub(crate) fn out2in(&mut self, f: &mut [u8], p: &Pkt, meta: &mut PktMeta) -> Verdict {
        if !self.is_outside_addr(p.dst) {
            // Not ours (the appliance itself, or routed traffic): untouched.
            self.tally.passthrough += 1;
            return Verdict::Continue;
        }
        if self.multi && meta.aux & super::aux::HANDED == 0 {
            let owner = match (p.frag, p.proto) {
                (Frag::NonFirst, _) => return self.frag_nonfirst(f, p, meta, false),
                (_, PROTO_TCP | PROTO_UDP) => self.outside_owner(p.proto, p.dst, p.dport),
                (_, PROTO_ICMP) => match pkt::icmp_kind(p.l4_flags) {
                    IcmpKind::Error if p.frag == Frag::No => match pkt::parse_inner(f, p) {
                        // The embedded packet is one we sent: its source is our endpoint.
                        Ok(inner) => self.outside_owner(inner.proto, inner.src, inner.sport),
                        Err(r) => return Verdict::Drop(r),
                    },
                    _ => self.outside_owner(PROTO_ICMP, p.dst, p.sport),
                },
                _ => None,
            };
            if let Some(v) = self.route(meta, owner) {
                if p.frag == Frag::First
                    && let Verdict::Handoff(w) = v
                {
                    self.frag_record_owner(p, w);
                }
                return v;
            }
        }
        self.out2in_owned(f, p, meta, false)
    }

    /// An outside packet on its owning worker (or the second half of hairpinning).
    pub(crate) fn out2in_owned(
        &mut self,
        f: &mut [u8],
        p: &Pkt,
        meta: &mut PktMeta,
        hairpin: bool,
    ) -> Verdict {
        if p.frag == Frag::NonFirst {
            return self.frag_nonfirst(f, p, meta, false);
        }
        match p.proto {
            PROTO_TCP | PROTO_UDP => self.o2i_l4(f, p, meta, hairpin),
            PROTO_ICMP => match pkt::icmp_kind(p.l4_flags) {
                IcmpKind::QueryRequest | IcmpKind::QueryReply => self.o2i_l4(f, p, meta, hairpin),
                IcmpKind::Error => self.o2i_icmp_error(f, p, meta),
                _ => Verdict::Drop(DropReason::NatUnsupported),
            },
            _ => Verdict::Drop(DropReason::NatUnsupported),
        }
    }

    /// Finds the out2in session of (proto, outside endpoint, remote), dropping it if expired.
    #[inline]
    pub(crate) fn find_o2i(
        &mut self,
        proto: u8,
        oa: u32,
        op: u16,
        ra: u32,
        rp: u16,
    ) -> Option<u32> {
        // A session found expired or stale is deleted: look again, another session with
        // the same key may be behind it (a stale static one shares its key with the
        // session made under the new mapping; found by fuzzing).
        let h = key_hash(proto, oa, op, ra, rp, !self.seed);
        loop {
            let s = &self.sess.s;
            let hit = self
                .o2i
                .find(h, |i| s[i as usize].is_outside(proto, oa, op, ra, rp));
            let hit = hit.map(|(_, i)| i);
            match self.live(hit) {
                None if hit.is_some() => continue,
                found => return found,
            }
        }
    }

    fn o2i_l4(&mut self, f: &mut [u8], p: &Pkt, meta: &mut PktMeta, hairpin: bool) -> Verdict {
        // For ICMP queries the identifier is the local "port" and the remote has none.
        let (lport, rport) = if p.proto == PROTO_ICMP {
            (p.sport, 0)
        } else {
            (p.dport, p.sport)
        };
        let si = match self.find_o2i(p.proto, p.dst, lport, p.src, rport) {
            Some(i) => i,
            None => {
                let request =
                    p.proto != PROTO_ICMP || pkt::icmp_kind(p.l4_flags) == IcmpKind::QueryRequest;
                // An echo reply may come back to a deterministic address through another box
                // (`stateless_inbound`): create_o2i decides.
                if !request && !self.det_stateless(p.dst) {
                    return Verdict::Drop(DropReason::NatNoSession);
                }
                match self.create_o2i(p.proto, p.dst, lport, p.src, rport, request) {
                    Ok(i) => i,
                    Err(r) => return Verdict::Drop(r),
                }
            }
        };
        let s = self.sess.s[si as usize];
        let d = rewrite::ip_addr(f, p.l3, false, s.in_addr);
        if p.proto == PROTO_ICMP {
            if s.in_port != lport {
                rewrite::icmp_id(f, p.l4, s.in_port);
            }
            meta.src_port = s.in_port;
        } else {
            rewrite::l4_port(f, p.proto, p.l4, p.end - p.l4, false, s.in_port, d);
            meta.dst_port = s.in_port;
        }
        self.touch(si, false, p.l4_flags);
        meta.dst_ip = s.in_addr;
        meta.flags |= dpdk::meta::flags::MODIFIED | dpdk::meta::flags::NATTED;
        if hairpin {
            self.tally.hairpin += 1;
        } else {
            self.tally.out2in += 1;
        }
        if p.frag == Frag::First {
            self.frag_record(p, false, p.src, s.in_addr);
        }
        Verdict::Continue
    }

    /// Whether `addr` is an outside address of a deterministic map with `stateless_inbound`.
    #[inline]
    fn det_stateless(&self, addr: u32) -> bool {
        !self.det.is_empty()
            && self
                .det
                .outside(addr)
                .is_some_and(|(m, _)| m.stateless_inbound)
    }

    /// Slow path: an inbound packet with no 5-tuple session (`request`: not an ICMP reply).
    fn create_o2i(
        &mut self,
        proto: u8,
        oa: u32,
        op: u16,
        ra: u32,
        rp: u16,
        request: bool,
    ) -> Res<u32> {
        let pi = proto_index(proto);
        let pool_idx = self.pool_index_of(oa);
        let dynamic = pool_idx.is_some() && self.part.contains(op);
        let det = match pool_idx {
            None if !self.det.is_empty() => self.det.outside(oa).map(|(m, i)| (*m, i)),
            _ => None,
        };
        // Session address index: pool addresses first, then the deterministic ones.
        let aidx = match det {
            Some((_, i)) => self.p.pool.len() + i,
            None => pool_idx.unwrap_or(0),
        };
        let mut stateless = false;
        let (in_addr, in_port, rep, stat) = if dynamic || det.is_some() {
            let rep = self.port_rep(aidx, pi, op);
            match det {
                // No mapping of this port on this box: the arithmetic says whose block it
                // is, and the kept port is the inside port (docs/nat.md, deterministic NAT).
                Some((m, _)) if rep == NONE => {
                    let Some(host) = m.reverse(oa, op).filter(|_| m.stateless_inbound) else {
                        return Err(DropReason::NatNoSession);
                    };
                    // ICMP: only replies (the host's own queries coming back), never queries.
                    if proto == PROTO_ICMP && request {
                        return Err(DropReason::NatNoSession);
                    }
                    // The inside endpoint may be mapped to another port on this box.
                    let h = self.h_iep(proto, host, op);
                    let s = &self.sess.s;
                    let mapped = self.iep.find(h, |i| {
                        let x = &s[i as usize];
                        x.in_addr == host && x.in_port == op && x.proto == proto
                    });
                    if mapped.is_some() {
                        return Err(DropReason::NatFiltered);
                    }
                    stateless = true;
                    (host, op, NONE, false)
                }
                _ => {
                    // ICMP queries from outside never enter a dynamic mapping.
                    if proto == PROTO_ICMP || rep == NONE {
                        return Err(DropReason::NatNoSession);
                    }
                    if !self.admits(rep, ra) {
                        return Err(DropReason::NatFiltered);
                    }
                    let r = &self.sess.s[rep as usize];
                    (r.in_addr, r.in_port, rep, false)
                }
            }
        } else {
            match self.statics.lookup_out(proto, oa, op) {
                Some((ia, ip)) => (ia, ip, NONE, true),
                None => return Err(DropReason::NatNoSession),
            }
        };
        // The inside endpoint may already have a session with this remote through another
        // outside endpoint (a dynamic mapping made before a static mapping of the host was
        // added, or another static mapping): a second session would make its outbound
        // translation ambiguous. Refused, as filtering refuses (found by fuzzing).
        if self.find_i2o(proto, in_addr, in_port, ra, rp).is_some() {
            return Err(DropReason::NatFiltered);
        }
        if let Some(h) = &self.hosts
            && h.count(in_addr) >= self.p.max_sessions_per_host
        {
            return Err(DropReason::NatHostLimit);
        }
        let (si, evicted) = self.take_slot()?;
        let rep = if stateless {
            // The port must still be free (a reclaim frees ports, never takes them), and
            // becomes this session's mapping.
            let (sp, a) = self.port_space_mut(aidx);
            if sp.rep(a, pi, op) != NONE || !sp.take(a, pi, op) {
                self.sess.release(si);
                return Err(DropReason::NatFiltered);
            }
            self.tally.det_stateless += 1;
            NONE
        } else if evicted && !stat {
            // Expiry or reclaim may have removed the session we found (or its whole mapping).
            let r = self.port_rep(aidx, pi, op);
            if r == NONE {
                self.sess.release(si);
                return Err(DropReason::NatNoSession);
            }
            if !self.admits(r, ra) {
                self.sess.release(si);
                return Err(DropReason::NatFiltered);
            }
            r
        } else {
            rep
        };
        let hairpin = self.is_outside_addr(ra);
        {
            let s = &mut self.sess.s[si as usize];
            s.proto = proto;
            s.in_addr = in_addr;
            s.in_port = in_port;
            s.out_addr = oa;
            s.out_port = op;
            s.rem_addr = ra;
            s.rem_port = rp;
            s.pool_idx = aidx as u16;
            s.class = match proto {
                PROTO_TCP => CLASS_TCP_TRANS,
                PROTO_UDP => CLASS_UDP,
                _ => CLASS_ICMP,
            };
            s.flags = sflag::INBOUND
                | if stat { sflag::STATIC } else { 0 }
                | if hairpin { sflag::HAIRPIN } else { 0 };
        }
        self.commit(si, rep);
        Ok(si)
    }

    /// Whether the filtering mode admits remote address `ra` to the mapping of `rep` (whose
    /// 5-tuple did not match).
    fn admits(&self, rep: u32, ra: u32) -> bool {
        match self.p.filtering {
            Filtering::EndpointIndependent => true,
            Filtering::AddressAndPortDependent => false,
            Filtering::AddressDependent => {
                let mut i = rep;
                for _ in 0..ADF_SCAN {
                    let s = &self.sess.s[i as usize];
                    if s.rem_addr == ra && !self.is_expired(i) {
                        return true;
                    }
                    i = s.map_next;
                    if i == rep {
                        break;
                    }
                }
                false
            }
        }
    }
}
