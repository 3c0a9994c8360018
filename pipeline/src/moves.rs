//! How the worker moves a burst after a stage: the [`Shape`] of the stage's verdicts (whole,
//! a few drops among packets that otherwise go the same way, or mixed), and the per-burst
//! [`Tally`] of what left and what was dropped.

use dpdk::txbuf::TxResult;

use crate::drop::DropReason;
use crate::stage::{DropTally, Verdict};

/// How a stage's verdicts move a burst: `drops` packets dropped (bit i of `mask`: packet i),
/// and `rest` the verdict every other packet got when they all got the same `Continue` or
/// `Tx` (None: they differ, got another verdict, or there are none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) rest: Option<Verdict>,
    pub(crate) drops: usize,
    pub(crate) mask: u64,
}

/// [`Shape::of`]'s kinds of verdict, one bit each.
const CONTINUE: u8 = 1;
const TX: u8 = 2;
const DROP: u8 = 4;
const OTHER: u8 = 8;

impl Shape {
    /// Every one of `len` packets got `v`.
    #[inline]
    pub(crate) fn whole(v: Verdict, len: usize) -> Shape {
        match v {
            Verdict::Drop(_) => Shape {
                rest: None,
                drops: len,
                mask: if len >= 64 { u64::MAX } else { (1 << len) - 1 },
            },
            v => Shape {
                rest: Some(v),
                drops: 0,
                mask: 0,
            },
        }
    }

    /// One pass over the verdicts of a burst (at most 64), without a branch per verdict: a
    /// few drops among packets that go one way (hostile frames in good traffic) cost no
    /// mispredicted branch here.
    #[inline]
    pub(crate) fn of(v: &[Verdict]) -> Shape {
        debug_assert!(v.len() <= 64);
        let (mut kinds, mut mask) = (0u8, 0u64);
        // The smallest and largest TX port: one port when they are equal.
        let (mut lo, mut hi) = (u16::MAX, 0u16);
        for (i, x) in v.iter().enumerate() {
            // Compares of the variant and selects, not a `match` (which compiles to a jump
            // table: an indirect branch per verdict, mispredicted where the kinds change).
            let c = matches!(x, Verdict::Continue);
            let d = matches!(x, Verdict::Drop(_));
            let t = matches!(x, Verdict::Tx(_));
            let p = if let Verdict::Tx(p) = *x { p } else { 0 };
            kinds |= (CONTINUE * u8::from(c))
                | (TX * u8::from(t))
                | (DROP * u8::from(d))
                | (OTHER * u8::from(!(c | d | t)));
            mask |= u64::from(d) << i;
            lo = lo.min(if t { p } else { u16::MAX });
            hi = hi.max(if t { p } else { 0 });
        }
        let rest = match kinds & !DROP {
            CONTINUE => Some(Verdict::Continue),
            TX if lo == hi => Some(Verdict::Tx(lo)),
            _ => None,
        };
        Shape {
            rest,
            drops: mask.count_ones() as usize,
            mask,
        }
    }
}

/// Per-burst local tallies, written to the shared counters once per burst.
pub(crate) struct Tally {
    pub(crate) drops: DropTally,
    pub(crate) tx: TxResult,
    pub(crate) ring_out: u64,
    pub(crate) handoff_out: u64,
}

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally {
            drops: DropTally::new(),
            tx: TxResult::default(),
            ring_out: 0,
            handoff_out: 0,
        }
    }

    #[inline]
    pub(crate) fn drop(&mut self, r: DropReason, n: u32) {
        self.drops.add(r, n);
    }

    /// Counts every `Drop` verdict of `v` under its reason.
    pub(crate) fn drops_of(&mut self, v: &[Verdict]) {
        for x in v {
            if let Verdict::Drop(r) = x {
                self.drop(*r, 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    const BAD: Verdict = Drop(DropReason::Ipv4BadChecksum);

    #[test]
    fn drops_among_packets_that_go_one_way_leave_that_way_for_the_rest() {
        let s = |v: &[Verdict]| Shape::of(v);
        let sh = |rest, drops, mask| Shape { rest, drops, mask };
        assert_eq!(s(&[Continue; 32]), sh(Some(Continue), 0, 0));
        assert_eq!(s(&[Tx(1), BAD, Tx(1), Tx(1)]), sh(Some(Tx(1)), 1, 0b10));
        assert_eq!(
            s(&[BAD, Continue, Drop(DropReason::Runt), Continue]),
            sh(Some(Continue), 2, 0b101)
        );
        let mut last = [Tx(7); 64];
        last[63] = BAD;
        assert_eq!(s(&last), sh(Some(Tx(7)), 1, 1 << 63));
        // The packets not dropped go different ways: packet by packet.
        assert_eq!(s(&[Tx(1), BAD, Tx(0)]), sh(None, 1, 0b10));
        assert_eq!(s(&[Tx(0), Tx(0), Tx(65535)]), sh(None, 0, 0));
        assert_eq!(s(&[Continue, Tx(1)]), sh(None, 0, 0));
        assert_eq!(s(&[Held, Continue]), sh(None, 0, 0));
        assert_eq!(s(&[Held, Held]), sh(None, 0, 0));
        assert_eq!(s(&[Handoff(1), BAD]), sh(None, 1, 0b10));
        // All dropped, whatever the reasons.
        assert_eq!(s(&[BAD, Drop(DropReason::Runt)]), sh(None, 2, 0b11));
        assert_eq!(s(&[]), sh(None, 0, 0));
        assert_eq!(Shape::whole(BAD, 7), sh(None, 7, 0x7f));
        assert_eq!(Shape::whole(BAD, 64), sh(None, 64, u64::MAX));
        assert_eq!(Shape::whole(Tx(3), 7), sh(Some(Tx(3)), 0, 0));
    }

    #[test]
    fn a_tally_counts_each_drop_under_its_reason() {
        let mut t = Tally::new();
        t.drops_of(&[BAD, Continue, Drop(DropReason::Runt), BAD, Tx(1)]);
        assert_eq!(t.drops.counts[DropReason::Ipv4BadChecksum as usize], 2);
        assert_eq!(t.drops.counts[DropReason::Runt as usize], 1);
        assert_eq!(t.drops.counts.iter().sum::<u32>(), 3);
    }
}
