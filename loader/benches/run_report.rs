//! What seeing a run costs, side by side in one criterion run.
//!
//! - `metrics_event`: one `set_metrics` call's event (`loss` and `accuracy`
//!   of step `train`, as a long training run sends them) through the
//!   buffered terminal sink writing nowhere, which holds or prints its line
//!   and keeps its history for the end-of-run summary, against keeping that
//!   history alone (`summary_record`): their ratio is the summary's share of
//!   a metrics event. `summary_render` draws the summary of two keys set a
//!   million times each, once at the end of a run.
//! - `report`: reading a run's events file (`read_trace`, per event, of a
//!   100,000-event run written by the loader's own JSON-lines sink) and
//!   rendering its page.
//!
//! Run with `cargo bench -p loader --bench run_report`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use loader::events::progress::{ProgressStatus, StepProgress};
use loader::events::terminal::summary::MetricsHistory;
use loader::events::terminal::TERMINAL_FLUSH_DELAY;
use loader::events::{Event, EventSink, Flush, JsonlSink, Level, RunInfo, TerminalOptions, TerminalSink};
use loader::report::{read_trace, Input};
use serde_json::{json, Map, Value};

fn metrics_keys(update: u64) -> Map<String, Value> {
    let loss = 1.0 / (1.0 + update as f64 / 1000.0);
    match json!({"loss": loss, "accuracy": 1.0 - loss / 2.0}) {
        Value::Object(keys) => keys,
        _ => unreachable!(),
    }
}

fn metrics_event(c: &mut Criterion) {
    let run = RunInfo::new("bench", "train");
    // Built beforehand, so that only the sink's and the history's own work
    // is measured.
    let keys: Vec<Map<String, Value>> = (0..4096).map(metrics_keys).collect();
    let events: Vec<Event> = keys
        .iter()
        .map(|k| Event::metrics("train", Value::Object(k.clone())))
        .collect();
    let mut group = c.benchmark_group("metrics_event");
    let sink = TerminalSink::buffered(std::io::sink(), TerminalOptions::plain(false), TERMINAL_FLUSH_DELAY);
    sink.start(&run);
    let mut i = 0;
    group.bench_function("terminal_sink", |b| {
        b.iter(|| {
            i += 1;
            sink.emit(&run, black_box(&events[i % events.len()]))
        })
    });
    sink.finish(&run);
    let mut history = MetricsHistory::default();
    let mut i = 0;
    group.bench_function("summary_record", |b| {
        b.iter(|| {
            i += 1;
            history.record(Some("train"), black_box(&keys[i % keys.len()]))
        })
    });
    let mut long = MetricsHistory::default();
    for update in 0..1_000_000 {
        long.record(Some("train"), &metrics_keys(update));
    }
    group.bench_function("summary_render", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            long.render(
                &mut out,
                TerminalOptions {
                    tty: true,
                    color: true,
                    verbose: false,
                },
            );
            out
        })
    });
    group.finish();
}

/// The events file of a run of `updates` training updates, as the loader
/// writes it: progress and metrics per update, a message every 1,000.
fn events_file(updates: u64) -> Vec<u8> {
    let run = RunInfo::new("bench", "train");
    let sink = JsonlSink::new(Vec::new(), Flush::Buffered);
    sink.start(&run);
    sink.emit(
        &run,
        &Event::user("run_start", json!({"params": {"updates": updates}})).with_level(Level::Debug),
    );
    for update in 1..=updates {
        if update % 100 == 0 {
            let progress = StepProgress {
                current: update,
                total: updates,
                percent: update as f64 * 100.0 / updates as f64,
                elapsed: Duration::from_millis(update),
                eta: None,
                status: ProgressStatus::Running,
            };
            sink.emit(&run, &progress.to_event(Some("train")));
        }
        sink.emit(&run, &Event::metrics("train", Value::Object(metrics_keys(update))));
        if update % 1000 == 0 {
            sink.emit(&run, &Event::message(Level::Info, format!("update {update}")));
        }
    }
    sink.emit(&run, &Event::result(json!({"updates": updates})));
    sink.finish(&run);
    sink.into_inner().expect("writing to memory cannot fail")
}

fn report(c: &mut Criterion) {
    let updates = 100_000;
    let file = events_file(updates);
    let events = file.iter().filter(|b| **b == b'\n').count() as u64;
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.throughput(Throughput::Elements(events));
    group.bench_function("read_trace", |b| {
        b.iter(|| read_trace(std::io::Cursor::new(black_box(&file))).unwrap())
    });
    let input = Input::Run(Box::new(read_trace(std::io::Cursor::new(&file)).unwrap()));
    group.bench_function("render_page", |b| b.iter(|| input.render("bench.jsonl")));
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    metrics_event(&mut c);
    report(&mut c);
    c.final_summary();
}
