//! End-to-end: `loader list`, `info` and `run` driven as a user would, on
//! the real sample plugins and the probe fixture, checking the text output,
//! the JSONL event stream, the result and the exit codes.

use crate::common::*;
use serde_json::{json, Value};

#[test]
fn list_shows_every_sample_plugin_with_its_actions() {
    let dir = samples_dir();
    let output = loader(dir.path(), &["list"], &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "tabular-trainer 0.1.0",
        "train",
        "evaluate",
        "dataset-exporter 0.1.0",
        "export",
        "plugin-api 1.4.0",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }

    let output = loader(dir.path(), &["list", "--json"], &[]);
    let listing: Value = serde_json::from_str(&stdout(&output)).expect("list --json prints JSON");
    let codes: Vec<&str> = listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"tabular-trainer") && codes.contains(&"dataset-exporter"),
        "{codes:?}"
    );
    let trainer = listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "tabular-trainer")
        .unwrap();
    assert_eq!(trainer["category"], "neural_net");
    assert!(trainer["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "train" && !a["description"].as_str().unwrap().is_empty()));
    assert_eq!(listing["problems"], json!([]));
}

#[test]
fn list_reports_problem_files_and_still_lists_the_rest() {
    let dir = samples_dir();
    let bogus = dir.path().join(library_file_name("bogus"));
    std::fs::write(&bogus, "this is text, not a library").unwrap();
    let output = loader(dir.path(), &["list", "--json"], &[]);
    assert_eq!(exit_code(&output), 0);
    let listing: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(listing["plugins"].as_array().unwrap().len(), SAMPLE_PLUGINS.len());
    let problems = listing["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1);
    assert!(problems[0]["path"]
        .as_str()
        .unwrap()
        .ends_with(&library_file_name("bogus")));
    assert!(
        problems[0]["reason"].as_str().unwrap().contains("no ELF header"),
        "{problems:?}"
    );
}

#[test]
fn the_same_plugin_twice_is_reported_not_shadowed() {
    let dir = samples_dir();
    let original = sample_library("tabular-trainer");
    std::fs::copy(&original, dir.path().join(library_file_name("zz-trainer-copy"))).unwrap();
    let output = loader(dir.path(), &["list", "--json"], &[]);
    let listing: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let problems = listing["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let reason = problems[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("\"tabular-trainer\" is already provided by"),
        "{reason}"
    );
}

#[test]
fn info_shows_the_params_schema() {
    let dir = samples_dir();
    let output = loader(dir.path(), &["info", "tabular-trainer", "train", "--json"], &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let action: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(action["name"], "train");
    assert!(
        action["params_schema"]["properties"]["learning_rate"].is_object(),
        "{action}"
    );
    let text = stdout(&loader(dir.path(), &["info", "dataset-exporter"], &[]));
    assert!(text.contains("action export") && text.contains("output_dir"), "{text}");
}

#[test]
fn run_train_prints_the_result_and_a_complete_event_stream() {
    let dir = samples_dir();
    let events_file = dir.path().join("events.jsonl");
    let output = loader(
        dir.path(),
        &[
            "run",
            "tabular-trainer",
            "train",
            "--params",
            r#"{"samples": 400}"#,
            "--env",
            "EPOCHS=4",
            "--job-id",
            "job-42",
            "--events",
            events_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let result: Value = serde_json::from_str(&stdout(&output)).expect("the result JSON on stdout");
    assert_eq!(result["status"], "completed");
    assert_eq!(result["epochs"], 4, "EPOCHS from --env is honoured");

    let events = jsonl(&std::fs::read_to_string(&events_file).unwrap());
    assert_envelope(&events, "tabular-trainer", "train");
    assert!(events.iter().all(|e| e["job_id"] == "job-42"));
    let train_progress: Vec<&Value> = of_kind(&events, "progress")
        .into_iter()
        .filter(|e| e["step"] == "train")
        .collect();
    assert_eq!(
        train_progress.last().unwrap()["data"]["current"],
        4,
        "the final progress value is in the stream"
    );
    assert_eq!(train_progress.last().unwrap()["data"]["percent"], 100.0);
    let metrics = of_kind(&events, "metrics");
    assert!(!metrics.is_empty() && metrics.iter().all(|m| m["step"] == "train"));
    assert!(metrics.last().unwrap()["data"]["accuracy"].is_number());
    let messages = of_kind(&events, "message");
    assert!(messages.iter().any(|m| m["level"] == "success"));
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "result");
    assert_eq!(last["data"], result);
}

#[test]
fn events_jsonl_on_stdout_is_pure_jsonl() {
    let dir = samples_dir();
    let output = loader(
        dir.path(),
        &[
            "run",
            "tabular-trainer",
            "train",
            "--params",
            r#"{"epochs": 2, "samples": 200}"#,
            "--events",
            "jsonl",
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let events = jsonl(&stdout(&output));
    assert_eq!(events.last().unwrap()["kind"], "result");
    assert_eq!(events.last().unwrap()["data"]["epochs"], 2);
}

#[test]
fn run_export_writes_files_and_logs_each_with_its_path() {
    let dir = samples_dir();
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("export");
    let params = json!({ "output_dir": output_dir, "records": 10, "shard_size": 4, "format": "jsonl" }).to_string();
    let output = loader(
        dir.path(),
        &[
            "run",
            "dataset-exporter",
            "export",
            "--params",
            &params,
            "--events",
            "jsonl",
            "--allow-write",
            out.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let events = jsonl(&stdout(&output));
    assert_envelope(&events, "dataset-exporter", "export");
    let file_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "event" && e["file"].is_string())
        .collect();
    assert!(file_events.len() >= 3, "one event per shard file: {file_events:?}");
    for event in &file_events {
        let path = event["file"].as_str().unwrap();
        assert!(
            std::path::Path::new(path).is_file(),
            "{path} was logged but not written"
        );
    }
    assert!(output_dir.join("manifest.json").is_file());
}

#[test]
fn bad_params_fail_before_running_and_name_the_field() {
    let dir = samples_dir();
    let output = loader(
        dir.path(),
        &[
            "run",
            "tabular-trainer",
            "train",
            "--params",
            r#"{"learning_rate": "fast"}"#,
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 2);
    assert!(stderr(&output).contains("learning_rate"), "{}", stderr(&output));

    let output = loader(
        dir.path(),
        &[
            "run",
            "tabular-trainer",
            "train",
            "--params",
            r#"{"epoch": 3}"#,
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 2);
    assert!(
        stderr(&output).contains("epoch: unknown field, did you mean `epochs`?"),
        "{}",
        stderr(&output)
    );

    let output = loader(
        dir.path(),
        &["run", "tabular-trainer", "train", "--params", r#"{"epochs": -1}"#],
        &[],
    );
    assert_eq!(exit_code(&output), 2);
    assert!(
        stderr(&output).contains("epochs: invalid value: expected a non-negative integer, got -1"),
        "{}",
        stderr(&output)
    );

    let output = loader(
        dir.path(),
        &["run", "tabular-trainer", "train", "--params", "{not json"],
        &[],
    );
    assert_eq!(exit_code(&output), 2);
}

#[test]
fn unknown_plugin_or_action_exits_3_and_lists_what_exists() {
    let dir = samples_dir();
    let output = loader(dir.path(), &["run", "nope", "train"], &[]);
    assert_eq!(exit_code(&output), 3);
    assert!(stderr(&output).contains("tabular-trainer"), "{}", stderr(&output));
    let output = loader(dir.path(), &["run", "tabular-trainer", "fly"], &[]);
    assert_eq!(exit_code(&output), 3);
    assert!(
        stderr(&output).contains("train, evaluate") || stderr(&output).contains("evaluate"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_bad_env_value_is_an_error_naming_the_key() {
    let dir = samples_dir();
    let output = loader(
        dir.path(),
        &["run", "tabular-trainer", "train", "--env", "EPOCHS=many"],
        &[],
    );
    assert_eq!(exit_code(&output), 1);
    assert!(stderr(&output).contains("EPOCHS=\"many\""), "{}", stderr(&output));
}

#[test]
fn the_plugin_sees_only_passed_and_prefixed_variables() {
    let probe = fixture_library("probe", "probe-plugin");
    let dir = plugin_dir(&[probe]);
    let env_file = dir.path().join("vars.env");
    std::fs::write(&env_file, "FROM_FILE=1\nOVERRIDDEN=file\n").unwrap();
    let output = loader(
        dir.path(),
        &[
            "run",
            "probe",
            "echo_context",
            "--env",
            "OVERRIDDEN=flag",
            "--env-file",
            env_file.to_str().unwrap(),
            "--job-id",
            "j-7",
            "--checkpoint",
            "base=/models/base.pt",
            "--state-dir",
            dir.path().to_str().unwrap(),
            "--backend-wait",
            "0",
        ],
        &[
            ("SYNAPSE_HOST", "http://127.0.0.1:9/api/"),
            ("AWS_SECRET_ACCESS_KEY", "leak-me"),
        ],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let seen: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        seen["env"],
        json!({ "FROM_FILE": "1", "OVERRIDDEN": "flag", "SYNAPSE_HOST": "http://127.0.0.1:9/api/" })
    );
    assert_eq!(seen["job_id"], "j-7");
    assert_eq!(
        seen["checkpoint"],
        json!({ "category": "base", "path": "/models/base.pt" })
    );
    assert_eq!(seen["has_client"], true, "SYNAPSE_HOST configures the backend client");
    assert_eq!(seen["has_agent_client"], false);
}

#[test]
fn a_panicking_action_fails_cleanly_and_keeps_earlier_events() {
    let dir = plugin_dir(&[fixture_library("probe", "probe-plugin")]);
    let output = loader(dir.path(), &["run", "probe", "panic", "--events", "jsonl"], &[]);
    assert_eq!(exit_code(&output), 1, "{}", stderr(&output));
    let events = jsonl(&stdout(&output));
    assert_envelope(&events, "probe", "panic");
    assert!(events
        .iter()
        .any(|e| e["kind"] == "message" && e["data"]["content"] == "about to panic"));
    assert!(events
        .iter()
        .any(|e| e["kind"] == "event" && e["event"] == "before_failure"));
    let error = events.last().unwrap();
    assert_eq!(error["kind"], "error");
    assert_eq!(error["data"]["kind"], "panicked");
    assert!(
        error["data"]["message"]
            .as_str()
            .unwrap()
            .contains("probe panicked on purpose"),
        "{error}"
    );
    assert!(stderr(&output).contains("probe panicked on purpose"));
}

#[test]
fn a_failing_action_reports_its_message_and_details() {
    let dir = plugin_dir(&[fixture_library("probe", "probe-plugin")]);
    let output = loader(dir.path(), &["run", "probe", "fail", "--events", "jsonl"], &[]);
    assert_eq!(exit_code(&output), 1);
    let error = jsonl(&stdout(&output)).pop().unwrap();
    assert_eq!(error["data"]["kind"], "failed");
    assert_eq!(error["data"]["details"], json!({ "reason": "requested" }));
}

#[test]
fn conflicting_mode_flags_are_refused() {
    let dir = samples_dir();
    for flags in [["--isolate", "--in-process"], ["--in-process", "--isolate"]] {
        let mut args = vec!["run", "tabular-trainer", "train"];
        args.extend(flags);
        let output = loader(dir.path(), &args, &[]);
        assert_eq!(exit_code(&output), 2, "{}", stderr(&output));
        assert!(stderr(&output).contains("cannot be used with"), "{}", stderr(&output));
    }
}
