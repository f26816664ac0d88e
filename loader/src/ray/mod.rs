//! Running actions on a Ray cluster, through its Jobs API and a small
//! Python driver that runs on the cluster.
//!
//! A run is packaged ([`package`]: the loader binary, the one plugin
//! library, params and environment, the driver and its [`spec`]), uploaded
//! unless the cluster already has it, and submitted as one job ([`job`],
//! [`submit`]) whose entrypoint is the driver. The driver runs the action
//! through the packaged loader's normal isolated run: in the entrypoint
//! (`job`), as one Ray task (`task`), or as one Ray task per params line
//! ([`batch`]). What it says comes back over a direct line to the loader
//! ([`listen`]) where the cluster can reach this machine, and always in
//! the job's log ([`log`], [`tail`]); [`feed`] takes each part once, in
//! order, from whichever brings it first. [`follow`] relays a single run's
//! events to the local sinks, so that a run on Ray looks and ends like a
//! local one; [`record`] reads the driver's own lines. Inside the job,
//! `ctx.agent_client()` talks to the cluster's Jobs API ([`agent`]). [`api`]
//! is the HTTP client of it all; [`resources`] decides what a run
//! reserves, from the action's manifest and the run's flags.

pub mod agent;
pub mod api;
pub mod batch;
pub mod feed;
pub mod follow;
pub mod job;
pub mod listen;
pub mod log;
pub mod package;
pub mod record;
pub mod resources;
pub mod spec;
pub mod submit;
pub mod tail;

pub use agent::jobs_api_endpoint;
pub use api::{JobInfo, JobStatus, JobsApi, RayError};
pub use batch::{run_batch, BatchReport};
pub use follow::{follow_job, StopWhen};
pub use job::JobRequest;
pub use listen::{ListenAt, Listener};
pub use package::{Package, PackageSpec};
pub use resources::{job_resources, ResourcesError};
pub use spec::{LoaderCommand, RayMode, RunSpec};
pub use submit::{SubmitError, Submitter};
