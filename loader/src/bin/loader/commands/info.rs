//! `loader info PLUGIN [ACTION]`: a plugin's actions, params, resources and
//! permissions, as text or JSON.

use loader::isolate::{describe_isolated, ExpectedPlugin, IsolationOptions};
use loader::sandbox::RunSandbox;
use plugin_api::{ActionManifest, ActionResources};

use crate::exit_code::{CliError, ExitCode};
use crate::params_table;
use crate::plugin_folder::{find_action_if_named, PluginFolder};
use crate::run_setup::child_command;
use crate::stdout::{outln, print_json};

/// `loader info`: the full manifest comes from an isolated child that loads
/// the library (the loader never does outside `--in-process`).
pub(crate) fn info(
    folder: &mut PluginFolder,
    name: &str,
    action: Option<&str>,
    as_json: bool,
) -> Result<ExitCode, CliError> {
    let plugin = &folder.describe(name)?;
    find_action_if_named(plugin, action)?;
    let expected = ExpectedPlugin::new(plugin.manifest.clone(), plugin.api_version);
    let options = IsolationOptions {
        load_timeout: folder.load_timeout(),
        ..IsolationOptions::default()
    };
    let sandbox = RunSandbox {
        mode: folder.sandbox(),
        ..RunSandbox::default()
    };
    let child = child_command("describe the plugin")?;
    let manifest = match describe_isolated(&child, &plugin.path, &expected, options, &sandbox) {
        Ok(described) => described.map_err(|failure| {
            CliError::new(
                ExitCode::ActionFailed,
                format!("{}: {}", plugin.path.display(), failure.message),
            )
        })?,
        Err(stale) => return Err(folder.not_as_described(stale)),
    };
    let actions: Vec<&ActionManifest> = manifest
        .actions
        .iter()
        .filter(|a| action.is_none_or(|name| a.name == name))
        .collect();
    if as_json {
        match action {
            Some(_) => print_json(&serde_json::to_value(actions[0]).unwrap_or_default()),
            None => print_json(&serde_json::to_value(&manifest).unwrap_or_default()),
        }
        return Ok(ExitCode::Success);
    }
    let m = &manifest;
    outln!(
        "{} ({}) {} — plugin-api {}",
        m.name,
        m.code,
        m.version,
        plugin.api_version
    );
    if !m.description.is_empty() {
        outln!("{}", m.description);
    }
    crate::stdout::write(&crate::sandbox_grants::permissions_text(m));
    for a in actions {
        outln!("\naction {} ({:?})", a.name, a.method);
        if !a.description.is_empty() {
            outln!("  {}", a.description);
        }
        if !a.resources.is_empty() {
            outln!("resources on a cluster: {}", resources_line(&a.resources));
        }
        outln!("params:");
        crate::stdout::write(&params_table::render(&params_table::param_rows(&a.params_schema)));
        if a.result_schema.is_some() {
            outln!("result: see the schema with --json");
        }
    }
    Ok(ExitCode::Success)
}

/// The declared resources as `loader info` shows them, with the problem
/// when a cluster could not grant them.
fn resources_line(resources: &ActionResources) -> String {
    let mut parts = Vec::new();
    if let Some(cpus) = resources.num_cpus {
        parts.push(format!("num_cpus {cpus}"));
    }
    if let Some(gpus) = resources.num_gpus {
        parts.push(format!("num_gpus {gpus}"));
    }
    if let Some(bytes) = resources.memory {
        parts.push(format!("memory {bytes} bytes"));
    }
    parts.extend(
        resources
            .resources
            .iter()
            .map(|(name, amount)| format!("{name} {amount}")),
    );
    let mut line = parts.join(", ");
    if let Err(problem) = resources.check() {
        line.push_str(&format!(" (invalid: {problem})"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lists_declared_resources_and_says_what_is_wrong_with_them() {
        let declared = ActionResources::new().num_cpus(2.0).memory(1024).resource("accel", 1.0);
        assert_eq!(resources_line(&declared), "num_cpus 2, memory 1024 bytes, accel 1");
        let broken = resources_line(&ActionResources::new().num_gpus(-1.0));
        assert_eq!(broken, "num_gpus -1 (invalid: resources.num_gpus = -1: negative)");
    }
}
