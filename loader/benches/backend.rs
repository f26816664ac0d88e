//! The cost of reporting a run to the backend, measured side by side with
//! the JSON-lines sink: one log event through `JsonlSink` (to a file),
//! through `BackendSink` (journaled, then sent to the loopback test backend
//! by its sender thread), the same with the backend down, and through the
//! redacting layer in front. Then the peak memory of a 1,000,000-event run
//! while the backend is down (goal: under 64 MB), read from the kernel's
//! high-water mark (`VmHWM`).

use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_server::TestBackend;
use criterion::{black_box, Criterion};
use loader::backend::{backend_endpoint, BackendSettings, BackendSink};
use loader::events::{Event, EventSink, Flush, JsonlSink, RunInfo};
use loader::run::redact::{RedactingSink, Redactor};
use serde_json::json;

fn event(i: u64) -> Event {
    Event::user("tick", json!({ "i": i, "loss": 0.25, "note": "a small payload" }))
}

fn settings(dir: &std::path::Path, drain: Duration) -> BackendSettings {
    let mut settings = BackendSettings::new(dir.to_owned());
    settings.drain_timeout = drain;
    settings.request_timeout = Duration::from_secs(2);
    settings
}

/// A URL where nothing listens: the backend is down.
fn down_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("http://{}/api/", listener.local_addr().expect("an address"));
    drop(listener);
    url
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn per_event(c: &mut Criterion) -> Vec<(String, f64)> {
    let run = RunInfo::new("bench", "log").with_job_id("bench-job");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut results = Vec::new();
    let mut group = c.benchmark_group("backend");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(2));
    group.sample_size(30);

    let file = BufWriter::new(File::create(dir.path().join("events.jsonl")).expect("an events file"));
    let jsonl = JsonlSink::new(file, Flush::Buffered);
    let mut i = 0;
    group.bench_function("jsonl sink, log event", |b| {
        b.iter(|| {
            i += 1;
            jsonl.emit(&run, black_box(&event(i)))
        })
    });

    let redactor = Redactor::from_vars([("SYNAPSE_ACCESS_TOKEN", "bench-token-value")], &[]);
    let redacting = RedactingSink::new(JsonlSink::new(std::io::sink(), Flush::Buffered), Arc::new(redactor));
    let plain = JsonlSink::new(std::io::sink(), Flush::Buffered);
    group.bench_function("jsonl sink to nowhere, log event", |b| {
        b.iter(|| {
            i += 1;
            plain.emit(&run, black_box(&event(i)))
        })
    });
    group.bench_function("redacting layer + jsonl sink to nowhere, log event", |b| {
        b.iter(|| {
            i += 1;
            redacting.emit(&run, black_box(&event(i)))
        })
    });
    let down = BackendSink::new(
        backend_endpoint(&down_url(), Some("bench-token"), None),
        "bench-down",
        settings(&dir.path().join("down"), Duration::ZERO),
        None,
    )
    .expect("a backend sink");
    down.start(&run);
    group.bench_function("backend sink, log event, backend down", |b| {
        b.iter(|| {
            i += 1;
            down.emit(&run, black_box(&event(i)))
        })
    });

    let server = TestBackend::start_counting().expect("the test backend");
    let up = BackendSink::new(
        backend_endpoint(&server.url(), Some("bench-token"), None),
        "bench-up",
        settings(&dir.path().join("up"), Duration::from_secs(5)),
        None,
    )
    .expect("a backend sink");
    up.start(&run);
    group.bench_function("backend sink, log event, backend up", |b| {
        b.iter(|| {
            i += 1;
            up.emit(&run, black_box(&event(i)))
        })
    });

    group.finish();

    let sent_while_measuring = server.log_count();
    let started = Instant::now();
    up.finish(&run);
    let report = up.report().expect("a report");
    println!(
        "backend up: the sender delivered {sent_while_measuring} log entries while the benchmark ran; \
         {} requests delivered in all, finish took {:.1?} (drain limit 5 s), {} requests left in the journal",
        report.delivered_requests,
        started.elapsed(),
        report.undelivered_requests
    );
    down.finish(&run);
    results.push((
        "log entries the server took in all".to_owned(),
        server.log_count() as f64,
    ));
    results
}

fn million_events_backend_down() {
    let run = RunInfo::new("bench", "log").with_job_id("bench-million");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let before = peak_rss_kib();
    let sink = BackendSink::new(
        backend_endpoint(&down_url(), Some("bench-token"), None),
        "bench-million",
        settings(dir.path(), Duration::ZERO),
        None,
    )
    .expect("a backend sink");
    sink.start(&run);
    let started = Instant::now();
    for i in 0..1_000_000 {
        sink.emit(&run, &event(i));
    }
    let emitted = started.elapsed();
    sink.finish(&run);
    let report = sink.report().expect("a report");
    let journal_bytes = std::fs::metadata(&report.journal).map(|m| m.len()).unwrap_or(0);
    let after = peak_rss_kib();
    println!(
        "1,000,000 log events with the backend down: {:.2?} ({:.0} ns an event), {} entries kept in a {:.1} MB journal",
        emitted,
        emitted.as_nanos() as f64 / 1e6,
        report.undelivered_entries,
        journal_bytes as f64 / 1e6
    );
    match (before, after) {
        (Some(before), Some(after)) => println!(
            "peak memory (VmHWM): {:.1} MB before, {:.1} MB after (goal < 64 MB)",
            before as f64 / 1024.0,
            after as f64 / 1024.0
        ),
        _ => println!("peak memory: /proc/self/status is not readable here"),
    }
}

fn main() {
    million_events_backend_down();
    let mut criterion = Criterion::default().configure_from_args();
    let results = per_event(&mut criterion);
    for (what, value) in results {
        println!("{what}: {value}");
    }
    criterion.final_summary();
}
