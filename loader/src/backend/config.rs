//! Where the backend and the agent are and which credentials they get: the
//! Synapse original's variables and headers, and the settings of the job
//! reporter.

use std::path::PathBuf;
use std::time::Duration;

use super::http::{Endpoint, PathStyle};

/// The backend's URL (or `--backend`).
pub const HOST_VAR: &str = "SYNAPSE_HOST";
/// The backend access token, sent as `Synapse-Access-Token: Token <token>`.
pub const ACCESS_TOKEN_VAR: &str = "SYNAPSE_ACCESS_TOKEN";
/// The tenant, sent as `Synapse-Tenant: Token <tenant>`.
pub const TENANT_VAR: &str = "SYNAPSE_PLUGIN_RUN_TENANT";
/// The agent's URL (or `--agent`).
pub const AGENT_URL_VAR: &str = "SYNAPSE_AGENT_URL";
/// The agent token, sent as `Authorization: <token>`.
pub const AGENT_TOKEN_VAR: &str = "SYNAPSE_AGENT_TOKEN";

/// The backend endpoint: `url` with the access token and tenant headers.
pub fn backend_endpoint(url: &str, token: Option<&str>, tenant: Option<&str>) -> Endpoint {
    let mut headers = Vec::new();
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        headers.push(("Synapse-Access-Token".to_owned(), format!("Token {token}")));
    }
    if let Some(tenant) = tenant.filter(|t| !t.is_empty()) {
        headers.push(("Synapse-Tenant".to_owned(), format!("Token {tenant}")));
    }
    Endpoint {
        url: api_root(url),
        headers,
        credential: ACCESS_TOKEN_VAR.to_owned(),
        path_style: PathStyle::AsGiven,
    }
}

/// The agent endpoint: `url` with the agent token as `Authorization`.
pub fn agent_endpoint(url: &str, token: Option<&str>) -> Endpoint {
    let headers = token
        .filter(|t| !t.is_empty())
        .map(|t| vec![("Authorization".to_owned(), t.to_owned())])
        .unwrap_or_default();
    Endpoint {
        url: api_root(url),
        headers,
        credential: AGENT_TOKEN_VAR.to_owned(),
        path_style: PathStyle::AsGiven,
    }
}

/// `url` ending with one `/`, so that paths join below it.
fn api_root(url: &str) -> String {
    format!("{}/", url.trim().trim_end_matches('/'))
}

/// How the job reporter delivers.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// Where undelivered requests are journaled (`<state dir>/spool`).
    pub spool_dir: PathBuf,
    /// Each HTTP attempt's time limit.
    pub request_timeout: Duration,
    /// The least time between two progress/metrics snapshots.
    pub snapshot_interval: Duration,
    /// Log entries per `POST logs/` batch.
    pub batch_size: usize,
    /// The longest a log entry waits for its batch to fill.
    pub batch_delay: Duration,
    /// How long the end of a run waits for the backend to take everything.
    pub drain_timeout: Duration,
    /// The longest wait between two delivery attempts.
    pub max_backoff: Duration,
}

impl BackendSettings {
    pub fn new(state_dir: PathBuf) -> Self {
        Self {
            spool_dir: state_dir.join("spool"),
            request_timeout: Duration::from_secs(10),
            snapshot_interval: Duration::from_secs(1),
            batch_size: 200,
            batch_delay: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(30),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// The loader's state folder: `$XDG_STATE_HOME/synapse-loader`, else
/// `~/.local/state/synapse-loader`, else a folder in the temporary dir.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("synapse-loader");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/synapse-loader");
    }
    std::env::temp_dir().join("synapse-loader-state")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_the_originals() {
        let backend = backend_endpoint("http://h/", Some("abc"), Some("t1"));
        assert_eq!(
            backend.headers,
            vec![
                ("Synapse-Access-Token".to_owned(), "Token abc".to_owned()),
                ("Synapse-Tenant".to_owned(), "Token t1".to_owned())
            ]
        );
        let agent = agent_endpoint("http://a/", Some("xyz"));
        assert_eq!(agent.headers, vec![("Authorization".to_owned(), "xyz".to_owned())]);
        assert!(backend_endpoint("http://h/", None, None).headers.is_empty());
    }
}
