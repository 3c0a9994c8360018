//! Swaps the source and destination MAC addresses, then hands the packet on (pair it with
//! `xconnect` or `forward` to choose the egress port).

use dpdk::Mbuf;
use pollfwd_pipeline::{Stage, StageCtx, Verdict};

use crate::wire::ether;

pub struct Macswap;

/// Swaps the two MAC addresses of an Ethernet header in place. `frame` holds >= 12 bytes.
#[inline]
pub fn swap_macs(frame: &mut [u8]) {
    ether::Frame::new_unchecked(frame).swap_addrs();
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
            match ether::Frame::new_checked(m.data_mut()) {
                Ok(mut f) => f.swap_addrs(),
                Err(r) => *v = Verdict::Drop(r),
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
