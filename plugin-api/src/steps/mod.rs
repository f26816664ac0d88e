//! Step-based workflows (the guide's "Action-Specific Contexts"): an action
//! built from named steps that share a context, run in order by an
//! [`Orchestrator`] with weighted overall progress, `step_start` /
//! `step_end` events, and, when one fails, rollback of the failed step and
//! then of the completed ones in reverse order, as the original does.
//!
//! - [`BaseStepContext`] holds the `runtime_ctx`, the current step and the
//!   results so far; every workflow context embeds it ([`StepContext`]).
//! - [`Step`] is one phase (`BaseStep[Ctx]`), returning a [`StepResult`].
//! - [`StepRegistry`] builds the list, so a plugin can take a standard
//!   workflow and change one step.
//! - [`TrainContext`], [`InferenceContext`], [`ExportContext`],
//!   [`UploadContext`] and [`DeploymentContext`] are the guide's contexts.

mod context;
mod contexts;
mod orchestrator;
mod registry;
mod step;

pub use context::{BaseStepContext, StepContext, OVERALL_SCALE};
pub use contexts::{DeploymentContext, ExportContext, InferenceContext, TrainContext, UploadContext};
pub use orchestrator::{Orchestrator, RollbackFailure, StepOutcome, StepStatus, WorkflowReport};
pub use registry::{StepError, StepRegistry};
pub use step::{Step, StepResult};
