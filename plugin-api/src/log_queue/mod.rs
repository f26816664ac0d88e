//! The log queue: how `ctx.log`, the other log calls and `set_metrics`
//! return without waiting for the host when it takes entries off the
//! caller's thread (plugin-api 1.4, `logs_off_thread`). A `set_progress`
//! made while the caller's entries are unsent goes through it too, behind
//! them.
//!
//! Each thread that logs gets a ring of its own
//! ([`byte_ring`](crate::ffi::byte_ring)): the caller records its data's
//! shape and raw numbers ([`tape`]: no JSON text, no allocation), stamps the call with a tick count and copies the record
//! ([`record`]) into its ring with one atomic store, without a lock. A log
//! thread of the plugin's, one per run, reads every ring, writes each
//! entry's JSON text and hands it to the host with the time of its call
//! (`log_entry_at`); the host's checks and sinks run on that thread, never
//! on the caller's.
//!
//! A caller whose ring is more than three quarters unread (the log thread
//! is behind) writes its data's JSON text itself instead of the tape, so
//! that a flood is shared by both threads.
//!
//! What is kept:
//! - order: a thread's records are read in the order it wrote them; the
//!   records of several threads found in one pass go in the order of their
//!   tick counts;
//! - times: each entry carries the tick count of its call, turned into
//!   wall time by the log thread ([`TickScale`]);
//! - memory: a thread's ring is [`RING_BYTES`]; a caller waits while its
//!   ring is full, so a flood is slowed to the host's pace; a record too
//!   large for a ring is handed over on the caller's thread, after
//!   everything queued before it;
//! - nothing is lost at the end: the run's end waits for the queue
//!   ([`LogQueue::flush`], also on a panic), and so do `exit()` and the
//!   crash signals ([`drain_at_exit`], [`drain_on_crash`], through
//!   [`crate::ffi::exit_hooks`]).

mod record;
mod tape;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

pub(crate) use record::{DataCall, What};
pub(crate) use tape::is_object as tape_is_object;

use crate::ffi::byte_ring::{Producer, Reader, Ring};
use crate::ffi::clock::TickScale;
use crate::ffi::exit_hooks;
use crate::ffi::plugin_side::HostHandle;
use crate::logger::StepCopy;

/// The metrics a run reported so far, merged per step (`get_metrics`): the
/// log thread merges each queued `set_metrics` once the host has it.
pub(crate) type MetricsSoFar = Arc<Mutex<BTreeMap<String, Map<String, Value>>>>;

/// Each logging thread's ring: room for a loop of 100 k `log` calls of a
/// small object without waiting. Its pages are only made real as they are
/// first written.
const RING_BYTES: usize = 8 << 20;

/// How long the log thread, having handed records over, lets the next ones
/// gather before it goes idle (and has to be woken by the next record).
const GATHER: Duration = Duration::from_micros(200);

/// How long a caller whose ring is full waits before it looks again (it is
/// woken sooner when the log thread makes room).
const ROOM_WAIT: Duration = Duration::from_millis(1);

/// How long a drain at exit or on a crash waits for the log thread to
/// finish the pass it is making.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// Records handed over between two wake-ups of callers waiting for room.
const ROOM_EVERY: usize = 4096;

thread_local! {
    /// Set on log threads: a drain there cannot wait for itself.
    static ON_LOG_THREAD: Cell<bool> = const { Cell::new(false) };
    /// What this thread keeps for each queue it wrote to (by queue id).
    static CALLERS: RefCell<Vec<(u64, Caller)>> = const { RefCell::new(Vec::new()) };
}

/// Queue ids, so that a thread finds its ring for a queue.
static NEXT_QUEUE_ID: AtomicU64 = AtomicU64::new(1);

/// Every queue of this library that may hold entries, for [`drain_at_exit`]
/// and [`drain_on_crash`].
static QUEUES: Mutex<Vec<Weak<LogQueue>>> = Mutex::new(Vec::new());

/// What a thread keeps for one queue: the writing side of its ring, and
/// the buffer its calls' data is recorded in before it is copied there.
struct Caller {
    producer: Producer,
    tape: Vec<u8>,
    /// Its copy of the logger's running step.
    step: StepCopy,
}

impl Caller {
    /// The step a call is attributed to, from this thread's copy of the
    /// running step (taken again after each change).
    #[inline]
    fn resolve<'s>(step: &'s mut StepCopy, of: StepOf<'s>) -> Option<&'s str> {
        match of {
            StepOf::Given(step) => step,
            StepOf::Running { changes, read } => step.current(changes, read),
        }
    }
}

/// The step a queued call is attributed to.
#[derive(Clone, Copy)]
pub(crate) enum StepOf<'a> {
    /// Given by the call (or none).
    Given(Option<&'a str>),
    /// The logger's running step: `changes` is its count of step changes,
    /// `read` reads the step (taken only when the count moved).
    Running {
        changes: u64,
        read: &'a dyn Fn() -> Option<String>,
    },
}

impl StepOf<'_> {
    fn read(&self) -> Option<String> {
        match *self {
            StepOf::Given(step) => step.map(str::to_owned),
            StepOf::Running { read, .. } => read(),
        }
    }
}

/// What the reader of the rings holds: the rings, the clock scale, the
/// text buffers and the host.
struct Turn {
    rings: Vec<Arc<Ring>>,
    scale: TickScale,
    /// The time of the last entry handed over: the next is never earlier
    /// (two passes place their tick counts with two readings of the
    /// clocks, which may differ by a little).
    last_nanos: u64,
    entry: Vec<u8>,
    data: Vec<u8>,
    host: HostHandle,
    metrics: MetricsSoFar,
}

impl Turn {
    /// Hands one call to the host.
    fn hand(&mut self, at: u64, step: Option<&str>, what: What<'_>) {
        // A refusal (a call after the run ended, which the host counts)
        // has no caller left to tell.
        match what {
            What::Progress { current, total } => {
                let _ = self.host.set_progress(current, total, step);
            }
            What::Metrics(data) => {
                let step = step.expect("metrics are queued with their step");
                self.data.clear();
                tape::write_json(data, &mut self.data);
                let json = std::str::from_utf8(&self.data).expect("the tape's JSON text is UTF-8");
                let _ = self.host.set_metrics(json, step);
                if let Ok(value) = serde_json::from_str::<Map<String, Value>>(json) {
                    lock(&self.metrics).entry(step.to_owned()).or_default().extend(value);
                }
            }
            what => {
                self.entry.clear();
                record::write_entry(what, step, &mut self.data, &mut self.entry);
                let entry = std::str::from_utf8(&self.entry).expect("entries are written as UTF-8");
                self.last_nanos = self.scale.unix_nanos(at).max(self.last_nanos);
                let _ = self.host.log_entry_at(entry, self.last_nanos);
            }
        }
    }
}

/// One run's log queue (see the module docs).
pub(crate) struct LogQueue {
    id: u64,
    /// Rings made since the reader last looked.
    new_rings: Mutex<Vec<Arc<Ring>>>,
    has_new_rings: AtomicBool,
    turn: Mutex<Turn>,
    /// Threads waiting for the turn (a flush, a hand-over on the caller's
    /// thread, a drain at exit): the log thread lets them have it between
    /// two passes, however fast records keep coming.
    waiting_for_turn: AtomicUsize,
    /// The log thread sleeps on `work` holding it; a caller that wakes the
    /// thread takes it first, so the wake-up cannot fall between the
    /// thread's last look and its sleep.
    sleep: Mutex<()>,
    work: Condvar,
    /// The log thread is asleep (or about to be): the next record wakes it.
    idle: AtomicBool,
    closed: AtomicBool,
    /// Callers whose ring is full wait on it.
    room: Mutex<()>,
    room_made: Condvar,
    room_waiters: AtomicUsize,
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
            id: NEXT_QUEUE_ID.fetch_add(1, Ordering::Relaxed),
            new_rings: Mutex::new(Vec::new()),
            has_new_rings: AtomicBool::new(false),
            turn: Mutex::new(Turn {
                rings: Vec::new(),
                scale: TickScale::new(),
                last_nanos: 0,
                entry: Vec::with_capacity(256),
                data: Vec::with_capacity(256),
                host,
                metrics,
            }),
            waiting_for_turn: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            work: Condvar::new(),
            idle: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            room: Mutex::new(()),
            room_made: Condvar::new(),
            room_waiters: AtomicUsize::new(0),
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

    /// Runs `f` with what this thread keeps for the queue (its ring, made
    /// on first use); `None` when the thread has none and cannot have one
    /// (it is ending, or is inside a call of the queue already, as a
    /// `Serialize` impl that logs is, or memory ran out).
    #[inline]
    fn with_caller<T>(&self, f: impl FnOnce(&mut Caller) -> T) -> Option<T> {
        CALLERS
            .try_with(|cell| {
                let mut callers = cell.try_borrow_mut().ok()?;
                let at = match callers.iter().position(|(id, _)| *id == self.id) {
                    Some(at) => at,
                    None => {
                        callers.retain(|(_, caller)| !caller.producer.ring().is_abandoned());
                        let (ring, producer) = Ring::new(RING_BYTES)?;
                        lock(&self.new_rings).push(ring);
                        self.has_new_rings.store(true, Ordering::SeqCst);
                        let tape = Vec::with_capacity(256);
                        callers.push((
                            self.id,
                            Caller {
                                producer,
                                tape,
                                step: StepCopy::default(),
                            },
                        ));
                        callers.len() - 1
                    }
                };
                Some(f(&mut callers[at].1))
            })
            .ok()
            .flatten()
    }

    /// Queues one call made at tick `at`. Waits while this thread's ring is
    /// full; a record too large for a ring (or a thread without one) is
    /// handed over here, after everything queued before it.
    #[inline]
    pub fn push(&self, at: u64, step: StepOf<'_>, what: What<'_>) {
        let queued = self.with_caller(|caller| {
            let step = Caller::resolve(&mut caller.step, step);
            let queued = self.write(&mut caller.producer, at, step, &what);
            if !queued {
                self.hand_over_here(at, step, what);
            }
            queued
        });
        match queued {
            Some(true) => self.wake_if_idle(),
            Some(false) => {}
            None => self.hand_over_here(at, step.read().as_deref(), what),
        }
    }

    /// Queues one call with data, made at tick `at`: records `data` on the
    /// tape (in this thread's reused buffer), lets `check` refuse it (or
    /// the error of a `Serialize` that failed), then queues `call` with
    /// the tape as its data, as [`push`](Self::push).
    #[inline]
    pub fn push_data<E>(
        &self,
        at: u64,
        step: StepOf<'_>,
        data: &(impl Serialize + ?Sized),
        check: impl FnOnce(Result<&[u8], serde_json::Error>) -> Result<(), E>,
        call: DataCall<'_>,
    ) -> Result<(), E> {
        let mut check = Some(check);
        let queued = self.with_caller(|caller| {
            let check = check.take().expect("called once");
            caller.tape.clear();
            // When the log thread is behind, this thread writes the JSON
            // text itself (it would soon wait for room anyway), so that a
            // flood is shared by both threads.
            let recorded = if caller.producer.is_backed_up() {
                tape::record_as_json(data, &mut caller.tape)
            } else {
                tape::record_or_json(data, &mut caller.tape)
            };
            check(recorded.map(|()| caller.tape.as_slice()))?;
            let what = call.with_tape(&caller.tape);
            let step = Caller::resolve(&mut caller.step, step);
            let queued = self.write(&mut caller.producer, at, step, &what);
            if !queued {
                self.hand_over_here(at, step, what);
            }
            Ok(queued)
        });
        match (queued, check) {
            (Some(Ok(true)), _) => {
                self.wake_if_idle();
                Ok(())
            }
            (Some(result), _) => result.map(drop),
            (None, Some(check)) => {
                let mut tape = Vec::new();
                let recorded = tape::record_or_json(data, &mut tape);
                check(recorded.map(|()| tape.as_slice()))?;
                self.hand_over_here(at, step.read().as_deref(), call.with_tape(&tape));
                Ok(())
            }
            (None, None) => unreachable!("the thread's queue state ran the calls but gave no result"),
        }
    }

    /// Writes the record of `what` into `producer`'s ring, waiting for
    /// room; `false` if it is too large for a ring or the queue closed.
    #[inline]
    fn write(&self, producer: &mut Producer, at: u64, step: Option<&str>, what: &What<'_>) -> bool {
        let len = record::encoded_len(step, what);
        let fill = |slot: &mut [u8]| record::encode(slot, at, step, what);
        len <= producer.ring().max_record()
            && (producer.try_write(len, fill) || self.wait_for_room(producer, len, fill))
    }

    /// After a record was written: wakes the log thread if it sleeps.
    #[inline]
    fn wake_if_idle(&self) {
        // The record's store, then the look at `idle`, in this order for
        // every thread: either the log thread's last look finds the record,
        // or this look finds the thread idle and wakes it.
        fence(Ordering::SeqCst);
        if self.idle.load(Ordering::Relaxed) {
            self.wake();
        }
    }

    /// Hands one call over on this thread, after everything queued.
    fn hand_over_here(&self, at: u64, step: Option<&str>, what: What<'_>) {
        let mut turn = self.wait_for_turn();
        self.take_turn(&mut turn);
        turn.scale.mark();
        turn.hand(at, step, what);
    }

    fn wake(&self) {
        let _sleep = lock(&self.sleep);
        self.idle.store(false, Ordering::SeqCst);
        self.work.notify_one();
    }

    /// Waits until the ring takes the record; `false` if the queue closed
    /// meanwhile (its log thread is gone: the caller hands it over itself).
    fn wait_for_room(&self, producer: &mut Producer, len: usize, fill: impl FnOnce(&mut [u8]) + Copy) -> bool {
        loop {
            if self.idle.load(Ordering::SeqCst) {
                self.wake();
            }
            let room = lock(&self.room);
            self.room_waiters.fetch_add(1, Ordering::SeqCst);
            if producer.try_write(len, fill) {
                self.room_waiters.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            if self.closed.load(Ordering::SeqCst) {
                self.room_waiters.fetch_sub(1, Ordering::SeqCst);
                return false;
            }
            drop(self.room_made.wait_timeout(room, ROOM_WAIT));
            self.room_waiters.fetch_sub(1, Ordering::SeqCst);
            if producer.try_write(len, fill) {
                return true;
            }
        }
    }

    /// Hands every entry queued so far to the host, on this thread, and
    /// returns once the host has them all.
    pub fn flush(&self) {
        let mut turn = self.wait_for_turn();
        self.take_turn(&mut turn);
    }

    /// Takes the turn from the log thread, which lets it go between two
    /// passes as soon as it sees someone waiting.
    fn wait_for_turn(&self) -> MutexGuard<'_, Turn> {
        self.waiting_for_turn.fetch_add(1, Ordering::SeqCst);
        let turn = lock(&self.turn);
        self.waiting_for_turn.fetch_sub(1, Ordering::SeqCst);
        turn
    }

    /// Reads every ring once, handing over the records published when it
    /// looked, in order; called holding the turn. Returns how many.
    fn take_turn(&self, turn: &mut Turn) -> usize {
        if self.has_new_rings.swap(false, Ordering::SeqCst) {
            turn.rings.append(&mut lock(&self.new_rings));
        }
        turn.scale.mark();
        let rings = std::mem::take(&mut turn.rings);
        for ring in &rings {
            ring.prefault_ahead();
        }
        let mut readers: Vec<_> = rings.iter().map(|ring| ring.reader()).collect();
        let mut handed: usize = 0;
        let mut hand_next = |turn: &mut Turn, reader: &mut Reader<'_>| {
            let next = reader.peek().expect("the reader has a next record");
            let len = next.len();
            let (at, step, what) = record::decode(next);
            turn.hand(at, step, what);
            reader.consume(len);
            handed += 1;
            if handed.is_multiple_of(ROOM_EVERY) {
                self.make_room();
            }
        };
        if let [reader] = readers.as_mut_slice() {
            while reader.peek().is_some() {
                hand_next(turn, reader);
            }
        }
        // With several threads' rings: each time, the record made first.
        loop {
            let mut first: Option<(usize, u64)> = None;
            for (i, reader) in readers.iter_mut().enumerate() {
                if let Some(at) = reader.peek().map(record::tick_of) {
                    if first.is_none_or(|(_, earliest)| at < earliest) {
                        first = Some((i, at));
                    }
                }
            }
            let Some((i, _)) = first else { break };
            hand_next(turn, &mut readers[i]);
        }
        drop(readers);
        self.make_room();
        turn.rings = rings;
        // A ring whose thread has ended (its producer dropped, so this is
        // the last owner) is forgotten once empty. The acquire fence pairs
        // with the release of the producer's drop, so its last record is
        // seen.
        turn.rings.retain(|ring| {
            Arc::strong_count(ring) > 1 || {
                fence(Ordering::Acquire);
                !ring.is_empty()
            }
        });
        handed
    }

    fn make_room(&self) {
        if self.room_waiters.load(Ordering::SeqCst) > 0 {
            let _room = lock(&self.room);
            self.room_made.notify_all();
        }
    }

    /// Whether every entry this thread queued has reached the host: a call
    /// that goes to the host directly (`set_progress`) may then do so
    /// without overtaking one of them.
    pub fn all_sent(&self) -> bool {
        CALLERS
            .try_with(|cell| {
                let callers = cell.try_borrow().ok()?;
                Some(
                    callers
                        .iter()
                        .find(|(id, _)| *id == self.id)
                        .is_none_or(|(_, caller)| caller.producer.all_handed()),
                )
            })
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    /// Stops the log thread once it has handed over what is queued.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake();
        let _room = lock(&self.room);
        self.room_made.notify_all();
    }

    /// Whether a ring holds records not yet handed over.
    fn has_pending(&self) -> bool {
        self.pending_in(&lock(&self.turn))
    }

    /// [`has_pending`](Self::has_pending), holding the turn already.
    fn pending_in(&self, turn: &Turn) -> bool {
        self.has_new_rings.load(Ordering::SeqCst) || turn.rings.iter().any(|ring| !ring.is_empty())
    }

    /// The log thread: hands the records over, pass after pass while
    /// more keep coming; then lets the next gather for [`GATHER`]; after a
    /// pass that found none, sleeps until a record wakes it.
    fn run(&self) {
        ON_LOG_THREAD.with(|on| on.set(true));
        loop {
            let (handed, more) = {
                let mut turn = lock(&self.turn);
                let handed = self.take_turn(&mut turn);
                (handed, handed > 0 && self.pending_in(&turn))
            };
            if more && self.waiting_for_turn.load(Ordering::SeqCst) == 0 {
                // More came during the pass: go on at once (unless someone
                // waits for the turn: the pause below lets them have it).
                continue;
            }
            let sleep = lock(&self.sleep);
            if handed > 0 {
                if !self.closed.load(Ordering::SeqCst) {
                    drop(self.work.wait_timeout(sleep, GATHER));
                }
                continue;
            }
            if self.closed.load(Ordering::SeqCst) {
                drop(sleep);
                self.take_turn(&mut lock(&self.turn));
                return;
            }
            self.idle.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.has_pending() {
                self.idle.store(false, Ordering::SeqCst);
                continue;
            }
            drop(self.work.wait(sleep));
            self.idle.store(false, Ordering::SeqCst);
        }
    }

    /// [`flush`](Self::flush) for `exit()` and crash handlers: takes the
    /// turn without blocking, retrying until `until` (the log thread may
    /// be making a pass; the crashed thread may hold it for ever).
    fn drain_before(&self, until: Instant) {
        self.waiting_for_turn.fetch_add(1, Ordering::SeqCst);
        while Instant::now() < until {
            if let Some(mut turn) = try_lock(&self.turn) {
                self.take_turn(&mut turn);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.waiting_for_turn.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for LogQueue {
    /// Tells each thread's ring that the queue is gone, so the thread
    /// forgets it.
    fn drop(&mut self) {
        let turn = self.turn.get_mut().unwrap_or_else(|e| e.into_inner());
        let new_rings = self.new_rings.get_mut().unwrap_or_else(|e| e.into_inner());
        for ring in turn.rings.iter().chain(new_rings.iter()) {
            ring.abandon();
        }
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
/// waiting for the log thread's pass in progress.
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
    use crate::logger::MessageLevel;
    use crate::testing::RecordingHost;
    use serde_json::json;

    /// A host that takes entries off the caller's thread and records them
    /// with their times, waiting on a gate before each one when closed.
    #[derive(Default)]
    struct SlowHost {
        entries: Mutex<Vec<(String, u64)>>,
        gate: Mutex<()>,
        /// Counts entries instead of keeping them (for floods).
        only_count: AtomicBool,
        counted: AtomicUsize,
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
            if self.only_count.load(Ordering::Relaxed) {
                self.counted.fetch_add(1, Ordering::Relaxed);
            } else {
                lock(&self.entries).push((entry_json.to_owned(), unix_nanos));
            }
            Ok(())
        }
    }

    fn message(queue: &LogQueue, at: u64, text: &str) {
        queue.push(
            at,
            StepOf::Given(None),
            What::Message {
                message: text,
                level: MessageLevel::Info,
            },
        );
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
        let text = "0123456789abcdef";
        let record_len = record::encoded_len(
            None,
            &What::Message {
                message: text,
                level: MessageLevel::Info,
            },
        );
        let total = 3 * RING_BYTES / record_len;
        let pushed = Arc::new(AtomicUsize::new(0));
        let flooder = {
            let (queue, pushed) = (queue.clone(), pushed.clone());
            std::thread::spawn(move || {
                for _ in 0..total {
                    message(&queue, 0, text);
                    pushed.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(!flooder.is_finished(), "the caller waits while the host is stuck");
        let queued = pushed.load(Ordering::Relaxed) * record_len;
        assert!(queued <= RING_BYTES, "{queued} bytes queued");
        drop(gate);
        flooder.join().unwrap();
        queue.flush();
        assert_eq!(messages(&host).len(), total);
        queue.close();
    }

    #[test]
    fn each_threads_entries_keep_their_order_and_none_is_lost() {
        let host = Arc::new(SlowHost::default());
        let queue = LogQueue::start(HostHandle::new(context_for(&host)), MetricsSoFar::default()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        message(&queue, crate::ffi::clock::ticks(), &format!("{t} {i}"));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        queue.flush();
        let mut next = [0; 4];
        for text in messages(&host) {
            let (t, i) = text.split_once(' ').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "thread {t}'s entries in order");
            next[t] += 1;
        }
        assert_eq!(next, [20_000; 4]);
        queue.close();
    }

    #[test]
    fn a_flush_gets_its_turn_while_another_thread_floods() {
        let host = Arc::new(SlowHost::default());
        host.only_count.store(true, Ordering::Relaxed);
        let queue = LogQueue::start(HostHandle::new(context_for(&host)), MetricsSoFar::default()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flooder = {
            let (queue, stop) = (queue.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    message(&queue, 0, "flood");
                }
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let (done, flushed) = std::sync::mpsc::channel();
        let flusher = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    queue.flush();
                }
                done.send(()).unwrap();
            })
        };
        let in_time = flushed.recv_timeout(Duration::from_secs(10)).is_ok();
        stop.store(true, Ordering::Relaxed);
        flooder.join().unwrap();
        flusher.join().unwrap();
        assert!(in_time, "5 flushes did not get the turn within 10 s of a flood");
        assert!(host.counted.load(Ordering::Relaxed) > 0);
        queue.close();
    }

    #[test]
    fn the_running_step_is_read_again_only_after_it_changed() {
        let host = Arc::new(SlowHost::default());
        let queue = LogQueue::start(HostHandle::new(context_for(&host)), MetricsSoFar::default()).unwrap();
        let reads = AtomicUsize::new(0);
        let step = Mutex::new(Some("train".to_owned()));
        let read = || {
            reads.fetch_add(1, Ordering::Relaxed);
            lock(&step).clone()
        };
        let log = |changes: u64, text: &str| {
            let what = What::Message {
                message: text,
                level: MessageLevel::Info,
            };
            queue.push(0, StepOf::Running { changes, read: &read }, what);
        };
        log(1, "a");
        log(1, "b");
        *lock(&step) = Some("test".to_owned());
        log(1, "c, before the change is counted");
        log(2, "d");
        log(2, "e");
        queue.flush();
        let steps: Vec<Option<String>> = lock(&host.entries)
            .iter()
            .map(|(entry, _)| match LogEntry::from_json(entry).unwrap() {
                LogEntry::Message { step, .. } => step,
                other => panic!("{other:?}"),
            })
            .collect();
        let expected = ["train", "train", "train", "test", "test"].map(|s| Some(s.to_owned()));
        assert_eq!(steps, expected);
        assert_eq!(reads.load(Ordering::Relaxed), 2);
        queue.close();
    }

    #[test]
    fn a_record_too_large_for_a_ring_follows_the_ones_before_it() {
        let host = Arc::new(SlowHost::default());
        let queue = LogQueue::start(HostHandle::new(context_for(&host)), MetricsSoFar::default()).unwrap();
        let huge = "x".repeat(RING_BYTES / 2);
        message(&queue, 0, "before");
        message(&queue, 0, &huge);
        message(&queue, 0, "after");
        queue.flush();
        let seen = messages(&host);
        assert_eq!(seen.len(), 3);
        assert_eq!(
            (seen[0].as_str(), seen[1].len(), seen[2].as_str()),
            ("before", huge.len(), "after")
        );
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
