//! Swaps the source and destination MAC addresses, then hands the packet on (pair it with
//! `xconnect` or `forward` to choose the egress port).

use dpdk::Mbuf;
use pollfwd_pipeline::{DropReason, Stage, StageCtx, Verdict};

pub struct Macswap;

/// Swaps the two MAC addresses of an Ethernet header in place. `frame` holds >= 12 bytes.
#[inline]
pub fn swap_macs(frame: &mut [u8]) {
    let (dst, rest) = frame.split_at_mut(6);
    dst.swap_with_slice(&mut rest[..6]);
}

impl Stage for Macswap {
    fn name(&self) -> &'static str {
        "macswap"
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

    fn process(&mut self, _ctx: &mut StageCtx<'_>, pkts: &mut [Mbuf], verdicts: &mut [Verdict]) {
        for (m, v) in pkts.iter_mut().zip(verdicts.iter_mut()) {
            let d = m.data_mut();
            if d.len() < crate::ETH_HDR_LEN {
                *v = Verdict::Drop(DropReason::Runt);
            } else {
                swap_macs(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn swaps_only_macs() {
        let mut f: Vec<u8> = (0u8..20).collect();
        super::swap_macs(&mut f);
        assert_eq!(&f[..12], &[6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5]);
        assert_eq!(&f[12..], &(12u8..20).collect::<Vec<_>>()[..]);
    }
}
