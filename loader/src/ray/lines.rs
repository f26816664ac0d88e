//! Batch lines as Ray jobs: each attempt of a line is one job in the
//! batch's package (which holds every line's params), followed to its end.

use plugin_api::{ActionFailure, FailureKind};
use serde_json::Value;

use super::follow::{follow_job, StopWhen};
use super::submit::Submitter;
use crate::batch::{BatchLine, LineRunner};
use crate::events::{NullSink, RunInfo};
use crate::isolate::Interrupts;

/// Runs batch lines as jobs; the id of an attempt is
/// `<batch_id>-<line>-<attempt>`.
pub struct RayLines {
    pub submitter: Submitter,
    /// Stops the jobs under way once it counts an interrupt.
    pub interrupts: Interrupts,
    pub batch_id: String,
}

impl LineRunner for RayLines {
    fn run(&self, line: &BatchLine, attempt: u32) -> (String, Result<Value, ActionFailure>) {
        let id = format!("{}-{}-{attempt}", self.batch_id, line.number);
        if let Err(e) = self.submitter.submit(&id, line.number) {
            let failure = ActionFailure::new(FailureKind::Failed, format!("cannot submit the job: {e}"));
            return (id, Err(failure));
        }
        let run = RunInfo {
            job_id: Some(id.clone()),
            plugin: self.submitter.plugin.clone(),
            action: self.submitter.action.clone(),
        };
        let stop = StopWhen::for_run(self.submitter.deadline, self.interrupts.clone());
        let outcome = follow_job(&self.submitter.api, &id, &run, &NullSink, &stop);
        (id, outcome)
    }
}
