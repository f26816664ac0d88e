//! Relays what an isolated plugin prints on its stdout and stderr as
//! `output` events: one event a line (`\n` ends a line), text decoded
//! lossily, lines longer than [`OutputLimits::line_cap`] split into pieces
//! marked `partial`, the beginning of a line shown as soon as the plugin
//! pauses, and at most a steady rate of lines with a burst allowance: lines
//! beyond it are dropped and counted in `output_dropped` notes (at most one
//! a second, and a last one when the stream ends). Whatever
//! the plugin prints, the relay holds a bounded number of bytes, and what
//! it prints is only ever output: it cannot end, fail or fake a run.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::json;

use super::bounded_lines::{Lines, Piece};
use super::{RelayTarget, Relayed};
use crate::events::{Event, EventKind, Level};

/// How much of a plugin's output is relayed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputLimits {
    /// The longest line, in bytes, relayed as one event.
    pub line_cap: usize,
    /// Lines relayed per second, per stream, in the long run.
    pub lines_per_second: f64,
    /// Lines relayed at once before the rate applies.
    pub burst: f64,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            line_cap: 4096,
            lines_per_second: 500.0,
            burst: 1000.0,
        }
    }
}

/// Which of the child's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The `output` event of one line (or piece of one) of a stream.
pub fn output_event(stream: Stream, bytes: &[u8], partial: bool) -> Event {
    let text = String::from_utf8_lossy(bytes);
    Event::new(
        EventKind::Output,
        "output",
        Level::Info,
        json!({ "stream": stream.as_str(), "text": text, "partial": partial }),
    )
}

/// The note saying how much output was dropped.
fn dropped_event(stream: Stream, lines: u64, bytes: u64, limits: &OutputLimits) -> Event {
    Event::new(
        EventKind::Output,
        "output_dropped",
        Level::Warning,
        json!({
            "stream": stream.as_str(),
            "lines": lines,
            "bytes": bytes,
            "message": format!(
                "{lines} line(s) ({bytes} bytes) of {} dropped: the plugin printed more than {} lines a second",
                stream.as_str(),
                limits.lines_per_second
            ),
        }),
    )
}

/// A token bucket: `burst` lines at once, refilled at the steady rate.
struct Rate {
    tokens: f64,
    last: Instant,
    limits: OutputLimits,
}

impl Rate {
    fn new(limits: OutputLimits) -> Self {
        Rate {
            tokens: limits.burst,
            last: Instant::now(),
            limits,
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.limits.lines_per_second;
        self.tokens = (self.tokens + refill).min(self.limits.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the relay of one stream has collected but not yet sent.
struct Relay {
    stream: Stream,
    limits: OutputLimits,
    rate: Rate,
    batch: Vec<Event>,
    dropped_lines: u64,
    dropped_bytes: u64,
    last_note: Option<Instant>,
}

/// The most events sent in one batch.
const BATCH: usize = 256;

/// The least time between two notes of dropped output (the last one comes
/// when the stream ends).
const NOTE_INTERVAL: Duration = Duration::from_secs(1);

impl Relay {
    fn piece(&mut self, bytes: &[u8], partial: bool) {
        if !self.rate.allow() {
            self.dropped_lines += u64::from(!partial);
            self.dropped_bytes += bytes.len() as u64;
            return;
        }
        if self.last_note.is_none_or(|at| at.elapsed() >= NOTE_INTERVAL) {
            self.note_dropped();
        }
        self.batch.push(output_event(self.stream, bytes, partial));
    }

    /// Says how much was dropped since the last note, if anything.
    fn note_dropped(&mut self) {
        if self.dropped_bytes > 0 {
            self.last_note = Some(Instant::now());
            let note = dropped_event(self.stream, self.dropped_lines, self.dropped_bytes, &self.limits);
            self.batch.push(note);
            (self.dropped_lines, self.dropped_bytes) = (0, 0);
        }
    }

    /// Sends the batch; false when nobody listens any more.
    fn send(&mut self, queue: &impl RelayTarget) -> bool {
        self.batch.is_empty() || queue.relay(Relayed::Events(std::mem::take(&mut self.batch)))
    }
}

/// Reads `reader` (the child's `stream`) to its end, sending `output`
/// events to `queue` in batches (waiting while the sinks take each), then
/// [`Relayed::OutputClosed`].
pub(crate) fn relay_output(reader: impl Read, stream: Stream, limits: OutputLimits, queue: impl RelayTarget) {
    let mut lines = Lines::new(reader, limits.line_cap);
    let mut relay = Relay {
        stream,
        limits,
        rate: Rate::new(limits),
        batch: Vec::new(),
        dropped_lines: 0,
        dropped_bytes: 0,
        last_note: None,
    };
    loop {
        match lines.next() {
            Ok(Piece::Line(line)) => relay.piece(line, false),
            Ok(Piece::Part(part)) => relay.piece(part, true),
            Ok(Piece::Idle) => {
                if let Some(beginning) = lines.take_pending() {
                    relay.piece(&beginning, true);
                }
                if !relay.send(&queue) {
                    return;
                }
                continue;
            }
            Ok(Piece::End) | Err(_) => break,
        }
        if relay.batch.len() >= BATCH && !relay.send(&queue) {
            return;
        }
    }
    relay.note_dropped();
    if relay.send(&queue) {
        queue.relay(Relayed::OutputClosed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    /// Relays `input` and returns the events.
    fn relayed(input: &[u8], limits: OutputLimits) -> Vec<Event> {
        let (sender, receiver) = sync_channel(1_000_000);
        relay_output(input, Stream::Stdout, limits, sender);
        let mut events = Vec::new();
        for message in receiver.iter() {
            match message {
                Relayed::Events(batch) => events.extend(batch),
                Relayed::OutputClosed => break,
                _ => panic!("unexpected message"),
            }
        }
        events
    }

    #[test]
    fn lines_become_output_events_decoded_lossily() {
        let events = relayed(b"bad \xff\xfe bytes\n\r50%", OutputLimits::default());
        let texts: Vec<_> = events
            .iter()
            .map(|e| e.data["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(texts, ["bad \u{fffd}\u{fffd} bytes", "\r50%"]);
        assert!(events
            .iter()
            .all(|e| e.kind == EventKind::Output && e.data["stream"] == "stdout"));
        assert_eq!(events[0].data["partial"], false);
        assert_eq!(
            events[1].data["partial"], true,
            "the line had not ended when it was relayed"
        );
    }

    #[test]
    fn a_long_line_is_split_into_partial_pieces() {
        let limits = OutputLimits {
            line_cap: 4,
            ..OutputLimits::default()
        };
        let events = relayed(b"abcdefghij\n", limits);
        let pieces: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.data["text"].as_str().unwrap().to_owned(),
                    e.data["partial"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            pieces,
            [("abcd".into(), true), ("efgh".into(), true), ("ij".into(), false)]
        );
    }

    #[test]
    fn lines_beyond_the_rate_are_dropped_and_counted() {
        let limits = OutputLimits {
            line_cap: 100,
            lines_per_second: 0.001,
            burst: 3.0,
        };
        let events = relayed(b"1\n2\n3\n4\n5\n", limits);
        let kept: Vec<_> = events.iter().filter(|e| e.event == "output").collect();
        assert_eq!(kept.len(), 3);
        let note = events.last().unwrap();
        assert_eq!(note.event, "output_dropped");
        assert_eq!(note.level, Level::Warning);
        assert_eq!(
            (note.data["lines"].as_u64(), note.data["bytes"].as_u64()),
            (Some(2), Some(2))
        );
    }

    #[test]
    fn gigabytes_without_a_newline_stay_bounded() {
        let limits = OutputLimits {
            line_cap: 1024,
            lines_per_second: 0.001,
            burst: 2.0,
        };
        let events = relayed(&vec![b'x'; 8 << 20], limits);
        assert_eq!(events.len(), 3, "two pieces and a note");
        assert_eq!(events[2].data["bytes"].as_u64(), Some((8 << 20) - 2048));
    }
}
