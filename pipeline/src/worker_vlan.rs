//! The worker's side of VLAN sub-interfaces (see [`crate::vlan`]): receive from a port that
//! has sub-interfaces (demultiplex, pop, split the burst by interface) and transmit to a
//! sub-interface (push the tags, hand over to the parent port).

use std::sync::Arc;

use dpdk::{Burst, Mbuf, TxBuffer};

use super::{In, Scratch, Tally, Worker};
use crate::drop::DropReason;
use crate::vlan::{IFACE_BASE, VlanCounters, VlanMap};

/// The label of a received frame whose tags match no interface.
const UNKNOWN: u16 = u16::MAX;

/// What a worker needs of the sub-interfaces: the map and its own counters.
pub struct VlanRt {
    pub map: Arc<VlanMap>,
    pub counters: Arc<VlanCounters>,
}

impl Worker {
    /// Gives the worker the sub-interfaces of the configuration (every worker gets the same
    /// map and its own counters).
    pub fn set_vlans(&mut self, map: Arc<VlanMap>, counters: Arc<VlanCounters>) {
        self.vlan = Some(VlanRt { map, counters });
    }

    /// Whether bursts received on `port` go through [`Worker::process_vlan_rx`].
    #[inline]
    pub(super) fn demuxes(&self, port: u16) -> bool {
        self.vlan.as_ref().is_some_and(|v| v.map.has_port(port))
    }

    /// Whether a burst received on `port` goes to the chain's one stage as received, tags
    /// and all (see [`crate::Stage::takes_tagged`]).
    #[inline]
    pub(super) fn fused_from(&self, port: u16) -> bool {
        self.fused_vlan && self.vlan.as_ref().is_some_and(|v| v.map.takes_tagged(port))
    }

    /// A burst received on `port`, which has sub-interfaces: each frame goes to its
    /// interface (tags popped, the mbuf labelled with the interface id) or is dropped as
    /// `vlan_unknown`; then the chain runs once per interface, on its frames in order.
    pub(super) fn process_vlan_rx(
        &mut self,
        burst: &mut Burst,
        scratch: &mut Scratch,
        port: u16,
        now: u64,
    ) {
        let mut mixed = false;
        if let Some((v, rx)) = self.vlan.as_ref().and_then(|v| Some((v, v.map.rx(port)?))) {
            // One pass: tags read and popped, mbufs labelled (UNKNOWN: no interface), the
            // interfaces' counters added run by run (a burst is mostly one interface).
            let (mut unknown, mut unknown_bytes) = (0u64, 0u64);
            let (mut run, mut n, mut bytes) = (UNKNOWN, 0u64, 0u64);
            let mut first = None;
            for m in burst.as_mut_slice() {
                let Some(id) = rx.demux(m) else {
                    m.set_port(UNKNOWN);
                    unknown += 1;
                    unknown_bytes += m.pkt_len() as u64;
                    continue;
                };
                m.set_port(id);
                mixed |= *first.get_or_insert(id) != id;
                if id != run {
                    v.counters.add_rx(run, n, bytes);
                    (run, n, bytes) = (id, 0, 0);
                }
                n += 1;
                bytes += m.pkt_len() as u64;
            }
            v.counters.add_rx(run, n, bytes);
            if unknown > 0 {
                let c = &self.counters;
                c.rx_packets.add(unknown);
                c.rx_bytes.add(unknown_bytes);
                c.drops[DropReason::VlanUnknown as usize].add(unknown);
                let dropped = &mut scratch.dropped;
                burst.dispatch(|_, m| {
                    if m.port() == UNKNOWN {
                        // At most a burst's packets: the staging burst cannot overflow.
                        let _ = dropped.push(m);
                        None
                    } else {
                        Some(m)
                    }
                });
                dropped.free_all();
            }
        }
        if !mixed && !burst.is_empty() {
            let id = burst.as_slice()[0].port();
            self.process_burst(burst, scratch, id, In::Port, now);
            return;
        }
        while !burst.is_empty() {
            let id = burst.as_slice()[0].port();
            if burst.as_slice().iter().all(|m| m.port() == id) {
                self.process_burst(burst, scratch, id, In::Port, now);
                break;
            }
            let mut sub = Burst::new();
            burst.dispatch(|_, m| {
                if m.port() == id {
                    // Fewer packets than the burst it comes from.
                    let _ = sub.push(m);
                    None
                } else {
                    Some(m)
                }
            });
            self.process_burst(&mut sub, scratch, id, In::Port, now);
        }
    }
}

/// A whole burst sent to `port`, an interface id of a sub-interface: the tags pushed on every
/// packet, the burst handed to the parent port's TX buffer at once.
pub(super) fn tx_burst(
    tx: &mut [Option<TxBuffer>],
    vlan: Option<&VlanRt>,
    t: &mut Tally,
    (burst, dropped): (&mut Burst, &mut Burst),
    port: u16,
) {
    let Some((v, (parent, tag))) = vlan.and_then(|v| v.map.tagger(port).map(|p| (v, p))) else {
        t.drop(DropReason::BadPort, burst.len() as u32);
        burst.free_all();
        return;
    };
    let mut bytes = 0u64;
    // Bit i: packet i could not be tagged (no headroom: never with pollfwd's pools).
    let mut failed = 0u64;
    for (i, m) in burst.as_mut_slice().iter_mut().enumerate() {
        if tag(m) {
            bytes += m.pkt_len() as u64;
        } else {
            failed |= 1 << i;
        }
    }
    if failed != 0 {
        burst.dispatch(|i, m| {
            if failed & (1 << i) == 0 {
                return Some(m);
            }
            t.drop(DropReason::BadPort, 1);
            let _ = dropped.push(m);
            None
        });
        dropped.free_all();
    }
    v.counters.add_tx(port, burst.len() as u64, bytes);
    match tx.get_mut(parent as usize) {
        Some(Some(tb)) => t.tx.add(tb.push_burst_counted(burst, Some(bytes))),
        other => {
            let r = if other.is_some() {
                DropReason::NoTxQueue
            } else {
                DropReason::BadPort
            };
            t.drop(r, burst.len() as u32);
            burst.free_all();
        }
    }
}

/// Puts `m` in the TX buffer of `port`, an interface id: a port's own, or for a
/// sub-interface its parent's once the tags are pushed. Counts what it refuses.
#[inline]
pub(super) fn to_tx(
    tx: &mut [Option<TxBuffer>],
    vlan: Option<&VlanRt>,
    t: &mut Tally,
    dropped: &mut Burst,
    mut m: Mbuf,
    port: u16,
) {
    let port = if port < IFACE_BASE {
        port
    } else {
        match vlan.and_then(|v| v.map.push(port, &mut m).map(|p| (v, p))) {
            Some((v, p)) => {
                v.counters.add_tx(port, 1, m.pkt_len() as u64);
                p
            }
            None => {
                t.drop(DropReason::BadPort, 1);
                let _ = dropped.push(m);
                return;
            }
        }
    };
    match tx.get_mut(port as usize) {
        Some(Some(tb)) => {
            let r = tb.push(m);
            t.tx.add(r);
        }
        Some(None) => {
            t.drop(DropReason::NoTxQueue, 1);
            let _ = dropped.push(m);
        }
        None => {
            t.drop(DropReason::BadPort, 1);
            let _ = dropped.push(m);
        }
    }
}
