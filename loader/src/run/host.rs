//! The loader's side of `RuntimeContext` for one action run: validates what
//! the plugin reports, coalesces progress, merges metrics, and turns every
//! call into an [`Event`] for the run's sink.
//!
//! When the action returns, its context is closed ([`RunHost::finish`]):
//! every reporting call already under way is waited for, and every later
//! one (from a thread the plugin left running) is dropped and counted, so
//! nothing reaches the sink after the run's last event.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memchr::memmem;
use plugin_api::host::{metrics_object, ClientKind, ContextHost, LogEntryRef};
use plugin_api::PluginEnvironment;
use serde_json::{json, Value};

use crate::events::progress::ProgressStatus;
use crate::events::{
    deliver, raw, Event, EventKind, EventSink, Level, MetricsBook, ProgressTracker, RawData, RunInfo, UserEvent,
};

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
    /// The run's work directory, which the plugin reads as
    /// `ctx.work_dir()` (plugins built against plugin-api 1.3 or later).
    /// The run does not create or remove it: whoever sets it does. It
    /// reaches the plugin as text, so a path that is not UTF-8 is not
    /// given (with a warning).
    pub work_dir: Option<PathBuf>,
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
            work_dir: None,
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
    work_dir: Option<String>,
    clients: Clients,
    cancel: CancelFlag,
    gate: Gate,
}

/// What a call made after the action ended is told.
fn ended() -> String {
    "the action has already ended; this call was ignored".to_owned()
}

/// How long closing a run waits for reporting calls already under way (a
/// sink blocked on a full pipe, say) before it carries on without them.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Lets reporting calls through until the run is closed, and knows how many
/// are under way, so that closing can wait for them.
#[derive(Debug, Default)]
struct Gate {
    in_flight: AtomicU64,
    closed: AtomicBool,
    late: AtomicU64,
}

/// A reporting call let through; the call is under way until it drops.
struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    /// A pass while the run is open; `None` (and one more late call) after.
    fn enter(&self) -> Option<Pass<'_>> {
        // Announce the call before looking at `closed`, and `close` sets
        // `closed` before reading `in_flight` (all SeqCst): either the call
        // sees the run closed, or `close` sees the call and waits for it.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let pass = Pass(self);
        if self.closed.load(Ordering::SeqCst) {
            drop(pass);
            self.late.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(pass)
    }

    /// Refuses new calls, then waits (up to [`CLOSE_WAIT`]) for the ones
    /// under way. False when it was already closed.
    fn close(&self) -> bool {
        if self.closed.swap(true, Ordering::SeqCst) {
            return false;
        }
        let started = Instant::now();
        while self.in_flight.load(Ordering::SeqCst) != 0 {
            if started.elapsed() > CLOSE_WAIT {
                tracing::warn!("a context call still running {CLOSE_WAIT:?} after the action ended was not waited for");
                return true;
            }
            std::thread::yield_now();
        }
        true
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// For calls that only update state `close` reads under its own lock
    /// afterwards (the progress tracker): refuses them once the run is
    /// closed, counting them late, without announcing them as under way.
    fn check_open(&self) -> Option<()> {
        if self.is_closed() {
            self.late.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(())
    }

    fn late_calls(&self) -> u64 {
        self.late.load(Ordering::Relaxed)
    }
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
            work_dir: settings.work_dir.as_deref().and_then(work_dir_text),
            clients: settings.clients,
            cancel: settings.cancel,
            gate: Gate::default(),
        }
    }

    pub fn run_info(&self) -> &RunInfo {
        &self.run
    }

    /// Sends an event to the run's sink, unless the action has ended: a
    /// plugin that kept its context past the end is ignored (and counted).
    pub fn emit(&self, event: Event) {
        if let Some(_pass) = self.gate.enter() {
            deliver(&self.sink, &self.run, &event);
        }
    }

    /// Emits a user event given by reference, unless the run has ended.
    fn emit_user(&self, event: &UserEvent<'_>) {
        if let Some(_pass) = self.gate.enter() {
            self.sink.emit_user(&self.run, event);
        }
    }

    /// Ends the run: closes the context (waiting for reporting calls under
    /// way, dropping later ones), then emits the progress values not reported
    /// yet, so the final value of every step is never lost, and each step's
    /// merged metrics (`metrics_summary`). Returns how many calls were
    /// dropped so far; [`late_calls`](Self::late_calls) counts on. Calling
    /// it again only returns the count.
    pub fn finish(&self, failed: bool) -> u64 {
        if !self.gate.close() {
            return self.gate.late_calls();
        }
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
        for event in self.metrics.summary_events() {
            self.sink.emit(&self.run, &event);
        }
        self.gate.late_calls()
    }

    /// How many context calls arrived after the run was closed.
    pub fn late_calls(&self) -> u64 {
        self.gate.late_calls()
    }

    /// A pass for a reporting call, or the error a late one gets.
    fn enter(&self) -> Result<Pass<'_>, String> {
        self.gate.enter().ok_or_else(ended)
    }

    /// A structured event, attributed to `step`.
    fn emit_log(&self, event: &str, data: Value, file: Option<&str>, step: Option<String>, level: Level) {
        self.emit_log_at(SystemTime::now(), event, data, file, step, level)
    }

    /// [`emit_log`](Self::emit_log) for an event made at `time`.
    fn emit_log_at(
        &self,
        time: SystemTime,
        event: &str,
        data: Value,
        file: Option<&str>,
        step: Option<String>,
        level: Level,
    ) {
        let mut event = Event::new(EventKind::Event, event, level, data);
        event.time = time;
        event.step = step;
        event.file = file.map(str::to_owned);
        self.emit(event);
    }

    /// A message for the user, attributed to `step`.
    fn emit_message(&self, time: SystemTime, message: &str, level: Level, step: Option<String>) {
        let mut event = Event::new(EventKind::Message, "message", level, json!({ "content": message }));
        event.time = time;
        event.step = step;
        self.emit(event);
    }

    /// A developer event, attributed to `step`.
    fn emit_dev_event(&self, time: SystemTime, message: &str, data: Value, step: Option<String>) {
        let mut event = Event::new(
            EventKind::DevEvent,
            "dev_event",
            Level::Debug,
            json!({ "message": message, "data": data }),
        );
        event.time = time;
        event.step = step;
        self.emit(event);
    }

    /// A plugin's log entry (JSON `LogEntry` text), made at `time`, which
    /// is `unix_nanos` after the Unix epoch when the plugin gave it so.
    fn log_entry_made(&self, entry_json: &str, time: SystemTime, unix_nanos: Option<u64>) -> Result<(), String> {
        match LogEntryRef::parse(entry_json)? {
            LogEntryRef::Event {
                event,
                data,
                file,
                step,
                level,
            } => {
                let level = level_of(level.as_deref());
                // The data stays text unless it has to be read: an event
                // without a step whose data may name one is attributed
                // from its data, as 1.0/1.1 plugins attribute theirs.
                let attributed = step.is_some() || !raw::may_contain(data.get(), &STEP_KEY);
                let (step_text, file_text) = (step.as_deref(), file.as_deref());
                let user = attributed
                    .then(|| match unix_nanos {
                        Some(nanos) => UserEvent::at_unix_nanos(nanos, &event, level, step_text, file_text, data),
                        None => UserEvent::at(time, &event, level, step_text, file_text, data),
                    })
                    .flatten();
                if let Some(user) = user {
                    self.emit_user(&user);
                    return Ok(());
                }
                // Data with line breaks between its tokens is rewritten on one line.
                let step = step.map(Cow::into_owned);
                match attributed.then(|| RawData::object(data)).flatten() {
                    Some(raw) => {
                        let mut event = Event::new(EventKind::Event, event, level, Value::Null);
                        event.time = time;
                        event.step = step;
                        event.file = file.map(Cow::into_owned);
                        event.raw_data = Some(raw);
                        self.emit(event);
                    }
                    None => {
                        let data: Value =
                            serde_json::from_str(data.get()).map_err(|e| format!("not a log entry: {e}"))?;
                        let step = step.or_else(|| step_in_data(&data));
                        self.emit_log_at(time, &event, data, file.as_deref(), step, level)
                    }
                }
            }
            LogEntryRef::Message { message, level, step } => {
                self.emit_message(time, &message, level_of(Some(&level)), step.map(Cow::into_owned))
            }
            LogEntryRef::DevEvent { message, data, step } => {
                let data = data.map_or(Ok(Value::Null), |d| serde_json::from_str(d.get()));
                let data = data.map_err(|e| format!("not a log entry: {e}"))?;
                self.emit_dev_event(time, &message, data, step.map(Cow::into_owned))
            }
            LogEntryRef::ProgressFailed { step } => {
                if let Some(event) = self.progress.mark_failed(step.as_deref()) {
                    self.emit(event);
                }
            }
        }
        Ok(())
    }
}

/// The search for a `"step"` key in an entry's data, set up once.
static STEP_KEY: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new("\"step\""));

/// The work directory as the plugin receives it: text, so only a UTF-8 path.
fn work_dir_text(path: &std::path::Path) -> Option<String> {
    let text = path.to_str().map(str::to_owned);
    if text.is_none() {
        tracing::warn!(
            "the work directory {} is not UTF-8, so the plugin is told of none",
            path.display()
        );
    }
    text
}

/// Log data as JSON; text that is not JSON (a plugin not built with
/// plugin-api) is kept as a string rather than dropped.
fn parse_data(data_json: &str) -> Value {
    serde_json::from_str(data_json).unwrap_or_else(|_| json!({ "unparsed": data_json }))
}

/// The step an event's data names, as plugins built against 1.0/1.1 (and
/// events logged without a running step) attribute it.
fn step_in_data(data: &Value) -> Option<String> {
    data.get("step").and_then(Value::as_str).map(str::to_owned)
}

/// A level name the plugin sent; unknown names read as `info`.
fn level_of(name: Option<&str>) -> Level {
    name.and_then(|name| name.parse().ok()).unwrap_or(Level::Info)
}

impl ContextHost for RunHost {
    /// The hot path of a progress loop takes no pass through the gate (two
    /// atomic read-modify-writes, a sixth of the call): an update only
    /// changes the tracker, which `finish` reads under its lock after
    /// closing the gate, and the rare update that yields an event emits it
    /// through the gate. An update racing with the close is either in the
    /// final values or dropped, as a late call is.
    fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), String> {
        self.gate.check_open().ok_or_else(ended)?;
        // Matched in place: `map_err` would move the whole (large) result.
        match self.progress.update(step, current, total) {
            Ok(Some(event)) => self.emit(event),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        Ok(())
    }

    fn set_metrics(&self, value_json: &str, step: &str) -> Result<(), String> {
        let _pass = self.enter()?;
        let value = metrics_object(value_json)?;
        let event = self.metrics.merge(step, value).map_err(|e| e.to_string())?;
        self.sink.emit(&self.run, &event);
        Ok(())
    }

    /// A plugin built against 1.0/1.1: the step, if any, is in the data.
    fn log(&self, event: &str, data_json: &str, file: Option<&str>) {
        let data = parse_data(data_json);
        let step = step_in_data(&data);
        self.emit_log(event, data, file, step, Level::Info);
    }

    /// A plugin built against 1.0/1.1: a message has no step.
    fn log_message(&self, message: &str, level: &str) {
        self.emit_message(SystemTime::now(), message, level_of(Some(level)), None);
    }

    /// A plugin built against 1.0/1.1: a developer event has no step.
    fn log_dev_event(&self, message: &str, data_json: Option<&str>) {
        self.emit_dev_event(
            SystemTime::now(),
            message,
            data_json.map(parse_data).unwrap_or(Value::Null),
            None,
        );
    }

    fn log_entry(&self, entry_json: &str) -> Result<(), String> {
        self.log_entry_made(entry_json, SystemTime::now(), None)
    }

    /// Entries come from the plugin's log thread, stamped at their call.
    fn logs_off_thread(&self) -> bool {
        true
    }

    fn log_entry_at(&self, entry_json: &str, unix_nanos: u64) -> Result<(), String> {
        self.log_entry_made(
            entry_json,
            UNIX_EPOCH + Duration::from_nanos(unix_nanos),
            Some(unix_nanos),
        )
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

    fn work_dir(&self) -> Option<String> {
        self.work_dir.clone()
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
    fn a_user_events_data_reaches_the_sinks_as_given_and_parsed_where_read() {
        let (host, sink) = host_with_sink();
        let ctx = RuntimeContext::with_host(host.clone());
        ctx.log("plain", json!({"b": 1, "a": [true]}), None).unwrap();
        ctx.log("named", json!({"step": "load", "n": 1}), None).unwrap();
        ctx.logger().set_step(Some("train"));
        ctx.log("in_step", json!({"step": "other"}), Some("/f")).unwrap();
        // Entries reach the host from the plugin's log thread.
        ctx.logger().flush();
        let events = sink.events();
        let steps: Vec<_> = events.iter().map(|e| e.step.as_deref()).collect();
        assert_eq!(steps, [None, Some("load"), Some("train")]);
        assert_eq!(
            events[0].data,
            json!({"a": [true], "b": 1}),
            "a memory sink reads parsed data"
        );
        assert_eq!(events[2].data, json!({"step": "other"}));
        assert_eq!(events[2].file.as_deref(), Some("/f"));
    }

    /// A writer whose bytes the test can read while a sink owns it.
    #[derive(Clone, Default)]
    struct SharedBytes(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBytes {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_json_lines_sink_writes_the_plugins_data_text_as_it_came() {
        let bytes = SharedBytes::default();
        let jsonl = crate::events::JsonlSink::new(bytes.clone(), crate::events::Flush::EachLine);
        let host = RunHost::new(RunInfo::new("p", "a"), RunSettings::default(), Arc::new(jsonl));
        let entry = r#"{"kind":"event","event":"e","data":{"z":1,"a":{"y":[2]}},"file":null,"step":null,"level":null}"#;
        host.log_entry(entry).unwrap();
        let spaced = "{\"kind\":\"event\",\"event\":\"e\",\"data\":{\"z\" :\n1},\"file\":null}";
        host.log_entry(spaced).unwrap();
        let text = String::from_utf8(bytes.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with(r#""data":{"z":1,"a":{"y":[2]}}}"#), "{}", lines[0]);
        assert!(
            lines[1].ends_with(r#""data":{"z":1}}"#),
            "a line break in the data never ends a line: {}",
            lines[1]
        );
    }

    #[test]
    fn the_work_dir_of_the_settings_reaches_the_plugin_through_the_vtable() {
        let settings = RunSettings {
            work_dir: Some("/runs/r-1/work".into()),
            ..Default::default()
        };
        let host = Arc::new(RunHost::new(
            RunInfo::new("p", "a"),
            settings,
            Arc::new(MemorySink::default()),
        ));
        let ctx = RuntimeContext::with_host(host);
        assert_eq!(ctx.work_dir(), Some(std::path::Path::new("/runs/r-1/work")));

        let (host, _) = host_with_sink();
        assert_eq!(
            RuntimeContext::with_host(host).work_dir(),
            None,
            "no work dir by default"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_work_dir_that_is_not_utf8_is_not_given() {
        use std::os::unix::ffi::OsStrExt;
        let settings = RunSettings {
            work_dir: Some(std::ffi::OsStr::from_bytes(b"/runs/\xff").into()),
            ..Default::default()
        };
        let host = RunHost::new(RunInfo::new("p", "a"), settings, Arc::new(MemorySink::default()));
        assert_eq!(host.work_dir(), None);
    }

    #[test]
    fn context_calls_become_events() {
        let (host, sink) = host_with_sink();
        let ctx = RuntimeContext::with_host(host.clone());
        ctx.log("step_start", json!({"step": "load"}), Some("/d.csv")).unwrap();
        ctx.log_message("careful", MessageLevel::Warning).unwrap();
        ctx.log_dev_event("dbg", Some(json!({"layers": 2}))).unwrap();
        ctx.set_metrics(json!({"loss": 1.0}), "train").unwrap();
        ctx.set_metrics(json!({"acc": 0.5}), "train").unwrap();
        ctx.logger().flush();
        let events = sink.events();
        assert_eq!(events.len(), 5);
        assert_eq!(events[3].data, json!({"loss": 1.0}));
        assert_eq!(
            events[4].data,
            json!({"acc": 0.5}),
            "a metrics event carries its call's keys"
        );
        host.finish(false);
        let events = sink.events();
        assert_eq!(events.len(), 6);
        assert_eq!(events[5].event, "metrics_summary");
        assert_eq!(events[5].step.as_deref(), Some("train"));
        assert_eq!(events[0].step.as_deref(), Some("load"));
        assert_eq!(events[0].file.as_deref(), Some("/d.csv"));
        assert_eq!(events[1].level, Level::Warning);
        assert_eq!(events[1].data, json!({"content": "careful"}));
        assert_eq!(events[2].data, json!({"message": "dbg", "data": {"layers": 2}}));
        assert_eq!(
            events[5].data,
            json!({"loss": 1.0, "acc": 0.5}),
            "the summary has the step's merged metrics"
        );
    }

    #[test]
    fn entries_attributed_to_a_step_keep_their_data_and_level() {
        let (host, sink) = host_with_sink();
        let ctx = RuntimeContext::with_host(host.clone());
        ctx.logger().set_step(Some("train"));
        ctx.log("epoch", json!({"step": "mine", "n": 1}), None).unwrap();
        ctx.log_message("too hot", MessageLevel::Critical).unwrap();
        ctx.logger().debug("noise").unwrap();
        ctx.log_dev_event("dbg", None).unwrap();
        ctx.set_progress(1, 2, None).unwrap();
        ctx.logger().set_progress_failed(Some("train")).unwrap();
        ctx.logger().flush();
        let events = sink.events();
        assert_eq!(events[0].step.as_deref(), Some("train"));
        assert_eq!(events[0].data, json!({"step": "mine", "n": 1}), "data kept as given");
        assert_eq!(
            (events[1].step.as_deref(), events[1].level),
            (Some("train"), Level::Critical)
        );
        assert_eq!(events[1].data, json!({"content": "too hot"}));
        assert_eq!((events[2].event.as_str(), events[2].level), ("debug", Level::Debug));
        assert_eq!(events[2].data, json!({"content": "noise"}));
        assert_eq!(events[3].step.as_deref(), Some("train"));
        assert_eq!(events[3].data, json!({"message": "dbg", "data": null}));
        assert_eq!(events[4].step.as_deref(), Some("train"));
        assert_eq!(events.len(), 6, "{events:#?}");
        assert_eq!(events[5].kind, EventKind::Progress);
        assert_eq!(events[5].level, Level::Error, "a failed bar: {:?}", events[5]);
    }

    #[test]
    fn calls_of_plugins_built_against_1_1_keep_their_1_1_meaning() {
        let (host, sink) = host_with_sink();
        host.log("step_start", r#"{"step":"load"}"#, None);
        host.log_message("hot", "danger");
        host.log_dev_event("dbg", Some(r#"{"step":"kept as data"}"#));
        let events = sink.events();
        assert_eq!(
            (events[0].step.as_deref(), events[0].level),
            (Some("load"), Level::Info)
        );
        assert_eq!((events[1].step.as_deref(), events[1].level), (None, Level::Danger));
        assert_eq!(events[2].step, None);
        assert_eq!(events[2].data["data"], json!({"step": "kept as data"}));
    }

    #[test]
    fn log_entries_the_host_cannot_read_are_refused_with_the_reason() {
        let (host, sink) = host_with_sink();
        let unknown = host.log_entry(r#"{"kind":"artifact","path":"m.bin"}"#).unwrap_err();
        assert!(unknown.contains("unknown variant `artifact`"), "{unknown}");
        assert!(host.log_entry(r#"{"kind":"event","event":"e","data":[]}"#).is_err());
        assert!(sink.events().is_empty());
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
        ctx.log_message("late", MessageLevel::Info).unwrap();
        ctx.logger().flush();
        assert!(ctx.set_progress(1, 2, None).is_err());
        assert!(sink.events().is_empty());
        assert_eq!(host.finish(false), 2);
    }

    #[test]
    fn closing_waits_for_calls_under_way_and_nothing_follows_it() {
        for round in 0..50 {
            let (host, sink) = host_with_sink();
            let ctx = RuntimeContext::with_host(host.clone());
            let stop = Arc::new(AtomicBool::new(false));
            let loggers: Vec<_> = (0..2)
                .map(|_| {
                    let (ctx, stop) = (ctx.clone(), stop.clone());
                    std::thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            // Calls after the close are refused; the test counts them.
                            let _ = ctx.log("tick", json!({}), None);
                        }
                    })
                })
                .collect();
            let wait_for = |what: &str, done: &dyn Fn() -> bool| {
                let started = Instant::now();
                while !done() {
                    assert!(started.elapsed() < Duration::from_secs(20), "round {round}: {what}");
                    std::thread::sleep(Duration::from_millis(1));
                }
            };
            wait_for("the loggers never logged", &|| !sink.is_empty());
            host.finish(false);
            let seen_at_close = sink.len();
            wait_for("the loggers never called after the close", &|| host.late_calls() > 0);
            stop.store(true, Ordering::Relaxed);
            for logger in loggers {
                logger.join().unwrap();
            }
            assert_eq!(sink.len(), seen_at_close, "round {round}: an event after the close");
        }
    }
}
