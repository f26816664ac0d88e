//! Benchmarks of the runtime against its references, all in one run:
//!
//! 1. a context call from plugin code through the vtable of a loaded cdylib,
//!    against a direct Rust call in the host and a raw `extern "C"` function
//!    pointer looked up with libloading (`is_cancelled`, and `log` with a
//!    small JSON payload into a sink that drops events);
//! 2. `set_progress` called on every iteration with the terminal and JSONL
//!    sinks on (coalesced in the host);
//! 3. `log` events a second into a JSONL file, end to end;
//! 4. scanning and loading a folder of N plugins against a raw dlopen +
//!    symbol look-up of the same files (each sample in a fresh process, since
//!    a library once loaded stays loaded);
//! 5. the same context calls made by a separate process over JSON lines on
//!    stdin/stdout, the way process-based plugin systems work;
//! 6. the cost of `--isolate` per run and per event.
//!
//! After criterion's own report it prints a table of the ratios, computed
//! from the estimates criterion saved in this run, and the peak memory of
//! `loader list` over 100 plugins. Run with `cargo bench -p loader`.

use std::ffi::c_void;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use loader::discovery::{Discovery, LoadedPlugin};
use loader::events::{
    Event, EventKind, EventSink, FanOut, Flush, JsonlSink, NullSink, RunInfo, TerminalOptions, TerminalSink,
};
use loader::host::{RunHost, RunSettings};
use loader::isolate::{run_isolated, ChildCommand, Interrupts};
use loader::runner::run_action;
use plugin_api::ffi::host_side::ContextHost;

/// Set in a child process started by the discovery benchmark.
const CHILD_MODE: &str = "LOADER_BENCH_CHILD";
const DISCOVERY_SIZES: [usize; 3] = [1, 10, 100];

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

struct Fixtures {
    plugin: LoadedPlugin,
    library: PathBuf,
    peer: PathBuf,
    _library_handle: libloading::Library,
    raw_cheap_loop: RawCheapLoop,
    raw_log_loop: RawLogLoop,
}

type RawCheapLoop = extern "C" fn(extern "C" fn(*const c_void) -> bool, *const c_void, u64) -> u64;
type RawLogCallback = extern "C" fn(*const c_void, *const u8, usize, *const u8, usize);
type RawLogLoop = extern "C" fn(RawLogCallback, *const c_void, u64);

fn build_fixtures() -> Fixtures {
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
    assert!(status.success(), "building the benchmark fixtures failed");
    let release = target_dir().join("fixtures").join("release");
    let library = release.join(format!(
        "{}bench_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let discovery = Discovery::load_files(std::slice::from_ref(&library));
    let plugin = discovery
        .plugins
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("bench plugin: {:?}", discovery.problems));
    // SAFETY: the library is the bench plugin just built from this
    // repository (already loaded above, so this only takes a reference);
    // the symbols are its `#[no_mangle]` raw loops, whose signatures are the
    // types named here.
    let (handle, raw_cheap_loop, raw_log_loop) = unsafe {
        let handle = libloading::Library::new(&library).expect("the bench plugin opens");
        let cheap = *handle
            .get::<RawCheapLoop>(b"bench_raw_cheap_loop\0")
            .expect("bench_raw_cheap_loop");
        let log = *handle
            .get::<RawLogLoop>(b"bench_raw_log_loop\0")
            .expect("bench_raw_log_loop");
        (handle, cheap, log)
    };
    Fixtures {
        plugin,
        library,
        peer: release.join("jsonl-peer"),
        _library_handle: handle,
        raw_cheap_loop,
        raw_log_loop,
    }
}

fn null_sink() -> Arc<dyn EventSink> {
    Arc::new(NullSink)
}

fn run_info() -> RunInfo {
    RunInfo::new("bench", "bench")
}

/// Runs a counting action of the bench plugin in-process and returns its duration.
fn timed_action(fixtures: &Fixtures, action: &str, count: u64, sink: Arc<dyn EventSink>) -> Duration {
    let params = format!(r#"{{"count": {count}}}"#);
    let start = Instant::now();
    let outcome = run_action(&fixtures.plugin, action, &params, RunSettings::default(), None, sink);
    let elapsed = start.elapsed();
    outcome.expect("the bench action succeeds");
    elapsed
}

extern "C" fn raw_is_cancelled(state: *const c_void) -> bool {
    // SAFETY: `state` is the `RunHost` the benchmark passes in, alive for the
    // whole loop.
    unsafe { &*state.cast::<RunHost>() }.is_cancelled()
}

extern "C" fn raw_log(state: *const c_void, event: *const u8, event_len: usize, data: *const u8, data_len: usize) {
    // SAFETY: as in `raw_is_cancelled`; the byte slices are UTF-8 strings the
    // plugin's loop keeps alive during the call.
    let (host, event, data) = unsafe {
        (
            &*state.cast::<RunHost>(),
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(event, event_len)),
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(data, data_len)),
        )
    };
    host.log(event, data, None)
}

fn context_calls(c: &mut Criterion, fixtures: &Fixtures) {
    let host = Arc::new(RunHost::new(run_info(), RunSettings::default(), null_sink()));
    let state = Arc::as_ptr(&host).cast::<c_void>();

    let mut group = c.benchmark_group("1_context_call_is_cancelled");
    group.bench_function("direct_host_call", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(black_box(&host).is_cancelled());
            }
            start.elapsed()
        })
    });
    group.bench_function("raw_fn_pointer", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            black_box((fixtures.raw_cheap_loop)(raw_is_cancelled, state, iters));
            start.elapsed()
        })
    });
    group.bench_function("plugin_vtable", |b| {
        b.iter_custom(|iters| timed_action(fixtures, "cheap_calls", iters, null_sink()))
    });
    group.finish();

    let mut group = c.benchmark_group("1_context_call_log");
    group.bench_function("direct_host_call", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                let data = serde_json::json!({ "i": i, "loss": 0.25 }).to_string();
                host.log("tick", &data, None);
            }
            start.elapsed()
        })
    });
    group.bench_function("raw_fn_pointer", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            (fixtures.raw_log_loop)(raw_log, state, iters);
            start.elapsed()
        })
    });
    group.bench_function("plugin_vtable", |b| {
        b.iter_custom(|iters| timed_action(fixtures, "log_calls", iters, null_sink()))
    });
    group.finish();
}

/// Counts the progress events a run emits, and remembers the last one.
#[derive(Default)]
struct ProgressCounter {
    count: AtomicU64,
    last_current: AtomicU64,
}

impl EventSink for ProgressCounter {
    fn emit(&self, _: &RunInfo, event: &Event) {
        if event.kind == EventKind::Progress {
            self.count.fetch_add(1, Ordering::Relaxed);
            self.last_current
                .store(event.data["current"].as_u64().unwrap_or(0), Ordering::Relaxed);
        }
    }
}

fn progress_sinks(counter: Arc<ProgressCounter>) -> Arc<dyn EventSink> {
    let terminal = TerminalSink::new(
        std::io::sink(),
        TerminalOptions {
            tty: true,
            color: true,
            verbose: false,
        },
    );
    let jsonl = JsonlSink::new(std::io::sink(), Flush::Buffered);
    Arc::new(FanOut::new().with(terminal).with(jsonl).with(counter))
}

fn progress(c: &mut Criterion, fixtures: &Fixtures) -> (u64, u64, Duration) {
    let mut group = c.benchmark_group("2_progress_every_iteration");
    group.bench_function("set_progress_terminal_and_jsonl", |b| {
        b.iter_custom(|iters| timed_action(fixtures, "progress_calls", iters, progress_sinks(Arc::default())))
    });
    group.finish();
    let counter = Arc::new(ProgressCounter::default());
    let elapsed = timed_action(fixtures, "progress_calls", 1_000_000, progress_sinks(counter.clone()));
    (
        counter.count.load(Ordering::Relaxed),
        counter.last_current.load(Ordering::Relaxed),
        elapsed,
    )
}

fn throughput(c: &mut Criterion, fixtures: &Fixtures) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut group = c.benchmark_group("3_event_throughput");
    group.throughput(Throughput::Elements(1));
    group.bench_function("log_to_jsonl_file", |b| {
        b.iter_custom(|iters| {
            let file = std::fs::File::create(dir.path().join("events.jsonl")).expect("an events file");
            let sink: Arc<dyn EventSink> = Arc::new(JsonlSink::new(file, Flush::Buffered));
            timed_action(fixtures, "log_calls", iters, sink)
        })
    });
    group.finish();
}

/// A folder with `n` copies of the bench plugin under different names.
fn plugin_folder(library: &Path, n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for i in 0..n {
        let name = format!(
            "{}bench_copy_{i:03}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        std::fs::copy(library, dir.path().join(name)).expect("copy the bench plugin");
    }
    dir
}

/// Starts this benchmark binary as a child that loads `dir` one way and
/// reports how long that took, in nanoseconds.
fn child_scan(mode: &str, dir: &Path) -> Duration {
    let output = Command::new(std::env::current_exe().expect("the bench binary"))
        .env(CHILD_MODE, format!("{mode}:{}", dir.display()))
        .output()
        .expect("the child runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let nanos: u64 = text.trim().parse().unwrap_or_else(|_| {
        panic!(
            "child {mode} printed {text:?}, stderr {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Duration::from_nanos(nanos)
}

fn child_main(mode: &str) {
    let (kind, dir) = mode.split_once(':').expect("MODE:DIR");
    let dir = Path::new(dir);
    let start = Instant::now();
    match kind {
        "scan" => {
            let discovery = Discovery::scan(dir).expect("scan");
            assert!(!discovery.plugins.is_empty());
        }
        "raw" => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .expect("read_dir")
                .map(|e| e.expect("entry").path())
                .collect();
            files.sort();
            for file in files {
                // SAFETY: the files are copies of the bench plugin; looking up
                // a symbol reads nothing through it.
                unsafe {
                    let library = libloading::Library::new(&file).expect("dlopen");
                    library
                        .get::<*const c_void>(abi_stable::library::ROOT_MODULE_LOADER_NAME_WITH_NUL.as_bytes())
                        .expect("dlsym");
                    std::mem::forget(library);
                }
            }
        }
        other => panic!("unknown child mode {other}"),
    }
    println!("{}", start.elapsed().as_nanos());
}

fn discovery(c: &mut Criterion, fixtures: &Fixtures) -> tempfile::TempDir {
    let folders: Vec<(usize, tempfile::TempDir)> = DISCOVERY_SIZES
        .iter()
        .map(|&n| (n, plugin_folder(&fixtures.library, n)))
        .collect();
    let mut group = c.benchmark_group("4_discovery");
    group.sample_size(10);
    for (n, dir) in &folders {
        group.bench_with_input(BenchmarkId::new("raw_dlopen_dlsym", n), dir, |b, dir| {
            b.iter_custom(|iters| (0..iters).map(|_| child_scan("raw", dir.path())).sum())
        });
        group.bench_with_input(BenchmarkId::new("loader_scan", n), dir, |b, dir| {
            b.iter_custom(|iters| (0..iters).map(|_| child_scan("scan", dir.path())).sum())
        });
    }
    group.finish();
    folders.into_iter().last().expect("a folder").1
}

/// Answers the JSON-lines peer's calls as a process-based host would.
fn peer_run(peer: &Path, kind: &str, count: u64, host: &RunHost) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(peer)
        .args([kind, &count.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the peer starts");
    let mut answers = child.stdin.take().expect("stdin");
    let requests = BufReader::new(child.stdout.take().expect("stdout"));
    for line in requests.lines() {
        let line = line.expect("a request");
        let request: serde_json::Value = serde_json::from_str(&line).expect("a JSON request");
        let answer = match request["call"].as_str() {
            Some("is_cancelled") => serde_json::json!({ "result": host.is_cancelled() }),
            Some("log") => {
                host.log("tick", &request["data"].to_string(), None);
                serde_json::json!({ "result": null })
            }
            _ => break,
        };
        writeln!(answers, "{answer}")
            .and_then(|_| answers.flush())
            .expect("answer the peer");
    }
    drop(answers);
    child.wait().expect("the peer ends");
    start.elapsed()
}

fn peer(c: &mut Criterion, fixtures: &Fixtures) {
    let host = RunHost::new(run_info(), RunSettings::default(), null_sink());
    let mut group = c.benchmark_group("5_peer_process_jsonl");
    group.sample_size(10);
    group.bench_function("is_cancelled", |b| {
        b.iter_custom(|iters| peer_run(&fixtures.peer, "cheap", iters, &host))
    });
    group.bench_function("log", |b| {
        b.iter_custom(|iters| peer_run(&fixtures.peer, "log", iters, &host))
    });
    group.finish();
}

fn isolated(fixtures: &Fixtures, action: &str, params: &str) -> Duration {
    let child = ChildCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_loader")),
        args: vec!["__child".to_owned()],
    };
    let start = Instant::now();
    let outcome = run_isolated(
        &child,
        &fixtures.library,
        "bench",
        action,
        params,
        RunSettings::default(),
        None,
        &Interrupts::default(),
        null_sink(),
    );
    let elapsed = start.elapsed();
    outcome.expect("the isolated action succeeds");
    elapsed
}

fn isolation(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = c.benchmark_group("6_isolation_per_run");
    group.sample_size(20);
    group.bench_function("in_process", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let start = Instant::now();
                    run_action(
                        &fixtures.plugin,
                        "noop",
                        "{}",
                        RunSettings::default(),
                        None,
                        null_sink(),
                    )
                    .expect("noop");
                    start.elapsed()
                })
                .sum()
        })
    });
    group.bench_function("isolated", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| isolated(fixtures, "noop", "{}")).sum())
    });
    group.finish();

    let mut group = c.benchmark_group("6_isolation_per_event");
    group.sample_size(10);
    group.bench_function("in_process", |b| {
        b.iter_custom(|iters| timed_action(fixtures, "log_calls", iters, null_sink()))
    });
    group.bench_function("isolated", |b| {
        b.iter_custom(|iters| isolated(fixtures, "log_calls", &format!(r#"{{"count": {iters}}}"#)))
    });
    group.finish();
}

/// The peak resident memory of `loader list` over `dir`, in KiB, measured
/// with `/usr/bin/time` when the machine has it.
fn list_peak_memory(dir: &Path) -> Option<u64> {
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_loader"))
        .arg("--plugins")
        .arg(dir)
        .args(["list", "--json"])
        .stdout(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

/// The mean time per iteration criterion estimated in this run, in ns.
fn estimate(path: &str) -> Option<f64> {
    let file = target_dir()
        .join("criterion")
        .join(path)
        .join("new")
        .join("estimates.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn row(what: &str, value: Option<f64>, reference: Option<f64>, reference_name: &str) {
    match (value, reference) {
        (Some(v), Some(r)) => println!(
            "| {what} | {} | {} ({reference_name}) | {:.2}x |",
            human(v),
            human(r),
            v / r
        ),
        (Some(v), None) => println!("| {what} | {} | | |", human(v)),
        _ => {}
    }
}

fn human(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

fn report(progress: Option<(u64, u64, Duration)>, memory: Option<u64>) {
    println!("\n## Summary (ratios from this run's criterion estimates)\n");
    println!("| measurement | time | reference | ratio |");
    println!("|---|---|---|---|");
    for call in ["is_cancelled", "log"] {
        let group = format!("1_context_call_{call}");
        let vtable = estimate(&format!("{group}/plugin_vtable"));
        row(
            &format!("`{call}` through the plugin vtable"),
            vtable,
            estimate(&format!("{group}/raw_fn_pointer")),
            "raw extern \"C\" fn pointer",
        );
        row(
            &format!("`{call}` through the plugin vtable"),
            vtable,
            estimate(&format!("{group}/direct_host_call")),
            "direct Rust call",
        );
    }
    let per_progress = estimate("2_progress_every_iteration/set_progress_terminal_and_jsonl");
    row(
        "`set_progress` per call, terminal + JSONL sinks on",
        per_progress,
        Some(50.0),
        "the 50 ns target",
    );
    if let Some(ns) = estimate("3_event_throughput/log_to_jsonl_file") {
        println!(
            "| `log` into a JSONL file | {} per event = {:.2} M events/s | 1 M events/s (target) | {:.2}x |",
            human(ns),
            1e3 / ns,
            1e3 / ns
        );
    }
    for n in DISCOVERY_SIZES {
        row(
            &format!("scan + load {n} plugins"),
            estimate(&format!("4_discovery/loader_scan/{n}")),
            estimate(&format!("4_discovery/raw_dlopen_dlsym/{n}")),
            "raw dlopen + dlsym",
        );
    }
    for call in ["is_cancelled", "log"] {
        row(
            &format!("`{call}` from a JSON-lines peer process"),
            estimate(&format!("5_peer_process_jsonl/{call}")),
            estimate(&format!("1_context_call_{call}/plugin_vtable")),
            "plugin vtable",
        );
    }
    row(
        "a run with `--isolate` (noop action)",
        estimate("6_isolation_per_run/isolated"),
        estimate("6_isolation_per_run/in_process"),
        "in-process run",
    );
    row(
        "a `log` event with `--isolate`",
        estimate("6_isolation_per_event/isolated"),
        estimate("6_isolation_per_event/in_process"),
        "in-process",
    );
    if let Some((events, last, elapsed)) = progress {
        println!(
            "\n1,000,000 `set_progress` calls took {:.1} ms and emitted {events} progress events; the last one reported current = {last}.",
            elapsed.as_secs_f64() * 1e3
        );
    }
    match memory {
        Some(kib) => println!(
            "Peak memory of `loader list` over 100 plugins: {:.1} MiB.",
            kib as f64 / 1024.0
        ),
        None => println!("Peak memory of `loader list`: not measured (/usr/bin/time is missing)."),
    }
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD_MODE) {
        child_main(&mode);
        return;
    }
    let fixtures = build_fixtures();
    let mut c = Criterion::default()
        .output_directory(&target_dir().join("criterion"))
        .configure_from_args();
    context_calls(&mut c, &fixtures);
    let progress_counts = progress(&mut c, &fixtures);
    throughput(&mut c, &fixtures);
    let hundred = discovery(&mut c, &fixtures);
    peer(&mut c, &fixtures);
    isolation(&mut c, &fixtures);
    c.final_summary();
    report(Some(progress_counts), list_peak_memory(hundred.path()));
}
