//! End-to-end: the sample step-based workflow run by `loader run`, checking
//! per-step and overall progress, step events, and the rollback of the
//! failed step and then the completed steps in reverse order when a step
//! fails (as synapse-sdk 2026.2.17 does).

use crate::common::*;
use serde_json::{json, Value};

fn run_pipeline(params: Value) -> (i32, Vec<Value>, String) {
    let dir = samples_dir();
    let work = tempfile::tempdir().unwrap();
    let mut params = params;
    params["work_dir"] = json!(work.path());
    // The sandbox lets the plugin write only where it is granted.
    let output = loader(
        dir.path(),
        &[
            "run",
            "workflow-trainer",
            "train_pipeline",
            "--params",
            &params.to_string(),
            "--events",
            "jsonl",
            "--allow-write",
            work.path().to_str().unwrap(),
        ],
        &[],
    );
    (exit_code(&output), jsonl(&stdout(&output)), stderr(&output))
}

fn events_named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "event" && e["event"] == name)
        .collect()
}

const STEPS: [&str; 5] = ["load_dataset", "split", "train", "evaluate", "export"];

#[test]
fn the_workflow_reports_each_step_and_overall_progress() {
    let (code, events, stderr) = run_pipeline(json!({ "epochs": 3 }));
    assert_eq!(code, 0, "{stderr}");
    assert_envelope(&events, "workflow-trainer", "train_pipeline");

    let started: Vec<&str> = events_named(&events, "step_start")
        .iter()
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(started, STEPS);
    let ended = events_named(&events, "step_end");
    assert_eq!(ended.len(), 5);
    assert!(ended
        .iter()
        .all(|e| e["data"]["success"] == true && e["data"]["elapsed"].is_number()));

    for step in STEPS {
        let last = events.iter().rfind(|e| e["kind"] == "progress" && e["step"] == step);
        assert_eq!(
            last.unwrap_or_else(|| panic!("no progress for {step}"))["data"]["percent"],
            100.0,
            "{step}"
        );
    }
    let overall: Vec<f64> = events
        .iter()
        .filter(|e| e["kind"] == "progress" && e["step"].is_null())
        .map(|e| e["data"]["percent"].as_f64().unwrap())
        .collect();
    assert!(
        overall.windows(2).all(|w| w[0] <= w[1]),
        "overall progress never decreases: {overall:?}"
    );
    assert_eq!(*overall.last().unwrap(), 100.0);

    let result = events.last().unwrap();
    assert_eq!(result["kind"], "result");
    assert_eq!(result["data"]["success"], true);
    assert!(result["data"]["metrics"]["val_accuracy"].as_f64().unwrap() > 0.85);
}

#[test]
fn a_failing_step_is_rolled_back_first_then_the_completed_ones_in_reverse_order() {
    let (code, events, stderr) = run_pipeline(json!({ "fail_at": "evaluate" }));
    assert_eq!(code, 1, "the exit code says the action failed: {stderr}");

    let rollbacks: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["kind"] == "event" && e["event"].as_str().unwrap().starts_with("rollback_"))
        .map(|e| (e["event"].as_str().unwrap(), e["step"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rollbacks,
        [
            ("rollback_start", "evaluate"),
            ("rollback_end", "evaluate"),
            ("rollback_start", "train"),
            ("rollback_end", "train"),
            ("rollback_start", "split"),
            ("rollback_end", "split"),
            ("rollback_start", "load_dataset"),
            ("rollback_end", "load_dataset"),
        ]
    );
    let failed = events_named(&events, "step_end")
        .into_iter()
        .find(|e| e["step"] == "evaluate")
        .unwrap();
    assert_eq!(failed["data"]["success"], false);
    assert!(
        events_named(&events, "step_start")
            .iter()
            .all(|e| e["step"] != "export"),
        "no step runs after the failure"
    );

    let error = events.last().unwrap();
    assert_eq!(error["kind"], "error");
    assert_eq!(error["data"]["kind"], "failed");
    assert!(error["data"]["message"]
        .as_str()
        .unwrap()
        .starts_with("step \"evaluate\" failed"));
    assert_eq!(
        error["data"]["details"]["rolled_back"],
        json!(["evaluate", "train", "split", "load_dataset"])
    );
    assert!(
        stderr.contains("rolled back: evaluate, train, split, load_dataset"),
        "{stderr}"
    );
}
