//! `loader dev [CRATE_DIR] ACTION --params ...`: the CLI side of a
//! [`loader::dev`] session (arguments, Ctrl-C, errors).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;
use loader::dev::{DevError, DevOptions, DevSession};

use crate::exit::{CliError, ExitCode};

#[derive(Debug, Args)]
#[command(
    override_usage = "loader dev [CRATE_DIR] ACTION [--params JSON|@FILE] [--release] [--clear] [-- RUN_OPTIONS...]"
)]
pub struct DevArgs {
    /// The plugin crate's folder (default: the current folder), then the
    /// action to run after each successful build.
    #[arg(value_name = "[CRATE_DIR] ACTION", num_args = 1..=2, required = true)]
    pub target: Vec<String>,

    /// Params of every run, as `loader run` takes them: JSON, or @FILE (read
    /// again on each run).
    #[arg(long, default_value = "{}", value_name = "JSON|@FILE")]
    pub params: String,

    /// Build with `cargo build --release`.
    #[arg(long)]
    pub release: bool,

    /// Clear the screen before each run (a failed build never clears it).
    #[arg(long)]
    pub clear: bool,

    /// Further `loader run` options for every run, after `--`, e.g.
    /// `-- --events run.jsonl --env BATCH_SIZE=8`.
    #[arg(last = true, value_name = "RUN_OPTIONS")]
    pub run_options: Vec<OsString>,
}

/// Runs `loader dev` until Ctrl-C.
pub fn dev(args: DevArgs, verbose: u8) -> Result<ExitCode, CliError> {
    let (crate_dir, action) = match args.target.as_slice() {
        [action] => (PathBuf::from("."), action.clone()),
        [dir, action] => (PathBuf::from(dir), action.clone()),
        _ => {
            return Err(CliError::usage(
                "give the action to run, after the crate's folder if it is not this one",
            ))
        }
    };
    if !args.params.starts_with('@') {
        serde_json::from_str::<serde::de::IgnoredAny>(&args.params)
            .map_err(|e| CliError::usage(format!("--params is not valid JSON: {e}")))?;
    }
    let loader = std::env::current_exe().map_err(|e| {
        CliError::new(
            ExitCode::ActionFailed,
            format!("cannot find the loader executable: {e}"),
        )
    })?;
    let options = DevOptions {
        crate_dir,
        action,
        params: args.params,
        run_args: args.run_options,
        release: args.release,
        clear: args.clear,
        verbose,
        loader,
        cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
    };
    let (session, interrupter) = DevSession::new(options).map_err(|e| error(&e))?;
    if let Err(e) = ctrlc::set_handler(move || interrupter.interrupt()) {
        tracing::warn!("Ctrl-C will end the session without stopping its runs first: {e}");
    }
    session.run().map_err(|e| error(&e))?;
    Ok(ExitCode::Success)
}

fn error(error: &DevError) -> CliError {
    match error {
        DevError::NoManifest { .. } | DevError::NotAPlugin { .. } | DevError::Metadata { .. } => {
            CliError::usage(error.to_string())
                .with_help("give the folder of a plugin crate (`loader new NAME` writes one)")
        }
        _ => CliError::new(ExitCode::ActionFailed, error.to_string()),
    }
}
