//! Boundaries that differ from the released 1.1 by one change, as careless
//! edits without a version bump would make them: the layout guard and the
//! mismatch messages are tested on them.

/// plugin-api 1.1 with one parameter of one host function changed, as a
/// careless edit without a version bump would make it.
#[allow(dead_code)] // only the layouts of these types are used
pub mod changed_parameter {
    use abi_stable::std_types::{ROption, RResult, RStr, RString};
    use abi_stable::StableAbi;

    use super::super::HostStatePtr;

    #[repr(C)]
    #[derive(StableAbi, Copy, Clone)]
    pub struct HostContext {
        pub state: HostStatePtr,
        pub vtable: HostVtableRef,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = HostVtableRef)))]
    pub struct HostVtable {
        pub retain: extern "C" fn(HostStatePtr),
        pub release: extern "C" fn(HostStatePtr),
        pub set_progress: extern "C" fn(HostStatePtr, u64, u32, ROption<RStr<'_>>) -> RResult<(), RString>,
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
    }

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
}

/// plugin-api 1.1 with one root-module field appended and no version
/// bump: what commit 442edfa did with `manifest_summary`.
#[allow(dead_code)] // only the layouts of these types are used
pub mod appended_field {
    use abi_stable::std_types::{RResult, RStr, RString};
    use abi_stable::StableAbi;

    use super::super::v1_1::HostContext;

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
    pub struct PluginModule {
        pub manifest: extern "C" fn() -> RResult<RString, RString>,
        #[sabi(last_prefix_field)]
        pub run_action: extern "C" fn(HostContext, RStr<'_>, RStr<'_>) -> RResult<RString, RString>,
        pub validate_params: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<(), RString>,
        pub manifest_summary: extern "C" fn() -> RResult<RString, RString>,
        pub health: extern "C" fn() -> RString,
    }
}
