//! The run's work directory (`RunSettings::work_dir`) reaches the plugin as
//! `ctx.work_dir()` (plugin-api 1.3), whether the action runs in this
//! process or in an isolated child, driven through the loader library as
//! the code that creates the directory drives it. The samples write their
//! output there when told of one.

use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use loader::events::MemorySink;
use loader::find::discovery::Discovery;
use loader::isolate::{run_isolated, ChildCommand, Interrupts};
use loader::run::host::RunSettings;
use loader::run::runner::run_action;
use serde_json::{json, Value};

fn settings_with(work_dir: &Path) -> RunSettings {
    RunSettings {
        work_dir: Some(work_dir.to_owned()),
        ..RunSettings::default()
    }
}

/// Runs `action` of `plugin` from `discovery` with `work_dir`, in this
/// process or in a child of the loader binary; the result.
fn run(discovery: &Discovery, plugin: &str, action: &str, params: &str, work_dir: &Path, isolated: bool) -> Value {
    let plugin = discovery.find(plugin).expect("the plugin is in the folder");
    let sink = Arc::new(MemorySink::default());
    let settings = settings_with(work_dir);
    let result = if isolated {
        let child = ChildCommand {
            program: loader_bin(),
            args: vec!["__child".to_owned()],
        };
        let code = &plugin.manifest.code;
        run_isolated(
            &child,
            &plugin.path,
            code,
            action,
            params,
            settings,
            None,
            &Interrupts::default(),
            sink,
        )
    } else {
        run_action(plugin, action, params, settings, None, sink)
    };
    result.unwrap_or_else(|failure| panic!("{action} (isolated: {isolated}) failed: {failure:?}"))
}

#[test]
fn the_work_dir_of_the_run_settings_reaches_the_plugin_in_process_and_isolated() {
    let dir = plugin_dir(&[fixture_library("probe", "probe-plugin")]);
    let discovery = Discovery::scan(dir.path()).expect("a readable folder");
    for isolated in [false, true] {
        let work_dir = tempfile::tempdir().unwrap();
        let seen = run(&discovery, "probe", "echo_context", "{}", work_dir.path(), isolated);
        assert_eq!(seen["work_dir"], json!(work_dir.path()), "isolated: {isolated}");
    }
    let sink = Arc::new(MemorySink::default());
    let probe = discovery.find("probe").unwrap();
    let seen = run_action(probe, "echo_context", "{}", RunSettings::default(), None, sink).unwrap();
    assert_eq!(
        seen["work_dir"],
        Value::Null,
        "no work dir unless the settings give one"
    );
}

#[test]
fn the_samples_write_into_the_work_dir_in_process_and_isolated() {
    let dir = samples_dir();
    let discovery = Discovery::scan(dir.path()).expect("a readable folder");
    for isolated in [false, true] {
        let work_dir = tempfile::tempdir().unwrap();
        let exported = run(
            &discovery,
            "dataset-exporter",
            "export",
            r#"{"records": 5}"#,
            work_dir.path(),
            isolated,
        );
        let export_dir = work_dir.path().join("export");
        assert_eq!(exported["output_dir"], json!(export_dir), "isolated: {isolated}");
        assert!(export_dir.join("manifest.json").is_file(), "isolated: {isolated}");

        let trained = run(
            &discovery,
            "workflow-trainer",
            "train_pipeline",
            r#"{"epochs": 1}"#,
            work_dir.path(),
            isolated,
        );
        assert_eq!(
            trained["model_path"],
            json!(work_dir.path().join("model.json")),
            "isolated: {isolated}"
        );
        assert!(work_dir.path().join("dataset.csv").is_file(), "isolated: {isolated}");
    }
}
