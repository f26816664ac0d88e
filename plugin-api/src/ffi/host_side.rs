//! The host's half of the boundary under the path plugin-api 1.0-1.3 gave
//! it: the context a host implements (`super::host_vtable`) and, with the
//! `host` feature, loading a library (`super::loading`). Host programs use
//! `plugin_api::host`.

pub use super::host_vtable::{context_for, ContextHost};
#[cfg(test)]
pub(crate) use super::host_vtable::{release_1_1_context_for, release_1_2_context_for, release_1_3_context_for};
#[cfg(feature = "host")]
pub use super::loading::{load_library, LoadError, PluginLibrary};
