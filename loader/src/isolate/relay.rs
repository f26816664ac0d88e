//! Where the readers of an isolated child deliver: straight into the run's
//! sinks, on the reader's own thread, so a batch is written before the next
//! one is read: the back-pressure that keeps the loader's memory bounded.
//! A batch of the child's output is flushed at once; the event channel's
//! reader flushes its batches once the child pauses (see
//! `isolate::channel`), so that a flood reaches the sinks' writers in large
//! writes. The run's result or error is kept aside for the supervisor,
//! which decides the outcome; once the supervisor closes the relay,
//! nothing more reaches the sinks, whatever a process still holding the
//! child's pipes writes.

use std::borrow::Cow;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use super::{RelayTarget, Relayed};
use crate::events::{deliver, Event, EventKind, EventSink, RunInfo};

/// What the child reported as its outcome.
#[derive(Default)]
pub struct Terminal {
    /// The first `result` or `error` event from the channel.
    pub event: Option<Event>,
    /// The outcome was too large to relay: its kind and size.
    pub too_large: Option<(EventKind, u64)>,
}

#[derive(Default)]
struct State {
    closed: bool,
    terminal: Terminal,
}

/// The relay of one run, shared by its reader threads.
pub struct SinkRelay {
    run: RunInfo,
    sink: Arc<dyn EventSink>,
    /// The sink's [`EventSink::takes_raw_data`], asked once.
    takes_raw_data: bool,
    state: Mutex<State>,
    /// Stream ends and the child's exit, for the supervisor.
    notices: Mutex<Sender<Relayed>>,
}

impl SinkRelay {
    pub fn new(run: RunInfo, sink: Arc<dyn EventSink>, notices: Sender<Relayed>) -> Self {
        SinkRelay {
            run,
            takes_raw_data: sink.takes_raw_data(),
            sink,
            state: Mutex::new(State::default()),
            notices: Mutex::new(notices),
        }
    }

    /// Stops relaying and returns the outcome the child reported.
    pub fn close(&self) -> Terminal {
        let mut state = crate::events::lock(&self.state);
        state.closed = true;
        self.sink.flush();
        std::mem::take(&mut state.terminal)
    }

    fn notify(&self, message: Relayed) -> bool {
        crate::events::lock(&self.notices).send(message).is_ok()
    }
}

impl SinkRelay {
    /// Delivers `events` to the sinks, keeping the first outcome aside,
    /// and flushes the sinks if `flush`.
    fn deliver_all<'a>(&self, events: impl IntoIterator<Item = Cow<'a, Event>>, flush: bool) -> bool {
        let mut state = crate::events::lock(&self.state);
        if state.closed {
            return false;
        }
        for event in events {
            if matches!(event.kind, EventKind::Result | EventKind::Error) {
                let terminal = &mut state.terminal;
                if terminal.event.is_none() && terminal.too_large.is_none() {
                    terminal.event = Some(event.into_owned());
                } else {
                    tracing::warn!("the isolated process reported a second outcome; it was ignored");
                }
            } else if self.takes_raw_data || event.raw_data.is_none() {
                self.sink.emit(&self.run, &event);
            } else {
                deliver(&self.sink, &self.run, &event);
            }
        }
        if flush {
            self.sink.flush();
        }
        true
    }
}

impl RelayTarget for Arc<SinkRelay> {
    fn relay(&self, message: Relayed) -> bool {
        match message {
            Relayed::Events(events) => self.deliver_all(events.into_iter().map(Cow::Owned), true),
            Relayed::TerminalTooLarge { kind, bytes } => {
                let mut state = crate::events::lock(&self.state);
                if state.closed {
                    return false;
                }
                if state.terminal.event.is_none() {
                    state.terminal.too_large = Some((kind, bytes));
                }
                true
            }
            notice => {
                let closed = crate::events::lock(&self.state).closed;
                !closed && self.notify(notice)
            }
        }
    }

    fn relay_events(&self, events: &[Event]) -> bool {
        self.deliver_all(events.iter().map(Cow::Borrowed), false)
    }

    fn flush(&self) {
        let state = crate::events::lock(&self.state);
        if !state.closed {
            self.sink.flush();
        }
    }
}
