//! The backend and agent clients of an isolated run, as they travel to the
//! child: each client's endpoint, credentials included, goes in the
//! request on the event channel, since the child's environment is cleared
//! and could not give it the tokens.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::{ApiClient, ClientSpec};
use crate::host::{Client, Clients};

/// The clients the child offers the plugin; none by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IsolatedClients {
    pub backend: Option<ClientSpec>,
    pub agent: Option<ClientSpec>,
}

impl IsolatedClients {
    /// What the child needs to make the parent's clients again.
    pub fn of(clients: &Clients) -> Self {
        Self {
            backend: clients.backend.as_ref().and_then(|c| c.spec()),
            agent: clients.agent.as_ref().and_then(|c| c.spec()),
        }
    }

    /// The clients, made in the child.
    pub fn build(self) -> Clients {
        let make = |spec: ClientSpec| Arc::new(ApiClient::from_spec(spec)) as Arc<dyn Client>;
        Clients {
            backend: self.backend.map(make),
            agent: self.agent.map(make),
        }
    }
}
