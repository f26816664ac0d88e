//! End-to-end: a new plugin author's first five minutes. The README's
//! "Writing a plugin" blocks, pasted into a new crate with only the listed
//! dependencies, pass their unit test, build and run in the sandbox; so do
//! the book's longer plugin and workflow examples, and every kind of crate
//! `loader new` writes.
//!
//! The crates are built offline with the workspace's lock file, into the
//! fixtures' target folder, so the dependencies are compiled once.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use serde_json::{json, Value};

/// The code blocks of section `heading` (up to the next `## ` heading) of
/// the markdown file `path` (from the workspace root) whose language is
/// `lang` (`rust` also takes `rust,ignore` and the like), in order.
fn markdown_blocks(path: &str, heading: &str, lang: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace_root().join(path)).unwrap();
    let start = text
        .find(&format!("{heading}\n"))
        .unwrap_or_else(|| panic!("no {heading:?} in {path}"));
    let section = &text[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split("\n```")
        .skip(1)
        .step_by(2)
        .filter_map(|block| {
            let (info, code) = block.split_once('\n')?;
            (info.split(',').next() == Some(lang)).then(|| code.to_owned() + "\n")
        })
        .collect()
}

/// Writes a plugin crate from a manifest block (its `plugin-api` path made
/// this repository's, the crate renamed to `crate_name`) and `lib.rs`.
fn write_crate(manifest: &str, crate_name: &str, lib: &str) -> tempfile::TempDir {
    let manifest = manifest
        .replace(
            r#"path = "../plugin-api""#,
            &format!("path = {:?}", plugin_api_dir().display().to_string()),
        )
        .replace(r#"name = "my-plugin""#, &format!("name = {crate_name:?}"));
    assert!(manifest.contains("plugin-api = { path"), "{manifest}");
    let manifest = if manifest.contains("[workspace]") {
        manifest
    } else {
        format!("{manifest}\n[workspace]\n")
    };
    let crate_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(crate_dir.path().join("src")).unwrap();
    std::fs::write(crate_dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::write(crate_dir.path().join("src/lib.rs"), lib).unwrap();
    crate_dir
}

fn plugin_api_dir() -> PathBuf {
    workspace_root().join("plugin-api")
}

/// `cargo SUBCOMMAND` on a generated crate, offline, with the workspace's
/// lock file and the fixtures' target folder, its warnings denied (a
/// `[lints]` table of the crate's own, so that the shared dependencies are
/// not rebuilt with other flags).
fn cargo_on(crate_dir: &Path, subcommand: &str) -> std::process::Output {
    std::fs::copy(workspace_root().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let manifest_path = crate_dir.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    if !manifest.contains("[lints") {
        std::fs::write(
            &manifest_path,
            format!("{manifest}\n[lints.rust]\nwarnings = \"deny\"\n"),
        )
        .unwrap();
    }
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
fn the_readme_plugin_passes_its_test_and_runs_in_the_sandbox() {
    let toml = markdown_blocks("README.md", "## Writing a plugin", "toml");
    let rust = markdown_blocks("README.md", "## Writing a plugin", "rust");
    assert_eq!(toml.len(), 1, "one Cargo.toml in the section");
    assert_eq!(rust.len(), 2, "the plugin, then its unit test");
    assert!(rust[1].contains("#[test]"), "{}", rust[1]);
    let crate_dir = write_crate(&toml[0], "my-plugin", &format!("{}\n{}", rust[0], rust[1]));

    let tested = cargo_on(crate_dir.path(), "test");
    let tested = String::from_utf8_lossy(&tested.stdout);
    assert!(tested.contains("trains_and_writes_a_checkpoint ... ok"), "{tested}");
    assert!(tested.contains("test result: ok. 1 passed"), "{tested}");

    let plugins = build_into_plugin_dir(crate_dir.path(), "my-plugin");
    let result = run_ok_granted(
        plugins.path(),
        "my-plugin",
        "train",
        &json!({ "epochs": 3 }),
        &["--keep-work-dir"],
    );
    assert_eq!(result["epochs"], 3, "{result}");
    let checkpoint = PathBuf::from(result["checkpoint"].as_str().expect("the checkpoint's path"));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    assert_eq!(
        written,
        json!({ "epoch": 3 }),
        "the sandbox let the plugin write its work directory"
    );
    std::fs::remove_dir_all(checkpoint.parent().unwrap()).unwrap();
}

#[test]
fn the_books_plugin_builds_with_only_its_listed_dependencies_and_runs() {
    let chapter = "docs/src/writing-plugins.md";
    let toml = markdown_blocks(chapter, "## A plugin by hand", "toml");
    let rust = markdown_blocks(chapter, "## A plugin by hand", "rust");
    assert_eq!(
        (toml.len(), rust.len()),
        (1, 1),
        "one Cargo.toml and one lib.rs in the section"
    );
    let crate_dir = write_crate(&toml[0], "book-plugin", &rust[0]);
    let plugins = build_into_plugin_dir(crate_dir.path(), "book-plugin");

    let result = run_ok(plugins.path(), "my-plugin", "train", &json!({ "epochs": 3 }));
    assert_eq!(result["status"], "completed");
    assert_eq!(result["params"], json!({ "epochs": 3 }));
    assert_eq!(result["batch_size"], 32);
    let result = run_ok(plugins.path(), "my-plugin", "export", &json!({}));
    assert_eq!(result, json!({ "status": "exported" }));
}

#[test]
fn the_books_workflow_builds_with_plugin_api_alone() {
    let rust = markdown_blocks("docs/src/workflows.md", "# Step-based workflows", "rust");
    let export = r#"
fn plugin() -> Plugin {
    Plugin::new("book-workflow", "The book's workflow", "0.1.0")
        .action(action!(train, params = Params, description = "The workflow chapter's example"))
}
export_plugin!(plugin);
"#;
    let crate_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(crate_dir.path().join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"book-workflow\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nplugin-api = {{ path = {:?} }}\n\n[workspace]\n",
        plugin_api_dir().display().to_string()
    );
    std::fs::write(crate_dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::write(crate_dir.path().join("src/lib.rs"), format!("{}{export}", rust[0])).unwrap();
    let plugins = build_into_plugin_dir(crate_dir.path(), "book-workflow");
    let result = run_ok(plugins.path(), "book-workflow", "train", &json!({ "epochs": 2 }));
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
        assert!(
            stderr(&again).contains("already exists and is not empty"),
            "{}",
            stderr(&again)
        );
        assert!(stderr(&again).contains("help: "), "{}", stderr(&again));
    }
    assert!(output_dir.join("record-2.json").is_file());
}

#[test]
fn a_plugin_crate_builds_without_the_host_feature() {
    let chapter = "docs/src/writing-plugins.md";
    let toml = markdown_blocks(chapter, "## A plugin by hand", "toml");
    let rust = markdown_blocks(chapter, "## A plugin by hand", "rust");
    let crate_dir = write_crate(&toml[0], "book-plugin", &rust[0]);
    std::fs::copy(workspace_root().join("Cargo.lock"), crate_dir.path().join("Cargo.lock")).unwrap();
    let tree = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--edges",
            "features",
            "--invert",
            "plugin-api",
            "--manifest-path",
        ])
        .arg(crate_dir.path().join("Cargo.toml"))
        .output()
        .expect("cargo runs");
    assert!(tree.status.success(), "{}", String::from_utf8_lossy(&tree.stderr));
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.contains("plugin-api feature \"default\""), "{tree}");
    assert!(
        !tree.contains("plugin-api feature \"host\""),
        "the loading code is not built into a plugin:\n{tree}"
    );
}

#[test]
fn loader_new_takes_a_path_names_the_crate_after_it_and_says_what_next() {
    let parent = tempfile::tempdir().unwrap();
    let crate_dir = parent.path().join("plugins/nested/path-plugin");
    let output = loader(parent.path(), &["new", crate_dir.to_str().unwrap()], &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains(r#"name = "path-plugin""#), "{manifest}");
    let text = stderr(&output);
    assert!(
        text.contains(&format!("created plugin `path-plugin` in `{}`", crate_dir.display())),
        "{text}"
    );
    for step in [
        format!("cd {}", crate_dir.display()),
        "cargo test".to_owned(),
        "cargo build".to_owned(),
        "loader --plugins target/debug run path-plugin train".to_owned(),
    ] {
        assert!(text.contains(&step), "{step:?} in {text}");
    }

    let taken = parent.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let output = loader(parent.path(), &["new", taken.to_str().unwrap()], &[]);
    assert_eq!(exit_code(&output), 2);
    assert!(
        stderr(&output).contains(&format!("error: `{}` already exists and is not empty", taken.display())),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read_to_string(taken.join("notes.txt")).unwrap(), "mine");
}
