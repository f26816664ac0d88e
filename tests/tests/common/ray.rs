//! Helpers of the tests against a real Ray cluster (the `ray` test binary:
//! `ray/jobs.rs`, the single head; `ray/nodes.rs`, worker nodes added to
//! it). Start the cluster with
//! `tests/ray/run-in-netns.sh` (a head node on loopback, in a network
//! namespace with only loopback, which then runs these tests). Without
//! `RAY_ADDRESS` they skip, saying how to enable them, so `cargo test
//! --workspace` passes without Ray; with `LOADER_RAY_TESTS=require` (which
//! that script sets) a missing cluster fails them instead.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;
use std::sync::{OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{exit_code, loader, stderr, stdout};

const HOW_TO_ENABLE: &str =
    "Ray tests skipped: no RAY_ADDRESS; run them with tests/ray/run-in-netns.sh (needs root and tests/ray/setup.sh's Ray venv)";

/// The variable that makes a missing cluster a failure rather than a skip.
const REQUIRE_VAR: &str = "LOADER_RAY_TESTS";

/// Whether the tests must find a cluster.
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "require")
}

/// The cluster's Jobs API address, or `None` (after one line saying how
/// to enable the tests) when there is none and the tests are not required.
pub fn cluster() -> Option<String> {
    let address = ["RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    let Some(address) = address else {
        if required() {
            panic!("{REQUIRE_VAR}=require but no RAY_ADDRESS: the Ray tests need a cluster (tests/ray/run-in-netns.sh starts one)");
        }
        static SAID: OnceLock<()> = OnceLock::new();
        // Written past the test harness's output capture, so that it shows.
        SAID.get_or_init(|| {
            let _ = writeln!(std::io::stderr(), "{HOW_TO_ENABLE}");
        });
        return None;
    };
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let output = loader(dir.path(), &["jobs", "--ray-address", &address, "list"], &[]);
        assert_eq!(
            exit_code(&output),
            0,
            "RAY_ADDRESS={address} does not answer: {}",
            stderr(&output)
        );
    });
    Some(address)
}

/// Turns on the cluster: the tests that only use it share it, a test
/// that changes it (adds or kills nodes) has it alone.
static TURNS: RwLock<()> = RwLock::new(());

/// A turn on the cluster beside the other tests that only use it; held
/// for the test's length.
pub fn shared_cluster() -> RwLockReadGuard<'static, ()> {
    TURNS.read().unwrap_or_else(PoisonError::into_inner)
}

/// The cluster for this test alone (it adds or kills nodes); held for the
/// test's length.
pub fn exclusive_cluster() -> RwLockWriteGuard<'static, ()> {
    TURNS.write().unwrap_or_else(PoisonError::into_inner)
}

/// `loader --plugins DIR run PLUGIN ACTION ARGS... --on ray --ray-address A`.
pub fn run_on_ray(dir: &Path, address: &str, plugin: &str, action: &str, args: &[&str]) -> Output {
    let mut all = vec!["run", plugin, action];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--on", "ray", "--ray-address", address]);
    loader(dir, &all, &[])
}

/// A job id nobody used before on this cluster.
pub fn unique_id(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-{what}-{}-{nanos}", std::process::id())
}

/// What `loader jobs status ID` says first.
pub fn job_status(dir: &Path, address: &str, id: &str) -> String {
    let output = loader(dir, &["jobs", "--ray-address", address, "status", id], &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    stdout(&output).lines().next().unwrap_or_default().to_owned()
}

/// The status of job `id` once it has ended (a run ends with its outcome;
/// Ray takes a moment more to end the job).
pub fn final_status(dir: &Path, address: &str, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = job_status(dir, address, id);
        if ["SUCCEEDED", "FAILED", "STOPPED"].contains(&status.as_str()) || Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `GET path` on the cluster's dashboard, answered as JSON (HTTP/1.0, so
/// the answer is not chunked).
pub fn dashboard_get(address: &str, path: &str) -> Value {
    let host = address.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{path}: {head}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The rows of a State API list (`/api/v0/...`).
pub fn state_rows(address: &str, path: &str) -> Vec<Value> {
    let answer = dashboard_get(address, path);
    answer["data"]["result"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Ray's own id (hex) of the job submitted as `submission_id`; `None`
/// while there is no such job (yet), or it has no driver yet.
pub fn ray_job_id(address: &str, submission_id: &str) -> Option<String> {
    let loader = super::loader_bin();
    let output = std::process::Command::new(loader)
        .args(["jobs", "--ray-address", address, "status", submission_id, "--json"])
        .output()
        .unwrap();
    let job: Value = serde_json::from_slice(&output.stdout).ok()?;
    job["job_id"].as_str().map(str::to_owned)
}

/// The tasks named `name` of the job submitted as `submission_id` (Ray's
/// State API), with their state, node and resources; none before the job
/// is there.
pub fn tasks_of(address: &str, submission_id: &str, name: &str) -> Vec<Value> {
    let Some(job) = ray_job_id(address, submission_id) else {
        return Vec::new();
    };
    let path = format!(
        "/api/v0/tasks?detail=true&limit=10000&filter_keys=job_id&filter_predicates=%3D&filter_values={job}&filter_keys=name&filter_predicates=%3D&filter_values={name}"
    );
    state_rows(address, &path)
}

/// The tasks named `name` of a job once `count` of them are listed, or
/// what is listed after 20 s: workers send their task events to Ray's
/// state API about once a second, so a task that has just ended may not be
/// listed yet.
pub fn tasks_listed(address: &str, submission_id: &str, name: &str, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let tasks = tasks_of(address, submission_id, name);
        if tasks.len() >= count || std::time::Instant::now() > deadline {
            return tasks;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// A file of params lines, one JSON object each; returns its path.
pub fn lines_file(dir: &Path, lines: &[Value]) -> String {
    let path = dir.join("batch.jsonl");
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&path, text.join("\n") + "\n").unwrap();
    path.to_str().unwrap().to_owned()
}
