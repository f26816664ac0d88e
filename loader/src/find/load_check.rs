//! Loading under supervision: before the loader maps a plugin library into
//! its own process, a child process loads it first. A library that crashes
//! or hangs while loading (a static initialiser that aborts, plugin code
//! describing itself that segfaults or never returns) then becomes a
//! problem file naming the signal, and the loader goes on with the others.
//!
//! The child (the loader's hidden `__load-check` command, see
//! [`serve_load_check`]) gets the list of files on its channel to the
//! loader (a socket as fd 3, as an isolated run's child does; the list is
//! NUL-separated, so any number of files of any name fits), and answers on
//! the same channel, for the N-th file, `loading N` before loading it and
//! `outcome N REPORT` (what loading gave: the manifest summary and
//! plugin-api version, or why it is not a plugin, see
//! [`crate::find::load_report`]) and `loaded N` after. What the libraries print
//! goes to `/dev/null`: nothing a library writes can pass for the child's
//! answer. When the child dies or stalls, the file it was loading is the
//! culprit; the parent records it and starts a new child for the files
//! after it, so one bad file costs one extra process and every file is
//! still checked.
//!
//! A folder of many files is split between a few checking processes, one a
//! core (see [`check_loading`]): they load side by side, which threads of
//! one process could not (the system loader serialises `dlopen`), and each
//! holds only its share of the libraries.
//!
//! The parent believes a report only for the file the child is loading at
//! that moment, in order, and only when it is small enough and valid; so
//! `list` needs no load of its own, and the manifest cache is written from
//! the reports. A file the child survived without a report believed is
//! loaded by the parent itself, as it was before reports existed. What a
//! report says is never what runs: `run` and `info` load-check and load
//! their plugin in the loader and compare it with its description. (A
//! library's code, once loaded, controls the checking process and could
//! misreport the files checked after it; that misleads a listing, never a
//! run.)
//!
//! If the check itself cannot run (no checking process can be started, or
//! one dies without getting anywhere), the scan fails with a
//! [`LoadCheckError`]: files are never loaded unchecked behind the user's
//! back.

use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use crate::find::discovery::{self, Discovery, Problem, ProblemKind, ScanError};
use crate::find::load_report::{LoadOutcome, MAX_REPORT_BYTES};
use crate::isolate::bounded_lines::{Lines, Piece};
use crate::isolate::child_env::child_environment;
use crate::isolate::{exit_in_words, spawn_with_channel, ChildCommand, ChildOutput};
use crate::sandbox::{
    self, missing_line, policy, Containment, Grants, Limits, SandboxMode, SandboxPolicy, DEFAULT_MEMORY_BYTES,
    POLICY_VAR,
};
use crate::sys;

/// The check could not run, so the files it did not reach were not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot check plugin libraries in a separate process ({why}); {unchecked} file(s) were not loaded")]
pub struct LoadCheckError {
    pub why: String,
    pub unchecked: usize,
}

/// Why a supervised scan failed.
#[derive(Debug, thiserror::Error)]
pub enum SupervisedScanError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Check(#[from] LoadCheckError),
}

/// [`Discovery::scan`] under supervision: every library in `dir` is first
/// loaded by a child started from `checker` (a program that calls
/// [`serve_load_check`]), and loaded here only once the child has survived
/// it. Libraries that crashed or stalled the child are among the problems,
/// in file-name order.
pub fn scan_supervised(
    dir: &Path,
    checker: &ChildCommand,
    per_file: Duration,
    sandbox: SandboxMode,
) -> Result<Discovery, SupervisedScanError> {
    let candidates = Discovery::candidates(dir)?;
    let mut discovery = Discovery::default();
    let crashed = check_loading(checker, &candidates, per_file, sandbox, |path, _| {
        discovery.load_file(path)
    })?;
    discovery.problems.extend(crashed);
    discovery.problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(discovery)
}

/// Loads `paths` in child processes started from `child`, allowing each
/// file `per_file` to load, and calls `on_safe` with each file, in order,
/// as soon as the child has survived loading it, with what loading gave
/// there when the child reported it validly (else `None`). Returns the
/// files whose loading crashed or stalled the child.
///
/// Files that load but are not plugins are safe here: their report says
/// why. A checking process that dies between files is replaced; one that
/// cannot be started, or dies before its first file, ends the check with
/// an error naming how many files were not checked (and not passed on).
///
/// Many files are split between checking processes running side by side
/// (one a core, each with at least [`FILES_PER_CHECKER`] files); their
/// files are then passed on once all have finished, in order.
pub fn check_loading(
    child: &ChildCommand,
    paths: &[PathBuf],
    per_file: Duration,
    sandbox: SandboxMode,
    mut on_safe: impl FnMut(&Path, Option<LoadOutcome>),
) -> Result<Vec<Problem>, LoadCheckError> {
    let checkers = checkers_for(paths.len());
    if checkers <= 1 {
        return check_in_order(child, paths, per_file, sandbox, on_safe);
    }
    let share = paths.len().div_ceil(checkers);
    let results: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(share)
            .map(|part| {
                scope.spawn(move || {
                    let mut safe = Vec::new();
                    check_in_order(child, part, per_file, sandbox, |path, outcome| {
                        safe.push((path.to_owned(), outcome))
                    })
                    .map(|problems| (safe, problems))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut problems = Vec::new();
    let mut failure: Option<LoadCheckError> = None;
    let mut passed_on = Vec::new();
    for result in results {
        match (result, &mut failure) {
            (Ok((safe, crashed)), _) => {
                passed_on.extend(safe);
                problems.extend(crashed);
            }
            (Err(error), Some(first)) => first.unchecked += error.unchecked,
            (Err(error), None) => failure = Some(error),
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    for (path, outcome) in passed_on {
        on_safe(&path, outcome);
    }
    Ok(problems)
}

/// Starting a checking process costs about as much as loading this many
/// files: a folder is split between processes only above it.
pub const FILES_PER_CHECKER: usize = 32;

/// How many checking processes share `files` files: one a core, each with
/// at least [`FILES_PER_CHECKER`] files.
fn checkers_for(files: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (files / FILES_PER_CHECKER).clamp(1, cores)
}

/// [`check_loading`] in one checking process at a time.
fn check_in_order(
    child: &ChildCommand,
    paths: &[PathBuf],
    per_file: Duration,
    sandbox: SandboxMode,
    mut on_safe: impl FnMut(&Path, Option<LoadOutcome>),
) -> Result<Vec<Problem>, LoadCheckError> {
    let mut problems = Vec::new();
    let mut rest = paths;
    while !rest.is_empty() {
        match check_batch(child, rest, per_file, sandbox, &mut on_safe) {
            BatchEnd::AllLoaded => break,
            BatchEnd::Culprit { index, reason } => {
                problems.push(Problem::new(
                    rest[index].clone(),
                    ProblemKind::CrashedWhileLoading,
                    reason,
                ));
                rest = &rest[index + 1..];
            }
            BatchEnd::Unchecked { loaded, why } if loaded > 0 => {
                tracing::warn!(
                    "the load-checking process stopped between files ({why}); checking the rest in a new one"
                );
                rest = &rest[loaded..];
            }
            BatchEnd::Unchecked { why, .. } => {
                return Err(LoadCheckError {
                    why,
                    unchecked: rest.len(),
                })
            }
        }
    }
    Ok(problems)
}

/// How one checking process ended.
#[derive(Debug)]
enum BatchEnd {
    /// Every file loaded; all were passed on.
    AllLoaded,
    /// Loading the file at `index` crashed or stalled the process; the
    /// files before it were passed on.
    Culprit { index: usize, reason: String },
    /// The process failed outside any file, after passing on `loaded`.
    Unchecked { loaded: usize, why: String },
}

/// What the checking process has said so far.
#[derive(Debug, Default)]
struct Progress {
    loading: Option<usize>,
    loaded: usize,
    /// The outcome reported for the file being loaded.
    outcome: Option<LoadOutcome>,
}

impl Progress {
    /// Reads one line; returns the index of a file the child just loaded,
    /// with the outcome it reported for it, if believed.
    fn read(&mut self, line: &str) -> Option<(usize, Option<LoadOutcome>)> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (number, payload) = rest.split_once(' ').unwrap_or((rest, ""));
        let index = number.trim().parse::<usize>().ok();
        let current = index.is_some() && index == self.loading;
        match (word, index) {
            ("loading", Some(index)) if index == self.loaded && self.loading.is_none() => {
                self.loading = Some(index);
                self.outcome = None;
            }
            ("outcome", Some(_)) if current => match LoadOutcome::from_report(payload.as_bytes()) {
                Ok(outcome) => self.outcome = Some(outcome),
                Err(e) => tracing::warn!("the load check's report on file {number} is ignored: {e}"),
            },
            ("loaded", Some(index)) if current => {
                let outcome = self.outcome.take();
                self.loading = None;
                self.loaded = index + 1;
                return Some((index, outcome));
            }
            _ => tracing::warn!("the load-checking process wrote an unexpected line: {}", shorten(line)),
        }
        None
    }

    fn end(&self, status: ExitStatus, expected: usize) -> BatchEnd {
        match self.loading {
            Some(index) => BatchEnd::Culprit {
                index,
                reason: crash_reason(status),
            },
            None if self.loaded == expected => {
                if !status.success() {
                    tracing::warn!(
                        "the load-checking process {} after loading every file",
                        exit_in_words(status)
                    );
                }
                BatchEnd::AllLoaded
            }
            None => BatchEnd::Unchecked {
                loaded: self.loaded,
                why: format!("the checking process {}", exit_in_words(status)),
            },
        }
    }
}

/// The reason of a file whose loading ended the process that loaded it.
fn crash_reason(status: ExitStatus) -> String {
    format!(
        "loading this library crashed the process, which {}; the file was skipped",
        exit_in_words(status)
    )
}

/// The beginning of a line too long to log whole.
fn shorten(line: &str) -> &str {
    let mut end = line.len().min(200);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// The list a checking process reads: the paths, each followed by NUL.
fn path_list(paths: &[PathBuf]) -> Vec<u8> {
    let mut list = Vec::new();
    for path in paths {
        list.extend_from_slice(path.as_os_str().as_bytes());
        list.push(0);
    }
    list
}

/// The longest answer line read: an `outcome` line with the largest report.
const MAX_ANSWER_LINE: usize = MAX_REPORT_BYTES + 64;

/// Reads the checking process's answer lines on a thread; a line longer
/// than [`MAX_ANSWER_LINE`] is dropped whole.
fn answer_lines(channel: UnixStream) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Lines::new(channel, MAX_ANSWER_LINE);
        let mut too_long = false;
        loop {
            match lines.next() {
                Ok(Piece::Line(line)) => {
                    if std::mem::take(&mut too_long) {
                        tracing::warn!(
                            "the load-checking process wrote a line longer than {MAX_ANSWER_LINE} bytes; it is ignored"
                        );
                    } else if sender.send(String::from_utf8_lossy(line).into_owned()).is_err() {
                        return;
                    }
                }
                Ok(Piece::Part(_)) => too_long = true,
                Ok(Piece::Idle) => {}
                Ok(Piece::End) | Err(_) => return,
            }
        }
    });
    receiver
}

fn check_batch(
    child_command: &ChildCommand,
    paths: &[PathBuf],
    per_file: Duration,
    sandbox: SandboxMode,
    on_safe: &mut dyn FnMut(&Path, Option<LoadOutcome>),
) -> BatchEnd {
    let unchecked = |why: String| BatchEnd::Unchecked { loaded: 0, why };
    let mut env = child_environment(std::env::vars_os(), &Default::default());
    let mut containment = match Containment::prepare(sandbox, CHECK_LIMITS, false) {
        Ok(containment) => containment,
        Err(e) => return unchecked(e.to_string()),
    };
    if sandbox != SandboxMode::Off {
        let policy = policy::build(
            policy::Purpose::LoadCheck {
                folders: &folders_of(paths),
            },
            &Grants::default(),
            sandbox == SandboxMode::Require,
        );
        match serde_json::to_string(&policy) {
            Ok(policy) => env.push((POLICY_VAR.into(), policy.into())),
            Err(e) => return unchecked(format!("cannot describe its sandbox: {e}")),
        }
    }
    let spawned = spawn_with_channel(child_command, env, ChildOutput::Discarded, Some(&mut containment), None);
    let mut spawned = match spawned {
        Ok(spawned) => spawned,
        Err(e) => return unchecked(format!("cannot start it: {e}")),
    };
    warn_once_if_incomplete(&containment);
    tracing::debug!(
        "load check: process {} checks {} file(s)",
        spawned.child.id(),
        paths.len()
    );
    let (mut writer, reader) = match (spawned.channel.try_clone(), spawned.channel.try_clone()) {
        (Ok(writer), Ok(reader)) => (writer, reader),
        (Err(e), _) | (_, Err(e)) => {
            return BatchEnd::Unchecked {
                loaded: 0,
                why: format!("cannot talk to it: {e}"),
            }
        }
    };
    let list = path_list(paths);
    std::thread::spawn(move || {
        let _ = writer.write_all(&list);
        let _ = writer.shutdown(std::net::Shutdown::Write);
    });
    let lines = answer_lines(reader);
    let mut progress = Progress::default();
    loop {
        match lines.recv_timeout(per_file) {
            Ok(line) => {
                if let Some((index, outcome)) = progress.read(&line) {
                    on_safe(&paths[index], outcome);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                spawned.group.kill();
                let _ = spawned.wait();
                return match progress.loading {
                    Some(index) => BatchEnd::Culprit {
                        index,
                        reason: format!(
                            "loading this library did not finish within {}s; the file was skipped",
                            per_file.as_secs_f64()
                        ),
                    },
                    None => BatchEnd::Unchecked {
                        loaded: progress.loaded,
                        why: format!("it said nothing for {}s", per_file.as_secs_f64()),
                    },
                };
            }
        }
    }
    match spawned.wait() {
        Ok(status) => progress.end(status, paths.len()),
        Err(e) => BatchEnd::Unchecked {
            loaded: progress.loaded,
            why: format!("cannot wait for it: {e}"),
        },
    }
}

/// The limits of a load-checking process: loading needs few processes.
const CHECK_LIMITS: Limits = Limits {
    max_processes: 64,
    memory_bytes: Some(DEFAULT_MEMORY_BYTES),
};

/// The folders holding `paths` (each once): what a checking process may read.
fn folders_of(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = paths
        .iter()
        .filter_map(|p| absolute(p).parent().map(Path::to_owned))
        .collect();
    folders.sort();
    folders.dedup();
    folders
}

/// `path` made absolute against the current folder (the sandbox's rules
/// are opened by the child, whose current folder may differ).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Says once per process what the sandbox of the checking processes lacks.
fn warn_once_if_incomplete(containment: &Containment) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Some(line) = missing_line(containment.missing()) {
        WARNED.call_once(|| tracing::warn!("{line}"));
    }
}

/// The child's side: reads the NUL-separated file list from its channel
/// (fd 3), enters the sandbox its environment describes (before loading
/// anything), then loads each file as discovery would, saying `loading N`
/// before, and `outcome N REPORT` and `loaded N` after, on the channel.
/// Returns the exit code.
pub fn serve_load_check() -> i32 {
    let mut channel = match sys::take_channel() {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("loader: the load check expects its channel to the loader on fd 3 ({e})");
            return 2;
        }
    };
    sys::kill_group_on_termination();
    let mut list = Vec::new();
    if let Err(e) = channel.read_to_end(&mut list) {
        eprintln!("loader: cannot read the list of files to check: {e}");
        return 2;
    }
    let paths: Vec<PathBuf> = list
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
        .collect();
    drop(list);
    if let Some(policy) = std::env::var_os(POLICY_VAR) {
        let entered = serde_json::from_str::<SandboxPolicy>(&policy.to_string_lossy())
            .map_err(|e| e.to_string())
            .and_then(|policy| sandbox::enter(&policy).map_err(|e| e.to_string()));
        if let Err(e) = entered {
            eprintln!("loader: the load check cannot enter its sandbox: {e}");
            return 2;
        }
    }
    for (index, path) in paths.iter().enumerate() {
        if writeln!(channel, "loading {index}").is_err() {
            return 1;
        }
        // Libraries stay mapped until the process exits; only surviving matters.
        let report = LoadOutcome::of(&discovery::load_plugin(path)).to_report();
        if channel
            .write_all(format!("outcome {index} {report}\nloaded {index}\n").as_bytes())
            .is_err()
        {
            return 1;
        }
    }
    0
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A stand-in for the loader's `__load-check`: a shell script that
    /// speaks the same protocol and crashes or hangs on files named so.
    fn fake_checker() -> ChildCommand {
        let script = r#"i=0
for f in $(tr '\0' ' ' <&3); do
  echo "loading $i" >&3
  case "$f" in
    *crash*) kill -SEGV $$ ;;
    *hang*) exec sleep 60 ;;
  esac
  echo "loaded $i" >&3
  i=$((i+1))
done"#;
        ChildCommand {
            program: "sh".into(),
            args: vec!["-c".into(), script.into(), "sh".into()],
        }
    }

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(PathBuf::from).collect()
    }

    /// Runs a check and returns (files passed on, problems).
    fn check(checker: &ChildCommand, files: &[PathBuf], per_file: Duration) -> (Vec<PathBuf>, Vec<Problem>) {
        let (safe, problems) = check_with_outcomes(checker, files, per_file);
        (safe.into_iter().map(|(path, _)| path).collect(), problems)
    }

    /// Runs a check and returns (files passed on with their outcomes, problems).
    fn check_with_outcomes(
        checker: &ChildCommand,
        files: &[PathBuf],
        per_file: Duration,
    ) -> (Vec<(PathBuf, Option<LoadOutcome>)>, Vec<Problem>) {
        let mut safe = Vec::new();
        let problems = check_loading(checker, files, per_file, SandboxMode::On, |path, outcome| {
            safe.push((path.to_owned(), outcome))
        })
        .expect("the check runs");
        (safe, problems)
    }

    /// A checker that runs `answers` (shell commands writing to fd 3)
    /// after reading the list.
    fn scripted_checker(answers: &str) -> ChildCommand {
        ChildCommand {
            program: "sh".into(),
            args: vec!["-c".into(), format!("cat <&3 >/dev/null; {answers}")],
        }
    }

    fn problem_report(reason: &str) -> String {
        LoadOutcome::Problem {
            kind: ProblemKind::NotAPlugin,
            reason: reason.to_owned(),
            declared_api_version: None,
        }
        .to_report()
    }

    #[test]
    fn reported_outcomes_are_passed_on_with_their_files() {
        let report = problem_report("no root module");
        let checker = scripted_checker(&format!(
            "echo 'loading 0' >&3; echo 'outcome 0 {report}' >&3; echo 'loaded 0' >&3; \
             echo 'loading 1' >&3; echo 'loaded 1' >&3"
        ));
        let files = paths(&["a.so", "b.so"]);
        let (safe, problems) = check_with_outcomes(&checker, &files, Duration::from_secs(30));
        assert!(problems.is_empty(), "{problems:?}");
        let expected = LoadOutcome::from_report(report.as_bytes()).unwrap();
        assert_eq!(safe, [(files[0].clone(), Some(expected)), (files[1].clone(), None)]);
    }

    #[test]
    fn a_report_for_another_file_or_a_malformed_one_is_not_believed() {
        let report = problem_report("forged");
        let checker = scripted_checker(&format!(
            "echo 'loading 0' >&3; echo 'outcome 1 {report}' >&3; echo 'outcome 0 {{\"plugin\":' >&3; \
             echo 'loaded 0' >&3; echo 'outcome 1 {report}' >&3; echo 'loaded 1' >&3; \
             echo 'loading 1' >&3; echo 'loaded 1' >&3"
        ));
        let files = paths(&["a.so", "b.so"]);
        let (safe, problems) = check_with_outcomes(&checker, &files, Duration::from_secs(30));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(safe, [(files[0].clone(), None), (files[1].clone(), None)]);
    }

    #[test]
    fn an_oversized_answer_line_is_dropped_whole() {
        let checker = scripted_checker(&format!(
            "echo 'loading 0' >&3; printf 'outcome 0 ' >&3; head -c {} /dev/zero | tr '\\0' x >&3; \
             echo >&3; echo 'loaded 0' >&3",
            MAX_ANSWER_LINE + 10
        ));
        let files = paths(&["a.so"]);
        let (safe, problems) = check_with_outcomes(&checker, &files, Duration::from_secs(30));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(safe, [(files[0].clone(), None)]);
    }

    #[test]
    fn many_files_are_shared_between_checkers_and_passed_on_in_order() {
        let names: Vec<String> = (0..3 * FILES_PER_CHECKER)
            .map(|i| {
                if i == 2 * FILES_PER_CHECKER + 1 {
                    format!("crash{i}.so")
                } else {
                    format!("{i}.so")
                }
            })
            .collect();
        let files: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
        let (safe, problems) = check(&fake_checker(), &files, Duration::from_secs(30));
        let mut expected = files.clone();
        let culprit = expected.remove(2 * FILES_PER_CHECKER + 1);
        assert_eq!(safe, expected);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, culprit);
    }

    #[test]
    fn a_shared_check_that_cannot_run_counts_every_file_unchecked() {
        let missing = ChildCommand {
            program: "/nonexistent/loader".into(),
            args: Vec::new(),
        };
        let files: Vec<PathBuf> = (0..3 * FILES_PER_CHECKER)
            .map(|i| PathBuf::from(format!("{i}.so")))
            .collect();
        let mut safe = Vec::new();
        let error = check_loading(&missing, &files, Duration::from_secs(1), SandboxMode::On, |path, _| {
            safe.push(path.to_owned())
        })
        .unwrap_err();
        assert!(safe.is_empty());
        assert_eq!(error.unchecked, files.len());
    }

    #[test]
    fn files_that_load_are_all_passed_on_in_order() {
        let files = paths(&["a.so", "b.so", "c.so"]);
        let (safe, problems) = check(&fake_checker(), &files, Duration::from_secs(30));
        assert_eq!(safe, files);
        assert!(problems.is_empty());
    }

    #[test]
    fn a_crashing_file_is_a_problem_naming_the_signal_and_the_rest_are_checked() {
        let files = paths(&["a.so", "crash1.so", "b.so", "crash2.so", "c.so"]);
        let (safe, problems) = check(&fake_checker(), &files, Duration::from_secs(30));
        assert_eq!(safe, paths(&["a.so", "b.so", "c.so"]));
        let culprits: Vec<_> = problems.iter().map(|p| p.path.clone()).collect();
        assert_eq!(culprits, paths(&["crash1.so", "crash2.so"]));
        let reason = &problems[0].reason;
        assert!(reason.contains("signal 11 (SIGSEGV)"), "{reason}");
        assert!(reason.contains("skipped"), "{reason}");
    }

    #[test]
    fn a_file_that_hangs_while_loading_is_skipped_after_the_time_allowed() {
        let files = paths(&["hang.so", "a.so"]);
        let (safe, problems) = check(&fake_checker(), &files, Duration::from_millis(300));
        assert_eq!(safe, paths(&["a.so"]));
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].reason.contains("did not finish within 0.3s"),
            "{problems:?}"
        );
    }

    #[test]
    fn without_a_checking_process_nothing_is_passed_on_and_the_check_fails() {
        let missing = ChildCommand {
            program: "/nonexistent/loader".into(),
            args: Vec::new(),
        };
        let files = paths(&["a.so", "b.so"]);
        let mut safe = Vec::new();
        let error = check_loading(&missing, &files, Duration::from_secs(1), SandboxMode::On, |path, _| {
            safe.push(path.to_owned())
        })
        .unwrap_err();
        assert!(safe.is_empty());
        assert_eq!(error.unchecked, 2);
        assert!(error.to_string().contains("cannot start it"), "{error}");
    }

    #[test]
    fn a_checker_that_dies_before_any_file_fails_the_check() {
        let dies = ChildCommand {
            program: "sh".into(),
            args: vec!["-c".into(), "exit 3".into()],
        };
        let files = paths(&["a.so"]);
        let error = check_loading(&dies, &files, Duration::from_secs(30), SandboxMode::On, |_, _| {}).unwrap_err();
        assert!(error.why.contains("exited with code 3"), "{error}");
    }

    #[test]
    fn what_a_library_prints_cannot_pass_for_the_answer() {
        let spoofer = ChildCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "cat <&3 >/dev/null; echo 'loading 0' >&3; echo 'loaded 0'; echo 'loaded 0' >&2; kill -ABRT $$".into(),
            ],
        };
        let files = paths(&["spoof.so", "b.so"]);
        let (safe, problems) = check(&spoofer, &files[..1], Duration::from_secs(30));
        assert!(safe.is_empty());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].reason.contains("SIGABRT"), "{problems:?}");
    }

    #[test]
    fn a_checker_that_dies_between_files_is_replaced_for_the_rest() {
        let dies_after_first = ChildCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "cat <&3 >/dev/null; echo 'loading 0' >&3; echo 'loaded 0' >&3; exit 3".into(),
            ],
        };
        let files = paths(&["a.so", "b.so", "c.so"]);
        let (safe, problems) = check(&dies_after_first, &files, Duration::from_secs(30));
        assert_eq!(safe, files);
        assert!(problems.is_empty());
    }
}
