//! A host for unit tests of plugin code: records every context call (as a
//! typed [`HostCall`], and as a line of text) and applies the same argument
//! rules as the real loader, so actions and workflow steps can be tested
//! without loading a library. An entry's step and level (see
//! [`log_entry`](crate::log_entry)) are fields of the typed records, and
//! show as ` step=NAME` / ` level=LEVEL` after the data in the text lines.
//!
//! ```
//! use std::sync::Arc;
//! use plugin_api::prelude::*;
//! use plugin_api::testing::{ProgressUpdate, RecordingHost};
//!
//! fn train(ctx: &RuntimeContext) -> ActionResult {
//!     for epoch in 1..=2 {
//!         ctx.set_progress(epoch, 2, Some("train"))?;
//!         ctx.set_metrics(json!({ "loss": 1.0 / epoch as f64 }), "train")?;
//!     }
//!     ctx.log_message("trained", MessageLevel::Success);
//!     Ok(json!({ "epochs": 2 }))
//! }
//!
//! let host = Arc::new(RecordingHost::default());
//! train(&RuntimeContext::with_host(host.clone())).unwrap();
//!
//! assert_eq!(host.progress().last(), Some(&ProgressUpdate::new(2, 2, Some("train"))));
//! assert_eq!(host.metrics()[1].value, json!({ "loss": 0.5 }));
//! assert_eq!(host.messages()[0].level, MessageLevel::Success);
//! assert_eq!(host.messages()[0].content, "trained");
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::context::MessageLevel;
use crate::ffi::host_side::ContextHost;
use crate::ffi::ClientKind;
use crate::log_entry::LogEntry as Entry;
use crate::rules;

/// Records context calls; configure what it answers through its fields.
#[derive(Default)]
pub struct RecordingHost {
    /// The environment the plugin sees.
    pub env: BTreeMap<String, String>,
    /// The job id the plugin sees.
    pub job_id: Option<String>,
    /// The checkpoint as JSON text.
    pub checkpoint: Option<String>,
    /// The run's work directory the plugin sees (`ctx.work_dir()`).
    pub work_dir: Option<PathBuf>,
    calls: Mutex<Vec<HostCall>>,
    cancelled: AtomicBool,
}

impl RecordingHost {
    /// Adds an environment variable the plugin will see.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the job id the plugin will see.
    pub fn with_job_id(mut self, job_id: &str) -> Self {
        self.job_id = Some(job_id.to_owned());
        self
    }

    /// Sets the checkpoint, as the JSON object the host would send.
    pub fn with_checkpoint(mut self, checkpoint: serde_json::Value) -> Self {
        self.checkpoint = Some(checkpoint.to_string());
        self
    }

    /// Sets the run's work directory the plugin will see; the host does
    /// not create it (a test usually passes a temporary folder it made).
    pub fn with_work_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.work_dir = Some(path.into());
        self
    }

    /// Every call so far, one line each, in order (for a quick look; the
    /// typed accessors below are better for assertions).
    pub fn calls(&self) -> Vec<String> {
        self.lock_calls().iter().map(HostCall::line).collect()
    }

    /// Every call so far, in order, as values.
    pub fn recorded(&self) -> Vec<HostCall> {
        self.lock_calls().clone()
    }

    /// The progress updates, in order.
    pub fn progress(&self) -> Vec<ProgressUpdate> {
        self.select(|call| match call {
            HostCall::Progress(update) => Some(update),
            _ => None,
        })
    }

    /// The metrics updates, in order.
    pub fn metrics(&self) -> Vec<MetricsUpdate> {
        self.select(|call| match call {
            HostCall::Metrics(update) => Some(update),
            _ => None,
        })
    }

    /// The events given to `ctx.log`, in order.
    pub fn logs(&self) -> Vec<LogEntry> {
        self.select(|call| match call {
            HostCall::Log(entry) => Some(entry),
            _ => None,
        })
    }

    /// The user-facing messages (`ctx.log_message`), in order.
    pub fn messages(&self) -> Vec<RecordedMessage> {
        self.select(|call| match call {
            HostCall::Message(message) => Some(message),
            _ => None,
        })
    }

    /// The developer events (`ctx.log_dev_event`), in order.
    pub fn dev_events(&self) -> Vec<DevEvent> {
        self.select(|call| match call {
            HostCall::DevEvent(event) => Some(event),
            _ => None,
        })
    }

    fn select<T>(&self, pick: impl Fn(HostCall) -> Option<T>) -> Vec<T> {
        self.recorded().into_iter().filter_map(pick).collect()
    }

    /// Makes `is_cancelled` answer true from now on.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst)
    }

    fn lock_calls(&self) -> std::sync::MutexGuard<'_, Vec<HostCall>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, call: HostCall) {
        self.lock_calls().push(call)
    }
}

impl ContextHost for RecordingHost {
    fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), String> {
        rules::check_progress(current, total, step)?;
        self.record(HostCall::Progress(ProgressUpdate::new(current, total, step)));
        Ok(())
    }

    fn set_metrics(&self, value_json: &str, step: &str) -> Result<(), String> {
        rules::check_metrics(value_json, step)?;
        self.record(HostCall::Metrics(MetricsUpdate {
            step: step.to_owned(),
            value: parse_json(value_json),
        }));
        Ok(())
    }

    fn log(&self, event: &str, data_json: &str, file: Option<&str>) {
        self.record(HostCall::Log(LogEntry {
            event: event.to_owned(),
            data: parse_json(data_json),
            file: file.map(str::to_owned),
            step: None,
            level: None,
        }))
    }

    fn log_message(&self, message: &str, level: &str) {
        self.record(HostCall::Message(RecordedMessage {
            level: level.parse().unwrap_or_default(),
            content: message.to_owned(),
            step: None,
        }))
    }

    fn log_dev_event(&self, message: &str, data_json: Option<&str>) {
        self.record(HostCall::DevEvent(DevEvent {
            message: message.to_owned(),
            data: data_json.map(parse_json),
            step: None,
        }))
    }

    fn log_entry(&self, entry_json: &str) -> Result<(), String> {
        let call = match Entry::from_json(entry_json)? {
            Entry::Event {
                event,
                data,
                file,
                step,
                level,
            } => HostCall::Log(LogEntry {
                event,
                data: Value::Object(data),
                file,
                step,
                level,
            }),
            Entry::Message { message, level, step } => HostCall::Message(RecordedMessage {
                level: level.parse().unwrap_or_default(),
                content: message,
                step,
            }),
            Entry::DevEvent { message, data, step } => HostCall::DevEvent(DevEvent { message, data, step }),
            Entry::ProgressFailed { step } => HostCall::ProgressFailed { step },
        };
        self.record(call);
        Ok(())
    }

    fn env_json(&self) -> String {
        serde_json::to_string(&self.env).unwrap_or_else(|_| "{}".to_owned())
    }

    fn job_id(&self) -> Option<String> {
        self.job_id.clone()
    }

    fn checkpoint_json(&self) -> Option<String> {
        self.checkpoint.clone()
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// The work directory as text; a path that is not UTF-8 cannot cross
    /// the boundary, so the plugin sees none.
    fn work_dir(&self) -> Option<String> {
        self.work_dir.as_ref().and_then(|p| p.to_str()).map(str::to_owned)
    }

    fn has_client(&self, _kind: ClientKind) -> bool {
        false
    }

    fn client_request(&self, _kind: ClientKind, _request_json: &str) -> Result<String, String> {
        Err("no client is configured in RecordingHost".to_owned())
    }
}

/// JSON text from the plugin as a value (text that is not JSON is kept as a
/// string, so a test can still see it).
fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// ` step=NAME level=LEVEL`, each part only when present.
fn describe(step: Option<&str>, level: Option<&str>) -> String {
    let step = step.map(|s| format!(" step={s}")).unwrap_or_default();
    let level = level.map(|l| format!(" level={l}")).unwrap_or_default();
    format!("{step}{level}")
}

impl HostCall {
    /// The call as one line of text (see [`RecordingHost::calls`]).
    fn line(&self) -> String {
        match self {
            HostCall::Progress(update) => {
                format!("progress {}/{} step={:?}", update.current, update.total, update.step)
            }
            HostCall::ProgressFailed { step } => format!("progress failed step={step:?}"),
            HostCall::Metrics(update) => format!("metrics {} step={}", update.value, update.step),
            HostCall::Log(entry) => format!(
                "log {} {}{} file={:?}",
                entry.event,
                entry.data,
                describe(entry.step.as_deref(), entry.level.as_deref()),
                entry.file
            ),
            HostCall::Message(message) => format!(
                "message {} {}{}",
                message.level.as_str(),
                message.content,
                describe(message.step.as_deref(), None)
            ),
            HostCall::DevEvent(event) => format!(
                "dev_event {} {:?}{}",
                event.message,
                event.data.as_ref().map(Value::to_string),
                describe(event.step.as_deref(), None)
            ),
        }
    }
}

/// One context call recorded by [`RecordingHost`].
#[derive(Debug, Clone, PartialEq)]
pub enum HostCall {
    /// `set_progress`.
    Progress(ProgressUpdate),
    /// `set_progress_failed`: the step's progress marked as failed.
    ProgressFailed {
        /// The step, if one was named or running.
        step: Option<String>,
    },
    /// `set_metrics`.
    Metrics(MetricsUpdate),
    /// `log`.
    Log(LogEntry),
    /// `log_message`.
    Message(RecordedMessage),
    /// `log_dev_event`.
    DevEvent(DevEvent),
}

/// A `set_progress` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressUpdate {
    /// Units done.
    pub current: u64,
    /// Units in all.
    pub total: u64,
    /// The step, if one was named.
    pub step: Option<String>,
}

impl ProgressUpdate {
    /// An update, to compare recorded ones with.
    pub fn new(current: u64, total: u64, step: Option<&str>) -> Self {
        Self {
            current,
            total,
            step: step.map(str::to_owned),
        }
    }
}

/// A `set_metrics` call.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsUpdate {
    /// The step (metrics category) it was reported under.
    pub step: String,
    /// The metrics as given.
    pub value: Value,
}

/// A `log` call.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// The event name.
    pub event: String,
    /// The event's data.
    pub data: Value,
    /// The file it refers to, if any.
    pub file: Option<String>,
    /// The step it belongs to, if one was named or running.
    pub step: Option<String>,
    /// Its level, when not the default.
    pub level: Option<String>,
}

/// A `log_message` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedMessage {
    /// How it is shown.
    pub level: MessageLevel,
    /// The text.
    pub content: String,
    /// The step it belongs to, if one was running.
    pub step: Option<String>,
}

/// A `log_dev_event` call.
#[derive(Debug, Clone, PartialEq)]
pub struct DevEvent {
    /// The text.
    pub message: String,
    /// The data, if any.
    pub data: Option<Value>,
    /// The step it belongs to, if one was running.
    pub step: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::context::RuntimeContext;

    #[test]
    fn every_kind_of_call_is_recorded_as_a_value_in_order() {
        let host = Arc::new(RecordingHost::default());
        let ctx = RuntimeContext::with_host(host.clone());
        ctx.set_progress(1, 3, None).unwrap();
        ctx.log("exported", json!({ "rows": 2 }), Some("/tmp/out.csv")).unwrap();
        ctx.log_dev_event("cache miss", Some(json!({ "key": "a" }))).unwrap();
        ctx.log_dev_event("no data", None).unwrap();
        ctx.log_message("careful", MessageLevel::Warning).unwrap();

        assert_eq!(host.progress(), [ProgressUpdate::new(1, 3, None)]);
        assert_eq!(
            host.logs(),
            [LogEntry {
                event: "exported".to_owned(),
                data: json!({ "rows": 2 }),
                file: Some("/tmp/out.csv".to_owned()),
                step: None,
                level: None,
            }]
        );
        let dev: Vec<(String, Option<Value>)> = host.dev_events().into_iter().map(|d| (d.message, d.data)).collect();
        assert_eq!(
            dev,
            [
                ("cache miss".to_owned(), Some(json!({ "key": "a" }))),
                ("no data".to_owned(), None)
            ]
        );
        assert_eq!(host.messages()[0].level, MessageLevel::Warning);
        let kinds: Vec<&str> = host
            .recorded()
            .iter()
            .map(|call| match call {
                HostCall::Progress(_) => "progress",
                HostCall::ProgressFailed { .. } => "progress_failed",
                HostCall::Metrics(_) => "metrics",
                HostCall::Log(_) => "log",
                HostCall::Message(_) => "message",
                HostCall::DevEvent(_) => "dev_event",
            })
            .collect();
        assert_eq!(kinds, ["progress", "log", "dev_event", "dev_event", "message"]);
        assert_eq!(
            host.calls(),
            [
                "progress 1/3 step=None",
                r#"log exported {"rows":2} file=Some("/tmp/out.csv")"#,
                r#"dev_event cache miss Some("{\"key\":\"a\"}")"#,
                "dev_event no data None",
                "message warning careful",
            ],
            "the text lines are the values, written out"
        );
    }

    #[test]
    fn refused_calls_are_not_recorded() {
        let host = Arc::new(RecordingHost::default());
        let ctx = RuntimeContext::with_host(host.clone());
        assert!(ctx.set_progress(4, 3, None).is_err());
        assert!(host.progress().is_empty());
    }

    #[test]
    fn text_that_is_not_json_is_kept_as_a_string() {
        assert_eq!(parse_json("{not json"), Value::String("{not json".to_owned()));
        assert_eq!(parse_json("[1]"), json!([1]));
    }
}
