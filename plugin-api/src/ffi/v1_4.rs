//! The boundary exactly as plugin-api 1.4 released it. Frozen: never edit.
//!
//! A plugin that declares plugin-api 1.4 is checked against these copies
//! (see [`super::releases`]); the host then talks to it through the current
//! types, whose fields past these read as absent on the plugin's module.
//! Its fingerprint is committed as `plugin-api/abi/layout-1.4.txt`, and a
//! test fails if either changes.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{ROption, RResult, RStr, RString},
    StableAbi,
};

use super::HostStatePtr;

/// `HostContext` as of 1.4.
#[repr(C)]
#[derive(StableAbi, Copy, Clone)]
pub struct HostContext {
    /// The host's state, opaque to the plugin.
    pub state: HostStatePtr,
    /// The functions that act on `state`.
    pub vtable: HostVtableRef,
}

/// `HostVtable` as of 1.4.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HostVtableRef)))]
pub struct HostVtable {
    /// Takes a reference on the state.
    pub retain: extern "C" fn(HostStatePtr),
    /// Gives a reference back.
    pub release: extern "C" fn(HostStatePtr),
    /// `set_progress`.
    pub set_progress: extern "C" fn(HostStatePtr, u64, u64, ROption<RStr<'_>>) -> RResult<(), RString>,
    /// `set_metrics`.
    pub set_metrics: extern "C" fn(HostStatePtr, RStr<'_>, RStr<'_>) -> RResult<(), RString>,
    /// `log`.
    pub log: extern "C" fn(HostStatePtr, RStr<'_>, RStr<'_>, ROption<RStr<'_>>),
    /// `log_message`.
    pub log_message: extern "C" fn(HostStatePtr, RStr<'_>, RStr<'_>),
    /// `log_dev_event`.
    pub log_dev_event: extern "C" fn(HostStatePtr, RStr<'_>, ROption<RStr<'_>>),
    /// The environment as JSON text.
    pub env: extern "C" fn(HostStatePtr) -> RString,
    /// The job id.
    pub job_id: extern "C" fn(HostStatePtr) -> ROption<RString>,
    /// The checkpoint as JSON text.
    #[sabi(last_prefix_field)]
    pub checkpoint: extern "C" fn(HostStatePtr) -> ROption<RString>,
    /// Whether the host asked the action to stop early.
    pub is_cancelled: extern "C" fn(HostStatePtr) -> bool,
    /// Whether a client of the given kind is configured.
    pub has_client: extern "C" fn(HostStatePtr, u32) -> bool,
    /// A request to a configured client.
    pub client_request: extern "C" fn(HostStatePtr, u32, RStr<'_>) -> RResult<RString, RString>,
    /// A log entry with its step and level, as JSON (added in 1.2).
    pub log_entry: extern "C" fn(HostStatePtr, RStr<'_>) -> RResult<(), RString>,
    /// The run's work directory (added in 1.3).
    pub work_dir: extern "C" fn(HostStatePtr) -> ROption<RString>,
    /// Whether the host takes entries from the plugin's log thread (added in 1.4).
    pub logs_off_thread: extern "C" fn(HostStatePtr) -> bool,
    /// A log entry with the time of its call (added in 1.4).
    pub log_entry_at: extern "C" fn(HostStatePtr, RStr<'_>, u64) -> RResult<(), RString>,
}

/// `PluginModule` as of 1.4.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
pub struct PluginModule {
    /// The manifest as JSON text.
    pub manifest: extern "C" fn() -> RResult<RString, RString>,
    /// Runs an action.
    #[sabi(last_prefix_field)]
    pub run_action: extern "C" fn(HostContext, RStr<'_>, RStr<'_>) -> RResult<RString, RString>,
    /// Validates params for an action without running it.
    pub validate_params: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<(), RString>,
    /// The manifest without the actions' schemas.
    pub manifest_summary: extern "C" fn() -> RResult<RString, RString>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "synapse_plugin";
    const NAME: &'static str = "synapse_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
