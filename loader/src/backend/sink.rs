//! `BackendSink`: reports a run to the backend as the Synapse original's
//! job logger does, without its losses.
//!
//! - The job's status goes out at the start (`RUNNING`) and the end
//!   (`SUCCEEDED`, `FAILED` or `STOPPED`, with the result or the error, and
//!   the final progress and metrics snapshot), by `PATCH jobs/{id}/`.
//! - Progress and metrics are coalesced into one snapshot (`progress_record`,
//!   `metrics_record`, see [`super::record`]): the newest wins, and one is
//!   sent at most every `snapshot_interval`, only once the backend has taken
//!   everything before it.
//! - Log entries go by `POST logs/` in batches of `batch_size`, or sooner
//!   when the oldest has waited `batch_delay`.
//!
//! Everything passes through the journal ([`super::journal`]) on disk, and
//! one sender thread delivers it in order, retrying with backoff for as long
//! as the run lasts and then up to `drain_timeout`. What is still
//! undelivered then stays in the journal for `loader flush`, and the run's
//! other sinks get a `joblog_loss` event saying how much and where.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::config::BackendSettings;
use super::http::{Endpoint, HttpClient, RequestError, RetryPolicy};
use super::journal::{self, Header, JournalReader, JournalWriter, Unit};
use super::record::{log_entry, JobRecord};
use crate::events::{lock, Event, EventKind, EventSink, Level, RunInfo};

/// How often the sender seals waiting log entries and writes them through
/// to the journal file (so a killed loader loses at most this much).
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(100);

/// The event a run's other sinks receive when something could not be
/// delivered.
pub const LOSS_EVENT: &str = "joblog_loss";

/// What became of a run's reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The journal holding what was not delivered (removed when empty).
    pub journal: PathBuf,
    /// Requests the backend took.
    pub delivered_requests: u64,
    /// Requests still in the journal, and the log entries among them.
    pub undelivered_requests: u64,
    pub undelivered_entries: u64,
    /// Log entries the backend refused for good (a 4xx other than 401/403).
    pub rejected_entries: u64,
    /// Log entries that could not even be written to the journal.
    pub unjournaled_entries: u64,
    /// Why delivery stopped early, if it did.
    pub stopped_by: Option<String>,
}

impl DeliveryReport {
    /// Whether everything reached the backend.
    pub fn is_complete(&self) -> bool {
        self.undelivered_requests == 0 && self.rejected_entries == 0 && self.unjournaled_entries == 0
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!(
            "{} log entries in {} requests were not delivered to the backend",
            self.undelivered_entries, self.undelivered_requests
        )];
        if self.undelivered_requests > 0 {
            parts.push(format!(
                "they are kept in {} and `loader flush` (or the next run) delivers them",
                self.journal.display()
            ));
        }
        if self.rejected_entries > 0 {
            parts.push(format!("{} entries were refused by the backend", self.rejected_entries));
        }
        if self.unjournaled_entries > 0 {
            parts.push(format!(
                "{} entries could not be written to the journal",
                self.unjournaled_entries
            ));
        }
        if let Some(reason) = &self.stopped_by {
            parts.push(format!("last error: {reason}"));
        }
        parts.join("; ")
    }
}

struct State {
    writer: Option<JournalWriter>,
    write_error: Option<String>,
    unjournaled_entries: u64,
    record: JobRecord,
    snapshot_dirty: bool,
    last_snapshot: Option<Instant>,
    first_unsealed: Option<Instant>,
    processed: u64,
    outcome: Option<Value>,
    closed: bool,
    deadline: Option<Instant>,
}

struct Shared {
    http: HttpClient,
    settings: BackendSettings,
    job_id: String,
    job_path: String,
    state: Mutex<State>,
    wake: Condvar,
}

/// How the sender thread ended.
struct SenderEnd {
    reader: Option<JournalReader>,
    in_flight: Option<Unit>,
    delivered: u64,
    rejected_entries: u64,
    stopped_by: Option<String>,
}

/// Reports a run to the backend; see the module docs.
pub struct BackendSink {
    shared: Arc<Shared>,
    journal: PathBuf,
    sender: Mutex<Option<JoinHandle<SenderEnd>>>,
    notify: Option<Arc<dyn EventSink>>,
    report: Mutex<Option<DeliveryReport>>,
}

/// A file-name-safe form of a job id.
fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

impl BackendSink {
    /// A reporter for job `job_id` at `endpoint`. `notify` receives the
    /// `joblog_loss` event if something cannot be delivered.
    pub fn new(
        endpoint: Endpoint,
        job_id: &str,
        settings: BackendSettings,
        notify: Option<Arc<dyn EventSink>>,
    ) -> std::io::Result<Self> {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let header = Header {
            journal: 1,
            backend: endpoint.url.clone(),
            job_id: job_id.to_owned(),
            run: format!("{}-{millis}-{}", file_safe(job_id), std::process::id()),
        };
        let writer = JournalWriter::create(&settings.spool_dir, &header)?;
        let journal = writer.path().to_owned();
        let reader = JournalReader::open(&journal, settings.batch_size)?;
        let retry = RetryPolicy {
            attempts: 1,
            first_delay: Duration::from_millis(100),
            max_delay: settings.max_backoff,
        };
        let shared = Arc::new(Shared {
            http: HttpClient::new(endpoint, settings.request_timeout, retry),
            job_path: format!("jobs/{job_id}/"),
            job_id: job_id.to_owned(),
            settings,
            state: Mutex::new(State {
                writer: Some(writer),
                write_error: None,
                unjournaled_entries: 0,
                record: JobRecord::default(),
                snapshot_dirty: false,
                last_snapshot: None,
                first_unsealed: None,
                processed: 0,
                outcome: None,
                closed: false,
                deadline: None,
            }),
            wake: Condvar::new(),
        });
        let for_sender = shared.clone();
        let journal_for_sender = journal.clone();
        let sender = std::thread::Builder::new()
            .name("backend sender".into())
            .spawn(move || send_all(&for_sender, reader, &journal_for_sender))?;
        Ok(Self {
            shared,
            journal,
            sender: Mutex::new(Some(sender)),
            notify,
            report: Mutex::new(None),
        })
    }

    /// The journal this run writes.
    pub fn journal(&self) -> &std::path::Path {
        &self.journal
    }

    /// What became of the run's reports; `None` until the run finished.
    pub fn report(&self) -> Option<DeliveryReport> {
        lock(&self.report).clone()
    }

    fn write(&self, state: &mut State, action: impl FnOnce(&mut JournalWriter) -> std::io::Result<()>) -> bool {
        let Some(writer) = state.writer.as_mut() else {
            return false;
        };
        match action(writer) {
            Ok(()) => true,
            Err(e) => {
                if state.write_error.is_none() {
                    tracing::warn!("cannot write the backend journal {}: {e}", self.journal.display());
                    state.write_error = Some(e.to_string());
                }
                false
            }
        }
    }
}

impl EventSink for BackendSink {
    fn start(&self, _run: &RunInfo) {
        let mut state = lock(&self.shared.state);
        let path = self.shared.job_path.clone();
        self.write(&mut state, |w| {
            w.request("PATCH", &path, json!({ "status": "RUNNING" }))
        });
        drop(state);
        self.shared.wake.notify_all();
    }

    fn emit(&self, _run: &RunInfo, event: &Event) {
        let mut state = lock(&self.shared.state);
        if state.closed {
            return;
        }
        match event.kind {
            EventKind::Progress | EventKind::Metrics => {
                state.snapshot_dirty |= state.record.observe(event);
            }
            EventKind::Result => {
                state.outcome = Some(json!({ "status": "SUCCEEDED", "result": event.data }));
            }
            EventKind::Error => {
                let message = event.data.get("message").cloned().unwrap_or(Value::Null);
                let stopped = event.data.get("kind").and_then(Value::as_str) == Some("cancelled");
                let status = if stopped { "STOPPED" } else { "FAILED" };
                state.outcome = Some(json!({ "status": status, "result": { "error": message } }));
            }
            EventKind::Event | EventKind::Message | EventKind::DevEvent | EventKind::Output => {
                let Some(entry) = log_entry(&self.shared.job_id, event) else {
                    return;
                };
                if !self.write(&mut state, |w| w.entry(&entry)) {
                    state.unjournaled_entries += 1;
                    return;
                }
                let unsealed = state.writer.as_ref().map_or(0, JournalWriter::unsealed);
                if unsealed == 1 {
                    state.first_unsealed = Some(Instant::now());
                }
                if unsealed >= self.shared.settings.batch_size {
                    self.write(&mut state, JournalWriter::seal);
                    state.first_unsealed = None;
                    drop(state);
                    self.shared.wake.notify_all();
                }
            }
        }
    }

    fn finish(&self, _run: &RunInfo) {
        let Some(sender) = lock(&self.sender).take() else {
            return;
        };
        {
            let mut state = lock(&self.shared.state);
            let mut last = state.outcome.take().unwrap_or_else(
                || json!({ "status": "FAILED", "result": { "error": "the run ended without a result" } }),
            );
            if let (Value::Object(last), Value::Object(snapshot)) = (&mut last, state.record.snapshot()) {
                last.extend(snapshot);
            }
            let path = self.shared.job_path.clone();
            self.write(&mut state, |w| w.request("PATCH", &path, last));
            state.closed = true;
            state.deadline = Some(Instant::now() + self.shared.settings.drain_timeout);
        }
        self.shared.wake.notify_all();
        let end = sender.join().unwrap_or_else(|_| SenderEnd {
            reader: None,
            in_flight: None,
            delivered: 0,
            rejected_entries: 0,
            stopped_by: Some("the sender thread panicked".to_owned()),
        });
        let report = self.conclude(end);
        if report.is_complete() {
            if let Err(e) = journal::remove(&self.journal) {
                tracing::warn!("cannot remove the delivered journal {}: {e}", self.journal.display());
            }
        } else {
            tracing::warn!("{}", report.summary());
            if let Some(notify) = &self.notify {
                let event = Event::new(
                    EventKind::Event,
                    LOSS_EVENT,
                    Level::Warning,
                    json!({
                        "message": report.summary(),
                        "undelivered_entries": report.undelivered_entries,
                        "undelivered_requests": report.undelivered_requests,
                        "rejected_entries": report.rejected_entries,
                        "unjournaled_entries": report.unjournaled_entries,
                        "journal": report.journal,
                    }),
                );
                notify.emit(_run, &event);
            }
        }
        *lock(&self.report) = Some(report);
    }
}

impl BackendSink {
    /// Counts what the sender left behind.
    fn conclude(&self, end: SenderEnd) -> DeliveryReport {
        let mut state = lock(&self.shared.state);
        state.writer = None;
        let mut report = DeliveryReport {
            journal: self.journal.clone(),
            delivered_requests: end.delivered,
            rejected_entries: end.rejected_entries,
            unjournaled_entries: state.unjournaled_entries,
            stopped_by: end.stopped_by.or_else(|| state.write_error.clone()),
            ..DeliveryReport::default()
        };
        let mut count = |unit: &Unit| {
            report.undelivered_requests += 1;
            report.undelivered_entries += unit.entries as u64;
        };
        if let Some(unit) = &end.in_flight {
            count(unit);
        }
        if let Some(mut reader) = end.reader {
            while let Ok(Some(unit)) = reader.next_unit() {
                count(&unit);
            }
        }
        report
    }
}

/// What became of one delivery.
enum Delivery {
    Delivered,
    /// Refused for good (a 4xx other than 401/403): skipped, counted.
    Rejected(RequestError),
    /// The credentials were refused: stop, keep the rest for later.
    Refused(RequestError),
    /// Still failing when the time to drain ran out.
    GaveUp(RequestError),
}

impl Shared {
    /// Seals log entries that waited long enough, and writes a snapshot
    /// when one is due and the backend has taken everything before it.
    fn housekeeping(&self, state: &mut State) {
        if state.closed {
            return;
        }
        let Some(writer) = state.writer.as_mut() else {
            return;
        };
        let mut wrote = Ok(());
        if state
            .first_unsealed
            .is_some_and(|t| t.elapsed() >= self.settings.batch_delay)
        {
            wrote = writer.seal();
            state.first_unsealed = None;
        }
        if wrote.is_ok() && writer.unsealed() > 0 {
            wrote = writer.flush();
        }
        let caught_up = state.processed == writer.units();
        let due = state
            .last_snapshot
            .is_none_or(|t| t.elapsed() >= self.settings.snapshot_interval);
        if wrote.is_ok() && state.snapshot_dirty && caught_up && due {
            let snapshot = state.record.snapshot();
            wrote = writer.request("PATCH", &self.job_path, snapshot);
            state.snapshot_dirty = false;
            state.last_snapshot = Some(Instant::now());
        }
        if let Err(e) = wrote {
            state.write_error.get_or_insert(e.to_string());
        }
    }

    fn deliver(&self, unit: &Unit) -> Delivery {
        let mut attempt = 0;
        loop {
            let failed = match self
                .http
                .attempt(&unit.method, &unit.path, Some(&unit.body), Some(&unit.key))
            {
                Ok(_) => return Delivery::Delivered,
                Err(failed) => failed,
            };
            match &failed.error {
                RequestError::Unauthorized { .. } => return Delivery::Refused(failed.error),
                error if !error.is_retryable() => return Delivery::Rejected(failed.error),
                _ => {}
            }
            let retry = RetryPolicy {
                attempts: u32::MAX,
                first_delay: Duration::from_millis(100),
                max_delay: self.settings.max_backoff,
            };
            let until = Instant::now() + retry.delay(attempt, failed.retry_after);
            attempt += 1;
            let mut state = lock(&self.state);
            loop {
                let now = Instant::now();
                if state.deadline.is_some_and(|d| now >= d) {
                    return Delivery::GaveUp(failed.error);
                }
                let Some(left) = until.checked_duration_since(now).filter(|d| !d.is_zero()) else {
                    break;
                };
                let left = state
                    .deadline
                    .map_or(left, |d| left.min(d.saturating_duration_since(now)))
                    .min(HOUSEKEEPING_INTERVAL);
                self.housekeeping(&mut state);
                state = self.wake.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0;
            }
        }
    }
}

/// The sender thread: delivers the journal's units in order until the run
/// is closed and everything is delivered, or delivery must stop.
fn send_all(shared: &Shared, mut reader: JournalReader, journal_path: &std::path::Path) -> SenderEnd {
    let mut end = SenderEnd {
        reader: None,
        in_flight: None,
        delivered: 0,
        rejected_entries: 0,
        stopped_by: None,
    };
    loop {
        let (closed, out_of_time) = {
            let mut state = lock(&shared.state);
            shared.housekeeping(&mut state);
            (state.closed, state.deadline.is_some_and(|d| Instant::now() >= d))
        };
        if out_of_time {
            end.stopped_by = Some("the backend did not take everything within the time to drain".to_owned());
            end.reader = Some(reader);
            return end;
        }
        let unit = match reader.next_unit() {
            Ok(unit) => unit,
            Err(e) => {
                end.stopped_by = Some(format!("cannot read the journal: {e}"));
                return end;
            }
        };
        let Some(unit) = unit else {
            if closed {
                end.reader = Some(reader);
                return end;
            }
            let state = lock(&shared.state);
            drop(shared.wake.wait_timeout(state, HOUSEKEEPING_INTERVAL));
            continue;
        };
        match shared.deliver(&unit) {
            Delivery::Delivered => end.delivered += 1,
            Delivery::Rejected(error) => {
                tracing::warn!("the backend refused a report for good: {error}");
                end.rejected_entries += unit.entries as u64;
            }
            Delivery::Refused(error) | Delivery::GaveUp(error) => {
                end.stopped_by = Some(error.to_string());
                end.in_flight = Some(unit);
                end.reader = Some(reader);
                return end;
            }
        }
        let processed = {
            let mut state = lock(&shared.state);
            state.processed += 1;
            state.processed
        };
        if let Err(e) = journal::write_ack(journal_path, processed) {
            tracing::warn!("cannot record delivery progress beside {}: {e}", journal_path.display());
        }
    }
}
