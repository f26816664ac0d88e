//! The load-checking child's reports end to end: a cold `list` describes
//! each file from what the child that loaded it reported, loading none of
//! them in the loader itself, and says exactly what loading them in the
//! loader says (the ABI checks' messages, the declared versions, the
//! problem kinds: the cache a checked `list` writes equals the one an
//! unchecked in-process run writes); `info`, `run` and `--dry-run` load
//! nothing in the loader either.

use std::fs;
use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// A folder of files each loading gives something different for: plugins
/// of an older and a newer minor, another major, a changed layout, a
/// library that is not a plugin, a file that is not a library, a second
/// copy of a plugin.
fn mixed_folder() -> tempfile::TempDir {
    let dir = plugin_dir(&[
        sample_library("tabular-trainer"),
        fixture_library("api-1.0", "legacy-plugin"),
        fixture_library("api-1.5", "future-plugin"),
        fixture_library("api-2.0", "major-plugin"),
        fixture_library("api-1.0-changed", "changed-plugin"),
        fixture_library("probe", "plain-cdylib"),
    ]);
    let name = |stem: &str| dir.path().join(library_file_name(stem));
    fs::write(name("text"), "not a library").expect("a text file");
    fs::copy(sample_library("tabular-trainer"), name("zz-second-copy")).expect("a second copy");
    dir
}

fn run_loader(dir: &Path, cache_home: &Path, args: &[&str]) -> (Value, String) {
    let cache_home = cache_home.to_str().expect("a UTF-8 path");
    let output = loader(
        dir,
        args,
        &[("XDG_CACHE_HOME", cache_home), ("LOADER_LOG", "loader=debug")],
    );
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let listing = serde_json::from_str(&stdout(&output)).unwrap_or(Value::Null);
    (listing, stderr(&output))
}

/// (files examined, files loaded in the loader itself) from the debug log.
fn loads(log: &str) -> (usize, usize) {
    let [_, loaded, here] = cache_report(log);
    (loaded, here)
}

/// Each cache entry's file name and outcome (stamps and times left out).
fn cached_outcomes(cache_home: &Path) -> Vec<(String, Value)> {
    let dir = cache_home.join("synapse-loader");
    let file = fs::read_dir(&dir)
        .expect("the cache folder")
        .next()
        .expect("a cache file")
        .expect("an entry")
        .path();
    let cache: Value = serde_json::from_slice(&fs::read(file).expect("the cache file")).expect("cache JSON");
    cache["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| {
            let path = Path::new(entry["path"].as_str().expect("a path"));
            let name = path.file_name().expect("a name").to_string_lossy().into_owned();
            (name, entry["outcome"].clone())
        })
        .collect()
}

#[test]
fn a_cold_list_is_described_by_the_checking_child_as_a_load_in_the_loader_describes_it() {
    let dir = mixed_folder();
    let checked_cache = tempfile::tempdir().expect("a cache folder");
    let unchecked_cache = tempfile::tempdir().expect("a cache folder");

    let (checked, log) = run_loader(dir.path(), checked_cache.path(), &["list", "--json"]);
    assert_eq!(loads(&log), (8, 0), "every file described by the child: {log}");
    // Only a trusted in-process run loads every file in the loader itself.
    let params = r#"{"epochs": 1, "samples": 40}"#;
    let unchecked_run = [
        "--no-load-check",
        "run",
        "tabular-trainer",
        "train",
        "--params",
        params,
        "--in-process",
        "-q",
    ];
    let (_, log) = run_loader(dir.path(), unchecked_cache.path(), &unchecked_run);
    assert_eq!(loads(&log), (8, 8), "{log}");
    let kinds: Vec<&str> = checked["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["kind"].as_str().expect("a kind"))
        .collect();
    for kind in [
        "incompatible_major",
        "layout_mismatch",
        "not_a_plugin",
        "not_a_library",
        "duplicate",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {checked}");
    }
    assert_eq!(
        cached_outcomes(checked_cache.path()),
        cached_outcomes(unchecked_cache.path())
    );
}

#[test]
fn info_run_and_dry_run_load_nothing_in_the_loader() {
    let dir = mixed_folder();
    let cache = tempfile::tempdir().expect("a cache folder");
    for args in [
        &["info", "legacy"][..],
        &["info", "tabular-trainer", "train", "--json"],
        &["run", "legacy", "greet", "--quiet"],
        &[
            "run",
            "tabular-trainer",
            "train",
            "--params",
            r#"{"epochs": 2}"#,
            "--dry-run",
        ],
    ] {
        let (_, log) = run_loader(dir.path(), cache.path(), args);
        assert_eq!(loads(&log).1, 0, "{args:?}: {log}");
    }
}
