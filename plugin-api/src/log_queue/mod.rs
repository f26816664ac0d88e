//! The log queue: how `ctx.log`, the other log calls and `set_metrics`
//! return without waiting for the host when it takes entries off the
//! caller's thread (plugin-api 1.4, `logs_off_thread`). A `set_progress`
//! made while entries are unsent goes through it too, behind them.
//!
//! The caller writes its data's JSON text (in its thread's reused buffer,
//! where the data was built and is dropped: memory freed by another
//! thread costs the allocator more than the writing), stamps the entry
//! with a tick count and copies its strings into the queue's batch (module
//! [`batch`]) under one uncontended lock. A log thread of the plugin's, one
//! per run, takes the whole batch at once, writes each entry's JSON text
//! and hands it to the host with the time of its call (`log_entry_at`);
//! the host's checks and sinks run on that thread, never on the caller's.
//!
//! What is kept:
//! - order: one batch holds the entries in the order of their calls, and
//!   batches are handed over one at a time, in turn (the `turn` lock);
//! - times: each entry carries the tick count of its call, turned into
//!   wall time by the log thread ([`TickScale`]);
//! - memory: a caller waits while a batch is full ([`batch::MAX_ENTRIES`],
//!   [`batch::MAX_TEXT`]), so a flood is slowed to the host's pace;
//! - nothing is lost at the end: the run's end waits for the queue
//!   ([`LogQueue::flush`], also on a panic), and so do `exit()` and the
//!   crash signals ([`drain_at_exit`], [`drain_on_crash`], through
//!   [`crate::ffi::exit_hooks`]).

mod batch;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError, Weak};
use std::time::{Duration, Instant};

pub(crate) use batch::{Batch, Handed, Pending, What};

/// The metrics a run reported so far, merged per step (`get_metrics`): the
/// log thread merges each queued `set_metrics` once the host has it.
pub(crate) type MetricsSoFar = Arc<Mutex<BTreeMap<String, Map<String, Value>>>>;

use crate::ffi::clock::TickScale;
use crate::ffi::exit_hooks;
use crate::ffi::plugin_side::HostHandle;
use serde_json::{Map, Value};

/// How long the log thread, having handed a batch over, lets the next one
/// gather before it goes idle (and has to be woken by the next entry).
const GATHER: Duration = Duration::from_micros(200);

/// How long a drain at exit or on a crash waits for the log thread to
/// finish the batch it is handing over.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

thread_local! {
    /// Set on log threads: a drain there cannot wait for itself.
    static ON_LOG_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Every queue of this library that may hold entries, for [`drain_at_exit`]
/// and [`drain_on_crash`].
static QUEUES: Mutex<Vec<Weak<LogQueue>>> = Mutex::new(Vec::new());

struct State {
    batch: Batch,
    closed: bool,
}

/// What the one handing a batch over holds: the spare batch swapped in,
/// the clock scale, the text buffer and the host.
struct Turn {
    spare: Batch,
    scale: TickScale,
    text: Vec<u8>,
    host: HostHandle,
    metrics: MetricsSoFar,
}

impl Turn {
    fn hand_over(&mut self, batch: &mut Batch) {
        self.scale.mark();
        let Turn {
            scale,
            text,
            host,
            metrics,
            ..
        } = self;
        // A refusal (a call after the run ended, which the host counts)
        // has no caller left to tell.
        batch.drain(text, |at, handed| match handed {
            Handed::Entry(entry) => {
                let _ = host.log_entry_at(entry, scale.unix_nanos(at));
            }
            Handed::Progress { current, total, step } => {
                let _ = host.set_progress(current, total, step);
            }
            Handed::Metrics { json, step } => {
                let _ = host.set_metrics(json, step);
                if let Ok(value) = serde_json::from_str::<Map<String, Value>>(json) {
                    lock(metrics).entry(step.to_owned()).or_default().extend(value);
                }
            }
        });
    }
}

/// One run's log queue (see the module docs).
pub(crate) struct LogQueue {
    state: Mutex<State>,
    /// The log thread waits on it for entries.
    work: Condvar,
    /// Callers wait on it for room.
    room: Condvar,
    room_waiters: AtomicUsize,
    /// The log thread is idle: the next entry must wake it.
    idle: AtomicBool,
    /// Entries queued so far: changed only under `state`'s lock, so a
    /// plain store of the next value, not a locked read-modify-write.
    pushed: AtomicU64,
    /// Entries handed to the host so far: changed only holding the turn.
    handed: AtomicU64,
    turn: Mutex<Turn>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogQueue {
    /// A queue handing its entries to `host`, with its log thread running;
    /// `None` if the thread cannot be started (the caller then sends each
    /// entry during its call).
    pub fn start(host: HostHandle, metrics: MetricsSoFar) -> Option<Arc<Self>> {
        let queue = Arc::new(LogQueue {
            state: Mutex::new(State {
                batch: Batch::default(),
                closed: false,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            room_waiters: AtomicUsize::new(0),
            idle: AtomicBool::new(false),
            pushed: AtomicU64::new(0),
            handed: AtomicU64::new(0),
            turn: Mutex::new(Turn {
                spare: Batch::default(),
                scale: TickScale::new(),
                text: Vec::with_capacity(256),
                host,
                metrics,
            }),
        });
        let for_thread = queue.clone();
        std::thread::Builder::new()
            .name("plugin-log".into())
            .spawn(move || for_thread.run())
            .ok()?;
        let mut queues = lock(&QUEUES);
        queues.retain(|q| q.strong_count() > 0);
        queues.push(Arc::downgrade(&queue));
        drop(queues);
        exit_hooks::drain_at_exit_or_crash(drain_at_exit, drain_on_crash);
        Some(queue)
    }

    /// Queues one entry made at tick `at`: `what` adds its strings and data
    /// to the batch. Waits while the batch is full.
    pub fn push(&self, at: u64, step: Option<&str>, what: impl FnOnce(&mut Batch) -> What) {
        let mut state = lock(&self.state);
        while state.batch.is_full() && !state.closed {
            self.room_waiters.fetch_add(1, Ordering::SeqCst);
            state = self.room.wait(state).unwrap_or_else(|e| e.into_inner());
            self.room_waiters.fetch_sub(1, Ordering::SeqCst);
        }
        let step = step.map(|step| state.batch.add_text(step));
        let what = what(&mut state.batch);
        state.batch.push(Pending { at, step, what });
        let pushed = self.pushed.load(Ordering::Relaxed);
        self.pushed.store(pushed + 1, Ordering::Relaxed);
        drop(state);
        // Read before the swap: a write on every entry would pull the flag's
        // cache line away from the log thread each time. The lock just
        // released orders this read after the thread's store (made holding
        // the lock, before it waits).
        if self.idle.load(Ordering::Relaxed) && self.idle.swap(false, Ordering::SeqCst) {
            self.work.notify_one();
        }
    }

    /// Hands every entry queued so far to the host, on this thread, and
    /// returns once the host has them all.
    pub fn flush(&self) {
        let mut turn = lock(&self.turn);
        self.take_and_hand_over(&mut turn, lock(&self.state));
    }

    /// Swaps the batch out (making room for waiting callers) and hands it
    /// over; called holding the turn, so batches go in order.
    fn take_and_hand_over(&self, turn: &mut Turn, mut state: MutexGuard<'_, State>) {
        if state.batch.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut turn.spare);
        std::mem::swap(&mut state.batch, &mut batch);
        if self.room_waiters.load(Ordering::SeqCst) > 0 {
            self.room.notify_all();
        }
        drop(state);
        let handed = self.handed.load(Ordering::Relaxed) + batch.len() as u64;
        turn.hand_over(&mut batch);
        self.handed.store(handed, Ordering::Release);
        turn.spare = batch;
    }

    /// Whether every entry queued so far has reached the host: a call that
    /// goes to the host directly (`set_progress`) may then do so without
    /// overtaking an entry of its thread.
    pub fn all_sent(&self) -> bool {
        // The caller's own entries are among those `pushed` counts (it
        // stored that count itself, or a later thread a larger one), and
        // batches are handed over in order: so if as many were handed over,
        // its own were.
        let pushed = self.pushed.load(Ordering::Relaxed);
        self.handed.load(Ordering::Acquire) >= pushed
    }

    /// Stops the log thread once it has handed over what is queued.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.work.notify_one();
        self.room.notify_all();
    }

    /// The log thread: hands each batch over; after one, lets the next
    /// gather for [`GATHER`] before waiting to be woken.
    fn run(&self) {
        ON_LOG_THREAD.with(|on| on.set(true));
        let mut state = lock(&self.state);
        loop {
            if state.batch.is_empty() && !state.closed {
                state = match self.work.wait_timeout(state, GATHER) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
            while state.batch.is_empty() {
                if state.closed {
                    return;
                }
                self.idle.store(true, Ordering::SeqCst);
                state = self.work.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            self.idle.store(false, Ordering::SeqCst);
            drop(state);
            {
                let mut turn = lock(&self.turn);
                self.take_and_hand_over(&mut turn, lock(&self.state));
            }
            state = lock(&self.state);
        }
    }

    /// [`flush`](Self::flush) for `exit()` and crash handlers: takes the
    /// locks without blocking, retrying until `until` (the log thread may
    /// be handing a batch over; the crashed thread may hold a lock for ever).
    fn drain_before(&self, until: Instant) {
        while Instant::now() < until {
            if let Some(mut turn) = try_lock(&self.turn) {
                if let Some(state) = try_lock(&self.state) {
                    self.take_and_hand_over(&mut turn, state);
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[cfg(test)]
    pub fn queued(&self) -> usize {
        lock(&self.state).batch.len()
    }
}

fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// At `exit()`: hands what every queue of this library holds to its host,
/// waiting for the log thread's batch in progress (one batch at most).
fn drain_at_exit() {
    if ON_LOG_THREAD.with(Cell::get) {
        return;
    }
    let live: Vec<Arc<LogQueue>> = lock(&QUEUES).iter().filter_map(Weak::upgrade).collect();
    for queue in live {
        queue.flush();
    }
}

/// On a crash signal: as [`drain_at_exit`], but taking every lock without
/// blocking, retrying for a bounded time (best effort: see [`exit_hooks`]).
/// Not on a log thread, which cannot wait for itself.
fn drain_on_crash() {
    if ON_LOG_THREAD.with(Cell::get) {
        return;
    }
    let until = Instant::now() + DRAIN_WAIT;
    let Some(queues) = (0..1000).find_map(|_| {
        try_lock(&QUEUES).or_else(|| {
            std::thread::sleep(Duration::from_millis(1));
            None
        })
    }) else {
        return;
    };
    let live: Vec<Arc<LogQueue>> = queues.iter().filter_map(Weak::upgrade).collect();
    drop(queues);
    for queue in live {
        queue.drain_before(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::host_side::context_for;
    use crate::log_entry::LogEntry;
    use crate::testing::RecordingHost;
    use serde_json::json;

    /// A host that takes entries off the caller's thread and records them
    /// with their times, waiting on a gate before each one when closed.
    #[derive(Default)]
    struct SlowHost {
        entries: Mutex<Vec<(String, u64)>>,
        gate: Mutex<()>,
    }

    impl crate::ffi::host_side::ContextHost for SlowHost {
        fn set_progress(&self, _: u64, _: u64, _: Option<&str>) -> Result<(), String> {
            Ok(())
        }
        fn set_metrics(&self, _: &str, _: &str) -> Result<(), String> {
            Ok(())
        }
        fn log(&self, _: &str, _: &str, _: Option<&str>) {}
        fn log_message(&self, _: &str, _: &str) {}
        fn log_dev_event(&self, _: &str, _: Option<&str>) {}
        fn env_json(&self) -> String {
            "{}".into()
        }
        fn job_id(&self) -> Option<String> {
            None
        }
        fn checkpoint_json(&self) -> Option<String> {
            None
        }
        fn is_cancelled(&self) -> bool {
            false
        }
        fn has_client(&self, _: crate::ffi::ClientKind) -> bool {
            false
        }
        fn client_request(&self, _: crate::ffi::ClientKind, _: &str) -> Result<String, String> {
            Err("none".into())
        }
        fn log_entry(&self, _: &str) -> Result<(), String> {
            Err("entries come with their time".into())
        }
        fn logs_off_thread(&self) -> bool {
            true
        }
        fn log_entry_at(&self, entry_json: &str, unix_nanos: u64) -> Result<(), String> {
            drop(lock(&self.gate));
            lock(&self.entries).push((entry_json.to_owned(), unix_nanos));
            Ok(())
        }
    }

    fn message(queue: &LogQueue, at: u64, text: &str) {
        queue.push(at, None, |batch| What::Message {
            message: batch.add_text(text),
            level: "info",
        });
    }

    fn messages(host: &SlowHost) -> Vec<String> {
        lock(&host.entries)
            .iter()
            .map(|(entry, _)| match LogEntry::from_json(entry).unwrap() {
                LogEntry::Message { message, .. } => message,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn entries_reach_the_host_in_order_with_the_time_of_their_call() {
        let host = Arc::new(SlowHost::default());
        let queue = LogQueue::start(HostHandle::new(context_for(&host)), MetricsSoFar::default()).unwrap();
        let before = crate::ffi::clock::unix_nanos_now();
        for i in 0..10_000 {
            message(&queue, crate::ffi::clock::ticks(), &i.to_string());
        }
        let after = crate::ffi::clock::unix_nanos_now();
        queue.flush();
        let expected: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        assert_eq!(messages(&host), expected);
        let times: Vec<u64> = lock(&host.entries).iter().map(|(_, at)| *at).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "times follow the calls");
        let slack = 1_000_000;
        assert!(
            times[0] + slack >= before && times[9_999] <= after + slack,
            "{before}..{after}: {}..{}",
            times[0],
            times[9_999]
        );
        queue.close();
    }

    #[test]
    fn a_flood_waits_for_the_host_instead_of_queueing_without_bound() {
        let host = Arc::new(SlowHost::default());
        let queue = LogQueue::start(HostHandle::new(context_for(&host)), MetricsSoFar::default()).unwrap();
        let gate = lock(&host.gate);
        let flooder = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for i in 0..(batch::MAX_ENTRIES * 3) {
                    message(&queue, 0, &i.to_string());
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(!flooder.is_finished(), "the caller waits while the host is stuck");
        assert!(queue.queued() <= batch::MAX_ENTRIES, "{}", queue.queued());
        drop(gate);
        flooder.join().unwrap();
        queue.flush();
        assert_eq!(messages(&host).len(), batch::MAX_ENTRIES * 3);
        queue.close();
    }

    #[test]
    fn a_crash_drain_hands_every_live_queue_over() {
        let host = Arc::new(SlowHost::default());
        let queue = LogQueue::start(HostHandle::new(context_for(&host)), MetricsSoFar::default()).unwrap();
        let gate = lock(&host.gate);
        message(&queue, 0, "first");
        std::thread::sleep(Duration::from_millis(20));
        message(&queue, 0, "second");
        drop(gate);
        drain_on_crash();
        assert_eq!(messages(&host), ["first", "second"]);
        queue.close();
    }

    #[test]
    fn a_recording_host_keeps_entries_during_the_call() {
        let host = Arc::new(RecordingHost::default());
        let ctx = crate::RuntimeContext::with_host(host.clone());
        ctx.log("e", json!({"a": 1}), None).unwrap();
        assert_eq!(host.calls(), [r#"log e {"a":1} file=None"#]);
    }
}
