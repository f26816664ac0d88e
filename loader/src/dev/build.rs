//! Building the plugin crate: `cargo metadata` says what the crate is (its
//! name, its `cdylib` target, its target folder), `cargo build` builds it
//! with `--message-format json-render-diagnostics`, so that cargo prints
//! its progress and the compiler's errors on stderr exactly as it always
//! does, while its JSON messages on stdout name the library it built.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::process_group::GroupChild;
use super::DevError;

/// What a dev session needs to know about the crate it builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCrate {
    /// The crate's folder (canonical).
    pub root: PathBuf,
    pub manifest: PathBuf,
    /// The package name.
    pub name: String,
    pub target_dir: PathBuf,
}

/// How a build ended.
#[derive(Debug)]
pub enum BuildOutcome {
    /// The library cargo wrote.
    Built(PathBuf),
    /// Cargo failed (its errors are on the screen).
    Failed(ExitStatus),
    /// Cargo succeeded but named no `cdylib` of the crate.
    NoLibrary,
}

/// Describes the crate in `dir` (a folder with a `Cargo.toml`).
pub fn describe(cargo: &OsString, dir: &Path) -> Result<PluginCrate, DevError> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(DevError::NoManifest { dir: dir.to_owned() });
    }
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
        .arg(&manifest)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| DevError::Cargo {
            cargo: cargo.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(DevError::Metadata {
            manifest,
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).map_err(|e| DevError::Metadata {
        manifest: manifest.clone(),
        message: format!("cargo metadata printed something that is not JSON: {e}"),
    })?;
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let canonical_manifest = root.join("Cargo.toml");
    let package = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["manifest_path"]
                .as_str()
                .is_some_and(|m| Path::new(m) == canonical_manifest || Path::new(m) == manifest)
        })
        .ok_or_else(|| DevError::Metadata {
            manifest: manifest.clone(),
            message: "it is a workspace without a package of its own: give the plugin crate's folder".to_owned(),
        })?;
    let has_cdylib = package["targets"].as_array().into_iter().flatten().any(|t| {
        t["crate_types"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
    });
    let name = package["name"].as_str().unwrap_or_default().to_owned();
    if !has_cdylib {
        return Err(DevError::NotAPlugin { manifest, name });
    }
    Ok(PluginCrate {
        root,
        manifest: canonical_manifest,
        name,
        target_dir: PathBuf::from(metadata["target_directory"].as_str().unwrap_or("target")),
    })
}

/// A `cargo build` under way.
pub struct Build {
    process: GroupChild,
    messages: Option<JoinHandle<Option<PathBuf>>>,
}

impl Build {
    /// Starts `cargo build` of `plugin` (with `--release` when asked): its
    /// stderr is the terminal's, its JSON messages are read here.
    pub fn start(cargo: &OsString, plugin: &PluginCrate, release: bool) -> Result<Self, DevError> {
        let mut command = Command::new(cargo);
        command
            .args([
                "build",
                "--message-format",
                "json-render-diagnostics",
                "--manifest-path",
            ])
            .arg(&plugin.manifest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if release {
            command.arg("--release");
        }
        let mut process = GroupChild::spawn(&mut command).map_err(|source| DevError::Cargo {
            cargo: cargo.clone(),
            source,
        })?;
        let stdout = process.child_mut().stdout.take();
        let manifest = plugin.manifest.clone();
        let messages = std::thread::Builder::new()
            .name("cargo-messages".into())
            .spawn(move || stdout.and_then(|out| library_from_messages(BufReader::new(out), &manifest)))
            .map_err(|source| DevError::Cargo {
                cargo: cargo.clone(),
                source,
            })?;
        Ok(Build {
            process,
            messages: Some(messages),
        })
    }

    /// The outcome once cargo has ended.
    pub fn try_finish(&mut self) -> std::io::Result<Option<BuildOutcome>> {
        let Some(status) = self.process.try_wait()? else {
            return Ok(None);
        };
        let library = self.messages.take().and_then(|reader| reader.join().ok().flatten());
        Ok(Some(match (status.success(), library) {
            (false, _) => BuildOutcome::Failed(status),
            (true, Some(library)) => BuildOutcome::Built(library),
            (true, None) => BuildOutcome::NoLibrary,
        }))
    }

    /// Stops cargo (and the compilers it started).
    pub fn stop(mut self) {
        let _ = self.process.stop(Duration::from_secs(3));
    }
}

/// The `cdylib` file cargo reports for the package at `manifest`.
fn library_from_messages(messages: impl BufRead, manifest: &Path) -> Option<PathBuf> {
    let mut library = None;
    for line in messages.lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact"
            || message["manifest_path"].as_str().map(Path::new) != Some(manifest)
            || !message["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        {
            continue;
        }
        library = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|f| f.ends_with(std::env::consts::DLL_SUFFIX))
            .map(PathBuf::from)
            .or(library);
    }
    library
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crates_library_is_found_among_cargos_messages() {
        let suffix = std::env::consts::DLL_SUFFIX;
        let messages = format!(
            "{}\n{}\nnot json\n{}\n",
            serde_json::json!({"reason": "compiler-artifact", "manifest_path": "/dep/Cargo.toml",
                "target": {"kind": ["cdylib"]}, "filenames": [format!("/t/libdep{suffix}")]}),
            serde_json::json!({"reason": "compiler-artifact", "manifest_path": "/p/Cargo.toml",
                "target": {"kind": ["cdylib"]}, "filenames": ["/t/libp.rlib", format!("/t/debug/libp{suffix}")]}),
            serde_json::json!({"reason": "build-finished", "success": true}),
        );
        let found = library_from_messages(std::io::Cursor::new(messages), Path::new("/p/Cargo.toml"));
        assert_eq!(found, Some(PathBuf::from(format!("/t/debug/libp{suffix}"))));
    }
}
