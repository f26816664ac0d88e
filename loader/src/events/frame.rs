//! The isolated child's compact line for a user event (a *frame*), which
//! its channel carries instead of the event's JSON line: the parent reads
//! it without parsing a JSON envelope or a date, and the bytes crossing the
//! channel are under a quarter of the JSON line's.
//!
//! ```text
//! RS time US level US event US step US file US data LF
//! ```
//!
//! `RS` (0x1E) opens a frame (a JSON line opens with `{`); `US` (0x1F)
//! separates its fields: the time in nanoseconds since the Unix epoch (16
//! hexadecimal digits, through the year 2554), the level's name,
//! the event's name, the step and the file (`-` when absent, `+` and the
//! text when present) and the data, a JSON object on one line. Names, steps
//! and files hold no control character, so no field holds `US` or a line
//! break; an event that does not fit (another kind, a string with a control
//! character, data that is not an object, a time before 1970) goes as its
//! JSON line. The parent reads a frame as untrusted input: every field is
//! checked, the data as JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{Event, EventKind, Level, RawData, UserEvent};

/// The byte that opens a frame.
pub const FRAME_START: u8 = 0x1e;

/// The byte between a frame's fields.
const SEPARATOR: u8 = 0x1f;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("a frame is not UTF-8")]
    NotUtf8,
    #[error("a frame has {0} fields, not 6")]
    Fields(usize),
    #[error("invalid frame time {0:?}")]
    Time(String),
    #[error("invalid frame level {0:?}")]
    Level(String),
    #[error("invalid frame {0} field {1:?} (expected - or + and the text)")]
    Optional(&'static str, String),
    #[error("a frame's {0} holds a control character")]
    Control(&'static str),
    #[error("a frame's data is not a JSON object on one line")]
    Data,
}

/// Whether `event` goes as a frame.
pub fn fits(event: &Event) -> bool {
    event.kind == EventKind::Event
        && event.dropped_late_calls.is_none()
        && (event.raw_data.is_some() || event.data.is_object())
        && unix_nanos(event.time).is_some()
        && names_fit(&event.event, event.step.as_deref(), event.file.as_deref())
}

/// Whether `event` goes as a frame.
pub fn fits_user(event: &UserEvent<'_>) -> bool {
    event.unix_nanos.is_some() && names_fit(event.name, event.step, event.file)
}

fn names_fit(name: &str, step: Option<&str>, file: Option<&str>) -> bool {
    plain(name) && step.is_none_or(plain) && file.is_none_or(plain)
}

/// `time` in nanoseconds since the Unix epoch, when a frame can carry it
/// (from 1970 to 2554).
pub fn unix_nanos(time: SystemTime) -> Option<u64> {
    let since_epoch = time.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since_epoch.as_nanos()).ok()
}

/// Nanoseconds since the Unix epoch as 16 hexadecimal digits.
fn hex_nanos(nanos: u64) -> [u8; TIME_DIGITS] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    std::array::from_fn(|i| DIGITS[(nanos >> (60 - 4 * i)) as usize & 0xf])
}

/// Whether `text` has no control character.
fn plain(text: &str) -> bool {
    !text.bytes().any(|b| b < 0x20)
}

/// Writes `event`, which [`fits`], as a frame and its line break.
pub fn write(out: &mut Vec<u8>, event: &Event) {
    let header = Header {
        unix_nanos: unix_nanos(event.time).unwrap_or_default(),
        level: event.level,
        name: &event.event,
        step: event.step.as_deref(),
        file: event.file.as_deref(),
    };
    header.write(out);
    match &event.raw_data {
        Some(raw) => out.extend_from_slice(raw.get().as_bytes()),
        None => serde_json::to_writer(&mut *out, &event.data).expect("a JSON value always serialises"),
    }
    out.push(b'\n');
}

/// Writes `event`, which [`fits_user`], as a frame and its line break.
pub fn write_user(out: &mut Vec<u8>, event: &UserEvent<'_>) {
    let header = Header {
        unix_nanos: event.unix_nanos.unwrap_or_default(),
        level: event.level,
        name: event.name,
        step: event.step,
        file: event.file,
    };
    header.write(out);
    out.extend_from_slice(event.data.get().as_bytes());
    out.push(b'\n');
}

/// The length of a frame's time field.
const TIME_DIGITS: usize = 16;

/// A frame's fields before its data.
struct Header<'a> {
    unix_nanos: u64,
    level: Level,
    name: &'a str,
    step: Option<&'a str>,
    file: Option<&'a str>,
}

impl Header<'_> {
    /// Writes the fields and the separator before the data.
    fn write(&self, out: &mut Vec<u8>) {
        out.push(FRAME_START);
        out.extend_from_slice(&hex_nanos(self.unix_nanos));
        out.push(SEPARATOR);
        out.extend_from_slice(self.level.as_str().as_bytes());
        out.push(SEPARATOR);
        out.extend_from_slice(self.name.as_bytes());
        for optional in [self.step, self.file] {
            out.push(SEPARATOR);
            match optional {
                None => out.push(b'-'),
                Some(text) => {
                    out.push(b'+');
                    out.extend_from_slice(text.as_bytes());
                }
            }
        }
        out.push(SEPARATOR);
    }
}

/// Reads a frame (without its line break) into the user event it stands
/// for, the data kept as text ([`Event::raw_data`]).
pub fn read(line: &[u8]) -> Result<Event, FrameError> {
    let mut event = Event {
        time: UNIX_EPOCH,
        kind: EventKind::Event,
        event: String::new(),
        step: None,
        level: Level::Info,
        file: None,
        data: Value::Null,
        dropped_late_calls: None,
        raw_data: None,
    };
    read_into(line, &mut event)?;
    Ok(event)
}

/// [`read`] into `event`, reusing its text allocations (an event the sinks
/// are done with) up to [`KEPT_CAPACITY`]; on an error, `event` is left
/// half-written.
pub fn read_into(line: &[u8], event: &mut Event) -> Result<(), FrameError> {
    let line = line.strip_prefix(&[FRAME_START]).unwrap_or(line);
    // The fields are checked as UTF-8 where they are read; a line that is
    // not UTF-8 anywhere is refused as such, whatever else is wrong with it.
    read_fields(line, event).map_err(|error| match std::str::from_utf8(line) {
        Ok(_) => error,
        Err(_) => FrameError::NotUtf8,
    })
}

/// [`read_into`] of a frame without its start.
fn read_fields(line: &[u8], event: &mut Event) -> Result<(), FrameError> {
    let Some(([time, level, name, step, file], data)) = split_header(line) else {
        return Err(FrameError::Fields(1 + memchr::memchr_iter(SEPARATOR, line).count()));
    };
    if data.is_empty() {
        return Err(FrameError::Fields(6));
    }
    let lossy = |field: &[u8]| String::from_utf8_lossy(field).into_owned();
    event.time = read_time(time).ok_or_else(|| FrameError::Time(lossy(time)))?;
    event.level = Level::from_name(level).ok_or_else(|| FrameError::Level(lossy(level)))?;
    let step = read_optional("step", step)?;
    let file = read_optional("file", file)?;
    let name = field_text("event name", name)?;
    let step = step.map(|step| field_text("step", step)).transpose()?;
    let file = file.map(|file| field_text("file", file)).transpose()?;
    match &mut event.raw_data {
        Some(kept) if kept.capacity() <= KEPT_CAPACITY => {
            if !kept.set_object_text(data) {
                return Err(FrameError::Data);
            }
        }
        slot => {
            let mut raw = RawData::default();
            if !raw.set_object_text(data) {
                return Err(FrameError::Data);
            }
            *slot = Some(raw);
        }
    }
    event.kind = EventKind::Event;
    set_text(&mut event.event, name);
    set_optional(&mut event.step, step);
    set_optional(&mut event.file, file);
    if !event.data.is_null() {
        event.data = Value::Null;
    }
    event.dropped_late_calls = None;
    Ok(())
}

/// The five fields before a frame's data, and the data; `None` when there
/// are fewer than five separators. The header is short, so it is searched
/// a byte at a time rather than with `memchr`'s setup for each field, from
/// after the time when that has its 16 digits.
fn split_header(line: &[u8]) -> Option<([&[u8]; 5], &[u8])> {
    let mut fields = [&line[..0]; 5];
    let mut start = 0;
    let time: Option<&[u8; TIME_DIGITS]> = line.get(..TIME_DIGITS).and_then(|time| time.try_into().ok());
    // Not `contains`: a call to `memchr` for 16 bytes costs more than
    // comparing them all.
    let without_separator = |time: &&[u8; TIME_DIGITS]| time.iter().fold(true, |none, &b| none & (b != SEPARATOR));
    if let Some(time) = time.filter(|time| without_separator(time) && line.get(TIME_DIGITS) == Some(&SEPARATOR)) {
        fields[0] = time;
        start = TIME_DIGITS + 1;
    }
    let first_searched = usize::from(start > 0);
    for field in &mut fields[first_searched..] {
        let len = line[start..].iter().position(|&b| b == SEPARATOR)?;
        *field = &line[start..start + len];
        start += len + 1;
    }
    Some((fields, &line[start..]))
}

/// The text of a name, step or file field: UTF-8 without a control character.
fn field_text<'a>(what: &'static str, field: &'a [u8]) -> Result<&'a str, FrameError> {
    if field.iter().any(|&b| b < 0x20) {
        return Err(FrameError::Control(what));
    }
    std::str::from_utf8(field).map_err(|_| FrameError::NotUtf8)
}

/// The largest text allocation of an event [`read_into`] reuses; a larger
/// one (of an event with large data, say) is given back.
pub const KEPT_CAPACITY: usize = 4096;

fn set_text(kept: &mut String, text: &str) {
    if kept.capacity() > KEPT_CAPACITY {
        *kept = text.to_owned();
    } else {
        kept.clear();
        kept.push_str(text);
    }
}

fn set_optional(kept: &mut Option<String>, text: Option<&str>) {
    match (kept.as_mut(), text) {
        (Some(kept), Some(text)) => set_text(kept, text),
        (_, text) => *kept = text.map(str::to_owned),
    }
}

/// The event name in the beginning of a frame (of one too long to read
/// whole), when the beginning holds all of it.
pub fn name_in_prefix(prefix: &[u8]) -> Option<String> {
    let mut fields = prefix.strip_prefix(&[FRAME_START])?.split(|&b| b == SEPARATOR);
    let name = fields.nth(2)?;
    fields.next()?;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// 16 lowercase hexadecimal digits of nanoseconds since 1970.
fn read_time(field: &[u8]) -> Option<SystemTime> {
    let digits: &[u8; TIME_DIGITS] = field.try_into().ok()?;
    // Without a branch per digit: a digit that is not one marks `invalid`.
    let (mut nanos, mut invalid) = (0u64, 0u8);
    for &byte in digits {
        let value = HEX_VALUES[usize::from(byte)];
        invalid |= value;
        nanos = nanos << 4 | u64::from(value & 0xf);
    }
    (invalid & NOT_HEX == 0).then(|| UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// Marks a byte that is not a lowercase hexadecimal digit in [`HEX_VALUES`].
const NOT_HEX: u8 = 0x80;

/// Each byte's value as a lowercase hexadecimal digit, or [`NOT_HEX`].
static HEX_VALUES: [u8; 256] = hex_values();

const fn hex_values() -> [u8; 256] {
    let mut values = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 16 {
        values[b"0123456789abcdef"[digit] as usize] = digit as u8;
        digit += 1;
    }
    values
}

fn read_optional<'a>(what: &'static str, field: &'a [u8]) -> Result<Option<&'a [u8]>, FrameError> {
    match field.split_first() {
        Some((b'-', [])) => Ok(None),
        Some((b'+', text)) => Ok(Some(text)),
        _ => Err(FrameError::Optional(what, String::from_utf8_lossy(field).into_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serde_json::value::RawValue;

    fn frame_of(event: &Event) -> Vec<u8> {
        assert!(fits(event), "{event:?}");
        let mut out = Vec::new();
        write(&mut out, event);
        assert_eq!(out.pop(), Some(b'\n'));
        assert!(!out.contains(&b'\n'));
        out
    }

    fn read_back(event: &Event) -> Event {
        read(&frame_of(event)).unwrap_or_else(|e| panic!("{e}: {event:?}"))
    }

    #[test]
    fn a_user_event_reads_back_as_it_was_written() {
        let events = [
            Event::user("tick", json!({"i": 1, "loss": 0.25})),
            Event::user("tick", json!({}))
                .with_step("train")
                .with_file("/d \"q\".csv")
                .with_level(Level::Critical),
            Event::user(
                "ünïcode · \\ \"",
                json!({"nested": {"a": [1, 2.5, null, "x\ny\u{1f}"]}}),
            )
            .with_step(""),
        ];
        for event in events {
            let back = read_back(&event);
            assert_eq!(back.with_parsed_data().into_owned(), event);
        }
    }

    #[test]
    fn a_user_event_by_reference_reads_back_as_its_event() {
        let data: &RawValue = serde_json::from_str(r#"{"i": 1}"#).unwrap();
        let user = UserEvent::now("tick", Level::Warning, Some("train"), None, data).unwrap();
        assert!(fits_user(&user));
        let mut out = Vec::new();
        write_user(&mut out, &user);
        assert_eq!(out.pop(), Some(b'\n'));
        assert_eq!(read(&out).unwrap(), user.to_event());
        let two_lines: &RawValue = serde_json::from_str("{\"i\":\n1}").unwrap();
        assert!(UserEvent::now("tick", Level::Info, None, None, two_lines).is_none());
        assert!(!fits_user(
            &UserEvent::now("t\u{7}ck", Level::Info, None, None, data).unwrap()
        ));
    }

    #[test]
    fn raw_data_goes_as_its_text() {
        let mut event = Event::user("tick", Value::Null);
        event.raw_data = RawData::parse_object(r#"{"b": 1,  "a":"\u0041"}"#);
        let back = read_back(&event);
        assert_eq!(back.raw_data.unwrap().get(), r#"{"b": 1,  "a":"\u0041"}"#);
    }

    #[test]
    fn a_carriage_return_between_tokens_is_taken_out() {
        let line = String::from_utf8(frame_of(&Event::user("tick", json!({"i": 1})))).unwrap();
        let event = read(line.replacen(r#"{"i":1}"#, "{\"i\":\r1}", 1).as_bytes()).unwrap();
        assert_eq!(event.raw_data.unwrap().get(), r#"{"i":1}"#);
    }

    #[test]
    fn a_reused_event_keeps_nothing_of_the_last_one() {
        let first = Event::user("a much longer first name", json!({"first": true}))
            .with_step("train")
            .with_file("/f")
            .with_level(Level::Error);
        let second = Event::user("tick", json!({"i": 2}));
        let mut reused = read(&frame_of(&first)).unwrap();
        read_into(&frame_of(&second), &mut reused).unwrap();
        assert_eq!(reused, read(&frame_of(&second)).unwrap());
        let mut big = read(&frame_of(&Event::user(
            "big",
            json!({"blob": "x".repeat(KEPT_CAPACITY)}),
        )))
        .unwrap();
        read_into(&frame_of(&second), &mut big).unwrap();
        assert!(
            big.raw_data.as_ref().unwrap().capacity() <= KEPT_CAPACITY,
            "a large allocation is given back"
        );
        assert_eq!(big, reused);
    }

    #[test]
    fn times_keep_their_nanoseconds() {
        let last = UNIX_EPOCH + Duration::from_nanos(u64::MAX);
        for time in [UNIX_EPOCH, UNIX_EPOCH + Duration::new(1_795_666_931, 550_344_017), last] {
            let event = Event::user("tick", json!({})).with_time(time);
            assert_eq!(read_back(&event).time, time);
        }
    }

    #[test]
    fn what_a_frame_cannot_say_goes_as_a_json_line() {
        let user = || Event::user("tick", json!({}));
        let others = [
            Event::result(json!({})),
            Event::message(Level::Info, "hello"),
            user().with_dropped_late_calls(0),
            Event::user("tick", json!([1])),
            Event::user("tick", Value::Null),
            Event::user("ti\nck", json!({})),
            user().with_step("a\u{1f}b"),
            user().with_file("a\rb"),
            user().with_time(UNIX_EPOCH - Duration::from_secs(1)),
            user().with_time(UNIX_EPOCH + Duration::from_nanos(u64::MAX) + Duration::from_nanos(1)),
        ];
        for event in others {
            assert!(!fits(&event), "{event:?}");
        }
    }

    #[test]
    fn a_forged_frame_is_refused_with_its_reason() {
        let good = String::from_utf8(frame_of(&Event::user("tick", json!({"i": 1})).with_step("s"))).unwrap();
        let field = |n: usize| good[1..].split('\u{1f}').nth(n).unwrap().to_owned();
        let cases = [
            (good.replacen(&field(0), "12", 1), FrameError::Time("12".into())),
            (
                good.replacen(&field(0), "000000000000000g", 1),
                FrameError::Time("000000000000000g".into()),
            ),
            (
                good.replacen(&field(0), "000000000000000A", 1),
                FrameError::Time("000000000000000A".into()),
            ),
            (
                good.replacen(&field(0), "-00000000000000a", 1),
                FrameError::Time("-00000000000000a".into()),
            ),
            (good.replacen("info", "loud", 1), FrameError::Level("loud".into())),
            (good.replacen("+s", "s", 1), FrameError::Optional("step", "s".into())),
            (good.replacen("+s", "-s", 1), FrameError::Optional("step", "-s".into())),
            (good.replacen("+s", "+s\u{7}", 1), FrameError::Control("step")),
            (good.replacen("tick", "ti\tck", 1), FrameError::Control("event name")),
            (good.replacen(r#"{"i":1}"#, "[1]", 1), FrameError::Data),
            (good.replacen(r#"{"i":1}"#, r#"{"i":1}}"#, 1), FrameError::Data),
            (good.replacen(r#"{"i":1}"#, r#"{"i":1e400}"#, 1), FrameError::Data),
            (good.replacen(r#"{"i":1}"#, r#"{"i":"\ud800"}"#, 1), FrameError::Data),
            (good.replacen(r#"{"i":1}"#, "", 1), FrameError::Fields(6)),
            (good[..good.rfind('\u{1f}').unwrap()].to_owned(), FrameError::Fields(5)),
        ];
        for (line, error) in cases {
            assert_eq!(read(line.as_bytes()).unwrap_err(), error, "{line:?}");
        }
        assert_eq!(read(b"\x1e\xff").unwrap_err(), FrameError::NotUtf8);
        let trailing = format!("{good}\u{1f}{{}}");
        assert_eq!(
            read(trailing.as_bytes()).unwrap_err(),
            FrameError::Data,
            "a seventh field is data"
        );
    }

    #[test]
    fn the_name_is_read_from_a_beginning_that_holds_all_of_it() {
        let frame = frame_of(&Event::user("big", json!({"blob": "x".repeat(100)})));
        let name_end = 1 + frame[1..].iter().position(|&b| b == b'b').unwrap() + 3;
        assert_eq!(name_in_prefix(&frame[..64]).as_deref(), Some("big"));
        assert_eq!(name_in_prefix(&frame[..name_end]), None, "the name may go on");
        assert_eq!(name_in_prefix(b"{\"kind\":\"event\"}"), None);
    }
}
