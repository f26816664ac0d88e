//! The table of released boundaries: entry M is the frozen layout of
//! plugin-api 1.M, the one a plugin declaring 1.M is checked against.
//!
//! Releasing 1.N+1 adds one line here beside the frozen `v1_{N+1}` module.
//! The table's length is the current minor plus one, so a release that
//! forgets its line does not compile.

use abi_stable::{type_layout::TypeLayout, StableAbi};

use super::{v1_0, v1_1, v1_2, v1_3, v1_4, API_VERSION};

/// One released minor version's boundary.
#[derive(Clone, Copy)]
pub struct Release {
    /// The minor version: this entry is plugin-api 1.`minor`.
    pub minor: u32,
    /// The layout abi_stable checks: the root module's prefix reference,
    /// from which the host context and its vtable are reachable.
    pub root_module: &'static TypeLayout,
    /// The host vtable on its own (also reachable from `root_module`).
    pub host_vtable: &'static TypeLayout,
}

impl Release {
    /// The release whose root module is `M` and host vtable `V`.
    pub const fn of<M: StableAbi, V: StableAbi>(minor: u32) -> Self {
        Self {
            minor,
            root_module: M::LAYOUT,
            host_vtable: V::LAYOUT,
        }
    }
}

/// Every release of the current major version, oldest first: entry M is 1.M.
pub const RELEASES: [Release; API_VERSION.minor as usize + 1] = [
    Release::of::<v1_0::PluginModuleRef, v1_0::HostVtableRef>(0),
    Release::of::<v1_1::PluginModuleRef, v1_1::HostVtableRef>(1),
    Release::of::<v1_2::PluginModuleRef, v1_2::HostVtableRef>(2),
    Release::of::<v1_3::PluginModuleRef, v1_3::HostVtableRef>(3),
    Release::of::<v1_4::PluginModuleRef, v1_4::HostVtableRef>(4),
];

/// The boundary this crate builds: the newest release, or the next one
/// while it is being prepared.
pub const CURRENT: Release = Release::of::<super::PluginModuleRef, super::HostVtableRef>(API_VERSION.minor);
