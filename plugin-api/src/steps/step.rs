//! One phase of a workflow (`BaseStep[Ctx]` in the guide) and what it
//! returns.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::action::ActionError;
use crate::utc::UtcDateTime;

/// The outcome of a step: whether it succeeded, its data, the error, what
/// its rollback needs to undo it, whether it was skipped, and when. As in
/// the original, `data` and `rollback_data` are `{}` unless given, and the
/// timestamp is a UTC date-time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepResult {
    /// Whether the step did its work.
    pub success: bool,
    /// What the step produced (kept in the workflow report).
    pub data: Value,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// What `rollback` needs to undo the step (a path it created, an id...).
    pub rollback_data: Value,
    /// Whether the step was skipped.
    pub skipped: bool,
    /// When the result was made (serialised as `2026-06-11T03:04:05.123456+00:00`).
    pub timestamp: UtcDateTime,
}

impl Default for StepResult {
    /// A successful step with no data (`StepResult()` in the original).
    fn default() -> Self {
        Self::ok(Value::Object(Map::new()))
    }
}

impl StepResult {
    /// A successful step with its data.
    pub fn ok(data: Value) -> Self {
        Self {
            success: true,
            data,
            error: None,
            rollback_data: Value::Object(Map::new()),
            skipped: false,
            timestamp: UtcDateTime::now(),
        }
    }

    /// A failed step.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            success: false,
            error: Some(error.into()),
            ..Self::default()
        }
    }

    /// A skipped step (counts as done).
    pub fn skipped() -> Self {
        Self {
            skipped: true,
            ..Self::default()
        }
    }

    /// Records what rollback needs.
    pub fn with_rollback_data(mut self, rollback_data: Value) -> Self {
        self.rollback_data = rollback_data;
        self
    }
}

/// A step of a workflow over the context `C`.
///
/// `execute` may use `?`: an error becomes a failed [`StepResult`], and so
/// does a panic.
pub trait Step<C>: Send {
    /// The step's name, unique in its registry.
    fn name(&self) -> &str;

    /// Does the step's work.
    fn execute(&mut self, ctx: &mut C) -> Result<StepResult, ActionError>;

    /// Whether the step has nothing to do this time (counted as done).
    fn can_skip(&self, _ctx: &C) -> bool {
        false
    }

    /// Undoes the step after a later step failed; `result` is what its
    /// `execute` returned (see `rollback_data`).
    fn rollback(&mut self, _ctx: &mut C, _result: &StepResult) -> Result<(), ActionError> {
        Ok(())
    }

    /// The step's share of the overall progress, relative to the others.
    fn progress_weight(&self) -> f64 {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_and_rollback_data_default_to_empty_objects_and_the_time_is_utc() {
        // synapse-sdk 2026.2.17: `StepResult()` has data={}, rollback_data={},
        // timestamp=datetime(..., tzinfo=timezone.utc).
        for result in [StepResult::default(), StepResult::failed("x"), StepResult::skipped()] {
            assert_eq!(result.data, json!({}));
            assert_eq!(result.rollback_data, json!({}));
            let json = serde_json::to_value(&result).unwrap();
            let timestamp = json["timestamp"].as_str().unwrap();
            assert!(timestamp.ends_with("+00:00") && timestamp.contains('T'), "{timestamp}");
        }
        assert!(StepResult::default().success);
        assert!(StepResult::skipped().skipped);
    }
}
