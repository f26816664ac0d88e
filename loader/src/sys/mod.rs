//! The loader's calls into the operating system that Rust's standard
//! library does not offer safely. Every `unsafe` block of the crate is in
//! this module, each with the reason it holds: [`files`] for the events
//! file (its shared mapping, the helper that cuts it), [`supervision`] for the
//! supervision of isolated runs (the child's channel, its life tied to the
//! loader's, process groups) and the process's exit and crash hooks,
//! [`confine`] for the sandbox (confining a child between fork and exec,
//! capabilities, `no_new_privs`, subreaping), [`probe`] for the system
//! calls `loader sandbox check` tries from inside the sandbox.

mod confine;
mod files;
mod probe;
mod supervision;

pub use confine::*;
pub use files::*;
pub use probe::*;
pub use supervision::*;
