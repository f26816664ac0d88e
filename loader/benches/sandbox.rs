//! What the sandbox costs, whole process, the way a user runs the loader:
//! a trivial isolated action (`loader run bench noop`) and 1 M `log` calls
//! into an events file, each with the sandbox on (the default) and off
//! (`--sandbox off`). Criterion measures each; then the two are run in
//! turns (on, off, off, on, ...) for a paired figure on the same
//! machine state, which is what the goals are judged on: set-up adds at
//! most 1 ms to a run, and events throughput stays within 5%.
//!
//! `cargo bench -p loader --bench sandbox` (release build of the loader and
//! of the bench plugin in tests/fixtures/bench).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("loader/ is in the workspace")
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds the bench plugin (release) and returns a folder holding it alone.
fn bench_folder() -> tempfile::TempDir {
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "--quiet",
            "--manifest-path",
            "tests/fixtures/bench/Cargo.toml",
            "--target-dir",
        ])
        .arg(target_dir().join("fixtures"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the bench plugin failed");
    let name = format!(
        "{}bench_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let folder = tempfile::tempdir().expect("a temporary folder");
    std::fs::copy(
        target_dir().join("fixtures/release").join(&name),
        folder.path().join(&name),
    )
    .expect("the bench plugin is copied");
    folder
}

/// The sandbox modes compared.
const MODES: [&str; 2] = ["on", "off"];

const EVENTS: u64 = 1_000_000;

/// A `loader run` of the bench plugin in `mode`.
fn run(cache: &Path, folder: &Path, mode: &str, action: &str, params: &str, events: Option<&Path>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loader"));
    command
        .env("XDG_CACHE_HOME", cache)
        .args(["--sandbox", mode, "--plugins"])
        .arg(folder)
        .args(["run", "bench", action, "--params", params, "--quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(events) = events {
        command.arg("--events").arg(events);
    }
    command
}

fn whole_process(mut command: Command) -> Duration {
    let start = Instant::now();
    let status = command.status().expect("the loader runs");
    let elapsed = start.elapsed();
    assert!(status.success(), "{command:?} failed: {status}");
    elapsed
}

struct Setup {
    cache: tempfile::TempDir,
    folder: tempfile::TempDir,
    events: PathBuf,
    _events_dir: tempfile::TempDir,
}

impl Setup {
    fn noop(&self, mode: &str) -> Duration {
        whole_process(run(self.cache.path(), self.folder.path(), mode, "noop", "{}", None))
    }

    fn logs(&self, mode: &str) -> Duration {
        let params = format!(r#"{{"count": {EVENTS}}}"#);
        whole_process(run(
            self.cache.path(),
            self.folder.path(),
            mode,
            "log_calls",
            &params,
            Some(&self.events),
        ))
    }
}

fn criterion_groups(c: &mut Criterion, setup: &Setup) {
    let mut group = c.benchmark_group("sandbox_run");
    for mode in MODES {
        group.bench_function(BenchmarkId::new("noop", mode), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| setup.noop(mode)).sum())
        });
    }
    group.finish();
    let mut group = c.benchmark_group("sandbox_events");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(EVENTS));
    for mode in MODES {
        group.bench_function(BenchmarkId::new("log_to_file", mode), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| setup.logs(mode)).sum())
        });
    }
    group.finish();
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// Runs `measure` in both modes `rounds` times each, in turns (the first
/// mode of each round alternates), and returns the medians (on, off).
fn paired(rounds: usize, measure: impl Fn(&str) -> Duration) -> (Duration, Duration) {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order = if round % 2 == 0 { ["on", "off"] } else { ["off", "on"] };
        for mode in order {
            let took = measure(mode);
            if mode == "on" {
                on.push(took)
            } else {
                off.push(took)
            }
        }
    }
    (median(on), median(off))
}

fn main() {
    let events_dir = tempfile::tempdir().expect("a temporary folder");
    let setup = Setup {
        cache: tempfile::tempdir().expect("a temporary folder"),
        folder: bench_folder(),
        events: events_dir.path().join("events.jsonl"),
        _events_dir: events_dir,
    };
    // The first run fills the manifest cache; every measured run finds it.
    setup.noop("on");
    let mut c = Criterion::default()
        .output_directory(&target_dir().join("criterion"))
        .configure_from_args();
    criterion_groups(&mut c, &setup);
    c.final_summary();

    let (on, off) = paired(41, |mode| setup.noop(mode));
    let added = on.as_secs_f64() - off.as_secs_f64();
    println!("\n| measurement (medians of runs in turns) | sandbox on | sandbox off | difference | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| trivial isolated run, whole process (41 pairs) | {:.2} ms | {:.2} ms | {:+.2} ms | ≤ +1 ms: {} |",
        on.as_secs_f64() * 1e3,
        off.as_secs_f64() * 1e3,
        added * 1e3,
        if added <= 1e-3 { "met" } else { "not met" }
    );
    let (on, off) = paired(7, |mode| setup.logs(mode));
    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64() / 1e6;
    let ratio = rate(on) / rate(off);
    println!(
        "| 1 M `log` calls to an events file, whole process (7 pairs) | {:.2} M events/s | {:.2} M events/s | {:.1}% | within 5%: {} |",
        rate(on),
        rate(off),
        (ratio - 1.0) * 100.0,
        if ratio >= 0.95 { "met" } else { "not met" }
    );
}
