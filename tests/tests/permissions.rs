//! Permissions a plugin declares (plugin-api 1.3) as the operator sees them:
//! `loader info` lists the request, `list --json` and `info --json` carry
//! it (also when the manifest cache answers), the samples ask for nothing,
//! and a declaration that does not validate makes the plugin a
//! `bad_manifest` naming the entry, never a plugin that runs.

use crate::common::*;
use serde_json::{json, Value};

/// `list --json` with its own cache folder; the listing and the cache's
/// report (`[described by the cache, loaded, loaded here]`).
fn listing_and_cache_use(dir: &std::path::Path, cache_home: &std::path::Path) -> (Value, [usize; 3]) {
    let cache_home = cache_home.to_str().expect("a UTF-8 path");
    let env = [("XDG_CACHE_HOME", cache_home), ("LOADER_LOG", "loader=debug")];
    let output = loader(dir, &["list", "--json"], &env);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let listing = serde_json::from_str(&stdout(&output)).expect("list --json prints JSON");
    (listing, cache_report(&stderr(&output)))
}

fn listing(dir: &std::path::Path, cache_home: &std::path::Path) -> Value {
    listing_and_cache_use(dir, cache_home).0
}

fn asked() -> Value {
    json!({
        "read": ["/etc/ssl/certs", "~/.cache/asking"],
        "write": ["~/.cache/asking/out"],
        "net": ["api.example.com:443", "127.0.0.1:8080"],
        "env": ["ASKING_TOKEN"],
        "run": ["git"],
    })
}

#[test]
fn info_shows_what_a_plugin_asks_for_one_line_per_kind() {
    let dir = plugin_dir(&[fixture_library("probe", "asking-plugin")]);
    let output = loader(dir.path(), &["info", "asking"], &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("permissions"))
        .take(6)
        .collect();
    assert_eq!(
        block,
        [
            "permissions requested:",
            "  read   /etc/ssl/certs, ~/.cache/asking",
            "  write  ~/.cache/asking/out",
            "  net    api.example.com:443, 127.0.0.1:8080",
            "  env    ASKING_TOKEN",
            "  run    git",
        ],
        "{text}"
    );
    let output = loader(dir.path(), &["info", "asking", "--json"], &[]);
    let manifest: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(manifest["permissions"], asked());
}

#[test]
fn list_json_carries_the_request_from_a_fresh_scan_and_from_the_cache() {
    let dir = plugin_dir(&[fixture_library("probe", "asking-plugin")]);
    let cache_home = tempfile::tempdir().unwrap();
    // Longer than the cache's racy margin, so that the second scan trusts it.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let (fresh, [_, loaded, _]) = listing_and_cache_use(dir.path(), cache_home.path());
    assert_eq!(loaded, 1, "the first scan loads the plugin");
    assert_eq!(fresh["plugins"][0]["permissions"], asked(), "{fresh}");
    let (cached, [described, loaded, _]) = listing_and_cache_use(dir.path(), cache_home.path());
    assert_eq!((described, loaded), (1, 0), "the second scan reads the cache");
    assert_eq!(cached["plugins"][0]["permissions"], asked(), "{cached}");
}

#[test]
fn the_samples_ask_for_nothing_so_the_quick_start_needs_no_grant() {
    let dir = samples_dir();
    let cache_home = tempfile::tempdir().unwrap();
    let listing = listing(dir.path(), cache_home.path());
    let plugins = listing["plugins"].as_array().unwrap();
    assert_eq!(plugins.len(), SAMPLE_PLUGINS.len(), "{listing}");
    for plugin in plugins {
        assert_eq!(plugin["permissions"], json!({}), "{plugin}");
    }
    let output = loader(dir.path(), &["info", "tabular-trainer"], &[]);
    assert!(
        stdout(&output).contains("\npermissions: none beyond the sandbox's defaults\n"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_declaration_that_does_not_validate_is_a_bad_manifest_naming_the_entry() {
    let dir = plugin_dir(&[
        fixture_library("probe", "misdeclared-plugin"),
        fixture_library("probe", "asking-plugin"),
    ]);
    let cache_home = tempfile::tempdir().unwrap();
    let listing = listing(dir.path(), cache_home.path());
    let problems = listing["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{listing}");
    assert_eq!(problems[0]["kind"], "bad_manifest");
    let reason = problems[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "plugin \"misdeclared\" declares invalid permissions: permissions.read entry \"data/in\": a relative path; \
             give an absolute path or one starting with ~/"
        ),
        "{reason}"
    );
    assert_eq!(
        listing["plugins"][0]["code"], "asking",
        "the valid plugin beside it loads"
    );

    for mode in ["--isolate", "--in-process"] {
        let output = loader(dir.path(), &["run", "misdeclared", "hello", mode], &[]);
        assert_ne!(exit_code(&output), 0, "{mode}: a misdeclared plugin never runs");
        assert!(
            stderr(&output).contains("permissions.read entry \"data/in\""),
            "{mode}: {}",
            stderr(&output)
        );
    }
}
