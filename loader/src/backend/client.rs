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
