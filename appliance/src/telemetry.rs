//! DPDK telemetry commands of pollfwd, next to DPDK's own `/ethdev/...`: `/pollfwd/stats`
//! (totals and drops by reason), `/pollfwd/lcores` (per-lcore rx/tx/drops), and the read-only
//! control commands (`/pollfwd/<cmd>`), flattened to telemetry's one-level dictionaries.

use std::sync::Arc;

use crate::state::State;
use crate::summary;

/// DPDK telemetry commands: `/pollfwd/stats` (totals and drops by reason) and
/// `/pollfwd/lcores` (per-lcore rx/tx/drops), next to DPDK's own `/ethdev/...`.
pub fn register(state: &Arc<State>) {
    use dpdk::telemetry::{TelValue, register};
    let s = state.clone();
    let r1 = register(
        "/pollfwd/stats",
        "pollfwd totals and drops by reason",
        move || {
            let mut v = Vec::new();
            let mut drops = vec![0u64; pollfwd_pipeline::DropReason::COUNT];
            let (mut rx, mut tx) = (0, 0);
            for l in &s.lcores {
                rx += l.counters.rx_packets.get();
                tx += l.counters.tx_packets.get();
                for (i, c) in l.counters.drops.iter().enumerate() {
                    drops[i] += c.get();
                }
            }
            v.push(("rx_packets".to_string(), TelValue::U64(rx)));
            v.push(("tx_packets".to_string(), TelValue::U64(tx)));
            for (name, n) in summary::drops_by_reason(&drops) {
                v.push((format!("drop_{name}"), TelValue::U64(n)));
            }
            v.push((
                "version".to_string(),
                TelValue::Str(env!("CARGO_PKG_VERSION").to_string()),
            ));
            v
        },
    );
    let s = state.clone();
    let r2 = register(
        "/pollfwd/lcores",
        "pollfwd per-lcore rx, tx, drops",
        move || {
            let mut v = Vec::new();
            for l in &s.lcores {
                let c = l.counters.snapshot();
                v.push((
                    format!("lcore{}_rx_packets", l.id),
                    TelValue::U64(c.rx_packets),
                ));
                v.push((
                    format!("lcore{}_tx_packets", l.id),
                    TelValue::U64(c.tx_packets),
                ));
                v.push((
                    format!("lcore{}_drops", l.id),
                    TelValue::U64(c.total_drops()),
                ));
            }
            v
        },
    );
    let mut regs = vec![r1, r2];
    // The other read-only control commands, as `pollfwdctl --json CMD` answers them, flattened
    // for telemetry's one-level dictionaries (see `flatten_telemetry`).
    // Each network function's read-only commands likewise, `.` becoming `/`
    // (`/pollfwd/forward/stats`).
    let nf_ops = crate::registry::ALL
        .iter()
        .flat_map(|nf| nf.telemetry().iter());
    for name in TELEMETRY_OPS.iter().chain(nf_ops) {
        let s = state.clone();
        regs.push(register(
            &command_path(name),
            &format!("pollfwd '{name}' (as pollfwdctl --json {name}, flattened)"),
            move || match crate::dispatch::dispatch(&s, name, &serde_json::json!({})) {
                Ok(v) => {
                    let mut out = Vec::new();
                    flatten_telemetry("", &v, &mut out);
                    out
                }
                Err(e) => vec![("error".to_string(), TelValue::Str(e.to_string()))],
            },
        ));
    }
    for r in regs {
        if let Err(e) = r {
            eprintln!("pollfwd: warning: telemetry: {e}");
        }
    }
}

/// Core control commands also served as DPDK telemetry commands `/pollfwd/<name>`.
const TELEMETRY_OPS: &[&str] = &["version", "ports", "runtime", "mempools", "rings"];

/// The telemetry command of control command `op`: `/pollfwd/` then `op` with `.` as `/` (DPDK
/// accepts letters, digits, `_` and `/` in command names).
fn command_path(op: &str) -> String {
    format!("/pollfwd/{}", op.replace('.', "/"))
}

/// Flattens a JSON reply into telemetry's one-level dictionary: keys are the paths joined with
/// `_` (array members by their `name` when they have one, else by index; characters other
/// than letters, digits and `_` become `_`), numbers that fit stay integers, other scalars
/// become strings (at most 127 bytes); at most `RTE_TEL_MAX_DICT_ENTRIES` (256) values.
fn flatten_telemetry(
    path: &str,
    v: &serde_json::Value,
    out: &mut Vec<(String, dpdk::telemetry::TelValue)>,
) {
    use dpdk::telemetry::TelValue;
    use serde_json::Value;
    const MAX: usize = 256;
    if out.len() >= MAX {
        return;
    }
    let join = |k: &str| {
        let k: String = k
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if path.is_empty() {
            k
        } else {
            format!("{path}_{k}")
        }
    };
    let key = || path.chars().take(63).collect::<String>();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                flatten_telemetry(&join(k), x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let seg = x
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| i.to_string(), str::to_string);
                flatten_telemetry(&join(&seg), x, out);
            }
        }
        Value::Number(n) => out.push((
            key(),
            n.as_u64()
                .map_or_else(|| TelValue::Str(n.to_string()), TelValue::U64),
        )),
        Value::Bool(b) => out.push((key(), TelValue::U64(*b as u64))),
        Value::String(t) => {
            let mut t = t.clone();
            while t.len() > 127 {
                t.pop();
            }
            out.push((key(), TelValue::Str(t)));
        }
        Value::Null => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{TELEMETRY_OPS, flatten_telemetry};
    use dpdk::telemetry::TelValue;
    use serde_json::json;

    /// Every command served as telemetry exists and has a name DPDK accepts.
    #[test]
    fn telemetry_commands_exist_and_have_valid_names() {
        let ops: Vec<&str> = crate::dispatch::all().iter().map(|o| o.name).collect();
        let nf_ops = crate::registry::ALL
            .iter()
            .flat_map(|nf| nf.telemetry().iter());
        let mut n = 0;
        for name in TELEMETRY_OPS.iter().chain(nf_ops) {
            assert!(ops.contains(name), "{name} is not an operation");
            let path = super::command_path(name);
            assert!(
                path.len() < 64
                    && path
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/'),
                "{path}"
            );
            n += 1;
        }
        assert!(n > TELEMETRY_OPS.len(), "the NFs serve some");
        assert_eq!(
            super::command_path("forward.stats"),
            "/pollfwd/forward/stats"
        );
    }

    #[test]
    fn telemetry_flattening_names_paths_and_bounds_the_reply() {
        let v = json!([
            {"name": "p0", "rx_packets": 7, "link": {"up": true, "speed-mbps": 100}},
            {"rx_packets": 1.5, "mac": "02:00:00:00:00:01", "none": null}
        ]);
        let mut out = Vec::new();
        flatten_telemetry("", &v, &mut out);
        let want: Vec<(String, TelValue)> = vec![
            ("p0_link_speed_mbps".into(), TelValue::U64(100)),
            ("p0_link_up".into(), TelValue::U64(1)),
            ("p0_name".into(), TelValue::Str("p0".into())),
            ("p0_rx_packets".into(), TelValue::U64(7)),
            ("1_mac".into(), TelValue::Str("02:00:00:00:00:01".into())),
            ("1_rx_packets".into(), TelValue::Str("1.5".into())),
        ];
        assert_eq!(out, want);
        let big = json!({"s": "x".repeat(300), "a": (0..1000).collect::<Vec<_>>()});
        let mut out = Vec::new();
        flatten_telemetry("", &big, &mut out);
        assert_eq!(out.len(), 256, "RTE_TEL_MAX_DICT_ENTRIES");
        let mut out = Vec::new();
        flatten_telemetry("", &json!({"s": "y".repeat(300)}), &mut out);
        assert_eq!(out[0].1, TelValue::Str("y".repeat(127)));
    }
}
