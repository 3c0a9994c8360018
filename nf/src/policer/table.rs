//! The stage's configuration ([`PolicerTable`]: policers and how a packet finds its policer)
//! and the run-time state built for it off the data path ([`PolicerState`]).

use dpdk::meter::Color;
use pollfwd_pipeline::{DropReason, Verdict};

use super::profile::{Action, MeterState, Params, PerSource, PolicerDef};
use super::sources::Sources;
use super::{MAX_POLICERS, MAX_SOURCES};

/// The stage's configuration: policers and how packets find theirs. Immutable once built.
#[derive(Debug, Clone)]
pub struct PolicerTable {
    pub(super) defs: Vec<PolicerDef>,
    /// Class id -> policer index + 1 (0: no policer for the class).
    pub(super) by_class: Vec<u8>,
    /// Default policer index + 1 (0: none).
    pub(super) default: u8,
    /// DSCP -> input colour of colour-aware policers.
    pub(super) precolor: [Color; 64],
    /// Bit i: policer i needs the IP header (per source, colour-aware, remark).
    pub(super) needs_ip: u64,
    /// Per policer, what the data path reads, in the form it reads it.
    pub(super) fast: Vec<Fast>,
}

/// What the data path needs of one policer, computed when the table is built.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fast {
    pub(super) params: Params,
    /// Verdict per colour: `Continue` (transmit, remark) or the colour's drop.
    pub(super) verdict: [Verdict; 3],
    /// DSCP to set per colour, [`Fast::NO_REMARK`] for none.
    pub(super) remark: [u8; 3],
}

impl Fast {
    pub(super) const NO_REMARK: u8 = u8::MAX;

    fn of(d: &PolicerDef) -> Fast {
        let reason = [
            DropReason::PolicerGreen,
            DropReason::PolicerYellow,
            DropReason::PolicerRed,
        ];
        Fast {
            params: d.profile.params(),
            verdict: std::array::from_fn(|c| match d.actions[c] {
                Action::Drop => Verdict::Drop(reason[c]),
                _ => Verdict::Continue,
            }),
            remark: std::array::from_fn(|c| match d.actions[c] {
                Action::Remark(v) => v,
                _ => Fast::NO_REMARK,
            }),
        }
    }
}

/// Which of the stage's loops runs a table (chosen when the table is built: no branch per
/// packet on what the table's shape decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// No policer: nothing to do.
    Idle,
    /// Only a default policer, no class bound: every packet goes to policer 0's meter.
    One,
    /// Anything else: a lookup per packet.
    General,
}

impl PolicerTable {
    /// Checks the bindings (at most one policer per class, one default, at most
    /// [`MAX_POLICERS`], unique names) and indexes them.
    pub fn new(defs: Vec<PolicerDef>, precolor: [Color; 64]) -> Result<PolicerTable, String> {
        if defs.len() > MAX_POLICERS {
            return Err(format!("{} policers, at most {MAX_POLICERS}", defs.len()));
        }
        let max_class = defs.iter().filter_map(|d| d.class).max().unwrap_or(0) as usize;
        let mut by_class = vec![0u8; max_class + 1];
        let mut default = 0u8;
        for (i, d) in defs.iter().enumerate() {
            if defs[..i].iter().any(|o| o.name == d.name) {
                return Err(format!("policer '{}' is defined twice", d.name));
            }
            if let Some(ps) = d.per_source
                && (ps.max_sources == 0 || ps.max_sources > MAX_SOURCES)
            {
                return Err(format!(
                    "policer '{}': max_sources must be 1..={MAX_SOURCES}",
                    d.name
                ));
            }
            if let Some(ps) = d.per_source
                && !(1..=128).contains(&ps.ipv6_prefix)
            {
                return Err(format!("policer '{}': ipv6_prefix must be 1..=128", d.name));
            }
            for a in d.actions {
                if let Action::Remark(v) = a
                    && v > 63
                {
                    return Err(format!("policer '{}': DSCP {v} is not 0..=63", d.name));
                }
            }
            let slot = match d.class {
                Some(0) => {
                    return Err(format!("policer '{}': class id 0 means 'no class'", d.name));
                }
                Some(c) => &mut by_class[c as usize],
                None => &mut default,
            };
            if *slot != 0 {
                let other = &defs[*slot as usize - 1].name;
                return Err(match d.class {
                    Some(c) => format!(
                        "policers '{other}' and '{}' are both bound to class {c}",
                        d.name
                    ),
                    None => format!(
                        "policers '{other}' and '{}' are both the default policer",
                        d.name
                    ),
                });
            }
            *slot = i as u8 + 1;
        }
        let needs_ip = defs
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                d.per_source.is_some()
                    || d.color_aware
                    || d.actions.iter().any(|a| matches!(a, Action::Remark(_)))
            })
            .fold(0u64, |m, (i, _)| m | 1 << i);
        let fast = defs.iter().map(Fast::of).collect();
        Ok(PolicerTable {
            defs,
            by_class,
            default,
            precolor,
            needs_ip,
            fast,
        })
    }

    pub fn defs(&self) -> &[PolicerDef] {
        &self.defs
    }

    pub fn precolor(&self) -> &[Color; 64] {
        &self.precolor
    }

    /// Which loop of the stage runs this table.
    pub(super) fn plan(&self) -> Plan {
        match (self.default, self.by_class.iter().any(|&i| i != 0)) {
            (0, false) => Plan::Idle,
            (1, false) if self.defs.len() == 1 => Plan::One,
            _ => Plan::General,
        }
    }

    /// The policer of a packet of class `class` (0: none): the class's policer, else the
    /// default one.
    #[inline]
    pub fn lookup(&self, class: u16) -> Option<usize> {
        let i = match self.by_class.get(class as usize) {
            Some(&i) if i != 0 && class != 0 => i,
            _ => self.default,
        };
        (i != 0).then(|| i as usize - 1)
    }

    /// Fresh run-time state for this table: one meter per policer, with full buckets and its
    /// clock started now, and an empty source table per per-source policer (allocated here,
    /// off the data path).
    pub fn fresh_state(&self) -> PolicerState {
        self.state_replacing(None)
    }

    /// Run-time state for this table replacing `current` (the table the workers run; None: a
    /// new stage): as [`PolicerTable::fresh_state`], except that a per-source policer whose
    /// policer of the same name in `current` has the same table ([`PerSource::same_table`])
    /// gets none here: the worker moves its running table over as it is. A reload or
    /// `policer.set` that leaves the per-source bindings alone thus allocates no source table
    /// (64 bytes a slot, two slots a source: 128 KiB for 1024 sources, 32 MiB for the largest,
    /// per family and worker).
    pub fn state_replacing(&self, current: Option<&PolicerTable>) -> PolicerState {
        let now = dpdk::rdtsc();
        let kept = |d: &PolicerDef, ps: &PerSource| {
            current
                .and_then(|c| c.defs.iter().find(|o| o.name == d.name))
                .and_then(|o| o.per_source)
                .is_some_and(|o| ps.same_table(&o))
        };
        PolicerState {
            meters: self
                .defs
                .iter()
                .map(|d| MeterState::new(&d.profile, now))
                .collect(),
            sources: self
                .defs
                .iter()
                .map(|d| {
                    let ps = d.per_source?;
                    (!kept(d, &ps))
                        .then(|| Sources::new(ps.max_sources, ps.idle_ticks, ps.ipv6_prefix))
                })
                .collect(),
        }
    }
}

/// Run-time state that goes with a table: a meter per policer, a source table per per-source
/// policer (index-aligned with the table's policers).
#[derive(Debug)]
pub struct PolicerState {
    pub meters: Vec<MeterState>,
    /// None for a policer that is not per source; in an [`super::Update`] (and in the reply to
    /// one) also for a per-source policer that takes over the running table of its name
    /// ([`PolicerTable::state_replacing`]).
    pub sources: Vec<Option<Sources>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policer::rfc2597_precolor;

    #[test]
    fn table_bindings() {
        // Without EAL no profile can be built; bindings are checked on a table of one kind
        // only through PolicerTable::new in the integration tests. Here: lookup order.
        let t = PolicerTable {
            defs: Vec::new(),
            by_class: vec![0, 2, 0, 1],
            default: 3,
            precolor: rfc2597_precolor(),
            needs_ip: 0,
            fast: Vec::new(),
        };
        assert_eq!(t.lookup(0), Some(2), "class 0 takes the default");
        assert_eq!(t.lookup(1), Some(1));
        assert_eq!(t.lookup(2), Some(2), "class without policer: default");
        assert_eq!(t.lookup(3), Some(0));
        assert_eq!(t.lookup(999), Some(2));
        assert_eq!(t.plan(), Plan::General);
        let t = PolicerTable { default: 0, ..t };
        assert_eq!(t.lookup(2), None);
        assert_eq!(t.lookup(0), None);
        let t = PolicerTable {
            by_class: vec![0, 0],
            ..t
        };
        assert_eq!(t.plan(), Plan::Idle);
    }
}
