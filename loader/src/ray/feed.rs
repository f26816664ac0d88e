//! What a run on the cluster says, in order and each part once, from two
//! sources that carry the same lines: the direct line from the job's
//! driver ([`listen`](super::listen); immediate, where the cluster can
//! reach this machine) and the job's log ([`log`](super::log); always
//! there, a second or two behind, among Ray's own lines).
//!
//! The parts that matter (the caller says which lines are items: events,
//! the driver's records) come in the same order on both, so the n-th item
//! of either source is the same item: it is taken from whichever source
//! brings it first and skipped when the other brings it again. Either
//! source may end early; the log, read to its end once the job is over,
//! has everything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::api::{JobInfo, JobsApi, RayError};
use super::listen::{Direct, Listener};
use super::log::JobLog;

/// How often the job's state is read (and its whole log, when it is
/// polled rather than streamed).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Direct,
    Log,
}

/// What the reading threads hand over.
enum Delivery {
    Line(Source, String),
    DirectEnded(String),
    /// The job is over and its log was read to the end (or as far as
    /// needed), or reading it failed.
    LogEnded(Result<JobInfo, RayError>),
}

/// The next thing a run said.
#[derive(Debug)]
pub enum Said<T> {
    /// The next item, in order, the first time it came.
    Item(T),
    /// A line of the log that is no item (Ray's own, the driver's notes).
    Other(String),
    /// Nothing new within the wait.
    Quiet,
    /// The job ended, and everything its log holds has been handed over.
    JobEnded(JobInfo),
    /// The cluster could not be asked about the job.
    Lost(RayError),
}

/// Counts the items of each source and lets each through once.
#[derive(Debug, Default)]
struct Order {
    direct: usize,
    log: usize,
    next: usize,
}

impl Order {
    /// Whether the item that `source` brings now is new.
    fn take(&mut self, source: Source) -> bool {
        let count = match source {
            Source::Direct => &mut self.direct,
            Source::Log => &mut self.log,
        };
        let ordinal = *count;
        *count += 1;
        if ordinal == self.next {
            self.next += 1;
            true
        } else {
            false
        }
    }
}

/// The lines of one job, from both sources.
pub struct Feed {
    deliveries: Receiver<Delivery>,
    order: Order,
    done: Arc<AtomicBool>,
    direct_connected: bool,
}

impl Feed {
    /// Starts reading job `id`'s log, and the direct line when there is
    /// a listener, each on a thread of its own (they stop at the next look
    /// once [`Feed`] is dropped).
    pub fn start(api: &JobsApi, id: &str, listener: Option<Listener>) -> Self {
        let (sender, deliveries) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        if let Some(listener) = listener {
            let (direct_sender, direct) = mpsc::channel();
            listener.spawn(direct_sender, done.clone());
            let sender = sender.clone();
            std::thread::spawn(move || forward_direct(&direct, &sender));
        }
        let (api, id, log_done) = (api.clone(), id.to_owned(), done.clone());
        std::thread::spawn(move || read_log(&api, &id, &sender, &log_done));
        Feed {
            deliveries,
            order: Order::default(),
            done,
            direct_connected: false,
        }
    }

    /// Waits at most `wait` for what the run says next; `item` says which
    /// lines are items (the same on both sources), and parses them.
    pub fn next<T>(&mut self, wait: Duration, item: impl Fn(&str) -> Option<T>) -> Said<T> {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let delivery = match self.deliveries.recv_timeout(left) {
                Ok(delivery) => delivery,
                Err(RecvTimeoutError::Timeout) => return Said::Quiet,
                Err(RecvTimeoutError::Disconnected) => {
                    return Said::Lost(RayError::BadAnswer {
                        what: "the job's log".into(),
                        reason: "its reader stopped".into(),
                    })
                }
            };
            match delivery {
                Delivery::Line(source, line) => {
                    if source == Source::Direct && !self.direct_connected {
                        self.direct_connected = true;
                    }
                    match item(&line) {
                        Some(parsed) if self.order.take(source) => return Said::Item(parsed),
                        Some(_) => {}
                        None if source == Source::Log => return Said::Other(line),
                        None => {}
                    }
                }
                Delivery::DirectEnded(reason) => {
                    tracing::debug!("ray: the direct line from the driver ended ({reason}); the job log serves");
                }
                Delivery::LogEnded(Ok(info)) => return Said::JobEnded(info),
                Delivery::LogEnded(Err(e)) => return Said::Lost(e),
            }
        }
    }

    /// Whether anything came over the direct line.
    pub fn direct_connected(&self) -> bool {
        self.direct_connected
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

fn forward_direct(direct: &Receiver<Direct>, sender: &Sender<Delivery>) {
    for said in direct {
        let delivery = match said {
            Direct::Line(line) => Delivery::Line(Source::Direct, line),
            Direct::Ended(reason) => Delivery::DirectEnded(reason),
        };
        if sender.send(delivery).is_err() {
            return;
        }
    }
}

/// Reads the job's log as it grows until the job is over (then to its
/// end, unless the reader has all it needs) or until `done`.
fn read_log(api: &JobsApi, id: &str, sender: &Sender<Delivery>, done: &AtomicBool) {
    let mut log = JobLog::open(api, id);
    let mut hand = |line: String| {
        let _ = sender.send(Delivery::Line(Source::Log, line));
        done.load(Ordering::SeqCst)
    };
    let ended = loop {
        if done.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = log.read_until(Instant::now() + POLL_INTERVAL, &mut hand) {
            break Err(e);
        }
        if done.load(Ordering::SeqCst) {
            return;
        }
        match api.status(id) {
            Ok(info) if info.status.is_terminal() => {
                break log.read_rest(done.load(Ordering::SeqCst), &mut hand).map(|()| info);
            }
            Ok(_) => log.job_is_running(),
            Err(e) => break Err(e),
        }
    };
    let _ = sender.send(Delivery::LogEnded(ended));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_passes_once_in_order_whichever_source_brings_it_first() {
        let mut order = Order::default();
        // The direct line brings items 0 and 1, then breaks; the log, behind,
        // brings 0 to 3.
        assert!(order.take(Source::Direct));
        assert!(order.take(Source::Direct));
        assert!(!order.take(Source::Log));
        assert!(!order.take(Source::Log));
        assert!(order.take(Source::Log));
        assert!(order.take(Source::Log));
        assert_eq!(order.next, 4);
    }

    #[test]
    fn a_source_that_starts_late_is_skipped_until_it_catches_up() {
        let mut order = Order::default();
        for _ in 0..3 {
            assert!(order.take(Source::Log));
        }
        let direct: Vec<bool> = (0..5).map(|_| order.take(Source::Direct)).collect();
        assert_eq!(direct, [false, false, false, true, true]);
        assert!(!order.take(Source::Log) && !order.take(Source::Log));
        assert!(order.take(Source::Log));
    }
}
