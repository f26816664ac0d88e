//! A run's work directory: the one place a sandboxed plugin may write
//! (unless granted more). Made fresh for each run under the temporary
//! folder (`$TMPDIR`, else `/tmp`), readable by the user alone, and
//! removed with everything in it after the run unless it is kept on
//! purpose (`--keep-work-dir`), also when the process ends with `exit()`
//! while a run is on (a second Ctrl-C, an in-process plugin's `exit()`):
//! those paths call [`remove_live_work_dirs`]. Only a loader killed outright
//! (SIGKILL) leaves its work directory behind.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// A run's work directory; removed when dropped unless kept, or unless it
/// was the caller's to begin with.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    keep: bool,
    /// Made for the run (else given by the caller, and left alone).
    made: bool,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The work directories this process made and has not removed yet, nor
/// been asked to keep.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes every work directory this process made and still holds: for a
/// process about to end without running destructors (`exit()`).
pub fn remove_live_work_dirs() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for path in live {
        remove(&path);
    }
}

impl WorkDir {
    /// Makes a new work directory in `parent` (the temporary folder when
    /// `None`); kept after the run when `keep`.
    pub fn create(parent: Option<&Path>, keep: bool) -> io::Result<Self> {
        let parent = parent.map(Path::to_owned).unwrap_or_else(std::env::temp_dir);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!("loader-run-{}-{n}-{nanos:08x}", std::process::id()));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    if !keep {
                        LIVE.lock().unwrap_or_else(|e| e.into_inner()).push(path.clone());
                    }
                    return Ok(WorkDir { path, keep, made: true });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot create a work directory in `{}`: {e}", parent.display()),
                    ))
                }
            }
        }
    }

    /// A folder the caller chose (`RunSettings::work_dir`): used as it is,
    /// never removed.
    pub fn given(path: &Path) -> Self {
        WorkDir {
            path: path.to_owned(),
            keep: true,
            made: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether one made for the run stays after it (`--keep-work-dir`).
    pub fn kept(&self) -> bool {
        self.keep && self.made
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|live| live != &self.path);
        remove(&self.path);
    }
}

/// Removes a work directory and everything in it.
fn remove(path: &Path) {
    if fs::remove_dir_all(path).is_err() {
        // A plugin may have taken its own rights away from a folder.
        make_removable(path);
        if let Err(e) = fs::remove_dir_all(path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("cannot remove the work directory {}: {e}", path.display());
            }
        }
    }
}

/// Gives the owner full rights on every folder below `dir`, so that its
/// contents can be removed.
fn make_removable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            make_removable(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_ending_with_exit_removes_the_work_dirs_it_holds() {
        let kept = WorkDir::create(None, true).unwrap();
        let live = WorkDir::create(None, false).unwrap();
        fs::write(live.path().join("file"), b"x").unwrap();
        remove_live_work_dirs();
        assert!(!live.path().exists());
        assert!(kept.path().exists(), "a kept work dir stays");
        drop(live);
        fs::remove_dir_all(kept.path()).unwrap();
    }

    #[test]
    fn a_work_dir_is_private_and_gone_after_the_run_unless_kept() {
        let dir = WorkDir::create(None, false).unwrap();
        let path = dir.path().to_owned();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::create_dir(path.join("locked")).unwrap();
        fs::write(path.join("locked/file"), b"x").unwrap();
        fs::set_permissions(path.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        drop(dir);
        assert!(!path.exists());

        let kept = WorkDir::create(None, true).unwrap();
        let path = kept.path().to_owned();
        drop(kept);
        assert!(path.exists());
        fs::remove_dir_all(path).unwrap();
    }
}
