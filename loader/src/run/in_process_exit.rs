//! Reporting an action that ends the whole process with `exit()` while it
//! runs in this process (`std::process::exit`, `libc::exit`): without this
//! the loader would vanish with the plugin's exit status (often 0) and no
//! `result` or `error` event, a silent success.
//!
//! While an action runs, [`ActionGuard`] records the run; an exit hook
//! registered once (`atexit`) finds it, closes the run's context, emits an
//! `error` event of kind `exited` to the run's sinks, finishes them (which
//! flushes them and cuts a mapped events file to its lines), and ends the
//! process with status 1 (`_exit`, so the plugin's status is not used).
//!
//! What it cannot catch, because no code of the loader runs: `_exit()` /
//! `exit_group` called directly, a kill by SIGKILL, and the process being
//! killed by any other signal (a crash). Events emitted before any of those
//! are still in a mapped events file; running the action isolated (the
//! default) reports all of them as a failure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};

use serde_json::json;

use crate::events::{Event, EventKind, EventSink, Level, RunInfo};
use crate::run::host::RunHost;
use crate::sys;

/// The `kind` of the `error` event of an action that exited the process.
pub const EXITED_KIND: &str = "exited";

struct RunningAction {
    run: RunInfo,
    host: Arc<RunHost>,
    sink: Arc<dyn EventSink>,
}

static RUNNING: Mutex<Option<RunningAction>> = Mutex::new(None);
static HOOK: Once = Once::new();
/// Set when the loader itself ends the process on the user's request.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Whether this process reports an action's `exit()` (see [`report_exits`]).
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Makes actions run in this process from now on report an `exit()` as an
/// `error` event of kind `exited`. The CLI turns it on for `--in-process`
/// runs. An isolated child leaves it off: there the supervisor sees the
/// child's exit status, and the child's own exit drain must not be cut
/// short by this hook's `_exit`.
pub fn report_exits() {
    REPORTING.store(true, Ordering::SeqCst);
}

/// Ends the process with `code` because the user asked to (a second
/// Ctrl-C): a running action's run then ends with an `error` event of kind
/// `cancelled` instead of `exited`.
pub fn exit_on_interrupt(code: i32) -> ! {
    INTERRUPTED.store(true, Ordering::SeqCst);
    crate::sandbox::remove_live_work_dirs();
    std::process::exit(code)
}

/// Marks an action as running in this process until dropped.
pub struct ActionGuard(());

impl ActionGuard {
    pub fn new(run: &RunInfo, host: &Arc<RunHost>, sink: &Arc<dyn EventSink>) -> Self {
        if !REPORTING.load(Ordering::SeqCst) {
            return ActionGuard(());
        }
        HOOK.call_once(|| {
            if !sys::at_exit(report_exit) {
                tracing::warn!("cannot register the exit hook: an action calling exit() would not be reported");
            }
        });
        *crate::events::lock(&RUNNING) = Some(RunningAction {
            run: run.clone(),
            host: host.clone(),
            sink: sink.clone(),
        });
        ActionGuard(())
    }
}

impl Drop for ActionGuard {
    fn drop(&mut self) {
        crate::events::lock(&RUNNING).take();
    }
}

extern "C" fn report_exit() {
    let Some(running) = crate::events::lock(&RUNNING).take() else {
        return;
    };
    let dropped = running.host.finish(true);
    let (message, kind) = if INTERRUPTED.load(Ordering::SeqCst) {
        ("the run was interrupted while the action was running", "cancelled")
    } else {
        (
            "the action ended the whole process (it called exit()) before returning",
            EXITED_KIND,
        )
    };
    let error = Event::new(
        EventKind::Error,
        "error",
        Level::Error,
        json!({ "message": message, "kind": kind, "details": null }),
    )
    .with_dropped_late_calls(dropped);
    running.sink.emit(&running.run, &error);
    running.sink.finish(&running.run);
    crate::sandbox::remove_live_work_dirs();
    sys::exit_immediately(1);
}

/// Ties the loader's life to its parent's, which must be `parent` (a run
/// on Ray: the worker that started it): when the parent dies, the loader
/// gets SIGTERM and stops its run as on Ctrl-C, so no run outlives a lost
/// worker. False when `parent` is already gone. (Linux; elsewhere nothing
/// is tied.)
pub fn exit_with_parent(parent: u32) -> std::io::Result<bool> {
    crate::sys::exit_with_parent(parent)
}
