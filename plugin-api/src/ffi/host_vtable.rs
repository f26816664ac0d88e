//! The host's half of the boundary: exposing a host's Rust callbacks as a
//! [`HostVtable`] (the one part a release that adds a host function edits).
//! Loading a library and calling its entry points is `super::loading` (with
//! the `host` feature); `super::host_side` names both as 1.x did.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use abi_stable::prefix_type::WithMetadata;
use abi_stable::staticref;
use abi_stable::std_types::{ROption, RResult, RStr, RString};

use super::panics::panic_message;
use super::{ClientKind, HostContext, HostState, HostStatePtr, HostVtable, HostVtableRef};

/// What the host does for each context method. The loader implements this;
/// the boundary turns it into a [`HostVtable`].
///
/// Implementations must be thread-safe: plugin code may call the context from
/// several threads at once.
pub trait ContextHost: Send + Sync + 'static {
    /// `set_progress(current, total, step)`; an error is the reason the call was refused.
    fn set_progress(&self, current: u64, total: u64, step: Option<&str>) -> Result<(), String>;
    /// `set_metrics` with the value as JSON object text and the step's name;
    /// an error is the reason the call was refused.
    fn set_metrics(&self, value_json: &str, step: &str) -> Result<(), String>;
    /// `log(event, data, file)` with the data as JSON text, as a plugin
    /// built against 1.0/1.1 calls it (a step, if any, is the data's `step`).
    fn log(&self, event: &str, data_json: &str, file: Option<&str>);
    /// `log_message` with the level's lowercase name (plugins built against
    /// 1.0/1.1; newer ones send messages through `log_entry`).
    fn log_message(&self, message: &str, level: &str);
    /// `log_dev_event` with the data as JSON text, if any.
    fn log_dev_event(&self, message: &str, data_json: Option<&str>);
    /// The environment the plugin may see, as a JSON object of strings.
    fn env_json(&self) -> String;
    /// The job id, if the run has one.
    fn job_id(&self) -> Option<String>;
    /// The checkpoint as a JSON object (`category`, `path`, further fields).
    fn checkpoint_json(&self) -> Option<String>;
    /// Whether the action has been asked to stop.
    fn is_cancelled(&self) -> bool;
    /// Whether a client of this kind is configured.
    fn has_client(&self, kind: ClientKind) -> bool;
    /// Sends a request (JSON text) to a client and returns its answer (JSON text) or why it failed.
    fn client_request(&self, kind: ClientKind, request_json: &str) -> Result<String, String>;
    /// One entry with its step and level, as the JSON of a
    /// `log_entry::LogEntry` (added in 1.2). `log`, `log_message` and
    /// `log_dev_event` are what plugins built against 1.0/1.1 call instead.
    fn log_entry(&self, entry_json: &str) -> Result<(), String>;
    /// The run's work directory, as an absolute path, if the run has one
    /// (added in 1.3): the one place a sandboxed plugin may always write.
    /// `None` unless a host gives one.
    fn work_dir(&self) -> Option<String> {
        None
    }
    /// Whether the plugin may hand its log entries to a thread of its own,
    /// which sends them through [`log_entry_at`](Self::log_entry_at) (added
    /// in 1.4): the plugin's call then returns before the host has seen the
    /// entry. False unless a host says so, so that a test host sees each
    /// entry during the call that makes it.
    fn logs_off_thread(&self) -> bool {
        false
    }
    /// [`log_entry`](Self::log_entry) for an entry made earlier, with the
    /// time of the call that made it in nanoseconds since the Unix epoch
    /// (added in 1.4). By default the time is not used.
    fn log_entry_at(&self, entry_json: &str, unix_nanos: u64) -> Result<(), String> {
        let _ = unix_nanos;
        self.log_entry(entry_json)
    }
}

/// The context handed to a plugin for a run with this host. `host` must stay
/// alive for the duration of the call it is passed to; the plugin takes its
/// own reference (`retain`) if it keeps the context longer.
pub fn context_for<H: ContextHost>(host: &Arc<H>) -> HostContext {
    HostContext {
        state: Arc::as_ptr(host).cast::<HostState>(),
        vtable: VtableFor::<H>::VTABLE,
    }
}

struct VtableFor<H>(std::marker::PhantomData<H>);

impl<H: ContextHost> VtableFor<H> {
    staticref!(const VALUE: WithMetadata<HostVtable> = WithMetadata::new(HostVtable {
        retain: retain::<H>,
        release: release::<H>,
        set_progress: set_progress::<H>,
        set_metrics: set_metrics::<H>,
        log: log::<H>,
        log_message: log_message::<H>,
        log_dev_event: log_dev_event::<H>,
        env: env::<H>,
        job_id: job_id::<H>,
        checkpoint: checkpoint::<H>,
        is_cancelled: is_cancelled::<H>,
        has_client: has_client::<H>,
        client_request: client_request::<H>,
        log_entry: log_entry::<H>,
        work_dir: work_dir::<H>,
        logs_off_thread: logs_off_thread::<H>,
        log_entry_at: log_entry_at::<H>,
    }));
    const VTABLE: HostVtableRef = HostVtableRef(Self::VALUE.as_prefix());
}

/// The context a host built against plugin-api 1.3 would hand a plugin: a
/// vtable without the 1.4 functions, so that the plugin side's answers for
/// a host that predates 1.4 (entries sent during the call) can be tested.
#[cfg(test)]
pub(crate) fn release_1_3_context_for<H: ContextHost>(host: &Arc<H>) -> HostContext {
    HostContext {
        state: Arc::as_ptr(host).cast::<HostState>(),
        vtable: Release1_3VtableFor::<H>::VTABLE,
    }
}

#[cfg(test)]
struct Release1_3VtableFor<H>(std::marker::PhantomData<H>);

#[cfg(test)]
impl<H: ContextHost> Release1_3VtableFor<H> {
    staticref!(const VALUE: WithMetadata<super::v1_3::HostVtable> = WithMetadata::new(super::v1_3::HostVtable {
        retain: retain::<H>,
        release: release::<H>,
        set_progress: set_progress::<H>,
        set_metrics: set_metrics::<H>,
        log: log::<H>,
        log_message: log_message::<H>,
        log_dev_event: log_dev_event::<H>,
        env: env::<H>,
        job_id: job_id::<H>,
        checkpoint: checkpoint::<H>,
        is_cancelled: is_cancelled::<H>,
        has_client: has_client::<H>,
        client_request: client_request::<H>,
        log_entry: log_entry::<H>,
        work_dir: work_dir::<H>,
    }));
    // SAFETY: the 1.3 vtable is a prefix of the current one (a minor release
    // only appends fields), and the prefix's metadata records its 15 fields,
    // so the accessors of the fields after them return `None`: exactly how a
    // plugin sees the vtable of a host built against 1.3.
    const VTABLE: HostVtableRef = HostVtableRef(unsafe { Self::VALUE.as_prefix().cast() });
}

/// The context a host built against plugin-api 1.2 would hand a plugin: a
/// vtable with only the 1.2 functions, so that the plugin side's answers
/// for a host that predates 1.3 can be tested against it.
#[cfg(test)]
pub(crate) fn release_1_2_context_for<H: ContextHost>(host: &Arc<H>) -> HostContext {
    HostContext {
        state: Arc::as_ptr(host).cast::<HostState>(),
        vtable: Release1_2VtableFor::<H>::VTABLE,
    }
}

#[cfg(test)]
struct Release1_2VtableFor<H>(std::marker::PhantomData<H>);

#[cfg(test)]
impl<H: ContextHost> Release1_2VtableFor<H> {
    staticref!(const VALUE: WithMetadata<super::v1_2::HostVtable> = WithMetadata::new(super::v1_2::HostVtable {
        retain: retain::<H>,
        release: release::<H>,
        set_progress: set_progress::<H>,
        set_metrics: set_metrics::<H>,
        log: log::<H>,
        log_message: log_message::<H>,
        log_dev_event: log_dev_event::<H>,
        env: env::<H>,
        job_id: job_id::<H>,
        checkpoint: checkpoint::<H>,
        is_cancelled: is_cancelled::<H>,
        has_client: has_client::<H>,
        client_request: client_request::<H>,
        log_entry: log_entry::<H>,
    }));
    // SAFETY: the 1.2 vtable is a prefix of the current one (a minor release
    // only appends fields), and the prefix's metadata records its 14 fields,
    // so the accessors of the fields after them return `None`: exactly how a
    // plugin sees the vtable of a host built against 1.2.
    const VTABLE: HostVtableRef = HostVtableRef(unsafe { Self::VALUE.as_prefix().cast() });
}

/// The context a host built against plugin-api 1.1 would hand a plugin: a
/// vtable with only the 1.1 functions, so that the plugin side's fallbacks
/// for a host that predates 1.2 can be tested against it.
#[cfg(test)]
pub(crate) fn release_1_1_context_for<H: ContextHost>(host: &Arc<H>) -> HostContext {
    HostContext {
        state: Arc::as_ptr(host).cast::<HostState>(),
        vtable: Release1_1VtableFor::<H>::VTABLE,
    }
}

#[cfg(test)]
struct Release1_1VtableFor<H>(std::marker::PhantomData<H>);

#[cfg(test)]
impl<H: ContextHost> Release1_1VtableFor<H> {
    staticref!(const VALUE: WithMetadata<super::v1_1::HostVtable> = WithMetadata::new(super::v1_1::HostVtable {
        retain: retain::<H>,
        release: release::<H>,
        set_progress: set_progress::<H>,
        set_metrics: set_metrics::<H>,
        log: log::<H>,
        log_message: log_message::<H>,
        log_dev_event: log_dev_event::<H>,
        env: env::<H>,
        job_id: job_id::<H>,
        checkpoint: checkpoint::<H>,
        is_cancelled: is_cancelled::<H>,
        has_client: has_client::<H>,
        client_request: client_request::<H>,
    }));
    // SAFETY: the 1.1 vtable is a prefix of the current one (a minor release
    // only appends fields), and the prefix's metadata records its 13 fields,
    // so the accessors of the fields after them return `None`: exactly how a
    // plugin sees the vtable of a host built against 1.1.
    const VTABLE: HostVtableRef = HostVtableRef(unsafe { Self::VALUE.as_prefix().cast() });
}

/// Runs a host callback with the host behind `state`, turning a panic into
/// `on_panic` so that it never unwinds into plugin code.
fn with_host<H: ContextHost, R>(state: HostStatePtr, on_panic: impl FnOnce(String) -> R, f: impl FnOnce(&H) -> R) -> R {
    // SAFETY: `state` was made from an `Arc<H>` by `context_for::<H>` (this
    // function is only reachable through `VtableFor::<H>`), and the plugin
    // only calls the vtable while the host keeps that Arc alive for the call
    // or the plugin holds a reference taken with `retain`.
    let host = unsafe { &*state.cast::<H>() };
    catch_unwind(AssertUnwindSafe(|| f(host))).unwrap_or_else(|payload| on_panic(panic_message(&*payload)))
}

fn opt_str<'a>(value: &'a ROption<RStr<'_>>) -> Option<&'a str> {
    value.as_ref().map(|s| s.as_str()).into_option()
}

fn host_panicked(message: String) -> RString {
    format!("the host failed while handling this call: {message}").into()
}

fn client_kind(raw: u32) -> Option<ClientKind> {
    match raw {
        0 => Some(ClientKind::Backend),
        1 => Some(ClientKind::Agent),
        _ => None,
    }
}

extern "C" fn retain<H: ContextHost>(state: HostStatePtr) {
    // SAFETY: `state` comes from `Arc::as_ptr` of a live `Arc<H>` (see
    // `with_host`); adding a count keeps it alive until the matching release.
    unsafe { Arc::increment_strong_count(state.cast::<H>()) }
}

extern "C" fn release<H: ContextHost>(state: HostStatePtr) {
    // SAFETY: pairs with a `retain` the plugin made earlier, so the count being
    // given back exists.
    unsafe { Arc::decrement_strong_count(state.cast::<H>()) }
}

extern "C" fn set_progress<H: ContextHost>(
    state: HostStatePtr,
    current: u64,
    total: u64,
    step: ROption<RStr<'_>>,
) -> RResult<(), RString> {
    with_host(
        state,
        |m| RResult::RErr(host_panicked(m)),
        |h: &H| {
            h.set_progress(current, total, opt_str(&step))
                .map_err(RString::from)
                .into()
        },
    )
}

extern "C" fn set_metrics<H: ContextHost>(
    state: HostStatePtr,
    value: RStr<'_>,
    step: RStr<'_>,
) -> RResult<(), RString> {
    with_host(
        state,
        |m| RResult::RErr(host_panicked(m)),
        |h: &H| {
            h.set_metrics(value.as_str(), step.as_str())
                .map_err(RString::from)
                .into()
        },
    )
}

extern "C" fn log<H: ContextHost>(state: HostStatePtr, event: RStr<'_>, data: RStr<'_>, file: ROption<RStr<'_>>) {
    with_host(state, drop, |h: &H| {
        h.log(event.as_str(), data.as_str(), opt_str(&file))
    })
}

extern "C" fn log_message<H: ContextHost>(state: HostStatePtr, message: RStr<'_>, level: RStr<'_>) {
    with_host(state, drop, |h: &H| h.log_message(message.as_str(), level.as_str()))
}

extern "C" fn log_dev_event<H: ContextHost>(state: HostStatePtr, message: RStr<'_>, data: ROption<RStr<'_>>) {
    with_host(state, drop, |h: &H| h.log_dev_event(message.as_str(), opt_str(&data)))
}

extern "C" fn log_entry<H: ContextHost>(state: HostStatePtr, entry: RStr<'_>) -> RResult<(), RString> {
    with_host(
        state,
        |m| RResult::RErr(host_panicked(m)),
        |h: &H| h.log_entry(entry.as_str()).map_err(RString::from).into(),
    )
}

extern "C" fn logs_off_thread<H: ContextHost>(state: HostStatePtr) -> bool {
    with_host(state, |_| false, |h: &H| h.logs_off_thread())
}

extern "C" fn log_entry_at<H: ContextHost>(
    state: HostStatePtr,
    entry: RStr<'_>,
    unix_nanos: u64,
) -> RResult<(), RString> {
    with_host(
        state,
        |m| RResult::RErr(host_panicked(m)),
        |h: &H| h.log_entry_at(entry.as_str(), unix_nanos).map_err(RString::from).into(),
    )
}

extern "C" fn env<H: ContextHost>(state: HostStatePtr) -> RString {
    with_host(state, |_| RString::from("{}"), |h: &H| h.env_json().into())
}

extern "C" fn job_id<H: ContextHost>(state: HostStatePtr) -> ROption<RString> {
    with_host(state, |_| ROption::RNone, |h: &H| h.job_id().map(RString::from).into())
}

extern "C" fn checkpoint<H: ContextHost>(state: HostStatePtr) -> ROption<RString> {
    with_host(
        state,
        |_| ROption::RNone,
        |h: &H| h.checkpoint_json().map(RString::from).into(),
    )
}

extern "C" fn work_dir<H: ContextHost>(state: HostStatePtr) -> ROption<RString> {
    with_host(
        state,
        |_| ROption::RNone,
        |h: &H| h.work_dir().map(RString::from).into(),
    )
}

extern "C" fn is_cancelled<H: ContextHost>(state: HostStatePtr) -> bool {
    with_host(state, |_| false, |h: &H| h.is_cancelled())
}

extern "C" fn has_client<H: ContextHost>(state: HostStatePtr, kind: u32) -> bool {
    with_host(
        state,
        |_| false,
        |h: &H| client_kind(kind).is_some_and(|k| h.has_client(k)),
    )
}

extern "C" fn client_request<H: ContextHost>(
    state: HostStatePtr,
    kind: u32,
    request: RStr<'_>,
) -> RResult<RString, RString> {
    with_host(
        state,
        |m| RResult::RErr(host_panicked(m)),
        |h: &H| match client_kind(kind) {
            Some(kind) => h
                .client_request(kind, request.as_str())
                .map(RString::from)
                .map_err(RString::from)
                .into(),
            None => RResult::RErr(format!("unknown client kind {kind}").into()),
        },
    )
}
