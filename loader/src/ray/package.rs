//! The package a Ray job runs in: a zip holding the loader binary, the one
//! plugin library, the params (one file per run), the plugin's environment
//! and the driver that runs it all on the cluster with its spec, named
//! after the hash of its content so that the cluster keeps one copy and a
//! second identical submission uploads nothing.
//!
//! Layout inside the zip (Ray unpacks it as the job's working directory):
//!
//! ```text
//! loader                 the loader binary (mode 0755)
//! plugins/<library>      the plugin library
//! params/<n>.json        the params of run n (1 for a single run; the
//!                        input line number in a batch)
//! plugin.env             the plugin's environment as KEY="VALUE" lines
//! loader_ray.py          the job's entrypoint (driver.py in this crate)
//! ray-run.json           what the driver does (see `spec`)
//! ```

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// The file inside the package holding the plugin's environment.
pub const ENV_FILE: &str = "plugin.env";

/// The folder inside the package holding the plugin library.
pub const PLUGIN_DIR: &str = "plugins";

/// The driver inside the package (the job's entrypoint runs it).
pub const DRIVER_FILE: &str = "loader_ray.py";

/// The driver's spec inside the package.
pub const SPEC_FILE: &str = "ray-run.json";

/// The driver's source.
pub const DRIVER: &str = include_str!("driver.py");

/// Why a package could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("the environment variable {0} has a value with a carriage return, which a job's env file cannot carry")]
    CarriageReturn(String),
    #[error("cannot write the package: {0}")]
    Zip(String),
}

/// What goes into a package.
#[derive(Debug, Clone)]
pub struct PackageSpec {
    /// The loader binary to run on the cluster.
    pub loader: PathBuf,
    /// The plugin library.
    pub library: PathBuf,
    /// Params JSON texts by run number.
    pub params: BTreeMap<usize, String>,
    /// The plugin's environment.
    pub env: BTreeMap<String, String>,
    /// The driver's spec (`ray-run.json`).
    pub run_spec: String,
}

/// A built package: its Ray name (`_ray_pkg_<hash>.zip`) and bytes.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub zip: Vec<u8>,
}

impl Package {
    /// The URI a job's `runtime_env.working_dir` names it by.
    pub fn uri(&self) -> String {
        format!("gcs://{}", self.name)
    }
}

/// The path of run `n`'s params inside the package.
pub fn params_path(n: usize) -> String {
    format!("params/{n}.json")
}

/// The plugin library's path inside the package.
pub fn library_path(library: &Path) -> String {
    let name = library
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{PLUGIN_DIR}/{name}")
}

fn read(path: &Path) -> Result<Vec<u8>, PackageError> {
    std::fs::read(path).map_err(|e| PackageError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The env file text the job's loader reads back with `--env-file`
/// (`crate::run::env_file`): one `KEY="VALUE"` entry per variable, with `\`,
/// `"` and `$` escaped so that the value comes back exactly as built here
/// (a line break stays inside the quotes). A carriage return is refused: the
/// reader would not keep it.
pub fn env_file_text(env: &BTreeMap<String, String>) -> Result<String, PackageError> {
    let mut text = String::new();
    for (key, value) in env {
        if value.contains('\r') {
            return Err(PackageError::CarriageReturn(key.clone()));
        }
        text.push_str(key);
        text.push_str("=\"");
        for c in value.chars() {
            if matches!(c, '\\' | '"' | '$') {
                text.push('\\');
            }
            text.push(c);
        }
        text.push_str("\"\n");
    }
    Ok(text)
}

/// Builds the zip. The same spec always gives the same bytes (fixed times,
/// sorted entries), hence the same name.
pub fn build(spec: &PackageSpec) -> Result<Package, PackageError> {
    let mut files: Vec<(String, Vec<u8>, u32)> = vec![
        ("loader".to_owned(), read(&spec.loader)?, 0o755),
        (library_path(&spec.library), read(&spec.library)?, 0o644),
        (ENV_FILE.to_owned(), env_file_text(&spec.env)?.into_bytes(), 0o600),
        (DRIVER_FILE.to_owned(), DRIVER.as_bytes().to_vec(), 0o644),
        (SPEC_FILE.to_owned(), spec.run_spec.clone().into_bytes(), 0o644),
    ];
    for (n, params) in &spec.params {
        files.push((params_path(*n), params.clone().into_bytes(), 0o644));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));

    let zip_error = |e: &dyn std::fmt::Display| PackageError::Zip(e.to_string());
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes, mode) in &files {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(1))
            .last_modified_time(DateTime::default())
            .unix_permissions(*mode)
            .large_file(bytes.len() as u64 >= u32::MAX as u64);
        writer.start_file(name.as_str(), options).map_err(|e| zip_error(&e))?;
        writer.write_all(bytes).map_err(|e| zip_error(&e))?;
    }
    let zip = writer.finish().map_err(|e| zip_error(&e))?.into_inner();
    let digest = Sha256::digest(&zip);
    let hash: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Ok(Package {
        name: format!("_ray_pkg_{hash}.zip"),
        zip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn spec(dir: &Path, params: &str) -> PackageSpec {
        std::fs::write(dir.join("loader"), b"#!/bin/sh\n").unwrap();
        std::fs::write(dir.join("libdemo.so"), b"not really a library").unwrap();
        PackageSpec {
            loader: dir.join("loader"),
            library: dir.join("libdemo.so"),
            params: BTreeMap::from([(1, params.to_owned())]),
            env: BTreeMap::from([("TOKEN".to_owned(), "a \"quoted\" value".to_owned())]),
            run_spec: "{}".to_owned(),
        }
    }

    #[test]
    fn the_same_content_gives_the_same_name_and_other_params_another() {
        let dir = tempfile::tempdir().unwrap();
        let first = build(&spec(dir.path(), r#"{"a": 1}"#)).unwrap();
        let again = build(&spec(dir.path(), r#"{"a": 1}"#)).unwrap();
        let other = build(&spec(dir.path(), r#"{"a": 2}"#)).unwrap();
        assert_eq!(first.name, again.name);
        assert_eq!(first.zip, again.zip);
        assert_ne!(first.name, other.name);
        assert!(
            first.name.starts_with("_ray_pkg_") && first.name.ends_with(".zip"),
            "{}",
            first.name
        );
        assert_eq!(first.uri(), format!("gcs://{}", first.name));
    }

    #[test]
    fn the_zip_holds_the_binary_executable_the_library_params_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let package = build(&spec(dir.path(), r#"{"a": 1}"#)).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(package.zip)).unwrap();
        let names: Vec<String> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "loader",
                "loader_ray.py",
                "params/1.json",
                "plugin.env",
                "plugins/libdemo.so",
                "ray-run.json"
            ]
        );
        assert_eq!(
            archive.by_name("loader").unwrap().unix_mode().map(|m| m & 0o777),
            Some(0o755)
        );
        let mut env = String::new();
        archive.by_name(ENV_FILE).unwrap().read_to_string(&mut env).unwrap();
        assert_eq!(env, "TOKEN=\"a \\\"quoted\\\" value\"\n");
    }

    #[test]
    fn every_value_reads_back_through_the_env_file_reader_as_it_was() {
        let env = BTreeMap::from([
            ("TOKEN".to_owned(), "p$ss\"w\\rd'${HOME}".to_owned()),
            ("MULTI".to_owned(), "two\nlines # not a comment".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ]);
        let text = env_file_text(&env).unwrap();
        let read: BTreeMap<String, String> = crate::run::env_file::parse(Path::new("plugin.env"), &text)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(read, env, "{text}");
    }

    #[test]
    fn a_carriage_return_is_refused_and_a_missing_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = spec(dir.path(), "{}");
        bad.env.insert("KEY".to_owned(), "two\rlines".to_owned());
        assert!(matches!(build(&bad), Err(PackageError::CarriageReturn(k)) if k == "KEY"));
        let mut missing = spec(dir.path(), "{}");
        missing.library = dir.path().join("gone.so");
        let error = build(&missing).unwrap_err().to_string();
        assert!(error.contains("gone.so"), "{error}");
    }
}

/// The driver's logic that needs no cluster, run by the machine's Python
/// (skipped where there is none): it parses, and its pure parts do what
/// the loader reads back.
#[cfg(test)]
mod driver_tests {
    use super::DRIVER;
    use std::process::Command;

    const CHECKS: &str = r#"
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("loader_ray", sys.argv[1])
driver = importlib.util.module_from_spec(spec)
spec.loader.exec_module(driver)

options = driver.task_options({"resources": {"num_cpus": 0.5, "memory": 64, "resources": {"special": 1}}})
assert options == {"max_retries": 0, "num_cpus": 0.5, "memory": 64, "resources": {"special": 1}}, options
assert driver.needs(options) == {"CPU": 0.5, "memory": 64, "special": 1}
assert driver.needs(driver.task_options({})) == {"CPU": 1}, "Ray's task default: 1 CPU"

ok = driver.outcome_record(3, 2, "b-3-2", "n1", {"kind": "result", "data": {"x": 1}}, 0, "")
assert ok == {"line": 3, "attempts": 2, "submission_id": "b-3-2", "node": "n1", "status": "succeeded",
              "result": {"x": 1}, "error": None}, ok
bad = driver.outcome_record(4, 1, "b-4-1", None, {"kind": "error", "data": {"message": "no", "kind": "timed_out"}}, 1, "")
assert bad["status"] == "failed" and bad["error"] == {"message": "no", "kind": "timed_out", "details": None}, bad
gone = driver.outcome_record(5, 1, "b-5-1", None, None, 4, "error: events lost")
assert gone["error"]["kind"] == "crashed" and "code 4" in gone["error"]["message"], gone
assert "events lost" in gone["error"]["message"]

assert driver.outcome_of(b'{"kind":"result","data":{}}') == {"kind": "result", "data": {}}
assert driver.outcome_of(b'{"kind":"progress"}') is None
assert driver.outcome_of(b'not json "kind":"error"') is None
assert driver.line_argv({"loader": ["./loader", "run"]}, 7, "b-7-1") == [
    "./loader", "run", "--params", "@params/7.json", "--job-id", "b-7-1", "--events", "jsonl"]
assert driver.chunk_argv({"loader": ["./loader", "run"], "retries": 2}, "b") == [
    "./loader", "run", "--parallel", "1", "--retries", "2", "--job-id", "b"]
assert [driver.chunk_size(n, 2) for n in (1, 7, 8, 20, 1000)] == [1, 1, 1, 2, 16]
assert driver.batch_outcome_of(b'{"line":3,"status":"succeeded","attempts":1}')["line"] == 3
assert driver.batch_outcome_of(b'{"kind":"result"}') is None

class Sent:
    def __init__(self):
        self.data = b""
    def send(self, data):
        self.data += data
printed = []
out = driver.Output(Sent())
out._emit = lambda data, emit=out._emit: (printed.append(data), emit(data))
out.write_lines(b'{"a":1}\n{"b"')
out.write_lines(b':2}\npart')
out.record("notice", level="warning", message="m")
out.finish_partial()
assert printed == [b'{"a":1}\n', b'{"b":2}\n', b'{"loader_ray":"notice","level":"warning","message":"m"}\n', b"part\n"], printed
assert out._channel.data == b"".join(printed)
print("driver checks passed")
"#;

    #[test]
    fn the_driver_parses_and_its_pure_parts_hold() {
        let dir = tempfile::tempdir().unwrap();
        let driver = dir.path().join("loader_ray.py");
        std::fs::write(&driver, DRIVER).unwrap();
        let output = match Command::new("python3").arg("-c").arg(CHECKS).arg(&driver).output() {
            Ok(output) => output,
            Err(e) => {
                eprintln!("no python3 here ({e}): the driver's checks are skipped");
                return;
            }
        };
        let said = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{said}");
        assert!(said.contains("driver checks passed"), "{said}");
    }
}
