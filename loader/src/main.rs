//! The `loader` command: lists the plugins of a folder, shows their actions'
//! params, and runs an action with an injected context. See the README for
//! the options, the event schema and the exit codes.

mod cli;
mod commands;
mod connect;
mod exit;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(error) if error.shown => error.code,
        Err(error) => {
            eprintln!("error: {}", error.message);
            for detail in &error.details {
                eprintln!("  {detail}");
            }
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
        .with_target(false)
        .init();
}
