//! Starting a supervised child: its own process group, its channel to the
//! loader as fd 3 (a socket pair, so both directions share one fd), its
//! environment set explicitly, stdin from `/dev/null`; and the guard that
//! kills the child's whole group, whatever way supervision ends.

use std::ffi::OsString;
use std::io;
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};

use super::ChildCommand;
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

/// Starts `command` with `env` as its whole environment, in a new process
/// group whose id is its pid, with the channel as fd 3.
pub fn spawn_with_channel(
    command: &ChildCommand,
    env: Vec<(OsString, OsString)>,
    output: ChildOutput,
) -> io::Result<Spawned> {
    let (parent_end, child_end) = UnixStream::pair()?;
    let stdio = || match output {
        ChildOutput::Piped => Stdio::piped(),
        ChildOutput::Discarded => Stdio::null(),
    };
    let mut cmd = Command::new(&command.program);
    cmd.args(&command.args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(stdio())
        .stderr(stdio());
    sys::prepare_child(&mut cmd, &child_end);
    let mut child = cmd.spawn()?;
    drop(child_end);
    let group = GroupGuard { group: child.id() };
    Ok(Spawned {
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        child,
        channel: parent_end,
        group,
    })
}
