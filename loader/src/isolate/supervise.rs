//! The supervisor of one isolated run: starts the child, feeds it its
//! request, has its events and output relayed to the sinks ([`relay`]) and
//! its client calls made ([`proxy`]), applies the load limit, the deadline
//! and interrupts, waits for the child's exit, kills
//! the child's process group, and decides the outcome: a result counts only
//! when it came through the channel and the child then exited normally.
//!
//! [`relay`]: super::relay
//! [`proxy`]: super::proxy

use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plugin_api::{ActionFailure, FailureKind};

use super::channel::relay_events;
use super::child_env::child_environment;
use super::output::relay_output;
use super::proxy::ClientProxy;
use super::relay::{SinkRelay, Terminal};
use super::spawn::{spawn_with_channel, ChildOutput};
use super::to_child::ToChild;
use super::{
    describe_exit, exit_in_words, ChildCommand, Interrupts, IsolatedRun, IsolationOptions, RelayTarget, Relayed,
    Stream, CANCEL_LINE,
};
use crate::events::{Event, EventKind, EventSink, RunInfo};
use crate::run::host::{Clients, RunSettings};
use crate::run::orphans::Orphans;
use crate::run::runner::Deadline;
use crate::sandbox::{notes, Containment, Limits as SandboxLimits, SandboxMode, WORK_DIR_VAR};
use crate::sys;

/// How often deadlines are checked when nothing arrives.
const TICK: Duration = Duration::from_millis(20);

/// How long output and events written before the child's exit may take to
/// arrive once its process group is dead (only a process that left the
/// group can hold a pipe open that long).
const DRAIN: Duration = Duration::from_secs(2);

/// How a supervised child ended, and whether its own `error` event (rather
/// than one made by the parent) was relayed.
pub struct Supervised {
    pub result: Result<serde_json::Value, ActionFailure>,
    pub error_relayed: bool,
    /// The child said, before running anything, that the library is not
    /// the plugin the request expected, and exited as it says it does.
    pub not_as_described: bool,
}

impl Supervised {
    fn parent_failure(failure: ActionFailure) -> Self {
        Self {
            result: Err(failure),
            error_relayed: false,
            not_as_described: false,
        }
    }
}

fn crashed(message: String) -> ActionFailure {
    ActionFailure::new(FailureKind::Crashed, message)
}

/// The run went over its memory limit and the kernel killed a process of it.
fn out_of_memory(status: std::process::ExitStatus, limits: SandboxLimits) -> ActionFailure {
    let limit = limits
        .memory_bytes
        .map(|bytes| format!("{bytes} bytes"))
        .unwrap_or_else(|| "its limit".to_owned());
    crashed(format!(
        "the run used more memory than its limit ({limit}) and the kernel killed a process of it; its process {}",
        exit_in_words(status)
    ))
    .with_details(
        serde_json::json!({ "hint": "raise the limit with --memory BYTES, or declare the action's memory resource" }),
    )
}

/// Writes the request, then a cancel line for each message on `cancels`.
fn control(channel: ToChild, mut request: String, cancels: Receiver<()>) {
    request.push('\n');
    if channel.send_line(request.as_bytes()).is_err() {
        return;
    }
    let cancel = format!("{CANCEL_LINE}\n");
    for () in cancels.iter() {
        if channel.send_line(cancel.as_bytes()).is_err() {
            return;
        }
    }
}

fn thread(name: &str, body: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new().name(name.to_owned()).spawn(body).map(drop)
}

/// Which of the child's streams have ended, and when it exited.
#[derive(Default)]
struct Seen {
    exited_at: Option<Instant>,
    channel_closed: bool,
    outputs_open: u8,
    not_as_described: bool,
}

impl Seen {
    fn take(&mut self, notice: Relayed) {
        match notice {
            Relayed::ChannelClosed => self.channel_closed = true,
            Relayed::OutputClosed => self.outputs_open = self.outputs_open.saturating_sub(1),
            Relayed::Exited => self.exited_at = Some(Instant::now()),
            Relayed::NotAsDescribed => self.not_as_described = true,
            Relayed::AsDescribed | Relayed::Events(_) | Relayed::TerminalTooLarge { .. } => {}
        }
    }

    fn drained(&self) -> bool {
        match self.exited_at {
            None => false,
            Some(at) => (self.channel_closed && self.outputs_open == 0) || at.elapsed() >= DRAIN,
        }
    }
}

/// Cancelling and killing: what has been asked of the child, and why it
/// was killed.
struct Stopping<'a> {
    started: Instant,
    deadline: Option<Deadline>,
    interrupts: &'a Interrupts,
    interrupt_grace: Duration,
    cancel_sent_at: Option<Instant>,
    cancels: Sender<()>,
    killed: Option<ActionFailure>,
    /// How long the child may take to say whether the library is the
    /// plugin expected; `None` once it has said so, or when it need not.
    load_timeout: Option<Duration>,
}

impl Stopping<'_> {
    fn timed_out(&self) -> bool {
        self.deadline.is_some_and(|d| self.started.elapsed() >= d.timeout)
    }

    /// Asks the child to cancel or kills it, as the deadline and interrupts
    /// say; returns whether it must be killed now.
    fn check(&mut self) -> bool {
        if self.killed.is_some() {
            return false;
        }
        if self.load_timeout.is_some_and(|limit| self.started.elapsed() >= limit) {
            self.killed = Some(ActionFailure::new(
                FailureKind::TimedOut,
                format!(
                    "loading the plugin library did not finish within {}s (--load-timeout); its process was killed \
                     before the action started",
                    self.load_timeout.unwrap_or_default().as_secs_f64()
                ),
            ));
            return true;
        }
        let interrupted = self.interrupts.count() > 0;
        if (self.timed_out() || interrupted) && self.cancel_sent_at.is_none() {
            self.cancel_sent_at = Some(Instant::now());
            let _ = self.cancels.send(());
        }
        let elapsed = self.started.elapsed();
        if let Some(d) = self.deadline {
            if d.timeout.checked_add(d.grace).is_some_and(|limit| elapsed >= limit) {
                self.killed = Some(ActionFailure::new(
                    FailureKind::TimedOut,
                    format!(
                        "the action timed out after {}s and did not stop within {}s of being asked to cancel; it was killed",
                        d.timeout.as_secs_f64(),
                        d.grace.as_secs_f64()
                    ),
                ));
                return true;
            }
        }
        if self.interrupts.count() > 1 {
            self.killed = Some(ActionFailure::new(
                FailureKind::Cancelled,
                "interrupted twice: the action was killed",
            ));
            return true;
        }
        let grace_over = self
            .cancel_sent_at
            .is_some_and(|at| at.elapsed() >= self.interrupt_grace);
        if interrupted && grace_over {
            self.killed = Some(ActionFailure::new(
                FailureKind::Cancelled,
                format!(
                    "interrupted: the action did not stop within {}s of being asked to cancel; it was killed",
                    self.interrupt_grace.as_secs_f64()
                ),
            ));
            return true;
        }
        false
    }
}

/// The limits on a supervised child's time.
pub struct Limits<'a> {
    pub deadline: Option<Deadline>,
    pub interrupts: &'a Interrupts,
    pub options: &'a IsolationOptions,
}

/// The sandbox set-up around a supervised child, and its work directory
/// (its current directory, `TMPDIR` and `LOADER_WORK_DIR`).
pub struct Confined<'a> {
    pub containment: &'a mut Containment,
    pub work_dir: &'a Path,
}

pub fn supervise(
    child_command: &ChildCommand,
    request: &IsolatedRun,
    settings: &RunSettings,
    limits: Limits,
    confined: Confined,
    run: &RunInfo,
    sink: &Arc<dyn EventSink>,
) -> Supervised {
    let Limits {
        deadline,
        interrupts,
        options,
    } = limits;
    let mut env = child_environment(std::env::vars_os(), &settings.env);
    env.retain(|(name, _)| name != "TMPDIR" && name != WORK_DIR_VAR);
    env.push(("TMPDIR".into(), confined.work_dir.into()));
    env.push((WORK_DIR_VAR.into(), confined.work_dir.into()));
    let containment = confined.containment;
    let spawned = spawn_with_channel(
        child_command,
        env,
        ChildOutput::Piped,
        Some(&mut *containment),
        Some(confined.work_dir),
    );
    let mut spawned = match spawned {
        Ok(spawned) => spawned,
        Err(e) => return Supervised::parent_failure(crashed(format!("cannot start the isolated process: {e}"))),
    };
    if containment.mode() == SandboxMode::Off {
        sink.emit(run, &notes::off());
    } else if let Some(note) = notes::incomplete(containment.missing()) {
        sink.emit(run, &note);
    }
    let sweep = containment.needs_orphan_sweep().then(Orphans::adopt);
    let (notices_sender, notices) = mpsc::channel();
    let relay = Arc::new(SinkRelay::new(run.clone(), sink.clone(), notices_sender));
    let (cancels, cancel_requests) = mpsc::channel();
    let mut seen = Seen::default();
    let started = start_threads(
        &mut spawned,
        request,
        &settings.clients,
        options,
        &relay,
        cancel_requests,
        &mut seen,
    );
    let proxy = match started {
        Ok(proxy) => proxy,
        Err(e) => {
            relay.close();
            return Supervised::parent_failure(crashed(format!("cannot supervise the isolated process: {e}")));
        }
    };

    let mut stopping = Stopping {
        started: Instant::now(),
        deadline,
        interrupts,
        interrupt_grace: options.interrupt_grace,
        cancel_sent_at: None,
        cancels,
        killed: None,
        load_timeout: request.expect.is_some().then_some(options.load_timeout),
    };
    loop {
        match notices.recv_timeout(TICK) {
            Ok(notice) => {
                if matches!(notice, Relayed::AsDescribed | Relayed::NotAsDescribed) {
                    stopping.load_timeout = None;
                }
                let exit = matches!(notice, Relayed::Exited);
                seen.take(notice);
                if exit {
                    // Nothing the action started outlives it.
                    spawned.group.kill();
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if seen.drained() {
            break;
        }
        if seen.exited_at.is_none() && stopping.check() {
            spawned.group.kill();
        }
    }
    let terminal = relay.close();
    proxy.close();
    spawned.group.kill();
    let status = spawned.wait();
    if let Some(orphans) = sweep {
        orphans.end();
    }
    let status = match status {
        Ok(status) => status,
        Err(e) => return Supervised::parent_failure(crashed(format!("cannot wait for the isolated process: {e}"))),
    };
    if let Some(failure) = stopping.killed.take() {
        return Supervised::parent_failure(failure);
    }
    if containment.out_of_memory() {
        return Supervised::parent_failure(out_of_memory(status, containment.limits()));
    }
    if seen.not_as_described && !status.success() {
        let mut supervised = Supervised::parent_failure(crashed(describe_exit(status)));
        supervised.not_as_described = true;
        return supervised;
    }
    outcome(terminal, status, &stopping, run, &**sink)
}

/// Starts the threads that write the request and read the child; returns
/// the proxy that makes the child's client calls.
fn start_threads(
    spawned: &mut super::Spawned,
    request: &IsolatedRun,
    clients: &Clients,
    options: &IsolationOptions,
    relay: &Arc<SinkRelay>,
    cancel_requests: Receiver<()>,
    seen: &mut Seen,
) -> std::io::Result<Arc<ClientProxy>> {
    let verdict = request.expect.is_some();
    let request = serde_json::to_string(request).map_err(std::io::Error::other)?;
    let writer = ToChild::new(spawned.channel.try_clone()?);
    let proxy = ClientProxy::new(clients.clone(), writer.clone());
    thread("isolated-control", move || control(writer, request, cancel_requests))?;
    let reader = spawned.channel.try_clone()?;
    let (sender, max_event_bytes, calls) = (relay.clone(), options.max_event_bytes, proxy.clone());
    thread("isolated-events", move || {
        relay_events(reader, max_event_bytes, verdict, sender, Some(&calls))
    })?;
    if let Some(stdout) = spawned.stdout.take() {
        let (sender, limits) = (relay.clone(), options.output);
        thread("isolated-stdout", move || {
            relay_output(stdout, Stream::Stdout, limits, sender)
        })?;
        seen.outputs_open += 1;
    }
    if let Some(stderr) = spawned.stderr.take() {
        let (sender, limits) = (relay.clone(), options.output);
        thread("isolated-stderr", move || {
            relay_output(stderr, Stream::Stderr, limits, sender)
        })?;
        seen.outputs_open += 1;
    }
    let (sender, pid) = (relay.clone(), spawned.child.id());
    tracing::debug!("isolated run: process {pid} started");
    thread("isolated-exit", move || {
        if let Err(e) = sys::wait_for_exit_unreaped(pid) {
            tracing::warn!("cannot wait for the isolated process: {e}");
        }
        sender.relay(Relayed::Exited);
    })?;
    Ok(proxy)
}

/// The run's outcome from what the child reported and how it exited.
fn outcome(
    terminal: Terminal,
    status: std::process::ExitStatus,
    stopping: &Stopping,
    run: &RunInfo,
    sink: &dyn EventSink,
) -> Supervised {
    match terminal.event {
        Some(event) if event.kind == EventKind::Result => {
            if !status.success() {
                return Supervised::parent_failure(crashed(format!(
                    "the action reported a result, but its process then {}; the result was discarded",
                    exit_in_words(status)
                )));
            }
            sink.emit(run, &event);
            Supervised {
                result: Ok(event.data),
                error_relayed: false,
                not_as_described: false,
            }
        }
        Some(event) => {
            let failure = failure_from_event(&event);
            if failure.kind == FailureKind::Cancelled && stopping.timed_out() {
                return Supervised::parent_failure(ActionFailure::new(
                    FailureKind::TimedOut,
                    "the action timed out and stopped when asked to cancel",
                ));
            }
            sink.emit(run, &event);
            Supervised {
                result: Err(failure),
                error_relayed: true,
                not_as_described: false,
            }
        }
        None => match terminal.too_large {
            Some((kind, bytes)) => Supervised::parent_failure(ActionFailure::new(
                FailureKind::Failed,
                format!(
                    "the action's {kind} ({bytes} bytes) was larger than the event size limit (--max-event-bytes) and was dropped"
                ),
            )),
            None => Supervised::parent_failure(crashed(describe_exit(status))),
        },
    }
}

fn failure_from_event(event: &Event) -> ActionFailure {
    let kind = serde_json::from_value(event.data["kind"].clone()).unwrap_or(FailureKind::Failed);
    let message = event.data["message"].as_str().unwrap_or("the action failed").to_owned();
    ActionFailure::new(kind, message).with_details(event.data["details"].clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::MemorySink;
    use crate::run::host::RunSettings;
    use serde_json::json;
    use std::sync::Arc;

    /// A stand-in child: a shell script with the channel on fd 3.
    fn script(body: &str) -> ChildCommand {
        ChildCommand {
            program: "sh".into(),
            args: vec!["-c".into(), body.into()],
        }
    }

    const RESULT: &str = r#"{"timestamp":1,"plugin":"p","action":"a","kind":"result","event":"result","step":null,"level":"success","file":null,"data":{"ok":true}}"#;

    fn run(child: &ChildCommand, deadline: Option<Deadline>) -> (Result<serde_json::Value, ActionFailure>, Vec<Event>) {
        let sink = Arc::new(MemorySink::new());
        let result = super::super::run_isolated(
            child,
            std::path::Path::new("/nonexistent.so"),
            "p",
            "a",
            "{}",
            RunSettings::default(),
            deadline,
            &Interrupts::default(),
            sink.clone(),
        );
        (result, sink.events())
    }

    #[test]
    fn a_result_on_the_channel_followed_by_a_normal_exit_counts() {
        let (result, events) = run(&script(&format!("echo '{RESULT}' >&3")), None);
        assert_eq!(result.unwrap(), json!({ "ok": true }));
        assert_eq!(events.last().unwrap().kind, EventKind::Result);
    }

    #[test]
    fn a_result_followed_by_a_failing_exit_is_discarded() {
        let (result, _) = run(&script(&format!("echo '{RESULT}' >&3; exit 3")), None);
        let failure = result.unwrap_err();
        assert_eq!(failure.kind, FailureKind::Crashed);
        assert!(failure.message.contains("result was discarded"), "{}", failure.message);
    }

    #[test]
    fn a_result_printed_on_stdout_is_output_not_a_result() {
        let (result, events) = run(&script(&format!("echo '{RESULT}'; echo oops >&2")), None);
        assert_eq!(result.unwrap_err().kind, FailureKind::Crashed);
        let output: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::Output)
            .map(|e| {
                (
                    e.data["stream"].as_str().unwrap().to_owned(),
                    e.data["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(output.contains(&("stdout".to_owned(), RESULT.to_owned())), "{output:?}");
        assert!(output.contains(&("stderr".to_owned(), "oops".to_owned())), "{output:?}");
    }

    #[test]
    fn a_background_process_holding_the_pipes_does_not_hold_up_the_run() {
        let started = Instant::now();
        let (result, _) = run(&script(&format!("sleep 300 & echo '{RESULT}' >&3")), None);
        assert!(result.is_ok());
        assert!(started.elapsed() < Duration::from_secs(30), "waited for the pipes' end");
    }

    #[test]
    fn a_child_that_ignores_the_deadline_is_killed_with_its_group() {
        let deadline = Deadline {
            timeout: Duration::from_millis(200),
            grace: Duration::from_millis(200),
        };
        let (result, _) = run(&script("sleep 300 & sleep 300"), Some(deadline));
        let failure = result.unwrap_err();
        assert_eq!(failure.kind, FailureKind::TimedOut);
        assert!(failure.message.contains("was killed"), "{}", failure.message);
    }

    #[test]
    fn durations_too_large_to_add_never_kill() {
        let deadline = Deadline {
            timeout: Duration::MAX,
            grace: Duration::MAX,
        };
        let (result, _) = run(&script(&format!("echo '{RESULT}' >&3")), Some(deadline));
        assert!(result.is_ok());
    }
}
