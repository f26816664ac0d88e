//! How a failed action is described to the host: a kind the host can branch
//! on (exit codes, retries), a message for people, and structured details.
//! Crosses the boundary as JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validate::ParamsError;

/// Why an action did not produce a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The params did not match the action's schema; it never ran.
    InvalidParams,
    /// The plugin has no action of that name.
    UnknownAction,
    /// The action ran and returned an error.
    Failed,
    /// The action panicked; the panic was caught at the boundary.
    Panicked,
    /// The action stopped early because the host asked it to.
    Cancelled,
    /// The process running the action died (isolated runs only).
    Crashed,
    /// The action did not finish in time and was stopped (host side).
    TimedOut,
}

impl FailureKind {
    /// The kind's name in events and JSON: `invalid_params`, `failed`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::InvalidParams => "invalid_params",
            FailureKind::UnknownAction => "unknown_action",
            FailureKind::Failed => "failed",
            FailureKind::Panicked => "panicked",
            FailureKind::Cancelled => "cancelled",
            FailureKind::Crashed => "crashed",
            FailureKind::TimedOut => "timed_out",
        }
    }
}

/// A failed action, as the host receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionFailure {
    /// What went wrong, by kind.
    pub kind: FailureKind,
    /// The message for people.
    pub message: String,
    /// Structured details (`null` when there are none).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl ActionFailure {
    /// A failure of this kind with this message and no details.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            details: Value::Null,
        }
    }

    /// Sets the structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// The action panicked with this message.
    pub fn panicked(message: impl Into<String>) -> Self {
        Self::new(
            FailureKind::Panicked,
            format!("the action panicked: {}", message.into()),
        )
    }

    /// The params did not validate: the message names the first problem, the details list them all.
    pub fn invalid_params(error: &ParamsError) -> Self {
        Self::new(FailureKind::InvalidParams, error.to_string())
            .with_details(serde_json::to_value(&error.problems).unwrap_or(Value::Null))
    }

    /// The failure as JSON text (what crosses the boundary).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| format!("{{\"kind\":\"failed\",\"message\":{:?}}}", self.message))
    }

    /// Reads a failure sent by a plugin. Text that is not a failure object
    /// (a plugin built by other means) becomes a `failed` with that text.
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_else(|_| Self::new(FailureKind::Failed, text))
    }
}

impl std::fmt::Display for ActionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let failure = ActionFailure::new(FailureKind::Cancelled, "stopped").with_details(serde_json::json!({"at": 3}));
        assert_eq!(ActionFailure::from_json(&failure.to_json()), failure);
        assert!(failure.to_json().contains("\"kind\":\"cancelled\""));
    }

    #[test]
    fn foreign_error_text_becomes_a_plain_failure() {
        let failure = ActionFailure::from_json("boom");
        assert_eq!(failure.kind, FailureKind::Failed);
        assert_eq!(failure.message, "boom");
    }
}
