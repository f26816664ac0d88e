//! The plugin host as a library, one folder per stage of the pipeline:
//!
//! - [`find`]: discover the plugin libraries of a folder and check them
//!   (preflight, a load check in a sandboxed child, the manifest cache);
//! - [`run`]: run an action with an injected context, in this process or
//!   as a batch, with the environment a plugin may see;
//! - [`isolate`] and [`sandbox`]: the child process a run, a load check or
//!   a probe happens in, and the confinement it enters before plugin code
//!   is loaded;
//! - [`events`]: fan everything the plugin reports out to sinks (terminal,
//!   JSON lines, the events file);
//! - [`report`]: a run's events as an HTML page;
//! - [`backend`] and [`ray`]: where a run is reported to, and where else it
//!   can run;
//! - [`dev`]: rebuild and rerun a plugin as its author edits it;
//! - `sys`: the calls into the operating system (every `unsafe` block).
//!
//! The `loader` binary (`src/bin/loader`) is the command line over this.

pub mod backend;
pub mod dev;
pub mod events;
pub mod find;
pub mod isolate;
pub mod ray;
pub mod report;
pub mod run;
pub mod sandbox;
mod sys;
