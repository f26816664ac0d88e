//! Host-side coalescing of `set_progress`.
//!
//! The Synapse guide warns that calling `set_progress` on every batch is
//! slow. Here it is cheap: a plugin may call it millions of times in a tight
//! loop. [`ProgressTracker::update`] validates the value, records it, and
//! returns a `progress` event only when one is worth sending: the first
//! update of a step, a completion (`current == total`), or once at least
//! `min_interval` has passed since the step's last emitted event. Everything
//! else is coalesced, and [`ProgressTracker::flush`] returns whatever latest
//! value was not emitted yet, so the final value is never lost.
//!
//! The fast path takes an uncontended mutex, compares the step name with the
//! step of the previous call (no hashing, no allocation) and reads the coarse
//! monotonic clock ([`super::time::coarse_monotonic_nanos`]); a new step
//! allocates once.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::time::coarse_monotonic_nanos;
use super::{lock, Event, EventKind, Level};

/// How often a step's progress is emitted at most, unless it completes.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_millis(100);

/// State of a step's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressStatus {
    Running,
    Completed,
    Failed,
}

impl ProgressStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProgressStatus::Running => "running",
            ProgressStatus::Completed => "completed",
            ProgressStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for ProgressStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step's progress as last reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepProgress {
    pub current: u64,
    pub total: u64,
    /// `current / total * 100`, rounded to 2 places.
    pub percent: f64,
    /// Time from the step's first update (or its last restart, see
    /// [`ProgressTracker::update`]) to its latest update.
    pub elapsed: Duration,
    /// Estimated time remaining at the rate seen so far; `None` when unknown.
    pub eta: Option<Duration>,
    pub status: ProgressStatus,
}

impl StepProgress {
    /// The `progress` event payload:
    /// `{current, total, percent, elapsed, eta, status}`, times in seconds.
    pub fn to_json(&self) -> Value {
        json!({
            "current": self.current,
            "total": self.total,
            "percent": self.percent,
            "elapsed": round_to(self.elapsed.as_secs_f64(), 3),
            "eta": self.eta.map(|d| round_to(d.as_secs_f64(), 3)),
            "status": self.status.as_str(),
        })
    }

    /// A `progress` event for `step` (`None` = the default step), at `info`,
    /// or `error` when the step failed.
    pub fn to_event(&self, step: Option<&str>) -> Event {
        let level = match self.status {
            ProgressStatus::Failed => Level::Error,
            ProgressStatus::Running | ProgressStatus::Completed => Level::Info,
        };
        Event::new(EventKind::Progress, "progress", level, self.to_json()).with_step_opt(step)
    }
}

/// Rounds `x` to `places` decimal places.
pub(crate) fn round_to(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// A `set_progress` call with values out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgressError {
    #[error("progress total must be greater than 0, got 0{}", in_step(.step))]
    ZeroTotal { current: u64, step: Option<String> },
    #[error("progress current {current} is outside 0..={total}{}", in_step(.step))]
    OutOfRange {
        current: u64,
        total: u64,
        step: Option<String>,
    },
}

fn in_step(step: &Option<String>) -> String {
    match step {
        Some(s) => format!(" (step '{s}')"),
        None => String::new(),
    }
}

#[derive(Debug)]
struct StepState {
    key: Option<String>,
    /// Coarse clock reading of the first update (or restart).
    started: u64,
    /// `current` at `started`, the baseline of the rate estimate.
    first_current: u64,
    current: u64,
    total: u64,
    status: ProgressStatus,
    /// Coarse clock reading of the latest update.
    updated: u64,
    /// The (current, total, status) last emitted; `None` before the first.
    emitted: Option<(u64, u64, ProgressStatus)>,
    /// Coarse clock reading of the last emission.
    last_emit: u64,
}

impl StepState {
    fn latest(&self) -> (u64, u64, ProgressStatus) {
        (self.current, self.total, self.status)
    }

    fn is_pending(&self) -> bool {
        self.emitted != Some(self.latest())
    }

    fn mark_emitted(&mut self, now: u64) {
        self.emitted = Some(self.latest());
        self.last_emit = now;
    }

    fn progress(&self) -> StepProgress {
        let elapsed_ns = self.updated.saturating_sub(self.started);
        let eta = match self.status {
            ProgressStatus::Completed => Some(Duration::ZERO),
            ProgressStatus::Failed => None,
            ProgressStatus::Running => {
                let done = self.current.saturating_sub(self.first_current);
                if done == 0 || elapsed_ns == 0 {
                    None
                } else {
                    let left = (self.total - self.current) as f64 * elapsed_ns as f64 / done as f64;
                    // `as` saturates, so an absurd estimate cannot overflow.
                    Some(Duration::from_nanos(left as u64))
                }
            }
        };
        StepProgress {
            current: self.current,
            total: self.total,
            percent: round_to(self.current as f64 * 100.0 / self.total as f64, 2),
            elapsed: Duration::from_nanos(elapsed_ns),
            eta,
            status: self.status,
        }
    }
}

#[derive(Debug, Default)]
struct Steps {
    /// In first-seen order.
    steps: Vec<StepState>,
    /// Index of the step of the previous call: the fast path's cache.
    last: usize,
    /// Index of the default (`None`) step.
    default: Option<usize>,
    /// Index of each named step, consulted only when the cache misses.
    named: HashMap<String, usize>,
}

impl Steps {
    fn find(&self, step: Option<&str>) -> Option<usize> {
        if let Some(st) = self.steps.get(self.last) {
            if st.key.as_deref() == step {
                return Some(self.last);
            }
        }
        match step {
            None => self.default,
            Some(name) => self.named.get(name).copied(),
        }
    }

    fn insert(&mut self, step: Option<&str>, current: u64, total: u64, now: u64) -> usize {
        let idx = self.steps.len();
        match step {
            None => self.default = Some(idx),
            Some(name) => {
                self.named.insert(name.to_owned(), idx);
            }
        }
        self.steps.push(StepState {
            key: step.map(str::to_owned),
            started: now,
            first_current: current,
            current,
            total,
            status: ProgressStatus::Running,
            updated: now,
            emitted: None,
            last_emit: now,
        });
        idx
    }
}

/// Coalesces a run's progress updates, per step. Shared between threads.
#[derive(Debug)]
pub struct ProgressTracker {
    min_interval_ns: u64,
    steps: Mutex<Steps>,
}

impl Default for ProgressTracker {
    fn default() -> Self {
        ProgressTracker::new(DEFAULT_MIN_INTERVAL)
    }
}

impl ProgressTracker {
    /// A tracker that emits a step's progress at most once per
    /// `min_interval` (completion and first updates excepted).
    pub fn new(min_interval: Duration) -> Self {
        ProgressTracker {
            min_interval_ns: u64::try_from(min_interval.as_nanos()).unwrap_or(u64::MAX),
            steps: Mutex::new(Steps::default()),
        }
    }

    pub fn min_interval(&self) -> Duration {
        Duration::from_nanos(self.min_interval_ns)
    }

    /// Records `set_progress(current, total, step)`.
    ///
    /// Errors unless `total > 0` and `current <= total`. Returns the
    /// `progress` event to emit, or `None` when the update was coalesced
    /// (it then stays pending until a later update or [`flush`](Self::flush)).
    /// An event is returned for the first update of a step, for a completion
    /// whose value differs from the last one emitted, and for any new value
    /// once `min_interval` has passed since the step's last emission. A value
    /// equal to the last emitted one is never emitted again.
    ///
    /// When `current` goes backwards (a step reused for each epoch, say), the
    /// step restarts: elapsed time and the rate estimate start over.
    pub fn update(&self, step: Option<&str>, current: u64, total: u64) -> Result<Option<Event>, ProgressError> {
        if total == 0 || current > total {
            return Err(invalid(step, current, total));
        }
        let now = coarse_monotonic_nanos();
        let progress = {
            let mut steps = lock(&self.steps);
            let idx = match steps.find(step) {
                Some(idx) => idx,
                None => steps.insert(step, current, total, now),
            };
            steps.last = idx;
            let st = &mut steps.steps[idx];
            // Another thread may have read the clock later but locked first.
            let now = now.max(st.updated);
            if current < st.current {
                st.started = now;
                st.first_current = current;
            }
            st.current = current;
            st.total = total;
            st.updated = now;
            st.status = if current == total {
                ProgressStatus::Completed
            } else {
                ProgressStatus::Running
            };
            match st.emitted {
                Some(last) if last == st.latest() => return Ok(None),
                Some(_) if current != total && now.saturating_sub(st.last_emit) < self.min_interval_ns => {
                    return Ok(None)
                }
                _ => {}
            }
            st.mark_emitted(now);
            st.progress()
        };
        Ok(Some(progress.to_event(step)))
    }

    /// Marks `step` failed and returns its `progress` event with status
    /// `failed`, to emit now. `None` when the step never reported progress
    /// or its failure was already emitted. A later update sets it running
    /// (or completed) again.
    #[must_use = "emit the returned event, or the failure is not reported"]
    pub fn mark_failed(&self, step: Option<&str>) -> Option<Event> {
        let now = coarse_monotonic_nanos();
        let progress = {
            let mut steps = lock(&self.steps);
            let idx = steps.find(step)?;
            let st = &mut steps.steps[idx];
            st.status = ProgressStatus::Failed;
            if !st.is_pending() {
                return None;
            }
            st.mark_emitted(now.max(st.last_emit));
            st.progress()
        };
        Some(progress.to_event(step))
    }

    /// A `progress` event for every step whose latest value was not emitted
    /// yet, in first-seen order; afterwards nothing is pending.
    pub fn flush(&self) -> Vec<Event> {
        let now = coarse_monotonic_nanos();
        let mut steps = lock(&self.steps);
        let mut events = Vec::new();
        for st in steps.steps.iter_mut().filter(|st| st.is_pending()) {
            st.mark_emitted(now.max(st.last_emit));
            events.push(st.progress().to_event(st.key.as_deref()));
        }
        events
    }

    /// The latest progress of `step`, if it reported any.
    pub fn get(&self, step: Option<&str>) -> Option<StepProgress> {
        let steps = lock(&self.steps);
        steps.find(step).map(|idx| steps.steps[idx].progress())
    }

    /// Every step's latest progress, in first-seen order (for summaries).
    pub fn snapshot(&self) -> Vec<(Option<String>, StepProgress)> {
        lock(&self.steps)
            .steps
            .iter()
            .map(|st| (st.key.clone(), st.progress()))
            .collect()
    }
}

#[cold]
fn invalid(step: Option<&str>, current: u64, total: u64) -> ProgressError {
    let step = step.map(str::to_owned);
    if total == 0 {
        ProgressError::ZeroTotal { current, step }
    } else {
        ProgressError::OutOfRange { current, total, step }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn data(e: &Event) -> (u64, u64, &str) {
        (
            e.data["current"].as_u64().unwrap(),
            e.data["total"].as_u64().unwrap(),
            e.data["status"].as_str().unwrap(),
        )
    }

    #[test]
    fn invalid_values_are_refused_with_their_step() {
        let t = ProgressTracker::default();
        let err = t.update(Some("train"), 12, 10).unwrap_err();
        assert_eq!(err.to_string(), "progress current 12 is outside 0..=10 (step 'train')");
        assert_eq!(
            t.update(None, 0, 0).unwrap_err().to_string(),
            "progress total must be greater than 0, got 0"
        );
        assert_eq!(
            t.update(Some("load"), 3, 0).unwrap_err(),
            ProgressError::ZeroTotal {
                current: 3,
                step: Some("load".into())
            }
        );
        assert!(t.snapshot().is_empty(), "refused values must not create steps");
        assert!(t.update(None, 0, 1).unwrap().is_some());
    }

    #[test]
    fn first_update_and_completion_are_always_emitted() {
        let t = ProgressTracker::new(Duration::from_secs(3600));
        let first = t.update(Some("train"), 0, 10).unwrap().expect("first update");
        assert_eq!(first.kind, EventKind::Progress);
        assert_eq!(first.event, "progress");
        assert_eq!(first.step.as_deref(), Some("train"));
        assert_eq!(first.level, Level::Info);
        assert_eq!(data(&first), (0, 10, "running"));
        assert_eq!(first.data["percent"], json!(0.0));
        assert_eq!(first.data["eta"], Value::Null);

        for i in 1..10 {
            assert!(t.update(Some("train"), i, 10).unwrap().is_none(), "update {i}");
        }
        let done = t.update(Some("train"), 10, 10).unwrap().expect("completion");
        assert_eq!(data(&done), (10, 10, "completed"));
        assert_eq!(done.data["percent"], json!(100.0));
        assert_eq!(done.data["eta"], json!(0.0));
        // The same completed value is emitted once only.
        assert!(t.update(Some("train"), 10, 10).unwrap().is_none());
        // A distinct completed value is emitted again.
        let bigger = t.update(Some("train"), 20, 20).unwrap().expect("new completion");
        assert_eq!(data(&bigger), (20, 20, "completed"));
        assert!(t.flush().is_empty());
    }

    #[test]
    fn emits_again_after_the_interval() {
        let t = ProgressTracker::new(Duration::from_millis(30));
        assert!(t.update(None, 1, 100).unwrap().is_some());
        assert!(t.update(None, 2, 100).unwrap().is_none());
        std::thread::sleep(Duration::from_millis(60));
        let e = t.update(None, 3, 100).unwrap().expect("interval passed");
        assert_eq!(e.step, None);
        assert_eq!(data(&e), (3, 100, "running"));
        assert!(t.update(None, 4, 100).unwrap().is_none());
        // An unchanged value is not re-emitted even after the interval.
        let t = ProgressTracker::new(Duration::ZERO);
        assert!(t.update(None, 5, 10).unwrap().is_some());
        assert!(t.update(None, 5, 10).unwrap().is_none());
        assert!(t.update(None, 6, 10).unwrap().is_some());
    }

    #[test]
    fn a_million_updates_emit_a_bounded_count_and_flush_the_last() {
        let interval = Duration::from_millis(10);
        let t = ProgressTracker::new(interval);
        let n: u64 = 1_000_000;
        let started = Instant::now();
        let mut emitted = 0u64;
        for i in 0..n {
            if t.update(Some("train"), i, 2 * n).unwrap().is_some() {
                emitted += 1;
            }
        }
        let elapsed = started.elapsed();
        let bound = 3 + (elapsed.as_nanos() / interval.as_nanos()) as u64;
        assert!(
            emitted >= 1 && emitted <= bound,
            "{emitted} events in {elapsed:?} (bound {bound})"
        );

        let flushed = t.flush();
        assert_eq!(flushed.len(), 1);
        assert_eq!(data(&flushed[0]), (n - 1, 2 * n, "running"));
        assert!(t.flush().is_empty(), "nothing left after a flush");
        let snap = t.get(Some("train")).unwrap();
        assert_eq!((snap.current, snap.percent), (n - 1, 50.0));
    }

    #[test]
    fn steps_are_tracked_separately_in_first_seen_order() {
        let t = ProgressTracker::new(Duration::from_secs(3600));
        assert!(t.update(Some("download"), 1, 4).unwrap().is_some());
        assert!(t.update(Some("train"), 1, 3).unwrap().is_some());
        assert!(t.update(None, 1, 2).unwrap().is_some());
        for round in 0..3 {
            assert!(t.update(Some("download"), 2, 4).unwrap().is_none(), "round {round}");
            assert!(t.update(Some("train"), 2, 3).unwrap().is_none());
            assert!(t.update(None, 1, 2).unwrap().is_none());
        }
        let snap = t.snapshot();
        let keys: Vec<_> = snap.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, [Some("download".to_owned()), Some("train".to_owned()), None]);
        assert_eq!(snap[1].1.percent, 66.67);
        assert_eq!(snap[2].1.percent, 50.0);
        let flushed: Vec<_> = t.flush().iter().map(|e| (e.step.clone(), data(e).0)).collect();
        assert_eq!(
            flushed,
            [(Some("download".to_owned()), 2), (Some("train".to_owned()), 2)]
        );
    }

    #[test]
    fn many_step_names_are_found_again() {
        let t = ProgressTracker::new(Duration::from_secs(3600));
        let names: Vec<String> = (0..500).map(|i| format!("file_{i}")).collect();
        for name in &names {
            assert!(t.update(Some(name), 1, 2).unwrap().is_some());
        }
        for name in names.iter().rev() {
            assert!(t.update(Some(name), 1, 2).unwrap().is_none(), "{name} seen as new");
        }
        assert_eq!(t.snapshot().len(), 500);
    }

    #[test]
    fn mark_failed_emits_once_and_update_resumes() {
        let t = ProgressTracker::new(Duration::from_secs(3600));
        assert!(t.mark_failed(Some("train")).is_none(), "unknown step");
        t.update(Some("train"), 4, 10).unwrap();
        t.update(Some("train"), 5, 10).unwrap();
        let failed = t.mark_failed(Some("train")).expect("failure event");
        assert_eq!(data(&failed), (5, 10, "failed"));
        assert_eq!(failed.level, Level::Error);
        assert_eq!(failed.data["eta"], Value::Null);
        assert!(t.mark_failed(Some("train")).is_none(), "already reported");
        assert!(t.flush().is_empty());
        assert_eq!(t.snapshot()[0].1.status, ProgressStatus::Failed);
        let resumed = t.update(Some("train"), 10, 10).unwrap().unwrap();
        assert_eq!(data(&resumed), (10, 10, "completed"));
    }

    #[test]
    fn elapsed_and_eta_follow_the_rate() {
        let t = ProgressTracker::new(Duration::ZERO);
        t.update(Some("s"), 0, 4).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        let e = t.update(Some("s"), 1, 4).unwrap().unwrap();
        let elapsed = e.data["elapsed"].as_f64().unwrap();
        let eta = e.data["eta"].as_f64().unwrap();
        assert!((0.02..5.0).contains(&elapsed), "elapsed {elapsed}");
        assert!((eta - 3.0 * elapsed).abs() < 0.01, "eta {eta} for elapsed {elapsed}");

        // Going backwards restarts the step's clock and rate baseline.
        std::thread::sleep(Duration::from_millis(20));
        let restarted = t.update(Some("s"), 0, 4).unwrap().unwrap();
        assert_eq!(restarted.data["elapsed"], json!(0.0));
        assert_eq!(restarted.data["eta"], Value::Null);
    }

    #[test]
    fn payload_has_the_documented_fields() {
        let p = StepProgress {
            current: 9,
            total: 20,
            percent: 45.0,
            elapsed: Duration::from_millis(1500),
            eta: Some(Duration::from_micros(1_833_333)),
            status: ProgressStatus::Running,
        };
        assert_eq!(
            p.to_json(),
            json!({"current": 9, "total": 20, "percent": 45.0, "elapsed": 1.5, "eta": 1.833, "status": "running"})
        );
        assert_eq!(round_to(2.0 / 3.0 * 100.0, 2), 66.67);
    }

    #[test]
    fn concurrent_updates_keep_the_latest_value() {
        let t = std::sync::Arc::new(ProgressTracker::new(Duration::from_millis(5)));
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let t = t.clone();
                std::thread::spawn(move || {
                    let step = format!("w{w}");
                    for i in 0..=10_000u64 {
                        t.update(Some(&step), i, 10_000).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert!(t.flush().is_empty(), "completions were emitted by update");
        assert!(t.snapshot().iter().all(|(_, p)| p.status == ProgressStatus::Completed));
    }

    /// `cargo test -p loader --release --lib events::progress -- --ignored`
    #[test]
    #[ignore = "timing; meaningful only in release builds"]
    fn fast_path_costs_under_50ns() {
        let t = ProgressTracker::default();
        let n = 10_000_000u64;
        let started = Instant::now();
        for i in 0..n {
            std::hint::black_box(t.update(Some("train"), i, n).unwrap());
        }
        let per_call = started.elapsed().as_nanos() as f64 / n as f64;
        eprintln!("ProgressTracker::update: {per_call:.1} ns/call");
        assert!(per_call < 50.0, "{per_call:.1} ns/call");
    }
}
