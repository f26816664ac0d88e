//! The loader's calls into the operating system that Rust's standard
//! library does not offer safely for the events file: an exclusive
//! advisory file lock, a shared writable mapping of a file, and a helper
//! process that cuts a file to its written length when the loader dies.
//! Each `unsafe` block says why it holds.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::write_all_raw;

/// Takes an exclusive `flock` on `file` without waiting. `Ok(false)` when
/// another open file description holds it. The lock lasts as long as the
/// file stays open (in this process or a child that inherited it).
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: `flock` takes a descriptor and flags, touches no memory of
    // ours, and the descriptor is valid while `file` is borrowed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
    }
}

/// A shared, writable mapping of part of a file: bytes written into it are
/// the file's bytes, kept by the kernel even if this process dies the next
/// instant.
#[derive(Debug)]
pub struct SharedMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value alone; moving it
// to another thread moves that ownership, and writes need `&mut self`.
unsafe impl Send for SharedMapping {}

impl SharedMapping {
    /// Maps bytes `offset..offset + len` of `file` (opened for reading and
    /// writing, its space allocated; `offset` a multiple of the
    /// page size). Where the platform can, the pages are made writable at
    /// once, in one call, instead of one write fault each.
    pub fn new(file: &File, offset: u64, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::other("cannot map zero bytes"));
        }
        let offset = libc::off_t::try_from(offset).map_err(|_| io::Error::other("offset too large to map"))?;
        // SAFETY: a fresh mapping chosen by the kernel (address hint null),
        // so it overlaps nothing Rust owns; the descriptor is valid while
        // `file` is borrowed, and the mapping stays valid after it closes.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        let mapping = SharedMapping { ptr, len };
        mapping.populate_for_writing();
        Ok(mapping)
    }

    /// Asks the kernel to fault every page in writable now (Linux 5.14 and
    /// later): `MAP_POPULATE` maps a shared file's pages read-only, leaving
    /// a write-protect fault per page for the first write. Elsewhere, or
    /// when refused, the pages fault in as they are written.
    fn populate_for_writing(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: `ptr..ptr+len` is exactly the live mapping `self` owns;
        // the advice only faults its pages in, changing no byte of it.
        unsafe {
            libc::madvise(self.ptr.as_ptr().cast(), self.len, libc::MADV_POPULATE_WRITE);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies `bytes` into the file at `offset`; panics if they do not fit.
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset.checked_add(bytes.len()).expect("offset overflow");
        assert!(end <= self.len, "write past the end of the mapping");
        // SAFETY: `ptr..ptr+len` is a live mapping owned by `self` (unmapped
        // only in `drop`), `&mut self` makes this the only access to it, the
        // range was checked just above, and `bytes` cannot overlap a mapping
        // only this value hands out. The file was extended and its space
        // reserved up to `len` before mapping, and the file is locked
        // against other loaders; only someone truncating it behind our back
        // could make the copy fault (SIGBUS).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(offset), bytes.len()) };
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` are exactly what `mmap` returned and was
        // asked for, and this is the only unmapping of them.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A length shared with a helper process that, once this process has ended
/// (however: returned, crashed, killed by SIGKILL), cuts a file to that
/// length. It is how a file written through a mapping loses its reserved
/// tail even when the writer dies without a chance to cut it.
#[derive(Debug)]
pub struct TruncateOnDeath {
    /// One shared anonymous page holding the length, seen by both processes.
    length: NonNull<AtomicU64>,
    /// The write end of a pipe whose read end the helper waits on: it reads
    /// end-of-file when every copy of this end is closed, that is when this
    /// process has ended or dropped this value.
    alive: Option<OwnedFd>,
    helper: libc::pid_t,
}

impl TruncateOnDeath {
    /// The helper's process id.
    pub fn helper_pid(&self) -> u32 {
        self.helper as u32
    }
}

// SAFETY: the shared page is only accessed through the `AtomicU64` in it,
// which is `Sync`; the descriptor and pid are plain values.
unsafe impl Send for TruncateOnDeath {}
// SAFETY: as above; `&self` methods only do atomic stores and loads.
unsafe impl Sync for TruncateOnDeath {}

const PAGE: usize = 4096;

impl TruncateOnDeath {
    /// Starts the helper for `file` (its descriptor is shared with the
    /// helper, which keeps it, and so any `flock` on it, until it is done).
    pub fn start(file: &File) -> io::Result<Self> {
        // SAFETY: a fresh anonymous shared mapping chosen by the kernel,
        // overlapping nothing; zero-filled, which is a valid `AtomicU64` 0.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let length = NonNull::new(page.cast::<AtomicU64>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        let mut ends = [0 as libc::c_int; 2];
        // SAFETY: `pipe2` writes two descriptors into the array it is given,
        // which is live and two `c_int`s long.
        if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            let error = io::Error::last_os_error();
            // SAFETY: unmapping the page mapped above, used by nobody yet.
            unsafe { libc::munmap(page, PAGE) };
            return Err(error);
        }
        let (read_end, write_end) = (ends[0], ends[1]);
        let fd = file.as_raw_fd();
        let loader = std::process::id() as libc::pid_t;
        // SAFETY: after `fork` the child runs only async-signal-safe calls
        // (sigaction via `signal`, close, pidfd_open, getppid, poll,
        // ftruncate, _exit) on values
        // computed before the fork, and never returns into Rust code, so the
        // locks and allocator state other threads left in the copy of the
        // address space are never touched.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: the helper's whole life; see the comment on `fork`.
            unsafe {
                for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGPIPE] {
                    libc::signal(signal, libc::SIG_IGN);
                }
                libc::close(write_end);
                // The loader's end: a byte on the pipe (its drop), the end of
                // the pipe, or the loader's exit (its pidfd turns readable:
                // forked copies of the loader holding the pipe open do not
                // keep the helper waiting).
                let pidfd = libc::syscall(libc::SYS_pidfd_open, loader, 0) as libc::c_int;
                let mut watched = [
                    libc::pollfd {
                        fd: read_end,
                        events: libc::POLLIN,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: pidfd,
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ];
                let count = if pidfd >= 0 && libc::getppid() == loader { 2 } else { 1 };
                while libc::poll(watched.as_mut_ptr(), count, -1) < 0 && *libc::__errno_location() == libc::EINTR {}
                let written = (*length.as_ptr()).load(Ordering::Acquire);
                libc::ftruncate(fd, written as libc::off_t);
                libc::_exit(0);
            }
        }
        // SAFETY: closing our copy of the read end, which only the helper
        // uses; `write_end` is a descriptor we own from here on.
        let alive = unsafe {
            libc::close(read_end);
            OwnedFd::from_raw_fd(write_end)
        };
        if pid < 0 {
            let error = io::Error::last_os_error();
            drop(alive);
            // SAFETY: unmapping the page mapped above; there is no helper.
            unsafe { libc::munmap(page, PAGE) };
            return Err(error);
        }
        Ok(TruncateOnDeath {
            length,
            alive: Some(alive),
            helper: pid,
        })
    }

    /// The length to cut the file to.
    pub fn set(&self, length: u64) {
        // SAFETY: `length` points into the shared page this value owns
        // until it is dropped.
        unsafe { self.length.as_ref() }.store(length, Ordering::Release);
    }
}

impl Drop for TruncateOnDeath {
    fn drop(&mut self) {
        // A byte on the pipe (and closing it) lets the helper cut the file
        // and end; wait for it so that the file is final (and its lock
        // released) on return.
        if let Some(alive) = self.alive.take() {
            write_all_raw(alive.as_raw_fd(), b"x");
        }
        let mut status = 0;
        // SAFETY: waiting for our own child, by its pid, once; then
        // unmapping the page mapped in `start`, used by no one any more.
        unsafe {
            while libc::waitpid(self.helper, &mut status, 0) < 0 && *libc::__errno_location() == libc::EINTR {}
            libc::munmap(self.length.as_ptr().cast(), PAGE);
        }
    }
}
