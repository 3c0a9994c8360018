//! The shape every network function has on the appliance side: the [`Nf`] trait. An NF
//! implements it once, in `crate::nf::<name>/mod.rs`; the daemon (start-up), the control socket
//! (operations), `reload`, the summary and the metrics walk [`crate::registry::ALL`] and never
//! name an NF. Its config section is the type `crate::nf::<name>::section::Section` (the config
//! holds one optional field per NF, named as the NF) and its control-plane state the type
//! `crate::nf::<name>::state::Plane` (one field of [`ControlPlane`]).

use pollfwd_pipeline::Stage;
use serde_json::Value;

use crate::config::{Config, ConfigError, ErrAt};
use crate::nf::plane::ControlPlane;
use crate::ops::{Commit, Op, OpCtx};

/// What building a stage (or an NF's start-up state) may need to know about the appliance.
pub struct StageEnv<'a> {
    pub config: &'a Config,
    /// Interface id of each interface, by interface index (`Config::iface_index`: the ports
    /// in config order, then the VLAN sub-interfaces; a port's id is its DPDK port id).
    pub iface_ids: &'a [u16],
    /// MAC address of each interface (a sub-interface has its port's), by interface index.
    pub iface_macs: &'a [[u8; 6]],
    /// Egress MTU of each interface, by interface index (see [`crate::state::IfaceRt::mtu`]).
    pub iface_mtus: &'a [u16],
    /// The worker (index in config order) and its EAL lcore id; in `boot`, 0 and 0.
    pub worker: usize,
    pub lcore: u32,
    /// TSC ticks per second.
    pub tsc_hz: u64,
}

impl StageEnv<'_> {
    /// The interface id of the port or sub-interface `name`.
    pub fn iface_id(&self, name: &str) -> Result<u16, String> {
        self.config
            .iface_index(name)
            .map(|i| self.iface_ids[i])
            .ok_or_else(|| format!("unknown port or interface '{name}'"))
    }
}

/// A network function's appliance side. Its stage name is its config section's name.
pub trait Nf: Sync {
    /// Stage and section name (`"nat"`).
    fn name(&self) -> &'static str;

    /// Validates its config section and how it relates to the rest of the config (ports,
    /// lcores, other sections); errors are positioned with `err`. Runs for every config that
    /// is loaded (start-up, `--check`, reload), before anything is applied.
    fn validate(&self, _c: &Config, _err: ErrAt<'_>) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Start-up and `--check`, before EAL starts (never on reload, whose running tables
    /// already hold their memory): checks that what the NF allocates at start fits this
    /// machine; errors are positioned with `err` at the key that asks for it.
    fn preflight(&self, _c: &Config, _err: ErrAt<'_>) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Start-up, EAL up, before any worker's stage is built: sets up its control-plane state
    /// from the config (`runs`: whether any worker's chain has the stage), building shared
    /// tables the same way its operations do.
    fn boot(
        &self,
        _plane: &mut ControlPlane,
        _env: &StageEnv<'_>,
        _runs: bool,
    ) -> Result<(), String> {
        Ok(())
    }

    /// Builds the stage of one worker (after `boot`); registers what the control side reads
    /// (shared counters) in `plane`.
    fn stage(&self, plane: &mut ControlPlane, env: &StageEnv<'_>)
    -> Result<Box<dyn Stage>, String>;

    /// Its operator commands (`"route.add"`...).
    fn ops(&self) -> &'static [Op] {
        &[]
    }

    /// The command groups of its operations in the CLI (words, one line about the group):
    /// `pollfwdctl route --help`.
    fn cli_groups(&self) -> &'static [(&'static [&'static str], &'static str)] {
        &[]
    }

    /// Its part of `reload`: compares its section of the old and new config and, if it changed,
    /// builds the new tables off the data path (an error refuses the whole reload) and returns
    /// the step that swaps them in. The undo is common to all NFs: the workers get back what
    /// they ran, and the control-plane state is put back as it was.
    fn prepare_reload(
        &self,
        _ctx: &OpCtx<'_>,
        _old: &Config,
        _new: &Config,
    ) -> Result<Option<Commit>, String> {
        Ok(None)
    }

    /// Its section of the end-of-run summary and of `stats` (`nf.<name>`), if it has figures.
    fn summary(&self, _ctx: &OpCtx<'_>) -> Option<Value> {
        None
    }

    /// Its read-only commands also served as DPDK telemetry commands (`forward.stats` as
    /// `/pollfwd/forward/stats`), flattened to telemetry's one-level dictionaries.
    fn telemetry(&self) -> &'static [&'static str] {
        &[]
    }

    /// Its Prometheus families (`pollfwd_<name>_*`), text exposition format.
    fn metrics(&self, _ctx: &OpCtx<'_>) -> String {
        String::new()
    }
}
