//! The agent endpoint of a run inside a Ray job: the cluster's Jobs API
//! (`<address>/api/`), so that `ctx.agent_client()` lists jobs, reads
//! them and submits sub-jobs with the Synapse agent's paths (`jobs/`,
//! `jobs/{id}/`, `jobs/{id}/logs/`; sent without the trailing slash Ray
//! does not serve). It is an ordinary agent endpoint: the host's clients
//! make its requests, in the isolated child as well, with the same
//! timeouts and retries as `--agent`. It carries no credential: Ray's Jobs
//! API has none, and no `SYNAPSE_AGENT_TOKEN` of the job's environment is
//! sent to it.

use crate::backend::{agent_endpoint, Endpoint, PathStyle};

/// What a refused request names as the credential to check.
const CREDENTIAL: &str = "the Ray cluster's authentication (the loader sends no Ray token)";

/// The agent endpoint for the Jobs API at `address` (e.g.
/// `http://127.0.0.1:8265`).
pub fn jobs_api_endpoint(address: &str) -> Endpoint {
    let root = format!("{}/api/", address.trim().trim_end_matches('/'));
    Endpoint {
        credential: CREDENTIAL.to_owned(),
        path_style: PathStyle::RayJobs,
        ..agent_endpoint(&root, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_jobs_api_root_without_credentials() {
        let endpoint = jobs_api_endpoint("http://127.0.0.1:8265/");
        assert_eq!(endpoint.url, "http://127.0.0.1:8265/api/");
        assert!(endpoint.headers.is_empty());
        assert!(endpoint.credential.contains("Ray"));
        assert_eq!(endpoint.path_style, PathStyle::RayJobs);
    }
}
