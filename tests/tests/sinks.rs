//! What a run writes and reads, tried the way a careless or hostile plugin
//! author and user would: the metrics stream stays linear, input files that
//! are not regular files or are too big are refused at once, a failing or
//! shared events destination is an error, calls from threads an action left
//! running never follow its result, an `exit()` inside an in-process action
//! is a failure, and terminal output never interprets control characters
//! while the JSONL stream keeps them exactly. Every process started here is
//! waited for or killed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// What the flood fixture reports as hostile text (see its source).
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\rspoofed\0line\u{202e}txt.exe";

const MODES: [&str; 2] = ["--in-process", "--isolate"];

fn flood_dir() -> tempfile::TempDir {
    plugin_dir(&[fixture_library("flood", "flood-plugin")])
}

fn loader_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(loader_bin());
    command.env_clear().arg("--plugins").arg(dir).args(args);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
}

/// Waits for `child` at most `limit`; kills it (and fails) if it is slower.
fn wait_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait for the loader").is_some() {
            return child.wait_with_output().expect("the loader's output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}, killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the loader with piped output, killed if it takes over `limit`.
fn run_within(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let child = loader_command(dir, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the loader starts");
    wait_within(child, limit, &format!("loader {args:?}"))
}

/// A child killed and waited for when dropped, even by a failing test,
/// with the processes it started (an isolated run's child, which lives in a
/// process group of its own).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let descendants = descendants_of(self.0.id());
        let _ = self.0.kill();
        let _ = self.0.wait();
        for pid in descendants {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

/// The processes below `pid`, from /proc (children of every thread).
fn descendants_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten();
    for task in tasks {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            found.push(child);
            found.extend(descendants_of(child));
        }
    }
    found
}

/// The complete JSON lines of an events file: up to the NUL padding a run
/// that did not finish leaves after them, and without a last line still
/// being written.
fn events_in(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let written = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let complete = bytes[..written].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    jsonl(std::str::from_utf8(&bytes[..complete]).expect("UTF-8 events"))
}

#[test]
fn metrics_events_grow_linearly_with_distinct_keys() {
    let dir = flood_dir();
    for mode in MODES {
        let events_file = dir.path().join(format!("metrics{mode}.jsonl"));
        let events_arg = events_file.to_str().unwrap();
        let output = loader(
            dir.path(),
            &[
                "run",
                "flood",
                "metrics",
                "--params",
                r#"{"count": 10000}"#,
                "--events",
                events_arg,
                "-q",
                mode,
            ],
            &[],
        );
        assert_eq!(exit_code(&output), 0, "{mode}: {}", stderr(&output));
        let size = std::fs::metadata(&events_file).unwrap().len();
        // 10,000 lines of about 250 bytes, plus the summary; the whole
        // merged map on every line would be about 750 MB.
        assert!(size < 4_000_000, "{mode}: {size} bytes for 10,000 keys");
        let events = events_in(&events_file);
        let metrics = of_kind(&events, "metrics");
        assert!(
            metrics
                .iter()
                .filter(|m| m["event"] == "metrics")
                .all(|m| m["data"].as_object().unwrap().len() == 1),
            "{mode}: every metrics event carries its call's key only"
        );
        let summary: Vec<_> = metrics.iter().filter(|m| m["event"] == "metrics_summary").collect();
        assert_eq!(summary.len(), 1, "{mode}");
        assert_eq!(summary[0]["step"], "keys");
        assert_eq!(
            summary[0]["data"].as_object().unwrap().len(),
            10_000,
            "{mode}: the merged view"
        );
        assert_eq!(summary[0]["data"]["key_9999"], 9999);
        assert_eq!(events.last().unwrap()["kind"], "result", "{mode}");
    }
}

/// Input files that cannot be read safely, each with what the error says.
fn bad_input_files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    let big = dir.join("big.json");
    std::fs::write(&big, format!("[{}0]", "0,".repeat(1_500_000))).unwrap();
    vec![
        (fifo, "is a FIFO (named pipe), not a regular file"),
        (
            PathBuf::from("/dev/urandom"),
            "is a character device, not a regular file",
        ),
        (dir.to_owned(), "is a directory, not a regular file"),
        (big, "is larger than the limit of"),
    ]
}

#[test]
fn params_files_that_are_not_regular_or_too_big_are_refused_at_once() {
    let dir = flood_dir();
    let inputs = tempfile::tempdir().unwrap();
    for (path, reason) in bad_input_files(inputs.path()) {
        let arg = format!("@{}", path.display());
        let output = run_within(
            dir.path(),
            &[
                "run",
                "flood",
                "count_items",
                "--params",
                &arg,
                "--max-params-bytes",
                "1000000",
            ],
            Duration::from_secs(20),
        );
        let err = stderr(&output);
        assert_eq!(exit_code(&output), 2, "{}: {err}", path.display());
        assert!(
            err.contains(&format!("the params file `{}` {reason}", path.display())),
            "{}: {err}",
            path.display()
        );
    }
}

#[test]
fn a_big_params_file_within_the_limit_reaches_the_action() {
    let dir = flood_dir();
    let inputs = tempfile::tempdir().unwrap();
    let params = inputs.path().join("items.json");
    std::fs::write(&params, format!("{{\"items\": [{}0]}}", "7,".repeat(200_000))).unwrap();
    let arg = format!("@{}", params.display());
    for mode in MODES {
        let output = loader(
            dir.path(),
            &["run", "flood", "count_items", "--params", &arg, "-q", mode],
            &[],
        );
        assert_eq!(exit_code(&output), 0, "{mode}: {}", stderr(&output));
        let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(result["items"], 200_001, "{mode}");
    }
}

#[test]
fn env_files_that_are_not_regular_or_too_big_are_refused_at_once() {
    let dir = flood_dir();
    let inputs = tempfile::tempdir().unwrap();
    for (path, reason) in bad_input_files(inputs.path()) {
        let path_arg = path.to_str().unwrap();
        let output = run_within(
            dir.path(),
            &[
                "run",
                "flood",
                "log",
                "--params",
                r#"{"count": 1}"#,
                "--env-file",
                path_arg,
            ],
            Duration::from_secs(20),
        );
        let err = stderr(&output);
        assert_eq!(exit_code(&output), 2, "{path_arg}: {err}");
        assert!(
            err.contains(&format!("the env file `{path_arg}` {reason}")),
            "{path_arg}: {err}"
        );
    }
}

#[test]
fn an_events_destination_that_fails_is_an_error_with_exit_4() {
    let dir = flood_dir();
    for mode in MODES {
        let output = loader(
            dir.path(),
            &[
                "run",
                "flood",
                "log",
                "--params",
                r#"{"count": 100}"#,
                "--events",
                "/dev/full",
                "-q",
                mode,
            ],
            &[],
        );
        let err = stderr(&output);
        assert_eq!(exit_code(&output), 4, "{mode}: {err}");
        assert!(
            err.contains("events could not be written to /dev/full: No space left on device"),
            "{mode}: {err}"
        );

        let missing = "/nonexistent-loader-dir/events.jsonl";
        let output = loader(
            dir.path(),
            &[
                "run",
                "flood",
                "log",
                "--params",
                r#"{"count": 1}"#,
                "--events",
                missing,
                "-q",
                mode,
            ],
            &[],
        );
        let err = stderr(&output);
        assert_eq!(exit_code(&output), 4, "{mode}: {err}");
        assert!(
            err.contains(&format!("cannot open the events file `{missing}`")),
            "{mode}: {err}"
        );
    }
}

/// `--events jsonl | head`: a reader of stdout that goes away is not a lost
/// stream (the user stopped reading), as for `run | head`: the run ends
/// quietly with its own exit code. A file that cannot be written stays an
/// error (exit 4, below).
#[test]
fn a_closed_events_stdout_ends_the_run_quietly_as_run_does() {
    let dir = flood_dir();
    for mode in MODES {
        let mut child = loader_command(
            dir.path(),
            &[
                "run",
                "flood",
                "log",
                "--params",
                r#"{"count": 100000}"#,
                "--events",
                "jsonl",
                "-q",
                mode,
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the loader starts");
        drop(child.stdout.take());
        let output = wait_within(child, Duration::from_secs(60), mode);
        let err = stderr(&output);
        assert_eq!(exit_code(&output), 0, "{mode}: {err}");
        assert_eq!(err, "", "{mode} printed to stderr");
    }
}

#[test]
fn a_second_run_on_the_same_events_file_is_refused_and_the_first_keeps_its_events() {
    let dir = flood_dir();
    for mode in MODES {
        let events_file = dir.path().join(format!("shared{mode}.jsonl"));
        let events_arg = events_file.to_str().unwrap();
        // The isolated run ends itself (its child is killed after the
        // timeout); the in-process one, which has no child, is killed below.
        let first = KillOnDrop(
            loader_command(
                dir.path(),
                &[
                    "run",
                    "flood",
                    "log",
                    "--params",
                    r#"{"count": 100000000}"#,
                    "--events",
                    events_arg,
                    "-q",
                    "--timeout",
                    "4",
                    "--grace",
                    "0.5",
                    mode,
                ],
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the first run starts"),
        );
        let started = Instant::now();
        while !events_file.exists() || events_in(&events_file).len() < 10 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{mode}: the first run wrote nothing"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let second = loader(
            dir.path(),
            &[
                "run",
                "flood",
                "log",
                "--params",
                r#"{"count": 5}"#,
                "--events",
                events_arg,
                "-q",
                mode,
            ],
            &[],
        );
        let mut first = first;
        if mode == "--in-process" {
            let _ = first.0.kill();
        }
        let _ = first.0.wait();
        drop(first);
        let err = stderr(&second);
        assert_eq!(exit_code(&second), 4, "{mode}: {err}");
        assert!(
            err.contains(&format!(
                "the events file `{events_arg}` is being written by another run"
            )),
            "{mode}: {err}"
        );
        // The first run's lines are whole and its own: with --in-process, up
        // to its kill (the guarantee of the mapped file); isolated, up to its
        // timeout.
        let events = events_in(&events_file);
        assert!(events.len() >= 10, "{mode}");
        let ticks: Vec<u64> = events
            .iter()
            .filter(|e| e["kind"] != "error" && e["event"] != "run_start")
            .map(|e| {
                assert_eq!(e["event"], "tick", "{mode}: only the first run's events");
                e["data"]["i"].as_u64().unwrap()
            })
            .collect();
        assert!(
            ticks.windows(2).all(|w| w[1] == w[0] + 1),
            "{mode}: in order, none missing"
        );
    }
}

#[test]
fn calls_from_a_thread_left_running_never_follow_the_result_and_are_counted() {
    let dir = flood_dir();
    for mode in MODES {
        let mut dropped = 0;
        for round in 0..20 {
            let events_file = dir.path().join(format!("late{mode}{round}.jsonl"));
            let output = loader(
                dir.path(),
                &[
                    "run",
                    "flood",
                    "late_thread",
                    "--params",
                    r#"{"count": 100000000}"#,
                    "--events",
                    events_file.to_str().unwrap(),
                    "-q",
                    mode,
                ],
                &[],
            );
            assert_eq!(exit_code(&output), 0, "{mode} round {round}: {}", stderr(&output));
            let events = events_in(&events_file);
            let last = events.last().expect("events");
            assert_eq!(
                last["kind"], "result",
                "{mode} round {round}: an event after the result"
            );
            assert_eq!(of_kind(&events, "result").len(), 1, "{mode} round {round}");
            dropped += last["dropped_late_calls"]
                .as_u64()
                .unwrap_or_else(|| panic!("{mode}: no dropped_late_calls in {last}"));
        }
        if mode == "--in-process" {
            assert!(dropped > 0, "{mode}: 20 runs of a thread logging on, none counted");
        }
    }
}

/// An in-process action calling `exit()` is reported by the loader's exit
/// hook; an isolated one, by the child's copy of the same hook (and, were it
/// missing, by the child ending without a result).
#[test]
fn exit_inside_an_action_is_a_failure_with_its_events() {
    let dir = flood_dir();
    let tmp = tempfile::tempdir().unwrap();
    for mode in MODES {
        for code in ["0", "3"] {
            let events_file = dir.path().join(format!("exit{code}{mode}.jsonl"));
            let params = format!(r#"{{"code": {code}}}"#);
            let output = loader(
                dir.path(),
                &[
                    "run",
                    "flood",
                    "exit_mid_action",
                    "--params",
                    &params,
                    "--events",
                    events_file.to_str().unwrap(),
                    mode,
                ],
                &[("TMPDIR", tmp.path().to_str().unwrap())],
            );
            let err = stderr(&output);
            assert_eq!(exit_code(&output), 1, "{mode} exit({code}): {err}");
            let left: Vec<_> = std::fs::read_dir(tmp.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            assert!(left.is_empty(), "{mode} exit({code}) left its work directory: {left:?}");
            let events = std::fs::read_to_string(&events_file).unwrap();
            assert!(!events.contains('\0'), "{mode}: the file is cut to its lines");
            let events = jsonl(&events);
            assert_eq!(events[0]["event"], "run_start", "{mode}");
            assert_eq!(events[1]["event"], "before_exit", "{mode}");
            let last = events.last().unwrap();
            assert_eq!(last["kind"], "error", "{mode}: {last}");
            if mode == "--in-process" {
                assert_eq!(last["data"]["kind"], "exited", "{last}");
                assert!(err.contains("(exited)"), "exit({code}): {err}");
            }
        }
    }
}

#[test]
fn terminal_output_shows_control_characters_escaped_and_jsonl_keeps_them() {
    let dir = flood_dir();
    for mode in MODES {
        let events_file = dir.path().join(format!("hostile{mode}.jsonl"));
        let output = loader(
            dir.path(),
            &[
                "run",
                "flood",
                "control_characters",
                "--events",
                events_file.to_str().unwrap(),
                "-v",
                mode,
            ],
            &[],
        );
        assert_eq!(exit_code(&output), 1, "{mode}");
        let raw = &output.stderr;
        for byte in [0x1b, b'\r', 0, 0x07] {
            assert!(
                !raw.contains(&byte),
                "{mode}: byte {byte:#x} reached stderr: {:?}",
                stderr(&output)
            );
        }
        let err = stderr(&output);
        assert!(!err.contains('\u{202e}'), "{mode}: {err}");
        let shown = r"\x1b]0;pwned\x07\x1b[2J\rspoofed\0line\u{202e}txt.exe";
        assert!(err.contains(&format!("WARNING {shown}")), "{mode}: {err}");
        assert!(err.contains(&format!("(file: {shown})")), "{mode}: {err}");
        // The run's error is printed once, by the CLI, in its `error:` style.
        assert!(err.contains(&format!("error: {shown}")), "{mode}: {err}");

        let events = events_in(&events_file);
        let message = of_kind(&events, "message")[0];
        assert_eq!(
            message["data"]["content"], HOSTILE,
            "{mode}: JSONL keeps the text exactly"
        );
        let logged = of_kind(&events, "event")[1];
        assert_eq!(of_kind(&events, "event")[0]["event"], "run_start");
        assert_eq!(
            (&logged["event"], &logged["file"]),
            (&Value::from(HOSTILE), &Value::from(HOSTILE))
        );
        assert_eq!(logged["data"]["text"], HOSTILE);
        assert_eq!(of_kind(&events, "error")[0]["data"]["message"], HOSTILE);
    }
}

/// An in-process plugin that crashes takes the loader with it, but every
/// event it emitted before is in the events file (the shared mapping), and
/// the file is cut to its lines (by the helper process) all the same.
#[test]
fn events_emitted_before_an_in_process_crash_are_in_the_file() {
    let dir = plugin_dir(&[fixture_library("probe", "probe-plugin")]);
    for action in ["segfault", "abort"] {
        let events_file = dir.path().join(format!("{action}.jsonl"));
        let output = loader(
            dir.path(),
            &[
                "run",
                "probe",
                action,
                "--events",
                events_file.to_str().unwrap(),
                "-q",
                "--in-process",
            ],
            &[],
        );
        assert!(
            output.status.code().is_none(),
            "{action}: the loader was killed by a signal"
        );
        // The helper that cuts the file shares the loader's stdout and
        // stderr, so once they are closed the file is final.
        let bytes = std::fs::read(&events_file).unwrap();
        assert!(!bytes.contains(&0), "{action}: the file was cut to its lines");
        assert!(bytes.ends_with(b"\n"), "{action}");
        let events = events_in(&events_file);
        let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["run_start", "message", "progress", "before_failure"],
            "{action}"
        );
    }
}
