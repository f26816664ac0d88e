//! The sandbox around every plugin process: what a plugin may touch, and
//! how the loader confines the processes that load plugin code (run
//! children, load-check children, the children behind `info` and
//! `--dry-run`) before any of that code runs.
//!
//! The parent decides a [`SandboxPolicy`] (defaults, plus what the
//! operator granted: [`policy`]), sets up what must exist around the child
//! before it starts (a user and PID namespace, cgroups and limits, a work
//! directory: [`Containment`]), and the child, before it opens any
//! library, applies the policy to itself ([`enter`]): Landlock for files,
//! TCP ports and scoping of signals and abstract sockets, seccomp for the
//! system calls and socket families Landlock does not cover, no
//! capabilities, `no_new_privs`.
//!
//! Where the kernel lacks a feature, the run goes on with what exists and
//! the loader says in one line what is missing ([`Support`]);
//! `--sandbox=require` refuses to run then, and `--sandbox=off` runs with
//! no sandbox at all.

mod cgroups;
mod containment;
mod grants;
mod kernel;
#[cfg(target_os = "linux")]
mod landlock_rules;
pub mod notes;
pub mod policy;
#[cfg(target_os = "linux")]
pub mod probes;

#[cfg(target_os = "linux")]
mod seccomp_filter;
mod workdir;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use containment::{
    status_page, Containment, ContainmentError, Limits, DEFAULT_MAX_PROCESSES, DEFAULT_MEMORY_BYTES,
};
pub use grants::{check_net_entry, resolve, GrantBook, GrantError, Grants, MissingGrant, RecordedGrant, RunGrants};
pub use kernel::Support;
pub use workdir::{remove_live_work_dirs, WorkDir};

/// How much of the sandbox a run insists on (`--sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// Apply everything the kernel offers; say in one line what it lacks.
    #[default]
    On,
    /// Refuse to run unless every part of the sandbox applies.
    Require,
    /// No sandbox at all (a warning says so).
    Off,
}

impl SandboxMode {
    /// The mode's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SandboxMode::On => "on",
            SandboxMode::Require => "require",
            SandboxMode::Off => "off",
        }
    }
}

/// Which network a sandboxed process may use.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NetAccess {
    /// No socket but Unix socket pairs: no connect, bind or listen.
    #[default]
    None,
    /// TCP connections to these ports only (Landlock filters TCP by port,
    /// not by host); `dns` also allows UDP sockets, for name look-ups.
    Ports { connect: Vec<u16>, dns: bool },
    /// Any network use (except raw sockets).
    All,
}

/// What a sandboxed process may do, as the child applies it to itself.
/// Paths are absolute; a path that does not exist is skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SandboxPolicy {
    /// Files and folders it may read.
    pub read: Vec<PathBuf>,
    /// Files it may read and execute (programs, and their interpreters).
    pub execute: Vec<PathBuf>,
    /// Folders and files it may read, write, create and remove in.
    pub write: Vec<PathBuf>,
    /// Device files it may read and write (`/dev/null`, ...).
    pub devices: Vec<PathBuf>,
    pub net: NetAccess,
    /// Whether a part that cannot be applied stops the process.
    pub require: bool,
}

/// How the sandbox applies to a run: its mode, what the operator granted,
/// the run's limits, and whether its work directory is kept.
#[derive(Debug, Clone, Default)]
pub struct RunSandbox {
    pub mode: SandboxMode,
    pub grants: Grants,
    pub limits: Limits,
    pub keep_work_dir: bool,
}

/// A part of the sandbox this kernel (or this run) lacks, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    /// Which part: `landlock`, `landlock_net`, `landlock_scope`, `seccomp`,
    /// `namespaces`, `process_limit`, `memory_limit`.
    pub part: String,
    /// What that leaves open.
    pub consequence: String,
}

impl Missing {
    pub fn new(part: &str, consequence: impl Into<String>) -> Self {
        Missing {
            part: part.to_owned(),
            consequence: consequence.into(),
        }
    }
}

/// One line naming every missing part, for the terminal and the event
/// stream (`None` when nothing is missing).
pub fn missing_line(missing: &[Missing]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|m| format!("{} ({})", m.part, m.consequence))
        .collect();
    Some(format!(
        "the sandbox is incomplete on this system: {}",
        parts.join("; ")
    ))
}

/// Why a child could not enter its sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot apply the Landlock rules: {0}")]
    Landlock(String),
    #[error("cannot install the seccomp filter: {0}")]
    Seccomp(String),
    #[error("cannot drop capabilities: {0}")]
    Capabilities(std::io::Error),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(std::io::Error),
    #[error("the sandbox is required (--sandbox=require) but {0}")]
    Incomplete(String),
    #[error("the sandbox is not available on this operating system")]
    Unsupported,
}

/// What [`enter`] applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entered {
    /// The parts that could not be applied.
    pub missing: Vec<Missing>,
}

/// The child's side: applies `policy` to this process, which must not
/// have started any thread yet (Landlock binds the calling thread and the
/// ones it starts later). After this, nothing this process or anything it
/// starts does can leave the sandbox. With `policy.require`, a part that
/// cannot be applied is an error, and the caller must not go on.
#[cfg(target_os = "linux")]
pub fn enter(policy: &SandboxPolicy) -> Result<Entered, SandboxError> {
    use crate::sys;
    sys::set_no_new_privs().map_err(SandboxError::NoNewPrivs)?;
    sys::drop_capabilities().map_err(SandboxError::Capabilities)?;
    let mut missing = landlock_rules::restrict(policy).map_err(SandboxError::Landlock)?;
    if sys::seccomp_available() {
        seccomp_filter::install(&policy.net).map_err(SandboxError::Seccomp)?;
    } else {
        missing.push(kernel::seccomp_missing());
    }
    if policy.require {
        if let Some(line) = missing_line(&missing) {
            return Err(SandboxError::Incomplete(line));
        }
    }
    Ok(Entered { missing })
}

/// The child's side on a system without the sandbox.
#[cfg(not(target_os = "linux"))]
pub fn enter(policy: &SandboxPolicy) -> Result<Entered, SandboxError> {
    if policy.require {
        return Err(SandboxError::Unsupported);
    }
    Ok(Entered {
        missing: vec![Missing::new("sandbox", "not available on this operating system")],
    })
}

/// Marks this process non-dumpable: no other process of the same user can
/// read its memory or its `/proc/PID/environ`, or attach to it. The loader
/// does this at start, since it holds the backend's credentials.
pub fn protect_this_process() {
    crate::sys::set_non_dumpable();
}

/// The environment variable through which a load-checking child gets its
/// policy (a run child gets it in its request).
pub const POLICY_VAR: &str = "LOADER_SANDBOX_POLICY";

/// The environment variable that tells a sandboxed plugin process where its
/// work directory is (also its current directory and `TMPDIR`).
pub const WORK_DIR_VAR: &str = "LOADER_WORK_DIR";
