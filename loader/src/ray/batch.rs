//! A batch on a Ray cluster: one job whose driver runs every params line
//! as a Ray task (`driver.py`, `batch` mode), followed here from the
//! direct line and the job's log ([`Feed`]). Each line's final outcome
//! comes once, as it finishes, in the same form as a local batch's; a line
//! the cluster lost (its worker or node died) runs again elsewhere, which
//! its `attempts` shows. Ctrl-C stops the job, and with it every task.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use plugin_api::{ActionFailure, FailureKind};

use super::api::JobStatus;
use super::feed::{Feed, Said};
use super::listen::Listener;
use super::record::Record;
use super::submit::{SubmitError, Submitter};
use crate::events::Level;
use crate::isolate::Interrupts;
use crate::run::batch::{skipped, BatchLine, BatchProgress, LineOutcome};

/// How often the follower looks at Ctrl-C while nothing comes.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// What a batch tells its caller besides outcomes.
pub trait BatchReport {
    /// A line's final outcome, with the batch's progress after it.
    fn outcome(&mut self, outcome: &LineOutcome, progress: BatchProgress);
    /// Something to show the user (a lost attempt, a notice of the driver).
    fn notice(&mut self, level: Level, text: &str);
}

/// Runs `lines` (whose params are in the submitter's package) as the Ray
/// job `batch_id`, reporting each outcome as it comes. Returns the
/// batch's progress at the end; lines without an outcome when the job
/// ended are failed (or skipped, when Ctrl-C stopped the batch before
/// they were handed to the cluster).
pub fn run_batch(
    submitter: &Submitter,
    batch_id: &str,
    listener: Option<Listener>,
    lines: &[BatchLine],
    interrupts: &Interrupts,
    report: &mut dyn BatchReport,
) -> Result<BatchProgress, SubmitError> {
    let id = submitter.submit(batch_id, listener.as_ref())?;
    let mut batch = Following {
        id: &id,
        by_number: lines.iter().map(|l| (l.number, l)).collect(),
        started: BTreeMap::new(),
        done: BTreeSet::new(),
        progress: BatchProgress {
            total: lines.len(),
            ..BatchProgress::default()
        },
        report,
    };
    let mut feed = Feed::start(&submitter.api, &id, listener);
    let mut stopped = false;
    let mut fatal: Option<String> = None;
    let ended = loop {
        if batch.done.len() == batch.by_number.len() {
            break None;
        }
        match feed.next(LOOK_EVERY, Record::parse) {
            Said::Item(record) => {
                if record.kind == "fatal" {
                    fatal = Some(record.text("message").to_owned());
                }
                batch.take(&record);
            }
            Said::Other(line) => tracing::info!("ray job {id}: {line}"),
            Said::Quiet => {}
            // Stopped by the loader (Ctrl-C) or by `jobs stop`: its lines
            // were cancelled, or never started.
            Said::JobEnded(info) if info.status == JobStatus::Stopped => {
                stopped = true;
                break None;
            }
            Said::JobEnded(info) => {
                let said = info.message.as_deref().map(str::trim).filter(|m| !m.is_empty());
                let status = match said {
                    Some(message) => format!("{}: {message}", info.status.as_str()),
                    None => info.status.as_str().to_owned(),
                };
                break Some(format!(
                    "the Ray job {id} ended ({status}) before this line had an outcome"
                ));
            }
            Said::Lost(e) => {
                break Some(format!(
                    "lost track of the Ray job {id} ({e}) before this line had an outcome"
                ))
            }
        }
        if interrupts.count() > 0 && !stopped {
            stopped = true;
            if let Err(e) = submitter.api.stop(&id) {
                break Some(format!("cannot stop the Ray job {id} ({e}); this line had no outcome"));
            }
        }
    };
    let why = fatal
        .map(|message| format!("the Ray job {id} could not run this line: {message}"))
        .or(ended);
    batch.conclude(why.as_deref(), stopped);
    Ok(batch.progress)
}

/// A batch being followed.
struct Following<'a> {
    id: &'a str,
    by_number: BTreeMap<usize, &'a BatchLine>,
    /// The last attempt of each line handed to the cluster.
    started: BTreeMap<usize, u32>,
    done: BTreeSet<usize>,
    progress: BatchProgress,
    report: &'a mut dyn BatchReport,
}

impl Following<'_> {
    fn take(&mut self, record: &Record) {
        let line = record.number("line").and_then(|n| usize::try_from(n).ok());
        match (record.kind.as_str(), line) {
            ("started", Some(line)) => {
                let attempt = record
                    .number("attempt")
                    .and_then(|a| u32::try_from(a).ok())
                    .unwrap_or(1);
                self.started.insert(line, attempt);
            }
            ("outcome", Some(line)) if self.by_number.contains_key(&line) => {
                if let Some(outcome) = outcome_of(record, line) {
                    self.finish(outcome);
                }
            }
            ("lost", Some(line)) => {
                let text = format!(
                    "line {line}: attempt {} was lost with its Ray worker or node ({}); it runs again",
                    record.number("attempt").unwrap_or(1),
                    record.text("message")
                );
                self.report.notice(Level::Warning, &text);
            }
            ("notice", _) => {
                let level = serde_json::from_value(record.fields["level"].clone()).unwrap_or(Level::Warning);
                self.report.notice(level, &format!("ray: {}", record.text("message")));
            }
            _ => {}
        }
    }

    /// Reports a line's outcome, once.
    fn finish(&mut self, outcome: LineOutcome) {
        if !self.done.insert(outcome.line) {
            return;
        }
        self.progress.done += 1;
        if outcome.result.is_err() {
            self.progress.failed += 1;
        }
        self.report.outcome(&outcome, self.progress);
    }

    /// Gives every line still without an outcome one: failed for `why`, or
    /// (when the loader stopped the batch) cancelled if it was handed to the
    /// cluster and skipped if not.
    fn conclude(&mut self, why: Option<&str>, stopped: bool) {
        let left: Vec<usize> = self
            .by_number
            .keys()
            .filter(|n| !self.done.contains(n))
            .copied()
            .collect();
        for number in left {
            let line = self.by_number[&number];
            let attempts = self.started.get(&number).copied().unwrap_or(0);
            let outcome = match (why, stopped, attempts) {
                (None, true, 0) => skipped(line),
                (None, true, _) => failed(
                    line,
                    attempts,
                    self.id,
                    FailureKind::Cancelled,
                    "interrupted: the batch was stopped",
                ),
                (Some(why), _, _) => failed(line, attempts, self.id, FailureKind::Failed, why),
                (None, false, _) => failed(
                    line,
                    attempts,
                    self.id,
                    FailureKind::Failed,
                    "the batch ended without its outcome",
                ),
            };
            self.finish(outcome);
        }
    }
}

fn failed(line: &BatchLine, attempts: u32, batch: &str, kind: FailureKind, message: &str) -> LineOutcome {
    LineOutcome {
        line: line.number,
        id: if attempts == 0 {
            String::new()
        } else {
            format!("{batch}-{}-{attempts}", line.number)
        },
        attempts,
        result: Err(ActionFailure::new(kind, message)),
        timing: None,
        node: None,
    }
}

/// The outcome a driver's `outcome` record reports.
fn outcome_of(record: &Record, line: usize) -> Option<LineOutcome> {
    let fields = &record.fields;
    let result = match fields["status"].as_str()? {
        "succeeded" => Ok(fields["result"].clone()),
        _ => {
            let error = &fields["error"];
            let kind = serde_json::from_value(error["kind"].clone()).unwrap_or(FailureKind::Failed);
            let message = error["message"].as_str().unwrap_or("the action failed");
            Err(ActionFailure::new(kind, message).with_details(error["details"].clone()))
        }
    };
    Some(LineOutcome {
        line,
        id: record.text("submission_id").to_owned(),
        attempts: record
            .number("attempts")
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(1),
        result,
        // As the cluster's loader timed the line, when it says.
        timing: fields["started_at"]
            .as_str()
            .and_then(crate::events::time::parse_rfc3339)
            .zip(
                fields["elapsed"]
                    .as_f64()
                    .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok()),
            ),
        node: fields["node"].as_str().map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    struct Collected(Vec<LineOutcome>, Vec<String>);

    impl BatchReport for Collected {
        fn outcome(&mut self, outcome: &LineOutcome, _: BatchProgress) {
            self.0.push(outcome.clone());
        }
        fn notice(&mut self, _: Level, text: &str) {
            self.1.push(text.to_owned());
        }
    }

    fn lines(n: usize) -> Vec<BatchLine> {
        (1..=n)
            .map(|number| BatchLine {
                number,
                params: "{}".into(),
            })
            .collect()
    }

    fn record(text: &str) -> Record {
        Record::parse(text).unwrap()
    }

    #[test]
    fn outcomes_come_once_lost_attempts_are_told_and_the_rest_concluded() {
        let lines = lines(4);
        let mut report = Collected(Vec::new(), Vec::new());
        let mut batch = Following {
            id: "b",
            by_number: lines.iter().map(|l| (l.number, l)).collect(),
            started: BTreeMap::new(),
            done: BTreeSet::new(),
            progress: BatchProgress {
                total: 4,
                ..BatchProgress::default()
            },
            report: &mut report,
        };
        for text in [
            r#"{"loader_ray":"started","line":1,"attempt":1}"#,
            r#"{"loader_ray":"started","line":2,"attempt":1}"#,
            r#"{"loader_ray":"lost","line":2,"attempt":1,"message":"NodeDiedError: gone"}"#,
            r#"{"loader_ray":"started","line":2,"attempt":2}"#,
            r#"{"loader_ray":"outcome","line":2,"attempts":2,"submission_id":"b-2-2","node":"n1","status":"succeeded","result":{"square":4},"error":null}"#,
            r#"{"loader_ray":"outcome","line":2,"attempts":2,"submission_id":"b-2-2","node":"n1","status":"succeeded","result":{"square":4},"error":null}"#,
            r#"{"loader_ray":"outcome","line":1,"attempts":1,"submission_id":"b-1-1","node":"n0","status":"failed","result":null,"error":{"message":"no","kind":"timed_out","details":null}}"#,
            r#"{"loader_ray":"started","line":3,"attempt":1}"#,
        ] {
            batch.take(&record(text));
        }
        batch.conclude(None, true);
        let progress = batch.progress;
        assert_eq!(
            progress,
            BatchProgress {
                done: 4,
                failed: 3,
                total: 4
            }
        );
        let json: Vec<Value> = report.0.iter().map(LineOutcome::to_json).collect();
        assert_eq!(json.len(), 4, "{json:?}");
        assert_eq!(json[0]["line"], 2);
        assert_eq!(
            (json[0]["attempts"].clone(), json[0]["node"].clone()),
            (2.into(), "n1".into())
        );
        assert_eq!(json[1]["error"]["kind"], "timed_out");
        assert_eq!(
            (json[2]["line"].clone(), json[2]["status"].clone()),
            (3.into(), "failed".into())
        );
        assert_eq!(json[2]["error"]["kind"], "cancelled");
        assert_eq!(
            (json[3]["line"].clone(), json[3]["status"].clone()),
            (4.into(), "skipped".into())
        );
        assert!(
            report.1[0].contains("line 2: attempt 1 was lost") && report.1[0].contains("runs again"),
            "{:?}",
            report.1
        );
    }
}
