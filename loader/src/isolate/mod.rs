//! Crash isolation: runs an action in a child process and relays its events.
//!
//! The parent starts a child (normally the `loader` binary itself) in a
//! process group of its own, with a cleared environment
//! ([`child_env`]), stdin from `/dev/null`, stdout and stderr piped, and a
//! socket as fd 3: the event channel (module `channel`). On the channel the
//! parent sends an [`IsolatedRun`] as one JSON line, then `cancel` lines;
//! when the request describes the plugin ([`ExpectedPlugin`]), the child's
//! first line is its verdict on the library it loaded (`as-described`, or
//! `not-as-described` and nothing runs); then the child sends its events
//! back, a user event as a [frame](crate::events::frame) and any other as
//! its JSON line, batched while the
//! channel is busy and drained even on a crash (module `child_writer`), so
//! everything the action reported before a crash reaches the parent. Only the channel can report a result: whatever the plugin prints
//! on stdout or stderr is relayed as `output` events ([`output`]), and a
//! result counts only if the child then exits normally.
//!
//! The readers of the channel and the pipes write each batch into the
//! sinks themselves and flush them (module `relay`): nothing queues up in the
//! loader, a child reporting faster than the sinks write is slowed down,
//! and a reader of the stream sees each event as soon as the child pauses.
//!
//! The supervisor (module `supervise`) waits for the child's exit, not for the
//! end of its pipes (which programs the plugin started may hold open), and
//! then kills the child's whole process group: nothing the action started
//! outlives the run. The child is tied to the loader's life: on Linux it
//! gets SIGTERM when the loader dies, and it kills its group then, or when
//! its channel to the loader closes.
//!
//! The plugin's backend and agent calls (`ctx.client()`,
//! `ctx.agent_client()`) cross the same channel: the child holds no
//! endpoint and no credential, the loader makes each call and sends the
//! answer back (modules `client_wire`, `proxy`, `child_clients`).
//!
//! Besides running an action, the child answers the questions that need
//! the plugin's own code, so that the loader never loads a library itself
//! outside `--in-process` ([`ChildMode`], module `ask`): its full manifest
//! (`loader info`) and whether params are valid (`run --dry-run`).
//!
//! The child side is [`serve_child`].

mod ask;
pub(crate) mod bounded_lines;
mod channel;
mod channel_sink;
mod child;
mod child_clients;
pub mod child_env;
mod child_writer;
mod client_wire;
pub mod clients;
pub mod output;
mod proxy;
mod relay;
mod spawn;
mod supervise;
mod to_child;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use plugin_api::{ActionFailure, ApiVersion, FailureKind, PluginManifest};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use ask::{describe_isolated, validate_isolated};
pub use channel::DEFAULT_MAX_EVENT_BYTES;
pub use child::serve_child;
pub use clients::IsolatedClients;
pub use output::{OutputLimits, Stream};
pub(crate) use spawn::{spawn_with_channel, ChildOutput, Spawned};

use crate::events::{Event, EventKind, EventSink, RunInfo};
use crate::find::load_report::version_triple;
use crate::run::host::RunSettings;
use crate::run::runner::{failure_event, Deadline};
use crate::sandbox::{policy, Containment, RunSandbox, SandboxMode, SandboxPolicy, WorkDir};

/// What a child does with the library it loads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildMode {
    /// Runs the action (the default).
    #[default]
    Run,
    /// Validates the params against the action's schema and reports
    /// `{"valid": true}` as its result, or the failure (`run --dry-run`).
    Validate,
    /// Reports the plugin's full manifest, schemas included, as its result
    /// (`loader info`).
    Describe,
}

/// The request a parent sends its child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IsolatedRun {
    /// What the child does with the library.
    #[serde(default)]
    pub mode: ChildMode,
    pub library: PathBuf,
    pub action: String,
    pub params: String,
    pub env: std::collections::BTreeMap<String, String>,
    pub job_id: Option<String>,
    pub checkpoint: Option<Value>,
    pub progress_interval_ms: u64,
    /// The run's work directory (`RunSettings::work_dir`).
    #[serde(default)]
    pub work_dir: Option<PathBuf>,
    /// Which backend and agent clients the child offers the plugin (their
    /// calls are made by the parent).
    #[serde(default)]
    pub clients: IsolatedClients,
    /// What the parent believes the library is, when it did not load the
    /// library itself: the child checks it before running anything.
    #[serde(default)]
    pub expect: Option<ExpectedPlugin>,
    /// The sandbox the child enters before it loads the library (`None`:
    /// `--sandbox=off`).
    #[serde(default)]
    pub sandbox: Option<SandboxPolicy>,
}

/// A plugin as the parent described it without loading it (from the
/// manifest cache, or from the load-checking child's report): the child
/// loads the library and runs the action only if the library describes
/// itself exactly so. The parent thus never needs to load a library to
/// run it isolated, and a description gone stale never runs another
/// plugin than the one a fresh scan finds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedPlugin {
    /// The manifest summary (as discovery keeps it), shared with the
    /// catalog that described the plugin.
    pub manifest: Arc<PluginManifest>,
    /// The plugin-api version the library was built against, as
    /// `[major, minor, patch]`.
    pub api_version: [u32; 3],
}

impl ExpectedPlugin {
    /// A plugin described by its manifest summary and plugin-api version.
    pub fn new(manifest: Arc<PluginManifest>, api_version: ApiVersion) -> Self {
        Self {
            manifest,
            api_version: version_triple(api_version),
        }
    }
}

/// The library was not the plugin it was described as (it changed since it
/// was examined, or the description was wrong); nothing of it was run but
/// its loading.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: the library is not the plugin {code:?} it was described as (it changed since it was examined, or it describes itself differently each time it is loaded); nothing of it ran but its loading", library.display())]
pub struct NotAsDescribed {
    pub library: PathBuf,
    pub code: String,
}

/// The child's first line on the channel when the parent sent an
/// [`ExpectedPlugin`] and the library matched it: the action starts.
const AS_DESCRIBED_LINE: &str = "as-described";

/// The child's first line when the library did not match: it exits with
/// a failure status without running anything.
const NOT_AS_DESCRIBED_LINE: &str = "not-as-described";

/// The line a parent writes to ask the child's action to cancel.
const CANCEL_LINE: &str = "cancel";

/// How to start the child: a program and the arguments that make it call
/// [`serve_child`] (for the loader binary, its hidden `__child` command).
#[derive(Debug, Clone)]
pub struct ChildCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl ChildCommand {
    /// The running executable with `args`: the loader re-running itself.
    pub fn current_exe(args: &[&str]) -> std::io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        })
    }
}

/// Limits of an isolated run beyond its deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IsolationOptions {
    /// The largest event, in bytes of its JSON line, relayed from the
    /// child; a larger one becomes an `event_too_large` note.
    pub max_event_bytes: usize,
    /// How much of the plugin's stdout and stderr is relayed.
    pub output: OutputLimits,
    /// How long an interrupted action gets to stop before it is killed.
    pub interrupt_grace: Duration,
    /// How long the child may take to load a library it was asked to
    /// expect (see [`ExpectedPlugin`]) and say so; one whose loading takes
    /// longer (a library initialiser that hangs) is killed.
    pub load_timeout: Duration,
}

/// The default [`IsolationOptions::load_timeout`], the load check's too.
pub const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for IsolationOptions {
    fn default() -> Self {
        IsolationOptions {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            output: OutputLimits::default(),
            interrupt_grace: Duration::from_secs(5),
            load_timeout: DEFAULT_LOAD_TIMEOUT,
        }
    }
}

/// One action to run in a child process, and how.
pub struct ChildAction<'a> {
    pub action: &'a str,
    pub params_json: &'a str,
    pub settings: RunSettings,
    pub deadline: Option<Deadline>,
    /// Interrupts (e.g. Ctrl-C): the first asks the action to cancel, a
    /// second, or the grace period passing, kills it.
    pub interrupt: &'a Interrupts,
    /// Where the child's events go.
    pub sink: Arc<dyn EventSink>,
    pub options: IsolationOptions,
    /// The sandbox around the child.
    pub sandbox: &'a RunSandbox,
}

/// Runs `action` of the plugin library at `library` in a child process,
/// relaying its events to `sink`, with the default [`IsolationOptions`].
/// A crash, an abort or a kill becomes a failed action naming the signal;
/// `interrupt` (e.g. Ctrl-C) asks the action to cancel, and a second
/// interrupt, or the grace period passing, kills it.
#[allow(clippy::too_many_arguments)]
pub fn run_isolated(
    child: &ChildCommand,
    library: &Path,
    plugin_code: &str,
    action: &str,
    params_json: &str,
    settings: RunSettings,
    deadline: Option<Deadline>,
    interrupt: &Interrupts,
    sink: Arc<dyn EventSink>,
) -> Result<Value, ActionFailure> {
    let action = ChildAction {
        action,
        params_json,
        settings,
        deadline,
        interrupt,
        sink,
        options: IsolationOptions::default(),
        sandbox: &RunSandbox::default(),
    };
    run_isolated_with(child, library, plugin_code, action)
}

/// [`run_isolated`] of a [`ChildAction`] (explicit [`IsolationOptions`]).
pub fn run_isolated_with(
    child: &ChildCommand,
    library: &Path,
    plugin_code: &str,
    action: ChildAction,
) -> Result<Value, ActionFailure> {
    run_in_child(child, library, plugin_code, None, ChildMode::Run, action)
        .unwrap_or_else(|unasked| Err(ActionFailure::new(FailureKind::Failed, unasked.to_string())))
}

/// [`run_isolated_with`] for a plugin the caller described without loading
/// it: the child runs the action only if the library is `expected`, and
/// otherwise the run ends with [`NotAsDescribed`] before anything of the
/// plugin ran but its loading (the description is wrong: drop it). A run
/// that ends not as described reports that as its error to the sinks, and
/// finishes them.
pub fn run_isolated_as_described(
    child: &ChildCommand,
    library: &Path,
    expected: &ExpectedPlugin,
    action: ChildAction,
) -> Result<Result<Value, ActionFailure>, NotAsDescribed> {
    run_in_child(
        child,
        library,
        &expected.manifest.code,
        Some(expected),
        ChildMode::Run,
        action,
    )
}

/// Starts the sinks and has the child do `mode` with the library;
/// [`NotAsDescribed`] only when `expect` was given.
fn run_in_child(
    child: &ChildCommand,
    library: &Path,
    plugin_code: &str,
    expect: Option<&ExpectedPlugin>,
    mode: ChildMode,
    job: ChildAction,
) -> Result<Result<Value, ActionFailure>, NotAsDescribed> {
    let run = RunInfo {
        job_id: job.settings.job_id.clone(),
        plugin: plugin_code.to_owned(),
        action: job.action.to_owned(),
    };
    job.sink.start(&run);
    // The child runs in its work directory: a relative path would not
    // name the library there.
    let library = std::path::absolute(library).unwrap_or_else(|_| library.to_owned());
    let outcome = match prepare_sandbox(&library, &job) {
        Ok(prepared) => match run_prepared(child, &library, expect, mode, &job, &run, prepared) {
            Ok(outcome) => outcome,
            Err(stale) => {
                let failure = ActionFailure::new(FailureKind::Failed, stale.to_string());
                job.sink.emit(&run, &failure_event(&failure));
                job.sink.finish(&run);
                return Err(stale);
            }
        },
        Err(failure) => Outcome {
            result: Err(failure),
            error_relayed: false,
        },
    };
    if let (Err(failure), false) = (&outcome.result, outcome.error_relayed) {
        job.sink.emit(&run, &failure_event(failure));
    }
    job.sink.finish(&run);
    Ok(outcome.result)
}

/// How a run ended, and whether its `error` event came from the child
/// (else the parent emits one).
struct Outcome {
    result: Result<Value, ActionFailure>,
    error_relayed: bool,
}

/// What a run's child is started with: its work directory, its sandbox
/// policy and the set-up around it.
struct PreparedSandbox {
    work_dir: WorkDir,
    policy: Option<SandboxPolicy>,
    containment: Containment,
}

/// Makes the run's work directory (unless the settings name one) and
/// decides its sandbox; a required
/// sandbox this system cannot give fails the run before anything starts.
fn prepare_sandbox(library: &Path, job: &ChildAction) -> Result<PreparedSandbox, ActionFailure> {
    let sandbox = job.sandbox;
    let failed = |message: String| ActionFailure::new(FailureKind::Failed, message);
    let work_dir = match &job.settings.work_dir {
        Some(given) => WorkDir::given(given),
        None => WorkDir::create(None, sandbox.keep_work_dir).map_err(|e| failed(e.to_string()))?,
    };
    let net_all = policy::net_is_all(&sandbox.grants.net);
    let containment = Containment::prepare(sandbox.mode, sandbox.limits, net_all).map_err(|e| failed(e.to_string()))?;
    let policy = (sandbox.mode != SandboxMode::Off).then(|| {
        let purpose = policy::Purpose::Run {
            library,
            work_dir: work_dir.path(),
        };
        policy::build(purpose, &sandbox.grants, sandbox.mode == SandboxMode::Require)
    });
    Ok(PreparedSandbox {
        work_dir,
        policy,
        containment,
    })
}

/// Runs the child of a prepared run and decides its outcome.
fn run_prepared(
    child: &ChildCommand,
    library: &Path,
    expect: Option<&ExpectedPlugin>,
    mode: ChildMode,
    job: &ChildAction,
    run: &RunInfo,
    mut prepared: PreparedSandbox,
) -> Result<Outcome, NotAsDescribed> {
    let settings = &job.settings;
    let work_dir = prepared.work_dir.path().to_owned();
    let request = IsolatedRun {
        mode,
        library: library.to_owned(),
        action: job.action.to_owned(),
        params: job.params_json.to_owned(),
        env: settings.env.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        job_id: settings.job_id.clone(),
        checkpoint: settings.checkpoint.clone(),
        progress_interval_ms: u64::try_from(settings.progress_interval.as_millis()).unwrap_or(u64::MAX),
        work_dir: Some(work_dir.clone()),
        clients: IsolatedClients::of(&settings.clients),
        expect: expect.cloned(),
        sandbox: prepared.policy.take(),
    };
    let supervised = supervise::supervise(
        child,
        &request,
        settings,
        supervise::Limits {
            deadline: job.deadline,
            interrupts: job.interrupt,
            options: &job.options,
        },
        supervise::Confined {
            containment: &mut prepared.containment,
            work_dir: &work_dir,
        },
        run,
        &job.sink,
    );
    if prepared.work_dir.kept() {
        job.sink.emit(run, &crate::sandbox::notes::work_dir_kept(&work_dir));
    }
    if supervised.not_as_described {
        return Err(NotAsDescribed {
            library: library.to_owned(),
            code: run.plugin.clone(),
        });
    }
    Ok(Outcome {
        result: supervised.result,
        error_relayed: supervised.error_relayed,
    })
}

/// What the readers of a child pass on (see [`RelayTarget`]).
pub(crate) enum Relayed {
    /// Events in the order they were read (from the channel, or `output`).
    Events(Vec<Event>),
    /// The run's result or error was larger than the event size limit.
    TerminalTooLarge { kind: EventKind, bytes: u64 },
    /// The event channel reached its end.
    ChannelClosed,
    /// One of stdout and stderr reached its end.
    OutputClosed,
    /// The child process exited (it is not reaped yet).
    Exited,
    /// The child's first line said the library is the plugin expected.
    AsDescribed,
    /// The child's first line said the library is not the plugin expected.
    NotAsDescribed,
}

/// Where the readers of a child pass what they read; `relay` returns
/// false when nobody takes it any more (the reader then stops). It may
/// block: that is the back-pressure that slows a child down.
pub(crate) trait RelayTarget {
    fn relay(&self, message: Relayed) -> bool;

    /// Passes on a batch of events read from the channel, by reference (the
    /// reader reuses them); by default as [`Relayed::Events`], copied.
    fn relay_events(&self, events: &[Event]) -> bool {
        self.relay(Relayed::Events(events.to_vec()))
    }

    /// Writes through what the sinks buffered of the events passed on by
    /// [`relay_events`](Self::relay_events) (which leaves them buffered:
    /// the channel's reader flushes once the child pauses).
    fn flush(&self) {}
}

impl RelayTarget for std::sync::mpsc::SyncSender<Relayed> {
    fn relay(&self, message: Relayed) -> bool {
        self.send(message).is_ok()
    }
}

/// Counts interrupts (Ctrl-C, SIGTERM, SIGHUP) sent to the parent.
#[derive(Debug, Default, Clone)]
pub struct Interrupts(Arc<std::sync::atomic::AtomicU32>);

impl Interrupts {
    pub fn interrupt(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn count(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How the child ended, in words.
pub fn describe_exit(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("the action's process exited with code {code} without reporting a result"),
        None => format!("the action crashed: its process {}", exit_in_words(status)),
    }
}

/// How a process ended: "was killed by signal 11 (SIGSEGV)", "exited with
/// code 3".
pub fn exit_in_words(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal} ({})", signal_name(signal));
        }
    }
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => "ended abnormally".to_owned(),
    }
}

/// The conventional name of a POSIX signal number.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        31 => "SIGSYS",
        _ => "unknown signal",
    }
}
