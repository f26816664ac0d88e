//! The plugin's handle on the host: [`HostHandle`], the safe wrapper through
//! which plugin code calls the host's functions for one action run (the
//! handle a `RuntimeContext` holds). Functions a host may lack (added in a
//! later minor) come back as `None` (`is_cancelled`, `work_dir`) or as the
//! [`host_too_old`] error, or fall back to older calls that mean the same
//! (`log_entry`).

use abi_stable::std_types::RStr;

use super::{ClientKind, HostContext};
use crate::log_entry::{LegacyCall, LogEntry};

/// Plugin code's handle on the host context of one action run.
///
/// It holds a reference on the host's state (taken with `retain`, given back
/// on drop), so it stays valid as long as it lives, even if plugin code keeps
/// it past the end of the action: the host then ignores what it reports.
pub struct HostHandle {
    context: HostContext,
}

// SAFETY: the host guarantees that every vtable function is thread-safe and
// that the state lives while a reference is held (see `HostVtable`); the
// handle holds one for its whole life.
unsafe impl Send for HostHandle {}
// SAFETY: as for `Send`: all access goes through the host's thread-safe
// functions, none through `&mut`.
unsafe impl Sync for HostHandle {}

/// The version of plugin-api that added each optional host function.
const ADDED_IN_1_1: &str = "1.1";

impl HostHandle {
    /// Wraps a context received from the host, taking a reference on it.
    pub fn new(context: HostContext) -> Self {
        (context.vtable.retain())(context.state);
        Self { context }
    }

    /// `set_progress(current, total, step)` through the vtable; an error is the host's reason.
    pub fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), String> {
        let step = step.map(RStr::from).into();
        (self.context.vtable.set_progress())(self.context.state, current, total, step)
            .into_result()
            .map_err(String::from)
    }

    /// `set_metrics` (the value as JSON object text) through the vtable; an error is the host's reason.
    pub fn set_metrics(&self, value_json: &str, step: &str) -> Result<(), String> {
        (self.context.vtable.set_metrics())(self.context.state, value_json.into(), step.into())
            .into_result()
            .map_err(String::from)
    }

    /// `log(event, data as JSON text, file)` through the vtable.
    pub fn log(&self, event: &str, data_json: &str, file: Option<&str>) {
        (self.context.vtable.log())(
            self.context.state,
            event.into(),
            data_json.into(),
            file.map(RStr::from).into(),
        )
    }

    /// `log_message(message, level name)` through the vtable.
    pub fn log_message(&self, message: &str, level: &str) {
        (self.context.vtable.log_message())(self.context.state, message.into(), level.into())
    }

    /// `log_dev_event(message, data as JSON text)` through the vtable.
    pub fn log_dev_event(&self, message: &str, data_json: Option<&str>) {
        (self.context.vtable.log_dev_event())(self.context.state, message.into(), data_json.map(RStr::from).into())
    }

    /// Logs an entry with its step and level through `log_entry`; a host
    /// that predates plugin-api 1.2 gets the plain 1.1 call that stands for
    /// it instead (see [`LogEntry::to_release_1_1`]), never something a 1.1
    /// call did not mean.
    pub fn log_entry(&self, entry: &LogEntry) -> Result<(), String> {
        if let Some(sent) = self.log_entry_json(&entry.to_json()) {
            return sent;
        }
        match entry.to_release_1_1() {
            LegacyCall::Log { event, data_json, file } => self.log(&event, &data_json, file.as_deref()),
            LegacyCall::Message { message, level } => self.log_message(&message, level),
            LegacyCall::DevEvent { message, data_json } => self.log_dev_event(&message, data_json.as_deref()),
        }
        Ok(())
    }

    /// Sends an entry already written as JSON text through `log_entry`;
    /// `None` when the host predates plugin-api 1.2 (nothing was sent).
    pub fn log_entry_json(&self, entry_json: &str) -> Option<Result<(), String>> {
        let log_entry = self.context.vtable.log_entry()?;
        Some(
            log_entry(self.context.state, entry_json.into())
                .into_result()
                .map_err(String::from),
        )
    }

    /// Whether the host takes entries from a log thread of the plugin's
    /// through `log_entry_at` (plugin-api 1.4); false for an older host.
    pub fn logs_off_thread(&self) -> bool {
        self.context
            .vtable
            .logs_off_thread()
            .is_some_and(|f| f(self.context.state))
    }

    /// Sends an entry made at `unix_nanos` through `log_entry_at`; `None`
    /// when the host predates plugin-api 1.4 (nothing was sent).
    pub fn log_entry_at(&self, entry_json: &str, unix_nanos: u64) -> Option<Result<(), String>> {
        let log_entry_at = self.context.vtable.log_entry_at()?;
        Some(
            log_entry_at(self.context.state, entry_json.into(), unix_nanos)
                .into_result()
                .map_err(String::from),
        )
    }

    /// Another handle on the same host context, with a reference of its own
    /// (for a thread that reports on the plugin's behalf).
    pub fn another(&self) -> Self {
        Self::new(self.context)
    }

    /// Whether the host takes entries through `log_entry` (plugin-api 1.2).
    pub fn has_log_entry(&self) -> bool {
        self.context.vtable.log_entry().is_some()
    }

    /// The plugin's environment as a JSON object of strings.
    pub fn env_json(&self) -> String {
        (self.context.vtable.env())(self.context.state).into()
    }

    /// The job id, if the run has one.
    pub fn job_id(&self) -> Option<String> {
        (self.context.vtable.job_id())(self.context.state)
            .map(String::from)
            .into_option()
    }

    /// The checkpoint as a JSON object (`category`, `path`, further fields), if the run has one.
    pub fn checkpoint_json(&self) -> Option<String> {
        (self.context.vtable.checkpoint())(self.context.state)
            .map(String::from)
            .into_option()
    }

    /// The run's work directory; `None` when the run has none or the host
    /// predates plugin-api 1.3.
    pub fn work_dir(&self) -> Option<String> {
        let work_dir = self.context.vtable.work_dir()?;
        work_dir(self.context.state).map(String::from).into_option()
    }

    /// `None` when the host predates plugin-api 1.1 (it cannot cancel).
    pub fn is_cancelled(&self) -> Option<bool> {
        self.context.vtable.is_cancelled().map(|f| f(self.context.state))
    }

    /// Whether the host has this client; `false` when the host predates 1.1.
    pub fn has_client(&self, kind: ClientKind) -> bool {
        self.context
            .vtable
            .has_client()
            .is_some_and(|f| f(self.context.state, kind as u32))
    }

    /// A request (JSON text) to a client, answered as JSON text; the
    /// [`host_too_old`] error when the host predates 1.1.
    pub fn client_request(&self, kind: ClientKind, request_json: &str) -> Result<String, String> {
        let request = self
            .context
            .vtable
            .client_request()
            .ok_or_else(|| host_too_old("client requests", ADDED_IN_1_1))?;
        request(self.context.state, kind as u32, request_json.into())
            .into_result()
            .map(String::from)
            .map_err(String::from)
    }
}

impl Drop for HostHandle {
    fn drop(&mut self) {
        (self.context.vtable.release())(self.context.state)
    }
}

/// The error a plugin sees when it uses a host function its host lacks.
pub fn host_too_old(feature: &str, added_in: &str) -> String {
    format!("{feature} need plugin-api >= {added_in} in the host, and this host is older; upgrade the loader")
}
