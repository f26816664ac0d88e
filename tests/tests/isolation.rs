//! Isolation that holds: the hostile fixture plugin (tests/fixtures/hostile)
//! prints without newlines, prints bytes that are not UTF-8, forges a
//! result line and exits, leaves `sleep 300` and forked copies behind,
//! floods stdout, exits mid-action and looks for the shell's secrets; a
//! library prints the load check's protocol while loading. Each case is
//! run through the `loader` binary with its expected outcome, and after
//! each one no process it started may remain: every process a test starts
//! carries a tag in its environment, and /proc is searched for it.

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{BufRead, BufReader, Read};
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use crate::common::*;

    /// The variable every process of a test carries (the loader's own
    /// environment in-process, the plugin's `--env` when isolated).
    const TAG_VAR: &str = "HOSTILE_TEST_TAG";

    fn hostile_dir() -> tempfile::TempDir {
        plugin_dir(&[fixture_library("hostile", "hostile-plugin")])
    }

    /// A tag no other test uses.
    fn new_tag(name: &str) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        format!(
            "{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// Processes whose environment holds the tag: (pid, command line).
    fn tagged_processes(tag: &str) -> Vec<(u32, String)> {
        let needle = format!("{TAG_VAR}={tag}");
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            if environ.split(|&b| b == 0).any(|var| var == needle.as_bytes()) {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
            }
        }
        found
    }

    /// Fails the test if a process with the tag is still there after a
    /// short while, killing those it finds so that nothing outlives it.
    fn assert_no_process_left(tag: &str) {
        let until = Instant::now() + Duration::from_secs(3);
        loop {
            let left = tagged_processes(tag);
            if left.is_empty() {
                return;
            }
            if Instant::now() >= until {
                for (pid, _) in &left {
                    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                }
                panic!("processes left behind: {left:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A `loader` command for the hostile folder, tagged, with a clean
    /// environment plus `env`.
    fn loader_command(dir: &Path, tag: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(loader_bin());
        command.env_clear().arg("--plugins").arg(dir).args(args);
        command.arg("--env").arg(format!("{TAG_VAR}={tag}"));
        command.env(TAG_VAR, tag);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        command
    }

    /// What one run gave.
    struct Run {
        code: i32,
        events: Vec<Value>,
        stdout: Vec<u8>,
        stderr: String,
    }

    impl Run {
        fn of_event(&self, name: &str) -> Vec<&Value> {
            self.events.iter().filter(|e| e["event"] == name).collect()
        }

        fn result(&self) -> Option<&Value> {
            self.events.iter().find(|e| e["kind"] == "result").map(|e| &e["data"])
        }

        fn error(&self) -> &Value {
            let last = self.events.last().expect("at least one event");
            assert_eq!(last["kind"], "error", "the stream ends with the error: {last}");
            &last["data"]
        }

        fn output_text(&self, stream: &str) -> String {
            self.events
                .iter()
                .filter(|e| e["kind"] == "output" && e["event"] == "output" && e["data"]["stream"] == stream)
                .map(|e| e["data"]["text"].as_str().unwrap_or_default())
                .collect()
        }
    }

    /// Reads a pipe to its end on a thread.
    fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    }

    /// Waits for `child` for at most `limit`; kills it and fails otherwise.
    fn wait_with_limit(child: &mut Child, limit: Duration) -> i32 {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the loader") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() >= until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the loader did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `loader run hostile ACTION` with the events in a file, and
    /// checks that no process of the run is left.
    fn run_hostile(action: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let dir = hostile_dir();
        let tag = new_tag(action);
        let events_file = dir.path().join("events.jsonl");
        let mut args = vec!["run", "hostile", action, "--events", events_file.to_str().unwrap()];
        args.extend_from_slice(extra);
        let mut child = loader_command(dir.path(), &tag, &args, env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the loader starts");
        let stdout = read_all(child.stdout.take().unwrap());
        let stderr = read_all(child.stderr.take().unwrap());
        let code = wait_with_limit(&mut child, Duration::from_secs(60));
        assert_no_process_left(&tag);
        let text = std::fs::read_to_string(&events_file).unwrap_or_default();
        Run {
            code,
            events: jsonl(&text),
            stdout: stdout.join().unwrap(),
            stderr: String::from_utf8_lossy(&stderr.join().unwrap()).into_owned(),
        }
    }

    const BOTH_MODES: [&str; 2] = ["--isolate", "--in-process"];

    fn assert_before_kept(run: &Run, what: &str) {
        assert!(
            run.of_event("before").iter().any(|e| e["data"]["what"] == what),
            "the event before the misbehaviour was lost: {:?}",
            run.events
        );
    }

    #[test]
    fn printing_without_a_newline_is_output_and_the_result_is_kept() {
        for mode in BOTH_MODES {
            let run = run_hostile("print_no_newline", &[mode], &[]);
            assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
            assert_eq!(run.result(), Some(&serde_json::json!({ "printed": true })), "{mode}");
            assert_before_kept(&run, "print without a newline");
            if mode == "--isolate" {
                assert_eq!(run.output_text("stdout"), "\r50%");
                let loader_stdout = String::from_utf8_lossy(&run.stdout);
                assert!(
                    !loader_stdout.contains("50%"),
                    "the plugin's print reached the loader's stdout: {loader_stdout:?}"
                );
            }
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_output_decoded_lossily_and_later_events_kept() {
        for mode in BOTH_MODES {
            let run = run_hostile("non_utf8_stdout", &[mode], &[]);
            assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
            assert!(!run.of_event("after").is_empty(), "{mode}: {:?}", run.events);
            assert!(run.result().is_some(), "{mode}");
            if mode == "--isolate" {
                assert_eq!(run.output_text("stdout"), "bad \u{fffd}\u{fffd} bytes");
            }
        }
    }

    #[test]
    fn a_forged_result_line_is_only_output_and_exit_0_without_a_result_is_a_crash() {
        let run = run_hostile("forge_result", &["--isolate"], &[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.result().is_none(),
            "the forged result was accepted: {:?}",
            run.events
        );
        assert!(run.output_text("stdout").contains(r#""kind":"result""#));
        let error = run.error();
        assert_eq!(error["kind"], "crashed");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("exited with code 0 without reporting a result"),
            "{error}"
        );
        assert_before_kept(&run, "forge a result");
    }

    #[test]
    fn exit_0_mid_action_is_a_failure_not_a_success() {
        let run = run_hostile("exit_zero_mid_action", &["--isolate"], &[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.result().is_none());
        assert_eq!(run.error()["kind"], "crashed");
        assert_before_kept(&run, "exit(0)");
    }

    #[test]
    fn every_event_reported_right_before_a_crash_or_exit_is_kept() {
        for (end, signal) in [("abort", "SIGABRT"), ("segfault", "SIGSEGV"), ("exit", "code 0")] {
            let params = format!(r#"{{"count": 30000, "end": "{end}"}}"#);
            let run = run_hostile("flood_then_die", &["--isolate", "--params", &params], &[]);
            assert_eq!(run.code, 1, "{end}: {}", run.stderr);
            let ticks = run.of_event("tick");
            assert_eq!(ticks.len(), 30_000, "{end}: events reported before the end were lost");
            assert_eq!(ticks[29_999]["data"]["i"], 29_999);
            let error = run.error();
            assert_eq!(error["kind"], "crashed", "{end}");
            assert!(error["message"].as_str().unwrap().contains(signal), "{end}: {error}");
        }
    }

    #[test]
    fn a_spawned_sleep_neither_hangs_the_loader_nor_survives_the_run() {
        let started = Instant::now();
        let run = run_hostile("spawn_sleep", &["--isolate", "--allow-run", "sleep"], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.result().unwrap()["sleep_pid"].is_u64());
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_forked_copy_neither_hangs_the_loader_nor_survives_the_run() {
        let run = run_hostile("fork_and_return", &["--isolate"], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.result().unwrap()["forked_pid"].is_u64());
    }

    #[test]
    fn a_flood_of_stdout_without_newlines_is_capped_and_the_result_kept() {
        let params = format!(r#"{{"bytes": {}}}"#, 64u64 << 20);
        let run = run_hostile("huge_stdout", &["--isolate", "--params", &params], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.result().unwrap()["written"], 64u64 << 20);
        let output: Vec<_> = run.events.iter().filter(|e| e["kind"] == "output").collect();
        assert!(
            output
                .iter()
                .all(|e| e["data"]["text"].as_str().map_or(0, str::len) <= 4096),
            "a relayed piece is longer than the line cap"
        );
        let dropped: u64 = run
            .of_event("output_dropped")
            .iter()
            .map(|e| e["data"]["bytes"].as_u64().unwrap())
            .sum();
        let relayed: u64 = run
            .events
            .iter()
            .filter(|e| e["event"] == "output")
            .map(|e| e["data"]["text"].as_str().unwrap().len() as u64)
            .sum();
        assert!(dropped > 0, "the drop was not noted");
        assert_eq!(
            relayed + dropped,
            64u64 << 20,
            "every byte is relayed or counted as dropped"
        );
    }

    #[test]
    fn the_child_sees_only_the_listed_variables_and_its_own() {
        let env = [("AWS_SECRET_ACCESS_KEY", "hunter2"), ("LANG", "C.UTF-8")];
        let run = run_hostile("read_env_secret", &["--isolate", "--env", "HOSTILE_GIVEN=yes"], &env);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let seen = run.result().unwrap();
        assert_eq!(seen["aws_variable_visible"], false, "{seen}");
        assert_eq!(seen["given"], "yes");
        assert_eq!(seen["context_given"], "yes");
        assert_eq!(seen["has_path"], true);
        let mut names: Vec<&str> = seen["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        names.sort_unstable();
        // The sandbox adds where the run's work directory is (TMPDIR too).
        assert_eq!(
            names,
            ["HOSTILE_GIVEN", TAG_VAR, "LANG", "LOADER_WORK_DIR", "PATH", "TMPDIR"]
        );
    }

    #[test]
    fn in_process_the_plugin_shares_the_loaders_environment() {
        let env = [("AWS_SECRET_ACCESS_KEY", "hunter2")];
        let run = run_hostile("read_env_secret", &["--in-process"], &env);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.result().unwrap()["aws_variable_visible"], true);
    }

    #[test]
    fn an_event_over_the_size_limit_becomes_a_note_and_the_run_goes_on() {
        let run = run_hostile(
            "big_event",
            &[
                "--isolate",
                "--max-event-bytes",
                "100000",
                "--params",
                r#"{"bytes": 300000}"#,
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let notes = run.of_event("event_too_large");
        assert_eq!(notes.len(), 1, "{:?}", run.events);
        assert_eq!(notes[0]["data"]["event"], "big");
        assert_eq!(notes[0]["data"]["limit"], 100000);
        assert!(run.of_event("big").is_empty());
        assert!(!run.of_event("after").is_empty());
        assert!(run.result().is_some());
    }

    #[test]
    fn a_result_over_the_size_limit_is_a_failure_naming_the_limit() {
        let run = run_hostile(
            "big_result",
            &[
                "--isolate",
                "--max-event-bytes",
                "10000",
                "--params",
                r#"{"bytes": 50000}"#,
            ],
            &[],
        );
        assert_eq!(run.code, 1, "{}", run.stderr);
        let error = run.error();
        assert_eq!(error["kind"], "failed");
        assert!(
            error["message"].as_str().unwrap().contains("--max-event-bytes"),
            "{error}"
        );
        assert_before_kept(&run, "return a big result");
    }

    #[test]
    fn a_hung_action_and_its_children_are_killed_after_the_grace_period() {
        let run = run_hostile(
            "hang_until_cancelled",
            &[
                "--isolate",
                "--allow-run",
                "sleep",
                "--params",
                r#"{"spawn_sleep": true, "ignore_cancel": true}"#,
                "--timeout",
                "0.5",
                "--grace",
                "0.5",
            ],
            &[],
        );
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(run.error()["kind"], "timed_out");
        assert!(!run.of_event("waiting").is_empty());
    }

    #[test]
    fn durations_that_are_negative_not_numbers_or_absurd_are_usage_errors() {
        let dir = hostile_dir();
        for bad in [
            &["--timeout", "1e19", "--grace", "1e19"][..],
            &["--timeout=-1"],
            &["--timeout", "NaN"],
            &["--grace", "inf"],
            &["--timeout", "1", "--grace", "1e300"],
        ] {
            let mut args = vec!["run", "hostile", "print_no_newline"];
            args.extend_from_slice(bad);
            let output = loader(dir.path(), &args, &[]);
            assert_eq!(exit_code(&output), 2, "{bad:?}: {}", stderr(&output));
            assert!(
                stderr(&output).contains("must be a number of seconds"),
                "{}",
                stderr(&output)
            );
        }
    }

    /// Starts a run that waits (after starting `sleep 300`) and returns the
    /// loader once the action is running.
    fn start_waiting_run(
        dir: &Path,
        tag: &str,
        params: &str,
    ) -> (Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
        let mut child = loader_command(
            dir,
            tag,
            &[
                "run",
                "hostile",
                "hang_until_cancelled",
                "--events",
                "jsonl",
                "--params",
                params,
                "--grace",
                "1",
                "--allow-run",
                "sleep",
            ],
            &[],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the loader starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
            if event["event"] == "waiting" {
                return (child, lines);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the action never started waiting");
    }

    fn signal(pid: u32, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn an_event_reaches_the_stream_while_the_action_still_runs() {
        let dir = hostile_dir();
        let tag = new_tag("live");
        // The "waiting" event arrives while the action waits for ever:
        // nothing but the idle flush can have written it through.
        let (mut child, _) = start_waiting_run(dir.path(), &tag, r#"{"ignore_cancel": true}"#);
        signal(child.id(), "KILL");
        let _ = child.wait();
        assert_no_process_left(&tag);
    }

    #[test]
    fn sigterm_or_sighup_cancels_the_run_and_nothing_is_left() {
        for name in ["TERM", "HUP"] {
            for params in [
                r#"{"spawn_sleep": true}"#,
                r#"{"spawn_sleep": true, "ignore_cancel": true}"#,
            ] {
                let dir = hostile_dir();
                let tag = new_tag(&format!("sig{name}"));
                let (mut child, lines) = start_waiting_run(dir.path(), &tag, params);
                signal(child.id(), name);
                let code = wait_with_limit(&mut child, Duration::from_secs(20));
                let events: Vec<Value> = lines.map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect();
                assert_eq!(code, 1, "SIG{name} {params}");
                let last = events.last().expect("an error event");
                assert_eq!(last["kind"], "error", "{last}");
                assert_eq!(last["data"]["kind"], "cancelled", "{last}");
                assert_no_process_left(&tag);
            }
        }
    }

    #[test]
    fn sigkill_of_the_loader_leaves_no_child() {
        let dir = hostile_dir();
        let tag = new_tag("sigkill");
        let (mut child, _) = start_waiting_run(dir.path(), &tag, r#"{"spawn_sleep": true, "ignore_cancel": true}"#);
        signal(child.id(), "KILL");
        let _ = child.wait();
        assert_no_process_left(&tag);
    }

    fn problems_of(list: &Value) -> Vec<(String, String)> {
        list["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["path"].as_str().unwrap().to_owned(),
                    p["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_library_printing_the_load_checks_answer_cannot_fake_it() {
        let dir = plugin_dir(&[
            fixture_library("hostile", "spoof-load-check"),
            fixture_library("hostile", "hostile-plugin"),
        ]);
        let output = loader(dir.path(), &["list", "--json"], &[]);
        assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
        let list: Value = serde_json::from_slice(&output.stdout).expect("list --json is JSON");
        let problems = problems_of(&list);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].0.contains("spoof_load_check"), "{problems:?}");
        assert!(problems[0].1.contains("SIGABRT"), "{problems:?}");
        assert_eq!(list["plugins"][0]["code"], "hostile");
    }

    #[test]
    fn the_load_check_handles_eighty_thousand_files() {
        let dir = hostile_dir();
        for i in 0..80_000 {
            std::fs::write(dir.path().join(format!("empty{i:05}.so")), b"").unwrap();
        }
        let output = loader(dir.path(), &["list", "--json"], &[]);
        assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
        let list: Value = serde_json::from_slice(&output.stdout).expect("list --json is JSON");
        assert_eq!(list["plugins"][0]["code"], "hostile");
        assert_eq!(problems_of(&list).len(), 80_000);
    }

    #[test]
    fn a_load_check_that_cannot_run_stops_the_loader_with_code_5() {
        let dir = hostile_dir();
        // With four file descriptors, the checking child's channel cannot
        // be made: the loader must say so, not load the files unchecked.
        let script = format!(
            "ulimit -n 4 && exec {} --plugins {} list --json",
            loader_bin().display(),
            dir.path().display()
        );
        let output = Command::new("sh").args(["-c", &script]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(5), "{stderr}");
        assert!(
            stderr.contains("cannot check plugin libraries in a separate process"),
            "{stderr}"
        );
        assert!(stderr.contains("--no-load-check"), "{stderr}");
        assert!(output.stdout.is_empty(), "nothing was listed");
    }

    #[test]
    fn without_the_load_check_libraries_load_directly_only_for_an_in_process_run() {
        let dir = hostile_dir();
        let output = loader(dir.path(), &["--no-load-check", "list", "--json"], &[]);
        assert_eq!(
            exit_code(&output),
            2,
            "refused outside run --in-process: {}",
            stderr(&output)
        );
        let args = [
            "--no-load-check",
            "run",
            "hostile",
            "big_result",
            "--params",
            r#"{"bytes": 3}"#,
            "--in-process",
            "-q",
        ];
        let output = loader(dir.path(), &args, &[]);
        assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
        let result: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(result["blob"], "xxx");
    }
}
