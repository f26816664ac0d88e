//! A blocking HTTP client for the backend and agent APIs: JSON in and out,
//! the credential headers of the Synapse original, timeouts, and retries
//! with exponential backoff on connection errors and on 408, 429 and 5xx
//! answers (honouring `Retry-After`). Requests that may change something
//! carry an `Idempotency-Key` header that stays the same across retries, so
//! a request that succeeded but whose answer was lost is not applied twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ureq::http;

/// The header that makes a retried request safe to repeat.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The longest piece of an error answer kept in a message.
const MAX_MESSAGE_CHARS: usize = 500;

/// A request that failed, as plugins and the job reporter see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RequestError {
    /// 401 or 403: the named credential (never its value) was refused.
    #[error("{credential} was refused by {url} (HTTP {status}): {message}")]
    Unauthorized {
        status: u16,
        url: String,
        credential: String,
        message: String,
    },
    /// Any other answer that is not a success.
    #[error("HTTP {status} from {url}: {message}")]
    Status { status: u16, url: String, message: String },
    /// No answer: the connection was refused, reset or timed out.
    #[error("cannot reach {url}: {reason}")]
    Connection { url: String, reason: String },
    /// The request itself is not acceptable (bad method or path).
    #[error("invalid request: {reason}")]
    Invalid { reason: String },
}

impl RequestError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RequestError::Connection { .. } => true,
            RequestError::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            RequestError::Unauthorized { .. } | RequestError::Invalid { .. } => false,
        }
    }
}

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (0-based): doubling from
    /// `first_delay`, or what the server asked for, never above `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doubling = self.first_delay.saturating_mul(1u32 << attempt.min(16));
        retry_after.unwrap_or(doubling).min(self.max_delay)
    }
}

/// Where a client connects and how it proves who it is. Its `Debug` form
/// shows the header names, never their values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The API root, e.g. `https://api.example.com/`.
    pub url: String,
    /// Headers sent with every request (the credentials).
    pub headers: Vec<(String, String)>,
    /// The name of the credential, for a refused request (e.g.
    /// `SYNAPSE_ACCESS_TOKEN`).
    pub credential: String,
    /// How the server spells paths.
    #[serde(default)]
    pub path_style: PathStyle,
}

/// How a server spells its paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathStyle {
    /// Paths are sent as given (the Synapse backend and agent: `jobs/1/`).
    #[default]
    AsGiven,
    /// Ray's Jobs API: no trailing slash (`jobs/1`, `jobs/1/logs`) except
    /// on the job list, which it serves only as `jobs/`. So the Synapse
    /// agent's paths (`jobs/{id}/`, `jobs/{id}/logs/`) reach Ray as they are.
    RayJobs,
}

impl PathStyle {
    /// `path` (relative to the API root) as the server spells it.
    fn spell(self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        match self {
            PathStyle::AsGiven => path.to_owned(),
            PathStyle::RayJobs => {
                let (route, query) = match path.split_once('?') {
                    Some((route, query)) => (route, Some(query)),
                    None => (path, None),
                };
                let route = route.trim_end_matches('/');
                let route = if route == "jobs" { "jobs/" } else { route };
                match query {
                    Some(query) => format!("{route}?{query}"),
                    None => route.to_owned(),
                }
            }
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("headers", &names)
            .field("credential", &self.credential)
            .finish()
    }
}

/// One failed attempt: the error and how long the server asked us to wait.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub error: RequestError,
    pub retry_after: Option<Duration>,
}

/// A blocking JSON client for one [`Endpoint`].
pub struct HttpClient {
    agent: ureq::Agent,
    endpoint: Endpoint,
    retry: RetryPolicy,
    key_prefix: String,
    next_key: AtomicU64,
}

impl HttpClient {
    /// A client with `timeout` for each attempt (connecting included).
    pub fn new(endpoint: Endpoint, timeout: Duration, retry: RetryPolicy) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .max_redirects(0)
            .build();
        let mut endpoint = endpoint;
        if !endpoint.url.ends_with('/') {
            endpoint.url.push('/');
        }
        let key_prefix = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        Self {
            agent: config.into(),
            endpoint,
            retry,
            key_prefix,
            next_key: AtomicU64::new(0),
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A request with retries. Requests other than GET and HEAD get a fresh
    /// idempotency key, the same for all their attempts.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, RequestError> {
        let key = (!matches!(method.to_ascii_uppercase().as_str(), "GET" | "HEAD"))
            .then(|| format!("{}-{}", self.key_prefix, self.next_key.fetch_add(1, Ordering::Relaxed)));
        self.request_with_key(method, path, body, key.as_deref())
    }

    /// A request with retries and the given idempotency key.
    pub fn request_with_key(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Value, RequestError> {
        let mut attempt = 0;
        loop {
            match self.attempt(method, path, body, key) {
                Ok(answer) => return Ok(answer),
                Err(failed) if failed.error.is_retryable() && attempt + 1 < self.retry.attempts => {
                    std::thread::sleep(self.retry.delay(attempt, failed.retry_after));
                    attempt += 1;
                }
                Err(failed) => return Err(failed.error),
            }
        }
    }

    /// One attempt, no retry.
    pub fn attempt(&self, method: &str, path: &str, body: Option<&Value>, key: Option<&str>) -> Result<Value, Attempt> {
        let invalid = |reason: String| Attempt {
            error: RequestError::Invalid { reason },
            retry_after: None,
        };
        let url = self.url_for(path).map_err(invalid)?;
        let method = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| invalid(format!("{method:?} is not an HTTP method")))?;
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("Accept", "application/json");
        for (name, value) in &self.endpoint.headers {
            builder = builder.header(name, value);
        }
        if let Some(key) = key {
            builder = builder.header(IDEMPOTENCY_HEADER, key);
        }
        let sent = match body {
            Some(body) => builder
                .header("Content-Type", "application/json")
                .body(body.to_string().into_bytes())
                .map(|request| self.agent.run(request)),
            None if matches!(method, http::Method::POST | http::Method::PUT | http::Method::PATCH) => {
                builder.body(Vec::new()).map(|request| self.agent.run(request))
            }
            None => builder.body(()).map(|request| self.agent.run(request)),
        }
        .map_err(|e| invalid(format!("cannot build the request: {e}")))?;
        let mut response = sent.map_err(|e| Attempt {
            error: RequestError::Connection {
                url: url.clone(),
                reason: e.to_string(),
            },
            retry_after: None,
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
        let text = response.body_mut().read_to_string().map_err(|e| Attempt {
            error: RequestError::Connection {
                url: url.clone(),
                reason: format!("the answer was cut off: {e}"),
            },
            retry_after: None,
        })?;
        if (200..300).contains(&status) {
            return Ok(parse_answer(&text));
        }
        let message = error_message(&text);
        let error = if status == 401 || status == 403 {
            RequestError::Unauthorized {
                status,
                url,
                credential: self.endpoint.credential.clone(),
                message,
            }
        } else {
            RequestError::Status { status, url, message }
        };
        Err(Attempt { error, retry_after })
    }

    /// The full URL of `path`, relative to the API root. Absolute URLs are
    /// refused: the credentials go only to the configured host.
    fn url_for(&self, path: &str) -> Result<String, String> {
        if path.contains("://") || path.starts_with("//") {
            return Err(format!(
                "{path:?} is an absolute URL; give a path relative to the API root"
            ));
        }
        Ok(format!("{}{}", self.endpoint.url, self.endpoint.path_style.spell(path)))
    }
}

/// A successful answer: JSON, `null` when empty, else the text as a string.
fn parse_answer(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// A server's own explanation of an error answer (the backend's, a Ray
/// cluster's): `detail`, `message` or `error` of a JSON answer, else the
/// start of the text.
pub(crate) fn error_message(text: &str) -> String {
    let from_json = serde_json::from_str::<Value>(text).ok().and_then(|v| {
        ["detail", "message", "error"]
            .iter()
            .find_map(|field| {
                v.get(field)
                    .map(|m| m.as_str().map(str::to_owned).unwrap_or_else(|| m.to_string()))
            })
            .or_else(|| Some(v.to_string()))
    });
    let message = from_json.unwrap_or_else(|| text.trim().to_owned());
    if message.is_empty() {
        return "(no message)".to_owned();
    }
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_and_honour_retry_after_within_the_cap() {
        let policy = RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(policy.delay(0, None), Duration::from_millis(100));
        assert_eq!(policy.delay(2, None), Duration::from_millis(400));
        assert_eq!(policy.delay(9, None), Duration::from_secs(1));
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(policy.delay(0, Some(Duration::from_secs(60))), Duration::from_secs(1));
    }

    #[test]
    fn which_errors_are_retried() {
        let status = |status| RequestError::Status {
            status,
            url: String::new(),
            message: String::new(),
        };
        assert!(status(500).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(!RequestError::Invalid { reason: String::new() }.is_retryable());
    }

    #[test]
    fn error_messages_come_from_the_answer() {
        assert_eq!(error_message(r#"{"detail": "Not found."}"#), "Not found.");
        assert_eq!(error_message("plain text"), "plain text");
        assert_eq!(error_message(""), "(no message)");
        assert_eq!(error_message(&"x".repeat(2000)).len(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn absolute_urls_are_refused_so_credentials_stay_with_their_host() {
        let endpoint = Endpoint {
            url: "http://127.0.0.1:9/api".into(),
            headers: vec![],
            credential: "SYNAPSE_ACCESS_TOKEN".into(),
            path_style: PathStyle::AsGiven,
        };
        let client = HttpClient::new(endpoint, Duration::from_secs(1), RetryPolicy::default());
        assert_eq!(client.url_for("/jobs/1/").unwrap(), "http://127.0.0.1:9/api/jobs/1/");
        assert!(client.url_for("http://elsewhere/").is_err());
        assert!(client.url_for("//elsewhere/x").is_err());
    }

    #[test]
    fn rays_jobs_api_gets_the_synapse_agents_paths_without_their_trailing_slash() {
        let ray = PathStyle::RayJobs;
        assert_eq!(ray.spell("jobs/"), "jobs/");
        assert_eq!(ray.spell("/jobs"), "jobs/");
        assert_eq!(ray.spell("jobs/?limit=5"), "jobs/?limit=5");
        assert_eq!(ray.spell("jobs/abc/"), "jobs/abc");
        assert_eq!(ray.spell("jobs/abc/logs/"), "jobs/abc/logs");
        assert_eq!(ray.spell("jobs/abc/stop/?x=1"), "jobs/abc/stop?x=1");
        assert_eq!(ray.spell("version"), "version");
        assert_eq!(PathStyle::AsGiven.spell("/jobs/abc/"), "jobs/abc/");
    }
}
