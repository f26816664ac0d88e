//! `ctx.agent_client()` for actions running on a Ray cluster: forwards the
//! plugin's requests (`{method, path, body}`) to the cluster's Jobs API, so
//! a plugin can list jobs or submit sub-jobs through the host. Only the
//! Jobs API is reachable this way (`/api/jobs/…` and `/api/version`).

use serde_json::Value;

use super::api::JobsApi;
use crate::host::Client;

/// The agent client of a run on Ray.
#[derive(Debug, Clone)]
pub struct RayAgentClient {
    api: JobsApi,
}

impl RayAgentClient {
    pub fn new(address: &str) -> Self {
        RayAgentClient {
            api: JobsApi::new(address),
        }
    }
}

/// Whether a plugin may send a request to `path`.
fn allowed(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    !path.contains("..") && (path == "/api/version" || path == "/api/jobs" || path.starts_with("/api/jobs/"))
}

impl Client for RayAgentClient {
    /// Answers `{status, body}`; a path outside the Jobs API is refused.
    fn request(&self, request: &Value) -> Result<Value, String> {
        let method = request["method"].as_str().unwrap_or("GET");
        let path = request["path"].as_str().ok_or("the request has no path")?;
        if !allowed(path) {
            return Err(format!(
                "the Ray agent client reaches only the Jobs API (/api/jobs/…, /api/version), not {path:?}"
            ));
        }
        let body = request.get("body").filter(|b| !b.is_null());
        self.api.forward(method, path, body).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_jobs_api_paths_are_forwarded() {
        assert!(allowed("/api/jobs/"));
        assert!(allowed("/api/jobs/abc/logs"));
        assert!(allowed("/api/version"));
        assert!(!allowed("/api/packages/gcs/_ray_pkg_x.zip"));
        assert!(!allowed("/api/jobs/../packages/x"));
        assert!(!allowed("http://elsewhere/api/jobs/"));
        let client = RayAgentClient::new("http://127.0.0.1:9");
        let refused = client.request(&json!({"method": "PUT", "path": "/api/packages/gcs/x"}));
        assert!(refused.unwrap_err().contains("only the Jobs API"));
        assert!(client.request(&json!({"method": "GET"})).is_err());
    }
}
