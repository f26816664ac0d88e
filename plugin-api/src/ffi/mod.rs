//! The stable-ABI boundary between the loader and a plugin library.
//!
//! Everything that crosses the dynamic-library boundary is declared here, and
//! this module tree is the only place in `plugin-api` with `unsafe` code:
//!
//! - [`PluginModule`]: the root module a plugin exports (plugin -> host);
//! - [`HostVtable`] / [`HostContext`]: the context the host injects into every
//!   action call (host -> plugin);
//! - [`v1_0`], [`v1_1`], [`v1_2`], [`v1_3`], [`v1_4`], ...: frozen copies of the boundary as each
//!   minor version released it, listed by minor in [`releases::RELEASES`]; a
//!   plugin declaring 1.M is checked against entry M;
//! - [`root_module`]: the `extern "C"` entry points a plugin exports,
//!   generic over [`root_module::PluginExports`], which catch every panic
//!   (with [`panics`]) before it can reach the boundary;
//! - [`plugin_side`]: [`plugin_side::HostHandle`], the plugin's safe handle
//!   on the host context (what a `RuntimeContext` holds);
//! - `loading` (with the `host` feature): loading a library, choosing the
//!   layout to check it against, and calling its entry points;
//!   `layout_mismatch` says what differs;
//! - `host_vtable`: turning a host's Rust callbacks into a [`HostVtable`]
//!   ([`host_side`] names it and the loading code under their 1.x paths);
//! - [`layout_text`]: the readable layout fingerprint committed under
//!   `plugin-api/abi/` and checked by the layout guard's tests;
//! - [`clock`]: the coarse monotonic clock of the progress hot path, on
//!   both sides, and the tick counter that stamps queued log entries (a
//!   system call and an instruction, so they live with the crate's `unsafe`);
//! - [`exit_hooks`]: handing queued log entries to the host when the
//!   process calls `exit()` or crashes;
//! - `byte_ring`: the lock-free ring between a logging thread and the
//!   log thread (memory shared by two threads without a lock, so it lives
//!   with the crate's `unsafe`).
//!
//! # Layers
//!
//! The boundary sits below the author-facing API; dependencies only point
//! down (the `layering` unit test checks that nothing here names a module
//! above it):
//!
//! ```text
//!  export            export_plugin! support: serves a Plugin through the root module
//!    |
//!  plugin, action,   the author API: what an action is written against
//!  context, logger,
//!  steps,
//!  env, testing
//!    |
//!  ffi               this module: layouts, root-module entry points (generic
//!    |               over PluginExports), HostHandle, host_side, loading, panics
//!    |
//!  failure,          values that cross the boundary as JSON, and the
//!  validate, lax,    argument rules every host applies to them
//!  manifest, permissions,
//!  resources,
//!  log_entry, rules
//! ```
//!
//! Structured values (params, results, metrics, log data, manifests, errors)
//! cross as JSON text, so the checked layout stays small and stable while
//! their content evolves freely.
//!
//! # Evolution rules (see the book's `docs/src/compatibility.md`)
//!
//! Both prefix types keep `#[sabi(last_prefix_field)]` on the last field of
//! the 1.0 release for the whole 1.x series. A minor release may only append
//! fields after the last ones; their accessors return `Option`, `None` when
//! the other side was built against an older minor version. A release
//! freezes its boundary as `v1_M`, adds it to [`releases::RELEASES`] and
//! commits its layout snapshot; the layout guard's tests fail on any layout
//! change without a version bump.

pub(crate) mod byte_ring;
pub mod clock;
pub mod exit_hooks;
pub mod host_side;
mod host_vtable;
#[cfg(test)]
mod layering;
#[cfg(test)]
mod layout_guard;
#[cfg(feature = "host")]
pub mod layout_mismatch;
pub mod layout_text;
#[cfg(feature = "host")]
pub mod loading;
pub mod panics;
pub mod plugin_side;
pub mod releases;
pub mod root_module;
#[cfg(test)]
mod test_layouts;
pub mod v1_0;
pub mod v1_1;
pub mod v1_2;
pub mod v1_3;
pub mod v1_4;
mod version;

pub use version::{ApiVersion, API_VERSION};

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{ROption, RResult, RStr, RString},
    StableAbi,
};

/// The opaque state behind a [`HostContext`]: only the host knows its type.
#[repr(C)]
#[derive(StableAbi)]
pub struct HostState {
    _private: [u8; 0],
}

/// A reference to the host's state for one action run, as seen by a plugin.
pub type HostStatePtr = *const HostState;

/// The context the host passes to `run_action`: its state and the functions
/// that act on it. The state stays valid while the plugin holds a reference
/// taken with `retain` (and not yet given back with `release`), and during the
/// `run_action` call itself.
#[repr(C)]
#[derive(StableAbi, Copy, Clone)]
pub struct HostContext {
    /// The host's state, opaque to the plugin.
    pub state: HostStatePtr,
    /// The functions that act on `state`.
    pub vtable: HostVtableRef,
}

/// The host's side of the `RuntimeContext`: one function per context method.
///
/// Every function is thread-safe (the host synchronises internally) and never
/// unwinds. Errors come back as `RErr` with a human-readable message.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HostVtableRef)))]
pub struct HostVtable {
    /// Takes a reference on the host state (the plugin keeps the context).
    pub retain: extern "C" fn(HostStatePtr),
    /// Gives a reference back.
    pub release: extern "C" fn(HostStatePtr),
    /// `set_progress(current, total, step)`.
    pub set_progress: extern "C" fn(HostStatePtr, u64, u64, ROption<RStr<'_>>) -> RResult<(), RString>,
    /// `set_metrics(value as a JSON object, step)`.
    pub set_metrics: extern "C" fn(HostStatePtr, RStr<'_>, RStr<'_>) -> RResult<(), RString>,
    /// `log(event, data as JSON, file)`.
    pub log: extern "C" fn(HostStatePtr, RStr<'_>, RStr<'_>, ROption<RStr<'_>>),
    /// `log_message(message, level)`, the level as its lowercase name.
    pub log_message: extern "C" fn(HostStatePtr, RStr<'_>, RStr<'_>),
    /// `log_dev_event(message, data as JSON)`.
    pub log_dev_event: extern "C" fn(HostStatePtr, RStr<'_>, ROption<RStr<'_>>),
    /// The plugin's environment as a JSON object of strings.
    pub env: extern "C" fn(HostStatePtr) -> RString,
    /// The job id, if the run has one.
    pub job_id: extern "C" fn(HostStatePtr) -> ROption<RString>,
    /// The checkpoint as a JSON object, if the run has one.
    #[sabi(last_prefix_field)]
    pub checkpoint: extern "C" fn(HostStatePtr) -> ROption<RString>,

    // ---- added in 1.1 ----
    /// Whether the host asked the action to stop early.
    pub is_cancelled: extern "C" fn(HostStatePtr) -> bool,
    /// Whether a client of the given kind (see [`ClientKind`]) is configured.
    pub has_client: extern "C" fn(HostStatePtr, u32) -> bool,
    /// A request to a configured client: the request and the answer as JSON.
    pub client_request: extern "C" fn(HostStatePtr, u32, RStr<'_>) -> RResult<RString, RString>,

    // ---- added in 1.2 ----
    /// Logs one entry with its step and level: a JSON `LogEntry` (see
    /// `crate::log_entry`). An entry the host cannot read, or of a kind it
    /// does not know, is refused with the reason.
    pub log_entry: extern "C" fn(HostStatePtr, RStr<'_>) -> RResult<(), RString>,

    // ---- added in 1.3 ----
    /// The run's work directory, the one place the plugin may always write
    /// (an absolute path), if the host gives one.
    pub work_dir: extern "C" fn(HostStatePtr) -> ROption<RString>,

    // ---- added in 1.4 ----
    /// Whether the host takes log entries from a thread of the plugin's own
    /// through `log_entry_at` (true for the loader; a test host that wants
    /// each entry during the call says false).
    pub logs_off_thread: extern "C" fn(HostStatePtr) -> bool,
    /// `log_entry` for an entry made earlier: the JSON `LogEntry` and the
    /// time of the call that made it, in nanoseconds since the Unix epoch.
    pub log_entry_at: extern "C" fn(HostStatePtr, RStr<'_>, u64) -> RResult<(), RString>,
}

/// Which client a `has_client` / `client_request` call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// The Synapse backend API client (`ctx.client`).
    Backend = 0,
    /// The Ray agent client (`ctx.agent_client`).
    Agent = 1,
}

/// The root module every plugin library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
pub struct PluginModule {
    /// The plugin's manifest as JSON (see `manifest::PluginManifest`).
    pub manifest: extern "C" fn() -> RResult<RString, RString>,
    /// Runs an action: the context, the action name, the params as JSON.
    /// Returns the result as JSON, or an `ActionFailure` as JSON.
    #[sabi(last_prefix_field)]
    pub run_action: extern "C" fn(HostContext, RStr<'_>, RStr<'_>) -> RResult<RString, RString>,

    // ---- added in 1.1 ----
    /// Validates params for an action without running it.
    pub validate_params: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<(), RString>,
    /// The manifest without the actions' schemas (cheap: listing plugins
    /// needs no schema generation).
    pub manifest_summary: extern "C" fn() -> RResult<RString, RString>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "synapse_plugin";
    const NAME: &'static str = "synapse_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_matches_the_package_version() {
        assert_eq!(API_VERSION.to_string(), env!("CARGO_PKG_VERSION"));
        assert_ne!(API_VERSION.major, 0, "0.x versions cannot keep minor compatibility");
    }

    #[test]
    fn the_exported_symbol_name_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            root_module::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
