//! The child's side of an isolated run (`loader __child`): takes its
//! channel to the loader from fd 3, reads the run request from it, loads
//! the one library, runs the action in-process and writes each event to
//! the channel as it happens (batched while the channel is busy, see
//! [`ChannelWriter`]). Cancel lines from the loader set the run's
//! cancel flag; when the channel closes (the loader is gone) or the loader
//! dies (SIGTERM from the kernel), the child kills its whole process group.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use plugin_api::{ActionFailure, FailureKind, PluginEnvironment};

use super::channel_sink::ChannelSink;
use super::child_writer::ChannelWriter;
use super::{IsolatedRun, AS_DESCRIBED_LINE, CANCEL_LINE, NOT_AS_DESCRIBED_LINE};
use crate::discovery::Discovery;
use crate::events::{EventSink, RunInfo};
use crate::host::{CancelFlag, RunSettings};
use crate::load_report::version_triple;
use crate::runner::{failure_event, run_action};
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
    let cancel = CancelFlag::default();
    follow_the_loader(requests, cancel.clone());

    let writer = match ChannelWriter::start(events) {
        Ok(writer) => writer,
        Err(e) => {
            eprintln!("loader: cannot write to the channel to the loader: {e}");
            return 2;
        }
    };
    let sink: Arc<dyn EventSink> = Arc::new(ChannelSink::new(writer.clone()));
    let discovery = Discovery::load_files(std::slice::from_ref(&request.library));
    let settings = RunSettings {
        env: PluginEnvironment::new(request.env),
        job_id: request.job_id,
        checkpoint: request.checkpoint,
        cancel,
        progress_interval: Duration::from_millis(request.progress_interval_ms),
        clients: request.clients.build(),
    };
    if let Some(expected) = &request.expect {
        let as_described = discovery.plugins.first().is_some_and(|plugin| {
            plugin.manifest == *expected.manifest && version_triple(plugin.api_version()) == expected.api_version
        });
        let verdict = if as_described { AS_DESCRIBED_LINE } else { NOT_AS_DESCRIBED_LINE };
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
    let outcome = run_action(plugin, &request.action, &request.params, settings, None, sink);
    writer.drain();
    match outcome {
        Ok(_) => 0,
        Err(_) => 1,
    }
}

/// Reads the loader's cancel lines on a thread; when the channel closes,
/// the loader is gone, and so goes everything this run started.
fn follow_the_loader(mut requests: BufReader<UnixStream>, cancel: CancelFlag) {
    let spawned = std::thread::Builder::new()
        .name("loader-channel".into())
        .spawn(move || {
            let mut line = String::new();
            loop {
                line.clear();
                match requests.read_line(&mut line) {
                    Ok(0) | Err(_) => sys::kill_own_group(),
                    Ok(_) if line.trim() == CANCEL_LINE => cancel.cancel(),
                    Ok(_) => {}
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("loader: cannot follow the loader's requests ({e}); cancelling will not work");
    }
}
