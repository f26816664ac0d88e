//! `loader jobs`: list, follow, show the logs of and stop jobs on a Ray cluster.

use std::io::Write;
use std::time::Instant;

use loader::ray::api::resolve_address;
use loader::ray::feed::POLL_INTERVAL;
use loader::ray::log::{JobLog, LogLines};
use loader::ray::JobsApi;
use serde_json::Value;

use crate::cli::{JobsArgs, JobsCommand};
use crate::exit_code::{CliError, ExitCode};
use crate::on_ray::ray_error;
use crate::stdout::print_json;

/// Runs a `loader jobs` command.
pub fn jobs(args: JobsArgs) -> Result<ExitCode, CliError> {
    let api = JobsApi::new(&resolve_address(args.ray_address.as_deref()));
    let not_found = |e: loader::ray::RayError| match e {
        loader::ray::RayError::NoSuchJob(_) => CliError::new(ExitCode::NotFound, e.to_string()),
        other => ray_error(other),
    };
    match args.command {
        JobsCommand::List { json } => {
            let jobs = api.list().map_err(ray_error)?;
            if json {
                print_json(&Value::Array(jobs.into_iter().map(|j| j.raw).collect()));
            } else {
                for job in jobs {
                    let plugin = job.metadata["loader.plugin"].as_str().unwrap_or("-");
                    let action = job.metadata["loader.action"].as_str().unwrap_or("-");
                    println!(
                        "{}  {:9}  {plugin} {action}",
                        job.submission_id.as_deref().unwrap_or("-"),
                        job.status.as_str()
                    );
                }
            }
        }
        JobsCommand::Status { id, json } => {
            let job = api.status(&id).map_err(not_found)?;
            if json {
                print_json(&job.raw);
            } else {
                println!("{}", job.status.as_str());
                if let Some(message) = job.message.filter(|m| !m.trim().is_empty()) {
                    println!("{}", message.trim());
                }
            }
        }
        JobsCommand::Logs { id, follow } => {
            let mut out = std::io::stdout();
            // Every line is wanted: printing never has enough.
            let mut print = |line: String| {
                let _ = writeln!(out, "{line}");
                false
            };
            if !follow {
                let mut lines = LogLines::default();
                let log = api.logs(&id).map_err(not_found)?;
                for line in lines.advance(&log).into_iter().chain(lines.rest()) {
                    print(line);
                }
                return Ok(ExitCode::Success);
            }
            api.status(&id).map_err(not_found)?;
            let mut log = JobLog::open(&api, &id);
            let mut next_check = Instant::now();
            loop {
                log.read_until(next_check, &mut print).map_err(not_found)?;
                let _ = std::io::stdout().flush();
                next_check = Instant::now() + POLL_INTERVAL;
                if api.status(&id).map_err(not_found)?.status.is_terminal() {
                    log.read_rest(false, &mut print).map_err(not_found)?;
                    break;
                }
                log.job_is_running();
            }
        }
        JobsCommand::Stop { id } => {
            let stopped = api.stop(&id).map_err(not_found)?;
            println!(
                "{}",
                if stopped {
                    "stop requested"
                } else {
                    "the job had already ended"
                }
            );
        }
    }
    Ok(ExitCode::Success)
}
