//! Finding the plugins of a folder and checking them before anything runs:
//! [`discovery`] scans the folder and sorts libraries from problem files,
//! [`preflight`] checks a file before the system loader maps it,
//! [`load_check`] test-loads libraries in a sandboxed child and
//! [`load_report`] is what that child says of each, and
//! [`manifest_cache`] remembers it until a library changes.

pub mod discovery;
pub mod load_check;
pub mod load_report;
pub mod manifest_cache;
pub mod preflight;
