//! The JSON-lines event stream: [`JsonlSink`] writes one JSON object per
//! event for other programs to read, and [`parse_line`] reads such a line
//! back (to relay a child process's events).
//!
//! Each line has these fields, in this order:
//!
//! ```text
//! {"time":"2026-11-23T23:20:00.123456Z","timestamp":1795476000.123456,
//!  "job_id":"job-7","plugin":"demo","action":"train","kind":"progress",
//!  "event":"progress","step":"train","level":"info","file":null,
//!  "data":{"current":9,"elapsed":1.5,"eta":1.833,"percent":45.0,"status":"running","total":20}}
//! ```
//!
//! (on one line). `time` is RFC 3339 UTC with microseconds; `timestamp` the
//! same instant in unix seconds (as Synapse log entries carry it); `job_id`,
//! `step` and `file` are `null` when absent; `data` is described in the
//! [`events`](super) module docs. A run's last event (`result` or `error`)
//! has one more field after `data`: `dropped_late_calls`.
//!
//! The sink is built for throughput (over a million events a second): each
//! line is serialised straight into a buffer ([`ChunkBuffer`]: whole,
//! aligned 1 MiB writes while lines keep coming), with the run's part
//! (`job_id`, `plugin`, `action`) serialised once per run, the date and time
//! of day once a second, a user event's data copied as the text it came in
//! ([`Event::raw_data`]). The buffer is written through at the end or
//! after every line (see [`Flush`]), when its owner flushes it (an
//! isolated run's relay, once the child's events pause), or, for a reader
//! following the stream live, within a bounded delay
//! ([`JsonlSink::live`]). [`LineWriter`]
//! writes the lines; an isolated child's channel sink uses it too.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::chunks::ChunkBuffer;
use super::time::{self, TimeCache};
use super::{lock, Event, EventKind, EventSink, Level, RawData, RunInfo};

/// Writes events as JSON lines for one run at a time: keeps the run's
/// part of the line (`,"job_id":…,"plugin":…,"action":…`) and the date and
/// time of day, so a line costs little more than its event's own fields.
#[derive(Default)]
pub struct LineWriter {
    /// The run `run_part` was serialised for.
    run: Option<RunInfo>,
    /// `,"job_id":…,"plugin":…,"action":…` for `run`.
    run_part: Vec<u8>,
    times: TimeCache,
}

impl LineWriter {
    /// Writes `event` of `run` as one JSON line, with its line break.
    pub fn write(&mut self, out: &mut impl Write, run: &RunInfo, event: &Event) -> io::Result<()> {
        // Robust to a sink shared by successive runs; three short string
        // comparisons per event.
        if self.run.as_ref() != Some(run) {
            self.set_run(run);
        }
        write_line(out, &mut self.times, &self.run_part, event)
    }

    fn set_run(&mut self, run: &RunInfo) {
        self.run_part.clear();
        let part = &mut self.run_part;
        part.extend_from_slice(b",\"job_id\":");
        write_json(part, &run.job_id);
        part.extend_from_slice(b",\"plugin\":");
        write_json(part, &run.plugin);
        part.extend_from_slice(b",\"action\":");
        write_json(part, &run.action);
        self.run = Some(run.clone());
    }
}

struct State<W: Write> {
    out: ChunkBuffer<W>,
    lines: LineWriter,
    /// The first write error; once set, nothing more is written.
    error: Option<String>,
    /// Its kind (a closed pipe is not a lost stream to the CLI).
    error_kind: Option<io::ErrorKind>,
}

impl<W: Write> State<W> {
    fn record(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            if self.error.is_none() {
                self.error = Some(e.to_string());
                self.error_kind = Some(e.kind());
            }
        }
    }
}

/// Serialises a value that cannot fail to serialise into a `Vec`.
fn write_json<T: serde::Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    if serde_json::to_writer(&mut *buf, value).is_err() {
        buf.extend_from_slice(b"null");
    }
}

fn json<W: Write, T: serde::Serialize + ?Sized>(out: &mut W, value: &T) -> io::Result<()> {
    serde_json::to_writer(out, value).map_err(io::Error::from)
}

fn write_line<W: Write>(out: &mut W, times: &mut TimeCache, run_part: &[u8], event: &Event) -> io::Result<()> {
    let (secs, micros) = time::unix_parts(event.time);
    out.write_all(b"{\"time\":\"")?;
    out.write_all(times.rfc3339(secs, micros).as_bytes())?;
    out.write_all(b"\",\"timestamp\":")?;
    time::write_unix_seconds(out, secs, micros)?;
    out.write_all(run_part)?;
    out.write_all(b",\"kind\":\"")?;
    out.write_all(event.kind.as_str().as_bytes())?;
    out.write_all(b"\",\"event\":")?;
    json(out, &event.event)?;
    out.write_all(b",\"step\":")?;
    json(out, &event.step)?;
    out.write_all(b",\"level\":\"")?;
    out.write_all(event.level.as_str().as_bytes())?;
    out.write_all(b"\",\"file\":")?;
    json(out, &event.file)?;
    out.write_all(b",\"data\":")?;
    match &event.raw_data {
        Some(raw) => out.write_all(raw.get().as_bytes())?,
        None => json(out, &event.data)?,
    }
    if let Some(count) = event.dropped_late_calls {
        out.write_all(b",\"dropped_late_calls\":")?;
        json(out, &count)?;
    }
    out.write_all(b"}\n")
}

/// When buffered lines are written through to the writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// At [`EventSink::finish`] (or [`EventSink::flush`]), and in whole
    /// 1 MiB chunks in between: the fastest, for a file read after the run.
    Buffered,
    /// After every line: for a pipe from a child process, or a run whose
    /// process may crash, so that no reported event is lost.
    EachLine,
}

/// Writes each event as one JSON line to a writer (a file, stdout, a pipe).
///
/// Write errors never panic: the first one is kept (see
/// [`error`](Self::error)) and the sink writes nothing after it.
pub struct JsonlSink<W: Write + Send> {
    /// Shared (weakly) with the flusher thread of [`JsonlSink::live`].
    state: Arc<Mutex<State<W>>>,
    flush: Flush,
}

impl<W: Write + Send> JsonlSink<W> {
    /// A sink writing through to `writer` as `flush` says.
    pub fn new(writer: W, flush: Flush) -> Self {
        JsonlSink {
            state: Arc::new(Mutex::new(State {
                out: ChunkBuffer::new(writer),
                lines: LineWriter::default(),
                error: None,
                error_kind: None,
            })),
            flush,
        }
    }

    /// The first write error, if any; the sink dropped everything after it.
    pub fn error(&self) -> Option<String> {
        lock(&self.state).error.clone()
    }

    /// The kind of the first write error, if any.
    pub fn error_kind(&self) -> Option<io::ErrorKind> {
        lock(&self.state).error_kind
    }

    /// Flushes buffered lines now.
    pub fn flush(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        if let Some(e) = &state.error {
            return Err(io::Error::other(e.clone()));
        }
        let result = state.out.flush();
        if let Err(e) = &result {
            state.error = Some(e.to_string());
            state.error_kind = Some(e.kind());
        }
        result
    }

    /// Flushes, then runs `f` on the writer (to close it, say); an error of
    /// either is kept as the sink's error.
    pub fn finish_writer(&self, f: impl FnOnce(&mut W) -> io::Result<()>) {
        let mut state = lock(&self.state);
        let result = state.out.flush().and_then(|()| f(state.out.get_mut()));
        state.record(result);
    }

    /// Flushes and returns the writer.
    pub fn into_inner(self) -> io::Result<W> {
        let mut shared = self.state;
        // A live sink's flusher holds a strong reference only while it
        // flushes, so this waits at most for one flush.
        let state = loop {
            match Arc::try_unwrap(shared) {
                Ok(state) => break state,
                Err(still_shared) => {
                    shared = still_shared;
                    std::thread::yield_now();
                }
            }
        };
        let state = state.into_inner().unwrap_or_else(|p| p.into_inner());
        state.out.into_inner()
    }
}

impl<W: Write + Send + 'static> JsonlSink<W> {
    /// A buffered sink whose lines reach `writer` at most `delay` after they
    /// were emitted, for a reader following the stream (a pipe into another
    /// program, `tail -f`): a background thread flushes whatever is buffered
    /// every `delay`, so a quiet action's last events are not held back. The
    /// thread ends with the sink.
    pub fn live(writer: W, delay: Duration) -> Self {
        let sink = JsonlSink::new(writer, Flush::Buffered);
        let state = Arc::downgrade(&sink.state);
        std::thread::Builder::new()
            .name("jsonl-flusher".into())
            .spawn(move || flush_periodically(state, delay))
            .map(drop)
            .unwrap_or_else(|e| tracing::warn!("no background flushing of the JSON-lines stream: {e}"));
        sink
    }
}

/// The loop of a live sink's flusher thread.
fn flush_periodically<W: Write>(state: Weak<Mutex<State<W>>>, delay: Duration) {
    loop {
        std::thread::sleep(delay);
        let Some(state) = state.upgrade() else { return };
        let mut state = lock(&state);
        if state.error.is_none() && !state.out.buffer().is_empty() {
            let result = state.out.flush();
            state.record(result);
        }
    }
}

impl JsonlSink<File> {
    /// Creates (or truncates) the file at `path` and writes lines to it.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        File::create(path).map(|file| JsonlSink::new(file, Flush::Buffered))
    }
}

impl JsonlSink<io::Stdout> {
    /// Writes lines to standard output.
    pub fn stdout() -> Self {
        JsonlSink::new(io::stdout(), Flush::Buffered)
    }
}

impl<W: Write + Send> EventSink for JsonlSink<W> {
    fn emit(&self, run: &RunInfo, event: &Event) {
        let mut state = lock(&self.state);
        if state.error.is_some() {
            return;
        }
        let state = &mut *state;
        let mut result = state.lines.write(&mut state.out, run, event);
        if result.is_ok() && self.flush == Flush::EachLine {
            result = state.out.flush();
        }
        state.record(result);
    }

    fn finish(&self, _run: &RunInfo) {
        EventSink::flush(self);
    }

    fn takes_raw_data(&self) -> bool {
        true
    }

    fn flush(&self) {
        let mut state = lock(&self.state);
        if state.error.is_none() && !state.out.buffer().is_empty() {
            let result = state.out.flush();
            state.record(result);
        }
    }
}

/// Why a line could not be read as an event.
#[derive(Debug, thiserror::Error)]
pub enum JsonlParseError {
    #[error("invalid event line: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid event time {0:?} (expected RFC 3339 such as 2026-11-23T23:20:00.123456Z)")]
    Time(String),
    #[error("invalid event timestamp {0} (expected unix seconds)")]
    Timestamp(f64),
    #[error("event line has neither `time` nor `timestamp`")]
    MissingTime,
}

/// A line's fields, borrowed from it where they need no unescaping.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    timestamp: Option<f64>,
    #[serde(borrow)]
    job_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    plugin: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    kind: EventKind,
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    step: Option<Cow<'a, str>>,
    level: Level,
    #[serde(borrow)]
    file: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    dropped_late_calls: Option<u64>,
}

/// Reads one line written by [`JsonlSink`] back into who produced the event
/// and the event (surrounding whitespace, including the newline, is ignored). Unknown
/// extra fields are ignored; `time` wins over `timestamp` when both are
/// present. Times come back to the microsecond.
pub fn parse_line(line: &str) -> Result<(RunInfo, Event), JsonlParseError> {
    let (run, event) = parse_line_raw(line)?;
    let event = match event.with_parsed_data() {
        Cow::Borrowed(_) => event,
        Cow::Owned(parsed) => parsed,
    };
    Ok((run, event))
}

/// [`parse_line`], leaving a user event's data (an object) as the line's
/// text ([`Event::raw_data`]): for a relay that writes it out again.
pub fn parse_line_raw(line: &str) -> Result<(RunInfo, Event), JsonlParseError> {
    event_of(serde_json::from_str(line.trim())?)
}

fn event_of(line: Line) -> Result<(RunInfo, Event), JsonlParseError> {
    let time: SystemTime = match (line.time, line.timestamp) {
        (Some(t), _) => time::parse_rfc3339(&t).ok_or_else(|| JsonlParseError::Time(t.into_owned()))?,
        (None, Some(ts)) => time::system_time_from_unix_seconds(ts).ok_or(JsonlParseError::Timestamp(ts))?,
        (None, None) => return Err(JsonlParseError::MissingTime),
    };
    let run = RunInfo {
        job_id: line.job_id.map(Cow::into_owned),
        plugin: line.plugin.into_owned(),
        action: line.action.into_owned(),
    };
    let raw_data = line
        .data
        .filter(|_| line.kind == EventKind::Event)
        .and_then(RawData::object);
    let data = match (&raw_data, line.data) {
        (None, Some(data)) => serde_json::from_str(data.get())?,
        _ => Value::Null,
    };
    let event = Event {
        time,
        kind: line.kind,
        event: line.event.into_owned(),
        step: line.step.map(Cow::into_owned),
        level: line.level,
        file: line.file.map(Cow::into_owned),
        data,
        dropped_late_calls: line.dropped_late_calls,
        raw_data,
    };
    Ok((run, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    fn run() -> RunInfo {
        RunInfo::new("demo", "train").with_job_id("job-7")
    }

    fn at(micros: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(micros)
    }

    fn write_all(run: &RunInfo, events: &[Event]) -> String {
        let sink = JsonlSink::new(Vec::new(), Flush::Buffered);
        sink.start(run);
        for e in events {
            sink.emit(run, e);
        }
        sink.finish(run);
        assert_eq!(sink.error(), None);
        String::from_utf8(sink.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn writes_fields_in_order() {
        let event = Event::message(Level::Warning, "Low GPU memory")
            .with_step("train")
            .with_time(at(1_795_476_000_123_456));
        let out = write_all(&run(), &[event]);
        assert_eq!(
            out,
            concat!(
                r#"{"time":"2026-11-23T23:20:00.123456Z","timestamp":1795476000.123456,"#,
                r#""job_id":"job-7","plugin":"demo","action":"train","kind":"message","#,
                r#""event":"message","step":"train","level":"warning","file":null,"#,
                r#""data":{"content":"Low GPU memory"}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn nulls_and_whole_seconds() {
        let event = Event::dev_event("init", None).with_time(at(1_000_000));
        let out = write_all(&RunInfo::new("p", "a"), &[event]);
        assert_eq!(
            out,
            concat!(
                r#"{"time":"1970-01-01T00:00:01.000000Z","timestamp":1.0,"job_id":null,"#,
                r#""plugin":"p","action":"a","kind":"dev_event","event":"dev_event","#,
                r#""step":null,"level":"debug","file":null,"data":{"data":null,"message":"init"}}"#,
                "\n"
            )
        );
    }

    #[test]
    fn escapes_strings_everywhere() {
        let run = RunInfo::new("p\"lug", "a\\ct").with_job_id("j\n1");
        let event = Event::user("we\"ird\u{1}", json!({"k\"": "line\nbreak\ttab", "u": "ü→😀"}))
            .with_step("st\"ep")
            .with_file("C:\\data\\train.csv");
        let out = write_all(&run, std::slice::from_ref(&event));
        assert_eq!(out.matches('\n').count(), 1, "one line: {out}");
        assert!(
            out.contains(r#""job_id":"j\n1","plugin":"p\"lug","action":"a\\ct""#),
            "{out}"
        );
        assert!(out.contains(r#""event":"we\"ird\u0001""#), "{out}");
        assert!(out.contains(r#""file":"C:\\data\\train.csv""#), "{out}");
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["data"]["k\""], "line\nbreak\ttab");
        assert_eq!(value["data"]["u"], "ü→😀");
        assert_eq!(value["step"], "st\"ep");
        let (back_run, back) = parse_line(&out).unwrap();
        assert_eq!(back_run, run);
        assert_eq!(back.data, event.data);
    }

    #[test]
    fn round_trips_every_kind() {
        let run = run();
        let base = at(1_795_476_000_123_456);
        let events = vec![
            Event::new(
                EventKind::Progress,
                "progress",
                Level::Info,
                json!({"current": 1, "total": 2, "percent": 50.0, "elapsed": 0.5, "eta": null, "status": "running"}),
            )
            .with_step("train"),
            Event::metrics("train", json!({"loss": 0.12, "accuracy": 0.95})),
            Event::user("checkpoint_saved", json!({"epoch": 5, "path": "/model.pt"})).with_file("/model.pt"),
            Event::message(Level::Success, "done"),
            Event::dev_event("layers", Some(json!({"n": 12}))),
            Event::result(json!({"ok": true, "list": [1, 2.5, "x", null]})),
            Event::error("boom", "execution", json!({"trace": ["a", "b"]})).with_level(Level::Danger),
            Event::user("step_start", Value::Null).with_step("export"),
        ];
        let events: Vec<Event> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.with_time(base + Duration::from_micros(i as u64 * 1_000_001)))
            .collect();
        let out = write_all(&run, &events);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), events.len());
        for (line, event) in lines.iter().zip(&events) {
            let (back_run, back) = parse_line(line).unwrap();
            assert_eq!(back_run, run);
            assert_eq!(&back, event, "{line}");
        }
    }

    #[test]
    fn time_is_kept_to_the_microsecond() {
        let t = UNIX_EPOCH + Duration::new(1_795_476_000, 123_456_789);
        let out = write_all(&run(), &[Event::result(Value::Null).with_time(t)]);
        let (_, back) = parse_line(&out).unwrap();
        assert_eq!(back.time, UNIX_EPOCH + Duration::new(1_795_476_000, 123_456_000));
    }

    #[test]
    fn parse_accepts_timestamp_only_and_ignores_extra_fields() {
        let line = r#"  {"timestamp":1.5,"plugin":"p","action":"a","kind":"event","event":"x","level":"critical","extra":1}  "#;
        let (run, event) = parse_line(line).unwrap();
        assert_eq!(event.time, at(1_500_000));
        assert_eq!(event.level, Level::Critical);
        assert_eq!(event.data, Value::Null);
        assert_eq!(event.step, None);
        assert_eq!(run.job_id, None);
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let err = parse_line("not json").unwrap_err();
        assert!(err.to_string().starts_with("invalid event line: "), "{err}");
        let err =
            parse_line(r#"{"time":"yesterday","plugin":"p","action":"a","kind":"event","event":"x","level":"info"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("invalid event time \"yesterday\""), "{err}");
        let err = parse_line(r#"{"plugin":"p","action":"a","kind":"event","event":"x","level":"info"}"#).unwrap_err();
        assert!(matches!(err, JsonlParseError::MissingTime));
        let err = parse_line(r#"{"timestamp":1,"plugin":"p","action":"a","kind":"shout","event":"x","level":"info"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown variant `shout`"), "{err}");
    }

    #[test]
    fn run_part_follows_the_run_even_without_start() {
        let sink = JsonlSink::new(Vec::new(), Flush::Buffered);
        let first = RunInfo::new("p", "one");
        let second = RunInfo::new("p", "two").with_job_id("j");
        sink.emit(&first, &Event::result(json!(1)));
        sink.emit(&second, &Event::result(json!(2)));
        let out = String::from_utf8(sink.into_inner().unwrap()).unwrap();
        let runs: Vec<RunInfo> = out.lines().map(|l| parse_line(l).unwrap().0).collect();
        assert_eq!(runs, [first, second]);
    }

    /// Fails every write after `ok_bytes` bytes, counting writes and flushes.
    struct Failing {
        ok_bytes: usize,
        written: Vec<u8>,
        flushes: usize,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.written.len() + buf.len() > self.ok_bytes {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "pipe closed"));
            }
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    #[test]
    fn write_errors_are_kept_not_panicked() {
        let sink = JsonlSink::new(
            Failing {
                ok_bytes: 0,
                written: Vec::new(),
                flushes: 0,
            },
            Flush::Buffered,
        );
        let run = run();
        sink.start(&run);
        sink.emit(&run, &Event::result(json!(1)));
        assert_eq!(sink.error(), None, "still buffered");
        sink.finish(&run);
        assert_eq!(sink.error().as_deref(), Some("pipe closed"));
        assert_eq!(sink.error_kind(), Some(io::ErrorKind::BrokenPipe));
        sink.emit(&run, &Event::result(json!(2)));
        sink.finish(&run);
        assert_eq!(sink.error().as_deref(), Some("pipe closed"));
        assert!(sink.flush().is_err());
    }

    #[test]
    fn each_line_policy_writes_every_line_through() {
        let sink = JsonlSink::new(
            Failing {
                ok_bytes: usize::MAX,
                written: Vec::new(),
                flushes: 0,
            },
            Flush::EachLine,
        );
        let run = run();
        sink.start(&run);
        sink.emit(&run, &Event::result(json!(1)));
        {
            let state = lock(&sink.state);
            assert_eq!(state.out.get_ref().written.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(state.out.get_ref().flushes, 1);
        }
        sink.emit(&run, &Event::result(json!(2)));
        let inner = sink.into_inner().unwrap();
        assert_eq!(inner.flushes, 2);
        assert_eq!(inner.written.iter().filter(|&&b| b == b'\n').count(), 2);
    }

    /// A writer whose bytes the test can read while the sink still owns it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn live_sink_delivers_a_quiet_streams_last_line_without_finish() {
        let written = Shared::default();
        let sink = JsonlSink::live(written.clone(), Duration::from_millis(5));
        let run = run();
        sink.start(&run);
        sink.emit(&run, &Event::result(json!(1)));
        // No further event and no finish: only the flusher can write it.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while lock(&written.0).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line never reached the writer"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = String::from_utf8(lock(&written.0).clone()).unwrap();
        assert_eq!(parse_line(out.trim_end()).unwrap().1.data, json!(1));
        sink.emit(&run, &Event::result(json!(2)));
        sink.into_inner().unwrap();
        assert_eq!(String::from_utf8(lock(&written.0).clone()).unwrap().lines().count(), 2);
    }

    #[test]
    fn buffered_sink_writes_only_when_full_or_finished() {
        let sink = JsonlSink::new(
            Failing {
                ok_bytes: usize::MAX,
                written: Vec::new(),
                flushes: 0,
            },
            Flush::Buffered,
        );
        let run = run();
        sink.start(&run);
        sink.emit(&run, &Event::result(json!(1)));
        assert!(lock(&sink.state).out.get_ref().written.is_empty());
        sink.finish(&run);
        assert!(!lock(&sink.state).out.get_ref().written.is_empty());
    }

    #[test]
    fn many_events_stay_parseable() {
        let run = run();
        let sink = JsonlSink::new(Vec::new(), Flush::Buffered);
        sink.start(&run);
        for i in 0..20_000u64 {
            sink.emit(&run, &Event::user("tick", json!({"i": i})).with_step("loop"));
        }
        sink.finish(&run);
        let out = String::from_utf8(sink.into_inner().unwrap()).unwrap();
        let mut n = 0;
        for (i, line) in out.lines().enumerate() {
            assert_eq!(parse_line(line).unwrap().1.data["i"], json!(i));
            n += 1;
        }
        assert_eq!(n, 20_000);
    }
    /// `cargo test -p loader --release --lib events::jsonl -- --ignored --nocapture`
    #[test]
    #[ignore = "timing; meaningful only in release builds"]
    fn writes_over_a_million_events_a_second() {
        let run = run();
        let sink = JsonlSink::new(io::sink(), Flush::Buffered);
        sink.start(&run);
        let n = 2_000_000u64;
        let started = std::time::Instant::now();
        for i in 0..n {
            let event = Event::user("checkpoint_saved", json!({"epoch": i, "path": "/model.pt"})).with_step("train");
            sink.emit(&run, &event);
        }
        sink.finish(&run);
        let rate = n as f64 / started.elapsed().as_secs_f64();
        eprintln!("JsonlSink: {rate:.0} events/s (event construction included)");
        assert!(rate > 1_000_000.0, "{rate:.0} events/s");
    }
}
