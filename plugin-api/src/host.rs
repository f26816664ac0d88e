//! For host programs (the loader, test hosts): loading a plugin library,
//! checking its layout against the release it declares, and running its
//! actions with a context the host implements. Enabled by the `host`
//! feature, which plugins do not need.
//!
//! ```no_run
//! use std::path::Path;
//! use plugin_api::host::load_library;
//!
//! let library = load_library(Path::new("target/debug/libtabular_trainer.so"))?;
//! println!("plugin-api {}: {}", library.api_version(), library.manifest_json()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use crate::ffi::clock::coarse_now_nanos;
pub use crate::ffi::host_side::ContextHost;
pub use crate::ffi::loading::{load_library, LoadError, PluginLibrary};
pub use crate::ffi::ClientKind;
pub use crate::log_entry::LogEntryRef;
/// The argument rules every host applies to a context call, as the real
/// loader and `testing::RecordingHost` do.
pub use crate::rules::{check_metrics, check_progress, json_kind, metrics_object};
