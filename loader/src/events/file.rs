//! The `--events PATH` destination: opening it so that two runs never
//! write the same file, and, for a run in this process, writing it through
//! a memory mapping so that every event is in the file the moment it is
//! emitted, without a system call per event.
//!
//! # One writer per file
//!
//! [`open_events_file`] opens the file without truncating it, takes an
//! exclusive `flock` without waiting, and only then empties it. A second
//! run naming the same file gets [`EventsFileError::Locked`] before it
//! starts, instead of the two interleaving half lines; the first run's file
//! is untouched. The lock is advisory: it binds loaders, not other programs.
//! Destinations that are not regular files (`/dev/full`, a FIFO,
//! `/dev/stdout`) are opened as they are, unlocked.
//!
//! # Crash-proof without a write per line ([`MappedWriter`])
//!
//! A plugin running in the loader's process can crash it at any instant,
//! taking any buffer with it; writing each line with its own `write` keeps
//! events safe but costs a system call per event. Instead, lines are copied
//! into a shared mapping of the file (`mmap(MAP_SHARED)`): the bytes are in
//! the kernel's page cache as soon as they are copied, and the kernel writes
//! them to the file even if the process dies the next instant (SIGSEGV,
//! SIGKILL, abort). The file is mapped in windows of [`WINDOW_BYTES`]: each
//! window's disk space is reserved first (by writing zeros, so a full disk
//! is an error reported before anything is copied, not a SIGBUS), and a
//! finished window is unmapped, so the loader's memory does not grow with
//! the file.
//!
//! At the end of the run (the sink's `finish`) the file is cut to the bytes
//! written. Until then the file is longer than its lines: the reserved rest
//! of the current window is NUL bytes, so a reader following the file live
//! stops at the first NUL byte. If the process dies first (a crash, even
//! SIGKILL), a small helper process forked when the file was opened, which
//! waits on a pipe for the loader to end and shares the written length with
//! it through a shared page, cuts the file to its lines a moment later
//! (`sys::TruncateOnDeath`); were the helper missing, the padding would
//! stay, and every complete line before it is still an event that was
//! emitted.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::jsonl::{Flush, JsonlSink};
use super::{Event, EventSink, RunInfo};
use crate::sys::{SharedMapping, TruncateOnDeath};

/// How much of the file is mapped (and reserved) at a time.
pub const WINDOW_BYTES: usize = 8 * 1024 * 1024;

/// Why the events file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EventsFileError {
    #[error("cannot open the events file `{path}`: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("the events file `{path}` is being written by another run (it is locked); choose another file")]
    Locked { path: PathBuf },
}

/// An opened `--events` destination.
#[derive(Debug)]
pub struct EventsFile {
    pub file: File,
    /// A regular file, locked and emptied; otherwise written as it is.
    pub regular: bool,
    /// Opened for reading too, as a shared mapping needs (a file we may
    /// only write is written with `write`).
    pub mappable: bool,
}

/// Opens `path` for a run's events: a regular file is created if needed,
/// locked against other loaders, then emptied (see the module docs).
pub fn open_events_file(path: &Path) -> Result<EventsFile, EventsFileError> {
    let open_error = |e: io::Error| EventsFileError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let read_write = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOCTTY)
        .open(path);
    let mappable = read_write.is_ok();
    let file = read_write
        .or_else(|_| OpenOptions::new().write(true).custom_flags(libc::O_NOCTTY).open(path))
        .map_err(open_error)?;
    let regular = file.metadata().map_err(open_error)?.file_type().is_file();
    if regular {
        // std's lock is `flock` on Unix: it belongs to the open file
        // description, so the helper that inherits the descriptor (see
        // `TruncateOnDeath`) keeps it until the file is final.
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(EventsFileError::Locked { path: path.to_owned() }),
            Err(TryLockError::Error(error)) => return Err(open_error(error)),
        }
        file.set_len(0).map_err(open_error)?;
    }
    Ok(EventsFile {
        file,
        regular,
        mappable: mappable && regular,
    })
}

/// Writes into a regular file through shared mappings of it, one window at
/// a time (see the module docs). Bytes are in the file once `write`
/// returns; [`close`](Self::close) cuts the file to what was written.
#[derive(Debug)]
pub struct MappedWriter {
    file: File,
    window: Option<SharedMapping>,
    /// Where the current window starts in the file.
    window_start: u64,
    /// Bytes written from the start of the file.
    written: u64,
    window_bytes: usize,
    /// Cuts the file to `written` if this process dies before `close`.
    cut_on_death: Option<TruncateOnDeath>,
}

impl MappedWriter {
    /// Writes from the start of `file` (opened for reading and writing).
    pub fn new(file: File) -> Self {
        MappedWriter::with_window(file, WINDOW_BYTES)
    }

    /// With windows of `window_bytes` (a multiple of the page size).
    pub fn with_window(file: File, window_bytes: usize) -> Self {
        let cut_on_death = TruncateOnDeath::start(&file)
            .inspect(|helper| crate::run::orphans::own_child(helper.helper_pid()))
            .inspect_err(|e| tracing::warn!("an events file left by a crash will end with NUL padding: {e}"))
            .ok();
        MappedWriter {
            file,
            window: None,
            window_start: 0,
            written: 0,
            window_bytes,
            cut_on_death,
        }
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Unmaps the window and cuts the file to the bytes written. Writing
    /// again afterwards maps a new window.
    pub fn close(&mut self) -> io::Result<()> {
        self.window = None;
        self.file.set_len(self.written)
    }

    /// The current window with room at `written`, mapping the next one when
    /// the current one is full.
    fn window(&mut self) -> io::Result<(&mut SharedMapping, usize)> {
        let in_window = self.written - self.window_start;
        let full = self.window.as_ref().is_none_or(|w| in_window >= w.len() as u64);
        if full {
            self.window = None;
            let start = self.written - self.written % self.window_bytes as u64;
            reserve(&self.file, self.written, start + self.window_bytes as u64)?;
            self.window = Some(SharedMapping::new(&self.file, start, self.window_bytes)?);
            self.window_start = start;
        }
        let offset = (self.written - self.window_start) as usize;
        Ok((self.window.as_mut().expect("mapped above"), offset))
    }
}

/// Writes zeros over bytes `from..to` of `file` (past its lines), so that
/// the disk space is allocated now (a full disk is this write's error, not a
/// SIGBUS when a line is copied into the mapping) and the pages are in the
/// page cache, ready to map. Reserving the space with `posix_fallocate`
/// instead left the mapping's pages for the kernel to zero one page fault
/// at a time: a third of an in-process run's time with `--events FILE`.
/// The zeros go in writes of 1 MiB from a window's aligned start, which the
/// kernel's page cache takes as large pages: writes of 64 KiB took twice
/// as long.
fn reserve(file: &File, from: u64, to: u64) -> io::Result<()> {
    static ZEROS: [u8; 1024 * 1024] = [0; 1024 * 1024];
    let mut at = from;
    while at < to {
        let chunk = (to - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..chunk], at)?;
        at += chunk as u64;
    }
    Ok(())
}

impl Write for MappedWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if bytes.is_empty() {
            return Ok(0);
        }
        let (window, offset) = self.window()?;
        let n = bytes.len().min(window.len() - offset);
        window.write_at(offset, &bytes[..n]);
        self.written += n as u64;
        // Only whole lines count for the cut: a line split over two windows
        // counts once its second part is in.
        if let (Some(cut), Some(b'\n')) = (&self.cut_on_death, bytes[..n].last()) {
            cut.set(self.written);
        }
        Ok(n)
    }

    /// Nothing to do: written bytes are already the file's.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for MappedWriter {
    fn drop(&mut self) {
        if self.window.is_some() {
            let _ = self.close();
        }
    }
}

/// The JSON-lines sink of an in-process run writing a regular file through
/// a [`MappedWriter`]: every line is in the file as soon as it is emitted,
/// and the file is cut to its lines when the run finishes.
pub struct MappedJsonlSink {
    inner: JsonlSink<MappedWriter>,
}

impl MappedJsonlSink {
    pub fn new(file: File) -> Self {
        MappedJsonlSink {
            inner: JsonlSink::new(MappedWriter::new(file), Flush::EachLine),
        }
    }

    /// The first write error, if any; nothing was written after it.
    pub fn error(&self) -> Option<String> {
        self.inner.error()
    }
}

impl EventSink for MappedJsonlSink {
    fn start(&self, run: &RunInfo) {
        self.inner.start(run)
    }

    fn emit(&self, run: &RunInfo, event: &Event) {
        self.inner.emit(run, event)
    }

    fn takes_raw_data(&self) -> bool {
        true
    }

    fn finish(&self, run: &RunInfo) {
        self.inner.finish(run);
        self.inner.finish_writer(MappedWriter::close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Level;
    use serde_json::json;

    #[test]
    fn lines_cross_windows_and_the_file_is_cut_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let opened = open_events_file(&path).unwrap();
        assert!(opened.regular);
        let mut writer = MappedWriter::with_window(opened.file, 4096);
        let mut expected = Vec::new();
        for i in 0..1000 {
            let line = format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 37));
            writer.write_all(line.as_bytes()).unwrap();
            expected.extend_from_slice(line.as_bytes());
        }
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..expected.len()], &expected[..], "in the file before the end");
        assert!(on_disk[expected.len()..].iter().all(|&b| b == 0), "then NUL padding");
        writer.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        writer.write_all(b"more\n").unwrap();
        drop(writer);
        expected.extend_from_slice(b"more\n");
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[test]
    fn a_second_run_on_the_same_file_is_refused_and_the_first_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let first = open_events_file(&path).unwrap();
        let sink = MappedJsonlSink::new(first.file);
        let run = RunInfo::new("p", "a");
        sink.start(&run);
        sink.emit(&run, &Event::message(Level::Info, "from the first run"));
        let err = open_events_file(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the events file `{}` is being written by another run (it is locked); choose another file",
                path.display()
            )
        );
        sink.emit(&run, &Event::result(json!({"ok": true})));
        sink.finish(&run);
        assert_eq!(sink.error(), None);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("from the first run"));
        drop(sink);
        assert!(open_events_file(&path).is_ok(), "the lock ends with the run");
    }

    #[test]
    fn devices_are_written_unlocked_and_a_full_one_fails() {
        let opened = open_events_file(Path::new("/dev/full")).unwrap();
        assert!(!opened.regular);
        let sink = JsonlSink::new(opened.file, Flush::EachLine);
        let run = RunInfo::new("p", "a");
        sink.emit(&run, &Event::message(Level::Info, "lost"));
        sink.finish(&run);
        assert!(
            sink.error().is_some_and(|e| e.contains("No space left")),
            "{:?}",
            sink.error()
        );
    }
}
