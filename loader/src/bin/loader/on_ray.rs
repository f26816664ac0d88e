//! `loader run` beyond one local run: `--on ray` (a job on a Ray cluster
//! running the action in its entrypoint or as a Ray task, followed or
//! `--detach`ed), `--params-each` batches (local isolated children, or one
//! Ray job whose lines are tasks). The work is done by `loader::ray` and
//! `loader::run::batch`; this module turns flags into calls and outcomes
//! into output and exit codes, the same way `commands::run` does for a
//! local run (`commands::jobs` manages the jobs on a cluster).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use loader::events::{Event, EventSink, Level, ProgressTracker, RunInfo, TerminalSink};
use loader::find::manifest_cache::CatalogPlugin;
use loader::isolate::ChildCommand;
use loader::ray::submit::{mode_of, Upload};
use loader::ray::{
    follow_job, BatchReport, JobsApi, Listener, LoaderCommand, PackageSpec, RayMode, RunSpec, StopWhen, Submitter,
};
use loader::run::batch::{self, BatchOptions, BatchProgress, IsolatedLines, LineOutcome, StopFlag};
use loader::run::host::RunSettings;
use loader::run::runner::Deadline;
use loader::sandbox::SandboxMode;
use plugin_api::{ActionManifest, ActionResources};

use crate::cli::{MethodArg, RunArgs, Target};
use crate::ctrl_c::{interrupt_on_ctrl_c, OnCtrlC};
use crate::exit_code::{CliError, ExitCode};
use crate::run_setup::{failure_error, isolation_options, sinks, with_env_hints, RunSinks};
use crate::stdout::print_json;

pub(crate) fn ray_error(e: impl std::fmt::Display) -> CliError {
    CliError::new(ExitCode::ActionFailed, e.to_string())
}

/// Runs what `args` asks for beyond one local run: `action` of `plugin`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    plugin: &CatalogPlugin,
    action: &ActionManifest,
    args: &RunArgs,
    params: &str,
    settings: RunSettings,
    deadline: Option<Deadline>,
    verbose: bool,
    sandbox: SandboxMode,
) -> Result<ExitCode, CliError> {
    let on_ray = args.elsewhere.on == Target::Ray;
    if !on_ray {
        for (set, flag) in [
            (args.elsewhere.detach, "--detach"),
            (args.elsewhere.method.is_some(), "--method"),
        ] {
            if set {
                return Err(CliError::usage(format!("{flag} needs --on ray")));
            }
        }
    }
    let mode = match args.elsewhere.method {
        Some(MethodArg::Job) => RayMode::Job,
        Some(MethodArg::Task) => RayMode::Task,
        None if on_ray => mode_of(&action.name, action.method).map_err(|e| CliError::usage(e.to_string()))?,
        None => RayMode::Job,
    };
    match &args.elsewhere.params_each {
        Some(file) => run_batch(plugin, action, args, file, settings, deadline, sandbox),
        None => run_on_ray(plugin, action, args, params, settings, deadline, verbose, mode, sandbox),
    }
}

/// The sandbox of the runs on the cluster: `--sandbox` as here, and the
/// grants this machine resolves (checked here first, so that a plugin
/// whose permissions were not granted fails before anything is uploaded;
/// the cluster's loader has no grant book), as flags of its loader; and
/// the names of the variables of this machine's environment granted to
/// the plugin (their values go into the package).
fn sandbox_on_cluster(
    args: &RunArgs,
    plugin: &CatalogPlugin,
    action: &ActionManifest,
    sandbox: SandboxMode,
) -> Result<(Vec<String>, Vec<String>), CliError> {
    let mut flags = vec!["--sandbox".to_owned(), sandbox.name().to_owned()];
    let mut env = Vec::new();
    if !args.in_process {
        let (grants, granted_env) = crate::sandbox_grants::forwarded_grants(args, sandbox, &plugin.manifest, action)?;
        flags.extend(grants);
        env = granted_env;
    }
    if let Some(memory) = args.elsewhere.memory {
        flags.extend(["--memory".to_owned(), memory.to_string()]);
    }
    Ok((flags, env))
}

/// The loader command every run on the cluster starts with.
pub(crate) fn loader_command(
    args: &RunArgs,
    plugin: &CatalogPlugin,
    settings: &RunSettings,
    deadline: Option<Deadline>,
    api: &JobsApi,
    sandbox: Vec<String>,
) -> LoaderCommand {
    LoaderCommand {
        plugin: plugin.manifest.code.clone(),
        action: args.action.clone(),
        deadline,
        in_process: args.in_process,
        agent_address: Some(api.address().to_owned()),
        max_event_bytes: args.max_event_bytes,
        max_params_bytes: args.max_params_bytes,
        grace_seconds: args.grace,
        checkpoint: settings.checkpoint.clone(),
        sandbox,
    }
}

/// The listener for what the run sends straight back, unless `--ray-listen
/// off` (or it cannot be set up: the log serves then, as `-v` says).
fn listener(args: &RunArgs, api: &JobsApi) -> Option<Listener> {
    match Listener::bind(&args.elsewhere.ray_listen, api.address()) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::info!("ray: {e}; the run is read from the job log only");
            None
        }
    }
}

fn package_spec(
    plugin: &CatalogPlugin,
    settings: &RunSettings,
    params: BTreeMap<usize, String>,
    run_spec: &RunSpec,
) -> Result<PackageSpec, CliError> {
    let loader = std::env::current_exe().map_err(|e| {
        CliError::new(
            ExitCode::ActionFailed,
            format!("cannot find the loader executable to package it: {e}"),
        )
    })?;
    Ok(PackageSpec {
        loader,
        library: plugin.path.clone(),
        params,
        env: settings.env.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        run_spec: run_spec.to_json(),
    })
}

/// Builds and uploads the package of `run_spec` (the run's params
/// numbered as `params` says), and says what it did unless quiet.
fn prepare(
    plugin: &CatalogPlugin,
    args: &RunArgs,
    settings: &RunSettings,
    params: BTreeMap<usize, String>,
    run_spec: &RunSpec,
    resources: ActionResources,
) -> Result<Submitter, CliError> {
    let spec = package_spec(plugin, settings, params, run_spec)?;
    let api = args.elsewhere.api();
    let (mut submitter, upload) =
        Submitter::prepare(api, &spec, &plugin.manifest.code, &args.action, run_spec.mode).map_err(ray_error)?;
    if !args.quiet {
        let size = submitter.package.zip.len() as f64 / 1e6;
        match upload {
            Upload::Uploaded => eprintln!("ray: uploaded package {} ({size:.1} MB)", submitter.package.name),
            Upload::Reused => eprintln!("ray: package {} is already on the cluster", submitter.package.name),
        }
    }
    submitter.resources = resources;
    submitter.python = args.elsewhere.ray_python.clone();
    Ok(submitter)
}

#[allow(clippy::too_many_arguments)]
fn run_on_ray(
    plugin: &CatalogPlugin,
    action: &ActionManifest,
    args: &RunArgs,
    params: &str,
    settings: RunSettings,
    deadline: Option<Deadline>,
    verbose: bool,
    mode: RayMode,
    sandbox: SandboxMode,
) -> Result<ExitCode, CliError> {
    let resources = args.elsewhere.resources(plugin, action)?;
    let api = args.elsewhere.api();
    let (sandbox_flags, granted_env) = sandbox_on_cluster(args, plugin, action, sandbox)?;
    let settings = RunSettings {
        env: crate::run_setup::with_granted_env(&settings.env, &granted_env),
        ..settings
    };
    let command = loader_command(args, plugin, &settings, deadline, &api, sandbox_flags);
    let mut run_spec = RunSpec::new(mode, &command, vec![1]);
    run_spec.resources = resources.clone();
    let submitter = prepare(
        plugin,
        args,
        &settings,
        BTreeMap::from([(1, params.to_owned())]),
        &run_spec,
        resources,
    )?;
    let id = args
        .job_id
        .clone()
        .unwrap_or_else(|| loader::ray::job::new_submission_id(&plugin.manifest.code));
    let listener = if args.elsewhere.detach {
        None
    } else {
        listener(args, &submitter.api)
    };
    let id = submitter.submit(&id, listener.as_ref()).map_err(ray_error)?;
    if args.elsewhere.detach {
        println!("{id}");
        return Ok(ExitCode::Success);
    }
    if !args.quiet {
        let how = match mode {
            RayMode::Task => "as a Ray task",
            _ => "in its entrypoint",
        };
        eprintln!(
            "ray: submitted job {id} to {}, running the action {how}",
            submitter.api.address()
        );
    }
    let RunSinks {
        sink,
        jsonl_on_stdout,
        output: events_output,
    } = sinks(args, verbose)?;
    let sink = with_env_hints(sink, args);
    let on = OnCtrlC {
        first: "stopping the Ray job (Ctrl-C again to leave without waiting)",
        unless_installed: "stop the Ray job",
        exit_at: 2,
        stop: None,
    };
    let interrupts = interrupt_on_ctrl_c(&settings, on);
    let stop = StopWhen::for_run(deadline, interrupts);
    let run = RunInfo {
        job_id: Some(id.clone()),
        plugin: plugin.manifest.code.clone(),
        action: args.action.clone(),
    };
    let outcome = follow_job(&submitter.api, &id, listener, &run, &*sink, &stop);
    let events_failure = events_output.and_then(|output| output.failure());
    match outcome {
        Ok(result) => {
            if !jsonl_on_stdout {
                print_json(&result);
            }
            events_failure.map_or(Ok(ExitCode::Success), Err)
        }
        Err(failure) => {
            if let Some(lost) = events_failure {
                eprintln!("{lost}");
            }
            Err(failure_error(&failure, &plugin.manifest.code, &args.action))
        }
    }
}

/// Where the outcome lines go.
fn outcome_writer(path: Option<&PathBuf>) -> Result<Box<dyn Write + Send>, CliError> {
    match path {
        None => Ok(Box::new(std::io::stdout())),
        Some(path) => File::create(path)
            .map(|f| Box::new(f) as Box<dyn Write + Send>)
            .map_err(|e| CliError::usage(format!("cannot create the results file `{}`: {e}", path.display()))),
    }
}

/// The batch's progress bar and failure messages on the terminal.
struct BatchDisplay {
    sink: Option<TerminalSink>,
    tracker: ProgressTracker,
    run: RunInfo,
}

impl BatchDisplay {
    fn show(&self, outcome: &LineOutcome, progress: BatchProgress) {
        let Some(sink) = &self.sink else { return };
        if let Err(failure) = &outcome.result {
            let text = format!(
                "line {} failed after {} attempt(s): {}",
                outcome.line, outcome.attempts, failure.message
            );
            sink.emit(&self.run, &Event::message(Level::Warning, text));
        }
        if let Ok(Some(event)) = self
            .tracker
            .update(Some("batch"), progress.done as u64, progress.total as u64)
        {
            sink.emit(&self.run, &event);
        }
    }

    fn finish(&self, end: BatchProgress) {
        let Some(sink) = &self.sink else { return };
        for event in self.tracker.flush() {
            sink.emit(&self.run, &event);
        }
        let level = if end.failed == 0 {
            Level::Success
        } else {
            Level::Warning
        };
        let text = format!(
            "batch: {} of {} succeeded, {} failed",
            end.done - end.failed,
            end.total,
            end.failed
        );
        sink.emit(&self.run, &Event::message(level, text));
        sink.finish(&self.run);
    }
}

fn run_batch(
    plugin: &CatalogPlugin,
    action: &ActionManifest,
    args: &RunArgs,
    file: &Path,
    settings: RunSettings,
    deadline: Option<Deadline>,
    sandbox: SandboxMode,
) -> Result<ExitCode, CliError> {
    // The same reader as `--params @FILE`: a regular file, of bounded size.
    let text = loader::run::input_file::read_text(
        file,
        "params-each file",
        args.max_params_bytes,
        " (raise it with --max-params-bytes)",
    )
    .map_err(|e| CliError::usage(e.to_string()))?;
    let lines = batch::read_lines(&text).map_err(|e| CliError::usage(format!("{}: {e}", file.display())))?;
    let batch_id = args
        .job_id
        .clone()
        .unwrap_or_else(|| loader::ray::job::new_submission_id(&plugin.manifest.code));
    let stop = Arc::new(StopFlag::default());
    let on = OnCtrlC {
        first: "stopping the batch (Ctrl-C again to leave without waiting)",
        unless_installed: "stop the batch",
        exit_at: 2,
        stop: Some(stop.clone()),
    };
    let interrupts = interrupt_on_ctrl_c(&settings, on);
    let mut report = BatchOutput {
        writer: outcome_writer(args.elsewhere.results.as_ref())?,
        write_failed: None,
        display: BatchDisplay {
            sink: (!args.quiet).then(|| TerminalSink::stderr(false)),
            tracker: ProgressTracker::new(Duration::ZERO),
            run: RunInfo {
                job_id: Some(batch_id.clone()),
                plugin: plugin.manifest.code.clone(),
                action: args.action.clone(),
            },
        },
    };
    if let Some(sink) = &report.display.sink {
        sink.start(&report.display.run);
    }
    let end = match args.elsewhere.on {
        Target::Ray => {
            let resources = args.elsewhere.resources(plugin, action)?;
            let api = args.elsewhere.api();
            let numbers = lines.iter().map(|l| l.number).collect();
            let (sandbox_flags, granted_env) = sandbox_on_cluster(args, plugin, action, sandbox)?;
            let settings = RunSettings {
                env: crate::run_setup::with_granted_env(&settings.env, &granted_env),
                ..settings
            };
            let command = loader_command(args, plugin, &settings, deadline, &api, sandbox_flags);
            let mut run_spec = RunSpec::new(RayMode::Batch, &command, numbers);
            run_spec.resources = resources.clone();
            run_spec.retries = args.elsewhere.retries;
            run_spec.parallel = args.elsewhere.parallel.map(usize::from);
            let params = lines.iter().map(|l| (l.number, l.params.clone())).collect();
            let submitter = prepare(plugin, args, &settings, params, &run_spec, resources)?;
            let listener = listener(args, &submitter.api);
            if !args.quiet {
                eprintln!(
                    "ray: submitting batch {batch_id} to {}: {} lines, each a Ray task",
                    submitter.api.address(),
                    lines.len()
                );
            }
            loader::ray::run_batch(&submitter, &batch_id, listener, &lines, &interrupts, &mut report)
                .map_err(ray_error)?
        }
        Target::Local => {
            let runner = IsolatedLines {
                sandbox: crate::sandbox_grants::run_sandbox(args, sandbox, &plugin.manifest, action)?,
                child: ChildCommand::current_exe(&["__child"]).map_err(|e| {
                    CliError::new(
                        ExitCode::ActionFailed,
                        format!("cannot find the loader executable to isolate the runs: {e}"),
                    )
                })?,
                library: plugin.path.clone(),
                plugin: plugin.manifest.code.clone(),
                action: args.action.clone(),
                settings: RunSettings {
                    env: crate::run_setup::with_granted_env(&settings.env, &args.permissions.allow_env),
                    ..settings
                },
                deadline,
                options: isolation_options(args)?,
                interrupts,
                batch_id: batch_id.clone(),
            };
            let options = BatchOptions {
                parallel: usize::from(args.elsewhere.parallel.unwrap_or(1)),
                retries: args.elsewhere.retries,
            };
            batch::run_batch(lines, &runner, options, &stop, |outcome, progress| {
                report.outcome(outcome, progress)
            })
        }
    };
    report.display.finish(end);
    if let Some(e) = report.write_failed {
        return Err(CliError::new(
            ExitCode::ActionFailed,
            format!("cannot write the batch outcomes: {e}"),
        ));
    }
    Ok(if end.failed == 0 {
        ExitCode::Success
    } else {
        ExitCode::ActionFailed
    })
}

/// Where a batch's outcomes go: one JSON line each to stdout or
/// `--results`, and the progress bar and messages on the terminal.
struct BatchOutput {
    writer: Box<dyn Write + Send>,
    write_failed: Option<String>,
    display: BatchDisplay,
}

impl BatchReport for BatchOutput {
    fn outcome(&mut self, outcome: &LineOutcome, progress: BatchProgress) {
        if let Err(e) = writeln!(self.writer, "{}", outcome.to_json()).and_then(|_| self.writer.flush()) {
            self.write_failed.get_or_insert_with(|| e.to_string());
        }
        self.display.show(outcome, progress);
    }

    fn notice(&mut self, level: Level, text: &str) {
        if let Some(sink) = &self.display.sink {
            sink.emit(&self.display.run, &Event::message(level, text.to_owned()));
        }
    }
}
