//! The loader's exit codes, which scripts may rely on (listed in the README),
//! and the error type that carries one to `main`.

use plugin_api::FailureKind;

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
    /// With `--require-backend`: the run's reports did not all reach the
    /// backend (they are kept for `loader flush`).
    BackendUndelivered = 4,
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

/// An error reported by the CLI: a message, optional detail lines, a code.
#[derive(Debug)]
pub struct CliError {
    pub code: ExitCode,
    pub message: String,
    pub details: Vec<String>,
    /// Already shown on the terminal (as the run's error event).
    pub shown: bool,
}

impl CliError {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            shown: false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Usage, message)
    }

    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    pub fn shown(mut self, shown: bool) -> Self {
        self.shown = shown;
        self
    }
}
