//! The host's single event type and the sinks it fans out to.
//!
//! Everything a plugin reports during a run (progress, metrics, user events,
//! messages, developer events) and the run's outcome (result or error)
//! becomes one [`Event`]. The host hands each event to an [`EventSink`]; a
//! [`FanOut`] passes it on to several: the terminal ([`TerminalSink`]), a
//! JSON-lines stream ([`JsonlSink`]), `tracing` ([`TracingSink`]), memory
//! ([`MemorySink`]) or nowhere ([`NullSink`]).
//!
//! Who produced the events (job id, plugin, action) is fixed for a run and
//! travels beside each event as a [`RunInfo`], not inside it.
//!
//! # Payload (`Event::data`) by kind
//!
//! | kind        | `event`                 | `data`                                                  |
//! |-------------|-------------------------|---------------------------------------------------------|
//! | `progress`  | `"progress"`            | `{current, total, percent, elapsed, eta, status}`       |
//! | `metrics`   | `"metrics"`             | the keys of one `set_metrics` call                      |
//! | `metrics`   | `"metrics_summary"`     | a step's merged metrics, once per step at the run's end |
//! | `event`     | the user's event name   | the user's data, as given                               |
//! | `message`   | `"message"`             | `{content}`                                             |
//! | `dev_event` | `"dev_event"`           | `{message, data}` (`data` is `null` when none was given) |
//! | `result`    | `"result"`              | the action's result JSON                                |
//! | `error`     | `"error"`               | `{message, kind, details}`                              |
//! | `output`    | `"output"`              | `{stream, text, partial}`: a line the isolated plugin printed on `stdout`/`stderr` |
//! | `output`    | `"output_dropped"`      | `{stream, lines, bytes, message}`: output over the rate limit |
//!
//! Progress fields: `current` and `total` are integers with
//! `0 <= current <= total` and `total > 0`; `percent` is `current / total *
//! 100` rounded to 2 places; `elapsed` is seconds since the step's first
//! progress update; `eta` is the estimated seconds remaining, `null` when
//! unknown (no progress made yet, or the step failed); `status` is
//! `"running"`, `"completed"` or `"failed"`. Progress is coalesced on the host
//! by [`ProgressTracker`], so a sink sees at most about ten progress events a
//! second per step, and always the final value.
//!
//! Host-side events such as step boundaries use kind `event` with their own
//! names (`step_start`, `step_end`, ...).

pub mod chunks;
pub mod escape;
pub mod file;
pub mod frame;
pub mod jsonl;
pub mod metrics;
pub mod plain_object;
pub mod progress;
pub mod raw;
pub mod terminal;
pub mod time;

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use file::{open_events_file, EventsFile, EventsFileError, MappedJsonlSink, MappedWriter};
pub use jsonl::{parse_line, parse_line_raw, Flush, JsonlParseError, JsonlSink, LineWriter};
pub use metrics::{MetricsBook, MetricsError};
pub use progress::{ProgressError, ProgressStatus, ProgressTracker, StepProgress};
pub use raw::{deliver, RawData, UserEvent};
pub use terminal::{TerminalOptions, TerminalSink};

/// What an event reports; decides the shape of [`Event::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Progress,
    Metrics,
    Event,
    Message,
    DevEvent,
    Result,
    Error,
    /// What an isolated plugin printed on its stdout or stderr.
    Output,
}

impl EventKind {
    pub const ALL: [EventKind; 8] = [
        EventKind::Progress,
        EventKind::Metrics,
        EventKind::Event,
        EventKind::Message,
        EventKind::DevEvent,
        EventKind::Result,
        EventKind::Error,
        EventKind::Output,
    ];

    /// The name used in JSON: `progress`, `metrics`, `event`, `message`,
    /// `dev_event`, `result`, `error`, `output`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Progress => "progress",
            EventKind::Metrics => "metrics",
            EventKind::Event => "event",
            EventKind::Message => "message",
            EventKind::DevEvent => "dev_event",
            EventKind::Result => "result",
            EventKind::Error => "error",
            EventKind::Output => "output",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "event kind",
                name: s.to_owned(),
                expected: "progress, metrics, event, message, dev_event, result, error or output",
            })
    }
}

/// Severity of an event: the original's seven log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Success,
    Warning,
    Danger,
    Error,
    Critical,
}

impl Level {
    pub const ALL: [Level; 7] = [
        Level::Debug,
        Level::Info,
        Level::Success,
        Level::Warning,
        Level::Danger,
        Level::Error,
        Level::Critical,
    ];

    /// The lowercase name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Success => "success",
            Level::Warning => "warning",
            Level::Danger => "danger",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }

    /// The level named `name` (a lowercase name, as bytes).
    pub fn from_name(name: &[u8]) -> Option<Level> {
        Some(match name {
            b"debug" => Level::Debug,
            b"info" => Level::Info,
            b"success" => Level::Success,
            b"warning" => Level::Warning,
            b"danger" => Level::Danger,
            b"error" => Level::Error,
            b"critical" => Level::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = UnknownName;

    /// Accepts the lowercase names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::from_name(s.as_bytes()).ok_or_else(|| UnknownName {
            what: "log level",
            name: s.to_owned(),
            expected: "debug, info, success, warning, danger, error or critical",
        })
    }
}

/// A name that is not one of the known [`Level`]s or [`EventKind`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{name}' (expected {expected})")]
pub struct UnknownName {
    what: &'static str,
    name: String,
    expected: &'static str,
}

/// One thing a run reported. See the module docs for `data` by kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub time: SystemTime,
    pub kind: EventKind,
    /// Synapse event name: `progress`, `metrics`, a user event name such as
    /// `checkpoint_saved`, `message`, `dev_event`, `step_start`, `result`, ...
    pub event: String,
    pub step: Option<String>,
    pub level: Level,
    pub file: Option<String>,
    pub data: Value,
    /// On a run's last event (`result` or `error`): how many context calls
    /// arrived after the action had returned (from threads it left running)
    /// and were dropped. `None` on every other event.
    pub dropped_late_calls: Option<u64>,
    /// A user event's data as the JSON text it arrived in; `data` is then
    /// `null` (see [`raw`]: only sinks that take raw data see it so).
    pub raw_data: Option<RawData>,
}

impl Event {
    /// An event stamped with the current time, with no step and no file.
    pub fn new(kind: EventKind, event: impl Into<String>, level: Level, data: Value) -> Self {
        Event {
            time: SystemTime::now(),
            kind,
            event: event.into(),
            step: None,
            level,
            file: None,
            data,
            dropped_late_calls: None,
            raw_data: None,
        }
    }

    /// A user event (`ctx.log(event, data, file)`), at `info`.
    pub fn user(event: impl Into<String>, data: Value) -> Self {
        Event::new(EventKind::Event, event, Level::Info, data)
    }

    /// `ctx.log_message(content, level)`: event `message`, data `{content}`.
    pub fn message(level: Level, content: impl Into<String>) -> Self {
        let content: String = content.into();
        Event::new(EventKind::Message, "message", level, json!({ "content": content }))
    }

    /// `ctx.log_dev_event(message, data)`: event `dev_event` at `debug`,
    /// data `{message, data}`.
    pub fn dev_event(message: impl Into<String>, data: Option<Value>) -> Self {
        let message: String = message.into();
        Event::new(
            EventKind::DevEvent,
            "dev_event",
            Level::Debug,
            json!({ "message": message, "data": data.unwrap_or(Value::Null) }),
        )
    }

    /// The merged metrics of `step` after a `set_metrics` call.
    pub fn metrics(step: impl Into<String>, merged: Value) -> Self {
        Event::new(EventKind::Metrics, "metrics", Level::Info, merged).with_step(step)
    }

    /// The action's result, at `success`.
    pub fn result(result: Value) -> Self {
        Event::new(EventKind::Result, "result", Level::Success, result)
    }

    /// The run failed: data `{message, kind, details}`. `kind` names the
    /// failure class (e.g. `validation`, `execution`, `panic`).
    pub fn error(message: impl Into<String>, kind: impl Into<String>, details: Value) -> Self {
        let message: String = message.into();
        let kind: String = kind.into();
        Event::new(
            EventKind::Error,
            "error",
            Level::Error,
            json!({ "message": message, "kind": kind, "details": details }),
        )
    }

    pub fn with_step(mut self, step: impl Into<String>) -> Self {
        self.step = Some(step.into());
        self
    }

    /// Sets the step when `step` is `Some`, keeps it otherwise.
    pub fn with_step_opt(mut self, step: Option<&str>) -> Self {
        if let Some(step) = step {
            self.step = Some(step.to_owned());
        }
        self
    }

    pub fn with_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn with_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Marks a run's last event with the count of dropped late calls.
    pub fn with_dropped_late_calls(mut self, count: u64) -> Self {
        self.dropped_late_calls = Some(count);
        self
    }

    pub fn with_time(mut self, time: SystemTime) -> Self {
        self.time = time;
        self
    }
}

/// Who produced a run's events: fixed for the whole run, so not repeated in
/// each [`Event`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RunInfo {
    pub job_id: Option<String>,
    pub plugin: String,
    pub action: String,
}

impl RunInfo {
    pub fn new(plugin: impl Into<String>, action: impl Into<String>) -> Self {
        RunInfo {
            job_id: None,
            plugin: plugin.into(),
            action: action.into(),
        }
    }

    pub fn with_job_id(mut self, job_id: impl Into<String>) -> Self {
        self.job_id = Some(job_id.into());
        self
    }
}

/// Receives a run's events. Sinks are shared between threads and must never
/// panic: a sink that cannot write remembers why and drops what follows.
pub trait EventSink: Send + Sync {
    /// Called once before the first event of a run.
    fn start(&self, _run: &RunInfo) {}

    fn emit(&self, run: &RunInfo, event: &Event);

    /// Emits a user event given by reference (a plugin's `ctx.log`, the
    /// hot path): by default made into an [`Event`] and passed on as
    /// [`deliver`] does; a sink that writes it from its parts overrides this.
    fn emit_user(&self, run: &RunInfo, event: &UserEvent<'_>) {
        deliver(self, run, &event.to_event())
    }

    /// Called once at the end of a run; must flush everything.
    fn finish(&self, _run: &RunInfo) {}

    /// Writes through what is buffered, e.g. when no more events are
    /// coming for a while (a reader following the stream sees them).
    fn flush(&self) {}

    /// Whether [`emit`](Self::emit) takes an event whose data is still
    /// JSON text ([`Event::raw_data`]); when false, such an event reaches
    /// the sink with its data parsed (see [`deliver`]). The answer never
    /// changes: a sink passing events on may ask once.
    fn takes_raw_data(&self) -> bool {
        false
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn start(&self, run: &RunInfo) {
        (**self).start(run)
    }
    fn emit_user(&self, run: &RunInfo, event: &UserEvent<'_>) {
        (**self).emit_user(run, event)
    }
    fn takes_raw_data(&self) -> bool {
        (**self).takes_raw_data()
    }
    fn emit(&self, run: &RunInfo, event: &Event) {
        (**self).emit(run, event)
    }
    fn finish(&self, run: &RunInfo) {
        (**self).finish(run)
    }
    fn flush(&self) {
        (**self).flush()
    }
}

impl<S: EventSink + ?Sized> EventSink for Arc<S> {
    fn start(&self, run: &RunInfo) {
        (**self).start(run)
    }
    fn emit_user(&self, run: &RunInfo, event: &UserEvent<'_>) {
        (**self).emit_user(run, event)
    }
    fn takes_raw_data(&self) -> bool {
        (**self).takes_raw_data()
    }
    fn emit(&self, run: &RunInfo, event: &Event) {
        (**self).emit(run, event)
    }
    fn finish(&self, run: &RunInfo) {
        (**self).finish(run)
    }
    fn flush(&self) {
        (**self).flush()
    }
}

/// Passes every call on to each of its sinks, in the order they were added.
#[derive(Default)]
pub struct FanOut {
    sinks: Vec<Box<dyn EventSink>>,
    /// Each sink's [`EventSink::takes_raw_data`], asked when it was added.
    takes_raw_data: Vec<bool>,
}

impl FanOut {
    pub fn new() -> Self {
        FanOut::default()
    }

    /// Adds a sink (builder style).
    pub fn with(mut self, sink: impl EventSink + 'static) -> Self {
        self.push(sink);
        self
    }

    pub fn push(&mut self, sink: impl EventSink + 'static) {
        self.takes_raw_data.push(sink.takes_raw_data());
        self.sinks.push(Box::new(sink));
    }

    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

impl fmt::Debug for FanOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FanOut").field("sinks", &self.sinks.len()).finish()
    }
}

impl EventSink for FanOut {
    fn start(&self, run: &RunInfo) {
        for sink in &self.sinks {
            sink.start(run);
        }
    }

    /// Each sink gets raw data as it takes it; the data is parsed at most
    /// once for those that do not.
    fn emit(&self, run: &RunInfo, event: &Event) {
        if event.raw_data.is_none() {
            for sink in &self.sinks {
                sink.emit(run, event);
            }
            return;
        }
        let mut parsed = None;
        for (sink, &takes_raw_data) in self.sinks.iter().zip(&self.takes_raw_data) {
            if takes_raw_data {
                sink.emit(run, event);
            } else {
                sink.emit(run, parsed.get_or_insert_with(|| event.with_parsed_data()));
            }
        }
    }

    fn takes_raw_data(&self) -> bool {
        true
    }

    fn finish(&self, run: &RunInfo) {
        for sink in &self.sinks {
            sink.finish(run);
        }
    }

    fn flush(&self) {
        for sink in &self.sinks {
            sink.flush();
        }
    }
}

/// Locks a mutex, carrying on with the data if another thread panicked while
/// holding it: sinks must keep working (and never panic) regardless.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Default)]
struct MemoryState {
    events: Vec<Event>,
    run: Option<RunInfo>,
    started: usize,
    finished: usize,
}

/// Keeps every event in memory, for programs embedding the host and tests.
#[derive(Debug, Default)]
pub struct MemorySink {
    state: Mutex<MemoryState>,
}

impl MemorySink {
    pub fn new() -> Self {
        MemorySink::default()
    }

    /// A copy of the events received so far, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.state).events.clone()
    }

    /// Removes and returns the events received so far.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut lock(&self.state).events)
    }

    pub fn len(&self) -> usize {
        lock(&self.state).events.len()
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.state).events.is_empty()
    }

    /// The run last seen in `start` or `emit`.
    pub fn run(&self) -> Option<RunInfo> {
        lock(&self.state).run.clone()
    }

    /// How many times `start` and `finish` were called.
    pub fn start_finish_counts(&self) -> (usize, usize) {
        let state = lock(&self.state);
        (state.started, state.finished)
    }
}

impl EventSink for MemorySink {
    fn start(&self, run: &RunInfo) {
        let mut state = lock(&self.state);
        state.started += 1;
        state.run = Some(run.clone());
    }

    fn emit(&self, run: &RunInfo, event: &Event) {
        let mut state = lock(&self.state);
        if state.run.as_ref() != Some(run) {
            state.run = Some(run.clone());
        }
        state.events.push(event.clone());
    }

    fn finish(&self, _run: &RunInfo) {
        lock(&self.state).finished += 1;
    }
}

/// Drops everything (benchmarks, or when no output is wanted).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _run: &RunInfo, _event: &Event) {}

    fn takes_raw_data(&self) -> bool {
        true
    }
}

/// Forwards each event to `tracing`: target `plugin`, level from [`Level`]
/// (`success` as INFO, `danger` as ERROR), fields `plugin`, `action`,
/// `job_id`, `kind`, `event`, `step`, `file`, and the message: a message's
/// content, a dev event's or error's message, otherwise the compact data.
/// Its output is for people, so control characters are escaped
/// ([`escape`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

impl TracingSink {
    pub fn new() -> Self {
        TracingSink
    }
}

macro_rules! trace_event {
    ($level:expr, $run:expr, $event:expr, $text:expr) => {
        tracing::event!(
            target: "plugin",
            $level,
            plugin = %$run.plugin,
            action = %$run.action,
            job_id = $run.job_id.as_deref(),
            kind = $event.kind.as_str(),
            event = %escape::Escaped(&$event.event),
            step = $event.step.as_deref().map(escape::escape),
            file = $event.file.as_deref().map(escape::escape),
            "{}",
            $text
        )
    };
}

/// The human text of an event for one-line outputs.
fn event_text(event: &Event) -> TextOf<'_> {
    TextOf(event)
}

struct TextOf<'a>(&'a Event);

impl fmt::Display for TextOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let event = self.0;
        let field = match event.kind {
            EventKind::Message => event.data.get("content"),
            EventKind::DevEvent | EventKind::Error => event.data.get("message"),
            EventKind::Output => event.data.get("text").or_else(|| event.data.get("message")),
            _ => None,
        };
        match field {
            Some(Value::String(s)) => write!(f, "{}", escape::Escaped(s)),
            _ => write!(f, "{}", escape::Escaped(&event.data_json())),
        }
    }
}

impl EventSink for TracingSink {
    fn emit(&self, run: &RunInfo, event: &Event) {
        use tracing::Level as T;
        let text = event_text(event);
        match event.level {
            Level::Debug => trace_event!(T::DEBUG, run, event, text),
            Level::Info | Level::Success => trace_event!(T::INFO, run, event, text),
            Level::Warning => trace_event!(T::WARN, run, event, text),
            Level::Danger | Level::Error | Level::Critical => trace_event!(T::ERROR, run, event, text),
        }
    }

    /// The text of an event's data is written as it came.
    fn takes_raw_data(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn run() -> RunInfo {
        RunInfo::new("demo", "train").with_job_id("job-7")
    }

    #[test]
    fn kinds_and_levels_use_their_json_names() {
        for kind in EventKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), kind);
            assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), kind);
        }
        assert_eq!(EventKind::DevEvent.as_str(), "dev_event");
        for level in Level::ALL {
            let json = serde_json::to_string(&level).unwrap();
            assert_eq!(json, format!("\"{level}\""));
            assert_eq!(level.as_str().parse::<Level>().unwrap(), level);
        }
        assert_eq!("critical".parse::<Level>().unwrap(), Level::Critical);
        assert_eq!(serde_json::from_str::<Level>("\"critical\"").unwrap(), Level::Critical);
        assert_eq!(
            "loud".parse::<Level>().unwrap_err().to_string(),
            "unknown log level 'loud' (expected debug, info, success, warning, danger, error or critical)"
        );
        assert!("Progress".parse::<EventKind>().is_err());
    }

    #[test]
    fn constructors_fill_the_documented_payloads() {
        let m = Event::message(Level::Warning, "Low GPU memory").with_step("train");
        assert_eq!(
            (m.kind, m.event.as_str(), m.level),
            (EventKind::Message, "message", Level::Warning)
        );
        assert_eq!(m.data, json!({"content": "Low GPU memory"}));
        assert_eq!(m.step.as_deref(), Some("train"));

        let d = Event::dev_event("init", None);
        assert_eq!((d.kind, d.level), (EventKind::DevEvent, Level::Debug));
        assert_eq!(d.data, json!({"message": "init", "data": null}));

        let u = Event::user("checkpoint_saved", json!({"epoch": 5})).with_file("/model.pt");
        assert_eq!((u.kind, u.event.as_str()), (EventKind::Event, "checkpoint_saved"));
        assert_eq!(u.file.as_deref(), Some("/model.pt"));

        let e = Event::error("boom", "execution", json!({"at": 3}));
        assert_eq!(
            e.data,
            json!({"message": "boom", "kind": "execution", "details": {"at": 3}})
        );
        assert_eq!(
            Event::metrics("train", json!({"loss": 1})).step.as_deref(),
            Some("train")
        );
        assert_eq!(Event::result(json!(1)).kind, EventKind::Result);
        assert_eq!(Event::user("x", Value::Null).with_step_opt(None).step, None);
        assert_eq!(
            Event::user("x", Value::Null).with_level(Level::Danger).level,
            Level::Danger
        );
    }

    #[test]
    fn fan_out_reaches_every_sink_in_order() {
        let a = Arc::new(MemorySink::new());
        let b = Arc::new(MemorySink::new());
        let fan = FanOut::new().with(a.clone()).with(NullSink).with(b.clone());
        assert_eq!(fan.len(), 3);
        let run = run();
        fan.start(&run);
        fan.emit(&run, &Event::user("one", json!(1)));
        fan.emit(&run, &Event::user("two", json!(2)));
        fan.finish(&run);
        for sink in [&a, &b] {
            let names: Vec<_> = sink.events().into_iter().map(|e| e.event).collect();
            assert_eq!(names, ["one", "two"]);
            assert_eq!(sink.start_finish_counts(), (1, 1));
            assert_eq!(sink.run(), Some(run.clone()));
        }
        assert_eq!(a.take().len(), 2);
        assert!(a.is_empty());
        assert_eq!(b.len(), 2);
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tracing_sink_forwards_fields_and_levels() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let run = run();
            TracingSink.emit(
                &run,
                &Event::message(Level::Warning, "Low GPU memory").with_step("train"),
            );
            TracingSink.emit(&run, &Event::user("saved", json!({"epoch": 2})));
            TracingSink.emit(&run, &Event::error("boom", "execution", Value::Null));
        });
        let out = String::from_utf8(lock(&captured.0).clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with(" WARN plugin: Low GPU memory"), "{}", lines[0]);
        for field in [
            "plugin=demo",
            "action=train",
            "job_id=\"job-7\"",
            "kind=\"message\"",
            "step=\"train\"",
        ] {
            assert!(lines[0].contains(field), "{field} missing in {}", lines[0]);
        }
        assert!(lines[1].starts_with(" INFO plugin: {\"epoch\":2}"), "{}", lines[1]);
        assert!(lines[1].contains("event=saved"), "{}", lines[1]);
        assert!(!lines[1].contains("step="), "{}", lines[1]);
        assert!(lines[2].starts_with("ERROR plugin: boom"), "{}", lines[2]);
    }
}
