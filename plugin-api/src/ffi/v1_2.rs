//! The boundary exactly as plugin-api 1.2 released it. Frozen: never edit.
//!
//! A plugin that declares plugin-api 1.2 is checked against these copies
//! (see [`super::releases`]); the host then talks to it through the current
//! types, whose fields past these read as absent on the plugin's module.
//! Its fingerprint is committed as `plugin-api/abi/layout-1.2.txt`, and a
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

/// `HostContext` as of 1.2.
#[repr(C)]
#[derive(StableAbi, Copy, Clone)]
pub struct HostContext {
    pub state: HostStatePtr,
    pub vtable: HostVtableRef,
}

/// `HostVtable` as of 1.2.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HostVtableRef)))]
pub struct HostVtable {
    pub retain: extern "C" fn(HostStatePtr),
    pub release: extern "C" fn(HostStatePtr),
    pub set_progress: extern "C" fn(HostStatePtr, u64, u64, ROption<RStr<'_>>) -> RResult<(), RString>,
    pub set_metrics: extern "C" fn(HostStatePtr, RStr<'_>, RStr<'_>) -> RResult<(), RString>,
    pub log: extern "C" fn(HostStatePtr, RStr<'_>, RStr<'_>, ROption<RStr<'_>>),
    pub log_message: extern "C" fn(HostStatePtr, RStr<'_>, RStr<'_>),
    pub log_dev_event: extern "C" fn(HostStatePtr, RStr<'_>, ROption<RStr<'_>>),
    pub env: extern "C" fn(HostStatePtr) -> RString,
    pub job_id: extern "C" fn(HostStatePtr) -> ROption<RString>,
    #[sabi(last_prefix_field)]
    pub checkpoint: extern "C" fn(HostStatePtr) -> ROption<RString>,
    pub is_cancelled: extern "C" fn(HostStatePtr) -> bool,
    pub has_client: extern "C" fn(HostStatePtr, u32) -> bool,
    pub client_request: extern "C" fn(HostStatePtr, u32, RStr<'_>) -> RResult<RString, RString>,
    pub log_entry: extern "C" fn(HostStatePtr, RStr<'_>) -> RResult<(), RString>,
}

/// `PluginModule` as of 1.2.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
pub struct PluginModule {
    pub manifest: extern "C" fn() -> RResult<RString, RString>,
    #[sabi(last_prefix_field)]
    pub run_action: extern "C" fn(HostContext, RStr<'_>, RStr<'_>) -> RResult<RString, RString>,
    pub validate_params: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<(), RString>,
    pub manifest_summary: extern "C" fn() -> RResult<RString, RString>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "synapse_plugin";
    const NAME: &'static str = "synapse_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
