//! A scan of a plugin folder through the manifest cache: the same plugins
//! and problems a [`Discovery`] scan finds, with each file unchanged since
//! the cache recorded it described from there instead of loaded, and each
//! other file described by what the load-checking process reported on it.
//! Under the check, no file is ever loaded in this process: one the
//! checking process survived without a report believed is a problem
//! ([`ProblemKind::Unreported`]), checked again on the next scan. Only
//! without the check (trusted plugins, run in-process) are files loaded
//! here.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use plugin_api::{ApiVersion, PluginManifest};

use super::{Entry, FileStamp, ManifestCache, Timestamp};
use crate::find::discovery::{self, Discovery, LoadedPlugin, Problem, ProblemKind};
use crate::find::load_check::{check_loading, LoadCheckError, SupervisedScanError};
use crate::find::load_report::{version_of_triple, LoadOutcome};
use crate::isolate::ChildCommand;
use crate::sandbox::SandboxMode;

/// How the files the cache cannot answer for are loaded.
#[derive(Debug, Clone, Copy)]
pub enum Loading<'a> {
    /// Each is loaded first by a child process started from this command
    /// (see [`check_loading`]) in this sandbox mode, allowed this long a
    /// file, and in this process only once the child survived it.
    Supervised(&'a ChildCommand, Duration, SandboxMode),
    /// Each is loaded in this process directly.
    Direct,
}

impl Loading<'_> {
    /// Calls `on_safe` with each of `paths` that the checking child survived
    /// (all of them without the check), in order, with what loading it
    /// there gave when that was reported (never without the check);
    /// returns those whose loading crashed or stalled the child, or the
    /// error that kept the check from running (the files it did not reach
    /// are not passed on).
    fn check(
        self,
        paths: &[PathBuf],
        mut on_safe: impl FnMut(&Path, Option<LoadOutcome>),
    ) -> Result<Vec<Problem>, LoadCheckError> {
        match self {
            Loading::Supervised(checker, per_file, sandbox) => {
                check_loading(checker, paths, per_file, sandbox, on_safe)
            }
            Loading::Direct => {
                paths.iter().for_each(|path| on_safe(path, None));
                Ok(Vec::new())
            }
        }
    }
}

/// A plugin a scan found: described by the cache, or loaded by the scan.
#[derive(Debug, Clone)]
pub struct CatalogPlugin {
    pub path: PathBuf,
    /// The manifest summary (no params schemas), as in [`LoadedPlugin`];
    /// shared with the cache's entry.
    pub manifest: Arc<PluginManifest>,
    pub api_version: ApiVersion,
    /// The library, when the scan loaded it in this process.
    loaded: Option<LoadedPlugin>,
}

/// A plugin taken from the cache turned out different when loaded.
#[derive(Debug, thiserror::Error)]
#[error("{}: the manifest cache's description of this file is stale", path.display())]
pub struct StaleEntry {
    pub path: PathBuf,
}

/// Why a plugin the scan found could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginLoadError {
    #[error(transparent)]
    Stale(#[from] StaleEntry),
    #[error(transparent)]
    Check(#[from] LoadCheckError),
    /// Loading it now crashes or stalls the checking process.
    #[error("{0}")]
    Crashed(Problem),
}

impl CatalogPlugin {
    fn new(path: &Path, manifest: Arc<PluginManifest>, api_version: ApiVersion, loaded: Option<LoadedPlugin>) -> Self {
        Self {
            path: path.to_owned(),
            manifest,
            api_version,
            loaded,
        }
    }

    /// The plugin loaded in this process, ready to run in-process (an
    /// isolated run's child loads it instead, see `isolate`). One the scan
    /// did not load here (taken from the cache, or described by the
    /// checking child) is load-checked and loaded now, and must describe
    /// itself as it was described; otherwise the description was stale
    /// and nothing is returned (drop its cache entry). When the load check
    /// cannot run, the plugin is not loaded.
    pub fn load(&self, loading: Loading) -> Result<LoadedPlugin, PluginLoadError> {
        if let Some(plugin) = &self.loaded {
            return Ok(plugin.clone());
        }
        let mut loaded = None;
        let crashed = loading.check(std::slice::from_ref(&self.path), |path, _| {
            loaded = Some(discovery::load_plugin(path))
        })?;
        if let Some(problem) = crashed.into_iter().next() {
            return Err(PluginLoadError::Crashed(problem));
        }
        match loaded {
            Some(Ok(plugin)) if plugin.manifest == *self.manifest && plugin.api_version() == self.api_version => {
                Ok(plugin)
            }
            _ => Err(StaleEntry {
                path: self.path.clone(),
            }
            .into()),
        }
    }
}

/// What a scan found, as [`Discovery`] would find it (the same plugins in
/// the same order, the same problems), without loading unchanged files.
#[derive(Debug, Default)]
pub struct Catalog {
    pub plugins: Vec<CatalogPlugin>,
    pub problems: Vec<Problem>,
    /// How many files' outcomes came from the cache.
    pub cached: usize,
    /// How many files were loaded (in the checking child, when supervised).
    pub loaded: usize,
    /// How many of those were loaded in this process: all of them without
    /// the check, none when the checking child reported on each.
    pub loaded_here: usize,
}

/// One library file of the folder, as examined by a scan.
struct Candidate {
    path: PathBuf,
    canonical: PathBuf,
    stamp: Option<FileStamp>,
    /// The outcome the cache has for the file, if it can be trusted.
    cached: Option<Arc<LoadOutcome>>,
}

/// What loading gave for a file the cache could not answer for.
struct Fresh {
    outcome: LoadOutcome,
    /// Whether the file was loaded in this process.
    here: bool,
    /// The plugin, when it was loaded in this process.
    loaded: Option<LoadedPlugin>,
    /// Whether the outcome may be cached (not when the checking child gave
    /// no report believed: the file is checked again next time).
    cacheable: bool,
}

/// The reason of a file the checking child survived without a report.
pub const UNREPORTED_REASON: &str = "the load check gave no valid report on this file; it was not loaded";

impl Fresh {
    /// What the checking child reported on `path`; a problem when nothing
    /// was believed (the file is never loaded here to find out).
    fn reported(reported: Option<LoadOutcome>) -> Self {
        let (outcome, cacheable) = match reported {
            Some(outcome) => (outcome, true),
            None => (
                LoadOutcome::Problem {
                    kind: ProblemKind::Unreported,
                    reason: UNREPORTED_REASON.to_owned(),
                    declared_api_version: None,
                },
                false,
            ),
        };
        Fresh {
            outcome,
            here: false,
            loaded: None,
            cacheable,
        }
    }

    /// What loading `path` in this process gives (without the check).
    fn loaded_here(path: &Path) -> Self {
        let result = discovery::load_plugin(path);
        Fresh {
            outcome: LoadOutcome::of(&result),
            here: true,
            loaded: result.ok(),
            cacheable: true,
        }
    }
}

/// What loading gave for the files the cache could not answer for.
type FreshOutcomes = HashMap<PathBuf, Fresh>;

/// Reads each file's stamp and looks it up in the cache. Two names of one
/// file share its device and inode, so only files whose stamp shares them
/// with another's (or that have no stamp) have their canonical path
/// resolved; any other file's path is as good as its canonical one for
/// telling files apart, and resolving it costs a `readlink` a component.
fn examine(paths: Vec<PathBuf>, cache: &ManifestCache) -> Vec<Candidate> {
    let stamped: Vec<(PathBuf, Option<FileStamp>)> = paths
        .into_iter()
        .map(|path| {
            let stamp = FileStamp::of(&path);
            (path, stamp)
        })
        .collect();
    let mut names_per_file: HashMap<(u64, u64), usize> = HashMap::new();
    for stamp in stamped.iter().filter_map(|(_, stamp)| stamp.as_ref()) {
        *names_per_file.entry(stamp.file_id()).or_default() += 1;
    }
    stamped
        .into_iter()
        .map(|(path, stamp)| {
            let cached = cache.trusted(&path, stamp.as_ref()).cloned();
            let canonical = match &stamp {
                Some(stamp) if names_per_file[&stamp.file_id()] == 1 => path.clone(),
                _ => fs::canonicalize(&path).unwrap_or_else(|_| path.clone()),
            };
            Candidate {
                path,
                canonical,
                stamp,
                cached,
            }
        })
        .collect()
}

/// Loads the files without a trusted cache entry (a second name of a file
/// already to be loaded is skipped, as [`Discovery`] does); returns what
/// loading gave and the files that crashed or stalled the checking child,
/// or why the check could not run.
fn load_unknown(candidates: &[Candidate], loading: Loading) -> Result<(FreshOutcomes, Vec<Problem>), LoadCheckError> {
    let mut files = HashSet::new();
    let to_load: Vec<PathBuf> = candidates
        .iter()
        .filter(|c| c.cached.is_none() && files.insert(c.canonical.as_path()))
        .map(|c| c.path.clone())
        .collect();
    let mut fresh = FreshOutcomes::new();
    let crashed = loading.check(&to_load, |path, reported| {
        let outcome = match loading {
            Loading::Supervised(..) => Fresh::reported(reported),
            Loading::Direct => Fresh::loaded_here(path),
        };
        fresh.insert(path.to_owned(), outcome);
    })?;
    Ok((fresh, crashed))
}

/// The cache entries after a scan: the trusted ones kept as they were, the
/// loaded files recorded as examined at `examined_at`; nothing for files
/// that are gone, have no stamp, or crashed the checking child.
fn entries_after_scan(
    candidates: &[Candidate],
    fresh: &FreshOutcomes,
    cache: &ManifestCache,
    examined_at: Timestamp,
) -> HashMap<PathBuf, Entry> {
    let mut entries = HashMap::new();
    for candidate in candidates {
        let Some(stamp) = candidate.stamp else {
            continue;
        };
        let entry = match (&candidate.cached, fresh.get(&candidate.path)) {
            (Some(_), _) => cache.entries[&candidate.path].clone(),
            (None, Some(fresh)) if fresh.cacheable => Entry {
                path: candidate.path.clone(),
                stamp,
                examined_at,
                outcome: Arc::new(fresh.outcome.clone()),
            },
            (None, _) => continue,
        };
        entries.insert(candidate.path.clone(), entry);
    }
    entries
}

impl Catalog {
    /// Scans `dir` like [`Discovery::scan`]: takes the outcome of each file
    /// unchanged since `cache` recorded it from there, loads the others as
    /// `loading` says (under supervision, a file the checking child reported
    /// on is not loaded here), and records their outcomes in `cache` (save
    /// it afterwards). Files that crashed or stalled a checking child are not
    /// cached: they are checked again on every scan. When the check cannot
    /// run, the scan fails and the cache is left as it was.
    pub fn scan(dir: &Path, cache: &mut ManifestCache, loading: Loading) -> Result<Self, SupervisedScanError> {
        let examined_at = Timestamp::now();
        let candidates = examine(Discovery::candidates(dir)?, cache);
        let (fresh, crashed) = load_unknown(&candidates, loading)?;
        let entries = entries_after_scan(&candidates, &fresh, cache, examined_at);
        cache.replace(entries);
        Ok(Self::assemble(candidates, fresh, crashed))
    }

    /// The catalog of the examined files, in file-name order as
    /// [`Discovery`] builds it: a second name of a file is skipped, a
    /// second library with a taken code is a problem.
    fn assemble(candidates: Vec<Candidate>, mut fresh: FreshOutcomes, crashed: Vec<Problem>) -> Self {
        let mut catalog = Catalog {
            loaded: fresh.len(),
            loaded_here: fresh.values().filter(|f| f.here).count(),
            ..Catalog::default()
        };
        let mut seen = HashSet::new();
        for candidate in candidates {
            let (outcome, loaded, from_cache) = match (candidate.cached, fresh.remove(&candidate.path)) {
                (Some(cached), _) => (cached, None, true),
                (None, Some(fresh)) => (Arc::new(fresh.outcome), fresh.loaded, false),
                (None, None) => continue,
            };
            if !seen.insert(candidate.canonical) {
                continue;
            }
            catalog.cached += usize::from(from_cache);
            catalog.add_outcome(&candidate.path, &outcome, loaded);
        }
        catalog.problems.extend(crashed);
        catalog.problems.sort_by(|a, b| a.path.cmp(&b.path));
        catalog
    }

    /// Adds what loading the file at `path` gave (`loaded`: the plugin,
    /// when it was loaded in this process).
    fn add_outcome(&mut self, path: &Path, outcome: &LoadOutcome, loaded: Option<LoadedPlugin>) {
        match outcome {
            LoadOutcome::Plugin { manifest, api_version } => self.add(CatalogPlugin::new(
                path,
                manifest.clone(),
                version_of_triple(*api_version),
                loaded,
            )),
            problem => self.problems.extend(problem.problem(path)),
        }
    }

    /// Adds a plugin, or a problem when its code is taken (the first file
    /// in name order keeps it, as in [`Discovery`]).
    fn add(&mut self, plugin: CatalogPlugin) {
        match self.plugins.iter().find(|p| p.manifest.code == plugin.manifest.code) {
            Some(first) => {
                let problem =
                    discovery::duplicate_code(&plugin.path, &plugin.manifest.code, &first.path, plugin.api_version);
                self.problems.push(problem);
            }
            None => self.plugins.push(plugin),
        }
    }

    /// The plugin called `name`, as [`Discovery::find`] finds it.
    pub fn find(&self, name: &str) -> Option<&CatalogPlugin> {
        discovery::find_by_name(&self.plugins, name, |p| (&p.path, &p.manifest))
    }

    /// The codes of all usable plugins.
    pub fn codes(&self) -> Vec<&str> {
        self.plugins.iter().map(|p| p.manifest.code.as_str()).collect()
    }
}
