//! `BaseStepContext`, which every workflow context embeds: the runtime
//! context, the step running now, the results so far, and the overall
//! progress, which its `set_progress` advances along with the step's own.
//!
//! The running step is also set on the runtime context's logger, so calls
//! made through `runtime_ctx` inside a step are attributed to it, as in the
//! original. The overall bar is the step-less progress key, which the
//! orchestrator writes directly: a step's own totals never land on it.

use serde::Serialize;

use super::step::StepResult;
use crate::context::{ContextError, MessageLevel, RuntimeContext};

/// Overall progress is reported as `x / OVERALL_SCALE` on the step-less key,
/// so that its percent has two decimals. While a workflow runs, only the
/// orchestrator writes that key (step-less calls go to the running step).
pub const OVERALL_SCALE: u64 = 10_000;

/// The part of a workflow's progress the running step covers.
#[derive(Debug, Clone, Copy, Default)]
struct ProgressPlan {
    /// Weight of the steps done before this one.
    before: f64,
    /// This step's weight.
    weight: f64,
    /// All steps' weight.
    total: f64,
}

/// The base of every workflow context (`runtime_ctx`, current step, results).
pub struct BaseStepContext {
    /// The action's runtime context.
    pub runtime_ctx: RuntimeContext,
    current_step: Option<String>,
    results: Vec<(String, StepResult)>,
    errors: Vec<String>,
    plan: ProgressPlan,
    overall: u64,
    step_total: Option<u64>,
}

impl BaseStepContext {
    /// A context for a workflow run inside `runtime_ctx`, before any step.
    pub fn new(runtime_ctx: RuntimeContext) -> Self {
        Self {
            runtime_ctx,
            current_step: None,
            results: Vec::new(),
            errors: Vec::new(),
            plan: ProgressPlan::default(),
            overall: 0,
            step_total: None,
        }
    }

    /// The step running now.
    pub fn current_step(&self) -> Option<&str> {
        self.current_step.as_deref()
    }

    /// Every step's result so far, in order.
    pub fn step_results(&self) -> &[(String, StepResult)] {
        &self.results
    }

    /// Errors gathered during the run (the original's `errors`: one entry
    /// per rollback that failed).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// The result of the step called `name`, if it ran.
    pub fn result_of(&self, name: &str) -> Option<&StepResult> {
        self.results.iter().find(|(n, _)| n == name).map(|(_, r)| r)
    }

    /// Progress of the current step (its bar), which also advances the
    /// overall progress by the step's weighted share.
    pub fn set_progress(&mut self, current: u64, total: u64) -> Result<(), ContextError> {
        self.runtime_ctx
            .set_progress(current, total, self.current_step.as_deref())?;
        self.step_total = Some(total);
        let fraction = current as f64 / total as f64;
        self.advance_overall(self.plan.before + self.plan.weight * fraction)
    }

    /// Logs an event for the current step: `data` (a JSON object) is kept
    /// as given and the event's `step` is the running step.
    pub fn log(&self, event: &str, data: impl Serialize) -> Result<(), ContextError> {
        self.runtime_ctx.log(event, data, None)
    }

    /// A user-facing message, attributed to the running step.
    pub fn log_message(&self, message: &str, level: MessageLevel) -> Result<(), ContextError> {
        self.runtime_ctx.log_message(message, level)
    }

    /// Metrics for the running step (merged with its earlier ones). Outside
    /// a step it is an error, as in the original; use
    /// [`set_metrics_for`](Self::set_metrics_for) to name the step.
    pub fn set_metrics(&self, value: impl Serialize) -> Result<(), ContextError> {
        let step = self.current_step.as_deref().ok_or(ContextError::NoStep)?;
        self.runtime_ctx.set_metrics(value, step)
    }

    /// Metrics for the step called `step`.
    pub fn set_metrics_for(&self, value: impl Serialize, step: &str) -> Result<(), ContextError> {
        self.runtime_ctx.set_metrics(value, step)
    }

    pub(super) fn start_workflow(&mut self, total_weight: f64) {
        self.plan = ProgressPlan {
            before: 0.0,
            weight: 0.0,
            total: total_weight,
        };
        self.overall = 0;
        self.results.clear();
        self.errors.clear();
    }

    pub(super) fn begin_step(&mut self, name: &str, before: f64, weight: f64) {
        self.current_step = Some(name.to_owned());
        self.runtime_ctx.logger().set_step(Some(name));
        self.plan.before = before;
        self.plan.weight = weight;
        self.step_total = None;
    }

    /// Marks the current step done: its bar full, the overall progress at
    /// the end of its share.
    pub(super) fn complete_step(&mut self) -> Result<(), ContextError> {
        let total = self.step_total.unwrap_or(1);
        self.runtime_ctx
            .set_progress(total, total, self.current_step.as_deref())?;
        self.advance_overall(self.plan.before + self.plan.weight)
    }

    pub(super) fn record(&mut self, name: &str, result: StepResult) {
        self.results.push((name.to_owned(), result));
    }

    pub(super) fn record_error(&mut self, error: String) {
        self.errors.push(error);
    }

    pub(super) fn end_workflow(&mut self, completed: bool) -> Result<(), ContextError> {
        self.current_step = None;
        self.runtime_ctx.logger().set_step(None);
        if completed {
            self.overall = OVERALL_SCALE;
            self.runtime_ctx
                .logger()
                .send_progress(OVERALL_SCALE, OVERALL_SCALE, None)?;
        }
        Ok(())
    }

    /// Overall progress never goes down, and reaches the full scale only when
    /// the whole workflow has succeeded (`end_workflow`).
    fn advance_overall(&mut self, done_weight: f64) -> Result<(), ContextError> {
        let total = if self.plan.total > 0.0 { self.plan.total } else { 1.0 };
        let units = ((done_weight / total) * OVERALL_SCALE as f64).floor() as u64;
        let units = units.min(OVERALL_SCALE - 1);
        if units > self.overall {
            self.overall = units;
            self.runtime_ctx.logger().send_progress(units, OVERALL_SCALE, None)?;
        }
        Ok(())
    }
}

/// A workflow context: a type that embeds a [`BaseStepContext`]. Implement
/// it (and `Deref` to the base) in one line with
/// [`step_context!`](crate::step_context).
pub trait StepContext: Send {
    /// The embedded base context.
    fn base(&self) -> &BaseStepContext;
    /// The embedded base context, mutably.
    fn base_mut(&mut self) -> &mut BaseStepContext;
}

impl StepContext for BaseStepContext {
    fn base(&self) -> &BaseStepContext {
        self
    }

    fn base_mut(&mut self) -> &mut BaseStepContext {
        self
    }
}

/// Makes a struct with a `BaseStepContext` field a workflow context:
/// implements [`StepContext`], and `Deref`/`DerefMut` to the base so that
/// `ctx.set_progress(c, t)`, `ctx.log(..)` and `ctx.runtime_ctx` work on it
/// directly, as in the guide.
///
/// ```
/// use std::path::PathBuf;
/// use std::sync::Arc;
/// use plugin_api::prelude::*;
/// # use plugin_api::testing::RecordingHost;
///
/// struct MyContext { base: BaseStepContext, files: Vec<PathBuf> }
/// step_context!(MyContext, base);
///
/// # let host = Arc::new(RecordingHost::default());
/// # let runtime_ctx = RuntimeContext::with_host(host.clone());
/// let mut ctx = MyContext { base: BaseStepContext::new(runtime_ctx), files: Vec::new() };
/// ctx.files.push("out/a.csv".into());
/// ctx.log("prepared", json!({ "files": ctx.files.len() }))?;
/// # assert_eq!(host.calls().len(), 1);
/// # Ok::<(), plugin_api::ContextError>(())
/// ```
#[macro_export]
macro_rules! step_context {
    ($context:ty, $field:ident) => {
        impl $crate::steps::StepContext for $context {
            fn base(&self) -> &$crate::steps::BaseStepContext {
                &self.$field
            }
            fn base_mut(&mut self) -> &mut $crate::steps::BaseStepContext {
                &mut self.$field
            }
        }
        impl ::std::ops::Deref for $context {
            type Target = $crate::steps::BaseStepContext;
            fn deref(&self) -> &Self::Target {
                &self.$field
            }
        }
        impl ::std::ops::DerefMut for $context {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.$field
            }
        }
    };
}
