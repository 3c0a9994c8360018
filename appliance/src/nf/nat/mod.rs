//! NAT44's appliance side: the `[nat]` section, each worker's stage with its share of the
//! outside ports, the control-plane state (static mappings, the workers' shared counters),
//! the `nat.*` operator commands, reload of static mappings, the summary and the
//! `pollfwd_nat_*` Prometheus families. Data path: `pollfwd_nf::nat`.

pub mod blocklog;
pub mod config;
pub mod ops;
pub mod query;
pub mod section;
pub mod state;
pub mod who;

use pollfwd_nf::nat::NatStage;
use serde_json::{Value, json};

use crate::config::{Config, ConfigError, ErrAt, no_pos};
use crate::module::{Nf, StageEnv};
use crate::nf::plane::ControlPlane;
use crate::ops::{Commit, Op, OpCtx};

/// NAT44's [`Nf`].
pub struct Nat;
pub static NF: Nat = Nat;

impl Nf for Nat {
    fn name(&self) -> &'static str {
        "nat"
    }

    fn validate(&self, c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
        config::validate(c, err)
    }

    fn preflight(&self, c: &Config, err: ErrAt<'_>) -> Result<(), ConfigError> {
        config::fits_memory(c, crate::topology::mem_available_bytes(), err)
    }

    fn boot(
        &self,
        plane: &mut ControlPlane,
        env: &StageEnv<'_>,
        _runs: bool,
    ) -> Result<(), String> {
        let c = env.config;
        if c.nat.is_none() {
            return Ok(());
        }
        let p = &mut plane.nat;
        p.statics = config::statics(c, &no_pos).map_err(|e| e.msg)?;
        let (pool, lo, hi) = config::pool_and_range_of(c).map_err(|e| e.msg)?;
        p.pool = pool;
        p.range = (lo, hi);
        if let Some(n) = &c.nat {
            p.det = config::det_maps(n.get_ref(), &no_pos).map_err(|e| e.msg)?;
        }
        p.since = Some(std::time::SystemTime::now());
        Ok(())
    }

    fn stage(
        &self,
        plane: &mut ControlPlane,
        env: &StageEnv<'_>,
    ) -> Result<Box<dyn pollfwd_pipeline::Stage>, String> {
        let p = config::params(env.config, env.iface_ids, env.worker)?;
        let st = NatStage::new(p, env.lcore, env.tsc_hz)?;
        let shared = st.shared();
        let workers = &mut plane.nat.workers;
        workers.retain(|s| s.worker != shared.worker);
        workers.push(shared);
        Ok(Box::new(st))
    }

    fn ops(&self) -> &'static [Op] {
        ops::OPS
    }

    fn cli_groups(&self) -> &'static [(&'static [&'static str], &'static str)] {
        &[
            (
                &["nat"],
                "NAT44: summary, sessions, static and deterministic mappings, who used an outside endpoint",
            ),
            (
                &["nat", "static"],
                "NAT static mappings and port forwards: list, add, del",
            ),
        ]
    }

    fn telemetry(&self) -> &'static [&'static str] {
        &["nat.summary"]
    }

    fn prepare_reload(
        &self,
        ctx: &OpCtx<'_>,
        old: &Config,
        new: &Config,
    ) -> Result<Option<Commit>, String> {
        ops::prepare_reload(ctx, old, new)
    }

    fn summary(&self, ctx: &OpCtx<'_>) -> Option<Value> {
        ctx.state.config.config.nat.as_ref()?;
        ops::summary(ctx, &json!({})).ok()
    }

    fn metrics(&self, ctx: &OpCtx<'_>) -> String {
        ops::metrics(ctx)
    }
}
