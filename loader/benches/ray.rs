//! Runs on a Ray cluster, whole processes as a user runs them, side by
//! side in one criterion run:
//!
//! - a single trivial run (`bench noop`), submit to result, as a Ray task
//!   (`--method task`) and in the job's entrypoint (`--method job`),
//!   against Ray's own floor: `ray job submit` of a trivial Python
//!   entrypoint (`python3 -c pass`), and a local isolated run;
//! - batch throughput against the number of lines (10, 100, 1,000 trivial
//!   lines, as many at a time as the cluster holds) and against
//!   `--parallel` (1, 2, 4, 100 lines);
//! - a batch of 100 lines that each sleep 1 s at `--parallel 2`, against
//!   the 50 s a perfect schedule needs;
//! - how soon the events of a running job are seen here (an event every
//!   100 ms for 3 s), straight from the driver and from the job log
//!   (`--ray-listen off`).
//!
//! Needs a cluster: `RAY_ADDRESS` (or `RAY_API_SERVER_ADDRESS`) names its
//! Jobs API, and `ray` is looked for in `RAY_BIN`, then on the PATH;
//! without a cluster the benchmark says so and does nothing. On a local
//! head with 2 CPUs in a loopback-only namespace:
//!
//! ```sh
//! tests/ray/run-in-netns.sh cargo bench -p loader --bench ray
//! ```
//!
//! A criterion filter picks parts (`-- 'ray_single|ray_events'`, with
//! `ray_batch_lines`, `ray_batch_parallel`, `ray_batch_sleep`); the event
//! latencies are measured unless a filter leaves out `ray_events`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};

/// Batch sizes of the throughput against lines.
const LINES: [usize; 3] = [10, 100, 1000];
/// `--parallel` of the throughput against parallelism (100 lines).
const PARALLELISM: [usize; 3] = [1, 2, 4];
/// The sleeping batch: lines, seconds each, `--parallel`.
const SLEEPERS: (usize, u64, usize) = (100, 1, 2);

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

/// Builds the benchmark plugin (release) into a plugin folder of its own.
fn bench_plugins() -> PathBuf {
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
    assert!(status.success(), "building the benchmark plugin failed");
    let name = format!(
        "{}bench_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let folder = target_dir().join("ray-bench-plugins");
    std::fs::create_dir_all(&folder).expect("a plugin folder");
    std::fs::copy(
        target_dir().join("fixtures").join("release").join(&name),
        folder.join(&name),
    )
    .expect("the plugin");
    folder
}

/// The Ray command line tool.
fn ray_command() -> PathBuf {
    std::env::var_os("RAY_BIN")
        .map(|bin| PathBuf::from(bin).join("ray"))
        .unwrap_or_else(|| PathBuf::from("ray"))
}

/// A loader run as a user starts it.
struct Bench {
    address: String,
    plugins: PathBuf,
    work: tempfile::TempDir,
}

impl Bench {
    fn loader(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_loader"));
        command.arg("--plugins").arg(&self.plugins).args(args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `command` to its end, failing the benchmark when it fails;
    /// returns how long it took.
    fn timed(mut command: Command, what: &str) -> Duration {
        let start = Instant::now();
        let output = command.output().expect("the command starts");
        let took = start.elapsed();
        assert!(
            output.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        took
    }

    fn single_run(&self, method: &str) -> Duration {
        let args = [
            "run",
            "bench",
            "noop",
            "--quiet",
            "--on",
            "ray",
            "--ray-address",
            &self.address,
            "--method",
            method,
        ];
        Self::timed(self.loader(&args), &format!("a run as a {method}"))
    }

    fn local_run(&self) -> Duration {
        Self::timed(self.loader(&["run", "bench", "noop", "--quiet"]), "a local run")
    }

    fn ray_floor(&self) -> Duration {
        let mut command = Command::new(ray_command());
        command
            .args([
                "job",
                "submit",
                "--address",
                &self.address,
                "--",
                "python3",
                "-c",
                "pass",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Self::timed(command, "ray job submit")
    }

    /// A params file of `lines` copies of `params`.
    fn lines_file(&self, lines: usize, params: &str) -> PathBuf {
        let path = self.work.path().join(format!("lines-{lines}-{}.jsonl", params.len()));
        std::fs::write(&path, format!("{params}\n").repeat(lines)).expect("the params file");
        path
    }

    fn batch(&self, action: &str, file: &Path, parallel: Option<usize>) -> Duration {
        let file = file.to_str().expect("a UTF-8 path");
        let mut args = vec![
            "run",
            "bench",
            action,
            "--quiet",
            "--on",
            "ray",
            "--ray-address",
            &self.address,
        ];
        args.extend(["--params-each", file]);
        let parallel = parallel.map(|p| p.to_string());
        if let Some(parallel) = &parallel {
            args.extend(["--parallel", parallel]);
        }
        Self::timed(self.loader(&args), "a batch")
    }

    /// How long after its emission each `tick` event of a running job is
    /// seen on the loader's stdout, in seconds.
    fn event_delays(&self, listen: &str) -> Vec<f64> {
        let args = [
            "run",
            "bench",
            "ticks",
            "--params",
            r#"{"count": 30, "every_ms": 100}"#,
            "--events",
            "jsonl",
            "--quiet",
            "--on",
            "ray",
            "--ray-address",
            &self.address,
            "--ray-listen",
            listen,
        ];
        let mut child = self
            .loader(&args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the loader starts");
        let mut delays = Vec::new();
        for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let seen = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("after 1970")
                .as_secs_f64();
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line.expect("a line")) else {
                continue;
            };
            if event["event"] == "tick" {
                delays.push(seen - event["timestamp"].as_f64().expect("a timestamp"));
            }
        }
        assert!(
            child.wait().expect("the loader ends").success(),
            "the ticking run failed"
        );
        assert_eq!(delays.len(), 30, "every event once");
        delays
    }
}

fn estimate(id: &str) -> Option<f64> {
    let path = target_dir()
        .join("criterion")
        .join(id)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64().map(|ns| ns / 1e9)
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

/// The table of what was measured, the goal beside each figure.
fn report(delays: &[(String, Vec<f64>)]) {
    println!("\n| measurement | median | goal |");
    println!("|---|---|---|");
    let floor = estimate("ray_single/ray_job_submit_floor");
    if let Some(floor) = floor {
        println!("| Ray's floor: `ray job submit -- python3 -c pass` | {floor:.2} s | |");
    }
    for method in ["task", "job"] {
        if let Some(seconds) = estimate(&format!("ray_single/loader_{method}")) {
            let ratio = floor
                .map(|f| format!("{:.2}x of the floor", seconds / f))
                .unwrap_or_default();
            let goal = if method == "task" {
                "within 1.2x of the floor"
            } else {
                ""
            };
            println!("| trivial run, `--method {method}` (submit to result) | {seconds:.2} s ({ratio}) | {goal} |");
        }
    }
    if let Some(local) = estimate("ray_single/local_isolated") {
        println!("| trivial run, local isolated | {:.1} ms | |", local * 1e3);
    }
    for lines in LINES {
        if let Some(seconds) = estimate(&format!("ray_batch_lines/{lines}")) {
            let goal = if lines == 1000 { ">= 50 lines/s" } else { "" };
            println!(
                "| batch of {lines} trivial lines | {:.1} lines/s ({seconds:.1} s) | {goal} |",
                lines as f64 / seconds
            );
        }
    }
    for parallel in PARALLELISM {
        if let Some(seconds) = estimate(&format!("ray_batch_parallel/{parallel}")) {
            println!(
                "| batch of 100 trivial lines, `--parallel {parallel}` | {:.1} lines/s | |",
                100.0 / seconds
            );
        }
    }
    let (lines, each, parallel) = SLEEPERS;
    if let Some(seconds) = estimate("ray_batch_sleep/100x1s_parallel_2") {
        let perfect = (lines as u64 * each) as f64 / parallel as f64;
        println!(
            "| batch of {lines} lines sleeping {each} s, `--parallel {parallel}` | {seconds:.1} s ({:.2}x of {perfect:.0} s) | within 1.2x |",
            seconds / perfect
        );
    }
    for (listen, delays) in delays {
        let mut delays = delays.clone();
        let (median, worst) = (quantile(&mut delays, 0.5), quantile(&mut delays, 1.0));
        let goal = if listen == "auto" { "within 0.5 s" } else { "" };
        println!(
            "| events seen, `--ray-listen {listen}` (emitted to seen) | {:.0} ms (max {:.0} ms) | {goal} |",
            median * 1e3,
            worst * 1e3
        );
    }
}

/// A group of whole-process runs: ten of each, one at a time.
fn flat<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name.to_owned());
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    group
}

fn main() {
    let address = ["RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    let Some(address) = address else {
        println!("ray benchmark skipped: no RAY_ADDRESS (run it with tests/ray/run-in-netns.sh cargo bench -p loader --bench ray)");
        return;
    };
    if let Err(e) = loader::ray::JobsApi::new(&address).version() {
        println!("ray benchmark skipped: {e}");
        return;
    }
    let bench = Bench {
        address,
        plugins: bench_plugins(),
        work: tempfile::tempdir().expect("a work folder"),
    };
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    // Criterion's filter is a regex; `a|b` alternatives are enough here.
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| f.split('|').any(|part| name.contains(part)));

    let mut c = Criterion::default()
        .output_directory(&target_dir().join("criterion"))
        .configure_from_args();
    let mut single = flat(&mut c, "ray_single");
    single.bench_function("ray_job_submit_floor", |b| {
        b.iter_custom(|n| (0..n).map(|_| bench.ray_floor()).sum())
    });
    single.bench_function("loader_task", |b| {
        b.iter_custom(|n| (0..n).map(|_| bench.single_run("task")).sum())
    });
    single.bench_function("loader_job", |b| {
        b.iter_custom(|n| (0..n).map(|_| bench.single_run("job")).sum())
    });
    single.bench_function("local_isolated", |b| {
        b.iter_custom(|n| (0..n).map(|_| bench.local_run()).sum())
    });
    single.finish();

    let mut by_lines = flat(&mut c, "ray_batch_lines");
    for lines in LINES {
        let file = bench.lines_file(lines, "{}");
        by_lines.bench_function(lines.to_string(), |b| {
            b.iter_custom(|n| (0..n).map(|_| bench.batch("noop", &file, None)).sum())
        });
    }
    by_lines.finish();

    let mut by_parallel = flat(&mut c, "ray_batch_parallel");
    let hundred = bench.lines_file(100, "{}");
    for parallel in PARALLELISM {
        by_parallel.bench_function(parallel.to_string(), |b| {
            b.iter_custom(|n| (0..n).map(|_| bench.batch("noop", &hundred, Some(parallel))).sum())
        });
    }
    by_parallel.finish();

    let mut sleepers = flat(&mut c, "ray_batch_sleep");
    let (lines, each, parallel) = SLEEPERS;
    let file = bench.lines_file(lines, &format!(r#"{{"ms": {}}}"#, each * 1000));
    sleepers.bench_function("100x1s_parallel_2", |b| {
        b.iter_custom(|n| (0..n).map(|_| bench.batch("sleep", &file, Some(parallel))).sum())
    });
    sleepers.finish();
    c.final_summary();

    let delays: Vec<(String, Vec<f64>)> = if wanted("ray_events") {
        ["auto", "off"]
            .iter()
            .map(|listen| {
                let mut all = Vec::new();
                for _ in 0..3 {
                    all.extend(bench.event_delays(listen));
                }
                (listen.to_string(), all)
            })
            .collect()
    } else {
        Vec::new()
    };
    report(&delays);
}
