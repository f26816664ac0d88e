//! Loading under supervision: before the loader maps plugin libraries into
//! its own process, a child process loads them first. A library that
//! crashes or hangs while loading (a static initialiser that aborts, plugin
//! code describing itself that segfaults or never returns) then becomes a
//! problem file naming the signal, and the loader goes on with the others.
//!
//! The child (the loader's hidden `__load-check` command, see
//! [`serve_load_check`]) gets the files as arguments and writes
//! `loading N` before and `loaded N` after loading the N-th. When it dies
//! or stalls, the file it was loading is the culprit; the parent records it
//! and starts a new child for the files after it, so one bad file costs one
//! extra process and every file is still checked. The parent loads each
//! file as soon as the child has survived it, so the two work side by side.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use crate::discovery::{Discovery, Problem, ProblemKind, ScanError};
use crate::isolate::{exit_in_words, spawn, stdout_lines, ChildCommand};

/// [`Discovery::scan`] under supervision: every library in `dir` is first
/// loaded by a child started from `checker` (a program that calls
/// [`serve_load_check`] with the paths appended to its arguments), and
/// loaded here only once the child has survived it. Libraries that crashed
/// or stalled the child are among the problems, in file-name order.
pub fn scan_supervised(dir: &Path, checker: &ChildCommand, per_file: Duration) -> Result<Discovery, ScanError> {
    let candidates = Discovery::candidates(dir)?;
    let mut discovery = Discovery::default();
    let crashed = check_loading(checker, &candidates, per_file, |path| discovery.load_file(path));
    discovery.problems.extend(crashed);
    discovery.problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(discovery)
}

/// Loads `paths` in child processes started from `child` (with the paths
/// appended to its arguments), allowing each file `per_file` to load, and
/// calls `on_safe` with each file, in order, as soon as the child has
/// survived loading it: the caller loads it in its own process meanwhile,
/// so the check costs little more than the slower of the two. Returns the
/// files whose loading crashed or stalled the child.
///
/// Files that load but are not plugins are safe here: in-process loading
/// reports them with its own reason. If no checking process can be started,
/// or one dies between files, the files it did not reach are passed to
/// `on_safe` unchecked (with a warning): the check is a safety net, and it
/// never hides a plugin.
pub fn check_loading(
    child: &ChildCommand,
    paths: &[PathBuf],
    per_file: Duration,
    mut on_safe: impl FnMut(&Path),
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut rest = paths;
    while !rest.is_empty() {
        match check_batch(child, rest, per_file, &mut on_safe) {
            BatchEnd::AllLoaded => break,
            BatchEnd::Culprit { index, reason } => {
                problems.push(Problem::new(
                    rest[index].clone(),
                    ProblemKind::CrashedWhileLoading,
                    reason,
                ));
                rest = &rest[index + 1..];
            }
            BatchEnd::Unchecked { loaded, why } => {
                let unchecked = &rest[loaded..];
                tracing::warn!(
                    "could not check {} plugin file(s) in a separate process ({why}); loading them directly",
                    unchecked.len()
                );
                unchecked.iter().for_each(|path| on_safe(path));
                break;
            }
        }
    }
    problems
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
}

impl Progress {
    /// Reads one line; returns the index of a file the child just loaded.
    fn read(&mut self, line: &str) -> Option<usize> {
        let (word, index) = match line.split_once(' ') {
            Some((word, number)) => (word, number.trim().parse::<usize>().ok()),
            None => (line, None),
        };
        match (word, index) {
            ("loading", Some(index)) => self.loading = Some(index),
            ("loaded", Some(index)) if index == self.loaded => {
                self.loading = None;
                self.loaded = index + 1;
                return Some(index);
            }
            _ => tracing::warn!("the load-checking process wrote an unexpected line: {line}"),
        }
        None
    }

    fn end(&self, status: ExitStatus, expected: usize) -> BatchEnd {
        match self.loading {
            Some(index) => BatchEnd::Culprit {
                index,
                reason: format!(
                    "loading this library crashed the process, which {}; the file was skipped",
                    exit_in_words(status)
                ),
            },
            None if status.success() && self.loaded == expected => BatchEnd::AllLoaded,
            None => BatchEnd::Unchecked {
                loaded: self.loaded,
                why: format!("the checking process {}", exit_in_words(status)),
            },
        }
    }
}

fn check_batch(
    child_command: &ChildCommand,
    paths: &[PathBuf],
    per_file: Duration,
    on_safe: &mut dyn FnMut(&Path),
) -> BatchEnd {
    let mut command = child_command.clone();
    command
        .args
        .extend(paths.iter().map(|p| p.as_os_str().to_string_lossy().into_owned()));
    let mut child = match spawn(&command) {
        Ok(child) => child,
        Err(e) => {
            return BatchEnd::Unchecked {
                loaded: 0,
                why: format!("cannot start it: {e}"),
            }
        }
    };
    tracing::debug!("load check: process {} checks {} file(s)", child.id(), paths.len());
    drop(child.stdin.take());
    let lines = stdout_lines(&mut child, Some);
    let mut progress = Progress::default();
    loop {
        match lines.recv_timeout(per_file) {
            Ok(line) => {
                if let Some(index) = progress.read(&line) {
                    on_safe(&paths[index]);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
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
    match child.wait() {
        Ok(status) => progress.end(status, paths.len()),
        Err(e) => BatchEnd::Unchecked {
            loaded: progress.loaded,
            why: format!("cannot wait for it: {e}"),
        },
    }
}

/// The child's side: loads each file as discovery would, saying
/// `loading N` before and `loaded N` after, flushed. Returns the exit code.
pub fn serve_load_check(paths: &[PathBuf]) -> i32 {
    let mut out = std::io::stdout().lock();
    for (index, path) in paths.iter().enumerate() {
        if say(&mut out, "loading", index).is_err() {
            return 1;
        }
        load(path);
        if say(&mut out, "loaded", index).is_err() {
            return 1;
        }
    }
    0
}

fn say(out: &mut impl Write, what: &str, index: usize) -> std::io::Result<()> {
    writeln!(out, "{what} {index}").and_then(|()| out.flush())
}

fn load(path: &Path) {
    // Libraries stay mapped until the process exits; only surviving matters.
    Discovery::default().load_file(path);
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A stand-in for the loader's `__load-check`: a shell script that
    /// speaks the same protocol and crashes or hangs on files named so.
    fn fake_checker() -> ChildCommand {
        let script = r#"i=0
for f in "$@"; do
  echo "loading $i"
  case "$f" in
    *crash*) kill -SEGV $$ ;;
    *hang*) exec sleep 60 ;;
  esac
  echo "loaded $i"
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
        let mut safe = Vec::new();
        let problems = check_loading(checker, files, per_file, |path| safe.push(path.to_owned()));
        (safe, problems)
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
    fn without_a_checking_process_every_file_is_passed_on_unchecked() {
        let missing = ChildCommand {
            program: "/nonexistent/loader".into(),
            args: Vec::new(),
        };
        let files = paths(&["a.so", "b.so"]);
        let (safe, problems) = check(&missing, &files, Duration::from_secs(1));
        assert_eq!(safe, files);
        assert!(problems.is_empty());
    }

    #[test]
    fn a_checker_that_dies_between_files_passes_the_rest_on_once() {
        let dies_after_first = ChildCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "echo 'loading 0'; echo 'loaded 0'; exit 3".into(),
                "sh".into(),
            ],
        };
        let files = paths(&["a.so", "b.so", "c.so"]);
        let (safe, problems) = check(&dies_after_first, &files, Duration::from_secs(30));
        assert_eq!(safe, files);
        assert!(problems.is_empty());
    }
}
