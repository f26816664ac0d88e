//! A log entry as it crosses the boundary through `log_entry` (host vtable,
//! added in plugin-api 1.2): one JSON object with its `kind`, the step it
//! belongs to and its level, besides the event's own data.
//!
//! ```json
//! {"kind": "event", "event": "epoch", "data": {"loss": 0.1}, "file": null, "step": "train", "level": "debug"}
//! {"kind": "message", "message": "too hot", "level": "critical", "step": "train"}
//! {"kind": "dev_event", "message": "shapes", "data": {"layers": 2}, "step": "train"}
//! {"kind": "progress_failed", "step": "train"}
//! ```
//!
//! Absent optional keys read as `null`, and unknown keys are ignored, so a
//! later minor may add keys; a new `kind` needs a new minor (a host refuses
//! kinds it does not know, with an error the plugin sees).
//!
//! A host older than 1.2 has no `log_entry`: [`LogEntry::to_release_1_1`]
//! turns an entry into the plain 1.1 call that means the same to it (see
//! [`LegacyCall`] for what is kept and what is lost).
//!
//! The hot path of `log` never builds a [`LogEntry`]: the plugin writes the
//! entry's text straight from the caller's data ([`write_event_entry`]) and
//! the host reads it as a borrowed [`LogEntryRef`], whose data stays the
//! plugin's JSON text. Both produce and accept exactly the text
//! [`LogEntry`] does.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// One entry a plugin logs, with its step and level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogEntry {
    /// A structured event (`log`); `data` is a JSON object.
    Event {
        /// The event's name.
        event: String,
        /// Its data.
        data: Map<String, Value>,
        /// The file it is about, if any.
        file: Option<String>,
        /// The step it belongs to, if any.
        step: Option<String>,
        /// The level's lowercase name; `None` is `info`.
        level: Option<String>,
    },
    /// A message for the user (`log_message`).
    Message {
        /// The text.
        message: String,
        /// The level's lowercase name.
        level: String,
        /// The step it belongs to, if any.
        step: Option<String>,
    },
    /// A developer event, shown only in verbose output (`log_dev_event`).
    DevEvent {
        /// The text.
        message: String,
        /// Its data, if any.
        data: Option<Value>,
        /// The step it belongs to, if any.
        step: Option<String>,
    },
    /// Marks the step's progress (the step-less key when `None`) as failed
    /// (`set_progress_failed`).
    ProgressFailed {
        /// The step whose bar failed.
        step: Option<String>,
    },
}

/// The plain plugin-api 1.1 call that stands for an entry in a host older
/// than 1.2: it keeps the entry's meaning as far as 1.1 can say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyCall {
    /// `log(event, data, file)`. The step goes into the data as `step`
    /// (unless the data has its own), which is how 1.0/1.1 plugins named the
    /// step and how a 1.1 host attributes the event; the level is dropped
    /// (a 1.1 event has none).
    Log {
        /// The event's name.
        event: String,
        /// Its data as JSON text, with the step added.
        data_json: String,
        /// The file it is about, if any.
        file: Option<String>,
    },
    /// `log_message(message, level)` with the level as one of the four 1.1
    /// names (see [`level_in_release_1_1`]); the step is dropped.
    Message {
        /// The text.
        message: String,
        /// One of `info`, `warning`, `danger`, `success`.
        level: &'static str,
    },
    /// `log_dev_event(message, data)`; the step is dropped (the data may be
    /// any JSON, so it has no place for one).
    DevEvent {
        /// The text.
        message: String,
        /// Its data as JSON text, if any.
        data_json: Option<String>,
    },
}

impl LogEntry {
    /// The entry as the JSON text `log_entry` takes.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a log entry of JSON values always serialises")
    }

    /// Reads an entry a plugin sent; the error names what is wrong.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("not a log entry: {e}"))
    }

    /// The 1.1 call that stands for this entry in a host older than 1.2. A
    /// failed progress, which 1.1 cannot mark, becomes an ordinary
    /// `progress_failed` event naming the step.
    pub fn to_release_1_1(&self) -> LegacyCall {
        match self {
            LogEntry::Event {
                event,
                data,
                file,
                step,
                level: _,
            } => LegacyCall::Log {
                event: event.clone(),
                data_json: data_with_step(data.clone(), step.as_deref()),
                file: file.clone(),
            },
            LogEntry::Message { message, level, .. } => LegacyCall::Message {
                message: message.clone(),
                level: level_in_release_1_1(level),
            },
            LogEntry::DevEvent { message, data, .. } => LegacyCall::DevEvent {
                message: message.clone(),
                data_json: data.as_ref().map(Value::to_string),
            },
            LogEntry::ProgressFailed { step } => LegacyCall::Log {
                event: "progress_failed".to_owned(),
                data_json: data_with_step(Map::new(), step.as_deref()),
                file: None,
            },
        }
    }
}

/// Why an event's data could not be written into an entry.
#[derive(Debug)]
pub enum EntryDataError {
    /// The data's `Serialize` failed (serde_json's error).
    Serialize(serde_json::Error),
    /// The data is valid JSON but not an object.
    NotAnObject,
}

/// Appends the entry text of an event (`{"kind":"event",...}`, the text
/// [`LogEntry::to_json`] gives for it) to `out`, serialising `data` in
/// place. On an error `out` is left as it was.
pub fn write_event_entry(
    out: &mut Vec<u8>,
    event: &str,
    data: &(impl Serialize + ?Sized),
    file: Option<&str>,
    step: Option<&str>,
    level: Option<&str>,
) -> Result<(), EntryDataError> {
    let start = out.len();
    let written = write_event_fields(out, event, data, file, step, level);
    if written.is_err() {
        out.truncate(start);
    }
    written
}

/// [`write_event_entry`] for data whose JSON text (of an object, valid)
/// `write_data` appends in place.
pub(crate) fn write_event_entry_with(
    out: &mut Vec<u8>,
    event: &str,
    write_data: impl FnOnce(&mut Vec<u8>),
    file: Option<&str>,
    step: Option<&str>,
    level: Option<&str>,
) {
    out.extend_from_slice(br#"{"kind":"event","event":"#);
    write_json_str(out, event);
    out.extend_from_slice(br#","data":"#);
    write_data(out);
    out.extend_from_slice(br#","file":"#);
    write_json(out, &file);
    out.extend_from_slice(br#","step":"#);
    write_json(out, &step);
    out.extend_from_slice(br#","level":"#);
    write_json(out, &level);
    out.push(b'}');
}

fn write_event_fields(
    out: &mut Vec<u8>,
    event: &str,
    data: &(impl Serialize + ?Sized),
    file: Option<&str>,
    step: Option<&str>,
    level: Option<&str>,
) -> Result<(), EntryDataError> {
    out.extend_from_slice(br#"{"kind":"event","event":"#);
    write_json(out, event);
    out.extend_from_slice(br#","data":"#);
    let data_start = out.len();
    serde_json::to_writer(&mut *out, data).map_err(EntryDataError::Serialize)?;
    if out.get(data_start) != Some(&b'{') {
        return Err(EntryDataError::NotAnObject);
    }
    out.extend_from_slice(br#","file":"#);
    write_json(out, &file);
    out.extend_from_slice(br#","step":"#);
    write_json(out, &step);
    out.extend_from_slice(br#","level":"#);
    write_json(out, &level);
    out.push(b'}');
    Ok(())
}

/// Writes a string or an optional string, which always serialise.
/// The entries other than events, borrowed, written as [`LogEntry`]
/// writes them (the text `LogEntry::to_json` gives), without copying
/// their strings first.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum BorrowedEntry<'a> {
    Message {
        message: &'a str,
        level: &'a str,
        step: Option<&'a str>,
    },
    DevEvent {
        message: &'a str,
        data: Option<&'a Value>,
        step: Option<&'a str>,
    },
    /// A developer event whose data is already JSON text.
    #[serde(rename = "dev_event")]
    DevEventText {
        message: &'a str,
        data: Option<&'a serde_json::value::RawValue>,
        step: Option<&'a str>,
    },
    ProgressFailed {
        step: Option<&'a str>,
    },
}

impl BorrowedEntry<'_> {
    /// Appends the entry's JSON text to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self).expect("an entry of strings and a JSON value serialises")
    }
}

fn write_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    serde_json::to_writer(out, value).expect("strings always serialise to JSON")
}

/// Appends a string as JSON, as serde_json writes it: quoted as it is when
/// nothing in it needs an escape (no quote, backslash or control
/// character: the usual names and keys), by serde_json otherwise.
#[inline]
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        write_json(out, s);
    }
}

/// The kinds of entry, as `kind` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EntryKind {
    Event,
    Message,
    DevEvent,
    ProgressFailed,
}

/// Every key an entry of any kind may have, borrowed from the text.
#[derive(Deserialize)]
struct WireEntry<'a> {
    kind: EntryKind,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    file: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    step: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    level: Option<Cow<'a, str>>,
}

/// An entry as a host reads it: borrowed from the plugin's text, with the
/// data left as the plugin's (validated) JSON text. It accepts and refuses
/// what [`LogEntry::from_json`] does.
#[derive(Debug, Clone)]
pub enum LogEntryRef<'a> {
    /// A structured event.
    Event {
        /// The event's name.
        event: Cow<'a, str>,
        /// Its data: a JSON object, as the plugin wrote it.
        data: &'a RawValue,
        /// The file it is about, if any.
        file: Option<Cow<'a, str>>,
        /// The step it belongs to, if any.
        step: Option<Cow<'a, str>>,
        /// The level's name; `None` is `info`.
        level: Option<Cow<'a, str>>,
    },
    /// A message for the user.
    Message {
        /// The text.
        message: Cow<'a, str>,
        /// The level's name.
        level: Cow<'a, str>,
        /// The step it belongs to, if any.
        step: Option<Cow<'a, str>>,
    },
    /// A developer event.
    DevEvent {
        /// The text.
        message: Cow<'a, str>,
        /// Its data (any JSON value); `None` when null or absent.
        data: Option<&'a RawValue>,
        /// The step it belongs to, if any.
        step: Option<Cow<'a, str>>,
    },
    /// Marks the step's progress (the step-less key when `None`) as failed.
    ProgressFailed {
        /// The step whose bar failed.
        step: Option<Cow<'a, str>>,
    },
}

impl<'a> LogEntryRef<'a> {
    /// Reads an entry a plugin sent; the error names what is wrong.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        if let Some(entry) = Self::parse_plain_event(text) {
            return Ok(entry);
        }
        let wire: WireEntry<'a> = serde_json::from_str(text).map_err(|e| format!("not a log entry: {e}"))?;
        let missing = |field: &str| format!("not a log entry: missing field `{field}`");
        let data = wire.data.filter(|d| d.get() != "null");
        Ok(match wire.kind {
            EntryKind::Event => {
                let data = data.ok_or_else(|| missing("data"))?;
                if !data.get().starts_with('{') {
                    return Err(format!(
                        "not a log entry: an event's data must be a JSON object, got {}",
                        data.get().chars().next().map_or("nothing", json_kind_of)
                    ));
                }
                LogEntryRef::Event {
                    event: wire.event.ok_or_else(|| missing("event"))?,
                    data,
                    file: wire.file,
                    step: wire.step,
                    level: wire.level,
                }
            }
            EntryKind::Message => LogEntryRef::Message {
                message: wire.message.ok_or_else(|| missing("message"))?,
                level: wire.level.ok_or_else(|| missing("level"))?,
                step: wire.step,
            },
            EntryKind::DevEvent => LogEntryRef::DevEvent {
                message: wire.message.ok_or_else(|| missing("message"))?,
                data,
                step: wire.step,
            },
            EntryKind::ProgressFailed => LogEntryRef::ProgressFailed { step: wire.step },
        })
    }
}

impl<'a> LogEntryRef<'a> {
    /// The fast path of [`parse`](Self::parse), for the text
    /// [`write_event_entry`] writes for an info event with no file or step
    /// and a name without escapes: only the data is parsed (to validate it
    /// and find its end). `None` for any other text, which the full parse
    /// then reads.
    fn parse_plain_event(text: &'a str) -> Option<Self> {
        const HEAD: &str = r#"{"kind":"event","event":""#;
        const TAIL: &str = r#","file":null,"step":null,"level":null}"#;
        let rest = text.strip_prefix(HEAD)?;
        let name_end = rest.find('"')?;
        let name = &rest[..name_end];
        if name.bytes().any(|b| b == b'\\' || b < 0x20) {
            return None;
        }
        let rest = rest[name_end..].strip_prefix(r#"","data":"#)?;
        let data_json = rest.strip_suffix(TAIL)?;
        if !data_json.starts_with('{') {
            return None;
        }
        let data: &RawValue = serde_json::from_str(data_json).ok()?;
        Some(LogEntryRef::Event {
            event: Cow::Borrowed(name),
            data,
            file: None,
            step: None,
            level: None,
        })
    }
}

/// What JSON value starts with `first` (the first character of valid JSON).
fn json_kind_of(first: char) -> &'static str {
    match first {
        '[' => "an array",
        '"' => "a string",
        't' | 'f' => "a boolean",
        _ => "a number",
    }
}

/// The data with `step` added, unless the data names a step of its own.
fn data_with_step(mut data: Map<String, Value>, step: Option<&str>) -> String {
    if let Some(step) = step {
        data.entry("step").or_insert_with(|| Value::String(step.to_owned()));
    }
    Value::Object(data).to_string()
}

/// The plugin-api 1.1 message level (`info`, `success`, `warning`,
/// `danger`) closest to a level name: `debug` reads as `info`, `error` and
/// `critical` as `danger`, an unknown name as `info`.
pub fn level_in_release_1_1(level: &str) -> &'static str {
    match level {
        "success" => "success",
        "warning" => "warning",
        "danger" | "error" | "critical" => "danger",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(data: Value, step: Option<&str>) -> LogEntry {
        LogEntry::Event {
            event: "epoch".into(),
            data: data.as_object().unwrap().clone(),
            file: Some("/d.csv".into()),
            step: step.map(str::to_owned),
            level: Some("debug".into()),
        }
    }

    #[test]
    fn entries_round_trip_through_their_json() {
        let entries = [
            event(json!({"n": [1, 2]}), Some("a \"quoted\" step")),
            LogEntry::Message {
                message: "hot".into(),
                level: "critical".into(),
                step: None,
            },
            LogEntry::DevEvent {
                message: "m".into(),
                data: Some(json!([1])),
                step: Some("s".into()),
            },
            LogEntry::ProgressFailed { step: None },
        ];
        for entry in entries {
            assert_eq!(LogEntry::from_json(&entry.to_json()).unwrap(), entry);
        }
    }

    #[test]
    fn absent_keys_are_null_and_unknown_keys_are_ignored() {
        let entry = LogEntry::from_json(r#"{"kind":"event","event":"e","data":{},"added_in_1_9":true}"#).unwrap();
        assert_eq!(
            entry,
            LogEntry::Event {
                event: "e".into(),
                data: Map::new(),
                file: None,
                step: None,
                level: None
            }
        );
    }

    #[test]
    fn unknown_kinds_and_bad_data_are_refused_with_the_reason() {
        let unknown = LogEntry::from_json(r#"{"kind":"artifact","path":"x"}"#).unwrap_err();
        assert!(unknown.contains("unknown variant `artifact`"), "{unknown}");
        let not_object = LogEntry::from_json(r#"{"kind":"event","event":"e","data":[1]}"#).unwrap_err();
        assert!(not_object.starts_with("not a log entry"), "{not_object}");
        assert!(LogEntry::from_json("{").is_err());
    }

    #[test]
    fn an_older_host_gets_the_step_in_an_events_data_and_never_an_envelope() {
        assert_eq!(
            event(json!({"n": 1}), Some("train")).to_release_1_1(),
            LegacyCall::Log {
                event: "epoch".into(),
                data_json: r#"{"n":1,"step":"train"}"#.into(),
                file: Some("/d.csv".into()),
            }
        );
        let LegacyCall::Log { data_json, .. } = event(json!({"step": "mine"}), Some("train")).to_release_1_1() else {
            panic!("an event stays an event")
        };
        assert_eq!(data_json, r#"{"step":"mine"}"#, "the data's own step is kept");
        let LegacyCall::Log { data_json, .. } = event(json!({}), None).to_release_1_1() else {
            panic!("an event stays an event")
        };
        assert_eq!(data_json, "{}");
        assert_eq!(
            LogEntry::ProgressFailed {
                step: Some("train".into())
            }
            .to_release_1_1(),
            LegacyCall::Log {
                event: "progress_failed".into(),
                data_json: r#"{"step":"train"}"#.into(),
                file: None
            }
        );
        assert_eq!(
            LogEntry::DevEvent {
                message: "m".into(),
                data: Some(json!([1])),
                step: Some("s".into())
            }
            .to_release_1_1(),
            LegacyCall::DevEvent {
                message: "m".into(),
                data_json: Some("[1]".into())
            }
        );
    }

    #[test]
    fn an_event_entry_written_in_place_is_the_text_of_its_log_entry() {
        let cases = [
            (
                json!({"n": [1, 2], "s": "a\"b\n\u{1b}"}),
                Some("/d.csv"),
                Some("a \"quoted\" step"),
                Some("debug"),
            ),
            (json!({}), None, None, None),
        ];
        for (data, file, step, level) in cases {
            let mut text = b"kept".to_vec();
            write_event_entry(&mut text, "epoch\n", &data, file, step, level).unwrap();
            let entry = LogEntry::Event {
                event: "epoch\n".into(),
                data: data.as_object().unwrap().clone(),
                file: file.map(str::to_owned),
                step: step.map(str::to_owned),
                level: level.map(str::to_owned),
            };
            assert_eq!(String::from_utf8(text).unwrap(), format!("kept{}", entry.to_json()));
        }
    }

    #[test]
    fn data_that_is_not_an_object_is_refused_and_nothing_is_left_written() {
        let mut text = b"kept".to_vec();
        let refused = write_event_entry(&mut text, "e", &json!([1, 2]), None, None, None);
        assert!(matches!(refused, Err(EntryDataError::NotAnObject)));
        let mut bad_keys = std::collections::HashMap::new();
        bad_keys.insert(vec![1u8], 1);
        let refused = write_event_entry(&mut text, "e", &bad_keys, None, None, None);
        assert!(matches!(refused, Err(EntryDataError::Serialize(_))));
        assert_eq!(text, b"kept");
    }

    #[test]
    fn the_borrowed_reader_accepts_and_refuses_what_log_entry_does() {
        let texts = [
            r#"{"kind":"event","event":"e","data":{"a":[1,{"b":null}]},"file":"f","step":"s","level":"debug"}"#,
            r#"{"kind":"event","event":"e\u0041","data": {"x":"\n"},"added_in_1_9":true}"#,
            r#"{"kind":"message","message":"m","level":"critical","step":null}"#,
            r#"{"kind":"dev_event","message":"m","data":[1]}"#,
            r#"{"kind":"dev_event","message":"m","data":null}"#,
            r#"{"kind":"progress_failed"}"#,
            r#"{"kind":"artifact","path":"x"}"#,
            r#"{"kind":"event","event":"e","data":[1]}"#,
            r#"{"kind":"event","event":"e","data":"{}"}"#,
            r#"{"kind":"event","event":"e","data":null}"#,
            r#"{"kind":"event","data":{}}"#,
            r#"{"kind":"message","message":"m"}"#,
            r#"{"kind":"event","event":"e","data":{"a":1}"#,
            r#"{"kind":"event","event":"e","data":{"a":1}} {}"#,
            r#"{"kind":"event","event":7,"data":{}}"#,
            "[]",
            "",
        ];
        for text in texts {
            let owned = LogEntry::from_json(text);
            let borrowed = LogEntryRef::parse(text);
            assert_eq!(owned.is_ok(), borrowed.is_ok(), "{text}: {owned:?} / {borrowed:?}");
            if let Err(e) = borrowed {
                assert!(e.starts_with("not a log entry"), "{e}");
            }
            if let (
                Ok(LogEntry::Event { data, event, .. }),
                Ok(LogEntryRef::Event {
                    data: raw, event: name, ..
                }),
            ) = (owned, LogEntryRef::parse(text))
            {
                assert_eq!(serde_json::from_str::<Map<String, Value>>(raw.get()).unwrap(), data);
                assert_eq!(name, event);
            }
        }
        let plain = [
            r#"{"kind":"event","event":"tick","data":{"i":1},"file":null,"step":null,"level":null}"#,
            r#"{"kind":"event","event":"tick","data":{"a":"\"x\"},\"y"},"file":null,"step":null,"level":null}"#,
            r#"{"kind":"event","event":"","data":{},"file":null,"step":null,"level":null}"#,
        ];
        for text in plain {
            let Some(LogEntryRef::Event { event, data, .. }) = LogEntryRef::parse_plain_event(text) else {
                panic!("{text} is a plain event");
            };
            let Ok(LogEntry::Event {
                event: name, data: map, ..
            }) = LogEntry::from_json(text)
            else {
                panic!("{text} is an event");
            };
            assert_eq!(
                (
                    event.as_ref(),
                    serde_json::from_str::<Map<String, Value>>(data.get()).unwrap()
                ),
                (name.as_str(), map)
            );
        }
        let not_plain = [
            r#"{"kind":"event","event":"t\"ick","data":{},"file":null,"step":null,"level":null}"#,
            r#"{"kind":"event","event":"tick","data":{"a":1},"file":null,"step":null,"level":null} "#,
            r#"{"kind":"event","event":"tick","data":{"a":1},"file":null,"step":null,"level":null},"file":null,"step":null,"level":null}"#,
            r#"{"kind":"event","event":"tick","data":{"a":1}},"file":null,"step":null,"level":null}"#,
            r#"{"kind":"event","event":"tick","data":[1],"file":null,"step":null,"level":null}"#,
            r#"{"kind":"event","event":"tick","data":{"a":1},"file":null,"step":"s","level":null}"#,
        ];
        for text in not_plain {
            assert!(LogEntryRef::parse_plain_event(text).is_none(), "{text}");
            assert_eq!(
                LogEntryRef::parse(text).is_ok(),
                LogEntry::from_json(text).is_ok(),
                "{text}"
            );
        }
        let unknown = LogEntryRef::parse(r#"{"kind":"artifact"}"#).unwrap_err();
        assert!(unknown.contains("unknown variant `artifact`"), "{unknown}");
    }

    #[test]
    fn message_levels_map_onto_the_four_of_release_1_1() {
        let mapped: Vec<&str> = [
            "debug", "info", "success", "warning", "danger", "error", "critical", "loud",
        ]
        .into_iter()
        .map(level_in_release_1_1)
        .collect();
        assert_eq!(
            mapped,
            ["info", "info", "success", "warning", "danger", "danger", "danger", "info"]
        );
        let message = LogEntry::Message {
            message: "hot".into(),
            level: "critical".into(),
            step: Some("train".into()),
        };
        assert_eq!(
            message.to_release_1_1(),
            LegacyCall::Message {
                message: "hot".into(),
                level: "danger"
            }
        );
    }
}
