//! The backend and agent clients a plugin reaches through its context
//! (`ctx.client()`, `ctx.agent_client()`), and the typed error of a request.
//!
//! A request crosses to the host as JSON `{method, path, body}` through the
//! context's `client_request` slot; the host makes the HTTP call (with its
//! credentials, timeouts and retries) and answers with the JSON body, or
//! with a JSON error `{kind, status, url, message, credential}` that becomes
//! a [`ClientError`] here.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::RuntimeContext;
use crate::ffi::ClientKind;

/// A request failed, or the host could not make it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// 401 or 403: the named credential was refused (its value is never
    /// shown).
    #[error("{client} request to {url} was refused (HTTP {status}): check {credential}: {message}")]
    Unauthorized {
        /// Which client: `backend` or `agent`.
        client: &'static str,
        /// The HTTP status (401 or 403).
        status: u16,
        /// The URL requested.
        url: String,
        /// The name of the refused credential, e.g. `SYNAPSE_ACCESS_TOKEN`.
        credential: String,
        /// What the server said.
        message: String,
    },
    /// The server answered with an error status.
    #[error("{client} request to {url} failed with HTTP {status}: {message}")]
    Status {
        /// Which client: `backend` or `agent`.
        client: &'static str,
        /// The HTTP status.
        status: u16,
        /// The URL requested.
        url: String,
        /// What the server said.
        message: String,
    },
    /// No answer, after the host's retries.
    #[error("{client} is unreachable at {url}: {reason}")]
    Unreachable {
        /// Which client: `backend` or `agent`.
        client: &'static str,
        /// The URL requested.
        url: String,
        /// Why there was no answer.
        reason: String,
    },
    /// Anything else: an invalid request, no client configured, a host too
    /// old to make requests, an answer that is not JSON.
    #[error("{client} request failed: {message}")]
    Other {
        /// Which client: `backend` or `agent`.
        client: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Unauthorized { status, .. } | ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Which client failed: `backend` or `agent`.
    pub fn client(&self) -> &'static str {
        match self {
            ClientError::Unauthorized { client, .. }
            | ClientError::Status { client, .. }
            | ClientError::Unreachable { client, .. }
            | ClientError::Other { client, .. } => client,
        }
    }

    /// Reads the host's error text: the JSON error of a loader that makes
    /// real requests, or plain text from any other host.
    fn from_host(client: &'static str, text: String) -> Self {
        #[derive(Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        enum HostError {
            Unauthorized {
                status: u16,
                url: String,
                credential: String,
                message: String,
            },
            Status {
                status: u16,
                url: String,
                message: String,
            },
            Connection {
                url: String,
                reason: String,
            },
            Invalid {
                reason: String,
            },
        }
        match serde_json::from_str::<HostError>(&text) {
            Ok(HostError::Unauthorized {
                status,
                url,
                credential,
                message,
            }) => ClientError::Unauthorized {
                client,
                status,
                url,
                credential,
                message,
            },
            Ok(HostError::Status { status, url, message }) => ClientError::Status {
                client,
                status,
                url,
                message,
            },
            Ok(HostError::Connection { url, reason }) => ClientError::Unreachable { client, url, reason },
            Ok(HostError::Invalid { reason }) => ClientError::Other {
                client,
                message: reason,
            },
            Err(_) => ClientError::Other { client, message: text },
        }
    }
}

fn client_request(
    ctx: &RuntimeContext,
    kind: ClientKind,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ClientError> {
    let client = match kind {
        ClientKind::Backend => "backend",
        ClientKind::Agent => "agent",
    };
    let request = json!({ "method": method, "path": path, "body": body });
    let answer = ctx
        .host_handle()
        .client_request(kind, &request.to_string())
        .map_err(|text| ClientError::from_host(client, text))?;
    serde_json::from_str(&answer).map_err(|e| ClientError::Other {
        client,
        message: format!("the answer is not JSON: {e}"),
    })
}

/// Appends `?key=value&...` for the string, number and boolean fields of
/// `query` (a JSON object); other values are sent as JSON text.
fn with_query(path: &str, query: &Value) -> String {
    let Some(fields) = query.as_object().filter(|f| !f.is_empty()) else {
        return path.to_owned();
    };
    let pairs: Vec<String> = fields
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}={}", percent_encode(key), percent_encode(&text))
        })
        .collect();
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{}", pairs.join("&"))
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `ctx.client()` and `ctx.agent_client()`: a context makes the clients
/// (this module depends on the context, not the other way round).
impl RuntimeContext {
    /// The backend API client; `None` when the host has none configured.
    pub fn client(&self) -> Option<BackendClient> {
        self.host_handle()
            .has_client(ClientKind::Backend)
            .then(|| BackendClient::new(self.clone()))
    }

    /// The agent client; `None` when the host has none configured.
    pub fn agent_client(&self) -> Option<AgentClient> {
        self.host_handle()
            .has_client(ClientKind::Agent)
            .then(|| AgentClient::new(self.clone()))
    }
}

/// The Synapse backend API client (`ctx.client()`).
#[derive(Clone)]
pub struct BackendClient {
    ctx: RuntimeContext,
}

impl BackendClient {
    pub(crate) fn new(ctx: RuntimeContext) -> Self {
        Self { ctx }
    }

    /// A request to the backend API: `method` (`GET`, `POST`, ...), a path
    /// relative to the API root, an optional JSON body.
    pub fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        client_request(&self.ctx, ClientKind::Backend, method, path, body)
    }

    /// `GET data_collections/{id}/?expand=file_specifications`.
    pub fn get_data_collection(&self, id: impl std::fmt::Display) -> Result<Value, ClientError> {
        self.request(
            "GET",
            &format!("data_collections/{id}/?expand=file_specifications"),
            None,
        )
    }

    /// `GET data_collections/` with query parameters (a JSON object).
    pub fn list_data_collections(&self, query: Value) -> Result<Value, ClientError> {
        self.request("GET", &with_query("data_collections/", &query), None)
    }

    /// `GET models/{id}/`.
    pub fn get_model(&self, id: impl std::fmt::Display) -> Result<Value, ClientError> {
        self.request("GET", &format!("models/{id}/"), None)
    }

    /// `GET models/` with query parameters (a JSON object).
    pub fn list_models(&self, query: Value) -> Result<Value, ClientError> {
        self.request("GET", &with_query("models/", &query), None)
    }

    /// `POST models/` with the model's fields.
    pub fn create_model(&self, data: Value) -> Result<Value, ClientError> {
        self.request("POST", "models/", Some(data))
    }

    /// `PATCH jobs/{id}/` with the fields to change.
    pub fn update_job(&self, id: impl std::fmt::Display, data: Value) -> Result<Value, ClientError> {
        self.request("PATCH", &format!("jobs/{id}/"), Some(data))
    }

    /// `POST logs/` with one entry or a list of entries.
    pub fn create_logs(&self, entries: Value) -> Result<Value, ClientError> {
        self.request("POST", "logs/", Some(entries))
    }
}

/// The agent client (`ctx.agent_client()`): the agent's job API.
#[derive(Clone)]
pub struct AgentClient {
    ctx: RuntimeContext,
}

impl AgentClient {
    pub(crate) fn new(ctx: RuntimeContext) -> Self {
        Self { ctx }
    }

    /// A request to the agent: `method`, a path, an optional JSON body.
    pub fn request(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        client_request(&self.ctx, ClientKind::Agent, method, path, body)
    }

    /// `GET jobs/`.
    pub fn list_jobs(&self) -> Result<Value, ClientError> {
        self.request("GET", "jobs/", None)
    }

    /// `GET jobs/{id}/`.
    pub fn get_job(&self, id: impl std::fmt::Display) -> Result<Value, ClientError> {
        self.request("GET", &format!("jobs/{id}/"), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_become_typed_errors() {
        let refused = ClientError::from_host(
            "backend",
            json!({"kind": "unauthorized", "status": 401, "url": "http://h/models/1/",
                   "credential": "SYNAPSE_ACCESS_TOKEN", "message": "Invalid token."})
            .to_string(),
        );
        assert_eq!(refused.status(), Some(401));
        let text = refused.to_string();
        assert!(
            text.contains("SYNAPSE_ACCESS_TOKEN") && text.contains("Invalid token."),
            "{text}"
        );
        let missing = ClientError::from_host(
            "backend",
            json!({"kind": "status", "status": 404, "url": "u", "message": "Not found."}).to_string(),
        );
        assert!(matches!(missing, ClientError::Status { status: 404, .. }));
        let plain = ClientError::from_host("agent", "no Agent client is configured".into());
        assert_eq!(plain.client(), "agent");
        assert_eq!(plain.status(), None);
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(
            with_query("models/", &json!({"name": "a b", "page": 2})),
            "models/?name=a%20b&page=2"
        );
        assert_eq!(with_query("models/", &json!({})), "models/");
    }
}
