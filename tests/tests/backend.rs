//! The backend connection end to end: the real `loader` binary against the
//! loopback test backend (tests/backend-server). A sample action reads and
//! writes through `ctx.client()`; a run's progress, metrics, logs and
//! status arrive exactly once and in order, through every fault the server
//! can inject; a journal left by a killed loader is delivered by `loader
//! flush` (to the backend given); the token never appears in any output; a
//! refused token is reported by name.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use backend_server::{Fault, TestBackend};
use serde_json::{json, Value};

const TOKEN: &str = "tok-3f9a-SECRET-77";

fn probe_dir() -> tempfile::TempDir {
    plugin_dir(&[fixture_library("probe", "probe-plugin")])
}

/// `loader run PLUGIN ACTION` against `server` as job `job`, with the
/// token in the environment; returns the output and the JSONL events.
#[allow(clippy::too_many_arguments)]
fn run_job(
    dir: &Path,
    server: &TestBackend,
    state: &Path,
    job: &str,
    action: [&str; 2],
    params: &str,
    extra: &[&str],
    token: &str,
) -> (std::process::Output, Vec<Value>, String) {
    let events = state.join(format!("{job}.events.jsonl"));
    let url = server.url();
    let mut args = vec![
        "run",
        action[0],
        action[1],
        "--params",
        params,
        "--job-id",
        job,
        "--backend",
        &url,
        "--state-dir",
        state.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = loader(dir, &args, &[("SYNAPSE_ACCESS_TOKEN", token)]);
    let text = std::fs::read_to_string(&events).unwrap_or_default();
    (output, jsonl(&text), text)
}

/// (lost, duplicated) `tick` entries among those the server took, for a
/// flood of `count`; also checks their order.
fn count_ticks(server: &TestBackend, count: u64) -> (u64, u64) {
    let ticks: Vec<u64> = server
        .logs()
        .iter()
        .filter(|e| e["event"] == "tick")
        .map(|e| e["data"]["i"].as_u64().unwrap())
        .collect();
    let mut unique = ticks.clone();
    unique.dedup();
    let sorted = unique.windows(2).all(|w| w[0] < w[1]);
    assert!(sorted, "log entries arrived out of order");
    (count - unique.len() as u64, (ticks.len() - unique.len()) as u64)
}

fn assert_final_status(server: &TestBackend, job: &str, status: &str) {
    let patches = server.job_patches(job);
    assert_eq!(patches.first(), Some(&json!({"status": "RUNNING"})), "{patches:#?}");
    let last = patches.last().unwrap();
    assert_eq!(last["status"], status, "{patches:#?}");
    for earlier in &patches[..patches.len() - 1] {
        assert!(
            earlier.get("result").is_none(),
            "the final status is the last patch: {patches:#?}"
        );
    }
}

#[test]
fn a_sample_action_reads_and_writes_through_ctx_client() {
    let server = TestBackend::start(Some(TOKEN)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = samples_dir();
    let (output, events, _) = run_job(
        dir.path(),
        &server,
        state.path(),
        "job-publish",
        ["dataset-exporter", "publish"],
        r#"{"data_collection": 4, "model": 7, "records": 30}"#,
        &[],
        TOKEN,
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(result["created_model"], 1000);
    assert_eq!(result["file_specifications"], 2);
    let models = server.models();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["parent"], 7);
    let requests = server.requests();
    let collection = requests
        .iter()
        .find(|r| r.path == "/api/data_collections/4/?expand=file_specifications")
        .expect("the data collection was read");
    assert_eq!(collection.headers["synapse-access-token"], format!("Token {TOKEN}"));
    assert!(requests.iter().any(|r| r.method == "GET" && r.path == "/api/models/7/"));
    let created = requests
        .iter()
        .find(|r| r.method == "POST" && r.path == "/api/models/")
        .unwrap();
    assert!(created.headers.contains_key("idempotency-key"));
    assert_final_status(&server, "job-publish", "SUCCEEDED");
    let names: Vec<String> = server
        .logs()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["data_collection_loaded", "model_loaded", "model_created", "message"]
    );
    assert_eq!(of_kind(&events, "result").len(), 1);
    assert!(
        crate::common::list_spool(state.path()).is_empty(),
        "a delivered journal is removed"
    );
}

#[test]
fn a_training_run_arrives_exactly_once_in_order_with_the_final_snapshot_last() {
    let server = TestBackend::start(Some(TOKEN)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = samples_dir();
    let (output, events, _) = run_job(
        dir.path(),
        &server,
        state.path(),
        "job-train",
        ["workflow-trainer", "train_pipeline"],
        "{}",
        &[],
        TOKEN,
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let sent: Vec<(String, Value)> = events
        .iter()
        .filter(|e| ["event", "message", "dev_event"].contains(&e["kind"].as_str().unwrap()))
        .filter(|e| e["event"] != "run_start")
        .map(|e| (e["event"].as_str().unwrap().to_owned(), e["data"].clone()))
        .collect();
    let received: Vec<(String, Value)> = server
        .logs()
        .iter()
        .map(|e| (e["event"].as_str().unwrap().to_owned(), e["data"].clone()))
        .collect();
    assert_eq!(
        received, sent,
        "every log entry once, in order (not the run_start record)"
    );
    assert!(received.iter().all(|(name, _)| !name.is_empty()));
    assert_final_status(&server, "job-train", "SUCCEEDED");
    let last = server.job_patches("job-train").last().cloned().unwrap();
    assert_eq!(
        last["progress_record"]["current_progress"]["overall"],
        json!(100.0),
        "{last:#}"
    );
    assert!(
        last["metrics_record"]["record"]["steps"]
            .as_object()
            .is_some_and(|s| !s.is_empty()),
        "{last:#}"
    );
    let job = server.job("job-train").unwrap();
    assert_eq!(job["status"], "SUCCEEDED");
    assert_eq!(server.replays(), 0);
}

/// The steps' merged metrics after each of `calls` (`{step, metrics}`),
/// later keys winning: what the backend must show after each call.
fn merged_after_each(calls: &[Value]) -> Vec<Value> {
    let mut steps = serde_json::Map::new();
    calls
        .iter()
        .map(|call| {
            let step = steps.entry(call["step"].as_str().unwrap()).or_insert_with(|| json!({}));
            for (key, value) in call["metrics"].as_object().unwrap() {
                step[key] = value.clone();
            }
            Value::Object(steps.clone())
        })
        .collect()
}

#[test]
fn every_metrics_update_carries_each_steps_merged_metrics() {
    let server = TestBackend::start(Some(TOKEN)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = probe_dir();
    // Calls that set only some of a step's keys, paused for longer than the
    // sink's one-second snapshot interval, so that each is its own PATCH.
    let calls = [
        json!({"step": "train", "metrics": {"loss": 1.0, "epoch": 1}}),
        json!({"step": "eval", "metrics": {"f1": 0.5}}),
        json!({"step": "train", "metrics": {"loss": 0.5}}),
        json!({"step": "train", "metrics": {"epoch": 2, "accuracy": 0.9}}),
    ];
    let params = json!({"calls": calls, "pause_ms": 1500}).to_string();
    let (output, events, _) = run_job(
        dir.path(),
        &server,
        state.path(),
        "job-metrics",
        ["probe", "metrics_calls"],
        &params,
        &[],
        TOKEN,
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let sent: Vec<Value> = of_kind(&events, "metrics")
        .into_iter()
        .filter(|e| e["event"] == "metrics")
        .map(|e| json!({"step": e["step"], "metrics": e["data"]}))
        .collect();
    assert_eq!(sent, calls, "the events carry each call's keys only");
    let expected = merged_after_each(&calls);
    assert_final_status(&server, "job-metrics", "SUCCEEDED");
    let patches = server.job_patches("job-metrics");
    let (last, intermediate) = patches.split_last().unwrap();
    let seen: Vec<usize> = intermediate
        .iter()
        .filter_map(|patch| patch.get("metrics_record"))
        .map(|record| {
            let steps = &record["record"]["steps"];
            expected
                .iter()
                .position(|merged| merged == steps)
                .unwrap_or_else(|| panic!("a PATCH carried metrics no call sequence leads to: {steps:#}\n{patches:#?}"))
        })
        .collect();
    assert_eq!(
        seen,
        (0..calls.len()).collect::<Vec<_>>(),
        "one PATCH per call (each more than a snapshot interval apart), in order, each with the merged metrics: {patches:#?}"
    );
    assert_eq!(last["metrics_record"]["record"]["steps"], expected[calls.len() - 1]);
}

/// Runs a flood of `count` log entries as job `job` while `fault` is
/// active, and returns (lost, duplicated).
fn flood_through(fault: impl FnOnce(&TestBackend), job: &str, count: u64, extra: &[&str]) -> (u64, u64) {
    let server = TestBackend::start(Some(TOKEN)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = probe_dir();
    fault(&server);
    let params = format!(r#"{{"count": {count}}}"#);
    let mut args = vec!["--backend-wait", "60"];
    args.extend_from_slice(extra);
    let (output, _, _) = run_job(
        dir.path(),
        &server,
        state.path(),
        job,
        ["probe", "flood"],
        &params,
        &args,
        TOKEN,
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let (lost, duplicated) = count_ticks(&server, count);
    println!(
        "{job}: {count} entries, lost {lost}, duplicated {duplicated}, {} requests, {} replays refused",
        server.requests().len(),
        server.replays()
    );
    assert_final_status(&server, job, "SUCCEEDED");
    assert!(
        crate::common::list_spool(state.path()).is_empty(),
        "{job}: everything was delivered"
    );
    (lost, duplicated)
}

#[test]
fn server_errors_lose_and_duplicate_nothing() {
    let faulty = |s: &TestBackend| {
        s.fail_next(
            4,
            Fault::Status {
                status: 500,
                retry_after: None,
            },
        )
    };
    assert_eq!(flood_through(faulty, "fault-500", 1000, &[]), (0, 0));
}

#[test]
fn throttling_with_retry_after_loses_and_duplicates_nothing() {
    let faulty = |s: &TestBackend| {
        s.fail_next(
            3,
            Fault::Status {
                status: 429,
                retry_after: Some(1),
            },
        )
    };
    assert_eq!(flood_through(faulty, "fault-429", 1000, &[]), (0, 0));
}

#[test]
fn slow_answers_lose_and_duplicate_nothing() {
    let faulty = |s: &TestBackend| s.fail_next(3, Fault::Slow(Duration::from_millis(1500)));
    assert_eq!(
        flood_through(faulty, "fault-slow", 1000, &["--backend-timeout", "0.5"]),
        (0, 0)
    );
}

#[test]
fn connections_closed_mid_answer_lose_and_duplicate_nothing() {
    let faulty = |s: &TestBackend| s.fail_next(4, Fault::CloseMidAnswer);
    assert_eq!(flood_through(faulty, "fault-close", 1000, &[]), (0, 0));
}

#[test]
fn a_backend_down_for_seconds_loses_and_duplicates_nothing() {
    let faulty = |s: &TestBackend| s.go_down(Duration::from_secs(3));
    assert_eq!(flood_through(faulty, "fault-down", 1000, &[]), (0, 0));
}

#[test]
fn a_journal_left_by_a_killed_loader_is_delivered_by_loader_flush() {
    let server = TestBackend::start(Some(TOKEN)).unwrap();
    server.go_down(Duration::from_secs(600));
    let state = tempfile::tempdir().unwrap();
    let dir = probe_dir();
    let url = server.url();
    let mut child = Command::new(loader_bin())
        .env_clear()
        .env("SYNAPSE_ACCESS_TOKEN", TOKEN)
        .arg("--plugins")
        .arg(dir.path())
        .args([
            "run",
            "probe",
            "flood",
            "--params",
            r#"{"count": 700}"#,
            "--job-id",
            "job-killed",
        ])
        .args(["--backend", &url, "--backend-wait", "600", "--in-process", "--quiet"])
        .arg("--state-dir")
        .arg(state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let journal = loop {
        let found = crate::common::list_spool(state.path());
        let done = found
            .first()
            .and_then(|j| std::fs::read_to_string(j).ok())
            .filter(|t| t.contains("SUCCEEDED"));
        if let (Some(path), Some(_)) = (found.first(), done) {
            break path.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the journal never got the final status"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(journal.exists(), "the killed loader leaves its journal");
    assert!(server.logs().is_empty());

    server.come_back();
    let flush = loader(
        dir.path(),
        &["flush", "--state-dir", state.path().to_str().unwrap()],
        &[("SYNAPSE_ACCESS_TOKEN", TOKEN), ("SYNAPSE_HOST", &url)],
    );
    assert_eq!(exit_code(&flush), 0, "{}{}", stdout(&flush), stderr(&flush));
    assert!(
        stdout(&flush).contains("job job-killed: delivered"),
        "{}",
        stdout(&flush)
    );
    let (lost, duplicated) = count_ticks(&server, 700);
    println!("killed loader then flush: 700 entries, lost {lost}, duplicated {duplicated}");
    assert_eq!((lost, duplicated), (0, 0));
    assert_final_status(&server, "job-killed", "SUCCEEDED");
    assert!(!journal.exists(), "a delivered journal is removed");
    let again = loader(
        dir.path(),
        &[
            "flush",
            "--state-dir",
            state.path().to_str().unwrap(),
            "--backend",
            &url,
        ],
        &[],
    );
    assert!(stdout(&again).contains("nothing to deliver"), "{}", stdout(&again));
}

#[test]
fn the_next_run_delivers_what_an_earlier_run_could_not() {
    let server = TestBackend::start(Some(TOKEN)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = probe_dir();
    server.go_down(Duration::from_secs(600));
    let (first, events, _) = run_job(
        dir.path(),
        &server,
        state.path(),
        "job-early",
        ["probe", "flood"],
        r#"{"count": 300}"#,
        &["--backend-wait", "1"],
        TOKEN,
    );
    assert_eq!(
        exit_code(&first),
        0,
        "the backend's health does not change the exit code"
    );
    let loss = events
        .iter()
        .find(|e| e["event"] == "joblog_loss")
        .expect("a joblog_loss event");
    assert_eq!(loss["data"]["undelivered_entries"], 300, "{loss:#}");
    assert_eq!(crate::common::list_spool(state.path()).len(), 1);
    server.come_back();
    let (second, _, _) = run_job(
        dir.path(),
        &server,
        state.path(),
        "job-later",
        ["probe", "flood"],
        r#"{"count": 5}"#,
        &[],
        TOKEN,
    );
    assert_eq!(exit_code(&second), 0, "{}", stderr(&second));
    assert_final_status(&server, "job-early", "SUCCEEDED");
    assert_final_status(&server, "job-later", "SUCCEEDED");
    let early = server.logs().iter().filter(|e| e["job"] == "job-early").count();
    assert_eq!(early, 300);
    assert!(crate::common::list_spool(state.path()).is_empty());
}

#[test]
fn the_token_never_appears_and_a_refused_token_is_named() {
    let server = TestBackend::start(Some(TOKEN)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = probe_dir();
    let (output, _, events_text) = run_job(
        dir.path(),
        &server,
        state.path(),
        "job-echo",
        ["probe", "echo_context"],
        "{}",
        &[
            "--env",
            "DB_PASSWORD=hunter2-pw",
            "--env",
            &format!("SYNAPSE_ACCESS_TOKEN={TOKEN}"),
            "-v",
        ],
        TOKEN,
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
    // Passed explicitly (a prefix never passes it), and hidden in the output.
    assert_eq!(result["env"]["SYNAPSE_ACCESS_TOKEN"], "[REDACTED]", "{result:#}");
    assert_eq!(result["env"]["DB_PASSWORD"], "[REDACTED]");
    assert_eq!(result["has_client"], true);
    let server_text = format!("{:?}{:?}", server.logs(), server.job_patches("job-echo"));
    for output_text in [stdout(&output), stderr(&output), events_text, server_text] {
        assert!(!output_text.contains(TOKEN) && !output_text.contains("hunter2-pw"));
    }

    let wrong = "wrong-token-0xDEADBEEF";
    let (refused, _, events_text) = run_job(
        dir.path(),
        &server,
        state.path(),
        "job-refused",
        ["dataset-exporter-absent", "publish"],
        "{}",
        &[],
        wrong,
    );
    assert_eq!(exit_code(&refused), 3);
    let samples = samples_dir();
    let (refused, _, events_text2) = run_job(
        samples.path(),
        &server,
        state.path(),
        "job-refused",
        ["dataset-exporter", "publish"],
        r#"{"data_collection": 1, "model": 2}"#,
        &["--backend-wait", "2"],
        wrong,
    );
    let err = stderr(&refused);
    assert_eq!(exit_code(&refused), 1, "{err}");
    assert!(err.contains("SYNAPSE_ACCESS_TOKEN") && err.contains("401"), "{err}");
    assert!(err.contains("Invalid token."), "the backend's message: {err}");
    for text in [stdout(&refused), err, events_text, events_text2] {
        assert!(!text.contains(wrong), "the refused token is never shown: {text}");
    }

    let (required, _, _) = run_job(
        dir.path(),
        &server,
        state.path(),
        "job-required",
        ["probe", "echo_context"],
        "{}",
        &["--backend-wait", "2", "--require-backend"],
        wrong,
    );
    assert_eq!(exit_code(&required), 6, "{}", stderr(&required));
    assert!(stderr(&required).contains("not delivered"), "{}", stderr(&required));
}

#[test]
fn the_warning_about_a_variable_not_passed_reaches_the_job_log_without_its_value() {
    const VALUE: &str = "73519";
    let server = TestBackend::start(Some(TOKEN)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let dir = samples_dir();
    let url = server.url();
    let args = [
        "run",
        "tabular-trainer",
        "train",
        "--params",
        r#"{"samples": 40, "epochs": 1}"#,
        "--job-id",
        "job-env",
        "--backend",
        &url,
        "--state-dir",
        state.path().to_str().unwrap(),
        "--quiet",
    ];
    let output = loader(
        dir.path(),
        &args,
        &[("SYNAPSE_ACCESS_TOKEN", TOKEN), ("BATCH_SIZE", VALUE)],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let logs = server.logs();
    let warnings: Vec<&Value> = logs.iter().filter(|e| e["event"] == "env_not_passed").collect();
    assert_eq!(warnings.len(), 1, "{logs:#?}");
    assert_eq!(warnings[0]["data"]["key"], "BATCH_SIZE");
    let sent = serde_json::to_string(&logs).unwrap();
    assert!(!sent.contains(VALUE), "the value was sent: {sent}");
    assert_final_status(&server, "job-env", "SUCCEEDED");
}
