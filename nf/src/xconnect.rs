//! Cross-connect: every packet leaves on the peer of the port it arrived on.

use dpdk::Mbuf;
use pollfwd_pipeline::{DropReason, Stage, StageCtx, Verdict};

/// Port pairs, as a table indexed by ingress port id.
pub struct Xconnect {
    peer: Vec<Option<u16>>,
}

impl Xconnect {
    /// `pairs` of DPDK port ids; each pair connects both ways.
    pub fn new(pairs: &[(u16, u16)]) -> Xconnect {
        let max = pairs.iter().map(|&(a, b)| a.max(b)).max().unwrap_or(0) as usize;
        let mut peer = vec![None; max + 1];
        for &(a, b) in pairs {
            peer[a as usize] = Some(b);
            peer[b as usize] = Some(a);
        }
        Xconnect { peer }
    }
}

impl Stage for Xconnect {
    fn name(&self) -> &'static str {
        "xconnect"
    }

    fn needs_meta(&self) -> bool {
        false
    }

    fn process(&mut self, _ctx: &mut StageCtx<'_>, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) {
        for (m, v) in pkts.iter().zip(verdicts.iter_mut()) {
            *v = if (m.data_len() as usize) < crate::ETH_HDR_LEN {
                Verdict::Drop(DropReason::Runt)
            } else {
                match self.peer.get(m.port() as usize).copied().flatten() {
                    Some(p) => Verdict::Tx(p),
                    None => Verdict::Drop(DropReason::NoXconnect),
                }
            };
        }
    }
}
