//! What a plugin declares about itself: the fields of the Synapse plugin
//! config (code, name, version, category, description), the permissions it
//! asks for beyond the sandbox's defaults and, per action, its description,
//! run method, params / result JSON Schemas and the resources it reserves
//! on a cluster.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::permissions::Permissions;
use crate::resources::ActionResources;

/// The kind of plugin, as in the Synapse plugin config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Trains or runs neural networks.
    NeuralNet,
    /// Exports data.
    Export,
    /// Uploads data.
    Upload,
    /// An annotation tool.
    SmartTool,
    /// Runs after annotation.
    PostAnnotation,
    /// Runs before annotation.
    PreAnnotation,
    /// Validates data.
    DataValidation,
    /// Anything else.
    #[default]
    Custom,
}

/// How the platform runs an action: as a job, a task, or a long-lived service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RunMethod {
    /// A long-running job.
    #[default]
    Job,
    /// A short task.
    Task,
    /// A service that keeps running.
    Serve,
}

/// A plugin's self-description, as returned by its root module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginManifest {
    /// Unique id of the plugin (the Synapse `code`).
    pub code: String,
    /// The plugin's display name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// What kind of plugin it is.
    #[serde(default)]
    pub category: Category,
    /// What the plugin does.
    #[serde(default)]
    pub description: String,
    /// Its actions, in registration order.
    #[serde(default)]
    pub actions: Vec<ActionManifest>,
    /// What the plugin needs beyond the sandbox's defaults (plugin-api
    /// 1.3). Absent when nothing is declared, so older hosts and plugins
    /// read the same manifest; in the summary too, so a host can decide
    /// what to grant without the actions' schemas.
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub permissions: Permissions,
}

/// One action of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionManifest {
    /// The action's name.
    pub name: String,
    /// What the action does.
    #[serde(default)]
    pub description: String,
    /// How the action is meant to be run.
    #[serde(default)]
    pub method: RunMethod,
    /// JSON Schema of the params object; null in a manifest summary.
    #[serde(default)]
    pub params_schema: Value,
    /// JSON Schema of the result, when the plugin declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_schema: Option<Value>,
    /// What a run on a cluster reserves (`loader run --on ray`); absent
    /// when nothing is declared, so older hosts and plugins read the same
    /// manifest.
    #[serde(default, skip_serializing_if = "ActionResources::is_empty")]
    pub resources: ActionResources,
}

impl PluginManifest {
    /// The action of that name, if there is one.
    pub fn action(&self, name: &str) -> Option<&ActionManifest> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// Every action's name, in order.
    pub fn action_names(&self) -> Vec<&str> {
        self.actions.iter().map(|a| a.name.as_str()).collect()
    }
}
