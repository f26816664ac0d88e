//! End-to-end: the plugin's environment as a user builds it. A variable the
//! plugin reads that is set in the loader's shell but filtered out by the
//! `--env-prefix` rule gets one warning naming the key and the `--env` fix,
//! in-process and isolated, without its value; an env file never expands a
//! variable from the loader's environment.

use crate::common::*;
use serde_json::Value;

/// A value that appears nowhere else in a run's output.
const SECRET_VALUE: &str = "73519";

fn train(mode: &[&str], env: &[(&str, &str)]) -> (String, Vec<Value>) {
    let dir = samples_dir();
    let events_file = dir.path().join("events.jsonl");
    let mut args = vec![
        "run",
        "tabular-trainer",
        "train",
        "--params",
        r#"{"samples": 40, "epochs": 1}"#,
        "--events",
        events_file.to_str().unwrap(),
    ];
    args.extend_from_slice(mode);
    let output = loader(dir.path(), &args, env);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let events_text = std::fs::read_to_string(&events_file).unwrap();
    assert!(
        !events_text.contains(SECRET_VALUE),
        "the value leaked into the events: {events_text}"
    );
    (stderr(&output), jsonl(&events_text))
}

fn warnings(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "env_not_passed").collect()
}

#[test]
fn a_shell_variable_without_the_prefix_is_named_once_with_the_fix_in_both_modes() {
    for mode in [&["--in-process"][..], &[][..]] {
        let (text, events) = train(mode, &[("BATCH_SIZE", SECRET_VALUE)]);
        assert!(!text.contains(SECRET_VALUE), "{mode:?}: the value was printed: {text}");
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("BATCH_SIZE")).collect();
        assert_eq!(lines.len(), 1, "{mode:?}: one warning line: {text}");
        assert!(lines[0].contains("WARNING"), "{mode:?}: {}", lines[0]);
        assert!(lines[0].contains("SYNAPSE_"), "{mode:?}: {}", lines[0]);
        assert!(
            lines[0].contains(r#"--env BATCH_SIZE="$BATCH_SIZE""#),
            "{mode:?}: {}",
            lines[0]
        );
        assert!(
            !text.contains("EPOCHS"),
            "{mode:?}: EPOCHS is not read (epochs given): {text}"
        );

        let warnings = warnings(&events);
        assert_eq!(warnings.len(), 1, "{mode:?}: {events:#?}");
        assert_eq!(warnings[0]["kind"], "message");
        assert_eq!(warnings[0]["level"], "warning");
        assert_eq!(warnings[0]["data"]["key"], "BATCH_SIZE");
        let misses: Vec<&Value> = of_kind(&events, "dev_event")
            .into_iter()
            .filter(|e| e["data"]["message"] == "env_missing")
            .collect();
        assert_eq!(misses.len(), 1, "{mode:?}: {events:#?}");
        assert_eq!(misses[0]["data"]["data"]["key"], "BATCH_SIZE");
    }
}

#[test]
fn no_warning_when_the_variable_is_absent_or_passed() {
    for mode in [&["--in-process"][..], &[][..]] {
        let (text, events) = train(mode, &[]);
        assert!(!text.contains("BATCH_SIZE"), "{mode:?}: {text}");
        assert!(warnings(&events).is_empty(), "{mode:?}: {events:#?}");

        let passed = [mode, &["--env", "BATCH_SIZE=8"][..]].concat();
        let (text, events) = train(&passed, &[("BATCH_SIZE", SECRET_VALUE)]);
        assert!(!text.contains("BATCH_SIZE"), "{mode:?}: {text}");
        assert!(warnings(&events).is_empty(), "{mode:?}: {events:#?}");
    }
}

#[test]
fn a_prefixed_copy_alone_is_named_with_the_way_to_pass_it_under_the_plain_name() {
    for mode in [&["--in-process"][..], &[][..]] {
        let (text, events) = train(mode, &[("SYNAPSE_BATCH_SIZE", SECRET_VALUE)]);
        assert!(!text.contains(SECRET_VALUE), "{mode:?}: {text}");
        assert_eq!(
            text.matches(r#"--env BATCH_SIZE="$SYNAPSE_BATCH_SIZE""#).count(),
            1,
            "{mode:?}: {text}"
        );
        assert_eq!(warnings(&events).len(), 1, "{mode:?}: {events:#?}");
    }
}

#[test]
fn a_prefixed_copy_does_not_silence_the_warning_for_the_plain_name() {
    let (text, _) = train(
        &[],
        &[("BATCH_SIZE", SECRET_VALUE), ("SYNAPSE_BATCH_SIZE", SECRET_VALUE)],
    );
    assert_eq!(text.matches("the action read BATCH_SIZE").count(), 1, "{text}");
    assert!(!text.contains(SECRET_VALUE), "{text}");
}

#[test]
fn an_env_file_that_would_expand_a_shell_variable_is_refused_naming_the_line() {
    let dir = samples_dir();
    let env_file = dir.path().join("vars.env");
    std::fs::write(&env_file, "EPOCHS=1\nTOKEN=\"${AWS_SECRET_ACCESS_KEY}\"\nPRICE='$5'\n").unwrap();
    let output = loader(
        dir.path(),
        &[
            "run",
            "tabular-trainer",
            "train",
            "--env-file",
            env_file.to_str().unwrap(),
        ],
        &[("AWS_SECRET_ACCESS_KEY", SECRET_VALUE)],
    );
    assert_eq!(exit_code(&output), 2, "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("vars.env:2: `$` would expand a variable"), "{text}");
    assert!(!text.contains(SECRET_VALUE), "{text}");

    std::fs::write(
        &env_file,
        "export EPOCHS=1 # one pass\nPRICE='$5'\nNOTE=\"cost \\$5\"\n",
    )
    .unwrap();
    let output = loader(
        dir.path(),
        &[
            "run",
            "tabular-trainer",
            "train",
            "--params",
            r#"{"samples": 40}"#,
            "--env-file",
            env_file.to_str().unwrap(),
            "--in-process",
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let result: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(result["epochs"], 1, "EPOCHS from the file");
}
