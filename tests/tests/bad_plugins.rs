//! The loader cannot be taken down by a bad file or a bad action: every
//! file that is not a plugin, or that crashes whatever loads it, is reported
//! with its name and reason while the valid plugins beside it load and run, and an action that panics, fails,
//! aborts, segfaults or hangs becomes a reported failure with every event it
//! reported before kept in the stream.

use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// A plugin folder with one valid sample plugin and every kind of bad file.
fn folder_of_bad_files() -> tempfile::TempDir {
    let dir = plugin_dir(&[
        sample_library("tabular-trainer"),
        fixture_library("probe", "plain-cdylib"),
        fixture_library("probe", "crash-on-load"),
    ]);
    let path = dir.path();
    let name = |stem: &str| path.join(library_file_name(stem));
    std::fs::write(name("text"), "# not a library, just text with a library's extension\n").unwrap();
    std::fs::write(name("empty"), b"").unwrap();
    std::fs::create_dir(name("folder")).unwrap();
    let real = std::fs::read(sample_library("dataset-exporter")).unwrap();
    std::fs::write(name("truncated"), &real[..real.len() / 2]).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/nonexistent/plugin.so", name("dangling")).unwrap();
        let unreadable = name("unreadable");
        std::fs::write(&unreadable, &real).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    dir
}

fn reason_of<'a>(problems: &'a [Value], stem: &str) -> &'a str {
    let file = library_file_name(stem);
    problems
        .iter()
        .find(|p| {
            Path::new(p["path"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                == file
        })
        .unwrap_or_else(|| panic!("{file} is not reported: {problems:?}"))["reason"]
        .as_str()
        .unwrap()
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn every_bad_file_is_reported_and_the_valid_plugin_still_runs() {
    let dir = folder_of_bad_files();
    let output = loader(dir.path(), &["list", "--json"], &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let listing: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let problems = listing["problems"].as_array().unwrap();

    assert!(reason_of(problems, "text").contains("no ELF header"));
    assert!(reason_of(problems, "empty").contains("empty file"));
    assert!(reason_of(problems, "folder").contains("directory"));
    assert!(reason_of(problems, "truncated").contains("truncated"));
    assert!(reason_of(problems, "plain-cdylib").contains("not a plugin: the library exports no abi_stable root module"));
    assert!(reason_of(problems, "crash-on-load")
        .contains("loading this library crashed the process, which was killed by signal 6 (SIGABRT)"));
    #[cfg(unix)]
    {
        assert!(reason_of(problems, "dangling").contains("cannot read the file"));
        if !running_as_root() {
            assert!(reason_of(problems, "unreadable").contains("cannot read the file"));
        }
    }

    let plugins = listing["plugins"].as_array().unwrap();
    let codes: Vec<&str> = plugins.iter().map(|p| p["code"].as_str().unwrap()).collect();
    // As root the unreadable copy is readable: it is then a second copy of
    // the exporter, which is fine. Everything else must be refused.
    assert!(codes.contains(&"tabular-trainer"), "{codes:?}");
    assert!(
        codes
            .iter()
            .all(|c| *c == "tabular-trainer" || *c == "dataset-exporter"),
        "{codes:?}"
    );

    assert_sample_trains(dir.path());
}

fn probe_dir() -> tempfile::TempDir {
    plugin_dir(&[fixture_library("probe", "probe-plugin")])
}

/// Runs a probe action and returns (exit code, events, stderr).
fn run_probe(action: &str, extra: &[&str]) -> (i32, Vec<Value>, String) {
    let dir = probe_dir();
    let mut args = vec!["run", "probe", action, "--events", "jsonl"];
    args.extend_from_slice(extra);
    let output = loader(dir.path(), &args, &[]);
    (exit_code(&output), jsonl(&stdout(&output)), stderr(&output))
}

fn assert_earlier_events_kept(events: &[Value], what: &str) {
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "message" && e["data"]["content"] == format!("about to {what}")),
        "the message before the failure was lost: {events:?}"
    );
    assert!(
        events.iter().any(|e| e["event"] == "before_failure"),
        "the event before the failure was lost"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "progress" && e["step"] == "probe"),
        "the progress before the failure was lost"
    );
}

fn final_error(events: &[Value]) -> &Value {
    let last = events.last().expect("at least one event");
    assert_eq!(last["kind"], "error", "the stream ends with the error: {last}");
    &last["data"]
}

#[test]
fn a_panic_is_a_failed_action_in_both_modes() {
    for mode in ["--isolate", "--in-process"] {
        let (code, events, _) = run_probe("panic", &[mode]);
        assert_eq!(code, 1, "{mode}");
        assert_earlier_events_kept(&events, "panic");
        let error = final_error(&events);
        assert_eq!(error["kind"], "panicked");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("probe panicked on purpose (at "),
            "{error}"
        );
    }
}

#[test]
fn a_returned_error_keeps_its_details() {
    let (code, events, _) = run_probe("fail", &[]);
    assert_eq!(code, 1);
    assert_earlier_events_kept(&events, "fail");
    assert_eq!(final_error(&events)["details"]["reason"], "requested");
}

#[test]
fn abort_is_reported_with_its_signal() {
    let (code, events, _) = run_probe("abort", &[]);
    assert_eq!(code, 1);
    assert_earlier_events_kept(&events, "abort");
    let error = final_error(&events);
    assert_eq!(error["kind"], "crashed");
    assert!(error["message"].as_str().unwrap().contains("SIGABRT"), "{error}");
}

#[test]
fn a_segfault_is_reported_with_its_signal() {
    let (code, events, _) = run_probe("segfault", &[]);
    assert_eq!(code, 1);
    assert_earlier_events_kept(&events, "segfault");
    let error = final_error(&events);
    assert_eq!(error["kind"], "crashed");
    assert!(
        error["message"].as_str().unwrap().contains("signal 11 (SIGSEGV)"),
        "{error}"
    );
}

#[test]
fn an_action_that_never_returns_is_killed_after_the_grace_period() {
    let started = std::time::Instant::now();
    let (code, events, _) = run_probe("hang", &["--timeout", "1", "--grace", "0.5"]);
    assert_eq!(code, 1);
    assert_earlier_events_kept(&events, "hang");
    let error = final_error(&events);
    assert_eq!(error["kind"], "timed_out");
    assert!(error["message"].as_str().unwrap().contains("was killed"), "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the loader did not wait for ever"
    );
}

#[test]
fn a_cancellable_action_stops_when_asked() {
    for mode in ["--isolate", "--in-process"] {
        let (code, events, _) = run_probe("wait_for_cancel", &["--timeout", "0.3", mode]);
        assert_eq!(code, 1, "{mode}");
        assert!(
            events
                .iter()
                .any(|e| e["kind"] == "message" && e["data"]["content"] == "stopping: cancelled"),
            "{mode}: the action saw is_cancelled() turn true: {events:?}"
        );
        assert_eq!(final_error(&events)["kind"], "timed_out", "{mode}");
    }
}

#[test]
fn an_in_process_action_that_hangs_is_abandoned_after_the_grace_period() {
    let (code, events, _) = run_probe("hang", &["--timeout", "0.3", "--grace", "0.3", "--in-process"]);
    assert_eq!(code, 1);
    assert_eq!(final_error(&events)["kind"], "timed_out");
}

#[cfg(unix)]
#[test]
fn ctrl_c_asks_the_action_to_cancel() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = probe_dir();
    let mut child = Command::new(loader_bin())
        .args([
            "--plugins",
            dir.path().to_str().unwrap(),
            "run",
            "probe",
            "wait_for_cancel",
            "--events",
            "jsonl",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut events = Vec::new();
    // Interrupt once the action is running (its first event has arrived).
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let started = event["kind"] == "message";
        events.push(event);
        if started {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    events.extend(lines.map(|line| serde_json::from_str::<Value>(&line.unwrap()).unwrap()));
    assert_eq!(child.wait().unwrap().code(), Some(1));
    assert!(
        events.iter().any(|e| e["data"]["content"] == "stopping: cancelled"),
        "{events:?}"
    );
    assert_eq!(final_error(&events)["kind"], "cancelled");
}
