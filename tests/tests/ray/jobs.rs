//! `loader run --on ray` (as a job's entrypoint and as a Ray task), batches
//! on Ray (one job, a task a line) and `loader jobs`, end to end against a
//! real Ray head node (see `common::ray` for how to start one; without it
//! they skip). `nodes.rs` adds worker nodes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::ray::*;
use crate::common::*;
use serde_json::{json, Value};

/// A plugin folder with the sample trainer, the probe and the batch probe.
fn plugins() -> tempfile::TempDir {
    plugin_dir(&[
        sample_library("tabular-trainer"),
        fixture_library("probe", "probe-plugin"),
        fixture_library("probe", "batch-plugin"),
    ])
}

#[test]
fn ray_cluster_sample_action_relays_progress_and_its_result_like_a_local_run() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
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
    assert_eq!(final_status(dir.path(), &address, &job_id), "SUCCEEDED");
}

/// `--method task`: the run is a Ray task of the job's driver, its events
/// relayed as they come, straight from the driver, each once and in order.
#[test]
fn ray_cluster_method_task_runs_the_action_as_a_ray_task_and_relays_it_like_a_local_run() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
    let dir = plugins();
    let id = unique_id("task");
    let params = r#"{"epochs": 3, "samples": 200}"#;
    let args = [
        "--params", params, "--events", "jsonl", "--method", "task", "--job-id", &id, "-vv",
    ];
    let output = run_on_ray(dir.path(), &address, "tabular-trainer", "train", &args);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("running the action as a Ray task"), "{said}");
    assert!(
        said.contains("the run's events came straight from its driver"),
        "{said}"
    );
    let events = jsonl(&stdout(&output));
    assert_envelope(&events, "tabular-trainer", "train");
    let epochs: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "metrics" && e["step"] == "train")
        .map(|e| e["data"]["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2, 3], "each epoch's metrics once, in order: {events:?}");
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "result", "{last}");
    assert_eq!(last["data"]["epochs"], 3);
    let tasks = tasks_listed(&address, &id, "stream_run", 1);
    assert_eq!(tasks.len(), 1, "one Ray task ran it: {tasks:?}");
    assert_eq!(
        tasks[0]["required_resources"]["CPU"], 1.0,
        "the trainer declares 1 CPU, the task holds it: {}",
        tasks[0]
    );
    assert_eq!(final_status(dir.path(), &address, &id), "SUCCEEDED");
}

/// A job that reports as it goes for ten seconds, with events of 400 kB (a
/// 40 MB log), followed with the direct line from its driver (`auto`) and
/// from its log alone (`off`): every event once, in order, then the
/// result. Read from the log, it is its stream, each byte of the log read
/// once (polling fetched the whole log again every turn), and the whole
/// log is never fetched.
#[test]
fn ray_cluster_a_chatty_job_is_followed_with_every_event_once_in_order_straight_or_from_its_log() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
    let dir = plugin_dir(&[fixture_library("flood", "flood-plugin")]);
    let (count, bytes) = (100, 400_000);
    let params = format!(r#"{{"count": {count}, "bytes": {bytes}, "pause_ms": 100}}"#);
    for listen in ["auto", "off"] {
        let args = ["--params", &params, "--events", "jsonl", "-vv", "--ray-listen", listen];
        let output = run_on_ray(dir.path(), &address, "flood", "big_payloads", &args);
        assert_eq!(exit_code(&output), 0, "{listen}: {}", stderr(&output));
        // The loader's diagnostics, without the payloads.
        let all_said = stderr(&output);
        let said: Vec<&str> = all_said.lines().filter(|l| !l.contains("xxxxxxxx")).collect();
        let said = said.join("\n");
        assert!(said.contains("following its log stream"), "{listen}: {said}");
        let source = if listen == "auto" {
            "straight from its driver"
        } else {
            "from the job log"
        };
        assert!(
            said.contains(&format!("the run's events came {source}")),
            "{listen}: {said}"
        );
        for fetched in ["polling", "fetched whole", "fetching the rest"] {
            assert!(!said.contains(fetched), "{listen}: {fetched:?} in {said}");
        }
        let events = jsonl(&stdout(&output));
        let blobs: Vec<&Value> = events.iter().filter(|e| e["event"] == "blob").collect();
        let numbers: Vec<u64> = blobs.iter().map(|e| e["data"]["i"].as_u64().unwrap()).collect();
        assert_eq!(numbers, (0..count).collect::<Vec<u64>>(), "{listen}");
        assert!(blobs
            .iter()
            .all(|e| e["data"]["blob"].as_str().map(str::len) == Some(bytes)));
        let last = events.last().unwrap();
        assert_eq!(last["kind"], "result", "{listen}: {last}");
        assert_eq!(last["data"]["logged"], count);
    }
}

#[test]
fn ray_cluster_a_crashing_plugin_is_reported_as_crashed_with_its_signal() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
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
    let _turn = shared_cluster();
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
    let status = final_status(dir.path(), &address, &id);
    assert!(status == "FAILED" || status == "STOPPED", "the job is still {status}");
}

#[test]
fn ray_cluster_ctrl_c_stops_the_job() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
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
    assert_eq!(final_status(dir.path(), &address, &id), "STOPPED");
}

#[test]
fn ray_cluster_the_package_is_uploaded_once_and_reused() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
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

/// The agent client reads its own job, run isolated or in-process in the
/// job's entrypoint, or as a Ray task; the entrypoint (job) or the task
/// reserves the manifest's resources, or a flag's.
#[test]
fn ray_cluster_the_agent_client_reads_the_own_job_in_every_mode_and_the_manifest_resources_are_reserved() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
    let dir = plugins();
    for (mode, extra, cpus) in [
        ("isolated", &[][..], 0.25),
        ("in-process", &["--in-process", "--num-cpus", "0.5"][..], 0.5),
        ("task", &["--method", "task"][..], 0.25),
    ] {
        let id = unique_id("agent");
        let mut args = vec!["--job-id", id.as_str()];
        args.extend_from_slice(extra);
        let output = run_on_ray(dir.path(), &address, "batch-probe", "use_agent", &args);
        assert_eq!(exit_code(&output), 0, "{mode}: {}", stderr(&output));
        let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(result["own_submission_id"], id.as_str(), "{mode}: {result}");
        assert_eq!(result["own_status"], "RUNNING", "{mode}: {result}");
        let entrypoint = result["own_entrypoint"].as_str().unwrap();
        assert!(
            entrypoint.starts_with("python3 loader_ray.py --run-id"),
            "{mode}: {result}"
        );
        assert!(result["listed"].as_u64().unwrap() >= 1, "{mode}: {result}");
        let reserved = if mode == "task" {
            let tasks = tasks_listed(&address, &id, "stream_run", 1);
            assert_eq!(tasks.len(), 1, "{mode}: {tasks:?}");
            assert!(
                reserved_by_job(&address, &id).get("CPU").is_none(),
                "{mode}: the driver holds no CPU"
            );
            tasks[0]["required_resources"].clone()
        } else {
            reserved_by_job(&address, &id)
        };
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
                json!({ "value": i, "fail_once_marker": marker }).to_string()
            } else {
                json!({ "value": i }).to_string()
            }
        })
        .collect();
    let path = dir.join("batch.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// The tasks' runs of a job that overlapped most (from the State API's
/// start and end times).
fn most_at_once(tasks: &[Value]) -> usize {
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for task in tasks {
        if let (Some(start), Some(end)) = (task["start_time_ms"].as_u64(), task["end_time_ms"].as_u64()) {
            edges.push((start, 1));
            edges.push((end, -1));
        }
    }
    // An end at the same millisecond as a start comes first.
    edges.sort();
    let (mut now, mut most) = (0, 0);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

/// A batch is one Ray job whose lines are its tasks, at most `--parallel`
/// at a time; a failed line runs again (`--retries`), and every line's
/// outcome comes once, naming the attempt and the node. The run's sandbox
/// grant (`--allow-write`) holds on the cluster.
#[test]
fn ray_cluster_a_batch_of_20_is_one_job_running_4_tasks_at_a_time_and_retries_its_failure() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
    let dir = plugins();
    let work = tempfile::tempdir().unwrap();
    let file = batch_file(work.path(), 20, 7);
    let results = work.path().join("results.jsonl");
    let batch = unique_id("batch");
    let args = [
        "--params-each",
        file.to_str().unwrap(),
        "--parallel",
        "4",
        "--retries",
        "1",
        "--results",
        results.to_str().unwrap(),
        "--job-id",
        &batch,
        // The sandbox on the cluster lets line 7 write its marker there: the
        // grant is passed on to the cluster's loader.
        "--allow-write",
        work.path().to_str().unwrap(),
    ];
    let output = run_on_ray(dir.path(), &address, "batch-probe", "square", &args);
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
        let attempts = if line == 7 { 2 } else { 1 };
        assert_eq!(outcome["attempts"], attempts, "{outcome}");
        assert_eq!(
            outcome["submission_id"],
            format!("{batch}-{line}-{attempts}"),
            "{outcome}"
        );
        assert_eq!(
            outcome["node"].as_str().map(str::len),
            Some(56),
            "the Ray node it ran on: {outcome}"
        );
    }
    assert_eq!(final_status(dir.path(), &address, &batch), "SUCCEEDED");
    let tasks = tasks_listed(&address, &batch, "run_line", 21);
    assert_eq!(tasks.len(), 21, "a task per attempt: {tasks:?}");
    assert!(most_at_once(&tasks) <= 4, "more than --parallel 4 at once: {tasks:?}");
}

/// A thousand lines in one batch: every result once (the throughput is
/// the Ray benchmark's business).
#[test]
fn ray_cluster_a_batch_of_1000_lines_gives_every_result_once() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
    let dir = plugins();
    let work = tempfile::tempdir().unwrap();
    let lines: Vec<Value> = (1..=1000).map(|i| json!({ "value": i })).collect();
    let file = lines_file(work.path(), &lines);
    let output = run_on_ray(
        dir.path(),
        &address,
        "batch-probe",
        "square",
        &["--params-each", &file, "--quiet"],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let outcomes = jsonl(&stdout(&output));
    assert_eq!(outcomes.len(), 1000);
    let mut seen = std::collections::BTreeSet::new();
    for outcome in &outcomes {
        let line = outcome["line"].as_u64().unwrap();
        assert!(seen.insert(line), "line {line} twice");
        assert_eq!(outcome["status"], "succeeded", "{outcome}");
        assert_eq!(outcome["result"]["square"], line * line, "{outcome}");
    }
}

/// A batch of lines that take a while, started in the background; returns
/// the loader process, its batch id and its results file.
fn slow_batch(dir: &Path, work: &Path, address: &str, what: &str) -> (std::process::Child, String, PathBuf) {
    let lines: Vec<Value> = (1..=12).map(|i| json!({ "value": i, "sleep_ms": 60_000 })).collect();
    let file = lines_file(work, &lines);
    let results = work.join("results.jsonl");
    let batch = unique_id(what);
    let child = Command::new(loader_bin())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("--plugins")
        .arg(dir)
        .args([
            "run",
            "batch-probe",
            "square",
            "--on",
            "ray",
            "--ray-address",
            address,
            "--params-each",
            &file,
        ])
        .args([
            "--parallel",
            "2",
            "--job-id",
            &batch,
            "--results",
            results.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, batch, results)
}

/// Waits until `count` tasks of the batch run.
fn wait_for_running_lines(address: &str, batch: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = tasks_of(address, batch, "run_line")
            .iter()
            .filter(|t| t["state"] == "RUNNING")
            .count();
        if running >= count {
            return;
        }
        assert!(Instant::now() < deadline, "the batch's lines never ran");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// What a stopped batch reports: the two lines under way cancelled, the
/// rest skipped, each once; and nothing of the batch still running on the
/// cluster.
fn assert_stopped(address: &str, dir: &Path, batch: &str, results: &Path, output: &std::process::Output) {
    assert_eq!(exit_code(output), 1, "{}", stderr(output));
    let outcomes = jsonl(&std::fs::read_to_string(results).unwrap());
    assert_eq!(outcomes.len(), 12, "{outcomes:?}");
    let cancelled: Vec<&Value> = outcomes
        .iter()
        .filter(|o| o["error"]["kind"] == "cancelled" && o["status"] == "failed")
        .collect();
    let skipped = outcomes.iter().filter(|o| o["status"] == "skipped").count();
    assert_eq!((cancelled.len(), skipped), (2, 10), "{outcomes:?}");
    assert!(cancelled.iter().all(|o| o["attempts"] == 1), "{cancelled:?}");
    assert_eq!(final_status(dir, address, batch), "STOPPED");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = tasks_of(address, batch, "run_line");
        if tasks.iter().all(|t| t["state"] != "RUNNING") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tasks of the stopped batch still run: {tasks:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn ray_cluster_ctrl_c_stops_the_whole_batch() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
    let dir = plugins();
    let work = tempfile::tempdir().unwrap();
    let (child, batch, results) = slow_batch(dir.path(), work.path(), &address, "batch-interrupt");
    wait_for_running_lines(&address, &batch, 2);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert_stopped(&address, dir.path(), &batch, &results, &output);
}

#[test]
fn ray_cluster_jobs_stop_stops_the_whole_batch() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
    let dir = plugins();
    let work = tempfile::tempdir().unwrap();
    let (child, batch, results) = slow_batch(dir.path(), work.path(), &address, "batch-stop");
    wait_for_running_lines(&address, &batch, 2);
    let stop = loader(dir.path(), &["jobs", "--ray-address", &address, "stop", &batch], &[]);
    assert_eq!(stdout(&stop).trim(), "stop requested", "{}", stderr(&stop));
    let output = child.wait_with_output().unwrap();
    assert_stopped(&address, dir.path(), &batch, &results, &output);
}

#[test]
fn ray_cluster_a_detached_job_is_followed_with_jobs_logs() {
    let Some(address) = cluster() else { return };
    let _turn = shared_cluster();
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
