//! The host's side of `ctx.client()` and `ctx.agent_client()`: turns a
//! plugin's `{method, path, body}` into an HTTP request and a failure into
//! the JSON error that plugin-api reads as a typed `ClientError`. The
//! error never shows a credential: the run's secrets and the user and
//! password of a URL are redacted from it before the plugin sees it (in an
//! isolated run, it crosses to the plugin's process).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::http::{Endpoint, HttpClient, RequestError, RetryPolicy};
use crate::run::host::Client;
use crate::run::redact::Redactor;

/// A backend or agent client offered to plugins.
pub struct ApiClient {
    http: HttpClient,
    redactor: Arc<Redactor>,
}

impl ApiClient {
    /// A client whose errors hide the user and password of URLs.
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Self {
        Self::with_redactor(endpoint, timeout, Arc::default())
    }

    /// A client whose errors hide `redactor`'s secrets too.
    pub fn with_redactor(endpoint: Endpoint, timeout: Duration, redactor: Arc<Redactor>) -> Self {
        Self {
            http: HttpClient::new(endpoint, timeout, RetryPolicy::default()),
            redactor,
        }
    }
}

impl Client for ApiClient {
    fn request(&self, request: &Value) -> Result<Value, String> {
        let error_json = |e: RequestError| {
            let text = serde_json::to_string(&e).unwrap_or_else(|_| e.to_string());
            self.redactor.redact_str(&text).into_owned()
        };
        let method = request.get("method").and_then(Value::as_str).unwrap_or("GET");
        let Some(path) = request.get("path").and_then(Value::as_str) else {
            return Err(error_json(RequestError::Invalid {
                reason: "the request has no path".to_owned(),
            }));
        };
        let body = request.get("body").filter(|b| !b.is_null());
        self.http.request(method, path, body).map_err(error_json)
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
    }

    #[test]
    fn errors_show_neither_the_urls_user_and_password_nor_the_runs_secrets() {
        let server = TestBackend::start(Some("good-token")).unwrap();
        let with_user = server.url().replacen("http://", "http://user:hunter22@", 1);
        let mut redactor = Redactor::default();
        redactor.add_secret("bad-token-value");
        let endpoint = backend_endpoint(&with_user, Some("bad-token-value"), None);
        let client = ApiClient::with_redactor(endpoint, Duration::from_secs(5), Arc::new(redactor));
        let refused = client.request(&get("models/3/")).unwrap_err();
        assert!(
            !refused.contains("hunter22") && !refused.contains("bad-token-value"),
            "{refused}"
        );
        assert!(refused.contains("[REDACTED]@127.0.0.1"), "{refused}");
    }
}
