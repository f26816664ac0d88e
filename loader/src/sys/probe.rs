//! The system calls `loader sandbox check` makes from inside a sandboxed
//! child to see what the sandbox lets through: raw calls with integer (or
//! null) arguments, and forks that try to escape or exhaust the run's
//! limits. Only the probe process (`loader __sandbox-probe`, which starts
//! no thread) calls these.

use std::io;

/// Makes system call `number` with `args` (integers; pointer arguments are
/// passed as 0, which a kernel that lets the call through rejects with
/// EFAULT at worst). Returns the result or the errno.
pub fn raw_syscall(number: libc::c_long, args: [libc::c_long; 6]) -> Result<libc::c_long, i32> {
    // SAFETY: every argument is an integer or a null pointer: the kernel
    // either refuses the call or reads and writes nothing of this process
    // (a null pointer it would use fails with EFAULT).
    let result = unsafe { libc::syscall(number, args[0], args[1], args[2], args[3], args[4], args[5]) };
    if result < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(result)
    }
}

/// `ioctl(fd, TIOCSTI, &byte)`: pushes a byte into a terminal's input.
pub fn inject_terminal_input(fd: i32) -> Result<(), i32> {
    let byte = b'x';
    // SAFETY: TIOCSTI reads one byte from the pointer, which is live.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSTI, &byte as *const u8) };
    if rc < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

/// Forks up to `at_most` children that wait to be killed; returns how many
/// were made and the errno that stopped the next one (if any), then kills
/// and reaps them all.
pub fn fork_many(at_most: usize) -> (usize, Option<i32>) {
    let mut children = Vec::new();
    let mut stopped_by = None;
    for _ in 0..at_most {
        // SAFETY: the probe process is single-threaded; the child only
        // pauses until it is killed.
        let pid = unsafe { libc::fork() };
        match pid {
            0 => loop {
                // SAFETY: pause only waits for a signal.
                unsafe { libc::pause() };
            },
            -1 => {
                stopped_by = io::Error::last_os_error().raw_os_error();
                break;
            }
            pid => children.push(pid),
        }
    }
    for &pid in &children {
        // SAFETY: signals and reaps this process's own children.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    (children.len(), stopped_by)
}

/// Forks a child that touches `bytes` of fresh memory and exits 0 (or 3
/// when the memory is refused); returns its wait status in words.
pub fn touch_memory_in_child(bytes: usize) -> String {
    // SAFETY: the probe process is single-threaded; the child maps and
    // writes its own anonymous memory and ends with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: a fresh private anonymous mapping, written only within
        // its length, in the child's own address space.
        unsafe {
            let memory = libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if memory == libc::MAP_FAILED {
                libc::_exit(3);
            }
            let memory = memory.cast::<u8>();
            let mut offset = 0;
            while offset < bytes {
                memory.add(offset).write_volatile(1);
                offset += 4096;
            }
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return format!("fork failed: {}", io::Error::last_os_error());
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        match libc::WEXITSTATUS(status) {
            0 => "touched all of it".to_owned(),
            3 => "the memory was refused".to_owned(),
            code => format!("exited with code {code}"),
        }
    }
}

/// Starts a process that leaves the probe's session (`setsid`, then a
/// second fork whose parent exits) and sleeps for `seconds`: what a plugin
/// does to outlive its run.
pub fn start_escapee(seconds: u32) {
    // SAFETY: the probe process is single-threaded; the children call
    // only setsid, fork, sleep and _exit.
    unsafe {
        let first = libc::fork();
        if first == 0 {
            libc::setsid();
            if libc::fork() == 0 {
                libc::sleep(seconds);
            }
            libc::_exit(0);
        }
        if first > 0 {
            libc::waitpid(first, std::ptr::null_mut(), 0);
        }
    }
}

/// The name of an errno value (`EPERM`), or its number.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EINVAL => "EINVAL",
        libc::ENXIO => "ENXIO",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSYS => "ENOSYS",
        libc::EROFS => "EROFS",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EXDEV => "EXDEV",
        _ => return format!("errno {errno}"),
    };
    name.to_owned()
}
