//! The backend and agent clients of an isolated run, as they travel to the
//! child: only which clients the run offers. Their endpoints and
//! credentials stay in the loader, which makes the plugin's calls on its
//! behalf (see `isolate::proxy` and `isolate::child_clients`).

use serde::{Deserialize, Serialize};

use crate::host::Clients;

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
