//! Loading a plugin library: opening it, reading the plugin-api version it
//! declares, checking its layout against the release of that version (from
//! [`super::releases`]), and calling its entry points.

use std::path::Path;
use std::sync::Arc;

use abi_stable::library::{AbiHeaderRef, LibHeader, ROOT_MODULE_LOADER_NAME_WITH_NUL};
use abi_stable::std_types::{RResult, RString};
use abi_stable::type_layout::TypeLayout;

use super::host_vtable::{context_for, ContextHost};
use super::releases::{CURRENT, RELEASES};
use super::{layout_mismatch, ApiVersion, PluginModuleRef, API_VERSION};

/// Why a file could not be loaded as a plugin. Each message names both
/// versions where they matter, and what the plugin author can do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened as a dynamic library (the loader's reason).
    #[error("cannot open the library: {0}")]
    Open(String),
    /// The library has no abi_stable root module symbol.
    #[error("not a plugin: the library exports no abi_stable root module ({0})")]
    NoRootModule(String),
    /// The library's abi_stable header is invalid (the reason).
    #[error("not a plugin: {0}")]
    InvalidHeader(String),
    /// The plugin-api version in the header could not be read.
    #[error("the plugin declares an unreadable plugin-api version ({0})")]
    UnreadableVersion(String),
    /// The plugin's major version differs from this loader's.
    #[error(
        "built against plugin-api {plugin}, but this loader has plugin-api {host}: major versions must match; \
         rebuild the plugin against plugin-api {}.x",
        host.major
    )]
    IncompatibleMajor {
        /// The version the plugin declares.
        plugin: ApiVersion,
        /// This loader's version.
        host: ApiVersion,
    },
    /// The plugin's header carries no layout to check.
    #[error("built against plugin-api {plugin} without layout information, so its ABI cannot be checked")]
    NoLayout {
        /// The version the plugin declares.
        plugin: ApiVersion,
    },
    /// The plugin's layout is not that of the release it declares (or, when
    /// it is newer than this loader, does not extend this loader's).
    #[error("{}", layout_message(*plugin, *host, difference))]
    Layout {
        /// The version the plugin declares.
        plugin: ApiVersion,
        /// This loader's version.
        host: ApiVersion,
        /// Where the layouts differ.
        difference: String,
    },
    /// The root module could not be initialised (the reason).
    #[error("the plugin's root module failed to initialise: {0}")]
    Init(String),
}

impl LoadError {
    /// The plugin-api version the plugin declares, when it could be read.
    pub fn declared_api_version(&self) -> Option<ApiVersion> {
        match self {
            LoadError::IncompatibleMajor { plugin, .. }
            | LoadError::NoLayout { plugin }
            | LoadError::Layout { plugin, .. } => Some(*plugin),
            LoadError::Open(_)
            | LoadError::NoRootModule(_)
            | LoadError::InvalidHeader(_)
            | LoadError::UnreadableVersion(_)
            | LoadError::Init(_) => None,
        }
    }
}

/// A layout mismatch in one line: which side is older, against which
/// release the plugin was checked, what differs, and what to do.
fn layout_message(plugin: ApiVersion, host: ApiVersion, difference: &str) -> String {
    let released = format!("{}.{}", plugin.major, plugin.minor);
    let rebuild = format!("rebuild the plugin against a released plugin-api {}.x", plugin.major);
    let unreleased = format!(
        "its layout is not the one plugin-api {released} released ({difference}); it was built from a changed \
         or unreleased plugin-api {plugin}: {rebuild}"
    );
    match plugin.minor.cmp(&host.minor) {
        std::cmp::Ordering::Less => format!(
            "built against plugin-api {plugin}, older than this loader's plugin-api {host} (which checks it \
             against the {released} release), but {unreleased}"
        ),
        std::cmp::Ordering::Equal => {
            format!(
                "built against plugin-api {plugin}, the release of this loader (plugin-api {host}), but {unreleased}"
            )
        }
        std::cmp::Ordering::Greater => format!(
            "built against plugin-api {plugin}, newer than this loader's plugin-api {host}, and its layout does \
             not extend {host}'s ({difference}); that plugin-api {plugin} broke the append-only rule: {rebuild}"
        ),
    }
}

/// The layout a plugin declaring `declared` is checked against: the frozen
/// layout of that release, or, for a plugin newer than this crate, the
/// current one (a newer minor release only appends fields, so it must
/// extend this one).
pub fn expected_layout(declared: ApiVersion) -> &'static TypeLayout {
    match RELEASES.get(declared.minor as usize) {
        Some(release) => release.root_module,
        None => CURRENT.root_module,
    }
}

/// A loaded plugin library. Libraries are never unloaded (abi_stable keeps
/// `'static` references into them), so this is cheap to copy around.
#[derive(Clone, Copy)]
pub struct PluginLibrary {
    module: PluginModuleRef,
    api_version: ApiVersion,
}

impl std::fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("api_version", &self.api_version)
            .finish()
    }
}

/// Loads the library at `path`, checks that it is a plugin built against a
/// compatible plugin-api, and initialises its root module.
///
/// Loading runs the library's static initialisers: a hostile library can take
/// the process down here, which is why the loader can run plugins in a child.
pub fn load_library(path: &Path) -> Result<PluginLibrary, LoadError> {
    let header = open_header(path)?;
    let api_version = ApiVersion::from_version_strings(&header.version_strings())
        .ok_or_else(|| LoadError::UnreadableVersion(format!("{:?}", header.version_strings())))?;
    if api_version.major != API_VERSION.major {
        return Err(LoadError::IncompatibleMajor {
            plugin: api_version,
            host: API_VERSION,
        });
    }
    let Some(layout) = header.layout() else {
        return Err(LoadError::NoLayout { plugin: api_version });
    };
    // Checked against the release the plugin declares, so that every field
    // it has is checked and none it lacks is required.
    layout_mismatch::check(expected_layout(api_version), layout).map_err(|difference| LoadError::Layout {
        plugin: api_version,
        host: API_VERSION,
        difference,
    })?;
    // SAFETY: the layout was checked just above against the release the plugin
    // was built with. Every release's root module is a prefix of the current
    // one with the same prefix fields, and abi_stable stores the plugin's own
    // field count beside its module: accessors of fields the plugin lacks
    // return `None` instead of reading past its struct.
    let module = unsafe { header.unchecked_layout::<PluginModuleRef>() }.map_err(|e| LoadError::Init(e.to_string()))?;
    Ok(PluginLibrary { module, api_version })
}

fn open_header(path: &Path) -> Result<&'static LibHeader, LoadError> {
    let library = open_library(path)?;
    // SAFETY: `ROOT_MODULE_LOADER_NAME` is the symbol under which abi_stable
    // exports a `LibHeader` static whose first field is an `AbiHeader`; an
    // `AbiHeaderRef` is a pointer to it, which is what libloading gives for a
    // data symbol. Whether it really is an abi_stable header is checked by
    // `upgrade` (magic string and abi_stable version) before anything else
    // is read from it.
    let header_ref: AbiHeaderRef = unsafe {
        *library
            .get::<AbiHeaderRef>(ROOT_MODULE_LOADER_NAME_WITH_NUL.as_bytes())
            .map_err(|e| LoadError::NoRootModule(e.to_string()))?
    };
    let header = header_ref
        .upgrade()
        .map_err(|e| LoadError::InvalidHeader(e.to_string()))?;
    // abi_stable hands out `'static` references into the library: it must stay
    // loaded for the rest of the process.
    std::mem::forget(library);
    Ok(header)
}

#[cfg(unix)]
fn open_library(path: &Path) -> Result<libloading::Library, LoadError> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // SAFETY: loading a library runs its initialisers; that is the inherent
    // risk of in-process plugins, documented on `load_library`. RTLD_NOW makes
    // a missing dependency fail here with a message instead of at a call.
    unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
        .map(Into::into)
        .map_err(|e| LoadError::Open(e.to_string()))
}

#[cfg(not(unix))]
fn open_library(path: &Path) -> Result<libloading::Library, LoadError> {
    // SAFETY: see the unix variant.
    unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::Open(e.to_string()))
}

impl PluginLibrary {
    /// The plugin's root module, for fields without an accessor here (a
    /// field the plugin lacks reads as `None`).
    pub fn root_module(&self) -> PluginModuleRef {
        self.module
    }

    /// The plugin-api version the plugin was built against.
    pub fn api_version(&self) -> ApiVersion {
        self.api_version
    }

    /// The plugin's manifest as JSON text.
    pub fn manifest_json(&self) -> Result<String, String> {
        result_string((self.module.manifest())())
    }

    /// The manifest without schemas, cheaper to make; the full manifest from
    /// a plugin that predates plugin-api 1.1, which added the summary.
    pub fn manifest_summary_json(&self) -> Result<String, String> {
        match self.module.manifest_summary() {
            Some(summary) => result_string(summary()),
            None => self.manifest_json(),
        }
    }

    /// Runs `action` with `params_json` and the host's context. The plugin
    /// catches its own panics and reports them as a failure.
    pub fn run_action<H: ContextHost>(&self, host: &Arc<H>, action: &str, params_json: &str) -> Result<String, String> {
        let context = context_for(host);
        result_string((self.module.run_action())(context, action.into(), params_json.into()))
    }

    /// Validates params without running the action; `None` when the plugin
    /// predates plugin-api 1.1, which added this entry point.
    pub fn validate_params(&self, action: &str, params_json: &str) -> Option<Result<(), String>> {
        let validate = self.module.validate_params()?;
        Some(
            validate(action.into(), params_json.into())
                .into_result()
                .map_err(String::from),
        )
    }
}

fn result_string(result: RResult<RString, RString>) -> Result<String, String> {
    result.into_result().map(String::from).map_err(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(minor: u32) -> ApiVersion {
        ApiVersion {
            major: 1,
            minor,
            patch: 0,
        }
    }

    /// Whether two layouts are of the same Rust type (a layout constant may
    /// live at several addresses).
    fn same_type(a: &TypeLayout, b: &TypeLayout) -> bool {
        a.get_utypeid() == b.get_utypeid()
    }

    #[test]
    fn a_plugin_is_checked_against_the_release_it_declares() {
        for release in &RELEASES {
            assert!(
                same_type(expected_layout(version(release.minor)), release.root_module),
                "a plugin declaring 1.{} is checked against the frozen 1.{} layout",
                release.minor,
                release.minor
            );
        }
        let newer = version(API_VERSION.minor + 1);
        assert!(same_type(expected_layout(newer), CURRENT.root_module));
    }

    #[test]
    fn layout_messages_say_which_side_is_older_and_what_to_do() {
        let host = version(2);
        let older = LoadError::Layout {
            plugin: version(1),
            host,
            difference: "root module: the plugin's `PluginModule` has 3 fields where the release has 4".to_owned(),
        }
        .to_string();
        assert!(
            older.starts_with("built against plugin-api 1.1.0, older than this loader's plugin-api 1.2.0")
                && older.contains("its layout is not the one plugin-api 1.1 released")
                && older.contains("has 3 fields where the release has 4")
                && older.ends_with("rebuild the plugin against a released plugin-api 1.x"),
            "{older}"
        );
        let newer = LoadError::Layout {
            plugin: version(3),
            host,
            difference: "at run_action: a different type: expected u64, found u32".to_owned(),
        }
        .to_string();
        assert!(
            newer.starts_with("built against plugin-api 1.3.0, newer than this loader's plugin-api 1.2.0")
                && newer.contains("expected u64, found u32"),
            "{newer}"
        );
        assert_eq!(older.lines().count() + newer.lines().count(), 2);
    }
}
