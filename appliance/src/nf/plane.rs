//! The control-plane state of the appliance: the configuration in force and every network
//! function's own state (route lists, rule sets, static mappings, the tables the workers run,
//! the workers' shared counters), owned by the daemon's [`crate::state::State`] behind one lock
//! and handed to the NFs' start-up, operations and reload. `Clone`: a reload that fails puts the
//! whole of it back.

use crate::config::Loaded;

macro_rules! plane_with_nfs {
    ($($nf:ident),* $(,)?) => {
        /// Control-plane state: the config in force and one field per network function.
        #[derive(Clone)]
        pub struct ControlPlane {
            /// The configuration in force: the one pollfwd started with, then the last one
            /// reloaded.
            pub config: Loaded,
            $(pub $nf: crate::nf::$nf::state::Plane,)*
        }

        impl ControlPlane {
            /// The state at start-up: `config`, every NF's part empty (filled by its `boot`).
            pub fn new(config: Loaded) -> ControlPlane {
                ControlPlane {
                    config,
                    $($nf: Default::default(),)*
                }
            }
        }
    };
}
crate::nf::list::nf_list!(plane_with_nfs);
