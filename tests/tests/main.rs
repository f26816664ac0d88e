//! The end-to-end tests that need no Ray cluster, in one test binary (one
//! link of the whole dependency graph instead of one per file): each
//! module is one concern, and shares the helpers of `common` (the loader
//! and the sample plugins built once for the whole binary, plugin
//! folders, the JSONL event stream). Run one concern with its module's
//! name as the filter: `cargo test -p integration-tests --test integration
//! sandbox::`. The Ray tests are the other binary, `ray` (`ray/main.rs`).

mod common;

mod abi_compat;
mod backend;
mod bad_plugins;
mod batch;
mod cache;
mod cli;
mod cli_output;
mod dev;
mod environment;
mod isolation;
mod load_reports;
mod new_plugin;
mod parity;
mod permissions;
mod plugin_code;
mod problem_kinds;
mod report;
mod sandbox;
mod secrets;
mod sinks;
mod summary;
mod work_dir;
mod workflows;
