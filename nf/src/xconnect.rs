//! Cross-connect: every packet leaves on the peer of the port it arrived on.

use std::any::Any;

use dpdk::Mbuf;
use pollfwd_pipeline::{DropReason, Stage, StageCtx, Verdict};

/// Port pairs, as a table indexed by ingress port id.
pub struct Xconnect {
    peer: PeerTable,
}

/// The cross-connect table: peer of each ingress port id. Built off the data path and swapped
/// in whole through [`Stage::control`] on a live change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerTable(Vec<Option<u16>>);

impl PeerTable {
    /// `pairs` of DPDK port ids; each pair connects both ways.
    pub fn new(pairs: &[(u16, u16)]) -> PeerTable {
        let max = pairs.iter().map(|&(a, b)| a.max(b)).max().unwrap_or(0) as usize;
        let mut peer = vec![None; max + 1];
        for &(a, b) in pairs {
            peer[a as usize] = Some(b);
            peer[b as usize] = Some(a);
        }
        PeerTable(peer)
    }

    /// Where a frame received on `port` goes: its peer, or a `no_xconnect` drop.
    #[inline]
    fn verdict(&self, port: u16) -> Verdict {
        match self.0.get(port as usize).copied().flatten() {
            Some(p) => Verdict::Tx(p),
            None => Verdict::Drop(DropReason::NoXconnect),
        }
    }
}

impl Xconnect {
    /// `pairs` of DPDK port ids; each pair connects both ways.
    pub fn new(pairs: &[(u16, u16)]) -> Xconnect {
        Xconnect {
            peer: PeerTable::new(pairs),
        }
    }
}

impl Stage for Xconnect {
    fn name(&self) -> &'static str {
        "xconnect"
    }

    fn changes_length(&self) -> bool {
        false
    }

    fn needs_clock(&self) -> bool {
        false
    }

    fn needs_meta(&self) -> bool {
        false
    }

    fn control(
        &mut self,
        msg: Box<dyn Any + Send>,
    ) -> Result<Box<dyn Any + Send>, Box<dyn Any + Send>> {
        let new = msg.downcast::<PeerTable>()?;
        Ok(Box::new(std::mem::replace(&mut self.peer, *new)))
    }

    fn process(&mut self, ctx: &mut StageCtx<'_>, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) {
        // A burst straight off one RX queue with no runt in it: one verdict for all, without
        // touching a packet (the runtime measured each packet's length on receive).
        if let Some(rx) = ctx.rx
            && rx.min_data_len as usize >= crate::wire::ether::HEADER_LEN
        {
            ctx.verdict_all(self.peer.verdict(rx.port));
            return;
        }
        for (m, v) in pkts.iter().zip(verdicts.iter_mut()) {
            *v = if (m.data_len() as usize) < crate::wire::ether::HEADER_LEN {
                Verdict::Drop(DropReason::Runt)
            } else {
                self.peer.verdict(m.port())
            };
        }
    }
}
