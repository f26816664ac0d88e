//! `list --json` problems carry a `kind` a program can branch on and, when
//! the file declares one, the plugin-api version it was built against.

use crate::common::*;
use serde_json::Value;

fn problem<'a>(problems: &'a [Value], file: &str) -> &'a Value {
    problems
        .iter()
        .find(|p| p["path"].as_str().unwrap().ends_with(&format!("/{file}")))
        .unwrap_or_else(|| panic!("{file} is not reported: {problems:?}"))
}

#[test]
fn every_problem_has_a_kind_and_the_declared_version_where_known() {
    let dir = plugin_dir(&[
        sample_library("tabular-trainer"),
        fixture_library("probe", "plain-cdylib"),
        fixture_library("probe", "crash-on-load"),
        fixture_library("api-2.0", "major-plugin"),
        fixture_library("api-1.0-changed", "changed-plugin"),
        fixture_library("probe", "misdeclared-plugin"),
    ]);
    let name = |stem: &str| dir.path().join(library_file_name(stem));
    std::fs::write(name("text"), "not a library").unwrap();
    std::fs::copy(sample_library("tabular-trainer"), name("zz-second-copy")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/nonexistent/plugin.so", name("dangling")).unwrap();

    let output = loader(dir.path(), &["list", "--json"], &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let listing: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let problems = listing["problems"].as_array().unwrap();

    let expected = [
        ("text", "not_a_library", Value::Null),
        ("plain-cdylib", "not_a_plugin", Value::Null),
        ("crash-on-load", "crashed_while_loading", Value::Null),
        ("major-plugin", "incompatible_major", "2.0.0".into()),
        ("changed-plugin", "layout_mismatch", "1.0.0".into()),
        ("misdeclared-plugin", "bad_manifest", "1.4.0".into()),
        ("zz-second-copy", "duplicate", "1.4.0".into()),
    ];
    for (stem, kind, declared) in expected {
        let problem = problem(problems, &library_file_name(stem));
        assert_eq!(problem["kind"], kind, "{problem}");
        assert_eq!(problem["declared_api_version"], declared, "{problem}");
        assert!(!problem["reason"].as_str().unwrap().is_empty(), "{problem}");
    }
    #[cfg(unix)]
    assert_eq!(problem(problems, &library_file_name("dangling"))["kind"], "unreadable");
    assert_eq!(problems.len(), expected_count(), "{problems:?}");
}

fn expected_count() -> usize {
    if cfg!(unix) {
        8
    } else {
        7
    }
}
