//! Batches on a Ray cluster of several nodes: the head that
//! `tests/ray/run-in-netns.sh` starts, and two worker nodes each test adds
//! to it on loopback (in the same loopback-only network namespace, with
//! temporary folders of their own) and removes at its end. Lines are
//! placed by resources (a custom resource only one node has), and a node
//! killed in the middle of a batch loses no line and duplicates no result:
//! its lines run again elsewhere and say so in `attempts`.
//!
//! Needs `RAY_BIN` (the Ray venv's bin folder) and `LOADER_RAY_GCS` (the
//! head's address) besides the cluster; the script sets both. Each test
//! changes the cluster, so it has it alone (`exclusive_cluster`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::ray::*;
use crate::common::*;
use serde_json::{json, Value};

/// A worker node of the head, started with `ray start --block` (which, when
/// the node's raylet dies, kills the rest of the node and exits).
struct WorkerNode {
    starter: Child,
    node_id: String,
    raylet: u32,
    _temp: tempfile::TempDir,
}

/// What the worker nodes need: the `ray` command and the head's address.
fn ray_and_head() -> Option<(PathBuf, String)> {
    let ray = std::env::var_os("RAY_BIN").map(|bin| PathBuf::from(bin).join("ray"));
    let head = std::env::var("LOADER_RAY_GCS").ok();
    match (ray, head) {
        (Some(ray), Some(head)) => Some((ray, head)),
        _ if required() => {
            panic!("the multi-node Ray tests need RAY_BIN and LOADER_RAY_GCS (tests/ray/run-in-netns.sh sets them)")
        }
        _ => None,
    }
}

/// A free loopback port (for the node's dashboard agent, whose default
/// the head's already uses).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: the comm may hold spaces, so read after ')'.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        if after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

impl WorkerNode {
    /// Starts a node with `cpus` CPUs and the custom `resources` (a JSON
    /// object), and waits until the cluster counts it.
    fn start(ray: &Path, head: &str, address: &str, cpus: u32, resources: &Value) -> WorkerNode {
        let temp = tempfile::Builder::new().prefix("ray-node-").tempdir_in("/tmp").unwrap();
        let log = std::fs::File::create(temp.path().join("start.log")).unwrap();
        let starter = Command::new(ray)
            .args(["start", "--block", "--address", head, "--node-ip-address", "127.0.0.1"])
            .args(["--num-cpus", &cpus.to_string(), "--resources", &resources.to_string()])
            .args(["--dashboard-agent-listen-port", &free_port().to_string()])
            .arg("--temp-dir")
            .arg(temp.path())
            .args(["--object-store-memory", "100000000", "--disable-usage-stats"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let (raylet, node_id) = loop {
            let found = children_of(starter.id()).into_iter().find_map(|pid| {
                let line = cmdline(pid);
                let id = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("--node_id="))?
                    .to_owned();
                line.contains("raylet").then_some((pid, id))
            });
            if let Some(found) = found {
                break found;
            }
            let log = std::fs::read_to_string(temp.path().join("start.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "the worker node did not start: {log}");
            std::thread::sleep(Duration::from_millis(200));
        };
        let node = WorkerNode {
            starter,
            node_id,
            raylet,
            _temp: temp,
        };
        loop {
            let alive = state_rows(address, "/api/v0/nodes?limit=100")
                .iter()
                .any(|n| n["node_id"] == node.node_id.as_str() && n["state"] == "ALIVE");
            if alive {
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster never counted node {}",
                node.node_id
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the node as a crash would: its raylet at once (the starter
    /// then kills the rest of the node and exits).
    fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.raylet.to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.starter.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.starter.kill();
                let _ = self.starter.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for WorkerNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plugin folder with the batch probe.
fn plugins() -> tempfile::TempDir {
    plugin_dir(&[fixture_library("probe", "batch-plugin")])
}

/// The batch's outcomes, checked to hold every line once and to have
/// succeeded.
fn every_line_once(results: &Path, lines: u64) -> Vec<Value> {
    let outcomes = jsonl(&std::fs::read_to_string(results).unwrap());
    let numbers: BTreeSet<u64> = outcomes.iter().map(|o| o["line"].as_u64().unwrap()).collect();
    assert_eq!(outcomes.len() as u64, lines, "one outcome a line: {outcomes:?}");
    assert_eq!(numbers, (1..=lines).collect(), "{outcomes:?}");
    for outcome in &outcomes {
        let line = outcome["line"].as_u64().unwrap();
        assert_eq!(outcome["status"], "succeeded", "{outcome}");
        assert_eq!(outcome["result"]["square"], line * line, "{outcome}");
    }
    outcomes
}

#[test]
fn ray_nodes_lines_needing_a_resource_only_one_node_has_all_run_on_it() {
    let Some(address) = cluster() else { return };
    let Some((ray, head)) = ray_and_head() else { return };
    let _turn = exclusive_cluster();
    let special = WorkerNode::start(&ray, &head, &address, 1, &json!({"special": 2}));
    let _plain = WorkerNode::start(&ray, &head, &address, 1, &json!({}));
    let dir = plugins();
    let work = tempfile::tempdir().unwrap();
    let lines: Vec<Value> = (1..=6).map(|i| json!({ "value": i, "sleep_ms": 300 })).collect();
    let file = lines_file(work.path(), &lines);
    let results = work.path().join("results.jsonl");
    let args = [
        "--params-each",
        &file,
        "--resources",
        r#"{"special": 1}"#,
        "--results",
        results.to_str().unwrap(),
    ];
    let output = run_on_ray(dir.path(), &address, "batch-probe", "square", &args);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    for outcome in every_line_once(&results, 6) {
        assert_eq!(
            outcome["node"],
            special.node_id.as_str(),
            "only that node has `special`: {outcome}"
        );
        assert_eq!(outcome["attempts"], 1, "{outcome}");
    }
}

#[test]
fn ray_nodes_a_node_lost_mid_batch_loses_no_line_and_duplicates_no_result() {
    let Some(address) = cluster() else { return };
    let Some((ray, head)) = ray_and_head() else { return };
    let _turn = exclusive_cluster();
    let _kept = WorkerNode::start(&ray, &head, &address, 1, &json!({}));
    let mut doomed = WorkerNode::start(&ray, &head, &address, 1, &json!({}));
    let dir = plugins();
    let work = tempfile::tempdir().unwrap();
    let lines: Vec<Value> = (1..=16).map(|i| json!({ "value": i, "sleep_ms": 2000 })).collect();
    let file = lines_file(work.path(), &lines);
    let results = work.path().join("results.jsonl");
    let batch = unique_id("node-loss");
    let loader = Command::new(loader_bin())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("--plugins")
        .arg(dir.path())
        .args([
            "run",
            "batch-probe",
            "square",
            "--on",
            "ray",
            "--ray-address",
            &address,
            "--params-each",
            &file,
        ])
        .args(["--job-id", &batch, "--results", results.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Kill the node while a line runs on it.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let on_doomed = tasks_of(&address, &batch, "run_line")
            .iter()
            .any(|t| t["state"] == "RUNNING" && t["node_id"] == doomed.node_id.as_str());
        if on_doomed {
            break;
        }
        assert!(Instant::now() < deadline, "no line ever ran on the second worker node");
        std::thread::sleep(Duration::from_millis(100));
    }
    doomed.kill();

    let output = loader.wait_with_output().unwrap();
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let outcomes = every_line_once(&results, 16);
    let rerun: Vec<&Value> = outcomes.iter().filter(|o| o["attempts"].as_u64() > Some(1)).collect();
    assert!(!rerun.is_empty(), "the lines of the lost node ran again: {outcomes:?}");
    for outcome in &outcomes {
        let attempts = outcome["attempts"].as_u64().unwrap();
        assert!(
            outcome["submission_id"]
                .as_str()
                .unwrap()
                .ends_with(&format!("-{attempts}")),
            "{outcome}"
        );
    }
    for outcome in &rerun {
        assert_ne!(
            outcome["node"],
            doomed.node_id.as_str(),
            "a line ran again on the lost node: {outcome}"
        );
    }
    let said = stderr(&output);
    for outcome in rerun {
        let line = format!(
            "line {}: attempt 1 was lost with its Ray worker or node",
            outcome["line"]
        );
        assert!(said.contains(&line), "{line:?} not said: {said}");
    }
    assert_eq!(final_status(dir.path(), &address, &batch), "SUCCEEDED");
}
