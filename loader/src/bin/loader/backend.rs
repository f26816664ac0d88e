//! The backend side of the CLI: turns `--backend`, `--agent` (or, inside a
//! Ray job, the cluster's Jobs API), `--state-dir` and `--redact` (and the
//! Synapse variables) into the run's clients and its redacting and
//! reporting sinks (`commands::flush` delivers what they could not).

use std::path::PathBuf;
use std::sync::Arc;

use loader::backend::config::{self, ACCESS_TOKEN_VAR, AGENT_TOKEN_VAR, TENANT_VAR};
use loader::backend::flush::flush_spool;
use loader::backend::{agent_endpoint, backend_endpoint, ApiClient, BackendSettings, BackendSink, Endpoint};
use loader::events::{EventSink, FanOut};
use loader::ray::jobs_api_endpoint;
use loader::run::host::Clients;
use loader::run::redact::{RedactingSink, Redactor};
use plugin_api::PluginEnvironment;

use crate::cli::BackendArgs;
use crate::exit_code::{CliError, ExitCode};
use crate::run_setup::seconds;

pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub(crate) fn state_dir(flag: &Option<PathBuf>) -> PathBuf {
    flag.clone().unwrap_or_else(config::default_state_dir)
}

/// The sink a run reports to, and its job reporter when there is one.
pub type RunSinks = (Arc<dyn EventSink>, Option<Arc<BackendSink>>);

/// A run's connection to the backend and agent, and its secrets.
pub struct Connection {
    backend: Option<Endpoint>,
    agent: Option<Endpoint>,
    redactor: Arc<Redactor>,
    settings: BackendSettings,
    require_backend: bool,
}

impl Connection {
    /// Reads the flags and variables; `env` is what the plugin will see
    /// (its secrets are redacted too). `ray_jobs_api` is the cluster's Jobs
    /// API when the run is a Ray job: the agent, unless `--agent` names one.
    pub fn new(args: &BackendArgs, ray_jobs_api: Option<&str>, env: &PluginEnvironment) -> Result<Self, CliError> {
        let token = var(ACCESS_TOKEN_VAR);
        let agent_token = var(AGENT_TOKEN_VAR);
        let backend = args
            .backend
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|url| backend_endpoint(url, token.as_deref(), var(TENANT_VAR).as_deref()));
        let agent = args
            .agent
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|url| agent_endpoint(url, agent_token.as_deref()))
            .or_else(|| ray_jobs_api.map(jobs_api_endpoint));
        let process_vars: Vec<(String, String)> = std::env::vars().collect();
        let vars = process_vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(env.iter());
        let mut redactor = Redactor::from_vars(vars, &args.redact);
        for secret in [&token, &agent_token].into_iter().flatten() {
            redactor.add_secret(secret);
        }
        let mut settings = BackendSettings::new(state_dir(&args.state_dir));
        settings.request_timeout = seconds(args.backend_timeout, "--backend-timeout")?;
        settings.drain_timeout = seconds(args.backend_wait, "--backend-wait")?;
        Ok(Self {
            backend,
            agent,
            redactor: Arc::new(redactor),
            settings,
            require_backend: args.require_backend,
        })
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The clients the plugin sees as `ctx.client()` and `ctx.agent_client()`:
    /// the loader's own, also for an isolated run, whose child asks the
    /// loader to make each call; their errors hide the run's secrets.
    pub fn clients(&self) -> Clients {
        let timeout = self.settings.request_timeout;
        let make = |endpoint: &Endpoint| {
            let client = ApiClient::with_redactor(endpoint.clone(), timeout, self.redactor.clone());
            Arc::new(client) as Arc<dyn loader::run::host::Client>
        };
        Clients {
            backend: self.backend.as_ref().map(make),
            agent: self.agent.as_ref().map(make),
        }
    }

    /// Puts the redaction layer in front of `sink`, and with a backend and a
    /// job id, the job reporter beside it (after delivering what earlier
    /// runs left for the same backend).
    pub fn sinks(&self, sink: Arc<dyn EventSink>, job_id: Option<&str>) -> Result<RunSinks, CliError> {
        let (Some(endpoint), Some(job_id)) = (&self.backend, job_id) else {
            return Ok((Arc::new(RedactingSink::new(sink, self.redactor.clone())), None));
        };
        self.deliver_leftovers(endpoint);
        let notify: Arc<dyn EventSink> = Arc::new(RedactingSink::new(sink.clone(), self.redactor.clone()));
        let reporter =
            BackendSink::new(endpoint.clone(), job_id, self.settings.clone(), Some(notify)).map_err(|e| {
                CliError::usage(format!(
                    "cannot keep the job's reports in {}: {e} (choose another --state-dir)",
                    self.settings.spool_dir.display()
                ))
            })?;
        let reporter = Arc::new(reporter);
        let both = FanOut::new().with(reporter.clone()).with(sink);
        Ok((
            Arc::new(RedactingSink::new(both, self.redactor.clone())),
            Some(reporter),
        ))
    }

    fn deliver_leftovers(&self, endpoint: &Endpoint) {
        let outcomes = flush_spool(
            &self.settings.spool_dir,
            endpoint,
            self.settings.request_timeout,
            self.settings.drain_timeout,
            self.settings.batch_size,
        );
        for outcome in outcomes {
            if let Some(other) = &outcome.other_backend {
                let other = self.redactor.redact_str(other);
                tracing::debug!("left {} for its backend {other}", outcome.journal.display());
                continue;
            }
            tracing::info!(
                "delivered {} requests ({} log entries) left by an earlier run of job {}",
                outcome.delivered_requests,
                outcome.delivered_entries,
                outcome.job_id
            );
            if let Some(error) = outcome.error {
                tracing::warn!("earlier reports in {}: {error}", outcome.journal.display());
            }
        }
    }

    /// With `--require-backend`, an error when the reports did not all
    /// reach the backend.
    pub fn check_delivery(&self, reporter: Option<&BackendSink>) -> Result<(), CliError> {
        let Some(report) = reporter.and_then(BackendSink::report) else {
            return Ok(());
        };
        if self.require_backend && !report.is_complete() {
            return Err(CliError::new(
                ExitCode::BackendUndelivered,
                self.redactor.redact_str(&report.summary()).into_owned(),
            ));
        }
        Ok(())
    }
}
