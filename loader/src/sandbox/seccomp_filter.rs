//! The child's seccomp filter (built with Firecracker's `seccompiler`):
//! system calls a plugin never needs, and those that reach past the
//! sandbox, fail with EPERM, a refusal the plugin can report; nothing is
//! killed. It covers what Landlock does not: other processes' memory
//! (ptrace, `process_vm_readv`/`writev`, `pidfd_getfd`), kernel surfaces
//! (bpf, perf, keyrings, modules, kexec, io_uring, userfaultfd), new
//! namespaces and mounts, terminal input injection (`TIOCSTI`,
//! `TIOCLINUX`), and socket families Landlock does not filter (Unix,
//! netlink, raw, and UDP or any IP socket unless the network is granted).
//!
//! `clone3` fails with ENOSYS instead (its flags sit in memory a filter
//! cannot read, so the C library falls back to `clone`, whose flags it
//! can), and so do x32 system calls on x86_64 (numbers a filter keyed on
//! x86_64 numbers would not see).

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::NetAccess;

/// System calls that always fail with EPERM.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_quotactl,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_syslog,
    libc::SYS_vhangup,
];

/// Namespace flags `clone` may not be given.
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
];

/// Terminal ioctls that inject input or reach the console.
#[allow(clippy::useless_conversion, reason = "the request type is u32 on 32-bit targets")]
fn denied_ioctls() -> [u64; 2] {
    [u64::from(libc::TIOCSTI), u64::from(libc::TIOCLINUX)]
}

fn target_arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())
}

fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| e.to_string())
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| e.to_string())
}

/// The rules for `socket`: which calls are refused.
fn socket_rules(net: &NetAccess) -> Result<Vec<SeccompRule>, String> {
    let socket_type = |kind: libc::c_int| condition(1, SeccompCmpOp::MaskedEq(0xf), kind as u64);
    let not_ip = rule(vec![
        condition(0, SeccompCmpOp::Ne, libc::AF_INET as u64)?,
        condition(0, SeccompCmpOp::Ne, libc::AF_INET6 as u64)?,
    ])?;
    let raw = rule(vec![socket_type(libc::SOCK_RAW)?])?;
    Ok(match net {
        NetAccess::None => Vec::new(),
        NetAccess::Ports { dns: false, .. } => vec![not_ip, raw, rule(vec![socket_type(libc::SOCK_DGRAM)?])?],
        NetAccess::Ports { dns: true, .. } | NetAccess::All => vec![not_ip, raw],
    })
}

/// The filter whose matches fail with EPERM.
fn denial_filter(net: &NetAccess) -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &call in DENIED {
        rules.insert(call, Vec::new());
    }
    rules.insert(libc::SYS_socket, socket_rules(net)?);
    let ioctls = denied_ioctls()
        .iter()
        .map(|&request| rule(vec![condition(1, SeccompCmpOp::Eq, request)?]))
        .collect::<Result<_, _>>()?;
    rules.insert(libc::SYS_ioctl, ioctls);
    let clones = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| rule(vec![condition(0, SeccompCmpOp::MaskedEq(flag), flag)?]))
        .collect::<Result<_, _>>()?;
    rules.insert(libc::SYS_clone, clones);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        target_arch()?,
    )
    .map_err(|e| e.to_string())?;
    BpfProgram::try_from(filter).map_err(|e| e.to_string())
}

// Classic BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;
/// Offsets in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn statement(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The filter whose matches fail with ENOSYS: `clone3`, and on x86_64 every
/// x32 system call.
fn enosys_filter() -> BpfProgram {
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let allow = libc::SECCOMP_RET_ALLOW;
    let mut program = Vec::new();
    if cfg!(target_arch = "x86_64") {
        program.extend([
            statement(LD_W_ABS, ARCH_OFFSET),
            // Another architecture: the denial filter decides.
            jump(JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
            statement(RET_K, allow),
            statement(LD_W_ABS, NR_OFFSET),
            jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
            statement(RET_K, enosys),
        ]);
    } else {
        program.push(statement(LD_W_ABS, NR_OFFSET));
    }
    program.extend([
        jump(JMP_JEQ_K, libc::SYS_clone3 as u32, 0, 1),
        statement(RET_K, enosys),
        statement(RET_K, allow),
    ]);
    program
}

/// Installs both filters on the calling thread (inherited by the threads
/// and processes it starts later). `no_new_privs` must be set.
pub fn install(net: &NetAccess) -> Result<(), String> {
    seccompiler::apply_filter(&enosys_filter()).map_err(|e| e.to_string())?;
    seccompiler::apply_filter(&denial_filter(net)?).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_for_every_network_setting() {
        for net in [
            NetAccess::None,
            NetAccess::Ports {
                connect: vec![443],
                dns: false,
            },
            NetAccess::Ports {
                connect: vec![443],
                dns: true,
            },
            NetAccess::All,
        ] {
            let program = denial_filter(&net).unwrap();
            assert!(!program.is_empty());
        }
        assert!(enosys_filter().len() >= 4);
    }
}
