//! Starting a supervised child: its own session (or process group, with
//! the sandbox off) and, where the kernel allows, its own namespaces, its
//! channel to the loader as fd 3 (a socket pair, so both directions share
//! one fd) and no other descriptor of the loader's, its environment set
//! explicitly, stdin from `/dev/null`; and the guard that kills the child's
//! whole group, whatever way supervision ends.

use std::ffi::OsString;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};

use super::ChildCommand;
use crate::sandbox::{self, Containment};
use crate::sys;

/// What the child's stdout and stderr are connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildOutput {
    /// Pipes to the parent, to be relayed.
    Piped,
    /// `/dev/null`.
    Discarded,
}

/// A started child and the parent's ends of its channel and pipes.
pub struct Spawned {
    pub child: Child,
    pub channel: UnixStream,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
    pub group: GroupGuard,
}

impl Spawned {
    /// Waits for the child to end (and reaps it).
    pub fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        let status = self.child.wait();
        crate::run::orphans::own_child_ended(self.child.id());
        status
    }
}

/// Kills the child's process group when dropped (and on [`kill`](Self::kill)).
pub struct GroupGuard {
    group: u32,
}

impl GroupGuard {
    /// Kills every process of the group now; the guard kills again on drop,
    /// for processes started meanwhile.
    pub fn kill(&self) {
        sys::kill_group(self.group);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `command` with `env` as its whole environment and the channel as
/// fd 3, in `cwd` when given. With a `containment`, the child is confined
/// as it says (its own session, namespaces, cgroups, limits; see
/// `crate::sys::confine_before_exec`), and a kernel that refuses the
/// namespaces gets the child started again without them (unless the
/// sandbox is required), which the containment records; without one the
/// child gets a process group of its own. Either way the group id is the
/// pid of the started process.
pub fn spawn_with_channel(
    command: &ChildCommand,
    env: Vec<(OsString, OsString)>,
    output: ChildOutput,
    mut containment: Option<&mut Containment>,
    cwd: Option<&Path>,
) -> io::Result<Spawned> {
    loop {
        let page = containment.as_ref().map(|_| sandbox::status_page()).transpose()?;
        let confinement = containment.as_ref().and_then(|c| c.confinement());
        let (parent_end, child_end) = UnixStream::pair()?;
        let stdio = || match output {
            ChildOutput::Piped => Stdio::piped(),
            ChildOutput::Discarded => Stdio::null(),
        };
        let mut cmd = Command::new(&command.program);
        cmd.args(&command.args)
            .env_clear()
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(stdio())
            .stderr(stdio());
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        sys::prepare_child(&mut cmd, &child_end, confinement.zip(page.as_ref()));
        let spawned = cmd.spawn();
        drop(child_end);
        let started = spawned.as_ref().ok().map(Child::id);
        let verdict = match (containment.as_deref_mut(), &page) {
            (Some(containment), Some(page)) => containment.after_spawn(page, started),
            _ => Ok(false),
        };
        match (spawned, verdict) {
            // The namespaces were refused (the start failed): once more without.
            (_, Ok(true)) => continue,
            (Ok(mut child), Ok(false)) => {
                crate::run::orphans::own_child(child.id());
                let group = GroupGuard { group: child.id() };
                return Ok(Spawned {
                    stdout: child.stdout.take(),
                    stderr: child.stderr.take(),
                    child,
                    channel: parent_end,
                    group,
                });
            }
            (Ok(mut child), Err(required)) => {
                GroupGuard { group: child.id() }.kill();
                let _ = child.wait();
                return Err(io::Error::other(required));
            }
            (Err(e), Ok(false)) => return Err(e),
            (Err(_), Err(required)) => return Err(io::Error::other(required)),
        }
    }
}
