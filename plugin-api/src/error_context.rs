//! Context for errors: `.context("reading data.csv")?` turns an I/O error
//! that says only `No such file or directory (os error 2)` into an
//! [`ActionError`] that says what the action was doing.

use std::fmt::Display;

use crate::action::ActionError;

/// Adds what the action was doing to an error, on `Result` and `Option`.
///
/// The context comes first, then the cause: `reading data.csv: No such
/// file or directory (os error 2)`. A cancellation stays a cancellation (its
/// message is not changed), and an error's details are kept.
///
/// ```
/// use plugin_api::prelude::*;
///
/// fn read_rows(path: &str) -> ActionResult<usize> {
///     let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
///     let header = text.lines().next().context("the file is empty")?;
///     Ok(header.len())
/// }
///
/// let error = read_rows("/nonexistent/data.csv").unwrap_err();
/// assert!(error.message().starts_with("reading /nonexistent/data.csv: "), "{error}");
/// ```
pub trait ErrorContext<T> {
    /// Wraps the error with `context`.
    fn context(self, context: impl Display) -> Result<T, ActionError>;

    /// Wraps the error with the context `f` builds, only when there is an
    /// error (for a `format!` that should not run on success).
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T, ActionError>;
}

impl<T, E: Into<ActionError>> ErrorContext<T> for Result<T, E> {
    fn context(self, context: impl Display) -> Result<T, ActionError> {
        self.map_err(|error| wrap(error.into(), context))
    }

    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T, ActionError> {
        self.map_err(|error| wrap(error.into(), f()))
    }
}

impl<T> ErrorContext<T> for Option<T> {
    fn context(self, context: impl Display) -> Result<T, ActionError> {
        self.ok_or_else(|| ActionError::new(context.to_string()))
    }

    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T, ActionError> {
        self.ok_or_else(|| ActionError::new(f().to_string()))
    }
}

fn wrap(error: ActionError, context: impl Display) -> ActionError {
    if error.is_cancelled() {
        error
    } else {
        error.prefixed(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_io_error_names_what_was_being_done() {
        let result: Result<String, ActionError> =
            std::fs::read_to_string("/nonexistent/file.csv").context("reading /nonexistent/file.csv");
        let message = result.unwrap_err().message().to_owned();
        assert!(message.starts_with("reading /nonexistent/file.csv: "), "{message}");
        assert!(message.contains("os error 2"), "{message}");
    }

    #[test]
    fn contexts_stack_outermost_first_and_keep_details() {
        let inner: Result<(), ActionError> = Err(ActionError::new("disk full").with_details(json!({ "free": 0 })));
        let error = inner.context("writing model.bin").context("exporting").unwrap_err();
        assert_eq!(error.message(), "exporting: writing model.bin: disk full");
        assert_eq!(error.details(), &json!({ "free": 0 }));
    }

    #[test]
    fn a_cancellation_is_not_reworded() {
        let cancelled: Result<(), ActionError> = Err(ActionError::cancelled());
        let error = cancelled.context("training").unwrap_err();
        assert!(error.is_cancelled());
        assert_eq!(error.message(), ActionError::cancelled().message());
    }

    #[test]
    fn the_kind_and_details_of_a_wrapped_error_are_kept() {
        let timed_out: Result<(), ActionError> = Err(ActionError::new("step ran out of time")
            .with_kind(crate::FailureKind::TimedOut)
            .with_details(json!({ "step": "train" })));
        let error = timed_out.context("running the workflow").unwrap_err();
        assert_eq!(error.kind(), crate::FailureKind::TimedOut);
        assert_eq!(error.message(), "running the workflow: step ran out of time");
        assert_eq!(error.details(), &json!({ "step": "train" }));
    }

    #[test]
    fn a_missing_option_becomes_the_context_and_the_closure_runs_only_on_error() {
        assert_eq!(
            Some(3).with_context(|| -> String { panic!("not on success") }).unwrap(),
            3
        );
        let error = None::<u8>
            .with_context(|| format!("no column {:?}", "label"))
            .unwrap_err();
        assert_eq!(error.message(), "no column \"label\"");
    }
}
