//! The host's side of `ctx.client()` and `ctx.agent_client()`: turns a
//! plugin's `{method, path, body}` into an HTTP request and a failure into
//! the JSON error that plugin-api reads as a typed `ClientError`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::{Endpoint, HttpClient, RequestError, RetryPolicy};
use crate::host::Client;

/// What makes an [`ApiClient`]: sent to an isolated run's child so that it
/// makes the same requests.
#[derive(Clone, Serialize, Deserialize)]
pub struct ClientSpec {
    pub endpoint: Endpoint,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSpec")
            .field("url", &self.endpoint.url)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

/// A backend or agent client offered to plugins.
pub struct ApiClient {
    http: HttpClient,
    timeout: Duration,
}

impl ApiClient {
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Self {
        Self {
            http: HttpClient::new(endpoint, timeout, RetryPolicy::default()),
            timeout,
        }
    }

    pub fn from_spec(spec: ClientSpec) -> Self {
        Self::new(spec.endpoint, Duration::from_millis(spec.timeout_ms))
    }
}

impl Client for ApiClient {
    fn request(&self, request: &Value) -> Result<Value, String> {
        let error_json = |e: RequestError| serde_json::to_string(&e).unwrap_or_else(|_| e.to_string());
        let method = request.get("method").and_then(Value::as_str).unwrap_or("GET");
        let Some(path) = request.get("path").and_then(Value::as_str) else {
            return Err(error_json(RequestError::Invalid {
                reason: "the request has no path".to_owned(),
            }));
        };
        let body = request.get("body").filter(|b| !b.is_null());
        self.http.request(method, path, body).map_err(error_json)
    }

    fn spec(&self) -> Option<ClientSpec> {
        Some(ClientSpec {
            endpoint: self.http.endpoint().clone(),
            timeout_ms: self.timeout.as_millis() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use backend_server::{Fault, TestBackend};
    use serde_json::json;

    use super::*;
    use crate::backend::{agent_endpoint, backend_endpoint};

    fn client(server: &TestBackend, token: &str) -> ApiClient {
        ApiClient::new(
            backend_endpoint(&server.url(), Some(token), Some("tenant-a")),
            Duration::from_secs(5),
        )
    }

    fn get(path: &str) -> Value {
        json!({ "method": "GET", "path": path, "body": null })
    }

    #[test]
    fn answers_come_back_as_json_after_retrying_server_errors() {
        let server = TestBackend::start(Some("good-token")).unwrap();
        server.fail_next(
            2,
            Fault::Status {
                status: 503,
                retry_after: None,
            },
        );
        let model = client(&server, "good-token").request(&get("models/3/")).unwrap();
        assert_eq!(model["name"], "model 3");
        let requests = server.requests();
        assert_eq!(requests.len(), 3, "two 503s, then the answer");
        assert_eq!(requests[2].headers["synapse-tenant"], "Token tenant-a");
    }

    #[test]
    fn failures_are_typed_json_naming_the_credential_not_its_value() {
        let server = TestBackend::start(Some("good-token")).unwrap();
        let refused = client(&server, "bad-token-value")
            .request(&get("models/3/"))
            .unwrap_err();
        let refused: Value = serde_json::from_str(&refused).unwrap();
        assert_eq!(refused["kind"], "unauthorized");
        assert_eq!(refused["status"], 401);
        assert_eq!(refused["credential"], "SYNAPSE_ACCESS_TOKEN");
        assert_eq!(refused["message"], "Invalid token.");
        assert!(!refused.to_string().contains("bad-token-value"));
        let missing = client(&server, "good-token").request(&get("models/5000/")).unwrap_err();
        assert!(
            missing.contains("\"status\":404") && missing.contains("Not found."),
            "{missing}"
        );
    }

    #[test]
    fn the_agent_client_sends_its_token_as_authorization() {
        let server = TestBackend::start(None).unwrap();
        let agent = ApiClient::new(agent_endpoint(&server.url(), Some("agent-tok")), Duration::from_secs(5));
        let jobs = agent.request(&get("jobs/")).unwrap();
        assert_eq!(jobs["count"], 0);
        assert_eq!(server.requests()[0].headers["authorization"], "agent-tok");
        assert!(agent.spec().is_some_and(|spec| spec.endpoint.url == server.url()));
    }
}
