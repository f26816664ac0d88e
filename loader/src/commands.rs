//! The `list`, `info` and `run` commands: turn parsed arguments into calls
//! of the loader library and its output into text, JSON and an exit code.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use loader::discovery::{Discovery, LoadedPlugin};
use loader::environment::EnvironmentBuilder;
use loader::events::{EventSink, FanOut, Flush, JsonlSink, TerminalSink, TracingSink};
use loader::host::RunSettings;
use loader::isolate::{run_isolated, ChildCommand, Interrupts};
use loader::load_check::{scan_supervised, serve_load_check};
use loader::runner::{run_action, Deadline};
use plugin_api::ActionManifest;
use serde_json::{json, Value};

use crate::cli::{Cli, Command, RunArgs};
use crate::exit::{CliError, ExitCode};

/// The longest a JSONL line waits in the loader before its reader sees it.
const LIVE_STREAM_DELAY: Duration = Duration::from_millis(50);

/// How long one library may take to load in the checking child process.
const LOAD_CHECK_TIME_PER_FILE: Duration = Duration::from_secs(30);

/// The environment variable naming the plugin folder.
pub const PLUGIN_DIR_VAR: &str = "LOADER_PLUGIN_DIR";

pub fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    let dir = plugin_dir(cli.plugins);
    match cli.command {
        Command::List { json } => list(&dir, json),
        Command::Info { plugin, action, json } => info(&dir, &plugin, action.as_deref(), json),
        Command::Run(args) => run(&dir, *args, cli.verbose > 0),
        Command::Flush(args) => crate::connect::flush(&args),
        Command::Child => Ok(match loader::isolate::serve_child() {
            0 => ExitCode::Success,
            _ => ExitCode::ActionFailed,
        }),
        Command::LoadCheck { libraries } => Ok(match serve_load_check(&libraries) {
            0 => ExitCode::Success,
            _ => ExitCode::ActionFailed,
        }),
    }
}

fn plugin_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os(PLUGIN_DIR_VAR).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("plugins"))
}

/// Scans the plugin folder. Every library is first loaded in a child
/// process (see `loader::load_check`), so that one whose loading crashes or
/// hangs is reported and skipped instead of taking the loader down.
fn scan(dir: &Path) -> Result<Discovery, CliError> {
    let discovery = match ChildCommand::current_exe(&["__load-check", "--"]) {
        Ok(checker) => scan_supervised(dir, &checker, LOAD_CHECK_TIME_PER_FILE),
        Err(e) => {
            tracing::warn!("cannot find the loader executable to check plugin libraries in a child: {e}");
            Discovery::scan(dir)
        }
    }
    .map_err(|e| CliError::usage(e.to_string()))?;
    for problem in &discovery.problems {
        tracing::info!("skipped {problem}");
    }
    Ok(discovery)
}

fn find<'a>(discovery: &'a Discovery, dir: &Path, name: &str) -> Result<&'a LoadedPlugin, CliError> {
    discovery.find(name).ok_or_else(|| {
        let mut details = vec![format!(
            "plugins in {}: {}",
            dir.display(),
            discovery.codes().join(", ")
        )];
        details.extend(discovery.problems.iter().map(|p| format!("not loaded: {p}")));
        CliError::new(ExitCode::NotFound, format!("no plugin {name:?} in {}", dir.display())).with_details(details)
    })
}

fn find_action<'a>(plugin: &'a LoadedPlugin, name: &str) -> Result<&'a ActionManifest, CliError> {
    plugin.manifest.action(name).ok_or_else(|| {
        CliError::new(
            ExitCode::NotFound,
            format!("plugin {:?} has no action {name:?}", plugin.manifest.code),
        )
        .with_details(vec![format!("actions: {}", plugin.manifest.action_names().join(", "))])
    })
}

fn find_action_if_named(plugin: &LoadedPlugin, action: Option<&str>) -> Result<(), CliError> {
    action.map(|name| find_action(plugin, name).map(drop)).unwrap_or(Ok(()))
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

fn list(dir: &Path, as_json: bool) -> Result<ExitCode, CliError> {
    let discovery = scan(dir)?;
    if as_json {
        let plugins: Vec<Value> = discovery.plugins.iter().map(plugin_json).collect();
        let problems: Vec<Value> = discovery
            .problems
            .iter()
            .map(|p| json!({ "path": p.path, "reason": p.reason }))
            .collect();
        print_json(&json!({ "plugin_dir": dir, "plugins": plugins, "problems": problems }));
        return Ok(ExitCode::Success);
    }
    if discovery.plugins.is_empty() {
        println!("no plugins in {}", dir.display());
    }
    for plugin in &discovery.plugins {
        let m = &plugin.manifest;
        println!(
            "{} {}  ({}, plugin-api {})  {}",
            m.code,
            m.version,
            category_name(m),
            plugin.api_version(),
            plugin.path.display()
        );
        if !m.description.is_empty() {
            println!("  {}", m.description);
        }
        let width = m.actions.iter().map(|a| a.name.len()).max().unwrap_or(0);
        for action in &m.actions {
            println!("  {:width$}  {}", action.name, action.description);
        }
    }
    if !discovery.problems.is_empty() {
        println!("\nnot loaded:");
        for problem in &discovery.problems {
            println!("  {problem}");
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

fn plugin_json(plugin: &LoadedPlugin) -> Value {
    let m = &plugin.manifest;
    json!({
        "code": m.code,
        "name": m.name,
        "version": m.version,
        "category": m.category,
        "description": m.description,
        "path": plugin.path,
        "plugin_api": plugin.api_version().to_string(),
        "actions": m.actions.iter().map(|a| json!({
            "name": a.name, "description": a.description, "method": a.method,
        })).collect::<Vec<_>>(),
    })
}

fn info(dir: &Path, name: &str, action: Option<&str>, as_json: bool) -> Result<ExitCode, CliError> {
    let discovery = scan(dir)?;
    let plugin = find(&discovery, dir, name)?;
    find_action_if_named(plugin, action)?;
    let manifest = plugin
        .full_manifest()
        .map_err(|e| CliError::new(ExitCode::ActionFailed, format!("{}: {e}", plugin.path.display())))?;
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
    println!(
        "{} ({}) {} — plugin-api {}",
        m.name,
        m.code,
        m.version,
        plugin.api_version()
    );
    if !m.description.is_empty() {
        println!("{}", m.description);
    }
    for a in actions {
        println!("\naction {} ({:?})", a.name, a.method);
        if !a.description.is_empty() {
            println!("  {}", a.description);
        }
        println!("params schema:");
        print_json(&a.params_schema);
        if let Some(result) = &a.result_schema {
            println!("result schema:");
            print_json(result);
        }
    }
    Ok(ExitCode::Success)
}

/// Ctrl-C asks the action to cancel (in-process: through the run's cancel
/// flag; isolated: the supervisor forwards it). A second Ctrl-C kills an
/// isolated action, or ends the loader when the action runs in-process.
fn interrupt_on_ctrl_c(settings: &RunSettings, in_process: bool) -> Interrupts {
    let interrupts = Interrupts::default();
    let (counter, cancel) = (interrupts.clone(), settings.cancel.clone());
    let installed = ctrlc::set_handler(move || {
        counter.interrupt();
        cancel.cancel();
        if counter.count() == 1 {
            eprintln!("\ninterrupted: asking the action to stop (Ctrl-C again to kill it)");
        } else if in_process || counter.count() > 2 {
            std::process::exit(ExitCode::ActionFailed as i32);
        }
    });
    if let Err(e) = installed {
        tracing::warn!("Ctrl-C will not cancel the action: {e}");
    }
    interrupts
}

/// Reads `--params`: inline JSON or `@file`.
fn read_params(arg: &str) -> Result<String, CliError> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read the params file {path}: {e}")))?,
        None => arg.to_owned(),
    };
    serde_json::from_str::<Value>(&text).map_err(|e| CliError::usage(format!("--params is not valid JSON: {e}")))?;
    Ok(text)
}

/// Reads `--checkpoint`: `CATEGORY=PATH` or a JSON object.
fn read_checkpoint(arg: &str) -> Result<Value, CliError> {
    if arg.trim_start().starts_with('{') {
        let value: Value =
            serde_json::from_str(arg).map_err(|e| CliError::usage(format!("--checkpoint is not valid JSON: {e}")))?;
        for field in ["category", "path"] {
            if !value.get(field).is_some_and(Value::is_string) {
                return Err(CliError::usage(format!("--checkpoint needs a string field {field:?}")));
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

fn deadline(args: &RunArgs) -> Result<Option<Deadline>, CliError> {
    let seconds = |value: f64, flag: &str| {
        Duration::try_from_secs_f64(value)
            .map_err(|_| CliError::usage(format!("{flag} must be a non-negative number of seconds")))
    };
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

/// The sinks of a run: the terminal (stderr) unless quiet, and the JSONL
/// stream if asked for. Returns whether the JSONL stream took stdout.
///
/// The JSONL stream is live: a line reaches its reader within
/// [`LIVE_STREAM_DELAY`]. An in-process run writes every line through at
/// once instead, since a crashing plugin takes the loader's buffer with it.
fn sinks(args: &RunArgs, verbose: bool) -> Result<(Arc<dyn EventSink>, bool), CliError> {
    let mut sinks = FanOut::new().with(TracingSink);
    if !args.quiet {
        sinks.push(TerminalSink::stderr(verbose));
    }
    let jsonl = |writer: Box<dyn Write + Send>| {
        if args.in_process {
            JsonlSink::new(writer, Flush::EachLine)
        } else {
            JsonlSink::live(writer, LIVE_STREAM_DELAY)
        }
    };
    let mut jsonl_on_stdout = false;
    match args.events.as_deref() {
        None => {}
        Some("jsonl") | Some("-") => {
            jsonl_on_stdout = true;
            sinks.push(jsonl(Box::new(std::io::stdout())));
        }
        Some(path) => {
            let file = File::create(path)
                .map_err(|e| CliError::usage(format!("cannot create the events file {path}: {e}")))?;
            sinks.push(jsonl(Box::new(file)));
        }
    }
    Ok((Arc::new(sinks), jsonl_on_stdout))
}

fn run(dir: &Path, args: RunArgs, verbose: bool) -> Result<ExitCode, CliError> {
    let params = read_params(&args.params)?;
    let mut settings = settings(&args)?;
    let connection = crate::connect::Connection::new(&args.backend, &settings.env)?;
    settings.clients = connection.clients();
    let deadline = deadline(&args)?;
    let discovery = scan(dir)?;
    let plugin = find(&discovery, dir, &args.plugin)?;
    find_action(plugin, &args.action)?;

    if args.dry_run {
        return match plugin.library.validate_params(&args.action, &params) {
            Some(Ok(())) => {
                eprintln!("params are valid for {} {}", plugin.manifest.code, args.action);
                Ok(ExitCode::Success)
            }
            Some(Err(text)) => Err(CliError::usage(plugin_api::ActionFailure::from_json(&text).message)),
            None => Err(CliError::usage(format!(
                "{} was built against plugin-api {}, which cannot validate params without running the action (needs >= 1.1)",
                plugin.manifest.code,
                plugin.api_version()
            ))),
        };
    }

    let (sink, jsonl_on_stdout) = sinks(&args, verbose)?;
    let (sink, reporter) = connection.sinks(sink, args.job_id.as_deref())?;
    let interrupts = interrupt_on_ctrl_c(&settings, args.in_process);
    let outcome = if args.in_process {
        run_action(plugin, &args.action, &params, settings, deadline, sink)
    } else {
        let child = ChildCommand::current_exe(&["__child"]).map_err(|e| {
            CliError::new(
                ExitCode::ActionFailed,
                format!("cannot find the loader executable to isolate the run: {e}"),
            )
        })?;
        let code = plugin.manifest.code.clone();
        run_isolated(
            &child,
            &plugin.path,
            &code,
            &args.action,
            &params,
            settings,
            deadline,
            &interrupts,
            sink,
        )
    };
    match outcome {
        Ok(mut result) => {
            if !jsonl_on_stdout {
                connection.redactor().redact_value(&mut result);
                print_json(&result);
            }
            connection.check_delivery(reporter.as_deref())?;
            Ok(ExitCode::Success)
        }
        Err(mut failure) => {
            failure.message = connection.redactor().redact_str(&failure.message).into_owned();
            connection.redactor().redact_value(&mut failure.details);
            let mut details = Vec::new();
            if !failure.details.is_null() {
                details.push(format!("details: {}", failure.details));
            }
            Err(CliError::new(ExitCode::for_failure(failure.kind), failure.message)
                .with_details(details)
                .shown(!args.quiet))
        }
    }
}
