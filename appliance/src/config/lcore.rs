//! `[[lcore]]`: worker lcores, the queues they poll, their stage chains and pipelines.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigError, Pos};
use super::{Config, STAGES};

/// A (port, queue) an lcore polls.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RxRef {
    pub port: String,
    #[serde(default)]
    pub queue: u16,
}

/// One worker lcore.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LcoreConfig {
    /// EAL lcore id.
    pub id: Spanned<u32>,
    /// CPU it is pinned to (default: same number as the id). Never the main lcore's CPU
    /// unless `eal.share_main_cpu`.
    pub cpu: Option<Spanned<u32>>,
    /// Port queues it polls.
    #[serde(default)]
    pub rx: Vec<Spanned<RxRef>>,
    /// Stage chain, in order.
    pub stages: Spanned<Vec<Spanned<String>>>,
    /// Ports it may transmit on (default: all). Each gets one TX queue per such lcore.
    pub tx_ports: Option<Vec<Spanned<String>>>,
    /// Pipeline mode: packets that survive this lcore's chain go to this lcore over an SP/SC
    /// ring, and continue with that lcore's chain.
    pub pipeline_to: Option<Spanned<u32>>,
}

/// Validates the lcores, their chains and pipelines, and that every rx queue is polled.
pub(super) fn validate(
    c: &Config,
    pos: &Pos<'_>,
    port_idx: &HashMap<&str, usize>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let (lcore_ids, polled) = lcores(c, pos, port_idx, warnings)?;
    pipelines(c, pos, &lcore_ids)?;
    queues_polled(c, pos, &polled)
}

/// The workers by lcore id (index in config order) and who polls each (port, queue).
type Lcores<'c> = (BTreeMap<u32, usize>, HashMap<(&'c str, u16), u32>);

/// Each lcore on its own: id, CPU, the queues it polls, its stage chain, its tx ports.
fn lcores<'c>(
    c: &'c Config,
    pos: &Pos<'_>,
    port_idx: &HashMap<&str, usize>,
    warnings: &mut Vec<String>,
) -> Result<Lcores<'c>, ConfigError> {
    let mut lcore_ids: BTreeMap<u32, usize> = BTreeMap::new();
    let mut polled: HashMap<(&str, u16), u32> = HashMap::new();
    let known: HashMap<&str, bool> = STAGES.iter().copied().collect();
    if c.lcores.is_empty() {
        return Err(pos.err(0..0, "no [[lcore]]: at least one worker lcore is needed"));
    }
    for (i, l) in c.lcores.iter().enumerate() {
        let lr = l.get_ref();
        let id = *lr.id.get_ref();
        if id == c.eal.main_lcore {
            return Err(pos.err(
                lr.id.span(),
                format!(
                    "lcore {id} is the main lcore (eal.main_lcore): workers need their own lcores"
                ),
            ));
        }
        let cpu = lr.cpu.as_ref().map_or(id, |c| *c.get_ref());
        let main_cpu = c.eal.main_cpu.unwrap_or(c.eal.main_lcore);
        if cpu == main_cpu {
            let span = lr.cpu.as_ref().map_or(lr.id.span(), |c| c.span());
            if !c.eal.share_main_cpu {
                return Err(pos.err(
                    span,
                    format!(
                        "lcore {id} runs on CPU {cpu}, the main lcore's CPU (eal.main_cpu, default eal.main_lcore), where the management thread runs: give it another cpu (or set eal.share_main_cpu = true on a machine with too few CPUs)"
                    ),
                ));
            }
            warnings.push(format!(
                "lcore {id} shares CPU {cpu} with the main lcore (eal.share_main_cpu): the management thread takes time from it while serving clients"
            ));
        }
        if id >= 128 {
            return Err(pos.err(
                lr.id.span(),
                format!("lcore {id}: ids must be below 128 (RTE_MAX_LCORE)"),
            ));
        }
        if lcore_ids.insert(id, i).is_some() {
            return Err(pos.err(lr.id.span(), format!("lcore {id} is defined twice")));
        }
        for r in &lr.rx {
            let rr = r.get_ref();
            let Some(&pi) = port_idx.get(rr.port.as_str()) else {
                return Err(pos.err(r.span(), format!("lcore {id}: unknown port '{}'", rr.port)));
            };
            let nq = c.ports[pi].get_ref().rx_queues;
            if rr.queue >= nq {
                return Err(pos.err(
                    r.span(),
                    format!(
                        "lcore {id}: port '{}' has {nq} rx queue(s), no queue {}",
                        rr.port, rr.queue
                    ),
                ));
            }
            if let Some(other) = polled.insert(
                (c.ports[pi].get_ref().name.get_ref().as_str(), rr.queue),
                id,
            ) {
                return Err(pos.err(
                    r.span(),
                    format!(
                        "lcore {id}: port '{}' queue {} is already polled by lcore {other}",
                        rr.port, rr.queue
                    ),
                ));
            }
        }
        let chain = lr.stages.get_ref();
        for s in chain {
            if !known.contains_key(s.get_ref().as_str()) {
                let names: Vec<&str> = STAGES.iter().map(|s| s.0).collect();
                return Err(pos.err(
                    s.span(),
                    format!(
                        "unknown stage '{}' (known: {})",
                        s.get_ref(),
                        names.join(", ")
                    ),
                ));
            }
        }
        if chain.len() > pollfwd_pipeline::MAX_STAGES {
            return Err(pos.err(
                lr.stages.span(),
                format!(
                    "lcore {id}: at most {} stages",
                    pollfwd_pipeline::MAX_STAGES
                ),
            ));
        }
        let routes = chain.iter().any(|s| known[s.get_ref().as_str()]);
        if lr.pipeline_to.is_none() && !routes {
            let last = chain
                .last()
                .map(|s| s.get_ref().as_str())
                .unwrap_or("(none)");
            return Err(pos.err(
                lr.stages.span(),
                format!("lcore {id}: the chain ends with '{last}' and no stage chooses an egress port; add 'xconnect' (or set pipeline_to)"),
            ));
        }
        if let Some(tp) = &lr.tx_ports {
            for p in tp {
                if !port_idx.contains_key(p.get_ref().as_str()) {
                    return Err(pos.err(
                        p.span(),
                        format!("lcore {id}: unknown port '{}' in tx_ports", p.get_ref()),
                    ));
                }
            }
        }
    }
    Ok((lcore_ids, polled))
}

/// Pipelines: each target exists, is not the source, receives from one lcore, no cycles; every
/// lcore polls something.
fn pipelines(
    c: &Config,
    pos: &Pos<'_>,
    lcore_ids: &BTreeMap<u32, usize>,
) -> Result<(), ConfigError> {
    let mut ring_src: HashMap<u32, u32> = HashMap::new();
    for l in &c.lcores {
        let lr = l.get_ref();
        if let Some(to) = &lr.pipeline_to {
            let (from, t) = (*lr.id.get_ref(), *to.get_ref());
            if t == from || !lcore_ids.contains_key(&t) {
                return Err(pos.err(
                    to.span(),
                    format!("lcore {from}: pipeline_to {t} is not another worker lcore"),
                ));
            }
            if let Some(other) = ring_src.insert(t, from) {
                return Err(pos.err(
                    to.span(),
                    format!("lcore {t} already receives the pipeline of lcore {other}"),
                ));
            }
        }
    }
    for &start in lcore_ids.keys() {
        let mut seen = BTreeSet::new();
        let mut cur = start;
        while let Some(to) = c.lcores[lcore_ids[&cur]]
            .get_ref()
            .pipeline_to
            .as_ref()
            .map(|t| *t.get_ref())
        {
            if !seen.insert(cur) {
                let span = c.lcores[lcore_ids[&start]].get_ref().id.span();
                return Err(pos.err(span, format!("lcore {start}: pipeline_to forms a cycle")));
            }
            cur = to;
        }
    }
    for l in &c.lcores {
        let lr = l.get_ref();
        let id = *lr.id.get_ref();
        if lr.rx.is_empty() && !ring_src.contains_key(&id) {
            return Err(pos.err(
                lr.id.span(),
                format!(
                    "lcore {id} polls nothing: give it `rx` queues or make it a pipeline_to target"
                ),
            ));
        }
    }
    Ok(())
}

/// Every rx queue is polled (an unpolled queue fills up and silently drops).
fn queues_polled(
    c: &Config,
    pos: &Pos<'_>,
    polled: &HashMap<(&str, u16), u32>,
) -> Result<(), ConfigError> {
    for p in &c.ports {
        let pr = p.get_ref();
        for q in 0..pr.rx_queues {
            if !polled.contains_key(&(pr.name.get_ref().as_str(), q)) {
                return Err(pos.err(
                    p.span(),
                    format!(
                        "port '{}' rx queue {q} is polled by no lcore",
                        pr.name.get_ref()
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl Config {
    /// Lcores allowed to transmit on port `name`, in config order.
    pub fn tx_lcores(&self, name: &str) -> Vec<u32> {
        self.lcores
            .iter()
            .map(|l| l.get_ref())
            .filter(|l| match &l.tx_ports {
                // By default an lcore transmits on every port if its chain can choose an egress
                // port (xconnect, forward); a chain that only hands on to a pipeline never does.
                None => l
                    .stages
                    .get_ref()
                    .iter()
                    .any(|s| STAGES.iter().any(|(n, routes)| *routes && n == s.get_ref())),
                Some(v) => v.iter().any(|p| p.get_ref() == name),
            })
            .map(|l| *l.id.get_ref())
            .collect()
    }
}
