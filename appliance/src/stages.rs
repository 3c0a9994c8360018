//! Builds each lcore's stage chain from the configuration: the one place that maps a stage name
//! to its network function. A new NF adds a line here and in `config::STAGES`; the runtime
//! (pipeline::Worker) is not touched.

use pollfwd_nf::{macswap::Macswap, xconnect::Xconnect};
use pollfwd_pipeline::Stage;

use crate::config::Config;

/// What a stage constructor may need to know about the running appliance.
pub struct StageEnv<'a> {
    pub config: &'a Config,
    /// DPDK port id of each configured port, in config order.
    pub port_ids: &'a [u16],
    /// MAC address of each configured port, in config order.
    pub port_macs: &'a [[u8; 6]],
    pub worker: usize,
    pub lcore: u32,
}

impl StageEnv<'_> {
    fn port_id(&self, name: &str) -> Result<u16, String> {
        self.config
            .port_index(name)
            .map(|i| self.port_ids[i])
            .ok_or_else(|| format!("unknown port '{name}'"))
    }
}

/// Builds one stage by name.
pub fn build(name: &str, env: &StageEnv<'_>) -> Result<Box<dyn Stage>, String> {
    Ok(match name {
        "xconnect" => {
            let x = env
                .config
                .xconnect
                .as_ref()
                .ok_or("stage 'xconnect' needs an [xconnect] section")?;
            let mut pairs = Vec::new();
            for p in &x.get_ref().pairs {
                let [a, b] = p.get_ref();
                pairs.push((env.port_id(a)?, env.port_id(b)?));
            }
            Box::new(Xconnect::new(&pairs))
        }
        "macswap" => Box::new(Macswap),
        "classify" => crate::ops_classify::build_stage(env)?,
        "policer" => crate::ops_policer::stage(env)?,
        "nat" => crate::ops_nat::stage(env)?,
        "forward" => crate::ops_forward::build_stage(env)?,
        other => return Err(format!("unknown stage '{other}'")),
    })
}
