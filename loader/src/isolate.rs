//! Crash isolation: runs an action in a child process and relays its events.
//!
//! The parent starts a child (normally the `loader` binary itself, in its own
//! process group so that a terminal's Ctrl-C reaches only the parent), sends
//! it an [`IsolatedRun`] as one JSON line on stdin, and reads the child's
//! event stream, one JSON line per event, flushed as each is written, from
//! its stdout. Everything the action reported before a crash has therefore
//! already reached the parent. To cancel, the parent writes `cancel` on the
//! child's stdin; to stop a child that does not, it kills it.
//!
//! The child side is [`serve_child`]: it loads the one library it is told
//! to, runs the action in-process, and writes the stream.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plugin_api::{ActionFailure, FailureKind, PluginEnvironment};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::discovery::Discovery;
use crate::events::{jsonl, Event, EventKind, EventSink, Flush, JsonlSink, RunInfo};
use crate::host::{CancelFlag, RunSettings};
use crate::runner::{failure_event, run_action, Deadline};

/// The request a parent sends its child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IsolatedRun {
    pub library: PathBuf,
    pub action: String,
    pub params: String,
    pub env: std::collections::BTreeMap<String, String>,
    pub job_id: Option<String>,
    pub checkpoint: Option<Value>,
    pub progress_interval_ms: u64,
    /// The backend and agent clients the child offers the plugin.
    #[serde(default)]
    pub clients: IsolatedClients,
}

/// The clients of an isolated run, as the child rebuilds them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IsolatedClients {
    pub backend: Option<crate::backend::ClientSpec>,
    pub agent: Option<crate::backend::ClientSpec>,
}

impl IsolatedClients {
    fn of(clients: &crate::host::Clients) -> Self {
        Self {
            backend: clients.backend.as_ref().and_then(|c| c.spec()),
            agent: clients.agent.as_ref().and_then(|c| c.spec()),
        }
    }

    fn build(self) -> crate::host::Clients {
        let make = |spec: crate::backend::ClientSpec| {
            Arc::new(crate::backend::ApiClient::from_spec(spec)) as Arc<dyn crate::host::Client>
        };
        crate::host::Clients {
            backend: self.backend.map(make),
            agent: self.agent.map(make),
        }
    }
}

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

/// Runs `action` of the plugin library at `library` in a child process,
/// relaying its events to `sink`. A crash, an abort or a kill becomes a
/// failed action naming the signal; `interrupt` (e.g. Ctrl-C) asks the
/// action to cancel, and a second interrupt kills it.
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
    let run = RunInfo {
        job_id: settings.job_id.clone(),
        plugin: plugin_code.to_owned(),
        action: action.to_owned(),
    };
    sink.start(&run);
    let supervised = supervise(
        child,
        library,
        action,
        params_json,
        settings,
        deadline,
        interrupt,
        &run,
        &*sink,
    );
    if let (Err(failure), false) = (&supervised.result, supervised.error_relayed) {
        sink.emit(&run, &failure_event(failure));
    }
    sink.finish(&run);
    supervised.result
}

/// How a supervised child ended, and whether its own `error` event (rather
/// than one made by the parent) was relayed.
struct Supervised {
    result: Result<Value, ActionFailure>,
    error_relayed: bool,
}

impl Supervised {
    fn parent_failure(failure: ActionFailure) -> Self {
        Self {
            result: Err(failure),
            error_relayed: false,
        }
    }
}

/// Counts interrupts (Ctrl-C) sent to the parent.
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

enum Line {
    Event(Event),
    Garbage(String),
}

#[allow(clippy::too_many_arguments)]
fn supervise(
    child_command: &ChildCommand,
    library: &Path,
    action: &str,
    params_json: &str,
    settings: RunSettings,
    deadline: Option<Deadline>,
    interrupt: &Interrupts,
    run: &RunInfo,
    sink: &dyn EventSink,
) -> Supervised {
    let request = IsolatedRun {
        library: library.to_owned(),
        action: action.to_owned(),
        params: params_json.to_owned(),
        env: settings.env.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        job_id: settings.job_id.clone(),
        checkpoint: settings.checkpoint.clone(),
        progress_interval_ms: settings.progress_interval.as_millis() as u64,
        clients: IsolatedClients::of(&settings.clients),
    };
    let mut child = match spawn(child_command) {
        Ok(child) => child,
        Err(e) => return Supervised::parent_failure(crashed(format!("cannot start the isolated process: {e}"))),
    };
    let mut stdin = child.stdin.take();
    if let Some(input) = stdin.as_mut() {
        let line = serde_json::to_string(&request).expect("the request serialises");
        if writeln!(input, "{line}").and_then(|_| input.flush()).is_err() {
            tracing::warn!("the isolated process did not accept its request");
        }
    }
    let lines = read_lines(&mut child);

    let started = Instant::now();
    let mut cancel_sent = false;
    let mut kill_reason: Option<ActionFailure> = None;
    let mut last: Option<Event> = None;
    loop {
        match lines.recv_timeout(Duration::from_millis(20)) {
            Ok(Line::Event(event)) => {
                if matches!(event.kind, EventKind::Result | EventKind::Error) {
                    last = Some(event);
                } else {
                    sink.emit(run, &event);
                }
            }
            Ok(Line::Garbage(text)) => tracing::warn!("isolated process wrote a line that is not an event: {text}"),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if kill_reason.is_some() {
            continue;
        }
        let elapsed = started.elapsed();
        let timed_out = deadline.is_some_and(|d| elapsed >= d.timeout);
        if (timed_out || interrupt.count() > 0) && !cancel_sent {
            cancel_sent = true;
            send_cancel(&mut stdin);
        }
        if let Some(d) = deadline.filter(|d| elapsed >= d.timeout + d.grace) {
            kill_reason = Some(ActionFailure::new(
                FailureKind::TimedOut,
                format!(
                    "the action timed out after {}s and did not stop within {}s of being asked to cancel; it was killed",
                    d.timeout.as_secs_f64(),
                    d.grace.as_secs_f64()
                ),
            ));
        } else if interrupt.count() > 1 {
            kill_reason = Some(ActionFailure::new(
                FailureKind::Cancelled,
                "interrupted twice: the action was killed",
            ));
        }
        if kill_reason.is_some() {
            let _ = child.kill();
        }
    }
    let status = match child.wait() {
        Ok(status) => status,
        Err(e) => return Supervised::parent_failure(crashed(format!("cannot wait for the isolated process: {e}"))),
    };
    if let Some(failure) = kill_reason {
        return Supervised::parent_failure(failure);
    }
    match last {
        Some(event) if event.kind == EventKind::Result && status.success() => {
            sink.emit(run, &event);
            Supervised {
                result: Ok(event.data),
                error_relayed: false,
            }
        }
        Some(event) if event.kind == EventKind::Error => {
            let failure = failure_from_event(&event);
            if failure.kind == FailureKind::Cancelled && deadline.is_some_and(|d| started.elapsed() >= d.timeout) {
                return Supervised::parent_failure(ActionFailure::new(
                    FailureKind::TimedOut,
                    "the action timed out and stopped when asked to cancel",
                ));
            }
            sink.emit(run, &event);
            Supervised {
                result: Err(failure),
                error_relayed: true,
            }
        }
        _ => Supervised::parent_failure(crashed(describe_exit(status))),
    }
}

fn crashed(message: String) -> ActionFailure {
    ActionFailure::new(FailureKind::Crashed, message)
}

/// Starts a child with piped stdin and stdout and the parent's stderr, in
/// its own process group (so a terminal's Ctrl-C reaches only the parent).
pub(crate) fn spawn(command: &ChildCommand) -> std::io::Result<Child> {
    let mut cmd = Command::new(&command.program);
    cmd.args(&command.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    cmd.spawn()
}

fn read_lines(child: &mut Child) -> mpsc::Receiver<Line> {
    stdout_lines(child, |line| {
        if line.trim().is_empty() {
            return None;
        }
        Some(match jsonl::parse_line(&line) {
            Ok((_, event)) => Line::Event(event),
            Err(_) => Line::Garbage(line),
        })
    })
}

/// Reads the child's stdout on a thread, sending what `read` makes of each
/// line (lines it returns `None` for are skipped). The channel closes when
/// the child's stdout does.
pub(crate) fn stdout_lines<T: Send + 'static>(
    child: &mut Child,
    read: impl Fn(String) -> Option<T> + Send + 'static,
) -> mpsc::Receiver<T> {
    let (sender, receiver) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(item) = read(line) {
                    if sender.send(item).is_err() {
                        break;
                    }
                }
            }
        });
    }
    receiver
}

fn send_cancel(stdin: &mut Option<ChildStdin>) {
    if let Some(input) = stdin.as_mut() {
        let _ = writeln!(input, "{CANCEL_LINE}").and_then(|_| input.flush());
    }
}

fn failure_from_event(event: &Event) -> ActionFailure {
    let kind = serde_json::from_value(event.data["kind"].clone()).unwrap_or(FailureKind::Failed);
    let message = event.data["message"].as_str().unwrap_or("the action failed").to_owned();
    ActionFailure::new(kind, message).with_details(event.data["details"].clone())
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

/// The child's side: reads the request from stdin, runs the action and
/// writes its events to stdout, flushing each. Returns the process exit code.
pub fn serve_child() -> i32 {
    let mut input = BufReader::new(std::io::stdin());
    let mut first = String::new();
    let request: IsolatedRun = match input
        .read_line(&mut first)
        .ok()
        .and_then(|_| serde_json::from_str(&first).ok())
    {
        Some(request) => request,
        None => {
            eprintln!("loader: the isolated process expects a run request on stdin");
            return 2;
        }
    };
    let cancel = CancelFlag::default();
    let cancel_on_request = cancel.clone();
    std::thread::spawn(move || {
        for line in input.lines() {
            match line {
                Ok(line) if line.trim() == CANCEL_LINE => cancel_on_request.cancel(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });

    let sink: Arc<dyn EventSink> = Arc::new(JsonlSink::new(
        Box::new(std::io::stdout()) as Box<dyn Write + Send>,
        Flush::EachLine,
    ));
    let discovery = Discovery::load_files(std::slice::from_ref(&request.library));
    let settings = RunSettings {
        env: PluginEnvironment::new(request.env),
        job_id: request.job_id,
        checkpoint: request.checkpoint,
        cancel,
        progress_interval: Duration::from_millis(request.progress_interval_ms),
        clients: request.clients.build(),
    };
    let Some(plugin) = discovery.plugins.first() else {
        let reason = discovery
            .problems
            .first()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "no plugin".to_owned());
        let run = RunInfo {
            job_id: settings.job_id.clone(),
            plugin: String::new(),
            action: request.action,
        };
        sink.start(&run);
        sink.emit(&run, &failure_event(&ActionFailure::new(FailureKind::Failed, reason)));
        sink.finish(&run);
        return 1;
    };
    match run_action(plugin, &request.action, &request.params, settings, None, sink) {
        Ok(_) => 0,
        Err(_) => 1,
    }
}
