//! `loader sandbox check`: what this kernel supports, and every probe tried
//! from inside the sandbox.

use loader::isolate::ChildCommand;
use loader::sandbox::{probes, SandboxMode};
use serde_json::json;

use crate::exit_code::{CliError, ExitCode};
use crate::stdout::outln;

/// `loader sandbox check`.
pub fn check(mode: SandboxMode, as_json: bool) -> Result<ExitCode, CliError> {
    let command = ChildCommand::current_exe(&["__sandbox-probe"]).map_err(|e| {
        CliError::new(
            ExitCode::ActionFailed,
            format!("cannot find the loader executable: {e}"),
        )
    })?;
    let report = probes::check(&command, mode);
    let code = if report.passed() {
        ExitCode::Success
    } else {
        ExitCode::SandboxUnavailable
    };
    if as_json {
        crate::stdout::print_json(&json!({ "passed": report.passed(), "report": report }));
        return Ok(code);
    }
    let support = &report.support;
    outln!("sandbox mode: {}", mode.name());
    outln!(
        "landlock: {}",
        match support.landlock_abi {
            0 => "not available".to_owned(),
            abi => format!("ABI {abi}"),
        }
    );
    outln!(
        "seccomp: {}",
        if support.seccomp { "available" } else { "not available" }
    );
    outln!(
        "namespaces: {}",
        match (
            &support.namespaces_refused,
            report.missing.iter().any(|m| m.part == "namespaces")
        ) {
            (Some(why), _) => format!("refused ({why})"),
            (None, true) => "refused".to_owned(),
            (None, false) => "user, PID and mount namespaces per run".to_owned(),
        }
    );
    outln!("cgroups: {}", support.cgroups.describe());
    outln!(
        "running as root: {}",
        if support.root {
            "yes (the child drops every capability)"
        } else {
            "no"
        }
    );
    if let Some(line) = loader::sandbox::missing_line(&report.missing) {
        outln!("missing: {line}");
    }
    outln!("\nprobes, in a sandboxed child:");
    let width = report.probes.iter().map(|p| p.what.len()).max().unwrap_or(0);
    for probe in &report.probes {
        outln!(
            "  {}  {:width$}  {} (must be: {})",
            if probe.ok { "ok  " } else { "FAIL" },
            probe.what,
            probe.outcome,
            probe.expected
        );
    }
    if let Some(error) = &report.error {
        outln!("\nerror: {error}");
    }
    let failed = report.probes.iter().filter(|p| !p.ok).count();
    outln!(
        "\n{} of {} probes as they must be",
        report.probes.len() - failed,
        report.probes.len()
    );
    Ok(code)
}
