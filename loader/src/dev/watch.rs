//! Watching a plugin crate's sources with `notify`: the crate folder itself
//! (its `Cargo.toml`, `build.rs`) and every folder in it but the target
//! folder and hidden ones, recursively. A change that matters (a file
//! created, written, renamed or removed; not an editor's swap or backup
//! file, nor `Cargo.lock`, which cargo itself writes while it builds) is
//! handed to a callback with the paths it touched; the session debounces
//! them.

use std::path::{Path, PathBuf};

use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// Watches a crate folder while it lives.
pub struct SourceWatcher {
    _watcher: RecommendedWatcher,
}

impl SourceWatcher {
    /// Starts watching `root` (skipping `ignored` folders inside it) and
    /// calls `on_change` with the relevant paths of each change.
    pub fn start(
        root: &Path,
        ignored: Vec<PathBuf>,
        on_change: impl Fn(Vec<PathBuf>) + Send + 'static,
    ) -> notify::Result<Self> {
        let filter_root = root.to_owned();
        let filter_ignored = ignored.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if !is_change(&event.kind) {
                return;
            }
            let paths: Vec<PathBuf> = event
                .paths
                .into_iter()
                .filter(|p| is_source(p, &filter_root, &filter_ignored))
                .collect();
            if !paths.is_empty() {
                on_change(paths);
            }
        })?;
        watcher.watch(root, RecursiveMode::NonRecursive)?;
        for entry in std::fs::read_dir(root)?.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && is_source(&path, root, &ignored) {
                watcher.watch(&path, RecursiveMode::Recursive)?;
            }
        }
        Ok(SourceWatcher { _watcher: watcher })
    }
}

/// Whether an event changes files (reading them, or only their
/// attributes, does not).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Whether `path` (inside `root`) is a source a build would read: not in
/// an `ignored` folder (the target folder), not hidden (`.git`, `.idea`,
/// editors' `.#lock` files), not an editor's swap or backup file, not the
/// crate's `Cargo.lock`.
pub fn is_source(path: &Path, root: &Path, ignored: &[PathBuf]) -> bool {
    if ignored.iter().any(|folder| path.starts_with(folder)) {
        return false;
    }
    let inside = path.strip_prefix(root).unwrap_or(path);
    if inside
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
    {
        return false;
    }
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    if inside == Path::new("Cargo.lock") {
        return false;
    }
    let backup = name.ends_with('~') || name == "4913";
    let swap = [".swp", ".swo", ".swx", ".tmp", ".bak"]
        .iter()
        .any(|ext| name.ends_with(ext));
    !(backup || swap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn sources_are_told_from_build_output_and_editor_files() {
        let root = Path::new("/work/plugin");
        let ignored = [root.join("target")];
        for source in ["src/lib.rs", "Cargo.toml", "build.rs", "src/deep/mod.rs"] {
            assert!(is_source(&root.join(source), root, &ignored), "{source}");
        }
        for other in [
            "target/debug/libplugin.so",
            ".git/index",
            "src/.lib.rs.swp",
            "src/lib.rs~",
            "src/4913",
            "src/.#lib.rs",
            "Cargo.lock",
        ] {
            assert!(!is_source(&root.join(other), root, &ignored), "{other}");
        }
    }

    #[test]
    fn a_written_source_is_reported_and_the_target_folder_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("target/debug")).unwrap();
        let (sender, changes) = mpsc::channel();
        let _watcher = SourceWatcher::start(&root, vec![root.join("target")], move |paths| {
            let _ = sender.send(paths);
        })
        .unwrap();
        std::fs::write(root.join("target/debug/out.so"), "x").unwrap();
        std::fs::write(root.join("src/lib.rs"), "fn main() {}").unwrap();
        let paths = changes
            .recv_timeout(Duration::from_secs(10))
            .expect("a change is reported");
        assert!(paths.iter().all(|p| p.starts_with(root.join("src"))), "{paths:?}");
    }
}
