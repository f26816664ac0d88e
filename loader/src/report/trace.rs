//! A run as a report shows it, read from its events file in one pass:
//! what was run with which params, when, how it ended, each step's
//! progress over time, each step's metrics over their updates, and a
//! bounded selection of its logs.
//!
//! Reading keeps everything a chart needs (every progress and numeric
//! metrics point, thinned only when drawn) and at most [`MAX_LOG_ROWS`] log
//! entries: the first, the last, and the warnings and errors between, with
//! the count of each level over the whole run. A line that is not an event
//! (a cut-off last line, text that is not JSON) is counted and named, not
//! fatal; reading stops at a NUL byte, where an in-process run's file that
//! was never cut ends.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::BufRead;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::events::Level;
use crate::run::runner::RUN_START_EVENT;

/// Log entries kept from the start of a run.
const HEAD_ROWS: usize = 1000;
/// Log entries kept from the end of a run.
const TAIL_ROWS: usize = 1000;
/// Warnings and worse kept from between the head and the tail.
const NOTABLE_ROWS: usize = 2000;
/// The most log entries a report lists.
pub const MAX_LOG_ROWS: usize = HEAD_ROWS + TAIL_ROWS + NOTABLE_ROWS;
/// A log entry's text is cut to this many characters.
const MAX_TEXT_CHARS: usize = 500;
/// Unreadable lines named at most (all are counted).
const MAX_NAMED_PROBLEMS: usize = 5;

/// One line of the events file, borrowing from it where it can.
#[derive(Deserialize)]
struct Line<'a> {
    timestamp: Option<f64>,
    #[serde(borrow)]
    job_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    plugin: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    step: Option<Cow<'a, str>>,
    #[serde(borrow)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow)]
    file: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    dropped_late_calls: Option<u64>,
}

#[derive(Deserialize)]
struct ProgressData<'a> {
    percent: Option<f64>,
    current: Option<u64>,
    total: Option<u64>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
}

/// What the run was asked to do (its `run_start` event).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStart {
    pub params: Option<Value>,
    /// The params' size when they were too long to record.
    pub params_bytes: Option<u64>,
    pub plugin_version: Option<String>,
    pub plugin_api: Option<String>,
    pub loader_version: Option<String>,
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded {
        result: Value,
    },
    Failed {
        message: String,
        kind: String,
        details: Value,
    },
    /// The file has no `result` or `error` event: the run was still going,
    /// or the loader was killed.
    Unfinished,
}

/// One step's progress: `(seconds since the run's first event, percent)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressSeries {
    pub step: Option<String>,
    pub points: Vec<(f64, f64)>,
    /// The last `current/total` and status.
    pub last: Option<(u64, u64, String)>,
}

/// One numeric metric of a step: `(update number of the step, value)`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeries {
    pub key: String,
    pub points: Vec<(f64, f64)>,
}

/// One step's metrics: the numeric ones as series, and every key's final
/// value (later keys win, as the step's merged metrics do).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepMetrics {
    pub step: Option<String>,
    /// `set_metrics` calls of the step.
    pub updates: u64,
    pub series: Vec<MetricSeries>,
    pub last: Map<String, Value>,
    pub(super) index: HashMap<String, usize>,
}

/// A workflow step's timing, from its `step_end` event.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTiming {
    pub step: String,
    pub elapsed: Option<f64>,
    pub success: Option<bool>,
    pub skipped: bool,
}

/// One log entry as the report lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    /// The entry's place among all events (0-based), to keep rows in order.
    pub seq: u64,
    /// Seconds since the run's first event.
    pub at: f64,
    pub level: Level,
    pub kind: String,
    pub event: String,
    pub step: Option<String>,
    pub file: Option<String>,
    /// The message, or the data as compact JSON, cut to 500 characters.
    pub text: String,
}

/// A line that could not be read as an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub line: u64,
    pub reason: String,
}

/// Everything a report shows about a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTrace {
    pub plugin: Option<String>,
    pub action: Option<String>,
    pub job_id: Option<String>,
    pub start: Option<RunStart>,
    /// Unix seconds of the first and last event.
    pub first_time: Option<f64>,
    pub last_time: Option<f64>,
    pub outcome: Option<Outcome>,
    /// `result` and `error` events seen (more than one: several runs).
    pub outcomes_seen: u64,
    pub dropped_late_calls: Option<u64>,
    pub progress: Vec<ProgressSeries>,
    pub metrics: Vec<StepMetrics>,
    pub steps: Vec<StepTiming>,
    pub logs: Vec<LogRow>,
    /// Log entries per level over the whole run, in [`Level::ALL`] order.
    pub log_counts: [u64; 7],
    /// Log entries not listed.
    pub logs_omitted: u64,
    pub events: u64,
    pub unreadable_lines: u64,
    pub unreadable: Vec<Unreadable>,
}

impl RunTrace {
    /// The run's outcome, [`Outcome::Unfinished`] when the file has none.
    pub fn outcome(&self) -> &Outcome {
        self.outcome.as_ref().unwrap_or(&Outcome::Unfinished)
    }

    /// Seconds from the first event to the last.
    pub fn duration(&self) -> Option<f64> {
        Some(self.last_time? - self.first_time?)
    }
}

/// Why an events file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    #[error("it holds no events")]
    NoEvents,
}

/// The log selection while reading: the head, a ring of the latest, and the
/// notable entries that fell out of the ring.
#[derive(Default)]
struct LogKeeper {
    head: Vec<LogRow>,
    tail: VecDeque<LogRow>,
    notable: Vec<LogRow>,
    counts: [u64; 7],
    total: u64,
}

impl LogKeeper {
    fn keep(&mut self, row: LogRow) {
        self.total += 1;
        self.counts[level_index(row.level)] += 1;
        if self.head.len() < HEAD_ROWS {
            self.head.push(row);
            return;
        }
        if self.tail.len() == TAIL_ROWS {
            if let Some(old) = self.tail.pop_front() {
                if old.level >= Level::Warning && self.notable.len() < NOTABLE_ROWS {
                    self.notable.push(old);
                }
            }
        }
        self.tail.push_back(row);
    }

    fn into_rows(self) -> (Vec<LogRow>, [u64; 7], u64) {
        let mut rows = self.head;
        rows.extend(self.notable);
        rows.extend(self.tail);
        rows.sort_by_key(|r| r.seq);
        let omitted = self.total - rows.len() as u64;
        (rows, self.counts, omitted)
    }
}

fn level_index(level: Level) -> usize {
    Level::ALL.iter().position(|l| *l == level).unwrap_or(1)
}

/// Reads a run from an events stream. Fails only when nothing in it is an
/// event.
pub fn read_trace(input: impl BufRead) -> Result<RunTrace, TraceError> {
    let mut reader = TraceReader::default();
    let mut input = input;
    let mut line = Vec::with_capacity(1024);
    let mut number = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let end = memchr::memchr(0, &line);
        let text = &line[..end.unwrap_or(line.len())];
        if !text.iter().all(u8::is_ascii_whitespace) {
            reader.line(number, text);
        }
        if end.is_some() {
            break;
        }
    }
    reader.finish()
}

#[derive(Default)]
struct TraceReader {
    trace: RunTrace,
    logs: LogKeeper,
    progress_index: HashMap<Option<String>, usize>,
    metrics_index: HashMap<Option<String>, usize>,
}

impl TraceReader {
    fn line(&mut self, number: u64, text: &[u8]) {
        match serde_json::from_slice::<Line>(text) {
            Ok(line) => self.event(line),
            Err(e) => {
                self.trace.unreadable_lines += 1;
                if self.trace.unreadable.len() < MAX_NAMED_PROBLEMS {
                    self.trace.unreadable.push(Unreadable {
                        line: number,
                        reason: format!("not an event: {e}"),
                    });
                }
            }
        }
    }

    fn event(&mut self, line: Line) {
        let trace = &mut self.trace;
        let seq = trace.events;
        trace.events += 1;
        if let Some(t) = line.timestamp.filter(|t| t.is_finite()) {
            trace.first_time.get_or_insert(t);
            trace.last_time = Some(trace.last_time.map_or(t, |last| last.max(t)));
        }
        let at = match (line.timestamp, trace.first_time) {
            (Some(t), Some(first)) => (t - first).max(0.0),
            _ => 0.0,
        };
        fill(&mut trace.plugin, &line.plugin);
        fill(&mut trace.action, &line.action);
        fill(&mut trace.job_id, &line.job_id);
        let step = line.step.as_deref().map(str::to_owned);
        let data = line.data.map(RawValue::get).unwrap_or("null");
        match line.kind.as_ref() {
            "progress" => self.progress(step, at, data),
            "metrics" if line.event == "metrics" => self.metrics(step, data),
            "metrics" => {}
            "result" => {
                trace.outcomes_seen += 1;
                trace.dropped_late_calls = line.dropped_late_calls.or(trace.dropped_late_calls);
                let result = serde_json::from_str(data).unwrap_or(Value::Null);
                trace.outcome = Some(Outcome::Succeeded { result });
            }
            "error" => {
                trace.outcomes_seen += 1;
                trace.dropped_late_calls = line.dropped_late_calls.or(trace.dropped_late_calls);
                let data: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                let text = |key: &str| data.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
                trace.outcome = Some(Outcome::Failed {
                    message: text("message"),
                    kind: text("kind"),
                    details: data.get("details").cloned().unwrap_or(Value::Null),
                });
            }
            "event" if line.event == RUN_START_EVENT => self.run_start(data),
            kind => {
                if kind == "event" && line.event == "step_end" {
                    self.step_end(step.clone(), data);
                }
                let level = line
                    .level
                    .as_deref()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(Level::Info);
                self.logs.keep(LogRow {
                    seq,
                    at,
                    level,
                    kind: kind.to_owned(),
                    event: line.event.into_owned(),
                    step,
                    file: line.file.map(Cow::into_owned),
                    text: log_text(kind, data),
                });
            }
        }
    }

    fn run_start(&mut self, data: &str) {
        let data: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
        self.trace.start = Some(RunStart {
            params: data.get("params").filter(|p| !p.is_null()).cloned(),
            params_bytes: data.get("params_bytes").and_then(Value::as_u64),
            plugin_version: text("plugin_version"),
            plugin_api: text("plugin_api"),
            loader_version: text("loader_version"),
        });
    }

    fn progress(&mut self, step: Option<String>, at: f64, data: &str) {
        let Ok(progress) = serde_json::from_str::<ProgressData>(data) else {
            return;
        };
        let percent = progress.percent.or_else(|| match (progress.current, progress.total) {
            (Some(c), Some(t)) if t > 0 => Some(c as f64 * 100.0 / t as f64),
            _ => None,
        });
        let Some(percent) = percent.filter(|p| p.is_finite()) else {
            return;
        };
        let slot = *self.progress_index.entry(step.clone()).or_insert_with(|| {
            self.trace.progress.push(ProgressSeries {
                step,
                points: Vec::new(),
                last: None,
            });
            self.trace.progress.len() - 1
        });
        let series = &mut self.trace.progress[slot];
        series.points.push((at, percent));
        if let (Some(current), Some(total)) = (progress.current, progress.total) {
            let status = progress.status.as_deref().unwrap_or("running").to_owned();
            series.last = Some((current, total, status));
        }
    }

    fn metrics(&mut self, step: Option<String>, data: &str) {
        let Ok(keys) = serde_json::from_str::<Map<String, Value>>(data) else {
            return;
        };
        let slot = *self.metrics_index.entry(step.clone()).or_insert_with(|| {
            self.trace.metrics.push(StepMetrics {
                step,
                ..StepMetrics::default()
            });
            self.trace.metrics.len() - 1
        });
        let metrics = &mut self.trace.metrics[slot];
        metrics.updates += 1;
        let update = metrics.updates as f64;
        for (key, value) in keys {
            if let Some(number) = value.as_f64().filter(|n| n.is_finite()) {
                let i = match metrics.index.get(&key) {
                    Some(&i) => i,
                    None => {
                        metrics.index.insert(key.clone(), metrics.series.len());
                        metrics.series.push(MetricSeries {
                            key: key.clone(),
                            points: Vec::new(),
                        });
                        metrics.series.len() - 1
                    }
                };
                metrics.series[i].points.push((update, number));
            }
            metrics.last.insert(key, value);
        }
    }

    fn step_end(&mut self, step: Option<String>, data: &str) {
        let (Some(step), Ok(data)) = (step, serde_json::from_str::<Value>(data)) else {
            return;
        };
        self.trace.steps.push(StepTiming {
            step,
            elapsed: data.get("elapsed").and_then(Value::as_f64),
            success: data.get("success").and_then(Value::as_bool),
            skipped: data.get("skipped").and_then(Value::as_bool).unwrap_or(false),
        });
    }

    fn finish(mut self) -> Result<RunTrace, TraceError> {
        if self.trace.events == 0 {
            return Err(TraceError::NoEvents);
        }
        let (rows, counts, omitted) = self.logs.into_rows();
        self.trace.logs = rows;
        self.trace.log_counts = counts;
        self.trace.logs_omitted = omitted;
        Ok(self.trace)
    }
}

fn fill(slot: &mut Option<String>, value: &Option<Cow<str>>) {
    if slot.is_none() {
        *slot = value.as_deref().map(str::to_owned);
    }
}

/// A log entry's text: a message's content, a dev event's or output's
/// message or text, otherwise the data as compact JSON; cut.
fn log_text(kind: &str, data: &str) -> String {
    let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let field = match kind {
        "message" => value.get("content"),
        "dev_event" => value.get("message"),
        "output" => value.get("text").or_else(|| value.get("message")),
        _ => None,
    };
    let mut text = match (field, kind) {
        (Some(Value::String(s)), "dev_event") => match value.get("data").filter(|d| !d.is_null()) {
            Some(extra) => format!("{s} {extra}"),
            None => s.clone(),
        },
        (Some(Value::String(s)), _) => s.clone(),
        (_, _) if value.is_null() || value.as_object().is_some_and(Map::is_empty) => String::new(),
        _ => value.to_string(),
    };
    if let Some((cut, _)) = text.char_indices().nth(MAX_TEXT_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(kind: &str, event: &str, step: Option<&str>, level: &str, t: f64, data: Value) -> String {
        json!({
            "time": "x", "timestamp": t, "job_id": "job-1", "plugin": "demo", "action": "train",
            "kind": kind, "event": event, "step": step, "level": level, "file": null, "data": data,
        })
        .to_string()
    }

    fn read(lines: &[String]) -> RunTrace {
        read_trace(std::io::Cursor::new(lines.join("\n"))).unwrap()
    }

    #[test]
    fn a_run_is_read_whole() {
        let lines = [
            line(
                "event",
                "run_start",
                None,
                "debug",
                100.0,
                json!({"params": {"epochs": 2}, "plugin_version": "0.3.0", "loader_version": "0.1.0", "plugin_api": "1.2.1"}),
            ),
            line(
                "message",
                "message",
                None,
                "info",
                100.1,
                json!({"content": "Training started"}),
            ),
            line(
                "progress",
                "progress",
                Some("train"),
                "info",
                100.5,
                json!({"current": 1, "total": 2, "percent": 50.0, "status": "running"}),
            ),
            line(
                "metrics",
                "metrics",
                Some("train"),
                "info",
                100.6,
                json!({"loss": 0.9, "epoch": 1, "note": "warm"}),
            ),
            line("metrics", "metrics", Some("train"), "info", 100.7, json!({"loss": 0.4})),
            line(
                "progress",
                "progress",
                Some("train"),
                "info",
                101.0,
                json!({"current": 2, "total": 2, "percent": 100.0, "status": "completed"}),
            ),
            line(
                "metrics",
                "metrics_summary",
                Some("train"),
                "info",
                101.0,
                json!({"loss": 0.4, "epoch": 1, "note": "warm"}),
            ),
            line("result", "result", None, "success", 101.5, json!({"ok": true})),
        ];
        let trace = read(&lines);
        assert_eq!(
            (trace.plugin.as_deref(), trace.action.as_deref()),
            (Some("demo"), Some("train"))
        );
        assert_eq!(trace.job_id.as_deref(), Some("job-1"));
        let start = trace.start.clone().unwrap();
        assert_eq!(start.params, Some(json!({"epochs": 2})));
        assert_eq!(start.plugin_version.as_deref(), Some("0.3.0"));
        assert_eq!(trace.duration(), Some(1.5));
        assert_eq!(
            trace.outcome(),
            &Outcome::Succeeded {
                result: json!({"ok": true})
            }
        );
        assert_eq!(trace.progress.len(), 1);
        assert_eq!(trace.progress[0].points, [(0.5, 50.0), (1.0, 100.0)]);
        assert_eq!(trace.progress[0].last, Some((2, 2, "completed".to_owned())));
        let train = &trace.metrics[0];
        assert_eq!(train.updates, 2, "the summary event is not an update");
        let loss = train.series.iter().find(|s| s.key == "loss").unwrap();
        assert_eq!(loss.points, [(1.0, 0.9), (2.0, 0.4)]);
        assert!(train.series.iter().all(|s| s.key != "note"), "text is not charted");
        assert_eq!(
            Value::Object(train.last.clone()),
            json!({"loss": 0.4, "epoch": 1, "note": "warm"})
        );
        assert_eq!(trace.logs.len(), 1, "run_start is not a log entry");
        assert_eq!(trace.logs[0].text, "Training started");
        assert_eq!(trace.events, 8);
    }

    #[test]
    fn a_failure_and_bad_lines_are_reported_and_a_nul_ends_the_file() {
        let mut text = [
            line(
                "message",
                "message",
                None,
                "warning",
                5.0,
                json!({"content": "careful"}),
            ),
            "{not json".to_owned(),
            line(
                "error",
                "error",
                None,
                "error",
                6.0,
                json!({"message": "boom", "kind": "panicked", "details": {"at": 3}}),
            ),
        ]
        .join("\n");
        text.push('\n');
        text.push_str("\0\0\0\0");
        let trace = read_trace(std::io::Cursor::new(text)).unwrap();
        assert_eq!(
            trace.outcome(),
            &Outcome::Failed {
                message: "boom".into(),
                kind: "panicked".into(),
                details: json!({"at": 3})
            }
        );
        assert_eq!(trace.unreadable_lines, 1);
        assert_eq!(trace.unreadable[0].line, 2);
        assert!(
            trace.unreadable[0].reason.starts_with("not an event"),
            "{:?}",
            trace.unreadable
        );
        assert_eq!(trace.events, 2);
    }

    #[test]
    fn an_empty_file_is_an_error() {
        assert!(matches!(
            read_trace(std::io::Cursor::new("\n\n")),
            Err(TraceError::NoEvents)
        ));
        assert!(matches!(
            read_trace(std::io::Cursor::new("junk\n")),
            Err(TraceError::NoEvents)
        ));
    }

    #[test]
    fn logs_keep_head_tail_and_warnings_with_every_count() {
        let mut lines = Vec::new();
        for i in 0..10_000u64 {
            let level = if i % 100 == 50 { "warning" } else { "info" };
            lines.push(line("event", "tick", None, level, i as f64, json!({"i": i})));
        }
        let trace = read(&lines);
        assert!(trace.logs.len() <= MAX_LOG_ROWS);
        assert_eq!(trace.logs.first().unwrap().text, "{\"i\":0}");
        assert_eq!(trace.logs.last().unwrap().text, "{\"i\":9999}");
        assert!(trace.logs.windows(2).all(|w| w[0].seq < w[1].seq));
        let warnings = trace.logs.iter().filter(|r| r.level == Level::Warning).count();
        assert_eq!(warnings, 100, "every warning is kept");
        assert_eq!(trace.log_counts[level_index(Level::Warning)], 100);
        assert_eq!(trace.log_counts[level_index(Level::Info)], 9_900);
        assert_eq!(trace.logs_omitted, 10_000 - trace.logs.len() as u64);
    }

    #[test]
    fn workflow_steps_are_timed() {
        let lines = [
            line(
                "event",
                "step_end",
                Some("load"),
                "info",
                1.0,
                json!({"elapsed": 0.5, "success": true, "skipped": false}),
            ),
            line(
                "event",
                "step_end",
                Some("fit"),
                "info",
                2.0,
                json!({"elapsed": 1.25, "success": false, "skipped": false}),
            ),
        ];
        let trace = read(&lines);
        assert_eq!(trace.steps.len(), 2);
        assert_eq!(trace.steps[1].elapsed, Some(1.25));
        assert_eq!(trace.steps[1].success, Some(false));
        assert_eq!(trace.logs.len(), 2, "step events are log entries too");
    }
}
