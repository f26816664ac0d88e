//! `loader report FILE [-o PAGE.html] [--open]`: writes the HTML page of a
//! run's events file or a batch's results file ([`loader::report`]), and
//! opens it in the browser if asked.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use loader::report::{self, Input, ReportError};

use crate::cli::ReportArgs;
use crate::exit_code::{CliError, ExitCode};

/// Runs `loader report`.
pub fn report(args: &ReportArgs) -> Result<ExitCode, CliError> {
    let output = args.output.clone().unwrap_or_else(|| args.input.with_extension("html"));
    if same_file(&output, &args.input) {
        return Err(CliError::usage(format!(
            "the report would overwrite its input `{}`",
            args.input.display()
        ))
        .with_help("name the page with -o PAGE.html"));
    }
    let started = Instant::now();
    let input = report::read(&args.input).map_err(|e| error(&e))?;
    let page = input.render(&args.input.display().to_string());
    report::write(&output, &page).map_err(|e| error(&e))?;
    let what = match &input {
        Input::Run(trace) => format!(
            "{} {}, {} events",
            trace.plugin.as_deref().unwrap_or("?"),
            trace.action.as_deref().unwrap_or("?"),
            trace.events
        ),
        Input::Batch(results) => format!("batch of {} lines", results.rows.len()),
    };
    eprintln!(
        "wrote {} ({} KiB; {what}) in {:.2} s",
        output.display(),
        page.len().div_ceil(1024),
        started.elapsed().as_secs_f64()
    );
    if args.open {
        open_in_browser(&output).map_err(|e| CliError::new(ExitCode::ActionFailed, e))?;
    }
    Ok(ExitCode::Success)
}

/// A report error as the CLI shows it: bad input is a usage error (2), a
/// page that cannot be written a failure (1).
fn error(error: &ReportError) -> CliError {
    match error {
        ReportError::Write { .. } => CliError::new(ExitCode::ActionFailed, error.to_string()),
        ReportError::NotRecognised { .. } | ReportError::Empty { .. } | ReportError::NotAFile { .. } => {
            CliError::usage(error.to_string()).with_help(
                "write one with `loader run PLUGIN ACTION --events run.jsonl`, then `loader report run.jsonl`",
            )
        }
        _ => CliError::usage(error.to_string()),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Starts the browser on `page` without waiting for it: `$BROWSER` (a
/// command; `%s` in it is replaced by the page, else the page is added),
/// else `xdg-open` (`open` on macOS, `start` on Windows).
fn open_in_browser(page: &Path) -> Result<(), String> {
    let page = page.canonicalize().unwrap_or_else(|_| page.to_owned());
    let page = page.display().to_string();
    let browser = std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty());
    let mut command = match &browser {
        Some(browser) => {
            let first = browser.split(':').next().unwrap_or_default();
            let mut words = first.split_whitespace();
            let program = words.next().unwrap_or_default();
            let mut args: Vec<String> = words.map(|w| w.replace("%s", &page)).collect();
            if !first.contains("%s") {
                args.push(page.clone());
            }
            let mut command = Command::new(program);
            command.args(args);
            command
        }
        None if cfg!(target_os = "macos") => {
            let mut command = Command::new("open");
            command.arg(&page);
            command
        }
        None if cfg!(windows) => {
            let mut command = Command::new("cmd");
            command.args(["/C", "start", ""]).arg(&page);
            command
        }
        None => {
            let mut command = Command::new("xdg-open");
            command.arg(&page);
            command
        }
    };
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| {
            format!("the page was written, but the browser ({program}) could not be started: {e}; open {page} yourself")
        })
}
