//! The child's Landlock ruleset: every file-system access, TCP bind and
//! connect, and signals and abstract Unix sockets outside the sandbox are
//! denied, except what the policy allows. Built with the `landlock`
//! crate's best-effort compatibility: on an older kernel the rights it
//! does not know are left out, and [`restrict`] says which parts that
//! leaves open.

use std::path::Path;

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, NetPort, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope, ABI,
};

use super::kernel;
use super::{Missing, NetAccess, SandboxPolicy};

/// The newest Landlock ABI whose rights this ruleset was written and
/// tested for; rights of newer ABIs are never asked for unknowingly.
const TESTED_ABI: ABI = ABI::V7;

/// Applies the policy's Landlock rules to the calling thread (and every
/// thread and process it starts later). Returns the parts the kernel
/// could not enforce.
pub fn restrict(policy: &SandboxPolicy) -> Result<Vec<Missing>, String> {
    let handle_net = !matches!(policy.net, NetAccess::All);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TESTED_ABI))
        .map_err(|e| e.to_string())?;
    if handle_net {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(TESTED_ABI))
            .map_err(|e| e.to_string())?;
    }
    let ruleset = ruleset.scope(Scope::from_all(TESTED_ABI)).map_err(|e| e.to_string())?;
    let mut created = ruleset.create().map_err(|e| e.to_string())?;
    // Not `AccessFs::from_read`, which also allows executing.
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let execute = read | AccessFs::Execute;
    let write = AccessFs::from_all(TESTED_ABI) & !AccessFs::Execute;
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate;
    for (paths, access) in [
        (&policy.read, read),
        (&policy.execute, execute),
        (&policy.write, write),
        (&policy.devices, device),
    ] {
        for path in paths {
            created = allow_path(created, path, access)?;
        }
    }
    if let NetAccess::Ports { connect, dns } = &policy.net {
        let mut ports = connect.clone();
        if *dns {
            ports.push(53);
        }
        ports.sort_unstable();
        ports.dedup();
        for port in ports {
            created = created
                .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
                .map_err(|e| e.to_string())?;
        }
    }
    let status = created.restrict_self().map_err(|e| e.to_string())?;
    Ok(match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => kernel::landlock_gaps(effective_abi as i32, handle_net),
        LandlockStatus::NotEnabled | LandlockStatus::NotImplemented => kernel::landlock_gaps(0, handle_net),
    })
}

/// Allows `access` beneath `path` (a file gets only the rights that apply
/// to files); a path that does not exist is skipped.
fn allow_path(created: RulesetCreated, path: &Path, access: BitFlags<AccessFs>) -> Result<RulesetCreated, String> {
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(created);
    };
    let access = if metadata.is_dir() {
        access
    } else {
        access & AccessFs::from_file(TESTED_ABI)
    };
    let fd = match PathFd::new(path) {
        Ok(fd) => fd,
        Err(_) => return Ok(created),
    };
    created
        .add_rule(PathBeneath::new(fd, access))
        .map_err(|e| format!("{}: {e}", path.display()))
}
