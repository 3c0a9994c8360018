//! VLAN sub-interfaces in the runtime: 802.1Q tags (and 802.1ad QinQ pairs) popped on
//! receive, pushed on transmit, in software.
//!
//! pollfwd's interface ids extend DPDK's port ids: a port is the interface of its untagged
//! traffic and keeps its DPDK port id; VLAN sub-interfaces get ids from [`IFACE_BASE`] up
//! (DPDK never gives a port id that high). Stages see interface ids wherever they see ports
//! (`StageCtx::in_port`, `PktMeta::in_port`, `Verdict::Tx`), so routes, neighbours, NAT's
//! inside/outside, ACL `in_port` take sub-interfaces like ports, and only this module and the
//! worker know about tags.
//!
//! Receive: a worker polling a port that has sub-interfaces reads each frame's tags (the ones
//! the PMD stripped into the mbuf, `RTE_MBUF_F_RX_VLAN_STRIPPED`, then the ones in the frame),
//! finds the sub-interface, pops the tags (the MAC addresses move 4 bytes per tag) and labels
//! the mbuf with the interface id; a burst mixing interfaces is split into one burst per
//! interface, in order, so every stage still sees bursts from one interface. Untagged and
//! priority-tagged (VID 0) frames stay on the port; a frame whose tags match no sub-interface
//! is dropped as `vlan_unknown`. Transmit: a packet sent to a sub-interface gets its tags
//! pushed and goes to the parent port's TX buffer.

use std::sync::Arc;

use dpdk::Mbuf;

use crate::counters::Counter;

/// TPID of an 802.1Q (C-) tag.
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad (S-) tag, the outer tag of QinQ.
pub const TPID_8021AD: u16 = 0x88a8;

/// The first interface id of VLAN sub-interfaces (every DPDK port id is below it).
pub const IFACE_BASE: u16 = dpdk::MAX_PORTS;
/// Most VLAN sub-interfaces a configuration may have.
pub const MAX_VLAN_IFACES: usize = 1024;

/// Tags read per frame at most (QinQ).
const MAX_TAGS: usize = 2;

/// Whether `ethertype` is a VLAN tag's TPID (what a tagged frame has where an untagged one
/// has its EtherType).
#[inline]
pub fn is_tpid(ethertype: u16) -> bool {
    ethertype == TPID_8021Q || ethertype == TPID_8021AD
}

/// A VLAN sub-interface as the runtime sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanIface {
    /// Interface id (>= [`IFACE_BASE`]).
    pub id: u16,
    /// DPDK port id of the parent port.
    pub parent: u16,
    /// VLAN id of the (inner, for QinQ) 802.1Q tag, 1..=4094.
    pub vid: u16,
    /// QinQ: the outer tag's TPID and VLAN id.
    pub outer: Option<(u16, u16)>,
}

/// Sub-interfaces of one port, by tag.
struct PortDemux {
    /// Single tag: VLAN id -> interface id (0: none).
    single: Box<[u16; 4096]>,
    /// Outer tag of a pair: VLAN id -> 1 + index into `inner` (0: none).
    outer: Box<[u16; 4096]>,
    inner: Vec<Box<[u16; 4096]>>,
    /// The port's device strips tags on receive (the mbuf says which): the frames go
    /// through the runtime's receive pass, never to a stage as received ([`TaggedRx`]).
    strip: bool,
}

/// The tags a packet sent to a sub-interface gets, after its MAC addresses.
#[derive(Debug, Clone, Copy)]
struct PushTags {
    parent: u16,
    len: u16,
    bytes: [u8; 4 * MAX_TAGS],
    /// One 802.1Q tag, inserted by the parent port's device (its TCI).
    offload: Option<u16>,
}

impl PushTags {
    /// Tags `m` (or asks the device to); false, changing nothing, if the headroom is too
    /// small or the frame has no MAC addresses.
    #[inline(always)]
    fn push(&self, m: &mut Mbuf) -> bool {
        if let Some(tci) = self.offload {
            m.set_tx_vlan(tci);
            return true;
        }
        if m.data_len() < 12 {
            return false;
        }
        // Constant sizes: moves the compiler inlines (no memmove call per packet).
        let mut tags = [0u8; 4 * MAX_TAGS];
        tags.copy_from_slice(&self.bytes);
        let one = self.len == 4;
        let Some(d) = m.grow_front(self.len) else {
            return false;
        };
        if one {
            let macs: [u8; 12] = d[4..16].try_into().expect("12 bytes");
            d[..12].copy_from_slice(&macs);
            d[12..16].copy_from_slice(&tags[..4]);
        } else {
            let macs: [u8; 12] = d[8..20].try_into().expect("12 bytes");
            d[..12].copy_from_slice(&macs);
            d[12..20].copy_from_slice(&tags);
        }
        true
    }
}

/// Every sub-interface: what receive and transmit need. Built once at start-up, read-only.
pub struct VlanMap {
    /// Indexed by DPDK port id: the port's sub-interfaces, if it has any.
    ports: Vec<Option<PortDemux>>,
    /// Indexed by interface id - [`IFACE_BASE`].
    push: Vec<PushTags>,
}

impl VlanMap {
    /// Builds the map; `ifaces` must have ids `IFACE_BASE..` in order. The devices of the
    /// ports in `tx_insert` insert 802.1Q tags on transmit (the VLAN insert offload): a
    /// sub-interface with one tag on such a port has its tag inserted by the device.
    pub fn new(ifaces: &[VlanIface], tx_insert: &[u16]) -> Result<VlanMap, String> {
        if ifaces.len() > MAX_VLAN_IFACES {
            return Err(format!(
                "{} VLAN sub-interfaces, at most {MAX_VLAN_IFACES}",
                ifaces.len()
            ));
        }
        let mut ports: Vec<Option<PortDemux>> = Vec::new();
        let mut push = Vec::with_capacity(ifaces.len());
        for (k, v) in ifaces.iter().enumerate() {
            if v.id as usize != IFACE_BASE as usize + k {
                return Err(format!("VLAN interface id {} out of order", v.id));
            }
            if !(1..=4094).contains(&v.vid)
                || v.outer.is_some_and(|(_, o)| !(1..=4094).contains(&o))
            {
                return Err(format!("VLAN id of interface {} not in 1..=4094", v.id));
            }
            if v.parent >= IFACE_BASE {
                return Err(format!("parent {} is not a port", v.parent));
            }
            let p = v.parent as usize;
            if ports.len() <= p {
                ports.resize_with(p + 1, || None);
            }
            let d = ports[p].get_or_insert_with(|| PortDemux {
                single: Box::new([0; 4096]),
                outer: Box::new([0; 4096]),
                inner: Vec::new(),
                strip: false,
            });
            let slot = match v.outer {
                None => &mut d.single[v.vid as usize],
                Some((_, o)) => {
                    if d.outer[o as usize] == 0 {
                        d.inner.push(Box::new([0; 4096]));
                        d.outer[o as usize] = d.inner.len() as u16;
                    }
                    let i = d.outer[o as usize] as usize - 1;
                    &mut d.inner[i][v.vid as usize]
                }
            };
            if *slot != 0 {
                return Err(format!(
                    "interfaces {} and {} have the same tags on one port",
                    *slot, v.id
                ));
            }
            *slot = v.id;
            let mut bytes = [0u8; 4 * MAX_TAGS];
            let mut len = 0usize;
            if let Some((tpid, o)) = v.outer {
                bytes[..2].copy_from_slice(&tpid.to_be_bytes());
                bytes[2..4].copy_from_slice(&o.to_be_bytes());
                len = 4;
            }
            bytes[len..len + 2].copy_from_slice(&TPID_8021Q.to_be_bytes());
            bytes[len + 2..len + 4].copy_from_slice(&v.vid.to_be_bytes());
            push.push(PushTags {
                parent: v.parent,
                len: (len + 4) as u16,
                bytes,
                offload: (v.outer.is_none() && tx_insert.contains(&v.parent)).then_some(v.vid),
            });
        }
        Ok(VlanMap { ports, push })
    }

    /// Marks the ports whose devices strip VLAN tags on receive (the VLAN strip offload).
    pub fn with_rx_strip(mut self, ports: &[u16]) -> VlanMap {
        for &p in ports {
            if let Some(Some(d)) = self.ports.get_mut(p as usize) {
                d.strip = true;
            }
        }
        self
    }

    /// Whether a burst received on `port` may go to a stage as received ([`TaggedRx`]): the
    /// port has sub-interfaces and its device strips no tags.
    #[inline]
    pub fn takes_tagged(&self, port: u16) -> bool {
        matches!(self.ports.get(port as usize), Some(Some(d)) if !d.strip)
    }

    /// Number of sub-interfaces.
    pub fn len(&self) -> usize {
        self.push.len()
    }

    pub fn is_empty(&self) -> bool {
        self.push.is_empty()
    }

    /// Whether DPDK port `port` has sub-interfaces (its received frames go through
    /// [`VlanMap::demux`]).
    #[inline]
    pub fn has_port(&self, port: u16) -> bool {
        matches!(self.ports.get(port as usize), Some(Some(_)))
    }

    /// The interface of a frame received on `port` with the VLAN ids `vids` (outer first);
    /// `None`: no such sub-interface.
    fn lookup(&self, port: u16, vids: &[u16]) -> Option<u16> {
        let d = self.ports.get(port as usize)?.as_ref()?;
        let id = match *vids {
            [] | [0] => return Some(port),
            [v] => d.single[v as usize],
            [o, i] => match d.outer[o as usize] {
                0 => 0,
                k => d.inner[k as usize - 1][i as usize],
            },
            _ => 0,
        };
        (id != 0).then_some(id)
    }

    /// The receive side of port `port`, for a burst: `None` if it has no sub-interfaces.
    #[inline]
    pub fn rx(&self, port: u16) -> Option<PortRx<'_>> {
        let d = self.ports.get(port as usize)?.as_ref()?;
        Some(PortRx {
            map: self,
            port,
            single: &d.single,
        })
    }

    /// The interface of a frame received on `port` with the tags `stripped` by the PMD (TCI,
    /// outer TCI) and the frame's bytes `d`, and how many tags to pop from the frame; `None`:
    /// tags of no sub-interface, or more than two. Reads only.
    pub fn classify(
        &self,
        port: u16,
        stripped: Option<(u16, Option<u16>)>,
        d: &[u8],
    ) -> Option<(u16, usize)> {
        let mut vids = [0u16; MAX_TAGS + 1];
        let mut n = 0;
        if let Some((tci, outer)) = stripped {
            if let Some(o) = outer {
                vids[n] = o & 0xfff;
                n += 1;
            }
            vids[n] = tci & 0xfff;
            n += 1;
        }
        let in_frame = frame_tags(d, &mut vids, &mut n);
        if n > MAX_TAGS {
            return None;
        }
        Some((self.lookup(port, &vids[..n])?, in_frame))
    }

    /// Reads the tags of a frame received on `port` (stripped by the PMD, then in the frame),
    /// pops the ones in the frame and returns the interface it belongs to; `None` (the frame
    /// unchanged but for the PMD's flags): tags of no sub-interface, or more than two.
    #[inline(never)]
    pub fn demux(&self, port: u16, m: &mut Mbuf) -> Option<u16> {
        let stripped = m.rx_stripped_vlan();
        if stripped.is_some() {
            m.clear_rx_vlan();
        }
        let (id, pop) = self.classify(port, stripped, m.data())?;
        pop_tags(m, pop);
        Some(id)
    }

    /// The parent port of sub-interface `id`, after pushing its tags onto `m` (or asking the
    /// device to insert its one tag); `None` (the packet unchanged): `id` is no sub-interface,
    /// or the headroom is too small.
    #[inline]
    pub fn push(&self, id: u16, m: &mut Mbuf) -> Option<u16> {
        let t = self.push.get(id.checked_sub(IFACE_BASE)? as usize)?;
        t.push(m).then_some(t.parent)
    }

    /// What [`VlanMap::push`] does for sub-interface `id`, looked up once for a burst: its
    /// parent port and the tagger.
    #[inline]
    pub fn tagger(&self, id: u16) -> Option<(u16, impl Fn(&mut Mbuf) -> bool + '_)> {
        let t = self.push.get(id.checked_sub(IFACE_BASE)? as usize)?;
        Some((t.parent, move |m: &mut Mbuf| t.push(m)))
    }
}

/// The receive side of one port that has sub-interfaces (see [`VlanMap::rx`]).
#[derive(Clone, Copy)]
pub struct PortRx<'a> {
    map: &'a VlanMap,
    port: u16,
    single: &'a [u16; 4096],
}

impl PortRx<'_> {
    /// [`VlanMap::classify`] for a frame received on this port, with fast paths for the
    /// common frames: untagged; one 802.1Q tag in the frame and nothing stripped by the PMD;
    /// one tag stripped by the device (VLAN strip offload) and none in the frame.
    #[inline(always)]
    pub fn classify(&self, stripped: Option<(u16, Option<u16>)>, d: &[u8]) -> Option<(u16, usize)> {
        let ethertype = |at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
        match stripped {
            None if d.len() >= 18 && ethertype(12) == TPID_8021Q && !is_tpid(ethertype(16)) => {
                let vid = ethertype(14) & 0xfff;
                if vid != 0 {
                    let id = self.single[vid as usize];
                    return (id != 0).then_some((id, 1));
                }
            }
            None if d.len() >= 14 && !is_tpid(ethertype(12)) => return Some((self.port, 0)),
            Some((tci, None)) if d.len() >= 14 && !is_tpid(ethertype(12)) && tci & 0xfff != 0 => {
                let id = self.single[(tci & 0xfff) as usize];
                return (id != 0).then_some((id, 0));
            }
            _ => {}
        }
        self.map.classify(self.port, stripped, d)
    }

    /// [`VlanMap::demux`] for a frame received on this port (through [`PortRx::classify`]).
    #[inline(always)]
    pub fn demux(&self, m: &mut Mbuf) -> Option<u16> {
        let stripped = m.rx_stripped_vlan();
        if stripped.is_some() {
            m.clear_rx_vlan();
        }
        let (id, pop) = self.classify(stripped, m.data())?;
        pop_tags(m, pop);
        Some(id)
    }
}

/// A burst from a port with sub-interfaces, handed to a first stage that takes tagged
/// frames ([`crate::Stage::takes_tagged`]) as received: the stage forwards the common frame
/// (one 802.1Q tag of a sub-interface, out of a sub-interface with one tag) with its L2 header
/// rewritten in place, and gives every other frame to [`TaggedRx::demux`] first, which does
/// what the runtime's receive pass does for other chains (pop the tags, find the interface;
/// the stage counts the receive).
#[derive(Clone, Copy)]
pub struct TaggedRx<'a> {
    rx: PortRx<'a>,
    map: &'a VlanMap,
    counters: &'a VlanCounters,
}

impl<'a> TaggedRx<'a> {
    /// The view of port `port`'s sub-interfaces; `None` if it has none.
    pub fn new(map: &'a VlanMap, counters: &'a VlanCounters, port: u16) -> Option<TaggedRx<'a>> {
        if !map.takes_tagged(port) {
            return None;
        }
        Some(TaggedRx {
            rx: map.rx(port)?,
            map,
            counters,
        })
    }

    /// The DPDK port the burst came from.
    #[inline]
    pub fn port(&self) -> u16 {
        self.rx.port
    }

    /// The sub-interface of a frame whose one 802.1Q tag carries VLAN id `vid` (1..=4094)
    /// and that the PMD did not strip a tag from; `None`: no such sub-interface.
    #[inline(always)]
    pub fn iface(&self, vid: u16) -> Option<u16> {
        let id = self.rx.single[(vid & 0xfff) as usize];
        (id != 0).then_some(id)
    }

    /// For sub-interface `id` with one 802.1Q tag that software writes (not QinQ, not
    /// inserted by the device): its parent port and the tag as it sits in a frame (TPID, TCI).
    #[inline]
    pub fn egress_tag(&self, id: u16) -> Option<(u16, [u8; 4])> {
        let t = self.map.push.get(id.checked_sub(IFACE_BASE)? as usize)?;
        (t.len == 4 && t.offload.is_none())
            .then(|| (t.parent, [t.bytes[0], t.bytes[1], t.bytes[2], t.bytes[3]]))
    }

    /// The runtime's receive work for one frame: its interface (tags popped, or the port for
    /// untagged and priority-tagged frames); `None` (the frame unchanged): tags of no
    /// interface, to be dropped as `vlan_unknown`. The caller counts the receive
    /// ([`TaggedRx::count_rx`]), once for a stretch of frames.
    #[inline]
    pub fn demux(&self, m: &mut Mbuf) -> Option<u16> {
        self.rx.demux(m)
    }

    /// [`TaggedRx::demux`] for a frame of interface `id` only: false (the frame unchanged) if
    /// it belongs to another interface or none.
    #[inline]
    pub fn demux_as(&self, m: &mut Mbuf, id: u16) -> bool {
        let stripped = m.rx_stripped_vlan();
        match self.rx.classify(stripped, m.data()) {
            Some((got, pop)) if got == id => {
                if stripped.is_some() {
                    m.clear_rx_vlan();
                }
                pop_tags(m, pop);
                true
            }
            _ => false,
        }
    }

    /// Adds `n` frames of `bytes` (tags not counted) to interface `id`'s receive counters.
    #[inline]
    pub fn count_rx(&self, id: u16, n: u64, bytes: u64) {
        self.counters.add_rx(id, n, bytes);
    }

    /// Adds `n` packets of `bytes` (tags counted) to interface `id`'s transmit counters.
    #[inline]
    pub fn count_tx(&self, id: u16, n: u64, bytes: u64) {
        self.counters.add_tx(id, n, bytes);
    }
}

/// Pops the first `n` tags of `m`'s frame (the MAC addresses move up by 4 bytes per tag).
#[inline(always)]
fn pop_tags(m: &mut Mbuf, n: usize) {
    match n {
        0 => {}
        1 => {
            let d = m.data_mut();
            let macs: [u8; 12] = d[..12].try_into().expect("12 bytes");
            d[4..16].copy_from_slice(&macs);
            m.strip_front(4);
        }
        _ => {
            let d = m.data_mut();
            d.copy_within(0..12, 4 * n);
            m.strip_front(4 * n as u16);
        }
    }
}

/// Appends the VLAN ids of the tags at the front of Ethernet frame `d` to `vids[*n..]` (at
/// most one more than the room left, to tell "too many"); returns how many tags the frame
/// has there (all complete: a tag cut short by the frame's end counts as none).
#[inline]
fn frame_tags(d: &[u8], vids: &mut [u16; MAX_TAGS + 1], n: &mut usize) -> usize {
    let mut in_frame = 0;
    let mut off = 12;
    while *n <= MAX_TAGS && d.len() >= off + 6 && is_tpid(u16::from_be_bytes([d[off], d[off + 1]]))
    {
        vids[*n] = u16::from_be_bytes([d[off + 2], d[off + 3]]) & 0xfff;
        *n += 1;
        in_frame += 1;
        off += 4;
    }
    in_frame
}

/// Counters of one worker's traffic on the sub-interfaces (single writer: that worker).
/// Receive counts frames demultiplexed to the interface; transmit counts packets handed to
/// the parent port's TX buffer with the interface's tags (what the NIC then refuses is
/// counted as `tx_full` on the lcore, as for any port).
#[derive(Debug, Default)]
pub struct IfaceCounters {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
}

/// One worker's [`IfaceCounters`], indexed by interface id - [`IFACE_BASE`].
#[derive(Debug)]
pub struct VlanCounters(pub Box<[IfaceCounters]>);

impl VlanCounters {
    pub fn new(n: usize) -> Arc<VlanCounters> {
        Arc::new(VlanCounters(
            (0..n).map(|_| IfaceCounters::default()).collect(),
        ))
    }

    /// The counters of interface `id`, if it is a sub-interface.
    #[inline]
    pub fn get(&self, id: u16) -> Option<&IfaceCounters> {
        self.0.get(id.checked_sub(IFACE_BASE)? as usize)
    }

    /// Adds `n` frames of `bytes` (tags popped) to interface `id`'s receive counters (a port's
    /// own traffic has none here: nothing to add).
    #[inline]
    pub fn add_rx(&self, id: u16, n: u64, bytes: u64) {
        if let Some(c) = self.get(id) {
            c.rx_packets.add(n);
            c.rx_bytes.add(bytes);
        }
    }

    /// Adds `n` packets of `bytes` (tags pushed) to interface `id`'s transmit counters.
    #[inline]
    pub fn add_tx(&self, id: u16, n: u64, bytes: u64) {
        if let Some(c) = self.get(id) {
            c.tx_packets.add(n);
            c.tx_bytes.add(bytes);
        }
    }

    /// Zeroes every counter (by the owning worker, on `clear`).
    pub fn reset(&self) {
        for c in self.0.iter() {
            c.rx_packets.reset();
            c.rx_bytes.reset();
            c.tx_packets.reset();
            c.tx_bytes.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> VlanMap {
        VlanMap::new(
            &[
                VlanIface {
                    id: IFACE_BASE,
                    parent: 0,
                    vid: 10,
                    outer: None,
                },
                VlanIface {
                    id: IFACE_BASE + 1,
                    parent: 0,
                    vid: 20,
                    outer: None,
                },
                VlanIface {
                    id: IFACE_BASE + 2,
                    parent: 1,
                    vid: 10,
                    outer: None,
                },
                VlanIface {
                    id: IFACE_BASE + 3,
                    parent: 1,
                    vid: 30,
                    outer: Some((TPID_8021AD, 100)),
                },
            ],
            &[],
        )
        .unwrap()
    }

    fn tagged(tags: &[(u16, u16)]) -> Vec<u8> {
        let mut f = vec![0xaa; 6];
        f.extend([0xbb; 6]);
        for &(tpid, vid) in tags {
            f.extend(tpid.to_be_bytes());
            f.extend(vid.to_be_bytes());
        }
        f.extend(0x0800u16.to_be_bytes());
        f.extend([0x45; 20]);
        f
    }

    fn ids(m: &VlanMap, port: u16, f: &[u8]) -> Option<u16> {
        let mut vids = [0u16; MAX_TAGS + 1];
        let mut n = 0;
        frame_tags(f, &mut vids, &mut n);
        if n > MAX_TAGS {
            return None;
        }
        m.lookup(port, &vids[..n])
    }

    #[test]
    fn frames_find_their_interface_by_port_and_tags() {
        let m = map();
        assert_eq!(ids(&m, 0, &tagged(&[])), Some(0));
        assert_eq!(ids(&m, 0, &tagged(&[(TPID_8021Q, 10)])), Some(IFACE_BASE));
        // PCP and DEI bits do not change the VLAN.
        assert_eq!(
            ids(&m, 0, &tagged(&[(TPID_8021Q, 0xa000 | 20)])),
            Some(IFACE_BASE + 1)
        );
        // Priority-tagged: the port's own traffic.
        assert_eq!(ids(&m, 0, &tagged(&[(TPID_8021Q, 0xe000)])), Some(0));
        // VLAN 10 exists on both ports, as different interfaces.
        assert_eq!(
            ids(&m, 1, &tagged(&[(TPID_8021Q, 10)])),
            Some(IFACE_BASE + 2)
        );
        assert_eq!(ids(&m, 0, &tagged(&[(TPID_8021Q, 30)])), None);
        // QinQ: outer S-tag 100 (either TPID), inner 30.
        assert_eq!(
            ids(&m, 1, &tagged(&[(TPID_8021AD, 100), (TPID_8021Q, 30)])),
            Some(IFACE_BASE + 3)
        );
        assert_eq!(
            ids(&m, 1, &tagged(&[(TPID_8021Q, 100), (TPID_8021Q, 30)])),
            Some(IFACE_BASE + 3)
        );
        assert_eq!(
            ids(&m, 1, &tagged(&[(TPID_8021AD, 100), (TPID_8021Q, 31)])),
            None
        );
        assert_eq!(ids(&m, 1, &tagged(&[(TPID_8021AD, 100)])), None);
        assert_eq!(
            ids(
                &m,
                1,
                &tagged(&[(TPID_8021AD, 100), (TPID_8021Q, 30), (TPID_8021Q, 1)])
            ),
            None
        );
        // A tag cut short by the end of the frame is not read as one.
        let mut runt = tagged(&[(TPID_8021Q, 10)]);
        runt.truncate(16);
        assert_eq!(ids(&m, 0, &runt), Some(0));
    }

    #[test]
    fn configurations_with_clashing_or_bad_tags_are_refused() {
        let v = |id, parent, vid, outer| VlanIface {
            id,
            parent,
            vid,
            outer,
        };
        let new = |i: &[VlanIface]| VlanMap::new(i, &[]);
        assert!(new(&[v(IFACE_BASE, 0, 10, None), v(IFACE_BASE + 1, 0, 10, None)]).is_err());
        assert!(new(&[v(IFACE_BASE, 0, 0, None)]).is_err());
        assert!(new(&[v(IFACE_BASE, 0, 4095, None)]).is_err());
        assert!(new(&[v(IFACE_BASE + 1, 0, 10, None)]).is_err());
        assert!(new(&[v(IFACE_BASE, IFACE_BASE, 10, None)]).is_err());
        let m = VlanMap::new(
            &[
                v(IFACE_BASE, 0, 10, Some((TPID_8021AD, 5))),
                v(IFACE_BASE + 1, 0, 10, None),
            ],
            &[],
        )
        .unwrap();
        assert!(m.has_port(0) && !m.has_port(1));
        assert_eq!(m.tagger(IFACE_BASE + 1).map(|(p, _)| p), Some(0));
        assert!(m.tagger(3).is_none());
    }
}
