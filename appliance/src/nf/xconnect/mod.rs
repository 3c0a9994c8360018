//! xconnect's appliance side: the `[xconnect]` pairs (validated against the ports), one
//! worker's stage, and reload (a new pairs table swapped into every worker). Data path:
//! `pollfwd_nf::xconnect`.

pub mod section;
pub mod state;

use std::collections::BTreeSet;

use pollfwd_nf::xconnect::{PeerTable, Xconnect as XconnectStage};

use crate::config::{Config, ConfigError, ErrAt};
use crate::module::{Nf, StageEnv};
use crate::nf::plane::ControlPlane;
use crate::ops::{Commit, OpCtx};

/// xconnect's [`Nf`].
pub struct Xconnect;
pub static NF: Xconnect = Xconnect;

/// The pairs of a config, as port names.
fn pairs(c: &Config) -> Option<Vec<[String; 2]>> {
    c.xconnect.as_ref().map(|x| {
        x.get_ref()
            .pairs
            .iter()
            .map(|p| p.get_ref().clone())
            .collect()
    })
}

impl Nf for Xconnect {
    fn name(&self) -> &'static str {
        "xconnect"
    }

    fn validate(&self, c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
        for l in &c.lcores {
            let lr = l.get_ref();
            if lr
                .stages
                .get_ref()
                .iter()
                .any(|s| s.get_ref() == "xconnect")
                && c.xconnect.is_none()
            {
                return Err(err(
                    lr.stages.span(),
                    format!(
                        "lcore {}: stage 'xconnect' needs an [xconnect] section with pairs",
                        lr.id.get_ref()
                    ),
                ));
            }
        }
        let Some(x) = &c.xconnect else {
            return Ok(());
        };
        let mut used = BTreeSet::new();
        for pair in &x.get_ref().pairs {
            let [a, b] = pair.get_ref();
            for n in [a, b] {
                if c.port_index(n).is_none() {
                    return Err(err(pair.span(), format!("xconnect: unknown port '{n}'")));
                }
                if !used.insert(n.as_str()) {
                    return Err(err(
                        pair.span(),
                        format!("xconnect: port '{n}' is in two pairs"),
                    ));
                }
            }
            if a == b {
                return Err(err(
                    pair.span(),
                    format!("xconnect: port '{a}' paired with itself"),
                ));
            }
        }
        Ok(())
    }

    fn stage(
        &self,
        _plane: &mut ControlPlane,
        env: &StageEnv<'_>,
    ) -> Result<Box<dyn pollfwd_pipeline::Stage>, String> {
        let mut ids = Vec::new();
        for [a, b] in pairs(env.config).ok_or("stage 'xconnect' needs an [xconnect] section")? {
            ids.push((env.iface_id(&a)?, env.iface_id(&b)?));
        }
        Ok(Box::new(XconnectStage::new(&ids)))
    }

    fn prepare_reload(
        &self,
        ctx: &OpCtx<'_>,
        old: &Config,
        new: &Config,
    ) -> Result<Option<Commit>, String> {
        if pairs(old) == pairs(new) {
            return Ok(None);
        }
        let id = |n: &str| {
            ctx.state
                .ports
                .iter()
                .find(|p| p.name == n)
                .map(|p| p.port.id())
                .ok_or_else(|| format!("xconnect: unknown port '{n}'"))
        };
        let mut ids = Vec::new();
        for [a, b] in pairs(new).unwrap_or_default() {
            ids.push((id(&a)?, id(&b)?));
        }
        let table = PeerTable::new(&ids);
        Ok(Some(Box::new(move |ctx: &OpCtx<'_>| {
            let n = ctx.broadcast("xconnect", |_| table.clone())?;
            Ok(format!("xconnect: {} pair(s) on {n} worker(s)", ids.len()))
        })))
    }
}
