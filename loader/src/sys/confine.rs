//! Confining a child process between `fork` and `exec`, and the calls a
//! sandboxed child makes on itself that have no safe wrapper: its own
//! session, limits, cgroups, a user, PID and mount namespace of its own
//! (with a `/proc` that shows only the run's processes), and the
//! capabilities it drops.
//!
//! With namespaces, the forked child becomes three processes:
//!
//! ```text
//! loader ── keeper (outside)  waits for the namespace's init, mirrors the worker's exit
//!              └── init (PID 1 of the new namespace)  reaps orphans, records the worker's exit
//!                     └── worker (PID 2)  execs the loader's child command
//! ```
//!
//! The worker is not PID 1 because PID 1 of a namespace cannot be killed
//! by a signal it sends itself: an `abort()` there would end as SIGSEGV.
//! When the worker ends, init ends, and the kernel kills every process
//! left in the namespace: nothing the plugin started (`setsid` and double
//! forks included) survives the run. The keeper ends with the worker's
//! exit status (re-raising its signal), so the loader sees the worker's
//! outcome as if it were its own child.

use std::ffi::CString;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// Where the processes between fork and exec leave word for the loader: a
/// shared anonymous page, mapped before the fork.
#[derive(Debug)]
pub struct StatusPage {
    page: NonNull<PageWords>,
}

/// The words of a [`StatusPage`].
#[repr(C)]
struct PageWords {
    /// The errno of a namespace set-up that failed (0: none failed).
    namespace_errno: AtomicI32,
    /// The errno of mounting the namespace's own `/proc` (0: mounted).
    proc_errno: AtomicI32,
    /// 1 once `worker_status` holds the worker's wait status.
    worker_ended: AtomicU32,
    worker_status: AtomicI32,
}

const PAGE: usize = 4096;

// SAFETY: the page is only accessed through the atomics in it.
unsafe impl Send for StatusPage {}
// SAFETY: as above.
unsafe impl Sync for StatusPage {}

impl StatusPage {
    pub fn new() -> io::Result<Self> {
        // SAFETY: a fresh anonymous shared mapping chosen by the kernel,
        // overlapping nothing; zero-filled, which is a valid `PageWords`.
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
        let page = NonNull::new(page.cast::<PageWords>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(StatusPage { page })
    }

    fn words(&self) -> &PageWords {
        // SAFETY: the mapping lives as long as `self`, and is only read
        // and written through atomics.
        unsafe { self.page.as_ref() }
    }

    /// The errno with which the child's namespace set-up failed, if it did.
    pub fn namespace_error(&self) -> Option<io::Error> {
        errno_error(self.words().namespace_errno.load(Ordering::Acquire))
    }

    /// Why the child's namespace did not get a `/proc` of its own, if it
    /// did not (it then sees the system's, other processes included).
    pub fn proc_error(&self) -> Option<io::Error> {
        errno_error(self.words().proc_errno.load(Ordering::Acquire))
    }

    /// The page's address, for the pre-exec code (the page stays mapped in
    /// the forked processes whatever the loader does with it).
    pub fn raw_address(&self) -> usize {
        self.page.as_ptr() as usize
    }
}

fn errno_error(errno: i32) -> Option<io::Error> {
    (errno != 0).then(|| io::Error::from_raw_os_error(errno))
}

impl Drop for StatusPage {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the page `new` mapped; the forked
        // processes keep their own copy of the mapping.
        unsafe { libc::munmap(self.page.as_ptr().cast(), PAGE) };
    }
}

/// How a child process is confined before it execs. Everything is
/// computed before the fork: the code after it only makes system calls.
#[derive(Debug, Default)]
pub struct Confinement {
    /// Give the child a user, PID and mount namespace of its own (and a
    /// `/proc` that shows only the run's processes).
    pub namespaces: bool,
    /// `uid_map` and `gid_map` lines for the new user namespace (the same
    /// ids inside as outside).
    pub uid_map: Vec<u8>,
    pub gid_map: Vec<u8>,
    /// `cgroup.procs` files the child moves itself into.
    pub cgroup_procs: Vec<CString>,
    /// `RLIMIT_NPROC` (counted per user namespace: per run, with one).
    pub max_processes: Option<u64>,
    /// `RLIMIT_DATA`, per process (where no memory cgroup caps the run).
    pub max_data_bytes: Option<u64>,
}

impl Confinement {
    /// Identity maps of the loader's own user and group ids.
    pub fn identity_maps() -> (Vec<u8>, Vec<u8>) {
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        (
            format!("{uid} {uid} 1\n").into_bytes(),
            format!("{gid} {gid} 1\n").into_bytes(),
        )
    }
}

/// Whether this process runs as root (uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Runs in the forked child before exec: session, limits, cgroups, then
/// (when asked) the namespaces and the keeper / init / worker split. Only
/// async-signal-safe system calls on data prepared before the fork.
/// Returns in the worker, which then execs.
///
/// # Safety
///
/// Must be called only between fork and exec of a child of this process.
pub unsafe fn confine_before_exec(confinement: &Confinement, page: usize) -> io::Result<()> {
    let page = page as *const PageWords;
    if libc::setsid() < 0 {
        return Err(io::Error::last_os_error());
    }
    if let Some(limit) = confinement.max_processes {
        set_limit(libc::RLIMIT_NPROC, limit)?;
    }
    if let Some(limit) = confinement.max_data_bytes {
        set_limit(libc::RLIMIT_DATA, limit)?;
    }
    for procs in &confinement.cgroup_procs {
        write_file(procs.as_ptr(), b"0")?;
    }
    if !confinement.namespaces {
        return Ok(());
    }
    if let Err(error) = enter_namespaces(confinement) {
        (*page)
            .namespace_errno
            .store(error.raw_os_error().unwrap_or(libc::EPERM), Ordering::Release);
        return Err(error);
    }
    let init = libc::fork();
    if init < 0 {
        return Err(io::Error::last_os_error());
    }
    if init > 0 {
        keep(init, page);
    }
    die_with_parent();
    let worker = libc::fork();
    if worker < 0 {
        libc::_exit(127);
    }
    if worker > 0 {
        reap_as_init(worker, page);
    }
    die_with_parent();
    if let Err(error) = mount_own_proc() {
        (*page)
            .proc_errno
            .store(error.raw_os_error().unwrap_or(libc::EPERM), Ordering::Release);
    }
    Ok(())
}

/// Mounts a `/proc` of the new PID namespace over the system's, in the
/// new mount namespace: the child sees only its own run's processes, not
/// the loader's command line or any other process of the system. Nothing
/// propagates out: a mount namespace made with a new user namespace is
/// less privileged than the one it copies, and the kernel turns every
/// shared mount of the copy into a slave.
unsafe fn mount_own_proc() -> io::Result<()> {
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    if libc::mount(
        c"proc".as_ptr(),
        c"/proc".as_ptr(),
        c"proc".as_ptr(),
        flags,
        std::ptr::null(),
    ) != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `unshare`s a user, a PID and a mount namespace and maps the loader's ids into
/// the user namespace (writing one's own maps needs the process to be
/// dumpable for that moment; it is made non-dumpable again at once, since
/// it holds a copy of the loader's memory until it execs).
unsafe fn enter_namespaces(confinement: &Confinement) -> io::Result<()> {
    if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNS) != 0 {
        return Err(io::Error::last_os_error());
    }
    libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
    let written = write_file(c"/proc/self/setgroups".as_ptr(), b"deny")
        .and_then(|()| write_file(c"/proc/self/uid_map".as_ptr(), &confinement.uid_map))
        .and_then(|()| write_file(c"/proc/self/gid_map".as_ptr(), &confinement.gid_map));
    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    written
}

/// The keeper: waits for the namespace's init, then ends as the worker
/// ended (or as init did, if init was killed before the worker ended).
unsafe fn keep(init: libc::pid_t, page: *const PageWords) -> ! {
    close_all_descriptors();
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
    let mut status = 0;
    while libc::waitpid(init, &mut status, 0) < 0 {
        if *libc::__errno_location() != libc::EINTR {
            libc::_exit(127);
        }
    }
    if (*page).worker_ended.load(Ordering::Acquire) == 1 {
        status = (*page).worker_status.load(Ordering::Acquire);
    }
    end_as(status)
}

/// Init of the namespace: reaps every process that ends in it (orphans
/// come here), records the worker's status when the worker ends, and
/// ends, which ends the namespace.
unsafe fn reap_as_init(worker: libc::pid_t, page: *const PageWords) -> ! {
    close_all_descriptors();
    loop {
        let mut status = 0;
        let ended = libc::waitpid(-1, &mut status, 0);
        if ended == worker {
            (*page).worker_status.store(status, Ordering::Release);
            (*page).worker_ended.store(1, Ordering::Release);
            libc::_exit(0);
        }
        if ended < 0 && *libc::__errno_location() != libc::EINTR {
            libc::_exit(0);
        }
    }
}

/// Ends this process as a process with wait status `status` ended: the
/// same exit code, or killed by the same signal (without a core dump).
unsafe fn end_as(status: libc::c_int) -> ! {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), signal);
        libc::_exit(128 + signal);
    }
    libc::_exit(libc::WEXITSTATUS(status))
}

/// Asks the kernel for SIGKILL when this process's parent ends.
unsafe fn die_with_parent() {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
}

/// Closes every descriptor: the keeper and init hold none of the child's
/// channel or pipes, so their ends are the worker's alone.
unsafe fn close_all_descriptors() {
    libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
}

unsafe fn set_limit(resource: libc::__rlimit_resource_t, limit: u64) -> io::Result<()> {
    let value = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    if libc::setrlimit(resource, &value) != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes `bytes` to the file at `path` in one `write`.
unsafe fn write_file(path: *const libc::c_char, bytes: &[u8]) -> io::Result<()> {
    let fd = libc::open(path, libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
    let error = io::Error::last_os_error();
    libc::close(fd);
    if written != bytes.len() as isize {
        return Err(error);
    }
    Ok(())
}

/// Marks every descriptor above `keep_up_to` close-on-exec: descriptors
/// the loader inherited from whoever started it never reach the child.
///
/// # Safety
///
/// Must be called only between fork and exec.
pub unsafe fn close_inherited_on_exec(keep_up_to: u32) {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    libc::syscall(libc::SYS_close_range, keep_up_to + 1, u32::MAX, CLOSE_RANGE_CLOEXEC);
}

/// The sandboxed child's side: drops every capability, from the bounding
/// set too, so that nothing it execs regains one (a loader running as root
/// gives its plugins no more power than any user's).
pub fn drop_capabilities() -> io::Result<()> {
    let last = last_capability();
    for capability in 0..=last {
        // SAFETY: prctl with integer arguments; an error (no CAP_SETPCAP
        // when nothing is held) leaves the set as it was.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, capability as libc::c_ulong, 0, 0, 0) };
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads one header and two data structs (version 3),
    // all live for the call.
    if unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The highest capability number this kernel knows.
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(63)
}

/// Sets `no_new_privs`: nothing this process execs gains privileges
/// (set-user-id bits, file capabilities). Landlock and seccomp need it.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Marks this process non-dumpable: no other process of the same user can
/// read its memory, attach to it, or read its `/proc/<pid>/environ`. The
/// loader does this at start, since it holds the backend's credentials.
pub fn set_non_dumpable() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// Makes this process a "child subreaper": processes orphaned below it
/// are re-parented to it rather than to init, so it can find and end them.
pub fn become_subreaper() -> bool {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

/// Whether seccomp filters can be installed here.
pub fn seccomp_available() -> bool {
    // SAFETY: prctl with integer arguments; PR_GET_SECCOMP only reads.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

/// Sends SIGKILL to process `pid` (never 0, 1 or a negative id).
pub fn kill_process(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    if pid > 1 {
        // SAFETY: kill only sends a signal to one process.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Reaps child `pid` if it has ended, without blocking; true if it was.
pub fn reap_if_ended(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    let mut status = 0;
    // SAFETY: waitpid writes only the status integer it is given.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
}

/// The Landlock ABI version of the running kernel (0 when it has none).
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute, size 0 and the VERSION flag, the call
    // only returns a number; it reads and writes no memory.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    i32::try_from(abi).unwrap_or(0).max(0)
}

/// A child of this process, as `/proc` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildProcess {
    pub pid: u32,
    /// When it started, in clock ticks since boot.
    pub start_ticks: u64,
}

/// The processes whose parent is this process (zombies included).
pub fn children_of_this_process() -> Vec<ChildProcess> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let (parent, start_ticks) = stat_fields(pid)?;
            (parent == me).then_some(ChildProcess { pid, start_ticks })
        })
        .collect()
}

/// The parent pid and start time (ticks since boot) of process `pid`.
fn stat_fields(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields are
    // counted after its closing parenthesis (field 3 is the state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((parent, start))
}

/// Clock ticks since boot now, as `/proc/PID/stat` counts start times.
pub fn ticks_since_boot() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    // SAFETY: sysconf only returns a number.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    (now.tv_sec as u64) * per_second + (now.tv_nsec as u64) * per_second / 1_000_000_000
}

/// Whether this process may create entries in the folder `path` (its access
/// rights, and a file system mounted read-only, say no).
pub fn writable(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access reads the NUL-terminated path, which lives for the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}
