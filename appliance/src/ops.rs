//! Operations: the one function per operator action, called by the control socket, by
//! `pollfwdctl` through it, and (for table changes) by config loading and reload.
//!
//! An operation takes JSON arguments and returns JSON data or an error string. Operations that
//! change a data-plane table build the new table here, off the data path, and hand it to every
//! worker that runs the stage through [`OpCtx::broadcast`]: each worker swaps it in between two
//! bursts and sends the old one back, which is dropped here only after every worker answered
//! (quiescent state): no worker ever sees a half-applied table or a freed one.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pollfwd_pipeline::{Msg, Reply};
use serde_json::Value;

use crate::daemon::State;

/// An operation: name (`"route.add"`), one line of help, and the function.
pub struct Op {
    pub name: &'static str,
    pub help: &'static str,
    pub run: fn(&OpCtx<'_>, &Value) -> Result<Value, String>,
}

/// Control-plane state of the network functions, keyed by NF name (e.g. the route list the
/// forward stage's table is built from). Only the management side touches it.
#[derive(Default)]
pub struct ControlPlane {
    map: HashMap<&'static str, Box<dyn Any + Send>>,
}

impl ControlPlane {
    /// The NF's state of type `T`, created with `Default` on first use.
    pub fn get<T: Any + Send + Default>(&mut self, key: &'static str) -> &mut T {
        self.map
            .entry(key)
            .or_insert_with(|| Box::new(T::default()))
            .downcast_mut::<T>()
            .expect("control-plane key used with two types")
    }

    /// Stores the NF's state (at start-up, from the config).
    pub fn set<T: Any + Send>(&mut self, key: &'static str, v: T) {
        self.map.insert(key, Box::new(v));
    }
}

/// What an operation can use.
pub struct OpCtx<'a> {
    pub state: &'a State,
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
/// Serialises table changes (several control clients may ask at once).
static CHANGE: Mutex<()> = Mutex::new(());
/// Serialises whole reloads against each other (a reload may run several broadcasts).
static RELOAD: Mutex<()> = Mutex::new(());

/// Held by `reload` for its whole run; individual broadcasts take their own lock.
pub fn change_lock() -> std::sync::MutexGuard<'static, ()> {
    RELOAD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Second phase of a reload step: swaps the prepared tables in (through `broadcast`) and says
/// what it did.
pub type Commit = Box<dyn FnOnce(&OpCtx<'_>) -> Result<String, String>>;

/// A network function's part in `reload`: compares its section of the old and new config and,
/// if it changed, builds the new tables off the data path (errors refuse the whole reload) and
/// returns the commit step.
pub struct Reloader {
    pub name: &'static str,
    pub prepare: fn(
        &OpCtx<'_>,
        &crate::config::Config,
        &crate::config::Config,
    ) -> Result<Option<Commit>, String>,
}

impl OpCtx<'_> {
    /// Runs `f` on the control-plane state of the NF `key`.
    pub fn cp<T: Any + Send + Default, R>(
        &self,
        key: &'static str,
        f: impl FnOnce(&mut T) -> R,
    ) -> R {
        let mut g = self.state.control.lock().unwrap_or_else(|e| e.into_inner());
        f(g.get::<T>(key))
    }

    /// Sends `make(worker_index)` to the stage `stage` of every worker whose chain has it, and
    /// waits until each has swapped it in. Returns how many workers applied it. The objects the
    /// workers replaced are dropped here, after all of them answered.
    pub fn broadcast(
        &self,
        stage: &str,
        mut make: impl FnMut(usize) -> Box<dyn Any + Send>,
    ) -> Result<usize, String> {
        let _g = CHANGE.lock().unwrap_or_else(|e| e.into_inner());
        let mut pending = Vec::new();
        for l in self
            .state
            .lcores
            .iter()
            .filter(|l| l.stages.contains(&stage))
        {
            let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let msg = Msg::Stage {
                id,
                stage: stage.to_string(),
                payload: make(l.index),
            };
            if l.mailbox.to_worker.push(msg).is_err() {
                return Err(format!("lcore {}: mailbox full, try again", l.id));
            }
            pending.push((l, id));
        }
        let n = pending.len();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut old: Vec<Box<dyn Any + Send>> = Vec::new();
        let mut errors = Vec::new();
        while !pending.is_empty() {
            pending.retain(|(l, id)| match l.mailbox.from_worker.pop() {
                Some(Reply::Applied { id: rid, old: o }) if rid == *id => {
                    old.push(o);
                    false
                }
                Some(Reply::Rejected { id: rid, reason }) if rid == *id => {
                    errors.push(reason);
                    false
                }
                Some(_) | None => true,
            });
            if pending.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let ids: Vec<String> = pending.iter().map(|(l, _)| l.id.to_string()).collect();
                return Err(format!(
                    "lcore(s) {} did not acknowledge within 2 s (is the data plane running?)",
                    ids.join(",")
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        // Every worker has moved to the new object: the old ones can go now.
        drop(old);
        if errors.is_empty() {
            Ok(n)
        } else {
            Err(errors.join("; "))
        }
    }
}

/// Every operation, in the order `help` lists them. NF files contribute their own tables.
pub fn all() -> Vec<&'static Op> {
    let mut v: Vec<&'static Op> = Vec::new();
    for table in [
        crate::control::CORE_OPS,
        crate::ops_policer::OPS,
        crate::ops_classify::OPS,
        crate::ops_forward::OPS,
        crate::ops_nat::OPS,
    ] {
        v.extend(table.iter());
    }
    v
}

/// Runs operation `name` with `args`.
pub fn dispatch(state: &State, name: &str, args: &Value) -> Result<Value, String> {
    let op = all()
        .into_iter()
        .find(|o| o.name == name)
        .ok_or_else(|| format!("unknown command '{name}' (try 'help')"))?;
    (op.run)(&OpCtx { state }, args)
}

/// Helpers for reading arguments.
pub mod args {
    use serde_json::Value;

    pub fn str<'a>(a: &'a Value, k: &str) -> Result<&'a str, String> {
        a.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("missing string argument '{k}'"))
    }

    pub fn opt_str<'a>(a: &'a Value, k: &str) -> Option<&'a str> {
        a.get(k).and_then(Value::as_str)
    }

    pub fn opt_u64(a: &Value, k: &str) -> Result<Option<u64>, String> {
        match a.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("argument '{k}' must be a non-negative integer")),
        }
    }
}
