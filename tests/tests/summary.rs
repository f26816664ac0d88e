//! What a run leaves on the terminal: every epoch's metrics line in order,
//! before the action's closing message however fast the epochs come, then
//! the metrics summary (plain text when stderr is not a terminal, Unicode
//! sparklines on a pseudo-terminal), and only then the final status line.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const EPOCHS: u64 = 5;

fn train_params() -> String {
    format!(r#"{{"epochs": {EPOCHS}}}"#)
}

#[test]
fn without_a_terminal_every_epoch_prints_in_order_then_a_plain_summary() {
    let dir = samples_dir();
    let params = train_params();
    let output = loader(
        dir.path(),
        &["run", "tabular-trainer", "train", "--params", &params],
        &[],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    let epochs: Vec<usize> = (1..=EPOCHS)
        .map(|epoch| {
            lines
                .iter()
                .position(|l| l.starts_with("[train] metrics") && l.contains(&format!(" epoch={epoch} ")))
                .unwrap_or_else(|| panic!("no metrics line of epoch {epoch}:\n{err}"))
        })
        .collect();
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "in order: {epochs:?}\n{err}");
    let completed = lines
        .iter()
        .position(|l| l.starts_with("SUCCESS Training completed"))
        .unwrap();
    assert!(
        epochs[epochs.len() - 1] < completed,
        "every epoch before the closing message:\n{err}"
    );
    let summary = lines.iter().position(|l| *l == "metrics summary").expect("a summary");
    assert!(summary > completed, "{err}");
    let loss = lines[summary..]
        .iter()
        .find(|l| l.starts_with("[train] loss "))
        .unwrap();
    assert!(loss.contains(&format!("({EPOCHS} updates; first ")), "{loss}");
    assert!(
        !err.contains('▁') && !err.contains('█') && !err.contains('\x1b'),
        "plain text: {err}"
    );
}

#[test]
fn a_failed_runs_summary_comes_before_its_error_line() {
    let dir = plugin_dir(&[fixture_library("probe", "probe-plugin")]);
    let calls = r#"{"calls": [{"step": "fit", "metrics": {"loss": 2.0}}, {"step": "fit", "metrics": {"loss": 1.0}}], "pause_ms": 0}"#;
    let ok = loader(dir.path(), &["run", "probe", "metrics_calls", "--params", calls], &[]);
    assert_eq!(exit_code(&ok), 0, "{}", stderr(&ok));
    assert!(
        stderr(&ok).ends_with("metrics summary\n[fit] loss 1 (2 updates; first 2, min 1, max 2)\n"),
        "{}",
        stderr(&ok)
    );

    let flood = plugin_dir(&[fixture_library("flood", "flood-plugin")]);
    let failed = loader(flood.path(), &["run", "flood", "control_characters"], &[]);
    assert_eq!(exit_code(&failed), 1);
    let err = stderr(&failed);
    let summary = err.find("metrics summary\n").expect("a summary");
    let error = err.rfind("error: ").unwrap();
    assert!(summary < error, "the summary, then the error:\n{err}");
    assert!(
        !err[summary..].contains('\x1b'),
        "the plugin's text stays escaped in the summary: {err:?}"
    );
}

/// `script`, which runs a command on a pseudo-terminal, if this machine has
/// it; the test skips (and says so) without it, unless CI=true.
fn script_or_skip(test: &str) -> Option<&'static str> {
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match has_script {
        true => Some("script"),
        false if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{test}: `script` (util-linux) is missing"),
        false => {
            eprintln!("{test}: skipped: `script` (util-linux) is not installed");
            None
        }
    }
}

#[test]
fn on_a_terminal_the_summary_draws_sparklines() {
    let Some(script) = script_or_skip("on_a_terminal_the_summary_draws_sparklines") else {
        return;
    };
    let dir = samples_dir();
    let work = tempfile::tempdir().unwrap();
    let result = work.path().join("result.json");
    let command = format!(
        "{} --plugins {} run tabular-trainer train --params '{}' > {}",
        loader_bin().display(),
        dir.path().display(),
        train_params(),
        result.display()
    );
    let output = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "100")
        .env("LINES", "40")
        .current_dir(Path::new("/"))
        .output()
        .expect("script runs");
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{screen}");
    assert!(std::fs::read_to_string(&result).unwrap().contains("\"epochs\": 5"));
    let summary = screen
        .find("metrics summary")
        .unwrap_or_else(|| panic!("no summary: {screen:?}"));
    let after = &screen[summary..];
    let loss = after.lines().find(|l| l.contains("loss")).unwrap();
    let sparkline: String = loss.chars().filter(|c| ('▁'..='█').contains(c)).collect();
    assert_eq!(
        sparkline.chars().count(),
        EPOCHS as usize,
        "one block per epoch: {loss:?}"
    );
    assert!(
        sparkline.starts_with('█') && sparkline.ends_with('▁'),
        "a falling loss: {sparkline}"
    );
    assert!(loss.contains("min ") && loss.contains("max "), "{loss:?}");
    assert!(after.contains("\x1b["), "coloured on a terminal: {after:?}");
}
