//! Port blocks for the dynamic pool (bulk port allocation, as carrier-grade NATs do): the
//! worker's slice of the dynamic range is cut into blocks of `size` ports on every pool
//! address; an inside host takes a block on its (paired) pool address at its first mapping,
//! its mappings of every protocol take ports from its blocks, it gets another block when they
//! are full (up to `per_host`), and a block goes back when its last mapping ends. One log
//! record per block allocated and freed replaces a record per session: the worker pushes a
//! [`BlockEvent`] into a bounded lock-free queue the management side drains (a full queue is
//! counted, never waited on).
//!
//! Per worker, allocated once: block owner and user count per block, a queue of free blocks
//! per address, and a host -> blocks table (open addressing, at most one host per block, so
//! twice as many slots as blocks).

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

/// Most blocks one host may hold.
pub const MAX_PER_HOST: usize = 4;
/// Events a worker may have waiting for the management side.
pub const QUEUE: usize = 65536;

/// A block allocated to, or freed by, an inside host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEvent {
    pub alloc: bool,
    pub host: u32,
    pub addr: u32,
    pub first: u16,
    pub last: u16,
}

#[derive(Debug, Clone, Copy, Default)]
struct HostEntry {
    host: u32,
    n: u8,
    blocks: [u32; MAX_PER_HOST],
}

/// One worker's port blocks.
pub struct Blocks {
    pub size: u32,
    pub per_host: usize,
    /// First port of the worker's slice and blocks per address.
    lo: u16,
    nblocks: u32,
    owner: Vec<u32>,
    users: Vec<u32>,
    /// Free blocks per address, least recently freed first (late packets of a host's old
    /// flows reach the next owner of a block as late as possible).
    free: Vec<VecDeque<u32>>,
    hosts: Vec<HostEntry>,
    pub events: Arc<ArrayQueue<BlockEvent>>,
}

fn mix(h: u32) -> u64 {
    (h as u64 ^ 0x9e37_79b9).wrapping_mul(0xff51_afd7_ed55_8ccd)
}

impl Blocks {
    /// Blocks of `size` ports over the slice `lo .. lo + len` of `addrs` pool addresses.
    pub fn new(addrs: usize, lo: u16, len: u32, size: u32, per_host: usize) -> Blocks {
        let nblocks = len / size.max(1);
        let total = addrs * nblocks as usize;
        Blocks {
            size,
            per_host: per_host.clamp(1, MAX_PER_HOST),
            lo,
            nblocks,
            owner: vec![0; total],
            users: vec![0; total],
            free: (0..addrs).map(|_| (0..nblocks).collect()).collect(),
            hosts: vec![HostEntry::default(); (2 * total).next_power_of_two().max(2)],
            events: Arc::new(ArrayQueue::new(QUEUE)),
        }
    }

    pub fn bytes(&self) -> usize {
        self.owner.len() * 12 + self.hosts.len() * std::mem::size_of::<HostEntry>()
    }

    /// Blocks per address in this worker's slice.
    pub fn per_address(&self) -> u32 {
        self.nblocks
    }

    /// First port and length of block `b` (a global block number: address * per address +
    /// index).
    pub fn range(&self, b: u32) -> (u16, u32) {
        (self.lo + ((b % self.nblocks) * self.size) as u16, self.size)
    }

    /// The global block number holding `port` of address `a`, if the port is in a block.
    pub fn block_of(&self, a: usize, port: u16) -> Option<u32> {
        let off = port.checked_sub(self.lo)? as u32 / self.size;
        (off < self.nblocks).then(|| a as u32 * self.nblocks + off)
    }

    fn find(&self, host: u32) -> (usize, bool) {
        let mask = self.hosts.len() - 1;
        let mut i = (mix(host) >> 32) as usize & mask;
        loop {
            let e = &self.hosts[i];
            if e.host == 0 {
                return (i, false);
            }
            if e.host == host {
                return (i, true);
            }
            i = (i + 1) & mask;
        }
    }

    /// The blocks `host` holds.
    pub fn of_host(&self, host: u32) -> &[u32] {
        match self.find(host) {
            (i, true) => &self.hosts[i].blocks[..self.hosts[i].n as usize],
            _ => &[],
        }
    }

    /// Owner and user count of block `b` (for checks and listings).
    pub fn state(&self, b: u32) -> (u32, u32) {
        (self.owner[b as usize], self.users[b as usize])
    }

    /// Total blocks.
    pub fn total(&self) -> usize {
        self.owner.len()
    }

    /// Takes a free block of address `a` (value `addr`) for `host`; None when the host holds
    /// `per_host` blocks or the address has none free. Pushes the allocation event (false
    /// in the second field when the queue was full).
    pub fn take(&mut self, host: u32, a: usize, addr: u32) -> Option<(u32, bool)> {
        let (i, found) = self.find(host);
        if found && self.hosts[i].n as usize >= self.per_host {
            return None;
        }
        let b = a as u32 * self.nblocks + self.free.get_mut(a)?.pop_front()?;
        self.owner[b as usize] = host;
        self.users[b as usize] = 0;
        let e = &mut self.hosts[i];
        if !found {
            *e = HostEntry {
                host,
                ..HostEntry::default()
            };
        }
        e.blocks[e.n as usize] = b;
        e.n += 1;
        Some((b, self.log(true, host, addr, b)))
    }

    /// A mapping took a port of block `b`.
    pub fn used(&mut self, b: u32) {
        self.users[b as usize] += 1;
    }

    /// A mapping on a port of block `b` (of address value `addr`) ended; the block goes back
    /// when it was the last. Returns whether the block was freed and whether its event was
    /// queued.
    pub fn release(&mut self, b: u32, addr: u32) -> Option<bool> {
        let u = &mut self.users[b as usize];
        *u = u.saturating_sub(1);
        if *u > 0 {
            return None;
        }
        let host = std::mem::take(&mut self.owner[b as usize]);
        if host == 0 {
            return None;
        }
        self.free[(b / self.nblocks) as usize].push_back(b % self.nblocks);
        let (i, found) = self.find(host);
        if found {
            let e = &mut self.hosts[i];
            let n = e.n as usize;
            if let Some(k) = e.blocks[..n].iter().position(|&x| x == b) {
                e.blocks[k] = e.blocks[n - 1];
                e.n -= 1;
            }
            if e.n == 0 {
                self.remove_at(i);
            }
        }
        Some(self.log(false, host, addr, b))
    }

    /// Backward-shift deletion of host slot `i`.
    fn remove_at(&mut self, mut i: usize) {
        let mask = self.hosts.len() - 1;
        let mut j = (i + 1) & mask;
        loop {
            let e = self.hosts[j];
            if e.host == 0 {
                break;
            }
            let home = (mix(e.host) >> 32) as usize & mask;
            // Move `e` back to `i` when its home is not in (i, j] (cyclically).
            let between = if i <= j {
                home > i && home <= j
            } else {
                home > i || home <= j
            };
            if !between {
                self.hosts[i] = e;
                i = j;
            }
            j = (j + 1) & mask;
        }
        self.hosts[i] = HostEntry::default();
    }

    fn log(&self, alloc: bool, host: u32, addr: u32, b: u32) -> bool {
        let (first, len) = self.range(b);
        self.events
            .push(BlockEvent {
                alloc,
                host,
                addr,
                first,
                last: first + (len - 1) as u16,
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_taken_per_host_up_to_the_limit_and_come_back_with_their_events() {
        // 2 addresses, slice 20000..20999 (1000 ports), blocks of 256: 3 per address.
        let mut b = Blocks::new(2, 20000, 1000, 256, 2);
        assert_eq!(b.per_address(), 3);
        let (b0, ok) = b.take(0x0a00_0001, 1, 0xc633_640b).unwrap();
        assert!(ok);
        assert_eq!(b.range(b0), (20000, 256));
        assert_eq!(b.block_of(1, 20255), Some(b0));
        assert_eq!(
            b.block_of(1, 20768),
            None,
            "the slice's remainder is in no block"
        );
        let (b1, _) = b.take(0x0a00_0001, 1, 0xc633_640b).unwrap();
        assert_eq!(b.range(b1), (20256, 256));
        assert_eq!(b.of_host(0x0a00_0001), &[b0, b1]);
        assert_eq!(b.take(0x0a00_0001, 1, 0xc633_640b), None, "per_host = 2");
        let (b2, _) = b.take(0x0a00_0002, 1, 0xc633_640b).unwrap();
        assert_eq!(
            b.take(0x0a00_0003, 1, 0xc633_640b),
            None,
            "address 1 has no block left"
        );
        assert!(
            b.take(0x0a00_0003, 0, 0xc633_640a).is_some(),
            "address 0 has"
        );
        b.used(b1);
        b.used(b1);
        assert_eq!(b.release(b1, 0xc633_640b), None, "a mapping left");
        assert_eq!(b.release(b1, 0xc633_640b), Some(true), "freed");
        assert_eq!(b.of_host(0x0a00_0001), &[b0]);
        b.used(b0);
        assert_eq!(b.release(b0, 0xc633_640b), Some(true));
        assert!(b.of_host(0x0a00_0001).is_empty());
        assert_eq!(b.of_host(0x0a00_0002), &[b2], "other hosts keep theirs");
        // A freed block serves the next host.
        assert!(b.take(0x0a00_0003, 1, 0xc633_640b).is_some());
        let ev: Vec<BlockEvent> = std::iter::from_fn(|| b.events.pop()).collect();
        let kinds: Vec<(bool, u32, u16)> = ev.iter().map(|e| (e.alloc, e.host, e.first)).collect();
        assert_eq!(
            kinds,
            [
                (true, 0x0a00_0001, 20000),
                (true, 0x0a00_0001, 20256),
                (true, 0x0a00_0002, 20512),
                (true, 0x0a00_0003, 20000),
                (false, 0x0a00_0001, 20256),
                (false, 0x0a00_0001, 20000),
                (true, 0x0a00_0003, 20256),
            ]
        );
        assert!(ev.iter().all(|e| e.last == e.first + 255));
    }

    #[test]
    fn the_host_table_survives_churn_with_collisions() {
        let mut b = Blocks::new(1, 1024, 64512, 16, 1);
        let n = b.per_address();
        let hosts: Vec<u32> = (1..=n).map(|i| 0x0a00_0000 + i * 7919).collect();
        let mut held = std::collections::HashMap::new();
        for (k, &h) in hosts.iter().enumerate() {
            let (blk, _) = b.take(h, 0, 1).unwrap();
            b.used(blk);
            held.insert(h, blk);
            // Free every third host's block again: deletions in the middle of probe runs.
            if k % 3 == 0 {
                assert_eq!(b.release(blk, 1), Some(true));
                held.remove(&h);
            }
            while b.events.pop().is_some() {}
        }
        for (h, blk) in &held {
            assert_eq!(b.of_host(*h), &[*blk], "host {h:x}");
        }
    }
}
