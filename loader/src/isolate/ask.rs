//! Questions only the plugin's own code can answer, asked of an isolated
//! child instead of loading the library into the loader: its full manifest
//! with the params schemas (`loader info`) and whether params are valid
//! (`run --dry-run`). The child is the same `loader __child` that runs
//! actions, in another [`ChildMode`], so it runs under the same isolation;
//! it loads the library, checks that it is the plugin described, and
//! answers as the result of a run. Loading and answering get the load
//! limit ([`IsolationOptions::load_timeout`]), after which the child is
//! killed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use plugin_api::{ActionFailure, FailureKind, PluginManifest};
use serde_json::Value;

use super::{
    run_in_child, ChildAction, ChildCommand, ChildMode, ExpectedPlugin, Interrupts, IsolationOptions, NotAsDescribed,
};
use crate::events::{EventSink, TracingSink};
use crate::run::host::RunSettings;
use crate::run::runner::Deadline;
use crate::sandbox::RunSandbox;

/// The largest answer read: a full manifest's schemas may be large.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// How long an answer that is late is waited for after the load limit.
const GRACE: Duration = Duration::from_millis(500);

/// The full manifest of the plugin `expected` describes, from a child that
/// loaded `library` and found it to be that plugin.
pub fn describe_isolated(
    child: &ChildCommand,
    library: &Path,
    expected: &ExpectedPlugin,
    options: IsolationOptions,
    sandbox: &RunSandbox,
) -> Result<Result<PluginManifest, ActionFailure>, NotAsDescribed> {
    let question = (ChildMode::Describe, "", "{}");
    let answer = ask(child, library, expected, question, options, sandbox)?;
    Ok(answer.and_then(|value| {
        serde_json::from_value(value)
            .map_err(|e| ActionFailure::new(FailureKind::Failed, format!("the plugin's manifest is not valid: {e}")))
    }))
}

/// Whether `params_json` are valid params of `action`, from a child that
/// loaded `library` and found it to be the plugin `expected` describes:
/// `Ok(())`, or the failure (`invalid_params` with one detail per field).
pub fn validate_isolated(
    child: &ChildCommand,
    library: &Path,
    expected: &ExpectedPlugin,
    action: &str,
    params_json: &str,
    options: IsolationOptions,
    sandbox: &RunSandbox,
) -> Result<Result<(), ActionFailure>, NotAsDescribed> {
    let question = (ChildMode::Validate, action, params_json);
    let answer = ask(child, library, expected, question, options, sandbox)?;
    Ok(answer.map(drop))
}

/// Asks the child what `mode` says of `action` with `params_json`, in the
/// sandbox a run would have.
fn ask(
    child: &ChildCommand,
    library: &Path,
    expected: &ExpectedPlugin,
    (mode, action, params_json): (ChildMode, &str, &str),
    options: IsolationOptions,
    sandbox: &RunSandbox,
) -> Result<Result<Value, ActionFailure>, NotAsDescribed> {
    let limit = options.load_timeout;
    let job = ChildAction {
        action,
        params_json,
        settings: RunSettings::default(),
        deadline: Some(Deadline {
            timeout: limit,
            grace: GRACE,
        }),
        interrupt: &Interrupts::default(),
        // What the library prints while loading shows in the loader's log.
        sink: Arc::new(TracingSink) as Arc<dyn EventSink>,
        options: IsolationOptions {
            max_event_bytes: options.max_event_bytes.max(MAX_ANSWER_BYTES),
            ..options
        },
        sandbox,
    };
    let answer = run_in_child(child, library, &expected.manifest.code, Some(expected), mode, job)?;
    Ok(answer.map_err(|failure| match failure.kind {
        FailureKind::TimedOut => ActionFailure::new(
            FailureKind::TimedOut,
            format!(
                "loading the plugin library and {} did not finish within {}s (--load-timeout); its process was killed",
                match mode {
                    ChildMode::Describe => "describing the plugin",
                    _ => "validating the params",
                },
                limit.as_secs_f64()
            ),
        ),
        _ => failure,
    }))
}
