//! The events file's mapping and the calls into the operating system that
//! no safe wrapper offers for it: a shared writable mapping of a file
//! (`memmap2`; the file's lock is std's `File::try_lock`), and a helper
//! process that cuts a file to its written length when the loader dies
//! (fork, a page shared with it, its pipe). Each `unsafe` block says why
//! it holds.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapMut, MmapOptions};

use super::write_all_raw;

/// A shared, writable mapping of part of a file (`memmap2`): bytes written
/// into it are the file's bytes, kept by the kernel even if this process
/// dies the next instant.
#[derive(Debug)]
pub struct SharedMapping {
    map: MmapMut,
}

impl SharedMapping {
    /// Maps bytes `offset..offset + len` of `file` (opened for reading and
    /// writing, its space allocated; `offset` a multiple of the
    /// page size). Where the platform can, the pages are made writable at
    /// once, in one call, instead of one write fault each.
    pub fn new(file: &File, offset: u64, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::other("cannot map zero bytes"));
        }
        // SAFETY: memmap2 maps file bytes as memory, which stays sound only
        // while nobody else changes or truncates the mapped range. The
        // caller extended the file and reserved its space up to
        // `offset + len` before mapping, and holds the file's lock against
        // other loaders; only someone truncating it behind our back could
        // make a write fault (SIGBUS). Nothing reads the mapping but the
        // kernel's page cache.
        let map = unsafe { MmapOptions::new().offset(offset).len(len).map_mut(file)? };
        populate_for_writing(&map);
        Ok(SharedMapping { map })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Copies `bytes` into the file at `offset`; panics if they do not fit.
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset.checked_add(bytes.len()).expect("offset overflow");
        assert!(end <= self.map.len(), "write past the end of the mapping");
        self.map[offset..end].copy_from_slice(bytes);
    }
}

/// Asks the kernel to fault every page of `map` in writable now (Linux 5.14
/// and later): a shared file's pages fault in read-only, leaving a
/// write-protect fault per page for the first write. Elsewhere, or when
/// refused, the pages fault in as they are written.
fn populate_for_writing(map: &MmapMut) {
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::PopulateWrite);
    #[cfg(not(target_os = "linux"))]
    let _ = map;
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
        let (read_end, alive) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
            Ok(ends) => ends,
            Err(error) => {
                // SAFETY: unmapping the page mapped above, used by nobody yet.
                unsafe { libc::munmap(page, PAGE) };
                return Err(error.into());
            }
        };
        let (read_fd, write_end) = (read_end.as_raw_fd(), alive.as_raw_fd());
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
                        fd: read_fd,
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
        // Our copy of the read end: only the helper uses it.
        drop(read_end);
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
