//! Gets a run onto the cluster: decides how the action's run method runs
//! there, builds the package, uploads it unless the cluster has it
//! already, and submits jobs that run its driver.

use plugin_api::{ActionResources, RunMethod};

use super::api::{JobsApi, RayError};
use super::job::{JobRequest, DEFAULT_PYTHON};
use super::listen::Listener;
use super::package::{self, Package, PackageError, PackageSpec};
use super::spec::RayMode;

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

/// How a single run of `method` runs on Ray: `job` in the job's
/// entrypoint, `task` as a Ray task; `serve` is refused.
pub fn mode_of(action: &str, method: RunMethod) -> Result<RayMode, SubmitError> {
    match method {
        RunMethod::Job => Ok(RayMode::Job),
        RunMethod::Task => Ok(RayMode::Task),
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
    pub mode: RayMode,
    /// What a `job` mode entrypoint reserves.
    pub resources: ActionResources,
    /// The command that runs Python on the cluster.
    pub python: String,
    /// Lines in the package (1 for a single run).
    pub lines: usize,
}

impl Submitter {
    /// Builds the package of `spec` and makes sure the cluster has it.
    pub fn prepare(
        api: JobsApi,
        spec: &PackageSpec,
        plugin: &str,
        action: &str,
        mode: RayMode,
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
            mode,
            resources: ActionResources::default(),
            python: DEFAULT_PYTHON.to_owned(),
            lines: spec.params.len(),
        };
        Ok((submitter, upload))
    }

    /// The request of the job `submission_id`, told to send what it says to
    /// `listener` (if any).
    pub fn request(&self, submission_id: &str, listener: Option<&Listener>) -> JobRequest {
        JobRequest {
            submission_id: submission_id.to_owned(),
            plugin: self.plugin.clone(),
            action: self.action.clone(),
            mode: self.mode,
            python: self.python.clone(),
            direct: listener.map(|l| (l.address(), l.token().to_owned())),
            resources: self.resources.clone(),
            lines: self.lines,
        }
    }

    /// Submits one job; returns its submission id.
    pub fn submit(&self, submission_id: &str, listener: Option<&Listener>) -> Result<String, SubmitError> {
        let body = self.request(submission_id, listener).to_json(&self.package);
        Ok(self.api.submit(&body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_and_task_have_their_modes_and_serve_is_refused_naming_the_alternative() {
        assert_eq!(mode_of("train", RunMethod::Job).unwrap(), RayMode::Job);
        assert_eq!(mode_of("infer", RunMethod::Task).unwrap(), RayMode::Task);
        let refused = mode_of("deploy", RunMethod::Serve).unwrap_err().to_string();
        assert!(
            refused.contains("Ray Serve") && refused.contains("without --on ray"),
            "{refused}"
        );
    }
}
