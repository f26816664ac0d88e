//! Command-line arguments of `loader` (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    Jobs(crate::elsewhere::JobsArgs),
    /// Write one self-contained HTML page (charts, params, outcome, logs)
    /// of a run's events file or a batch's results file.
    Report(crate::report_command::ReportArgs),
    /// Watch a plugin crate: rebuild it on every change and run the action
    /// again with the same params.
    Dev(crate::dev_command::DevArgs),
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
    #[arg(long, value_name = "BYTES", default_value_t = loader::input_file::DEFAULT_MAX_PARAMS_BYTES)]
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
    pub elsewhere: crate::elsewhere::ElsewhereArgs,

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
