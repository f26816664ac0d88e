//! `loader dev` end to end, as a plugin author uses it: on a crate `loader
//! new` wrote, the first build runs the action; an edited source is rebuilt
//! and the action runs again with the same params, without a command; a
//! source that does not compile shows cargo's error and keeps the last
//! run's output (no run, no clearing); fixing it runs again; Ctrl-C ends
//! the session with every process it started gone.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

/// A first build compiles plugin-api and its dependencies.
const FIRST_BUILD: Duration = Duration::from_secs(600);
/// Later builds compile the plugin alone.
const REBUILD: Duration = Duration::from_secs(180);

/// What a stream of the session printed so far.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<String>>);

impl Captured {
    fn follow(mut stream: impl Read + Send + 'static) -> Self {
        let captured = Captured::default();
        let text = captured.0.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                text.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        captured
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// The session, its output, and every process seen descending from it.
struct Session {
    child: Child,
    out: Captured,
    err: Captured,
    seen: Vec<procs::Proc>,
}

impl Session {
    /// Waits until `done` holds for (stdout, stderr), noting the session's
    /// processes meanwhile; panics with the output after `timeout`.
    fn wait_for(&mut self, what: &str, timeout: Duration, done: impl Fn(&str, &str) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            for process in procs::descendants(self.child.id()) {
                if !self
                    .seen
                    .iter()
                    .any(|p| p.pid == process.pid && p.start == process.start)
                {
                    self.seen.push(process);
                }
            }
            let (out, err) = (self.out.text(), self.err.text());
            if done(&out, &err) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the session ended ({status}) before {what}:\n{err}\n{out}");
            }
            assert!(Instant::now() < deadline, "no {what} within {timeout:?}:\n{err}\n{out}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// Edits `file` in place, replacing `from` (which must be there) by `to`.
fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn an_edit_is_rebuilt_and_run_again_and_ctrl_c_leaves_nothing_behind() {
    let work = tempfile::tempdir().unwrap();
    let api = workspace_root().join("plugin-api");
    let created = loader(
        Path::new("."),
        &[
            "new",
            "dev-probe",
            "--path",
            work.path().to_str().unwrap(),
            "--api-path",
            api.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(exit_code(&created), 0, "{}", stderr(&created));
    let crate_dir = work.path().join("dev-probe");
    std::fs::copy(workspace_root().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let source = crate_dir.join("src/lib.rs");

    let mut command = Command::new(loader_bin());
    command
        .args([
            "dev",
            crate_dir.to_str().unwrap(),
            "train",
            "--params",
            r#"{"epochs": 2}"#,
        ])
        .env("CARGO", env!("CARGO"))
        .env("CARGO_TARGET_DIR", fixture_target_dir())
        .env("CARGO_NET_OFFLINE", "true")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("loader dev starts");
    let (out, err) = (
        Captured::follow(child.stdout.take().unwrap()),
        Captured::follow(child.stderr.take().unwrap()),
    );
    let mut session = Session {
        child,
        out,
        err,
        seen: Vec::new(),
    };

    session.wait_for("the first run", FIRST_BUILD, |_, err| {
        err.contains("loader dev: run 1 succeeded")
    });
    let err = session.err.text();
    assert!(err.contains("loader dev: watching "), "{err}");
    assert!(err.contains("Finished `dev` profile"), "cargo's own output: {err}");
    assert!(
        err.contains("[train] metrics epoch=2 loss=0.5"),
        "the run's output: {err}"
    );
    assert!(session.out.text().contains("\"epochs\": 2"), "the result on stdout");

    edit(
        &source,
        "\"batch_size\": batch_size }",
        "\"batch_size\": batch_size, \"edited\": 1 }",
    );
    session.wait_for("the run after the edit", REBUILD, |out, err| {
        err.contains("loader dev: run 2 succeeded") && out.contains("\"edited\": 1")
    });
    let err = session.err.text();
    assert!(err.contains("loader dev: src/lib.rs changed; building"), "{err}");
    assert!(
        err.contains("loader dev: run 2: dev-probe train --params {\"epochs\": 2}"),
        "the same params: {err}"
    );

    let out_before = session.out.text();
    edit(
        &source,
        "fn three() -> u64 {",
        "fn three() -> u64 { let broken: u64 = \"text\";",
    );
    session.wait_for("the failed build", REBUILD, |_, err| err.contains("the build failed"));
    std::thread::sleep(Duration::from_millis(500));
    let err = session.err.text();
    let failed_at = err.rfind("src/lib.rs changed; building").unwrap();
    let after = &err[failed_at..];
    assert!(
        after.contains("error[E0308]: mismatched types"),
        "cargo's error as cargo shows it: {after}"
    );
    assert!(after.contains("the last run's output stays above"), "{after}");
    assert!(!after.contains("run 3"), "no run after a failed build: {after}");
    assert!(!err.contains("\x1b[2J"), "the screen is never cleared: {err:?}");
    assert_eq!(session.out.text(), out_before, "the last run's output is kept");

    edit(&source, " let broken: u64 = \"text\";", "");
    session.wait_for("the run after the fix", REBUILD, |_, err| {
        err.contains("loader dev: run 3 succeeded")
    });
    assert_eq!(
        count(&session.err.text(), "loader dev: run "),
        6,
        "three runs, each announced and concluded"
    );

    session.wait_for("the session's processes", Duration::from_secs(5), |_, _| true);
    let seen = session.seen.clone();
    assert!(!seen.is_empty(), "cargo and the runs were seen running");
    let pid = session.child.id();
    Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = session.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "Ctrl-C did not end the session:\n{}",
            session.err.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "Ctrl-C ends the session normally: {status}\n{}",
        session.err.text()
    );
    let left = procs::wait_until_gone(&seen, Duration::from_secs(10));
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let dev_folders: Vec<_> = std::fs::read_dir(fixture_target_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy() == format!("loader-dev-{pid}"))
        .collect();
    assert!(dev_folders.is_empty(), "the session's plugin folder is removed");
}

#[test]
fn a_folder_without_a_plugin_crate_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let output = loader(Path::new("."), &["dev", work.path().to_str().unwrap(), "train"], &[]);
    assert_eq!(exit_code(&output), 2, "{}", stderr(&output));
    assert!(stderr(&output).contains("has no Cargo.toml"), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("help: give the folder of a plugin crate"),
        "{}",
        stderr(&output)
    );
}
