//! One module per subcommand; [`dispatch`] sends the parsed command line to
//! it. Each turns its arguments into calls of the loader library and what
//! comes back into text, JSON and an exit code.

mod dev;
mod flush;
mod grant;
mod info;
mod jobs;
mod list;
mod new;
mod report;
mod run;
mod sandbox;

use loader::find::load_check::serve_load_check;

use crate::cli::{Cli, Command};
use crate::exit_code::{CliError, ExitCode};
use crate::plugin_folder::{plugin_dir, PluginFolder};
use crate::run_setup::seconds;

pub fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    check_no_load_check(&cli)?;
    let load_timeout = seconds(cli.load_timeout, "--load-timeout")?;
    let sandbox = cli.sandbox.mode();
    let folder = || {
        PluginFolder::open(
            &plugin_dir(cli.plugins.clone()),
            !cli.no_cache,
            !cli.no_load_check,
            load_timeout,
            sandbox,
        )
    };
    match cli.command {
        Command::List { json } => list::list(&mut folder()?, json),
        Command::Info { plugin, action, json } => info::info(&mut folder()?, &plugin, action.as_deref(), json),
        Command::Run(args) => run::run(&mut folder()?, *args, cli.verbose > 0, sandbox),
        Command::Grant(args) => grant::grant(folder, &args),
        Command::Sandbox {
            command: crate::cli::SandboxCommand::Check { json },
        } => sandbox::check(sandbox, json),
        Command::SandboxProbe { .. } => Ok(match loader::sandbox::probes::serve_probe() {
            0 => ExitCode::Success,
            2 => ExitCode::Usage,
            _ => ExitCode::ActionFailed,
        }),
        Command::Flush(args) => flush::flush(&args),
        Command::New(args) => {
            let created = new::new_plugin(&args)?;
            eprint!("{}", created.next_steps(&new::loader_command()));
            Ok(ExitCode::Success)
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "loader",
                &mut script,
            );
            crate::stdout::write(&String::from_utf8_lossy(&script));
            Ok(ExitCode::Success)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut page)
                .map_err(|e| CliError::new(ExitCode::ActionFailed, format!("cannot render the man page: {e}")))?;
            crate::stdout::write(&String::from_utf8_lossy(&page));
            Ok(ExitCode::Success)
        }
        Command::Jobs(args) => jobs::jobs(args),
        Command::Report(args) => report::report(&args),
        Command::Dev(args) => dev::dev(args, cli.verbose),
        Command::Child => Ok(match loader::isolate::serve_child() {
            0 => ExitCode::Success,
            2 => ExitCode::Usage,
            _ => ExitCode::ActionFailed,
        }),
        Command::LoadCheck => Ok(match serve_load_check() {
            0 => ExitCode::Success,
            2 => ExitCode::Usage,
            _ => ExitCode::ActionFailed,
        }),
    }
}

/// `--no-load-check` loads every library of the folder into the loader
/// itself: refused (exit 2) but for `run --in-process`, whose point is to
/// run a trusted plugin in the loader's process.
fn check_no_load_check(cli: &Cli) -> Result<(), CliError> {
    let in_process = matches!(&cli.command, Command::Run(args) if args.in_process);
    if cli.no_load_check && !in_process {
        return Err(CliError::usage(
            "--no-load-check is allowed only with `run --in-process`: it loads every plugin library of the folder \
             into the loader's own process, where no plugin code runs otherwise",
        )
        .with_help("drop --no-load-check, or run trusted plugins with `run --in-process --no-load-check`"));
    }
    Ok(())
}
