//! The loader's side of the plugin's client calls in an isolated run: each
//! `client-request` line the child sends (see [`client_wire`]) is made by
//! the loader's own client for that run (its endpoint, credentials,
//! timeouts and retries, as for an in-process run) and answered on the
//! channel with the call's id. The channel reader only hands the line over;
//! a few worker threads make the calls, so events keep flowing while a call
//! waits for its server, and several calls are under way at once.
//!
//! What the child sends is untrusted: a line that is not a call is
//! dropped with a warning (or, when its id can be read, answered with an
//! error), a call for a client the run does not offer gets an error
//! answer, and an answer too large for the channel becomes an error.
//!
//! [`client_wire`]: super::client_wire

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::client_wire::{
    id_in_prefix, line_of, refused, ClientAnswer, ClientCall, ClientName, ANSWER_PREFIX, MAX_CLIENT_MESSAGE_BYTES,
};
use super::to_child::ToChild;
use crate::run::host::{Client, Clients};

/// The most calls made at once; further calls wait for a worker.
const WORKERS: usize = 8;

/// Calls read and not yet taken by a worker; beyond that, the channel's
/// reader waits (and so does a child flooding the loader with calls).
const QUEUED: usize = 64;

/// Makes a run's client calls for its child.
pub struct ClientProxy {
    clients: Clients,
    to_child: ToChild,
    queue: Mutex<Option<SyncSender<ClientCall>>>,
    calls: Mutex<Option<Arc<Mutex<Receiver<ClientCall>>>>>,
    workers: AtomicUsize,
    idle: Arc<AtomicUsize>,
}

impl ClientProxy {
    pub fn new(clients: Clients, to_child: ToChild) -> Arc<Self> {
        let (queue, calls) = mpsc::sync_channel(QUEUED);
        Arc::new(ClientProxy {
            clients,
            to_child,
            queue: Mutex::new(Some(queue)),
            calls: Mutex::new(Some(Arc::new(Mutex::new(calls)))),
            workers: AtomicUsize::new(0),
            idle: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Takes a whole `client-request` line's JSON (without its prefix).
    pub fn take_line(self: &Arc<Self>, json: &[u8]) {
        match serde_json::from_slice::<ClientCall>(json) {
            Ok(call) => self.queue(call),
            Err(e) => match id_in_prefix(json) {
                Some(id) => self.answer(id, refused(format!("the loader could not read this client call: {e}"))),
                None => tracing::warn!("the isolated process sent a client call that is not one ({e}); it was dropped"),
            },
        }
    }

    /// A `client-request` line of `bytes` bytes, too large to read, of
    /// which `prefix` was kept: answered with an error when its id is there.
    pub fn take_oversized(&self, prefix: &[u8], bytes: u64) {
        let reason = format!(
            "the client call of {bytes} bytes is larger than the {MAX_CLIENT_MESSAGE_BYTES} bytes a call may carry"
        );
        match id_in_prefix(prefix) {
            Some(id) => self.answer(id, refused(reason)),
            None => tracing::warn!("the isolated process sent an unreadable client call: {reason}; it was dropped"),
        }
    }

    /// No more calls: the workers end once the queued ones are answered.
    pub fn close(&self) {
        crate::events::lock(&self.queue).take();
        crate::events::lock(&self.calls).take();
    }

    fn queue(self: &Arc<Self>, call: ClientCall) {
        let Some(queue) = crate::events::lock(&self.queue).clone() else {
            return;
        };
        if self.idle.load(Ordering::SeqCst) == 0 && self.workers.load(Ordering::SeqCst) < WORKERS {
            self.start_worker();
        }
        // Blocks while the workers are behind: back-pressure on the child.
        let _ = queue.send(call);
    }

    fn start_worker(self: &Arc<Self>) {
        let Some(calls) = crate::events::lock(&self.calls).clone() else {
            return;
        };
        let number = self.workers.fetch_add(1, Ordering::SeqCst);
        let idle = self.idle.clone();
        let (clients, to_child) = (self.clients.clone(), self.to_child.clone());
        let started = std::thread::Builder::new()
            .name(format!("isolated-client-{number}"))
            .spawn(move || loop {
                idle.fetch_add(1, Ordering::SeqCst);
                let next = crate::events::lock(&calls).recv();
                idle.fetch_sub(1, Ordering::SeqCst);
                let Ok(call) = next else { return };
                // A child gone meanwhile cannot be answered; the queue still drains.
                let _ = send_answer(&to_child, call.id, make_call(&clients, &call));
            });
        if let Err(e) = started {
            self.workers.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("cannot start a thread for the plugin's client calls: {e}");
        }
    }

    fn answer(&self, id: u64, answer: Result<Value, String>) {
        let _ = send_answer(&self.to_child, id, answer);
    }
}

/// Makes `call` with the run's client of its name.
fn make_call(clients: &Clients, call: &ClientCall) -> Result<Value, String> {
    let client: Option<&Arc<dyn Client>> = match call.client {
        ClientName::Backend => clients.backend.as_ref(),
        ClientName::Agent => clients.agent.as_ref(),
    };
    match client {
        Some(client) => client.request(&call.request),
        None => refused(format!("no {} client is configured for this run", call.client.as_str())),
    }
}

/// Writes the answer to call `id`; one too large for the channel becomes
/// an error answer.
fn send_answer(to_child: &ToChild, id: u64, answer: Result<Value, String>) -> std::io::Result<()> {
    let line = line_of(ANSWER_PREFIX, &ClientAnswer { id, answer }).unwrap_or_else(|| {
        let reason = format!("the answer is larger than the {MAX_CLIENT_MESSAGE_BYTES} bytes a client call may carry");
        line_of(
            ANSWER_PREFIX,
            &ClientAnswer {
                id,
                answer: refused(reason),
            },
        )
        .expect("a short error answer fits")
    });
    to_child.send_line(&line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolate::client_wire::REQUEST_PREFIX;
    use serde_json::json;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// Answers with the request's path after a pause, so calls overlap.
    struct SlowEcho;

    impl Client for SlowEcho {
        fn request(&self, request: &Value) -> Result<Value, String> {
            std::thread::sleep(Duration::from_millis(50));
            Ok(json!({ "path": request["path"] }))
        }
    }

    fn proxy() -> (Arc<ClientProxy>, BufReader<UnixStream>) {
        let (loader, child) = UnixStream::pair().unwrap();
        let clients = Clients {
            backend: Some(Arc::new(SlowEcho)),
            agent: None,
        };
        (ClientProxy::new(clients, ToChild::new(loader)), BufReader::new(child))
    }

    fn read_answer(reader: &mut BufReader<UnixStream>) -> ClientAnswer {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let json = line
            .strip_prefix(std::str::from_utf8(ANSWER_PREFIX).unwrap())
            .expect("an answer line");
        serde_json::from_str(json).unwrap()
    }

    fn call_json(id: u64, client: ClientName, path: &str) -> Vec<u8> {
        let call = ClientCall {
            id,
            client,
            request: json!({"method": "GET", "path": path, "body": null}),
        };
        let line = line_of(REQUEST_PREFIX, &call).unwrap();
        line[REQUEST_PREFIX.len()..line.len() - 1].to_vec()
    }

    #[test]
    fn concurrent_calls_each_get_their_own_answer() {
        let (proxy, mut child) = proxy();
        for id in 0..20 {
            proxy.take_line(&call_json(id, ClientName::Backend, &format!("models/{id}/")));
        }
        let mut answers: Vec<ClientAnswer> = (0..20).map(|_| read_answer(&mut child)).collect();
        answers.sort_by_key(|a| a.id);
        for (id, answer) in answers.iter().enumerate() {
            assert_eq!(answer.id, id as u64);
            assert_eq!(answer.answer, Ok(json!({ "path": format!("models/{id}/") })));
        }
        assert!(proxy.workers.load(Ordering::SeqCst) <= WORKERS);
        proxy.close();
    }

    /// Answers with a string larger than a call may carry.
    struct Huge;

    impl Client for Huge {
        fn request(&self, _: &Value) -> Result<Value, String> {
            Ok(Value::String("x".repeat(MAX_CLIENT_MESSAGE_BYTES)))
        }
    }

    #[test]
    fn an_answer_too_large_for_the_channel_becomes_an_error() {
        let (loader, child) = UnixStream::pair().unwrap();
        let clients = Clients {
            backend: None,
            agent: Some(Arc::new(Huge)),
        };
        let proxy = ClientProxy::new(clients, ToChild::new(loader));
        proxy.take_line(&call_json(9, ClientName::Agent, "jobs/1/logs/"));
        let answer = read_answer(&mut BufReader::new(child));
        assert_eq!(answer.id, 9);
        assert!(answer.answer.unwrap_err().contains("the answer is larger than"));
        proxy.close();
    }

    #[test]
    fn untrusted_lines_get_an_error_answer_or_are_dropped_never_a_crash() {
        let (proxy, mut child) = proxy();
        proxy.take_line(&call_json(1, ClientName::Agent, "jobs/"));
        let answer = read_answer(&mut child);
        assert_eq!(answer.id, 1);
        assert!(answer.answer.unwrap_err().contains("no agent client is configured"));
        proxy.take_line(br#"{"id":2,"client":"elsewhere"}"#);
        let answer = read_answer(&mut child);
        assert_eq!(answer.id, 2);
        assert!(answer.answer.unwrap_err().contains("could not read this client call"));
        proxy.take_line(b"\xff\xfe not json");
        proxy.take_oversized(
            b"{\"id\":3,\"client\":\"backend\",\"request\":{\"body\":\"xxxx",
            1 << 30,
        );
        let answer = read_answer(&mut child);
        assert_eq!(answer.id, 3);
        let error: Value = serde_json::from_str(&answer.answer.unwrap_err()).unwrap();
        assert_eq!(error["kind"], "invalid");
        assert!(error["reason"].as_str().unwrap().contains("larger than"), "{error}");
        proxy.close();
    }
}
