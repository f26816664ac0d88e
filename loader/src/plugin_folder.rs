//! The plugin folder as the commands see it: every library is first loaded
//! in a checking child (see `loader::load_check`), so one whose loading
//! crashes or hangs is reported and skipped instead of taking the loader
//! down; and what each library said is kept in the manifest cache (see
//! `loader::manifest_cache`), so an unchanged library is neither loaded nor
//! checked again to be listed or found, and `run` loads only its plugin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loader::discovery::LoadedPlugin;
use loader::isolate::ChildCommand;
use loader::manifest_cache::{host_identity, Catalog, Loading, ManifestCache};

use crate::exit::{CliError, ExitCode};

/// How long one library may take to load in the checking child process.
const LOAD_CHECK_TIME_PER_FILE: Duration = Duration::from_secs(30);

pub struct PluginFolder {
    dir: PathBuf,
    cache: ManifestCache,
    checker: Option<ChildCommand>,
}

impl PluginFolder {
    /// The folder `dir`, through the user's manifest cache unless `use_cache`
    /// is false (or there is no cache folder: no `$XDG_CACHE_HOME` or `$HOME`).
    pub fn open(dir: &Path, use_cache: bool) -> Self {
        let cache = match (use_cache, ManifestCache::default_dir(), host_identity()) {
            (true, Some(cache_dir), Some(host)) => ManifestCache::open(&cache_dir, dir, &host),
            _ => ManifestCache::disabled(),
        };
        let checker = ChildCommand::current_exe(&["__load-check", "--"])
            .inspect_err(|e| {
                tracing::warn!("cannot find the loader executable to check plugin libraries in a child: {e}")
            })
            .ok();
        Self {
            dir: dir.to_owned(),
            cache,
            checker,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn loading(&self) -> Loading<'_> {
        loading(self.checker.as_ref())
    }

    /// Every plugin of the folder, and every file that is not one.
    pub fn scan(&mut self) -> Result<Catalog, CliError> {
        let catalog = Catalog::scan(&self.dir, &mut self.cache, loading(self.checker.as_ref()))
            .map_err(|e| CliError::usage(e.to_string()))?;
        tracing::debug!(
            "manifest cache: {} file(s) described by the cache, {} loaded",
            catalog.cached,
            catalog.loaded
        );
        if let Err(e) = self.cache.save() {
            let file = self.cache.file().unwrap_or(Path::new("")).display();
            tracing::debug!("cannot save the manifest cache {file}: {e}");
        }
        for problem in &catalog.problems {
            tracing::info!("skipped {problem}");
        }
        Ok(catalog)
    }

    /// The plugin called `name`, loaded. When the cache described it, or
    /// knew no plugin of that name, and turns out wrong, the folder is
    /// scanned again without the cache: the answer is always the one a scan
    /// without the cache gives.
    pub fn find(&mut self, name: &str) -> Result<LoadedPlugin, CliError> {
        let catalog = self.scan()?;
        match catalog.find(name).map(|plugin| plugin.load(self.loading())) {
            Some(Ok(plugin)) => return Ok(plugin),
            None if catalog.cached == 0 => return Err(self.not_found(name, &catalog)),
            Some(Err(stale)) => tracing::debug!("{stale}; scanning again without the cache"),
            None => tracing::debug!("no plugin {name:?} in the cached descriptions; scanning again without the cache"),
        }
        self.cache.forget();
        let catalog = self.scan()?;
        let plugin = catalog.find(name).ok_or_else(|| self.not_found(name, &catalog))?;
        plugin
            .load(self.loading())
            .map_err(|e| CliError::new(ExitCode::ActionFailed, e.to_string()))
    }

    fn not_found(&self, name: &str, catalog: &Catalog) -> CliError {
        let dir = self.dir.display();
        let mut details = vec![format!("plugins in {dir}: {}", catalog.codes().join(", "))];
        details.extend(catalog.problems.iter().map(|p| format!("not loaded: {p}")));
        CliError::new(ExitCode::NotFound, format!("no plugin {name:?} in {dir}")).with_details(details)
    }
}

fn loading(checker: Option<&ChildCommand>) -> Loading<'_> {
    match checker {
        Some(checker) => Loading::Supervised(checker, LOAD_CHECK_TIME_PER_FILE),
        None => Loading::Direct,
    }
}
