//! `loader run --params-each FILE --parallel N` without a cluster: one
//! isolated child per params line, N at a time, retried failures, one
//! outcome line per input line and an exit code for the whole batch.

use std::path::Path;

use crate::common::*;
use serde_json::{json, Value};

fn plugins() -> tempfile::TempDir {
    plugin_dir(&[fixture_library("probe", "batch-plugin")])
}

fn write_lines(dir: &Path, lines: &[Value]) -> String {
    let path = dir.join("batch.jsonl");
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&path, text.join("\n") + "\n").unwrap();
    path.to_str().unwrap().to_owned()
}

fn by_line(outcomes: &[Value], line: u64) -> &Value {
    outcomes
        .iter()
        .find(|o| o["line"] == line)
        .unwrap_or_else(|| panic!("no outcome for line {line}"))
}

#[test]
fn twenty_lines_run_four_at_a_time_and_the_failure_is_retried() {
    let dir = plugins();
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("failed-once");
    let lines: Vec<Value> = (1..=20)
        .map(|i| match i {
            7 => json!({ "value": i, "fail_once_marker": marker }),
            _ => json!({ "value": i }),
        })
        .collect();
    let file = write_lines(work.path(), &lines);
    let output = loader(
        dir.path(),
        &[
            "run",
            "batch-probe",
            "square",
            "--params-each",
            &file,
            "--parallel",
            "4",
            "--retries",
            "1",
            "--allow-write",
            work.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let outcomes = jsonl(&stdout(&output));
    assert_eq!(outcomes.len(), 20);
    for line in 1..=20u64 {
        let outcome = by_line(&outcomes, line);
        assert_eq!(outcome["status"], "succeeded", "{outcome}");
        assert_eq!(outcome["result"]["square"], line * line);
        assert_eq!(outcome["attempts"], if line == 7 { 2 } else { 1 });
        assert!(outcome["submission_id"]
            .as_str()
            .unwrap()
            .ends_with(&format!("-{line}-{}", outcome["attempts"])));
    }
    assert!(marker.exists(), "line 7 did fail once");
    let err = stderr(&output);
    assert!(err.contains("20/20") && err.contains("20 of 20 succeeded"), "{err}");
}

#[test]
fn a_line_that_keeps_failing_fails_the_batch_after_its_retries() {
    let dir = plugins();
    let work = tempfile::tempdir().unwrap();
    let lines = [
        json!({"value": 1}),
        json!({"value": 2, "fail": true}),
        json!({"value": 3}),
    ];
    let file = write_lines(work.path(), &lines);
    let results = work.path().join("out.jsonl");
    let output = loader(
        dir.path(),
        &[
            "run",
            "batch-probe",
            "square",
            "--params-each",
            &file,
            "--parallel",
            "2",
            "--retries",
            "2",
            "--results",
            results.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 1, "{}", stderr(&output));
    assert!(
        stdout(&output).is_empty(),
        "outcomes went to --results: {}",
        stdout(&output)
    );
    let outcomes = jsonl(&std::fs::read_to_string(&results).unwrap());
    assert_eq!(outcomes.len(), 3);
    let failed = by_line(&outcomes, 2);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["attempts"], 3);
    assert_eq!(failed["result"], Value::Null);
    assert_eq!(failed["error"]["message"], "2 fails on purpose");
    assert_eq!(by_line(&outcomes, 3)["status"], "succeeded");
    let err = stderr(&output);
    assert!(
        err.contains("line 2 failed after 3 attempt(s)") && err.contains("1 failed"),
        "{err}"
    );
}

#[test]
fn bad_batch_input_and_flags_are_usage_errors() {
    let dir = plugins();
    let work = tempfile::tempdir().unwrap();
    let bad = work.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"value\": 1}\n[2]\n").unwrap();
    let output = loader(
        dir.path(),
        &["run", "batch-probe", "square", "--params-each", bad.to_str().unwrap()],
        &[],
    );
    assert_eq!(exit_code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("line 2: not a JSON object"),
        "{}",
        stderr(&output)
    );

    let good = write_lines(work.path(), &[json!({"value": 1})]);
    let both = loader(
        dir.path(),
        &["run", "batch-probe", "square", "--params-each", &good, "--params", "{}"],
        &[],
    );
    assert_eq!(exit_code(&both), 2, "{}", stderr(&both));
    let zero = loader(
        dir.path(),
        &[
            "run",
            "batch-probe",
            "square",
            "--params-each",
            &good,
            "--parallel",
            "0",
        ],
        &[],
    );
    assert_eq!(exit_code(&zero), 2, "{}", stderr(&zero));
    let detached = loader(dir.path(), &["run", "batch-probe", "square", "--detach"], &[]);
    assert_eq!(exit_code(&detached), 2, "{}", stderr(&detached));
    assert!(
        stderr(&detached).contains("--detach needs --on ray"),
        "{}",
        stderr(&detached)
    );
}
