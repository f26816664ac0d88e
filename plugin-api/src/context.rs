//! `RuntimeContext`: what an action receives from the host, in idiomatic
//! Rust: progress, metrics and the logs (through [`Logger`]),
//! the environment, the job id, the checkpoint, the run's work directory,
//! the backend and agent clients, and cancellation.
//!
//! A context is a cheap, clonable, thread-safe handle: plugin code may move
//! clones into worker threads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::env::{PluginEnvironment, ENV_MISSING_EVENT};
use crate::ffi::host_side::{context_for, ContextHost};
use crate::ffi::plugin_side::HostHandle;
pub use crate::logger::{ContextError, Logger, MessageLevel, ProgressSnapshot, ProgressStatus};

/// The pretrained model an action starts from (`ctx.checkpoint()`). As in
/// the original, it is kept as given: a checkpoint without `category` or
/// `path` is still a checkpoint (the missing field reads as empty here and
/// as `None` through [`get`](Self::get), and is not written back).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// `base`, or the name of a fine-tuned model; empty when not given.
    #[serde(
        default,
        deserialize_with = "string_or_null",
        skip_serializing_if = "String::is_empty"
    )]
    pub category: String,
    /// Path of the model file; empty when not given (or `null`).
    #[serde(
        default,
        deserialize_with = "string_or_null",
        skip_serializing_if = "String::is_empty"
    )]
    pub path: String,
    /// Any further fields the platform sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A checkpoint field that may be `null` (read as empty).
fn string_or_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    use serde::Deserialize;
    Option::<String>::deserialize(deserializer).map(Option::unwrap_or_default)
}

impl Checkpoint {
    /// A field by name, as in the Python dictionary (`category`, `path` or
    /// any further field).
    pub fn get(&self, key: &str) -> Option<Value> {
        match key {
            "category" => Some(&self.category)
                .filter(|c| !c.is_empty())
                .cloned()
                .map(Value::String),
            "path" => Some(&self.path).filter(|p| !p.is_empty()).cloned().map(Value::String),
            other => self.extra.get(other).cloned(),
        }
    }

    /// Whether this is the base model rather than a fine-tuned one.
    pub fn is_base(&self) -> bool {
        self.category == "base"
    }
}

/// The context injected into every action run: progress, metrics and logs
/// (the methods of [`Logger`], also on the context itself), the plugin's
/// environment, the job id, the checkpoint, the backend and agent clients,
/// and cancellation. Cheap to clone and `Send + Sync`, so a worker thread
/// can have its own.
///
/// ```
/// use std::sync::Arc;
/// use plugin_api::prelude::*;
/// use plugin_api::testing::RecordingHost;
///
/// fn train(ctx: &RuntimeContext) -> ActionResult {
///     let epochs = ctx.env().get_int("EPOCHS", 3)? as u64;
///     for epoch in 1..=epochs {
///         ctx.check_cancelled()?;
///         ctx.set_progress(epoch, epochs, Some("train"))?;
///         ctx.set_metrics(json!({ "epoch": epoch }), "train")?;
///     }
///     if let Some(checkpoint) = ctx.checkpoint() {
///         ctx.log_message(&format!("started from {}", checkpoint.path), MessageLevel::Info);
///     }
///     Ok(json!({ "epochs": epochs, "job": ctx.job_id() }))
/// }
///
/// // In a test, a RecordingHost stands in for the loader.
/// let host = Arc::new(RecordingHost::default().with_env("EPOCHS", "2").with_job_id("job-7"));
/// let result = train(&RuntimeContext::with_host(host.clone())).unwrap();
/// assert_eq!(result, json!({ "epochs": 2, "job": "job-7" }));
/// assert_eq!(host.progress().len(), 2);
/// ```
#[derive(Clone)]
pub struct RuntimeContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    logger: Logger,
    env: OnceLock<PluginEnvironment>,
    job_id: OnceLock<Option<String>>,
    checkpoint: OnceLock<Option<Checkpoint>>,
    work_dir: OnceLock<Option<PathBuf>>,
}

impl RuntimeContext {
    pub(crate) fn from_host(host: HostHandle) -> Self {
        let inner = ContextInner {
            logger: Logger::new(host),
            env: OnceLock::new(),
            job_id: OnceLock::new(),
            checkpoint: OnceLock::new(),
            work_dir: OnceLock::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// A context backed by a host in this process, through the same vtable a
    /// loaded plugin uses: for testing actions and steps without a loader.
    pub fn with_host<H: ContextHost>(host: Arc<H>) -> Self {
        Self::from_host(HostHandle::new(context_for(&host)))
    }

    /// The host behind this context (for the clients).
    pub(crate) fn host_handle(&self) -> &HostHandle {
        self.inner.logger.host()
    }

    /// The logger: progress, metrics and logs.
    pub fn logger(&self) -> &Logger {
        &self.inner.logger
    }

    /// See [`Logger::set_progress`].
    pub fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), ContextError> {
        self.inner.logger.set_progress(current, total, step)
    }

    /// See [`Logger::set_metrics`].
    pub fn set_metrics(&self, value: impl Serialize, step: &str) -> Result<(), ContextError> {
        self.inner.logger.set_metrics(value, step)
    }

    /// See [`Logger::log`]: `data` must be a JSON object.
    pub fn log(&self, event: &str, data: impl Serialize, file: Option<&str>) -> Result<(), ContextError> {
        self.inner.logger.log(event, data, file)
    }

    /// See [`Logger::log_message`].
    pub fn log_message(&self, message: &str, level: MessageLevel) -> Result<(), ContextError> {
        self.inner.logger.log_message(message, level)
    }

    /// See [`Logger::log_dev_event`].
    pub fn log_dev_event(&self, message: &str, data: Option<Value>) -> Result<(), ContextError> {
        self.inner.logger.log_dev_event(message, data)
    }

    /// The environment variables this run may see. The first time a getter
    /// misses a key, the context logs a dev event named
    /// [`ENV_MISSING_EVENT`] with `{"key":
    /// KEY}` (see [`PluginEnvironment::with_miss_reporter`]), so the loader
    /// can say when the variable was set but not passed to the plugin.
    pub fn env(&self) -> &PluginEnvironment {
        self.inner.env.get_or_init(|| {
            let context = Arc::downgrade(&self.inner);
            PluginEnvironment::from_json(&self.inner.logger.host().env_json())
                .unwrap_or_default()
                .with_miss_reporter(move |key| {
                    if let Some(context) = context.upgrade() {
                        // A miss reported after the run ended is refused by the host; the getter's answer stands.
                        let _ = context
                            .logger
                            .log_dev_event(ENV_MISSING_EVENT, Some(serde_json::json!({ "key": key })));
                    }
                })
        })
    }

    /// The job id, when the run belongs to a job.
    pub fn job_id(&self) -> Option<&str> {
        self.inner
            .job_id
            .get_or_init(|| self.inner.logger.host().job_id())
            .as_deref()
    }

    /// The pretrained model to start from, when there is one.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.inner
            .checkpoint
            .get_or_init(|| {
                self.inner
                    .logger
                    .host()
                    .checkpoint_json()
                    .and_then(|json| serde_json::from_str(&json).ok())
            })
            .as_ref()
    }

    /// The run's work directory: a folder of this run's own that the
    /// plugin may always read and write, even in the loader's sandbox where
    /// most of the file system is read-only or hidden. Write scratch files
    /// and outputs there; the loader removes it after the run unless told
    /// to keep it. `None` when the host gives none, as a host older than
    /// plugin-api 1.3 never does: fall back to a folder of your own, such
    /// as one under [`std::env::temp_dir`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use plugin_api::prelude::*;
    /// use plugin_api::testing::RecordingHost;
    ///
    /// fn out_dir(ctx: &RuntimeContext) -> std::path::PathBuf {
    ///     match ctx.work_dir() {
    ///         Some(dir) => dir.join("out"),
    ///         None => std::env::temp_dir().join("my-plugin-out"),
    ///     }
    /// }
    /// let host = Arc::new(RecordingHost::default().with_work_dir("/runs/42"));
    /// assert_eq!(out_dir(&RuntimeContext::with_host(host)), std::path::Path::new("/runs/42/out"));
    /// ```
    pub fn work_dir(&self) -> Option<&Path> {
        self.inner
            .work_dir
            .get_or_init(|| self.inner.logger.host().work_dir().map(PathBuf::from))
            .as_deref()
    }

    /// Whether the host asked the action to stop (timeout, Ctrl-C). Long
    /// actions should check it between units of work. Always `false` with a
    /// host older than plugin-api 1.1, which cannot cancel.
    pub fn is_cancelled(&self) -> bool {
        self.inner.logger.host().is_cancelled().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RecordingHost;

    #[test]
    fn calls_reach_the_host_through_the_vtable() {
        let host = Arc::new(RecordingHost::default());
        let ctx = RuntimeContext::with_host(host.clone());
        ctx.set_progress(5, 10, Some("train")).unwrap();
        ctx.set_metrics(serde_json::json!({"loss": 0.5}), "train").unwrap();
        ctx.log("data_loaded", serde_json::json!({"count": 3}), Some("/d.csv"))
            .unwrap();
        ctx.log_message("hi", MessageLevel::Warning).unwrap();
        ctx.log_dev_event("dbg", None).unwrap();
        let calls = host.calls();
        assert_eq!(
            calls,
            vec![
                "progress 5/10 step=Some(\"train\")",
                "metrics {\"loss\":0.5} step=train",
                "log data_loaded {\"count\":3} file=Some(\"/d.csv\")",
                "message warning hi",
                "dev_event dbg None",
            ]
        );
    }

    #[test]
    fn host_errors_come_back_to_the_author() {
        let host = Arc::new(RecordingHost::default());
        let ctx = RuntimeContext::with_host(host);
        let err = ctx.set_progress(11, 10, None).unwrap_err();
        assert!(matches!(err, ContextError::Progress(_)), "{err}");
        assert!(ctx.set_metrics(serde_json::json!({"a": 1}), "").is_err());
    }

    #[test]
    fn a_missed_variable_is_one_dev_event_naming_the_key_in_the_running_step() {
        let host = Arc::new(RecordingHost::default().with_env("EPOCHS", "3"));
        let ctx = RuntimeContext::with_host(host.clone());
        ctx.logger().set_step(Some("train"));
        assert_eq!(ctx.env().get_int("EPOCHS", 1), Ok(3));
        assert_eq!(ctx.env().get_int("BATCH_SIZE", 32), Ok(32));
        assert_eq!(ctx.clone().env().get("BATCH_SIZE", Some("8")), Some("8"));
        assert!(!ctx.env().contains("NOT_A_READ"));
        let events = host.dev_events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].message, ENV_MISSING_EVENT);
        assert_eq!(events[0].data, Some(serde_json::json!({"key": "BATCH_SIZE"})));
        assert_eq!(events[0].step.as_deref(), Some("train"));
    }

    #[test]
    fn env_job_and_checkpoint_are_read_once_and_typed() {
        let host = Arc::new(
            RecordingHost::default()
                .with_env("EPOCHS", "3")
                .with_job_id("job-1")
                .with_checkpoint(serde_json::json!({"category": "base", "path": "/m.pt", "size": 3})),
        );
        let ctx = RuntimeContext::with_host(host);
        assert_eq!(ctx.env().get_int("EPOCHS", 1), Ok(3));
        assert_eq!(ctx.job_id(), Some("job-1"));
        let checkpoint = ctx.checkpoint().unwrap();
        assert!(checkpoint.is_base());
        assert_eq!(checkpoint.get("path"), Some(Value::String("/m.pt".into())));
        assert_eq!(checkpoint.get("size"), Some(serde_json::json!(3)));
        assert!(ctx.client().is_none());
        assert!(ctx.agent_client().is_none());
    }

    #[test]
    fn the_context_keeps_the_host_alive_and_is_shareable() {
        let host = Arc::new(RecordingHost::default());
        let ctx = RuntimeContext::with_host(host.clone());
        assert_eq!(Arc::strong_count(&host), 2);
        let clone = ctx.clone();
        std::thread::spawn(move || clone.log_message("from a thread", MessageLevel::Info))
            .join()
            .unwrap()
            .unwrap();
        drop(ctx);
        assert_eq!(Arc::strong_count(&host), 1);
        assert_eq!(host.calls(), vec!["message info from a thread"]);
    }

    #[test]
    fn a_checkpoint_without_path_is_kept_as_given() {
        // synapse-sdk 2026.2.17 keeps `ctx.checkpoint` as the dict it was given.
        let host = Arc::new(RecordingHost::default().with_checkpoint(serde_json::json!({"category": "base"})));
        let ctx = RuntimeContext::with_host(host);
        let checkpoint = ctx.checkpoint().expect("kept without a path");
        assert!(checkpoint.is_base());
        assert_eq!(checkpoint.path, "");
        assert_eq!(checkpoint.get("path"), None);
        assert_eq!(
            serde_json::to_value(checkpoint).unwrap(),
            serde_json::json!({"category": "base"})
        );
    }

    #[test]
    fn the_current_step_is_shared_by_every_clone() {
        let host = Arc::new(RecordingHost::default());
        let ctx = RuntimeContext::with_host(host.clone());
        let clone = ctx.clone();
        ctx.logger().set_step(Some("fit"));
        std::thread::spawn(move || clone.set_progress(1, 2, None))
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(host.calls(), ["progress 1/2 step=Some(\"fit\")"]);
    }

    #[test]
    fn the_work_dir_comes_from_the_host_and_is_none_without_one() {
        let host = Arc::new(RecordingHost::default().with_work_dir("/runs/7/work"));
        let ctx = RuntimeContext::with_host(host);
        assert_eq!(ctx.work_dir(), Some(Path::new("/runs/7/work")));
        assert_eq!(ctx.clone().work_dir(), Some(Path::new("/runs/7/work")));
        let none = RuntimeContext::with_host(Arc::new(RecordingHost::default()));
        assert_eq!(none.work_dir(), None);
    }

    #[test]
    fn a_host_older_than_1_3_gives_no_work_dir() {
        use crate::ffi::host_side::release_1_2_context_for;
        let host = Arc::new(RecordingHost::default().with_work_dir("/runs/7/work").with_job_id("j"));
        let ctx = RuntimeContext::from_host(HostHandle::new(release_1_2_context_for(&host)));
        assert_eq!(ctx.work_dir(), None, "the 1.2 vtable has no work_dir");
        assert_eq!(ctx.job_id(), Some("j"), "the rest of the 1.2 vtable answers");
        ctx.log_message("still heard", MessageLevel::Info).unwrap();
        assert_eq!(host.messages()[0].content, "still heard");
    }

    #[test]
    fn cancellation_is_visible() {
        let host = Arc::new(RecordingHost::default());
        let ctx = RuntimeContext::with_host(host.clone());
        assert!(!ctx.is_cancelled());
        host.cancel();
        assert!(ctx.is_cancelled());
        assert!(ctx.check_cancelled().is_err());
    }
}
