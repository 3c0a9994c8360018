//! Operation dispatch: the core operations, then every network function's (through the
//! registry), looked up by name. `help` lists them.

use serde_json::{Value, json};

use crate::ops::{Op, OpCtx, OpError};
use crate::state::State;

/// `help`: every command with its one line of help.
pub const HELP: Op = Op {
    name: "help",
    help: "list commands",
    run: help,
    cli: None,
};

fn help(_: &OpCtx<'_>, _: &Value) -> Result<Value, OpError> {
    Ok(Value::Array(
        all()
            .into_iter()
            .map(|o| json!({"command": o.name, "help": o.help}))
            .collect(),
    ))
}

/// Every operation, in the order `help` lists them: `help`, the core ones, then each NF's.
pub fn all() -> Vec<&'static Op> {
    let mut v: Vec<&'static Op> = vec![&HELP];
    v.extend(crate::core_ops::CORE_OPS.iter());
    v.extend(crate::registry::ops());
    v
}

/// Runs operation `name` with `args`.
pub fn dispatch(state: &State, name: &str, args: &Value) -> Result<Value, OpError> {
    let op = all()
        .into_iter()
        .find(|o| o.name == name)
        .ok_or_else(|| OpError::Unknown(name.to_string()))?;
    (op.run)(&OpCtx { state }, args)
}
