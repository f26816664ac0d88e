//! The plugin host as a library: discover plugin libraries in a folder
//! ([`discovery`]), build the environment a plugin may see
//! ([`environment`]) from input files read with bounds ([`input_file`]),
//! run an action with an injected context ([`runner`],
//! [`host`]), and fan everything the plugin reports out to sinks
//! ([`events`]), in this process or in an isolated child ([`isolate`]);
//! libraries can be test-loaded in a child first ([`load_check`]), and what
//! they said is remembered until they change ([`manifest_cache`]). Every
//! process that loads plugin code is sandboxed first ([`sandbox`]).
//! The `loader` binary is a thin CLI over this.

pub mod backend;
pub mod batch;
pub mod discovery;
pub mod env_file;
pub mod env_hint;
pub mod environment;
pub mod events;
pub mod exit_guard;
pub mod host;
pub mod input_file;
pub mod isolate;
pub mod load_check;
pub mod load_report;
pub mod manifest_cache;
pub mod orphans;
pub mod preflight;
pub mod ray;
pub mod redact;
pub mod runner;
pub mod sandbox;
mod sys;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
