//! What a run looks like to the backend, in the Synapse original's shapes:
//! log entries for `POST logs/` and the job's `progress_record` /
//! `metrics_record` for `PATCH jobs/{id}/`.
//!
//! - A log entry is `{event, data, datetime, job, level, step?, file?}`;
//!   user events, messages and developer events become log entries,
//!   progress and metrics do not (they are snapshots).
//! - `progress_record` is `{record: {steps: {step: {percent,
//!   time_remaining}}}, current_progress: {overall, step, percent,
//!   time_remaining}}` (progress without a step sets `percent` and
//!   `time_remaining` on `record` itself); every step seen so far weighs the
//!   same, finished steps count fully, and `overall` never decreases.
//! - `metrics_record` is `{record: {steps: {step: {metrics}}}}`, each
//!   step's metrics merged from every `set_metrics` call so far (later keys
//!   win, shallowly), as the original sends them: a `metrics` event carries
//!   only its call's keys, so taking it as the step's metrics would drop
//!   the keys earlier calls set until the run's end.

use serde_json::{json, Map, Value};

use crate::events::time::Rfc3339;
use crate::events::{Event, EventKind};

/// The log entry for `event`, or `None` for kinds that are not logs and
/// for the run's `run_start` record (the backend has the job's params).
pub fn log_entry(job_id: &str, event: &Event) -> Option<Value> {
    if !matches!(
        event.kind,
        EventKind::Event | EventKind::Message | EventKind::DevEvent | EventKind::Output
    ) || (event.kind == EventKind::Event && event.event == crate::run::runner::RUN_START_EVENT)
    {
        return None;
    }
    let mut entry = Map::new();
    entry.insert("event".into(), Value::String(event.event.clone()));
    entry.insert("data".into(), event.data.clone());
    entry.insert(
        "datetime".into(),
        Value::String(Rfc3339::new(event.time).as_str().to_owned()),
    );
    entry.insert("job".into(), Value::String(job_id.to_owned()));
    entry.insert("level".into(), Value::String(event.level.as_str().to_owned()));
    if let Some(step) = &event.step {
        entry.insert("step".into(), Value::String(step.clone()));
    }
    if let Some(file) = &event.file {
        entry.insert("file".into(), Value::String(file.clone()));
    }
    Some(Value::Object(entry))
}

/// The job's progress and metrics so far.
#[derive(Debug, Default)]
pub struct JobRecord {
    record: Map<String, Value>,
    step_order: Vec<String>,
    current_step: Option<String>,
    max_overall: f64,
    metrics: Map<String, Value>,
    has_progress: bool,
}

impl JobRecord {
    /// Takes in a progress or metrics event; returns whether the snapshot
    /// changed.
    pub fn observe(&mut self, event: &Event) -> bool {
        match event.kind {
            EventKind::Progress => {
                self.progress(event);
                true
            }
            EventKind::Metrics => {
                let step = event.step.clone().unwrap_or_default();
                let merged = self.metrics.entry(step).or_insert_with(|| Value::Object(Map::new()));
                match (merged, &event.data) {
                    (Value::Object(merged), Value::Object(keys)) => {
                        merged.extend(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    (merged, other) => *merged = other.clone(),
                }
                true
            }
            _ => false,
        }
    }

    fn progress(&mut self, event: &Event) {
        self.has_progress = true;
        let fields = json!({
            "percent": event.data.get("percent").cloned().unwrap_or(Value::Null),
            "time_remaining": event.data.get("eta").cloned().unwrap_or(Value::Null),
        });
        match &event.step {
            Some(step) => {
                if !self.step_order.contains(step) {
                    self.step_order.push(step.clone());
                }
                self.current_step = Some(step.clone());
                let steps = self.record.entry("steps").or_insert_with(|| Value::Object(Map::new()));
                if let Some(steps) = steps.as_object_mut() {
                    steps.insert(step.clone(), fields);
                }
            }
            None => {
                if let Value::Object(fields) = fields {
                    self.record.extend(fields);
                }
            }
        }
    }

    fn step_percent(&self, step: &str) -> f64 {
        self.record
            .get("steps")
            .and_then(|s| s.get(step))
            .and_then(|s| s.get("percent"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    }

    fn current_progress(&mut self) -> Value {
        let Some(current) = self.current_step.clone() else {
            let percent = self.record.get("percent").and_then(Value::as_f64).unwrap_or(0.0);
            self.max_overall = self.max_overall.max(percent);
            return json!({ "overall": round2(self.max_overall) });
        };
        let weight = 100.0 / self.step_order.len() as f64;
        let index = self.step_order.iter().position(|s| *s == current).unwrap_or(0);
        let overall = weight * index as f64 + weight * self.step_percent(&current) / 100.0;
        self.max_overall = self.max_overall.max(overall.min(100.0));
        let step = &self.record["steps"][&current];
        json!({
            "overall": round2(self.max_overall),
            "step": current,
            "percent": step["percent"],
            "time_remaining": step["time_remaining"],
        })
    }

    /// The body of a `PATCH jobs/{id}/` carrying the current snapshot: only
    /// the records that have something.
    pub fn snapshot(&mut self) -> Value {
        let mut body = Map::new();
        if self.has_progress {
            let current = self.current_progress();
            body.insert(
                "progress_record".into(),
                json!({ "record": self.record, "current_progress": current }),
            );
        }
        if !self.metrics.is_empty() {
            body.insert("metrics_record".into(), json!({ "record": { "steps": self.metrics } }));
        }
        Value::Object(body)
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Level;

    fn progress(step: &str, current: u64, total: u64) -> Event {
        let percent = round2(current as f64 / total as f64 * 100.0);
        Event::new(
            EventKind::Progress,
            "progress",
            Level::Info,
            json!({"current": current, "total": total, "percent": percent, "eta": 1.5}),
        )
        .with_step(step)
    }

    #[test]
    fn progress_and_metrics_take_the_originals_shape() {
        let mut record = JobRecord::default();
        assert!(record.observe(&progress("load", 1, 1)));
        assert!(record.observe(&progress("train", 1, 4)));
        assert!(record.observe(&Event::metrics("train", json!({"loss": 0.5}))));
        assert!(!record.observe(&Event::message(Level::Info, "hi")));
        let snapshot = record.snapshot();
        assert_eq!(
            snapshot["progress_record"]["record"]["steps"]["train"]["percent"],
            json!(25.0)
        );
        assert_eq!(
            snapshot["progress_record"]["current_progress"],
            json!({"overall": 62.5, "step": "train", "percent": 25.0, "time_remaining": 1.5})
        );
        assert_eq!(
            snapshot["metrics_record"],
            json!({"record": {"steps": {"train": {"loss": 0.5}}}})
        );
    }

    #[test]
    fn each_snapshot_carries_the_steps_merged_metrics() {
        let mut record = JobRecord::default();
        record.observe(&Event::metrics("train", json!({"loss": 1.0, "epoch": 1})));
        record.observe(&Event::metrics("eval", json!({"f1": 0.5})));
        record.observe(&Event::metrics("train", json!({"loss": 0.5})));
        assert_eq!(
            record.snapshot()["metrics_record"],
            json!({"record": {"steps": {"train": {"loss": 0.5, "epoch": 1}, "eval": {"f1": 0.5}}}})
        );
        record.observe(&Event::metrics("train", json!({"epoch": 2, "accuracy": 0.9})));
        assert_eq!(
            record.snapshot()["metrics_record"]["record"]["steps"]["train"],
            json!({"loss": 0.5, "epoch": 2, "accuracy": 0.9})
        );
    }

    #[test]
    fn overall_progress_never_decreases() {
        let mut record = JobRecord::default();
        record.observe(&progress("a", 1, 1));
        let first = record.snapshot()["progress_record"]["current_progress"]["overall"].clone();
        record.observe(&progress("b", 0, 10));
        let second = record.snapshot()["progress_record"]["current_progress"]["overall"].clone();
        assert_eq!(first, json!(100.0));
        assert_eq!(second, json!(100.0));
    }

    #[test]
    fn only_logs_become_log_entries() {
        let event = Event::user("saved", json!({"n": 1}))
            .with_file("/m.pt")
            .with_step("export");
        let entry = log_entry("J1", &event).unwrap();
        assert_eq!(entry["event"], "saved");
        assert_eq!(entry["job"], "J1");
        assert_eq!(entry["file"], "/m.pt");
        assert_eq!(entry["step"], "export");
        assert_eq!(entry["level"], "info");
        assert!(entry["datetime"].as_str().unwrap().ends_with('Z'));
        assert!(log_entry("J1", &progress("a", 1, 2)).is_none());
        let run_start = Event::user(crate::run::runner::RUN_START_EVENT, json!({"params": {}}));
        assert!(log_entry("J1", &run_start).is_none());
    }
}
