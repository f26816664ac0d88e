//! The host's half of the boundary: loading a plugin library and checking it
//! against the layout of the plugin-api version it declares, calling its
//! entry points, and exposing a host's Rust callbacks as a [`HostVtable`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use abi_stable::library::{AbiHeaderRef, LibHeader, LibraryError, ROOT_MODULE_LOADER_NAME_WITH_NUL};
use abi_stable::prefix_type::WithMetadata;
use abi_stable::staticref;
use abi_stable::std_types::{ROption, RResult, RStr, RString};

use super::{
    v1_0, ApiVersion, ClientKind, HostContext, HostState, HostStatePtr, HostVtable, HostVtableRef, PluginModuleRef,
    API_VERSION,
};

/// What the host does for each context method. The loader implements this;
/// the boundary turns it into a [`HostVtable`].
///
/// Implementations must be thread-safe: plugin code may call the context from
/// several threads at once.
pub trait ContextHost: Send + Sync + 'static {
    /// `set_progress`; an error is the reason the call was refused.
    fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), String>;
    /// `set_metrics` with the value as JSON text.
    fn set_metrics(&self, value_json: &str, step: &str) -> Result<(), String>;
    /// `log` with the data as JSON text.
    fn log(&self, event: &str, data_json: &str, file: Option<&str>);
    /// `log_message` with the level's name.
    fn log_message(&self, message: &str, level: &str);
    /// `log_dev_event` with the data as JSON text.
    fn log_dev_event(&self, message: &str, data_json: Option<&str>);
    /// The environment the plugin may see, as a JSON object of strings.
    fn env_json(&self) -> String;
    /// The job id, if any.
    fn job_id(&self) -> Option<String>;
    /// The checkpoint as a JSON object (`category`, `path`, further fields).
    fn checkpoint_json(&self) -> Option<String>;
    /// Whether the action has been asked to stop.
    fn is_cancelled(&self) -> bool;
    /// Whether a client of this kind is configured.
    fn has_client(&self, kind: ClientKind) -> bool;
    /// Sends a request (JSON text) to a client and returns its answer.
    fn client_request(&self, kind: ClientKind, request_json: &str) -> Result<String, String>;
}

/// Why a file could not be loaded as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The system loader could not open the file.
    #[error("cannot open the library: {0}")]
    Open(String),
    /// The library exports no abi_stable root module.
    #[error("not a plugin: the library exports no abi_stable root module ({0})")]
    NoRootModule(String),
    /// The library's abi_stable header is invalid.
    #[error("not a plugin: {0}")]
    InvalidHeader(String),
    /// The plugin's declared plugin-api version cannot be read.
    #[error("the plugin declares an unreadable plugin-api version ({0})")]
    UnreadableVersion(String),
    /// Another major version of plugin-api.
    #[error("built for plugin-api {plugin}, but this loader has plugin-api {host}: major versions must match")]
    IncompatibleMajor {
        /// The plugin's plugin-api.
        plugin: ApiVersion,
        /// The loader's plugin-api.
        host: ApiVersion,
    },
    /// The library carries no layout information to check.
    #[error("built for plugin-api {plugin} without layout information, so its ABI cannot be checked")]
    NoLayout {
        /// The plugin's plugin-api.
        plugin: ApiVersion,
    },
    /// The plugin's types do not match the version it declares.
    #[error("the plugin's types do not match plugin-api {plugin} (was plugin-api changed without a version bump?): {reason}")]
    Layout {
        /// The plugin's plugin-api.
        plugin: ApiVersion,
        /// abi_stable's summary of the mismatch.
        reason: String,
    },
    /// The root module's initialiser failed.
    #[error("the plugin's root module failed to initialise: {0}")]
    Init(String),
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
    if header.layout().is_none() {
        return Err(LoadError::NoLayout { plugin: api_version });
    }
    let layout_error = |e: LibraryError| match e {
        LibraryError::AbiInstability(_) => LoadError::Layout {
            plugin: api_version,
            reason: summarize_layout_error(&e.to_string()),
        },
        other => LoadError::Init(other.to_string()),
    };
    // Check against the layout of the newest release the plugin knows, so that
    // every field it has is checked and none it lacks is required.
    if api_version.minor == 0 {
        header.ensure_layout::<v1_0::PluginModuleRef>().map_err(layout_error)?;
    } else {
        header.ensure_layout::<PluginModuleRef>().map_err(layout_error)?;
    }
    // SAFETY: the layout was checked just above against the release the plugin
    // was built with. Every release's root module is a prefix of the current
    // one with the same prefix fields, and abi_stable stores the plugin's own
    // field count beside its module: accessors of fields the plugin lacks
    // return `None` instead of reading past its struct.
    let module = unsafe { header.unchecked_layout::<PluginModuleRef>() }.map_err(|e| LoadError::Init(e.to_string()))?;
    Ok(PluginLibrary { module, api_version })
}

/// abi_stable's layout errors print every type on the path to the mismatch,
/// hundreds of lines. Keeps what a person needs: the path of field names
/// from the root module to the mismatch, and the mismatch itself.
pub fn summarize_layout_error(full: &str) -> String {
    let Some(last_block) = full.rsplit("error(s)inside:").next() else {
        return full.to_owned();
    };
    let fields: Vec<&str> = last_block
        .lines()
        .filter_map(|l| l.trim().strip_prefix("field_name:"))
        .filter(|name| !name.is_empty() && name.chars().any(char::is_alphabetic))
        .collect();
    let verdict: Vec<&str> = match last_block.find("\nError:") {
        Some(at) => last_block[at..]
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect(),
        None => return full.to_owned(),
    };
    let verdict = verdict
        .join(" ")
        .replace("Error:", "")
        .replace("Expected: ", "expected ")
        .replace(" Found: ", ", found ");
    format!("{} (at {})", verdict.trim(), fields.join("."))
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

/// The context handed to a plugin for a run with this host. `host` must stay
/// alive for the duration of the call it is passed to; the plugin takes its
/// own reference (`retain`) if it keeps the context longer.
pub fn context_for<H: ContextHost>(host: &Arc<H>) -> HostContext {
    HostContext {
        state: Arc::as_ptr(host).cast::<HostState>(),
        vtable: VtableFor::<H>::VTABLE,
    }
}

struct VtableFor<H>(std::marker::PhantomData<H>);

impl<H: ContextHost> VtableFor<H> {
    staticref!(const VALUE: WithMetadata<HostVtable> = WithMetadata::new(HostVtable {
        retain: retain::<H>,
        release: release::<H>,
        set_progress: set_progress::<H>,
        set_metrics: set_metrics::<H>,
        log: log::<H>,
        log_message: log_message::<H>,
        log_dev_event: log_dev_event::<H>,
        env: env::<H>,
        job_id: job_id::<H>,
        checkpoint: checkpoint::<H>,
        is_cancelled: is_cancelled::<H>,
        has_client: has_client::<H>,
        client_request: client_request::<H>,
    }));
    const VTABLE: HostVtableRef = HostVtableRef(Self::VALUE.as_prefix());
}

/// Runs a host callback with the host behind `state`, turning a panic into
/// `on_panic` so that it never unwinds into plugin code.
fn with_host<H: ContextHost, R>(state: HostStatePtr, on_panic: impl FnOnce(String) -> R, f: impl FnOnce(&H) -> R) -> R {
    // SAFETY: `state` was made from an `Arc<H>` by `context_for::<H>` (this
    // function is only reachable through `VtableFor::<H>`), and the plugin
    // only calls the vtable while the host keeps that Arc alive for the call
    // or the plugin holds a reference taken with `retain`.
    let host = unsafe { &*state.cast::<H>() };
    catch_unwind(AssertUnwindSafe(|| f(host))).unwrap_or_else(|payload| on_panic(panic_message(&*payload)))
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

fn opt_str<'a>(value: &'a ROption<RStr<'_>>) -> Option<&'a str> {
    value.as_ref().map(|s| s.as_str()).into_option()
}

fn host_panicked(message: String) -> RString {
    format!("the host failed while handling this call: {message}").into()
}

fn client_kind(raw: u32) -> Option<ClientKind> {
    match raw {
        0 => Some(ClientKind::Backend),
        1 => Some(ClientKind::Agent),
        _ => None,
    }
}

extern "C" fn retain<H: ContextHost>(state: HostStatePtr) {
    // SAFETY: `state` comes from `Arc::as_ptr` of a live `Arc<H>` (see
    // `with_host`); adding a count keeps it alive until the matching release.
    unsafe { Arc::increment_strong_count(state.cast::<H>()) }
}

extern "C" fn release<H: ContextHost>(state: HostStatePtr) {
    // SAFETY: pairs with a `retain` the plugin made earlier, so the count being
    // given back exists.
    unsafe { Arc::decrement_strong_count(state.cast::<H>()) }
}

extern "C" fn set_progress<H: ContextHost>(
    state: HostStatePtr,
    current: u64,
    total: u64,
    step: ROption<RStr<'_>>,
) -> RResult<(), RString> {
    with_host(
        state,
        |m| RResult::RErr(host_panicked(m)),
        |h: &H| {
            h.set_progress(current, total, opt_str(&step))
                .map_err(RString::from)
                .into()
        },
    )
}

extern "C" fn set_metrics<H: ContextHost>(
    state: HostStatePtr,
    value: RStr<'_>,
    step: RStr<'_>,
) -> RResult<(), RString> {
    with_host(
        state,
        |m| RResult::RErr(host_panicked(m)),
        |h: &H| {
            h.set_metrics(value.as_str(), step.as_str())
                .map_err(RString::from)
                .into()
        },
    )
}

extern "C" fn log<H: ContextHost>(state: HostStatePtr, event: RStr<'_>, data: RStr<'_>, file: ROption<RStr<'_>>) {
    with_host(state, drop, |h: &H| {
        h.log(event.as_str(), data.as_str(), opt_str(&file))
    })
}

extern "C" fn log_message<H: ContextHost>(state: HostStatePtr, message: RStr<'_>, level: RStr<'_>) {
    with_host(state, drop, |h: &H| h.log_message(message.as_str(), level.as_str()))
}

extern "C" fn log_dev_event<H: ContextHost>(state: HostStatePtr, message: RStr<'_>, data: ROption<RStr<'_>>) {
    with_host(state, drop, |h: &H| h.log_dev_event(message.as_str(), opt_str(&data)))
}

extern "C" fn env<H: ContextHost>(state: HostStatePtr) -> RString {
    with_host(state, |_| RString::from("{}"), |h: &H| h.env_json().into())
}

extern "C" fn job_id<H: ContextHost>(state: HostStatePtr) -> ROption<RString> {
    with_host(state, |_| ROption::RNone, |h: &H| h.job_id().map(RString::from).into())
}

extern "C" fn checkpoint<H: ContextHost>(state: HostStatePtr) -> ROption<RString> {
    with_host(
        state,
        |_| ROption::RNone,
        |h: &H| h.checkpoint_json().map(RString::from).into(),
    )
}

extern "C" fn is_cancelled<H: ContextHost>(state: HostStatePtr) -> bool {
    with_host(state, |_| false, |h: &H| h.is_cancelled())
}

extern "C" fn has_client<H: ContextHost>(state: HostStatePtr, kind: u32) -> bool {
    with_host(
        state,
        |_| false,
        |h: &H| client_kind(kind).is_some_and(|k| h.has_client(k)),
    )
}

extern "C" fn client_request<H: ContextHost>(
    state: HostStatePtr,
    kind: u32,
    request: RStr<'_>,
) -> RResult<RString, RString> {
    with_host(
        state,
        |m| RResult::RErr(host_panicked(m)),
        |h: &H| match client_kind(kind) {
            Some(kind) => h
                .client_request(kind, request.as_str())
                .map(RString::from)
                .map_err(RString::from)
                .into(),
            None => RResult::RErr(format!("unknown client kind {kind}").into()),
        },
    )
}
