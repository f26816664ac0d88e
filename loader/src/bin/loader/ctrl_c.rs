//! Ctrl-C (and SIGTERM, SIGHUP) during a run, for every kind of run: the
//! first asks what runs to stop and says so; a later one ends the loader
//! at once.

use std::sync::Arc;

use loader::isolate::Interrupts;
use loader::run::batch::StopFlag;
use loader::run::host::RunSettings;

use crate::exit_code::ExitCode;

/// What Ctrl-C stops and says for one kind of run.
pub struct OnCtrlC {
    /// Said at the first Ctrl-C, after `interrupted: `.
    pub first: &'static str,
    /// What the user loses when no handler can be installed, after `Ctrl-C
    /// will not `.
    pub unless_installed: &'static str,
    /// The Ctrl-C that ends the loader: the second, or the third where the
    /// second kills an isolated action (the supervisor reads the count).
    pub exit_at: u32,
    /// Raised at the first Ctrl-C besides the run's cancel flag: a batch's
    /// or a remote job's.
    pub stop: Option<Arc<StopFlag>>,
}

/// Installs the handler for a run with `settings`; the count of Ctrl-Cs,
/// for the supervisor of an isolated run.
pub fn interrupt_on_ctrl_c(settings: &RunSettings, on: OnCtrlC) -> Interrupts {
    let interrupts = Interrupts::default();
    let (counter, cancel) = (interrupts.clone(), settings.cancel.clone());
    let OnCtrlC {
        first,
        unless_installed,
        exit_at,
        stop,
    } = on;
    let installed = ctrlc::set_handler(move || {
        counter.interrupt();
        cancel.cancel();
        if let Some(stop) = &stop {
            stop.stop();
        }
        if counter.count() == 1 {
            eprintln!("\ninterrupted: {first}");
        } else if counter.count() >= exit_at {
            loader::run::in_process_exit::exit_on_interrupt(ExitCode::ActionFailed as i32);
        }
    });
    if let Err(e) = installed {
        tracing::warn!("Ctrl-C will not {unless_installed}: {e}");
    }
    interrupts
}
