//! When the terminal prints a step's metrics.
//!
//! Each `set_metrics` call is a line of its own while a step reports at a
//! pace people can read: a step may print a burst of [`BURST`] lines at
//! once (every epoch of a quick training run) and then [`PER_SECOND`] a
//! second (a token bucket per step). Calls
//! beyond that are merged into the step's held line (a key set again
//! replaces its held value, so what repeats within a frame is coalesced;
//! the last value of every key is kept), which is printed as soon as the
//! step may print again, at its `step_end`, at the end of the run, and
//! before any other line, so that lines keep the order of the events they
//! show.

use std::time::Instant;

use serde_json::{Map, Value};

/// Lines a step may print at once.
pub const BURST: f64 = 100.0;
/// Lines a step may print a second once its burst is spent.
pub const PER_SECOND: f64 = 10.0;

/// A line to print: a step and the metrics keys it shows.
pub type Line = (Option<String>, Map<String, Value>);

/// One step's held keys and allowance.
struct StepLines {
    step: Option<String>,
    held: Map<String, Value>,
    /// When the held line was started (to print held lines in order).
    held_since: Option<Instant>,
    tokens: f64,
    refilled: Instant,
}

impl StepLines {
    fn refill(&mut self, now: Instant) {
        let gained = now.saturating_duration_since(self.refilled).as_secs_f64() * PER_SECOND;
        self.tokens = (self.tokens + gained).min(BURST);
        self.refilled = now;
    }
}

/// The terminal's metrics lines of a run, per step.
#[derive(Default)]
pub struct MetricsLines {
    steps: Vec<StepLines>,
}

impl MetricsLines {
    /// Takes one call's keys: returns the line to print now (the step's held
    /// keys with these merged in), or `None` when the step has printed its
    /// allowance and the keys are held.
    pub fn offer(&mut self, step: Option<&str>, keys: &Map<String, Value>, now: Instant) -> Option<Map<String, Value>> {
        let slot = match self.steps.iter().position(|s| s.step.as_deref() == step) {
            Some(slot) => slot,
            None => {
                self.steps.push(StepLines {
                    step: step.map(str::to_owned),
                    held: Map::new(),
                    held_since: None,
                    tokens: BURST,
                    refilled: now,
                });
                self.steps.len() - 1
            }
        };
        let lines = &mut self.steps[slot];
        lines.refill(now);
        if lines.tokens >= 1.0 {
            lines.tokens -= 1.0;
            let mut line = std::mem::take(&mut lines.held);
            line.extend(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
            lines.held_since = None;
            return Some(line);
        }
        lines.held_since.get_or_insert(now);
        lines.held.extend(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
        None
    }

    /// Takes the held lines of every step (`None`) or of one, oldest first.
    pub fn take_held(&mut self, only_step: Option<&str>) -> Vec<Line> {
        let mut held: Vec<(Instant, Line)> = self
            .steps
            .iter_mut()
            .filter(|s| !s.held.is_empty() && only_step.is_none_or(|only| s.step.as_deref() == Some(only)))
            .map(|s| {
                let since = s.held_since.take().unwrap_or_else(Instant::now);
                (since, (s.step.clone(), std::mem::take(&mut s.held)))
            })
            .collect();
        held.sort_by_key(|(since, _)| *since);
        held.into_iter().map(|(_, line)| line).collect()
    }

    /// Whether a held line's step may print again by `now`; then every
    /// held line is due (they print together, in order).
    pub fn any_due(&mut self, now: Instant) -> bool {
        let mut due = false;
        for lines in self.steps.iter_mut().filter(|s| !s.held.is_empty()) {
            lines.refill(now);
            if lines.tokens >= 1.0 {
                lines.tokens -= 1.0;
                due = true;
            }
        }
        due
    }

    pub fn has_held(&self) -> bool {
        self.steps.iter().any(|s| !s.held.is_empty())
    }

    pub fn clear(&mut self) {
        self.steps.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn keys(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_burst_prints_call_by_call_then_holds_and_merges() {
        let mut lines = MetricsLines::default();
        let t0 = Instant::now();
        for epoch in 1..=BURST as u64 {
            let line = lines.offer(Some("train"), &keys(json!({"epoch": epoch})), t0);
            assert_eq!(
                line,
                Some(keys(json!({"epoch": epoch}))),
                "every call of a burst is a line"
            );
        }
        assert_eq!(
            lines.offer(Some("train"), &keys(json!({"epoch": 101, "loss": 1})), t0),
            None
        );
        assert_eq!(lines.offer(Some("train"), &keys(json!({"epoch": 102})), t0), None);
        assert!(lines.has_held());
        assert!(!lines.any_due(t0));
        let later = t0 + Duration::from_millis(150);
        assert_eq!(
            lines.offer(Some("train"), &keys(json!({"epoch": 103})), later),
            Some(keys(json!({"epoch": 103, "loss": 1}))),
            "the held keys print with the next call once allowed, the last value of each"
        );
        assert!(!lines.has_held());
    }

    #[test]
    fn held_lines_come_out_oldest_first_and_when_due() {
        let mut lines = MetricsLines::default();
        let t0 = Instant::now();
        for step in ["a", "b"] {
            for _ in 0..BURST as usize {
                lines.offer(Some(step), &keys(json!({"x": 0})), t0);
            }
        }
        lines.offer(Some("b"), &keys(json!({"x": 1})), t0);
        lines.offer(Some("a"), &keys(json!({"x": 2})), t0 + Duration::from_millis(1));
        assert!(lines.any_due(t0 + Duration::from_millis(200)));
        let held = lines.take_held(None);
        let steps: Vec<_> = held.iter().map(|(s, _)| s.clone().unwrap()).collect();
        assert_eq!(steps, ["b", "a"]);
        assert!(lines.take_held(None).is_empty());
    }

    #[test]
    fn one_steps_held_line_can_be_taken_alone() {
        let mut lines = MetricsLines::default();
        let t0 = Instant::now();
        for step in ["a", "b"] {
            for i in 0..=BURST as u64 {
                lines.offer(Some(step), &keys(json!({ "i": i })), t0);
            }
        }
        assert_eq!(
            lines.take_held(Some("a")),
            [(Some("a".to_owned()), keys(json!({ "i": BURST as u64 })))]
        );
        assert!(lines.has_held(), "b's line is still held");
    }
}
