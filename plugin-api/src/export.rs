//! Exporting a [`Plugin`] from a `cdylib`: the support behind
//! [`export_plugin!`](crate::export_plugin). It serves the plugin's manifest
//! and actions through the root module the boundary builds
//! ([`ffi::root_module`](crate::ffi::root_module)), which knows nothing of
//! `Plugin`: this module sits above both the author API and the boundary.

use crate::failure::ActionFailure;
use crate::ffi::plugin_side::HostHandle;
use crate::ffi::root_module::PluginExports;
use crate::plugin::Plugin;

/// The plugin a library exports, built once on first use. Implemented by
/// [`export_plugin!`](crate::export_plugin); not by hand.
pub trait PluginEntry: 'static {
    /// The exported plugin, built on the first call and the same one after.
    fn plugin() -> &'static Plugin;
}

impl<E: PluginEntry> PluginExports for E {
    fn manifest_json() -> String {
        E::plugin().manifest_json()
    }

    fn summary_json() -> String {
        E::plugin().summary_json()
    }

    fn run_action(action: &str, params_json: &str, host: HostHandle) -> Result<String, ActionFailure> {
        E::plugin().run(action, params_json, host)
    }

    fn validate_params(action: &str, params_json: &str) -> Result<(), ActionFailure> {
        E::plugin().validate(action, params_json)
    }
}
