//! The machine's processes as `/proc` shows them, for tests that must
//! leave none behind: who descends from whom, and whether a process seen
//! earlier (the same pid and start time) is still there.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// One process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub group: u32,
    /// Clock ticks after boot: with the pid, names the process for good.
    pub start: u64,
    /// `Z` for a zombie (ended, waiting to be reaped).
    pub state: char,
    pub name: String,
}

fn read(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    Some(Proc {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        group: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        name,
    })
}

/// Every process now.
pub fn all() -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(read)
                .collect()
        })
        .unwrap_or_default()
}

/// The processes descending from `root` now (not `root` itself).
pub fn descendants(root: u32) -> Vec<Proc> {
    let everyone = all();
    let mut found: Vec<Proc> = Vec::new();
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for child in everyone.iter().filter(|p| p.ppid == parent) {
            if !found.iter().any(|f| f.pid == child.pid) {
                found.push(child.clone());
                parents.push(child.pid);
            }
        }
    }
    found
}

/// The processes of process group `group` now.
pub fn in_group(group: u32) -> Vec<Proc> {
    all().into_iter().filter(|p| p.group == group).collect()
}

/// Those of `seen` that still run (same pid and start time, not a zombie).
pub fn still_running(seen: &[Proc]) -> Vec<Proc> {
    seen.iter()
        .filter_map(|p| read(p.pid).filter(|now| now.start == p.start && now.state != 'Z'))
        .collect()
}

/// Waits up to `timeout` for every process of `seen` to end; returns those
/// still running then.
pub fn wait_until_gone(seen: &[Proc], timeout: Duration) -> Vec<Proc> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = still_running(seen);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
