//! The `list`, `info` and `run` commands: turn parsed arguments into calls
//! of the loader library and its output into text, JSON and an exit code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use loader::env_hint::EnvHintSink;
use loader::environment::EnvironmentBuilder;
use loader::events::{
    open_events_file, Event, EventKind, EventSink, FanOut, Flush, JsonlSink, MappedJsonlSink, RunInfo, TerminalSink,
    TracingSink,
};
use loader::host::RunSettings;
use loader::isolate::{
    describe_isolated, run_isolated_as_described, validate_isolated, ChildAction, ChildCommand, ExpectedPlugin,
    Interrupts, IsolationOptions,
};
use loader::load_check::serve_load_check;
use loader::manifest_cache::CatalogPlugin;
use loader::orphans::Orphans;
use loader::redact::Redactor;
use loader::runner::{run_action, Deadline};
use loader::sandbox::{RunSandbox, SandboxMode, WorkDir};
use plugin_api::{ActionFailure, ActionManifest, ActionResources, FailureKind, PluginEnvironment, PluginManifest};
use serde_json::{json, Value};

use crate::cli::{Cli, Command, RunArgs};
use crate::exit::{CliError, ExitCode};
use crate::params_table;
use crate::plugin_folder::PluginFolder;
use crate::stdout::outln;
use crate::suggest::did_you_mean;

/// The longest `--timeout` or `--grace` accepted: a year.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// The smallest `--max-event-bytes` accepted (a result must still fit).
const MIN_EVENT_BYTES: usize = 1024;

/// The environment variable naming the plugin folder.
pub const PLUGIN_DIR_VAR: &str = "LOADER_PLUGIN_DIR";

pub fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    check_no_load_check(&cli)?;
    let load_timeout = seconds(cli.load_timeout, "--load-timeout")?;
    let sandbox = cli.sandbox.mode();
    let folder = || {
        PluginFolder::open(
            &plugin_dir(cli.plugins.clone()),
            !cli.no_cache,
            !cli.no_load_check,
            load_timeout,
            sandbox,
        )
    };
    match cli.command {
        Command::List { json } => list(&mut folder()?, json),
        Command::Info { plugin, action, json } => info(&mut folder()?, &plugin, action.as_deref(), json),
        Command::Run(args) => run(&mut folder()?, *args, cli.verbose > 0, sandbox),
        Command::Grant(args) => crate::sandbox_cli::grant(folder, &args),
        Command::Sandbox {
            command: crate::cli::SandboxCommand::Check { json },
        } => crate::sandbox_cli::check(sandbox, json),
        Command::SandboxProbe { .. } => Ok(match loader::sandbox::probes::serve_probe() {
            0 => ExitCode::Success,
            2 => ExitCode::Usage,
            _ => ExitCode::ActionFailed,
        }),
        Command::Flush(args) => crate::connect::flush(&args),
        Command::New(args) => {
            let created = crate::scaffold::new_plugin(&args)?;
            eprint!("{}", created.next_steps());
            Ok(ExitCode::Success)
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "loader",
                &mut script,
            );
            crate::stdout::write(&String::from_utf8_lossy(&script));
            Ok(ExitCode::Success)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut page)
                .map_err(|e| CliError::new(ExitCode::ActionFailed, format!("cannot render the man page: {e}")))?;
            crate::stdout::write(&String::from_utf8_lossy(&page));
            Ok(ExitCode::Success)
        }
        Command::Jobs(args) => crate::elsewhere::jobs(args),
        Command::Report(args) => crate::report_command::report(&args),
        Command::Dev(args) => crate::dev_command::dev(args, cli.verbose),
        Command::Child => Ok(match loader::isolate::serve_child() {
            0 => ExitCode::Success,
            2 => ExitCode::Usage,
            _ => ExitCode::ActionFailed,
        }),
        Command::LoadCheck => Ok(match serve_load_check() {
            0 => ExitCode::Success,
            2 => ExitCode::Usage,
            _ => ExitCode::ActionFailed,
        }),
    }
}

/// `--no-load-check` loads every library of the folder into the loader
/// itself: refused (exit 2) but for `run --in-process`, whose point is to
/// run a trusted plugin in the loader's process.
fn check_no_load_check(cli: &Cli) -> Result<(), CliError> {
    let in_process = matches!(&cli.command, Command::Run(args) if args.in_process);
    if cli.no_load_check && !in_process {
        return Err(CliError::usage(
            "--no-load-check is allowed only with `run --in-process`: it loads every plugin library of the folder \
             into the loader's own process, where no plugin code runs otherwise",
        )
        .with_help("drop --no-load-check, or run trusted plugins with `run --in-process --no-load-check`"));
    }
    Ok(())
}

fn plugin_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os(PLUGIN_DIR_VAR).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("plugins"))
}

fn find_action<'a>(manifest: &'a PluginManifest, name: &str) -> Result<&'a ActionManifest, CliError> {
    manifest.action(name).ok_or_else(|| {
        let actions = manifest.action_names();
        let error = CliError::new(
            ExitCode::NotFound,
            format!("plugin {:?} has no action {name:?}", manifest.code),
        )
        .with_causes(vec![format!("actions: {}", list_or_none(&actions))]);
        match did_you_mean(name, actions.iter().map(AsRef::as_ref)) {
            Some(suggestion) => error.with_help(suggestion),
            None => error,
        }
    })
}

fn find_action_if_named(plugin: &CatalogPlugin, action: Option<&str>) -> Result<(), CliError> {
    action
        .map(|name| find_action(&plugin.manifest, name).map(drop))
        .unwrap_or(Ok(()))
}

/// The command that isolated children run: the loader itself.
fn child_command(what: &str) -> Result<ChildCommand, CliError> {
    ChildCommand::current_exe(&["__child"]).map_err(|e| {
        CliError::new(
            ExitCode::ActionFailed,
            format!("cannot find the loader executable to {what}: {e}"),
        )
    })
}

fn list_or_none<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ")
}

pub(crate) fn print_json(value: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

fn list(folder: &mut PluginFolder, as_json: bool) -> Result<ExitCode, CliError> {
    let discovery = folder.scan()?;
    let dir = folder.dir();
    if as_json {
        let plugins: Vec<Value> = discovery.plugins.iter().map(plugin_json).collect();
        let problems: Vec<Value> = discovery
            .problems
            .iter()
            .map(|p| {
                json!({
                    "path": p.path,
                    "kind": p.kind.as_str(),
                    "reason": p.reason,
                    "declared_api_version": p.declared_api_version.map(|v| v.to_string()),
                })
            })
            .collect();
        print_json(&json!({ "plugin_dir": dir, "plugins": plugins, "problems": problems }));
        return Ok(ExitCode::Success);
    }
    if discovery.plugins.is_empty() {
        outln!("no plugins in `{}`", dir.display());
    }
    for plugin in &discovery.plugins {
        let m = &plugin.manifest;
        outln!(
            "{} {}  ({}, plugin-api {})  {}",
            m.code,
            m.version,
            category_name(m),
            plugin.api_version,
            plugin.path.display()
        );
        if !m.description.is_empty() {
            outln!("  {}", m.description);
        }
        let width = m.actions.iter().map(|a| a.name.len()).max().unwrap_or(0);
        for action in &m.actions {
            outln!("  {:width$}  {}", action.name, action.description);
        }
    }
    if !discovery.problems.is_empty() {
        outln!("\nnot loaded:");
        for problem in &discovery.problems {
            outln!("  {problem}");
        }
    }
    Ok(ExitCode::Success)
}

fn category_name(manifest: &plugin_api::PluginManifest) -> String {
    serde_json::to_value(manifest.category)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn plugin_json(plugin: &CatalogPlugin) -> Value {
    let m = &plugin.manifest;
    json!({
        "code": m.code,
        "name": m.name,
        "version": m.version,
        "category": m.category,
        "description": m.description,
        "path": plugin.path,
        "plugin_api": plugin.api_version.to_string(),
        "actions": m.actions.iter().map(action_summary_json).collect::<Vec<_>>(),
        "permissions": m.permissions,
    })
}

/// An action in `list --json`: its name, description and run method, and
/// the resources it reserves on a cluster when it declares any.
fn action_summary_json(action: &ActionManifest) -> Value {
    let mut summary = json!({
        "name": action.name, "description": action.description, "method": action.method,
    });
    if !action.resources.is_empty() {
        summary["resources"] = serde_json::to_value(&action.resources).unwrap_or_default();
    }
    summary
}

/// `loader info`: the full manifest comes from an isolated child that loads
/// the library (the loader never does outside `--in-process`).
fn info(folder: &mut PluginFolder, name: &str, action: Option<&str>, as_json: bool) -> Result<ExitCode, CliError> {
    let plugin = &folder.describe(name)?;
    find_action_if_named(plugin, action)?;
    let expected = ExpectedPlugin::new(plugin.manifest.clone(), plugin.api_version);
    let options = IsolationOptions {
        load_timeout: folder.load_timeout(),
        ..IsolationOptions::default()
    };
    let sandbox = RunSandbox {
        mode: folder.sandbox(),
        ..RunSandbox::default()
    };
    let child = child_command("describe the plugin")?;
    let manifest = match describe_isolated(&child, &plugin.path, &expected, options, &sandbox) {
        Ok(described) => described.map_err(|failure| {
            CliError::new(
                ExitCode::ActionFailed,
                format!("{}: {}", plugin.path.display(), failure.message),
            )
        })?,
        Err(stale) => return Err(folder.not_as_described(stale)),
    };
    let actions: Vec<&ActionManifest> = manifest
        .actions
        .iter()
        .filter(|a| action.is_none_or(|name| a.name == name))
        .collect();
    if as_json {
        match action {
            Some(_) => print_json(&serde_json::to_value(actions[0]).unwrap_or_default()),
            None => print_json(&serde_json::to_value(&manifest).unwrap_or_default()),
        }
        return Ok(ExitCode::Success);
    }
    let m = &manifest;
    outln!(
        "{} ({}) {} — plugin-api {}",
        m.name,
        m.code,
        m.version,
        plugin.api_version
    );
    if !m.description.is_empty() {
        outln!("{}", m.description);
    }
    crate::stdout::write(&crate::sandbox_cli::permissions_text(m));
    for a in actions {
        outln!("\naction {} ({:?})", a.name, a.method);
        if !a.description.is_empty() {
            outln!("  {}", a.description);
        }
        if !a.resources.is_empty() {
            outln!("resources on a cluster: {}", resources_line(&a.resources));
        }
        outln!("params:");
        crate::stdout::write(&params_table::render(&params_table::param_rows(&a.params_schema)));
        if a.result_schema.is_some() {
            outln!("result: see the schema with --json");
        }
    }
    Ok(ExitCode::Success)
}

/// The declared resources as `loader info` shows them, with the problem
/// when a cluster could not grant them.
fn resources_line(resources: &ActionResources) -> String {
    let mut parts = Vec::new();
    if let Some(cpus) = resources.num_cpus {
        parts.push(format!("num_cpus {cpus}"));
    }
    if let Some(gpus) = resources.num_gpus {
        parts.push(format!("num_gpus {gpus}"));
    }
    if let Some(bytes) = resources.memory {
        parts.push(format!("memory {bytes} bytes"));
    }
    parts.extend(
        resources
            .resources
            .iter()
            .map(|(name, amount)| format!("{name} {amount}")),
    );
    let mut line = parts.join(", ");
    if let Err(problem) = resources.check() {
        line.push_str(&format!(" (invalid: {problem})"));
    }
    line
}

/// Ctrl-C, SIGTERM and SIGHUP ask the action to cancel (in-process: through
/// the run's cancel flag; isolated: the supervisor forwards it, and kills
/// the action's process group if it has not stopped after the grace
/// period). A second one kills an isolated action, or ends the loader when
/// the action runs in-process.
fn interrupt_on_ctrl_c(settings: &RunSettings, in_process: bool) -> Interrupts {
    let interrupts = Interrupts::default();
    let (counter, cancel) = (interrupts.clone(), settings.cancel.clone());
    let installed = ctrlc::set_handler(move || {
        counter.interrupt();
        cancel.cancel();
        if counter.count() == 1 {
            eprintln!("\ninterrupted: asking the action to stop (interrupt again to kill it)");
        } else if in_process || counter.count() > 2 {
            loader::exit_guard::exit_on_interrupt(ExitCode::ActionFailed as i32);
        }
    });
    if let Err(e) = installed {
        tracing::warn!("Ctrl-C will not cancel the action: {e}");
    }
    interrupts
}

/// Reads `--params`: inline JSON or `@file` (a regular file of at most
/// `--max-params-bytes`). The text is checked to be JSON without building
/// it in memory, and passed on as it is: the plugin parses it once.
fn read_params(arg: &str, max_bytes: u64) -> Result<String, CliError> {
    let text = match arg.strip_prefix('@') {
        Some(path) => loader::input_file::read_text(
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

fn settings(args: &RunArgs) -> Result<RunSettings, CliError> {
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
fn seconds(value: f64, flag: &str) -> Result<Duration, CliError> {
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

fn deadline(args: &RunArgs) -> Result<Option<Deadline>, CliError> {
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
/// here but were not passed to it (see `loader::env_hint`), given to every
/// sink in it, the backend's too.
pub(crate) fn with_env_hints(sink: Arc<dyn EventSink>, args: &RunArgs) -> Arc<dyn EventSink> {
    Arc::new(EnvHintSink::new(sink, &args.env_prefix))
}

fn run(folder: &mut PluginFolder, args: RunArgs, verbose: bool, sandbox: SandboxMode) -> Result<ExitCode, CliError> {
    if let Some(parent) = args.elsewhere.exit_with_parent {
        let alive = loader::exit_guard::exit_with_parent(parent)
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
        crate::connect::Connection::new(&args.backend, args.elsewhere.ray_agent.as_deref(), &settings.env)?;
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
        return crate::elsewhere::run(
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
    loader::exit_guard::report_exits();
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
    connection: &crate::connect::Connection,
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
    connection: &'a crate::connect::Connection,
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
    let run_sandbox = crate::sandbox_cli::run_sandbox(
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

/// The plugin's environment with the granted variables of the loader's own
/// environment added (`--allow-env`, or declared and granted).
pub(crate) fn with_granted_env(env: &PluginEnvironment, names: &[String]) -> PluginEnvironment {
    let granted: std::collections::BTreeMap<String, String> = names
        .iter()
        .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
        .collect();
    PluginEnvironment::merge([env, &PluginEnvironment::new(granted)])
}

/// Hides the run's secrets in a failure before it is printed.
fn redact_failure(redactor: &Redactor, failure: &mut ActionFailure) {
    failure.message = redactor.redact_str(&failure.message).into_owned();
    redactor.redact_value(&mut failure.details);
}

/// A failed action as an error, with advice for the kinds where there is some.
pub(crate) fn failure_error(failure: &ActionFailure, plugin: &str, action: &str) -> CliError {
    let error = CliError::from_failure(failure);
    if let Some(hint) = crate::sandbox_cli::denial_hint(&failure.message, plugin) {
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
        let exited = event.data.get("kind").and_then(Value::as_str) == Some(loader::exit_guard::EXITED_KIND);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lists_declared_resources_and_says_what_is_wrong_with_them() {
        let declared = ActionResources::new().num_cpus(2.0).memory(1024).resource("accel", 1.0);
        assert_eq!(resources_line(&declared), "num_cpus 2, memory 1024 bytes, accel 1");
        let broken = resources_line(&ActionResources::new().num_gpus(-1.0));
        assert_eq!(broken, "num_gpus -1 (invalid: resources.num_gpus = -1: negative)");
    }
}
