//! The compatibility promise, proven on real libraries built from the
//! fixture crates in tests/fixtures: a plugin built against an older minor
//! plugin-api runs in this loader; a newer minor loads and gets a clear
//! error from the one feature its host lacks; another major version, or a
//! layout changed without a version bump, is refused at load with the reason.
//!
//! The release rehearsal (tests/fixtures/api-1.5) is the next minor release
//! made by the book's recipe (docs/src/compatibility.md), with a loader built against it
//! (`future-host`): today's plugins must run in it, as they will in the
//! real next release. tests/fixtures/api-1.2 is the release before today's,
//! with a plugin and a loader (`past-host`) built against it: the 1.2 plugin
//! must run in today's loader, and today's plugins in the 1.2 loader.

use crate::common::*;
use serde_json::{json, Value};

fn listing(dir: &std::path::Path) -> Value {
    let output = loader(dir, &["list", "--json"], &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).expect("list --json prints JSON")
}

fn problem_for<'a>(listing: &'a Value, file: &str) -> &'a str {
    listing["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("{file} is not reported: {listing}"))["reason"]
        .as_str()
        .unwrap()
}

#[test]
fn an_older_minor_plugin_loads_and_runs() {
    let dir = plugin_dir(&[fixture_library("api-1.0", "legacy-plugin")]);
    let listing = listing(dir.path());
    let legacy = &listing["plugins"][0];
    assert_eq!(legacy["code"], "legacy");
    assert_eq!(legacy["plugin_api"], "1.0.0");

    for mode in ["--isolate", "--in-process"] {
        let output = loader(
            dir.path(),
            &[
                "run",
                "legacy",
                "greet",
                "--env",
                "REGION=eu",
                "--job-id",
                "j-1",
                "--events",
                "jsonl",
                mode,
            ],
            &[],
        );
        assert_eq!(exit_code(&output), 0, "{mode}: {}", stderr(&output));
        let events = jsonl(&stdout(&output));
        assert_envelope(&events, "legacy", "greet");
        assert!(events
            .iter()
            .any(|e| e["kind"] == "message" && e["data"]["content"] == "hello from plugin-api 1.0"));
        let progress = of_kind(&events, "progress");
        assert_eq!(progress.last().unwrap()["data"]["current"], 2);
        let result = events.last().unwrap();
        assert_eq!(result["kind"], "result");
        assert_eq!(
            result["data"],
            json!({ "greeting": "hello", "env": { "REGION": "eu" }, "job_id": "j-1" })
        );
    }
}

#[test]
fn a_plugin_of_the_previous_minor_loads_and_runs_with_its_entries_steps() {
    let dir = plugin_dir(&[fixture_library("api-1.2", "past-plugin")]);
    let listing = listing(dir.path());
    assert_eq!(listing["plugins"][0]["code"], "past");
    assert_eq!(listing["plugins"][0]["plugin_api"], "1.2.1");
    assert_eq!(
        listing["plugins"][0]["permissions"],
        json!({}),
        "a 1.2 plugin declares nothing"
    );

    for mode in ["--isolate", "--in-process"] {
        let output = loader(
            dir.path(),
            &[
                "run",
                "past",
                "greet",
                "--env",
                "REGION=eu",
                "--job-id",
                "j-2",
                "--events",
                "jsonl",
                mode,
            ],
            &[],
        );
        assert_eq!(exit_code(&output), 0, "{mode}: {}", stderr(&output));
        let events = jsonl(&stdout(&output));
        assert_envelope(&events, "past", "greet");
        assert_eq!(events[0]["event"], "run_start", "{mode}: the run's record comes first");
        let greeted: Vec<&Value> = of_kind(&events, "event").into_iter().skip(1).collect();
        assert_eq!(greeted.len(), 1, "{mode}: {events:?}");
        assert_eq!(
            (&greeted[0]["event"], &greeted[0]["step"], &greeted[0]["data"]),
            (&json!("greeted"), &json!("greet"), &json!({ "who": "world" })),
            "{mode}"
        );
        let message = of_kind(&events, "message")[0];
        assert_eq!(
            (&message["level"], &message["step"], &message["data"]["content"]),
            (&json!("success"), &json!("greet"), &json!("hello from plugin-api 1.2")),
            "{mode}"
        );
        let result = events.last().unwrap();
        assert_eq!(result["kind"], "result", "{mode}");
        assert_eq!(
            result["data"],
            json!({ "greeting": "hello", "env": { "REGION": "eu" }, "job_id": "j-2", "cancelled": false }),
            "{mode}"
        );
    }
    let output = loader(dir.path(), &["run", "past", "greet", "--dry-run"], &[]);
    assert_eq!(
        exit_code(&output),
        0,
        "a 1.2 plugin validates params: {}",
        stderr(&output)
    );
}

#[test]
fn root_module_fields_an_older_plugin_lacks_read_as_absent() {
    // `validate_params` arrived in 1.1: for a 1.0 plugin the loader must see
    // it as absent (and say so), not call whatever lies past the module.
    let dir = plugin_dir(&[fixture_library("api-1.0", "legacy-plugin")]);
    let output = loader(dir.path(), &["run", "legacy", "greet", "--dry-run"], &[]);
    assert_eq!(exit_code(&output), 2);
    let text = stderr(&output);
    assert!(
        text.contains("built against plugin-api 1.0.0") && text.contains("needs >= 1.1"),
        "{text}"
    );
}

#[test]
fn a_newer_minor_plugin_loads_and_the_missing_host_feature_fails_clearly() {
    let dir = plugin_dir(&[fixture_library("api-1.5", "future-plugin")]);
    let listing = listing(dir.path());
    assert_eq!(listing["plugins"][0]["plugin_api"], "1.5.0");

    for mode in ["--isolate", "--in-process"] {
        let output = loader(dir.path(), &["run", "future", "basic", mode], &[]);
        assert_eq!(exit_code(&output), 0, "{mode}: {}", stderr(&output));
        let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(result, json!({ "ok": true, "host_can_cancel": true }), "{mode}");

        let output = loader(dir.path(), &["run", "future", "report", "--events", "jsonl", mode], &[]);
        assert_eq!(exit_code(&output), 1, "{mode}: {}", stderr(&output));
        let error = jsonl(&stdout(&output)).pop().unwrap();
        assert_eq!(error["kind"], "error", "{mode}");
        let message = error["data"]["message"].as_str().unwrap();
        assert!(
            message.contains("report_artifact needs plugin-api >= 1.5"),
            "{mode}: {message}"
        );
    }
}

/// Runs the rehearsal's loader (built against plugin-api 1.5) on one
/// library, in a child process when `isolate`; its exit code and the JSON
/// lines it printed.
fn run_in_future_host(library: &std::path::Path, action: &str, params: &str, isolate: bool) -> (i32, Vec<Value>) {
    run_in_future_host_with(library, action, params, isolate, None)
}

/// [`run_in_future_host`], telling the plugin of `work_dir` if given.
fn run_in_future_host_with(
    library: &std::path::Path,
    action: &str,
    params: &str,
    isolate: bool,
    work_dir: Option<&std::path::Path>,
) -> (i32, Vec<Value>) {
    let host = build_fixture("api-1.5").join(format!("future-host{}", std::env::consts::EXE_SUFFIX));
    let dir = plugin_dir(&[library.to_owned()]);
    let copied = dir.path().join(library.file_name().unwrap());
    let work_dir_args = work_dir.map(|dir| [std::ffi::OsStr::new("--work-dir"), dir.as_os_str()]);
    let output = std::process::Command::new(host)
        .args(isolate.then_some("--isolate"))
        .args(work_dir_args.into_iter().flatten())
        .arg(&copied)
        .arg(action)
        .arg(params)
        .env_clear()
        .output()
        .expect("future-host runs");
    let events = jsonl(&stdout(&output));
    (exit_code(&output), events)
}

#[test]
fn todays_plugins_run_in_a_loader_of_the_next_minor_release() {
    let export_dir = tempfile::tempdir().unwrap();
    let export_params = json!({ "output_dir": export_dir.path().join("out"), "records": 10, "shard_size": 4, "format": "jsonl", "overwrite": true });
    let cases = [
        (
            sample_library("tabular-trainer"),
            "train",
            json!({ "epochs": 1, "samples": 100 }),
            "1.4.0",
        ),
        (sample_library("dataset-exporter"), "export", export_params, "1.4.0"),
        (fixture_library("api-1.2", "past-plugin"), "greet", json!({}), "1.2.1"),
        (fixture_library("api-1.0", "legacy-plugin"), "greet", json!({}), "1.0.0"),
    ];
    for isolate in [true, false] {
        for (library, action, params, declared) in &cases {
            let (code, events) = run_in_future_host(library, action, &params.to_string(), isolate);
            let name = format!(
                "{} (isolated: {isolate})",
                library.file_name().unwrap().to_string_lossy()
            );
            assert_eq!(code, 0, "{name} in the 1.5 loader: {events:?}");
            assert_eq!(
                events[0],
                json!({ "kind": "loaded", "plugin_api": declared, "host_api": "1.5.0", "health": null }),
                "{name}: a field the plugin's release lacks reads as absent"
            );
            assert!(
                !of_kind(&events, "progress").is_empty(),
                "{name} reported progress: {events:?}"
            );
            assert_eq!(events.last().unwrap()["kind"], "result", "{name}: {events:?}");
        }
    }
}

#[test]
fn todays_plugins_send_their_entries_with_step_and_level_to_a_newer_host() {
    let work = tempfile::tempdir().unwrap();
    let params = json!({ "epochs": 1, "work_dir": work.path() });
    for isolate in [true, false] {
        let (code, events) = run_in_future_host(
            &sample_library("workflow-trainer"),
            "train_pipeline",
            &params.to_string(),
            isolate,
        );
        assert_eq!(code, 0, "isolated: {isolate}: {events:?}");
        let entries: Vec<&Value> = of_kind(&events, "log_entry").into_iter().map(|e| &e["entry"]).collect();
        let started: Vec<&Value> = entries
            .iter()
            .filter(|e| e["kind"] == "event" && e["event"] == "step_start")
            .map(|e| &e["step"])
            .collect();
        assert_eq!(
            started,
            ["load_dataset", "split", "train", "evaluate", "export"],
            "isolated: {isolate}: {entries:?}"
        );
        assert!(
            of_kind(&events, "event").is_empty() && of_kind(&events, "message").is_empty(),
            "a 1.2 plugin uses log_entry, not the 1.1 calls, in a host that has it: {events:?}"
        );
    }
}

#[test]
fn todays_plugins_are_told_the_work_dir_by_a_newer_host() {
    let work_dir = tempfile::tempdir().unwrap();
    for isolate in [true, false] {
        let (code, events) = run_in_future_host_with(
            &fixture_library("probe", "probe-plugin"),
            "echo_context",
            "{}",
            isolate,
            Some(work_dir.path()),
        );
        assert_eq!(code, 0, "isolated: {isolate}: {events:?}");
        let result = events.last().unwrap();
        assert_eq!(
            result["data"]["work_dir"],
            json!(work_dir.path()),
            "isolated: {isolate}"
        );
    }
}

/// Runs the loader built against plugin-api 1.2 (tests/fixtures/api-1.2)
/// on one library with a temporary folder of its own as `TMPDIR`; its exit
/// code and the JSON lines it printed.
fn run_in_past_host(library: &std::path::Path, action: &str, params: &str, tmp: &std::path::Path) -> (i32, Vec<Value>) {
    let host = build_fixture("api-1.2").join(format!("past-host{}", std::env::consts::EXE_SUFFIX));
    let dir = plugin_dir(&[library.to_owned()]);
    let copied = dir.path().join(library.file_name().unwrap());
    let output = std::process::Command::new(host)
        .arg(&copied)
        .arg(action)
        .arg(params)
        .env_clear()
        .env("TMPDIR", tmp)
        .output()
        .expect("past-host runs");
    (exit_code(&output), jsonl(&stdout(&output)))
}

#[test]
fn todays_plugins_run_in_a_loader_of_the_previous_minor_release_without_a_work_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            sample_library("tabular-trainer"),
            "train",
            json!({ "epochs": 1, "samples": 100 }),
        ),
        (sample_library("dataset-exporter"), "export", json!({ "records": 3 })),
        (
            sample_library("workflow-trainer"),
            "train_pipeline",
            json!({ "epochs": 1 }),
        ),
        (fixture_library("probe", "probe-plugin"), "echo_context", json!({})),
    ];
    for (library, action, params) in &cases {
        let name = library.file_name().unwrap().to_string_lossy().into_owned();
        let (code, events) = run_in_past_host(library, action, &params.to_string(), tmp.path());
        assert_eq!(code, 0, "{name} in the 1.2 loader: {events:?}");
        assert_eq!(
            events[0],
            json!({ "kind": "loaded", "plugin_api": "1.4.0", "host_api": "1.2.1" }),
            "{name}"
        );
        let result = events.last().unwrap();
        assert_eq!(result["kind"], "result", "{name}: {events:?}");
        match *action {
            "echo_context" => assert_eq!(result["data"]["work_dir"], Value::Null, "a 1.2 host has no work dir"),
            "export" => {
                let written = std::path::PathBuf::from(result["data"]["output_dir"].as_str().unwrap());
                assert!(
                    written.starts_with(tmp.path()) && written.join("manifest.json").is_file(),
                    "without a work dir the export goes to the temp folder: {}",
                    written.display()
                );
            }
            "train_pipeline" => {
                let model = result["data"]["model_path"].as_str().unwrap();
                assert!(model.starts_with(&*tmp.path().to_string_lossy()), "{model}");
            }
            _ => assert!(!of_kind(&events, "progress").is_empty(), "{name}: {events:?}"),
        }
    }
}

#[test]
fn the_next_minor_release_runs_its_own_plugins_new_features() {
    let (code, events) = run_in_future_host(&fixture_library("api-1.5", "future-plugin"), "report", "{}", true);
    assert_eq!(code, 0, "{events:?}");
    assert_eq!(events[0]["health"], "ok", "{events:?}");
    assert_eq!(events[1], json!({ "kind": "artifact", "path": "model.bin" }));
    assert_eq!(events[2]["data"], json!({ "reported": true }));
}

#[test]
fn another_major_version_is_refused_with_both_versions() {
    let dir = plugin_dir(&[
        fixture_library("api-2.0", "major-plugin"),
        sample_library("tabular-trainer"),
    ]);
    let listing = listing(dir.path());
    let reason = problem_for(&listing, &library_file_name("major-plugin"));
    assert!(
        reason.contains("plugin-api 2.0.0") && reason.contains("plugin-api 1.4.0"),
        "{reason}"
    );
    assert_eq!(
        listing["plugins"].as_array().unwrap().len(),
        1,
        "the valid plugin beside it still loads"
    );
}

#[test]
fn a_layout_changed_without_a_version_bump_is_refused_with_the_reason() {
    let dir = plugin_dir(&[
        fixture_library("api-1.0-changed", "changed-plugin"),
        sample_library("tabular-trainer"),
    ]);
    let listing = listing(dir.path());
    let reason = problem_for(&listing, &library_file_name("changed-plugin"));
    assert!(
        reason.contains("built against plugin-api 1.0.0, older than this loader's plugin-api 1.4.0")
            && reason.contains("its layout is not the one plugin-api 1.0 released"),
        "{reason}"
    );
    assert!(
        reason.contains("at run_action (parameter 1).vtable.set_progress (parameter 2)")
            && reason.contains("expected u64, found u32"),
        "{reason}"
    );
    assert!(
        reason.lines().count() == 1,
        "the reason is one line, not abi_stable's full dump: {reason}"
    );
    assert_sample_trains(dir.path());
}

#[test]
fn old_new_and_current_plugins_load_side_by_side() {
    let dir = plugin_dir(&[
        fixture_library("api-1.0", "legacy-plugin"),
        fixture_library("api-1.2", "past-plugin"),
        fixture_library("api-1.5", "future-plugin"),
        fixture_library("probe", "probe-plugin"),
    ]);
    let listing = listing(dir.path());
    let versions: Vec<(&str, &str)> = listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["code"].as_str().unwrap(), p["plugin_api"].as_str().unwrap()))
        .collect();
    assert_eq!(
        versions,
        vec![
            ("future", "1.5.0"),
            ("legacy", "1.0.0"),
            ("past", "1.2.1"),
            ("probe", "1.4.0")
        ]
    );
    for (plugin, action) in [
        ("legacy", "greet"),
        ("past", "greet"),
        ("future", "basic"),
        ("probe", "echo_context"),
    ] {
        let output = loader(dir.path(), &["run", plugin, action, "--in-process", "--quiet"], &[]);
        assert_eq!(exit_code(&output), 0, "{plugin} {action}: {}", stderr(&output));
    }
}
