//! `loader run PLUGIN ACTION`: one run, isolated in a sandboxed child (the
//! default) or in this process, or its params checked (`--dry-run`); runs
//! elsewhere and batches go to [`crate::on_ray`].

use std::path::Path;
use std::sync::Arc;

use loader::events::EventSink;
use loader::isolate::{run_isolated_as_described, validate_isolated, ChildAction, ExpectedPlugin, IsolationOptions};
use loader::run::host::RunSettings;
use loader::run::orphans::Orphans;
use loader::run::redact::Redactor;
use loader::run::runner::{run_action, Deadline};
use loader::sandbox::{RunSandbox, SandboxMode, WorkDir};
use plugin_api::ActionFailure;
use serde_json::Value;

use crate::cli::RunArgs;
use crate::exit_code::{CliError, ExitCode};
use crate::plugin_folder::{find_action, PluginFolder};
use crate::run_setup::{
    child_command, deadline, failure_error, interrupt_on_ctrl_c, isolation_options, settings, sinks, with_env_hints,
    with_granted_env, EventsOutput, RunSinks,
};
use crate::stdout::print_json;

/// Reads `--params`: inline JSON or `@file` (a regular file of at most
/// `--max-params-bytes`). The text is checked to be JSON without building
/// it in memory, and passed on as it is: the plugin parses it once.
fn read_params(arg: &str, max_bytes: u64) -> Result<String, CliError> {
    let text = match arg.strip_prefix('@') {
        Some(path) => loader::run::input_file::read_text(
            Path::new(path),
            "params file",
            max_bytes,
            " (raise it with --max-params-bytes)",
        )
        .map_err(|e| CliError::usage(e.to_string()))?,
        None => arg.to_owned(),
    };
    serde_json::from_str::<serde::de::IgnoredAny>(&text)
        .map_err(|e| CliError::usage(format!("--params is not valid JSON: {e}")))?;
    Ok(text)
}

pub(crate) fn run(
    folder: &mut PluginFolder,
    args: RunArgs,
    verbose: bool,
    sandbox: SandboxMode,
) -> Result<ExitCode, CliError> {
    if let Some(parent) = args.elsewhere.exit_with_parent {
        let alive = loader::run::in_process_exit::exit_with_parent(parent)
            .map_err(|e| CliError::new(ExitCode::ActionFailed, format!("--exit-with-parent: {e}")))?;
        if !alive {
            return Err(CliError::new(
                ExitCode::ActionFailed,
                format!("--exit-with-parent: the process {parent} that started the loader has already exited"),
            ));
        }
    }
    let params = read_params(&args.params, args.max_params_bytes)?;
    let mut settings = settings(&args)?;
    let connection =
        crate::backend::Connection::new(&args.backend, args.elsewhere.ray_agent.as_deref(), &settings.env)?;
    settings.clients = connection.clients();
    let deadline = deadline(&args)?;
    let options = isolation_options(&args)?;
    let request = RunRequest {
        args: &args,
        params: &params,
        settings,
        deadline,
        connection: &connection,
    };
    let options = IsolationOptions {
        load_timeout: folder.load_timeout(),
        ..options
    };
    if args.dry_run {
        return dry_run(folder, &args, &params, &connection, options, sandbox);
    }
    if args.elsewhere.is_set() {
        // The cluster's loader loads the library; this one only describes it.
        let plugin = &folder.describe(&args.plugin)?;
        let action = find_action(&plugin.manifest, &args.action)?;
        return crate::on_ray::run(
            plugin,
            action,
            &args,
            &params,
            request.settings,
            deadline,
            verbose,
            sandbox,
        );
    }
    if !args.in_process {
        return run_isolated_described(folder, request, options, verbose, sandbox);
    }
    let plugin = &folder.find(&args.plugin)?;
    find_action(&plugin.manifest, &args.action)?;
    let outputs = request.outputs(verbose)?;
    let _interrupts = interrupt_on_ctrl_c(&request.settings, true);
    loader::run::in_process_exit::report_exits();
    // In-process runs are trusted (no sandbox), but get a work directory
    // like any run, and nothing they start outlives them.
    let work_dir = WorkDir::create(None, args.permissions.keep_work_dir)
        .map_err(|e| CliError::new(ExitCode::ActionFailed, e.to_string()))?;
    let settings = RunSettings {
        env: with_granted_env(&request.settings.env, &args.permissions.allow_env),
        work_dir: Some(work_dir.path().to_owned()),
        ..request.settings.clone()
    };
    let orphans = Orphans::adopt();
    let outcome = run_action(plugin, &args.action, &params, settings, deadline, outputs.sink.clone());
    orphans.end();
    if work_dir.kept() {
        eprintln!("the run's work directory is kept at `{}`", work_dir.path().display());
    }
    request.conclude(outcome, &outputs, &plugin.manifest.code)
}

/// `run --dry-run`: validates the params as the run would, in an isolated
/// child that loads the library (or, with `--in-process`, here).
fn dry_run(
    folder: &mut PluginFolder,
    args: &RunArgs,
    params: &str,
    connection: &crate::backend::Connection,
    options: IsolationOptions,
    sandbox: SandboxMode,
) -> Result<ExitCode, CliError> {
    let (code, validated) = if args.in_process {
        let plugin = folder.find(&args.plugin)?;
        find_action(&plugin.manifest, &args.action)?;
        let validated = plugin
            .library
            .validate_params(&args.action, params)
            .map(|outcome| outcome.map_err(|text| ActionFailure::from_json(&text)));
        (plugin.manifest.code.clone(), validated.ok_or(plugin.api_version()))
    } else {
        let plugin = folder.describe(&args.plugin)?;
        find_action(&plugin.manifest, &args.action)?;
        let validated = if plugin.api_version.minor >= 1 {
            let expected = ExpectedPlugin::new(plugin.manifest.clone(), plugin.api_version);
            let child = child_command("validate the params")?;
            let sandbox = RunSandbox {
                mode: sandbox,
                ..RunSandbox::default()
            };
            match validate_isolated(&child, &plugin.path, &expected, &args.action, params, options, &sandbox) {
                Ok(validated) => Ok(validated),
                Err(stale) => return Err(folder.not_as_described(stale)),
            }
        } else {
            Err(plugin.api_version)
        };
        (plugin.manifest.code.clone(), validated)
    };
    match validated {
        Ok(Ok(())) => {
            eprintln!("params are valid for {code} {}", args.action);
            Ok(ExitCode::Success)
        }
        Ok(Err(mut failure)) => {
            redact_failure(connection.redactor(), &mut failure);
            Err(failure_error(&failure, &code, &args.action))
        }
        Err(api_version) => Err(CliError::usage(format!(
            "{code} was built against plugin-api {api_version}, which cannot validate params without running the action (needs >= 1.1)"
        ))),
    }
}

/// A run as asked for, once its flags are checked.
struct RunRequest<'a> {
    args: &'a RunArgs,
    params: &'a str,
    settings: RunSettings,
    deadline: Option<Deadline>,
    connection: &'a crate::backend::Connection,
}

/// Where a run's events go.
struct RunOutputs {
    sink: Arc<dyn EventSink>,
    jsonl_on_stdout: bool,
    events: Option<EventsOutput>,
    reporter: Option<Arc<loader::backend::BackendSink>>,
}

impl RunRequest<'_> {
    fn outputs(&self, verbose: bool) -> Result<RunOutputs, CliError> {
        let RunSinks {
            sink,
            jsonl_on_stdout,
            output: events,
        } = sinks(self.args, verbose)?;
        let (sink, reporter) = self.connection.sinks(sink, self.args.job_id.as_deref())?;
        Ok(RunOutputs {
            sink: with_env_hints(sink, self.args),
            jsonl_on_stdout,
            events,
            reporter,
        })
    }

    /// Prints the result, or turns the failure into the command's error.
    fn conclude(
        &self,
        outcome: Result<Value, plugin_api::ActionFailure>,
        outputs: &RunOutputs,
        code: &str,
    ) -> Result<ExitCode, CliError> {
        let events_failure = outputs.events.as_ref().and_then(EventsOutput::failure);
        match outcome {
            Ok(mut result) => {
                if !outputs.jsonl_on_stdout {
                    self.connection.redactor().redact_value(&mut result);
                    print_json(&result);
                }
                if let Some(lost) = events_failure {
                    return Err(lost);
                }
                self.connection.check_delivery(outputs.reporter.as_deref())?;
                Ok(ExitCode::Success)
            }
            Err(mut failure) => {
                redact_failure(self.connection.redactor(), &mut failure);
                if let Some(lost) = events_failure {
                    eprintln!("{lost}");
                }
                Err(failure_error(&failure, code, &self.args.action))
            }
        }
    }
}

/// Runs the action in a child process, from the folder's description of
/// the plugin: this process never loads the library (the manifest cache
/// or the load-checking child described it), the child loads it and runs
/// the action only if it is the plugin described. If it is not (it changed
/// since it was examined), nothing of it ran but its loading: that is the
/// run's error, and the description's cache entry is dropped.
fn run_isolated_described(
    folder: &mut PluginFolder,
    mut request: RunRequest,
    options: IsolationOptions,
    verbose: bool,
    sandbox: SandboxMode,
) -> Result<ExitCode, CliError> {
    let args = request.args;
    let plugin = folder.describe(&args.plugin)?;
    let run_sandbox = crate::sandbox_grants::run_sandbox(
        args,
        sandbox,
        &plugin.manifest,
        find_action(&plugin.manifest, &args.action)?,
    )?;
    request.settings.env = with_granted_env(&request.settings.env, &run_sandbox.grants.env);
    let child = child_command("isolate the run")?;
    let outputs = request.outputs(verbose)?;
    let interrupts = interrupt_on_ctrl_c(&request.settings, false);
    let expected = ExpectedPlugin::new(plugin.manifest.clone(), plugin.api_version);
    let action = ChildAction {
        action: &args.action,
        params_json: request.params,
        settings: request.settings.clone(),
        deadline: request.deadline,
        interrupt: &interrupts,
        sink: outputs.sink.clone(),
        options,
        sandbox: &run_sandbox,
    };
    match run_isolated_as_described(&child, &plugin.path, &expected, action) {
        Ok(outcome) => request.conclude(outcome, &outputs, &plugin.manifest.code),
        Err(stale) => Err(folder.not_as_described(stale)),
    }
}

/// Hides the run's secrets in a failure before it is printed.
fn redact_failure(redactor: &Redactor, failure: &mut ActionFailure) {
    failure.message = redactor.redact_str(&failure.message).into_owned();
    redactor.redact_value(&mut failure.details);
}
