//! `loader dev`: the plugin author's loop, run for them. A session watches
//! a plugin crate's sources ([`watch`]); after each change (debounced) it
//! builds the crate with cargo ([`build`]), its output on the terminal as
//! cargo shows it, and when the build succeeds runs the action again with
//! the same params, as `loader run` does (a child `loader run` on a copy of
//! the library, so the run looks and ends exactly like one typed by hand).
//! A build that fails leaves the last run's output on screen. A change
//! while the action runs stops it (as Ctrl-C would) and rebuilds. Ctrl-C
//! (or SIGTERM, SIGHUP) ends the session: what it started is stopped, and
//! killed if it does not stop ([`process_group`]).

pub mod build;
pub mod process_group;
pub mod watch;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use self::build::{Build, BuildOutcome, PluginCrate};
use self::process_group::GroupChild;
use self::watch::SourceWatcher;

/// Changes closer together than this are one change.
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// A stream of changes is cut after this long, so that a build starts.
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);
/// How often running children are checked.
const TICK: Duration = Duration::from_millis(50);
/// How long a run gets to stop after SIGINT before it is killed: the
/// run's own grace for the action (5 s by default) and a little more.
const RUN_STOP_GRACE: Duration = Duration::from_secs(8);

/// Why a dev session could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("{} has no Cargo.toml", dir.display())]
    NoManifest { dir: PathBuf },
    #[error("cannot run {}: {source}", cargo.to_string_lossy())]
    Cargo { cargo: OsString, source: std::io::Error },
    #[error("cannot read the crate at {}: {message}", manifest.display())]
    Metadata { manifest: PathBuf, message: String },
    #[error("{name} ({}) builds no cdylib, so it is not a plugin", manifest.display())]
    NotAPlugin { manifest: PathBuf, name: String },
    #[error("cannot watch {}: {source}", root.display())]
    Watch { root: PathBuf, source: notify::Error },
    #[error("cannot prepare the plugin folder {}: {source}", dir.display())]
    PluginFolder { dir: PathBuf, source: std::io::Error },
    #[error("cannot start the run: {source}")]
    Run { source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a session builds and runs.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The plugin crate's folder.
    pub crate_dir: PathBuf,
    pub action: String,
    /// `--params` as given to `loader run` (JSON or @FILE).
    pub params: String,
    /// Further `loader run` arguments, passed as they are.
    pub run_args: Vec<OsString>,
    /// Build with `--release`.
    pub release: bool,
    /// Clear the screen before each run.
    pub clear: bool,
    /// `-v` count, passed to the runs.
    pub verbose: u8,
    /// The `loader` executable that runs the action.
    pub loader: PathBuf,
    /// The cargo to build with.
    pub cargo: OsString,
}

/// What wakes a session up.
enum Wake {
    Changed(Vec<PathBuf>),
    Interrupted,
}

/// Ends a session from elsewhere (a Ctrl-C handler): the first call stops
/// it cleanly.
#[derive(Clone)]
pub struct Interrupter(Sender<Wake>);

impl Interrupter {
    pub fn interrupt(&self) {
        let _ = self.0.send(Wake::Interrupted);
    }
}

/// A dev session, ready to [`run`](Self::run).
pub struct DevSession {
    options: DevOptions,
    plugin: PluginCrate,
    wakes: Receiver<Wake>,
    sender: Sender<Wake>,
    plugin_dir: PathBuf,
    runs: u32,
    color: bool,
}

/// What ended a wait.
enum Stop {
    Changed(Vec<PathBuf>),
    Interrupted,
}

impl DevSession {
    /// Describes the crate; nothing is built or watched yet.
    pub fn new(options: DevOptions) -> Result<(Self, Interrupter), DevError> {
        let plugin = build::describe(&options.cargo, &options.crate_dir)?;
        let (sender, wakes) = mpsc::channel();
        let plugin_dir = plugin.target_dir.join(format!("loader-dev-{}", std::process::id()));
        let session = DevSession {
            options,
            plugin,
            wakes,
            sender: sender.clone(),
            plugin_dir,
            runs: 0,
            color: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        Ok((session, Interrupter(sender)))
    }

    /// Builds and runs until interrupted; then everything it started has
    /// ended and its plugin folder is removed.
    pub fn run(mut self) -> Result<(), DevError> {
        let sender = self.sender.clone();
        let _watcher = SourceWatcher::start(&self.plugin.root, vec![self.plugin.target_dir.clone()], move |paths| {
            let _ = sender.send(Wake::Changed(paths));
        })
        .map_err(|source| DevError::Watch {
            root: self.plugin.root.clone(),
            source,
        })?;
        std::fs::create_dir_all(&self.plugin_dir).map_err(|source| DevError::PluginFolder {
            dir: self.plugin_dir.clone(),
            source,
        })?;
        self.say(format_args!(
            "watching {} for changes to {} (Ctrl-C to stop)",
            self.plugin.root.display(),
            self.plugin.name
        ));
        let ended = self.cycle();
        let _ = std::fs::remove_dir_all(&self.plugin_dir);
        ended
    }

    /// Build, run, wait for a change; again, until interrupted.
    fn cycle(&mut self) -> Result<(), DevError> {
        loop {
            let library = match self.build()? {
                Built::Library(library) => library,
                Built::Failed => {
                    self.say(format_args!(
                        "the build failed; the last run's output stays above. Save a change to build again."
                    ));
                    match self.wait_for_change(None)? {
                        Stop::Changed(paths) => {
                            self.announce(&paths);
                            continue;
                        }
                        Stop::Interrupted => return Ok(()),
                    }
                }
                Built::Changed(paths) => {
                    self.announce(&paths);
                    continue;
                }
                Built::Interrupted => return Ok(()),
            };
            let mut run = self.start_run(&library)?;
            match self.wait_for_change(Some(&mut run))? {
                Stop::Changed(paths) => {
                    self.stop_run(&mut run, "to rebuild")?;
                    self.announce(&paths);
                }
                Stop::Interrupted => {
                    self.stop_run(&mut run, "")?;
                    return Ok(());
                }
            }
        }
    }

    /// Stops a run still going: SIGINT (the run asks its action to cancel),
    /// another for each further interrupt (the run then kills the action),
    /// and a kill after [`RUN_STOP_GRACE`].
    fn stop_run(&mut self, run: &mut GroupChild, why: &str) -> Result<(), DevError> {
        if run.try_wait()?.is_some() {
            return Ok(());
        }
        self.say(format_args!("stopping run {} {why}", self.runs));
        run.interrupt();
        let deadline = Instant::now() + RUN_STOP_GRACE;
        while Instant::now() < deadline {
            if run.try_wait()?.is_some() {
                return Ok(());
            }
            match self.wakes.recv_timeout(TICK) {
                Ok(Wake::Interrupted) => run.interrupt(),
                Ok(Wake::Changed(_)) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        run.kill()?;
        Ok(())
    }

    /// Builds the crate; a change during the build makes it start over.
    fn build(&mut self) -> Result<Built, DevError> {
        let mut build = Build::start(&self.options.cargo, &self.plugin, self.options.release)?;
        loop {
            if let Some(outcome) = build.try_finish()? {
                return Ok(match outcome {
                    BuildOutcome::Built(library) => Built::Library(library),
                    BuildOutcome::Failed(_) => Built::Failed,
                    BuildOutcome::NoLibrary => {
                        self.say(format_args!("cargo built no library for {}", self.plugin.name));
                        Built::Failed
                    }
                });
            }
            match self.wakes.recv_timeout(TICK) {
                Ok(Wake::Changed(paths)) => {
                    let paths = self.debounce(paths);
                    build.stop();
                    return Ok(Built::Changed(paths));
                }
                Ok(Wake::Interrupted) | Err(RecvTimeoutError::Disconnected) => {
                    build.stop();
                    return Ok(Built::Interrupted);
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Copies the library into the session's plugin folder and starts
    /// `loader run` on it.
    fn start_run(&mut self, library: &Path) -> Result<GroupChild, DevError> {
        let file_name = library.file_name().unwrap_or_default();
        let installed = self.plugin_dir.join(file_name);
        let staging = self.plugin_dir.join(format!(".{}.new", file_name.to_string_lossy()));
        std::fs::copy(library, &staging)
            .and_then(|_| std::fs::rename(&staging, &installed))
            .map_err(|source| DevError::PluginFolder {
                dir: self.plugin_dir.clone(),
                source,
            })?;
        let stem = Path::new(file_name).file_stem().unwrap_or_default().to_owned();
        self.runs += 1;
        if self.options.clear && std::io::stderr().is_terminal() {
            eprint!("\x1b[2J\x1b[H");
        }
        self.say(format_args!(
            "run {}: {} {} --params {}",
            self.runs, self.plugin.name, self.options.action, self.options.params
        ));
        let mut command = Command::new(&self.options.loader);
        command.arg("--plugins").arg(&self.plugin_dir).arg("--no-cache");
        if self.options.verbose > 0 {
            command.arg(format!("-{}", "v".repeat(usize::from(self.options.verbose))));
        }
        command
            .arg("run")
            .arg(stem)
            .arg(&self.options.action)
            .arg("--params")
            .arg(&self.options.params)
            .args(&self.options.run_args)
            .stdin(Stdio::null());
        GroupChild::spawn(&mut command).map_err(|source| DevError::Run { source })
    }

    /// Waits for a change or an interrupt; says when `run` ends meanwhile.
    fn wait_for_change(&mut self, mut run: Option<&mut GroupChild>) -> Result<Stop, DevError> {
        let started = Instant::now();
        loop {
            if let Some(child) = run.as_deref_mut() {
                if let Some(status) = child.try_wait()? {
                    self.say(format_args!(
                        "run {} {} in {:.2} s; watching for changes",
                        self.runs,
                        describe_exit(status),
                        started.elapsed().as_secs_f64()
                    ));
                    run = None;
                }
            }
            match self.wakes.recv_timeout(TICK) {
                Ok(Wake::Changed(paths)) => return Ok(Stop::Changed(self.debounce(paths))),
                Ok(Wake::Interrupted) | Err(RecvTimeoutError::Disconnected) => return Ok(Stop::Interrupted),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Gathers the changes that follow `first` closely; an interrupt among
    /// them is passed on.
    fn debounce(&mut self, first: Vec<PathBuf>) -> Vec<PathBuf> {
        let mut paths = first;
        let until = Instant::now() + MAX_DEBOUNCE;
        while Instant::now() < until {
            match self.wakes.recv_timeout(DEBOUNCE) {
                Ok(Wake::Changed(more)) => paths.extend(more),
                Ok(Wake::Interrupted) => {
                    let _ = self.sender.send(Wake::Interrupted);
                    break;
                }
                Err(_) => break,
            }
        }
        paths.sort();
        paths.dedup();
        paths
    }

    fn announce(&self, paths: &[PathBuf]) {
        let shown: Vec<String> = paths
            .iter()
            .take(3)
            .map(|p| p.strip_prefix(&self.plugin.root).unwrap_or(p).display().to_string())
            .collect();
        let more = match paths.len() {
            0..=3 => String::new(),
            n => format!(" and {} more", n - 3),
        };
        self.say(format_args!("{}{more} changed; building", shown.join(", ")));
    }

    /// A line of the session's own, told apart from cargo's and the run's.
    fn say(&self, text: std::fmt::Arguments) {
        let mut err = std::io::stderr().lock();
        let _ = if self.color {
            writeln!(err, "\x1b[1;35mloader dev:\x1b[0m {text}")
        } else {
            writeln!(err, "loader dev: {text}")
        };
    }
}

/// How a build attempt ended.
enum Built {
    Library(PathBuf),
    Failed,
    Changed(Vec<PathBuf>),
    Interrupted,
}

/// `exited with code 1`, `was killed by signal 9`, `succeeded`.
fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => "succeeded".to_owned(),
        (Some(code), _) => format!("ended with exit code {code}"),
        (None, Some(signal)) => format!("was ended by signal {signal}"),
        (None, None) => "ended".to_owned(),
    }
}
