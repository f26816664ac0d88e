//! The grants and limits of a run (`--allow-*`, `--max-processes`,
//! `--memory`, `--keep-work-dir`, and what `loader grant` recorded), a
//! plugin's permissions as text, and the hint that names the grant a
//! "permission denied" needs. The `grant` and `sandbox check` commands are
//! in `commands`.

use std::path::{Path, PathBuf};

use loader::sandbox::{
    resolve, GrantBook, MissingGrant, RunGrants, RunSandbox, SandboxMode, Support, DEFAULT_MAX_PROCESSES,
    DEFAULT_MEMORY_BYTES,
};
use plugin_api::{ActionManifest, Permissions, PluginManifest};

use crate::cli::{PermissionArgs, RunArgs};
use crate::exit_code::{CliError, ExitCode};

/// The grant book of `state_dir` (the default state folder when `None`).
pub(crate) fn grant_book(state_dir: Option<&Path>) -> Result<GrantBook, CliError> {
    let dir = state_dir
        .map(Path::to_owned)
        .unwrap_or_else(loader::backend::config::default_state_dir);
    GrantBook::open(&GrantBook::file_in(&dir)).map_err(|e| CliError::new(ExitCode::Usage, e.to_string()))
}

/// `--allow-*` as given, checked.
fn run_grants(flags: &PermissionArgs) -> Result<RunGrants, CliError> {
    for entry in flags.allow_net.iter().flatten() {
        loader::sandbox::check_net_entry(entry).map_err(|e| CliError::usage(format!("--allow-net {e}")))?;
    }
    let absolute = |flag: &str, paths: &[PathBuf]| -> Result<Vec<PathBuf>, CliError> {
        paths
            .iter()
            .map(|p| std::path::absolute(p).map_err(|e| CliError::usage(format!("{flag} {}: {e}", p.display()))))
            .collect()
    };
    Ok(RunGrants {
        read: absolute("--allow-read", &flags.allow_read)?,
        write: absolute("--allow-write", &flags.allow_write)?,
        net: flags.allow_net.clone(),
        env: flags.allow_env.clone(),
        run: flags.allow_run.clone(),
        max_processes: flags.max_processes,
    })
}

/// The sandbox of a run of `action` of the plugin `manifest` declares:
/// every declared permission granted (by a flag or a recorded grant), or
/// an error naming each one that is not and how to grant it.
pub fn run_sandbox(
    args: &RunArgs,
    mode: SandboxMode,
    manifest: &PluginManifest,
    action: &ActionManifest,
) -> Result<RunSandbox, CliError> {
    let flags = run_grants(&args.permissions)?;
    let book = grant_book(args.backend.state_dir.as_deref())?;
    let recorded = book.recorded(&manifest.code).map(|r| &r.permissions);
    let grants = resolve(&manifest.permissions, recorded, &flags)
        .map_err(|missing| not_granted(&manifest.code, &missing, recorded.is_some()))?;
    if mode == SandboxMode::Require {
        require_complete(grants.net == loader::sandbox::NetAccess::All)?;
    }
    let memory = args
        .elsewhere
        .memory
        .or(action.resources.memory)
        .unwrap_or(DEFAULT_MEMORY_BYTES);
    let max_processes = grants.max_processes.unwrap_or(DEFAULT_MAX_PROCESSES).max(1);
    Ok(RunSandbox {
        mode,
        grants,
        limits: loader::sandbox::Limits {
            max_processes,
            memory_bytes: Some(memory),
        },
        keep_work_dir: args.permissions.keep_work_dir,
    })
}

/// The grants of a run on a Ray cluster, as flags of the loader there:
/// checked here first as [`run_sandbox`] checks them (an error naming what
/// was not granted), then every `--allow-*` flag and every entry of the
/// plugin's recorded grant (the cluster's loader has no grant book), and
/// the names of the environment variables granted.
pub fn forwarded_grants(
    args: &RunArgs,
    mode: SandboxMode,
    manifest: &PluginManifest,
    action: &ActionManifest,
) -> Result<(Vec<String>, Vec<String>), CliError> {
    let resolved = run_sandbox(args, mode, manifest, action)?;
    let flags = run_grants(&args.permissions)?;
    let book = grant_book(args.backend.state_dir.as_deref())?;
    let recorded = book
        .recorded(&manifest.code)
        .map(|r| r.permissions.clone())
        .unwrap_or_default();
    let mut words: Vec<String> = Vec::new();
    let add = |words: &mut Vec<String>, flag: &str, value: String| {
        words.push(flag.to_owned());
        words.push(value);
    };
    for path in &flags.read {
        add(&mut words, "--allow-read", path.display().to_string());
    }
    for path in &flags.write {
        add(&mut words, "--allow-write", path.display().to_string());
    }
    for entry in recorded.read {
        add(&mut words, "--allow-read", entry);
    }
    for entry in recorded.write {
        add(&mut words, "--allow-write", entry);
    }
    for name in flags.env.iter().chain(&recorded.env) {
        add(&mut words, "--allow-env", name.clone());
    }
    for program in flags.run.iter().chain(&recorded.run) {
        add(&mut words, "--allow-run", program.clone());
    }
    let mut net: Vec<String> = flags.net.clone().unwrap_or_default();
    net.extend(recorded.net.iter().cloned());
    let all_net = flags.net.as_ref().is_some_and(Vec::is_empty) || net.iter().any(|e| e == "*");
    if all_net {
        words.push("--allow-net".to_owned());
    } else if !net.is_empty() {
        words.push(format!("--allow-net={}", net.join(",")));
    }
    if let Some(processes) = resolved.grants.max_processes {
        add(&mut words, "--max-processes", processes.to_string());
    }
    Ok((words, resolved.grants.env))
}

/// With `--sandbox=require`: refuses at once when this system lacks a part
/// of the sandbox.
fn require_complete(net_all: bool) -> Result<(), CliError> {
    let missing = Support::detect().missing(net_all, true);
    match loader::sandbox::missing_line(&missing) {
        Some(line) => Err(CliError::new(
            ExitCode::SandboxUnavailable,
            format!("the sandbox is required (--sandbox=require), but {line}"),
        )
        .with_help("`loader sandbox check` shows what this system supports")),
        None => Ok(()),
    }
}

fn not_granted(code: &str, missing: &[MissingGrant], changed: bool) -> CliError {
    let mut causes: Vec<String> = missing.iter().map(|m| format!("needs to {m}")).collect();
    if changed {
        causes.push("the permissions granted with `loader grant` were for a different set; grant again".to_owned());
    }
    CliError::new(
        ExitCode::NotGranted,
        format!("plugin {code:?} declares permissions that were not granted; nothing was run"),
    )
    .with_causes(causes)
    .with_help(format!(
        "grant them for one run with the flags above, or once for this plugin with `loader grant {code}`"
    ))
}

/// The permissions a plugin declares, a line each (`read   /data, ...`).
pub fn permission_lines(permissions: &Permissions) -> Vec<String> {
    let mut lines: Vec<String> = permissions
        .lists()
        .into_iter()
        .filter(|(_, entries)| !entries.is_empty())
        .map(|(field, entries)| format!("{field:<5}  {}", entries.join(", ")))
        .collect();
    if let Some(count) = permissions.processes {
        lines.push(format!("processes  up to {count} at once"));
    }
    lines
}

/// The permissions a plugin asks for, as `loader info` shows them: a line
/// per kind, and whether they were granted once with `loader grant`.
pub fn permissions_text(manifest: &PluginManifest) -> String {
    let lines = permission_lines(&manifest.permissions);
    if lines.is_empty() {
        return "permissions: none beyond the sandbox's defaults\n".to_owned();
    }
    let mut text = "permissions requested:\n".to_owned();
    for line in lines {
        text.push_str(&format!("  {line}\n"));
    }
    let granted = grant_book(None).ok().and_then(|book| {
        book.recorded(&manifest.code)
            .map(|r| r.permissions == manifest.permissions)
    });
    text.push_str(match granted {
        Some(true) => "  (granted with `loader grant`)\n",
        Some(false) => "  (a different set was granted with `loader grant`: grant again, or use --allow-* flags)\n",
        None => "  (not granted: pass the --allow-* flags to `run`, or `loader grant` it once)\n",
    });
    text
}

/// Words before a path that say it was being written.
const WRITING: &[&str] = &[
    "writing",
    "write",
    "creating",
    "create",
    "saving",
    "removing",
    "renaming",
    "open for writing",
];

/// A hint for a failure the sandbox probably caused: an action whose
/// error says "Permission denied" or "Operation not permitted" gets the
/// grant that would allow what it tried (`--allow-write` the folder of a
/// path it was writing, `--allow-read` a path it was reading,
/// `--allow-net` or `--allow-run` when it was connecting or starting a
/// program).
pub fn denial_hint(message: &str, plugin: &str) -> Option<String> {
    let denied = [
        "Permission denied",
        "Operation not permitted",
        "os error 13",
        "os error 1)",
    ];
    if !denied.iter().any(|d| message.contains(d)) {
        return None;
    }
    let lower = message.to_lowercase();
    let path = message
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`')
        .map(|word| word.trim_end_matches([':', ',', ';', ')']))
        .find(|word| word.starts_with('/') && word.len() > 1);
    let grant = match path {
        Some(path) => {
            let before = &lower[..lower.find(&path.to_lowercase()).unwrap_or(0)];
            if WRITING.iter().any(|w| before.trim_end().ends_with(w)) {
                let folder = Path::new(path)
                    .parent()
                    .filter(|_| !Path::new(path).is_dir())
                    .unwrap_or(Path::new(path));
                format!("--allow-write {}", folder.display())
            } else {
                format!("--allow-read {path}")
            }
        }
        None if ["connect", "socket", "network", "unreachable", "bind"]
            .iter()
            .any(|w| lower.contains(w)) =>
        {
            "--allow-net HOST:PORT".to_owned()
        }
        None if ["spawn", "exec", "program", "command", "start"]
            .iter()
            .any(|w| lower.contains(w)) =>
        {
            "--allow-run PROGRAM".to_owned()
        }
        None => "--allow-read PATH, --allow-write PATH, --allow-net HOST:PORT or --allow-run PROGRAM".to_owned(),
    };
    Some(format!(
        "the sandbox may have refused this: if the plugin needs it, grant it with {grant} (`loader info {plugin}` shows what the plugin declares)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_write_names_the_folder_to_grant() {
        let hint = denial_hint("writing /data/out/model.bin: Permission denied (os error 13)", "p").unwrap();
        assert!(hint.contains("--allow-write /data/out "), "{hint}");
        let hint = denial_hint("reading /data/in.csv: Permission denied (os error 13)", "p").unwrap();
        assert!(hint.contains("--allow-read /data/in.csv "), "{hint}");
        let hint = denial_hint("cannot start sleep: Permission denied (os error 13)", "p").unwrap();
        assert!(hint.contains("--allow-run PROGRAM"), "{hint}");
        let hint = denial_hint("connect: Operation not permitted (os error 1)", "p").unwrap();
        assert!(hint.contains("--allow-net HOST:PORT"), "{hint}");
        assert!(denial_hint("the model diverged", "p").is_none());
    }
}
