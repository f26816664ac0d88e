//! Running actions on a Ray cluster, through its Jobs REST API; the loader
//! does no scheduling of its own.
//!
//! A run is packaged ([`package`]: the loader binary, the one plugin
//! library, params and environment, named by content hash), uploaded
//! unless the cluster already has it, and submitted as a job ([`job`])
//! whose entrypoint is `loader run … --events jsonl` inside the package.
//! The submitting loader then follows the job's log ([`follow`], reading
//! it as it grows with [`log`] and [`tail`]) and relays its events to the local sinks,
//! so a run on Ray looks and ends like a local one. Inside the job, `ctx.agent_client()` talks to the
//! cluster's Jobs API ([`agent`]). [`api`] is the HTTP client of it all;
//! [`submit`] ties package, upload and submission together, and
//! [`lines`] runs batch lines as jobs; [`resources`] decides what a job
//! reserves, from the action's manifest and the run's flags.

pub mod agent;
pub mod api;
pub mod follow;
pub mod job;
pub mod lines;
pub mod log;
pub mod package;
pub mod resources;
pub mod submit;
pub mod tail;

pub use agent::jobs_api_endpoint;
pub use api::{JobInfo, JobStatus, JobsApi, RayError};
pub use follow::{follow_job, StopWhen};
pub use job::JobRequest;
pub use lines::RayLines;
pub use package::{Package, PackageSpec};
pub use resources::{job_resources, ResourcesError};
pub use submit::{SubmitError, Submitter};
