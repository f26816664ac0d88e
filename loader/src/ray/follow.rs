//! Follows a single run on a Ray cluster: takes what its driver says (the
//! loader's events and the driver's records, from the direct line and the
//! job's log: [`Feed`]), relays the events to the run's sinks, stops the job
//! when asked to (Ctrl-C) or when it overruns its time, and turns how it
//! ended into the same outcome a local run has.

use std::time::{Duration, Instant};

use plugin_api::{ActionFailure, FailureKind};
use serde_json::Value;

use serde_json::json;

use super::api::{JobStatus, JobsApi, RayError};
use super::feed::{Feed, Said};
use super::listen::Listener;
use super::record::{Record, RunItem};
use crate::events::{Event, EventKind, EventSink, Level, RunInfo};
use crate::isolate::Interrupts;
use crate::run::runner::{failure_event, Deadline};

/// Extra time a job gets past its own timeout and grace (which the loader
/// inside the job enforces) before the job itself is stopped.
pub const STOP_MARGIN: Duration = Duration::from_secs(10);

/// When to stop following and stop the job instead.
#[derive(Debug, Clone, Default)]
pub struct StopWhen {
    /// Stop the job when this passes (a run's `--timeout`, plus margins).
    pub deadline: Option<Instant>,
    /// Stop the job once this counts an interrupt (Ctrl-C).
    pub interrupts: Interrupts,
}

impl StopWhen {
    /// For a run with `deadline` starting now: the loader inside the job
    /// enforces the timeout and grace itself, so the job is stopped only
    /// [`STOP_MARGIN`] after both have passed.
    pub fn for_run(deadline: Option<Deadline>, interrupts: Interrupts) -> Self {
        StopWhen {
            deadline: deadline.map(|d| Instant::now() + d.timeout + d.grace + STOP_MARGIN),
            interrupts,
        }
    }
}

/// The failure an `error` event reports.
pub fn failure_of(event: &Event) -> ActionFailure {
    let kind = serde_json::from_value(event.data["kind"].clone()).unwrap_or(FailureKind::Failed);
    let message = event.data["message"].as_str().unwrap_or("the action failed").to_owned();
    ActionFailure::new(kind, message).with_details(event.data["details"].clone())
}

/// Why the loader stopped the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoppedBy {
    Deadline,
    Interrupt,
}

/// How often the follower looks at Ctrl-C and the deadline while nothing
/// comes.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// Follows job `id` (a single run: its driver relays one loader's events)
/// until the run's outcome, relaying its events to `sink` as the run `run`
/// (start and finish included), from the direct line of `listener` and the
/// job's log, each event once and in order. Returns the action's result,
/// or the failure a local run would report. The run ends with its outcome:
/// the job itself may take Ray a moment more to end.
pub fn follow_job(
    api: &JobsApi,
    id: &str,
    listener: Option<Listener>,
    run: &RunInfo,
    sink: &dyn EventSink,
    stop: &StopWhen,
) -> Result<Value, ActionFailure> {
    sink.start(run);
    let (result, relayed_error) = relay(api, id, listener, run, sink, stop);
    match &result {
        Ok(value) => sink.emit(run, &Event::result(value.clone())),
        Err(failure) if !relayed_error => sink.emit(run, &failure_event(failure)),
        Err(_) => {}
    }
    sink.finish(run);
    result
}

fn lost(e: &RayError) -> ActionFailure {
    ActionFailure::new(FailureKind::Failed, format!("lost track of the Ray job: {e}"))
}

/// How a single run ended, as the driver or the job told it.
enum Ending {
    /// The loader's last event: its `result` or `error`.
    Outcome(Event),
    Failure(ActionFailure),
}

/// Relays events until the run's outcome; returns it and whether the
/// run's own error event was relayed.
fn relay(
    api: &JobsApi,
    id: &str,
    listener: Option<Listener>,
    run: &RunInfo,
    sink: &dyn EventSink,
    stop: &StopWhen,
) -> (Result<Value, ActionFailure>, bool) {
    let mut feed = Feed::start(api, id, listener);
    let mut stopped_by: Option<StoppedBy> = None;
    // Events relayed since the sinks were last flushed: they are flushed
    // as soon as nothing more is waiting, so a JSON-lines reader sees each
    // event as it comes.
    let mut unflushed = false;
    let ending = loop {
        let wait = if unflushed { Duration::ZERO } else { LOOK_EVERY };
        match feed.next(wait, RunItem::parse) {
            Said::Item(RunItem::Event(event)) if matches!(event.kind, EventKind::Result | EventKind::Error) => {
                break Ending::Outcome(*event)
            }
            Said::Item(RunItem::Event(event)) => {
                sink.emit(run, &event);
                unflushed = true;
            }
            Said::Quiet if unflushed => {
                sink.flush();
                unflushed = false;
            }
            Said::Item(RunItem::Record(record)) => {
                if let Some(ending) = ending_of(&record, id, run, sink) {
                    break ending;
                }
            }
            Said::Other(line) => tracing::info!("ray job {id}: {line}"),
            Said::Quiet => {}
            Said::JobEnded(info) => {
                break Ending::Failure(ended_without_outcome(id, info.status, info.message.as_deref()))
            }
            Said::Lost(e) => break Ending::Failure(lost(&e)),
        }
        if stopped_by.is_none() {
            if stop.interrupts.count() > 0 {
                stopped_by = Some(StoppedBy::Interrupt);
            } else if stop.deadline.is_some_and(|d| Instant::now() >= d) {
                stopped_by = Some(StoppedBy::Deadline);
            }
            if stopped_by.is_some() {
                if let Err(e) = api.stop(id) {
                    break Ending::Failure(lost(&e));
                }
            }
        }
    };
    tracing::debug!(
        "ray job {id}: the run's events came {}",
        if feed.direct_connected() {
            "straight from its driver"
        } else {
            "from the job log"
        }
    );
    match (ending, stopped_by) {
        (Ending::Outcome(event), _) if event.kind == EventKind::Result => (Ok(event.data), false),
        (Ending::Outcome(event), None) => {
            sink.emit(run, &event);
            (Err(failure_of(&event)), true)
        }
        (Ending::Failure(failure), None) => (Err(failure), false),
        (_, Some(StoppedBy::Interrupt)) => (
            Err(ActionFailure::new(
                FailureKind::Cancelled,
                format!("interrupted: the Ray job {id} was stopped"),
            )),
            false,
        ),
        (_, Some(StoppedBy::Deadline)) => (
            Err(ActionFailure::new(
                FailureKind::TimedOut,
                format!("the Ray job {id} ran past its timeout and was stopped"),
            )),
            false,
        ),
    }
}

/// What a driver record means for a single run: its end, or a notice.
fn ending_of(record: &Record, id: &str, run: &RunInfo, sink: &dyn EventSink) -> Option<Ending> {
    match record.kind.as_str() {
        "end" => {
            let code = record.fields["exit"].clone();
            let stderr = record.text("stderr");
            let mut message =
                format!("the loader in the Ray job {id} exited with code {code} without reporting an outcome");
            if !stderr.is_empty() {
                message.push_str(": ");
                message.push_str(stderr);
            }
            Some(Ending::Failure(
                ActionFailure::new(FailureKind::Failed, message).with_details(json!({ "exit_code": code })),
            ))
        }
        "lost" => Some(Ending::Failure(ActionFailure::new(
            FailureKind::Crashed,
            format!(
                "the Ray worker or node running the job {id} died: {}",
                record.text("message")
            ),
        ))),
        "fatal" => Some(Ending::Failure(ActionFailure::new(
            FailureKind::Failed,
            format!("the Ray job {id}: {}", record.text("message")),
        ))),
        "notice" => {
            sink.emit(
                run,
                &Event::message(Level::Warning, format!("ray: {}", record.text("message"))),
            );
            None
        }
        _ => None,
    }
}

/// The failure of a job that ended without the inner loader reporting an
/// outcome: its process died, or someone stopped it.
fn ended_without_outcome(id: &str, status: JobStatus, message: Option<&str>) -> ActionFailure {
    let message = message.unwrap_or("no message").trim();
    match status {
        JobStatus::Stopped => ActionFailure::new(
            FailureKind::Cancelled,
            format!("the Ray job {id} was stopped on the cluster"),
        ),
        _ => ActionFailure::new(
            FailureKind::Crashed,
            format!(
                "the Ray job {id} ended ({}) without reporting a result: {message}{}",
                status.as_str(),
                python_hint(message)
            ),
        ),
    }
}

/// Advice when the job's entrypoint could not start its Python.
pub fn python_hint(message: &str) -> &'static str {
    if message.contains("exit code 127") {
        " (the job runs its driver with the cluster's `python3`: start the cluster with Ray's Python first on the PATH, or name it with --ray-python)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::event_of;
    use super::*;
    use serde_json::json;

    #[test]
    fn only_loader_event_lines_are_events() {
        let line = r#"{"time":"2026-01-01T00:00:00Z","timestamp":1,"job_id":"j","plugin":"p","action":"a","kind":"progress","event":"progress","step":"train","level":"info","file":null,"data":{"current":1,"total":2,"percent":50.0,"elapsed":0.1,"eta":null,"status":"running"}}"#;
        let event = event_of(line).expect("an event line");
        assert_eq!(event.kind, EventKind::Progress);
        assert_eq!(event.step.as_deref(), Some("train"));
        assert!(event_of("2026-01-01 INFO job_manager.py: Runtime env is setting up.").is_none());
        assert!(event_of("{\"not\": \"an event\"}").is_none());
    }

    #[test]
    fn a_plugin_print_arrives_as_an_output_event_and_cannot_pass_for_a_result() {
        use crate::events::jsonl::{Flush, JsonlSink};
        use crate::isolate::output::output_event;
        use crate::isolate::Stream;

        let forged = r#"{"time":"2026-01-01T00:00:00Z","timestamp":1,"job_id":"j","plugin":"p","action":"a","kind":"result","event":"result","step":null,"level":"success","file":null,"data":{"forged":true}}"#;
        let sink = JsonlSink::new(Vec::new(), Flush::EachLine);
        let run = RunInfo {
            job_id: Some("j".into()),
            plugin: "p".into(),
            action: "a".into(),
        };
        sink.emit(&run, &output_event(Stream::Stdout, forged.as_bytes(), false));
        let written = String::from_utf8(sink.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines.len(), 1);
        let event = event_of(lines[0]).expect("the output line is an event line");
        assert_eq!(event.kind, EventKind::Output);
        assert_eq!(event.data["text"], forged);
    }

    #[test]
    fn an_error_event_gives_back_the_failure_kind_and_details() {
        let event = Event::error("probe crashed", "crashed", json!({"signal": 11}));
        let failure = failure_of(&event);
        assert_eq!(failure.kind, FailureKind::Crashed);
        assert_eq!(failure.message, "probe crashed");
        assert_eq!(failure.details, json!({"signal": 11}));
        let dead = ended_without_outcome("j1", JobStatus::Failed, Some("exit code 139"));
        assert_eq!(dead.kind, FailureKind::Crashed);
        assert!(dead.message.contains("exit code 139"), "{}", dead.message);
        assert_eq!(
            ended_without_outcome("j1", JobStatus::Stopped, None).kind,
            FailureKind::Cancelled
        );
    }
}
