//! Running an action: what the plugin may see ([`environment`], read from
//! [`env_file`] and [`input_file`]; [`env_hint`] says what it missed), the
//! run in this process ([`runner`] with its context host [`host`], and
//! [`in_process_exit`] for a plugin that ends the process), batches of
//! runs ([`batch`]), secrets kept out of every sink ([`redact`]), and what
//! a run left behind ([`orphans`]). An isolated run's child is
//! [`crate::isolate`].

pub mod batch;
pub mod env_file;
pub mod env_hint;
pub mod environment;
pub mod host;
pub mod in_process_exit;
pub mod input_file;
pub mod orphans;
pub mod redact;
pub mod runner;
