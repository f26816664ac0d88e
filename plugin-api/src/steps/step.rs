//! One phase of a workflow (`BaseStep[Ctx]` in the guide) and what it
//! returns.

use serde::Serialize;
use serde_json::Value;

use crate::action::ActionError;

/// The outcome of a step: whether it succeeded, its data, the error, what
/// its rollback needs to undo it, whether it was skipped, and when.
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
    /// Unix seconds at which the step ended.
    pub timestamp: f64,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl StepResult {
    /// A successful step with its data.
    pub fn ok(data: Value) -> Self {
        Self {
            success: true,
            data,
            error: None,
            rollback_data: Value::Null,
            skipped: false,
            timestamp: now(),
        }
    }

    /// A failed step.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            success: false,
            error: Some(error.into()),
            ..Self::ok(Value::Null)
        }
    }

    /// A skipped step (counts as done).
    pub fn skipped() -> Self {
        Self {
            skipped: true,
            ..Self::ok(Value::Null)
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
