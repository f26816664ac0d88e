//! The operating-system calls the supervisor of isolated runs needs and
//! the standard library does not offer: handing a child its event channel
//! as fd 3, tying the child's life to the loader's, waiting for a child's
//! exit without reaping it, and killing a whole process group. Where
//! `rustix` offers a call safely (signals to groups, `waitid`, `poll`,
//! the parent-death signal) it is used; `libc` remains for what it does
//! not wrap safely: signal handlers (`sigaction`), `atexit` and `_exit`,
//! and the raw fd 3 before anything owns it. Every `unsafe` block of the
//! process supervision lives here, each with the reason it holds.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

/// The fd number a child finds its channel to the loader on.
pub const CHANNEL_FD: RawFd = 3;

/// Makes `command` start its process with `channel` as fd [`CHANNEL_FD`]
/// and no other descriptor of the loader's beyond stdio (descriptors the
/// loader inherited from whoever started it are closed at exec), and (on
/// Linux) with SIGTERM delivered to it when the loader dies; a child whose
/// loader died before that was set up exits at once. Without a
/// `confinement` the child gets a process group of its own; with one, a
/// session of its own and what [`super::confine_before_exec`] sets up
/// (its outcome is left in `page`). `channel` must stay open until the
/// command is spawned, and `page` until then too.
pub fn prepare_child(
    command: &mut Command,
    channel: &UnixStream,
    confinement: Option<(std::sync::Arc<super::Confinement>, &super::StatusPage)>,
) {
    let channel_fd = channel.as_raw_fd();
    let parent = std::process::id();
    let confinement = confinement.map(|(confinement, page)| (confinement, page.raw_address()));
    if confinement.is_none() {
        command.process_group(0);
    }
    // SAFETY: the closure runs in the forked child before exec and calls
    // only async-signal-safe functions (dup2, fcntl, close_range, prctl and
    // getppid through rustix's direct system calls, _exit, and in
    // `confine_before_exec` setsid, setrlimit, open/write/close, unshare,
    // fork, waitpid, kill) on plain values and buffers prepared before the
    // fork; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            if channel_fd == CHANNEL_FD {
                let flags = libc::fcntl(CHANNEL_FD, libc::F_GETFD);
                if flags < 0 || libc::fcntl(CHANNEL_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(channel_fd, CHANNEL_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            super::close_inherited_on_exec(CHANNEL_FD as u32);
            #[cfg(target_os = "linux")]
            rustix::process::set_parent_process_death_signal(Some(Signal::TERM))?;
            if !parent_is(parent) {
                libc::_exit(1);
            }
            match &confinement {
                Some((confinement, page)) => super::confine_before_exec(confinement, *page),
                None => Ok(()),
            }
        });
    }
}

/// The child's side: takes fd [`CHANNEL_FD`] as its channel to the loader,
/// after checking it is a socket, and marks it close-on-exec so that
/// programs the plugin starts do not inherit it.
pub fn take_channel() -> io::Result<UnixStream> {
    // SAFETY: fstat only writes into the zeroed struct it is given.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on any fd number is sound; a closed fd is an error.
    if unsafe { libc::fstat(CHANNEL_FD, &mut stat) } != 0 {
        return Err(io::Error::other(format!(
            "fd {CHANNEL_FD} is not open: {}",
            io::Error::last_os_error()
        )));
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::other(format!("fd {CHANNEL_FD} is not a socket")));
    }
    // SAFETY: setting a descriptor flag on an open fd.
    if unsafe { libc::fcntl(CHANNEL_FD, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd 3 is an open socket (checked above) that nothing else in
    // this process owns: the loader's child takes it exactly once, at start.
    Ok(unsafe { UnixStream::from_raw_fd(CHANNEL_FD) })
}

/// Whether `stream` has bytes to read (or its end) within `timeout`,
/// waiting at most that long; an error of the wait counts as yes, so the
/// caller's next read finds out what it is.
pub fn readable_within(stream: &UnixStream, timeout: std::time::Duration) -> bool {
    let mut watched = [PollFd::new(stream, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: timeout.subsec_nanos().into(),
    };
    !matches!(rustix::event::poll(&mut watched, Some(&timeout)), Ok(0))
}

/// Sends SIGKILL to every process of the process group `group`.
pub fn kill_group(group: u32) {
    signal_group(group, GroupSignal::Kill);
}

/// Makes `command` start its process in a new process group of its own
/// (so that a terminal's Ctrl-C reaches only the loader, which decides what
/// to forward) and, on Linux, with SIGTERM delivered to it when the loader
/// dies; a child whose loader died before that was set up exits at once.
pub fn start_in_own_group(command: &mut Command) {
    let parent = std::process::id();
    command.process_group(0);
    // SAFETY: the closure runs in the forked child before exec and makes
    // only async-signal-safe system calls (prctl, getppid, through rustix's
    // direct system calls, and _exit) on plain integers copied in; it
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            #[cfg(target_os = "linux")]
            rustix::process::set_parent_process_death_signal(Some(Signal::TERM))?;
            if !parent_is(parent) {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// A signal [`signal_group`] can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSignal {
    /// SIGINT, what Ctrl-C sends.
    Interrupt,
    /// SIGKILL.
    Kill,
}

/// Sends `signal` to every process of the process group `group` (one the
/// loader created: never 0 or 1, which would name the loader's own group
/// or init's).
pub fn signal_group(group: u32, signal: GroupSignal) {
    let Some(group) = i32::try_from(group).ok().filter(|&g| g > 1).and_then(Pid::from_raw) else {
        return;
    };
    let signal = match signal {
        GroupSignal::Interrupt => Signal::INT,
        GroupSignal::Kill => Signal::KILL,
    };
    let _ = rustix::process::kill_process_group(group, signal);
}

/// The child's side: kills the child's own process group, itself included
/// (used when the loader is gone).
pub fn kill_own_group() -> ! {
    let _ = rustix::process::kill_current_process_group(Signal::KILL);
    std::process::exit(1)
}

/// The child's side: on SIGTERM or SIGHUP (SIGTERM is what the kernel sends
/// when the loader dies, see [`prepare_child`]) the whole process group is
/// killed, so that nothing the plugin started outlives the loader.
pub fn kill_group_on_termination() {
    extern "C" fn on_signal(_: libc::c_int) {
        // SAFETY: kill is async-signal-safe; 0 names this process's group.
        unsafe { libc::kill(0, libc::SIGKILL) };
    }
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only calls the async-signal-safe
        // kill; the sigaction struct is fully initialised before use.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Blocks until the process `pid` (a child of this process) has exited,
/// leaving it a zombie: its pid, and so its process group id, cannot be
/// reused until it is reaped, so the group can still be killed safely.
pub fn wait_for_exit_unreaped(pid: u32) -> io::Result<()> {
    wait_unreaped(pid, WaitIdOptions::EXITED | WaitIdOptions::NOWAIT).map(drop)
}

/// `waitid` for the child `pid` with `options` (WNOWAIT among them: the
/// child is left to be reaped by `Child::wait`), again when interrupted;
/// whether it has exited.
fn wait_unreaped(pid: u32, options: WaitIdOptions) -> io::Result<bool> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::other(format!("{pid} is not a process id")))?;
    loop {
        match rustix::process::waitid(WaitId::Pid(pid), options) {
            Ok(status) => return Ok(status.is_some()),
            Err(Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// Whether the process `pid` (a child of this process) has exited, without
/// reaping it: while it is a zombie its pid, and so its process group id,
/// cannot be reused, so its group can still be signalled safely.
pub fn exited_unreaped(pid: u32) -> io::Result<bool> {
    wait_unreaped(
        pid,
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG,
    )
}

/// The signals after which a crashing child still sends its pending events.
const CRASH_SIGNALS: [libc::c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT];

/// What [`on_exit_or_crash`] registered.
struct ExitHooks {
    at_exit: fn(),
    on_crash: fn(),
    /// The actions the crash handler replaced, in [`CRASH_SIGNALS`] order.
    previous: [libc::sigaction; CRASH_SIGNALS.len()],
}

// SAFETY: the saved `sigaction` structs are plain data, only read after
// they were written (the OnceLock publishes them).
unsafe impl Sync for ExitHooks {}
unsafe impl Send for ExitHooks {}

static EXIT_HOOKS: std::sync::OnceLock<ExitHooks> = std::sync::OnceLock::new();

/// Calls `at_exit` when the process exits through `exit()`, and `on_crash`
/// (which must be async-signal-safe) on SIGSEGV, SIGBUS, SIGILL, SIGFPE or
/// SIGABRT, before the signal's previous action takes its course. Once
/// per process; later calls do nothing.
pub fn on_exit_or_crash(at_exit: fn(), on_crash: fn()) {
    extern "C" fn exit_hook() {
        if let Some(hooks) = EXIT_HOOKS.get() {
            (hooks.at_exit)();
        }
    }
    extern "C" fn crash_hook(signal: libc::c_int) {
        let Some(hooks) = EXIT_HOOKS.get() else { return };
        (hooks.on_crash)();
        if let Some(index) = CRASH_SIGNALS.iter().position(|&s| s == signal) {
            // SAFETY: restores the action saved before ours was installed;
            // sigaction is async-signal-safe. Returning re-raises a fault
            // (the instruction runs again) and abort() raises SIGABRT
            // again, now with the previous action.
            unsafe { libc::sigaction(signal, &hooks.previous[index], std::ptr::null_mut()) };
        }
    }
    // SAFETY: zeroed sigaction structs are valid "default action" values,
    // overwritten by sigaction with the current actions.
    let mut previous: [libc::sigaction; CRASH_SIGNALS.len()] = unsafe { std::mem::zeroed() };
    for (signal, slot) in CRASH_SIGNALS.iter().zip(previous.iter_mut()) {
        // SAFETY: reads the current action of a valid signal into `slot`.
        unsafe { libc::sigaction(*signal, std::ptr::null(), slot) };
    }
    if EXIT_HOOKS
        .set(ExitHooks {
            at_exit,
            on_crash,
            previous,
        })
        .is_err()
    {
        return;
    }
    self::at_exit(exit_hook);
    for signal in CRASH_SIGNALS {
        // SAFETY: installs a handler on the alternate signal stack (Rust
        // threads have one) that calls only the registered async-signal-
        // safe function and sigaction; the struct is fully initialised.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = crash_hook as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Writes all of `bytes` to `fd` with the raw `write` system call, as a
/// signal handler may; gives up on an error.
pub fn write_all_raw(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: write reads at most `bytes.len()` bytes from a valid slice.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match written {
            n if n > 0 => bytes = &bytes[n as usize..],
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

/// Runs `hook` when the process exits through `exit()` (including
/// `std::process::exit`), before the C library's own clean-up. False if it
/// could not be registered.
pub fn at_exit(hook: extern "C" fn()) -> bool {
    // SAFETY: `atexit` stores a function pointer to call later; `hook` is a
    // plain `extern "C" fn()` valid for the life of the program.
    unsafe { libc::atexit(hook) == 0 }
}

/// Ends the process at once with `code`, without running exit hooks again.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: `_exit` ends the process; it is always safe to call and
    // never returns.
    unsafe { libc::_exit(code) }
}

/// Ties this process's life to its parent's, which must be `parent`: on
/// Linux the kernel sends SIGTERM to this process when the parent dies
/// (the loader then stops its run as on Ctrl-C). False when `parent` is
/// already gone (this process was handed to another parent); elsewhere
/// than Linux nothing is tied, and true is returned.
pub fn exit_with_parent(parent: u32) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    rustix::process::set_parent_process_death_signal(Some(Signal::TERM))?;
    // Checked after the tie: a parent that died before it was made is seen
    // here, one that dies after it sends the signal.
    Ok(parent_is(parent))
}

/// Whether this process's parent is `parent`.
fn parent_is(parent: u32) -> bool {
    rustix::process::getppid().is_some_and(|p| p.as_raw_nonzero().get() as u32 == parent)
}
