//! The child's writer of the event channel: batches event lines without
//! losing them. Each line is appended to a pending buffer and a writer
//! thread sends whatever has gathered in one write, so a plugin reporting
//! millions of events costs a few large writes instead of one system call
//! each, and an event emitted while the channel is idle leaves at once.
//! While lines keep coming, the writer thread lets each batch gather for
//! [`GATHER`] instead of being woken by every line (a system call each on
//! the plugin's thread): an event then waits at most that long.
//!
//! What is pending when the process ends is still sent: the run's end
//! drains the buffer ([`ChannelWriter::drain`]), and so do `exit()` (an
//! `atexit` hook) and the crash signals SIGSEGV, SIGBUS, SIGILL, SIGFPE
//! and SIGABRT (a handler that writes the buffer with a raw `write` and
//! lets the signal take its course). Only SIGKILL, or `_exit`, can cut off
//! the last events reported, within the microseconds they are pending.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::events::lock;
use crate::sys;

/// Pending bytes beyond which an emitting thread waits for the writer.
const MAX_PENDING: usize = 256 * 1024;

/// How long the writer thread, having sent a batch, lets the next one
/// gather before it goes idle (and has to be woken by the next line).
const GATHER: Duration = Duration::from_micros(200);

/// How long a crash handler waits for the writer thread to finish a write
/// (which waits for the loader to read: a busy loader may take a while).
const CRASH_DRAIN: Duration = Duration::from_secs(10);

struct Shared {
    pending: Mutex<Vec<u8>>,
    changed: Condvar,
    /// The writer thread is sending bytes it took from `pending`.
    in_flight: AtomicBool,
    /// The channel failed: nothing more can be sent.
    closed: AtomicBool,
    /// The writer thread is idle: the next line must wake it.
    writer_waiting: AtomicBool,
    /// Threads waiting on `changed` for room or for a drain (changed under
    /// `pending`'s lock, so the writer wakes them only when there are any).
    waiters: AtomicUsize,
    fd: RawFd,
}

/// The one writer of this process (crash handlers find it here).
static WRITER: OnceLock<Arc<Shared>> = OnceLock::new();

/// The channel's batching writer (see the module docs). Cheap to
/// clone; all clones share the buffer.
#[derive(Clone)]
pub struct ChannelWriter {
    shared: Arc<Shared>,
}

impl ChannelWriter {
    /// Starts the writer thread for `channel` and installs the hooks that
    /// drain it when the process exits or crashes. One per process.
    pub fn start(channel: UnixStream) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Vec::with_capacity(64 * 1024)),
            changed: Condvar::new(),
            in_flight: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            writer_waiting: AtomicBool::new(false),
            waiters: AtomicUsize::new(0),
            fd: channel.as_raw_fd(),
        });
        if WRITER.set(shared.clone()).is_err() {
            return Err(io::Error::other("the channel writer is already running"));
        }
        let for_thread = shared.clone();
        std::thread::Builder::new()
            .name("loader-channel-writer".into())
            .spawn(move || write_batches(&for_thread, channel))?;
        sys::on_exit_or_crash(drain_at_exit, drain_on_crash);
        Ok(ChannelWriter { shared })
    }

    /// Waits until everything written so far has been sent.
    pub fn drain(&self) {
        let shared = &self.shared;
        let mut pending = lock(&shared.pending);
        while (!pending.is_empty() || shared.in_flight.load(Ordering::SeqCst)) && !shared.closed.load(Ordering::SeqCst)
        {
            pending = shared.wait(pending);
        }
    }

    /// Appends to what is pending with `append` (a whole line or more, so
    /// that lines from several threads never interleave), waiting while too
    /// much is pending, and wakes the writer thread if it is idle; when it
    /// is busy sending, it takes these bytes with the next batch.
    pub fn send(&self, append: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let shared = &self.shared;
        let mut pending = lock(&shared.pending);
        while pending.len() >= MAX_PENDING && !shared.closed.load(Ordering::SeqCst) {
            pending = shared.wait(pending);
        }
        if shared.closed.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the channel to the loader is closed",
            ));
        }
        append(&mut pending);
        drop(pending);
        // Read before the swap: an atomic write on every line would pull the
        // flag's cache line away from the writer thread each time. The lock
        // just released orders this read after the writer's store (which it
        // makes holding the lock, before it waits).
        if shared.writer_waiting.load(Ordering::Relaxed) && shared.writer_waiting.swap(false, Ordering::SeqCst) {
            shared.changed.notify_all();
        }
        Ok(())
    }
}

impl ChannelWriter {
    /// [`send`](Self::send) for a line that must leave at once (a client
    /// call the plugin waits on): the writer thread is woken even while it
    /// lets a batch gather, so the line goes with the next write.
    pub fn send_now(&self, append: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        self.send(append)?;
        let _pending = lock(&self.shared.pending);
        self.shared.writer_waiting.store(false, Ordering::SeqCst);
        self.shared.changed.notify_all();
        Ok(())
    }
}

impl Shared {
    /// Waits on `changed` for room or a drain, counted in `waiters`.
    fn wait<'a>(&self, pending: MutexGuard<'a, Vec<u8>>) -> MutexGuard<'a, Vec<u8>> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let pending = self.changed.wait(pending).unwrap_or_else(|p| p.into_inner());
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        pending
    }

    /// Wakes the threads waiting for room or a drain, if there are any;
    /// called with `pending` locked, after what they wait for changed.
    fn wake_waiters(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.changed.notify_all();
        }
    }
}

/// The writer thread: sends what is pending, in one write, until the
/// channel fails. After each write it lets the next batch gather for
/// [`GATHER`]; only when nothing came in that time does it wait to be woken.
fn write_batches(shared: &Shared, mut channel: UnixStream) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut pending = lock(&shared.pending);
    loop {
        if pending.is_empty() {
            pending = match shared.changed.wait_timeout(pending, GATHER) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        while pending.is_empty() {
            shared.writer_waiting.store(true, Ordering::SeqCst);
            pending = shared.changed.wait(pending).unwrap_or_else(|p| p.into_inner());
        }
        shared.writer_waiting.store(false, Ordering::SeqCst);
        std::mem::swap(&mut *pending, &mut batch);
        shared.in_flight.store(true, Ordering::SeqCst);
        shared.wake_waiters();
        drop(pending);
        let sent = channel.write_all(&batch);
        batch.clear();
        pending = lock(&shared.pending);
        shared.in_flight.store(false, Ordering::SeqCst);
        if sent.is_err() {
            shared.closed.store(true, Ordering::SeqCst);
        }
        shared.wake_waiters();
        if sent.is_err() {
            return;
        }
    }
}

/// At `exit()`: waits for the writer to send everything.
fn drain_at_exit() {
    if let Some(shared) = WRITER.get() {
        ChannelWriter { shared: shared.clone() }.drain();
    }
}

/// In a crash signal handler: only atomics, `try_lock` (an atomic
/// exchange), `clock_gettime`, `nanosleep` and the raw `write` of
/// [`sys::write_all_raw`]; waits a bounded time for the writer thread to
/// finish a write in progress.
fn drain_on_crash() {
    let Some(shared) = WRITER.get() else { return };
    let until = Instant::now() + CRASH_DRAIN;
    while Instant::now() < until {
        if !shared.in_flight.load(Ordering::SeqCst) {
            let locked = match shared.pending.try_lock() {
                Ok(pending) => Some(pending),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(mut pending) = locked {
                if !shared.in_flight.load(Ordering::SeqCst) {
                    sys::write_all_raw(shared.fd, &pending);
                    pending.clear();
                    return;
                }
            }
        }
        // nanosleep is async-signal-safe; spinning would take the CPU from
        // the loader, which has to read for the write to finish.
        std::thread::sleep(Duration::from_millis(1));
    }
}
