//! Per-step metrics as `set_metrics` builds them: each call merges its keys
//! into the step's object (later keys overwrite, shallowly).
//!
//! A `metrics` event carries only the keys of the call that produced it, so
//! the event stream grows with what the plugin reports, not with the square
//! of it (an action setting 10,000 distinct keys one by one would otherwise
//! write 50 million keys). The merged view is not lost: at the end of a run
//! the host emits one `metrics_summary` event per step with every key
//! ([`MetricsBook::summary_events`]), and [`MetricsBook::get`] and
//! [`MetricsBook::snapshot`] give it to programs embedding the host.

use std::sync::Mutex;

use serde_json::{Map, Value};

use super::{lock, Event, EventKind, Level};

/// The event name of a step's merged metrics, emitted at the end of a run.
pub const SUMMARY_EVENT: &str = "metrics_summary";

/// Why a `set_metrics` call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("set_metrics needs a non-empty step name")]
    EmptyStep,
}

/// The merged metrics of every step of a run, in the order steps first
/// reported metrics. Shared between threads.
#[derive(Debug, Default)]
pub struct MetricsBook {
    steps: Mutex<Vec<(String, Map<String, Value>)>>,
}

impl MetricsBook {
    pub fn new() -> Self {
        MetricsBook::default()
    }

    /// Merges `value` into `step`'s metrics and returns the `metrics` event
    /// to emit, which carries `value` only. A step name that is empty or only
    /// whitespace is refused.
    pub fn merge(&self, step: &str, value: Map<String, Value>) -> Result<Event, MetricsError> {
        if step.trim().is_empty() {
            return Err(MetricsError::EmptyStep);
        }
        let mut steps = lock(&self.steps);
        let merged = match steps.iter_mut().position(|(name, _)| name == step) {
            Some(i) => &mut steps[i].1,
            None => {
                steps.push((step.to_owned(), Map::new()));
                &mut steps.last_mut().expect("just pushed").1
            }
        };
        merged.extend(value.iter().map(|(k, v)| (k.clone(), v.clone())));
        drop(steps);
        Ok(Event::metrics(step, Value::Object(value)))
    }

    /// One `metrics_summary` event per step that reported metrics, in
    /// first-reported order, each with the step's merged metrics.
    pub fn summary_events(&self) -> Vec<Event> {
        lock(&self.steps)
            .iter()
            .map(|(step, merged)| {
                Event::new(
                    EventKind::Metrics,
                    SUMMARY_EVENT,
                    Level::Info,
                    Value::Object(merged.clone()),
                )
                .with_step(step)
            })
            .collect()
    }

    /// The merged metrics of `step`, if it reported any.
    pub fn get(&self, step: &str) -> Option<Map<String, Value>> {
        lock(&self.steps)
            .iter()
            .find(|(name, _)| name == step)
            .map(|(_, m)| m.clone())
    }

    /// Every step's merged metrics, in first-reported order.
    pub fn snapshot(&self) -> Vec<(String, Map<String, Value>)> {
        lock(&self.steps).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn events_carry_the_call_and_the_book_keeps_the_merge() {
        let book = MetricsBook::new();
        let first = book.merge("train", obj(json!({"loss": 0.5, "epoch": 1}))).unwrap();
        assert_eq!((first.kind, first.event.as_str()), (EventKind::Metrics, "metrics"));
        assert_eq!(first.step.as_deref(), Some("train"));
        assert_eq!(first.data, json!({"loss": 0.5, "epoch": 1}));
        let second = book
            .merge("train", obj(json!({"loss": 0.12, "accuracy": 0.95})))
            .unwrap();
        assert_eq!(
            second.data,
            json!({"loss": 0.12, "accuracy": 0.95}),
            "only the call's keys"
        );
        book.merge("eval", obj(json!({"f1": 0.8}))).unwrap();
        assert_eq!(
            Value::Object(book.get("train").unwrap()),
            json!({"loss": 0.12, "epoch": 1, "accuracy": 0.95})
        );
        assert_eq!(book.get("missing"), None);
        let summary = book.summary_events();
        let steps: Vec<_> = summary
            .iter()
            .map(|e| (e.step.clone().unwrap(), e.data.clone()))
            .collect();
        assert_eq!(
            steps,
            [
                ("train".to_owned(), json!({"loss": 0.12, "epoch": 1, "accuracy": 0.95})),
                ("eval".to_owned(), json!({"f1": 0.8}))
            ]
        );
        assert!(summary
            .iter()
            .all(|e| e.event == SUMMARY_EVENT && e.kind == EventKind::Metrics));
    }

    #[test]
    fn merge_is_shallow() {
        let book = MetricsBook::new();
        book.merge("s", obj(json!({"per_class": {"a": 1, "b": 2}}))).unwrap();
        book.merge("s", obj(json!({"per_class": {"a": 3}}))).unwrap();
        assert_eq!(Value::Object(book.get("s").unwrap()), json!({"per_class": {"a": 3}}));
    }

    #[test]
    fn events_grow_linearly_with_distinct_keys() {
        let book = MetricsBook::new();
        let total: usize = (0..10_000)
            .map(|i| {
                let event = book.merge("s", obj(json!({ format!("key_{i}"): i }))).unwrap();
                event.data.as_object().unwrap().len()
            })
            .sum();
        assert_eq!(total, 10_000);
        assert_eq!(book.summary_events()[0].data.as_object().unwrap().len(), 10_000);
    }

    #[test]
    fn empty_step_is_refused() {
        let book = MetricsBook::new();
        for step in ["", "   "] {
            let err = book.merge(step, Map::new()).unwrap_err();
            assert_eq!(err.to_string(), "set_metrics needs a non-empty step name");
        }
        assert!(book.snapshot().is_empty());
    }
}
