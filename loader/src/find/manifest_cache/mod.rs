//! The manifest cache: what each library of a plugin folder said about
//! itself (its manifest summary and plugin-api version), or why it is not a
//! plugin, keyed the way git's index keys files (device, inode, size,
//! modification and change times to the nanosecond). A scan
//! ([`Catalog::scan`]) then neither loads nor load-checks a file that has
//! not changed; a changed, new or removed file is noticed every time.
//!
//! The cache is an optimisation only. A missing, unreadable or corrupt cache
//! file, or one written by another loader build, is an empty cache; an entry
//! for a file that changed less than [`RACY_MARGIN`] before it was examined
//! is not trusted (it could change again without its times changing); and a
//! plugin taken from the cache is compared with its entry by the process
//! that loads it to use it (an isolated run's child, or the loader itself
//! for an in-process run, see [`CatalogPlugin::load`]): a mismatch is an
//! error, and the entry is dropped ([`ManifestCache::forget_file`]). A
//! file's entry is what the load-checking process reported for it (or,
//! without the check, what loading it here gave).

mod catalog;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use catalog::{Catalog, CatalogPlugin, Loading, PluginLoadError, StaleEntry};

use crate::find::load_report::LoadOutcome;

/// The version of the cache file's layout.
const FORMAT: u32 = 2;

/// A file examined less than this after its last change may change again
/// within the same tick of its file system's clock (FAT keeps 2 s ticks),
/// keeping its times: such an entry is not trusted, as git treats "racily
/// clean" index entries, and the file is examined again on the next scan.
pub const RACY_MARGIN: Duration = Duration::from_secs(2);

/// The folder under the user's cache folder that holds the cache files.
const CACHE_SUBDIR: &str = "synapse-loader";

/// A point in time as seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    fn now() -> Self {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            secs: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
            nanos: since_epoch.subsec_nanos(),
        }
    }

    fn as_nanos(self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }
}

/// What identifies a file's version without reading it: git's index keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: Timestamp,
    ctime: Timestamp,
}

impl FileStamp {
    /// The stamp of the file `path` names (links followed); `None` when it
    /// cannot be read, or on a platform without inode numbers.
    #[cfg(unix)]
    pub fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).ok()?;
        let time = |secs: i64, nanos: i64| Timestamp {
            secs,
            nanos: u32::try_from(nanos).unwrap_or(0),
        };
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub fn of(_: &Path) -> Option<Self> {
        None
    }

    /// The file's device and inode: the same for every name of the file.
    fn file_id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Whether the file's last change was at least [`RACY_MARGIN`] before `time`.
    fn settled_before(&self, time: Timestamp) -> bool {
        let last_change = self.mtime.max(self.ctime).as_nanos();
        last_change + RACY_MARGIN.as_nanos() as i128 <= time.as_nanos()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    path: PathBuf,
    stamp: FileStamp,
    /// When the file was examined (taken before its stamp was read).
    examined_at: Timestamp,
    /// Shared with the scan that takes it from here: the catalog it hands
    /// out shares the manifest, copying nothing.
    outcome: Arc<LoadOutcome>,
}

impl Entry {
    fn trusted_for(&self, stamp: &FileStamp) -> bool {
        self.stamp == *stamp && self.stamp.settled_before(self.examined_at)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    format: u32,
    host: String,
    plugin_dir: PathBuf,
    entries: Vec<Entry>,
}

/// The cached outcomes of one plugin folder, read from and saved to one
/// file in the user's cache folder.
#[derive(Debug, Default)]
pub struct ManifestCache {
    /// Where the cache is saved; `None` for a disabled cache.
    file: Option<PathBuf>,
    host: String,
    plugin_dir: PathBuf,
    entries: HashMap<PathBuf, Entry>,
    changed: bool,
}

impl ManifestCache {
    /// No cache: every file is loaded, nothing is kept.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// The cache of `plugin_dir`, kept in `cache_dir` for the loader build
    /// `host` (see [`host_identity`]): a cache written by another build is
    /// not used. A missing, unreadable or corrupt cache file is an empty
    /// cache.
    pub fn open(cache_dir: &Path, plugin_dir: &Path, host: &str) -> Self {
        let plugin_dir = fs::canonicalize(plugin_dir).unwrap_or_else(|_| plugin_dir.to_owned());
        let file = cache_dir.join(cache_file_name(&plugin_dir));
        let entries = match read_cache_file(&file) {
            Ok(cached) if cached.format == FORMAT && cached.host == host && cached.plugin_dir == plugin_dir => cached
                .entries
                .into_iter()
                .map(|entry| (entry.path.clone(), entry))
                .collect(),
            Ok(_) => HashMap::new(),
            Err(why) => {
                tracing::debug!("manifest cache {} not used: {why}", file.display());
                HashMap::new()
            }
        };
        Self {
            file: Some(file),
            host: host.to_owned(),
            plugin_dir,
            entries,
            changed: false,
        }
    }

    /// The user's cache folder for the loader: `$XDG_CACHE_HOME/synapse-loader`,
    /// else `$HOME/.cache/synapse-loader`; `None` when neither is set.
    pub fn default_dir() -> Option<PathBuf> {
        let absolute = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|path| path.is_absolute())
        };
        absolute("XDG_CACHE_HOME")
            .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
            .map(|dir| dir.join(CACHE_SUBDIR))
    }

    /// The file the cache is saved to; `None` when disabled.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Drops every entry: the next scan loads every file again.
    pub fn forget(&mut self) {
        self.changed |= !self.entries.is_empty();
        self.entries.clear();
    }

    /// Drops the entry of the file `path` (as a scan named it): the next
    /// scan examines that file afresh.
    pub fn forget_file(&mut self, path: &Path) {
        self.changed |= self.entries.remove(path).is_some();
    }

    /// Saves the cache if a scan changed it (atomically: a concurrent reader
    /// sees the old or the new file). A disabled cache saves nothing.
    pub fn save(&mut self) -> std::io::Result<()> {
        let Some(file) = self.file.as_deref().filter(|_| self.changed) else {
            return Ok(());
        };
        let mut entries: Vec<Entry> = self.entries.values().cloned().collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let contents = CacheFile {
            format: FORMAT,
            host: self.host.clone(),
            plugin_dir: self.plugin_dir.clone(),
            entries,
        };
        let text = serde_json::to_vec(&contents).map_err(std::io::Error::other)?;
        if let Some(dir) = file.parent() {
            fs::create_dir_all(dir)?;
        }
        let temporary = file.with_extension(format!("{}.tmp", std::process::id()));
        fs::write(&temporary, text)
            .and_then(|()| fs::rename(&temporary, file))
            .inspect_err(|_| {
                let _ = fs::remove_file(&temporary);
            })?;
        self.changed = false;
        Ok(())
    }

    fn trusted(&self, path: &Path, stamp: Option<&FileStamp>) -> Option<&Arc<LoadOutcome>> {
        let entry = self.entries.get(path)?;
        stamp.filter(|stamp| entry.trusted_for(stamp)).map(|_| &entry.outcome)
    }

    /// Keeps only `entries` (those of the files the scan found); a disabled
    /// cache keeps nothing.
    fn replace(&mut self, entries: HashMap<PathBuf, Entry>) {
        if self.file.is_none() {
            return;
        }
        let same = entries.len() == self.entries.len()
            && entries.iter().all(|(path, entry)| {
                self.entries
                    .get(path)
                    .is_some_and(|old| old.examined_at == entry.examined_at)
            });
        self.changed |= !same;
        self.entries = entries;
    }
}

/// Identifies the running loader build: its version and its executable's
/// stamp, so that a rebuilt loader (whose rules for what loads may differ)
/// does not use the outcomes an older one cached. `None` when the
/// executable cannot be found.
pub fn host_identity() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let stamp = FileStamp::of(&exe)?;
    Some(format!(
        "loader {} {}",
        env!("CARGO_PKG_VERSION"),
        serde_json::to_string(&stamp).ok()?
    ))
}

fn read_cache_file(file: &Path) -> Result<CacheFile, String> {
    let text = fs::read(file).map_err(|e| e.to_string())?;
    serde_json::from_slice(&text).map_err(|e| format!("corrupt: {e}"))
}

/// One cache file per plugin folder, named by a hash (FNV-1a, stable across
/// builds) of the folder's canonical path.
fn cache_file_name(plugin_dir: &Path) -> String {
    let hash = plugin_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("manifests-{hash:016x}.json")
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    const HOST: &str = "test host";

    fn lib_name(stem: &str) -> String {
        format!("{stem}.{}", std::env::consts::DLL_EXTENSION)
    }

    /// A plugin folder of files that are not libraries (each a problem
    /// with a reason, loaded directly), and a cache folder.
    fn folders(files: &[&str]) -> (tempfile::TempDir, tempfile::TempDir) {
        let plugins = tempfile::tempdir().unwrap();
        for stem in files {
            fs::write(plugins.path().join(lib_name(stem)), format!("not a library: {stem}")).unwrap();
        }
        (plugins, tempfile::tempdir().unwrap())
    }

    fn scan(plugins: &Path, cache: &mut ManifestCache) -> Catalog {
        Catalog::scan(plugins, cache, Loading::Direct).unwrap()
    }

    /// Moves the cache's examination times past the racy margin, as if the
    /// scan had happened long after the files last changed.
    fn settle(cache: &mut ManifestCache) {
        for entry in cache.entries.values_mut() {
            entry.examined_at.secs += RACY_MARGIN.as_secs() as i64 + 1;
        }
        cache.changed = true;
    }

    fn reasons(catalog: &Catalog) -> Vec<(PathBuf, String)> {
        catalog
            .problems
            .iter()
            .map(|p| (p.path.clone(), p.reason.clone()))
            .collect()
    }

    #[test]
    fn settled_files_come_from_the_cache_with_the_outcome_they_had() {
        let (plugins, cache_dir) = folders(&["a", "b"]);
        let mut cache = ManifestCache::open(cache_dir.path(), plugins.path(), HOST);
        let first = scan(plugins.path(), &mut cache);
        assert_eq!((first.cached, first.loaded), (0, 2));
        settle(&mut cache);
        cache.save().unwrap();

        let mut reopened = ManifestCache::open(cache_dir.path(), plugins.path(), HOST);
        let second = scan(plugins.path(), &mut reopened);
        assert_eq!((second.cached, second.loaded), (2, 0));
        assert_eq!(reasons(&second), reasons(&first));
    }

    #[test]
    fn a_symbolic_link_is_a_second_name_and_a_hard_link_a_file_of_its_own_as_without_the_cache() {
        let (plugins, cache_dir) = folders(&["a", "z"]);
        let dir = plugins.path();
        fs::hard_link(dir.join(lib_name("a")), dir.join(lib_name("b"))).unwrap();
        std::os::unix::fs::symlink(dir.join(lib_name("z")), dir.join(lib_name("c"))).unwrap();
        let without_cache = crate::find::discovery::Discovery::scan(dir).unwrap();
        let expected: Vec<PathBuf> = without_cache.problems.iter().map(|p| p.path.clone()).collect();
        let names = |stems: &[&str]| -> Vec<PathBuf> { stems.iter().map(|s| dir.join(lib_name(s))).collect() };
        assert_eq!(
            expected,
            names(&["a", "b", "c"]),
            "the link c is met first, z is its second name"
        );
        let mut cache = ManifestCache::open(cache_dir.path(), dir, HOST);
        for _ in 0..2 {
            let catalog = scan(dir, &mut cache);
            let found: Vec<PathBuf> = catalog.problems.iter().map(|p| p.path.clone()).collect();
            assert_eq!(found, expected);
            settle(&mut cache);
        }
    }

    #[test]
    fn a_file_examined_right_after_it_changed_is_examined_again() {
        let (plugins, cache_dir) = folders(&["a"]);
        let mut cache = ManifestCache::open(cache_dir.path(), plugins.path(), HOST);
        scan(plugins.path(), &mut cache);
        let again = scan(plugins.path(), &mut cache);
        assert_eq!((again.cached, again.loaded), (0, 1));
    }

    #[test]
    fn changed_new_and_removed_files_are_noticed() {
        let (plugins, cache_dir) = folders(&["a", "b", "c"]);
        let mut cache = ManifestCache::open(cache_dir.path(), plugins.path(), HOST);
        scan(plugins.path(), &mut cache);
        settle(&mut cache);
        fs::write(plugins.path().join(lib_name("a")), "").unwrap();
        fs::remove_file(plugins.path().join(lib_name("b"))).unwrap();
        fs::write(plugins.path().join(lib_name("d")), "new").unwrap();

        let catalog = scan(plugins.path(), &mut cache);
        assert_eq!((catalog.cached, catalog.loaded), (1, 2));
        let files: Vec<String> = catalog
            .problems
            .iter()
            .map(|p| p.path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["a", "c", "d"]);
        assert!(
            catalog.problems[0].reason.contains("empty file"),
            "{:?}",
            catalog.problems
        );
        assert!(!cache.entries.contains_key(&plugins.path().join(lib_name("b"))));
    }

    #[test]
    fn a_corrupt_truncated_or_foreign_cache_file_is_an_empty_cache() {
        let (plugins, cache_dir) = folders(&["a"]);
        let mut cache = ManifestCache::open(cache_dir.path(), plugins.path(), HOST);
        scan(plugins.path(), &mut cache);
        settle(&mut cache);
        cache.save().unwrap();
        let file = cache.file().unwrap().to_owned();
        let saved = fs::read(&file).unwrap();

        let cached_count = || {
            let mut cache = ManifestCache::open(cache_dir.path(), plugins.path(), HOST);
            scan(plugins.path(), &mut cache).cached
        };
        assert_eq!(cached_count(), 1);
        assert_eq!(
            ManifestCache::open(cache_dir.path(), plugins.path(), "another loader build")
                .entries
                .len(),
            0
        );
        fs::write(&file, &saved[..saved.len() / 2]).unwrap();
        assert_eq!(cached_count(), 0);
        fs::write(&file, b"\0\xff garbage").unwrap();
        assert_eq!(cached_count(), 0);
    }

    #[test]
    fn a_forgotten_file_is_examined_afresh_and_the_others_still_come_from_the_cache() {
        let (plugins, cache_dir) = folders(&["a", "b"]);
        let mut cache = ManifestCache::open(cache_dir.path(), plugins.path(), HOST);
        scan(plugins.path(), &mut cache);
        settle(&mut cache);
        cache.save().unwrap();
        let mut reopened = ManifestCache::open(cache_dir.path(), plugins.path(), HOST);
        reopened.forget_file(&plugins.path().join(lib_name("a")));
        reopened.save().unwrap();
        let mut again = ManifestCache::open(cache_dir.path(), plugins.path(), HOST);
        let catalog = scan(plugins.path(), &mut again);
        assert_eq!((catalog.cached, catalog.loaded), (1, 1));
    }

    #[test]
    fn a_file_the_check_gave_no_report_on_is_a_problem_never_loaded_here_nor_cached() {
        let (plugins, cache_dir) = folders(&["a"]);
        let silent = crate::isolate::ChildCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "cat <&3 >/dev/null; echo 'loading 0' >&3; echo 'loaded 0' >&3".into(),
            ],
        };
        let mut cache = ManifestCache::open(cache_dir.path(), plugins.path(), HOST);
        let loading = Loading::Supervised(&silent, Duration::from_secs(30), crate::sandbox::SandboxMode::Off);
        let catalog = Catalog::scan(plugins.path(), &mut cache, loading).unwrap();
        assert_eq!((catalog.loaded, catalog.loaded_here), (1, 0));
        assert_eq!(catalog.problems.len(), 1);
        assert_eq!(
            catalog.problems[0].kind,
            crate::find::discovery::ProblemKind::Unreported
        );
        assert_eq!(catalog.problems[0].reason, catalog::UNREPORTED_REASON);
        assert!(cache.entries.is_empty(), "checked again next time");
    }

    #[test]
    fn a_disabled_cache_examines_everything_and_saves_nothing() {
        let (plugins, _) = folders(&["a"]);
        let mut cache = ManifestCache::disabled();
        scan(plugins.path(), &mut cache);
        settle(&mut cache);
        assert_eq!(scan(plugins.path(), &mut cache).cached, 0);
        assert!(cache.save().is_ok());
        assert!(cache.file().is_none());
    }

    #[test]
    fn each_folder_has_its_own_cache_file() {
        let name = cache_file_name(Path::new("/srv/plugins"));
        assert_eq!(name, cache_file_name(Path::new("/srv/plugins")));
        assert_ne!(name, cache_file_name(Path::new("/srv/plugins2")));
        assert!(name.starts_with("manifests-") && name.ends_with(".json"), "{name}");
    }
}
