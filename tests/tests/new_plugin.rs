//! End-to-end: a new plugin author's first five minutes. The README's
//! "Writing a plugin" blocks, pasted into a new crate with only the listed
//! dependencies, build and run; so does every kind of crate `loader new`
//! writes, and its unit test passes.
//!
//! The crates are built offline with the workspace's lock file, into the
//! fixtures' target folder, so the dependencies are compiled once.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// The `lang` code blocks of the README section `heading`, in order.
fn readme_blocks(heading: &str, lang: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in the README"));
    let section = &readme[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let fence = format!("```{lang}\n");
    section
        .split(fence.as_str())
        .skip(1)
        .map(|rest| rest[..rest.find("```").expect("a closed code block")].to_owned())
        .collect()
}

fn plugin_api_dir() -> PathBuf {
    workspace_root().join("plugin-api")
}

/// `cargo SUBCOMMAND` on a generated crate, offline, with the workspace's
/// lock file and the fixtures' target folder.
fn cargo_on(crate_dir: &Path, subcommand: &str) -> std::process::Output {
    std::fs::copy(workspace_root().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let output = Command::new(env!("CARGO"))
        .arg(subcommand)
        .arg("--offline")
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(fixture_target_dir())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {subcommand} of {} failed:\n{}\n{}",
        crate_dir.display(),
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    output
}

/// Builds the crate and returns a plugin folder holding its library.
fn build_into_plugin_dir(crate_dir: &Path, crate_name: &str) -> tempfile::TempDir {
    cargo_on(crate_dir, "build");
    plugin_dir(&[fixture_target_dir().join("debug").join(library_file_name(crate_name))])
}

fn run_ok(dir: &Path, plugin: &str, action: &str, params: &Value) -> Value {
    run_ok_granted(dir, plugin, action, params, &[])
}

/// [`run_ok`] with sandbox grants (`--allow-write DIR`, ...).
fn run_ok_granted(dir: &Path, plugin: &str, action: &str, params: &Value, grants: &[&str]) -> Value {
    let params = params.to_string();
    let mut args = vec!["run", plugin, action, "--params", &params, "-q"];
    args.extend_from_slice(grants);
    let output = loader(dir, &args, &[]);
    assert_eq!(exit_code(&output), 0, "{plugin} {action}: {}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&output)))
}

#[test]
fn the_readme_plugin_builds_with_only_its_listed_dependencies_and_runs() {
    let toml = readme_blocks("## Writing a plugin", "toml");
    let rust = readme_blocks("## Writing a plugin", "rust");
    assert_eq!(toml.len(), 1, "one Cargo.toml in the section");
    let manifest = toml[0].replace(
        r#"path = "../plugin-api""#,
        &format!("path = {:?}", plugin_api_dir().display().to_string()),
    );
    assert!(manifest.contains("plugin-api = { path"), "{manifest}");

    let crate_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(crate_dir.path().join("src")).unwrap();
    std::fs::write(
        crate_dir.path().join("Cargo.toml"),
        format!("{manifest}\n[workspace]\n"),
    )
    .unwrap();
    std::fs::write(crate_dir.path().join("src/lib.rs"), &rust[0]).unwrap();
    let plugins = build_into_plugin_dir(crate_dir.path(), "my-plugin");

    let result = run_ok(plugins.path(), "my-plugin", "train", &json!({ "epochs": 3 }));
    assert_eq!(result["status"], "completed");
    assert_eq!(result["params"], json!({ "epochs": 3 }));
    assert_eq!(result["batch_size"], 32);
    let result = run_ok(plugins.path(), "my-plugin", "export", &json!({}));
    assert_eq!(result, json!({ "status": "exported" }));
}

#[test]
fn the_readme_workflow_builds_with_plugin_api_alone() {
    let rust = readme_blocks("## Step-based workflows", "rust");
    let export = r#"
fn plugin() -> Plugin {
    Plugin::new("readme-workflow", "README workflow", "0.1.0")
        .action(action!(train, params = Params, description = "The README's workflow"))
}
export_plugin!(plugin);
"#;
    let crate_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(crate_dir.path().join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"readme-workflow\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nplugin-api = {{ path = {:?} }}\n\n[workspace]\n",
        plugin_api_dir().display().to_string()
    );
    std::fs::write(crate_dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::write(crate_dir.path().join("src/lib.rs"), format!("{}{export}", rust[0])).unwrap();
    let plugins = build_into_plugin_dir(crate_dir.path(), "readme-workflow");
    let result = run_ok(plugins.path(), "readme-workflow", "train", &json!({ "epochs": 2 }));
    assert_eq!(result["success"], true, "{result}");
}

#[test]
fn loader_new_writes_crates_that_build_pass_their_test_and_run() {
    let parent = tempfile::tempdir().unwrap();
    let output_dir = parent.path().join("exported");
    let kinds: [(&str, &str, &str, Value); 3] = [
        ("new-function", "", "train", json!({ "epochs": 2 })),
        (
            "new-class",
            "--class",
            "export",
            json!({ "output_dir": output_dir, "records": 2 }),
        ),
        ("new-workflow", "--workflow", "train_pipeline", json!({ "epochs": 2 })),
    ];
    for (name, flag, action, params) in kinds {
        let mut args = vec!["new", name, "--path"];
        let parent_text = parent.path().to_str().unwrap();
        args.push(parent_text);
        if !flag.is_empty() {
            args.push(flag);
        }
        let output = loader(parent.path(), &args, &[]);
        assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
        let crate_dir = parent.path().join(name);
        for file in ["Cargo.toml", "src/lib.rs", "README.md"] {
            assert!(crate_dir.join(file).is_file(), "{name} has no {file}");
        }
        let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&plugin_api_dir().canonicalize().unwrap().display().to_string()),
            "{manifest}"
        );

        let tested = cargo_on(&crate_dir, "test");
        assert!(
            String::from_utf8_lossy(&tested.stdout).contains("test result: ok. 1 passed"),
            "{name}: {}",
            String::from_utf8_lossy(&tested.stdout)
        );
        let plugins = build_into_plugin_dir(&crate_dir, name);
        // The class template writes where it is told: the sandbox must let it.
        let grant = ["--allow-write", parent_text];
        let grants: &[&str] = if name == "new-class" { &grant } else { &[] };
        let result = run_ok_granted(plugins.path(), name, action, &params, grants);
        assert!(result.is_object(), "{name}: {result}");

        let again = loader(parent.path(), &args, &[]);
        assert_eq!(exit_code(&again), 2, "an existing crate is not overwritten");
        assert!(stderr(&again).contains("help: "), "{}", stderr(&again));
    }
    assert!(output_dir.join("record-2.json").is_file());
}
