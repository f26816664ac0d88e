//! The loader's side of `RuntimeContext` for one action run: validates what
//! the plugin reports, coalesces progress, merges metrics, and turns every
//! call into an [`Event`] for the run's sink.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use plugin_api::ffi::host_side::ContextHost;
use plugin_api::ffi::ClientKind;
use plugin_api::{rules, PluginEnvironment};
use serde_json::{json, Value};

use crate::events::progress::ProgressStatus;
use crate::events::{Event, EventKind, EventSink, Level, MetricsBook, ProgressTracker, RunInfo};

/// Asks a running action to stop: `is_cancelled()` turns true in the plugin.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A client the host can offer plugins (`ctx.client()`, `ctx.agent_client()`):
/// takes a request `{method, path, body}` and answers with JSON.
pub trait Client: Send + Sync {
    fn request(&self, request: &Value) -> Result<Value, String>;

    /// How to make the same client in another process (an isolated run's
    /// child); `None` when it cannot be.
    fn spec(&self) -> Option<crate::backend::ClientSpec> {
        None
    }
}

/// The clients configured for a run; `None` means the plugin sees `None`.
#[derive(Clone, Default)]
pub struct Clients {
    pub backend: Option<Arc<dyn Client>>,
    pub agent: Option<Arc<dyn Client>>,
}

impl Clients {
    fn get(&self, kind: ClientKind) -> Option<&Arc<dyn Client>> {
        match kind {
            ClientKind::Backend => self.backend.as_ref(),
            ClientKind::Agent => self.agent.as_ref(),
        }
    }
}

/// What a run gives the plugin besides its params.
#[derive(Clone)]
pub struct RunSettings {
    pub env: PluginEnvironment,
    pub job_id: Option<String>,
    /// The checkpoint object (`category`, `path`, further fields).
    pub checkpoint: Option<Value>,
    pub clients: Clients,
    pub cancel: CancelFlag,
    /// The least time between two progress events of one step.
    pub progress_interval: Duration,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            env: PluginEnvironment::default(),
            job_id: None,
            checkpoint: None,
            clients: Clients::default(),
            cancel: CancelFlag::default(),
            progress_interval: Duration::from_millis(100),
        }
    }
}

/// The host state behind one run's context.
pub struct RunHost {
    run: RunInfo,
    sink: Arc<dyn EventSink>,
    progress: ProgressTracker,
    metrics: MetricsBook,
    env_json: String,
    job_id: Option<String>,
    checkpoint_json: Option<String>,
    clients: Clients,
    cancel: CancelFlag,
    finished: AtomicBool,
    late_calls: AtomicU64,
}

impl RunHost {
    pub fn new(run: RunInfo, settings: RunSettings, sink: Arc<dyn EventSink>) -> Self {
        Self {
            run,
            sink,
            progress: ProgressTracker::new(settings.progress_interval),
            metrics: MetricsBook::default(),
            env_json: settings.env.to_json(),
            job_id: settings.job_id,
            checkpoint_json: settings.checkpoint.map(|c| c.to_string()),
            clients: settings.clients,
            cancel: settings.cancel,
            finished: AtomicBool::new(false),
            late_calls: AtomicU64::new(0),
        }
    }

    pub fn run_info(&self) -> &RunInfo {
        &self.run
    }

    /// Sends an event to the run's sink, unless the action has ended: a
    /// plugin that kept its context past the end is ignored (and counted).
    pub fn emit(&self, event: Event) {
        if self.finished.load(Ordering::Acquire) {
            self.late_calls.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.sink.emit(&self.run, &event);
    }

    /// Ends the run: emits the progress values not reported yet, so the final
    /// value of every step is never lost, and stops accepting events.
    /// Returns how many calls arrived after the end so far.
    pub fn finish(&self, failed: bool) -> u64 {
        if failed {
            let running = self
                .progress
                .snapshot()
                .into_iter()
                .filter(|(_, p)| p.status == ProgressStatus::Running);
            for (step, _) in running {
                if let Some(event) = self.progress.mark_failed(step.as_deref()) {
                    self.sink.emit(&self.run, &event);
                }
            }
        }
        for event in self.progress.flush() {
            self.sink.emit(&self.run, &event);
        }
        self.finished.store(true, Ordering::Release);
        self.late_calls.load(Ordering::Relaxed)
    }

    fn ended_error(&self) -> Result<(), String> {
        if self.finished.load(Ordering::Acquire) {
            self.late_calls.fetch_add(1, Ordering::Relaxed);
            Err("the action has already ended; this call was ignored".to_owned())
        } else {
            Ok(())
        }
    }
}

/// Log data as JSON; text that is not JSON (a plugin not built with
/// plugin-api) is kept as a string rather than dropped.
fn parse_data(data_json: &str) -> Value {
    serde_json::from_str(data_json).unwrap_or_else(|_| json!({ "unparsed": data_json }))
}

/// The step an event belongs to: the `step` field of its data, if any.
fn step_of(data: &Value) -> Option<String> {
    data.get("step").and_then(Value::as_str).map(str::to_owned)
}

impl ContextHost for RunHost {
    fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), String> {
        self.ended_error()?;
        if let Some(event) = self.progress.update(step, current, total).map_err(|e| e.to_string())? {
            self.emit(event);
        }
        Ok(())
    }

    fn set_metrics(&self, value_json: &str, step: &str) -> Result<(), String> {
        self.ended_error()?;
        let value = rules::metrics_object(value_json)?;
        let merged = self.metrics.merge(step, value).map_err(|e| e.to_string())?;
        self.emit(Event::new(EventKind::Metrics, "metrics", Level::Info, merged).with_step(step));
        Ok(())
    }

    fn log(&self, event: &str, data_json: &str, file: Option<&str>) {
        let data = parse_data(data_json);
        let step = step_of(&data);
        let mut event = Event::new(EventKind::Event, event, Level::Info, data);
        event.step = step;
        event.file = file.map(str::to_owned);
        self.emit(event);
    }

    fn log_message(&self, message: &str, level: &str) {
        let level = level.parse().unwrap_or(Level::Info);
        self.emit(Event::new(
            EventKind::Message,
            "message",
            level,
            json!({ "content": message }),
        ));
    }

    fn log_dev_event(&self, message: &str, data_json: Option<&str>) {
        let data = data_json.map(parse_data).unwrap_or(Value::Null);
        self.emit(Event::new(
            EventKind::DevEvent,
            "dev_event",
            Level::Debug,
            json!({ "message": message, "data": data }),
        ));
    }

    fn env_json(&self) -> String {
        self.env_json.clone()
    }

    fn job_id(&self) -> Option<String> {
        self.job_id.clone()
    }

    fn checkpoint_json(&self) -> Option<String> {
        self.checkpoint_json.clone()
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    fn has_client(&self, kind: ClientKind) -> bool {
        self.clients.get(kind).is_some()
    }

    fn client_request(&self, kind: ClientKind, request_json: &str) -> Result<String, String> {
        let client = self
            .clients
            .get(kind)
            .ok_or_else(|| format!("no {kind:?} client is configured"))?;
        let request: Value = serde_json::from_str(request_json).map_err(|e| format!("the request is not JSON: {e}"))?;
        client.request(&request).map(|answer| answer.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::MemorySink;
    use plugin_api::{MessageLevel, RuntimeContext};

    fn host_with_sink() -> (Arc<RunHost>, Arc<MemorySink>) {
        let sink = Arc::new(MemorySink::default());
        let run = RunInfo {
            job_id: Some("j1".into()),
            plugin: "p".into(),
            action: "a".into(),
        };
        let settings = RunSettings {
            progress_interval: Duration::from_secs(3600),
            ..Default::default()
        };
        (Arc::new(RunHost::new(run, settings, sink.clone())), sink)
    }

    #[test]
    fn context_calls_become_events() {
        let (host, sink) = host_with_sink();
        let ctx = RuntimeContext::with_host(host.clone());
        ctx.log("step_start", json!({"step": "load"}), Some("/d.csv"));
        ctx.log_message("careful", MessageLevel::Warning);
        ctx.log_dev_event("dbg", Some(json!({"layers": 2})));
        ctx.set_metrics(json!({"loss": 1.0}), "train").unwrap();
        ctx.set_metrics(json!({"acc": 0.5}), "train").unwrap();
        let events = sink.events();
        assert_eq!(events.len(), 5);
        assert_eq!(events[0].step.as_deref(), Some("load"));
        assert_eq!(events[0].file.as_deref(), Some("/d.csv"));
        assert_eq!(events[1].level, Level::Warning);
        assert_eq!(events[1].data, json!({"content": "careful"}));
        assert_eq!(events[2].data, json!({"message": "dbg", "data": {"layers": 2}}));
        assert_eq!(
            events[4].data,
            json!({"loss": 1.0, "acc": 0.5}),
            "metrics merge per step"
        );
    }

    #[test]
    fn coalesced_progress_keeps_first_and_final_values() {
        let (host, sink) = host_with_sink();
        let ctx = RuntimeContext::with_host(host.clone());
        for i in 1..=1000 {
            ctx.set_progress(i, 2000, Some("batch")).unwrap();
        }
        assert_eq!(
            sink.events().len(),
            1,
            "only the first update is emitted within the interval"
        );
        host.finish(false);
        let events = sink.events();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1].data["current"],
            json!(1000),
            "the final value is flushed at the end"
        );
    }

    #[test]
    fn bad_progress_and_metrics_are_refused_with_a_reason() {
        let (host, _) = host_with_sink();
        let ctx = RuntimeContext::with_host(host);
        assert!(ctx
            .set_progress(3, 2, None)
            .unwrap_err()
            .to_string()
            .contains("outside 0..=2"));
        assert!(ctx
            .set_metrics(json!({"a": 1}), "")
            .unwrap_err()
            .to_string()
            .contains("non-empty step"));
        assert!(ctx
            .set_metrics(json!([1]), "s")
            .unwrap_err()
            .to_string()
            .contains("JSON object"));
    }

    struct EchoClient;

    impl Client for EchoClient {
        fn request(&self, request: &Value) -> Result<Value, String> {
            Ok(json!({ "echo": request }))
        }
    }

    #[test]
    fn configured_clients_answer_and_missing_ones_are_none() {
        let run = RunInfo {
            job_id: None,
            plugin: "p".into(),
            action: "a".into(),
        };
        let clients = Clients {
            backend: Some(Arc::new(EchoClient)),
            agent: None,
        };
        let settings = RunSettings {
            clients,
            ..Default::default()
        };
        let host = Arc::new(RunHost::new(run, settings, Arc::new(MemorySink::default())));
        let ctx = RuntimeContext::with_host(host);
        assert!(ctx.agent_client().is_none());
        let model = ctx.client().expect("a backend client").get_model(7).unwrap();
        assert_eq!(
            model,
            json!({ "echo": { "method": "GET", "path": "models/7/", "body": null } })
        );
    }

    #[test]
    fn calls_after_the_end_are_ignored_and_counted() {
        let (host, sink) = host_with_sink();
        let ctx = RuntimeContext::with_host(host.clone());
        host.finish(false);
        ctx.log_message("late", MessageLevel::Info);
        assert!(ctx.set_progress(1, 2, None).is_err());
        assert!(sink.events().is_empty());
        assert_eq!(host.finish(false), 2);
    }
}
