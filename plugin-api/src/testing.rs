//! A host for unit tests of plugin code: records every context call as a
//! line of text and applies the same argument rules as the real loader, so
//! actions and workflow steps can be tested without loading a library.
//! Like the loader, it unwraps the step and level a plugin attaches to an
//! entry (see [`envelope`](crate::envelope)) and shows them as
//! ` step=NAME` / ` level=LEVEL` after the data.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::envelope::{self, EntryAttributes};
use crate::ffi::host_side::ContextHost;
use crate::ffi::ClientKind;
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

/// The attributes and the data of an entry's JSON text.
fn unwrap_json(data_json: &str) -> (EntryAttributes, serde_json::Value) {
    match serde_json::from_str(data_json) {
        Ok(value) => envelope::unwrap(value),
        Err(_) => (
            EntryAttributes::default(),
            serde_json::Value::String(data_json.to_owned()),
        ),
    }
}

fn describe(attributes: &EntryAttributes) -> String {
    let step = attributes
        .step
        .as_ref()
        .map(|s| format!(" step={s}"))
        .unwrap_or_default();
    let level = attributes
        .level
        .as_ref()
        .map(|l| format!(" level={l}"))
        .unwrap_or_default();
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
        let (attributes, data) = unwrap_json(data_json);
        if attributes.progress.as_deref() == Some("failed") {
            return self.record(format!("progress failed step={:?}", attributes.step));
        }
        self.record(format!("log {event} {data}{} file={file:?}", describe(&attributes)))
    }

    fn log_message(&self, message: &str, level: &str) {
        let (level, step) = envelope::split_message_level(level);
        let step = step.map(|s| format!(" step={s}")).unwrap_or_default();
        self.record(format!("message {level} {message}{step}"))
    }

    fn log_dev_event(&self, message: &str, data_json: Option<&str>) {
        match data_json.map(unwrap_json) {
            Some((attributes, data)) => {
                let data = (!data.is_null()).then(|| data.to_string());
                self.record(format!("dev_event {message} {data:?}{}", describe(&attributes)))
            }
            None => self.record(format!("dev_event {message} None")),
        }
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
