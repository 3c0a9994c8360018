//! Static mappings: 1:1 address mappings (every protocol and port) and port forwards
//! (`203.0.113.5:443/tcp -> 10.0.0.5:8443`). Built off the data path, shared read-only by
//! every worker (`Arc`), replaced as a whole by the `nat.static.*` operations.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A small, fast hasher for integer keys (FxHash's multiply-rotate).
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// One static mapping. `proto: None` is a 1:1 address mapping (ports ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StaticMapping {
    pub proto: Option<u8>,
    pub out_addr: u32,
    pub out_port: u16,
    pub in_addr: u32,
    pub in_port: u16,
}

/// The lookup structure of all static mappings.
#[derive(Debug, Default, Clone)]
pub struct StaticTable {
    entries: Vec<StaticMapping>,
    fwd_out: FxMap<(u8, u32, u16), (u32, u16)>,
    fwd_in: FxMap<(u8, u32, u16), (u32, u16)>,
    addr_out: FxMap<u32, u32>,
    addr_in: FxMap<u32, u32>,
    out_addrs: HashSet<u32, BuildHasherDefault<Fx>>,
}

impl StaticTable {
    /// Builds the table; refuses overlapping mappings.
    pub fn new(entries: &[StaticMapping]) -> Result<StaticTable, String> {
        let mut t = StaticTable::default();
        for e in entries {
            t.add(*e)?;
        }
        Ok(t)
    }

    fn add(&mut self, e: StaticMapping) -> Result<(), String> {
        let show = |a: u32| std::net::Ipv4Addr::from(a);
        match e.proto {
            None => {
                if self.addr_out.contains_key(&e.out_addr) || self.out_addrs.contains(&e.out_addr) {
                    return Err(format!(
                        "outside address {} is already used by a static mapping",
                        show(e.out_addr)
                    ));
                }
                if self.addr_in.contains_key(&e.in_addr) {
                    return Err(format!(
                        "inside address {} already has a 1:1 mapping",
                        show(e.in_addr)
                    ));
                }
                self.addr_out.insert(e.out_addr, e.in_addr);
                self.addr_in.insert(e.in_addr, e.out_addr);
            }
            Some(p) => {
                if self.addr_out.contains_key(&e.out_addr) {
                    return Err(format!(
                        "outside address {} already has a 1:1 mapping",
                        show(e.out_addr)
                    ));
                }
                if self.fwd_out.contains_key(&(p, e.out_addr, e.out_port)) {
                    return Err(format!(
                        "{}:{} is already forwarded",
                        show(e.out_addr),
                        e.out_port
                    ));
                }
                if self.fwd_in.contains_key(&(p, e.in_addr, e.in_port)) {
                    return Err(format!(
                        "{}:{} is already the target of a port forward",
                        show(e.in_addr),
                        e.in_port
                    ));
                }
                self.fwd_out
                    .insert((p, e.out_addr, e.out_port), (e.in_addr, e.in_port));
                self.fwd_in
                    .insert((p, e.in_addr, e.in_port), (e.out_addr, e.out_port));
            }
        }
        self.out_addrs.insert(e.out_addr);
        self.entries.push(e);
        Ok(())
    }

    pub fn entries(&self) -> &[StaticMapping] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `addr` is the outside address of some static mapping.
    #[inline]
    pub fn is_outside(&self, addr: u32) -> bool {
        !self.out_addrs.is_empty() && self.out_addrs.contains(&addr)
    }

    /// Inbound: the inside endpoint for outside (addr, port) of `proto` (port forwards first,
    /// then 1:1 address mappings, which keep the port).
    #[inline]
    pub fn lookup_out(&self, proto: u8, addr: u32, port: u16) -> Option<(u32, u16)> {
        if self.entries.is_empty() {
            return None;
        }
        if proto != super::pkt::PROTO_ICMP
            && let Some(v) = self.fwd_out.get(&(proto, addr, port))
        {
            return Some(*v);
        }
        self.addr_out.get(&addr).map(|a| (*a, port))
    }

    /// Outbound: the outside endpoint for inside (addr, port) of `proto`.
    #[inline]
    pub fn lookup_in(&self, proto: u8, addr: u32, port: u16) -> Option<(u32, u16)> {
        if self.entries.is_empty() {
            return None;
        }
        if proto != super::pkt::PROTO_ICMP
            && let Some(v) = self.fwd_in.get(&(proto, addr, port))
        {
            return Some(*v);
        }
        self.addr_in.get(&addr).map(|a| (*a, port))
    }

    /// The inside address whose worker owns inbound sessions to outside (addr, port).
    #[inline]
    pub fn owner_addr(&self, proto: u8, addr: u32, port: u16) -> Option<u32> {
        self.lookup_out(proto, addr, port).map(|(a, _)| a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: u8 = 6;
    const UDP: u8 = 17;

    fn fwd(out: u32, op: u16, inn: u32, ip: u16) -> StaticMapping {
        StaticMapping {
            proto: Some(TCP),
            out_addr: out,
            out_port: op,
            in_addr: inn,
            in_port: ip,
        }
    }

    #[test]
    fn port_forward_and_one_to_one() {
        let one = StaticMapping {
            proto: None,
            out_addr: 0xcb00_7106,
            out_port: 0,
            in_addr: 0x0a00_0006,
            in_port: 0,
        };
        let t = StaticTable::new(&[fwd(0xcb00_7105, 443, 0x0a00_0005, 8443), one]).unwrap();
        assert_eq!(
            t.lookup_out(TCP, 0xcb00_7105, 443),
            Some((0x0a00_0005, 8443))
        );
        assert_eq!(t.lookup_out(UDP, 0xcb00_7105, 443), None);
        assert_eq!(t.lookup_out(TCP, 0xcb00_7105, 444), None);
        assert_eq!(
            t.lookup_in(TCP, 0x0a00_0005, 8443),
            Some((0xcb00_7105, 443))
        );
        assert_eq!(t.lookup_out(UDP, 0xcb00_7106, 53), Some((0x0a00_0006, 53)));
        assert_eq!(t.lookup_in(1, 0x0a00_0006, 77), Some((0xcb00_7106, 77)));
        assert!(t.is_outside(0xcb00_7105) && t.is_outside(0xcb00_7106));
        assert!(!t.is_outside(0xcb00_7107));
    }

    #[test]
    fn overlaps_are_refused() {
        let a = fwd(1, 80, 2, 80);
        assert!(StaticTable::new(&[a, a]).is_err());
        assert!(StaticTable::new(&[a, fwd(3, 81, 2, 80)]).is_err());
        let one = StaticMapping {
            proto: None,
            out_addr: 1,
            out_port: 0,
            in_addr: 9,
            in_port: 0,
        };
        assert!(StaticTable::new(&[a, one]).is_err());
    }
}
