//! Changes that reach the workers: [`broadcast_to`] hands a new object (a table, a message)
//! to the stage of every target worker through its mailbox and waits until each swapped it in
//! between two bursts; [`transaction`] groups several broadcasts (a reload) so that they apply
//! all or none. Objects a worker replaced are freed here, after every worker answered
//! (quiescent state): no worker ever sees a half-applied table or a freed one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pollfwd_pipeline::{Msg, Payload, Reply};

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
/// Serialises table changes (several control clients may ask at once).
static CHANGE: Mutex<()> = Mutex::new(());
/// Serialises whole reloads against each other (a reload may run several broadcasts).
static RELOAD: Mutex<()> = Mutex::new(());

thread_local! {
    /// Whether this thread holds [`RELOAD`] (through a [`ChangeGuard`]).
    static HOLDS_CHANGE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The change lock, held by this thread ([`change_lock`]); released when the outermost guard
/// drops.
pub struct ChangeGuard {
    /// The lock, for the outermost guard of the thread (None: a nested one).
    held: Option<std::sync::MutexGuard<'static, ()>>,
}

impl Drop for ChangeGuard {
    fn drop(&mut self) {
        if self.held.is_some() {
            HOLDS_CHANGE.with(|h| h.set(false));
        }
    }
}

/// The change lock: held by `reload` for its whole run, by every operation that changes what
/// the workers run for its whole run, and by each broadcast. Always taken before the
/// control-plane state's lock (`OpCtx::cp`), never while holding it: an operation that
/// broadcasts from inside `cp` takes this lock first, or it and a reload (which takes this one,
/// then `cp`) would wait for each other. Reentrant within a thread (a nested guard is a no-op).
pub fn change_lock() -> ChangeGuard {
    if HOLDS_CHANGE.with(|h| h.get()) {
        return ChangeGuard { held: None };
    }
    let g = RELOAD.lock().unwrap_or_else(|e| e.into_inner());
    HOLDS_CHANGE.with(|h| h.set(true));
    ChangeGuard { held: Some(g) }
}

/// How long a worker has to acknowledge a message (and, when undoing, to take its old object
/// back).
pub const ACK_WAIT: Duration = Duration::from_secs(2);

/// A worker a broadcast reaches.
#[derive(Clone)]
pub struct Target {
    /// EAL lcore id (for messages).
    pub lcore: u32,
    /// Worker index (argument of `make`).
    pub index: usize,
    pub mailbox: std::sync::Arc<pollfwd_pipeline::Mailbox>,
}

/// An object a worker replaced, kept while the change may still be undone: sending it back to
/// the same stage restores what the worker ran before (every stage's `control` returns the
/// replaced object in the form it accepts).
struct Undo {
    target: Target,
    stage: String,
    old: Payload,
}

/// The changes made so far by a reload on this thread (see [`transaction`]).
#[derive(Default)]
struct Journal {
    undo: Vec<Undo>,
    /// A broadcast failed and could not switch every worker back.
    broken: bool,
}

thread_local! {
    /// Set while a reload commits on this thread: broadcasts keep their replaced objects here.
    static JOURNAL: std::cell::RefCell<Option<Journal>> = const { std::cell::RefCell::new(None) };
}

/// A message sent and not yet answered.
struct Pending {
    target: Target,
    stage: String,
    id: u64,
}

/// Waits (until `deadline`) for the answers to `pending`. Returns the replaced objects of the
/// workers that applied, the reasons of those that refused, and those that did not answer.
fn collect(mut pending: Vec<Pending>, deadline: Instant) -> (Vec<Undo>, Vec<String>, Vec<Pending>) {
    let mut applied = Vec::new();
    let mut refused = Vec::new();
    loop {
        pending.retain_mut(|p| match p.target.mailbox.from_worker.pop() {
            Some(Reply::Applied { id, old }) if id == p.id => {
                applied.push(Undo {
                    target: p.target.clone(),
                    stage: std::mem::take(&mut p.stage),
                    old,
                });
                false
            }
            Some(Reply::Rejected { id, reason }) if id == p.id => {
                refused.push(format!("lcore {}: {reason}", p.target.lcore));
                false
            }
            // An answer to an earlier message that was given up on: its object is freed here.
            Some(_) | None => true,
        });
        if pending.is_empty() || Instant::now() > deadline {
            return (applied, refused, pending);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn lcore_list(v: impl Iterator<Item = u32>) -> String {
    v.map(|l| l.to_string()).collect::<Vec<_>>().join(",")
}

/// Sends every replaced object back to its worker (last change first, so each worker steps
/// back through its own changes in reverse) and waits for them all; `late` are messages not
/// acknowledged in time, whose answer is awaited first (if one applied after all, it is undone
/// too). Ok when every worker is back on what it ran before.
fn undo(mut undo: Vec<Undo>, late: Vec<Pending>) -> Result<(), String> {
    let mut problems = Vec::new();
    if !late.is_empty() {
        let (applied, _refused, silent) = collect(late, Instant::now() + ACK_WAIT);
        undo.extend(applied);
        if !silent.is_empty() {
            problems.push(format!(
                "lcore(s) {} never answered: the change is still in their mailbox and takes \
                 effect whenever they drain it",
                lcore_list(silent.iter().map(|p| p.target.lcore))
            ));
        }
    }
    let deadline = Instant::now() + ACK_WAIT;
    let mut pending = Vec::new();
    for u in undo.into_iter().rev() {
        if u.old.is::<()>() {
            // A query (e.g. a session listing), not a table: nothing to undo.
            continue;
        }
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut msg = Msg::Stage {
            id,
            stage: u.stage.clone(),
            payload: u.old,
        };
        // A full mailbox drains within a TX drain period: retry until the deadline.
        loop {
            match u.target.mailbox.to_worker.push(msg) {
                Ok(()) => break,
                Err(m) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(_) => {
                    problems.push(format!(
                        "lcore {}: mailbox full, '{}' not restored",
                        u.target.lcore, u.stage
                    ));
                    break;
                }
            }
        }
        pending.push(Pending {
            target: u.target,
            stage: u.stage,
            id,
        });
    }
    let (restored, refused, silent) = collect(pending, deadline.max(Instant::now() + ACK_WAIT));
    // Every worker moved back: the objects it gave up (the new tables) go now.
    drop(restored);
    problems.extend(
        refused
            .into_iter()
            .map(|r| format!("{r} (refused its old table back)")),
    );
    if !silent.is_empty() {
        problems.push(format!(
            "lcore(s) {} did not take their old table back",
            lcore_list(silent.iter().map(|p| p.target.lcore))
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Why a change did not apply everywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// Some worker could not take it (`why`); every worker runs what it ran before.
    #[error("{why}: nothing changed (workers that had switched were switched back)")]
    Undone { why: String },
    /// Some worker could not take it, and switching the others back failed too: the data
    /// plane runs a mix.
    #[error("{why}: PARTLY APPLIED, could not switch every worker back: {undo}")]
    Partial { why: String, undo: String },
}

impl From<TxnError> for String {
    fn from(e: TxnError) -> Self {
        e.to_string()
    }
}

/// A [`transaction`] that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct TxnFailure {
    /// Which step failed and why (and what undoing the earlier steps said, if it failed).
    pub msg: String,
    /// Every worker is back on what it ran before the transaction.
    pub restored: bool,
}

/// [`OpCtx::broadcast`] over explicit targets.
pub fn broadcast_to(
    targets: &[Target],
    stage: &str,
    mut make: impl FnMut(usize) -> Payload,
) -> Result<usize, TxnError> {
    let journaled = JOURNAL.with(|j| j.borrow().is_some());
    // A single change waits for a reload in progress (which holds this lock for its whole run),
    // so that it never lands between a reload's steps and their undo.
    let _r = (!journaled).then(change_lock);
    let _g = CHANGE.lock().unwrap_or_else(|e| e.into_inner());
    let mut pending = Vec::new();
    let mut errors = Vec::new();
    for t in targets {
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let msg = Msg::Stage {
            id,
            stage: stage.to_string(),
            payload: make(t.index),
        };
        if t.mailbox.to_worker.push(msg).is_err() {
            errors.push(format!("lcore {}: mailbox full, try again", t.lcore));
            break;
        }
        pending.push(Pending {
            target: t.clone(),
            stage: stage.to_string(),
            id,
        });
    }
    let (applied, refused, late) = collect(pending, Instant::now() + ACK_WAIT);
    errors.extend(refused);
    if !late.is_empty() {
        errors.push(format!(
            "lcore(s) {} did not acknowledge within {} s (is the data plane running?)",
            lcore_list(late.iter().map(|p| p.target.lcore)),
            ACK_WAIT.as_secs()
        ));
    }
    if errors.is_empty() {
        let n = applied.len();
        JOURNAL.with(|j| match j.borrow_mut().as_mut() {
            Some(j) => j.undo.extend(applied),
            // Every worker has moved to the new object: the old ones can go now.
            None => drop(applied),
        });
        return Ok(n);
    }
    let why = errors.join("; ");
    match undo(applied, late) {
        Ok(()) => Err(TxnError::Undone { why }),
        Err(undo) => {
            JOURNAL.with(|j| {
                if let Some(j) = j.borrow_mut().as_mut() {
                    j.broken = true;
                }
            });
            Err(TxnError::Partial { why, undo })
        }
    }
}

/// One step of a [`transaction`]: applies something, says what.
pub type Step<'a> = Box<dyn FnOnce() -> Result<String, String> + 'a>;

/// Runs the steps of a reload as one change: every broadcast they make is journaled, and if a
/// step fails, the workers get back what they ran before, in reverse order. Returns each step's
/// report, or the failure and whether the undo restored everything.
pub fn transaction(steps: Vec<(&'static str, Step<'_>)>) -> Result<Vec<String>, TxnFailure> {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            JOURNAL.with(|j| j.borrow_mut().take());
        }
    }
    JOURNAL.with(|j| *j.borrow_mut() = Some(Journal::default()));
    let reset = Reset;
    let mut done = Vec::new();
    for (name, step) in steps {
        match step() {
            Ok(s) => done.push(s),
            Err(e) => {
                let j = JOURNAL.with(|j| j.borrow_mut().take()).unwrap_or_default();
                drop(reset);
                let e = format!("applying {name} failed: {e}");
                // A broadcast that failed already undid itself (or said it could not).
                return Err(match undo(j.undo, Vec::new()) {
                    Ok(()) => TxnFailure {
                        msg: e,
                        restored: !j.broken,
                    },
                    Err(u) => TxnFailure {
                        msg: format!("{e}; undoing the steps before it: {u}"),
                        restored: false,
                    },
                });
            }
        }
    }
    // Every step applied on every worker: the replaced objects go now.
    drop(reset);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pollfwd_pipeline::Mailbox;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    /// A worker thread with one stage "t" holding a `u32`: takes a `u32` (returns the old one),
    /// refuses anything else; starts draining its mailbox after `delay`.
    struct FakeWorker {
        target: Target,
        value: Arc<AtomicU32>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl FakeWorker {
        fn new(lcore: u32, delay: Duration) -> FakeWorker {
            let mailbox = Arc::new(Mailbox::new(64));
            let value = Arc::new(AtomicU32::new(1));
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let (mailbox, value, stop) = (mailbox.clone(), value.clone(), stop.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    while !stop.load(Ordering::Relaxed) {
                        while let Some(Msg::Stage { id, payload, .. }) = mailbox.to_worker.pop() {
                            let reply = match payload.downcast::<u32>() {
                                Ok(v) => Reply::Applied {
                                    id,
                                    old: Box::new(value.swap(*v, Ordering::SeqCst)),
                                },
                                Err(_) => Reply::Rejected {
                                    id,
                                    reason: "not a u32".into(),
                                },
                            };
                            let _ = mailbox.from_worker.push(reply);
                        }
                        std::thread::sleep(Duration::from_micros(100));
                    }
                })
            };
            FakeWorker {
                target: Target {
                    lcore,
                    index: lcore as usize,
                    mailbox,
                },
                value,
                stop,
                thread: Some(thread),
            }
        }

        fn value(&self) -> u32 {
            self.value.load(Ordering::SeqCst)
        }
    }

    impl Drop for FakeWorker {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            let _ = self.thread.take().map(|t| t.join());
        }
    }

    fn set(w: &[&FakeWorker], v: u32) -> Result<usize, TxnError> {
        let t: Vec<Target> = w.iter().map(|w| w.target.clone()).collect();
        broadcast_to(&t, "t", |_| Box::new(v))
    }

    fn refused(w: &[&FakeWorker]) -> Result<usize, TxnError> {
        let t: Vec<Target> = w.iter().map(|w| w.target.clone()).collect();
        broadcast_to(&t, "t", |_| Box::new("wrong type"))
    }

    #[test]
    fn a_failing_step_after_a_successful_one_leaves_the_first_restored() {
        let (a, b) = (
            FakeWorker::new(1, Duration::ZERO),
            FakeWorker::new(2, Duration::ZERO),
        );
        let r = transaction(vec![
            (
                "first",
                Box::new(|| {
                    set(&[&a, &b], 7)
                        .map(|n| n.to_string())
                        .map_err(String::from)
                }),
            ),
            (
                "second",
                Box::new(|| set(&[&a], 8).map(|n| n.to_string()).map_err(String::from)),
            ),
            (
                "third",
                Box::new(|| refused(&[&b]).map(|n| n.to_string()).map_err(String::from)),
            ),
        ]);
        let TxnFailure { msg: e, restored } = r.unwrap_err();
        assert!(restored, "{e}");
        assert!(e.contains("applying third failed"), "{e}");
        assert_eq!(
            (a.value(), b.value()),
            (1, 1),
            "both back to before the first"
        );
        // A transaction whose steps all apply keeps them.
        let r = transaction(vec![
            (
                "first",
                Box::new(|| {
                    set(&[&a, &b], 7)
                        .map(|n| n.to_string())
                        .map_err(String::from)
                }),
            ),
            (
                "second",
                Box::new(|| set(&[&b], 9).map(|n| n.to_string()).map_err(String::from)),
            ),
        ]);
        assert_eq!(r.unwrap(), ["2", "1"]);
        assert_eq!((a.value(), b.value()), (7, 9));
    }

    #[test]
    fn a_broadcast_refused_by_one_worker_switches_the_others_back() {
        let (a, b) = (
            FakeWorker::new(1, Duration::ZERO),
            FakeWorker::new(2, Duration::ZERO),
        );
        // b takes u32 too, but a message it refuses is sent to both: a applies, b refuses.
        let t = [a.target.clone(), b.target.clone()];
        let e = broadcast_to(&t, "t", |i| {
            if i == 1 {
                Box::new(5u32)
            } else {
                Box::new("wrong type")
            }
        })
        .unwrap_err();
        assert!(matches!(e, TxnError::Undone { .. }), "{e}");
        let e = e.to_string();
        assert!(
            e.contains("lcore 2: not a u32") && e.contains("nothing changed"),
            "{e}"
        );
        assert_eq!((a.value(), b.value()), (1, 1));
        assert_eq!(set(&[&a, &b], 3), Ok(2));
        assert_eq!((a.value(), b.value()), (3, 3));
    }

    #[test]
    fn a_worker_that_answers_too_late_is_switched_back_too() {
        let a = FakeWorker::new(1, Duration::ZERO);
        let slow = FakeWorker::new(2, ACK_WAIT + Duration::from_millis(500));
        let e = set(&[&a, &slow], 4).unwrap_err();
        assert!(matches!(e, TxnError::Undone { .. }), "{e}");
        let e = e.to_string();
        assert!(
            e.contains("lcore(s) 2 did not acknowledge") && e.contains("nothing changed"),
            "{e}"
        );
        assert_eq!((a.value(), slow.value()), (1, 1));
    }
}
