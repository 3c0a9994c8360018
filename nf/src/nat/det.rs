//! Deterministic NAT (RFC 7422, the mapping of VPP's det44): an inside prefix maps onto an
//! outside prefix, each inside host to one outside address and one block of ports, by
//! arithmetic on the configuration alone:
//!
//! ```text
//! ratio          = inside addresses / outside addresses   (a power of two)
//! ports_per_host = 64512 / ratio                          (ports 1024..=65535 shared)
//! i              = inside - inside_net
//! outside        = outside_net + i / ratio
//! block          = 1024 + ports_per_host * (i % ratio)  ..  + ports_per_host - 1
//! ```
//!
//! and back: `inside = inside_net + (outside - outside_net) * ratio + (port - 1024) /
//! ports_per_host`. Every box with the same maps gives a host the same address and block, so
//! "which host used outside ip:port" needs no log, and N boxes (or one box after a restart)
//! agree without exchanging state.
//!
//! Within its block a host's sessions get ports as in dynamic NAT (per box state), preferring
//! the port that maps back by itself: the inside port when it lies in the block (so hosts that
//! use only their block's ports, A+P style, RFC 6346, are translated with their ports kept),
//! else `block start + inside port mod ports_per_host`. Return traffic for a kept port can be
//! translated by any box without a session (`stateless_inbound`): see docs/nat.md.

use std::net::Ipv4Addr;

/// First port of the shared range and its size.
pub const PORT_BASE: u16 = 1024;
pub const PORTS: u32 = 65536 - PORT_BASE as u32;
/// Most outside addresses over all maps (each costs about 780 KiB of port tables per worker).
pub const MAX_OUTSIDE: usize = 256;

/// One deterministic map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetMap {
    pub in_net: u32,
    pub in_len: u8,
    pub out_net: u32,
    pub out_len: u8,
    /// Inbound packets to a kept port with no session on this box are translated to the
    /// host the arithmetic gives (return traffic that reaches another box, or this box after
    /// a restart).
    pub stateless_inbound: bool,
}

/// Where a host's sessions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub out_addr: u32,
    /// Index of `out_addr` among all outside addresses of the maps.
    pub addr_index: usize,
    pub lo: u16,
    pub len: u32,
}

impl Block {
    /// The port a session of inside port `port` tries first (see the module doc).
    #[inline]
    pub fn preferred(&self, port: u16) -> u16 {
        if self.contains(port) {
            port
        } else {
            self.lo + (port as u32 % self.len) as u16
        }
    }

    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        port >= self.lo && ((port - self.lo) as u32) < self.len
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

impl DetMap {
    /// Checks the prefixes: network addresses, inside at least as large as outside, at most
    /// 32768 hosts per outside address (two ports each at least).
    pub fn new(
        (in_net, in_len): (u32, u8),
        (out_net, out_len): (u32, u8),
        stateless_inbound: bool,
    ) -> Result<DetMap, String> {
        let show = |a: u32, l: u8| format!("{}/{l}", Ipv4Addr::from(a));
        if in_len > 32 || out_len > 32 {
            return Err("prefix length above 32".into());
        }
        if in_net & !mask(in_len) != 0 {
            return Err(format!(
                "inside {}: not a network address (host bits set)",
                show(in_net, in_len)
            ));
        }
        if out_net & !mask(out_len) != 0 {
            return Err(format!(
                "outside {}: not a network address (host bits set)",
                show(out_net, out_len)
            ));
        }
        if out_len < in_len {
            return Err(format!(
                "outside {} is larger than inside {}: each outside address serves one or more \
                 inside hosts",
                show(out_net, out_len),
                show(in_net, in_len)
            ));
        }
        if out_len - in_len > 15 {
            return Err(format!(
                "{} hosts per outside address: at most 32768 (two ports each)",
                1u64 << (out_len - in_len)
            ));
        }
        if 1u64 << (32 - out_len) > MAX_OUTSIDE as u64 {
            return Err(format!(
                "outside {}: at most {MAX_OUTSIDE} outside addresses (/{} or longer)",
                show(out_net, out_len),
                32 - MAX_OUTSIDE.trailing_zeros()
            ));
        }
        Ok(DetMap {
            in_net,
            in_len,
            out_net,
            out_len,
            stateless_inbound,
        })
    }

    /// Inside hosts per outside address.
    pub fn ratio(&self) -> u32 {
        1 << (self.out_len - self.in_len)
    }

    pub fn ports_per_host(&self) -> u32 {
        PORTS / self.ratio()
    }

    /// Outside addresses.
    pub fn outside_count(&self) -> u32 {
        (1u64 << (32 - self.out_len)) as u32
    }

    pub fn contains_inside(&self, a: u32) -> bool {
        a & mask(self.in_len) == self.in_net
    }

    pub fn contains_outside(&self, a: u32) -> bool {
        a & mask(self.out_len) == self.out_net
    }

    /// The outside address and port block of inside host `a` (in the inside prefix):
    /// (outside address, first port, ports).
    pub fn forward(&self, a: u32) -> (u32, u16, u32) {
        let i = a - self.in_net;
        let (r, ppp) = (self.ratio(), self.ports_per_host());
        (
            self.out_net + i / r,
            PORT_BASE + (ppp * (i % r)) as u16,
            ppp,
        )
    }

    /// The inside host that owns outside `port` of outside address `a` (in the outside
    /// prefix), if the port is in a block.
    pub fn reverse(&self, a: u32, port: u16) -> Option<u32> {
        if port < PORT_BASE {
            return None;
        }
        let k = (port - PORT_BASE) as u32 / self.ports_per_host();
        (k < self.ratio()).then(|| self.in_net + (a - self.out_net) * self.ratio() + k)
    }
}

/// All deterministic maps of a NAT, with their outside addresses numbered in map order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetTable {
    maps: Vec<DetMap>,
    /// First outside address index of each map.
    first: Vec<usize>,
    outside: usize,
}

impl DetTable {
    /// Refuses overlapping inside or outside prefixes and more than [`MAX_OUTSIDE`] outside
    /// addresses in all.
    pub fn new(maps: &[DetMap]) -> Result<DetTable, String> {
        let mut t = DetTable::default();
        for (i, m) in maps.iter().enumerate() {
            for o in &maps[..i] {
                let show = |a: u32, l: u8| format!("{}/{l}", Ipv4Addr::from(a));
                let overlap = |a: u32, al: u8, b: u32, bl: u8| {
                    let l = al.min(bl);
                    a & mask(l) == b & mask(l)
                };
                if overlap(m.in_net, m.in_len, o.in_net, o.in_len) {
                    return Err(format!(
                        "inside {} overlaps the inside {} of another map",
                        show(m.in_net, m.in_len),
                        show(o.in_net, o.in_len)
                    ));
                }
                if overlap(m.out_net, m.out_len, o.out_net, o.out_len) {
                    return Err(format!(
                        "outside {} overlaps the outside {} of another map",
                        show(m.out_net, m.out_len),
                        show(o.out_net, o.out_len)
                    ));
                }
            }
            t.first.push(t.outside);
            t.outside += m.outside_count() as usize;
            t.maps.push(*m);
        }
        if t.outside > MAX_OUTSIDE {
            return Err(format!(
                "{} outside addresses in all maps: at most {MAX_OUTSIDE}",
                t.outside
            ));
        }
        Ok(t)
    }

    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    pub fn maps(&self) -> &[DetMap] {
        &self.maps
    }

    /// Outside addresses of all maps.
    pub fn outside_count(&self) -> usize {
        self.outside
    }

    /// The outside address with index `i`.
    pub fn outside_addr(&self, i: usize) -> Option<u32> {
        let k = self.first.iter().rposition(|&f| f <= i)?;
        let m = &self.maps[k];
        let off = (i - self.first[k]) as u32;
        (off < m.outside_count()).then(|| m.out_net + off)
    }

    /// The block of inside host `a`, if a map covers it.
    #[inline]
    pub fn inside(&self, a: u32) -> Option<Block> {
        let k = self.maps.iter().position(|m| m.contains_inside(a))?;
        let m = &self.maps[k];
        let (out_addr, lo, len) = m.forward(a);
        Some(Block {
            out_addr,
            addr_index: self.first[k] + (out_addr - m.out_net) as usize,
            lo,
            len,
        })
    }

    /// The map and index of outside address `a`, if it is one.
    #[inline]
    pub fn outside(&self, a: u32) -> Option<(&DetMap, usize)> {
        let k = self.maps.iter().position(|m| m.contains_outside(a))?;
        let m = &self.maps[k];
        Some((m, self.first[k] + (a - m.out_net) as usize))
    }

    /// The inside host owning outside endpoint (a, port), if any.
    #[inline]
    pub fn reverse(&self, a: u32, port: u16) -> Option<u32> {
        self.outside(a).and_then(|(m, _)| m.reverse(a, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn forward_and_reverse_are_inverse_for_every_host_and_port_of_a_map() {
        // VPP's det44 example shape: a /24 onto a /30, 64 hosts per address.
        let m = DetMap::new((ip("10.0.0.0"), 24), (ip("198.51.100.0"), 30), false).unwrap();
        assert_eq!((m.ratio(), m.ports_per_host()), (64, 1008));
        let mut seen = std::collections::HashSet::new();
        for h in 0..256u32 {
            let a = ip("10.0.0.0") + h;
            let (oa, lo, len) = m.forward(a);
            assert!(m.contains_outside(oa));
            assert_eq!(len, 1008);
            assert!(lo as u32 + len - 1 <= 65535);
            for p in [lo, lo + 1, lo + (len - 1) as u16] {
                assert_eq!(m.reverse(oa, p), Some(a), "{oa:x}:{p}");
                assert!(seen.insert((oa, p)), "block overlap at {oa:x}:{p}");
            }
        }
        // Known values: the first host of the second outside address and the last host.
        assert_eq!(m.forward(ip("10.0.0.64")), (ip("198.51.100.1"), 1024, 1008));
        assert_eq!(
            m.forward(ip("10.0.0.255")),
            (ip("198.51.100.3"), 1024 + 63 * 1008, 1008)
        );
        assert_eq!(m.reverse(ip("198.51.100.3"), 1023), None);
        // 64 * 1008 = 64512: every port from 1024 up belongs to a block.
        assert_eq!(m.reverse(ip("198.51.100.3"), 65535), Some(ip("10.0.0.255")));
    }

    #[test]
    fn one_to_one_maps_keep_every_port_from_1024() {
        let m = DetMap::new((ip("10.1.0.0"), 28), (ip("203.0.113.16"), 28), true).unwrap();
        assert_eq!((m.ratio(), m.ports_per_host()), (1, 64512));
        let (oa, lo, len) = m.forward(ip("10.1.0.5"));
        assert_eq!((oa, lo, len), (ip("203.0.113.21"), 1024, 64512));
        let b = Block {
            out_addr: oa,
            addr_index: 5,
            lo,
            len,
        };
        assert_eq!(b.preferred(40000), 40000, "in the block: kept");
        assert_eq!(
            b.preferred(53),
            1024 + 53,
            "below 1024: moved into the block"
        );
    }

    #[test]
    fn preferred_port_outside_the_block_is_the_port_modulo_the_block() {
        let b = Block {
            out_addr: 1,
            addr_index: 0,
            lo: 2032,
            len: 1008,
        };
        assert_eq!(b.preferred(2500), 2500);
        assert_eq!(b.preferred(40000), 2032 + (40000 % 1008) as u16);
        assert!(b.contains(b.preferred(65535)));
    }

    #[test]
    fn bad_maps_are_refused_with_the_reason() {
        let e = DetMap::new((ip("10.0.0.1"), 24), (ip("198.51.100.0"), 30), false).unwrap_err();
        assert!(e.contains("host bits"), "{e}");
        let e = DetMap::new((ip("10.0.0.0"), 30), (ip("198.51.100.0"), 24), false).unwrap_err();
        assert!(e.contains("larger than inside"), "{e}");
        let e = DetMap::new((ip("10.0.0.0"), 8), (ip("198.51.100.0"), 24), false).unwrap_err();
        assert!(e.contains("at most 32768"), "{e}");
        let e = DetMap::new((ip("10.0.0.0"), 16), (ip("198.51.0.0"), 23), false).unwrap_err();
        assert!(e.contains("at most 256"), "{e}");
        let a = DetMap::new((ip("10.0.0.0"), 24), (ip("198.51.100.0"), 30), false).unwrap();
        let b = DetMap::new((ip("10.0.0.128"), 25), (ip("198.51.100.8"), 30), false).unwrap();
        let e = DetTable::new(&[a, b]).unwrap_err();
        assert!(e.contains("overlaps the inside"), "{e}");
        let c = DetMap::new((ip("10.0.1.0"), 24), (ip("198.51.100.0"), 29), false).unwrap();
        let e = DetTable::new(&[a, c]).unwrap_err();
        assert!(e.contains("overlaps the outside"), "{e}");
    }

    #[test]
    fn table_numbers_outside_addresses_across_maps() {
        let a = DetMap::new((ip("10.0.0.0"), 24), (ip("198.51.100.0"), 30), false).unwrap();
        let b = DetMap::new((ip("10.0.1.0"), 24), (ip("198.51.100.8"), 29), true).unwrap();
        let t = DetTable::new(&[a, b]).unwrap();
        assert_eq!(t.outside_count(), 12);
        assert_eq!(t.outside_addr(0), Some(ip("198.51.100.0")));
        assert_eq!(t.outside_addr(4), Some(ip("198.51.100.8")));
        assert_eq!(t.outside_addr(11), Some(ip("198.51.100.15")));
        assert_eq!(t.outside_addr(12), None);
        let blk = t.inside(ip("10.0.1.200")).unwrap();
        assert_eq!(blk.out_addr, ip("198.51.100.8") + 200 / 32);
        assert_eq!(t.outside_addr(blk.addr_index), Some(blk.out_addr));
        assert_eq!(t.reverse(blk.out_addr, blk.lo + 7), Some(ip("10.0.1.200")));
        assert_eq!(t.outside(ip("198.51.100.9")).map(|(_, i)| i), Some(5));
        assert!(t.outside(ip("198.51.100.4")).is_none());
        assert!(t.inside(ip("10.0.2.1")).is_none());
    }
}
