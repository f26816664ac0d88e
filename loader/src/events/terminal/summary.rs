//! The end-of-run metrics summary: each step's final metrics, a numeric
//! metric with a sparkline of its history on a terminal (Unicode block
//! characters) and with its first, lowest and highest values in plain text
//! elsewhere.
//!
//! The history a sparkline needs is kept in a fixed space per key: up to
//! `SAMPLES` averages of equal runs of updates; when they fill up,
//! neighbours are merged and each average covers twice as many updates, so
//! a key set a million times costs what one set a hundred times does. The
//! final, first, lowest and highest values are kept exactly.

use std::collections::HashMap;
use std::io::Write as _;

use serde_json::{Map, Value};

use super::{paint, TerminalOptions, CYAN, DIM};
use crate::events::escape::Escaped;

/// Averages kept per numeric key.
const SAMPLES: usize = 64;
/// A sparkline's width in characters at most.
const SPARK_CHARS: usize = 24;
/// Keys shown per step at most (the events stream has them all).
const MAX_KEYS: usize = 24;
/// Key names are cut to this many characters.
const MAX_KEY_CHARS: usize = 24;
/// The eight heights of a sparkline.
const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A numeric key's history.
#[derive(Debug, Clone)]
struct Series {
    count: u64,
    first: f64,
    min: f64,
    max: f64,
    /// Averages of `stride` consecutive updates each.
    samples: Vec<f64>,
    stride: u64,
    partial_sum: f64,
    partial_count: u64,
}

impl Series {
    fn new(value: f64) -> Self {
        let mut series = Series {
            count: 0,
            first: value,
            min: value,
            max: value,
            samples: Vec::new(),
            stride: 1,
            partial_sum: 0.0,
            partial_count: 0,
        };
        series.push(value);
        series
    }

    fn push(&mut self, value: f64) {
        self.count += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.partial_sum += value;
        self.partial_count += 1;
        if self.partial_count < self.stride {
            return;
        }
        self.samples.push(self.partial_sum / self.stride as f64);
        self.partial_sum = 0.0;
        self.partial_count = 0;
        if self.samples.len() == SAMPLES {
            self.samples = self
                .samples
                .chunks(2)
                .map(|pair| pair.iter().sum::<f64>() / 2.0)
                .collect();
            self.stride *= 2;
        }
    }

    /// The history, oldest first, the updates not yet averaged last.
    fn history(&self) -> Vec<f64> {
        let mut values = self.samples.clone();
        if self.partial_count > 0 {
            values.push(self.partial_sum / self.partial_count as f64);
        }
        values
    }
}

/// One key's final value and, while it is a number, its history.
#[derive(Debug, Clone)]
struct KeyHistory {
    last: Value,
    series: Option<Series>,
}

#[derive(Debug, Default)]
struct StepHistory {
    step: Option<String>,
    /// Keys in the order they were first set.
    keys: Vec<(String, KeyHistory)>,
    index: HashMap<String, usize>,
}

impl StepHistory {
    /// Where `key` is kept: found by comparing names while the step has
    /// few keys (cheaper than hashing them), through the index beyond.
    fn position(&self, key: &str) -> Option<usize> {
        if self.keys.len() <= LINEAR_KEYS {
            self.keys.iter().position(|(name, _)| name == key)
        } else {
            self.index.get(key).copied()
        }
    }
}

/// Steps with at most this many keys find them by comparing names.
const LINEAR_KEYS: usize = 16;

/// Every step's metrics history of a run, in the order steps first
/// reported metrics.
#[derive(Debug, Default)]
pub struct MetricsHistory {
    steps: Vec<StepHistory>,
}

impl MetricsHistory {
    /// Adds one `set_metrics` call's keys.
    pub fn record(&mut self, step: Option<&str>, keys: &Map<String, Value>) {
        let slot = match self.steps.iter().position(|s| s.step.as_deref() == step) {
            Some(slot) => slot,
            None => {
                self.steps.push(StepHistory {
                    step: step.map(str::to_owned),
                    ..StepHistory::default()
                });
                self.steps.len() - 1
            }
        };
        let history = &mut self.steps[slot];
        for (key, value) in keys {
            let number = value.as_f64().filter(|n| n.is_finite());
            match history.position(key) {
                Some(i) => {
                    let kept = &mut history.keys[i].1;
                    kept.last = value.clone();
                    match (number, &mut kept.series) {
                        (Some(n), Some(series)) => series.push(n),
                        (Some(n), None) => kept.series = Some(Series::new(n)),
                        (None, _) => kept.series = None,
                    }
                }
                None => {
                    history.index.insert(key.clone(), history.keys.len());
                    history.keys.push((
                        key.clone(),
                        KeyHistory {
                            last: value.clone(),
                            series: number.map(Series::new),
                        },
                    ));
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.steps.iter().all(|s| s.keys.is_empty())
    }

    pub fn clear(&mut self) {
        self.steps.clear();
    }

    /// Writes the summary: on a terminal a block per step with a sparkline
    /// per numeric key, elsewhere one plain line per key.
    pub fn render(&self, buf: &mut Vec<u8>, opts: TerminalOptions) {
        if self.is_empty() {
            return;
        }
        paint(buf, opts.color, CYAN, "metrics summary");
        buf.push(b'\n');
        for step in self.steps.iter().filter(|s| !s.keys.is_empty()) {
            if opts.tty {
                render_step_block(buf, step, opts);
            } else {
                render_step_lines(buf, step, opts);
            }
        }
    }
}

/// `  [train]` then `    loss    0.1636  █▃▁  min 0.1636  max 0.2299` per key.
fn render_step_block(buf: &mut Vec<u8>, step: &StepHistory, opts: TerminalOptions) {
    let _ = writeln!(buf, "  [{}]", Escaped(step.step.as_deref().unwrap_or("metrics")));
    let shown = &step.keys[..step.keys.len().min(MAX_KEYS)];
    let names: Vec<String> = shown.iter().map(|(key, _)| key_label(key)).collect();
    let values: Vec<String> = shown.iter().map(|(_, kept)| value_text(&kept.last, opts)).collect();
    let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let value_width = values.iter().map(|v| v.chars().count()).max().unwrap_or(0);
    for ((name, value), (_, kept)) in names.iter().zip(&values).zip(shown) {
        let _ = write!(buf, "    {name:<name_width$}  {value:<value_width$}");
        if let Some(series) = kept.series.as_ref().filter(|s| s.count > 1) {
            buf.extend_from_slice(b"  ");
            paint(buf, opts.color, CYAN, sparkline(&series.history()));
            paint(
                buf,
                opts.color,
                DIM,
                format_args!("  min {}  max {}", short(series.min), short(series.max)),
            );
        }
        trim_trailing_spaces(buf);
        buf.push(b'\n');
    }
    more_keys_line(buf, step, "    ");
}

/// `[train] loss 0.1636 (3 updates; first 0.2299, min 0.1636, max 0.2299)`.
fn render_step_lines(buf: &mut Vec<u8>, step: &StepHistory, opts: TerminalOptions) {
    let prefix = match &step.step {
        Some(name) => format!("[{}] ", Escaped(name)),
        None => String::new(),
    };
    for (key, kept) in step.keys.iter().take(MAX_KEYS) {
        let _ = write!(buf, "{prefix}{} {}", key_label(key), value_text(&kept.last, opts));
        if let Some(series) = kept.series.as_ref().filter(|s| s.count > 1) {
            let _ = write!(
                buf,
                " ({} updates; first {}, min {}, max {})",
                series.count,
                short(series.first),
                short(series.min),
                short(series.max)
            );
        }
        buf.push(b'\n');
    }
    more_keys_line(buf, step, &prefix);
}

fn more_keys_line(buf: &mut Vec<u8>, step: &StepHistory, indent: &str) {
    if step.keys.len() > MAX_KEYS {
        let _ = writeln!(
            buf,
            "{indent}… and {} more keys (the --events stream has every one)",
            step.keys.len() - MAX_KEYS
        );
    }
}

fn trim_trailing_spaces(buf: &mut Vec<u8>) {
    while buf.last() == Some(&b' ') {
        buf.pop();
    }
}

fn key_label(key: &str) -> String {
    let escaped = Escaped(key).to_string();
    match escaped.char_indices().nth(MAX_KEY_CHARS) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}

/// A final value as the summary shows it: numbers short, text as it is,
/// anything else as compact JSON (cut unless verbose).
fn value_text(value: &Value, opts: TerminalOptions) -> String {
    match value {
        Value::Number(n) if n.is_f64() => n.as_f64().map(short).unwrap_or_else(|| n.to_string()),
        Value::Number(n) => n.to_string(),
        Value::String(s) => Escaped(s).to_string(),
        other => super::compact_value(opts, other),
    }
}

/// A number in at most about six characters of precision: `0.1636`,
/// `12.35`, `1235`, `2.5e7`, `1.5e-5`.
pub fn short(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == x.trunc() && x.abs() < 1e6 {
        return format!("{x:.0}");
    }
    let magnitude = x.abs();
    if !(1e-3..1e6).contains(&magnitude) {
        let text = format!("{x:.3e}");
        return match text.split_once('e') {
            Some((mantissa, exponent)) => {
                let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
                format!("{mantissa}e{exponent}")
            }
            None => text,
        };
    }
    let decimals = (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// The history as at most `SPARK_CHARS` block characters, each the
/// average of an equal share of it, scaled from its lowest to its highest.
pub fn sparkline(history: &[f64]) -> String {
    if history.is_empty() {
        return String::new();
    }
    let cells = history.len().min(SPARK_CHARS);
    let averages: Vec<f64> = (0..cells)
        .map(|cell| {
            let from = cell * history.len() / cells;
            let to = ((cell + 1) * history.len() / cells).max(from + 1);
            history[from..to].iter().sum::<f64>() / (to - from) as f64
        })
        .collect();
    let low = averages.iter().copied().fold(f64::INFINITY, f64::min);
    let high = averages.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    averages
        .iter()
        .map(|&v| {
            if high - low <= f64::EPSILON * high.abs().max(1.0) {
                BLOCKS[3]
            } else {
                let level = ((v - low) / (high - low) * (BLOCKS.len() - 1) as f64).round() as usize;
                BLOCKS[level.min(BLOCKS.len() - 1)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn sparklines_scale_from_lowest_to_highest() {
        assert_eq!(sparkline(&[3.0, 2.0, 1.0]), "█▅▁");
        assert_eq!(sparkline(&[1.0, 1.0]), "▄▄", "a flat line sits in the middle");
        assert_eq!(
            sparkline(&(0..100).map(f64::from).collect::<Vec<_>>()).chars().count(),
            SPARK_CHARS
        );
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(short(0.16358751678241198), "0.1636");
        assert_eq!(short(3.0), "3");
        assert_eq!(short(12.3456), "12.35");
        assert_eq!(short(1234.56), "1235");
        assert_eq!(short(0.000015), "1.5e-5");
        assert_eq!(short(-0.5), "-0.5");
        assert_eq!(short(2.5e7), "2.5e7");
    }

    #[test]
    fn a_long_history_keeps_its_shape_in_fixed_space() {
        let mut series = Series::new(0.0);
        for i in 1..1_000_000u32 {
            series.push(f64::from(i));
        }
        assert_eq!(series.count, 1_000_000);
        assert!(series.samples.len() < SAMPLES);
        assert_eq!((series.first, series.min, series.max), (0.0, 0.0, 999_999.0));
        let history = series.history();
        assert!(history.windows(2).all(|w| w[0] < w[1]), "still rising");
        assert_eq!(sparkline(&history).chars().last(), Some('█'));
    }

    #[test]
    fn the_summary_shows_final_values_with_their_history() {
        let mut history = MetricsHistory::default();
        history.record(Some("train"), &keys(json!({"epoch": 1, "loss": 0.9, "name": "lr"})));
        history.record(Some("train"), &keys(json!({"epoch": 2, "loss": 0.5})));
        history.record(Some("train"), &keys(json!({"epoch": 3, "loss": 0.25})));
        history.record(Some("eval"), &keys(json!({"f1": 0.8})));
        let mut plain = Vec::new();
        history.render(&mut plain, TerminalOptions::plain(false));
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            "metrics summary\n\
             [train] epoch 3 (3 updates; first 1, min 1, max 3)\n\
             [train] loss 0.25 (3 updates; first 0.9, min 0.25, max 0.9)\n\
             [train] name lr\n\
             [eval] f1 0.8\n"
        );
        let mut tty = Vec::new();
        let opts = TerminalOptions {
            tty: true,
            ..TerminalOptions::plain(false)
        };
        history.render(&mut tty, opts);
        assert_eq!(
            String::from_utf8(tty).unwrap(),
            "metrics summary\n  [train]\n    epoch  3     ▁▅█  min 1  max 3\n    loss   0.25  █▄▁  min 0.25  max 0.9\n    name   lr\n  [eval]\n    f1  0.8\n"
        );
    }

    #[test]
    fn a_key_that_stops_being_a_number_loses_its_sparkline() {
        let mut history = MetricsHistory::default();
        history.record(None, &keys(json!({"x": 1})));
        history.record(None, &keys(json!({"x": 2})));
        history.record(None, &keys(json!({"x": "done"})));
        let mut plain = Vec::new();
        history.render(&mut plain, TerminalOptions::plain(false));
        assert_eq!(String::from_utf8(plain).unwrap(), "metrics summary\nx done\n");
    }

    #[test]
    fn many_keys_are_cut_with_a_count() {
        let mut history = MetricsHistory::default();
        for i in 0..100 {
            history.record(Some("keys"), &keys(json!({ format!("key_{i}"): i })));
        }
        let mut plain = Vec::new();
        history.render(&mut plain, TerminalOptions::plain(false));
        let text = String::from_utf8(plain).unwrap();
        assert_eq!(text.lines().count(), 1 + MAX_KEYS + 1, "{text}");
        assert!(text.ends_with("[keys] … and 76 more keys (the --events stream has every one)\n"));
    }
}
