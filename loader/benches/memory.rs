//! Whole-process figures of `loader run` with the flood fixture plugin
//! (tests/fixtures/flood, built here in release mode), printed as tables:
//!
//! 1. peak RSS of the loader for an action logging 5 million events,
//!    in-process and isolated, with `--events FILE` and with `--events
//!    jsonl` into /dev/null, against the goal of < 64 MB;
//! 2. events a second through the CLI for 1 million `ctx.log` calls with
//!    `--events FILE`, in both modes, against the goal of >= 2 M/s; both by
//!    wall-clock time and by the CPU time the process used (user + system),
//!    which is what a loaded machine does not distort;
//! 3. the cost of a `log` with the default sinks (terminal on stderr, here
//!    /dev/null) in-process, against the goal of <= 500 ns.
//!
//! Each figure comes from GNU time (`/usr/bin/time`) around one run; the
//! bench says so and stops if it is missing. GNU time's peak RSS is the
//! largest of the process and the children it waited for: for an isolated
//! run, the larger of the loader and the child running the plugin (for the
//! flood of events, the loader). Run with
//! `cargo bench -p loader --bench memory`; `LOADER_MEMORY_EVENTS` changes
//! the 5 million.
//!
//! To compare with another build (say, the last release) in the same run,
//! set `LOADER_MEMORY_BASELINE` to `LOADER:PLUGIN_FOLDER`: its `loader`
//! binary and a folder holding its flood fixture. The throughput and cost
//! tables then measure it too, each baseline run right after the same run
//! of this build, and give the ratio.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TIME: &str = "/usr/bin/time";
const MEMORY_GOAL_MB: f64 = 64.0;
const THROUGHPUT_GOAL: f64 = 2_000_000.0;
const LOG_COST_GOAL_NS: f64 = 500.0;
const THROUGHPUT_EVENTS: u64 = 1_000_000;

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

/// Builds the flood fixture in release mode; returns a plugin folder
/// holding only it.
fn flood_plugin_dir() -> tempfile::TempDir {
    let fixtures = target_dir().join("fixtures");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--manifest-path"])
        .arg(workspace_root().join("tests/fixtures/flood/Cargo.toml"))
        .arg("--target-dir")
        .arg(&fixtures)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the flood fixture failed");
    let library = format!(
        "{}flood_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::copy(fixtures.join("release").join(&library), dir.path().join(&library)).expect("copy the plugin");
    dir
}

/// What GNU time reported for one run.
struct Measured {
    max_rss_kb: u64,
    wall_s: f64,
    cpu_s: f64,
    exit: i32,
}

/// A `loader` binary and a folder holding the flood fixture built with it.
struct Build {
    loader: PathBuf,
    plugins: PathBuf,
}

/// The baseline build named by `LOADER_MEMORY_BASELINE`, if any.
fn baseline() -> Option<Build> {
    let value = std::env::var("LOADER_MEMORY_BASELINE").ok()?;
    let (loader, plugins) = value
        .split_once(':')
        .expect("LOADER_MEMORY_BASELINE is LOADER:PLUGIN_FOLDER");
    Some(Build {
        loader: PathBuf::from(loader),
        plugins: PathBuf::from(plugins),
    })
}

/// Runs `loader run flood log {count}` with `extra` arguments under GNU
/// time; stdout and stderr of the loader go to /dev/null.
fn measure(dir: &Path, count: u64, extra: &[&str]) -> Measured {
    let this = Build {
        loader: PathBuf::from(env!("CARGO_BIN_EXE_loader")),
        plugins: dir.to_owned(),
    };
    measure_build(&this, count, extra)
}

fn measure_build(build: &Build, count: u64, extra: &[&str]) -> Measured {
    let report = tempfile::NamedTempFile::new().expect("a temporary file");
    let params = format!("{{\"count\": {count}}}");
    let status = Command::new(TIME)
        .arg("-o")
        .arg(report.path())
        .args(["-f", "%M %e %U %S"])
        .arg(&build.loader)
        .arg("--plugins")
        .arg(&build.plugins)
        .args(["run", "flood", "log", "--params", &params])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("GNU time runs");
    let text = std::fs::read_to_string(report.path()).expect("GNU time's report");
    let last = text.lines().last().unwrap_or_default();
    let fields: Vec<f64> = last.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    assert_eq!(fields.len(), 4, "unexpected GNU time output: {text}");
    Measured {
        max_rss_kb: fields[0] as u64,
        wall_s: fields[1],
        cpu_s: fields[2] + fields[3],
        exit: status.code().unwrap_or(-1),
    }
}

fn check(ok: bool) -> &'static str {
    if ok {
        "✓"
    } else {
        "✗"
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !Path::new(TIME).exists() {
        println!("memory bench skipped: {TIME} (GNU time) is missing");
        return;
    }
    let events: u64 = std::env::var("LOADER_MEMORY_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let dir = flood_plugin_dir();
    let events_file = dir.path().join("events.jsonl");
    let events_path = events_file.to_str().expect("a UTF-8 temporary path");
    println!("load average before: {}", load_average());

    println!("\npeak RSS of the loader, {events} ctx.log events (goal < {MEMORY_GOAL_MB} MB)\n");
    println!("| mode | events to | peak RSS | exit | goal |");
    println!("|---|---|---|---|---|");
    for mode in ["--in-process", "--isolate"] {
        for (label, destination) in [("file", events_path), ("jsonl on stdout (/dev/null)", "jsonl")] {
            let m = measure(dir.path(), events, &["--events", destination, "-q", mode]);
            let mb = m.max_rss_kb as f64 / 1024.0;
            println!(
                "| {mode} | {label} | {mb:.1} MB | {} | {} |",
                m.exit,
                check(mb < MEMORY_GOAL_MB && m.exit == 0)
            );
            let _ = std::fs::remove_file(&events_file);
        }
    }

    println!(
        "\nevents a second through the CLI, {THROUGHPUT_EVENTS} ctx.log, --events FILE (goal >= {} M/s)\n",
        THROUGHPUT_GOAL / 1e6
    );
    println!("| mode | wall | by wall | CPU (user+sys) | by CPU | goal by CPU |");
    println!("|---|---|---|---|---|---|");
    let baseline = baseline();
    let mut baseline_rows = Vec::new();
    for mode in ["--in-process", "--isolate"] {
        let args = ["--events", events_path, "-q", mode];
        let m = measure(dir.path(), THROUGHPUT_EVENTS, &args);
        let _ = std::fs::remove_file(&events_file);
        let by_wall = THROUGHPUT_EVENTS as f64 / m.wall_s.max(1e-3);
        let by_cpu = THROUGHPUT_EVENTS as f64 / m.cpu_s.max(1e-3);
        println!(
            "| {mode} | {:.2} s | {:.2} M/s | {:.2} s | {:.2} M/s | {} |",
            m.wall_s,
            by_wall / 1e6,
            m.cpu_s,
            by_cpu / 1e6,
            check(by_cpu >= THROUGHPUT_GOAL)
        );
        if let Some(base) = &baseline {
            let b = measure_build(base, THROUGHPUT_EVENTS, &args);
            let _ = std::fs::remove_file(&events_file);
            baseline_rows.push(format!(
                "| {mode} | {:.2} s | {:.2} s | {:.2}x | {:.2} s | {:.2} s | {:.2}x |",
                b.wall_s,
                m.wall_s,
                b.wall_s / m.wall_s.max(1e-3),
                b.cpu_s,
                m.cpu_s,
                b.cpu_s / m.cpu_s.max(1e-3)
            ));
        }
    }

    println!("\na ctx.log with the default sinks (terminal on stderr), in-process (goal <= {LOG_COST_GOAL_NS} ns)\n");
    let quiet = measure(dir.path(), THROUGHPUT_EVENTS, &["-q", "--in-process"]);
    let terminal = measure(dir.path(), THROUGHPUT_EVENTS, &["--in-process"]);
    if let Some(base) = &baseline {
        for (label, args, this) in [
            ("default sinks, --in-process", &["--in-process"][..], &terminal),
            ("none (-q), --in-process", &["-q", "--in-process"][..], &quiet),
        ] {
            let b = measure_build(base, THROUGHPUT_EVENTS, args);
            baseline_rows.push(format!(
                "| {label} | {:.2} s | {:.2} s | {:.2}x | {:.2} s | {:.2} s | {:.2}x |",
                b.wall_s,
                this.wall_s,
                b.wall_s / this.wall_s.max(1e-3),
                b.cpu_s,
                this.cpu_s,
                b.cpu_s / this.cpu_s.max(1e-3)
            ));
        }
    }
    let per_log = |m: &Measured| m.cpu_s * 1e9 / THROUGHPUT_EVENTS as f64;
    println!("| sinks | CPU a log (whole process) | wall a log | goal |");
    println!("|---|---|---|---|");
    println!(
        "| terminal on stderr | {:.0} ns | {:.0} ns | {} |",
        per_log(&terminal),
        terminal.wall_s * 1e9 / THROUGHPUT_EVENTS as f64,
        check(per_log(&terminal) <= LOG_COST_GOAL_NS)
    );
    println!(
        "| none (-q) | {:.0} ns | {:.0} ns | |",
        per_log(&quiet),
        quiet.wall_s * 1e9 / THROUGHPUT_EVENTS as f64
    );
    if !baseline_rows.is_empty() {
        println!("\n1 M ctx.log, the baseline build against this one, each pair run one after the other\n");
        println!("| run | baseline wall | this wall | speed-up | baseline CPU | this CPU | speed-up |");
        println!("|---|---|---|---|---|---|---|");
        for row in baseline_rows {
            println!("{row}");
        }
    }
    println!("\nload average after: {}", load_average());
}
