//! How the worker moves a burst after a stage: the [`Shape`] of the stage's verdicts (whole,
//! a few drops among packets that otherwise go the same way, or mixed), and the per-burst
//! [`Tally`] of what left and what was dropped.

use dpdk::txbuf::TxResult;

use crate::drop::DropReason;
use crate::stage::{DropTally, Verdict};

/// How a stage's verdicts move a burst: `drops` packets dropped, and `rest` the verdict
/// every other packet got when they all got the same one (None: they differ, or there are
/// none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) rest: Option<Verdict>,
    pub(crate) drops: usize,
}

impl Shape {
    /// Every one of `len` packets got `v`.
    #[inline]
    pub(crate) fn whole(v: Verdict, len: usize) -> Shape {
        match v {
            Verdict::Drop(_) => Shape {
                rest: None,
                drops: len,
            },
            v => Shape {
                rest: Some(v),
                drops: 0,
            },
        }
    }

    /// One pass over the verdicts of a burst.
    #[inline]
    pub(crate) fn of(v: &[Verdict]) -> Shape {
        let (mut rest, mut agree, mut drops) = (None, true, 0);
        for x in v {
            match (x, rest) {
                (Verdict::Drop(_), _) => drops += 1,
                (_, None) => rest = Some(*x),
                (_, Some(r)) => agree &= r == *x,
            }
        }
        Shape {
            rest: if agree { rest } else { None },
            drops,
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
        let sh = |rest, drops| Shape { rest, drops };
        assert_eq!(s(&[Continue; 32]), sh(Some(Continue), 0));
        assert_eq!(s(&[Tx(1), BAD, Tx(1), Tx(1)]), sh(Some(Tx(1)), 1));
        assert_eq!(
            s(&[BAD, Continue, Drop(DropReason::Runt), Continue]),
            sh(Some(Continue), 2)
        );
        // The packets not dropped go different ways: packet by packet.
        assert_eq!(s(&[Tx(1), BAD, Tx(0)]), sh(None, 1));
        assert_eq!(s(&[Continue, Tx(1)]), sh(None, 0));
        assert_eq!(s(&[Held, Continue]), sh(None, 0));
        // All dropped, whatever the reasons.
        assert_eq!(s(&[BAD, Drop(DropReason::Runt)]), sh(None, 2));
        assert_eq!(Shape::whole(BAD, 7), sh(None, 7));
        assert_eq!(Shape::whole(Tx(3), 7), sh(Some(Tx(3)), 0));
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
