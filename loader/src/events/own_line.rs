//! The relay's fast path: reads a user event's line exactly as
//! [`JsonlSink`](super::JsonlSink) writes it (fields in its order, names and
//! strings without escapes, data an object), without serde's struct
//! machinery. Anything else is left to the full parse
//! ([`parse_line_relayed`](super::jsonl::parse_line_relayed)), which reads
//! every line this one reads, to the same event.
//!
//! Kept over serde because of its cost: a benchmark plugin's event line read
//! here took 175 ns against 427 ns through serde (one run of
//! `cargo bench -p loader --bench replaced_by_crates -- relay_line`), a
//! quarter of the 1 µs an event the CLI's throughput goal allows.

use serde_json::value::RawValue;
use serde_json::Value;

use super::{time, Event, EventKind, Level, RawData};

/// The line's text, read from the front.
struct Cursor<'a>(&'a str);

impl<'a> Cursor<'a> {
    fn expect(&mut self, literal: &str) -> Option<()> {
        self.0 = self.0.strip_prefix(literal)?;
        Some(())
    }

    /// A string without escapes or control characters.
    fn plain_string(&mut self) -> Option<&'a str> {
        let rest = self.0.strip_prefix('"')?;
        let end = rest.bytes().position(|b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest.as_bytes()[end] != b'"' {
            return None;
        }
        self.0 = &rest[end + 1..];
        Some(&rest[..end])
    }

    fn plain_string_or_null(&mut self) -> Option<Option<&'a str>> {
        if self.expect("null").is_some() {
            return Some(None);
        }
        self.plain_string().map(Some)
    }

    /// A JSON number written as digits with an optional fraction.
    fn unix_seconds(&mut self) -> Option<()> {
        let end = self.0.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(self.0.len());
        let (number, rest) = self.0.split_at(end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, "1"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !digits(fraction) || (whole.len() > 1 && whole.starts_with('0')) {
            return None;
        }
        self.0 = rest;
        Some(())
    }
}

/// The event of a line the sink wrote for a user event (kind `event`, no
/// `dropped_late_calls`), keeping the line ([`Event::jsonl`]) and its data
/// ([`Event::raw_data`]); `None` for any other line. `text` is one line
/// without its newline.
pub(crate) fn parse_own_line(text: &str) -> Option<Event> {
    let mut line = Cursor(text);
    line.expect(r#"{"time":"#)?;
    let time = time::parse_rfc3339(line.plain_string()?)?;
    line.expect(r#","timestamp":"#)?;
    line.unix_seconds()?;
    line.expect(r#","job_id":"#)?;
    line.plain_string_or_null()?;
    line.expect(r#","plugin":"#)?;
    line.plain_string()?;
    line.expect(r#","action":"#)?;
    line.plain_string()?;
    line.expect(r#","kind":"event","event":"#)?;
    let name = line.plain_string()?;
    line.expect(r#","step":"#)?;
    let step = line.plain_string_or_null()?;
    line.expect(r#","level":"#)?;
    let level: Level = line.plain_string()?.parse().ok()?;
    line.expect(r#","file":"#)?;
    let file = line.plain_string_or_null()?;
    line.expect(r#","data":"#)?;
    let data_json = line.0.strip_suffix('}')?;
    // Everything before the data is literal or a string without control
    // characters: a carriage return can only be whitespace in the data.
    if memchr::memchr(b'\r', data_json.as_bytes()).is_some() {
        return None;
    }
    let data: &RawValue = serde_json::from_str(data_json).ok()?;
    Some(Event {
        time,
        kind: EventKind::Event,
        event: name.to_owned(),
        step: step.map(str::to_owned),
        level,
        file: file.map(str::to_owned),
        data: Value::Null,
        dropped_late_calls: None,
        raw_data: Some(RawData::object(data)?),
        jsonl: Some(text.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::jsonl::parse_line_relayed;
    use crate::events::{EventSink, Flush, JsonlSink, RunInfo};
    use serde_json::json;

    fn line_of(run: &RunInfo, event: &Event) -> String {
        let sink = JsonlSink::new(Vec::new(), Flush::Buffered);
        sink.emit(run, event);
        let text = String::from_utf8(sink.into_inner().unwrap()).unwrap();
        text.trim_end().to_owned()
    }

    #[test]
    fn reads_the_sinks_own_user_event_lines_as_the_full_parse_does() {
        let runs = [RunInfo::new("flood", "log"), RunInfo::new("p", "a").with_job_id("job-1")];
        let events = [
            Event::user("tick", json!({"i": 1})),
            Event::user("tick", json!({})).with_step("train").with_file("/d.csv").with_level(Level::Debug),
            Event::user("ünïcode", json!({"nested": {"a": [1, 2.5, null, "x\"y"]}})),
        ];
        for run in &runs {
            for event in &events {
                let text = line_of(run, event);
                let fast = parse_own_line(&text).unwrap_or_else(|| panic!("{text} is the sink's own"));
                let full = parse_line_relayed(&text).unwrap();
                assert_eq!(fast, full, "{text}");
                assert_eq!(fast.jsonl.as_deref(), Some(text.as_str()));
            }
        }
    }

    #[test]
    fn leaves_every_other_line_to_the_full_parse() {
        let run = RunInfo::new("flood", "log");
        let text = line_of(&run, &Event::user("tick", json!({"i": 1})));
        let others = [
            text.replacen("\"tick\"", "\"ti\\\"ck\"", 1),
            text.replacen(r#""kind":"event""#, r#""kind":"result""#, 1),
            text.replacen(r#""data":{"i":1}"#, r#""data":[1]"#, 1),
            text.replacen(r#""data":{"i":1}"#, r#""data":{"i":1},"data":{"i":2}"#, 1),
            text.replacen(r#""data":{"i":1}"#, "\"data\":{\"i\":\r1}", 1),
            text.replacen(r#""level":"info""#, r#""level":"loud""#, 1),
            text.replacen(r#","timestamp":"#, r#","timestamp":0"#, 1),
            text.replacen(r#","timestamp":"#, r#","timestamp":-"#, 1),
            format!("{text},\"dropped_late_calls\":0}}"),
            format!("{text} "),
            text[..text.len() - 1].to_owned(),
        ];
        for other in others {
            assert!(parse_own_line(&other).is_none(), "{other}");
        }
    }
}
