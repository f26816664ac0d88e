//! The plugin folder as the commands see it: every library is first loaded
//! in a checking child (see `loader::find::load_check`), whose report describes
//! it, so one whose loading crashes or hangs is reported and skipped, and
//! no library is ever loaded in the loader to be listed or found; when that
//! check cannot run nothing is loaded and the command fails. What each
//! library said is kept in the manifest cache (see `loader::find::manifest_cache`),
//! so an unchanged library is not checked again to be listed or found. Only
//! an in-process run loads its plugin here ([`PluginFolder::find`]), and
//! only `run --in-process --no-load-check` skips the check.
//!
//! A description that turns out wrong when the plugin is loaded to be used
//! (by an isolated child, or here in-process) is an error, and its cache
//! entry is dropped ([`PluginFolder::stale`]): the next command describes
//! the file afresh.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loader::find::discovery::{LoadedPlugin, ScanError};
use loader::find::load_check::SupervisedScanError;
use loader::find::manifest_cache::{host_identity, Catalog, CatalogPlugin, Loading, ManifestCache, PluginLoadError};
use loader::isolate::{ChildCommand, NotAsDescribed};
use loader::sandbox::SandboxMode;

use crate::exit_code::{CliError, ExitCode};
use crate::suggest::did_you_mean;
use plugin_api::ActionManifest;
use plugin_api::PluginManifest;

pub struct PluginFolder {
    dir: PathBuf,
    cache: ManifestCache,
    /// The checking child's command; `None` when the check is off.
    checker: Option<ChildCommand>,
    /// How long one library may take to load in a child process.
    load_timeout: Duration,
    /// The sandbox of the checking children.
    sandbox: SandboxMode,
}

impl PluginFolder {
    /// The folder `dir`, through the user's manifest cache unless `use_cache`
    /// is false (or there is no cache folder: no `$XDG_CACHE_HOME` or
    /// `$HOME`), its libraries load-checked unless `checked` is false, each
    /// allowed `load_timeout` to load, in `sandbox`. Fails (exit 5) when the
    /// check is on but the loader's executable, which runs it, cannot be
    /// found.
    pub fn open(
        dir: &Path,
        use_cache: bool,
        checked: bool,
        load_timeout: Duration,
        sandbox: SandboxMode,
    ) -> Result<Self, CliError> {
        tracing::info!("plugin folder {}", dir.display());
        let cache = match (use_cache, ManifestCache::default_dir(), host_identity()) {
            (true, Some(cache_dir), Some(host)) => ManifestCache::open(&cache_dir, dir, &host),
            _ => ManifestCache::disabled(),
        };
        let checker = checked
            .then(|| {
                ChildCommand::current_exe(&["__load-check"]).map_err(|e| {
                    check_failed(format!(
                        "cannot find the loader executable to check plugin libraries: {e}"
                    ))
                })
            })
            .transpose()?;
        Ok(Self {
            dir: dir.to_owned(),
            cache,
            checker,
            load_timeout,
            sandbox,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn loading(&self) -> Loading<'_> {
        loading(self.checker.as_ref(), self.load_timeout, self.sandbox)
    }

    /// Every plugin of the folder, and every file that is not one.
    pub fn scan(&mut self) -> Result<Catalog, CliError> {
        let started = Instant::now();
        let checked = self.checker.is_some();
        let loading = loading(self.checker.as_ref(), self.load_timeout, self.sandbox);
        let catalog = Catalog::scan(&self.dir, &mut self.cache, loading).map_err(|e| match e {
            SupervisedScanError::Scan(e) => self.missing_folder(e),
            SupervisedScanError::Check(e) => check_failed(e.to_string()),
        })?;
        tracing::debug!(
            "found {} plugin(s) and skipped {} file(s) in {:.1} ms{}",
            catalog.plugins.len(),
            catalog.problems.len(),
            started.elapsed().as_secs_f64() * 1000.0,
            if checked && catalog.loaded > 0 {
                " (each library loaded was checked in a child process first)"
            } else {
                ""
            }
        );
        tracing::debug!(
            "manifest cache: {} file(s) described by the cache, {} loaded ({} of them in this process)",
            catalog.cached,
            catalog.loaded,
            catalog.loaded_here
        );
        if let Err(e) = self.cache.save() {
            let file = self.cache.file().unwrap_or(Path::new("")).display();
            tracing::debug!("cannot save the manifest cache {file}: {e}");
        }
        for plugin in &catalog.plugins {
            tracing::debug!("plugin {} from {}", plugin.manifest.code, plugin.path.display());
        }
        for problem in &catalog.problems {
            tracing::info!("skipped {problem}");
        }
        Ok(catalog)
    }

    /// The plugin called `name`, loaded in this process: for an in-process
    /// run only. When it turns out not to be the plugin described, that is
    /// an error and its cache entry is dropped (see [`Self::stale`]).
    pub fn find(&mut self, name: &str) -> Result<LoadedPlugin, CliError> {
        let plugin = self.describe(name)?;
        match plugin.load(self.loading()) {
            Err(PluginLoadError::Stale(stale)) => Err(self.stale(&stale.path, stale.to_string())),
            loaded => loaded.map_err(load_error),
        }
    }

    /// The plugin called `name` as the folder describes it, without loading
    /// it in this process: from the cache, or from what the checking child
    /// reported. When the cache knew no plugin of that name, the folder is
    /// scanned again without it. Whoever runs the plugin from this
    /// description must check that the library still matches it (an
    /// isolated run's child does).
    pub fn describe(&mut self, name: &str) -> Result<CatalogPlugin, CliError> {
        let catalog = self.scan()?;
        if let Some(plugin) = catalog.find(name) {
            return Ok(plugin.clone());
        }
        if catalog.cached == 0 {
            return Err(self.not_found(name, &catalog));
        }
        tracing::debug!("no plugin {name:?} in the cached descriptions; scanning again without the cache");
        self.cache.forget();
        let catalog = self.scan()?;
        catalog
            .find(name)
            .cloned()
            .ok_or_else(|| self.not_found(name, &catalog))
    }

    /// How long a library may take to load in a child process.
    pub fn load_timeout(&self) -> Duration {
        self.load_timeout
    }

    /// The sandbox mode of the children that load plugin libraries.
    pub fn sandbox(&self) -> SandboxMode {
        self.sandbox
    }

    /// The error for a plugin whose library, loaded to be used, was not
    /// the plugin the folder described (`why`): its cache entry is dropped
    /// (and the cache saved), so that the next command describes the file
    /// afresh; nothing of it ran but its loading.
    pub fn stale(&mut self, library: &Path, why: String) -> CliError {
        self.cache.forget_file(library);
        let saved = match self.cache.save() {
            Ok(()) => "its manifest cache entry was dropped: the next command describes the file afresh".to_owned(),
            Err(e) => format!("its manifest cache entry could not be dropped ({e}); try --no-cache"),
        };
        CliError::new(ExitCode::ActionFailed, why)
            .with_causes(vec![saved])
            .with_help("run the command again (a library rebuilt after it was listed ends this way too)")
    }

    /// [`Self::stale`] for what an isolated child found.
    pub fn not_as_described(&mut self, stale: NotAsDescribed) -> CliError {
        self.stale(&stale.library, stale.to_string())
    }

    fn missing_folder(&self, error: ScanError) -> CliError {
        CliError::usage(error.to_string()).with_help(format!(
            "point to another folder with --plugins DIR or {PLUGIN_DIR_VAR}=DIR"
        ))
    }

    fn not_found(&self, name: &str, catalog: &Catalog) -> CliError {
        let dir = self.dir.display();
        let codes = catalog.codes();
        let listed = if codes.is_empty() {
            "none".to_owned()
        } else {
            codes.join(", ")
        };
        let mut causes = vec![format!("plugins in `{dir}`: {listed}")];
        causes.extend(catalog.problems.iter().map(|p| format!("not loaded: {p}")));
        let error = CliError::new(ExitCode::NotFound, format!("no plugin {name:?} in `{dir}`")).with_causes(causes);
        match did_you_mean(name, codes) {
            Some(suggestion) => error.with_help(suggestion),
            None => error,
        }
    }
}

/// Why a plugin described by the folder could not be loaded, as the
/// command's error.
fn load_error(error: PluginLoadError) -> CliError {
    match error {
        PluginLoadError::Check(e) => check_failed(e.to_string()),
        PluginLoadError::Stale(e) => CliError::new(ExitCode::ActionFailed, e.to_string()),
        PluginLoadError::Crashed(problem) => CliError::new(ExitCode::ActionFailed, problem.to_string()),
    }
}

/// The load check could not run: nothing was loaded unchecked.
fn check_failed(why: String) -> CliError {
    CliError::new(ExitCode::LoadCheckFailed, why)
        .with_help("only `run --in-process --no-load-check` loads plugins without the check (trusted plugins only)")
}

pub(crate) fn loading(checker: Option<&ChildCommand>, load_timeout: Duration, sandbox: SandboxMode) -> Loading<'_> {
    match checker {
        Some(checker) => Loading::Supervised(checker, load_timeout, sandbox),
        None => Loading::Direct,
    }
}

/// The environment variable naming the plugin folder.
const PLUGIN_DIR_VAR: &str = "LOADER_PLUGIN_DIR";

pub(crate) fn plugin_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os(PLUGIN_DIR_VAR).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("plugins"))
}

pub(crate) fn find_action<'a>(manifest: &'a PluginManifest, name: &str) -> Result<&'a ActionManifest, CliError> {
    manifest.action(name).ok_or_else(|| {
        let actions = manifest.action_names();
        let error = CliError::new(
            ExitCode::NotFound,
            format!("plugin {:?} has no action {name:?}", manifest.code),
        )
        .with_causes(vec![format!("actions: {}", list_or_none(&actions))]);
        match did_you_mean(name, actions.iter().map(AsRef::as_ref)) {
            Some(suggestion) => error.with_help(suggestion),
            None => error,
        }
    })
}

pub(crate) fn find_action_if_named(plugin: &CatalogPlugin, action: Option<&str>) -> Result<(), CliError> {
    action
        .map(|name| find_action(&plugin.manifest, name).map(drop))
        .unwrap_or(Ok(()))
}

fn list_or_none<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ")
}
