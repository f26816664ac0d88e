//! End-to-end: what a person at a terminal sees from `loader`: one error
//! style, advice on mistyped names and missing folders, the params table,
//! a quiet exit when the reader of stdout goes away, completions, the man
//! page, the loader's own debug log, and a workflow's progress and step
//! events as sentences.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

/// Runs the loader with its stdout closed before it writes a byte.
fn with_stdout_closed(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(loader_bin())
        .env_clear()
        .arg("--plugins")
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the loader starts");
    drop(child.stdout.take());
    child.wait_with_output().expect("the loader ends")
}

#[test]
fn a_closed_stdout_ends_list_and_info_quietly() {
    let dir = samples_dir();
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["info", "tabular-trainer"],
        &["info", "tabular-trainer", "train", "--json"],
        &["completions", "bash"],
        &["man"],
    ] {
        let output = with_stdout_closed(dir.path(), args);
        assert_eq!(exit_code(&output), 0, "{args:?}: {}", stderr(&output));
        assert_eq!(stderr(&output), "", "{args:?} printed to stderr");
    }
}

/// `error: ...` first, causes indented by two spaces, `help: ...` last.
fn assert_cargo_style(text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("error: "), "{text}");
    for line in &lines[1..lines.len() - 1] {
        assert!(
            line.starts_with("  "),
            "a cause that is not indented: {line:?} in\n{text}"
        );
    }
    assert!(lines.last().unwrap().starts_with("help: "), "{text}");
    assert_eq!(text.matches("error:").count(), 1, "the error is said once:\n{text}");
}

#[test]
fn invalid_params_read_the_same_in_dry_run_run_and_quiet_run() {
    let dir = samples_dir();
    let params = r#"{"epochs": "many"}"#;
    let base = ["run", "tabular-trainer", "train", "--params", params];
    let mut texts = Vec::new();
    for extra in [&["--dry-run"][..], &[], &["-q"], &["--in-process"]] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let output = loader(dir.path(), &args, &[]);
        assert_eq!(exit_code(&output), 2, "{args:?}");
        let text = stderr(&output);
        assert_cargo_style(&text);
        texts.push(text);
    }
    assert!(texts[0].contains("epochs"), "{}", texts[0]);
    assert!(
        texts[0].contains("help: `loader info tabular-trainer train` shows the params"),
        "{}",
        texts[0]
    );
    assert!(texts.iter().all(|t| t == &texts[0]), "{texts:#?}");
}

#[test]
fn a_failed_run_ends_with_the_error_in_the_same_style() {
    let dir = samples_dir();
    let work = tempfile::tempdir().unwrap();
    let params = serde_json::json!({ "fail_at": "evaluate", "work_dir": work.path() }).to_string();
    let granted = work.path().to_str().unwrap();
    let output = loader(
        dir.path(),
        &[
            "run",
            "workflow-trainer",
            "train_pipeline",
            "--params",
            &params,
            "--allow-write",
            granted,
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 1);
    let text = stderr(&output);
    let error_at = text
        .find("error: step \"evaluate\" failed")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        !text.contains("ERROR"),
        "the terminal does not print the error a second way:\n{text}"
    );
    let causes: Vec<&str> = text[error_at..].lines().skip(1).collect();
    assert_eq!(
        causes,
        ["  rolled back: evaluate, train, split, load_dataset"],
        "{text}"
    );
}

#[test]
fn a_workflow_reads_as_sentences_with_overall_progress_in_percent() {
    let dir = samples_dir();
    let work = tempfile::tempdir().unwrap();
    let params = serde_json::json!({ "epochs": 3, "work_dir": work.path() }).to_string();
    let granted = work.path().to_str().unwrap();
    let output = loader(
        dir.path(),
        &[
            "run",
            "workflow-trainer",
            "train_pipeline",
            "--params",
            &params,
            "--allow-write",
            granted,
        ],
        &[],
    );
    let text = stderr(&output);
    assert_eq!(exit_code(&output), 0, "{text}");
    assert!(text.contains("step load_dataset started (1 of 5)\n"), "{text}");
    assert!(text.contains("step export started (5 of 5)\n"), "{text}");
    assert!(text.contains("step export finished in "), "{text}");
    assert!(!text.contains("step_start") && !text.contains("step_end"), "{text}");
    assert!(!text.contains("/10000"), "overall progress is a percentage:\n{text}");
    let last_overall = text
        .lines()
        .rfind(|l| l.starts_with("progress "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(last_overall.starts_with("progress 100.00% done in "), "{text}");
}

#[test]
fn mistyped_names_get_a_suggestion_and_the_real_names() {
    let dir = samples_dir();
    let output = loader(dir.path(), &["run", "tabular-trainr", "train"], &[]);
    assert_eq!(exit_code(&output), 3);
    let text = stderr(&output);
    assert_cargo_style(&text);
    assert!(
        text.contains(&format!(
            "plugins in `{}`: dataset-exporter, tabular-trainer, workflow-trainer",
            dir.path().display()
        )),
        "{text}"
    );
    assert!(text.contains("help: did you mean \"tabular-trainer\"?"), "{text}");

    let output = loader(dir.path(), &["info", "tabular-trainer", "trian"], &[]);
    assert_eq!(exit_code(&output), 3);
    let text = stderr(&output);
    assert!(text.contains("actions: train, evaluate"), "{text}");
    assert!(text.contains("help: did you mean \"train\"?"), "{text}");

    let output = loader(dir.path(), &["info", "nothing-like-it"], &[]);
    assert!(!stderr(&output).contains("did you mean"), "{}", stderr(&output));
}

#[test]
fn a_missing_plugin_folder_says_how_to_point_elsewhere() {
    let missing = tempfile::tempdir().unwrap().path().join("nowhere");
    let output = loader(&missing, &["list"], &[]);
    assert_eq!(exit_code(&output), 2);
    let text = stderr(&output);
    assert_cargo_style(&text);
    assert!(text.contains("--plugins DIR or LOADER_PLUGIN_DIR"), "{text}");
}

#[test]
fn info_shows_a_params_table_and_the_schema_only_as_json() {
    let dir = samples_dir();
    let output = loader(dir.path(), &["info", "dataset-exporter", "inspect"], &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.contains("$schema"), "{text}");
    let header = text
        .lines()
        .find(|l| l.trim_start().starts_with("name"))
        .unwrap_or_else(|| panic!("{text}"));
    for column in ["type", "default", "required", "description"] {
        assert!(header.contains(column), "{header}");
    }
    let row = text.lines().find(|l| l.trim_start().starts_with("output_dir")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..3], ["output_dir", "string", "yes"], "{row}");
    let output = loader(dir.path(), &["info", "dataset-exporter", "export"], &[]);
    let text = stdout(&output);
    let row = text.lines().find(|l| l.trim_start().starts_with("records")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..4], ["records", "integer", "100", "no"], "{row}");
    assert!(row.ends_with("How many records to export."), "{row}");

    let output = loader(dir.path(), &["info", "dataset-exporter", "inspect", "--json"], &[]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["params_schema"]["required"], serde_json::json!(["output_dir"]));
}

#[test]
fn completions_and_the_man_page_are_generated_from_the_options() {
    let dir = samples_dir();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef loader"),
        ("fish", "complete -c loader"),
    ] {
        let output = loader(dir.path(), &["completions", shell], &[]);
        assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("dry-run"), "{shell} completes run's options");
    }
    let output = loader(dir.path(), &["man"], &[]);
    assert_eq!(exit_code(&output), 0);
    let page = stdout(&output);
    assert!(page.starts_with(".ie") || page.contains(".TH loader"), "{page}");
    assert!(page.contains("completions") && page.contains("plugins"), "{page}");

    let output = loader(dir.path(), &["completions", "tcsh"], &[]);
    assert_eq!(exit_code(&output), 2);
}

#[test]
fn debug_logging_shows_the_loaders_own_work() {
    let dir = samples_dir();
    let run = [
        "run",
        "tabular-trainer",
        "train",
        "--params",
        r#"{"epochs": 1, "samples": 50}"#,
        "-q",
    ];
    let verbose: Vec<&str> = ["-vv"].iter().chain(&run).copied().collect();
    for (args, env) in [
        (verbose.as_slice(), &[][..]),
        (&run[..], &[("LOADER_LOG", "loader=debug")][..]),
    ] {
        let output = loader(dir.path(), args, env);
        assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
        let log = stderr(&output);
        for expected in [
            "plugin folder",
            "plugin tabular-trainer from",
            "load check: process",
            "found 3 plugin(s)",
            " ms ",
            "isolated run: process",
        ] {
            assert!(log.contains(expected), "{expected:?} missing from:\n{log}");
        }
    }
}
