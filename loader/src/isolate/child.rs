//! The child's side of an isolated run (`loader __child`): takes its
//! channel to the loader from fd 3, reads the request from it, loads the
//! one library, and does what the request's [`ChildMode`] says: runs the
//! action in-process, writing each event to the channel as it happens
//! (batched while the channel is busy, see [`ChannelWriter`]), or reports
//! the plugin's full manifest, or whether params are valid, as its result.
//! Cancel lines from the loader set the run's cancel flag, and answer
//! lines answer the plugin's client calls (see `isolate::child_clients`);
//! when the channel closes (the loader is gone) or the loader dies
//! (SIGTERM from the kernel), the child kills its whole process group.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use plugin_api::{ActionFailure, FailureKind, PluginEnvironment};
use serde_json::json;

use super::bounded_lines::{Lines, Piece};
use super::channel_sink::ChannelSink;
use super::child_clients::ProxiedCalls;
use super::child_writer::ChannelWriter;
use super::client_wire::{ANSWER_PREFIX, MAX_CLIENT_MESSAGE_BYTES};
use super::{ChildMode, IsolatedRun, AS_DESCRIBED_LINE, CANCEL_LINE, NOT_AS_DESCRIBED_LINE};
use crate::events::{Event, EventSink, RunInfo};
use crate::find::discovery::{Discovery, LoadedPlugin};
use crate::find::load_report::version_triple;
use crate::run::host::{CancelFlag, RunSettings};
use crate::run::runner::{failure_event, run_action};
use crate::sandbox;
use crate::sys;

/// Serves one run; returns the process exit code (0 when the action
/// succeeded, 1 when it failed or the library was not the plugin the
/// request expected, which it says first on the channel: then nothing but
/// the library's loading ran; 2 when the loader's request was missing).
pub fn serve_child() -> i32 {
    let channel = match sys::take_channel() {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("loader: the isolated process expects its channel to the loader on fd 3 ({e})");
            return 2;
        }
    };
    sys::kill_group_on_termination();
    let (mut requests, events) = match channel.try_clone() {
        Ok(events) => (BufReader::new(channel), events),
        Err(e) => {
            eprintln!("loader: cannot use the channel to the loader: {e}");
            return 2;
        }
    };
    let mut first = String::new();
    let request: IsolatedRun = match requests
        .read_line(&mut first)
        .ok()
        .and_then(|_| serde_json::from_str(&first).ok())
    {
        Some(request) => request,
        None => {
            eprintln!("loader: the isolated process expects a run request on its channel");
            return 2;
        }
    };
    drop(first);
    // Before any thread starts and before the library is opened: the
    // library's constructors run inside the sandbox too.
    let sandboxed = request.sandbox.as_ref().map(sandbox::enter).transpose();
    let writer = match ChannelWriter::start(events) {
        Ok(writer) => writer,
        Err(e) => {
            eprintln!("loader: cannot write to the channel to the loader: {e}");
            return 2;
        }
    };
    let cancel = CancelFlag::default();
    let calls = ProxiedCalls::new(writer.clone());
    follow_the_loader(requests, cancel.clone(), calls.clone());

    let sink: Arc<dyn EventSink> = Arc::new(ChannelSink::new(writer.clone()));
    match sandboxed {
        // What the sandbox lacks here was said by the loader, which knew it
        // before starting this process.
        Ok(_) => {}
        Err(e) => {
            let run = RunInfo {
                job_id: request.job_id.clone(),
                plugin: String::new(),
                action: request.action.clone(),
            };
            let failure = ActionFailure::new(
                FailureKind::Failed,
                format!("the plugin's sandbox could not be set up: {e}"),
            );
            sink.start(&run);
            sink.emit(&run, &failure_event(&failure));
            sink.finish(&run);
            writer.drain();
            return 1;
        }
    }
    let discovery = Discovery::load_files(std::slice::from_ref(&request.library));
    let settings = RunSettings {
        env: PluginEnvironment::new(request.env),
        job_id: request.job_id,
        checkpoint: request.checkpoint,
        cancel,
        progress_interval: Duration::from_millis(request.progress_interval_ms),
        clients: calls.clients(&request.clients),
        work_dir: request.work_dir,
    };
    if let Some(expected) = &request.expect {
        let as_described = discovery.plugins.first().is_some_and(|plugin| {
            plugin.manifest == *expected.manifest && version_triple(plugin.api_version()) == expected.api_version
        });
        let verdict = if as_described {
            AS_DESCRIBED_LINE
        } else {
            NOT_AS_DESCRIBED_LINE
        };
        let line = |pending: &mut Vec<u8>| {
            pending.extend_from_slice(verdict.as_bytes());
            pending.push(b'\n');
        };
        if writer.send(line).is_err() {
            return 2;
        }
        if !as_described {
            writer.drain();
            return 1;
        }
    }
    let Some(plugin) = discovery.plugins.first() else {
        let reason = discovery
            .problems
            .first()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "no plugin".to_owned());
        let run = RunInfo {
            job_id: settings.job_id.clone(),
            plugin: String::new(),
            action: request.action,
        };
        sink.start(&run);
        sink.emit(&run, &failure_event(&ActionFailure::new(FailureKind::Failed, reason)));
        sink.finish(&run);
        writer.drain();
        return 1;
    };
    let outcome = match request.mode {
        ChildMode::Run => run_action(plugin, &request.action, &request.params, settings, None, sink).map(drop),
        mode => answer(plugin, mode, &request.action, &request.params, settings.job_id, &*sink),
    };
    writer.drain();
    match outcome {
        Ok(_) => 0,
        Err(_) => 1,
    }
}

/// Reports what `mode` asks of the plugin as the result (or the error) of
/// a run of `action`: its full manifest, or whether `params` are valid.
fn answer(
    plugin: &LoadedPlugin,
    mode: ChildMode,
    action: &str,
    params: &str,
    job_id: Option<String>,
    sink: &dyn EventSink,
) -> Result<(), ActionFailure> {
    let run = RunInfo {
        job_id,
        plugin: plugin.manifest.code.clone(),
        action: action.to_owned(),
    };
    let outcome = match mode {
        ChildMode::Describe => plugin
            .full_manifest()
            .and_then(|manifest| serde_json::to_value(manifest).map_err(|e| e.to_string()))
            .map_err(|e| ActionFailure::new(FailureKind::Failed, e)),
        _ => match plugin.library.validate_params(action, params) {
            Some(Ok(())) => Ok(json!({ "valid": true })),
            Some(Err(text)) => Err(ActionFailure::from_json(&text)),
            None => Err(ActionFailure::new(
                FailureKind::Failed,
                format!(
                    "{} was built against plugin-api {}, which cannot validate params without running the action \
                     (needs >= 1.1)",
                    plugin.manifest.code,
                    plugin.api_version()
                ),
            )),
        },
    };
    sink.start(&run);
    let event = match &outcome {
        Ok(value) => Event::result(value.clone()),
        Err(failure) => failure_event(failure),
    };
    sink.emit(&run, &event);
    sink.finish(&run);
    outcome.map(drop)
}

/// The longest line read from the loader: an answer to a client call.
const MAX_LINE_FROM_LOADER: usize = ANSWER_PREFIX.len() + MAX_CLIENT_MESSAGE_BYTES;

/// Reads the loader's lines on a thread: cancel lines, and answers to
/// client calls; when the channel closes, the loader is gone, and so goes
/// everything this run started.
fn follow_the_loader(requests: BufReader<UnixStream>, cancel: CancelFlag, calls: Arc<ProxiedCalls>) {
    let spawned = std::thread::Builder::new()
        .name("loader-channel".into())
        .spawn(move || {
            let mut lines = Lines::new(requests, MAX_LINE_FROM_LOADER);
            let mut too_long = false;
            loop {
                match lines.next() {
                    Ok(Piece::End) | Err(_) => sys::kill_own_group(),
                    Ok(Piece::Idle) => {}
                    Ok(Piece::Part(_)) => too_long = true,
                    Ok(Piece::Line(_)) if std::mem::take(&mut too_long) => {}
                    Ok(Piece::Line(line)) if line == CANCEL_LINE.as_bytes() => cancel.cancel(),
                    Ok(Piece::Line(line)) => {
                        if let Some(answer) = line.strip_prefix(ANSWER_PREFIX) {
                            calls.answer(answer);
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("loader: cannot follow the loader's requests ({e}); cancelling will not work");
    }
}
