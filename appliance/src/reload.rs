//! Live reconfiguration: `pollfwdctl reload` re-reads the config file, validates all of it
//! (errors with file:line:col, nothing applied), names the changes that need a restart (EAL,
//! mempools, ports, lcores, runtime, control: refused as a whole), lets every network function
//! build its new tables off the data path (any failure refuses the whole reload), and only then
//! commits them all: each new table reaches every worker through its mailbox and is swapped in
//! between two bursts; the old ones are freed after every worker acknowledged all of them. The
//! commit is all or nothing: if one step fails (a worker does not acknowledge in time, a full
//! mailbox), the workers that switched get their old tables back and the control-plane state is
//! restored, so "old config stays in force" is true when the error says so.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::config::{self, Config};
use crate::ops::{OpCtx, OpError};
use crate::registry;

/// The config sections whose change needs a restart, compared by value (not position).
fn restart_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut v = Vec::new();
    if old.eal != new.eal {
        v.push("[eal]".to_string());
    }
    if old.mempool != new.mempool {
        v.push("[mempool]".to_string());
    }
    if old.runtime != new.runtime {
        v.push("[runtime]".to_string());
    }
    if old.control != new.control {
        v.push("[control]".to_string());
    }
    // The punt interfaces are created, and given their addresses, at start.
    if old.punt != new.punt {
        v.push("[punt]".to_string());
    } else if new.punt.enable && crate::punt::wanted(old) != crate::punt::wanted(new) {
        v.push("[punt] interfaces' addresses".to_string());
    }
    // The kernel table read and its limits are set when the reader starts.
    if old.fib_sync != new.fib_sync {
        v.push("[fib_sync]".to_string());
    }
    // Ports and lcores, each named (by port name, by lcore id).
    let ports = |c: &Config| -> Vec<(String, config::PortConfig)> {
        c.ports
            .iter()
            .map(|p| {
                let mut p = p.get_ref().clone();
                // Addresses, MSS clamps and router advertisements are the forward stage's,
                // changeable live.
                p.address = None;
                p.mss_clamp = None;
                p.ra = None;
                (p.name.get_ref().clone(), p)
            })
            .collect()
    };
    let changed = changed_names(&ports(old), &ports(new));
    if !changed.is_empty() {
        v.push(format!(
            "[[port]] {} (devices, queues, descriptors, MTU)",
            changed.join(", ")
        ));
    }
    let vlans = |c: &Config| -> Vec<(String, config::InterfaceConfig)> {
        c.interfaces
            .iter()
            .map(|i| {
                let mut i = i.get_ref().clone();
                // Addresses, MSS clamps and router advertisements are the forward stage's,
                // changeable live.
                i.address = None;
                i.mss_clamp = None;
                i.ra = None;
                (i.name.get_ref().clone(), i)
            })
            .collect()
    };
    let changed = changed_names(&vlans(old), &vlans(new));
    if !changed.is_empty() {
        v.push(format!(
            "[[interface]] {} (VLAN sub-interfaces: parents, tags, MTU)",
            changed.join(", ")
        ));
    }
    let lcores = |c: &Config| -> Vec<(String, config::LcoreConfig)> {
        c.lcores
            .iter()
            .map(|l| (l.get_ref().id.get_ref().to_string(), l.get_ref().clone()))
            .collect()
    };
    let changed = changed_names(&lcores(old), &lcores(new));
    if !changed.is_empty() {
        v.push(format!(
            "[[lcore]] {} (lcores, queues polled, stage chains, pipelines)",
            changed.join(", ")
        ));
    }
    v
}

/// The names of the entries that differ between `old` and `new` (changed, added, removed), in
/// the new file's order then the removed ones; a reordering alone names them all.
fn changed_names<T: PartialEq>(old: &[(String, T)], new: &[(String, T)]) -> Vec<String> {
    let mut v = Vec::new();
    for (i, (n, t)) in new.iter().enumerate() {
        match old.iter().position(|(o, _)| o == n) {
            Some(j) if j == i && old[j].1 == *t => {}
            Some(_) => v.push(n.clone()),
            None => v.push(format!("{n} (added)")),
        }
    }
    for (n, _) in old {
        if !new.iter().any(|(o, _)| o == n) {
            v.push(format!("{n} (removed)"));
        }
    }
    v
}

/// A `path` a client asks to reload from, if it is the configured file or a file in its
/// directory (symbolic links resolved): the daemon runs as root and must not be made to read
/// whatever a client of the control socket names.
fn allowed_path(configured: &Path, asked: &Path) -> Result<PathBuf, OpError> {
    let dir = |p: &Path| -> Option<PathBuf> {
        let abs = std::fs::canonicalize(p).ok()?;
        abs.parent().map(Path::to_path_buf)
    };
    let home = dir(configured).ok_or_else(|| {
        OpError::Failed(format!(
            "reload refused: the configured file {} cannot be resolved",
            configured.display()
        ))
    })?;
    match std::fs::canonicalize(asked) {
        Ok(p) if p.parent() == Some(home.as_path()) => Ok(p),
        Ok(_) => Err(OpError::Arg(format!(
            "reload refused: path must be the configured file or a file in its directory {}",
            home.display()
        ))),
        Err(e) => Err(OpError::Arg(format!(
            "reload refused: path {}: {e}",
            asked.display()
        ))),
    }
}

/// The `reload` operation. Args: `path` (default: the file pollfwd started with).
pub fn reload(ctx: &OpCtx<'_>, args: &Value) -> Result<Value, OpError> {
    let _g = crate::txn::change_lock();
    let old = ctx.cp(|cp| cp.config.clone());
    let path = match args.get("path").and_then(Value::as_str) {
        Some(p) => allowed_path(&old.path, std::path::Path::new(p))?,
        None => old.path.clone(),
    };
    let new = registry::load(&path)
        .map_err(|e| format!("reload refused, old config stays in force: {e}"))?;
    let restart = restart_changes(&old.config, &new.config);
    if !restart.is_empty() {
        return Err(format!(
            "reload refused, old config stays in force: these changes need a restart: {}",
            restart.join(", ")
        )
        .into());
    }
    // Phase 1: build everything (may fail: nothing applied yet).
    let mut commits = Vec::new();
    for nf in registry::ALL {
        match nf.prepare_reload(ctx, &old.config, &new.config) {
            Ok(Some(c)) => commits.push((nf.name(), c)),
            Ok(None) => {}
            Err(e) => {
                return Err(format!(
                    "reload refused, old config stays in force: {}: {e}",
                    nf.name()
                )
                .into());
            }
        }
    }
    // Phase 2: swap in, all or nothing. Every worker's replaced tables are kept until all
    // steps applied; if one fails, the workers get them back and the control-plane state (route
    // lists, rule sets...) is put back as it was.
    let saved = ctx.cp(|cp| cp.clone());
    let steps = commits
        .into_iter()
        .map(|(name, c)| {
            let step: crate::txn::Step<'_> = Box::new(move || c(ctx));
            (name, step)
        })
        .collect();
    let applied = match crate::txn::transaction(steps) {
        Ok(a) => a,
        Err(e) => {
            ctx.cp(|cp| *cp = saved);
            return Err(if e.restored {
                format!("reload failed, old config stays in force: {e}").into()
            } else {
                format!(
                    "reload failed and could not be fully undone, the data plane runs a mix of \
                     the old and new config (reload again or restart): {e}"
                )
                .into()
            });
        }
    };
    let warnings = new.warnings.clone();
    ctx.cp(|cp| cp.config = new);
    Ok(json!({
        "path": path.display().to_string(),
        "applied": applied,
        "unchanged": applied.is_empty(),
        "warnings": warnings,
    }))
}

#[cfg(test)]
mod tests {
    use super::restart_changes;
    use crate::registry::parse;

    fn with_vlan(vlan: u16, address: &str) -> crate::config::Config {
        let text = format!(
            r#"
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=/tmp/in.pcap"

[[lcore]]
id = 1
rx = [{{ port = "p0" }}]
stages = ["forward"]

[[interface]]
name = "v"
port = "p0"
vlan = {vlan}
address = "{address}"
"#
        );
        parse("t.toml", &text).unwrap().0
    }

    #[test]
    fn a_sub_interface_keeps_its_tags_until_a_restart_but_not_its_address() {
        let old = with_vlan(10, "10.10.0.1/24");
        assert!(restart_changes(&old, &with_vlan(10, "10.11.0.1/24")).is_empty());
        assert_eq!(
            restart_changes(&old, &with_vlan(11, "10.10.0.1/24")),
            ["[[interface]] v (VLAN sub-interfaces: parents, tags, MTU)"]
        );
    }

    const TEXT: &str = r#"
[[port]]
name = "p0"
device = "net_pcap0,rx_pcap=in.pcap"
address = "10.0.0.1/24"

[[lcore]]
id = 1
rx = [{ port = "p0" }]
stages = ["forward"]

[[interface]]
name = "v"
port = "p0"
vlan = 10
address = "10.10.0.1/24"
"#;

    fn cfg(text: &str) -> crate::config::Config {
        parse("t.toml", text).expect("config").0
    }

    #[test]
    fn an_mss_clamp_reloads_live_a_port_mtu_needs_a_restart() {
        let old = cfg(TEXT);
        for live in [
            TEXT.replace(
                "address = \"10.0.0.1/24\"",
                "mss_clamp = 1360\naddress = \"10.0.0.1/24\"",
            ),
            TEXT.replace("vlan = 10", "vlan = 10\nmss_clamp = 1200"),
        ] {
            assert!(restart_changes(&old, &cfg(&live)).is_empty(), "{live}");
        }
        let mtu = cfg(&TEXT.replace(
            "address = \"10.0.0.1/24\"",
            "mtu = 1400\naddress = \"10.0.0.1/24\"",
        ));
        assert_eq!(
            restart_changes(&old, &mtu),
            ["[[port]] p0 (devices, queues, descriptors, MTU)"]
        );
    }
}
