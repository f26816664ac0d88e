//! Finding and ending what a run left behind when no PID namespace ends it
//! for the loader: an in-process run (`--in-process`), or an isolated run
//! on a system that refused the child its namespaces. The loader makes
//! itself a "child subreaper", so that a process the run started and that
//! left the run's process group (`setsid`, a double fork) is re-parented to
//! the loader instead of to init; at the end of the run, every child of
//! the loader that started during the run and that the loader did not
//! start itself is killed, round after round until none is left (the
//! children of a killed orphan come to the loader in turn), and reaped.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use crate::sys;

/// Children the loader started itself and still waits for (a run's child,
/// a load check, the events file's helper): never taken for orphans.
static OWN_CHILDREN: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

/// Records `pid` as a child the loader started and will wait for.
pub fn own_child(pid: u32) {
    crate::events::lock(&OWN_CHILDREN)
        .get_or_insert_with(HashSet::new)
        .insert(pid);
}

/// Forgets `pid` once it has been waited for.
pub fn own_child_ended(pid: u32) {
    if let Some(set) = crate::events::lock(&OWN_CHILDREN).as_mut() {
        set.remove(&pid);
    }
}

fn is_own(pid: u32) -> bool {
    crate::events::lock(&OWN_CHILDREN)
        .as_ref()
        .is_some_and(|set| set.contains(&pid))
}

/// A run's orphans, to be ended when it is over.
#[derive(Debug)]
pub struct Orphans {
    /// When the run started, in the clock ticks of `/proc/PID/stat`.
    started: u64,
}

/// The most rounds of killing [`Orphans::end`] makes.
const ROUNDS: usize = 200;

impl Orphans {
    /// Starts watching for the orphans of a run starting now.
    pub fn adopt() -> Orphans {
        if !sys::become_subreaper() {
            tracing::warn!("cannot become a child subreaper: processes a run moves out of its group may outlive it");
        }
        Orphans {
            started: sys::ticks_since_boot().saturating_sub(1),
        }
    }

    /// Kills and reaps every orphan of the run. Returns how many there were.
    pub fn end(self) -> usize {
        let mut ended = HashSet::new();
        for _ in 0..ROUNDS {
            let orphans: Vec<u32> = sys::children_of_this_process()
                .into_iter()
                .filter(|child| child.start_ticks >= self.started && !is_own(child.pid))
                .map(|child| child.pid)
                .collect();
            if orphans.is_empty() {
                break;
            }
            for &pid in &orphans {
                sys::kill_process(pid);
            }
            std::thread::sleep(Duration::from_millis(2));
            for pid in orphans {
                if sys::reap_if_ended(pid) {
                    ended.insert(pid);
                }
            }
        }
        if !ended.is_empty() {
            tracing::debug!("killed {} process(es) the run left behind", ended.len());
        }
        ended.len()
    }
}
