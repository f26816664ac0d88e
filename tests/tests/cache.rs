//! The manifest cache end to end: whatever happens to the plugin folder or
//! to the cache file (a plugin edited in place with the same size, one
//! replaced by a library that crashes on load, files added and removed, the
//! cache truncated or corrupted), `list` and `run` give exactly what they
//! give with `--no-cache`; a forged entry never changes what runs: the
//! child finds the library is not the plugin described, the run fails
//! without running anything and drops the entry, and the next run is as
//! without it; over an unchanged folder, nothing is loaded to list it and
//! only the plugin run is loaded to run it (in its child).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

/// Longer than the loader's racy margin: a file examined this long after
/// its last change is taken from the cache next time.
const SETTLE: Duration = Duration::from_millis(2_100);

/// The bench plugin, whose code sits after a marker in its library.
fn coded_library() -> PathBuf {
    fixture_library("bench", "bench-plugin")
}

/// Writes a copy of the bench plugin whose plugin code is `code`.
fn write_coded_plugin(path: &Path, code: &str) {
    let mut bytes = fs::read(coded_library()).expect("the bench plugin");
    patch_code(&mut bytes, code);
    fs::write(path, bytes).expect("write the plugin copy");
}

/// Overwrites the code after the `PLUGINCODE:` marker (32 bytes, NUL-padded).
fn patch_code(bytes: &mut [u8], code: &str) {
    let marker = b"PLUGINCODE:";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the code marker")
        + marker.len();
    assert!(code.len() <= 32);
    let slot = &mut bytes[at..at + 32];
    slot.fill(0);
    slot[..code.len()].copy_from_slice(code.as_bytes());
}

fn lib_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("lib{stem}.{}", std::env::consts::DLL_EXTENSION))
}

/// A plugin folder with plugins `alpha`, `beta` and `gamma` and a cache
/// folder primed for it: the files have settled and a `list` recorded them.
struct Setup {
    plugins: tempfile::TempDir,
    cache_home: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let plugins = tempfile::tempdir().expect("a plugin folder");
        for code in ["alpha", "beta", "gamma"] {
            write_coded_plugin(&lib_path(plugins.path(), code), code);
        }
        let setup = Self {
            plugins,
            cache_home: tempfile::tempdir().expect("a cache folder"),
        };
        std::thread::sleep(SETTLE);
        setup.loader(&["list"]);
        assert_eq!(setup.cache_use(&["list"]), (3, 0), "the cache is primed");
        setup
    }

    fn dir(&self) -> &Path {
        self.plugins.path()
    }

    fn loader(&self, args: &[&str]) -> Output {
        let cache_home = self.cache_home.path().to_str().expect("a UTF-8 path");
        loader(
            self.dir(),
            args,
            &[("XDG_CACHE_HOME", cache_home), ("LOADER_LOG", "loader=debug")],
        )
    }

    /// (files described by the cache, files loaded) in the scan of a command.
    fn cache_use(&self, args: &[&str]) -> (usize, usize) {
        let [cached, loaded, _] = cache_report(&stderr(&self.loader(args)));
        (cached, loaded)
    }

    fn cache_file(&self) -> PathBuf {
        let dir = self.cache_home.path().join("synapse-loader");
        let files: Vec<PathBuf> = fs::read_dir(&dir)
            .expect("the cache folder")
            .map(|e| e.expect("an entry").path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }

    /// `list --json` with the cache, asserted equal to `--no-cache`.
    fn list_as_without_cache(&self) -> Value {
        let listed = |args: &[&str]| -> Value {
            let output = self.loader(args);
            assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
            serde_json::from_str(&stdout(&output)).expect("list JSON")
        };
        let cached = listed(&["list", "--json"]);
        assert_eq!(cached, listed(&["--no-cache", "list", "--json"]));
        cached
    }

    /// Runs `PLUGIN noop` with the cache, asserted equal (exit code and
    /// stdout) to `--no-cache`; returns the exit code.
    fn run_as_without_cache(&self, plugin: &str) -> i32 {
        let run = |no_cache: bool| {
            let mut args = vec!["run", plugin, "noop", "--quiet"];
            if no_cache {
                args.insert(0, "--no-cache");
            }
            let output = self.loader(&args);
            (exit_code(&output), stdout(&output))
        };
        let cached = run(false);
        assert_eq!(cached, run(true), "run {plugin}");
        cached.0
    }
}

fn codes(list: &Value) -> Vec<&str> {
    list["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .map(|p| p["code"].as_str().expect("a code"))
        .collect()
}

fn problem_reasons(list: &Value) -> Vec<(String, String)> {
    list["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            let path = Path::new(p["path"].as_str().expect("a path"));
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            (name, p["reason"].as_str().expect("a reason").to_owned())
        })
        .collect()
}

#[test]
fn an_unchanged_folder_is_listed_without_loading_and_run_loads_only_its_plugin() {
    let setup = Setup::new();
    assert_eq!(codes(&setup.list_as_without_cache()), ["alpha", "beta", "gamma"]);
    assert_eq!(setup.cache_use(&["list"]), (3, 0));
    assert_eq!(setup.cache_use(&["info", "beta"]), (3, 0));
    assert_eq!(setup.cache_use(&["run", "beta", "noop", "--quiet"]), (3, 0));
    assert_eq!(setup.run_as_without_cache("beta"), 0);
    assert_eq!(setup.run_as_without_cache("libgamma"), 0);
    assert_eq!(setup.run_as_without_cache("nothing-by-that-name"), 3);
}

#[test]
fn a_truncated_or_corrupt_cache_file_changes_nothing() {
    let setup = Setup::new();
    let file = setup.cache_file();
    let saved = fs::read(&file).expect("the cache file");
    for damaged in [&saved[..saved.len() / 2], b"", b"\0\xff{\"format\":"] {
        fs::write(&file, damaged).expect("damage the cache");
        assert_eq!(codes(&setup.list_as_without_cache()), ["alpha", "beta", "gamma"]);
        fs::write(&file, damaged).expect("damage the cache");
        assert_eq!(setup.run_as_without_cache("alpha"), 0);
    }
}

#[test]
fn a_plugin_edited_in_place_with_the_same_size_and_mtime_is_noticed() {
    let setup = Setup::new();
    let path = lib_path(setup.dir(), "alpha");
    let before = fs::metadata(&path).expect("alpha");
    let mut bytes = fs::read(&path).expect("alpha");
    patch_code(&mut bytes, "delta");
    fs::write(&path, &bytes).expect("edit alpha in place");
    let file = fs::File::options().write(true).open(&path).expect("alpha");
    file.set_modified(before.modified().expect("an mtime"))
        .expect("restore the mtime");
    drop(file);
    assert_eq!(fs::metadata(&path).expect("alpha").len(), before.len());

    assert_eq!(codes(&setup.list_as_without_cache()), ["delta", "beta", "gamma"]);
    assert_eq!(setup.run_as_without_cache("delta"), 0);
    // Still found by its file name, libalpha.
    assert_eq!(setup.run_as_without_cache("alpha"), 0);
}

#[test]
fn a_plugin_replaced_by_a_library_that_crashes_on_load_is_reported_every_time() {
    let setup = Setup::new();
    let path = lib_path(setup.dir(), "beta");
    fs::copy(fixture_library("probe", "crash-on-load"), &path).expect("replace beta");
    for _ in 0..2 {
        let list = setup.list_as_without_cache();
        assert_eq!(codes(&list), ["alpha", "gamma"]);
        let problems = problem_reasons(&list);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].1.contains("crashed"), "{problems:?}");
    }
    assert_eq!(setup.run_as_without_cache("beta"), 3);
    assert_eq!(setup.run_as_without_cache("gamma"), 0);
}

#[test]
fn added_and_removed_plugins_are_noticed() {
    let setup = Setup::new();
    fs::remove_file(lib_path(setup.dir(), "beta")).expect("remove beta");
    write_coded_plugin(&lib_path(setup.dir(), "epsilon"), "epsilon");
    write_coded_plugin(&lib_path(setup.dir(), "zeta"), "alpha");
    fs::write(lib_path(setup.dir(), "junk"), "not a library").expect("junk");
    let list = setup.list_as_without_cache();
    assert_eq!(codes(&list), ["alpha", "epsilon", "gamma"]);
    let problems = problem_reasons(&list);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[1].1.contains("already provided"), "{problems:?}");
    assert_eq!(setup.run_as_without_cache("beta"), 3);
    assert_eq!(setup.run_as_without_cache("epsilon"), 0);
}

#[test]
fn a_forged_cache_entry_never_changes_what_runs() {
    let setup = Setup::new();
    let file = setup.cache_file();
    let text = fs::read_to_string(&file).expect("the cache file");
    assert!(text.contains("\"code\":\"alpha\""), "{text}");
    let forge = || fs::write(&file, text.replace("\"code\":\"alpha\"", "\"code\":\"ghost\"")).expect("forge");
    // The child finds libalpha is not "ghost": the run fails, runs
    // nothing, and the entry is dropped, so the next run is as without it.
    forge();
    let output = setup.loader(&["run", "ghost", "noop", "--quiet"]);
    assert_eq!(exit_code(&output), 1, "{}", stderr(&output));
    assert_stale(&output, &lib_path(setup.dir(), "alpha"), "ghost");
    assert_eq!(setup.run_as_without_cache("ghost"), 3);
    // Found by its file name, libalpha is still described as "ghost".
    forge();
    let output = setup.loader(&["run", "alpha", "noop", "--quiet"]);
    assert_eq!(exit_code(&output), 1, "{}", stderr(&output));
    assert_eq!(setup.run_as_without_cache("alpha"), 0);
    // `info`, `--dry-run` and an in-process run check the same way.
    for args in [
        &["info", "ghost"][..],
        &["run", "ghost", "noop", "--dry-run"],
        &["run", "ghost", "noop", "--in-process"],
    ] {
        forge();
        let output = setup.loader(args);
        assert_eq!(exit_code(&output), 1, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("its manifest cache entry was dropped"),
            "{}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty(), "{args:?}: {}", stdout(&output));
    }
}

/// `output` is the error of a run whose child found `library` not to be
/// the plugin `code` the cache described: nothing ran, the entry is gone.
fn assert_stale(output: &Output, library: &Path, code: &str) {
    let log = stderr(output);
    assert!(
        log.contains(&format!(
            "{}: the library is not the plugin \"{code}\"",
            library.display()
        )),
        "{log}"
    );
    assert!(log.contains("its manifest cache entry was dropped"), "{log}");
    assert!(log.contains("run the command again"), "{log}");
    assert!(stdout(output).is_empty(), "no result: {}", stdout(output));
}

#[test]
fn an_isolated_run_from_a_wrong_description_fails_runs_nothing_and_drops_the_entry() {
    let setup = Setup::new();
    let file = setup.cache_file();
    let text = fs::read_to_string(&file).expect("the cache file");
    let swapped = text
        .replace("\"code\":\"alpha\"", "\"code\":\"swap\"")
        .replace("\"code\":\"beta\"", "\"code\":\"alpha\"")
        .replace("\"code\":\"swap\"", "\"code\":\"beta\"");
    fs::write(&file, swapped).expect("forge");
    let backend = backend_server::TestBackend::start(None).expect("the loopback backend");
    let state = tempfile::tempdir().expect("a state folder");
    let run_alpha = |job: &str| {
        setup.loader(&[
            "run",
            "alpha",
            "noop",
            "--events",
            "jsonl",
            "--job-id",
            job,
            "--backend",
            &backend.url(),
            "--state-dir",
            state.path().to_str().expect("a UTF-8 path"),
        ])
    };
    let output = run_alpha("job-1");
    assert_eq!(exit_code(&output), 1, "{}", stderr(&output));
    let log = stderr(&output);
    let beta = lib_path(setup.dir(), "beta");
    assert!(
        log.contains(&format!("{}: the library is not the plugin \"alpha\"", beta.display())),
        "{log}"
    );
    assert!(log.contains("its manifest cache entry was dropped"), "{log}");
    assert_eq!(
        log.matches("isolated run: process").count(),
        1,
        "no second attempt: {log}"
    );
    let events: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSONL event"))
        .collect();
    assert_eq!(events.len(), 1, "only the run's error: {events:?}");
    assert_eq!(events[0]["kind"], "error");
    let patches = backend.job_patches("job-1");
    assert_eq!(
        patches.first().map(|p| &p["status"]),
        Some(&Value::from("RUNNING")),
        "{patches:?}"
    );
    assert_eq!(
        patches.last().map(|p| &p["status"]),
        Some(&Value::from("FAILED")),
        "{patches:?}"
    );
    let cached = fs::read_to_string(&file).expect("the cache file");
    assert!(
        !cached.contains(&beta.display().to_string()),
        "libbeta's entry is dropped: {cached}"
    );
    assert!(
        cached.contains(&lib_path(setup.dir(), "alpha").display().to_string()),
        "the others are kept"
    );

    // libalpha's entry, forged too, fails the next run found by its file
    // name the same way; then the cache is right again.
    assert_eq!(exit_code(&run_alpha("job-2")), 1);
    let output = run_alpha("job-3");
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        setup.cache_use(&["run", "alpha", "noop"]),
        (3, 0),
        "the cache is right again"
    );
}

#[test]
fn no_cache_neither_reads_nor_writes_the_cache() {
    let plugins = tempfile::tempdir().expect("a plugin folder");
    write_coded_plugin(&lib_path(plugins.path(), "alpha"), "alpha");
    let cache_home = tempfile::tempdir().expect("a cache folder");
    let env = [("XDG_CACHE_HOME", cache_home.path().to_str().expect("UTF-8"))];
    let output = loader(plugins.path(), &["--no-cache", "list"], &env);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert!(stdout(&output).contains("alpha"));
    assert!(!cache_home.path().join("synapse-loader").exists());
}

#[cfg(unix)]
#[test]
fn a_second_name_for_a_plugin_is_treated_as_without_the_cache() {
    let setup = Setup::new();
    std::os::unix::fs::symlink(lib_path(setup.dir(), "alpha"), lib_path(setup.dir(), "zz-alias")).expect("a link");
    std::os::unix::fs::symlink(lib_path(setup.dir(), "gamma"), lib_path(setup.dir(), "0-alias")).expect("a link");
    for _ in 0..2 {
        let list = setup.list_as_without_cache();
        assert_eq!(codes(&list), ["gamma", "alpha", "beta"]);
        assert!(problem_reasons(&list).is_empty(), "{list}");
    }
    // The second name of a file is skipped, so it names no plugin.
    assert_eq!(setup.run_as_without_cache("zz-alias"), 3);
    assert_eq!(setup.run_as_without_cache("0-alias"), 0);
}
