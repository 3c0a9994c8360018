//! The forward NF's appliance side: the `[forward]` section and port addresses (interfaces,
//! static routes, neighbours, proxy ARP, tunables), one routing table and neighbour table shared
//! by every worker, the `route.*`, `neigh.list` and `forward.stats` operator commands, reload
//! and the summary. Data path: `pollfwd_nf::forward`.

pub mod config;
pub mod install;
pub mod ops;
pub mod section;
pub mod state;
pub mod sync;

use std::sync::Arc;

use pollfwd_nf::forward::Forward as ForwardStage;
use serde_json::{Value, json};

use crate::config::{Config, ConfigError, ErrAt};
use crate::module::{Nf, StageEnv};
use crate::nf::plane::ControlPlane;
use crate::ops::{Commit, Op, OpCtx};

/// Stage name.
pub const STAGE: &str = "forward";

/// The forward NF's [`Nf`].
pub struct Forward;
pub static NF: Forward = Forward;

impl Nf for Forward {
    fn name(&self) -> &'static str {
        STAGE
    }

    fn validate(&self, c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
        config::validate(c, err)
    }

    /// When a worker runs the stage: resolves the routes, compiles the table and builds the
    /// shared state, as a reload does.
    fn boot(&self, plane: &mut ControlPlane, env: &StageEnv<'_>, runs: bool) -> Result<(), String> {
        if !runs {
            return Ok(());
        }
        let b = ops::build(
            env.config,
            env.iface_ids,
            env.iface_macs,
            env.iface_mtus,
            None,
            (&Default::default(), &Default::default()),
            None,
        )?;
        let p = &mut plane.forward;
        p.init = Some((Arc::new(b.shared), Arc::new(b.table)));
        p.statics = state::by_prefix(&b.statics, |r| r.prefix);
        p.statics6 = state::by_prefix(&b.statics6, |r| r.prefix);
        Ok(())
    }

    fn stage(
        &self,
        plane: &mut ControlPlane,
        env: &StageEnv<'_>,
    ) -> Result<Box<dyn pollfwd_pipeline::Stage>, String> {
        let (shared, table) = plane
            .forward
            .init
            .clone()
            .ok_or("forward: no table built at start-up")?;
        Ok(Box::new(ForwardStage::new(shared, table, env.worker)))
    }

    fn ops(&self) -> &'static [Op] {
        ops::OPS
    }

    fn cli_groups(&self) -> &'static [(&'static [&'static str], &'static str)] {
        &[
            (
                &["route"],
                "Routes of the forward stage: list, add, del, lookup",
            ),
            (
                &["neigh"],
                "Neighbours (ARP, IPv6 neighbour discovery) of the forward stage",
            ),
            (&["forward"], "Counters of the forward stage"),
        ]
    }

    fn telemetry(&self) -> &'static [&'static str] {
        &["forward.stats"]
    }

    fn prepare_reload(
        &self,
        ctx: &OpCtx<'_>,
        old: &Config,
        new: &Config,
    ) -> Result<Option<Commit>, String> {
        ops::prepare_reload(ctx, old, new)
    }

    /// `forward.stats`, when a worker runs the stage.
    fn summary(&self, ctx: &OpCtx<'_>) -> Option<Value> {
        if !ctx.runs(STAGE) {
            return None;
        }
        ops::forward_stats(ctx, &json!({})).ok()
    }

    fn metrics(&self, ctx: &OpCtx<'_>) -> String {
        if !ctx.runs(STAGE) {
            return String::new();
        }
        ops::metrics(ctx)
    }
}
