//! Hands queued log entries to the host when the process ends abruptly:
//! at `exit()` (an `atexit` hook) and on the crash signals SIGSEGV, SIGBUS,
//! SIGILL, SIGFPE and SIGABRT (a handler that runs the hook, then the
//! handler that was there before, so a host's own crash handling, such as
//! the loader's drain of its event channel, still follows).
//!
//! Installed once per plugin library, when its first log queue starts, so
//! after the host's own hooks: `atexit` hooks run in reverse order and the
//! previous signal handler is called after this one, so the entries reach
//! the host before the host drains what it holds.
//!
//! The crash hook is best effort: it runs the log thread's work on the
//! crashing thread (serialising the entries and calling the host), which
//! is not async-signal-safe; a crash inside the allocator or inside the
//! log queue itself, or a stack overflow (the hook runs on the thread's own
//! stack, not the small alternate one), cannot be drained so.

use std::sync::OnceLock;

/// The signals after which queued entries are still handed over.
const CRASH_SIGNALS: [libc::c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT];

struct Hooks {
    at_exit: fn(),
    on_crash: fn(),
    /// The actions replaced, in [`CRASH_SIGNALS`] order.
    previous: [libc::sigaction; CRASH_SIGNALS.len()],
}

// SAFETY: the saved `sigaction` structs are plain data, written before the
// OnceLock publishes them and only read afterwards.
unsafe impl Sync for Hooks {}
// SAFETY: as for `Sync`.
unsafe impl Send for Hooks {}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

/// Runs `at_exit` at `exit()` and `on_crash` on a crash signal, before
/// what was there before. Once per library; later calls do nothing.
pub fn drain_at_exit_or_crash(at_exit: fn(), on_crash: fn()) {
    if HOOKS.get().is_some() {
        return;
    }
    // SAFETY: zeroed sigaction structs are valid "default action" values,
    // overwritten by sigaction with the current actions.
    let mut previous: [libc::sigaction; CRASH_SIGNALS.len()] = unsafe { std::mem::zeroed() };
    for (signal, slot) in CRASH_SIGNALS.iter().zip(previous.iter_mut()) {
        // SAFETY: reads the current action of a valid signal into `slot`.
        unsafe { libc::sigaction(*signal, std::ptr::null(), slot) };
    }
    if HOOKS
        .set(Hooks {
            at_exit,
            on_crash,
            previous,
        })
        .is_err()
    {
        return;
    }
    // SAFETY: `atexit` stores a plain `extern "C" fn()` that lives as long
    // as the library, which is never unloaded while it has a running queue.
    unsafe { libc::atexit(exit_hook) };
    for signal in CRASH_SIGNALS {
        // SAFETY: installs a handler; the struct is fully initialised. Not
        // on the alternate signal stack: handing entries over (serialising
        // them, the host's sinks) needs more stack than the few kilobytes
        // Rust gives it, so the handler runs on the crashing thread's own
        // stack. A stack overflow, which leaves none, is then not drained:
        // the kernel ends the process with SIGSEGV at once.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction =
                crash_hook as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

extern "C" fn exit_hook() {
    if let Some(hooks) = HOOKS.get() {
        (hooks.at_exit)();
    }
}

extern "C" fn crash_hook(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(hooks) = HOOKS.get() else { return };
    (hooks.on_crash)();
    let Some(index) = CRASH_SIGNALS.iter().position(|&s| s == signal) else {
        return;
    };
    let previous = &hooks.previous[index];
    // SAFETY: puts the saved action back first (sigaction is
    // async-signal-safe), so that a fault raised again after the handlers
    // return, or abort()'s second SIGABRT, meets it and not this hook.
    unsafe { libc::sigaction(signal, previous, std::ptr::null_mut()) };
    match previous.sa_sigaction {
        libc::SIG_DFL | libc::SIG_IGN => {}
        handler if previous.sa_flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: the saved handler was installed with SA_SIGINFO, so it
            // has this signature, and gets the arguments this one got.
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            handler(signal, info, context);
        }
        handler => {
            // SAFETY: a handler installed without SA_SIGINFO takes the signal only.
            let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
            handler(signal);
        }
    }
}
