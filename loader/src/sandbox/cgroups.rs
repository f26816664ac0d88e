//! A cgroup per run, where the system lets the loader make one: the run's
//! processes (`pids.max`) and memory (`memory.max`, or v1's
//! `memory.limit_in_bytes`) are capped exactly, for every process of the
//! run together. Both cgroup versions are handled, controller by
//! controller: v2 where the loader's own cgroup delegates the controller,
//! else a v1 hierarchy of it where the loader may create groups (as root,
//! usually). The groups are named `loader-<loader pid>-<n>` and removed
//! after the run; ones left by a loader that was killed are removed by the
//! next loader that finds them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sys;

/// One controller's place for run groups.
#[derive(Debug, Clone, Serialize)]
pub struct ControllerBase {
    /// The folder run groups are made in.
    pub path: PathBuf,
    /// cgroup v2 (else v1).
    pub v2: bool,
}

/// Which controllers the loader can use, and where.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CgroupSupport {
    pub pids: bool,
    pub memory: bool,
    pub pids_base: Option<ControllerBase>,
    pub memory_base: Option<ControllerBase>,
}

/// A mounted cgroup hierarchy.
struct Mount {
    point: PathBuf,
    v2: bool,
    /// For v1: the controllers it carries.
    controllers: Vec<String>,
}

fn mounts() -> Vec<Mount> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split_whitespace().nth(4)?;
            let mut right = right.split_whitespace();
            let fstype = right.next()?;
            let options = right.nth(1).unwrap_or("");
            match fstype {
                "cgroup2" => Some(Mount {
                    point: PathBuf::from(point),
                    v2: true,
                    controllers: Vec::new(),
                }),
                "cgroup" => Some(Mount {
                    point: PathBuf::from(point),
                    v2: false,
                    controllers: options.split(',').map(str::to_owned).collect(),
                }),
                _ => None,
            }
        })
        .collect()
}

/// This process's cgroup paths: (`None` for v2, `Some(controllers)` for a
/// v1 hierarchy, path).
fn own_groups() -> Vec<(Option<Vec<String>>, String)> {
    let Ok(text) = fs::read_to_string("/proc/self/cgroup") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let controllers = if id == "0" && controllers.is_empty() {
                None
            } else {
                Some(controllers.split(',').map(str::to_owned).collect())
            };
            Some((controllers, path.to_owned()))
        })
        .collect()
}

fn joined(point: &Path, path: &str) -> PathBuf {
    point.join(path.trim_start_matches('/'))
}

/// Where run groups of `controller` can be made, if anywhere.
fn base_for(controller: &str, mounts: &[Mount], own: &[(Option<Vec<String>>, String)]) -> Option<ControllerBase> {
    let v2_path = own.iter().find(|(c, _)| c.is_none()).map(|(_, p)| p.as_str());
    if let (Some(mount), Some(path)) = (mounts.iter().find(|m| m.v2), v2_path) {
        let base = joined(&mount.point, path);
        let offered = fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
        if offered.split_whitespace().any(|c| c == controller) && delegates(&base, controller) && writable(&base) {
            return Some(ControllerBase { path: base, v2: true });
        }
    }
    let mount = mounts
        .iter()
        .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))?;
    let (_, path) = own
        .iter()
        .find(|(c, _)| c.as_ref().is_some_and(|c| c.iter().any(|c| c == controller)))?;
    let base = joined(&mount.point, path);
    writable(&base).then_some(ControllerBase { path: base, v2: false })
}

/// Whether the v2 group `base` hands `controller` to its children (turning
/// it on if it can).
fn delegates(base: &Path, controller: &str) -> bool {
    let control = base.join("cgroup.subtree_control");
    let enabled = |text: String| text.split_whitespace().any(|c| c == controller);
    if fs::read_to_string(&control).is_ok_and(enabled) {
        return true;
    }
    fs::write(&control, format!("+{controller}")).is_ok()
}

/// Whether groups can be made in `base`, as far as access rights tell (a
/// run whose group cannot be made after all goes on with per-process
/// limits and says so). Stale groups of dead loaders are removed on the way.
fn writable(base: &Path) -> bool {
    remove_stale(base);
    sys::writable(base)
}

/// Removes the empty run groups of loaders that are no longer running.
fn remove_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("loader-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

impl CgroupSupport {
    pub fn detect() -> CgroupSupport {
        let mounts = mounts();
        let own = own_groups();
        let pids_base = base_for("pids", &mounts, &own);
        let memory_base = base_for("memory", &mounts, &own);
        CgroupSupport {
            pids: pids_base.is_some(),
            memory: memory_base.is_some(),
            pids_base,
            memory_base,
        }
    }

    /// Where the groups go, in words (for `loader sandbox check`).
    pub fn describe(&self) -> String {
        let one = |name: &str, base: &Option<ControllerBase>| match base {
            Some(base) => format!("{name}: v{} under {}", if base.v2 { 2 } else { 1 }, base.path.display()),
            None => format!("{name}: not available"),
        };
        format!("{}; {}", one("pids", &self.pids_base), one("memory", &self.memory_base))
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The groups of one run.
#[derive(Debug, Default)]
pub struct RunCgroups {
    groups: Vec<Group>,
}

#[derive(Debug)]
struct Group {
    path: PathBuf,
    v2: bool,
    memory: bool,
}

impl RunCgroups {
    /// Makes the run's groups: a pids group capped at `max_processes` and a
    /// memory group capped at `memory_bytes`, where supported.
    pub fn create(support: &CgroupSupport, max_processes: u64, memory_bytes: Option<u64>) -> std::io::Result<Self> {
        let name = format!("loader-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut groups = RunCgroups::default();
        if let Some(base) = &support.pids_base {
            let path = base.path.join(&name);
            fs::create_dir(&path)?;
            groups.groups.push(Group {
                path: path.clone(),
                v2: base.v2,
                memory: false,
            });
            fs::write(path.join("pids.max"), max_processes.to_string())?;
        }
        if let (Some(base), Some(bytes)) = (&support.memory_base, memory_bytes) {
            let path = base.path.join(&name);
            fs::create_dir(&path)?;
            groups.groups.push(Group {
                path: path.clone(),
                v2: base.v2,
                memory: true,
            });
            if base.v2 {
                fs::write(path.join("memory.max"), bytes.to_string())?;
                let _ = fs::write(path.join("memory.swap.max"), "0");
            } else {
                fs::write(path.join("memory.limit_in_bytes"), bytes.to_string())?;
                let _ = fs::write(path.join("memory.memsw.limit_in_bytes"), bytes.to_string());
            }
        }
        Ok(groups)
    }

    /// The `cgroup.procs` files the child writes itself into.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.groups.iter().map(|g| g.path.join("cgroup.procs")).collect()
    }

    /// Whether the kernel killed a process of the run for going over its
    /// memory limit.
    pub fn out_of_memory(&self) -> bool {
        self.groups.iter().filter(|g| g.memory).any(|g| {
            let (file, key) = if g.v2 {
                ("memory.events", "oom_kill")
            } else {
                ("memory.oom_control", "oom_kill")
            };
            fs::read_to_string(g.path.join(file)).is_ok_and(|text| {
                text.lines().any(|line| {
                    line.strip_prefix(key)
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
                })
            })
        })
    }

    /// Whether the run has a memory group.
    pub fn caps_memory(&self) -> bool {
        self.groups.iter().any(|g| g.memory)
    }
}

/// How long removing a group waits for its last processes to be gone.
const REMOVE_WAIT: Duration = Duration::from_secs(2);

impl Drop for RunCgroups {
    fn drop(&mut self) {
        let started = Instant::now();
        for group in &self.groups {
            while fs::remove_dir(&group.path).is_err() && group.path.exists() && started.elapsed() < REMOVE_WAIT {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}
