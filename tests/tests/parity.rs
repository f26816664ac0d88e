//! End-to-end parity with the Python original: each test runs a fixture
//! action through the `loader` binary and checks the event stream against
//! what synapse-sdk 2026.2.17 does in the same case (read from its source
//! and run side by side with pydantic 2.14.4; the expected values are
//! noted beside each check).

use crate::common::*;
use serde_json::{json, Value};

fn parity_dir() -> tempfile::TempDir {
    plugin_dir(&[fixture_library("parity", "parity-plugin")])
}

/// Runs a parity action with the JSONL stream on stdout.
fn run(action: &str, params: Value, extra: &[&str]) -> (i32, Vec<Value>, String) {
    let dir = parity_dir();
    let params = params.to_string();
    let mut args = vec!["run", "parity-plugin", action, "--params", &params, "--events", "jsonl"];
    args.extend_from_slice(extra);
    let output = loader(dir.path(), &args, &[]);
    (exit_code(&output), jsonl(&stdout(&output)), stderr(&output))
}

fn last(events: &[Value]) -> &Value {
    events.last().expect("at least one event")
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

#[test]
fn runtime_context_calls_inside_a_step_are_attributed_to_it() {
    // Original: inside a running step, `runtime_ctx.set_progress(1, 2)`,
    // `runtime_ctx.log(...)`, `log_message(...)` and the step context's
    // `set_metrics(value)` all carry that step; `log` keeps its data as given.
    let (code, events, stderr) = run("workflow", json!({}), &[]);
    assert_eq!(code, 0, "{stderr}");
    let epoch = named(&events, "epoch");
    assert_eq!(epoch[0]["step"], "fit");
    assert_eq!(epoch[0]["data"], json!({ "n": 1, "step": "as given" }));
    let messages: Vec<(&str, &str, &str)> = of_kind(&events, "message")
        .iter()
        .map(|e| {
            (
                e["step"].as_str().unwrap_or("-"),
                e["level"].as_str().unwrap(),
                e["data"]["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        messages,
        [
            ("fit", "critical", "fit is running"),
            ("fit", "success", "step message")
        ]
    );
    let metrics = of_kind(&events, "metrics");
    assert_eq!(metrics[0]["step"], "fit");
    assert_eq!(metrics[0]["data"], json!({ "loss": 0.5 }));
    let fit_progress: Vec<&Value> = of_kind(&events, "progress")
        .into_iter()
        .filter(|e| e["step"] == "fit")
        .collect();
    assert!(!fit_progress.is_empty());
    // The step-less key is the overall bar only: never a step's 1/2 or 1/3.
    for overall in of_kind(&events, "progress").into_iter().filter(|e| e["step"].is_null()) {
        assert_eq!(overall["data"]["total"], 10_000, "{overall}");
    }
    let result = &last(&events)["data"];
    assert_eq!(
        (result["steps_executed"].clone(), result["steps_total"].clone()),
        (json!(2), json!(2))
    );
}

#[test]
fn the_failed_step_is_rolled_back_first_then_the_completed_ones() {
    // Original (`Orchestrator._rollback`): reversed(executed_steps), where
    // the failed step was appended before the rollback.
    let (code, events, _) = run("workflow", json!({ "fail_at": "check" }), &[]);
    assert_eq!(code, 1);
    let undone: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"].as_str().filter(|name| name.ends_with("_undone")))
        .collect();
    assert_eq!(undone, ["check_undone", "fit_undone"]);
    let error = &last(&events)["data"];
    assert_eq!(error["kind"], "failed");
    assert_eq!(error["details"]["rolled_back"], json!(["check", "fit"]));
}

#[test]
fn a_timeout_inside_a_workflow_is_timed_out_and_still_rolls_back() {
    let (code, events, stderr) = run("wait_in_workflow", json!({}), &["--timeout", "0.5"]);
    assert_eq!(code, 1);
    assert_eq!(last(&events)["data"]["kind"], "timed_out", "{stderr}");
    let undone: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event"].as_str().filter(|name| name.ends_with("_undone")))
        .collect();
    assert_eq!(undone, ["wait_undone", "fit_undone"]);
}

#[cfg(unix)]
#[test]
fn ctrl_c_on_a_workflow_is_cancelled_not_failed() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = parity_dir();
    let mut child = Command::new(loader_bin())
        .env_clear()
        .args(["--plugins", dir.path().to_str().unwrap()])
        .args(["run", "parity-plugin", "wait_in_workflow", "--events", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut events = Vec::new();
    // Interrupt once the waiting step has started.
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let waiting = event["event"] == "step_start" && event["step"] == "wait";
        events.push(event);
        if waiting {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    events.extend(lines.map(|line| serde_json::from_str::<Value>(&line.unwrap()).unwrap()));
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(last(&events)["data"]["kind"], "cancelled", "{events:?}");
    assert!(named(&events, "fit_undone").len() == 1, "rolled back: {events:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("(failed)"), "{stderr}");
}

#[test]
fn every_level_of_the_original_reaches_the_stream_by_name() {
    // Original LogLevel: debug, info, success, warning, danger, error, critical.
    let (code, events, stderr) = run("every_level", json!({}), &[]);
    assert_eq!(code, 0, "{stderr}");
    let levels: Vec<&str> = of_kind(&events, "message")
        .iter()
        .map(|e| e["level"].as_str().unwrap())
        .collect();
    assert_eq!(
        levels,
        ["debug", "info", "success", "warning", "danger", "error", "critical"]
    );
}

#[test]
fn non_object_log_data_is_refused_with_an_error_the_plugin_sees() {
    // Original: `ctx.log('e', [1, 2])` raises `TypeError: data must be a
    // dict, got list`; uncaught, it fails the action.
    let (code, events, _) = run("list_log_data", json!({}), &[]);
    assert_eq!(code, 1);
    assert!(named(&events, "e").is_empty(), "nothing was logged");
    let error = &last(&events)["data"];
    assert_eq!(error["message"], "log data must be a JSON object, got an array");
}

#[test]
fn a_checkpoint_without_path_is_kept_as_given() {
    // Original: `ctx.checkpoint` is the dict it was given.
    let (code, events, stderr) = run(
        "show_checkpoint",
        json!({}),
        &["--checkpoint", r#"{"category": "base", "note": "x"}"#],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        last(&events)["data"]["checkpoint"],
        json!({ "category": "base", "note": "x" })
    );
}

#[test]
fn params_are_read_as_pydantic_lax_mode_reads_them() {
    // pydantic 2.14.4: int from "5" and 5.0, float from "0.5", bool from "yes".
    let (code, events, stderr) = run(
        "echo_params",
        json!({ "epochs": "5", "lr": "0.5", "augment": "yes" }),
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        last(&events)["data"],
        json!({ "epochs": 5, "lr": 0.5, "augment": true, "name": null })
    );
    let (code, events, _) = run("echo_params", json!({ "epochs": 5.0, "lr": 1, "augment": 0 }), &[]);
    assert_eq!(code, 0);
    assert_eq!(last(&events)["data"]["epochs"], 5);
    assert_eq!(last(&events)["data"]["augment"], false);
}

#[test]
fn every_params_problem_is_reported_with_its_field() {
    // pydantic reports every error: here epochs (5.5 has a fraction), name
    // (a number is not a string), augment ("maybe"), and the unknown field.
    let dir = parity_dir();
    let params = json!({ "epochs": 5.5, "lr": 0.1, "augment": "maybe", "name": 3, "epoch": 1 }).to_string();
    let output = loader(
        dir.path(),
        &["run", "parity-plugin", "echo_params", "--params", &params],
        &[],
    );
    assert_eq!(exit_code(&output), 2, "invalid params are a usage error");
    let text = stderr(&output);
    for field in ["epochs", "name", "augment", "epoch"] {
        assert!(text.contains(&format!("{field}: ")), "{field} in {text}");
    }
}

#[test]
fn an_action_can_ask_for_strict_params() {
    let (code, _, stderr) = run(
        "echo_params_strict",
        json!({ "epochs": "5", "lr": 0.5, "augment": true }),
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("epochs: invalid type: expected a non-negative integer"),
        "{stderr}"
    );
    let (code, _, stderr) = run(
        "echo_params_strict",
        json!({ "epochs": 5, "lr": 0.5, "augment": true }),
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
}
