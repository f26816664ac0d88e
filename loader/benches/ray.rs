//! Runs on a Ray cluster against local runs, side by side in one criterion
//! run: the latency of a trivial action (`bench noop`) as a Ray job against
//! a local isolated run, and batch throughput (jobs a second) on Ray at
//! `--parallel` 1, 2 and 4.
//!
//! Needs a cluster: `RAY_ADDRESS` (or `RAY_API_SERVER_ADDRESS`) names its
//! Jobs API; without one the benchmark says so and does nothing. On a
//! local head in a loopback-only namespace:
//!
//! ```sh
//! tests/ray/run-in-netns.sh cargo bench -p loader --bench ray
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use loader::batch::{run_batch, BatchLine, BatchOptions, StopFlag};
use loader::events::{NullSink, RunInfo};
use loader::host::RunSettings;
use loader::isolate::{run_isolated, ChildCommand, Interrupts};
use loader::ray::{follow_job, JobsApi, PackageSpec, RayLines, StopWhen, Submitter};

/// Lines of each measured batch.
const BATCH_LINES: usize = 4;
const PARALLELISM: [usize; 3] = [1, 2, 4];

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

/// Builds the benchmark plugin (release) and returns its library.
fn bench_library() -> PathBuf {
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
    target_dir().join("fixtures").join("release").join(format!(
        "{}bench_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

fn loader_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_loader"))
}

fn submitter(api: &JobsApi, library: &Path, lines: usize) -> Submitter {
    let spec = PackageSpec {
        loader: loader_bin(),
        library: library.to_owned(),
        params: (1..=lines).map(|n| (n, "{}".to_owned())).collect::<BTreeMap<_, _>>(),
        env: BTreeMap::new(),
    };
    let (submitter, _) =
        Submitter::prepare(api.clone(), &spec, "bench", "noop").expect("the package reaches the cluster");
    submitter
}

fn job_id(what: &str) -> String {
    loader::ray::job::new_submission_id(&format!("bench-{what}"))
}

fn one_ray_job(submitter: &Submitter) -> Duration {
    let start = Instant::now();
    let id = submitter.submit(&job_id("latency"), 1).expect("the job is submitted");
    let run = RunInfo::new("bench", "noop").with_job_id(id.clone());
    follow_job(&submitter.api, &id, &run, &NullSink, &StopWhen::default()).expect("the job succeeds");
    start.elapsed()
}

fn one_local_run(library: &Path) -> Duration {
    let child = ChildCommand {
        program: loader_bin(),
        args: vec!["__child".to_owned()],
    };
    let start = Instant::now();
    run_isolated(
        &child,
        library,
        "bench",
        "noop",
        "{}",
        RunSettings::default(),
        None,
        &Interrupts::default(),
        std::sync::Arc::new(NullSink),
    )
    .expect("the local run succeeds");
    start.elapsed()
}

fn one_batch(submitter: &Submitter, parallel: usize) -> Duration {
    let lines: Vec<BatchLine> = (1..=BATCH_LINES)
        .map(|number| BatchLine {
            number,
            params: "{}".to_owned(),
        })
        .collect();
    let runner = RayLines {
        submitter: submitter.clone(),
        interrupts: Interrupts::default(),
        batch_id: job_id("batch"),
    };
    let start = Instant::now();
    let end = run_batch(
        lines,
        &runner,
        BatchOptions { parallel, retries: 0 },
        &StopFlag::default(),
        |_, _| {},
    );
    assert_eq!(end.failed, 0, "a benchmark job failed");
    start.elapsed()
}

fn estimate(id: &str) -> Option<f64> {
    let path = target_dir()
        .join("criterion")
        .join(id)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64().map(|ns| ns / 1e9)
}

fn report() {
    println!("\n| measurement | time | ratio |");
    println!("|---|---|---|");
    let local = estimate("ray_latency/local_isolated");
    let ray = estimate("ray_latency/ray_job");
    if let (Some(local), Some(ray)) = (local, ray) {
        println!("| trivial action, local isolated run | {:.2} ms | 1x |", local * 1e3);
        println!(
            "| trivial action, Ray job (submit to result) | {:.2} s | {:.0}x |",
            ray,
            ray / local
        );
    }
    let serial = estimate("ray_batch/parallel_1");
    for parallel in PARALLELISM {
        if let Some(seconds) = estimate(&format!("ray_batch/parallel_{parallel}")) {
            let speedup = serial.map(|s| s / seconds).unwrap_or(f64::NAN);
            println!(
                "| batch of {BATCH_LINES} on Ray, --parallel {parallel} | {:.2} jobs/s | {speedup:.2}x |",
                BATCH_LINES as f64 / seconds
            );
        }
    }
}

fn main() {
    let address = ["RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()));
    let Some(address) = address else {
        println!("ray benchmark skipped: no RAY_ADDRESS (run it with tests/ray/run-in-netns.sh cargo bench -p loader --bench ray)");
        return;
    };
    let api = JobsApi::new(&address);
    if let Err(e) = api.version() {
        println!("ray benchmark skipped: {e}");
        return;
    }
    let library = bench_library();
    let single = submitter(&api, &library, 1);
    let batch = submitter(&api, &library, BATCH_LINES);

    let mut c = Criterion::default()
        .output_directory(&target_dir().join("criterion"))
        .configure_from_args();
    let mut latency = c.benchmark_group("ray_latency");
    latency
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    latency.measurement_time(Duration::from_secs(1));
    latency.bench_function("local_isolated", |b| {
        b.iter_custom(|n| (0..n).map(|_| one_local_run(&library)).sum())
    });
    latency.bench_function("ray_job", |b| {
        b.iter_custom(|n| (0..n).map(|_| one_ray_job(&single)).sum())
    });
    latency.finish();

    let mut throughput = c.benchmark_group("ray_batch");
    throughput
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1));
    throughput.measurement_time(Duration::from_secs(1));
    for parallel in PARALLELISM {
        throughput.bench_function(format!("parallel_{parallel}"), |b| {
            b.iter_custom(|n| (0..n).map(|_| one_batch(&batch, parallel)).sum())
        });
    }
    throughput.finish();
    c.final_summary();
    report();
}
