//! Operations: the one function per operator action, called by the control socket, by
//! `pollfwdctl` through it, and (for table changes) by config loading and reload.
//!
//! An operation takes JSON arguments and returns JSON data or an error string. Operations that
//! change a data-plane table build the new table here, off the data path, and hand it to every
//! worker that runs the stage through [`OpCtx::broadcast`]: each worker swaps it in between two
//! bursts and sends the old one back, which is dropped here only after every worker answered
//! (quiescent state): no worker ever sees a half-applied table or a freed one.

use std::any::Any;

use serde_json::Value;

use crate::nf::plane::ControlPlane;
use crate::state::State;
use crate::txn::{Target, TxnError, broadcast_to};

/// Version of the control protocol (one JSON request per line, one reply per line), reported
/// by `version` and in every error reply.
pub const PROTOCOL_VERSION: u64 = 1;

/// An operation: name (`"route.add"`), one line of help, the function, and (for a network
/// function's command) how `pollfwdctl` shows it.
pub struct Op {
    pub name: &'static str,
    pub help: &'static str,
    pub run: fn(&OpCtx<'_>, &Value) -> Result<Value, OpError>,
    /// A network function's command as the CLI documents it (`pollfwdctl route add --help`,
    /// completions, man page); `None` for the core operations, which the CLI defines itself.
    pub cli: Option<CliDoc>,
}

/// Why an operation gave no data. The messages are what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// No operation of that name.
    #[error("unknown command '{0}' (try 'help')")]
    Unknown(String),
    /// An argument is missing or has the wrong type.
    #[error("{0}")]
    Arg(String),
    /// The operation refused or failed; the message says why and whether anything changed.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for OpError {
    fn from(s: String) -> Self {
        OpError::Failed(s)
    }
}

/// For helpers that report errors as text (inside an operation's control-plane step).
impl From<OpError> for String {
    fn from(e: OpError) -> Self {
        e.to_string()
    }
}

impl From<TxnError> for OpError {
    fn from(e: TxnError) -> Self {
        OpError::Failed(e.to_string())
    }
}

impl From<&str> for OpError {
    fn from(s: &str) -> Self {
        OpError::Failed(s.to_string())
    }
}

/// A network function's command in the CLI: the words that name it (joined with dots they are
/// the operation's name, `route add` = `route.add`), its arguments and one example. The CLI
/// only documents the arguments: it sends them as given and the operation validates them.
pub struct CliDoc {
    pub words: &'static [&'static str],
    pub about: &'static str,
    pub args: &'static [ArgDoc],
    pub example: &'static str,
}

/// One argument of a network function's command, as the help shows it.
pub struct ArgDoc {
    pub key: &'static str,
    /// What the value looks like (`A.B.C.D/LEN`).
    pub value: &'static str,
    pub required: bool,
    pub help: &'static str,
}

/// An optional argument.
pub const fn arg(key: &'static str, value: &'static str, help: &'static str) -> ArgDoc {
    ArgDoc {
        key,
        value,
        required: false,
        help,
    }
}

/// A required argument.
pub const fn req(key: &'static str, value: &'static str, help: &'static str) -> ArgDoc {
    ArgDoc {
        key,
        value,
        required: true,
        help,
    }
}

/// What an operation can use.
pub struct OpCtx<'a> {
    pub state: &'a State,
}

/// Second phase of a reload step: swaps the prepared tables in (through `broadcast`) and says
/// what it did.
pub type Commit = Box<dyn FnOnce(&OpCtx<'_>) -> Result<String, String>>;

impl OpCtx<'_> {
    /// Runs `f` on the control-plane state (every NF's part of it, and the config in force),
    /// under its lock: one change at a time.
    pub fn cp<R>(&self, f: impl FnOnce(&mut ControlPlane) -> R) -> R {
        let mut g = self.state.control.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// The configuration in force (the one pollfwd started with, or the last one reloaded).
    pub fn config_in_force(&self) -> crate::config::Config {
        self.cp(|cp| cp.config.config.clone())
    }

    /// Whether any worker runs the stage `stage`.
    pub fn runs(&self, stage: &str) -> bool {
        self.workers(stage) > 0
    }

    /// How many workers run the stage `stage`.
    pub fn workers(&self, stage: &str) -> usize {
        self.state
            .lcores
            .iter()
            .filter(|l| l.stages.contains(&stage))
            .count()
    }

    /// Sends `make(worker_index)` (boxed here: `T` is the stage's own message type, never a
    /// box) to the stage `stage` of every worker whose chain has it, and
    /// waits until each has swapped it in. Returns how many workers applied it. The objects the
    /// workers replaced are dropped here, after all of them answered (inside a reload they are
    /// kept until the whole reload succeeded, to undo it otherwise).
    ///
    /// All or nothing: if a worker cannot take the message (mailbox full), refuses it, or does
    /// not acknowledge within [`crate::txn::ACK_WAIT`], the workers that had switched get their replaced
    /// object back and the error says "nothing changed"; only when that undo itself cannot be
    /// completed (a worker that never answers) does it say which lcores may run what.
    pub fn broadcast<T: Any + Send>(
        &self,
        stage: &str,
        mut make: impl FnMut(usize) -> T,
    ) -> Result<usize, TxnError> {
        let targets: Vec<Target> = self
            .state
            .lcores
            .iter()
            .filter(|l| l.stages.contains(&stage))
            .map(|l| Target {
                lcore: l.id,
                index: l.index,
                mailbox: l.mailbox.clone(),
            })
            .collect();
        debug_assert!(
            std::any::TypeId::of::<T>() != std::any::TypeId::of::<pollfwd_pipeline::Payload>(),
            "broadcast boxes the message itself: pass the stage's message, not a box"
        );
        broadcast_to(&targets, stage, |w| Box::new(make(w)))
    }
}

/// Helpers for reading arguments.
pub mod args {
    use serde_json::Value;

    use super::OpError;

    pub fn str<'a>(a: &'a Value, k: &str) -> Result<&'a str, OpError> {
        a.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| OpError::Arg(format!("missing string argument '{k}'")))
    }

    pub fn opt_str<'a>(a: &'a Value, k: &str) -> Option<&'a str> {
        a.get(k).and_then(Value::as_str)
    }

    pub fn opt_u64(a: &Value, k: &str) -> Result<Option<u64>, OpError> {
        match a.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                OpError::Arg(format!("argument '{k}' must be a non-negative integer"))
            }),
        }
    }
}
