//! The processes a dev session starts (cargo, and `loader run`), each in a
//! process group of its own that ends with the session: stopped with
//! SIGINT (as Ctrl-C would) and, after a grace period, killed; killed
//! outright when dropped; sent SIGTERM by the kernel if the session dies.
//! A leader that has exited is reaped only after its group was killed
//! (until then its pid, the group's id, cannot be reused), so nothing it
//! started outlives it.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::sys::{self, GroupSignal};

/// How often a stopping process is checked.
const POLL: Duration = Duration::from_millis(20);

/// A started process, leader of its own process group.
pub struct GroupChild {
    child: Child,
    group: u32,
    status: Option<ExitStatus>,
}

impl GroupChild {
    /// Starts `command` in a new process group.
    pub fn spawn(command: &mut Command) -> io::Result<Self> {
        sys::start_in_own_group(command);
        let child = command.spawn()?;
        let group = child.id();
        Ok(GroupChild {
            child,
            group,
            status: None,
        })
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The exit status, once the leader has ended (its group is killed
    /// then, and the leader reaped).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() && sys::exited_unreaped(self.group)? {
            self.reap()?;
        }
        Ok(self.status)
    }

    /// Sends SIGINT to the group, as Ctrl-C on a terminal would.
    pub fn interrupt(&self) {
        if self.status.is_none() {
            sys::signal_group(self.group, GroupSignal::Interrupt);
        }
    }

    /// Kills the group and reaps the leader.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        match self.status {
            Some(status) => Ok(status),
            None => self.reap(),
        }
    }

    fn reap(&mut self) -> io::Result<ExitStatus> {
        sys::signal_group(self.group, GroupSignal::Kill);
        let status = self.child.wait()?;
        self.status = Some(status);
        Ok(status)
    }

    /// Asks the group to stop (SIGINT), kills it if the leader has not
    /// ended after `grace`, and returns the leader's status.
    pub fn stop(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        sys::signal_group(self.group, GroupSignal::Interrupt);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(POLL);
        }
        self.reap()
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.reap();
        }
    }
}
