//! The policy a sandboxed process gets: deny by default, and allow
//!
//! - reading the system's libraries and programs (`/usr`, `/lib*`, `/bin`,
//!   `/sbin`), the few files of `/etc` that the C library and TLS need
//!   (name service, time zone, certificates; not `/etc/shadow`, not the
//!   rest of `/etc`), `/proc` and `/sys`, `/dev/urandom`;
//! - reading the plugin's own library (a load check: the folders of the
//!   libraries it checks);
//! - reading and writing the run's work directory, and `/dev/null`,
//!   `/dev/zero`, `/dev/full`;
//! - what the operator granted ([`Grants`]).
//!
//! Nothing else: not `$HOME`, the plugin folder, the manifest cache, the
//! backend spool, `/tmp`, `/dev/shm`, no write under `/proc`, no program
//! to execute, no network.

use std::path::{Path, PathBuf};

use super::grants::Grants;
use super::{NetAccess, SandboxPolicy};

/// Read-only system paths every sandboxed process gets.
const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/os-release",
    "/etc/mime.types",
    "/proc",
    "/sys",
    "/dev/urandom",
    "/dev/random",
];

/// Devices every sandboxed process may read and write.
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];

/// What a policy is for.
#[derive(Debug, Clone, Copy)]
pub enum Purpose<'a> {
    /// Running (or describing, or validating params of) one plugin.
    Run { library: &'a Path, work_dir: &'a Path },
    /// Loading libraries to check them: every file in these folders is
    /// readable.
    LoadCheck { folders: &'a [PathBuf] },
}

/// The policy for `purpose`, with `grants` on top of the defaults.
pub fn build(purpose: Purpose, grants: &Grants, require: bool) -> SandboxPolicy {
    let mut policy = SandboxPolicy {
        read: SYSTEM_READ.iter().map(PathBuf::from).collect(),
        devices: DEVICES.iter().map(PathBuf::from).collect(),
        require,
        ..SandboxPolicy::default()
    };
    policy.read.extend(library_path_folders());
    match purpose {
        Purpose::Run { library, work_dir } => {
            policy.read.push(library.to_owned());
            policy.write.push(work_dir.to_owned());
        }
        Purpose::LoadCheck { folders } => policy.read.extend(folders.iter().cloned()),
    }
    policy.read.extend(grants.read.iter().cloned());
    policy.write.extend(grants.write.iter().cloned());
    policy.execute.extend(grants.run.iter().cloned());
    policy
        .execute
        .extend(grants.run.iter().flat_map(|p| interpreters_of(p)));
    policy.net = grants.net.clone();
    policy
}

/// The folders of `LD_LIBRARY_PATH`, where a plugin's native dependencies
/// may be found (read-only).
fn library_path_folders() -> Vec<PathBuf> {
    std::env::var_os("LD_LIBRARY_PATH")
        .map(|paths| std::env::split_paths(&paths).filter(|p| p.is_absolute()).collect())
        .unwrap_or_default()
}

/// What the kernel must also execute to run `program`: its ELF
/// interpreter (the dynamic loader), or the interpreter of a `#!` script
/// and that interpreter's own.
pub fn interpreters_of(program: &Path) -> Vec<PathBuf> {
    let mut chain = Vec::new();
    let mut current = program.to_owned();
    while chain.len() < 4 {
        match interpreter_of(&current) {
            Some(next) if !chain.contains(&next) => {
                chain.push(next.clone());
                current = next;
            }
            _ => break,
        }
    }
    chain
}

/// The interpreter the kernel runs `program` with, if any.
fn interpreter_of(program: &Path) -> Option<PathBuf> {
    use object::read::elf::{FileHeader, ProgramHeader};
    use object::ReadCache;
    let mut file = std::fs::File::open(program).ok()?;
    let mut start = [0u8; 256];
    let read = std::io::Read::read(&mut file, &mut start).ok()?;
    if let Some(script) = start[..read].strip_prefix(b"#!") {
        let line = script.split(|&b| b == b'\n').next()?;
        let text = std::str::from_utf8(line).ok()?;
        return text.split_whitespace().next().map(PathBuf::from);
    }
    let data = ReadCache::new(file);
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&data).ok()?;
    let endian = header.endian().ok()?;
    for segment in header.program_headers(endian, &data).ok()? {
        if let Ok(Some(interpreter)) = segment.interpreter(endian, &data) {
            let path = std::str::from_utf8(interpreter).ok()?;
            return Some(PathBuf::from(path.trim_end_matches('\0')));
        }
    }
    None
}

/// Whether a network grant is everything (`--allow-net` with no list).
pub fn net_is_all(net: &NetAccess) -> bool {
    matches!(net, NetAccess::All)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reads_its_library_and_the_system_and_writes_only_its_work_dir() {
        let policy = build(
            Purpose::Run {
                library: Path::new("/plugins/libp.so"),
                work_dir: Path::new("/tmp/loader-run-1"),
            },
            &Grants::default(),
            false,
        );
        assert!(policy.read.contains(&PathBuf::from("/plugins/libp.so")));
        assert!(policy.read.contains(&PathBuf::from("/usr")));
        assert!(!policy
            .read
            .iter()
            .any(|p| p == Path::new("/etc") || p == Path::new("/home")));
        assert_eq!(policy.write, [PathBuf::from("/tmp/loader-run-1")]);
        assert!(policy.execute.is_empty());
        assert_eq!(policy.net, NetAccess::None);
    }

    #[test]
    fn a_granted_program_brings_its_interpreter() {
        let sh = Path::new("/bin/sh");
        let chain = interpreters_of(sh);
        assert_eq!(chain.len(), 1, "{chain:?}");
        assert!(chain[0].to_string_lossy().contains("ld-linux"), "{chain:?}");
        let script = std::env::temp_dir().join(format!("policy-script-{}", std::process::id()));
        std::fs::write(&script, "#!/bin/sh -e\necho hi\n").unwrap();
        assert_eq!(
            interpreters_of(&script)[..2],
            [PathBuf::from("/bin/sh"), chain[0].clone()]
        );
        std::fs::remove_file(script).unwrap();
    }
}
