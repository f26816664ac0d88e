//! `Orchestrator`: runs a workflow's steps in order with weighted overall
//! progress and `step_start` / `step_end` events, stops at the first
//! failure (an error, a failed result or a panic), and then rolls back, best
//! effort, every step that ran, as the original does: the failed step first
//! (it may have left half its output), then the completed ones in reverse.
//! A cancelled step (or a cancellation between steps) keeps its kind, so the
//! run ends `cancelled` (or `timed_out`, as the host decides) after rolling
//! back.

use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

use super::context::StepContext;
use super::registry::StepRegistry;
use super::step::{Step, StepResult};
use crate::action::{ActionError, ActionResult};
use crate::failure::FailureKind;
use crate::ffi::panics::catch_panic_message;

/// What happened to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The step ran and succeeded.
    Succeeded,
    /// The step chose not to run (`can_skip`).
    Skipped,
    /// The step failed (an error, a failed result or a panic).
    Failed,
    /// Ran, then undone after it or a later step failed.
    RolledBack,
    /// Not reached because an earlier step failed.
    NotRun,
}

/// One step in a [`WorkflowReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepOutcome {
    /// The step's name.
    pub name: String,
    /// What happened to it.
    pub status: StepStatus,
    /// Seconds the step's `execute` took (0 when skipped or not run).
    pub elapsed: f64,
    /// The data of its `StepResult`.
    pub data: Value,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// A rollback that failed (the others still ran).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackFailure {
    /// The step whose rollback failed.
    pub step: String,
    /// Why it failed.
    pub error: String,
}

/// What a workflow run did: every step's outcome, the failure if any, and
/// which steps were rolled back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowReport {
    /// Whether every step succeeded or was skipped.
    pub success: bool,
    /// Steps whose `execute` ran (skipped ones excluded), as the original's
    /// `steps_executed`.
    pub steps_executed: usize,
    /// Steps in the workflow (`steps_total`).
    pub steps_total: usize,
    /// Every step run or skipped, in order.
    pub steps: Vec<StepOutcome>,
    /// The step that failed, if one did.
    pub failed_step: Option<String>,
    /// Its error.
    pub error: Option<String>,
    /// Why the workflow failed: `failed`, or `cancelled` when a step was
    /// cancelled or the host asked the run to stop. `None` on success.
    pub failure_kind: Option<FailureKind>,
    /// Steps undone, in the order they were rolled back.
    pub rolled_back: Vec<String>,
    /// Rollbacks that failed.
    pub rollback_failures: Vec<RollbackFailure>,
    /// Seconds the whole workflow took.
    pub elapsed: f64,
}

impl WorkflowReport {
    /// The names of the steps with this status.
    pub fn names_with(&self, status: StepStatus) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.status == status)
            .map(|s| s.name.as_str())
            .collect()
    }

    /// The action's result: the report as JSON when the workflow succeeded,
    /// else an error naming the failed step, with the report as details.
    pub fn into_result(self) -> ActionResult {
        if self.success {
            return serde_json::to_value(&self).map_err(ActionError::from);
        }
        let message = match (&self.failed_step, &self.error) {
            (Some(step), Some(error)) => format!("step {step:?} failed: {error}"),
            (_, Some(error)) => format!("the workflow failed: {error}"),
            _ => "the workflow failed".to_owned(),
        };
        let kind = self.failure_kind.unwrap_or(FailureKind::Failed);
        Err(ActionError::new(message).with_details(&self).with_kind(kind))
    }
}

/// Runs the steps of a registry over a context.
pub struct Orchestrator<C> {
    registry: StepRegistry<C>,
}

impl<C: StepContext> Orchestrator<C> {
    /// An orchestrator of these steps.
    pub fn new(registry: StepRegistry<C>) -> Self {
        Self { registry }
    }

    /// The steps it runs.
    pub fn registry(&self) -> &StepRegistry<C> {
        &self.registry
    }

    /// Runs every step in order; see the module documentation.
    pub fn run(&mut self, ctx: &mut C) -> WorkflowReport {
        let started = Instant::now();
        let steps = self.registry.steps_mut();
        let weights: Vec<f64> = steps.iter().map(|s| s.progress_weight().max(0.0)).collect();
        let total_weight: f64 = weights.iter().sum();
        // With no usable weights every step counts the same.
        let weights: Vec<f64> = if total_weight > 0.0 {
            weights
        } else {
            vec![1.0; steps.len()]
        };
        let total_weight: f64 = weights.iter().sum();
        ctx.base_mut().start_workflow(total_weight);

        let mut outcomes: Vec<StepOutcome> = steps
            .iter()
            .map(|s| StepOutcome {
                name: s.name().to_owned(),
                status: StepStatus::NotRun,
                elapsed: 0.0,
                data: Value::Null,
                error: None,
            })
            .collect();
        // Every step that ran (not skipped), with its result: what rollback undoes.
        let mut executed: Vec<(usize, StepResult)> = Vec::new();
        let mut failure: Option<Failure> = None;
        let mut done_weight = 0.0;

        for (index, step) in steps.iter_mut().enumerate() {
            let name = step.name().to_owned();
            if ctx.base().runtime_ctx.is_cancelled() {
                failure = Some(Failure {
                    step: None,
                    error: format!("cancelled before step {name:?}"),
                    kind: FailureKind::Cancelled,
                });
                break;
            }
            ctx.base_mut().begin_step(&name, done_weight, weights[index]);
            // Workflow events are best effort: a refused log never stops the run.
            let _ = ctx
                .base()
                .log("step_start", json!({ "index": index, "total_steps": outcomes.len() }));
            let step_started = Instant::now();

            let mut kind = FailureKind::Failed;
            let skipped = step.can_skip(ctx);
            let result = if skipped {
                StepResult::skipped()
            } else {
                match catch_panic_message(|| step.execute(ctx)) {
                    Ok(Ok(result)) => result,
                    Ok(Err(error)) => {
                        kind = error.kind();
                        StepResult::failed(error.message())
                    }
                    Err(panic) => StepResult::failed(format!("the step panicked: {panic}")),
                }
            };
            let elapsed = step_started.elapsed().as_secs_f64();
            let _ = ctx.base().log(
                "step_end",
                json!({ "elapsed": elapsed, "success": result.success, "skipped": result.skipped }),
            );
            if !skipped {
                executed.push((index, result.clone()));
            }

            let outcome = &mut outcomes[index];
            outcome.elapsed = elapsed;
            outcome.data = result.data.clone();
            outcome.error = result.error.clone();
            ctx.base_mut().record(&name, result.clone());
            if !result.success {
                outcome.status = StepStatus::Failed;
                failure = Some(Failure {
                    step: Some(name),
                    error: result.error.clone().unwrap_or_else(|| "the step failed".to_owned()),
                    kind,
                });
                break;
            }
            outcome.status = if result.skipped {
                StepStatus::Skipped
            } else {
                StepStatus::Succeeded
            };
            if let Err(e) = ctx.base_mut().complete_step() {
                failure = Some(Failure {
                    step: Some(outcome.name.clone()),
                    error: e.to_string(),
                    kind: FailureKind::Failed,
                });
                break;
            }
            done_weight += weights[index];
        }

        let mut report = WorkflowReport {
            success: failure.is_none(),
            steps_executed: executed.len(),
            steps_total: outcomes.len(),
            steps: Vec::new(),
            failed_step: None,
            error: None,
            failure_kind: None,
            rolled_back: Vec::new(),
            rollback_failures: Vec::new(),
            elapsed: 0.0,
        };
        match failure {
            None => {
                if let Err(e) = ctx.base_mut().end_workflow(true) {
                    report.success = false;
                    report.error = Some(e.to_string());
                }
            }
            Some(failure) => {
                report.failed_step = failure.step;
                report.error = Some(failure.error);
                report.failure_kind = Some(failure.kind);
                for (index, result) in executed.into_iter().rev() {
                    let step = &mut steps[index];
                    match roll_back(step.as_mut(), ctx, &result) {
                        Ok(()) => {
                            if outcomes[index].status != StepStatus::Failed {
                                outcomes[index].status = StepStatus::RolledBack;
                            }
                            report.rolled_back.push(outcomes[index].name.clone());
                        }
                        Err(error) => {
                            let name = outcomes[index].name.clone();
                            ctx.base_mut()
                                .record_error(format!("rollback failed for step {name:?}: {error}"));
                            report.rollback_failures.push(RollbackFailure { step: name, error });
                        }
                    }
                }
                let _ = ctx.base_mut().end_workflow(false);
            }
        }
        report.steps = outcomes;
        report.elapsed = started.elapsed().as_secs_f64();
        report
    }
}

/// Why a workflow stopped.
struct Failure {
    /// The step that failed; `None` when the run was cancelled between steps.
    step: Option<String>,
    error: String,
    kind: FailureKind,
}

/// Undoes one step, emitting `rollback_start` / `rollback_end`; a failing
/// or panicking rollback is an error, not a stop.
fn roll_back<C: StepContext>(step: &mut dyn Step<C>, ctx: &mut C, result: &StepResult) -> Result<(), String> {
    let name = step.name().to_owned();
    ctx.base_mut().begin_step(&name, 0.0, 0.0);
    let _ = ctx.base().log("rollback_start", json!({}));
    let outcome = match catch_panic_message(|| step.rollback(ctx, result)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.message().to_owned()),
        Err(panic) => Err(format!("the rollback panicked: {panic}")),
    };
    let _ = ctx.base().log(
        "rollback_end",
        json!({ "success": outcome.is_ok(), "error": outcome.as_ref().err() }),
    );
    outcome
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::context::{MessageLevel, RuntimeContext};
    use crate::steps::{BaseStepContext, OVERALL_SCALE};
    use crate::testing::RecordingHost;

    /// What a test step does when executed.
    #[derive(Clone, Copy)]
    enum Behaviour {
        Succeed,
        Fail,
        Panic,
        Skip,
    }

    struct TestStep {
        name: &'static str,
        behaviour: Behaviour,
        weight: f64,
        rollback_fails: bool,
        journal: Arc<Mutex<Vec<String>>>,
    }

    impl Step<BaseStepContext> for TestStep {
        fn name(&self) -> &str {
            self.name
        }

        fn execute(&mut self, ctx: &mut BaseStepContext) -> Result<StepResult, ActionError> {
            self.journal.lock().unwrap().push(format!("execute {}", self.name));
            match self.behaviour {
                Behaviour::Fail => Err(ActionError::new(format!("{} broke", self.name))),
                Behaviour::Panic => panic!("{} exploded", self.name),
                Behaviour::Succeed | Behaviour::Skip => {
                    for i in 1..=4 {
                        ctx.set_progress(i, 4)?;
                    }
                    Ok(StepResult::ok(json!({ "step": self.name })).with_rollback_data(json!(self.name)))
                }
            }
        }

        fn can_skip(&self, _: &BaseStepContext) -> bool {
            matches!(self.behaviour, Behaviour::Skip)
        }

        fn rollback(&mut self, _: &mut BaseStepContext, result: &StepResult) -> Result<(), ActionError> {
            self.journal
                .lock()
                .unwrap()
                .push(format!("rollback {} {}", self.name, result.rollback_data));
            if self.rollback_fails {
                Err(ActionError::new("cannot undo"))
            } else {
                Ok(())
            }
        }

        fn progress_weight(&self) -> f64 {
            self.weight
        }
    }

    struct Workflow {
        host: Arc<RecordingHost>,
        ctx: BaseStepContext,
        journal: Arc<Mutex<Vec<String>>>,
        registry: StepRegistry<BaseStepContext>,
    }

    fn workflow(steps: &[(&'static str, Behaviour, f64)]) -> Workflow {
        let host = Arc::new(RecordingHost::default());
        let journal = Arc::new(Mutex::new(Vec::new()));
        let mut registry = StepRegistry::new();
        for &(name, behaviour, weight) in steps {
            registry
                .register(TestStep {
                    name,
                    behaviour,
                    weight,
                    rollback_fails: false,
                    journal: journal.clone(),
                })
                .unwrap();
        }
        Workflow {
            ctx: BaseStepContext::new(RuntimeContext::with_host(host.clone())),
            host,
            journal,
            registry,
        }
    }

    fn overall_progress(host: &RecordingHost) -> Vec<u64> {
        host.calls()
            .iter()
            .filter_map(|c| {
                c.strip_prefix("progress ")
                    .and_then(|rest| rest.strip_suffix(&format!("/{OVERALL_SCALE} step=None")))
            })
            .map(|n| n.parse().unwrap())
            .collect()
    }

    #[test]
    fn steps_run_in_order_and_overall_progress_is_weighted_monotonic_and_exact() {
        let Workflow {
            host,
            mut ctx,
            journal,
            registry,
        } = workflow(&[
            ("load", Behaviour::Succeed, 1.0),
            ("train", Behaviour::Succeed, 3.0),
            ("export", Behaviour::Succeed, 1.0),
        ]);
        let report = Orchestrator::new(registry).run(&mut ctx);
        assert!(report.success);
        assert_eq!(
            *journal.lock().unwrap(),
            ["execute load", "execute train", "execute export"]
        );
        let overall = overall_progress(&host);
        assert!(overall.windows(2).all(|w| w[0] < w[1]), "never decreasing: {overall:?}");
        assert_eq!(*overall.last().unwrap(), OVERALL_SCALE, "exactly the total at the end");
        assert!(overall.contains(&2000), "load (weight 1 of 5) ends at 20%: {overall:?}");
        assert!(overall.contains(&8000), "train (weight 3) ends at 80%: {overall:?}");
        assert_eq!(
            overall[overall.len() - 2],
            OVERALL_SCALE - 1,
            "100% only once the workflow has ended"
        );
        assert!(
            host.calls().contains(&"progress 2/4 step=Some(\"train\")".to_owned()),
            "per-step progress under the step's name"
        );
        assert_eq!(ctx.step_results().len(), 3);
        assert_eq!(ctx.result_of("train").unwrap().data, json!({ "step": "train" }));
    }

    #[test]
    fn step_events_carry_the_step_and_timing() {
        let Workflow {
            host,
            mut ctx,
            registry,
            ..
        } = workflow(&[("load", Behaviour::Succeed, 1.0)]);
        Orchestrator::new(registry).run(&mut ctx);
        let calls = host.calls();
        let start = calls.iter().find(|c| c.starts_with("log step_start")).unwrap();
        assert!(
            start.contains("step=load") && start.contains("\"total_steps\":1"),
            "{start}"
        );
        let end = calls.iter().find(|c| c.starts_with("log step_end")).unwrap();
        assert!(
            end.contains("\"success\":true") && end.contains("\"skipped\":false") && end.contains("\"elapsed\":"),
            "{end}"
        );
    }

    #[test]
    fn a_skipped_step_counts_as_done() {
        let Workflow {
            host,
            mut ctx,
            journal,
            registry,
        } = workflow(&[("load", Behaviour::Succeed, 1.0), ("evaluate", Behaviour::Skip, 1.0)]);
        let report = Orchestrator::new(registry).run(&mut ctx);
        assert!(report.success);
        assert_eq!(report.names_with(StepStatus::Skipped), ["evaluate"]);
        assert_eq!(*journal.lock().unwrap(), ["execute load"]);
        assert_eq!(*overall_progress(&host).last().unwrap(), OVERALL_SCALE);
        assert!(host
            .calls()
            .iter()
            .any(|c| c.starts_with("log step_end") && c.contains("\"skipped\":true")));
    }

    #[test]
    fn a_failure_stops_the_run_and_rolls_back_the_failed_step_then_the_completed_ones() {
        // synapse-sdk 2026.2.17 (`Orchestrator._rollback`): every executed
        // step is rolled back in reverse, the failed one first; skipped
        // steps are not.
        let Workflow {
            host,
            mut ctx,
            journal,
            registry,
        } = workflow(&[
            ("load", Behaviour::Succeed, 1.0),
            ("skipme", Behaviour::Skip, 1.0),
            ("train", Behaviour::Succeed, 1.0),
            ("evaluate", Behaviour::Fail, 1.0),
            ("export", Behaviour::Succeed, 1.0),
        ]);
        let report = Orchestrator::new(registry).run(&mut ctx);
        assert!(!report.success);
        assert_eq!(report.failed_step.as_deref(), Some("evaluate"));
        assert_eq!(report.error.as_deref(), Some("evaluate broke"));
        assert_eq!(report.rolled_back, ["evaluate", "train", "load"]);
        assert_eq!(report.names_with(StepStatus::Failed), ["evaluate"]);
        assert_eq!(report.names_with(StepStatus::NotRun), ["export"]);
        assert_eq!((report.steps_executed, report.steps_total), (3, 5));
        assert_eq!(report.names_with(StepStatus::Skipped), ["skipme"]);
        assert_eq!(
            *journal.lock().unwrap(),
            [
                "execute load",
                "execute train",
                "execute evaluate",
                "rollback evaluate {}",
                "rollback train \"train\"",
                "rollback load \"load\""
            ]
        );
        let rollback_events: Vec<String> = host
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("log rollback_"))
            .collect();
        assert_eq!(rollback_events.len(), 6);
        assert!(rollback_events[0].contains("rollback_start") && rollback_events[0].contains("step=evaluate"));
        assert!(rollback_events[5].contains("rollback_end") && rollback_events[5].contains("step=load"));
        assert!(
            overall_progress(&host).iter().all(|&p| p < OVERALL_SCALE),
            "a failed run never reports 100%"
        );

        let error = report.into_result().unwrap_err();
        assert_eq!(error.message(), "step \"evaluate\" failed: evaluate broke");
        assert_eq!(error.details()["rolled_back"], json!(["evaluate", "train", "load"]));
        assert_eq!(error.kind(), FailureKind::Failed);
    }

    #[test]
    fn a_failing_rollback_is_recorded_and_the_others_still_run() {
        let host = Arc::new(RecordingHost::default());
        let journal = Arc::new(Mutex::new(Vec::new()));
        let mut registry = StepRegistry::new();
        let step = |name, behaviour, rollback_fails| TestStep {
            name,
            behaviour,
            weight: 1.0,
            rollback_fails,
            journal: journal.clone(),
        };
        registry.register(step("a", Behaviour::Succeed, false)).unwrap();
        registry.register(step("b", Behaviour::Succeed, true)).unwrap();
        registry.register(step("c", Behaviour::Fail, false)).unwrap();
        let mut ctx = BaseStepContext::new(RuntimeContext::with_host(host));
        let report = Orchestrator::new(registry).run(&mut ctx);
        assert_eq!(
            report.rollback_failures,
            [RollbackFailure {
                step: "b".into(),
                error: "cannot undo".into()
            }]
        );
        assert_eq!(report.rolled_back, ["c", "a"]);
        assert_eq!(ctx.errors().len(), 1);
        assert!(ctx.errors()[0].contains("\"b\""), "{:?}", ctx.errors());
    }

    #[test]
    fn a_panicking_step_is_a_failure_with_its_message() {
        let Workflow { mut ctx, registry, .. } =
            workflow(&[("load", Behaviour::Succeed, 1.0), ("train", Behaviour::Panic, 1.0)]);
        let report = Orchestrator::new(registry).run(&mut ctx);
        assert_eq!(report.failed_step.as_deref(), Some("train"));
        let error = report.error.clone().unwrap();
        assert!(error.starts_with("the step panicked: train exploded"), "{error}");
        assert_eq!(report.rolled_back, ["train", "load"]);
    }

    #[test]
    fn cancellation_between_steps_fails_and_rolls_back() {
        let Workflow {
            host,
            mut ctx,
            registry,
            ..
        } = workflow(&[("load", Behaviour::Succeed, 1.0), ("train", Behaviour::Succeed, 1.0)]);
        struct CancelAfterFirst(Arc<RecordingHost>);
        impl Step<BaseStepContext> for CancelAfterFirst {
            fn name(&self) -> &str {
                "cancel"
            }
            fn execute(&mut self, _: &mut BaseStepContext) -> Result<StepResult, ActionError> {
                self.0.cancel();
                Ok(StepResult::ok(Value::Null))
            }
        }
        let mut registry = registry;
        registry.insert_after("load", CancelAfterFirst(host.clone())).unwrap();
        let report = Orchestrator::new(registry).run(&mut ctx);
        assert_eq!(report.error.as_deref(), Some("cancelled before step \"train\""));
        assert_eq!(report.rolled_back, ["cancel", "load"]);
        assert_eq!(report.into_result().unwrap_err().kind(), FailureKind::Cancelled);
    }

    #[test]
    fn a_cancelled_step_keeps_its_kind_and_is_rolled_back() {
        struct Cancelled;
        impl Step<BaseStepContext> for Cancelled {
            fn name(&self) -> &str {
                "wait"
            }
            fn execute(&mut self, _: &mut BaseStepContext) -> Result<StepResult, ActionError> {
                Err(ActionError::cancelled())
            }
        }
        let Workflow {
            mut ctx,
            journal,
            mut registry,
            ..
        } = workflow(&[("load", Behaviour::Succeed, 1.0)]);
        registry.register(Cancelled).unwrap();
        let report = Orchestrator::new(registry).run(&mut ctx);
        assert_eq!(report.failure_kind, Some(FailureKind::Cancelled));
        assert_eq!(report.rolled_back, ["wait", "load"]);
        assert_eq!(journal.lock().unwrap().last().unwrap(), "rollback load \"load\"");
        let error = report.into_result().unwrap_err();
        assert!(error.is_cancelled(), "{error:?}");
    }

    #[test]
    fn the_success_summary_counts_executed_and_total_steps() {
        // synapse-sdk 2026.2.17: `{'success': True, 'steps_executed': 1,
        // 'steps_total': 2}` with one of two steps skipped.
        let Workflow { mut ctx, registry, .. } =
            workflow(&[("load", Behaviour::Succeed, 1.0), ("evaluate", Behaviour::Skip, 1.0)]);
        let result = Orchestrator::new(registry).run(&mut ctx).into_result().unwrap();
        assert_eq!(result["success"], true);
        assert_eq!(result["steps_executed"], 1);
        assert_eq!(result["steps_total"], 2);
    }

    #[test]
    fn runtime_context_calls_inside_a_step_are_attributed_and_never_touch_the_overall_bar() {
        struct UsesRuntimeContext;
        impl Step<BaseStepContext> for UsesRuntimeContext {
            fn name(&self) -> &str {
                "fit"
            }
            fn execute(&mut self, ctx: &mut BaseStepContext) -> Result<StepResult, ActionError> {
                ctx.runtime_ctx.set_progress(1, 2, None)?;
                ctx.runtime_ctx.log("epoch", json!({"n": 1}), None)?;
                ctx.runtime_ctx.log_message("halfway", MessageLevel::Info)?;
                ctx.set_metrics(json!({"loss": 0.5}))?;
                ctx.log("kept", json!({"step": "mine"}))?;
                Ok(StepResult::default())
            }
        }
        let host = Arc::new(RecordingHost::default());
        let mut registry = StepRegistry::new();
        registry.register(UsesRuntimeContext).unwrap();
        let mut ctx = BaseStepContext::new(RuntimeContext::with_host(host.clone()));
        assert!(Orchestrator::new(registry).run(&mut ctx).success);
        let calls = host.calls();
        for expected in [
            "progress 1/2 step=Some(\"fit\")",
            "log epoch {\"n\":1} step=fit file=None",
            "message info halfway step=fit",
            "metrics {\"loss\":0.5} step=fit",
            "log kept {\"step\":\"mine\"} step=fit file=None",
        ] {
            assert!(calls.iter().any(|c| c == expected), "{expected} in {calls:#?}");
        }
        let step_less: Vec<&String> = calls.iter().filter(|c| c.ends_with("step=None")).collect();
        assert!(
            step_less
                .iter()
                .all(|c| c.ends_with(&format!("/{OVERALL_SCALE} step=None"))),
            "only the overall scale on the step-less key: {step_less:?}"
        );
        assert_eq!(ctx.runtime_ctx.logger().get_step(), None, "cleared after the run");
        assert!(matches!(ctx.set_metrics(json!({})), Err(crate::ContextError::NoStep)));
    }
}
