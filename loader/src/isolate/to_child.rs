//! The loader's writes to an isolated child over its channel: the run
//! request, cancel lines and the answers to the plugin's client calls. They
//! come from several threads (the supervisor's control thread, the client
//! proxy's workers), so each line is written whole under one lock and lines
//! never interleave.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

/// The loader's end of the channel, for writing. Cheap to clone.
#[derive(Clone)]
pub struct ToChild(Arc<Mutex<UnixStream>>);

impl ToChild {
    pub fn new(channel: UnixStream) -> Self {
        ToChild(Arc::new(Mutex::new(channel)))
    }

    /// Writes `line` (ending with `\n`) whole, before any other line.
    pub fn send_line(&self, line: &[u8]) -> io::Result<()> {
        crate::events::lock(&self.0).write_all(line)
    }
}
