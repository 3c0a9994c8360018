//! The policer's appliance side: the `[policer]` section (profiles, bindings, DSCP
//! pre-colours), each worker's stage with its own meters, the control-plane state, the
//! `policer.*` operator commands, reload and the summary. Data path: `pollfwd_nf::policer`.

pub mod config;
pub mod ops;
pub mod section;
pub mod state;

use std::sync::Arc;

use pollfwd_nf::policer::{Policer as PolicerStage, WorkerCounters};
use serde_json::{Value, json};

use crate::config::{Config, ConfigError, ErrAt};
use crate::module::{Nf, StageEnv};
use crate::nf::plane::ControlPlane;
use crate::ops::{Commit, Op, OpCtx};

/// The policer's [`Nf`].
pub struct Policer;
pub static NF: Policer = Policer;

impl Nf for Policer {
    fn name(&self) -> &'static str {
        "policer"
    }

    fn validate(&self, c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
        config::validate(c, err)
    }

    fn boot(
        &self,
        plane: &mut ControlPlane,
        env: &StageEnv<'_>,
        _runs: bool,
    ) -> Result<(), String> {
        let (specs, precolor) = ops::resolve(env.config)?;
        plane.policer.specs = specs;
        plane.policer.precolor = precolor;
        Ok(())
    }

    fn stage(
        &self,
        plane: &mut ControlPlane,
        env: &StageEnv<'_>,
    ) -> Result<Box<dyn pollfwd_pipeline::Stage>, String> {
        let p = &mut plane.policer;
        let table = config::table(&p.specs, p.precolor, env.tsc_hz)?;
        let counters = Arc::new(WorkerCounters::new(env.worker, env.lcore));
        p.workers.retain(|w| w.worker != env.worker);
        p.workers.push(counters.clone());
        Ok(Box::new(PolicerStage::new(table, counters)))
    }

    fn ops(&self) -> &'static [Op] {
        ops::OPS
    }

    fn cli_groups(&self) -> &'static [(&'static [&'static str], &'static str)] {
        &[(&["policer"], "Policers: list, set, counters, clear")]
    }

    fn telemetry(&self) -> &'static [&'static str] {
        &["policer.counters"]
    }

    fn prepare_reload(
        &self,
        ctx: &OpCtx<'_>,
        old: &Config,
        new: &Config,
    ) -> Result<Option<Commit>, String> {
        ops::prepare_reload(ctx, old, new)
    }

    /// The same object as `policer.counters` (None without a `[policer]` section).
    fn summary(&self, ctx: &OpCtx<'_>) -> Option<Value> {
        ctx.state.config.config.policer.as_ref()?;
        ops::counters(ctx, &json!({})).ok()
    }
}
