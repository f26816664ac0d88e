//! One queued call as a record in a thread's ring: what the call was, its
//! strings and its data's [tape](super::tape), the step it is attributed
//! to, and the tick count of the call. The log thread reads a record back
//! and writes the log entry's JSON text from it.
//!
//! Layout (little-endian): the ring's u32 length; the kind; the level
//! (0 for none, else 1 + its place in [`MessageLevel::ALL`]); flags (a
//! step, a file, data); a zero byte; the u64 tick count; then the step, if
//! any, and the kind's fields, each string or tape as a u32 length and its
//! bytes, each number as 8 bytes. Records are padded to [`ALIGN`].

use serde_json::value::RawValue;

use super::tape;
use crate::ffi::byte_ring::ALIGN;
use crate::log_entry::{write_event_entry_with, BorrowedEntry};
use crate::logger::MessageLevel;

/// What a queued call was, its strings borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum What<'a> {
    /// `log`: the data is the tape of a JSON object.
    Event {
        event: &'a str,
        data: &'a [u8],
        file: Option<&'a str>,
        level: Option<MessageLevel>,
    },
    /// `log_message`.
    Message { message: &'a str, level: MessageLevel },
    /// `log_dev_event`: the data's tape, if any.
    DevEvent { message: &'a str, data: Option<&'a [u8]> },
    /// `set_progress_failed`.
    ProgressFailed,
    /// A `set_progress` made while entries of the caller's thread were
    /// still queued, queued behind them so that it does not overtake them.
    Progress { current: u64, total: u64 },
    /// `set_metrics`: the tape of a JSON object, for the record's step.
    Metrics(&'a [u8]),
}

/// A call with data, before its data is recorded: [`What`] without the
/// tape.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DataCall<'a> {
    Event {
        event: &'a str,
        file: Option<&'a str>,
        level: Option<MessageLevel>,
    },
    /// `with_data`: the data is the dev event's (it may have none).
    DevEvent {
        message: &'a str,
        with_data: bool,
    },
    Metrics,
}

impl<'a> DataCall<'a> {
    /// The call, with `tape` as its data.
    #[inline]
    pub fn with_tape<'t>(self, tape: &'t [u8]) -> What<'t>
    where
        'a: 't,
    {
        match self {
            DataCall::Event { event, file, level } => What::Event {
                event,
                data: tape,
                file,
                level,
            },
            DataCall::DevEvent { message, with_data } => What::DevEvent {
                message,
                data: with_data.then_some(tape),
            },
            DataCall::Metrics => What::Metrics(tape),
        }
    }
}

const HEADER: usize = 16;
const HAS_STEP: u8 = 1;
const HAS_FILE: u8 = 2;
const HAS_DATA: u8 = 4;

#[inline]
fn level_byte(level: Option<MessageLevel>) -> u8 {
    level.map_or(0, |level| {
        1 + MessageLevel::ALL
            .iter()
            .position(|l| *l == level)
            .expect("every level is in ALL") as u8
    })
}

fn level_of(byte: u8) -> Option<MessageLevel> {
    byte.checked_sub(1).map(|i| MessageLevel::ALL[i as usize])
}

#[inline]
fn field(bytes: &[u8]) -> usize {
    4 + bytes.len()
}

/// The length of the record of `what` (padding included).
#[inline]
pub(crate) fn encoded_len(step: Option<&str>, what: &What<'_>) -> usize {
    let step = step.map_or(0, |s| field(s.as_bytes()));
    let fields = match *what {
        What::Event { event, data, file, .. } => {
            field(event.as_bytes()) + field(data) + file.map_or(0, |f| field(f.as_bytes()))
        }
        What::Message { message, .. } => field(message.as_bytes()),
        What::DevEvent { message, data } => field(message.as_bytes()) + data.map_or(0, field),
        What::ProgressFailed => 0,
        What::Progress { .. } => 16,
        What::Metrics(data) => field(data),
    };
    (HEADER + step + fields).next_multiple_of(ALIGN)
}

/// Writes the record (all but its first four bytes, the ring's length)
/// into `slot`, [`encoded_len`] bytes long.
#[inline]
pub(crate) fn encode(slot: &mut [u8], at: u64, step: Option<&str>, what: &What<'_>) {
    let (kind, level, mut flags) = match *what {
        What::Event { file, level, .. } => (0, level_byte(level), if file.is_some() { HAS_FILE } else { 0 }),
        What::Message { level, .. } => (1, level_byte(Some(level)), 0),
        What::DevEvent { data, .. } => (2, 0, if data.is_some() { HAS_DATA } else { 0 }),
        What::ProgressFailed => (3, 0, 0),
        What::Progress { .. } => (4, 0, 0),
        What::Metrics(_) => (5, 0, 0),
    };
    if step.is_some() {
        flags |= HAS_STEP;
    }
    slot[4..8].copy_from_slice(&[kind, level, flags, 0]);
    slot[8..16].copy_from_slice(&at.to_le_bytes());
    let mut rest = &mut slot[HEADER..];
    let mut put = |bytes: &[u8]| {
        let (len, tail) = std::mem::take(&mut rest).split_at_mut(4);
        len.copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        let (body, tail) = tail.split_at_mut(bytes.len());
        body.copy_from_slice(bytes);
        rest = tail;
    };
    if let Some(step) = step {
        put(step.as_bytes());
    }
    match *what {
        What::Event { event, data, file, .. } => {
            put(event.as_bytes());
            if let Some(file) = file {
                put(file.as_bytes());
            }
            put(data);
        }
        What::Message { message, .. } => put(message.as_bytes()),
        What::DevEvent { message, data } => {
            put(message.as_bytes());
            if let Some(data) = data {
                put(data);
            }
        }
        What::ProgressFailed => {}
        What::Progress { current, total } => {
            let (numbers, _) = rest.split_at_mut(16);
            numbers[..8].copy_from_slice(&current.to_le_bytes());
            numbers[8..].copy_from_slice(&total.to_le_bytes());
        }
        What::Metrics(data) => put(data),
    }
}

/// The tick count of a record's call.
pub(crate) fn tick_of(record: &[u8]) -> u64 {
    u64::from_le_bytes(record[8..16].try_into().expect("a record has a header"))
}

/// A record read back: the tick count of its call, its step and what it was.
pub(crate) fn decode(record: &[u8]) -> (u64, Option<&str>, What<'_>) {
    let [kind, level, flags, _] = record[4..8].try_into().expect("a record has a header");
    let at = tick_of(record);
    let mut rest = &record[HEADER..];
    let mut bytes = || {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
        let (body, tail) = tail.split_at(len);
        rest = tail;
        body
    };
    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("records hold the caller's &str")
    }
    let step = (flags & HAS_STEP != 0).then(|| text(bytes()));
    let what = match kind {
        0 => {
            let event = text(bytes());
            let file = (flags & HAS_FILE != 0).then(|| text(bytes()));
            What::Event {
                event,
                file,
                data: bytes(),
                level: level_of(level),
            }
        }
        1 => What::Message {
            message: text(bytes()),
            level: level_of(level).expect("a message has its level"),
        },
        2 => What::DevEvent {
            message: text(bytes()),
            data: (flags & HAS_DATA != 0).then(&mut bytes),
        },
        3 => What::ProgressFailed,
        4 => What::Progress {
            current: u64::from_le_bytes(rest[..8].try_into().expect("eight bytes")),
            total: u64::from_le_bytes(rest[8..16].try_into().expect("eight bytes")),
        },
        5 => What::Metrics(bytes()),
        other => unreachable!("no record is of kind {other}"),
    };
    (at, step, what)
}

/// Appends the JSON text of the log entry a record of `what` stands for
/// (any but `Progress` and `Metrics`), using `scratch` for its data's text.
pub(crate) fn write_entry(what: What<'_>, step: Option<&str>, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    match what {
        What::Event {
            event,
            data,
            file,
            level,
        } => write_event_entry_with(
            out,
            event,
            |out| tape::write_json(data, out),
            file,
            step,
            level.map(MessageLevel::as_str),
        ),
        What::Message { message, level } => BorrowedEntry::Message {
            message,
            level: level.as_str(),
            step,
        }
        .write(out),
        What::DevEvent { message, data } => {
            let data = data.map(|data| {
                scratch.clear();
                tape::write_json(data, scratch);
                std::str::from_utf8(scratch).expect("the tape's JSON text is UTF-8")
            });
            let data: Option<&RawValue> =
                data.map(|d| serde_json::from_str(d).expect("the tape's JSON text is one JSON value"));
            BorrowedEntry::DevEventText { message, data, step }.write(out)
        }
        What::ProgressFailed => BorrowedEntry::ProgressFailed { step }.write(out),
        What::Progress { .. } | What::Metrics(_) => unreachable!("handed over as they are"),
    }
}
