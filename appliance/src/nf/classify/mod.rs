//! The classify NF's appliance side: the `[classify]` section (classes, rules, rules file,
//! default action), the compiled ACL shared by every worker (each with its own hit counters),
//! the `acl.*` operator commands, reload and the summary. Data path: `pollfwd_nf::classify`.

pub mod config;
pub mod ops;
pub mod section;
pub mod state;

use pollfwd_nf::classify::{Classify as ClassifyStage, Install, new_hits};
use serde_json::Value;

use crate::config::{Config, ConfigError, ErrAt};
use crate::module::{Nf, StageEnv};
use crate::nf::plane::ControlPlane;
use crate::ops::{Commit, Op, OpCtx};

/// The classify NF's [`Nf`].
pub struct Classify;
pub static NF: Classify = Classify;

impl Nf for Classify {
    fn name(&self) -> &'static str {
        "classify"
    }

    fn validate(&self, c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
        config::validate(c, err)
    }

    /// Loads the rule list; when a worker runs the stage, compiles the table as `acl.add` does.
    fn boot(&self, plane: &mut ControlPlane, env: &StageEnv<'_>, runs: bool) -> Result<(), String> {
        let p = &mut plane.classify;
        ops::load(p, env.config)?;
        if runs {
            let (table, _) = ops::compile(&p.entries, p.default, env.iface_ids)
                .map_err(|e| format!("classify: {e}"))?;
            if let Some(alg) = table.alg() {
                eprintln!(
                    "pollfwd: classify: {} rules, rte_acl classify method {alg} (EAL's SIMD width {} bits)",
                    table.len(),
                    dpdk::acl::max_simd_bitwidth()
                );
            }
            p.installed = Some(state::Installed {
                table,
                hits: Vec::new(),
            });
        }
        Ok(())
    }

    fn stage(
        &self,
        plane: &mut ControlPlane,
        env: &StageEnv<'_>,
    ) -> Result<Box<dyn pollfwd_pipeline::Stage>, String> {
        let inst = plane
            .classify
            .installed
            .as_mut()
            .ok_or("classify: no table compiled at start-up")?;
        let hits = new_hits(&inst.table);
        inst.hits.retain(|(w, _)| *w != env.worker);
        inst.hits.push((env.worker, hits.clone()));
        Ok(Box::new(ClassifyStage::new(Install {
            table: inst.table.clone(),
            hits,
        })?))
    }

    fn ops(&self) -> &'static [Op] {
        ops::OPS
    }

    fn cli_groups(&self) -> &'static [(&'static [&'static str], &'static str)] {
        &[(
            &["acl"],
            "ACL rules of the classify stage: list, add, del, counters",
        )]
    }

    fn telemetry(&self) -> &'static [&'static str] {
        &["acl.counters"]
    }

    fn prepare_reload(
        &self,
        ctx: &OpCtx<'_>,
        old: &Config,
        new: &Config,
    ) -> Result<Option<Commit>, String> {
        ops::prepare_reload(ctx, old, new)
    }

    /// The same object as `acl.counters` (None without a `[classify]` section).
    fn summary(&self, ctx: &OpCtx<'_>) -> Option<Value> {
        ctx.state.config.config.classify.as_ref()?;
        let workers = ctx.workers(self.name());
        Some(ctx.cp(|cp| ops::counters_json(&cp.classify, workers)))
    }
}
