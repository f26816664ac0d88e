//! Plugin discovery: scans a folder for the platform's library files, loads
//! each once, and sorts the outcome into usable plugins and problem files
//! (with the reason), so that one bad file never hides the others.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use plugin_api::host::{load_library, LoadError, PluginLibrary};
use plugin_api::{ApiVersion, PluginManifest};

/// A plugin library that loaded and described itself.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub manifest: PluginManifest,
    pub library: PluginLibrary,
}

impl LoadedPlugin {
    /// The plugin-api version the plugin was built against.
    pub fn api_version(&self) -> ApiVersion {
        self.library.api_version()
    }

    /// The full manifest, with the actions' params schemas (discovery keeps
    /// only the summary, which is cheaper to get).
    pub fn full_manifest(&self) -> Result<PluginManifest, String> {
        let json = self
            .library
            .manifest_json()
            .map_err(|e| format!("the plugin could not describe itself: {e}"))?;
        serde_json::from_str(&json).map_err(|e| format!("the plugin's manifest is not valid: {e}"))
    }
}

/// The plugin `name` designates among `plugins`: the one whose code it is,
/// else the first whose name or file stem it is (see [`answers_to`]).
/// `describe` gives a plugin's file and manifest.
pub fn find_by_name<'a, P>(
    plugins: &'a [P],
    name: &str,
    describe: impl Fn(&P) -> (&Path, &PluginManifest),
) -> Option<&'a P> {
    plugins.iter().find(|p| describe(p).1.code == name).or_else(|| {
        plugins.iter().find(|p| {
            let (path, manifest) = describe(p);
            answers_to(path, manifest, name)
        })
    })
}

/// Whether `name` designates the plugin `manifest` loaded from `path`: its
/// code, its name, or the file stem (with or without the `lib` prefix).
pub fn answers_to(path: &Path, manifest: &PluginManifest, name: &str) -> bool {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    manifest.code == name || manifest.name == name || stem == name || stem.strip_prefix("lib") == Some(name)
}

/// A file in the plugin folder that is not a usable plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// What kind of problem it is, for programs to branch on.
    pub kind: ProblemKind,
    /// The reason, in one line, for people.
    pub reason: String,
    /// The plugin-api version the file declares, when it could be read.
    pub declared_api_version: Option<ApiVersion>,
}

/// Why a file is not a usable plugin, as `list --json` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The file could not be read.
    Unreadable,
    /// Not a library for this machine: a directory, an empty or truncated
    /// file, another format or architecture, or one the system cannot open.
    NotALibrary,
    /// A library, but not a plugin: no abi_stable root module, or one whose
    /// header or declared version cannot be read.
    NotAPlugin,
    /// Built against another major version of plugin-api.
    IncompatibleMajor,
    /// Its layout is not the one of the plugin-api release it declares.
    LayoutMismatch,
    /// Its root module failed to initialise.
    InitFailed,
    /// It loaded, but could not describe itself (its manifest failed or is
    /// not valid).
    BadManifest,
    /// Another file already provides a plugin with the same code.
    Duplicate,
    /// Loading it crashed or stalled the process that tried it first.
    CrashedWhileLoading,
    /// The process that loaded it first survived, but gave no valid report
    /// on it (it is not loaded by the loader itself to find out).
    Unreported,
}

impl ProblemKind {
    /// The kind's name in `list --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::NotALibrary => "not_a_library",
            ProblemKind::NotAPlugin => "not_a_plugin",
            ProblemKind::IncompatibleMajor => "incompatible_major",
            ProblemKind::LayoutMismatch => "layout_mismatch",
            ProblemKind::InitFailed => "init_failed",
            ProblemKind::BadManifest => "bad_manifest",
            ProblemKind::Duplicate => "duplicate",
            ProblemKind::CrashedWhileLoading => "crashed_while_loading",
            ProblemKind::Unreported => "unreported",
        }
    }

    fn of_load_error(error: &LoadError) -> Self {
        match error {
            LoadError::Open(_) => ProblemKind::NotALibrary,
            LoadError::NoRootModule(_) | LoadError::InvalidHeader(_) | LoadError::UnreadableVersion(_) => {
                ProblemKind::NotAPlugin
            }
            LoadError::IncompatibleMajor { .. } => ProblemKind::IncompatibleMajor,
            LoadError::NoLayout { .. } | LoadError::Layout { .. } => ProblemKind::LayoutMismatch,
            LoadError::Init(_) => ProblemKind::InitFailed,
        }
    }
}

impl Problem {
    /// A problem with no declared plugin-api version.
    pub fn new(path: PathBuf, kind: ProblemKind, reason: String) -> Self {
        Self {
            path,
            kind,
            reason,
            declared_api_version: None,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// The folder could not be scanned at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the plugin folder `{}`: {source}", path.display())]
pub struct ScanError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct Discovery {
    pub plugins: Vec<LoadedPlugin>,
    pub problems: Vec<Problem>,
    /// The canonical paths loaded so far: a file reached twice (through a
    /// link) is loaded once.
    seen_files: HashSet<PathBuf>,
}

impl Discovery {
    /// Scans `dir` (not recursively) for files with the platform's library
    /// extension, in file-name order, and loads them.
    pub fn scan(dir: &Path) -> Result<Self, ScanError> {
        Ok(Self::load_files(&Self::candidates(dir)?))
    }

    /// The files in `dir` named like libraries of this platform, sorted.
    pub fn candidates(dir: &Path) -> Result<Vec<PathBuf>, ScanError> {
        let scan_error = |source| ScanError {
            path: dir.to_owned(),
            source,
        };
        let mut candidates: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(scan_error)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| is_library_name(path))
            .collect();
        candidates.sort();
        Ok(candidates)
    }

    /// Loads the given files as plugins.
    pub fn load_files(paths: &[PathBuf]) -> Self {
        let mut discovery = Discovery::default();
        for path in paths {
            discovery.load_file(path);
        }
        discovery
    }

    /// Loads one more file: a plugin, or a problem with the reason.
    pub fn load_file(&mut self, path: &Path) {
        let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        if !self.seen_files.insert(canonical) {
            return;
        }
        match load_plugin(path) {
            Ok(plugin) => self.add(plugin),
            Err(refusal) => self.problems.push(refusal.into_problem(path)),
        }
    }

    fn add(&mut self, plugin: LoadedPlugin) {
        if let Some(first) = self.plugins.iter().find(|p| p.manifest.code == plugin.manifest.code) {
            let problem = duplicate_code(&plugin.path, &plugin.manifest.code, &first.path, plugin.api_version());
            self.problems.push(problem);
        } else {
            self.plugins.push(plugin);
        }
    }

    /// The plugin called `name` (code, name or file stem).
    pub fn find(&self, name: &str) -> Option<&LoadedPlugin> {
        find_by_name(&self.plugins, name, |p| (&p.path, &p.manifest))
    }
}

/// The problem of a second library with a plugin code already taken by
/// the library at `first`.
pub fn duplicate_code(path: &Path, code: &str, first: &Path, declared: ApiVersion) -> Problem {
    Problem {
        path: path.to_owned(),
        kind: ProblemKind::Duplicate,
        reason: format!(
            "plugin code {code:?} is already provided by {}; this copy is ignored",
            first.display()
        ),
        declared_api_version: Some(declared),
    }
}

/// Whether `path` is named like a library of this platform.
pub fn is_library_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == std::env::consts::DLL_EXTENSION)
}

/// Why [`load_plugin`] refused a file: what a [`Problem`] says, without
/// the path (the manifest cache keeps it per file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What kind of problem it is.
    pub kind: ProblemKind,
    /// The reason, for people.
    pub reason: String,
    /// The plugin-api version the file declares, where it could be read.
    pub declared_api_version: Option<ApiVersion>,
}

impl Refusal {
    fn new(kind: ProblemKind, reason: String) -> Self {
        Self {
            kind,
            reason,
            declared_api_version: None,
        }
    }

    /// The problem of the file at `path`.
    pub fn into_problem(self, path: &Path) -> Problem {
        Problem {
            path: path.to_owned(),
            kind: self.kind,
            reason: self.reason,
            declared_api_version: self.declared_api_version,
        }
    }
}

/// Loads one library as a plugin, or says why it is not one.
pub fn load_plugin(path: &Path) -> Result<LoadedPlugin, Refusal> {
    check_file(path)?;
    let library = load_library(path).map_err(|e| Refusal {
        kind: ProblemKind::of_load_error(&e),
        reason: e.to_string(),
        declared_api_version: e.declared_api_version(),
    })?;
    let bad_manifest = |reason: String| Refusal {
        kind: ProblemKind::BadManifest,
        reason,
        declared_api_version: Some(library.api_version()),
    };
    let manifest_json = library
        .manifest_summary_json()
        .map_err(|e| bad_manifest(format!("the plugin could not describe itself: {e}")))?;
    let manifest: PluginManifest = serde_json::from_str(&manifest_json)
        .map_err(|e| bad_manifest(format!("the plugin's manifest is not valid: {e}")))?;
    if let Some(problem) = manifest_problem(&manifest) {
        return Err(bad_manifest(problem));
    }
    Ok(LoadedPlugin {
        path: path.to_owned(),
        manifest,
        library,
    })
}

/// What makes a manifest that parsed unusable: an empty code, or
/// permissions no grant could match (plugin-api refuses to export those, but
/// a plugin need not be built with it).
fn manifest_problem(manifest: &PluginManifest) -> Option<String> {
    if manifest.code.trim().is_empty() {
        return Some("the plugin's manifest has an empty code".to_owned());
    }
    let permissions = manifest.permissions.check().err()?;
    Some(format!(
        "the plugin's manifest declares invalid permissions: {permissions}"
    ))
}

/// Refuses what `dlopen` would report badly, hang on, or crash on.
fn check_file(path: &Path) -> Result<(), Refusal> {
    let unreadable = |e: std::io::Error| Refusal::new(ProblemKind::Unreadable, format!("cannot read the file: {e}"));
    let not_a_library = |reason: &str| Refusal::new(ProblemKind::NotALibrary, reason.to_owned());
    let metadata = fs::metadata(path).map_err(unreadable)?;
    if metadata.is_dir() {
        return Err(not_a_library("a directory, not a library file"));
    }
    if !metadata.is_file() {
        return Err(not_a_library(
            "not a regular file (a device, socket or pipe), so not a library",
        ));
    }
    if metadata.len() == 0 {
        return Err(not_a_library("an empty file, not a library"));
    }
    let file = fs::File::open(path).map_err(unreadable)?;
    crate::find::preflight::check_open_library(file).map_err(|reason| not_a_library(&reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("loader-discovery-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn lib_name(stem: &str) -> String {
        format!("{stem}.{}", std::env::consts::DLL_EXTENSION)
    }

    #[test]
    fn a_manifest_with_an_empty_code_or_invalid_permissions_is_refused_naming_the_problem() {
        let manifest = |json: serde_json::Value| -> PluginManifest { serde_json::from_value(json).unwrap() };
        let valid = manifest(serde_json::json!({
            "code": "p", "name": "P", "version": "1", "permissions": { "net": ["localhost:80"] }
        }));
        assert_eq!(manifest_problem(&valid), None);
        let blank = manifest(serde_json::json!({ "code": " ", "name": "P", "version": "1" }));
        assert_eq!(
            manifest_problem(&blank).as_deref(),
            Some("the plugin's manifest has an empty code")
        );
        let invalid = manifest(serde_json::json!({
            "code": "p", "name": "P", "version": "1", "permissions": { "env": ["A-B"] }
        }));
        let problem = manifest_problem(&invalid).unwrap();
        assert!(
            problem.starts_with("the plugin's manifest declares invalid permissions: permissions.env entry \"A-B\""),
            "{problem}"
        );
    }

    #[test]
    fn files_that_are_not_libraries_are_reported_with_a_reason() {
        let dir = temp_dir("bad");
        fs::write(dir.join(lib_name("text")), "not a library").unwrap();
        fs::write(dir.join(lib_name("empty")), "").unwrap();
        fs::create_dir(dir.join(lib_name("folder"))).unwrap();
        fs::write(dir.join("notes.txt"), "ignored: wrong extension").unwrap();
        let discovery = Discovery::scan(&dir).unwrap();
        assert!(discovery.plugins.is_empty());
        let reasons: Vec<(String, String)> = discovery
            .problems
            .iter()
            .map(|p| {
                (
                    p.path.file_name().unwrap().to_string_lossy().into_owned(),
                    p.reason.clone(),
                )
            })
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            discovery.problems.iter().all(|p| p.kind == ProblemKind::NotALibrary),
            "{:?}",
            discovery.problems
        );
        assert!(reasons[0].1.contains("empty file"), "{reasons:?}");
        assert!(reasons[1].1.contains("directory"), "{reasons:?}");
        assert!(
            reasons[2].1.contains("no ELF header") || reasons[2].1.contains("cannot open"),
            "{reasons:?}"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_it() {
        let err = Discovery::scan(Path::new("/nonexistent/plugins")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/plugins"));
    }
}
