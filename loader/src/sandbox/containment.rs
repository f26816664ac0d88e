//! What the loader sets up around one sandboxed child before it starts:
//! the run's cgroups (process and memory caps), and how the child is
//! confined between fork and exec (its own session; a user, PID and mount
//! namespace where the kernel allows one; limits where no cgroup caps the
//! run). Also what of that this system could not give, which
//! `--sandbox=require` turns into a refusal.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use super::cgroups::RunCgroups;
use super::kernel::Support;
use super::{missing_line, Missing, SandboxMode};
use crate::sys::{self, Confinement, StatusPage};

/// The most processes a run may have at once, unless raised.
pub const DEFAULT_MAX_PROCESSES: u64 = 256;

/// The most memory a run may use, unless raised (by `--memory` or the
/// action's declared `memory` resource).
pub const DEFAULT_MEMORY_BYTES: u64 = 2 << 30;

/// The caps of one sandboxed process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_processes: u64,
    pub memory_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_processes: DEFAULT_MAX_PROCESSES,
            memory_bytes: Some(DEFAULT_MEMORY_BYTES),
        }
    }
}

/// The sandbox was required but this system cannot give all of it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the sandbox is required (--sandbox=require), but {0}")]
pub struct ContainmentError(pub String);

/// The set-up around one child.
#[derive(Debug)]
pub struct Containment {
    mode: SandboxMode,
    limits: Limits,
    cgroups: Option<RunCgroups>,
    missing: Vec<Missing>,
    /// Whether the child is started in namespaces of its own.
    namespaces: bool,
    root: bool,
}

impl Containment {
    /// Prepares the set-up for a child under `mode`. `net_all`: the
    /// network is fully granted (Landlock's TCP rules are then not needed).
    pub fn prepare(mode: SandboxMode, limits: Limits, net_all: bool) -> Result<Self, ContainmentError> {
        if mode == SandboxMode::Off {
            return Ok(Containment {
                mode,
                limits,
                cgroups: None,
                missing: Vec::new(),
                namespaces: false,
                root: false,
            });
        }
        let support = Support::detect();
        let mut missing = support.missing(net_all, limits.memory_bytes.is_some());
        let cgroups = if support.cgroups.pids || support.cgroups.memory {
            // The keeper and the namespace's init count as processes too.
            match RunCgroups::create(&support.cgroups, limits.max_processes + 2, limits.memory_bytes) {
                Ok(groups) => Some(groups),
                Err(e) => {
                    missing.push(Missing::new(
                        "cgroups",
                        format!("cannot make the run's cgroups ({e}): processes and memory are capped by per-process limits only"),
                    ));
                    None
                }
            }
        } else {
            None
        };
        let containment = Containment {
            mode,
            limits,
            cgroups,
            missing,
            namespaces: support.namespaces,
            root: support.root,
        };
        containment.check_required()?;
        Ok(containment)
    }

    fn check_required(&self) -> Result<(), ContainmentError> {
        match (self.mode, missing_line(&self.missing)) {
            (SandboxMode::Require, Some(line)) => Err(ContainmentError(line)),
            _ => Ok(()),
        }
    }

    pub fn mode(&self) -> SandboxMode {
        self.mode
    }

    /// What the set-up (so far) could not give.
    pub fn missing(&self) -> &[Missing] {
        &self.missing
    }

    /// How the child is confined before exec; `None` with the sandbox off.
    pub fn confinement(&self) -> Option<Arc<Confinement>> {
        if self.mode == SandboxMode::Off {
            return None;
        }
        let (uid_map, gid_map) = Confinement::identity_maps();
        let cgroup_procs = self
            .cgroups
            .iter()
            .flat_map(|groups| groups.procs_files())
            .filter_map(|path| CString::new(path.as_os_str().as_bytes()).ok())
            .collect();
        let caps_memory = self.cgroups.as_ref().is_some_and(RunCgroups::caps_memory);
        // RLIMIT_NPROC counts per user namespace, so with one it caps the
        // run; it never binds root.
        let max_processes = (self.namespaces && !self.root).then_some(self.limits.max_processes + 1);
        Some(Arc::new(Confinement {
            namespaces: self.namespaces,
            uid_map,
            gid_map,
            cgroup_procs,
            max_processes,
            max_data_bytes: self.limits.memory_bytes.filter(|_| !caps_memory),
        }))
    }

    /// Takes in what the child's start revealed: whether its namespaces or
    /// its `/proc` were refused. Returns true when the start must be tried
    /// again without namespaces (they were refused and are not required).
    pub fn after_spawn(&mut self, page: &StatusPage) -> Result<bool, ContainmentError> {
        if let Some(error) = page.namespace_error() {
            Support::namespaces_refused(error.to_string());
            self.namespaces = false;
            self.missing.push(Missing::new(
                "namespaces",
                format!("no user and PID namespace ({error}): processes that leave the run's process group are found and killed after the run instead"),
            ));
            self.check_required()?;
            return Ok(true);
        }
        if let Some(error) = page.proc_error() {
            self.missing.push(Missing::new(
                "private_proc",
                format!(
                    "cannot mount a /proc of the run's own ({error}): the plugin sees other processes' command lines"
                ),
            ));
            self.check_required()?;
        }
        Ok(false)
    }

    /// Whether the child runs in namespaces of its own (then nothing it
    /// started outlives it); else the loader must find its orphans.
    pub fn contains_descendants(&self) -> bool {
        self.mode != SandboxMode::Off && self.namespaces
    }

    /// Whether the kernel killed a process of the run for going over the
    /// run's memory limit.
    pub fn out_of_memory(&self) -> bool {
        self.cgroups.as_ref().is_some_and(RunCgroups::out_of_memory)
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }
}

/// A new status page for one start.
pub fn status_page() -> std::io::Result<StatusPage> {
    sys::StatusPage::new()
}
