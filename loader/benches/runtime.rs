//! Benchmarks of the runtime against its references, all in one run:
//!
//! 1. a context call from plugin code through the vtable of a loaded cdylib,
//!    against a direct Rust call in the host and a raw `extern "C"` function
//!    pointer looked up with libloading (`is_cancelled`, and `log` with a
//!    small JSON payload into a sink that drops events);
//! 2. `set_progress` called on every iteration with the terminal and JSONL
//!    sinks on (coalesced in the host);
//! 3. `log` events a second into a JSONL file, end to end;
//! 4. `loader list` over a folder of N distinct plugins (copies of the bench
//!    plugin, each with its own code patched into its library), cold (an
//!    empty manifest cache) and warm, against a raw dlopen + symbol look-up
//!    of the same files, and `loader run` of one plugin in a folder of 100
//!    against the same plugin alone: whole processes, spawned;
//! 5. the same context calls made by a separate process over JSON lines on
//!    stdin/stdout, the way process-based plugin systems work;
//! 6. the cost of `--isolate` per run and per event;
//! 7. the CLI end to end, whole processes, in both modes: 1 M `log` calls
//!    into `--events FILE`, and with the default sinks (terminal on stderr);
//! 8. the time from spawning `loader run … --events jsonl` to the first line
//!    of an action that keeps running, isolated against in-process, and
//!    (isolated) from the event's emission, by its `timestamp`, to the
//!    reader.
//!
//! After criterion's own report it prints a table of the figures with their
//! goals, computed from the estimates criterion saved in this run, and the
//! peak memory of `loader list` over 100 plugins. Run with
//! `cargo bench -p loader`.

use std::ffi::c_void;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use loader::events::{
    Event, EventKind, EventSink, FanOut, Flush, JsonlSink, NullSink, RunInfo, TerminalOptions, TerminalSink,
};
use loader::find::discovery::{Discovery, LoadedPlugin};
use loader::isolate::{run_isolated, ChildCommand, Interrupts};
use loader::run::host::{RunHost, RunSettings};
use loader::run::runner::run_action;
use plugin_api::host::ClientKind;
use plugin_api::host::ContextHost;
use plugin_api::RuntimeContext;

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

/// A host that does nothing: what a context call costs on the plugin's side
/// alone (plugin-api and the vtable), with nothing done for it. With
/// `off_thread`, it takes log entries off the caller's thread, as the
/// loader does (plugin-api's log queue then runs).
struct IdleHost {
    off_thread: bool,
}

impl ContextHost for IdleHost {
    fn set_progress(&self, _: u64, _: u64, _: Option<&str>) -> Result<(), String> {
        Ok(())
    }
    fn set_metrics(&self, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn log(&self, _: &str, _: &str, _: Option<&str>) {}
    fn log_message(&self, _: &str, _: &str) {}
    fn log_dev_event(&self, _: &str, _: Option<&str>) {}
    fn env_json(&self) -> String {
        "{}".to_owned()
    }
    fn job_id(&self) -> Option<String> {
        None
    }
    fn checkpoint_json(&self) -> Option<String> {
        None
    }
    fn is_cancelled(&self) -> bool {
        false
    }
    fn has_client(&self, _: ClientKind) -> bool {
        false
    }
    fn client_request(&self, _: ClientKind, _: &str) -> Result<String, String> {
        Err("no client".to_owned())
    }
    fn log_entry(&self, entry_json: &str) -> Result<(), String> {
        black_box(entry_json);
        Ok(())
    }
    fn logs_off_thread(&self) -> bool {
        self.off_thread
    }
    fn log_entry_at(&self, entry_json: &str, unix_nanos: u64) -> Result<(), String> {
        black_box((entry_json, unix_nanos));
        Ok(())
    }
}

/// The fixed share of a `log` call, which no host can save: the plugin's
/// own `json!` value alone and with that value's JSON text, and the whole
/// call through plugin-api and the vtable to a host that does nothing,
/// during the call and off the caller's thread (the book's comparison with
/// the Python original reads these).
fn plugin_side_of_log(c: &mut Criterion) {
    let mut group = c.benchmark_group("1_plugin_side_of_log");
    group.bench_function("json_value_alone", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                black_box(serde_json::json!({ "i": i, "loss": 0.25 }));
            }
            start.elapsed()
        })
    });
    group.bench_function("json_value_and_its_text", |b| {
        let mut text = Vec::with_capacity(256);
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                let data = serde_json::json!({ "i": i, "loss": 0.25 });
                text.clear();
                serde_json::to_writer(&mut text, &data).expect("a JSON value serialises");
                black_box(&text);
            }
            start.elapsed()
        })
    });
    for (name, off_thread) in [
        ("ctx_log_to_an_idle_host", false),
        ("ctx_log_to_an_idle_host_off_thread", true),
    ] {
        group.bench_function(name, |b| {
            let ctx = RuntimeContext::with_host(Arc::new(IdleHost { off_thread }));
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    ctx.log("tick", serde_json::json!({ "i": i, "loss": 0.25 }), None)
                        .expect("the idle host takes every entry");
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

/// The caller's side of `ctx.log` (the goal: 100 ns, building the
/// `json!` value included): the loop timed from inside the plugin, in each
/// mode and with each set of sinks, beside two raw hand-overs measured
/// here: the same value pushed on a `Vec` (handed to another thread to be
/// dropped when full) and sent on a `crossbeam` queue drained by another
/// thread.
fn callers_side_of_log(c: &mut Criterion, fixtures: &Fixtures) {
    let mut group = c.benchmark_group("1_callers_side_of_log");
    group.bench_function("anchor_vec_push", |b| {
        let (full, dropper) = crossbeam_channel::bounded::<Vec<serde_json::Value>>(2);
        let drops = std::thread::spawn(move || dropper.iter().for_each(drop));
        b.iter_custom(|iters| {
            let mut values = Vec::with_capacity(4096);
            let start = Instant::now();
            for i in 0..iters {
                values.push(serde_json::json!({ "i": i, "loss": 0.25 }));
                if values.len() == 4096 {
                    full.send(std::mem::replace(&mut values, Vec::with_capacity(4096)))
                        .expect("the dropping thread runs");
                }
            }
            let elapsed = start.elapsed();
            full.send(values).expect("the dropping thread runs");
            elapsed
        });
        drop(full);
        drops.join().expect("the dropping thread ends");
    });
    group.bench_function("anchor_crossbeam_push", |b| {
        let (queue, reader) = crossbeam_channel::unbounded::<serde_json::Value>();
        let reads = std::thread::spawn(move || reader.iter().for_each(drop));
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                queue
                    .send(serde_json::json!({ "i": i, "loss": 0.25 }))
                    .expect("the reading thread runs");
            }
            start.elapsed()
        });
        drop(queue);
        reads.join().expect("the reading thread ends");
    });
    let events = EventsFiles::default();
    group.sample_size(20);
    for (sinks, make) in CALLER_SINKS {
        for (mode, isolated) in [("in_process", false), ("isolated", true)] {
            group.bench_function(BenchmarkId::new(mode, sinks), |b| {
                b.iter_custom(|iters| {
                    callers_time(iters, |count| {
                        let sink = make(&events.next());
                        timed_run(fixtures, isolated, "timed_log_calls", count, sink)["loop_nanos"].as_u64()
                    })
                })
            });
        }
    }
    group.finish();
    let mut group = c.benchmark_group("1_callers_side_of_other_calls");
    group.sample_size(20);
    for call in ["log_message", "log_dev_event", "set_metrics", "set_progress"] {
        for (mode, isolated) in [("in_process", false), ("isolated", true)] {
            group.bench_function(BenchmarkId::new(mode, call), |b| {
                b.iter_custom(|iters| {
                    callers_time(iters, |count| {
                        let sink = terminal_and_file_sinks(&events.next());
                        timed_run(fixtures, isolated, "timed_other_calls", count, sink)[call].as_u64()
                    })
                })
            });
        }
    }
    group.finish();
}

/// The calls of one timed loop in the plugin: as the issue's measure, 100 k
/// calls whole loop divided by the count.
const CALLER_LOOP: u64 = 100_000;

/// `iters` calls' worth of the caller's time, from loops of
/// [`CALLER_LOOP`] calls each timed inside the plugin by `run_loop`.
fn callers_time(iters: u64, mut run_loop: impl FnMut(u64) -> Option<u64>) -> Duration {
    let runs = iters.div_ceil(CALLER_LOOP);
    let nanos: u64 = (0..runs)
        .map(|_| run_loop(CALLER_LOOP).expect("the action reports its loop's time"))
        .sum();
    Duration::from_nanos((nanos as u128 * iters as u128 / (runs * CALLER_LOOP) as u128) as u64)
}

/// A fresh `--events` file path for each run (a run's file stays locked
/// until its last reference, which the plugin's log thread may hold a
/// moment after the run, is gone).
#[derive(Default)]
struct EventsFiles {
    dir: std::sync::OnceLock<tempfile::TempDir>,
    count: AtomicU64,
}

impl EventsFiles {
    fn next(&self) -> PathBuf {
        let dir = self
            .dir
            .get_or_init(|| tempfile::tempdir().expect("a temporary folder"));
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        dir.path().join(format!("events-{n}.jsonl"))
    }
}

/// Runs a timing action in one mode with `count` and returns its result.
fn timed_run(
    fixtures: &Fixtures,
    isolated: bool,
    action: &str,
    count: u64,
    sink: Arc<dyn EventSink>,
) -> serde_json::Value {
    if isolated {
        isolated_result(fixtures, action, &format!(r#"{{"count": {count}}}"#), sink)
    } else {
        timed_action_result(fixtures, action, count, sink)
    }
}

/// The sink sets of the caller's-side benchmark: none that writes, the
/// terminal, a `--events` file, and both.
/// Makes a set of sinks, given a fresh `--events` file path.
type MakeSinks = fn(&Path) -> Arc<dyn EventSink>;

const CALLER_SINKS: [(&str, MakeSinks); 4] = [
    ("no_sink", |_| null_sink()),
    ("terminal", |_| terminal_sink()),
    ("events_file", events_file_sink),
    ("terminal_and_events_file", terminal_and_file_sinks),
];

fn terminal_sink() -> Arc<dyn EventSink> {
    Arc::new(TerminalSink::new(
        std::io::sink(),
        TerminalOptions {
            tty: false,
            color: false,
            verbose: false,
        },
    ))
}

/// A `--events FILE` sink as the CLI makes it (a shared mapping of the file).
fn events_file_sink(path: &Path) -> Arc<dyn EventSink> {
    let file = loader::events::file::open_events_file(path).expect("the events file opens");
    Arc::new(loader::events::file::MappedJsonlSink::new(file.file))
}

fn terminal_and_file_sinks(path: &Path) -> Arc<dyn EventSink> {
    Arc::new(FanOut::new().with(terminal_sink()).with(events_file_sink(path)))
}

fn timed_action_result(fixtures: &Fixtures, action: &str, count: u64, sink: Arc<dyn EventSink>) -> serde_json::Value {
    let params = format!(r#"{{"count": {count}}}"#);
    run_action(&fixtures.plugin, action, &params, RunSettings::default(), None, sink)
        .expect("the bench action succeeds")
}

fn isolated_result(fixtures: &Fixtures, action: &str, params: &str, sink: Arc<dyn EventSink>) -> serde_json::Value {
    let child = ChildCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_loader")),
        args: vec!["__child".to_owned()],
    };
    run_isolated(
        &child,
        &fixtures.library,
        "bench",
        action,
        params,
        RunSettings::default(),
        None,
        &Interrupts::default(),
        sink,
    )
    .expect("the isolated action succeeds")
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

/// Overwrites the bench plugin's code after its `PLUGINCODE:` marker (a
/// 32-byte NUL-padded slot), making the library a distinct plugin.
fn patch_code(bytes: &mut [u8], code: &str) {
    let marker = b"PLUGINCODE:";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the bench plugin's code marker")
        + marker.len();
    let slot = &mut bytes[at..at + 32];
    slot.fill(0);
    slot[..code.len()].copy_from_slice(code.as_bytes());
}

/// The code of the `i`-th generated plugin.
fn generated_code(i: usize) -> String {
    format!("bench-{i:03}")
}

/// A folder of `n` distinct plugins: copies of the bench plugin, each with
/// its own code (`bench-000`, ...) patched into its library.
fn plugin_folder(library: &Path, n: usize) -> tempfile::TempDir {
    plugin_folder_of(library, 0..n)
}

fn plugin_folder_of(library: &Path, indices: impl Iterator<Item = usize>) -> tempfile::TempDir {
    let bytes = std::fs::read(library).expect("the bench plugin");
    let dir = tempfile::tempdir().expect("a temporary folder");
    for i in indices {
        let code = generated_code(i);
        let mut copy = bytes.clone();
        patch_code(&mut copy, &code);
        let name = format!(
            "{}{}{}",
            std::env::consts::DLL_PREFIX,
            code,
            std::env::consts::DLL_SUFFIX
        );
        std::fs::write(dir.path().join(name), copy).expect("write a plugin copy");
    }
    dir
}

/// The `loader` CLI with its manifest cache in `cache_home`.
fn loader_cli(cache_home: &Path, dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loader"));
    command
        .env("XDG_CACHE_HOME", cache_home)
        .arg("--plugins")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Runs a command to its end and returns how long the whole process took.
fn whole_process(command: &mut Command) -> Duration {
    let start = Instant::now();
    let status = command.status().expect("the process runs");
    let elapsed = start.elapsed();
    assert!(status.success(), "{command:?} failed: {status}");
    elapsed
}

/// Starts this benchmark binary as a child that dlopens every library of
/// `dir` and looks up the plugin symbol, the least a loader can do, and
/// returns how long the whole process took.
fn raw_dlopen_process(dir: &Path) -> Duration {
    whole_process(
        Command::new(std::env::current_exe().expect("the bench binary"))
            .env(CHILD_MODE, format!("raw:{}", dir.display()))
            .stdout(Stdio::null()),
    )
}

fn child_main(mode: &str) {
    let (kind, dir) = mode.split_once(':').expect("MODE:DIR");
    assert_eq!(kind, "raw", "unknown child mode {kind}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for file in files {
        // SAFETY: the files are copies of the bench plugin; looking up a
        // symbol reads nothing through it.
        unsafe {
            let library = libloading::Library::new(&file).expect("dlopen");
            library
                .get::<*const c_void>(abi_stable::library::ROOT_MODULE_LOADER_NAME_WITH_NUL.as_bytes())
                .expect("dlsym");
            std::mem::forget(library);
        }
    }
}

/// The plugin folders of the discovery benchmark, with a cache folder whose
/// caches are warm for each of them.
struct DiscoveryFolders {
    cache_home: tempfile::TempDir,
    by_size: Vec<(usize, tempfile::TempDir)>,
    /// The plugin `run` is timed with, alone in its folder.
    alone: tempfile::TempDir,
    /// The bench plugin (code `bench`) alone, for the events benchmarks.
    bench: tempfile::TempDir,
}

/// The plugin of the folder of 100 that `run` is timed with.
const RUN_INDEX: usize = 50;

impl DiscoveryFolders {
    fn new(library: &Path) -> Self {
        let folders = Self {
            cache_home: tempfile::tempdir().expect("a cache folder"),
            by_size: DISCOVERY_SIZES
                .iter()
                .map(|&n| (n, plugin_folder(library, n)))
                .collect(),
            alone: plugin_folder_of(library, RUN_INDEX..RUN_INDEX + 1),
            bench: plugin_dir_of(library),
        };
        // Past the manifest cache's racy margin, a scan records the files
        // for good: prime every folder's cache.
        std::thread::sleep(loader::find::manifest_cache::RACY_MARGIN + Duration::from_millis(100));
        for dir in folders
            .by_size
            .iter()
            .map(|(_, dir)| dir)
            .chain([&folders.alone, &folders.bench])
        {
            whole_process(loader_cli(folders.cache_home.path(), dir.path()).arg("list"));
        }
        folders
    }

    fn hundred(&self) -> &Path {
        self.by_size.last().expect("a folder").1.path()
    }
}

fn discovery(c: &mut Criterion, fixtures: &Fixtures) -> DiscoveryFolders {
    let folders = DiscoveryFolders::new(&fixtures.library);
    let cache_home = folders.cache_home.path();
    let mut group = c.benchmark_group("4_discovery");
    group.sample_size(10);
    for (n, dir) in &folders.by_size {
        let dir = dir.path();
        group.bench_with_input(BenchmarkId::new("raw_dlopen_dlsym", n), dir, |b, dir| {
            b.iter_custom(|iters| (0..iters).map(|_| raw_dlopen_process(dir)).sum())
        });
        group.bench_with_input(BenchmarkId::new("loader_list_cold", n), dir, |b, dir| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let empty_cache = tempfile::tempdir().expect("an empty cache folder");
                        whole_process(loader_cli(empty_cache.path(), dir).arg("list"))
                    })
                    .sum()
            })
        });
        group.bench_with_input(BenchmarkId::new("loader_list_warm", n), dir, |b, dir| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| whole_process(loader_cli(cache_home, dir).arg("list")))
                    .sum()
            })
        });
    }
    let code = generated_code(RUN_INDEX);
    for (name, dir) in [
        ("plugin_alone", folders.alone.path()),
        ("in_folder_of_100", folders.hundred()),
    ] {
        group.bench_function(BenchmarkId::new("loader_run_noop", name), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| whole_process(loader_cli(cache_home, dir).args(["run", &code, "noop"])))
                    .sum()
            })
        });
    }
    group.finish();
    folders
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

/// The number of `log` calls of the end-to-end events benchmark.
const CLI_EVENTS: u64 = 1_000_000;

/// `loader run bench log_calls` with [`CLI_EVENTS`] calls, in one mode.
fn cli_log_run(cache_home: &Path, dir: &Path, in_process: bool) -> Command {
    let mut command = loader_cli(cache_home, dir);
    command.args([
        "run",
        "bench",
        "log_calls",
        "--params",
        &format!(r#"{{"count": {CLI_EVENTS}}}"#),
    ]);
    if in_process {
        command.arg("--in-process");
    }
    command
}

const MODES: [(&str, bool); 2] = [("isolated", false), ("in_process", true)];

/// The CLI end to end, whole processes: 1 M `log` calls into a JSONL file
/// (terminal off), and with the default sinks (the terminal on stderr,
/// here /dev/null), in both modes.
fn cli_events(c: &mut Criterion, folders: &DiscoveryFolders) {
    let (cache_home, dir) = (folders.cache_home.path(), &folders.bench);
    let events_dir = tempfile::tempdir().expect("a temporary folder");
    let events = events_dir.path().join("events.jsonl");
    let mut group = c.benchmark_group("7_cli_events");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(CLI_EVENTS));
    for (mode, in_process) in MODES {
        group.bench_function(BenchmarkId::new("jsonl_file", mode), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        whole_process(
                            cli_log_run(cache_home, dir.path(), in_process)
                                .args(["--quiet", "--events"])
                                .arg(&events),
                        )
                    })
                    .sum()
            })
        });
        // Checked when the benchmark ran (a filter may leave it out).
        if let Ok(text) = std::fs::read_to_string(&events) {
            assert_eq!(
                text.lines().count() as u64,
                CLI_EVENTS + 2,
                "{mode}: the run's start, every log event and the result are in the file"
            );
            std::fs::remove_file(&events).expect("the events file can be removed");
        }
        group.bench_function(BenchmarkId::new("default_sinks", mode), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| whole_process(&mut cli_log_run(cache_home, dir.path(), in_process)))
                    .sum()
            })
        });
    }
    group.finish();
}

/// A plugin folder with the bench plugin alone, under its own name.
fn plugin_dir_of(library: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::copy(library, dir.path().join(library.file_name().expect("a file name"))).expect("copy the plugin");
    dir
}

/// When the first line of a running action reached its reader.
struct FirstLine {
    /// Since the loader was spawned.
    from_spawn: Duration,
    /// Since the plugin emitted the event (its `timestamp`, same clock).
    from_emission: Duration,
}

/// Time from spawning `loader run bench log_then_wait --events jsonl` to
/// the first line on its stdout, while the action keeps running; the run
/// is then cancelled by its timeout, and waited for outside the measure.
fn time_to_first_line(cache_home: &Path, dir: &Path, in_process: bool) -> FirstLine {
    let mut command = loader_cli(cache_home, dir);
    command
        .args([
            "run",
            "bench",
            "log_then_wait",
            "--events",
            "jsonl",
            "--quiet",
            "--timeout",
            "0.5",
        ])
        .stdout(Stdio::piped());
    if in_process {
        command.arg("--in-process");
    }
    let start = Instant::now();
    let mut child = command.spawn().expect("the loader starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("a first line");
    let elapsed = start.elapsed();
    let read_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    assert!(
        first.contains("\"first\""),
        "the first line is the action's event: {first}"
    );
    let line: serde_json::Value = serde_json::from_str(&first).expect("a JSON line");
    let emitted = line["timestamp"].as_f64().expect("a timestamp");
    child.wait().expect("the run ends");
    FirstLine {
        from_spawn: elapsed,
        from_emission: read_at.saturating_sub(Duration::from_secs_f64(emitted)),
    }
}

fn first_event(c: &mut Criterion, folders: &DiscoveryFolders) {
    let (cache_home, dir) = (folders.cache_home.path(), &folders.bench);
    let mut group = c.benchmark_group("8_first_event");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for (mode, in_process) in MODES {
        group.bench_function(mode, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| time_to_first_line(cache_home, dir.path(), in_process).from_spawn)
                    .sum()
            })
        });
    }
    group.bench_function("isolated_after_emission", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| time_to_first_line(cache_home, dir.path(), false).from_emission)
                .sum()
        })
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
        .args(["--no-cache", "list", "--json"])
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

/// A goal a figure is held to, and whether it was met.
struct Goal {
    text: String,
    met: bool,
}

impl Goal {
    fn ratio_at_most(ratio: f64, limit: f64) -> Self {
        Self {
            text: format!("≤ {limit}x"),
            met: ratio <= limit,
        }
    }

    fn cell(goal: Option<Goal>) -> String {
        goal.map(|g| format!("{}{}", g.text, if g.met { " ✓" } else { " ✗" }))
            .unwrap_or_default()
    }
}

/// A row comparing `value` with `reference` as a ratio, held to `goal` (a
/// function of the ratio).
fn row(what: &str, value: Option<f64>, reference: Option<f64>, reference_name: &str, goal: Option<fn(f64) -> Goal>) {
    match (value, reference) {
        (Some(v), Some(r)) => println!(
            "| {what} | {} | {} ({reference_name}) | {:.2}x | {} |",
            human(v),
            human(r),
            v / r,
            Goal::cell(goal.map(|g| g(v / r)))
        ),
        (Some(v), None) => println!("| {what} | {} | | | |", human(v)),
        _ => {}
    }
}

/// A row of events a second, held to at least `goal_per_second`.
fn rate_row(what: &str, ns_per_event: Option<f64>, goal_per_second: f64) {
    if let Some(ns) = ns_per_event {
        let per_second = 1e9 / ns;
        println!(
            "| {what} | {} an event = {:.2} M events/s | | | {} |",
            human(ns),
            per_second / 1e6,
            Goal::cell(Some(Goal {
                text: format!("≥ {} M/s", goal_per_second / 1e6),
                met: per_second >= goal_per_second,
            }))
        );
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

/// The estimate of a benchmark that ran `count` events an iteration, per event.
fn per_event(path: &str, count: u64) -> Option<f64> {
    estimate(path).map(|ns| ns / count as f64)
}

/// A row of a time held to at most `limit_ns`, beside a reference.
fn limit_row(what: &str, value: Option<f64>, reference: Option<f64>, reference_name: &str, limit_ns: f64) {
    let Some(v) = value else { return };
    let goal = Goal::cell(Some(Goal {
        text: format!("≤ {limit_ns} ns"),
        met: v <= limit_ns,
    }));
    match reference {
        Some(r) => println!(
            "| {what} | {} | {} ({reference_name}) | {:.2}x | {goal} |",
            human(v),
            human(r),
            v / r
        ),
        None => println!("| {what} | {} | | | {goal} |", human(v)),
    }
}

/// The caller's side of the log calls, beside the raw hand-overs.
fn report_callers_side() {
    let json_alone = estimate("1_plugin_side_of_log/json_value_alone");
    for (what, name) in [
        (
            "`ctx.log` to a host that does nothing, off the caller's thread",
            "ctx_log_to_an_idle_host_off_thread",
        ),
        (
            "`ctx.log` to a host that does nothing, during the call",
            "ctx_log_to_an_idle_host",
        ),
        ("the `json!` value and its JSON text", "json_value_and_its_text"),
    ] {
        limit_row(
            what,
            estimate(&format!("1_plugin_side_of_log/{name}")),
            json_alone,
            "the `json!` value alone",
            100.0,
        );
    }
    let anchor = estimate("1_callers_side_of_log/anchor_crossbeam_push");
    for (sinks, _) in CALLER_SINKS {
        for mode in ["in_process", "isolated"] {
            limit_row(
                &format!("`ctx.log` on the caller's thread, {mode}, {sinks}"),
                estimate(&format!("1_callers_side_of_log/{mode}/{sinks}")),
                anchor,
                "json! + crossbeam queue push",
                100.0,
            );
        }
    }
    limit_row(
        "json! + `Vec` push (anchor)",
        estimate("1_callers_side_of_log/anchor_vec_push"),
        anchor,
        "json! + crossbeam queue push",
        100.0,
    );
    for call in ["log_message", "log_dev_event", "set_metrics", "set_progress"] {
        let limit = if call == "set_progress" { 50.0 } else { 100.0 };
        for mode in ["in_process", "isolated"] {
            limit_row(
                &format!("`{call}` on the caller's thread, {mode}, terminal + events file"),
                estimate(&format!("1_callers_side_of_other_calls/{mode}/{call}")),
                None,
                "",
                limit,
            );
        }
    }
}

/// The caller's CPU time per `ctx.log` (the plugin thread's own, which
/// neither other processes nor the log thread add to on a loaded
/// machine): the median of [`CPU_ROUNDS`] loops of [`CALLER_LOOP`] calls
/// in each mode and set of sinks, measured after criterion's groups.
fn callers_cpu_table(fixtures: &Fixtures) {
    const CPU_ROUNDS: usize = 9;
    let events = EventsFiles::default();
    println!("\n## The caller's CPU time per `ctx.log` (median of {CPU_ROUNDS} loops of {CALLER_LOOP})\n");
    println!("| sinks | in_process | isolated | `json!` alone (in-process / isolated) | goal |");
    println!("|---|---|---|---|---|");
    for (sinks, make) in CALLER_SINKS {
        let per_call = |isolated: bool| {
            let mut loops: Vec<(u64, u64)> = (0..CPU_ROUNDS)
                .map(|_| {
                    let result = timed_run(fixtures, isolated, "timed_log_calls", CALLER_LOOP, make(&events.next()));
                    let nanos = |field: &str| result[field].as_u64().expect("the action reports its CPU time");
                    (nanos("loop_cpu_nanos"), nanos("json_alone_cpu_nanos"))
                })
                .collect();
            let median = |loops: &mut Vec<(u64, u64)>, key: fn(&(u64, u64)) -> u64| {
                loops.sort_unstable_by_key(key);
                key(&loops[CPU_ROUNDS / 2]) as f64 / CALLER_LOOP as f64
            };
            (median(&mut loops, |l| l.0), median(&mut loops, |l| l.1))
        };
        let ((in_process, json_in_process), (isolated, json_isolated)) = (per_call(false), per_call(true));
        let met = in_process <= 100.0 && isolated <= 100.0;
        println!(
            "| {sinks} | {} | {} | {} / {} | ≤ 100 ns {} |",
            human(in_process),
            human(isolated),
            human(json_in_process),
            human(json_isolated),
            if met { "✓" } else { "✗" }
        );
    }
}

fn report(progress: Option<(u64, u64, Duration)>, memory: Option<u64>) {
    println!("\n## Summary (ratios from this run's criterion estimates)\n");
    println!("| measurement | time | reference | ratio | goal |");
    println!("|---|---|---|---|---|");
    report_callers_side();
    for call in ["is_cancelled", "log"] {
        let group = format!("1_context_call_{call}");
        let vtable = estimate(&format!("{group}/plugin_vtable"));
        let at_most_2x = (call == "is_cancelled").then_some((|r| Goal::ratio_at_most(r, 2.0)) as fn(f64) -> Goal);
        row(
            &format!("`{call}` through the plugin vtable"),
            vtable,
            estimate(&format!("{group}/raw_fn_pointer")),
            "raw extern \"C\" fn pointer",
            at_most_2x,
        );
        row(
            &format!("`{call}` through the plugin vtable"),
            vtable,
            estimate(&format!("{group}/direct_host_call")),
            "direct Rust call",
            None,
        );
    }
    row(
        "`set_progress` per call, terminal + JSONL sinks on",
        estimate("2_progress_every_iteration/set_progress_terminal_and_jsonl"),
        Some(50.0),
        "the 50 ns goal",
        Some(|r| Goal {
            text: "< 50 ns".to_owned(),
            met: r < 1.0,
        }),
    );
    rate_row(
        "`log` into a JSONL file, in the library",
        estimate("3_event_throughput/log_to_jsonl_file"),
        1e6,
    );
    for n in DISCOVERY_SIZES {
        // The goals are for a folder of 100, where loading dominates; with
        // one plugin, starting the load-checking process does.
        let goal = |goal: fn(f64) -> Goal| (n == 100).then_some(goal);
        let raw = estimate(&format!("4_discovery/raw_dlopen_dlsym/{n}"));
        row(
            &format!("`loader list` over {n} plugins, cold (empty cache)"),
            estimate(&format!("4_discovery/loader_list_cold/{n}")),
            raw,
            "raw dlopen + dlsym, whole process",
            goal(|r| Goal::ratio_at_most(r, 3.0)),
        );
        row(
            &format!("`loader list` over {n} plugins, warm (unchanged files)"),
            estimate(&format!("4_discovery/loader_list_warm/{n}")),
            raw,
            "raw dlopen + dlsym, whole process",
            goal(|r| Goal {
                text: "< 1x".to_owned(),
                met: r < 1.0,
            }),
        );
    }
    row(
        "`loader run` of one plugin (noop) in a folder of 100, warm",
        estimate("4_discovery/loader_run_noop/in_folder_of_100"),
        estimate("4_discovery/loader_run_noop/plugin_alone"),
        "the same plugin alone",
        Some(|r| Goal::ratio_at_most(r, 1.2)),
    );
    for call in ["is_cancelled", "log"] {
        row(
            &format!("`{call}` from a JSON-lines peer process"),
            estimate(&format!("5_peer_process_jsonl/{call}")),
            estimate(&format!("1_context_call_{call}/plugin_vtable")),
            "plugin vtable",
            None,
        );
    }
    row(
        "a run with `--isolate` (noop action)",
        estimate("6_isolation_per_run/isolated"),
        estimate("6_isolation_per_run/in_process"),
        "in-process run",
        None,
    );
    row(
        "a `log` event with `--isolate`",
        estimate("6_isolation_per_event/isolated"),
        estimate("6_isolation_per_event/in_process"),
        "in-process",
        None,
    );
    for (mode, _) in MODES {
        rate_row(
            &format!("`loader run … --events FILE`, 1 M `log` calls, whole process, {mode}"),
            per_event(&format!("7_cli_events/jsonl_file/{mode}"), CLI_EVENTS),
            2e6,
        );
    }
    if let Some(ns) = per_event("7_cli_events/default_sinks/in_process", CLI_EVENTS) {
        println!(
            "| a `log` with the default sinks (terminal on stderr), whole process, in_process | {} | | | {} |",
            human(ns),
            Goal::cell(Some(Goal {
                text: "≤ 500 ns".to_owned(),
                met: ns <= 500.0
            }))
        );
    }
    row(
        "a `log` with the default sinks, whole process, isolated",
        per_event("7_cli_events/default_sinks/isolated", CLI_EVENTS),
        per_event("7_cli_events/default_sinks/in_process", CLI_EVENTS),
        "in_process",
        None,
    );
    if let (Some(isolated), Some(in_process)) =
        (estimate("8_first_event/isolated"), estimate("8_first_event/in_process"))
    {
        let delay = isolated - in_process;
        let signed = if delay < 0.0 {
            format!("-{}", human(-delay))
        } else {
            format!("+{}", human(delay))
        };
        println!(
            "| first JSONL line of a running action, from spawn, isolated | {} | {} (in_process) | {signed} | {} |",
            human(isolated),
            human(in_process),
            Goal::cell(Some(Goal {
                text: "≤ +5 ms".to_owned(),
                met: delay <= 5e6
            }))
        );
    }
    if let Some(delay) = estimate("8_first_event/isolated_after_emission") {
        println!(
            "| first JSONL line of a running action, from its emission to the reader, isolated | {} | | | {} |",
            human(delay),
            Goal::cell(Some(Goal {
                text: "≤ 5 ms".to_owned(),
                met: delay <= 5e6
            }))
        );
    }
    if let Some((events, last, elapsed)) = progress {
        println!(
            "\n1,000,000 `set_progress` calls took {:.1} ms and emitted {events} progress events; the last one reported current = {last}.",
            elapsed.as_secs_f64() * 1e3
        );
    }
    match memory {
        Some(kib) => println!(
            "Peak memory of `loader list --no-cache` over 100 plugins: {:.1} MiB.",
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
    plugin_side_of_log(&mut c);
    callers_side_of_log(&mut c, &fixtures);
    let progress_counts = progress(&mut c, &fixtures);
    throughput(&mut c, &fixtures);
    let folders = discovery(&mut c, &fixtures);
    peer(&mut c, &fixtures);
    isolation(&mut c, &fixtures);
    cli_events(&mut c, &folders);
    first_event(&mut c, &folders);
    c.final_summary();
    report(Some(progress_counts), list_peak_memory(folders.hundred()));
    callers_cpu_table(&fixtures);
}
