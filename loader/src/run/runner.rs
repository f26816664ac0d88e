//! Runs one action of a loaded plugin in this process: builds the run's
//! host, records what was asked as the run's first event (`run_start`),
//! calls the plugin, and reports the outcome as the run's last event
//! (`result` or `error`, with `dropped_late_calls`), after every progress
//! value not yet reported and every step's merged metrics.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use plugin_api::{ActionFailure, FailureKind};
use serde_json::{json, Value};

use crate::events::{Event, EventKind, EventSink, Level, RunInfo};
use crate::find::discovery::LoadedPlugin;
use crate::run::host::{RunHost, RunSettings};
use crate::run::in_process_exit::ActionGuard;

/// The name of a run's first event: what was run, with which params.
pub const RUN_START_EVENT: &str = "run_start";

/// Params longer than this (as JSON text) are not copied into `run_start`;
/// their size is recorded instead.
pub const MAX_RECORDED_PARAMS_BYTES: usize = 16 * 1024;

/// The `run_start` event (kind `event`, level `debug`, so that terminals
/// show it only when verbose): `{params, plugin_version, plugin_api,
/// loader_version}`, with `params` `null` and `params_bytes` set when the
/// params are longer than [`MAX_RECORDED_PARAMS_BYTES`].
pub fn run_start_event(plugin: &LoadedPlugin, params_json: &str) -> Event {
    let mut data = json!({
        "params": Value::Null,
        "plugin_version": plugin.manifest.version,
        "plugin_api": plugin.api_version().to_string(),
        "loader_version": env!("CARGO_PKG_VERSION"),
    });
    match serde_json::from_str::<Value>(params_json) {
        Ok(params) if params_json.len() <= MAX_RECORDED_PARAMS_BYTES => data["params"] = params,
        _ => data["params_bytes"] = json!(params_json.len()),
    }
    Event::new(EventKind::Event, RUN_START_EVENT, Level::Debug, data)
}

/// How long an action may run, and how long it gets to stop once asked.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub timeout: Duration,
    pub grace: Duration,
}

/// Runs `action` of `plugin` with `params_json`, reporting everything to
/// `sink`. Returns the result object, or why there is none.
///
/// If the action ends the process with `exit()` before returning, an
/// `error` event of kind `exited` is still emitted (see [`crate::run::in_process_exit`]).
///
/// With a `deadline`, the action runs on its own thread: when the timeout
/// passes it is asked to cancel, and if it has not returned after the grace
/// period the run ends as timed out and the thread is abandoned (an
/// in-process action cannot be killed; run it isolated for that).
pub fn run_action(
    plugin: &LoadedPlugin,
    action: &str,
    params_json: &str,
    settings: RunSettings,
    deadline: Option<Deadline>,
    sink: Arc<dyn EventSink>,
) -> Result<Value, ActionFailure> {
    let run = RunInfo {
        job_id: settings.job_id.clone(),
        plugin: plugin.manifest.code.clone(),
        action: action.to_owned(),
    };
    sink.start(&run);
    sink.emit(&run, &run_start_event(plugin, params_json));
    let cancel = settings.cancel.clone();
    let host = Arc::new(RunHost::new(run.clone(), settings, sink.clone()));

    let guard = ActionGuard::new(&run, &host, &sink);
    let outcome = match plugin.manifest.action(action) {
        None => Err(unknown_action(plugin, action)),
        Some(_) => match deadline {
            None => call_plugin(plugin, &host, action, params_json),
            Some(deadline) => call_with_deadline(plugin, &host, action, params_json, deadline, || cancel.cancel()),
        },
    };
    drop(guard);

    let dropped = host.finish(outcome.is_err());
    let last = match &outcome {
        Ok(result) => Event::new(EventKind::Result, "result", Level::Success, result.clone()),
        Err(failure) => failure_event(failure),
    };
    sink.emit(&run, &last.with_dropped_late_calls(dropped));
    sink.finish(&run);
    let dropped = host.late_calls();
    if dropped > 0 {
        tracing::warn!(
            "{dropped} context calls made after the action had returned (by threads it left running) were dropped"
        );
    }
    outcome
}

/// The `error` event describing a failure.
pub fn failure_event(failure: &ActionFailure) -> Event {
    let data = json!({ "message": failure.message, "kind": failure.kind.as_str(), "details": failure.details });
    Event::new(EventKind::Error, "error", Level::Error, data)
}

fn unknown_action(plugin: &LoadedPlugin, action: &str) -> ActionFailure {
    let available = plugin.manifest.action_names();
    ActionFailure::new(
        FailureKind::UnknownAction,
        format!(
            "plugin {:?} has no action {action:?} (available: {})",
            plugin.manifest.code,
            available.join(", ")
        ),
    )
    .with_details(json!({ "available": available }))
}

fn call_plugin(
    plugin: &LoadedPlugin,
    host: &Arc<RunHost>,
    action: &str,
    params_json: &str,
) -> Result<Value, ActionFailure> {
    match plugin.library.run_action(host, action, params_json) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            ActionFailure::new(
                FailureKind::Failed,
                format!("the plugin returned a result that is not JSON: {e}"),
            )
        }),
        Err(text) => Err(ActionFailure::from_json(&text)),
    }
}

fn call_with_deadline(
    plugin: &LoadedPlugin,
    host: &Arc<RunHost>,
    action: &str,
    params_json: &str,
    deadline: Deadline,
    cancel: impl FnOnce(),
) -> Result<Value, ActionFailure> {
    let (sender, receiver) = mpsc::channel();
    let (plugin, host_for_thread) = (plugin.clone(), host.clone());
    let (action_owned, params) = (action.to_owned(), params_json.to_owned());
    let spawned = std::thread::Builder::new()
        .name(format!("action {action}"))
        .spawn(move || {
            let _ = sender.send(call_plugin(&plugin, &host_for_thread, &action_owned, &params));
        });
    if let Err(e) = spawned {
        return Err(ActionFailure::new(
            FailureKind::Failed,
            format!("cannot start the action's thread: {e}"),
        ));
    }
    match receiver.recv_timeout(deadline.timeout) {
        Ok(outcome) => return outcome,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err(ActionFailure::new(
                FailureKind::Failed,
                "the action's thread ended without an outcome",
            ))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => cancel(),
    }
    let timeout = deadline.timeout.as_secs_f64();
    match receiver.recv_timeout(deadline.grace) {
        Ok(Ok(_))
        | Ok(Err(ActionFailure {
            kind: FailureKind::Cancelled,
            ..
        })) => Err(ActionFailure::new(
            FailureKind::TimedOut,
            format!("the action timed out after {timeout}s and stopped when asked to cancel"),
        )),
        Ok(Err(failure)) => Err(failure),
        Err(_) => Err(ActionFailure::new(
            FailureKind::TimedOut,
            format!(
                "the action timed out after {timeout}s and did not stop within {}s of being asked to cancel",
                deadline.grace.as_secs_f64()
            ),
        )),
    }
}
