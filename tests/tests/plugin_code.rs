//! Outside `--in-process`, no plugin code runs in the loader's own process,
//! in any subcommand: a test plugin whose library initialiser records the
//! id of every process that maps it shows that `list`, `info`, `run` and
//! `run --dry-run` (cold, and from the manifest cache) load it only in
//! child processes, while `run --in-process` (the positive control) loads
//! it in the loader; `--no-load-check` is refused except with `run
//! --in-process`. The same plugin's initialiser, made to sleep far longer
//! than `--load-timeout`, hangs no command: a cold scan skips the file as a
//! problem, and a child that loads it from a cached description is killed.
//!
//! The commands run with `--sandbox off`: a sandboxed initialiser could not
//! write its marker, and which process loads a library does not depend on
//! the sandbox.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// Longer than the loader's racy margin: a file examined this long after
/// its last change is taken from the cache next time.
const SETTLE: Duration = Duration::from_millis(2_100);

/// A plugin folder with the marker plugin, and the cache folder its
/// commands use.
struct Marked {
    /// Where the initialiser writes its marker, beside the library.
    plugins: tempfile::TempDir,
    cache_home: tempfile::TempDir,
}

impl Marked {
    fn new() -> Self {
        Marked {
            plugins: plugin_dir(&[fixture_library("probe", "marker-on-load")]),
            cache_home: tempfile::tempdir().expect("a cache folder"),
        }
    }

    fn marker(&self) -> PathBuf {
        self.plugins.path().join("marker-on-load.pids")
    }

    fn sleep_file(&self) -> PathBuf {
        self.plugins.path().join("marker-on-load.sleep")
    }

    /// The ids of the processes that loaded the library so far.
    fn loaded_by(&self) -> Vec<u32> {
        std::fs::read_to_string(self.marker())
            .unwrap_or_default()
            .lines()
            .map(|line| line.parse().expect("a process id"))
            .collect()
    }

    fn sleep_on_load(&self, seconds: u64) {
        std::fs::write(self.sleep_file(), seconds.to_string()).expect("the sleep file");
    }

    /// Runs the loader with `args`; returns its process id, its output and
    /// how long it took.
    fn loader(&self, args: &[&str]) -> (u32, Output, Duration) {
        let program = loader_bin();
        let started = Instant::now();
        let child = Command::new(program)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("XDG_CACHE_HOME", self.cache_home.path())
            .args(["--sandbox", "off", "--plugins"])
            .arg(self.plugins.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the loader starts");
        let pid = child.id();
        let output = child.wait_with_output().expect("the loader ends");
        (pid, output, started.elapsed())
    }

    /// Runs `args`, expecting `code`; asserts that the loader itself never
    /// loaded the library, and returns how many processes did.
    fn loaded_elsewhere(&self, args: &[&str], code: i32) -> usize {
        let before = self.loaded_by().len();
        let (pid, output, _) = self.loader(args);
        assert_eq!(exit_code(&output), code, "{args:?}: {}", stderr(&output));
        let after = self.loaded_by();
        assert!(
            !after.contains(&pid),
            "{args:?} loaded the plugin library in the loader itself"
        );
        after.len() - before
    }
}

const PARAMS: &str = r#"{"count": 2}"#;

#[test]
fn outside_in_process_the_loader_never_loads_a_plugin_library() {
    let marked = Marked::new();
    let cold = marked.loaded_elsewhere(&["list", "--json"], 0);
    assert_eq!(cold, 1, "the load check loaded it, in a child");
    assert!(marked.loaded_elsewhere(&["info", "marker"], 0) >= 1);
    assert!(marked.loaded_elsewhere(&["info", "marker", "count", "--json"], 0) >= 1);
    assert!(marked.loaded_elsewhere(&["run", "marker", "count", "--params", PARAMS, "--dry-run"], 0) >= 1);
    assert!(marked.loaded_elsewhere(&["run", "marker", "count", "--params", "{}", "--dry-run"], 2) >= 1);
    assert!(marked.loaded_elsewhere(&["run", "marker", "count", "--params", PARAMS, "--quiet"], 0) >= 1);
    assert!(
        marked.loaded_elsewhere(&["--no-cache", "info", "marker"], 0) >= 2,
        "the check, then the describing child"
    );

    // From the cache: `list` loads nothing, the others load in a child only.
    std::thread::sleep(SETTLE);
    marked.loaded_elsewhere(&["list"], 0);
    assert_eq!(
        marked.loaded_elsewhere(&["list"], 0),
        0,
        "an unchanged folder is listed from the cache"
    );
    assert_eq!(marked.loaded_elsewhere(&["info", "marker"], 0), 1);
    assert_eq!(
        marked.loaded_elsewhere(&["run", "marker", "count", "--params", PARAMS, "--dry-run"], 0),
        1
    );
    assert_eq!(
        marked.loaded_elsewhere(&["run", "marker", "count", "--params", PARAMS, "--quiet"], 0),
        1
    );

    for refused in [
        &["--no-load-check", "list"][..],
        &["--no-load-check", "info", "marker"],
        &["--no-load-check", "run", "marker", "count"],
    ] {
        let (_, output, _) = marked.loader(refused);
        assert_eq!(exit_code(&output), 2, "{refused:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("allowed only with `run --in-process`"),
            "{}",
            stderr(&output)
        );
    }

    // The positive control: an in-process run loads it in the loader.
    for in_process in [
        &["run", "marker", "count", "--params", PARAMS, "--in-process"][..],
        &[
            "--no-load-check",
            "run",
            "marker",
            "count",
            "--params",
            PARAMS,
            "--in-process",
        ],
    ] {
        let (pid, output, _) = marked.loader(in_process);
        assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
        assert!(
            marked.loaded_by().contains(&pid),
            "{in_process:?}: the marker shows the loader's own process"
        );
    }
}

/// Far longer than any command may take; the load limit is 1 s.
const SLEEP_SECONDS: u64 = 120;
const NO_HANG: Duration = Duration::from_secs(40);

fn with_load_timeout<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--load-timeout", "1"];
    all.extend_from_slice(args);
    all
}

/// Runs `args` with a load limit of 1 s; asserts it ends well before the
/// initialiser would, with `code`; returns its stderr (and stdout).
fn ends_in_time(marked: &Marked, args: &[&str], code: i32) -> (String, String) {
    let (_, output, took) = marked.loader(&with_load_timeout(args));
    assert!(took < NO_HANG, "{args:?} took {took:?}");
    assert_eq!(exit_code(&output), code, "{args:?}: {}", stderr(&output));
    (stderr(&output), stdout(&output))
}

#[test]
fn a_library_initialiser_that_sleeps_hangs_no_command() {
    let marked = Marked::new();
    // Cold: the load check skips it as a problem, so nothing names it.
    marked.sleep_on_load(SLEEP_SECONDS);
    let (_, listed) = ends_in_time(&marked, &["list", "--json"], 0);
    let listed: Value = serde_json::from_str(&listed).expect("list JSON");
    let problem = &listed["problems"][0];
    assert_eq!(problem["kind"], "crashed_while_loading", "{listed:#}");
    assert!(
        problem["reason"].as_str().unwrap().contains("did not finish within 1s"),
        "{problem}"
    );
    for args in [
        &["info", "marker"][..],
        &["run", "marker", "count", "--params", PARAMS],
        &["run", "marker", "count", "--params", PARAMS, "--dry-run"],
    ] {
        let (log, _) = ends_in_time(&marked, args, 3);
        assert!(log.contains("did not finish within 1s"), "{args:?}: {log}");
    }

    // From a description cached while it loaded quickly: the child that
    // loads it is killed at the limit.
    std::fs::remove_file(marked.sleep_file()).expect("wake up");
    ends_in_time(&marked, &["list"], 0);
    std::thread::sleep(SETTLE);
    ends_in_time(&marked, &["list"], 0);
    marked.sleep_on_load(SLEEP_SECONDS);
    let (listed, _) = ends_in_time(&marked, &["list"], 0);
    assert!(
        !listed.contains("did not finish"),
        "listed from the cache without loading: {listed}"
    );
    for args in [
        &["info", "marker"][..],
        &["run", "marker", "count", "--params", PARAMS, "--dry-run"],
        &["run", "marker", "count", "--params", PARAMS],
    ] {
        let (log, _) = ends_in_time(&marked, args, 1);
        assert!(
            log.contains("did not finish within 1s (--load-timeout)"),
            "{args:?}: {log}"
        );
    }
    assert_no_sleeper_left(marked.plugins.path());
}

/// No process still has the plugin library mapped: every child that loaded
/// it was killed with its group.
fn assert_no_sleeper_left(plugins: &Path) {
    let started = Instant::now();
    loop {
        let left: Vec<String> = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                std::fs::read_to_string(entry.path().join("maps"))
                    .ok()
                    .map(|maps| (entry, maps))
            })
            .filter(|(_, maps)| maps.contains(&*plugins.to_string_lossy()))
            .map(|(entry, _)| entry.file_name().to_string_lossy().into_owned())
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "processes still hold the library: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
