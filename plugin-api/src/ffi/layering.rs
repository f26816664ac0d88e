//! Checks that dependencies only point down (see the layer diagram in the
//! [`ffi`](super) docs): no source file of the boundary, nor of the values
//! it carries, names a module of the author-facing API above it. (This
//! file is left out of the scan: its examples name upward paths on purpose.)

use std::fs;
use std::path::{Path, PathBuf};

/// What the boundary's sources may name at the crate root: itself, the
/// values that cross it as JSON, and the hidden items its macro uses.
const BELOW_OR_SELF: &[&str] = &[
    "ffi",
    "failure",
    "validate",
    "field_problem",
    "lax",
    "manifest",
    "permissions",
    "resources",
    "log_entry",
    "rules",
    "suggest",
    "__private",
    "__export_root_module",
];

/// The values layer at the bottom, and what each of its files may name.
const VALUES: &[&str] = &[
    "failure",
    "validate",
    "field_problem",
    "lax",
    "manifest",
    "permissions",
    "resources",
    "log_entry",
    "rules",
    "suggest",
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files_under(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// The modules declared at the crate root (`mod name;` lines of lib.rs).
fn crate_root_modules() -> Vec<String> {
    let lib = fs::read_to_string(src_dir().join("lib.rs")).expect("lib.rs is readable");
    lib.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod "))?;
            rest.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

fn identifier_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first path segments `text` names after `crate::` (also inside
/// `crate::{a, b::c}` groups), and the last segment of every `super::`
/// chain (`super::super::x` names `x`).
fn named_from_crate_and_super(text: &str) -> (Vec<String>, Vec<String>) {
    let mut from_crate = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            from_crate.extend(
                group
                    .split(',')
                    .map(|path| identifier_at(path.trim()).to_owned())
                    .filter(|name| !name.is_empty()),
            );
        } else {
            from_crate.push(identifier_at(rest).to_owned());
        }
    }
    let mut from_super = Vec::new();
    for (at, _) in text.match_indices("super::") {
        if text[..at].ends_with("super::") {
            continue;
        }
        let mut rest = &text[at..];
        while let Some(next) = rest.strip_prefix("super::") {
            rest = next;
        }
        from_super.push(identifier_at(rest).to_owned());
    }
    (from_crate, from_super)
}

/// Every upward reference in `files`: a `crate::` path outside `allowed`, or
/// a `super::` chain ending in a crate-root module outside `allowed`.
fn upward_references(files: &[PathBuf], allowed: &[&str], root_modules: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let (from_crate, from_super) = named_from_crate_and_super(&text);
        let shown = file.strip_prefix(src_dir()).unwrap_or(file).display().to_string();
        for name in from_crate.iter().filter(|name| !allowed.contains(&name.as_str())) {
            found.push(format!("{shown}: crate::{name}"));
        }
        for name in from_super
            .iter()
            .filter(|name| root_modules.contains(name) && !allowed.contains(&name.as_str()))
        {
            found.push(format!("{shown}: super::..::{name}"));
        }
    }
    found
}

#[test]
fn the_boundary_names_nothing_of_the_author_api() {
    let root_modules = crate_root_modules();
    for upper in ["plugin", "action", "context", "steps", "testing", "export"] {
        assert!(
            root_modules.iter().any(|m| m == upper),
            "lib.rs declares no module {upper}"
        );
    }
    let this_file = Path::new(file!()).file_name().expect("a file name");
    let files: Vec<PathBuf> = rust_files_under(&src_dir().join("ffi"))
        .into_iter()
        .filter(|file| file.file_name() != Some(this_file))
        .collect();
    assert!(files.len() >= 10, "found only {files:?}");
    let upward = upward_references(&files, BELOW_OR_SELF, &root_modules);
    assert!(upward.is_empty(), "the ffi layer refers upward: {upward:#?}");
}

#[test]
fn the_values_below_the_boundary_name_only_each_other() {
    let root_modules = crate_root_modules();
    let files: Vec<PathBuf> = VALUES.iter().map(|m| src_dir().join(format!("{m}.rs"))).collect();
    let upward = upward_references(&files, VALUES, &root_modules);
    assert!(upward.is_empty(), "the values layer refers upward: {upward:#?}");
}

#[test]
fn the_scanner_sees_every_form_of_an_upward_path() {
    let text = "use crate::plugin::Plugin;\nuse crate::{failure::X, context};\n\
                fn f() { super::super::steps::run(); super::HostHandle::new(); crate::Plugin::new() }";
    let (from_crate, from_super) = named_from_crate_and_super(text);
    assert_eq!(from_crate, ["plugin", "failure", "context", "Plugin"]);
    assert_eq!(from_super, ["steps", "HostHandle"]);

    let dir = std::env::temp_dir().join(format!("plugin-api-layering-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("a temporary directory");
    let file = dir.join("upward.rs");
    fs::write(&file, text).expect("a temporary file");
    let upward = upward_references(&[file], BELOW_OR_SELF, &["steps".to_owned()]);
    fs::remove_dir_all(&dir).expect("the temporary directory is removed");
    assert_eq!(
        upward.len(),
        4,
        "plugin, context, Plugin and super::super::steps: {upward:?}"
    );
}
