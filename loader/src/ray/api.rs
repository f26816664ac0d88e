//! A blocking client of the Ray Jobs REST API (the dashboard, port 8265 by
//! default): packages, job submission, status, logs (polled, or streamed
//! by [`tail`](super::tail)) and stop.
//!
//! Only plain HTTP to the address given is ever used: proxies from the
//! environment are ignored, so a loopback cluster is reached on loopback.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::tail::{LogTail, TailError};
use crate::backend::http::error_message;

/// Where the Jobs API is when nothing says otherwise.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:8265";

/// The content type of JSON request bodies.
const JSON: &str = "application/json";

/// How long one request may take (a package upload included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a call of the Jobs API did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum RayError {
    #[error("cannot reach the Ray Jobs API at {address}: {reason} (start a cluster with `ray start --head`, or pass --ray-address)")]
    Unreachable { address: String, reason: String },
    #[error("the Ray Jobs API answered {what} with HTTP {status}: {body}")]
    Status { what: String, status: u16, body: String },
    #[error("the Ray Jobs API answered {what} with something unexpected: {reason}")]
    BadAnswer { what: String, reason: String },
    #[error("no Ray job {0:?}")]
    NoSuchJob(String),
}

/// The state of a Ray job, as the Jobs API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Pending,
    Running,
    Stopped,
    Succeeded,
    Failed,
}

impl JobStatus {
    /// Whether the job has ended and will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Stopped | JobStatus::Succeeded | JobStatus::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "PENDING",
            JobStatus::Running => "RUNNING",
            JobStatus::Stopped => "STOPPED",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
        }
    }
}

/// What the Jobs API says about one job (the fields the loader uses; the
/// whole answer is kept in `raw`).
#[derive(Debug, Clone)]
pub struct JobInfo {
    pub submission_id: Option<String>,
    pub status: JobStatus,
    pub message: Option<String>,
    pub entrypoint: String,
    pub metadata: Value,
    pub raw: Value,
}

impl JobInfo {
    fn from_json(raw: Value) -> Result<Self, String> {
        let status = serde_json::from_value(raw["status"].clone()).map_err(|e| format!("status: {e}"))?;
        Ok(JobInfo {
            submission_id: raw["submission_id"].as_str().map(str::to_owned),
            status,
            message: raw["message"].as_str().map(str::to_owned),
            entrypoint: raw["entrypoint"].as_str().unwrap_or_default().to_owned(),
            metadata: raw["metadata"].clone(),
            raw,
        })
    }
}

/// A connection to one cluster's Jobs API.
#[derive(Clone)]
pub struct JobsApi {
    address: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for JobsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobsApi").field("address", &self.address).finish()
    }
}

/// The Jobs API address from a flag or Ray's own variables, as Ray's tools
/// read them: `--ray-address`, then `RAY_API_SERVER_ADDRESS`, then
/// `RAY_ADDRESS`, then [`DEFAULT_ADDRESS`]. `auto` and `local` mean the
/// local default; an address without a scheme gets `http://`.
pub fn resolve_address(flag: Option<&str>) -> String {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let chosen = flag
        .map(str::to_owned)
        .or_else(|| from_env("RAY_API_SERVER_ADDRESS"))
        .or_else(|| from_env("RAY_ADDRESS"));
    normalise_address(chosen.as_deref())
}

fn normalise_address(address: Option<&str>) -> String {
    match address.map(str::trim) {
        None | Some("") | Some("auto") | Some("local") => DEFAULT_ADDRESS.to_owned(),
        Some(a) if a.contains("://") => a.trim_end_matches('/').to_owned(),
        Some(a) => format!("http://{}", a.trim_end_matches('/')),
    }
}

impl JobsApi {
    pub fn new(address: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build();
        JobsApi {
            address: normalise_address(Some(address)),
            agent: config.into(),
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    fn unreachable(&self, e: ureq::Error) -> RayError {
        RayError::Unreachable {
            address: self.address.clone(),
            reason: e.to_string(),
        }
    }

    /// Sends one request and returns the status and the body text.
    fn exchange(&self, call: Call<'_>, path: &str) -> Result<(u16, String), RayError> {
        let url = self.url(path);
        let response = match call {
            Call::Get => self.agent.get(&url).call(),
            Call::Post(None) => self.agent.post(&url).send_empty(),
            Call::Post(Some(json)) => self.agent.post(&url).content_type(JSON).send(json.to_string()),
            Call::PutZip(bytes) => self.agent.put(&url).content_type("application/zip").send(bytes),
        };
        let mut response = response.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .map_err(|e| self.unreachable(e))?;
        Ok((status, text))
    }

    fn expect_ok(&self, what: &str, (status, body): (u16, String)) -> Result<String, RayError> {
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(RayError::Status {
                what: what.to_owned(),
                status,
                body: error_message(&body),
            })
        }
    }

    fn parse(what: &str, body: &str) -> Result<Value, RayError> {
        serde_json::from_str(body).map_err(|e| RayError::BadAnswer {
            what: what.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The cluster's version answer (`GET /api/version`): a cheap check that
    /// a Jobs API answers at the address.
    pub fn version(&self) -> Result<Value, RayError> {
        let body = self.expect_ok("GET /api/version", self.exchange(Call::Get, "/api/version")?)?;
        Self::parse("GET /api/version", &body)
    }

    /// Whether the cluster already holds the package `name`
    /// (`_ray_pkg_<hash>.zip`).
    pub fn has_package(&self, name: &str) -> Result<bool, RayError> {
        let path = format!("/api/packages/gcs/{name}");
        match self.exchange(Call::Get, &path)? {
            (status, _) if (200..300).contains(&status) => Ok(true),
            (404, _) => Ok(false),
            (status, body) => Err(RayError::Status {
                what: format!("GET {path}"),
                status,
                body: error_message(&body),
            }),
        }
    }

    /// Uploads a package zip under `name`.
    pub fn upload_package(&self, name: &str, zip: &[u8]) -> Result<(), RayError> {
        let path = format!("/api/packages/gcs/{name}");
        let what = format!("PUT {path}");
        self.expect_ok(&what, self.exchange(Call::PutZip(zip), &path)?)
            .map(drop)
    }

    /// Submits a job (`POST /api/jobs/`); returns its submission id.
    pub fn submit(&self, request: &Value) -> Result<String, RayError> {
        let what = "POST /api/jobs/";
        let body = self.expect_ok(what, self.exchange(Call::Post(Some(request)), "/api/jobs/")?)?;
        let answer = Self::parse(what, &body)?;
        answer["submission_id"]
            .as_str()
            .or_else(|| answer["job_id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| RayError::BadAnswer {
                what: what.to_owned(),
                reason: format!("no submission_id in {answer}"),
            })
    }

    fn job_path(id: &str) -> String {
        let escaped: String = id
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect();
        format!("/api/jobs/{escaped}")
    }

    /// The answer about job `id` to `call` at `path` under the job's path,
    /// parsed; what was asked, for errors.
    fn job_answer(&self, call: Call<'_>, id: &str, path: &str) -> Result<(String, Value), RayError> {
        let path = format!("{}{path}", Self::job_path(id));
        let what = format!("{} {path}", call.method());
        let (status, body) = self.exchange(call, &path)?;
        if status == 404 {
            return Err(RayError::NoSuchJob(id.to_owned()));
        }
        let body = self.expect_ok(&what, (status, body))?;
        let answer = Self::parse(&what, &body)?;
        Ok((what, answer))
    }

    /// One job's state (`GET /api/jobs/{id}`).
    pub fn status(&self, id: &str) -> Result<JobInfo, RayError> {
        let (what, answer) = self.job_answer(Call::Get, id, "")?;
        JobInfo::from_json(answer).map_err(|reason| RayError::BadAnswer { what, reason })
    }

    /// Everything the job printed so far (`GET /api/jobs/{id}/logs`).
    pub fn logs(&self, id: &str) -> Result<String, RayError> {
        let (_, answer) = self.job_answer(Call::Get, id, "/logs")?;
        Ok(answer["logs"].as_str().unwrap_or_default().to_owned())
    }

    /// The live stream of what the job prints (`/api/jobs/{id}/logs/tail`,
    /// a WebSocket), from its first byte on.
    pub fn log_stream(&self, id: &str) -> Result<LogTail, TailError> {
        LogTail::open(&self.address, &format!("{}/logs/tail", Self::job_path(id)))
    }

    /// Asks the cluster to stop a job (`POST /api/jobs/{id}/stop`); false
    /// when it had already ended.
    pub fn stop(&self, id: &str) -> Result<bool, RayError> {
        let (_, answer) = self.job_answer(Call::Post(None), id, "/stop")?;
        Ok(answer["stopped"].as_bool().unwrap_or(false))
    }

    /// Every job the cluster knows (`GET /api/jobs/`).
    pub fn list(&self) -> Result<Vec<JobInfo>, RayError> {
        let what = "GET /api/jobs/";
        let body = self.expect_ok(what, self.exchange(Call::Get, "/api/jobs/")?)?;
        let answer = Self::parse(what, &body)?;
        let jobs = answer.as_array().cloned().unwrap_or_default();
        jobs.into_iter()
            .map(|job| {
                JobInfo::from_json(job).map_err(|reason| RayError::BadAnswer {
                    what: what.to_owned(),
                    reason,
                })
            })
            .collect()
    }
}

/// The requests the loader sends to the Jobs API.
#[derive(Clone, Copy)]
enum Call<'a> {
    Get,
    /// A POST with a JSON body, or none.
    Post(Option<&'a Value>),
    PutZip(&'a [u8]),
}

impl Call<'_> {
    fn method(self) -> &'static str {
        match self {
            Call::Get => "GET",
            Call::Post(_) => "POST",
            Call::PutZip(_) => "PUT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_are_normalised_like_rays_tools_do() {
        assert_eq!(normalise_address(None), DEFAULT_ADDRESS);
        assert_eq!(normalise_address(Some("auto")), DEFAULT_ADDRESS);
        assert_eq!(normalise_address(Some("127.0.0.1:9000/")), "http://127.0.0.1:9000");
        assert_eq!(
            normalise_address(Some("https://ray.example:443/")),
            "https://ray.example:443"
        );
    }

    #[test]
    fn job_ids_are_escaped_in_paths() {
        assert_eq!(JobsApi::job_path("loader-abc_1"), "/api/jobs/loader-abc_1");
        assert_eq!(JobsApi::job_path("../x y"), "/api/jobs/..%2Fx%20y");
    }

    #[test]
    fn statuses_read_rays_names_and_know_when_they_are_final() {
        let status: JobStatus = serde_json::from_value(json!("SUCCEEDED")).unwrap();
        assert_eq!(status, JobStatus::Succeeded);
        assert!(status.is_terminal());
        assert!(!JobStatus::Pending.is_terminal());
        assert_eq!(JobStatus::Running.as_str(), "RUNNING");
        let info = JobInfo::from_json(json!({"status": "FAILED", "submission_id": "j1", "message": "boom"})).unwrap();
        assert_eq!(
            (info.submission_id.as_deref(), info.message.as_deref()),
            (Some("j1"), Some("boom"))
        );
        assert!(JobInfo::from_json(json!({"status": "EXPLODED"})).is_err());
    }

    #[test]
    fn an_address_where_nothing_listens_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let api = JobsApi::new(&format!("127.0.0.1:{port}"));
        let error = api.version().unwrap_err();
        assert!(matches!(error, RayError::Unreachable { .. }), "{error}");
        assert!(error.to_string().contains("ray start --head"), "{error}");
    }
}
