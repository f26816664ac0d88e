//! Running actions on a Ray cluster, through its Jobs REST API; the loader
//! does no scheduling of its own.
//!
//! A run is packaged ([`package`]: the loader binary, the one plugin
//! library, params and environment, named by content hash), uploaded
//! unless the cluster already has it, and submitted as a job ([`job`])
//! whose entrypoint is `loader run … --events jsonl` inside the package.
//! The submitting loader then follows the job's logs ([`follow`]) and
//! relays its events to the local sinks, so a run on Ray looks and ends
//! like a local one. Inside the job, `ctx.agent_client()` talks to the
//! cluster's Jobs API ([`agent`]). [`api`] is the HTTP client of it all;
//! [`submit`] ties package, upload and submission together, and
//! [`lines`] runs batch lines as jobs.

pub mod agent;
pub mod api;
pub mod follow;
pub mod job;
pub mod lines;
pub mod package;
pub mod submit;

pub use agent::RayAgentClient;
pub use api::{JobInfo, JobStatus, JobsApi, RayError};
pub use follow::{follow_job, StopWhen};
pub use job::{JobRequest, Resources};
pub use lines::RayLines;
pub use package::{Package, PackageSpec};
pub use submit::{Submitter, SubmitError};
