//! A full consistency check of one worker's NAT tables, for tests and the fuzz targets
//! (`fuzz/`): it scans every table, so it is never called on the data path.

use super::NatCore;
use super::pkt::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use super::ports::proto_index;
use super::table::{CLASS_FREE, CLASS_ICMP, CLASS_UDP, CLASSES, NONE, sflag};

impl NatCore {
    /// Checks that the session table, its three indexes, the LRU and free lists, the
    /// mapping circles, the port bitmaps and the per-host counts agree with each other:
    /// - every slot is either on the free list or live (in one LRU list, of its class), and
    ///   the counts add up to the capacity;
    /// - the inside and outside indexes hold exactly one entry per live session, found by
    ///   that session's key, and no two sessions in force share a key (a session from a
    ///   static mapping that was removed or changed is no longer in force: it waits for the
    ///   incremental purge);
    /// - the sessions of a dynamic mapping form a circle sharing one inside and one outside
    ///   endpoint, with exactly one entry in the endpoint index, its port taken in the
    ///   bitmap and the port's representative one of its sessions; ports taken = mappings;
    /// - the per-host counts (when limited) are the live sessions per inside address.
    ///
    /// Returns the first disagreement found. O(capacity + ports); tests and fuzzing only.
    pub fn check_invariants(&self) -> Result<(), String> {
        let cap = self.sess.capacity();
        let s = &self.sess.s;
        let live = |i: u32| i < cap && s[i as usize].class != CLASS_FREE;
        // Free list.
        let mut on_free = vec![false; cap as usize];
        let mut nfree = 0u32;
        for i in self.sess.free_iter() {
            if i >= cap || on_free[i as usize] {
                return Err(format!("free list: bad or repeated slot {i}"));
            }
            if s[i as usize].class != CLASS_FREE {
                return Err(format!(
                    "free list: slot {i} has class {}",
                    s[i as usize].class
                ));
            }
            on_free[i as usize] = true;
            nfree += 1;
            if nfree > cap {
                return Err("free list: cycle".into());
            }
        }
        let nlive = (0..cap).filter(|&i| live(i)).count() as u32;
        if nlive != self.sess.used || nfree + nlive != cap {
            return Err(format!(
                "counts: used {} live {nlive} free {nfree} capacity {cap}",
                self.sess.used
            ));
        }
        // LRU lists.
        let mut in_lru = vec![false; cap as usize];
        let mut nlru = 0u32;
        for c in 0..CLASSES as u8 {
            let mut prev = cap + c as u32;
            for i in self.sess.lru_iter(c) {
                if !live(i) || in_lru[i as usize] {
                    return Err(format!("lru {c}: slot {i} free or listed twice"));
                }
                let x = &s[i as usize];
                if x.class != c || x.lru_prev != prev {
                    return Err(format!(
                        "lru {c}: slot {i} class {} prev {} (expected {prev})",
                        x.class, x.lru_prev
                    ));
                }
                in_lru[i as usize] = true;
                prev = i;
                nlru += 1;
                if nlru > cap {
                    return Err("lru: cycle".into());
                }
            }
        }
        if nlru != nlive {
            return Err(format!("lru lists hold {nlru} sessions, {nlive} live"));
        }
        // Per-session fields, index entries, key uniqueness.
        // Sorted vectors rather than hash sets: this runs after every step of a fuzz target.
        let mut i2o_keys = Vec::new();
        let mut o2i_keys = Vec::new();
        let mut hosts = Vec::new();
        for i in (0..cap).filter(|&i| live(i)) {
            let x = &s[i as usize];
            let want_class = match x.proto {
                PROTO_TCP => x.class <= 1,
                PROTO_UDP => x.class == CLASS_UDP,
                PROTO_ICMP => x.class == CLASS_ICMP,
                _ => false,
            };
            if !want_class {
                return Err(format!("session {i}: proto {} class {}", x.proto, x.class));
            }
            if self.i2o.find(self.h_i2o(x), |j| j == i).is_none() {
                return Err(format!("session {i} missing from the inside index: {x:?}"));
            }
            if self.o2i.find(self.h_o2i(x), |j| j == i).is_none() {
                return Err(format!("session {i} missing from the outside index: {x:?}"));
            }
            if !self.is_stale_static(i) {
                i2o_keys.push((x.proto, x.in_addr, x.in_port, x.rem_addr, x.rem_port));
                o2i_keys.push((x.proto, x.out_addr, x.out_port, x.rem_addr, x.rem_port));
            }
            hosts.push(x.in_addr);
        }
        for (side, keys) in [("inside", &mut i2o_keys), ("outside", &mut o2i_keys)] {
            keys.sort_unstable();
            if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
                return Err(format!("two sessions with {side} key {:?}", w[0]));
            }
        }
        for (name, ix, h) in [("inside", &self.i2o, true), ("outside", &self.o2i, false)] {
            let mut n = 0u32;
            for (tag, i) in ix.entries() {
                if !live(i) {
                    return Err(format!("{name} index points at free slot {i}"));
                }
                let x = &s[i as usize];
                let want = if h { self.h_i2o(x) } else { self.h_o2i(x) };
                if ix.tag(want) != tag {
                    return Err(format!("{name} index entry of session {i}: stale hash"));
                }
                n += 1;
            }
            if n != nlive {
                return Err(format!(
                    "{name} index holds {n} entries, {nlive} live sessions"
                ));
            }
            ix.check(|j| {
                let x = &s[j as usize];
                if h { self.h_i2o(x) } else { self.h_o2i(x) }
            })
            .map_err(|e| format!("{name} index {e}"))?;
        }
        // Mapping circles, the endpoint index and the ports.
        let mut circle_of = vec![NONE; cap as usize];
        let mut circles = 0u32;
        let naddrs = self.ports.addrs() + self.det_ports.addrs();
        let mut block_users = vec![0u32; self.blocks.as_ref().map_or(0, |b| b.total())];
        let mut taken = vec![0u32; naddrs * 3];
        for i in (0..cap).filter(|&i| live(i)) {
            let x = &s[i as usize];
            if x.flags & sflag::STATIC != 0 {
                if x.map_next != NONE || x.map_prev != NONE {
                    return Err(format!("static session {i} is in a mapping circle"));
                }
                continue;
            }
            if circle_of[i as usize] != NONE {
                continue;
            }
            // Walk the circle: same endpoints, consistent links; its id is `i`.
            let (mut j, mut n) = (i, 0u32);
            let mut members = Vec::new();
            loop {
                let y = &s[j as usize];
                if !live(j)
                    || y.flags & sflag::STATIC != 0
                    || (
                        y.proto, y.in_addr, y.in_port, y.out_addr, y.out_port, y.pool_idx,
                    ) != (
                        x.proto, x.in_addr, x.in_port, x.out_addr, x.out_port, x.pool_idx,
                    )
                {
                    return Err(format!("mapping circle of {i}: member {j} differs: {y:?}"));
                }
                if !live(y.map_next) || s[y.map_next as usize].map_prev != j {
                    return Err(format!("mapping circle of {i}: broken link at {j}"));
                }
                circle_of[j as usize] = i;
                members.push(j);
                n += 1;
                if n > nlive {
                    return Err(format!("mapping circle of {i}: does not close"));
                }
                j = y.map_next;
                if j == i {
                    break;
                }
            }
            circles += 1;
            let pi = proto_index(x.proto);
            let a = x.pool_idx as usize;
            if self.outside_addr_at(a) != Some(x.out_addr) {
                return Err(format!(
                    "mapping of {i}: outside address index {a} is not {}",
                    x.out_addr
                ));
            }
            let (space, ai) = self.port_space(a);
            if let Some(b) = self.det.inside(x.in_addr)
                && (b.addr_index + self.p.pool.len() != a || !b.contains(x.out_port))
            {
                return Err(format!(
                    "mapping of {i}: deterministic host {} outside its block: {}:{}",
                    x.in_addr, x.out_addr, x.out_port
                ));
            }
            if space.is_free(ai, pi, x.out_port) {
                return Err(format!(
                    "mapping of {i}: port {} free in the bitmap",
                    x.out_port
                ));
            }
            if !members.contains(&space.rep(ai, pi, x.out_port)) {
                return Err(format!("mapping of {i}: port representative not a member"));
            }
            let iep = members
                .iter()
                .filter(|&&m| {
                    self.iep
                        .find(self.h_iep(x.proto, x.in_addr, x.in_port), |k| k == m)
                        .is_some()
                })
                .count();
            if iep != 1 {
                return Err(format!("mapping of {i}: {iep} endpoint index entries"));
            }
            taken[a * 3 + pi] += 1;
            // Port blocks: the mapping's port is in a block of its host.
            if let Some(bl) = &self.blocks
                && a < self.p.pool.len()
            {
                let Some(b) = bl.block_of(a, x.out_port) else {
                    return Err(format!("mapping of {i}: port {} in no block", x.out_port));
                };
                if bl.state(b).0 != x.in_addr {
                    return Err(format!(
                        "mapping of {i}: block {b} belongs to {:x}, not {:x}",
                        bl.state(b).0,
                        x.in_addr
                    ));
                }
                block_users[b as usize] += 1;
            }
        }
        if let Some(bl) = &self.blocks {
            for (b, &n) in block_users.iter().enumerate() {
                let (owner, users) = bl.state(b as u32);
                if users != n || (owner == 0) != (n == 0) {
                    return Err(format!(
                        "block {b}: owner {owner:x} with {users} users, {n} mappings"
                    ));
                }
                if owner != 0 && !bl.of_host(owner).contains(&(b as u32)) {
                    return Err(format!("block {b}: not in its host's list"));
                }
            }
        }
        let niep = self.iep.entries().count() as u32;
        if niep != circles {
            return Err(format!(
                "endpoint index: {niep} entries, {circles} mappings"
            ));
        }
        self.iep
            .check(|j| {
                let x = &s[j as usize];
                self.h_iep(x.proto, x.in_addr, x.in_port)
            })
            .map_err(|e| format!("endpoint index {e}"))?;
        for a in 0..naddrs {
            let (space, ai) = self.port_space(a);
            for pi in 0..3 {
                let want = taken[a * 3 + pi];
                if space.in_use(ai, pi) != want {
                    return Err(format!(
                        "ports of outside address index {a} protocol {pi}: {} in use, {want} mappings",
                        space.in_use(ai, pi)
                    ));
                }
            }
        }
        // Per-host counts.
        if let Some(h) = &self.hosts {
            hosts.sort_unstable();
            let mut per_host: Vec<(u32, u32)> = Vec::new();
            for a in hosts {
                match per_host.last_mut() {
                    Some((b, n)) if *b == a => *n += 1,
                    _ => per_host.push((a, 1)),
                }
            }
            let mut held: Vec<(u32, u32)> = h.entries().collect();
            held.sort_unstable();
            if held != per_host {
                return Err(format!(
                    "per-host counts {held:?} differ from the sessions {per_host:?}"
                ));
            }
        }
        Ok(())
    }
}
