//! What a run needs from its flags, shared by a local run, a batch and a run
//! on Ray: its settings (environment, checkpoint), time limits, isolation
//! options, sinks (terminal, JSON lines, events file), the environment a
//! grant adds, Ctrl-C, and a failed action as the command's error.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loader::events::{
    open_events_file, Event, EventKind, EventSink, FanOut, Flush, JsonlSink, MappedJsonlSink, RunInfo, TerminalSink,
    TracingSink,
};
use loader::isolate::{ChildCommand, Interrupts, IsolationOptions};
use loader::run::env_hint::EnvHintSink;
use loader::run::environment::EnvironmentBuilder;
use loader::run::host::RunSettings;
use loader::run::runner::Deadline;
use plugin_api::{ActionFailure, FailureKind, PluginEnvironment};
use serde_json::{json, Value};

use crate::cli::RunArgs;
use crate::ctrl_c::{self, OnCtrlC};
use crate::exit_code::{CliError, ExitCode};

/// The longest `--timeout` or `--grace` accepted: a year.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// The smallest `--max-event-bytes` accepted (a result must still fit).
const MIN_EVENT_BYTES: usize = 1024;

/// The command that isolated children run: the loader itself.
pub(crate) fn child_command(what: &str) -> Result<ChildCommand, CliError> {
    ChildCommand::current_exe(&["__child"]).map_err(|e| {
        CliError::new(
            ExitCode::ActionFailed,
            format!("cannot find the loader executable to {what}: {e}"),
        )
    })
}

/// Ctrl-C, SIGTERM and SIGHUP ask the action to cancel (in-process: through
/// the run's cancel flag; isolated: the supervisor forwards it, and kills
/// the action's process group if it has not stopped after the grace
/// period). A second one kills an isolated action, or ends the loader when
/// the action runs in-process.
pub(crate) fn interrupt_on_ctrl_c(settings: &RunSettings, in_process: bool) -> Interrupts {
    let on = OnCtrlC {
        first: "asking the action to stop (interrupt again to kill it)",
        unless_installed: "cancel the action",
        exit_at: if in_process { 2 } else { 3 },
        stop: None,
    };
    ctrl_c::interrupt_on_ctrl_c(settings, on)
}

/// Reads `--checkpoint`: `CATEGORY=PATH` or a JSON object, kept as given
/// (as the original keeps its checkpoint dict; `category` and `path` may be
/// absent or null, but are strings otherwise).
fn read_checkpoint(arg: &str) -> Result<Value, CliError> {
    if arg.trim_start().starts_with('{') {
        let value: Value =
            serde_json::from_str(arg).map_err(|e| CliError::usage(format!("--checkpoint is not valid JSON: {e}")))?;
        for field in ["category", "path"] {
            if value.get(field).is_some_and(|v| !v.is_string() && !v.is_null()) {
                return Err(CliError::usage(format!(
                    "--checkpoint field {field:?} must be a string"
                )));
            }
        }
        return Ok(value);
    }
    match arg.split_once('=') {
        Some((category, path)) if !category.is_empty() && !path.is_empty() => {
            Ok(json!({ "category": category, "path": path }))
        }
        _ => Err(CliError::usage(format!(
            "--checkpoint {arg:?} is not CATEGORY=PATH or a JSON object"
        ))),
    }
}

pub(crate) fn settings(args: &RunArgs) -> Result<RunSettings, CliError> {
    let mut env = EnvironmentBuilder::new().with_process_vars(&args.env_prefix);
    for file in &args.env_file {
        env = env.with_env_file(file).map_err(|e| CliError::usage(e.to_string()))?;
    }
    for pair in &args.env {
        env = env.with_pair(pair).map_err(|e| CliError::usage(e.to_string()))?;
    }
    let checkpoint = args.checkpoint.as_deref().map(read_checkpoint).transpose()?;
    Ok(RunSettings {
        env: env.build(),
        job_id: args.job_id.clone(),
        checkpoint,
        ..RunSettings::default()
    })
}

/// A number of seconds from the command line: finite, not negative, at
/// most [`MAX_SECONDS`].
pub(crate) fn seconds(value: f64, flag: &str) -> Result<Duration, CliError> {
    if !(0.0..=MAX_SECONDS).contains(&value) {
        return Err(CliError::usage(format!(
            "{flag} must be a number of seconds from 0 to {MAX_SECONDS} (a year), not {value}"
        )));
    }
    Duration::try_from_secs_f64(value).map_err(|e| CliError::usage(format!("{flag}: {e}")))
}

/// How an isolated run of `args` is supervised: `--max-event-bytes` and
/// `--grace`, for one run and for each line of a local batch alike.
pub(crate) fn isolation_options(args: &RunArgs) -> Result<IsolationOptions, CliError> {
    if args.max_event_bytes < MIN_EVENT_BYTES {
        return Err(CliError::usage(format!(
            "--max-event-bytes must be at least {MIN_EVENT_BYTES}"
        )));
    }
    Ok(IsolationOptions {
        max_event_bytes: args.max_event_bytes,
        interrupt_grace: seconds(args.grace, "--grace")?,
        ..IsolationOptions::default()
    })
}

pub(crate) fn deadline(args: &RunArgs) -> Result<Option<Deadline>, CliError> {
    let grace = seconds(args.grace, "--grace")?;
    args.timeout
        .map(|t| {
            Ok(Deadline {
                timeout: seconds(t, "--timeout")?,
                grace,
            })
        })
        .transpose()
}

/// Where a run's JSONL stream went, to check once the run is over: an
/// event that could not be written is an error, never a silent loss.
pub(crate) struct EventsOutput {
    name: String,
    first_error: Box<dyn Fn() -> Option<String>>,
}

impl EventsOutput {
    fn new<S: EventSink + 'static>(name: &str, sink: &Arc<S>, error: fn(&S) -> Option<String>) -> Self {
        let sink = sink.clone();
        EventsOutput {
            name: name.to_owned(),
            first_error: Box::new(move || error(&sink)),
        }
    }

    pub(crate) fn failure(&self) -> Option<CliError> {
        (self.first_error)().map(|error| {
            CliError::new(
                ExitCode::EventsLost,
                format!(
                    "events could not be written to {}: {error}; the event stream is incomplete",
                    self.name
                ),
            )
        })
    }
}

/// A run's sinks, and where its JSONL stream goes.
pub(crate) struct RunSinks {
    pub(crate) sink: Arc<dyn EventSink>,
    /// The JSONL stream took stdout (so the result is not printed there).
    pub(crate) jsonl_on_stdout: bool,
    pub(crate) output: Option<EventsOutput>,
}

/// The sinks of a run: the terminal (stderr) unless quiet, and the JSONL
/// stream if asked for.
///
/// The JSONL stream is live. An isolated run's supervisor flushes it
/// whenever the child's events stop coming for a moment, so lines are
/// buffered only while more are arriving. An in-process run writes a regular
/// file through a shared mapping (every line is in the file at once, see
/// `loader::events::file`), and other destinations a line at a time, since a
/// crashing plugin takes the loader's buffer with it. An events file is
/// locked for the run: a second run naming it is refused.
pub(crate) fn sinks(args: &RunArgs, verbose: bool) -> Result<RunSinks, CliError> {
    let mut sinks = FanOut::new().with(TracingSink);
    if !args.quiet {
        sinks.push(WithoutErrors(TerminalSink::stderr(verbose)));
    }
    let jsonl = |writer: Box<dyn Write + Send>| {
        Arc::new(if args.in_process {
            JsonlSink::new(writer, Flush::EachLine)
        } else {
            JsonlSink::new(writer, Flush::Buffered)
        })
    };
    let mut jsonl_on_stdout = false;
    let output = match args.events.as_deref() {
        None => None,
        Some("jsonl") | Some("-") => {
            jsonl_on_stdout = true;
            let sink = jsonl(Box::new(std::io::stdout()));
            sinks.push(sink.clone());
            // A reader that went away (`--events jsonl | head`) is no lost
            // stream: the run ends as it would have, as `run | head` does.
            Some(EventsOutput::new("stdout", &sink, |sink| {
                (sink.error_kind() != Some(std::io::ErrorKind::BrokenPipe))
                    .then(|| sink.error())
                    .flatten()
            }))
        }
        Some(path) => {
            let opened =
                open_events_file(Path::new(path)).map_err(|e| CliError::new(ExitCode::EventsLost, e.to_string()))?;
            if opened.mappable && args.in_process {
                let sink = Arc::new(MappedJsonlSink::new(opened.file));
                sinks.push(sink.clone());
                Some(EventsOutput::new(path, &sink, MappedJsonlSink::error))
            } else {
                let sink = jsonl(Box::new(opened.file));
                sinks.push(sink.clone());
                Some(EventsOutput::new(path, &sink, JsonlSink::error))
            }
        }
    };
    Ok(RunSinks {
        sink: Arc::new(sinks),
        jsonl_on_stdout,
        output,
    })
}

/// `sink` with the warning about variables the plugin read that are set
/// here but were not passed to it (see `loader::run::env_hint`), given to every
/// sink in it, the backend's too.
pub(crate) fn with_env_hints(sink: Arc<dyn EventSink>, args: &RunArgs) -> Arc<dyn EventSink> {
    Arc::new(EnvHintSink::new(sink, &args.env_prefix))
}

/// The plugin's environment with the granted variables of the loader's own
/// environment added (`--allow-env`, or declared and granted).
pub(crate) fn with_granted_env(env: &PluginEnvironment, names: &[String]) -> PluginEnvironment {
    let granted: std::collections::BTreeMap<String, String> = names
        .iter()
        .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
        .collect();
    PluginEnvironment::merge([env, &PluginEnvironment::new(granted)])
}

/// A failed action as an error, with advice for the kinds where there is some.
pub(crate) fn failure_error(failure: &ActionFailure, plugin: &str, action: &str) -> CliError {
    let error = CliError::from_failure(failure);
    if let Some(hint) = crate::sandbox_grants::denial_hint(&failure.message, plugin) {
        return error.with_help(hint);
    }
    match failure.kind {
        FailureKind::InvalidParams => error.with_help(format!("`loader info {plugin} {action}` shows the params")),
        FailureKind::TimedOut => {
            error.with_help("give it longer with --timeout SECONDS, or more time to stop with --grace SECONDS")
        }
        FailureKind::Crashed => error.with_help("--in-process under a debugger shows where the plugin crashed"),
        _ => error,
    }
}

/// Passes every event but the run's error to the terminal: `main` prints
/// that one, in the same `error:` style as every other error. An action
/// that called `exit()` in-process ends the loader before `main` can print
/// anything, so that error (kind `exited`) is passed on.
struct WithoutErrors<S>(S);

impl<S: EventSink> EventSink for WithoutErrors<S> {
    fn start(&self, run: &RunInfo) {
        self.0.start(run)
    }

    fn emit(&self, run: &RunInfo, event: &Event) {
        let exited = event.data.get("kind").and_then(Value::as_str) == Some(loader::run::in_process_exit::EXITED_KIND);
        if event.kind != EventKind::Error || exited {
            self.0.emit(run, event)
        }
    }

    fn finish(&self, run: &RunInfo) {
        self.0.finish(run)
    }

    fn flush(&self) {
        self.0.flush()
    }

    /// Only an error's data is read here, and an error's data is never raw.
    fn takes_raw_data(&self) -> bool {
        self.0.takes_raw_data()
    }
}
