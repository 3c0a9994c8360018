//! The core operations (version, ports, lcores, stats, runtime, mempools, topology, clear,
//! help). The socket server and the management thread live in `mgmt`.

use serde_json::{Value, json};

use crate::ops::{Op, OpCtx};

pub const CORE_OPS: &[Op] = &[
    Op {
        name: "help",
        help: "list commands",
        run: help,
    },
    Op {
        name: "version",
        help: "build, DPDK version, uptime",
        run: version,
    },
];

fn help(_: &OpCtx<'_>, _: &Value) -> Result<Value, String> {
    Ok(Value::Array(
        crate::ops::all()
            .into_iter()
            .map(|o| json!({"command": o.name, "help": o.help}))
            .collect(),
    ))
}

fn version(ctx: &OpCtx<'_>, _: &Value) -> Result<Value, String> {
    Ok(json!({
        "pollfwd": env!("CARGO_PKG_VERSION"),
        "dpdk_build": dpdk::BUILD_DPDK_VERSION,
        "dpdk_runtime": dpdk::runtime_version(),
        "uptime_s": ctx.state.started.elapsed().as_secs_f64(),
    }))
}
