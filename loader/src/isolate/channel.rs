//! The parent's end of the event channel: reads the child's events (one
//! line each on the channel's own socket: a user event as a
//! [frame](crate::events::frame), any other as its JSON line) and
//! passes them on in batches, waiting while the sinks take each batch, so
//! a child that reports faster than the sinks write is slowed down instead
//! of filling memory. An event longer than the size limit is skipped as it streams
//! by (never held whole) and replaced by an `event_too_large` note.
//!
//! A `client-request` line is not an event: it goes to the run's client
//! proxy (see `isolate::proxy`), which makes the call and answers the
//! child; such a line may be longer than an event, up to the calls' own
//! limit.
//!
//! The sinks are flushed once the channel pauses ([`QUIET`]), and at
//! least every [`MAX_HOLD`] while events keep coming: a reader of the
//! stream sees an event within milliseconds, and a flood of events reaches
//! an events file in whole, aligned chunks instead of a write per batch.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::json;

use super::bounded_lines::{Arrival, Lines, Piece};
use super::client_wire::{MAX_CLIENT_MESSAGE_BYTES, REQUEST_PREFIX};
use super::proxy::ClientProxy;
use super::{RelayTarget, Relayed, AS_DESCRIBED_LINE, NOT_AS_DESCRIBED_LINE};
use crate::events::{frame, jsonl, Event, EventKind, Level};

/// The default limit on one event, in bytes of its JSON line.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// The most events sent in one batch.
const BATCH: usize = 256;

/// The piece size lines are read in; a longer event is gathered from pieces.
const PIECE: usize = 64 * 1024;

/// How much of an oversized event is kept to say what it was.
const OVERSIZED_PREFIX: usize = 1024;

/// How long the channel stays silent before the sinks are flushed: the
/// child's writer sends the batches of a flood closer together than this.
pub const QUIET: Duration = Duration::from_micros(500);

/// The longest events are held unflushed while more keep coming.
pub const MAX_HOLD: Duration = Duration::from_millis(4);

/// The longest client call line: its prefix and its JSON.
const CALL_LINE_LIMIT: usize = REQUEST_PREFIX.len() + MAX_CLIENT_MESSAGE_BYTES;

/// An event line being gathered from pieces.
#[derive(Default)]
struct Gathering {
    bytes: Vec<u8>,
    /// Bytes of a line found too long, of which only a prefix is kept.
    oversized: u64,
    /// The line is a client call (its limit is the calls' own).
    call: bool,
}

impl Gathering {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.oversized == 0
    }
}

/// Reads the channel to its end, passing on batches of events (and
/// [`Relayed::TerminalTooLarge`] when the result itself was too large),
/// then [`Relayed::ChannelClosed`]. With `verdict`, the child's first line
/// is its verdict on the library it was asked to expect:
/// [`Relayed::AsDescribed`] or [`Relayed::NotAsDescribed`] is sent. Only
/// the first line counts: once the action runs, it cannot forge a verdict.
/// Client calls go to `calls` (dropped with a warning without one).
pub fn relay_events(
    reader: impl Read + Arrival,
    max_event_bytes: usize,
    verdict: bool,
    queue: impl RelayTarget,
    calls: Option<&std::sync::Arc<ClientProxy>>,
) {
    let mut lines = Lines::new(reader, PIECE.min(max_event_bytes.max(1)));
    let mut gathering = Gathering::default();
    let mut batch = Batch::default();
    let mut awaiting_verdict = verdict;
    loop {
        match lines.next() {
            Ok(Piece::Part(part)) => {
                awaiting_verdict = false;
                if gathering.is_empty() {
                    gathering.call = part.starts_with(REQUEST_PREFIX);
                }
                let limit = if gathering.call {
                    CALL_LINE_LIMIT
                } else {
                    max_event_bytes
                };
                gather(&mut gathering, part, limit)
            }
            Ok(Piece::Line(line)) if gathering.is_empty() && line.starts_with(REQUEST_PREFIX) => {
                awaiting_verdict = false;
                take_call(calls, &line[REQUEST_PREFIX.len()..], None);
            }
            Ok(Piece::Line(line)) if gathering.call => {
                gather(&mut gathering, line, CALL_LINE_LIMIT);
                let done = std::mem::take(&mut gathering);
                let oversized = (done.oversized > 0).then_some(done.oversized);
                take_call(
                    calls,
                    &done.bytes[REQUEST_PREFIX.len().min(done.bytes.len())..],
                    oversized,
                );
            }
            Ok(Piece::Line(line)) => {
                if std::mem::take(&mut awaiting_verdict) && gathering.bytes.is_empty() {
                    match line {
                        l if l == AS_DESCRIBED_LINE.as_bytes() => {
                            if !queue.relay(Relayed::AsDescribed) {
                                return;
                            }
                            continue;
                        }
                        l if l == NOT_AS_DESCRIBED_LINE.as_bytes() => {
                            if !queue.relay(Relayed::NotAsDescribed) {
                                return;
                            }
                            continue;
                        }
                        _ => tracing::warn!("the isolated process did not begin with its verdict on the library"),
                    }
                }
                if gathering.bytes.is_empty() && gathering.oversized == 0 {
                    batch.push_line(line);
                } else {
                    gather(&mut gathering, line, max_event_bytes);
                    let done = std::mem::take(&mut gathering);
                    if done.oversized == 0 {
                        batch.push_line(&done.bytes);
                    } else {
                        let (note, terminal) = too_large(&done.bytes, done.oversized, max_event_bytes);
                        batch.push(note);
                        if let Some(kind) = terminal {
                            let bytes = done.oversized;
                            if !batch.send(&queue) || !queue.relay(Relayed::TerminalTooLarge { kind, bytes }) {
                                return;
                            }
                        }
                    }
                }
                // A closed queue is noticed at the next send.
                if batch.len >= BATCH {
                    batch.send(&queue);
                }
            }
            Ok(Piece::Idle) => {
                if !batch.send(&queue) {
                    return;
                }
                batch.flush_when_quiet(&lines, &queue);
            }
            Ok(Piece::End) | Err(_) => break,
        }
    }
    if batch.send(&queue) {
        queue.flush();
        queue.relay(Relayed::ChannelClosed);
    }
}

/// Hands a client call's line (its JSON: whole, or the kept beginning of
/// one of `oversized` bytes) to the proxy.
fn take_call(calls: Option<&std::sync::Arc<ClientProxy>>, json: &[u8], oversized: Option<u64>) {
    match (calls, oversized) {
        (Some(calls), None) => calls.take_line(json),
        (Some(calls), Some(bytes)) => calls.take_oversized(json, bytes),
        (None, _) => tracing::warn!("the isolated process made a client call, but this run offers no client"),
    }
}

/// The events read since the last batch was passed on. The events of a
/// batch stay here once passed on (by reference), and the next batch's
/// frames are read into them: their text allocations are reused instead of
/// being made and freed for every event.
#[derive(Default)]
struct Batch {
    events: Vec<Event>,
    /// How many of `events` are read and not passed on yet.
    len: usize,
    /// When the oldest event passed on and not flushed yet was passed on.
    unflushed_since: Option<Instant>,
}

impl Batch {
    /// Reads `line` (a frame or a JSON line) into the batch; a line that is
    /// not an event is skipped with a warning.
    fn push_line(&mut self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let read = if line.first() == Some(&frame::FRAME_START) {
            match self.events.get_mut(self.len) {
                Some(reused) => frame::read_into(line, reused),
                None => frame::read(line).map(|event| self.events.push(event)),
            }
            .map_err(|e| e.to_string())
        } else {
            std::str::from_utf8(line)
                .map_err(|e| e.to_string())
                .and_then(|text| jsonl::parse_line_raw(text).map_err(|e| e.to_string()))
                .map(|(_, event)| self.put(event))
        };
        match read {
            Ok(()) => self.len += 1,
            Err(e) => tracing::warn!("the isolated process sent a line that is not an event ({e})"),
        }
    }

    fn push(&mut self, event: Event) {
        self.put(event);
        self.len += 1;
    }

    /// Places `event` at the end of the batch (not counted yet).
    fn put(&mut self, event: Event) {
        match self.events.get_mut(self.len) {
            Some(slot) => *slot = event,
            None => self.events.push(event),
        }
    }

    /// Passes on the events read (if any); false when the queue is closed.
    fn send(&mut self, queue: &impl RelayTarget) -> bool {
        let len = std::mem::take(&mut self.len);
        if len == 0 {
            return true;
        }
        self.unflushed_since.get_or_insert_with(Instant::now);
        queue.relay_events(&self.events[..len])
    }

    /// Flushes the sinks if events were passed on since the last flush and
    /// either the channel stays silent for [`QUIET`] (waiting that long at
    /// most) or they have been held for [`MAX_HOLD`].
    fn flush_when_quiet(&mut self, lines: &Lines<impl Read + Arrival>, queue: &impl RelayTarget) {
        let Some(since) = self.unflushed_since else {
            return;
        };
        let held = since.elapsed();
        if held >= MAX_HOLD || !lines.more_within(QUIET.min(MAX_HOLD - held)) {
            queue.flush();
            self.unflushed_since = None;
        }
    }
}

fn gather(gathering: &mut Gathering, piece: &[u8], max_event_bytes: usize) {
    if gathering.oversized > 0 {
        gathering.oversized += piece.len() as u64;
        return;
    }
    if gathering.bytes.len() + piece.len() > max_event_bytes {
        gathering.oversized = (gathering.bytes.len() + piece.len()) as u64;
        let keep = OVERSIZED_PREFIX.saturating_sub(gathering.bytes.len()).min(piece.len());
        gathering.bytes.extend_from_slice(&piece[..keep]);
        gathering.bytes.truncate(OVERSIZED_PREFIX);
        gathering.bytes.shrink_to(OVERSIZED_PREFIX);
        return;
    }
    gathering.bytes.extend_from_slice(piece);
}

/// The note replacing an event of `bytes` bytes beginning with `prefix`,
/// and the event's kind when it was the run's result or error.
fn too_large(prefix: &[u8], bytes: u64, limit: usize) -> (Event, Option<EventKind>) {
    let (kind, name) = if prefix.first() == Some(&frame::FRAME_START) {
        (Some(EventKind::Event), frame::name_in_prefix(prefix))
    } else {
        let kind = string_field(prefix, "kind").and_then(|k| k.parse::<EventKind>().ok());
        (kind, string_field(prefix, "event"))
    };
    let what = match (&kind, &name) {
        (Some(kind), Some(name)) => format!("a {kind} event ({name:?})"),
        _ => "an event".to_owned(),
    };
    let note = Event::new(
        EventKind::Event,
        "event_too_large",
        Level::Warning,
        json!({
            "message": format!("{what} of {bytes} bytes was dropped: events are limited to {limit} bytes (--max-event-bytes)"),
            "kind": kind.map(|k| k.as_str()),
            "event": name,
            "bytes": bytes,
            "limit": limit,
        }),
    );
    let terminal = kind.filter(|k| matches!(k, EventKind::Result | EventKind::Error));
    (note, terminal)
}

/// The value of `"field":"value"` in the beginning of a JSON line, when it
/// is a plain string without escapes.
fn string_field(prefix: &[u8], field: &str) -> Option<String> {
    let text = String::from_utf8_lossy(prefix);
    let key = format!("\"{field}\":\"");
    let start = text.find(&key)? + key.len();
    let rest = &text[start..];
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes()[end] == b'"').then(|| rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{LineWriter, RunInfo};
    use crate::isolate::channel_sink::write_event;
    use std::sync::mpsc::sync_channel;

    /// What the child's sink writes for `events`.
    fn lines_of(events: &[Event]) -> Vec<u8> {
        let (mut out, mut lines) = (Vec::new(), LineWriter::default());
        let run = RunInfo::new("demo", "train");
        for event in events {
            write_event(&mut out, &mut lines, &run, event);
        }
        out
    }

    fn relayed(input: &[u8], limit: usize) -> (Vec<Event>, Vec<(EventKind, u64)>) {
        let (sender, receiver) = sync_channel(1_000_000);
        relay_events(input, limit, false, sender, None);
        let (mut events, mut terminal) = (Vec::new(), Vec::new());
        for message in receiver.iter() {
            match message {
                Relayed::Events(batch) => events.extend(batch),
                Relayed::TerminalTooLarge { kind, bytes } => terminal.push((kind, bytes)),
                Relayed::ChannelClosed => break,
                _ => panic!("unexpected message"),
            }
        }
        (events, terminal)
    }

    /// Records what the reader passes on and when it flushes.
    #[derive(Clone, Default)]
    struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>);

    impl RelayTarget for Recorder {
        fn relay(&self, message: Relayed) -> bool {
            let note = match message {
                Relayed::ChannelClosed => "closed",
                _ => "other",
            };
            self.0.lock().unwrap().push(note);
            true
        }

        fn relay_events(&self, events: &[Event]) -> bool {
            self.0.lock().unwrap().extend(events.iter().map(|_| "event"));
            true
        }

        fn flush(&self) {
            self.0.lock().unwrap().push("flush");
        }
    }

    #[test]
    fn the_sinks_are_flushed_once_the_channel_pauses_and_while_a_flood_goes_on() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let (mut child, parent) = UnixStream::pair().unwrap();
        let recorder = Recorder::default();
        let reader = {
            let recorder = recorder.clone();
            std::thread::spawn(move || relay_events(parent, DEFAULT_MAX_EVENT_BYTES, false, recorder, None))
        };
        let notes = || recorder.0.lock().unwrap().clone();
        child.write_all(&lines_of(&[Event::user("first", json!({}))])).unwrap();
        let start = Instant::now();
        while notes() != ["event", "flush"] {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no flush after a pause: {:?}",
                notes()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // A flood: events keep coming without a pause for 200 ms.
        let flood = lines_of(&[Event::user("tick", json!({"i": 1}))]);
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(200) {
            child.write_all(&flood).unwrap();
        }
        drop(child);
        reader.join().unwrap();
        let notes = notes();
        let flushes = notes.iter().filter(|n| **n == "flush").count();
        assert!(
            flushes >= 3,
            "flushed at least every {MAX_HOLD:?} of the flood: {flushes}"
        );
        assert!(
            flushes < notes.len() / 10,
            "not a flush per batch: {flushes} for {} notes",
            notes.len()
        );
        assert_eq!(notes[notes.len() - 2..], ["flush", "closed"], "flushed at the end");
    }

    #[test]
    fn events_come_through_in_order() {
        let sent: Vec<Event> = (0..1000).map(|i| Event::user("tick", json!({ "i": i }))).collect();
        let (events, _) = relayed(&lines_of(&sent), DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(events.len(), 1000);
        let last = &events[999];
        assert_eq!(
            last.raw_data.as_ref().map(|raw| raw.get()),
            Some(r#"{"i":999}"#),
            "a user event's data is passed on as its text"
        );
        assert_eq!(last.with_parsed_data().data["i"], 999);
    }

    #[test]
    fn an_event_over_the_limit_becomes_a_note_and_the_next_ones_still_come() {
        let big = "x".repeat(300_000);
        let sent = [
            Event::user("small", json!(1)),
            Event::user("huge", json!({ "blob": big })),
            Event::user("after", json!(2)),
        ];
        let (events, terminal) = relayed(&lines_of(&sent), 100_000);
        let names: Vec<_> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names, ["small", "event_too_large", "after"]);
        let note = &events[1].data;
        assert_eq!(note["event"], "huge");
        assert_eq!(note["kind"], "event");
        assert_eq!(note["limit"], 100_000);
        assert!(note["bytes"].as_u64().unwrap() > 300_000);
        assert!(terminal.is_empty());
    }

    #[test]
    fn a_result_over_the_limit_is_reported_as_such() {
        let sent = [Event::result(json!({ "blob": "y".repeat(5000) }))];
        let (events, terminal) = relayed(&lines_of(&sent), 1000);
        assert_eq!(events[0].event, "event_too_large");
        assert_eq!(terminal.len(), 1);
        assert_eq!(terminal[0].0, EventKind::Result);
    }

    /// The verdicts and events relayed from `input`, read with a verdict due.
    fn with_verdict(input: &[u8], verdict: bool) -> (usize, Vec<String>) {
        let (sender, receiver) = sync_channel(1_000_000);
        relay_events(input, DEFAULT_MAX_EVENT_BYTES, verdict, sender, None);
        let (mut not_as_described, mut names) = (0, Vec::new());
        for message in receiver.iter() {
            match message {
                Relayed::NotAsDescribed => not_as_described += 1,
                Relayed::AsDescribed => {}
                Relayed::Events(batch) => names.extend(batch.into_iter().map(|e| e.event)),
                Relayed::ChannelClosed => break,
                _ => panic!("unexpected message"),
            }
        }
        (not_as_described, names)
    }

    #[test]
    fn only_a_first_line_is_a_verdict_and_only_when_one_is_due() {
        let event = lines_of(&[Event::user("ok", json!(1))]);
        let line = |text: &str| [text.as_bytes(), b"\n", &event].concat();
        assert_eq!(with_verdict(&line(AS_DESCRIBED_LINE), true), (0, vec!["ok".to_owned()]));
        assert_eq!(
            with_verdict(&line(NOT_AS_DESCRIBED_LINE), true),
            (1, vec!["ok".to_owned()])
        );
        assert_eq!(
            with_verdict(&line(NOT_AS_DESCRIBED_LINE), false),
            (0, vec!["ok".to_owned()])
        );
        let late = [&event[..], NOT_AS_DESCRIBED_LINE.as_bytes(), b"\n"].concat();
        assert_eq!(
            with_verdict(&late, true),
            (0, vec!["ok".to_owned()]),
            "after an event, a verdict is forged"
        );
    }

    #[test]
    fn garbage_is_skipped() {
        let mut input = b"not json\n\xff\xfe\n\n\x1e1.0\x1finfo\x1fforged\x1f-\x1f-\x1f{\"a\":1}}\n".to_vec();
        input.extend(lines_of(&[
            Event::user("ok", json!(1)),
            Event::user("framed", json!({"i": 1})),
        ]));
        let (events, _) = relayed(&input, DEFAULT_MAX_EVENT_BYTES);
        let names: Vec<_> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names, ["ok", "framed"]);
    }

    #[test]
    fn events_read_into_reused_ones_keep_nothing_of_earlier_batches() {
        // Five kinds, so that a batch's slot holds another kind in the next
        // batch (256 is not a multiple of 5): frames and JSON lines.
        let sent: Vec<Event> = (0..3 * BATCH)
            .map(|i| match i % 5 {
                0 => Event::user("with step", json!({ "i": i }))
                    .with_step("train")
                    .with_file("/f"),
                1 => Event::user("plain", json!({ "i": i })),
                2 => Event::message(Level::Warning, format!("message {i}")),
                3 => Event::user("not an object", json!([i])),
                _ => Event::user("debug", json!({ "i": i, "pad": "x".repeat(i) })).with_level(Level::Debug),
            })
            .collect();
        let (events, _) = relayed(&lines_of(&sent), DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(events.len(), sent.len());
        for (got, want) in events.iter().zip(&sent) {
            let got = got.with_parsed_data();
            assert_eq!(
                (&got.event, &got.step, &got.file, got.level),
                (&want.event, &want.step, &want.file, want.level)
            );
            assert_eq!(got.data, want.data);
        }
    }

    #[test]
    fn user_events_cross_as_frames_and_come_out_as_they_went_in() {
        let sent = [
            Event::user("tick", json!({"i": 1}))
                .with_step("train")
                .with_level(Level::Debug),
            Event::user("no frame", json!([1])),
            Event::result(json!({"done": true})),
        ];
        let input = lines_of(&sent);
        let first_line = input.split(|&b| b == b'\n').next().unwrap();
        assert_eq!(first_line.first(), Some(&frame::FRAME_START));
        let (events, _) = relayed(&input, DEFAULT_MAX_EVENT_BYTES);
        let parsed: Vec<Event> = events.iter().map(|e| e.with_parsed_data().into_owned()).collect();
        let micros = |e: &Event| crate::events::time::unix_parts(e.time);
        assert_eq!(parsed[0], sent[0], "a frame keeps the time to the nanosecond");
        for (got, want) in parsed[1..].iter().zip(&sent[1..]) {
            assert_eq!(
                (micros(got), &got.event, &got.data),
                (micros(want), &want.event, &want.data)
            );
        }
    }
}
