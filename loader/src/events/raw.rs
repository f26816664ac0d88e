//! Event data kept as the JSON text it arrived in ([`RawData`]), so that a
//! user event goes from the plugin to a JSON-lines stream without being
//! parsed into a `serde_json::Value` and written out again.
//!
//! An [`Event`] with `raw_data` has `data` = `null`. Only sinks that say so
//! ([`EventSink::takes_raw_data`]) are handed it as it is; every other sink
//! gets a copy with the data parsed ([`deliver`]), so a sink never sees a
//! `null` where the plugin gave data.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::value::RawValue;
use serde_json::Value;

use super::plain_object::is_plain_object;
use super::{Event, EventKind, EventSink, Level, RunInfo};

/// The bytes JSON allows around and between its tokens.
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// A JSON object as text on one line, checked when made to be JSON that
/// serde_json reads as a `Value` (so [`to_value`](Self::to_value) cannot fail).
#[derive(Debug, Clone, Default)]
pub struct RawData {
    text: String,
    /// The text is known to be printable ASCII without escapes (it was
    /// read as a [plain object](super::plain_object)); false says nothing.
    printable: bool,
}

impl RawData {
    /// The data of `raw` when it is a JSON object serde_json reads as a
    /// `Value` (which a `RawValue` need not be); `None` otherwise. Text with a line
    /// break (whitespace between its tokens: a string cannot hold one) is
    /// rewritten compactly, so the data never ends a JSON line.
    pub fn object(raw: &RawValue) -> Option<Self> {
        let mut data = RawData::default();
        data.set_object(raw).then_some(data)
    }

    /// Makes this the data of `raw`, as [`object`](Self::object) does,
    /// reusing this text's allocation; false (and unchanged) when `raw` is
    /// not an object.
    pub fn set_object(&mut self, raw: &RawValue) -> bool {
        self.set_json_object(raw.get())
    }

    /// Makes this the data of the untrusted JSON `text` (checked here), as
    /// [`set_object`](Self::set_object) does; false when it is not one JSON
    /// object. A plain object (the usual data) is checked in one pass
    /// without serde_json, and so known to be printable.
    pub fn set_object_text(&mut self, text: &[u8]) -> bool {
        std::str::from_utf8(text).is_ok_and(|text| self.set_json_object(text))
    }

    /// [`set_object_text`](Self::set_object_text) of text known to be UTF-8.
    fn set_json_object(&mut self, text: &str) -> bool {
        if is_plain_object(text.as_bytes()) {
            self.text.clear();
            self.text.push_str(text);
            self.printable = true;
            return true;
        }
        // Read whole, not only checked as a RawValue is: serde_json lets a
        // RawValue through that it cannot read as a Value (a number beyond
        // f64's range, a lone surrogate escape, nesting deeper than 128),
        // and the sinks that read the data would fail on it.
        let value = match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Object(_)) => value,
            _ => return false,
        };
        let text = text.trim_matches(JSON_WHITESPACE);
        if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none() {
            self.text.clear();
            self.text.push_str(text);
        } else {
            self.text = value.to_string();
        }
        self.printable = false;
        true
    }

    /// The capacity of the text's allocation.
    pub fn capacity(&self) -> usize {
        self.text.capacity()
    }

    /// Whether the text is known to print as it is (printable ASCII):
    /// true for data read as a plain object, false when unknown.
    pub fn is_printable(&self) -> bool {
        self.printable
    }

    /// Checks `text` and keeps it when it is one JSON object.
    pub fn parse_object(text: &str) -> Option<Self> {
        let raw: &RawValue = serde_json::from_str(text).ok()?;
        RawData::object(raw)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.text
    }

    /// The data as a value.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.get()).expect("raw data was valid JSON when made")
    }
}

/// Whether JSON `text` may hold `needle` (a search set up once, as
/// memchr's setup costs more than the search of a short text) literally in
/// a key or a string: never false when a string of it contains the needle
/// (escapes make the answer "may").
pub fn may_contain(text: &str, needle: &memchr::memmem::Finder<'_>) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr(b'\\', bytes).is_some() || needle.find(bytes).is_some()
}

/// Whether `raw` is a JSON object on one line, as [`RawData`] keeps data.
fn is_one_line_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{') && memchr::memchr2(b'\n', b'\r', raw.get().as_bytes()).is_none()
}

/// A user event (`ctx.log`) by reference, its data a JSON object on one
/// line: the hot path of a plugin's events, which a sink may write without
/// owning its parts ([`EventSink::emit_user`]).
#[derive(Debug, Clone, Copy)]
pub struct UserEvent<'a> {
    pub(super) time: SystemTime,
    /// `time` in nanoseconds since the Unix epoch, when a frame can carry
    /// it (see [`frame::unix_nanos`](super::frame::unix_nanos)).
    pub(super) unix_nanos: Option<u64>,
    pub(super) name: &'a str,
    pub(super) level: Level,
    pub(super) step: Option<&'a str>,
    pub(super) file: Option<&'a str>,
    pub(super) data: &'a RawValue,
}

impl<'a> UserEvent<'a> {
    /// The event, stamped now; `None` when `data` is not a JSON object on
    /// one line (make an [`Event`] of it then: [`RawData::object`]).
    pub fn now(
        name: &'a str,
        level: Level,
        step: Option<&'a str>,
        file: Option<&'a str>,
        data: &'a RawValue,
    ) -> Option<Self> {
        Self::at(SystemTime::now(), name, level, step, file, data)
    }

    /// [`now`](Self::now) for an event made at `time`.
    pub fn at(
        time: SystemTime,
        name: &'a str,
        level: Level,
        step: Option<&'a str>,
        file: Option<&'a str>,
        data: &'a RawValue,
    ) -> Option<Self> {
        Self::made(time, super::frame::unix_nanos(time), name, level, step, file, data)
    }

    /// [`now`](Self::now) for an event made `unix_nanos` nanoseconds after
    /// the Unix epoch.
    pub fn at_unix_nanos(
        unix_nanos: u64,
        name: &'a str,
        level: Level,
        step: Option<&'a str>,
        file: Option<&'a str>,
        data: &'a RawValue,
    ) -> Option<Self> {
        let time = UNIX_EPOCH + Duration::from_nanos(unix_nanos);
        Self::made(time, Some(unix_nanos), name, level, step, file, data)
    }

    fn made(
        time: SystemTime,
        unix_nanos: Option<u64>,
        name: &'a str,
        level: Level,
        step: Option<&'a str>,
        file: Option<&'a str>,
        data: &'a RawValue,
    ) -> Option<Self> {
        is_one_line_object(data).then_some(UserEvent {
            time,
            unix_nanos,
            name,
            level,
            step,
            file,
            data,
        })
    }

    /// The event it stands for, its data kept as text.
    pub fn to_event(&self) -> Event {
        Event {
            time: self.time,
            kind: EventKind::Event,
            event: self.name.to_owned(),
            step: self.step.map(str::to_owned),
            level: self.level,
            file: self.file.map(str::to_owned),
            data: Value::Null,
            dropped_late_calls: None,
            raw_data: Some(RawData {
                text: self.data.get().to_owned(),
                printable: false,
            }),
        }
    }
}

impl PartialEq for RawData {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Event {
    /// The event with its raw data parsed into `data` (itself when it has
    /// none).
    pub fn with_parsed_data(&self) -> Cow<'_, Event> {
        match &self.raw_data {
            None => Cow::Borrowed(self),
            Some(raw) => {
                let mut parsed = self.clone();
                parsed.data = raw.to_value();
                parsed.raw_data = None;
                Cow::Owned(parsed)
            }
        }
    }

    /// The data as JSON text (the raw text when there is one).
    pub fn data_json(&self) -> Cow<'_, str> {
        match &self.raw_data {
            Some(raw) => Cow::Borrowed(raw.get()),
            None => Cow::Owned(self.data.to_string()),
        }
    }
}

/// Emits `event` into `sink`, parsing its raw data first unless the sink
/// takes raw data.
pub fn deliver(sink: &(impl EventSink + ?Sized), run: &RunInfo, event: &Event) {
    if event.raw_data.is_none() || sink.takes_raw_data() {
        sink.emit(run, event)
    } else {
        sink.emit(run, &event.with_parsed_data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::MemorySink;
    use serde_json::json;

    fn raw_event(text: &str) -> Event {
        let mut event = Event::new(EventKind::Event, "tick", Level::Info, Value::Null);
        event.raw_data = RawData::parse_object(text);
        event
    }

    #[test]
    fn only_objects_are_kept_raw() {
        assert!(RawData::parse_object(r#"{"i": 1}"#).is_some());
        for text in ["[1]", "\"{}\"", "1", "null", "{", "{} {}", "{\"a\":1}\n{}"] {
            assert!(RawData::parse_object(text).is_none(), "{text}");
        }
    }

    #[test]
    fn only_data_serde_json_reads_as_a_value_is_kept() {
        let too_deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(128), "]".repeat(128));
        for text in [
            r#"{"x":1e400}"#,
            r#"{"x": 1e400}"#,
            r#"{"x":"\ud800"}"#,
            r#"{"x":"\udc00x"}"#,
            too_deep.as_str(),
        ] {
            assert!(
                serde_json::from_str::<&RawValue>(text).is_ok(),
                "a RawValue takes {text}"
            );
            assert!(RawData::parse_object(text).is_none(), "{text}");
            assert!(!RawData::default().set_object_text(text.as_bytes()), "{text}");
        }
        let spaced = RawData::parse_object(" {\"x\": [1e-400, \"\\ud83e\\udd80\"]}\t").unwrap();
        assert_eq!(spaced.get(), r#"{"x": [1e-400, "\ud83e\udd80"]}"#);
        assert_eq!(spaced.to_value(), json!({"x": [0.0, "🦀"]}));
    }

    #[test]
    fn line_breaks_between_tokens_are_taken_out() {
        let raw = RawData::parse_object("{\"a\":\r\n [1,\n2], \"s\": \"x\\ny\"}\n").unwrap();
        assert_eq!(raw.get(), r#"{"a":[1,2],"s":"x\ny"}"#);
        assert_eq!(RawData::parse_object("{\"a\": 1}").unwrap().get(), "{\"a\": 1}");
    }

    #[test]
    fn a_sink_that_does_not_take_raw_data_gets_it_parsed() {
        let sink = MemorySink::new();
        deliver(&sink, &RunInfo::new("p", "a"), &raw_event(r#"{"i":1,"s":"\u0041"}"#));
        let events = sink.events();
        assert_eq!(events[0].data, json!({"i": 1, "s": "A"}));
        assert!(events[0].raw_data.is_none());
    }

    #[test]
    fn escaped_text_may_contain_anything() {
        let (token, key_a) = (
            memchr::memmem::Finder::new("token"),
            memchr::memmem::Finder::new("\"a\""),
        );
        let raw = RawData::parse_object(r#"{"a":"x\u0074oken"}"#).unwrap();
        assert!(may_contain(raw.get(), &token));
        let plain = RawData::parse_object(r#"{"a":"x"}"#).unwrap();
        assert!(!may_contain(plain.get(), &token));
        assert!(may_contain(plain.get(), &key_a));
        let step = memchr::memmem::Finder::new("\"step\"");
        assert!(may_contain(r#"{"x":1,"step":2}"#, &step));
        assert!(!may_contain(r#"{"x":"steps","s":"tep"}"#, &step));
    }
}
