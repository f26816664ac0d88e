//! The child's side of the plugin's client calls: `ctx.client()` and
//! `ctx.agent_client()` in an isolated run are clients that hold neither an
//! endpoint nor a credential. Each call goes to the loader as a
//! `client-request` line with an id of its own (sent at once, not batched
//! with events), the calling thread waits for the `client-answer` line with
//! that id, and the loader makes the HTTP call (see `isolate::proxy`). The
//! plugin sees the same answers and typed errors as when the loader's own
//! client is called in-process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::child_writer::ChannelWriter;
use super::client_wire::{
    line_of, refused, ClientAnswer, ClientCall, ClientName, MAX_CLIENT_MESSAGE_BYTES, REQUEST_PREFIX,
};
use super::IsolatedClients;
use crate::events::lock;
use crate::run::host::{Client, Clients};

/// The calls of this process waiting for their answers.
pub struct ProxiedCalls {
    writer: ChannelWriter,
    waiting: Mutex<HashMap<u64, Sender<Result<Value, String>>>>,
    next_id: AtomicU64,
}

impl ProxiedCalls {
    pub fn new(writer: ChannelWriter) -> Arc<Self> {
        Arc::new(ProxiedCalls {
            writer,
            waiting: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// The clients the loader offers this run, each calling through it.
    pub fn clients(self: &Arc<Self>, offered: &IsolatedClients) -> Clients {
        let client = |offered: bool, name: ClientName| {
            offered.then(|| {
                Arc::new(ProxiedClient {
                    name,
                    calls: self.clone(),
                }) as Arc<dyn Client>
            })
        };
        Clients {
            backend: client(offered.backend, ClientName::Backend),
            agent: client(offered.agent, ClientName::Agent),
        }
    }

    /// Takes a `client-answer` line's JSON from the loader: the waiting
    /// call with its id gets the answer (an answer for no call is dropped).
    pub fn answer(&self, json: &[u8]) {
        let Ok(answer) = serde_json::from_slice::<ClientAnswer>(json) else {
            return;
        };
        if let Some(waiter) = lock(&self.waiting).remove(&answer.id) {
            let _ = waiter.send(answer.answer);
        }
    }

    /// Sends a call and waits for its answer.
    fn call(&self, client: ClientName, request: &Value) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let call = ClientCall {
            id,
            client,
            request: request.clone(),
        };
        let Some(line) = line_of(REQUEST_PREFIX, &call) else {
            return refused(format!(
                "the request is larger than the {MAX_CLIENT_MESSAGE_BYTES} bytes a client call may carry"
            ));
        };
        let (sender, answer) = mpsc::channel();
        lock(&self.waiting).insert(id, sender);
        if let Err(e) = self.writer.send_now(|pending| pending.extend_from_slice(&line)) {
            lock(&self.waiting).remove(&id);
            return refused(format!("cannot send the call to the loader: {e}"));
        }
        answer
            .recv()
            .unwrap_or_else(|_| refused("the loader did not answer the call".to_owned()))
    }
}

/// `ctx.client()` or `ctx.agent_client()` in the child.
struct ProxiedClient {
    name: ClientName,
    calls: Arc<ProxiedCalls>,
}

impl Client for ProxiedClient {
    fn request(&self, request: &Value) -> Result<Value, String> {
        self.calls.call(self.name, request)
    }
}
