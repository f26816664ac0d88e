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
    fn check_manifest() -> Result<(), String> {
        E::plugin().check_declarations()
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::Permissions;

    struct Asking;
    impl PluginEntry for Asking {
        fn plugin() -> &'static Plugin {
            static PLUGIN: std::sync::OnceLock<Plugin> = std::sync::OnceLock::new();
            PLUGIN.get_or_init(|| {
                Plugin::new("asking", "Asking", "1.0.0").permissions(Permissions::new().read("/data").env("TOKEN"))
            })
        }
    }

    struct Misdeclared;
    impl PluginEntry for Misdeclared {
        fn plugin() -> &'static Plugin {
            static PLUGIN: std::sync::OnceLock<Plugin> = std::sync::OnceLock::new();
            PLUGIN.get_or_init(|| {
                Plugin::new("misdeclared", "Misdeclared", "1.0.0")
                    .permissions(Permissions::new().read("/data").write("out"))
            })
        }
    }

    #[test]
    fn the_manifest_and_its_summary_carry_the_declared_permissions() {
        assert_eq!(<Asking as PluginExports>::check_manifest(), Ok(()));
        for json in [Asking::manifest_json(), Asking::summary_json()] {
            let manifest: crate::PluginManifest = serde_json::from_str(&json).unwrap();
            assert_eq!(
                manifest.permissions,
                Permissions::new().read("/data").env("TOKEN"),
                "{json}"
            );
        }
    }

    #[test]
    fn a_plugin_with_invalid_permissions_refuses_to_describe_itself_naming_the_entry() {
        let refused = <Misdeclared as PluginExports>::check_manifest().unwrap_err();
        assert_eq!(
            refused,
            "plugin \"misdeclared\" declares invalid permissions: permissions.write entry \"out\": a relative path; \
             give an absolute path or one starting with ~/"
        );
        assert_eq!(
            Misdeclared::plugin().manifest().permissions.write,
            ["out"],
            "the Rust manifest still shows the declaration"
        );
    }

    #[test]
    fn a_plugin_that_declares_nothing_writes_no_permissions_key() {
        let plain = Plugin::new("plain", "Plain", "1.0.0");
        assert!(!plain.manifest_json().contains("permissions"));
        assert!(!plain.summary_json().contains("permissions"));
        assert_eq!(plain.check_declarations(), Ok(()));
    }
}
