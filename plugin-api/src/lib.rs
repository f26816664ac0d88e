//! The plugin API of the action-plugin runtime.
//!
//! Plugin authors write actions against [`RuntimeContext`] (function-based
//! with [`action!`], class-based with [`BaseAction`]), collect them in a
//! [`Plugin`], and export it with [`export_plugin!`] from a `cdylib` crate.
//! The loader discovers the library and runs its actions.
//!
//! What an author needs is here: the [`prelude`] (one `use` for an action),
//! [`RuntimeContext`] and its errors, actions ([`BaseAction`], [`action!`]),
//! the plugin's description ([`Plugin`], [`Permissions`],
//! [`ActionResources`]), the [`PluginEnvironment`], failures
//! ([`ActionFailure`], [`ErrorContext`]), step-based workflows in [`steps`],
//! and [`testing`] for unit tests without a loader. A plugin needs no other
//! dependency: `serde`, `serde_json` and `schemars` are re-exported, and the
//! prelude has the derives.
//!
//! The stable-ABI boundary below this API (its layouts, entry points and
//! loading code) is not part of it: a plugin never names it. Host programs,
//! such as the loader, enable the `host` feature for the `host` module;
//! plugins leave it off, so the loading code (and `libloading`) is not built
//! into them.
//!
//! A whole plugin, and a unit test of its action:
//!
//! ```
//! use std::sync::Arc;
//! use plugin_api::prelude::*;
//! use plugin_api::testing::RecordingHost;
//!
//! /// The params: validated against their JSON Schema before the action runs.
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(crate = "plugin_api::serde")]
//! struct TrainParams {
//!     /// Passes over the data.
//!     #[serde(default = "three")]
//!     epochs: u64,
//! }
//! fn three() -> u64 { 3 }
//!
//! fn train(params: TrainParams, ctx: &RuntimeContext) -> ActionResult {
//!     for epoch in 1..=params.epochs {
//!         ctx.set_progress(epoch, params.epochs, Some("train"))?;
//!     }
//!     Ok(json!({ "epochs": params.epochs }))
//! }
//!
//! fn plugin() -> Plugin {
//!     Plugin::new("my-plugin", "My plugin", "0.1.0")
//!         .action(action!(train, params = TrainParams, description = "Train a model"))
//! }
//! export_plugin!(plugin);
//!
//! let host = Arc::new(RecordingHost::default());
//! let result = train(TrainParams { epochs: 2 }, &RuntimeContext::with_host(host.clone()));
//! assert_eq!(result.unwrap(), json!({ "epochs": 2 }));
//! assert_eq!(host.progress().len(), 2);
//! assert_eq!(plugin().manifest().actions[0].name, "train");
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

// The author's API: every item is re-exported below, at the root, in the
// prelude or in `steps` / `testing`, so these modules stay out of the docs;
// they stay reachable under their 1.x paths. (`error_context` stays in the
// docs: a trait whose every documented path is a re-export reads to
// cargo-semver-checks as a trait plugins can no longer implement.)
#[doc(hidden)]
pub mod action;
#[doc(hidden)]
pub mod client;
#[doc(hidden)]
pub mod context;
mod entry_buffer;
#[doc(hidden)]
pub mod env;
pub mod error_context;
#[doc(hidden)]
pub mod failure;
mod log_queue;
#[doc(hidden)]
pub mod logger;
#[doc(hidden)]
pub mod manifest;
#[doc(hidden)]
pub mod permissions;
#[doc(hidden)]
pub mod plugin;
#[doc(hidden)]
pub mod resources;
pub mod steps;
mod suggest;
pub mod testing;
#[doc(hidden)]
pub mod utc;

// The machinery under the author's API: the stable-ABI boundary, the wire
// format of log entries, the argument rules every host applies, and what
// `export_plugin!` expands to. Not the author's API (a host program reaches
// what it needs through `host`); reachable under their 1.x paths, hidden
// from the docs, private at 2.0.
#[doc(hidden)]
pub mod export;
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod ffi;
mod field_problem;
#[cfg(feature = "host")]
pub mod host;
#[doc(hidden)]
pub mod lax;
#[doc(hidden)]
pub mod log_entry;
#[doc(hidden)]
pub mod rules;
#[doc(hidden)]
pub mod validate;

pub use action::{ActionBase, ActionDef, ActionError, ActionResult, BaseAction};
pub use client::{AgentClient, BackendClient, ClientError};
pub use context::{Checkpoint, ContextError, Logger, MessageLevel, ProgressSnapshot, ProgressStatus, RuntimeContext};
pub use env::{EnvError, PluginEnvironment, ENV_MISSING_EVENT};
pub use error_context::ErrorContext;
pub use failure::{ActionFailure, FailureKind};
pub use ffi::{ApiVersion, API_VERSION};
pub use manifest::{ActionManifest, Category, PluginManifest, RunMethod};
pub use permissions::{PermissionProblem, Permissions, PermissionsError};
pub use plugin::Plugin;
pub use resources::{ActionResources, ResourceError};
pub use serde_json::{json, Value};

// The crates a plugin's own code needs, so that `plugin-api` is its only
// dependency: `plugin_api::serde_json::to_value`, and the derives in the
// prelude (`#[serde(crate = "plugin_api::serde")]` tells serde's derive
// where it is; schemars' derive finds `schemars` through the prelude).
pub use schemars;
pub use serde;
pub use serde_json;

/// Everything an action author usually needs.
pub mod prelude {
    #[doc(no_inline)]
    pub use crate::step_context;
    #[doc(no_inline)]
    pub use crate::steps::{
        BaseStepContext, DeploymentContext, ExportContext, InferenceContext, Orchestrator, Step, StepContext,
        StepRegistry, StepResult, TrainContext, UploadContext, WorkflowReport,
    };
    #[doc(no_inline)]
    pub use crate::{
        action, export_plugin, json, ActionBase, ActionDef, ActionError, ActionResources, ActionResult, BaseAction,
        Category, Checkpoint, ErrorContext, MessageLevel, Permissions, Plugin, PluginEnvironment, RunMethod,
        RuntimeContext, Value,
    };
    #[doc(no_inline)]
    pub use crate::{schemars, serde, serde_json};
    #[doc(no_inline)]
    pub use schemars::JsonSchema;
    #[doc(no_inline)]
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::LibHeader;
}

/// Exports a plugin from a `cdylib` crate. Give it a function that builds
/// the [`Plugin`]; it is called once, on first use.
///
/// ```
/// use plugin_api::prelude::*;
/// # #[derive(serde::Deserialize, schemars::JsonSchema)]
/// # struct TrainParams { epochs: u32 }
/// # fn train(p: TrainParams, _: &RuntimeContext) -> ActionResult { Ok(json!({ "epochs": p.epochs })) }
///
/// fn plugin() -> Plugin {
///     Plugin::new("my-plugin", "My plugin", env!("CARGO_PKG_VERSION"))
///         .action(action!(train, params = TrainParams, description = "Train a model"))
/// }
/// export_plugin!(plugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($build:path) => {
        #[doc(hidden)]
        pub struct __PluginApiEntry;

        impl $crate::export::PluginEntry for __PluginApiEntry {
            fn plugin() -> &'static $crate::Plugin {
                static PLUGIN: ::std::sync::OnceLock<$crate::Plugin> = ::std::sync::OnceLock::new();
                PLUGIN.get_or_init($build)
            }
        }

        $crate::__export_root_module!(__PluginApiEntry);
    };
}
