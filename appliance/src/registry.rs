//! The registry: every network function's [`Nf`] implementation, in the order of
//! [`crate::nf::list`], and what is done with all of them at once (loading a config, looking
//! up an operation).

use std::path::Path;

use crate::config::{self, Config, ConfigError, Loaded, Pos};
use crate::module::Nf;
use crate::ops::Op;

macro_rules! registry_of {
    ($($nf:ident),* $(,)?) => {
        /// Every network function, in the NF list's order.
        pub static ALL: &[&dyn Nf] = &[$(&crate::nf::$nf::NF,)*];
    };
}
crate::nf::list::nf_list!(registry_of);

/// The network function of stage `name`.
pub fn get(name: &str) -> Option<&'static dyn Nf> {
    ALL.iter().copied().find(|nf| nf.name() == name)
}

/// Every NF operation, NF by NF.
pub fn ops() -> impl Iterator<Item = &'static Op> {
    ALL.iter().flat_map(|nf| nf.ops().iter())
}

/// Parses config text and validates all of it: the core sections, then each NF's section.
/// `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<(Config, Vec<String>), ConfigError> {
    let (config, warnings) = config::parse_core(file, text)?;
    let pos = Pos { file, text };
    for nf in ALL {
        nf.validate(&config, &|span, msg| pos.err(span, msg))?;
    }
    Ok((config, warnings))
}

/// Each NF's [`Nf::preflight`] on a loaded config: what it allocates at start fits this
/// machine. Start-up and `--check` run it before EAL starts.
pub fn preflight(l: &Loaded) -> Result<(), ConfigError> {
    let file = l.path.display().to_string();
    let pos = config::Pos {
        file: &file,
        text: &l.text,
    };
    for nf in ALL {
        nf.preflight(&l.config, &|span, msg| pos.err(span, msg))?;
    }
    Ok(())
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = config::read(path)?;
    let (c, w) = parse(&path.display().to_string(), &text)?;
    Ok(Loaded {
        path: path.to_path_buf(),
        text,
        config: c,
        warnings: w,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_name_has_one_network_function() {
        let names: Vec<&str> = ALL.iter().map(|nf| nf.name()).collect();
        let stages: Vec<&str> = config::STAGES.iter().map(|s| s.0).collect();
        assert_eq!(names, stages, "registry and config from the same list");
        for n in &names {
            assert_eq!(names.iter().filter(|m| *m == n).count(), 1, "{n} twice");
            assert!(get(n).is_some());
        }
    }

    /// An NF folder that is not in the list would never be built, validated or served: this
    /// fails until its name is added to `nf/list.rs`.
    #[test]
    fn every_nf_folder_is_registered() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/nf");
        let mut folders: Vec<String> = std::fs::read_dir(&dir)
            .expect("appliance/src/nf")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        folders.sort();
        let mut names: Vec<String> = ALL.iter().map(|nf| nf.name().to_string()).collect();
        names.sort();
        assert_eq!(
            folders, names,
            "folders under appliance/src/nf vs registry::ALL"
        );
    }

    #[test]
    fn every_operation_name_is_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for nf in ALL {
            for op in nf.ops() {
                assert!(seen.insert(op.name), "operation {} twice", op.name);
                assert!(!op.help.is_empty(), "{} has no help", op.name);
            }
        }
        for op in crate::core_ops::CORE_OPS {
            assert!(
                seen.insert(op.name),
                "core operation {} shadows an NF's",
                op.name
            );
        }
    }
}
