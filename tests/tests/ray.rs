//! `loader run --on ray`, batches on Ray and `loader jobs`, end to end
//! against a real Ray cluster. Start one with `tests/ray/run-in-netns.sh`
//! (a head node on loopback, in a network namespace with only loopback,
//! which then runs these tests). Without `RAY_ADDRESS` they skip, saying
//! how to enable them, so `cargo test --workspace` passes without Ray;
//! with `LOADER_RAY_TESTS=require` (which that script sets) a missing
//! cluster fails them instead.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const HOW_TO_ENABLE: &str =
    "Ray tests skipped: no RAY_ADDRESS; run them with tests/ray/run-in-netns.sh (needs root and tests/ray/setup.sh's Ray venv)";

/// The variable that makes a missing cluster a failure rather than a skip.
const REQUIRE_VAR: &str = "LOADER_RAY_TESTS";

/// The cluster's Jobs API address, or `None` (after one line saying how
/// to enable the tests) when there is none and the tests are not required.
fn cluster() -> Option<String> {
    let address = ["RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    let Some(address) = address else {
        if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "require") {
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

/// A plugin folder with the sample trainer, the probe and the batch probe.
fn plugins() -> tempfile::TempDir {
    plugin_dir(&[
        sample_library("tabular-trainer"),
        fixture_library("probe", "probe-plugin"),
        fixture_library("probe", "batch-plugin"),
    ])
}

/// `loader --plugins DIR run PLUGIN ACTION ARGS... --on ray --ray-address A`.
fn run_on_ray(dir: &Path, address: &str, plugin: &str, action: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["run", plugin, action];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--on", "ray", "--ray-address", address]);
    loader(dir, &all, &[])
}

/// A job id nobody used before on this cluster.
fn unique_id(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-{what}-{}-{nanos}", std::process::id())
}

fn job_status(dir: &Path, address: &str, id: &str) -> String {
    let output = loader(dir, &["jobs", "--ray-address", address, "status", id], &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    stdout(&output).lines().next().unwrap_or_default().to_owned()
}

#[test]
fn ray_cluster_sample_action_relays_progress_and_its_result_like_a_local_run() {
    let Some(address) = cluster() else { return };
    let dir = plugins();
    let params = r#"{"epochs": 3, "samples": 200}"#;
    let output = run_on_ray(
        dir.path(),
        &address,
        "tabular-trainer",
        "train",
        &["--params", params, "--events", "jsonl"],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let events = jsonl(&stdout(&output));
    assert_envelope(&events, "tabular-trainer", "train");
    let progress = of_kind(&events, "progress");
    assert!(
        progress
            .iter()
            .any(|e| e["step"] == "train" && e["data"]["status"] == "completed"),
        "no completed train progress relayed: {events:?}"
    );
    assert!(!of_kind(&events, "metrics").is_empty());
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "result", "{last}");
    assert_eq!(last["data"]["epochs"], 3);
    let job_id = last["job_id"].as_str().unwrap().to_owned();
    assert!(events.iter().all(|e| e["job_id"] == job_id.as_str()));

    let local = loader(
        dir.path(),
        &[
            "run",
            "tabular-trainer",
            "train",
            "--params",
            params,
            "--events",
            "jsonl",
        ],
        &[],
    );
    let local_events = jsonl(&stdout(&local));
    let local_result = &local_events.last().unwrap()["data"];
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&last["data"]), keys(local_result));
    assert_eq!(job_status(dir.path(), &address, &job_id), "SUCCEEDED");
}

/// A job that reports as it goes for ten seconds, with events of 400 kB (a
/// 40 MB log): the loader follows its log stream, each byte of the log read
/// once (polling fetched the whole log again every turn), relays every
/// event once, in order, then the result, and never fetches the whole log.
#[test]
fn ray_cluster_a_chatty_job_is_followed_through_its_log_stream_with_every_event_once_in_order() {
    let Some(address) = cluster() else { return };
    let dir = plugin_dir(&[fixture_library("flood", "flood-plugin")]);
    let (count, bytes) = (100, 400_000);
    let params = format!(r#"{{"count": {count}, "bytes": {bytes}, "pause_ms": 100}}"#);
    let output = run_on_ray(
        dir.path(),
        &address,
        "flood",
        "big_payloads",
        &["--params", &params, "--events", "jsonl", "-vv"],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    // The loader's diagnostics, without the payloads.
    let all_said = stderr(&output);
    let said: Vec<&str> = all_said.lines().filter(|l| !l.contains("xxxxxxxx")).collect();
    let said = said.join("\n");
    assert!(said.contains("following its log stream"), "{said}");
    for fetched in ["polling", "fetched whole", "fetching the rest"] {
        assert!(!said.contains(fetched), "{fetched:?} in {said}");
    }
    let events = jsonl(&stdout(&output));
    let blobs: Vec<&Value> = events.iter().filter(|e| e["event"] == "blob").collect();
    let numbers: Vec<u64> = blobs.iter().map(|e| e["data"]["i"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..count).collect::<Vec<u64>>());
    assert!(blobs
        .iter()
        .all(|e| e["data"]["blob"].as_str().map(str::len) == Some(bytes)));
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "result", "{last}");
    assert_eq!(last["data"]["logged"], count);
}

#[test]
fn ray_cluster_a_crashing_plugin_is_reported_as_crashed_with_its_signal() {
    let Some(address) = cluster() else { return };
    let dir = plugins();
    let output = run_on_ray(dir.path(), &address, "probe", "segfault", &["--events", "jsonl"]);
    assert_eq!(exit_code(&output), 1, "{}", stderr(&output));
    let events = jsonl(&stdout(&output));
    assert!(
        events.iter().any(|e| e["event"] == "before_failure"),
        "the events before the crash were lost: {events:?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "error", "{last}");
    assert_eq!(last["data"]["kind"], "crashed", "{last}");
    assert!(last["data"]["message"].as_str().unwrap().contains("SIGSEGV"), "{last}");
}

#[test]
fn ray_cluster_timeout_ends_the_job_as_timed_out() {
    let Some(address) = cluster() else { return };
    let dir = plugins();
    let id = unique_id("timeout");
    let started = Instant::now();
    let output = run_on_ray(
        dir.path(),
        &address,
        "probe",
        "hang",
        &["--timeout", "1", "--grace", "1", "--job-id", &id, "--events", "jsonl"],
    );
    assert_eq!(exit_code(&output), 1, "{}", stderr(&output));
    assert!(started.elapsed() < Duration::from_secs(120));
    let events = jsonl(&stdout(&output));
    let last = events.last().unwrap();
    assert_eq!(last["data"]["kind"], "timed_out", "{last}");
    let status = job_status(dir.path(), &address, &id);
    assert!(status == "FAILED" || status == "STOPPED", "the job is still {status}");
}

#[test]
fn ray_cluster_ctrl_c_stops_the_job() {
    let Some(address) = cluster() else { return };
    let dir = plugins();
    let id = unique_id("interrupt");
    let child = Command::new(loader_bin())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["--plugins"])
        .arg(dir.path())
        .args([
            "run",
            "probe",
            "wait_for_cancel",
            "--on",
            "ray",
            "--ray-address",
            &address,
        ])
        .args(["--job-id", &id, "--events", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let running = || {
        let output = loader(dir.path(), &["jobs", "--ray-address", &address, "status", &id], &[]);
        stdout(&output).starts_with("RUNNING")
    };
    while !running() {
        assert!(Instant::now() < deadline, "the job never ran");
        std::thread::sleep(Duration::from_millis(300));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(exit_code(&output), 1, "{}", stderr(&output));
    let events = jsonl(&stdout(&output));
    assert_eq!(events.last().unwrap()["data"]["kind"], "cancelled", "{events:?}");
    assert_eq!(job_status(dir.path(), &address, &id), "STOPPED");
}

#[test]
fn ray_cluster_the_package_is_uploaded_once_and_reused() {
    let Some(address) = cluster() else { return };
    let dir = plugins();
    let tag = format!("RUN_TAG={}", unique_id("package"));
    let args = ["--env", tag.as_str(), "--params", "{}"];
    let first = run_on_ray(dir.path(), &address, "probe", "echo_context", &args);
    assert_eq!(exit_code(&first), 0, "{}", stderr(&first));
    assert!(stderr(&first).contains("ray: uploaded package"), "{}", stderr(&first));
    let second = run_on_ray(dir.path(), &address, "probe", "echo_context", &args);
    assert_eq!(exit_code(&second), 0, "{}", stderr(&second));
    assert!(
        stderr(&second).contains("is already on the cluster"),
        "{}",
        stderr(&second)
    );
    assert!(!stderr(&second).contains("uploaded"), "{}", stderr(&second));
    let result: Value = serde_json::from_str(&stdout(&second)).unwrap();
    assert_eq!(result["env"]["RUN_TAG"], tag.trim_start_matches("RUN_TAG="));
    assert_eq!(
        result["has_agent_client"], true,
        "an isolated child in a job has the agent client"
    );
}

/// `GET path` on the cluster's dashboard, answered as JSON (HTTP/1.0, so
/// the answer is not chunked).
fn dashboard_get(address: &str, path: &str) -> Value {
    use std::io::Read;
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

/// What the supervisor actor of job `id` reserved (Ray's State API:
/// the job's entrypoint resources are its actor's).
fn reserved_by_job(address: &str, id: &str) -> Value {
    let path = format!(
        "/api/v0/actors?detail=true&limit=10&filter_keys=name&filter_predicates=%3D&filter_values=_ray_internal_job_actor_{id}"
    );
    let answer = dashboard_get(address, &path);
    let actors = answer["data"]["result"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(actors.len(), 1, "no supervisor actor for {id}: {answer}");
    actors[0]["required_resources"].clone()
}

#[test]
fn ray_cluster_the_agent_client_reads_the_own_job_in_both_modes_and_the_manifest_resources_are_reserved() {
    let Some(address) = cluster() else { return };
    let dir = plugins();
    for (mode, extra) in [
        ("isolated", &[][..]),
        ("in-process", &["--in-process", "--num-cpus", "0.5"][..]),
    ] {
        let id = unique_id("agent");
        let mut args = vec!["--job-id", id.as_str()];
        args.extend_from_slice(extra);
        let output = run_on_ray(dir.path(), &address, "batch-probe", "use_agent", &args);
        assert_eq!(exit_code(&output), 0, "{mode}: {}", stderr(&output));
        let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(result["own_submission_id"], id.as_str(), "{mode}: {result}");
        assert_eq!(result["own_status"], "RUNNING", "{mode}: {result}");
        assert!(
            result["own_entrypoint"].as_str().unwrap().starts_with("./loader"),
            "{mode}: {result}"
        );
        assert!(result["listed"].as_u64().unwrap() >= 1, "{mode}: {result}");
        let reserved = reserved_by_job(&address, &id);
        let cpus = if mode == "isolated" { 0.25 } else { 0.5 };
        assert_eq!(
            reserved["CPU"], cpus,
            "{mode}: the manifest declares 0.25, --num-cpus wins: {reserved}"
        );
        assert_eq!(
            reserved["memory"].as_f64(),
            Some(f64::from(64u32 << 20)),
            "{mode}: declared in the manifest: {reserved}"
        );
    }
}

/// A Jobs API address where nothing listens: runs that reach it fail.
const NOBODY: &str = "http://127.0.0.1:9";

#[test]
fn declared_resources_are_shown_by_info_and_checked_before_anything_is_sent() {
    let dir = plugins();
    let info = loader(dir.path(), &["info", "tabular-trainer", "train", "--json"], &[]);
    assert_eq!(exit_code(&info), 0, "{}", stderr(&info));
    let action: Value = serde_json::from_str(&stdout(&info)).unwrap();
    assert_eq!(action["resources"], serde_json::json!({"num_cpus": 1.0}));
    let list = loader(dir.path(), &["list", "--json"], &[]);
    let listed: Value = serde_json::from_str(&stdout(&list)).unwrap();
    let listed_actions = |code: &str| -> Vec<Value> {
        let plugin = listed["plugins"].as_array().unwrap().iter().find(|p| p["code"] == code);
        plugin.unwrap_or_else(|| panic!("{code} is listed: {listed}"))["actions"]
            .as_array()
            .unwrap()
            .clone()
    };
    let trainer = listed_actions("tabular-trainer");
    let by_name = |name: &str| trainer.iter().find(|a| a["name"] == name).cloned().unwrap();
    assert_eq!(by_name("train")["resources"], serde_json::json!({"num_cpus": 1.0}));
    assert!(
        by_name("evaluate").get("resources").is_none(),
        "nothing declared, nothing listed"
    );
    let text = loader(dir.path(), &["info", "batch-probe", "impossible"], &[]);
    assert!(
        stdout(&text)
            .contains("resources on a cluster: num_cpus NaN (invalid: resources.num_cpus = NaN: not a finite number)"),
        "{}",
        stdout(&text)
    );

    let declared = run_on_ray(dir.path(), NOBODY, "batch-probe", "impossible", &["--params", "{}"]);
    assert_eq!(exit_code(&declared), 1, "{}", stderr(&declared));
    let said = stderr(&declared);
    let library = library_file_name("batch_plugin");
    for part in [
        library.as_str(),
        "\"impossible\"",
        "resources.num_cpus = NaN",
        "not a finite number",
    ] {
        assert!(said.contains(part), "{part} missing in {said}");
    }
    let overridden = run_on_ray(
        dir.path(),
        NOBODY,
        "batch-probe",
        "impossible",
        &["--params", "{}", "--num-cpus", "1"],
    );
    assert_eq!(exit_code(&overridden), 1);
    assert!(
        !stderr(&overridden).contains("NaN"),
        "a flag overrides the declaration: {}",
        stderr(&overridden)
    );

    let flag = run_on_ray(
        dir.path(),
        NOBODY,
        "batch-probe",
        "use_agent",
        &["--params", "{}", "--num-gpus=-1"],
    );
    assert_eq!(exit_code(&flag), 2, "{}", stderr(&flag));
    assert!(stderr(&flag).contains("--num-gpus -1: negative"), "{}", stderr(&flag));
}

/// A batch file of `n` lines; line `flaky` fails once (its marker file
/// lives in `dir`).
fn batch_file(dir: &Path, n: usize, flaky: usize) -> PathBuf {
    let marker = dir.join("failed-once");
    let lines: Vec<String> = (1..=n)
        .map(|i| {
            if i == flaky {
                serde_json::json!({ "value": i, "fail_once_marker": marker }).to_string()
            } else {
                serde_json::json!({ "value": i }).to_string()
            }
        })
        .collect();
    let path = dir.join("batch.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn ray_cluster_a_batch_of_20_runs_4_at_a_time_and_retries_its_failure() {
    let Some(address) = cluster() else { return };
    let dir = plugins();
    let work = tempfile::tempdir().unwrap();
    let file = batch_file(work.path(), 20, 7);
    let results = work.path().join("results.jsonl");
    let output = run_on_ray(
        dir.path(),
        &address,
        "batch-probe",
        "square",
        &[
            "--params-each",
            file.to_str().unwrap(),
            "--parallel",
            "4",
            "--retries",
            "1",
            "--results",
            results.to_str().unwrap(),
        ],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert!(stderr(&output).contains("20/20"), "{}", stderr(&output));
    let outcomes = jsonl(&std::fs::read_to_string(&results).unwrap());
    assert_eq!(outcomes.len(), 20);
    let mut lines: Vec<u64> = outcomes.iter().map(|o| o["line"].as_u64().unwrap()).collect();
    lines.sort();
    assert_eq!(lines, (1..=20).collect::<Vec<u64>>());
    for outcome in &outcomes {
        let line = outcome["line"].as_u64().unwrap();
        assert_eq!(outcome["status"], "succeeded", "{outcome}");
        assert_eq!(outcome["result"]["square"], line * line, "{outcome}");
        assert_eq!(outcome["attempts"], if line == 7 { 2 } else { 1 }, "{outcome}");
    }
    let retried = outcomes.iter().find(|o| o["line"] == 7).unwrap();
    let id = retried["submission_id"].as_str().unwrap();
    assert_eq!(job_status(dir.path(), &address, id), "SUCCEEDED");
    let first_attempt = id.strip_suffix("-2").unwrap().to_owned() + "-1";
    assert_eq!(job_status(dir.path(), &address, &first_attempt), "FAILED");
}

#[test]
fn ray_cluster_a_detached_job_is_followed_with_jobs_logs() {
    let Some(address) = cluster() else { return };
    let dir = plugins();
    let output = run_on_ray(
        dir.path(),
        &address,
        "tabular-trainer",
        "train",
        &["--params", r#"{"epochs": 2, "samples": 100}"#, "--detach"],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let id = stdout(&output).trim().to_owned();
    assert!(!id.is_empty() && !id.contains('\n'), "{id:?}");

    let logs = loader(
        dir.path(),
        &["jobs", "--ray-address", &address, "logs", &id, "--follow"],
        &[],
    );
    assert_eq!(exit_code(&logs), 0, "{}", stderr(&logs));
    let events: Vec<Value> = stdout(&logs)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("kind").is_some())
        .collect();
    let last = events.last().expect("event lines in the logs");
    assert_eq!(last["kind"], "result", "{last}");
    assert_eq!(last["job_id"], id.as_str());
    assert_eq!(job_status(dir.path(), &address, &id), "SUCCEEDED");

    let list = loader(dir.path(), &["jobs", "--ray-address", &address, "list"], &[]);
    assert!(
        stdout(&list)
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("tabular-trainer train")),
        "{}",
        stdout(&list)
    );
    let stop = loader(dir.path(), &["jobs", "--ray-address", &address, "stop", &id], &[]);
    assert_eq!(stdout(&stop).trim(), "the job had already ended");
    let missing = loader(
        dir.path(),
        &["jobs", "--ray-address", &address, "status", "no-such-job"],
        &[],
    );
    assert_eq!(exit_code(&missing), 3, "{}", stderr(&missing));
}

/// The agent endpoint a job's inner loader makes of the Jobs API address
/// (here a loopback test server standing in for Ray): the isolated child's
/// requests go there, spelled as Ray serves them, and carry no agent token
/// even when the job's environment has one.
#[test]
fn a_jobs_inner_loader_gives_the_isolated_child_a_tokenless_agent_on_the_jobs_api() {
    let server = backend_server::TestBackend::start(None).unwrap();
    let address = server.url().trim_end_matches('/').trim_end_matches("/api").to_owned();
    let dir = plugins();
    let args = [
        "run",
        "batch-probe",
        "use_agent",
        "--params",
        "{}",
        "--job-id",
        "job-7",
        "--ray-agent",
        &address,
    ];
    let output = loader(dir.path(), &args, &[("SYNAPSE_AGENT_TOKEN", "agent-secret-token")]);
    assert_eq!(exit_code(&output), 1, "the stand-in has no job 7: {}", stderr(&output));
    assert!(stderr(&output).contains("404"), "{}", stderr(&output));
    let requests = server.requests();
    let seen: Vec<(&str, &str)> = requests.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(seen, [("GET", "/api/jobs/"), ("GET", "/api/jobs/job-7")]);
    for request in &requests {
        assert!(!request.headers.contains_key("authorization"), "{request:?}");
    }
}
