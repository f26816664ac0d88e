//! Batches: one run per line of a params JSONL file, at most N at a time,
//! each failed run retried up to K times, every outcome reported as it
//! comes. Here each line is a local isolated child (a [`LineRunner`]); on a
//! Ray cluster the whole batch is one job (`ray::batch`), with the same
//! lines in and outcomes out.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use plugin_api::host::json_kind;
use plugin_api::{ActionFailure, FailureKind};
use serde_json::{json, Value};

use crate::events::time::Rfc3339;
use crate::events::NullSink;
use crate::isolate::{run_isolated_with, ChildAction, ChildCommand, Interrupts, IsolationOptions};
use crate::run::host::RunSettings;
use crate::run::runner::Deadline;
use crate::sandbox::RunSandbox;

/// One params line of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLine {
    /// The line number in the input file (1-based).
    pub number: usize,
    /// The params JSON object, as text.
    pub params: String,
}

/// A params file that is not one JSON object per line.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BatchError {
    #[error("line {line}: not a JSON object: {reason}")]
    NotAnObject { line: usize, reason: String },
    #[error("the params file has no params lines")]
    Empty,
}

/// Reads a JSONL params file: one JSON object per line; blank lines are
/// skipped (and keep their numbers out of the outcomes).
pub fn read_lines(text: &str) -> Result<Vec<BatchLine>, BatchError> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(_)) => lines.push(BatchLine {
                number,
                params: raw.trim().to_owned(),
            }),
            Ok(other) => {
                return Err(BatchError::NotAnObject {
                    line: number,
                    reason: format!("found {}", json_kind(&other)),
                })
            }
            Err(e) => {
                return Err(BatchError::NotAnObject {
                    line: number,
                    reason: e.to_string(),
                })
            }
        }
    }
    if lines.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(lines)
}

/// Runs one line once. `attempt` counts from 1.
pub trait LineRunner: Sync {
    /// Returns the run's id (job id, or Ray submission id) and outcome.
    fn run(&self, line: &BatchLine, attempt: u32) -> (String, Result<Value, ActionFailure>);
}

/// Runs batch lines on this machine, each in an isolated child (as `loader
/// run` does); the job id of an attempt is `<batch_id>-<line>-<attempt>`.
pub struct IsolatedLines {
    pub child: ChildCommand,
    pub library: PathBuf,
    pub plugin: String,
    pub action: String,
    /// The settings of every run; the job id is set per attempt.
    pub settings: RunSettings,
    pub deadline: Option<Deadline>,
    /// How each line's child is supervised (the run's own flags).
    pub options: IsolationOptions,
    /// The sandbox around each line's child (the run's own flags).
    pub sandbox: RunSandbox,
    pub interrupts: Interrupts,
    pub batch_id: String,
}

impl LineRunner for IsolatedLines {
    fn run(&self, line: &BatchLine, attempt: u32) -> (String, Result<Value, ActionFailure>) {
        let id = format!("{}-{}-{attempt}", self.batch_id, line.number);
        let settings = RunSettings {
            job_id: Some(id.clone()),
            ..self.settings.clone()
        };
        let action = ChildAction {
            action: &self.action,
            params_json: &line.params,
            settings,
            deadline: self.deadline,
            interrupt: &self.interrupts,
            sink: Arc::new(NullSink),
            options: self.options,
            sandbox: &self.sandbox,
        };
        let outcome = run_isolated_with(&self.child, &self.library, &self.plugin, action);
        (id, outcome)
    }
}

/// How a batch runs.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Runs at a time (at least 1).
    pub parallel: usize,
    /// Further attempts of a failed run.
    pub retries: u32,
}

/// The final outcome of one line.
#[derive(Debug, Clone)]
pub struct LineOutcome {
    pub line: usize,
    /// The id of the last attempt.
    pub id: String,
    pub attempts: u32,
    pub result: Result<Value, ActionFailure>,
    /// When the first attempt started and how long all attempts took;
    /// `None` for a line that was not run.
    pub timing: Option<(SystemTime, Duration)>,
    /// The Ray node the last attempt ran on (batches on Ray only).
    pub node: Option<String>,
}

impl LineOutcome {
    /// The JSONL record of this outcome: `{line, submission_id, status,
    /// attempts, result, error, started_at, elapsed}` (`status` is
    /// `succeeded`, `failed` or `skipped`; `started_at` is when the first
    /// attempt started, RFC 3339, and `elapsed` the seconds from then to the
    /// outcome, retries included; both `null` for a skipped line), and
    /// `node` for a line that ran on a Ray cluster.
    pub fn to_json(&self) -> Value {
        let status = match &self.result {
            Ok(_) => "succeeded",
            Err(f) if f.kind == FailureKind::Cancelled && self.attempts == 0 => "skipped",
            Err(_) => "failed",
        };
        let (result, error) = match &self.result {
            Ok(value) => (value.clone(), Value::Null),
            Err(f) => (
                Value::Null,
                json!({ "message": f.message, "kind": f.kind.as_str(), "details": f.details }),
            ),
        };
        let (started_at, elapsed) = match self.timing {
            Some((started, elapsed)) => (
                json!(Rfc3339::new(started).as_str()),
                json!((elapsed.as_secs_f64() * 1000.0).round() / 1000.0),
            ),
            None => (Value::Null, Value::Null),
        };
        let mut record = json!({
            "line": self.line,
            "submission_id": self.id,
            "status": status,
            "attempts": self.attempts,
            "result": result,
            "error": error,
            "started_at": started_at,
            "elapsed": elapsed,
        });
        if let Some(node) = &self.node {
            record["node"] = json!(node);
        }
        record
    }
}

/// Where a batch stands, after each finished line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchProgress {
    pub done: usize,
    pub failed: usize,
    pub total: usize,
}

/// Stops a batch from starting more runs (Ctrl-C); runs under way are the
/// runner's to stop.
#[derive(Debug, Default)]
pub struct StopFlag(AtomicBool);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst)
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Runs every line through `runner`, at most `options.parallel` at a time,
/// calling `on_outcome` for each line as it finishes (in completion order,
/// on the calling thread) with the batch's progress. Returns the progress
/// at the end; lines not started because of `stop` end as `skipped`.
pub fn run_batch(
    lines: Vec<BatchLine>,
    runner: &dyn LineRunner,
    options: BatchOptions,
    stop: &StopFlag,
    mut on_outcome: impl FnMut(&LineOutcome, BatchProgress),
) -> BatchProgress {
    let total = lines.len();
    let queue = Mutex::new(lines.into_iter().collect::<VecDeque<_>>());
    let (sender, receiver) = mpsc::channel::<LineOutcome>();
    let mut progress = BatchProgress {
        total,
        ..BatchProgress::default()
    };
    std::thread::scope(|scope| {
        for _ in 0..options.parallel.clamp(1, total.max(1)) {
            let sender = sender.clone();
            let queue = &queue;
            scope.spawn(move || loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(line) = next else { break };
                let outcome = if stop.is_stopped() {
                    skipped(&line)
                } else {
                    run_with_retries(runner, &line, options.retries, stop)
                };
                if sender.send(outcome).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        for outcome in receiver {
            progress.done += 1;
            if outcome.result.is_err() {
                progress.failed += 1;
            }
            on_outcome(&outcome, progress);
        }
    });
    progress
}

/// The outcome of a line not started because the batch was stopped.
pub fn skipped(line: &BatchLine) -> LineOutcome {
    LineOutcome {
        line: line.number,
        id: String::new(),
        attempts: 0,
        result: Err(ActionFailure::new(
            FailureKind::Cancelled,
            "not run: the batch was interrupted",
        )),
        timing: None,
        node: None,
    }
}

fn run_with_retries(runner: &dyn LineRunner, line: &BatchLine, retries: u32, stop: &StopFlag) -> LineOutcome {
    let mut attempt = 1;
    let (started, clock) = (SystemTime::now(), Instant::now());
    loop {
        let (id, result) = runner.run(line, attempt);
        let retry = result.is_err() && attempt <= retries && !stop.is_stopped();
        if !retry {
            return LineOutcome {
                line: line.number,
                id,
                attempts: attempt,
                result,
                timing: Some((started, clock.elapsed())),
                node: None,
            };
        }
        tracing::info!("line {} failed on attempt {attempt}; retrying", line.number);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn params_lines_keep_their_numbers_and_bad_lines_are_named() {
        let lines = read_lines("{\"a\": 1}\n\n{\"a\": 2}\n").unwrap();
        assert_eq!(lines.iter().map(|l| l.number).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(lines[1].params, "{\"a\": 2}");
        assert_eq!(
            read_lines("{}\n[1]\n"),
            Err(BatchError::NotAnObject {
                line: 2,
                reason: "found an array".into()
            })
        );
        assert!(matches!(
            read_lines("{}\n{oops\n"),
            Err(BatchError::NotAnObject { line: 2, .. })
        ));
        assert_eq!(read_lines("\n \n"), Err(BatchError::Empty));
    }

    /// Fails the first attempt of the lines it is told to, and counts how
    /// many runs are in flight at once.
    struct Flaky {
        fail_first: Vec<usize>,
        always_fail: Vec<usize>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
        attempts: Mutex<BTreeMap<usize, u32>>,
    }

    impl LineRunner for Flaky {
        fn run(&self, line: &BatchLine, attempt: u32) -> (String, Result<Value, ActionFailure>) {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
            self.attempts.lock().unwrap().insert(line.number, attempt);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let fails =
                self.always_fail.contains(&line.number) || (attempt == 1 && self.fail_first.contains(&line.number));
            let id = format!("run-{}-{attempt}", line.number);
            if fails {
                (id, Err(ActionFailure::new(FailureKind::Failed, "on purpose")))
            } else {
                (id, Ok(json!({ "params": line.params })))
            }
        }
    }

    fn lines(n: usize) -> Vec<BatchLine> {
        (1..=n)
            .map(|number| BatchLine {
                number,
                params: format!("{{\"i\": {number}}}"),
            })
            .collect()
    }

    #[test]
    fn every_line_runs_within_the_limit_and_failures_are_retried() {
        let runner = Flaky {
            fail_first: vec![4],
            always_fail: vec![9],
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            attempts: Mutex::new(BTreeMap::new()),
        };
        let mut outcomes = Vec::new();
        let mut last_progress = BatchProgress::default();
        let options = BatchOptions {
            parallel: 3,
            retries: 2,
        };
        let end = run_batch(
            lines(12),
            &runner,
            options,
            &StopFlag::default(),
            |outcome, progress| {
                outcomes.push(outcome.to_json());
                last_progress = progress;
            },
        );
        assert_eq!(
            end,
            BatchProgress {
                done: 12,
                failed: 1,
                total: 12
            }
        );
        assert_eq!(last_progress, end);
        assert!(runner.most_in_flight.load(Ordering::SeqCst) <= 3);
        let by_line: BTreeMap<u64, &Value> = outcomes.iter().map(|o| (o["line"].as_u64().unwrap(), o)).collect();
        assert_eq!(by_line.len(), 12);
        assert_eq!(by_line[&4]["status"], "succeeded");
        assert_eq!(by_line[&4]["attempts"], 2);
        assert_eq!(by_line[&4]["submission_id"], "run-4-2");
        assert_eq!(by_line[&9]["status"], "failed");
        assert_eq!(by_line[&9]["attempts"], 3);
        assert_eq!(by_line[&9]["error"]["message"], "on purpose");
        assert_eq!(by_line[&1]["result"]["params"], "{\"i\": 1}");
        let elapsed = by_line[&4]["elapsed"].as_f64().unwrap();
        assert!(elapsed >= 0.01, "two attempts of 5 ms: {elapsed}");
        assert!(by_line[&4]["started_at"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_stopped_batch_skips_the_lines_not_started() {
        let runner = Flaky {
            fail_first: vec![],
            always_fail: vec![],
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            attempts: Mutex::new(BTreeMap::new()),
        };
        let stop = StopFlag::default();
        stop.stop();
        let mut statuses = Vec::new();
        let end = run_batch(
            lines(3),
            &runner,
            BatchOptions {
                parallel: 2,
                retries: 1,
            },
            &stop,
            |o, _| statuses.push(o.to_json()["status"].clone()),
        );
        assert_eq!(end.failed, 3);
        assert!(statuses.iter().all(|s| s == "skipped"), "{statuses:?}");
        let skipped = skipped(&BatchLine {
            number: 1,
            params: "{}".into(),
        })
        .to_json();
        assert_eq!(
            (&skipped["started_at"], &skipped["elapsed"]),
            (&Value::Null, &Value::Null)
        );
        assert!(runner.attempts.lock().unwrap().is_empty());
    }
}
