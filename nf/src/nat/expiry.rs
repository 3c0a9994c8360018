//! Session life: creation bookkeeping, refresh on traffic, idle expiry done a few sessions
//! at a time on the worker (never a scan of the table), least-recently-used reclaim when the
//! table is full, and deletion that gives the outside port back once the last session of its
//! mapping is gone.

use super::pkt::PROTO_TCP;
use super::ports::proto_index;
use super::table::{CLASSES, NONE, Session, i2o_hash, iep_hash, o2i_hash, sflag};
use super::{NatCore, tcp};
use pollfwd_pipeline::DropReason;

/// Why a session went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    Expired,
    Reclaimed,
    Purged,
}

impl NatCore {
    #[inline]
    pub(crate) fn h_i2o(&self, s: &Session) -> u64 {
        i2o_hash(s, self.seed)
    }

    #[inline]
    pub(crate) fn h_o2i(&self, s: &Session) -> u64 {
        o2i_hash(s, self.seed)
    }

    #[inline]
    pub(crate) fn h_iep(&self, proto: u8, addr: u32, port: u16) -> u64 {
        iep_hash(proto, addr, port, self.seed)
    }

    /// Whether session `i` has been idle past its timeout.
    #[inline]
    pub(crate) fn is_expired(&self, i: u32) -> bool {
        let s = &self.sess.s[i as usize];
        self.now.wrapping_sub(s.last_seen) >= self.timeout[s.class as usize]
    }

    /// A lookup's result, minus a session found idle past its timeout or (while a purge is
    /// pending after a static table change) made from a static mapping no longer in force:
    /// such a session is deleted on the spot (incremental expiry or purge may not have
    /// reached it yet), so no packet is translated with a removed mapping.
    #[inline]
    pub(crate) fn live(&mut self, hit: Option<u32>) -> Option<u32> {
        match hit {
            Some(i) if self.is_expired(i) => {
                self.delete(i, Gone::Expired);
                None
            }
            Some(i) if self.purge_next.is_some() && self.is_stale_static(i) => {
                self.delete(i, Gone::Purged);
                None
            }
            other => other,
        }
    }

    /// Whether session `i` comes from a static mapping that is no longer in the table: one
    /// that maps neither its inside endpoint to its outside one (outbound) nor its outside
    /// endpoint to its inside one (inbound; a host with a 1:1 mapping and a port forward has
    /// inbound sessions through the 1:1 mapping that its outbound lookups would not choose).
    #[inline]
    pub(crate) fn is_stale_static(&self, i: u32) -> bool {
        let s = &self.sess.s[i as usize];
        s.flags & sflag::STATIC != 0
            && self.statics.lookup_in(s.proto, s.in_addr, s.in_port)
                != Some((s.out_addr, s.out_port))
            && self.statics.lookup_out(s.proto, s.out_addr, s.out_port)
                != Some((s.in_addr, s.in_port))
    }

    /// Refreshes session `i` for a packet from the inside (`from_inside`) or outside with TCP
    /// flags `tflags`: timestamp, counters, TCP state, LRU position (moved only once per
    /// granule of its class).
    #[inline(always)]
    pub(crate) fn touch(&mut self, i: u32, from_inside: bool, tflags: u8) {
        let now = self.now;
        let s = &mut self.sess.s[i as usize];
        s.last_seen = now;
        if from_inside {
            s.pkts_i2o = s.pkts_i2o.wrapping_add(1);
        } else {
            s.pkts_o2i = s.pkts_o2i.wrapping_add(1);
        }
        let mut class = s.class;
        if s.proto == PROTO_TCP {
            let t = tcp::update(s.tcp, from_inside, tflags);
            if t != s.tcp {
                s.tcp = t;
                class = tcp::class(t);
            }
        }
        if class != s.class || now.wrapping_sub(s.lru_time) >= self.granule[class as usize] {
            self.sess.lru_unlink(i);
            self.sess.lru_push(i, class, now);
        }
    }

    /// Takes a free session slot: expires idle sessions first if the table is full, then
    /// reclaims the least recently used one if configured. Returns the slot and whether other
    /// sessions were removed for it (a session the caller looked up may be gone).
    pub(crate) fn take_slot(&mut self) -> Result<(u32, bool), DropReason> {
        if let Some(i) = self.sess.alloc() {
            return Ok((i, false));
        }
        if self.expire(16) > 0
            && let Some(i) = self.sess.alloc()
        {
            return Ok((i, true));
        }
        if self.p.lru_reclaim
            && self.reclaim_lru()
            && let Some(i) = self.sess.alloc()
        {
            return Ok((i, true));
        }
        Err(DropReason::NatTableFull)
    }

    /// Inserts a filled-in session: indexes, LRU list, mapping circle (`rep` is a session of
    /// the same mapping, or NONE for a new mapping), host count.
    pub(crate) fn commit(&mut self, i: u32, rep: u32) {
        let now = self.now;
        {
            let s = &mut self.sess.s[i as usize];
            s.last_seen = now;
            s.created = now;
        }
        let s = self.sess.s[i as usize];
        let h = self.h_i2o(&s);
        self.i2o.insert(h, i);
        let h = self.h_o2i(&s);
        self.o2i.insert(h, i);
        if s.flags & sflag::STATIC == 0 {
            if rep == NONE {
                let h = self.h_iep(s.proto, s.in_addr, s.in_port);
                self.iep.insert(h, i);
                let (sp, a) = self.port_space_mut(s.pool_idx as usize);
                sp.set_rep(a, proto_index(s.proto), s.out_port, i);
                let x = &mut self.sess.s[i as usize];
                x.map_next = i;
                x.map_prev = i;
            } else {
                let next = self.sess.s[rep as usize].map_next;
                self.sess.s[rep as usize].map_next = i;
                self.sess.s[next as usize].map_prev = i;
                let x = &mut self.sess.s[i as usize];
                x.map_prev = rep;
                x.map_next = next;
            }
        }
        let class = self.sess.s[i as usize].class;
        self.sess.lru_push(i, class, now);
        if let Some(h) = &mut self.hosts {
            h.incr(s.in_addr);
        }
        self.tally.created += 1;
    }

    /// Removes session `i` everywhere; frees its port when it was its mapping's last.
    pub(crate) fn delete(&mut self, i: u32, why: Gone) {
        let s = self.sess.s[i as usize];
        let (seed, ss) = (self.seed, &self.sess.s);
        self.i2o
            .remove(i2o_hash(&s, seed), i, |j| i2o_hash(&ss[j as usize], seed));
        self.o2i
            .remove(o2i_hash(&s, seed), i, |j| o2i_hash(&ss[j as usize], seed));
        if s.flags & sflag::STATIC == 0 {
            let pi = proto_index(s.proto);
            let hi = self.h_iep(s.proto, s.in_addr, s.in_port);
            if s.map_next == i {
                if let Some((pos, _)) = self.iep.find(hi, |x| x == i) {
                    self.iep.remove_at(pos, |j| {
                        let x = &ss[j as usize];
                        iep_hash(x.proto, x.in_addr, x.in_port, seed)
                    });
                }
                let (sp, a) = self.port_space_mut(s.pool_idx as usize);
                sp.release(a, pi, s.out_port);
                self.block_release(s.pool_idx as usize, s.out_port, s.out_addr);
            } else {
                self.sess.s[s.map_prev as usize].map_next = s.map_next;
                self.sess.s[s.map_next as usize].map_prev = s.map_prev;
                if let Some((pos, _)) = self.iep.find(hi, |x| x == i) {
                    self.iep.replace_at(pos, s.map_next);
                }
                let (sp, a) = self.port_space_mut(s.pool_idx as usize);
                if sp.rep(a, pi, s.out_port) == i {
                    sp.set_rep(a, pi, s.out_port, s.map_next);
                }
            }
        }
        self.sess.lru_unlink(i);
        if let Some(h) = &mut self.hosts {
            h.decr(s.in_addr);
        }
        self.sess.release(i);
        match why {
            Gone::Expired => self.tally.expired += 1,
            Gone::Reclaimed => self.tally.reclaimed += 1,
            Gone::Purged => self.tally.purged += 1,
        }
    }

    /// Removes up to `budget` sessions idle past their timeout, oldest first in each class.
    /// Stops in a class at its first live session (the lists are ordered by last activity to
    /// within one granule). Returns how many went.
    pub fn expire(&mut self, budget: u32) -> u32 {
        let mut n = 0;
        for c in 0..CLASSES as u8 {
            while n < budget {
                let Some(h) = self.sess.lru_head(c) else {
                    break;
                };
                if !self.is_expired(h) {
                    break;
                }
                self.delete(h, Gone::Expired);
                n += 1;
            }
        }
        n
    }

    /// Frees the least recently used session of all classes. False if the table is empty.
    pub(crate) fn reclaim_lru(&mut self) -> bool {
        let now = self.now;
        let victim = (0..CLASSES as u8)
            .filter_map(|c| self.sess.lru_head(c))
            .max_by_key(|&i| now.wrapping_sub(self.sess.s[i as usize].last_seen));
        match victim {
            Some(i) => {
                self.delete(i, Gone::Reclaimed);
                true
            }
            None => false,
        }
    }

    /// Housekeeping: expiry with the configured budget and a slice of any pending purge of
    /// static sessions whose mapping was removed.
    pub fn housekeeping(&mut self) {
        self.expire(self.p.expiry_budget);
        if let Some(start) = self.purge_next {
            let cap = self.sess.capacity();
            let end = (start + 4096).min(cap);
            for i in start..end {
                let s = self.sess.s[i as usize];
                if s.class == super::table::CLASS_FREE || s.flags & sflag::STATIC == 0 {
                    continue;
                }
                if self.is_stale_static(i) {
                    self.delete(i, Gone::Purged);
                }
            }
            self.purge_next = (end < cap).then_some(end);
        }
        self.publish_ports();
        self.flush();
    }
}
