//! Shared helpers of the end-to-end tests: build the real binaries and
//! plugin libraries once per test process, lay out plugin folders, run the
//! `loader` binary and read its JSONL event stream.

#![allow(dead_code)]

pub mod browser;
pub mod procs;
pub mod ray;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The sample plugins of the workspace, by crate name.
pub const SAMPLE_PLUGINS: &[&str] = &["tabular-trainer", "dataset-exporter", "workflow-trainer"];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where the fixture workspaces under tests/fixtures are built.
pub fn fixture_target_dir() -> PathBuf {
    target_dir().join("fixtures")
}

fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(workspace_root());
    command
}

fn run_cargo(mut command: Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {what}: {e}"));
    assert!(
        output.status.success(),
        "building {what} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds the loader and the sample plugins (debug), once per process.
pub fn build_workspace() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut command = cargo();
        command.args(["build", "-p", "loader"]);
        for plugin in SAMPLE_PLUGINS {
            command.args(["-p", plugin]);
        }
        run_cargo(command, "the loader and the sample plugins");
    });
}

/// Builds a fixture workspace under tests/fixtures (once per process and
/// fixture) and returns the folder its libraries are in.
pub fn build_fixture(name: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let mut command = cargo();
        command
            .arg("build")
            .arg("--manifest-path")
            .arg(workspace_root().join("tests/fixtures").join(name).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(fixture_target_dir());
        run_cargo(command, &format!("the fixture {name}"));
        built.push(name.to_owned());
    }
    fixture_target_dir().join("debug")
}

pub fn loader_bin() -> PathBuf {
    build_workspace();
    target_dir()
        .join("debug")
        .join(format!("loader{}", std::env::consts::EXE_SUFFIX))
}

/// The file name of a library built from `crate_name` on this platform.
pub fn library_file_name(crate_name: &str) -> String {
    let stem = crate_name.replace('-', "_");
    format!("{}{stem}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX)
}

/// The built library of a sample plugin.
pub fn sample_library(crate_name: &str) -> PathBuf {
    build_workspace();
    target_dir().join("debug").join(library_file_name(crate_name))
}

/// The built library of a fixture plugin.
pub fn fixture_library(fixture: &str, crate_name: &str) -> PathBuf {
    build_fixture(fixture).join(library_file_name(crate_name))
}

/// A fresh plugin folder holding copies of the given libraries.
pub fn plugin_dir(libraries: &[PathBuf]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for library in libraries {
        let name = library.file_name().expect("a library file name");
        std::fs::copy(library, dir.path().join(name)).unwrap_or_else(|e| panic!("copy {}: {e}", library.display()));
    }
    dir
}

/// A plugin folder with every sample plugin.
pub fn samples_dir() -> tempfile::TempDir {
    let libraries: Vec<PathBuf> = SAMPLE_PLUGINS.iter().map(|p| sample_library(p)).collect();
    plugin_dir(&libraries)
}

/// Runs `loader --plugins DIR ARGS...` with a clean environment (only PATH
/// and what `env` adds).
pub fn loader(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(loader_bin());
    command.env_clear().arg("--plugins").arg(dir).args(args);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the loader runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every line of a JSONL stream, parsed; panics on a line that is not JSON.
pub fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// The events of a stream with the given kind.
pub fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

/// Checks the fields every event line carries.
pub fn assert_envelope(events: &[Value], plugin: &str, action: &str) {
    for event in events {
        for field in [
            "time",
            "timestamp",
            "job_id",
            "plugin",
            "action",
            "kind",
            "event",
            "step",
            "level",
            "file",
            "data",
        ] {
            assert!(event.get(field).is_some(), "event without {field}: {event}");
        }
        assert_eq!(event["plugin"], plugin, "{event}");
        assert_eq!(event["action"], action, "{event}");
    }
}

pub fn exit_code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// Runs a short `tabular-trainer train` from `dir` and asserts it succeeds:
/// the valid plugin beside whatever a test put in the folder still works.
pub fn assert_sample_trains(dir: &Path) {
    let output = loader(
        dir,
        &[
            "run",
            "tabular-trainer",
            "train",
            "--params",
            r#"{"epochs": 1, "samples": 100}"#,
            "--quiet",
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
}

/// The backend journals kept in a `--state-dir`.
pub fn list_spool(state_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(state_dir.join("spool"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The counts of a command's `manifest cache: C file(s) described by the
/// cache, L loaded (H of them in this process)` debug line: `[C, L, H]`.
pub fn cache_report(log: &str) -> [usize; 3] {
    let line = log
        .lines()
        .find_map(|l| l.split_once("manifest cache: ").map(|(_, rest)| rest.to_owned()))
        .unwrap_or_else(|| panic!("no cache report in {log}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    [numbers[0], numbers[1], numbers[2]]
}
