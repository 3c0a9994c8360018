//! macswap's appliance side: the stage swaps source and destination MAC (a lab NF, no settings).
//! Data path: `pollfwd_nf::macswap`.

pub mod section;
pub mod state;

use crate::module::{Nf, StageEnv};
use crate::nf::plane::ControlPlane;

/// macswap's [`Nf`].
pub struct Macswap;
pub static NF: Macswap = Macswap;

impl Nf for Macswap {
    fn name(&self) -> &'static str {
        "macswap"
    }

    fn stage(
        &self,
        _plane: &mut ControlPlane,
        _env: &StageEnv<'_>,
    ) -> Result<Box<dyn pollfwd_pipeline::Stage>, String> {
        Ok(Box::new(pollfwd_nf::macswap::Macswap))
    }
}
