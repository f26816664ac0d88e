//! A host for unit tests of plugin code: records every context call as a
//! line of text and applies the same argument rules as the real loader, so
//! actions and workflow steps can be tested without loading a library.
//! An entry's step and level (see [`log_entry`](crate::log_entry)) show as
//! ` step=NAME` / ` level=LEVEL` after its data.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::ffi::host_side::ContextHost;
use crate::ffi::ClientKind;
use crate::log_entry::LogEntry;
use crate::rules;

/// Records context calls; configure what it answers through its fields.
#[derive(Default)]
pub struct RecordingHost {
    pub env: BTreeMap<String, String>,
    pub job_id: Option<String>,
    /// The checkpoint as JSON text.
    pub checkpoint: Option<String>,
    calls: Mutex<Vec<String>>,
    cancelled: AtomicBool,
}

impl RecordingHost {
    /// Adds an environment variable the plugin will see.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn with_job_id(mut self, job_id: &str) -> Self {
        self.job_id = Some(job_id.to_owned());
        self
    }

    /// Sets the checkpoint, as the JSON object the host would send.
    pub fn with_checkpoint(mut self, checkpoint: serde_json::Value) -> Self {
        self.checkpoint = Some(checkpoint.to_string());
        self
    }

    /// Every call so far, one line each, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `is_cancelled` answer true from now on.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst)
    }

    fn record(&self, line: String) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(line)
    }
}

/// ` step=NAME level=LEVEL`, each part only when present.
fn describe(step: Option<&str>, level: Option<&str>) -> String {
    let step = step.map(|s| format!(" step={s}")).unwrap_or_default();
    let level = level.map(|l| format!(" level={l}")).unwrap_or_default();
    format!("{step}{level}")
}

impl ContextHost for RecordingHost {
    fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), String> {
        rules::check_progress(current, total, step)?;
        self.record(format!("progress {current}/{total} step={step:?}"));
        Ok(())
    }

    fn set_metrics(&self, value_json: &str, step: &str) -> Result<(), String> {
        rules::check_metrics(value_json, step)?;
        self.record(format!("metrics {value_json} step={step}"));
        Ok(())
    }

    fn log(&self, event: &str, data_json: &str, file: Option<&str>) {
        self.record(format!("log {event} {data_json} file={file:?}"))
    }

    fn log_message(&self, message: &str, level: &str) {
        self.record(format!("message {level} {message}"))
    }

    fn log_dev_event(&self, message: &str, data_json: Option<&str>) {
        self.record(format!("dev_event {message} {data_json:?}"))
    }

    fn log_entry(&self, entry_json: &str) -> Result<(), String> {
        let line = match LogEntry::from_json(entry_json)? {
            LogEntry::Event {
                event,
                data,
                file,
                step,
                level,
            } => format!(
                "log {event} {}{} file={file:?}",
                serde_json::Value::Object(data),
                describe(step.as_deref(), level.as_deref())
            ),
            LogEntry::Message { message, level, step } => {
                format!("message {level} {message}{}", describe(step.as_deref(), None))
            }
            LogEntry::DevEvent { message, data, step } => format!(
                "dev_event {message} {:?}{}",
                data.map(|d| d.to_string()),
                describe(step.as_deref(), None)
            ),
            LogEntry::ProgressFailed { step } => format!("progress failed step={step:?}"),
        };
        self.record(line);
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

    fn has_client(&self, _kind: ClientKind) -> bool {
        false
    }

    fn client_request(&self, _kind: ClientKind, _request_json: &str) -> Result<String, String> {
        Err("no client is configured in RecordingHost".to_owned())
    }
}
