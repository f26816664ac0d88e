//! Gets a run onto the cluster: checks that the action's run method can
//! run as a Ray job, builds its package, uploads it unless the cluster has
//! it already, and submits jobs that run in it.

use plugin_api::{ActionResources, RunMethod};

use super::api::{JobsApi, RayError};
use super::job::JobRequest;
use super::package::{self, Package, PackageError, PackageSpec};
use crate::runner::Deadline;

/// Why a run could not be submitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Ray(#[from] RayError),
    #[error("action {action:?} has run method `serve`: a long-lived service is deployed with Ray Serve, not run to completion as a job; run it locally without --on ray")]
    Serve { action: String },
}

/// What [`Submitter::prepare`] did with the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// The cluster did not have it; it was uploaded.
    Uploaded,
    /// The cluster had it already; nothing was sent.
    Reused,
}

/// A note for the user when an action's run method is not `job`, or the
/// refusal when it cannot run on Ray at all. `task` runs as a job: a Ray
/// task needs a Python worker to call into, and a job gives the same
/// placement on the cluster.
pub fn check_method(action: &str, method: RunMethod) -> Result<Option<String>, SubmitError> {
    match method {
        RunMethod::Job => Ok(None),
        RunMethod::Task => Ok(Some(format!(
            "action {action:?} has run method `task`; on Ray it runs as a job (a Ray task needs a Python worker)"
        ))),
        RunMethod::Serve => Err(SubmitError::Serve {
            action: action.to_owned(),
        }),
    }
}

/// Submits jobs of one plugin action running in one package.
#[derive(Debug, Clone)]
pub struct Submitter {
    pub api: JobsApi,
    pub package: Package,
    pub plugin: String,
    pub action: String,
    pub library_path: String,
    pub deadline: Option<Deadline>,
    pub resources: ActionResources,
    /// Whether the action's agent client should reach the cluster.
    pub agent: bool,
    /// Run the action in the job's loader process (`--in-process`).
    pub in_process: bool,
}

impl Submitter {
    /// Builds the package of `spec` and makes sure the cluster has it.
    pub fn prepare(
        api: JobsApi,
        spec: &PackageSpec,
        plugin: &str,
        action: &str,
    ) -> Result<(Self, Upload), SubmitError> {
        let package = package::build(spec)?;
        let upload = if api.has_package(&package.name)? {
            Upload::Reused
        } else {
            api.upload_package(&package.name, &package.zip)?;
            Upload::Uploaded
        };
        let submitter = Submitter {
            api,
            package,
            plugin: plugin.to_owned(),
            action: action.to_owned(),
            library_path: package::library_path(&spec.library),
            deadline: None,
            resources: ActionResources::default(),
            agent: true,
            in_process: false,
        };
        Ok((submitter, upload))
    }

    /// The request of a job running the params numbered `params_number`.
    pub fn request(&self, submission_id: &str, params_number: usize) -> JobRequest {
        JobRequest {
            submission_id: submission_id.to_owned(),
            plugin: self.plugin.clone(),
            action: self.action.clone(),
            params_number,
            library_path: self.library_path.clone(),
            deadline: self.deadline,
            resources: self.resources.clone(),
            agent_address: self.agent.then(|| self.api.address().to_owned()),
            in_process: self.in_process,
        }
    }

    /// Submits one job; returns its submission id.
    pub fn submit(&self, submission_id: &str, params_number: usize) -> Result<String, SubmitError> {
        let body = self.request(submission_id, params_number).to_json(&self.package);
        Ok(self.api.submit(&body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_runs_task_runs_with_a_note_serve_is_refused_naming_the_alternative() {
        assert!(check_method("train", RunMethod::Job).unwrap().is_none());
        assert!(check_method("infer", RunMethod::Task)
            .unwrap()
            .unwrap()
            .contains("runs as a job"));
        let refused = check_method("deploy", RunMethod::Serve).unwrap_err().to_string();
        assert!(
            refused.contains("Ray Serve") && refused.contains("without --on ray"),
            "{refused}"
        );
    }
}
