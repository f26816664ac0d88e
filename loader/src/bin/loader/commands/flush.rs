//! `loader flush`: delivers the journals a backend could not take during
//! their runs.

use loader::backend::config::{ACCESS_TOKEN_VAR, HOST_VAR, TENANT_VAR};
use loader::backend::flush::flush_spool;
use loader::backend::{backend_endpoint, BackendSettings};
use loader::run::redact::Redactor;

use crate::backend::{state_dir, var};
use crate::cli::FlushArgs;
use crate::exit_code::{CliError, ExitCode};
use crate::run_setup::seconds;

/// `loader flush`: delivers the journals of the state folder recorded for
/// the backend given (`--backend` or `SYNAPSE_HOST`, required) and says
/// what became of each; a journal recorded for another backend is left and
/// reported, never sent there.
pub fn flush(args: &FlushArgs) -> Result<ExitCode, CliError> {
    let timeout = seconds(args.backend_timeout, "--backend-timeout")?;
    let time_limit = seconds(args.backend_wait, "--backend-wait")?;
    let settings = BackendSettings::new(state_dir(&args.state_dir));
    let token = var(ACCESS_TOKEN_VAR);
    let tenant = var(TENANT_VAR);
    let Some(url) = args.backend.as_deref().filter(|u| !u.is_empty()) else {
        return Err(CliError::usage(format!(
            "loader flush needs the backend to deliver to: --backend URL or {HOST_VAR}"
        ))
        .with_help("journals go only to the backend given, never to an address read from a journal"));
    };
    let endpoint = backend_endpoint(url, token.as_deref(), tenant.as_deref());
    let outcomes = flush_spool(&settings.spool_dir, &endpoint, timeout, time_limit, settings.batch_size);
    let mut redactor = Redactor::default();
    for secret in [&token, &tenant].into_iter().flatten() {
        redactor.add_secret(secret);
    }
    if outcomes.is_empty() {
        println!("nothing to deliver in {}", settings.spool_dir.display());
        return Ok(ExitCode::Success);
    }
    let mut complete = true;
    let given = redactor.redact_str(&endpoint.url).into_owned();
    for outcome in &outcomes {
        if let Some(other) = &outcome.other_backend {
            let other = redactor.redact_str(other);
            println!(
                "job {}: recorded for another backend, {other} (not {given}); nothing sent, left in {}",
                outcome.job_id,
                outcome.journal.display()
            );
            println!("  if that backend is yours, deliver it with `loader flush --backend {other}`");
            continue;
        }
        println!(
            "job {}: delivered {} requests ({} log entries); {} requests ({} log entries) remain in {}",
            outcome.job_id,
            outcome.delivered_requests,
            outcome.delivered_entries,
            outcome.remaining_requests,
            outcome.remaining_entries,
            outcome.journal.display()
        );
        if let Some(error) = &outcome.error {
            println!("  {}", redactor.redact_str(error));
        }
        complete &= outcome.remaining_requests == 0;
    }
    Ok(if complete {
        ExitCode::Success
    } else {
        ExitCode::BackendUndelivered
    })
}
