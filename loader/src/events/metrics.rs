//! Per-step metrics as `set_metrics` builds them: each call merges its keys
//! into the step's object (later keys overwrite, shallowly) and the merged
//! object is what a `metrics` event carries.

use std::sync::Mutex;

use serde_json::{Map, Value};

use super::lock;

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

    /// Merges `value` into `step`'s metrics and returns the merged object.
    /// A step name that is empty or only whitespace is refused.
    pub fn merge(&self, step: &str, value: Map<String, Value>) -> Result<Value, MetricsError> {
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
        merged.extend(value);
        Ok(Value::Object(merged.clone()))
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
    fn later_keys_overwrite_and_others_stay() {
        let book = MetricsBook::new();
        assert_eq!(
            book.merge("train", obj(json!({"loss": 0.5, "epoch": 1}))).unwrap(),
            json!({"loss": 0.5, "epoch": 1})
        );
        assert_eq!(
            book.merge("train", obj(json!({"loss": 0.12, "accuracy": 0.95})))
                .unwrap(),
            json!({"loss": 0.12, "epoch": 1, "accuracy": 0.95})
        );
        assert_eq!(book.merge("eval", obj(json!({"f1": 0.8}))).unwrap(), json!({"f1": 0.8}));
        assert_eq!(book.get("train").unwrap()["loss"], json!(0.12));
        assert_eq!(book.get("missing"), None);
        let names: Vec<_> = book.snapshot().into_iter().map(|(s, _)| s).collect();
        assert_eq!(names, ["train", "eval"]);
    }

    #[test]
    fn merge_is_shallow() {
        let book = MetricsBook::new();
        book.merge("s", obj(json!({"per_class": {"a": 1, "b": 2}}))).unwrap();
        let merged = book.merge("s", obj(json!({"per_class": {"a": 3}}))).unwrap();
        assert_eq!(merged, json!({"per_class": {"a": 3}}));
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
