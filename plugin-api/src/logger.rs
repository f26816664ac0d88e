//! `Logger`: the progress, metrics and logging half of the context (the
//! Python `BaseLogger`). It knows the step running now (set by the
//! orchestrator, or by `set_step`), so step-less calls made inside a step are
//! attributed to it; it remembers what this run reported (`get_progress`,
//! `get_metrics`); and once `finish`ed it refuses further calls.
//!
//! When the host takes entries off the caller's thread (plugin-api 1.4),
//! the log calls hand each entry to the run's `LogQueue` and return; with
//! an older host, or one that wants each entry during the call (the test
//! host), they send it through the host's functions during the call.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::entry_buffer;
use crate::ffi::clock::{coarse_now_nanos, ticks};
use crate::ffi::plugin_side::HostHandle;
use crate::log_entry::{self, BorrowedEntry, EntryDataError, LogEntry};
use crate::log_queue::{tape_is_object, DataCall, LogQueue, MetricsSoFar, StepOf, What};
use crate::rules::{self, json_kind};

/// A context call that was refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// The host refused `set_progress` (its reason).
    #[error("set_progress: {0}")]
    Progress(String),
    /// The host refused `set_metrics` (its reason).
    #[error("set_metrics: {0}")]
    Metrics(String),
    /// A value could not be turned into JSON.
    #[error("could not serialise {what} to JSON: {reason}")]
    Serialize {
        /// What was being serialised (`metrics`, `log data`...).
        what: &'static str,
        /// serde_json's error.
        reason: String,
    },
    /// Log data (or metrics) must be a JSON object, as in the original.
    #[error("{what} must be a JSON object, got {got}")]
    NotAnObject {
        /// What had to be an object.
        what: &'static str,
        /// What it was instead (`an array`, `a string`...).
        got: &'static str,
    },
    /// `set_metrics` without a step, outside any running step.
    #[error("set_metrics: a step must be given when no step is running")]
    NoStep,
    /// The host refused a log entry.
    #[error("log: {0}")]
    Log(String),
    /// A call after [`Logger::finish`].
    #[error("the logger is finished; no further calls are accepted")]
    Finished,
}

/// The level of a log entry or message (the Python `LogLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageLevel {
    /// Detail for developers (`ctx.debug`).
    Debug,
    /// Shown normally (the default).
    #[default]
    Info,
    /// Something finished well.
    Success,
    /// Something the user should look at.
    Warning,
    /// Something went wrong.
    Danger,
    /// An error.
    Error,
    /// A critical error.
    Critical,
}

impl MessageLevel {
    /// Every level, from `Debug` to `Critical`.
    pub const ALL: [MessageLevel; 7] = [
        MessageLevel::Debug,
        MessageLevel::Info,
        MessageLevel::Success,
        MessageLevel::Warning,
        MessageLevel::Danger,
        MessageLevel::Error,
        MessageLevel::Critical,
    ];

    /// The level's lowercase name, as the original writes it (`info`, `danger`...).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageLevel::Debug => "debug",
            MessageLevel::Info => "info",
            MessageLevel::Success => "success",
            MessageLevel::Warning => "warning",
            MessageLevel::Danger => "danger",
            MessageLevel::Error => "error",
            MessageLevel::Critical => "critical",
        }
    }
}

impl std::str::FromStr for MessageLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        MessageLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == lower)
            .ok_or_else(|| {
                format!(
                    "unknown message level {s:?} (expected debug, info, success, warning, danger, error or critical)"
                )
            })
    }
}

/// Whether a step's progress is still running or was marked failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressStatus {
    /// Still running (or finished normally).
    Running,
    /// Marked failed with `set_progress_failed`.
    Failed,
}

/// The last progress this run reported for one step (`get_progress`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressSnapshot {
    /// Percent done, rounded to two decimals (0 once failed).
    pub percent: f64,
    /// Estimated seconds left, from the rate so far; `None` before any work.
    pub time_remaining: Option<f64>,
    /// Seconds since the step's first progress (or since it restarted at 0).
    pub elapsed_time: Option<f64>,
    /// Whether the step is running or was marked failed.
    pub status: ProgressStatus,
}

/// What this run reported so far, kept plugin-side for `get_progress` and
/// `get_metrics`.
#[derive(Default)]
struct Reported {
    /// Per step (few in a run, so a list searched without allocating a
    /// key: `set_progress` is called in tight loops).
    steps: Vec<StepReport>,
}

/// The progress reported for one step (the step-less key when `None`).
/// `set_progress` runs in tight loops, so it records only the facts;
/// `get_progress` works out the percent and times from them.
struct StepReport {
    step: Option<String>,
    /// When its clock started (coarse nanoseconds): its first report, or
    /// its last report of 0.
    started: Option<u64>,
    last: Option<LastReport>,
}

/// A step's last progress report.
enum LastReport {
    Running { current: u64, total: u64, at: u64 },
    Failed { elapsed: Option<f64> },
}

impl StepReport {
    fn snapshot(&self) -> Option<ProgressSnapshot> {
        Some(match *self.last.as_ref()? {
            LastReport::Running { current, total, at } => {
                let elapsed = seconds_between(self.started.unwrap_or(at), at);
                ProgressSnapshot {
                    percent: round2(current as f64 / total as f64 * 100.0),
                    time_remaining: (current > 0).then(|| round2(elapsed / current as f64 * (total - current) as f64)),
                    elapsed_time: Some(round2(elapsed)),
                    status: ProgressStatus::Running,
                }
            }
            LastReport::Failed { elapsed } => ProgressSnapshot {
                percent: 0.0,
                time_remaining: None,
                elapsed_time: elapsed,
                status: ProgressStatus::Failed,
            },
        })
    }
}

fn seconds_between(earlier: u64, later: u64) -> f64 {
    later.saturating_sub(earlier) as f64 / 1e9
}

impl Reported {
    fn step(&self, step: Option<&str>) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.step.as_deref() == step)
    }

    fn step_mut(&mut self, step: Option<&str>) -> &mut StepReport {
        match self.steps.iter().position(|s| s.step.as_deref() == step) {
            Some(at) => &mut self.steps[at],
            None => {
                self.steps.push(StepReport {
                    step: step.map(str::to_owned),
                    started: None,
                    last: None,
                });
                self.steps.last_mut().expect("just pushed")
            }
        }
    }
}

/// A thread's copy of a logger's running step, so that the calls of a hot
/// loop read it without a lock: taken again only when the logger's count
/// of step changes moved.
#[derive(Default)]
pub(crate) struct StepCopy {
    /// The count of changes when the copy was taken (`None`: never).
    taken_at: Option<u64>,
    step: Option<String>,
}

impl StepCopy {
    /// The running step, read again with `read` if `changes` (the
    /// logger's count now) differs from the copy's.
    #[inline]
    pub(crate) fn current(&mut self, changes: u64, read: impl FnOnce() -> Option<String>) -> Option<&str> {
        if self.taken_at != Some(changes) {
            self.step = read();
            self.taken_at = Some(changes);
        }
        self.step.as_deref()
    }
}

thread_local! {
    /// This thread's copy of the running step of the logger it used last
    /// (by the logger's id), for `Logger::with_step`.
    static STEP_COPY: std::cell::RefCell<(u64, StepCopy)> = const {
        std::cell::RefCell::new((0, StepCopy { taken_at: None, step: None }))
    };
}

/// The logger of one run (`ctx.logger()`). Every method is also available on
/// [`RuntimeContext`](crate::RuntimeContext) directly; the book's
/// "Writing a plugin" chapter (`docs/src/writing-plugins.md`) says how each
/// maps to the Python original.
pub struct Logger {
    host: HostHandle,
    /// This logger among every one the process made (the key of each
    /// thread's copy of the running step).
    id: u64,
    current_step: RwLock<Option<String>>,
    /// Counts changes of `current_step`: a thread reads the step from its
    /// own copy while the count is the one it copied at.
    step_changes: AtomicU64,
    finished: AtomicBool,
    reported: Mutex<Reported>,
    /// The metrics reported so far, merged per step (by the log thread
    /// when there is one).
    metrics: MetricsSoFar,
    /// The run's log queue, when the host takes entries off this thread.
    queue: Option<Arc<LogQueue>>,
}

impl Logger {
    pub(crate) fn new(host: HostHandle) -> Self {
        let metrics = MetricsSoFar::default();
        let queue = if host.logs_off_thread() {
            LogQueue::start(host.another(), metrics.clone())
        } else {
            None
        };
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Self {
            host,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            current_step: RwLock::new(None),
            step_changes: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            reported: Mutex::new(Reported::default()),
            metrics,
            queue,
        }
    }

    /// Waits until every entry logged so far has reached the host. Entries
    /// go to the host from a thread of their own when it takes them so
    /// (the loader does); the run's end, `exit()` and a crash wait for them
    /// anyway, so only code that needs the host to have them at a given
    /// point calls this.
    pub fn flush(&self) {
        if let Some(queue) = &self.queue {
            queue.flush();
        }
    }

    pub(crate) fn host(&self) -> &HostHandle {
        &self.host
    }

    /// Sets the step that step-less calls are attributed to (`None` clears
    /// it). The orchestrator sets it around each step; every clone of the
    /// context shares it.
    pub fn set_step(&self, step: Option<&str>) {
        *self.current_step.write().unwrap_or_else(|e| e.into_inner()) = step.map(str::to_owned);
        self.step_changes.fetch_add(1, Ordering::Release);
    }

    /// The step running now, if any.
    pub fn get_step(&self) -> Option<String> {
        self.with_step(|step| step.map(str::to_owned))
    }

    /// The running step, read under its lock.
    fn read_step(&self) -> Option<String> {
        self.current_step.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The running step, for a queued call: the queue keeps each thread's
    /// copy of it, taken again (with `read`) after each change.
    fn running_step<'a>(&self, read: &'a dyn Fn() -> Option<String>) -> StepOf<'a> {
        StepOf::Running {
            changes: self.step_changes.load(Ordering::Acquire),
            read,
        }
    }

    /// Runs `f` with the step running now, borrowed: from this thread's
    /// copy, taken again after each change, so that the calls of a hot
    /// loop take no lock.
    fn with_step<T>(&self, f: impl FnOnce(Option<&str>) -> T) -> T {
        let changes = self.step_changes.load(Ordering::Acquire);
        let mut f = Some(f);
        let copied = STEP_COPY.try_with(|cell| {
            let mut copy = cell.try_borrow_mut().ok()?;
            let (logger, copy) = &mut *copy;
            if *logger != self.id {
                *logger = self.id;
                *copy = StepCopy::default();
            }
            let step = copy.current(changes, || self.read_step());
            Some((f.take().expect("called once"))(step))
        });
        match (copied, f) {
            (Ok(Some(result)), _) => result,
            (_, Some(f)) => f(self.read_step().as_deref()),
            (_, None) => unreachable!("f ran but gave no result"),
        }
    }

    /// Sets the progress of `step`, or of the running step when `step` is
    /// `None` (the step-less key outside steps). Errors unless `total > 0`
    /// and `current <= total`.
    ///
    /// Call it as often as you like: the host coalesces updates, so per-batch
    /// progress is cheap and the final value is never lost.
    pub fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), ContextError> {
        match step {
            Some(step) => self.send_progress(current, total, Some(step)),
            // The running step's name is borrowed, not copied: this is the
            // hot path of a progress loop inside a workflow step.
            None => self.with_step(|running| self.send_progress(current, total, running)),
        }
    }

    /// Progress on exactly this key, with no attribution to the running step
    /// (the orchestrator's overall bar uses the step-less key).
    pub(crate) fn send_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), ContextError> {
        self.check_open()?;
        match &self.queue {
            // Behind entries still queued, so as not to overtake them (the
            // host's answer is then the shared rules', checked here).
            Some(queue) if !queue.all_sent() => {
                rules::check_progress(current, total, step).map_err(ContextError::Progress)?;
                queue.push(ticks(), StepOf::Given(step), What::Progress { current, total });
            }
            _ => self
                .host
                .set_progress(current, total, step)
                .map_err(ContextError::Progress)?,
        }
        self.remember_progress(step, current, total);
        Ok(())
    }

    /// Marks the progress of `step` (the step-less key when `None`) as
    /// failed, as the Python `set_progress_failed`.
    pub fn set_progress_failed(&self, step: Option<&str>) -> Result<(), ContextError> {
        self.check_open()?;
        match &self.queue {
            Some(queue) => queue.push(ticks(), StepOf::Given(step), What::ProgressFailed),
            None => self.send_borrowed(BorrowedEntry::ProgressFailed { step }, || LogEntry::ProgressFailed {
                step: step.map(str::to_owned),
            })?,
        }
        let mut reported = self.lock_reported();
        let report = reported.step_mut(step);
        let now = coarse_now_nanos();
        let elapsed = report.started.map(|started| round2(seconds_between(started, now)));
        report.last = Some(LastReport::Failed { elapsed });
        Ok(())
    }

    /// Records metrics for a (non-empty) step; they merge with the step's
    /// earlier metrics, later keys winning. `value` must serialise to a JSON
    /// object.
    pub fn set_metrics(&self, value: impl Serialize, step: &str) -> Result<(), ContextError> {
        self.check_open()?;
        if let Some(queue) = &self.queue {
            // Recorded here, as a log entry is; the host's own checks are
            // the shared rules, made here.
            let at = ticks();
            let check = |tape: Result<&[u8], serde_json::Error>| {
                if !tape.is_ok_and(tape_is_object) {
                    return Err(to_object(&value, "metrics").err().unwrap_or(ContextError::NotAnObject {
                        what: "metrics",
                        got: "not an object",
                    }));
                }
                rules::check_metrics_step(step).map_err(ContextError::Metrics)
            };
            return queue.push_data(at, StepOf::Given(Some(step)), &value, check, DataCall::Metrics);
        }
        let value = to_object(&value, "metrics")?;
        let json = serde_json::to_string(&value).expect("a JSON map always serialises");
        self.host.set_metrics(&json, step).map_err(ContextError::Metrics)?;
        let mut metrics = self.lock_metrics();
        metrics.entry(step.to_owned()).or_default().extend(value);
        Ok(())
    }

    /// Records metrics for the running step (the Python
    /// `logger.set_metrics(value)` without a step).
    pub fn set_step_metrics(&self, value: impl Serialize) -> Result<(), ContextError> {
        let step = self.get_step().ok_or(ContextError::NoStep)?;
        self.set_metrics(value, &step)
    }

    /// Logs a structured event, optionally about a file, attributed to the
    /// running step. `data` must be a JSON object (a map or a struct); it is
    /// kept as given.
    pub fn log(&self, event: &str, data: impl Serialize, file: Option<&str>) -> Result<(), ContextError> {
        self.log_at(MessageLevel::Info, event, data, file)
    }

    /// [`log`](Self::log) at a given level (the Python `logger.log(level, ...)`).
    pub fn log_at(
        &self,
        level: MessageLevel,
        event: &str,
        data: impl Serialize,
        file: Option<&str>,
    ) -> Result<(), ContextError> {
        self.check_open()?;
        let level = (level != MessageLevel::Info).then_some(level);
        if let Some(queue) = &self.queue {
            let at = ticks();
            let check = |tape: Result<&[u8], serde_json::Error>| match tape {
                Ok(tape) if tape_is_object(tape) => Ok(()),
                Ok(_) => Err(not_an_object(&data)),
                Err(e) => Err(ContextError::Serialize {
                    what: "log data",
                    reason: e.to_string(),
                }),
            };
            let call = DataCall::Event { event, file, level };
            return queue.push_data(at, self.running_step(&|| self.read_step()), &data, check, call);
        }
        let level = level.map(MessageLevel::as_str);
        if !self.host.has_log_entry() {
            let data = to_object(&data, "log data")?;
            return self.send(LogEntry::Event {
                event: event.to_owned(),
                data,
                file: file.map(str::to_owned),
                step: self.get_step(),
                level: level.map(str::to_owned),
            });
        }
        self.with_step(|step| {
            entry_buffer::with(|entry| {
                log_entry::write_event_entry(entry, event, &data, file, step, level).map_err(|e| match e {
                    EntryDataError::Serialize(e) => ContextError::Serialize {
                        what: "log data",
                        reason: e.to_string(),
                    },
                    EntryDataError::NotAnObject => not_an_object(&data),
                })?;
                self.send_text(entry)
            })
        })
    }

    /// Sends an entry's JSON text to the host (`log_entry`, 1.2) during the call.
    fn send_text(&self, entry: &[u8]) -> Result<(), ContextError> {
        let text = std::str::from_utf8(entry).expect("serde_json writes UTF-8");
        self.host
            .log_entry_json(text)
            .unwrap_or_else(|| Err("the host has no log_entry".to_owned()))
            .map_err(ContextError::Log)
    }

    /// Sends an entry other than an event during the call, written without
    /// copying its strings when the host takes entries as JSON (1.2); as
    /// the plain 1.1 call that stands for it otherwise.
    fn send_borrowed(&self, entry: BorrowedEntry<'_>, owned: impl FnOnce() -> LogEntry) -> Result<(), ContextError> {
        if !self.host.has_log_entry() {
            return self.send(owned());
        }
        entry_buffer::with(|text| {
            entry.write(text);
            self.send_text(text)
        })
    }

    /// Logs a message for the user, attributed to the running step.
    pub fn log_message(&self, message: &str, level: MessageLevel) -> Result<(), ContextError> {
        self.check_open()?;
        if let Some(queue) = &self.queue {
            let at = ticks();
            queue.push(
                at,
                self.running_step(&|| self.read_step()),
                What::Message { message, level },
            );
            return Ok(());
        }
        self.with_step(|step| {
            let entry = BorrowedEntry::Message {
                message,
                level: level.as_str(),
                step,
            };
            self.send_borrowed(entry, || LogEntry::Message {
                message: message.to_owned(),
                level: level.as_str().to_owned(),
                step: step.map(str::to_owned),
            })
        })
    }

    /// Logs a developer event (shown only in verbose output), attributed to
    /// the running step.
    pub fn log_dev_event(&self, message: &str, data: Option<Value>) -> Result<(), ContextError> {
        self.check_open()?;
        if let Some(queue) = &self.queue {
            let at = ticks();
            let call = DataCall::DevEvent {
                message,
                with_data: data.is_some(),
            };
            let check = |tape: Result<&[u8], serde_json::Error>| {
                tape.map(drop).map_err(|e| ContextError::Serialize {
                    what: "dev event data",
                    reason: e.to_string(),
                })
            };
            return queue.push_data(at, self.running_step(&|| self.read_step()), &data, check, call);
        }
        self.with_step(|step| {
            let entry = BorrowedEntry::DevEvent {
                message,
                data: data.as_ref(),
                step,
            };
            self.send_borrowed(entry, || LogEntry::DevEvent {
                message: message.to_owned(),
                data: data.clone(),
                step: step.map(str::to_owned),
            })
        })
    }

    /// Sends one entry (as plain 1.1 calls to a host older than 1.2).
    fn send(&self, entry: LogEntry) -> Result<(), ContextError> {
        self.host.log_entry(&entry).map_err(ContextError::Log)
    }

    /// An `info` message.
    pub fn info(&self, message: &str) -> Result<(), ContextError> {
        self.log_message(message, MessageLevel::Info)
    }

    /// A `debug` entry: event `debug` (not `message`, so it is not shown to
    /// users as one), data `{content}`, as in the original.
    pub fn debug(&self, message: &str) -> Result<(), ContextError> {
        self.log_at(MessageLevel::Debug, "debug", json!({ "content": message }), None)
    }

    /// A `warning` message.
    pub fn warning(&self, message: &str) -> Result<(), ContextError> {
        self.log_message(message, MessageLevel::Warning)
    }

    /// An `error` message.
    pub fn error(&self, message: &str) -> Result<(), ContextError> {
        self.log_message(message, MessageLevel::Error)
    }

    /// A `critical` message.
    pub fn critical(&self, message: &str) -> Result<(), ContextError> {
        self.log_message(message, MessageLevel::Critical)
    }

    /// The last progress this run reported for `step` (the step-less key
    /// when `None`).
    pub fn get_progress(&self, step: Option<&str>) -> Option<ProgressSnapshot> {
        self.lock_reported().step(step).and_then(StepReport::snapshot)
    }

    /// The metrics this run reported: one step's merged metrics, or, when
    /// `step` is `None`, every step's as `{step: {...}}`.
    pub fn get_metrics(&self, step: Option<&str>) -> Map<String, Value> {
        // Queued metrics are merged once the host has them.
        self.flush();
        let metrics = self.lock_metrics();
        match step {
            Some(step) => metrics.get(step).cloned().unwrap_or_default(),
            None => metrics
                .iter()
                .map(|(step, metrics)| (step.clone(), Value::Object(metrics.clone())))
                .collect(),
        }
    }

    /// Ends logging for this run: every later call is refused with
    /// [`ContextError::Finished`].
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Release)
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<(), ContextError> {
        if self.is_finished() {
            Err(ContextError::Finished)
        } else {
            Ok(())
        }
    }

    fn lock_metrics(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Map<String, Value>>> {
        self.metrics.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_reported(&self) -> std::sync::MutexGuard<'_, Reported> {
        self.reported.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a report for `get_progress`, which computes percent, elapsed
    /// time and time remaining as the original does: the clock of a step
    /// starts at its first report, or again when it reports 0. The clock is
    /// coarse (a few milliseconds), finer than the hundredths of a second
    /// the times are rounded to.
    fn remember_progress(&self, step: Option<&str>, current: u64, total: u64) {
        let now = coarse_now_nanos();
        let mut reported = self.lock_reported();
        let report = reported.step_mut(step);
        if current == 0 || report.started.is_none() {
            report.started = Some(now);
        }
        report.last = Some(LastReport::Running {
            current,
            total,
            at: now,
        });
    }
}

impl Drop for Logger {
    /// The log thread hands over what is still queued, then ends.
    fn drop(&mut self) {
        if let Some(queue) = &self.queue {
            queue.close();
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The error for data that is not a JSON object (or does not serialise).
fn not_an_object(data: &impl Serialize) -> ContextError {
    to_object(data, "log data").err().unwrap_or(ContextError::NotAnObject {
        what: "log data",
        got: "not an object",
    })
}

/// Serialises `value`, which must be a JSON object.
fn to_object(value: &impl Serialize, what: &'static str) -> Result<Map<String, Value>, ContextError> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ContextError::NotAnObject {
            what,
            got: json_kind(&other),
        }),
        Err(e) => Err(ContextError::Serialize {
            what,
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    //! Behaviour checked against synapse-sdk 2026.2.17 (`BaseLogger` in
    //! `synapse_sdk/loggers.py`, run side by side).

    use std::sync::Arc;

    use super::*;
    use crate::ffi::host_side::{context_for, release_1_1_context_for, ContextHost};
    use crate::testing::RecordingHost;
    use crate::RuntimeContext;

    fn context() -> (Arc<RecordingHost>, RuntimeContext) {
        let host = Arc::new(RecordingHost::default());
        (host.clone(), RuntimeContext::with_host(host))
    }

    #[test]
    fn every_original_level_is_accepted_by_name() {
        let names: Vec<&str> = MessageLevel::ALL.iter().map(|l| l.as_str()).collect();
        assert_eq!(
            names,
            ["debug", "info", "success", "warning", "danger", "error", "critical"]
        );
        for name in names {
            assert_eq!(name.parse::<MessageLevel>().unwrap().as_str(), name);
        }
        assert!("fatal".parse::<MessageLevel>().is_err());
        let (host, ctx) = context();
        ctx.log_message("boom", MessageLevel::Critical).unwrap();
        assert_eq!(host.calls(), ["message critical boom"]);
    }

    #[test]
    fn non_object_log_data_is_refused_as_in_the_original() {
        // The original: `logger.log(INFO, 'e', [1, 2])` raises
        // `TypeError: data must be a dict, got list`.
        let (host, ctx) = context();
        let err = ctx.log("e", json!([1, 2]), None).unwrap_err();
        assert_eq!(err.to_string(), "log data must be a JSON object, got an array");
        for (data, got) in [
            (Value::Null, "null"),
            (json!(3), "a number"),
            (json!(-1.5), "a number"),
            (json!("text"), "a string"),
            (json!(false), "a boolean"),
        ] {
            let err = ctx.log("e", &data, None).unwrap_err();
            assert_eq!(err, ContextError::NotAnObject { what: "log data", got }, "{data}");
        }
        assert!(host.calls().is_empty(), "nothing was sent");
        #[derive(Serialize)]
        struct Rows {
            rows: u32,
        }
        ctx.log("e", Rows { rows: 2 }, None).unwrap();
        assert_eq!(host.calls(), [r#"log e {"rows":2} file=None"#]);
    }

    #[test]
    fn calls_inside_a_step_are_attributed_to_it() {
        let (host, ctx) = context();
        ctx.logger().set_step(Some("train"));
        assert_eq!(ctx.logger().get_step().as_deref(), Some("train"));
        ctx.set_progress(1, 2, None).unwrap();
        ctx.log("e", json!({"a": 1}), None).unwrap();
        ctx.log_message("hi", MessageLevel::Warning).unwrap();
        ctx.logger().set_step_metrics(json!({"loss": 1})).unwrap();
        ctx.set_progress(1, 1, Some("other")).unwrap();
        ctx.logger().set_step(None);
        ctx.set_progress(1, 4, None).unwrap();
        assert_eq!(
            host.calls(),
            [
                "progress 1/2 step=Some(\"train\")",
                "log e {\"a\":1} step=train file=None",
                "message warning hi step=train",
                "metrics {\"loss\":1} step=train",
                "progress 1/1 step=Some(\"other\")",
                "progress 1/4 step=None",
            ]
        );
        assert_eq!(ctx.logger().set_step_metrics(json!({})), Err(ContextError::NoStep));
    }

    #[test]
    fn shortcuts_use_the_original_levels_and_events() {
        let (host, ctx) = context();
        let logger = ctx.logger();
        logger.info("i").unwrap();
        logger.debug("d").unwrap();
        logger.warning("w").unwrap();
        logger.error("e").unwrap();
        logger.critical("c").unwrap();
        assert_eq!(
            host.calls(),
            [
                "message info i",
                "log debug {\"content\":\"d\"} level=debug file=None",
                "message warning w",
                "message error e",
                "message critical c",
            ]
        );
    }

    #[test]
    fn progress_and_metrics_reported_so_far_can_be_read_back() {
        let (_, ctx) = context();
        let logger = ctx.logger();
        assert_eq!(logger.get_progress(None), None);
        logger.set_progress(1, 3, Some("train")).unwrap();
        let progress = logger.get_progress(Some("train")).unwrap();
        assert_eq!(progress.percent, 33.33);
        assert_eq!(progress.status, ProgressStatus::Running);
        assert!(progress.time_remaining.is_some());
        logger.set_metrics(json!({"loss": 1.0, "acc": 0.5}), "train").unwrap();
        logger.set_metrics(json!({"loss": 0.5}), "train").unwrap();
        logger.set_metrics(json!({"f1": 0.1}), "eval").unwrap();
        assert_eq!(
            Value::Object(logger.get_metrics(Some("train"))),
            json!({"loss": 0.5, "acc": 0.5})
        );
        assert_eq!(
            Value::Object(logger.get_metrics(None)),
            json!({"train": {"loss": 0.5, "acc": 0.5}, "eval": {"f1": 0.1}})
        );
        assert!(logger.get_metrics(Some("none")).is_empty());
    }

    #[test]
    fn set_progress_failed_marks_the_step_and_tells_the_host() {
        let (host, ctx) = context();
        ctx.set_progress(1, 2, Some("train")).unwrap();
        ctx.logger().set_progress_failed(Some("train")).unwrap();
        let progress = ctx.logger().get_progress(Some("train")).unwrap();
        assert_eq!((progress.percent, progress.status), (0.0, ProgressStatus::Failed));
        assert_eq!(host.calls().last().unwrap(), "progress failed step=Some(\"train\")");
    }

    #[test]
    fn a_host_older_than_1_2_gets_plain_1_1_calls_without_an_envelope() {
        let host = Arc::new(RecordingHost::default());
        let logger = Logger::new(HostHandle::new(release_1_1_context_for(&host)));
        logger.set_step(Some("train"));
        logger.log("epoch", json!({"loss": 0.5}), Some("/m.bin")).unwrap();
        logger.log("tagged", json!({"step": "mine"}), None).unwrap();
        logger.debug("noise").unwrap();
        logger.critical("too hot").unwrap();
        logger.log_message("done", MessageLevel::Success).unwrap();
        logger.log_dev_event("shapes", Some(json!([1, 2]))).unwrap();
        logger.set_progress_failed(Some("train")).unwrap();
        assert_eq!(
            host.calls(),
            [
                r#"log epoch {"loss":0.5,"step":"train"} file=Some("/m.bin")"#,
                r#"log tagged {"step":"mine"} file=None"#,
                r#"log debug {"content":"noise","step":"train"} file=None"#,
                "message danger too hot",
                "message success done",
                r#"dev_event shapes Some("[1,2]")"#,
                r#"log progress_failed {"step":"train"} file=None"#,
            ]
        );
        assert!(host
            .calls()
            .iter()
            .all(|call| !call.contains("$synapse") && !call.contains('@')));
        assert_eq!(
            logger.get_progress(Some("train")).unwrap().status,
            ProgressStatus::Failed,
            "the plugin still knows the step failed"
        );
    }

    #[test]
    fn a_1_2_host_gets_each_entry_with_its_step_and_level() {
        let host = Arc::new(RecordingHost::default());
        let logger = Logger::new(HostHandle::new(context_for(&host)));
        logger.set_step(Some("train"));
        logger.debug("noise").unwrap();
        logger.critical("too hot").unwrap();
        logger.log_dev_event("shapes", None).unwrap();
        assert_eq!(
            host.calls(),
            [
                r#"log debug {"content":"noise"} step=train level=debug file=None"#,
                "message critical too hot step=train",
                "dev_event shapes None step=train",
            ]
        );
    }

    /// A host that takes entries off the caller's thread (as the loader
    /// does), recording each with the time it was given.
    #[derive(Default)]
    struct OffThreadHost {
        recording: RecordingHost,
        times: Mutex<Vec<u64>>,
    }

    impl ContextHost for OffThreadHost {
        fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), String> {
            self.recording.set_progress(current, total, step)
        }
        fn set_metrics(&self, value_json: &str, step: &str) -> Result<(), String> {
            self.recording.set_metrics(value_json, step)
        }
        fn log(&self, event: &str, data_json: &str, file: Option<&str>) {
            self.recording.log(event, data_json, file)
        }
        fn log_message(&self, message: &str, level: &str) {
            self.recording.log_message(message, level)
        }
        fn log_dev_event(&self, message: &str, data_json: Option<&str>) {
            self.recording.log_dev_event(message, data_json)
        }
        fn env_json(&self) -> String {
            self.recording.env_json()
        }
        fn job_id(&self) -> Option<String> {
            None
        }
        fn checkpoint_json(&self) -> Option<String> {
            None
        }
        fn is_cancelled(&self) -> bool {
            false
        }
        fn has_client(&self, _: crate::ffi::ClientKind) -> bool {
            false
        }
        fn client_request(&self, _: crate::ffi::ClientKind, _: &str) -> Result<String, String> {
            Err("none".into())
        }
        fn log_entry(&self, entry_json: &str) -> Result<(), String> {
            self.recording.log_entry(entry_json)
        }
        fn logs_off_thread(&self) -> bool {
            true
        }
        fn log_entry_at(&self, entry_json: &str, unix_nanos: u64) -> Result<(), String> {
            self.times.lock().unwrap().push(unix_nanos);
            self.recording.log_entry(entry_json)
        }
    }

    #[test]
    fn off_the_callers_thread_entries_keep_their_order_step_level_and_call_time() {
        let host = Arc::new(OffThreadHost::default());
        let logger = Logger::new(HostHandle::new(context_for(&host)));
        let before = crate::ffi::clock::unix_nanos_now();
        logger.set_step(Some("train"));
        logger.log("epoch", json!({"loss": 0.5}), Some("/m.bin")).unwrap();
        #[derive(Serialize)]
        struct Rows {
            rows: u32,
        }
        logger.log("rows", Rows { rows: 2 }, None).unwrap();
        logger.debug("noise").unwrap();
        logger.critical("too hot").unwrap();
        logger.log_dev_event("shapes", Some(json!([1, 2]))).unwrap();
        logger.set_progress_failed(Some("train")).unwrap();
        logger.set_metrics(json!({"loss": 0.5}), "train").unwrap();
        logger.set_metrics(json!({"acc": 0.9}), "train").unwrap();
        assert_eq!(
            logger.set_metrics(json!({"loss": 1}), " "),
            Err(ContextError::Metrics("a non-empty step name is required".into()))
        );
        assert_eq!(
            Value::Object(logger.get_metrics(Some("train"))),
            json!({"loss": 0.5, "acc": 0.9}),
            "what was queued is read back"
        );
        assert_eq!(
            logger.log("bad", json!([1]), None),
            Err(ContextError::NotAnObject {
                what: "log data",
                got: "an array"
            }),
            "the caller still learns of data that is not an object"
        );
        assert_eq!(
            logger.log("bad", 3, None).unwrap_err().to_string(),
            "log data must be a JSON object, got a number"
        );
        logger.flush();
        let after = crate::ffi::clock::unix_nanos_now();
        assert_eq!(
            host.recording.calls(),
            [
                r#"log epoch {"loss":0.5} step=train file=Some("/m.bin")"#,
                r#"log rows {"rows":2} step=train file=None"#,
                r#"log debug {"content":"noise"} step=train level=debug file=None"#,
                "message critical too hot step=train",
                r#"dev_event shapes Some("[1,2]") step=train"#,
                "progress failed step=Some(\"train\")",
                r#"metrics {"loss":0.5} step=train"#,
                r#"metrics {"acc":0.9} step=train"#,
            ]
        );
        let times = host.times.lock().unwrap().clone();
        assert_eq!(times.len(), 6);
        let slack = 2_000_000;
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert!(
            times[0] + slack >= before && times[5] <= after + slack,
            "{before}..{after}: {times:?}"
        );
    }

    #[test]
    fn a_host_older_than_1_4_gets_each_entry_during_the_call() {
        let host = Arc::new(OffThreadHost::default());
        let logger = Logger::new(HostHandle::new(crate::ffi::host_side::release_1_3_context_for(&host)));
        logger.log("epoch", json!({"loss": 0.5}), None).unwrap();
        logger.info("hi").unwrap();
        assert_eq!(
            host.recording.calls(),
            [r#"log epoch {"loss":0.5} file=None"#, "message info hi"],
            "sent before the call returned, without a log thread"
        );
        assert!(
            host.times.lock().unwrap().is_empty(),
            "log_entry_at is not in a 1.3 host"
        );
    }

    #[test]
    fn a_finished_logger_refuses_every_call() {
        let (host, ctx) = context();
        ctx.logger().finish();
        assert_eq!(ctx.set_progress(1, 1, None), Err(ContextError::Finished));
        assert_eq!(ctx.set_metrics(json!({}), "s"), Err(ContextError::Finished));
        assert_eq!(ctx.log("e", json!({}), None), Err(ContextError::Finished));
        assert_eq!(ctx.log_message("m", MessageLevel::Info), Err(ContextError::Finished));
        assert_eq!(ctx.log_dev_event("m", None), Err(ContextError::Finished));
        assert_eq!(ctx.logger().info("m"), Err(ContextError::Finished));
        assert_eq!(ctx.logger().set_progress_failed(None), Err(ContextError::Finished));
        assert!(host.calls().is_empty());
    }
}
