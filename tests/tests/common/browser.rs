//! Headless Chromium for the report tests: renders a page from a file://
//! URL to its DOM (after its scripts ran) and to a PNG screenshot, each in
//! a process group of its own that is killed and checked gone afterwards,
//! with a fresh profile folder and every background network feature off.
//!
//! Without Chromium the tests that need it skip with one line, unless
//! `CI=true`, where they fail (`.ci/run` installs Debian's `chromium`).

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::procs;

/// How long one Chromium run may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The Chromium to use: `$LOADER_TEST_CHROMIUM`, else `chromium` (or
/// `chromium-browser`) on the PATH; `None` (after saying so) when there is
/// none and CI is not set; a panic when CI is set.
pub fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("LOADER_TEST_CHROMIUM").map(PathBuf::from).or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(found) => Some(found),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: chromium is not installed, and CI=true requires it (.ci/run installs it)")
        }
        None => {
            eprintln!(
                "{test}: skipped: chromium is not installed (apt-get install chromium; CI=true makes this a failure)"
            );
            None
        }
    }
}

/// Runs Chromium headless on `page` with `extra` arguments; returns its
/// stdout. Panics if it fails, takes too long, or leaves a process behind.
fn run(chromium: &Path, page: &Path, work: &Path, extra: &[String]) -> String {
    let profile = tempfile::tempdir_in(work).unwrap();
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--hide-scrollbars",
            "--mute-audio",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().expect("chromium starts");
    let group = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seen = procs::in_group(group);
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .status();
    let _ = child.wait();
    let left = procs::wait_until_gone(&seen, Duration::from_secs(10));
    assert!(left.is_empty(), "chromium left processes behind: {left:?}");
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(status) if status.success() => out,
        Some(status) => panic!("chromium failed ({status}):\n{err}"),
        None => panic!("chromium took more than {TIMEOUT:?}:\n{err}"),
    }
}

/// The page's DOM once loaded and its scripts have run.
pub fn dom(chromium: &Path, page: &Path, work: &Path) -> String {
    run(chromium, page, work, &["--dump-dom".to_owned()])
}

/// A screenshot of the page's first `width` x `height` pixels.
pub fn screenshot(chromium: &Path, page: &Path, work: &Path, width: u32, height: u32) -> PathBuf {
    let png = work.join("screenshot.png");
    run(
        chromium,
        page,
        work,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={width},{height}"),
        ],
    );
    assert!(png.is_file(), "chromium wrote no screenshot");
    png
}
