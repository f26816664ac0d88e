//! `loader sandbox check`: what this system's kernel offers the sandbox,
//! and probes run in a sandboxed child (started exactly as a run's child
//! is), each trying one thing a hostile plugin would, with the outcome it
//! must have: the errno a blocked call fails with, or success for what a
//! plugin may do. The loader judges the outcomes; the check fails when a
//! probe that must be blocked was not.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{policy, Containment, Grants, Limits, SandboxMode, SandboxPolicy, Support, WorkDir, WORK_DIR_VAR};
use crate::isolate::{spawn_with_channel, ChildCommand, ChildOutput};
use crate::sys::{self, errno_name, raw_syscall};

/// What the loader tells the probe process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeRequest {
    pub policy: Option<SandboxPolicy>,
    /// The loader's own pid, as the loader sees it.
    pub loader_pid: u32,
    /// A file outside the sandbox.
    pub secret_file: PathBuf,
    /// The user's home folder.
    pub home: Option<PathBuf>,
    /// A folder standing for the plugin folder.
    pub plugin_folder: PathBuf,
    /// The file standing for the plugin's library (readable).
    pub library: PathBuf,
    pub work_dir: PathBuf,
    /// A TCP port the loader listens on (127.0.0.1).
    pub tcp_port: u16,
    /// A Unix socket the loader listens on.
    pub unix_socket: PathBuf,
    pub limits: ProbeLimits,
}

/// The limits the probe's run has.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ProbeLimits {
    pub max_processes: u64,
    pub memory_bytes: u64,
}

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "detail")]
pub enum Outcome {
    /// The call succeeded (what it gave, in words).
    Allowed(String),
    /// The call failed with this errno.
    Denied(i32),
    /// Something the probe reports in words (a limit, a list).
    Observed(String),
}

impl Outcome {
    fn of<T>(result: std::io::Result<T>) -> Outcome {
        match result {
            Ok(_) => Outcome::Allowed("succeeded".to_owned()),
            Err(e) => Outcome::Denied(e.raw_os_error().unwrap_or(0)),
        }
    }

    fn of_call(result: Result<libc::c_long, i32>) -> Outcome {
        match result {
            Ok(value) => Outcome::Allowed(format!("returned {value}")),
            Err(errno) => Outcome::Denied(errno),
        }
    }

    /// The outcome in words (`EACCES`, `allowed: ...`).
    pub fn describe(&self) -> String {
        match self {
            Outcome::Allowed(what) => format!("allowed ({what})"),
            Outcome::Denied(errno) => errno_name(*errno),
            Outcome::Observed(what) => what.clone(),
        }
    }
}

/// What a probe must see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Fails with one of these errnos.
    Denied(&'static [i32]),
    /// Succeeds.
    Allowed,
    /// An observation that must be exactly this.
    Observed(&'static str),
}

impl Expect {
    fn met_by(self, outcome: &Outcome) -> bool {
        match (self, outcome) {
            (Expect::Denied(errnos), Outcome::Denied(errno)) => errnos.contains(errno),
            (Expect::Allowed, Outcome::Allowed(_)) => true,
            (Expect::Observed(wanted), Outcome::Observed(seen)) => seen == wanted,
            _ => false,
        }
    }

    fn describe(self) -> String {
        match self {
            Expect::Denied(errnos) => errnos.iter().map(|e| errno_name(*e)).collect::<Vec<_>>().join(" or "),
            Expect::Allowed => "allowed".to_owned(),
            Expect::Observed(wanted) => wanted.to_owned(),
        }
    }
}

/// One probe: its name, what it tries, what it must see, and the try.
pub struct Probe {
    pub name: &'static str,
    pub what: &'static str,
    pub expect: Expect,
    run: fn(&ProbeRequest) -> Outcome,
}

const DENIED_FILE: &[i32] = &[libc::EACCES];
/// Another process's `/proc` entry: refused, or not even visible.
const DENIED_PROC: &[i32] = &[libc::EACCES, libc::EPERM, libc::ENOENT];
const DENIED_CALL: &[i32] = &[libc::EPERM];
const DENIED_SOCKET: &[i32] = &[libc::EPERM, libc::EACCES];
const DENIED_SIGNAL: &[i32] = &[libc::EPERM, libc::ESRCH];

fn create_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map(drop)
}

fn loader_proc(request: &ProbeRequest, entry: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{}/{entry}", request.loader_pid))
}

fn status_field(field: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field).map(|v| v.trim().to_owned()))
}

/// Every probe, in the order they run and are shown.
pub const PROBES: &[Probe] = &[
    Probe {
        name: "read_library",
        what: "read the plugin's own library",
        expect: Expect::Allowed,
        run: |r| Outcome::of(std::fs::read(&r.library)),
    },
    Probe {
        name: "write_work_dir",
        what: "write a file in the run's work directory",
        expect: Expect::Allowed,
        run: |r| Outcome::of(create_file(&r.work_dir.join("probe.txt"))),
    },
    Probe {
        name: "read_secret",
        what: "read a file outside the sandbox",
        expect: Expect::Denied(DENIED_FILE),
        run: |r| Outcome::of(std::fs::read(&r.secret_file)),
    },
    Probe {
        name: "list_home",
        what: "list the home folder",
        expect: Expect::Denied(DENIED_FILE),
        run: |r| match &r.home {
            Some(home) => Outcome::of(std::fs::read_dir(home)),
            None => Outcome::Denied(libc::EACCES),
        },
    },
    Probe {
        name: "read_etc_shadow",
        what: "read /etc/shadow",
        expect: Expect::Denied(&[libc::EACCES, libc::ENOENT]),
        run: |_| Outcome::of(std::fs::read("/etc/shadow")),
    },
    Probe {
        name: "write_plugin_folder",
        what: "drop a library into the plugin folder",
        expect: Expect::Denied(DENIED_FILE),
        run: |r| Outcome::of(create_file(&r.plugin_folder.join("libdropped.so"))),
    },
    Probe {
        name: "write_tmp",
        what: "write a file in /tmp, outside the work directory",
        expect: Expect::Denied(DENIED_FILE),
        run: |_| Outcome::of(create_file(Path::new("/tmp/loader-sandbox-probe"))),
    },
    Probe {
        name: "write_dev_shm",
        what: "write a file in /dev/shm (it would outlive the run)",
        expect: Expect::Denied(&[libc::EACCES, libc::ENOENT]),
        run: |_| Outcome::of(create_file(Path::new("/dev/shm/loader-sandbox-probe"))),
    },
    Probe {
        name: "write_own_oom_score",
        what: "write under /proc (its own oom_score_adj)",
        expect: Expect::Denied(DENIED_FILE),
        run: |_| Outcome::of(std::fs::write("/proc/self/oom_score_adj", "1000")),
    },
    Probe {
        name: "read_loader_environ",
        what: "read the loader's environment (/proc/LOADER/environ)",
        expect: Expect::Denied(DENIED_PROC),
        run: |r| Outcome::of(std::fs::read(loader_proc(r, "environ"))),
    },
    Probe {
        name: "read_loader_mem",
        what: "read the loader's memory (/proc/LOADER/mem)",
        expect: Expect::Denied(DENIED_PROC),
        run: |r| Outcome::of(std::fs::File::open(loader_proc(r, "mem"))),
    },
    Probe {
        name: "read_loader_cmdline",
        what: "read the loader's command line (/proc/LOADER/cmdline)",
        expect: Expect::Denied(DENIED_PROC),
        run: |r| Outcome::of(std::fs::read(loader_proc(r, "cmdline"))),
    },
    Probe {
        name: "write_loader_stdout",
        what: "write to the loader's stdout (/proc/LOADER/fd/1)",
        expect: Expect::Denied(DENIED_PROC),
        run: |r| Outcome::of(std::fs::OpenOptions::new().write(true).open(loader_proc(r, "fd/1"))),
    },
    Probe {
        name: "write_loader_oom_score",
        what: "make the OOM killer pick the loader (/proc/LOADER/oom_score_adj)",
        expect: Expect::Denied(DENIED_PROC),
        run: |r| Outcome::of(std::fs::write(loader_proc(r, "oom_score_adj"), "1000")),
    },
    Probe {
        name: "ptrace_loader",
        what: "attach to the loader with ptrace",
        expect: Expect::Denied(DENIED_CALL),
        run: |r| {
            Outcome::of_call(raw_syscall(
                libc::SYS_ptrace,
                [
                    libc::PTRACE_ATTACH as libc::c_long,
                    r.loader_pid as libc::c_long,
                    0,
                    0,
                    0,
                    0,
                ],
            ))
        },
    },
    Probe {
        name: "process_vm_readv_loader",
        what: "read the loader's memory with process_vm_readv",
        expect: Expect::Denied(DENIED_CALL),
        run: |r| {
            Outcome::of_call(raw_syscall(
                libc::SYS_process_vm_readv,
                [r.loader_pid as libc::c_long, 0, 0, 0, 0, 0],
            ))
        },
    },
    Probe {
        name: "signal_loader",
        what: "signal the loader",
        expect: Expect::Denied(DENIED_SIGNAL),
        run: |r| {
            Outcome::of_call(raw_syscall(
                libc::SYS_kill,
                [r.loader_pid as libc::c_long, 0, 0, 0, 0, 0],
            ))
        },
    },
    Probe {
        name: "tcp_connect",
        what: "connect to a TCP port on loopback",
        expect: Expect::Denied(DENIED_SOCKET),
        run: |r| Outcome::of(TcpStream::connect(("127.0.0.1", r.tcp_port))),
    },
    Probe {
        name: "tcp_listen",
        what: "listen on a TCP port",
        expect: Expect::Denied(DENIED_SOCKET),
        run: |_| Outcome::of(TcpListener::bind("127.0.0.1:0")),
    },
    Probe {
        name: "udp_socket",
        what: "open a UDP socket",
        expect: Expect::Denied(DENIED_SOCKET),
        run: |_| Outcome::of(UdpSocket::bind("127.0.0.1:0")),
    },
    Probe {
        name: "unix_connect",
        what: "connect to a Unix socket of another process",
        expect: Expect::Denied(DENIED_SOCKET),
        run: |r| Outcome::of(UnixStream::connect(&r.unix_socket)),
    },
    Probe {
        name: "netlink_socket",
        what: "open a netlink socket",
        expect: Expect::Denied(DENIED_CALL),
        run: |_| {
            Outcome::of_call(raw_syscall(
                libc::SYS_socket,
                [
                    libc::AF_NETLINK as libc::c_long,
                    libc::SOCK_RAW as libc::c_long,
                    0,
                    0,
                    0,
                    0,
                ],
            ))
        },
    },
    Probe {
        name: "raw_socket",
        what: "open a raw IP socket",
        expect: Expect::Denied(DENIED_CALL),
        run: |_| {
            Outcome::of_call(raw_syscall(
                libc::SYS_socket,
                [
                    libc::AF_INET as libc::c_long,
                    libc::SOCK_RAW as libc::c_long,
                    libc::IPPROTO_ICMP as libc::c_long,
                    0,
                    0,
                    0,
                ],
            ))
        },
    },
    Probe {
        name: "new_user_namespace",
        what: "make a new user namespace",
        expect: Expect::Denied(DENIED_CALL),
        run: |_| {
            Outcome::of_call(raw_syscall(
                libc::SYS_unshare,
                [libc::CLONE_NEWUSER as libc::c_long, 0, 0, 0, 0, 0],
            ))
        },
    },
    Probe {
        name: "mount",
        what: "mount a file system",
        expect: Expect::Denied(DENIED_CALL),
        run: |_| Outcome::of_call(raw_syscall(libc::SYS_mount, [0; 6])),
    },
    Probe {
        name: "bpf",
        what: "load a BPF program",
        expect: Expect::Denied(DENIED_CALL),
        run: |_| Outcome::of_call(raw_syscall(libc::SYS_bpf, [0; 6])),
    },
    Probe {
        name: "perf_event_open",
        what: "open a perf event",
        expect: Expect::Denied(DENIED_CALL),
        run: |_| Outcome::of_call(raw_syscall(libc::SYS_perf_event_open, [0, 0, -1, -1, 0, 0])),
    },
    Probe {
        name: "keyctl",
        what: "use the kernel keyrings",
        expect: Expect::Denied(DENIED_CALL),
        run: |_| Outcome::of_call(raw_syscall(libc::SYS_keyctl, [0; 6])),
    },
    Probe {
        name: "io_uring_setup",
        what: "set up io_uring (which bypasses system call filters)",
        expect: Expect::Denied(DENIED_CALL),
        run: |_| Outcome::of_call(raw_syscall(libc::SYS_io_uring_setup, [1, 0, 0, 0, 0, 0])),
    },
    Probe {
        name: "clone3",
        what: "clone3 (its flags cannot be filtered; the C library falls back to clone)",
        expect: Expect::Denied(&[libc::ENOSYS]),
        run: |_| Outcome::of_call(raw_syscall(libc::SYS_clone3, [0, 0, 0, 0, 0, 0])),
    },
    Probe {
        name: "tiocsti",
        what: "inject input into a terminal (TIOCSTI)",
        expect: Expect::Denied(DENIED_CALL),
        run: |_| match sys::inject_terminal_input(0) {
            Ok(()) => Outcome::Allowed("injected".to_owned()),
            Err(errno) => Outcome::Denied(errno),
        },
    },
    Probe {
        name: "open_dev_tty",
        what: "open the controlling terminal (/dev/tty)",
        expect: Expect::Denied(&[libc::EACCES, libc::ENXIO]),
        run: |_| Outcome::of(std::fs::OpenOptions::new().write(true).open("/dev/tty")),
    },
    Probe {
        name: "execute_program",
        what: "run a program that was not granted (/bin/sh)",
        expect: Expect::Denied(DENIED_FILE),
        run: |_| Outcome::of(std::process::Command::new("/bin/sh").arg("-c").arg("true").status()),
    },
    Probe {
        name: "capabilities",
        what: "capabilities held (effective, permitted, bounding)",
        expect: Expect::Observed("none"),
        run: |_| {
            let held: Vec<String> = ["CapEff:", "CapPrm:", "CapBnd:"]
                .iter()
                .filter_map(|field| {
                    let value = status_field(field)?;
                    (u64::from_str_radix(&value, 16).ok()? != 0).then(|| format!("{field} {value}"))
                })
                .collect();
            Outcome::Observed(if held.is_empty() {
                "none".to_owned()
            } else {
                held.join(", ")
            })
        },
    },
    Probe {
        name: "no_new_privs",
        what: "no_new_privs is set",
        expect: Expect::Observed("1"),
        run: |_| Outcome::Observed(status_field("NoNewPrivs:").unwrap_or_default()),
    },
    Probe {
        name: "open_descriptors",
        what: "descriptors open in the child",
        expect: Expect::Observed("0 1 2 3"),
        run: |_| {
            let mut fds: Vec<u32> = std::fs::read_dir("/proc/self/fd")
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| e.file_name().to_str()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            fds.sort_unstable();
            // The last one is the folder being listed.
            fds.pop();
            Outcome::Observed(fds.iter().map(u32::to_string).collect::<Vec<_>>().join(" "))
        },
    },
    Probe {
        name: "process_limit",
        what: "fork more processes than the run's limit",
        expect: Expect::Observed("stopped by EAGAIN"),
        run: |r| {
            let tries = usize::try_from(r.limits.max_processes)
                .unwrap_or(usize::MAX)
                .saturating_add(16);
            match sys::fork_many(tries) {
                (_, Some(errno)) => Outcome::Observed(format!("stopped by {}", errno_name(errno))),
                (made, None) => Outcome::Observed(format!("made all {made}")),
            }
        },
    },
    Probe {
        name: "memory_limit",
        what: "touch more memory than the run's limit",
        expect: Expect::Observed("stopped"),
        run: |r| {
            let bytes = usize::try_from(r.limits.memory_bytes)
                .unwrap_or(usize::MAX)
                .saturating_add(64 << 20);
            let seen = sys::touch_memory_in_child(bytes);
            Outcome::Observed(if seen == "touched all of it" {
                seen
            } else {
                "stopped".to_owned()
            })
        },
    },
];

/// The name of the probe that starts a process escaping the run; the
/// loader checks that it is gone once the probe process has ended.
const ESCAPE: &str = "escape";

/// The probe process's side (`loader __sandbox-probe`): reads the request
/// on fd 3, enters the sandbox, runs every probe, and answers with the
/// outcomes as one JSON object. Returns the exit code.
pub fn serve_probe() -> i32 {
    let mut channel = match sys::take_channel() {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("loader: the sandbox probe expects its channel to the loader on fd 3 ({e})");
            return 2;
        }
    };
    let mut line = String::new();
    let request: ProbeRequest = match BufReader::new(&mut channel)
        .read_line(&mut line)
        .ok()
        .and_then(|_| serde_json::from_str(&line).ok())
    {
        Some(request) => request,
        None => return 2,
    };
    let mut outcomes = serde_json::Map::new();
    if let Some(policy) = &request.policy {
        if let Err(e) = super::enter(policy) {
            outcomes.insert("sandbox_error".to_owned(), serde_json::json!(e.to_string()));
        }
    }
    for probe in PROBES {
        let outcome = (probe.run)(&request);
        outcomes.insert(probe.name.to_owned(), serde_json::to_value(outcome).unwrap_or_default());
    }
    sys::start_escapee(300);
    outcomes.insert(ESCAPE.to_owned(), serde_json::json!("started"));
    let answer = serde_json::Value::Object(outcomes).to_string();
    if channel.write_all(answer.as_bytes()).is_err() {
        return 1;
    }
    0
}

/// One probe's result, judged.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub name: &'static str,
    pub what: &'static str,
    pub expected: String,
    pub outcome: String,
    pub ok: bool,
}

/// What `loader sandbox check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub mode: SandboxMode,
    pub support: Support,
    /// What the run's set-up could not give, in words.
    pub missing: Vec<super::Missing>,
    pub probes: Vec<ProbeResult>,
    /// Why the probes could not run, if they could not.
    pub error: Option<String>,
}

impl CheckReport {
    /// Whether every probe had the outcome it must have.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.probes.iter().all(|p| p.ok)
    }
}

/// The limits the probes run under: small, so that reaching them is cheap.
const PROBE_LIMITS: ProbeLimits = ProbeLimits {
    max_processes: 32,
    memory_bytes: 256 << 20,
};

/// Runs the check: the probes in a child started from `probe_command`
/// (`loader __sandbox-probe`) under `mode`, judged against what each must
/// see.
pub fn check(probe_command: &ChildCommand, mode: SandboxMode) -> CheckReport {
    let support = Support::detect();
    let mut report = CheckReport {
        mode,
        support,
        missing: Vec::new(),
        probes: Vec::new(),
        error: None,
    };
    match run_probes(probe_command, mode) {
        Ok((answers, missing, escaped)) => {
            report.missing = missing;
            if let Some(error) = answers.get("sandbox_error").and_then(|e| e.as_str()) {
                report.error = Some(format!("the probe process could not enter its sandbox: {error}"));
            }
            report.probes = judge(&answers);
            report.probes.push(ProbeResult {
                name: ESCAPE,
                what: "a process that left the run's session (setsid, double fork) outlives it",
                expected: "gone".to_owned(),
                outcome: if escaped {
                    "still running".to_owned()
                } else {
                    "gone".to_owned()
                },
                ok: !escaped,
            });
        }
        Err(e) => report.error = Some(e),
    }
    report
}

fn judge(answers: &serde_json::Map<String, serde_json::Value>) -> Vec<ProbeResult> {
    PROBES
        .iter()
        .map(|probe| {
            let outcome = answers
                .get(probe.name)
                .and_then(|v| serde_json::from_value::<Outcome>(v.clone()).ok());
            ProbeResult {
                name: probe.name,
                what: probe.what,
                expected: probe.expect.describe(),
                outcome: outcome
                    .as_ref()
                    .map(Outcome::describe)
                    .unwrap_or_else(|| "no answer".to_owned()),
                ok: outcome.is_some_and(|o| probe.expect.met_by(&o)),
            }
        })
        .collect()
}

/// The probe process's answers, what the set-up lacked, and whether the
/// escaping process it started outlived it.
type ProbeRun = (serde_json::Map<String, serde_json::Value>, Vec<super::Missing>, bool);

/// Starts the probe process like a run's child, serves it its targets,
/// and returns its answers, what the set-up lacked, and whether the
/// escaping process it started is still running once it has ended.
fn run_probes(probe_command: &ChildCommand, mode: SandboxMode) -> Result<ProbeRun, String> {
    let targets = WorkDir::create(None, false).map_err(|e| e.to_string())?;
    let secret_file = targets.path().join("secret");
    std::fs::write(&secret_file, "not for plugins").map_err(|e| e.to_string())?;
    let plugin_folder = targets.path().join("plugins");
    std::fs::create_dir(&plugin_folder).map_err(|e| e.to_string())?;
    let library = plugin_folder.join("libprobe.so");
    std::fs::write(&library, "a stand-in for a plugin library").map_err(|e| e.to_string())?;
    let tcp = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let unix_socket = targets.path().join("socket");
    let _unix = UnixListener::bind(&unix_socket).map_err(|e| e.to_string())?;
    let work_dir = WorkDir::create(None, false).map_err(|e| e.to_string())?;
    let limits = Limits {
        max_processes: PROBE_LIMITS.max_processes,
        memory_bytes: Some(PROBE_LIMITS.memory_bytes),
    };
    let mut containment = Containment::prepare(mode, limits, false).map_err(|e| e.to_string())?;
    let policy = (mode != SandboxMode::Off).then(|| {
        let purpose = policy::Purpose::Run {
            library: &library,
            work_dir: work_dir.path(),
        };
        policy::build(purpose, &Grants::default(), mode == SandboxMode::Require)
    });
    let request = ProbeRequest {
        policy,
        loader_pid: std::process::id(),
        secret_file,
        home: std::env::var_os("HOME").map(PathBuf::from),
        plugin_folder,
        library,
        work_dir: work_dir.path().to_owned(),
        tcp_port: tcp.local_addr().map_err(|e| e.to_string())?.port(),
        unix_socket,
        limits: PROBE_LIMITS,
    };
    let env = vec![
        ("TMPDIR".into(), work_dir.path().into()),
        (WORK_DIR_VAR.into(), work_dir.path().into()),
        ("PATH".into(), "/usr/bin:/bin".into()),
    ];
    let token = format!("probe-{}-{}", std::process::id(), work_dir.path().display());
    let mut command = probe_command.clone();
    command.args.push(token.clone());
    let mut spawned = spawn_with_channel(
        &command,
        env,
        ChildOutput::Discarded,
        Some(&mut containment),
        Some(work_dir.path()),
    )
    .map_err(|e| format!("cannot start the probe process: {e}"))?;
    let text = serde_json::to_string(&request).map_err(|e| e.to_string())?;
    spawned
        .channel
        .write_all(format!("{text}\n").as_bytes())
        .map_err(|e| format!("cannot send the probes their targets: {e}"))?;
    spawned
        .channel
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    let read = spawned.channel.read_to_string(&mut answer);
    let status = spawned.wait().map_err(|e| e.to_string())?;
    spawned.group.kill();
    read.map_err(|e| format!("no answer from the probe process: {e}"))?;
    let escaped = escapee_running(&token);
    let answers = match serde_json::from_str::<serde_json::Value>(&answer) {
        Ok(serde_json::Value::Object(answers)) => answers,
        _ => {
            return Err(format!(
                "the probe process gave no answer (it {})",
                crate::isolate::exit_in_words(status)
            ))
        }
    };
    Ok((answers, containment.missing().to_vec(), escaped))
}

/// Whether a process of this check's probe (its command line holds the
/// check's token) still runs: the escapee, if the sandbox let it outlive
/// the probe. Looked for for a moment, as the kernel ends a namespace's
/// processes asynchronously; one still found then is killed.
fn escapee_running(token: &str) -> bool {
    let survivors = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                cmdline
                    .split(|&b| b == 0)
                    .any(|arg| arg == token.as_bytes())
                    .then_some(pid)
            })
            .collect()
    };
    for _ in 0..100 {
        if survivors().is_empty() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    survivors().into_iter().for_each(sys::kill_process);
    true
}
