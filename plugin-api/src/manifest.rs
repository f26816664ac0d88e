//! What a plugin declares about itself: the fields of the Synapse plugin
//! config (code, name, version, category, description) and, per action, its
//! description, run method and params / result JSON Schemas.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind of plugin, as in the Synapse plugin config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    NeuralNet,
    Export,
    Upload,
    SmartTool,
    PostAnnotation,
    PreAnnotation,
    DataValidation,
    #[default]
    Custom,
}

/// How the platform runs an action: as a job, a task, or a long-lived service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RunMethod {
    #[default]
    Job,
    Task,
    Serve,
}

/// A plugin's self-description, as returned by its root module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginManifest {
    /// Unique id of the plugin (the Synapse `code`).
    pub code: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub category: Category,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub actions: Vec<ActionManifest>,
}

/// One action of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionManifest {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub method: RunMethod,
    /// JSON Schema of the params object; null in a manifest summary.
    #[serde(default)]
    pub params_schema: Value,
    /// JSON Schema of the result, when the plugin declares one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_schema: Option<Value>,
}

impl PluginManifest {
    pub fn action(&self, name: &str) -> Option<&ActionManifest> {
        self.actions.iter().find(|a| a.name == name)
    }

    pub fn action_names(&self) -> Vec<&str> {
        self.actions.iter().map(|a| a.name.as_str()).collect()
    }
}
