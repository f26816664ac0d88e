//! What this system offers the sandbox: the Landlock ABI, seccomp, user and
//! PID namespaces, cgroups, whether the loader runs as root. Read once per
//! process; the namespace part is learnt from the first child that tried
//! (a refusal is remembered, so later children do not try again).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

use super::cgroups::CgroupSupport;
use super::Missing;
use crate::sys;

/// The sandbox features of this system.
#[derive(Debug, Clone, Serialize)]
pub struct Support {
    /// The kernel's Landlock ABI (0: none).
    pub landlock_abi: i32,
    pub seccomp: bool,
    /// Whether user and PID namespaces are believed to work (no child has
    /// been refused one yet), and why not when they are not.
    pub namespaces: bool,
    pub namespaces_refused: Option<String>,
    pub cgroups: CgroupSupport,
    pub root: bool,
}

static REFUSED: AtomicBool = AtomicBool::new(false);
static REFUSAL: Mutex<Option<String>> = Mutex::new(None);
static DETECTED: OnceLock<(i32, bool, CgroupSupport, bool)> = OnceLock::new();

impl Support {
    /// The features of this system, as known now.
    pub fn detect() -> Support {
        let (landlock_abi, seccomp, cgroups, root) = DETECTED
            .get_or_init(|| {
                (
                    sys::landlock_abi(),
                    sys::seccomp_available(),
                    CgroupSupport::detect(),
                    sys::is_root(),
                )
            })
            .clone();
        Support {
            landlock_abi,
            seccomp,
            namespaces: !REFUSED.load(Ordering::Relaxed),
            namespaces_refused: crate::events::lock(&REFUSAL).clone(),
            cgroups,
            root,
        }
    }

    /// Remembers that the kernel refused a child its namespaces.
    pub fn namespaces_refused(why: String) {
        *crate::events::lock(&REFUSAL) = Some(why);
        REFUSED.store(true, Ordering::Relaxed);
    }

    /// The parts of the sandbox this system leaves out, given whether the
    /// network is fully granted (then Landlock's TCP rules are not needed)
    /// and whether a process and a memory limit are wanted.
    pub fn missing(&self, net_all: bool, memory_limit: bool) -> Vec<Missing> {
        let mut missing = landlock_gaps(self.landlock_abi, !net_all);
        if !self.seccomp {
            missing.push(seccomp_missing());
        }
        if !self.namespaces {
            let why = self.namespaces_refused.as_deref().unwrap_or("refused by the kernel");
            missing.push(Missing::new(
                "namespaces",
                format!("no user and PID namespace ({why}): processes that leave the run's process group are found and killed after the run instead"),
            ));
        }
        // RLIMIT_NPROC caps a run only in a user namespace, and never root.
        if !self.cgroups.pids && (!self.namespaces || self.root) {
            missing.push(Missing::new(
                "process_limit",
                "no writable pids cgroup, and the per-user process limit does not bind root or a user without a user namespace: the run's processes are not capped",
            ));
        }
        if memory_limit && !self.cgroups.memory {
            missing.push(Missing::new(
                "memory_limit",
                "no writable memory cgroup: memory is capped per process (RLIMIT_DATA), not for the run as a whole",
            ));
        }
        missing
    }
}

/// What a Landlock ABI leaves open, for a ruleset that handles TCP when
/// `network` is true.
pub fn landlock_gaps(abi: i32, network: bool) -> Vec<Missing> {
    let mut missing = Vec::new();
    if abi < 1 {
        missing.push(Missing::new(
            "landlock",
            "no Landlock: files, TCP ports, signals and abstract sockets are not restricted",
        ));
        return missing;
    }
    if abi < 3 {
        missing.push(Missing::new(
            "landlock_truncate",
            "files outside the sandbox can be truncated",
        ));
    }
    if network && abi < 4 {
        missing.push(Missing::new(
            "landlock_net",
            "TCP connect and bind are not filtered by port (seccomp still refuses IP sockets unless the network is granted)",
        ));
    }
    if abi < 5 {
        missing.push(Missing::new("landlock_ioctl", "device ioctls are not restricted"));
    }
    if abi < 6 {
        missing.push(Missing::new(
            "landlock_scope",
            "signals to and abstract sockets of processes outside the sandbox are not restricted by Landlock",
        ));
    }
    missing
}

pub fn seccomp_missing() -> Missing {
    Missing::new(
        "seccomp",
        "no seccomp: ptrace, namespaces, bpf, TIOCSTI and Unix, netlink and raw sockets are not refused",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_landlock_abi_names_what_it_lacks() {
        assert!(landlock_gaps(7, true).is_empty());
        let parts = |abi, net| -> Vec<String> { landlock_gaps(abi, net).into_iter().map(|m| m.part).collect() };
        assert_eq!(parts(0, true), ["landlock"]);
        assert_eq!(parts(5, true), ["landlock_scope"]);
        assert_eq!(parts(3, true), ["landlock_net", "landlock_ioctl", "landlock_scope"]);
        assert_eq!(parts(3, false), ["landlock_ioctl", "landlock_scope"]);
    }
}
