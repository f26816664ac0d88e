//! A small Synapse-like backend for the tests, on 127.0.0.1 with an
//! ephemeral port: plain HTTP/1.1 with keep-alive on a std `TcpListener`.
//!
//! It implements what the loader and the sample plugins use (`PATCH
//! jobs/{id}/`, `POST logs/`, `GET data_collections/{id}/`, `GET` / `POST
//! models/`, the agent's `GET jobs/`), records every request, and applies a
//! request carrying an `Idempotency-Key` it has seen before only once
//! (answering the first answer again, and counting the replay). With a
//! token, requests without `Synapse-Access-Token: Token <token>` get 401.
//!
//! Faults on demand: [`Fault::Status`] (500, 429 with `Retry-After`, ...),
//! [`Fault::Slow`] answers, [`Fault::CloseMidAnswer`] (applied, then the
//! connection is closed half-way through the answer), and
//! [`TestBackend::go_down`] (connections refused for a while, then back on
//! the same port). Every thread stops when the server is dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names in lowercase.
    pub headers: HashMap<String, String>,
    pub body: Value,
    /// Whether it was a replay of an idempotency key already applied.
    pub replayed: bool,
}

/// A way to fail the next `count` requests.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` seconds, if given),
    /// without applying the request.
    Status { status: u16, retry_after: Option<u32> },
    /// Apply, then wait this long before answering.
    Slow(Duration),
    /// Apply, then send half an answer and close the connection.
    CloseMidAnswer,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    answers: HashMap<String, (u16, Value)>,
    jobs: HashMap<String, Value>,
    job_patches: HashMap<String, Vec<Value>>,
    logs: Vec<Value>,
    log_count: usize,
    count_only: bool,
    models: Vec<Value>,
    fault: Option<(Fault, usize)>,
    replays: usize,
    down_until: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    token: Option<String>,
    stop: AtomicBool,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running server; stops when dropped.
pub struct TestBackend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestBackend {
    /// Starts on an ephemeral port; with `token`, requests must carry it.
    pub fn start(token: Option<&str>) -> std::io::Result<Self> {
        Self::start_on(0, token)
    }

    /// Starts a server that only counts log entries and keeps no request
    /// bodies, for benchmarks that send millions.
    pub fn start_counting() -> std::io::Result<Self> {
        let server = Self::start_on(0, None)?;
        lock(&server.shared).count_only = true;
        Ok(server)
    }

    /// How many log entries were applied.
    pub fn log_count(&self) -> usize {
        lock(&self.shared).log_count
    }

    pub fn start_on(port: u16, token: Option<&str>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            token: token.map(str::to_owned),
            stop: AtomicBool::new(false),
        });
        let for_thread = shared.clone();
        let acceptor = std::thread::spawn(move || accept_loop(Some(listener), addr, &for_thread));
        Ok(Self {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The API root, e.g. `http://127.0.0.1:40123/api/`.
    pub fn url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// Fails the next `count` requests with `fault`.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        lock(&self.shared).fault = Some((fault, count));
    }

    /// Refuses connections for `duration` (the port is closed), then
    /// listens again on the same port.
    pub fn go_down(&self, duration: Duration) {
        lock(&self.shared).down_until = Some(Instant::now() + duration);
    }

    /// Ends a [`TestBackend::go_down`] early.
    pub fn come_back(&self) {
        lock(&self.shared).down_until = None;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared).requests.clone()
    }

    /// Every log entry applied, in order of arrival.
    pub fn logs(&self) -> Vec<Value> {
        lock(&self.shared).logs.clone()
    }

    /// The bodies of the `PATCH jobs/{id}/` applied, in order.
    pub fn job_patches(&self, job_id: &str) -> Vec<Value> {
        lock(&self.shared).job_patches.get(job_id).cloned().unwrap_or_default()
    }

    /// The job's fields after every patch.
    pub fn job(&self, job_id: &str) -> Option<Value> {
        lock(&self.shared).jobs.get(job_id).cloned()
    }

    pub fn job_ids(&self) -> Vec<String> {
        lock(&self.shared).jobs.keys().cloned().collect()
    }

    pub fn models(&self) -> Vec<Value> {
        lock(&self.shared).models.clone()
    }

    /// Requests whose idempotency key had already been applied.
    pub fn replays(&self) -> usize {
        lock(&self.shared).replays
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(mut listener: Option<TcpListener>, addr: SocketAddr, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let down = lock(shared).down_until.filter(|until| Instant::now() < *until);
        match (&listener, down) {
            (Some(_), Some(_)) => {
                listener = None;
                continue;
            }
            (None, Some(_)) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            (None, None) => {
                listener = TcpListener::bind(addr).ok();
                if listener.is_none() {
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            (Some(_), None) => {}
        }
        let Some(open) = &listener else { continue };
        let _ = open.set_nonblocking(true);
        match open.accept() {
            Ok((stream, _)) => {
                let shared = shared.clone();
                std::thread::spawn(move || serve_connection(stream, &shared));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Serves requests on one connection until it closes, the server stops,
/// or the server goes down.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        if shared.stop.load(Ordering::SeqCst) || lock(shared).down_until.is_some_and(|u| Instant::now() < u) {
            return;
        }
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        let _ = reader.get_ref().set_read_timeout(Some(Duration::from_secs(5)));
        let Some(request) = read_request(&request_line, &mut reader) else {
            return;
        };
        let _ = reader.get_ref().set_read_timeout(Some(Duration::from_millis(200)));
        if !answer(request, shared, &mut writer) {
            return;
        }
    }
}

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(request_line: &str, reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let mut body = Vec::new();
    if let Some(length) = headers.get("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    } else if headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            let size = usize::from_str_radix(size_line.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Answers one request; returns whether the connection stays open.
fn answer(request: Request, shared: &Shared, out: &mut TcpStream) -> bool {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let key = request.headers.get("idempotency-key").cloned();
    let fault = {
        let mut state = lock(shared);
        let fault = match state.fault.take() {
            Some((fault, count)) if count > 0 => {
                if count > 1 {
                    state.fault = Some((fault.clone(), count - 1));
                }
                Some(fault)
            }
            _ => None,
        };
        let replayed = key.as_ref().is_some_and(|k| state.answers.contains_key(k));
        if !state.count_only {
            state.requests.push(Recorded {
                method: request.method.clone(),
                path: request.path.clone(),
                headers: request.headers.clone(),
                body: body.clone(),
                replayed,
            });
        }
        fault
    };
    if let Some(Fault::Status { status, retry_after }) = &fault {
        let extra = retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
        return write_answer(out, *status, &json!({"detail": "injected failure"}), &extra);
    }
    let (status, answer) = apply(shared, &request, body, key);
    match fault {
        Some(Fault::Slow(delay)) => std::thread::sleep(delay),
        Some(Fault::CloseMidAnswer) => {
            let text = answer.to_string();
            let head = format!(
                "HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                text.len() + 100
            );
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(&text.as_bytes()[..text.len() / 2]);
            let _ = out.flush();
            let _ = out.shutdown(std::net::Shutdown::Both);
            return false;
        }
        _ => {}
    }
    write_answer(out, status, &answer, "")
}

fn write_answer(out: &mut TcpStream, status: u16, body: &Value, extra_headers: &str) -> bool {
    let text = body.to_string();
    let reason = match status {
        200 => "OK",
        201 => "Created",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra_headers}\r\n",
        text.len()
    );
    out.write_all(head.as_bytes())
        .and_then(|_| out.write_all(text.as_bytes()))
        .and_then(|_| out.flush())
        .is_ok()
}

/// Applies a request once per idempotency key; a replay gets the first
/// answer again.
fn apply(shared: &Shared, request: &Request, body: Value, key: Option<String>) -> (u16, Value) {
    if let Some(token) = &shared.token {
        let expected = format!("Token {token}");
        if request.headers.get("synapse-access-token") != Some(&expected) {
            return (401, json!({"detail": "Invalid token."}));
        }
    }
    let mut state = lock(shared);
    if let Some(key) = &key {
        if let Some(first) = state.answers.get(key).cloned() {
            state.replays += 1;
            return first;
        }
    }
    let answer = route(&mut state, &request.method, &request.path, body);
    if let Some(key) = key.filter(|_| !state.count_only) {
        state.answers.insert(key, answer.clone());
    }
    answer
}

fn route(state: &mut State, method: &str, full_path: &str, body: Value) -> (u16, Value) {
    let (path, query) = full_path.split_once('?').unwrap_or((full_path, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').skip(1).collect();
    match (method, segments.as_slice()) {
        ("PATCH", ["jobs", id]) => {
            let job = state
                .jobs
                .entry((*id).to_owned())
                .or_insert_with(|| json!({ "id": id }));
            if let (Some(job), Some(fields)) = (job.as_object_mut(), body.as_object()) {
                job.extend(fields.clone());
            }
            let job = job.clone();
            state.job_patches.entry((*id).to_owned()).or_default().push(body);
            (200, job)
        }
        ("GET", ["jobs"]) => (
            200,
            json!({ "count": state.jobs.len(), "results": state.jobs.values().collect::<Vec<_>>() }),
        ),
        ("POST", ["logs"]) => {
            let entries = match body {
                Value::Array(entries) => entries,
                other => vec![other],
            };
            let count = entries.len();
            state.log_count += count;
            if !state.count_only {
                state.logs.extend(entries);
            }
            (201, json!({ "created": count }))
        }
        ("GET", ["data_collections", id]) => {
            let expand = query.contains("expand=file_specifications");
            let specs = json!([
                {"name": "image_1", "file_type": "image", "is_required": true},
                {"name": "label", "file_type": "json", "is_required": false}
            ]);
            (
                200,
                json!({ "id": id.parse::<u64>().unwrap_or(0), "name": format!("collection {id}"),
                           "file_specifications": if expand { specs } else { json!([]) } }),
            )
        }
        ("GET", ["models", id]) => match state.models.iter().find(|m| m["id"].as_u64() == id.parse().ok()) {
            Some(model) => (200, model.clone()),
            None if id.parse::<u64>().is_ok_and(|n| n < 1000) => (
                200,
                json!({ "id": id.parse::<u64>().unwrap_or(0), "name": format!("model {id}"),
                        "file": format!("/models/{id}/model.pt"), "parameters": {"epochs": 3} }),
            ),
            None => (404, json!({"detail": "Not found."})),
        },
        ("GET", ["models"]) => (200, json!({ "count": state.models.len(), "results": state.models })),
        ("POST", ["models"]) => {
            let mut model = body;
            let id = 1000 + state.models.len() as u64;
            if let Some(fields) = model.as_object_mut() {
                fields.insert("id".into(), json!(id));
            }
            state.models.push(model.clone());
            (201, model)
        }
        _ => (404, json!({"detail": format!("no route for {method} {path}")})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(url: &str, raw: &str) -> String {
        let addr = url.trim_start_matches("http://").split('/').next().unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    #[test]
    fn repeated_idempotency_keys_apply_once() {
        let server = TestBackend::start(None).unwrap();
        let request =
            "POST /api/logs/ HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k1\r\nContent-Length: 13\r\n\r\n[{\"e\":1},{}]\n";
        assert!(send(&server.url(), request).starts_with("HTTP/1.1 201"));
        assert!(send(&server.url(), request).starts_with("HTTP/1.1 201"));
        assert_eq!(server.logs().len(), 2);
        assert_eq!(server.replays(), 1);
    }

    #[test]
    fn faults_and_tokens_are_applied() {
        let server = TestBackend::start(Some("secret-token")).unwrap();
        let get = "GET /api/models/3/ HTTP/1.1\r\nHost: x\r\nSynapse-Access-Token: Token secret-token\r\n\r\n";
        server.fail_next(
            1,
            Fault::Status {
                status: 429,
                retry_after: Some(1),
            },
        );
        let throttled = send(&server.url(), get);
        assert!(
            throttled.starts_with("HTTP/1.1 429") && throttled.contains("Retry-After: 1"),
            "{throttled}"
        );
        assert!(send(&server.url(), get).contains("model 3"));
        let refused = send(&server.url(), "GET /api/models/3/ HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(refused.starts_with("HTTP/1.1 401"));
    }
}
