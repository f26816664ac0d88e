//! The plugin API of the action-plugin runtime.
//!
//! Plugin authors write actions against [`RuntimeContext`] (function-based
//! with [`action!`], class-based with [`BaseAction`]), collect them in a
//! [`Plugin`], and export it with [`export_plugin!`] from a `cdylib` crate.
//! The loader discovers the library and runs its actions.
//!
//! The stable-ABI boundary itself lives in [`ffi`]; nothing else in this
//! crate is `unsafe`.

pub mod action;
pub mod client;
pub mod context;
pub mod env;
pub mod failure;
pub mod ffi;
pub mod manifest;
pub mod plugin;
pub mod rules;
pub mod steps;
pub mod testing;
pub mod validate;

pub use action::{ActionBase, ActionDef, ActionError, ActionResult, BaseAction};
pub use client::{AgentClient, BackendClient, ClientError};
pub use context::{Checkpoint, ContextError, Logger, MessageLevel, RuntimeContext};
pub use env::{EnvError, PluginEnvironment};
pub use failure::{ActionFailure, FailureKind};
pub use ffi::{ApiVersion, API_VERSION};
pub use manifest::{ActionManifest, Category, PluginManifest, RunMethod};
pub use plugin::Plugin;
pub use serde_json::{json, Value};

/// Everything an action author usually needs.
pub mod prelude {
    pub use crate::step_context;
    pub use crate::steps::{
        BaseStepContext, DeploymentContext, ExportContext, InferenceContext, Orchestrator, Step, StepContext,
        StepRegistry, StepResult, TrainContext, UploadContext, WorkflowReport,
    };
    pub use crate::{
        action, export_plugin, json, ActionBase, ActionDef, ActionError, ActionResult, BaseAction, Category,
        Checkpoint, MessageLevel, Plugin, PluginEnvironment, RunMethod, RuntimeContext, Value,
    };
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

        impl $crate::ffi::plugin_side::PluginEntry for __PluginApiEntry {
            fn plugin() -> &'static $crate::Plugin {
                static PLUGIN: ::std::sync::OnceLock<$crate::Plugin> = ::std::sync::OnceLock::new();
                PLUGIN.get_or_init($build)
            }
        }

        /// The root module abi_stable looks up (see `ffi::plugin_side`).
        #[doc(hidden)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __PLUGIN_API_ROOT_MODULE: $crate::__private::LibHeader =
            $crate::ffi::plugin_side::lib_header::<__PluginApiEntry>();
    };
}
