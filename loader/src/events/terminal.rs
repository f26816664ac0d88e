//! Human output of a run's events, normally to stderr.
//!
//! Messages are coloured by level (`[train] WARNING Low GPU memory`), user
//! events show their data and file, metrics show as `key=value` pairs, and
//! dev events (and anything at `debug`) appear only when verbose. On a
//! terminal, progress is one `indicatif` bar per step, redrawn in place
//! below the messages (the private `bars` module); elsewhere, where
//! indicatif would draw nothing, each (already coalesced) progress event
//! is one plain line. At the end of a run the bars are drawn a last time
//! and left on screen. The workflow orchestrator's overall
//! progress (step-less, on its internal scale) shows as a percentage, and a
//! completed step's time counts from its `step_start` event. Workflow events
//! (`step_start`, `step_end`, `rollback_start`, `rollback_end`) print as
//! sentences. Each `set_metrics` call is a line while a step reports at a
//! readable pace; faster, its calls are merged into one line a frame
//! (`metrics_lines`), and lines always keep the order of their events. At
//! the end of a run (before the run's result or error line) a summary shows
//! each step's final metrics with a sparkline of every numeric one
//! (`summary`). Colour follows [`TerminalOptions`], which
//! [`TerminalOptions::detect_stderr`] derives from the terminal and
//! `NO_COLOR`. Text from the plugin is printed with its control characters
//! escaped ([`super::escape`]).
//!
//! So that printing is never what slows a chatty action down, the sink
//! [`TerminalSink::stderr`] uses is buffered: lines and bar redraws are
//! collected and written when 64 KiB have gathered, at the end of the run, and by a
//! background thread at most [`TERMINAL_FLUSH_DELAY`] after they were
//! emitted (so an idle action's last lines show at once). Lines still in the
//! buffer when the process is killed are lost from the terminal, never from
//! the JSON-lines stream, which is the run's record.

use std::collections::HashMap;
use std::fmt::{self, Display};
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

mod bars;
mod metrics_lines;
pub mod summary;

use plugin_api::steps::OVERALL_SCALE;
use serde::Deserialize;
use serde_json::Value;

use self::bars::{BarView, Bars, ScreenSize};
use self::metrics_lines::MetricsLines;
use self::summary::MetricsHistory;
use super::escape::{escape, is_clean, Escaped};
use super::progress::ProgressStatus;
use super::{lock, Event, EventKind, EventSink, Level, RunInfo};

/// The longest a line waits in a buffered sink before reaching the terminal.
pub const TERMINAL_FLUSH_DELAY: Duration = Duration::from_millis(50);
/// A buffered sink writes once this much has gathered.
const BUFFER_LIMIT: usize = 64 * 1024;

/// Longer compact data is cut to this many characters unless verbose.
const MAX_DATA_CHARS: usize = 400;
/// Step names on bars are cut to this many characters.
const MAX_NAME_CHARS: usize = 24;
/// Label of the default (unnamed) progress step.
const DEFAULT_STEP_LABEL: &str = "overall";

const RED: &str = "31";
const BOLD_RED: &str = "1;31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const CYAN: &str = "36";
const DIM: &str = "2";

/// How a [`TerminalSink`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TerminalOptions {
    /// The writer is an interactive terminal: draw progress bars in place
    /// with ANSI cursor movement. Otherwise print one line per progress event.
    pub tty: bool,
    /// Use ANSI colours.
    pub color: bool,
    /// Show dev events, `debug`-level events and results, and never cut data.
    pub verbose: bool,
}

impl TerminalOptions {
    /// Plain lines, no colour, no cursor movement.
    pub fn plain(verbose: bool) -> Self {
        TerminalOptions {
            tty: false,
            color: false,
            verbose,
        }
    }

    /// For stderr: bars and colour when it is a terminal (and `TERM` is not
    /// `dumb`); no colour when `NO_COLOR` is set to anything non-empty.
    pub fn detect_stderr(verbose: bool) -> Self {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let tty = io::stderr().is_terminal() && !dumb;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        TerminalOptions {
            tty,
            color: tty && !no_color,
            verbose,
        }
    }
}

/// A progress bar: the latest progress event of one step.
#[derive(Debug, Clone)]
struct Bar {
    step: Option<String>,
    current: u64,
    total: u64,
    percent: f64,
    elapsed: f64,
    eta: Option<f64>,
    status: ProgressStatus,
    time: SystemTime,
}

impl Bar {
    /// Reads a progress payload; `None` when it is not one.
    fn from_event(event: &Event) -> Option<Bar> {
        let d = &event.data;
        let current = d.get("current")?.as_u64()?;
        let total = d.get("total")?.as_u64()?.max(1);
        let status = d
            .get("status")
            .and_then(|s| ProgressStatus::deserialize(s).ok())
            .unwrap_or(ProgressStatus::Running);
        Some(Bar {
            step: event.step.clone(),
            current,
            total,
            percent: d
                .get("percent")
                .and_then(Value::as_f64)
                .unwrap_or(current as f64 * 100.0 / total as f64),
            elapsed: d.get("elapsed").and_then(Value::as_f64).unwrap_or(0.0),
            eta: d.get("eta").and_then(Value::as_f64),
            status,
            time: event.time,
        })
    }

    fn label(&self) -> &str {
        self.step.as_deref().unwrap_or(DEFAULT_STEP_LABEL)
    }

    /// The workflow orchestrator's weighted progress: step-less, on the
    /// internal [`OVERALL_SCALE`]. Shown as a percentage only.
    fn is_overall(&self) -> bool {
        self.step.is_none() && self.total == OVERALL_SCALE
    }
}

/// Seconds as `3s`, `2m05s` or `1h02m`.
struct Secs(f64);

impl Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.0.is_finite() {
            self.0.max(0.0).round() as u64
        } else {
            0
        };
        match s {
            0..=59 => write!(f, "{s}s"),
            60..=3599 => write!(f, "{}m{:02}s", s / 60, s % 60),
            _ => write!(f, "{}h{:02}m", s / 3600, s / 60 % 60),
        }
    }
}

/// Writes `text`, in `code`'s colour when `color`.
fn paint(buf: &mut Vec<u8>, color: bool, code: &str, text: impl Display) {
    // Writing to a Vec cannot fail.
    let _ = if color {
        write!(buf, "\x1b[{code}m{text}\x1b[0m")
    } else {
        write!(buf, "{text}")
    };
}

fn level_color(level: Level) -> Option<&'static str> {
    match level {
        Level::Debug => Some(DIM),
        Level::Info => None,
        Level::Success => Some(GREEN),
        Level::Warning => Some(YELLOW),
        Level::Danger => Some(RED),
        Level::Error | Level::Critical => Some(BOLD_RED),
    }
}

fn level_label(level: Level) -> &'static str {
    match level {
        Level::Debug => "DEBUG",
        Level::Info => "INFO",
        Level::Success => "SUCCESS",
        Level::Warning => "WARNING",
        Level::Danger => "DANGER",
        Level::Error => "ERROR",
        Level::Critical => "CRITICAL",
    }
}

/// Compact JSON of `v`, cut to [`MAX_DATA_CHARS`] unless verbose, with
/// the control characters JSON leaves as they are (C1, bidi) escaped.
fn compact_value(opts: TerminalOptions, v: &Value) -> String {
    compact_text(opts, v.to_string())
}

/// [`compact_value`] of JSON text.
fn compact_text(opts: TerminalOptions, mut s: String) -> String {
    if !opts.verbose {
        if let Some((cut, _)) = s.char_indices().nth(MAX_DATA_CHARS) {
            s.truncate(cut);
            s.push('…');
        }
    }
    if is_clean(&s) {
        s
    } else {
        escape(&s)
    }
}

/// `[train] metrics accuracy=0.95 loss=0.12`.
fn render_metrics(buf: &mut Vec<u8>, opts: TerminalOptions, step: Option<&str>, data: &Value) {
    if let Some(step) = step {
        let _ = write!(buf, "[{}] ", Escaped(step));
    }
    paint(buf, opts.color, CYAN, "metrics");
    match data {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(s) => {
                        let _ = write!(buf, " {}={}", Escaped(key), Escaped(s));
                    }
                    other => {
                        let _ = write!(buf, " {}={}", Escaped(key), compact_value(opts, other));
                    }
                }
            }
        }
        other => {
            let _ = write!(buf, " {}", compact_value(opts, other));
        }
    }
}

/// Whether JSON object text (a valid object, as raw data always is) has
/// no fields (`{}`, perhaps with spaces): whether the first byte after
/// its `{` that is not a space closes it.
fn is_empty_raw(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next() == Some(b'{') && bytes.find(|b| !b.is_ascii_whitespace()) == Some(b'}')
}

/// `null`, `{}` and `[]` carry nothing worth printing.
fn is_empty_data(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

struct State<W> {
    out: W,
    /// What one call writes, sent in one `write_all`.
    buf: Vec<u8>,
    /// Scratch space for one rendered line.
    line: Vec<u8>,
    /// The run's progress bars, on a terminal once progress was reported.
    bars: Option<Bars>,
    /// When each step's `step_start` event was emitted.
    step_starts: HashMap<String, SystemTime>,
    /// Which metrics lines to print when.
    metrics_lines: MetricsLines,
    /// Every step's metrics so far, for the summary at the end.
    history: MetricsHistory,
    /// The summary of this run was printed.
    summarized: bool,
    opts: TerminalOptions,
    error: Option<String>,
}

/// Prints events for people. Generic over the writer for tests.
pub struct TerminalSink<W: Write + Send = io::Stderr> {
    opts: TerminalOptions,
    /// Shared (weakly) with the flusher thread of a buffered sink.
    state: Arc<Mutex<State<W>>>,
    buffered: bool,
    /// The screen bars are laid out for.
    screen_size: ScreenSize,
}

impl TerminalSink<io::Stderr> {
    /// Writes to stderr with [`TerminalOptions::detect_stderr`], buffered
    /// (see the module docs).
    pub fn stderr(verbose: bool) -> Self {
        let mut sink = TerminalSink::buffered(
            io::stderr(),
            TerminalOptions::detect_stderr(verbose),
            TERMINAL_FLUSH_DELAY,
        );
        sink.screen_size = bars::stderr_size;
        sink
    }
}

impl<W: Write + Send + 'static> TerminalSink<W> {
    /// A sink that collects lines and writes them when 64 KiB have
    /// gathered, at the end of a run, and at most `delay` after they were
    /// emitted (from a background thread that ends with the sink).
    pub fn buffered(writer: W, opts: TerminalOptions, delay: Duration) -> Self {
        let mut sink = TerminalSink::new(writer, opts);
        sink.buffered = true;
        let state = Arc::downgrade(&sink.state);
        std::thread::Builder::new()
            .name("terminal-flusher".into())
            .spawn(move || flush_periodically(state, delay))
            .map(drop)
            .unwrap_or_else(|e| {
                tracing::warn!("terminal output is written line by line (no flusher thread: {e})");
                sink.buffered = false;
            });
        sink
    }
}

/// The loop of a buffered sink's flusher thread.
fn flush_periodically<W: Write>(state: Weak<Mutex<State<W>>>, delay: Duration) {
    loop {
        std::thread::sleep(delay);
        let Some(state) = state.upgrade() else { return };
        let mut state = lock(&state);
        state.print_due_metrics();
        state.send(false);
    }
}

impl<W: Write + Send> TerminalSink<W> {
    pub fn new(writer: W, opts: TerminalOptions) -> Self {
        TerminalSink {
            opts,
            buffered: false,
            screen_size: bars::fixed_size,
            state: Arc::new(Mutex::new(State {
                out: writer,
                buf: Vec::with_capacity(1024),
                line: Vec::with_capacity(256),
                bars: None,
                step_starts: HashMap::new(),
                metrics_lines: MetricsLines::default(),
                history: MetricsHistory::default(),
                summarized: false,
                opts,
                error: None,
            })),
        }
    }

    pub fn options(&self) -> TerminalOptions {
        self.opts
    }

    /// The first write error, if any; nothing is written after it.
    pub fn error(&self) -> Option<String> {
        lock(&self.state).error.clone()
    }

    /// Writes what is buffered and returns the writer.
    pub fn into_inner(self) -> W {
        let mut shared = self.state;
        // A buffered sink's flusher holds a strong reference only while it
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
        let mut state = state.into_inner().unwrap_or_else(|p| p.into_inner());
        state.send(false);
        state.out
    }

    fn prefix(&self, buf: &mut Vec<u8>, step: Option<&str>) {
        if let Some(step) = step {
            let _ = write!(buf, "[{}] ", Escaped(step));
        }
    }

    /// Compact JSON of `v`, see [`compact_value`].
    fn compact(&self, v: &Value) -> String {
        compact_value(self.opts, v)
    }

    /// [`compact_value`] of JSON text.
    fn compact_text(&self, s: String) -> String {
        compact_text(self.opts, s)
    }

    /// Renders one non-bar line (without newline) into `buf`; false when the
    /// event is not shown.
    fn render_line(&self, buf: &mut Vec<u8>, event: &Event) -> bool {
        let color = self.opts.color;
        let verbose = self.opts.verbose;
        if event.level == Level::Debug && !verbose && event.kind != EventKind::Progress {
            return false;
        }
        let step = event.step.as_deref();
        match event.kind {
            EventKind::Message => {
                self.prefix(buf, step);
                let content = match event.data.get("content") {
                    Some(Value::String(s)) => escape(s),
                    _ => self.compact(&event.data),
                };
                match event.level {
                    Level::Info => {
                        paint(buf, color, CYAN, "INFO");
                        let _ = write!(buf, " {content}");
                    }
                    level => {
                        let code = level_color(level).unwrap_or(DIM);
                        paint(buf, color, code, format_args!("{} {content}", level_label(level)));
                    }
                }
            }
            EventKind::Event => {
                if let Some(step) = step {
                    if self.render_workflow_event(buf, step, event) {
                        return true;
                    }
                }
                self.prefix(buf, step);
                match level_color(event.level) {
                    Some(code) => paint(buf, color, code, Escaped(&event.event)),
                    None if is_clean(&event.event) => buf.extend_from_slice(event.event.as_bytes()),
                    None => {
                        let _ = write!(buf, "{}", Escaped(&event.event));
                    }
                }
                match &event.raw_data {
                    Some(raw) if !is_empty_raw(raw.get()) => {
                        let text = raw.get();
                        buf.push(b' ');
                        if text.len() <= MAX_DATA_CHARS && (raw.is_printable() || is_clean(text)) {
                            buf.extend_from_slice(text.as_bytes());
                        } else {
                            buf.extend_from_slice(self.compact_text(text.to_owned()).as_bytes());
                        }
                    }
                    Some(_) => {}
                    None if !is_empty_data(&event.data) => {
                        let _ = write!(buf, " {}", self.compact(&event.data));
                    }
                    None => {}
                }
                if let Some(file) = &event.file {
                    let _ = write!(buf, " (file: {})", Escaped(file));
                }
            }
            EventKind::Metrics => {
                if event.event == super::metrics::SUMMARY_EVENT && !verbose {
                    return false;
                }
                render_metrics(buf, self.opts, step, &event.data);
            }
            EventKind::DevEvent => {
                if !verbose {
                    return false;
                }
                let mut text = String::new();
                if let Some(step) = step {
                    text.push_str(&format!("[{}] ", Escaped(step)));
                }
                text.push_str("DEV ");
                match event.data.get("message") {
                    Some(Value::String(m)) => text.push_str(&escape(m)),
                    _ => text.push_str(&self.compact(&event.data)),
                }
                if let Some(data) = event.data.get("data").filter(|d| !is_empty_data(d)) {
                    text.push(' ');
                    text.push_str(&self.compact(data));
                }
                paint(buf, color, DIM, text);
            }
            EventKind::Result => {
                if !verbose {
                    return false;
                }
                self.prefix(buf, step);
                paint(buf, color, GREEN, "result");
                let _ = write!(buf, " {}", self.compact(&event.data));
            }
            EventKind::Error => {
                self.prefix(buf, step);
                let message = match event.data.get("message") {
                    Some(Value::String(m)) => escape(m),
                    _ => self.compact(&event.data),
                };
                let kind = match event.data.get("kind") {
                    Some(Value::String(k)) if !k.is_empty() => format!(" ({})", Escaped(k)),
                    _ => String::new(),
                };
                paint(buf, color, BOLD_RED, format_args!("ERROR {message}{kind}"));
                if let Some(details) = event.data.get("details").filter(|d| !is_empty_data(d)) {
                    buf.push(b'\n');
                    paint(buf, color, DIM, format_args!("  details: {}", self.compact(details)));
                }
            }
            EventKind::Output => {
                let stream = event.data.get("stream").and_then(Value::as_str).unwrap_or("output");
                let text = match event.data.get("text").or_else(|| event.data.get("message")) {
                    Some(Value::String(s)) => s.clone(),
                    _ => self.compact(&event.data),
                };
                paint(buf, color, DIM, format_args!("[{stream}] "));
                match level_color(event.level) {
                    Some(code) if event.level != Level::Info => paint(buf, color, code, text),
                    _ => buf.extend_from_slice(text.as_bytes()),
                }
            }
            EventKind::Progress => match Bar::from_event(event) {
                Some(bar) => self.render_progress_line(buf, &bar),
                None => {
                    self.prefix(buf, step);
                    let _ = write!(buf, "progress {}", self.compact(&event.data));
                }
            },
        }
        true
    }

    /// The orchestrator's workflow events as sentences (`step predict
    /// started (2 of 5)`); false when `event` is not one of them or its
    /// data is not what the orchestrator sends.
    fn render_workflow_event(&self, buf: &mut Vec<u8>, step: &str, event: &Event) -> bool {
        let color = self.opts.color;
        let name = Escaped(step);
        let d = &event.data;
        let flag = |key: &str| d.get(key).and_then(Value::as_bool);
        match event.event.as_str() {
            "step_start" => {
                let (Some(index), Some(total)) = (
                    d.get("index").and_then(Value::as_u64),
                    d.get("total_steps").and_then(Value::as_u64),
                ) else {
                    return false;
                };
                let _ = write!(buf, "step {name} started ({} of {total})", index + 1);
            }
            "step_end" => {
                let (Some(elapsed), Some(success)) = (d.get("elapsed").and_then(Value::as_f64), flag("success")) else {
                    return false;
                };
                if flag("skipped") == Some(true) {
                    paint(buf, color, DIM, format_args!("step {name} skipped"));
                } else if success {
                    paint(
                        buf,
                        color,
                        GREEN,
                        format_args!("step {name} finished in {elapsed:.2} s"),
                    );
                } else {
                    paint(buf, color, RED, format_args!("step {name} failed after {elapsed:.2} s"));
                }
            }
            "rollback_start" => paint(buf, color, YELLOW, format_args!("rolling back step {name}")),
            "rollback_end" => match flag("success") {
                Some(true) => {
                    let _ = write!(buf, "step {name} rolled back");
                }
                Some(false) => {
                    let error = match d.get("error") {
                        Some(Value::String(e)) => escape(e),
                        Some(other) if !is_empty_data(other) => self.compact(other),
                        _ => "unknown error".to_owned(),
                    };
                    paint(buf, color, RED, format_args!("rollback of step {name} failed: {error}"));
                }
                None => return false,
            },
            _ => return false,
        }
        true
    }

    /// `[train] progress 9/20 45.00% eta 3s` (the overall workflow progress
    /// as `progress 7.69% eta 3s`), for non-terminal output.
    fn render_progress_line(&self, buf: &mut Vec<u8>, bar: &Bar) {
        self.prefix(buf, bar.step.as_deref());
        if bar.is_overall() {
            let _ = write!(buf, "progress {:.2}% ", bar.percent);
        } else {
            let _ = write!(buf, "progress {}/{} {:.2}% ", bar.current, bar.total, bar.percent);
        }
        self.render_tail(buf, bar);
    }

    fn render_tail(&self, buf: &mut Vec<u8>, bar: &Bar) {
        match (bar.status, bar.eta) {
            (ProgressStatus::Completed, _) => paint(
                buf,
                self.opts.color,
                GREEN,
                format_args!("done in {}", Secs(bar.elapsed)),
            ),
            (ProgressStatus::Failed, _) => paint(buf, self.opts.color, RED, "failed"),
            (ProgressStatus::Running, Some(eta)) => {
                let _ = write!(buf, "eta {}", Secs(eta));
            }
            (ProgressStatus::Running, None) => buf.extend_from_slice(b"eta --"),
        }
    }

    /// What a step's bar shows on a terminal: its label and
    /// `45.00%  9/20  eta 3s` (the overall workflow bar: `7.69%  eta 3s`).
    fn bar_view<'a>(&self, bar: &'a Bar) -> BarView<'a> {
        let mut text = Vec::new();
        let _ = write!(text, "{:>6.2}%  ", bar.percent);
        if !bar.is_overall() {
            let _ = write!(text, "{}/{}  ", bar.current, bar.total);
        }
        self.render_tail(&mut text, bar);
        BarView {
            step: bar.step.as_deref(),
            label: escape(bar.label()).chars().take(MAX_NAME_CHARS).collect(),
            current: bar.current,
            total: bar.total,
            status: bar.status,
            text: String::from_utf8_lossy(&text).into_owned(),
        }
    }
}

impl<W: Write> State<W> {
    /// A completed step's time counts from its `step_start` event when
    /// there was one, not from its first progress update.
    fn measure_from_step_start(&self, bar: &mut Bar) {
        let start = bar.step.as_ref().and_then(|s| self.step_starts.get(s));
        if let Some(since_start) = start.and_then(|start| bar.time.duration_since(*start).ok()) {
            bar.elapsed = bar.elapsed.max(since_start.as_secs_f64());
        }
    }

    /// Writes the buffer out (and the bar redraws, with the buffered lines
    /// put above the bars), unless `keep` and it is still small.
    fn send(&mut self, keep: bool) {
        let drawn = self.bars.as_ref().map_or(0, Bars::pending);
        if (self.buf.is_empty() && drawn == 0) || (keep && self.buf.len() + drawn < BUFFER_LIMIT) {
            return;
        }
        if let Some(bars) = &self.bars {
            if !self.buf.is_empty() {
                bars.print_above(&self.buf);
                self.buf.clear();
            }
            bars.take_into(&mut self.buf);
        }
        if self.error.is_none() {
            let result = self.out.write_all(&self.buf).and_then(|()| self.out.flush());
            if let Err(e) = result {
                self.error = Some(e.to_string());
            }
        }
        self.buf.clear();
    }
}

impl<W: Write> State<W> {
    /// Writes `lines` (held metrics lines) into the buffer.
    fn write_metrics_lines(&mut self, lines: Vec<metrics_lines::Line>) {
        for (step, keys) in lines {
            render_metrics(&mut self.buf, self.opts, step.as_deref(), &Value::Object(keys));
            self.buf.push(b'\n');
        }
    }

    /// Writes every held metrics line (or `only_step`'s), oldest first.
    fn print_held_metrics(&mut self, only_step: Option<&str>) {
        if self.metrics_lines.has_held() {
            let held = self.metrics_lines.take_held(only_step);
            self.write_metrics_lines(held);
        }
    }

    /// Writes the held metrics lines once a held step may print again (the
    /// flusher's turn: a held line waits at most a frame for its chance).
    fn print_due_metrics(&mut self) {
        if self.error.is_none() && self.metrics_lines.has_held() && self.metrics_lines.any_due(Instant::now()) {
            self.print_held_metrics(None);
        }
    }

    /// The end of a run's output: held metrics, the bars drawn a last time,
    /// then the metrics summary; once per run.
    fn conclude(&mut self) {
        if self.summarized {
            return;
        }
        self.summarized = true;
        self.print_held_metrics(None);
        self.leave_bars();
        let mut buf = std::mem::take(&mut self.buf);
        self.history.render(&mut buf, self.opts);
        self.buf = buf;
    }

    /// Draws the run's bars a last time, below every line, and leaves them.
    fn leave_bars(&mut self) {
        self.send(false);
        if let Some(bars) = self.bars.as_mut() {
            bars.leave();
            self.send(false);
            self.bars = None;
        }
    }

    /// Forgets the run, for the next.
    fn reset(&mut self) {
        self.step_starts.clear();
        self.metrics_lines.clear();
        self.history.clear();
        self.summarized = false;
    }
}

impl<W: Write + Send> TerminalSink<W> {
    /// Takes a `metrics` event: kept for the summary, and rendered into
    /// `line` when its step may print now (held lines first, so that lines
    /// keep their events' order); false when it is held.
    fn metrics_line(&self, state: &mut State<W>, line: &mut Vec<u8>, event: &Event) -> bool {
        let Value::Object(keys) = &event.data else {
            return self.render_line(line, event);
        };
        state.history.record(event.step.as_deref(), keys);
        match state.metrics_lines.offer(event.step.as_deref(), keys, Instant::now()) {
            Some(keys) => {
                state.print_held_metrics(None);
                render_metrics(line, self.opts, event.step.as_deref(), &Value::Object(keys));
                true
            }
            None => false,
        }
    }

    fn emit_bar(&self, state: &mut State<W>, bar: &Bar) {
        let (size, color) = (self.screen_size, self.opts.color);
        let view = self.bar_view(bar);
        state.bars.get_or_insert_with(|| Bars::new(size, color)).show(view);
    }
}

impl<W: Write + Send> EventSink for TerminalSink<W> {
    fn start(&self, _run: &RunInfo) {
        let mut state = lock(&self.state);
        state.leave_bars();
        state.reset();
    }

    fn emit(&self, _run: &RunInfo, event: &Event) {
        // A step's events may be the orchestrator's, read field by field.
        let event = match event.step {
            Some(_) => event.with_parsed_data(),
            None => std::borrow::Cow::Borrowed(event),
        };
        let event = event.as_ref();
        let mut state = lock(&self.state);
        let state = &mut *state;
        if state.error.is_some() {
            return;
        }
        match (event.kind, event.event.as_str(), &event.step) {
            (EventKind::Event, "step_start", Some(step)) => {
                state.step_starts.insert(step.clone(), event.time);
            }
            (EventKind::Event, "step_end", Some(step)) => state.print_held_metrics(Some(step)),
            (EventKind::Result | EventKind::Error, _, _) => state.conclude(),
            _ => {}
        }
        let mut line = std::mem::take(&mut state.line);
        line.clear();
        let shown = match event.kind {
            EventKind::Progress => match Bar::from_event(event) {
                Some(mut bar) => {
                    state.measure_from_step_start(&mut bar);
                    if self.opts.tty {
                        self.emit_bar(state, &bar);
                        state.send(self.buffered);
                        state.line = line;
                        return;
                    }
                    self.render_progress_line(&mut line, &bar);
                    true
                }
                None => self.render_line(&mut line, event),
            },
            EventKind::Metrics if event.event != super::metrics::SUMMARY_EVENT => {
                self.metrics_line(state, &mut line, event)
            }
            _ => self.render_line(&mut line, event),
        };
        if shown {
            state.print_held_metrics(None);
            state.buf.extend_from_slice(&line);
            state.buf.push(b'\n');
            state.send(self.buffered);
        }
        state.line = line;
    }

    /// A user event's data is shown as its text (see `render_line`).
    fn takes_raw_data(&self) -> bool {
        true
    }

    fn finish(&self, _run: &RunInfo) {
        let mut state = lock(&self.state);
        let state = &mut *state;
        state.conclude();
        state.reset();
        state.send(false);
        if state.error.is_none() {
            if let Err(e) = state.out.flush() {
                state.error = Some(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::progress::StepProgress;
    use serde_json::json;

    fn run() -> RunInfo {
        RunInfo::new("demo", "train")
    }

    fn progress(step: Option<&str>, current: u64, total: u64, status: ProgressStatus, eta: Option<u64>) -> Event {
        StepProgress {
            current,
            total,
            percent: crate::events::progress::round_to(current as f64 * 100.0 / total as f64, 2),
            elapsed: Duration::from_secs(12),
            eta: eta.map(Duration::from_secs),
            status,
        }
        .to_event(step)
    }

    #[test]
    fn only_objects_without_fields_are_empty_raw_data() {
        for empty in ["{}", "{ }", "{\n\t }"] {
            assert!(is_empty_raw(empty), "{empty:?}");
        }
        for full in [r#"{"a":1}"#, r#"{ "a":{}}"#, r#"{"":null}"#] {
            assert!(!is_empty_raw(full), "{full:?}");
        }
    }

    fn render(opts: TerminalOptions, events: &[Event]) -> String {
        let sink = TerminalSink::new(Vec::new(), opts);
        let run = run();
        sink.start(&run);
        for e in events {
            sink.emit(&run, e);
        }
        sink.finish(&run);
        assert_eq!(sink.error(), None);
        String::from_utf8(sink.into_inner()).unwrap()
    }

    /// `event` with its data kept as the given JSON text, as the host and
    /// the isolated relay pass a user event on.
    fn with_raw_data(mut event: Event, text: &str) -> Event {
        event.data = Value::Null;
        event.raw_data = crate::events::RawData::parse_object(text);
        assert!(event.raw_data.is_some(), "{text}");
        event
    }

    #[test]
    fn raw_data_shows_as_the_same_data_parsed_would() {
        // Keys in order: the text keeps the plugin's order, a parsed value sorts them.
        let hostile = "{\"n\":1,\"text\":\"\\u001b]0;pwned\\u0007\u{202e}\"}";
        let cases = [
            (r#"{"epoch":5}"#, None),
            ("{}", None),
            (" { } ", None),
            (hostile, None),
            (r#"{"index":1,"total_steps":3}"#, Some("export")),
            (r#"{"elapsed":1.5,"success":true}"#, Some("export")),
        ];
        for verbose in [false, true] {
            let opts = TerminalOptions::plain(verbose);
            for (text, step) in cases {
                let name = if step.is_some() {
                    "step_start"
                } else {
                    "checkpoint_saved"
                };
                let parsed = Event::user(name, serde_json::from_str(text).unwrap()).with_file("/m.pt");
                let parsed = match step {
                    Some(step) => parsed.with_step(step),
                    None => parsed,
                };
                let raw = with_raw_data(parsed.clone(), text);
                assert_eq!(render(opts, &[raw]), render(opts, &[parsed]), "{text}");
            }
        }
        let long = format!("{{\"blob\":\"{}\"}}", "x".repeat(5000));
        let cut = render(
            TerminalOptions::plain(false),
            &[with_raw_data(Event::user("big", Value::Null), &long)],
        );
        assert!(cut.chars().count() < MAX_DATA_CHARS + 40, "{}", cut.len());
    }

    fn sample() -> Vec<Event> {
        vec![
            Event::message(Level::Info, "Training started").with_step("train"),
            Event::message(Level::Warning, "Low GPU memory").with_step("train"),
            Event::message(Level::Success, "Saved"),
            Event::message(Level::Danger, "Failed to load checkpoint"),
            Event::message(Level::Debug, "noise"),
            Event::user("checkpoint_saved", json!({"epoch": 5}))
                .with_step("train")
                .with_file("/model.pt"),
            Event::user("step_start", Value::Null).with_step("export"),
            Event::metrics("train", json!({"loss": 0.12, "accuracy": 0.95, "name": "resnet"})),
            Event::dev_event("layers ready", Some(json!({"layers": 12}))),
            progress(Some("train"), 9, 20, ProgressStatus::Running, Some(3)),
            progress(Some("train"), 20, 20, ProgressStatus::Completed, None),
            progress(None, 1, 3, ProgressStatus::Running, None),
            progress(Some("load"), 5, 10, ProgressStatus::Failed, None),
            Event::result(json!({"ok": true})),
            Event::error("boom", "execution", json!({"at": "step 3"})).with_step("train"),
            Event::error("plain", "", Value::Null),
        ]
    }

    #[test]
    fn plain_output_lines() {
        let out = render(TerminalOptions::plain(false), &sample());
        let expected = [
            "[train] INFO Training started",
            "[train] WARNING Low GPU memory",
            "SUCCESS Saved",
            "DANGER Failed to load checkpoint",
            "[train] checkpoint_saved {\"epoch\":5} (file: /model.pt)",
            "[export] step_start",
            "[train] metrics accuracy=0.95 loss=0.12 name=resnet",
            "[train] progress 9/20 45.00% eta 3s",
            "[train] progress 20/20 100.00% done in 12s",
            "progress 1/3 33.33% eta --",
            "[load] progress 5/10 50.00% failed",
            "metrics summary",
            "[train] accuracy 0.95",
            "[train] loss 0.12",
            "[train] name resnet",
            "[train] ERROR boom (execution)",
            "  details: {\"at\":\"step 3\"}",
            "ERROR plain",
        ];
        assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn verbose_adds_debug_dev_events_and_results() {
        let out = render(TerminalOptions::plain(true), &sample());
        assert!(out.contains("\nDEBUG noise\n"), "{out}");
        assert!(out.contains("\nDEV layers ready {\"layers\":12}\n"), "{out}");
        assert!(out.contains("\nresult {\"ok\":true}\n"), "{out}");
    }

    #[test]
    fn colours_follow_levels() {
        let opts = TerminalOptions {
            tty: false,
            color: true,
            verbose: false,
        };
        let out = render(opts, &sample());
        assert!(out.contains("[train] \x1b[36mINFO\x1b[0m Training started"), "{out:?}");
        assert!(out.contains("[train] \x1b[33mWARNING Low GPU memory\x1b[0m"), "{out:?}");
        assert!(out.contains("\x1b[32mSUCCESS Saved\x1b[0m"), "{out:?}");
        assert!(
            out.contains("\x1b[31mDANGER Failed to load checkpoint\x1b[0m"),
            "{out:?}"
        );
        assert!(out.contains("\x1b[1;31mERROR boom (execution)\x1b[0m"), "{out:?}");
    }

    #[test]
    fn long_data_is_cut_unless_verbose() {
        let big = json!({"blob": "x".repeat(2000)});
        let short = render(TerminalOptions::plain(false), &[Event::user("big", big.clone())]);
        assert!(short.trim_end().ends_with('…'));
        assert!(short.chars().count() < MAX_DATA_CHARS + 20);
        let full = render(TerminalOptions::plain(true), &[Event::user("big", big)]);
        assert!(full.len() > 2000);
    }

    const TTY: TerminalOptions = TerminalOptions {
        tty: true,
        color: false,
        verbose: false,
    };

    /// What an 80-column terminal shows after `out`: its lines, trailing
    /// blanks cut. Understands what the sink writes: text (wrapping at the
    /// last column), `\n`, `\r`, cursor up and
    /// down (`ESC[nA`, `ESC[nB`), clearing (`ESC[2K`, `ESC[J`) and colours
    /// (`ESC[...m`, ignored).
    fn screen(out: &str) -> Vec<String> {
        let mut rows: Vec<Vec<char>> = vec![Vec::new()];
        let (mut row, mut col) = (0usize, 0usize);
        let mut chars = out.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\n' => {
                    row += 1;
                    col = 0;
                }
                '\r' => col = 0,
                '\x1b' => {
                    assert_eq!(chars.next(), Some('['), "{out:?}");
                    let mut arg = String::new();
                    while let Some(d) = chars.next_if(|d| d.is_ascii_digit() || *d == ';') {
                        arg.push(d);
                    }
                    let n: usize = arg.parse().unwrap_or(1);
                    match chars.next() {
                        Some('A') => row = row.saturating_sub(n),
                        Some('B') => row += n,
                        Some('K') => {
                            rows.resize(rows.len().max(row + 1), Vec::new());
                            rows[row].clear();
                        }
                        Some('J') => rows.truncate(row + 1),
                        Some('m') => {}
                        other => panic!("unexpected escape {other:?} in {out:?}"),
                    }
                }
                c => {
                    // A terminal wraps when text reaches its last column.
                    if col == bars::fixed_size().1 as usize {
                        row += 1;
                        col = 0;
                    }
                    rows.resize(rows.len().max(row + 1), Vec::new());
                    let line = &mut rows[row];
                    line.resize(line.len().max(col + 1), ' ');
                    line[col] = c;
                    col += 1;
                }
            }
            rows.resize(rows.len().max(row + 1), Vec::new());
        }
        let mut lines: Vec<String> = rows
            .into_iter()
            .map(|r| r.into_iter().collect::<String>().trim_end().to_owned())
            .collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }

    #[test]
    fn tty_draws_bars_in_place_and_messages_above() {
        let events = [
            progress(Some("train"), 9, 20, ProgressStatus::Running, Some(3)),
            Event::message(Level::Warning, "Low GPU memory").with_step("train"),
            progress(Some("export"), 0, 4, ProgressStatus::Running, None),
            progress(Some("train"), 20, 20, ProgressStatus::Completed, None),
        ];
        let first = render(TTY, &events[..1]);
        assert_eq!(
            screen(&first),
            ["train     [#########-----------]  45.00%  9/20  eta 3s"],
            "{first:?}"
        );
        let out = render(TTY, &events);
        assert_eq!(
            screen(&out),
            [
                "[train] WARNING Low GPU memory",
                "train     [####################] 100.00%  20/20  done in 12s",
                "export    [--------------------]   0.00%  0/4  eta --",
            ],
            "{out:?}"
        );
        assert!(
            out.contains("45.00%  9/20  eta 3s"),
            "the first bar was drawn before the message: {out:?}"
        );
    }

    #[test]
    fn bars_are_coloured_by_status_when_colour_is_on() {
        let coloured = TerminalOptions { color: true, ..TTY };
        let running = render(coloured, &[progress(Some("t"), 1, 2, ProgressStatus::Running, None)]);
        assert!(
            running.contains("\x1b[36m##########"),
            "cyan while running: {running:?}"
        );
        let failed = render(coloured, &[progress(Some("t"), 1, 2, ProgressStatus::Failed, None)]);
        assert!(failed.contains("\x1b[31m##########"), "red when failed: {failed:?}");
        let plain = render(TTY, &[progress(Some("t"), 1, 2, ProgressStatus::Running, None)]);
        assert!(!plain.contains("m#"), "no colour unless asked: {plain:?}");
    }

    #[test]
    fn a_second_run_draws_its_bars_below_the_first_runs() {
        let sink = TerminalSink::new(Vec::new(), TTY);
        for action in ["first", "second"] {
            let run = RunInfo::new("demo", action);
            sink.start(&run);
            sink.emit(&run, &progress(Some(action), 1, 2, ProgressStatus::Running, None));
            sink.emit(&run, &Event::message(Level::Info, action));
            sink.finish(&run);
        }
        let out = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(
            screen(&out),
            [
                "INFO first",
                "first     [##########----------]  50.00%  1/2  eta --",
                "INFO second",
                "second    [##########----------]  50.00%  1/2  eta --",
            ],
            "{out:?}"
        );
    }

    #[test]
    fn tty_throttles_running_redraws() {
        let sink = TerminalSink::new(Vec::new(), TTY);
        let run = run();
        sink.start(&run);
        for i in 1..=200 {
            sink.emit(&run, &progress(Some("train"), i, 1000, ProgressStatus::Running, None));
        }
        let drawn = String::from_utf8(lock(&sink.state).out.clone())
            .unwrap()
            .matches("train ")
            .count();
        assert!(drawn < 50, "{drawn} redraws for 200 updates at once");
        sink.finish(&run);
        let out = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(
            screen(&out),
            ["train     [####----------------]  20.00%  200/1000  eta --"],
            "the final value is drawn at the end"
        );
    }

    #[test]
    fn control_characters_are_escaped_everywhere() {
        let hostile = "\x1b]0;owned\x07\x1b[2J\r\0\u{202e}txt";
        let shown = "\\x1b]0;owned\\x07\\x1b[2J\\r\\0\\u{202e}txt";
        let events = [
            Event::message(Level::Info, hostile).with_step(hostile),
            Event::message(Level::Warning, hostile),
            Event::user(hostile, json!({ "k": hostile })).with_file(hostile),
            Event::metrics("s", json!({ hostile: hostile })),
            Event::dev_event(hostile, Some(json!(hostile))),
            Event::error(hostile, hostile, json!(hostile)),
            progress(Some(hostile), 1, 2, ProgressStatus::Running, None),
        ];
        for opts in [
            TerminalOptions::plain(true),
            TerminalOptions {
                tty: true,
                color: true,
                verbose: true,
            },
        ] {
            let out = render(opts, &events);
            let shown_text = screen(&out).join("\n");
            assert!(
                !shown_text
                    .chars()
                    .any(|c| c != '\n' && super::super::escape::needs_escape(c)),
                "{out:?}"
            );
            assert!(out.contains(&format!("[{shown}] ")), "{out:?}");
            assert!(out.contains(&format!("WARNING {shown}")), "{out:?}");
            assert!(out.contains(&format!("(file: {shown})")), "{out:?}");
            assert!(out.contains(&format!("{shown}={shown}")), "{out:?}");
            assert!(out.contains(&format!("ERROR {shown} ({shown})")), "{out:?}");
            assert!(out.contains("\\u{202e}txt\""), "JSON data escapes the rest: {out:?}");
        }
    }

    #[test]
    fn a_buffered_sink_writes_late_lines_within_the_delay_and_all_at_the_end() {
        let shared = SharedBuf::default();
        let sink = TerminalSink::buffered(shared.clone(), TerminalOptions::plain(false), Duration::from_millis(20));
        let run = run();
        sink.start(&run);
        for i in 0..1000 {
            sink.emit(&run, &Event::message(Level::Info, format!("line {i}")));
        }
        assert!(
            shared.text().lines().count() < 1000,
            "lines are gathered, not written one by one"
        );
        let started = Instant::now();
        while !shared.text().contains("line 999\n") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the flusher never wrote the last line"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        sink.emit(&run, &Event::message(Level::Info, "last"));
        sink.finish(&run);
        assert!(shared.text().ends_with("INFO line 999\nINFO last\n"));
        assert_eq!(shared.text().lines().count(), 1001);
    }

    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>);

    impl SharedBuf {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap()
        }
    }

    impl Write for SharedBuf {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn at(mut event: Event, secs_after_start: f64) -> Event {
        event.time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000) + Duration::from_secs_f64(secs_after_start);
        event
    }

    #[test]
    fn overall_workflow_progress_shows_percent_only() {
        let overall = progress(None, 769, OVERALL_SCALE, ProgressStatus::Running, Some(3));
        let plain = render(TerminalOptions::plain(false), std::slice::from_ref(&overall));
        assert_eq!(plain, "progress 7.69% eta 3s\n");
        let tty = TerminalOptions {
            tty: true,
            color: false,
            verbose: false,
        };
        let bars = render(tty, &[overall]);
        assert_eq!(
            screen(&bars),
            ["overall   [#-------------------]   7.69%  eta 3s"],
            "{bars:?}"
        );
        assert!(!bars.contains("10000"), "{bars:?}");
    }

    #[test]
    fn step_time_counts_from_step_start() {
        let start = at(
            Event::user("step_start", json!({"index": 1, "total_steps": 5})).with_step("train"),
            0.0,
        );
        let done = at(progress(Some("train"), 20, 20, ProgressStatus::Completed, None), 125.0);
        let out = render(TerminalOptions::plain(false), &[start, done]);
        assert!(out.ends_with("[train] progress 20/20 100.00% done in 2m05s\n"), "{out}");
    }

    #[test]
    fn workflow_events_read_as_sentences() {
        let events = [
            Event::user("step_start", json!({"index": 1, "total_steps": 5})).with_step("predict"),
            Event::user("step_end", json!({"elapsed": 0.078, "success": true, "skipped": false})).with_step("predict"),
            Event::user(
                "step_end",
                json!({"elapsed": 0.078, "success": false, "skipped": false}),
            )
            .with_step("predict"),
            Event::user("step_end", json!({"elapsed": 0.0, "success": true, "skipped": true})).with_step("predict"),
            Event::user("rollback_start", json!({})).with_step("load"),
            Event::user("rollback_end", json!({"success": true, "error": null})).with_step("load"),
            Event::user("rollback_end", json!({"success": false, "error": "disk\x1b[2J full"})).with_step("load"),
            Event::user("step_start", json!({"odd": 1})).with_step("other"),
        ];
        let out = render(TerminalOptions::plain(false), &events);
        let expected = [
            "step predict started (2 of 5)",
            "step predict finished in 0.08 s",
            "step predict failed after 0.08 s",
            "step predict skipped",
            "rolling back step load",
            "step load rolled back",
            "rollback of step load failed: disk\\x1b[2J full",
            "[other] step_start {\"odd\":1}",
        ];
        assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
    }

    #[test]
    fn metrics_are_coalesced_per_step_and_the_final_value_printed() {
        let sink = TerminalSink::new(Vec::new(), TerminalOptions::plain(false));
        let run = run();
        sink.start(&run);
        for row in 0..5000 {
            sink.emit(&run, &Event::metrics("train", json!({"row": row})));
            sink.emit(&run, &Event::metrics("eval", json!({"row": row})));
        }
        sink.emit(&run, &Event::metrics("train", json!({"loss": 0.5})));
        sink.finish(&run);
        let out = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() < 400, "{} metrics lines for 10,001 updates", lines.len());
        assert!(
            lines.contains(&"[train] metrics row=0"),
            "the first value shows at once: {out}"
        );
        assert!(lines.contains(&"[eval] metrics row=4999"), "{out}");
        let last_train = lines.iter().rev().find(|l| l.starts_with("[train] metrics")).unwrap();
        assert_eq!(*last_train, "[train] metrics loss=0.5 row=4999");
        assert_eq!(
            lines[lines.len() - 4..],
            [
                "metrics summary",
                "[train] row 4999 (5000 updates; first 0, min 0, max 4999)",
                "[train] loss 0.5",
                "[eval] row 4999 (5000 updates; first 0, min 0, max 4999)"
            ]
        );
    }

    #[test]
    fn held_back_metrics_are_printed_before_their_step_ends() {
        let events = [
            Event::metrics("train", json!({"epoch": 1})),
            Event::metrics("train", json!({"epoch": 3})),
            Event::user("step_end", json!({"elapsed": 2.1, "success": true, "skipped": false})).with_step("train"),
            Event::message(Level::Info, "after"),
        ];
        let out = render(TerminalOptions::plain(false), &events);
        let expected = [
            "[train] metrics epoch=1",
            "[train] metrics epoch=3",
            "step train finished in 2.10 s",
            "INFO after",
            "metrics summary",
            "[train] epoch 3 (2 updates; first 1, min 1, max 3)",
        ];
        assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
    }

    #[test]
    fn every_call_of_a_quick_run_is_a_line_before_the_next_message_and_the_summary_ends_it() {
        let events = [
            Event::metrics("train", json!({"epoch": 1, "loss": 0.9})),
            Event::metrics("train", json!({"epoch": 2, "loss": 0.5})),
            Event::metrics("train", json!({"epoch": 3, "loss": 0.25})),
            Event::message(Level::Success, "Training completed"),
            Event::result(json!({"ok": true})),
        ];
        let out = render(TerminalOptions::plain(false), &events);
        let expected = [
            "[train] metrics epoch=1 loss=0.9",
            "[train] metrics epoch=2 loss=0.5",
            "[train] metrics epoch=3 loss=0.25",
            "SUCCESS Training completed",
            "metrics summary",
            "[train] epoch 3 (3 updates; first 1, min 1, max 3)",
            "[train] loss 0.25 (3 updates; first 0.9, min 0.25, max 0.9)",
        ];
        assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
        let tty = render(TTY, &events);
        assert_eq!(
            screen(&tty)[4..],
            [
                "metrics summary",
                "  [train]",
                "    epoch  3     ▁▅█  min 1  max 3",
                "    loss   0.25  █▄▁  min 0.25  max 0.9"
            ],
            "{tty:?}"
        );
    }

    #[test]
    fn held_lines_keep_their_order_before_other_lines() {
        let sink = TerminalSink::new(Vec::new(), TerminalOptions::plain(false));
        let run = run();
        sink.start(&run);
        for i in 0..1000 {
            sink.emit(&run, &Event::metrics("train", json!({ "i": i })));
        }
        sink.emit(&run, &Event::message(Level::Info, "between"));
        sink.emit(&run, &Event::metrics("train", json!({ "late": true })));
        sink.finish(&run);
        let out = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        let between = lines.iter().position(|l| *l == "INFO between").unwrap();
        assert_eq!(
            lines[between - 1],
            "[train] metrics i=999",
            "held keys print before the next line: {out}"
        );
        assert!(lines[between + 1].starts_with("[train] metrics late=true"), "{out}");
        assert!(between < 200, "a long burst is coalesced: {out}");
    }

    #[test]
    fn a_held_line_reaches_the_terminal_within_a_frame_without_further_events() {
        let shared = SharedBuf::default();
        let sink = TerminalSink::buffered(shared.clone(), TerminalOptions::plain(false), Duration::from_millis(20));
        let run = run();
        sink.start(&run);
        for i in 0..=metrics_lines::BURST as u64 {
            sink.emit(&run, &Event::metrics("train", json!({ "i": i })));
        }
        let held = format!("[train] metrics i={}\n", metrics_lines::BURST as u64);
        let started = Instant::now();
        while !shared.text().contains(&held) {
            assert!(started.elapsed() < Duration::from_secs(10), "{}", shared.text());
            std::thread::sleep(Duration::from_millis(5));
        }
        sink.finish(&run);
    }

    #[test]
    fn without_a_terminal_the_last_progress_of_each_step_is_printed() {
        let events: Vec<Event> = (1..=3)
            .flat_map(|i| {
                [
                    progress(Some("train"), i, 3, ProgressStatus::Running, None),
                    progress(Some("load"), i, 4, ProgressStatus::Running, None),
                ]
            })
            .collect();
        let out = render(TerminalOptions::plain(false), &events);
        assert!(
            out.ends_with("[train] progress 3/3 100.00% eta --\n[load] progress 3/4 75.00% eta --\n"),
            "{out}"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(Secs(2.6).to_string(), "3s");
        assert_eq!(Secs(125.0).to_string(), "2m05s");
        assert_eq!(Secs(3720.0).to_string(), "1h02m");
        assert_eq!(Secs(f64::NAN).to_string(), "0s");
    }

    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_errors_are_kept_not_panicked() {
        let sink = TerminalSink::new(Broken, TerminalOptions::plain(false));
        let run = run();
        sink.emit(&run, &Event::message(Level::Info, "hi"));
        sink.emit(&run, &Event::message(Level::Info, "again"));
        sink.finish(&run);
        assert_eq!(sink.error().as_deref(), Some("closed"));
    }
}
