//! The loader's exit codes, which scripts may rely on (listed in the README),
//! and the error type that carries one to `main`, printed in one style for
//! every command, cargo's: `error: …`, indented causes, then `help: …`.

use std::fmt;

use loader::events::escape::escape;
use plugin_api::{ActionFailure, FailureKind};
use serde_json::Value;

/// What the process exit status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// The command did what was asked.
    Success = 0,
    /// The action ran and failed: an error, a panic, a crash, a timeout or a
    /// cancellation.
    ActionFailed = 1,
    /// Bad usage: unknown options, unreadable params or env files, params
    /// that do not validate, an unreadable plugin folder.
    Usage = 2,
    /// No plugin or action of that name.
    NotFound = 3,
    /// The event stream (`--events`) could not be written: the file could
    /// not be opened or is locked by another run, the disk is full, the pipe
    /// was closed. Also shown as a message; an action failure keeps its own
    /// code.
    EventsLost = 4,
    /// The plugin libraries could not be checked in a separate process
    /// before loading (only `run --in-process --no-load-check` loads them
    /// without the check).
    LoadCheckFailed = 5,
    /// With `--require-backend`: the run's reports did not all reach the
    /// backend (they are kept for `loader flush`).
    BackendUndelivered = 6,
    /// The plugin declares permissions that were not granted (nothing ran).
    NotGranted = 7,
    /// `--sandbox=require`, and this system cannot apply all of the
    /// sandbox (nothing ran); also `loader sandbox check` when a probe that
    /// must be blocked was not.
    SandboxUnavailable = 8,
}

impl ExitCode {
    /// The exit code for a failed action.
    pub fn for_failure(kind: FailureKind) -> Self {
        match kind {
            FailureKind::InvalidParams => ExitCode::Usage,
            FailureKind::UnknownAction => ExitCode::NotFound,
            _ => ExitCode::ActionFailed,
        }
    }
}

/// The longest a cause line made of JSON details gets.
const MAX_DETAILS_LEN: usize = 300;

/// An error reported by the CLI: a message, the lines that explain it, and
/// advice on what to do, with the exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: ExitCode,
    pub message: String,
    pub causes: Vec<String>,
    pub help: Option<String>,
}

impl CliError {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            causes: Vec::new(),
            help: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Usage, message)
    }

    /// A failed action: its message, its details as causes (one line per
    /// invalid field for params), and the code for its kind.
    pub fn from_failure(failure: &ActionFailure) -> Self {
        Self::new(ExitCode::for_failure(failure.kind), failure.message.clone()).with_causes(failure_causes(failure))
    }

    pub fn with_causes(mut self, causes: Vec<String>) -> Self {
        self.causes = causes;
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for CliError {
    /// `error: MESSAGE`, each cause indented on its own line, `help: ...`.
    /// Control characters (a plugin's message may hold any) are shown
    /// escaped, never sent to the terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", escape(&self.message))?;
        for cause in &self.causes {
            write!(f, "\n  {}", escape(cause))?;
        }
        if let Some(help) = &self.help {
            write!(f, "\nhelp: {}", escape(help))?;
        }
        Ok(())
    }
}

/// The details of a failure as lines: `path: message` for each field of
/// invalid params (unless the message already says all there is), else the
/// details as compact JSON, shortened.
fn failure_causes(failure: &ActionFailure) -> Vec<String> {
    match &failure.details {
        Value::Null => Vec::new(),
        Value::Array(items) if items.iter().all(is_field_error) => {
            let lines: Vec<String> = items
                .iter()
                .map(|item| match item["path"].as_str().filter(|p| !p.is_empty()) {
                    Some(path) => format!("{path}: {}", item["message"].as_str().unwrap_or_default()),
                    None => item["message"].as_str().unwrap_or_default().to_owned(),
                })
                .collect();
            let already_said = lines.len() == 1 && failure.message.ends_with(lines[0].as_str());
            if already_said {
                Vec::new()
            } else {
                lines
            }
        }
        Value::Object(report) if report.contains_key("rolled_back") => workflow_causes(report),
        details => vec![format!("details: {}", shorten(&details.to_string(), MAX_DETAILS_LEN))],
    }
}

/// A failed workflow's report as what was undone and what could not be.
fn workflow_causes(report: &serde_json::Map<String, Value>) -> Vec<String> {
    let names = |key: &str| -> Vec<String> {
        report
            .get(key)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let rolled_back = names("rolled_back");
    let mut causes = vec![if rolled_back.is_empty() {
        "nothing to roll back".to_owned()
    } else {
        format!("rolled back: {}", rolled_back.join(", "))
    }];
    let failures = report.get("rollback_failures").and_then(Value::as_array);
    for failure in failures.into_iter().flatten() {
        causes.push(format!(
            "rollback of {} failed: {}",
            failure["step"].as_str().unwrap_or("?"),
            failure["error"].as_str().unwrap_or("?")
        ));
    }
    causes
}

fn is_field_error(item: &Value) -> bool {
    item.get("message").is_some_and(Value::is_string)
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_causes_and_help_are_laid_out_like_cargo() {
        let error = CliError::usage("cannot read the plugin folder `plugins`")
            .with_causes(vec!["No such file or directory (os error 2)".into()])
            .with_help("point to another folder with --plugins DIR or LOADER_PLUGIN_DIR");
        assert_eq!(
            error.to_string(),
            "error: cannot read the plugin folder `plugins`\n  No such file or directory (os error 2)\nhelp: point to another folder with --plugins DIR or LOADER_PLUGIN_DIR"
        );
    }

    #[test]
    fn every_invalid_field_is_a_cause_unless_the_message_says_it_all() {
        let one = ActionFailure::new(FailureKind::InvalidParams, "invalid params: epochs: expected u64")
            .with_details(json!([{ "path": "epochs", "message": "expected u64" }]));
        assert!(CliError::from_failure(&one).causes.is_empty());
        assert_eq!(CliError::from_failure(&one).code, ExitCode::Usage);

        let two = ActionFailure::new(FailureKind::InvalidParams, "invalid params: 2 errors").with_details(json!([
            { "path": "epochs", "message": "expected u64" },
            { "path": "", "message": "unknown field `x`" },
        ]));
        assert_eq!(
            CliError::from_failure(&two).causes,
            ["epochs: expected u64", "unknown field `x`"]
        );
    }

    #[test]
    fn a_workflow_report_says_what_was_rolled_back() {
        let failure = ActionFailure::new(FailureKind::Failed, "step \"evaluate\" failed: boom").with_details(json!({
            "failed_step": "evaluate",
            "rolled_back": ["train", "split"],
            "rollback_failures": [{ "step": "split", "error": "file busy" }],
            "steps": [],
        }));
        assert_eq!(
            CliError::from_failure(&failure).causes,
            ["rolled back: train, split", "rollback of split failed: file busy"]
        );
        let nothing = ActionFailure::new(FailureKind::Failed, "step \"load\" failed")
            .with_details(json!({ "rolled_back": [], "rollback_failures": [] }));
        assert_eq!(CliError::from_failure(&nothing).causes, ["nothing to roll back"]);
    }

    #[test]
    fn other_details_are_one_shortened_line() {
        let long = "x".repeat(1000);
        let failure = ActionFailure::new(FailureKind::Failed, "step failed").with_details(json!({ "log": long }));
        let error = CliError::from_failure(&failure);
        assert_eq!(error.code, ExitCode::ActionFailed);
        assert_eq!(error.causes.len(), 1);
        assert!(error.causes[0].starts_with("details: {\"log\":\"xxx"));
        assert!(error.causes[0].chars().count() <= "details: ".len() + MAX_DETAILS_LEN + 1);
    }
}
