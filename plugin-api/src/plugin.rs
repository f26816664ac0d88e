//! `Plugin`: a plugin's manifest fields, the permissions it asks for and its
//! registered actions, built by the plugin author and served through the
//! root module.

use serde_json::json;

use crate::action::ActionDef;
use crate::context::RuntimeContext;
use crate::failure::{ActionFailure, FailureKind};
use crate::ffi::plugin_side::HostHandle;
use crate::manifest::{Category, PluginManifest};
use crate::permissions::Permissions;

/// A plugin under construction: `Plugin::new(code, name, version)` and then
/// `.category(..)`, `.description(..)`, `.permissions(..)` if it needs
/// more than the sandbox's defaults, `.action(..)` for each action.
pub struct Plugin {
    code: String,
    name: String,
    version: String,
    category: Category,
    description: String,
    permissions: Permissions,
    actions: Vec<ActionDef>,
}

impl Plugin {
    /// `code` is the plugin's unique id; `version` is usually
    /// `env!("CARGO_PKG_VERSION")`.
    pub fn new(code: &str, name: &str, version: &str) -> Self {
        Self {
            code: code.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            category: Category::default(),
            description: String::new(),
            permissions: Permissions::default(),
            actions: Vec::new(),
        }
    }

    /// Sets the category (default: `Custom`).
    pub fn category(mut self, category: Category) -> Self {
        self.category = category;
        self
    }

    /// Sets the description shown by `loader list`.
    pub fn description(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }

    /// Declares what the plugin needs beyond the sandbox's defaults (paths,
    /// TCP endpoints, environment variables, programs), replacing any earlier
    /// declaration. The loader shows the request and runs the plugin only
    /// with what the operator granted. A declaration that does not pass
    /// [`Permissions::check`] still appears in [`manifest`](Self::manifest),
    /// but the exported library refuses to describe itself, so the loader
    /// reports the plugin as broken, naming the entry.
    ///
    /// ```
    /// use plugin_api::prelude::*;
    /// let plugin = Plugin::new("fetcher", "Fetcher", "0.1.0")
    ///     .permissions(Permissions::new().net("api.example.com:443").env("API_TOKEN"));
    /// assert_eq!(plugin.summary().permissions.net, ["api.example.com:443"]);
    /// ```
    pub fn permissions(mut self, permissions: Permissions) -> Self {
        self.permissions = permissions;
        self
    }

    /// Registers an action. Panics if the name is taken: the loader reports
    /// that as a broken plugin, naming the action.
    pub fn action(mut self, action: ActionDef) -> Self {
        assert!(
            self.find(action.name()).is_none(),
            "plugin {:?} registers the action {:?} twice",
            self.code,
            action.name()
        );
        self.actions.push(action);
        self
    }

    /// The plugin's manifest, with every action's schemas.
    pub fn manifest(&self) -> PluginManifest {
        self.manifest_with(ActionDef::manifest)
    }

    /// The manifest without schemas: what listing plugins needs.
    pub fn summary(&self) -> PluginManifest {
        self.manifest_with(|a| a.summary().clone())
    }

    fn manifest_with(&self, action: impl Fn(&ActionDef) -> crate::manifest::ActionManifest) -> PluginManifest {
        PluginManifest {
            code: self.code.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            category: self.category,
            description: self.description.clone(),
            actions: self.actions.iter().map(action).collect(),
            permissions: self.permissions.clone(),
        }
    }

    /// Whether the declarations the manifest carries can be served: the
    /// reason they cannot, naming the field and entry, otherwise.
    pub(crate) fn check_declarations(&self) -> Result<(), String> {
        self.permissions
            .check()
            .map_err(|e| format!("plugin {:?} declares invalid permissions: {e}", self.code))
    }

    pub(crate) fn manifest_json(&self) -> String {
        serde_json::to_string(&self.manifest()).expect("a manifest always serialises")
    }

    pub(crate) fn summary_json(&self) -> String {
        serde_json::to_string(&self.summary()).expect("a manifest always serialises")
    }

    fn find(&self, action: &str) -> Option<&ActionDef> {
        self.actions.iter().find(|a| a.name() == action)
    }

    fn find_or_fail(&self, action: &str) -> Result<&ActionDef, ActionFailure> {
        self.find(action).ok_or_else(|| {
            let available: Vec<&str> = self.actions.iter().map(ActionDef::name).collect();
            ActionFailure::new(
                FailureKind::UnknownAction,
                format!(
                    "plugin {:?} has no action {action:?} (available: {})",
                    self.code,
                    available.join(", ")
                ),
            )
            .with_details(json!({ "available": available }))
        })
    }

    pub(crate) fn run(&self, action: &str, params_json: &str, host: HostHandle) -> Result<String, ActionFailure> {
        let def = self.find_or_fail(action)?;
        let ctx = RuntimeContext::from_host(host);
        // Every entry the action logged reaches the host before the run's
        // result, or its failure when the action panics (the guard's drop
        // runs while the panic unwinds).
        let _handed_over = FlushOnDrop(ctx.clone());
        let value = def.run(params_json, ctx)?;
        Ok(value.to_string())
    }

    pub(crate) fn validate(&self, action: &str, params_json: &str) -> Result<(), ActionFailure> {
        self.find_or_fail(action)?.validate(params_json)
    }
}

/// Waits for a run's log queue when dropped.
struct FlushOnDrop(RuntimeContext);

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.0.logger().flush();
    }
}
