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

/// The CPU time (user and system) of every child process waited for so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// How long a whole process took, and the CPU time it and its children used.
#[derive(Clone, Copy)]
struct Took {
    wall: Duration,
    cpu: Duration,
}

fn whole_process(mut command: Command) -> Took {
    let cpu_before = children_cpu();
    let start = Instant::now();
    let status = command.status().expect("the loader runs");
    let wall = start.elapsed();
    assert!(status.success(), "{command:?} failed: {status}");
    Took {
        wall,
        cpu: children_cpu() - cpu_before,
    }
}

struct Setup {
    cache: tempfile::TempDir,
    folder: tempfile::TempDir,
    events: PathBuf,
    _events_dir: tempfile::TempDir,
}

impl Setup {
    fn noop(&self, mode: &str) -> Took {
        whole_process(run(self.cache.path(), self.folder.path(), mode, "noop", "{}", None))
    }

    fn logs(&self, mode: &str) -> Took {
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
            b.iter_custom(|iters| (0..iters).map(|_| setup.noop(mode).wall).sum())
        });
    }
    group.finish();
    let mut group = c.benchmark_group("sandbox_events");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(EVENTS));
    for mode in MODES {
        group.bench_function(BenchmarkId::new("log_to_file", mode), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| setup.logs(mode).wall).sum())
        });
    }
    group.finish();
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn minimum(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

/// The runs of both modes, taken in turns.
#[derive(Default)]
struct Paired {
    on: Vec<Took>,
    off: Vec<Took>,
}

impl Paired {
    fn wall(&self, on: bool) -> Vec<Duration> {
        let runs = if on { &self.on } else { &self.off };
        runs.iter().map(|t| t.wall).collect()
    }

    fn cpu(&self, on: bool) -> Vec<Duration> {
        let runs = if on { &self.on } else { &self.off };
        runs.iter().map(|t| t.cpu).collect()
    }
}

/// Runs `measure` in both modes `rounds` times each, in turns (the first
/// mode of each round alternates).
fn paired(rounds: usize, measure: impl Fn(&str) -> Took) -> Paired {
    let mut runs = Paired::default();
    for round in 0..rounds {
        let order = if round % 2 == 0 { ["on", "off"] } else { ["off", "on"] };
        for mode in order {
            let took = measure(mode);
            if mode == "on" {
                runs.on.push(took)
            } else {
                runs.off.push(took)
            }
        }
    }
    runs
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
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

    let runs = paired(41, |mode| setup.noop(mode));
    println!("\n| trivial isolated run, whole process (41 runs each, in turns) | sandbox on | sandbox off | difference | goal ≤ +1 ms |");
    println!("|---|---|---|---|---|");
    for (what, on, off) in [
        ("wall time, median", median(runs.wall(true)), median(runs.wall(false))),
        (
            "wall time, fastest",
            minimum(&runs.wall(true)),
            minimum(&runs.wall(false)),
        ),
        (
            "CPU time (loader and children), median",
            median(runs.cpu(true)),
            median(runs.cpu(false)),
        ),
    ] {
        let added = ms(on) - ms(off);
        println!(
            "| {what} | {:.2} ms | {:.2} ms | {added:+.2} ms | {} |",
            ms(on),
            ms(off),
            if added <= 1.0 { "met" } else { "not met" }
        );
    }
    let runs = paired(7, |mode| setup.logs(mode));
    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64() / 1e6;
    let (on, off) = (median(runs.wall(true)), median(runs.wall(false)));
    let ratio = rate(on) / rate(off);
    println!(
        "| 1 M `log` calls to an events file, whole process, median of 7 each | {:.2} M events/s | {:.2} M events/s | {:+.1}% | within 5%: {} |",
        rate(on),
        rate(off),
        (ratio - 1.0) * 100.0,
        if ratio >= 0.95 { "met" } else { "not met" }
    );
}
