//! The backend and agent clients of an isolated run, as they travel to the
//! child: only which clients the run offers. Their endpoints and
//! credentials stay in the loader, which makes the plugin's calls on its
//! behalf (see `isolate::proxy` and `isolate::child_clients`).

use serde::{Deserialize, Serialize};

use crate::run::host::Clients;

/// The clients the child offers the plugin; none by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolatedClients {
    /// `ctx.client()` is offered.
    pub backend: bool,
    /// `ctx.agent_client()` is offered.
    pub agent: bool,
}

impl IsolatedClients {
    /// Which of the parent's clients the child offers.
    pub fn of(clients: &Clients) -> Self {
        Self {
            backend: clients.backend.is_some(),
            agent: clients.agent.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::{agent_endpoint, backend_endpoint, ApiClient};
    use crate::events::MemorySink;
    use crate::isolate::{run_isolated, ChildCommand, Interrupts};
    use crate::run::host::{Client, RunSettings};

    #[test]
    fn the_request_and_the_environment_the_child_gets_hold_no_credential_nor_endpoint() {
        let seen = tempfile::tempdir().unwrap();
        let (request_file, env_file) = (seen.path().join("request"), seen.path().join("env"));
        // A stand-in child: keeps its first channel line and its environment.
        let child = ChildCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                format!(
                    "head -n 1 <&3 > '{}'; env > '{}'",
                    request_file.display(),
                    env_file.display()
                ),
            ],
        };
        let make = |endpoint| Arc::new(ApiClient::new(endpoint, std::time::Duration::from_secs(1))) as Arc<dyn Client>;
        let settings = RunSettings {
            clients: Clients {
                backend: Some(make(backend_endpoint(
                    "http://user:pw-3141@127.0.0.1:9/api/",
                    Some("tok-2718"),
                    Some("ten-1618"),
                ))),
                agent: Some(make(agent_endpoint(
                    "http://127.0.0.1:9/agent/",
                    Some("agent-tok-1414"),
                ))),
            },
            ..RunSettings::default()
        };
        let outcome = run_isolated(
            &child,
            std::path::Path::new("/nonexistent.so"),
            "p",
            "a",
            "{}",
            settings,
            None,
            &Interrupts::default(),
            Arc::new(MemorySink::new()),
        );
        assert!(outcome.is_err(), "the stand-in reports no result");
        let request = std::fs::read_to_string(&request_file).unwrap();
        let env = std::fs::read_to_string(&env_file).unwrap();
        let sent: serde_json::Value = serde_json::from_str(&request).expect("the request line");
        assert_eq!(sent["clients"], serde_json::json!({ "backend": true, "agent": true }));
        for secret in ["tok-2718", "ten-1618", "agent-tok-1414", "pw-3141", "127.0.0.1:9"] {
            assert!(!request.contains(secret), "{secret} in the request: {request}");
            assert!(!env.contains(secret), "{secret} in the environment: {env}");
        }
    }
}
