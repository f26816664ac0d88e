//! The `loader` command: lists the plugins of a folder, shows their actions'
//! params, runs an action with an injected context, writes new plugin
//! crates, draws a run's report, and rebuilds and reruns a plugin as its
//! author edits it. The book (`docs/src/cli.md`, `events.md`) describes the
//! options, the event schema and the exit codes.

mod backend;
mod cli;
mod commands;
mod ctrl_c;
mod exit_code;
mod on_ray;
mod params_table;
mod plugin_folder;
mod run_setup;
mod sandbox_grants;
mod stdout;
mod suggest;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if !cli.command.is_internal() {
        // The loader holds the backend's credentials: no process of the
        // user may read its memory or its /proc/PID/environ.
        loader::sandbox::protect_this_process();
    }
    init_tracing(cli.verbose);
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{error}");
            error.code
        }
    };
    std::process::exit(code as i32);
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOADER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("loader={default}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
