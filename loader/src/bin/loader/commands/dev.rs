//! `loader dev [CRATE_DIR] ACTION --params ...`: the CLI side of a
//! [`loader::dev`] session (arguments, Ctrl-C, errors).

use std::path::PathBuf;

use loader::dev::{DevError, DevOptions, DevSession};

use crate::cli::DevArgs;
use crate::exit_code::{CliError, ExitCode};

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
