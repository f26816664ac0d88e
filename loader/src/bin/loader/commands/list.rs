//! `loader list`: the plugins of a folder and its problem files, as text or JSON.

use loader::find::manifest_cache::CatalogPlugin;
use plugin_api::ActionManifest;
use serde_json::{json, Value};

use crate::exit_code::{CliError, ExitCode};
use crate::plugin_folder::PluginFolder;
use crate::stdout::{outln, print_json};

pub(crate) fn list(folder: &mut PluginFolder, as_json: bool) -> Result<ExitCode, CliError> {
    let discovery = folder.scan()?;
    let dir = folder.dir();
    if as_json {
        let plugins: Vec<Value> = discovery.plugins.iter().map(plugin_json).collect();
        let problems: Vec<Value> = discovery
            .problems
            .iter()
            .map(|p| {
                json!({
                    "path": p.path,
                    "kind": p.kind.as_str(),
                    "reason": p.reason,
                    "declared_api_version": p.declared_api_version.map(|v| v.to_string()),
                })
            })
            .collect();
        print_json(&json!({ "plugin_dir": dir, "plugins": plugins, "problems": problems }));
        return Ok(ExitCode::Success);
    }
    if discovery.plugins.is_empty() {
        outln!("no plugins in `{}`", dir.display());
    }
    for plugin in &discovery.plugins {
        let m = &plugin.manifest;
        outln!(
            "{} {}  ({}, plugin-api {})  {}",
            m.code,
            m.version,
            category_name(m),
            plugin.api_version,
            plugin.path.display()
        );
        if !m.description.is_empty() {
            outln!("  {}", m.description);
        }
        let width = m.actions.iter().map(|a| a.name.len()).max().unwrap_or(0);
        for action in &m.actions {
            outln!("  {:width$}  {}", action.name, action.description);
        }
    }
    if !discovery.problems.is_empty() {
        outln!("\nnot loaded:");
        for problem in &discovery.problems {
            outln!("  {problem}");
        }
    }
    Ok(ExitCode::Success)
}

fn category_name(manifest: &plugin_api::PluginManifest) -> String {
    serde_json::to_value(manifest.category)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn plugin_json(plugin: &CatalogPlugin) -> Value {
    let m = &plugin.manifest;
    json!({
        "code": m.code,
        "name": m.name,
        "version": m.version,
        "category": m.category,
        "description": m.description,
        "path": plugin.path,
        "plugin_api": plugin.api_version.to_string(),
        "actions": m.actions.iter().map(action_summary_json).collect::<Vec<_>>(),
        "permissions": m.permissions,
    })
}

/// An action in `list --json`: its name, description and run method, and
/// the resources it reserves on a cluster when it declares any.
fn action_summary_json(action: &ActionManifest) -> Value {
    let mut summary = json!({
        "name": action.name, "description": action.description, "method": action.method,
    });
    if !action.resources.is_empty() {
        summary["resources"] = serde_json::to_value(&action.resources).unwrap_or_default();
    }
    summary
}
