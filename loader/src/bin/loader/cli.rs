//! Command-line arguments of `loader` (clap).

use std::path::PathBuf;

use crate::exit_code::{CliError, ExitCode};
use clap::ValueEnum;
use clap::{Args, Parser, Subcommand};
use loader::find::manifest_cache::CatalogPlugin;
use loader::ray::api::resolve_address;
use loader::ray::job::DEFAULT_PYTHON;
use loader::ray::job_resources;
use loader::ray::JobsApi;
use loader::ray::ListenAt;
use loader::ray::ResourcesError;
use plugin_api::ActionManifest;
use plugin_api::ActionResources;
use std::collections::BTreeMap;
use std::ffi::OsString;

/// Discover action plugins in a folder and run their actions.
#[derive(Debug, Parser)]
#[command(name = "loader", version, about, propagate_version = true)]
pub struct Cli {
    /// The plugin folder [default: $LOADER_PLUGIN_DIR, else ./plugins]
    #[arg(long, global = true, value_name = "DIR")]
    pub plugins: Option<PathBuf>,

    /// More output: dev events and loader diagnostics (-vv for debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// With `run --in-process` only (trusted plugins): load the plugin
    /// libraries in the loader without first loading them in a checking
    /// child process. Any other command refuses it: outside --in-process,
    /// no plugin code ever runs in the loader's own process.
    #[arg(long, global = true)]
    pub no_load_check: bool,

    /// Seconds a plugin library may take to load in a child process (the
    /// load check, `info`, `--dry-run`, the start of a run); one that takes
    /// longer is skipped as a problem, or its child is killed.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30.0)]
    pub load_timeout: f64,

    /// Load every library of the folder instead of taking unchanged ones'
    /// descriptions from the manifest cache (for debugging).
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// The sandbox around every process that loads plugin code: `on` applies
    /// what the kernel offers and says what it lacks, `require` refuses to
    /// run unless all of it applies (exit 8), `off` runs plugins with all
    /// of your rights (a warning says so).
    #[arg(long, global = true, value_enum, default_value_t = SandboxArg::On, env = "LOADER_SANDBOX", value_name = "MODE")]
    pub sandbox: SandboxArg,

    #[command(subcommand)]
    pub command: Command,
}

/// `--sandbox`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxArg {
    On,
    Require,
    Off,
}

impl SandboxArg {
    pub fn mode(self) -> loader::sandbox::SandboxMode {
        match self {
            SandboxArg::On => loader::sandbox::SandboxMode::On,
            SandboxArg::Require => loader::sandbox::SandboxMode::Require,
            SandboxArg::Off => loader::sandbox::SandboxMode::Off,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every plugin with its version and actions, and every file that
    /// could not be loaded with the reason.
    List {
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// Show a plugin's actions, or one action, with a table of the params
    /// (their JSON Schema with --json).
    Info {
        /// Plugin code (or name, or library file stem).
        plugin: String,
        /// Action name.
        action: Option<String>,
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// Run an action; its result JSON goes to stdout.
    ///
    /// Progress on stderr is coalesced to one update per step every 100 ms, the last value always shown; each set_metrics call is a line (merged beyond a burst of 100 and then 10 a second per step) and a metrics summary ends the run. The --events stream keeps every update.
    Run(Box<RunArgs>),
    /// Deliver the job reports that earlier runs could not (kept in the
    /// state folder while the backend was unreachable) to the backend given
    /// by --backend or SYNAPSE_HOST.
    Flush(FlushArgs),
    /// Write a new plugin crate, ready to build and run.
    New(NewArgs),
    /// Grant a plugin, once, the permissions its manifest declares (paths,
    /// network, environment variables, programs); runs then need no
    /// --allow-* flag for them until the plugin declares a different set.
    Grant(GrantArgs),
    /// The sandbox on this system: what the kernel supports, and probes
    /// run in a sandboxed child, each with the outcome it must have.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these options.
    Man,
    /// Manage jobs on a Ray cluster (see `run --on ray`).
    Jobs(JobsArgs),
    /// Write one self-contained HTML page (charts, params, outcome, logs)
    /// of a run's events file or a batch's results file.
    Report(ReportArgs),
    /// Watch a plugin crate: rebuild it on every change and run the action
    /// again with the same params.
    Dev(DevArgs),
    /// Internal: the child side of an isolated run (request and events on
    /// its channel to the loader, fd 3).
    #[command(name = "__child", hide = true)]
    Child,
    /// Internal: loads the libraries listed on its channel to the loader
    /// (fd 3) and says there how far it got, so that a library that
    /// crashes while loading is found in a child.
    #[command(name = "__load-check", hide = true)]
    LoadCheck,
    /// Internal: runs the sandbox probes in a sandboxed child (request on
    /// fd 3) and answers with their outcomes.
    #[command(name = "__sandbox-probe", hide = true)]
    SandboxProbe {
        /// A token naming this check's probe processes (in their command line).
        token: Option<String>,
    },
}

impl Command {
    /// Whether this is one of the loader's own child processes.
    pub fn is_internal(&self) -> bool {
        matches!(self, Command::Child | Command::LoadCheck | Command::SandboxProbe { .. })
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Plugin code (or name, or library file stem).
    pub plugin: String,
    /// Action name.
    pub action: String,

    /// Params as JSON, or @FILE to read them from a file.
    #[arg(long, default_value = "{}", value_name = "JSON|@FILE")]
    pub params: String,

    /// The largest params file `--params @FILE` reads, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = loader::run::input_file::DEFAULT_MAX_PARAMS_BYTES)]
    pub max_params_bytes: u64,

    /// An environment variable for the plugin (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// A file of KEY=VALUE lines for the plugin's environment (repeatable):
    /// dotenv syntax (comments, `export`, quotes), but `$` is never expanded
    /// (write \$ or single-quote the value).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Process variables starting with this prefix are passed to the plugin
    /// (repeatable), under their full name (SYNAPSE_X stays SYNAPSE_X),
    /// except credentials: SYNAPSE_ACCESS_TOKEN, SYNAPSE_AGENT_TOKEN, the
    /// tenant, and any name with TOKEN, SECRET, PASSWORD, KEY or CREDENTIAL
    /// pass only with an explicit --env NAME="$NAME" or --env-file (ctx.client()
    /// needs none: the loader makes its calls). Nothing else from the shell
    /// environment is passed; a variable the action reads that is set but
    /// filtered out gets a warning saying how to pass it.
    #[arg(long = "env-prefix", value_name = "PREFIX", default_value = "SYNAPSE_")]
    pub env_prefix: Vec<String>,

    /// The job id the action sees.
    #[arg(long, value_name = "ID")]
    pub job_id: Option<String>,

    /// The checkpoint: CATEGORY=PATH (category `base` or a fine-tuned model
    /// name), or a JSON object with `category`, `path` and further fields.
    #[arg(long, value_name = "CATEGORY=PATH|JSON")]
    pub checkpoint: Option<String>,

    /// Write the event stream as JSON lines: `jsonl` for stdout (the result
    /// is then only in the `result` event), or a file path.
    #[arg(long, value_name = "jsonl|PATH")]
    pub events: Option<String>,

    /// No terminal output (progress bars, messages); the result and the
    /// JSONL stream are still written.
    #[arg(short, long)]
    pub quiet: bool,

    /// Validate the params and stop, without running the action.
    #[arg(long)]
    pub dry_run: bool,

    /// Ask the action to cancel after this many seconds, and stop waiting
    /// for it after a further grace period.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,

    /// Seconds an action gets to stop after being asked to cancel.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub grace: f64,

    /// Run the action in a child process (the default): a crash, an abort or
    /// a hang becomes a reported failure, and every event before it is kept.
    #[arg(long, conflicts_with = "in_process")]
    pub isolate: bool,

    /// The largest event (bytes of its JSON line) relayed from an isolated
    /// action; a larger one is replaced by an `event_too_large` note.
    #[arg(long, value_name = "BYTES", default_value_t = loader::isolate::DEFAULT_MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,

    /// Run the action inside the loader's own process, without the
    /// sandbox: for trusted plugins only (a crashing plugin takes the
    /// loader down with it, and the plugin has all of your rights).
    #[arg(long)]
    pub in_process: bool,

    #[command(flatten)]
    pub permissions: PermissionArgs,

    #[command(flatten)]
    pub elsewhere: ElsewhereArgs,

    #[command(flatten)]
    pub backend: BackendArgs,
}

/// What a run's sandbox grants beyond the defaults (in Deno's words), and
/// its limits.
#[derive(Debug, Args)]
pub struct PermissionArgs {
    /// Let the plugin read this file or folder (repeatable).
    #[arg(long = "allow-read", value_name = "PATH")]
    pub allow_read: Vec<PathBuf>,

    /// Let the plugin read and write this file or folder (repeatable).
    #[arg(long = "allow-write", value_name = "PATH")]
    pub allow_write: Vec<PathBuf>,

    /// Let the plugin connect to these TCP endpoints (HOST:PORT, comma
    /// separated, repeatable; Landlock filters by port, not by host); with
    /// no list, any network use.
    #[arg(long = "allow-net", value_name = "HOST:PORT", num_args = 0..=1, require_equals = true,
          value_delimiter = ',', action = clap::ArgAction::Append)]
    pub allow_net: Option<Vec<String>>,

    /// Pass this variable of the loader's environment to the plugin
    /// (repeatable).
    #[arg(long = "allow-env", value_name = "NAME")]
    pub allow_env: Vec<String>,

    /// Let the plugin execute this program (a path, or a name looked up in
    /// PATH; repeatable).
    #[arg(long = "allow-run", value_name = "PROGRAM")]
    pub allow_run: Vec<String>,

    /// The most processes the run may have at once [default: 256, or what
    /// the plugin declares and was granted].
    #[arg(long, value_name = "N")]
    pub max_processes: Option<u64>,

    /// Keep the run's work directory (printed at the end) instead of
    /// removing it.
    #[arg(long)]
    pub keep_work_dir: bool,
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Plugin code (or name, or library file stem); omit with --list.
    #[arg(required_unless_present = "list")]
    pub plugin: Option<String>,
    /// Forget the plugin's recorded grant instead.
    #[arg(long, conflicts_with = "list")]
    pub revoke: bool,
    /// List every recorded grant.
    #[arg(long)]
    pub list: bool,
    /// Where grants are kept [default: the state folder, see run --state-dir].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Report the kernel's sandbox features and run the probes; exits 8 if
    /// a probe that must be blocked was not.
    Check {
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
    },
}

/// The backend and agent connection of a run (see the book's "Connecting
/// to a backend", `docs/src/backend.md`).
#[derive(Debug, Args)]
pub struct BackendArgs {
    /// The Synapse backend API root; its token comes from
    /// SYNAPSE_ACCESS_TOKEN. With --job-id, the run is reported to it.
    #[arg(long, env = "SYNAPSE_HOST", value_name = "URL")]
    pub backend: Option<String>,

    /// The agent API root (`ctx.agent_client()`); its token comes from
    /// SYNAPSE_AGENT_TOKEN.
    #[arg(long, env = "SYNAPSE_AGENT_URL", value_name = "URL")]
    pub agent: Option<String>,

    /// Where undelivered job reports are kept [default:
    /// $XDG_STATE_HOME/synapse-loader, else ~/.local/state/synapse-loader].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Exit with code 6 when the run's reports could not all be delivered
    /// (otherwise the backend's health never changes the exit code).
    #[arg(long)]
    pub require_backend: bool,

    /// Seconds the end of a run waits for the backend to take its reports.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub backend_wait: f64,

    /// Seconds each backend or agent request may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub backend_timeout: f64,

    /// Also hide the value of this environment variable in every output
    /// (repeatable); names with TOKEN, SECRET, PASSWORD, KEY are hidden
    /// anyway.
    #[arg(long = "redact", value_name = "NAME")]
    pub redact: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FlushArgs {
    /// The backend to deliver to, with SYNAPSE_ACCESS_TOKEN (required).
    /// Only journals recorded for this backend are delivered: a journal
    /// naming another address is left in the state folder and reported,
    /// never sent there.
    #[arg(long, env = "SYNAPSE_HOST", value_name = "URL")]
    pub backend: Option<String>,

    /// The state folder to flush (see `run --state-dir`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Seconds each request may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub backend_timeout: f64,

    /// Seconds to spend on each journal at most.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub backend_wait: f64,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The folder to create, e.g. `my-plugin` or `plugins/my-plugin`; its
    /// last part is the plugin's code (the crate and library name) unless
    /// --name says otherwise. An existing folder must be empty.
    #[arg(value_name = "PATH")]
    pub dir: PathBuf,
    /// The plugin's code [default: the last part of PATH].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A class-based action (`BaseAction`) instead of a function.
    #[arg(long, conflicts_with = "workflow")]
    pub class: bool,
    /// A step-based workflow (`Step`s run by an `Orchestrator`).
    #[arg(long)]
    pub workflow: bool,
    /// The folder PATH is relative to [default: the current folder].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// The plugin-api crate to depend on by path [default: the repository's
    /// when run inside it, else the one this loader was built from].
    #[arg(long, value_name = "DIR")]
    pub api_path: Option<PathBuf>,
}

/// Where a run happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Target {
    /// On this machine.
    #[default]
    Local,
    /// As a job on a Ray cluster (see --ray-address).
    Ray,
}

/// The `run` flags for runs on a cluster and for batches.
#[derive(Debug, Args)]
pub struct ElsewhereArgs {
    /// Where to run: `local`, or `ray` for a job on a Ray cluster.
    #[arg(long, value_enum, default_value_t = Target::Local)]
    pub on: Target,

    /// The Ray Jobs API [default: $RAY_API_SERVER_ADDRESS, else
    /// $RAY_ADDRESS, else http://127.0.0.1:8265].
    #[arg(long, value_name = "URL")]
    pub ray_address: Option<String>,

    /// With --on ray: print the job's submission id and return at once
    /// (follow it with `loader jobs logs ID --follow`).
    #[arg(long)]
    pub detach: bool,

    /// With --on ray: how a single run runs there: `job` (the loader in the
    /// job's entrypoint, which holds the action's resources) or `task` (a
    /// Ray task holding them) [default: the action's run method]. A batch's
    /// lines are always tasks.
    #[arg(long, value_enum, value_name = "job|task")]
    pub method: Option<MethodArg>,

    /// With --on ray: where this machine listens for what the run sends
    /// straight back (events, batch outcomes): `auto` (the address it
    /// reaches the Jobs API from), an IP[:PORT], or `off` to read
    /// everything from the job's log (a second or two later).
    #[arg(long, value_name = "auto|off|ADDR", default_value = "auto")]
    pub ray_listen: ListenAt,

    /// With --on ray: the command that runs Ray's Python on the cluster,
    /// for the job's driver.
    #[arg(long, value_name = "COMMAND", env = "LOADER_RAY_PYTHON", default_value = DEFAULT_PYTHON)]
    pub ray_python: String,

    /// With --on ray: CPUs the job's entrypoint reserves.
    #[arg(long, value_name = "N")]
    pub num_cpus: Option<f64>,

    /// With --on ray: GPUs the job's entrypoint reserves.
    #[arg(long, value_name = "N")]
    pub num_gpus: Option<f64>,

    /// With --on ray: memory (bytes) the job's entrypoint reserves.
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<u64>,

    /// With --on ray: custom resources the job's entrypoint reserves, as a
    /// JSON object of numbers, e.g. '{"accelerator": 1}'.
    #[arg(long, value_name = "JSON")]
    pub resources: Option<String>,

    /// Run once per line of this JSONL file (one params object a line):
    /// locally in isolated children, or with --on ray as one job whose
    /// lines are Ray tasks.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["params", "detach", "events", "dry_run"])]
    pub params_each: Option<PathBuf>,

    /// With --params-each: runs at a time [default: 1 locally; on Ray, as
    /// many as the cluster's resources hold].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,

    /// With --params-each: further attempts of a failed run.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub retries: u32,

    /// With --params-each: write the outcome lines to this file instead
    /// of stdout.
    #[arg(long, value_name = "PATH", requires = "params_each")]
    pub results: Option<PathBuf>,

    /// Internal (set in jobs on Ray): the Jobs API `ctx.agent_client()`
    /// talks to, unless --agent names an agent. Not `--agent` itself, so
    /// that no SYNAPSE_AGENT_TOKEN of the job's environment goes to Ray.
    #[arg(long, value_name = "URL", hide = true)]
    pub ray_agent: Option<String>,

    /// Internal (set by the driver of a run on Ray): stop the run, as on
    /// Ctrl-C, when the process PID (the loader's parent) dies.
    #[arg(long, value_name = "PID", hide = true)]
    pub exit_with_parent: Option<u32>,
}

/// `--method`: how a single run runs on Ray.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    Job,
    Task,
}

impl ElsewhereArgs {
    /// Whether this is anything but one local run.
    pub fn is_set(&self) -> bool {
        self.on == Target::Ray || self.params_each.is_some() || self.detach
    }

    pub(crate) fn api(&self) -> JobsApi {
        JobsApi::new(&resolve_address(self.ray_address.as_deref()))
    }

    /// The resources the flags set.
    fn resource_flags(&self) -> Result<ActionResources, CliError> {
        let resources: BTreeMap<String, f64> = match &self.resources {
            None => BTreeMap::new(),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| CliError::usage(format!("--resources must be a JSON object of numbers: {e}")))?,
        };
        Ok(ActionResources {
            num_cpus: self.num_cpus,
            num_gpus: self.num_gpus,
            memory: self.memory,
            resources,
        })
    }

    /// What the job reserves: the action's declared resources, with the
    /// flags' values taking precedence.
    pub(crate) fn resources(
        &self,
        plugin: &CatalogPlugin,
        action: &ActionManifest,
    ) -> Result<ActionResources, CliError> {
        job_resources(&action.resources, &self.resource_flags()?, &plugin.path, &action.name).map_err(|e| match e {
            ResourcesError::Flag { .. } => CliError::usage(e.to_string()),
            ResourcesError::Declared { .. } => CliError::new(ExitCode::ActionFailed, e.to_string()),
        })
    }
}

/// `loader jobs`: manage jobs on a Ray cluster.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// The Ray Jobs API [default: $RAY_API_SERVER_ADDRESS, else
    /// $RAY_ADDRESS, else http://127.0.0.1:8265].
    #[arg(long, global = true, value_name = "URL")]
    pub ray_address: Option<String>,

    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List the cluster's jobs.
    List {
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// Show a job's state.
    Status {
        id: String,
        /// Print JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// Print a job's logs.
    Logs {
        id: String,
        /// Keep printing until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Stop a job.
    Stop { id: String },
}

#[derive(Debug, Args)]
#[command(
    override_usage = "loader dev [CRATE_DIR] ACTION [--params JSON|@FILE] [--release] [--clear] [-- RUN_OPTIONS...]"
)]
pub struct DevArgs {
    /// The plugin crate's folder (default: the current folder), then the
    /// action to run after each successful build.
    #[arg(value_name = "[CRATE_DIR] ACTION", num_args = 1..=2, required = true)]
    pub target: Vec<String>,

    /// Params of every run, as `loader run` takes them: JSON, or @FILE (read
    /// again on each run).
    #[arg(long, default_value = "{}", value_name = "JSON|@FILE")]
    pub params: String,

    /// Build with `cargo build --release`.
    #[arg(long)]
    pub release: bool,

    /// Clear the screen before each run (a failed build never clears it).
    #[arg(long)]
    pub clear: bool,

    /// Further `loader run` options for every run, after `--`, e.g.
    /// `-- --events run.jsonl --env BATCH_SIZE=8`.
    #[arg(last = true, value_name = "RUN_OPTIONS")]
    pub run_options: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run's events file (`run --events PATH`) or a batch's results file
    /// (`run --params-each ... --results PATH`).
    pub input: PathBuf,

    /// Where to write the page [default: FILE with the extension `.html`].
    #[arg(short, long, value_name = "PAGE")]
    pub output: Option<PathBuf>,

    /// Open the page in the browser ($BROWSER, else the desktop's default).
    #[arg(long)]
    pub open: bool,
}
