//! Keeps secrets out of every sink: a [`RedactingSink`] in front of the
//! terminal, JSON-lines, tracing and backend sinks rewrites each event
//! before they see it.
//!
//! The rule: anywhere in an event (its name, step, file, and every string
//! and object key's value in its data, messages and errors included),
//!
//! - the value of every environment variable whose name contains `TOKEN`,
//!   `SECRET`, `PASSWORD`, `PASSWD`, `KEY` or `CREDENTIAL` (any case), of
//!   every name added with `--redact NAME`, and the backend and agent
//!   credentials, is replaced by `[REDACTED]` (values shorter than 4
//!   characters are left alone: they would hide ordinary words);
//! - the user and password of a URL (`scheme://user:pass@host`) become
//!   `scheme://[REDACTED]@host`;
//! - the value of a data field whose name looks secret (`token`, `secret`,
//!   `password`, `passwd`, `api_key`, `apikey`, `access_key`,
//!   `authorization`, `credential`) becomes `[REDACTED]`.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use crate::events::{Event, EventSink, RawData, RunInfo};

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Parts of a variable name that make its value a secret.
const SECRET_NAME_PARTS: [&str; 6] = ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL"];

/// Parts of a data field's name that make its value a secret.
const SECRET_FIELD_PARTS: [&str; 9] = [
    "token",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "access_key",
    "authorization",
    "credential",
];

/// The shortest value treated as a secret.
const MIN_SECRET_LEN: usize = 4;

/// Whether an environment variable's name says its value is secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

fn is_secret_field(name: &str) -> bool {
    contains_secret_field_part(name)
}

/// Whether `text` contains one of [`SECRET_FIELD_PARTS`] in any case, in
/// one pass: only where a byte may begin a part are the parts compared.
fn contains_secret_field_part(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len()).any(|at| BYTE_CLASS[bytes[at] as usize] == MAY_BEGIN_PART && secret_field_part_at(&bytes[at..]))
}

/// Whether JSON `text` may hold an escape (which could spell anything), a
/// URL (`://`) or a secret-looking name, in one pass over its bytes.
fn may_hold_escape_url_or_secret_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len()).any(|at| match BYTE_CLASS[bytes[at] as usize] {
        ORDINARY => false,
        ESCAPE => true,
        COLON => bytes[at + 1..].starts_with(b"//"),
        _ => secret_field_part_at(&bytes[at..]),
    })
}

/// Whether one of [`SECRET_FIELD_PARTS`] begins `bytes`, in any case.
fn secret_field_part_at(bytes: &[u8]) -> bool {
    let [first, second, ..] = bytes else {
        return false;
    };
    let start = [first.to_ascii_lowercase(), second.to_ascii_lowercase()];
    matches!(&start, b"to" | b"se" | b"pa" | b"ap" | b"ac" | b"au" | b"cr")
        && SECRET_FIELD_PARTS
            .iter()
            .any(|part| part.as_bytes()[..2] == start && starts_with_ignoring_case(bytes, part))
}

fn starts_with_ignoring_case(bytes: &[u8], part: &str) -> bool {
    bytes.len() >= part.len() && bytes[..part.len()].eq_ignore_ascii_case(part.as_bytes())
}

/// The classes of bytes the one-pass scans look at.
const ORDINARY: u8 = 0;
const ESCAPE: u8 = 1;
const COLON: u8 = 2;
/// The first letter, in either case, of a [`SECRET_FIELD_PARTS`] entry.
const MAY_BEGIN_PART: u8 = 3;

static BYTE_CLASS: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut classes = [ORDINARY; 256];
    classes[b'\\' as usize] = ESCAPE;
    classes[b':' as usize] = COLON;
    let mut i = 0;
    while i < SECRET_FIELD_PARTS.len() {
        let first = SECRET_FIELD_PARTS[i].as_bytes()[0];
        classes[first.to_ascii_lowercase() as usize] = MAY_BEGIN_PART;
        classes[first.to_ascii_uppercase() as usize] = MAY_BEGIN_PART;
        i += 1;
    }
    classes
}

/// The secrets to hide, and how.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// The values of the variables among `vars` whose names look secret or
    /// are listed in `extra_names`.
    pub fn from_vars<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>, extra_names: &[String]) -> Self {
        let mut redactor = Redactor::default();
        for (name, value) in vars {
            if is_secret_name(name) || extra_names.iter().any(|n| n == name) {
                redactor.add_secret(value);
            }
        }
        redactor
    }

    /// Hides `value` too (ignored when shorter than 4 characters).
    pub fn add_secret(&mut self, value: &str) {
        let value = value.trim();
        if value.chars().count() < MIN_SECRET_LEN || self.secrets.iter().any(|s| s == value) {
            return;
        }
        self.secrets.push(value.to_owned());
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `text` with every secret and URL credential replaced.
    pub fn redact_str<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        match strip_url_credentials(&out) {
            Some(stripped) => Cow::Owned(stripped),
            None => out,
        }
    }

    /// Redacts `value` in place; returns whether anything changed.
    pub fn redact_value(&self, value: &mut Value) -> bool {
        match value {
            Value::String(text) => match self.redact_str(text) {
                Cow::Owned(redacted) => {
                    *text = redacted;
                    true
                }
                Cow::Borrowed(_) => false,
            },
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, v| self.redact_value(v) | changed),
            Value::Object(fields) => fields.iter_mut().fold(false, |changed, (name, v)| {
                if hides_field(name, v) {
                    *v = Value::String(REDACTED.to_owned());
                    true
                } else {
                    self.redact_value(v) | changed
                }
            }),
            _ => false,
        }
    }

    fn str_needs(&self, text: &str) -> bool {
        self.secrets.iter().any(|s| text.contains(s.as_str())) || strip_url_credentials(text).is_some()
    }

    /// Whether `value` has anything to hide (checked without copying).
    fn value_needs(&self, value: &Value) -> bool {
        match value {
            Value::String(text) => self.str_needs(text),
            Value::Array(items) => items.iter().any(|v| self.value_needs(v)),
            Value::Object(fields) => fields
                .iter()
                .any(|(name, v)| hides_field(name, v) || self.value_needs(v)),
            _ => false,
        }
    }

    /// Whether data kept as JSON text may have anything to hide: it may
    /// when its text holds a secret, a URL or a secret-looking name, or any
    /// escape (which could spell one); only then is it parsed and checked.
    fn raw_may_need(&self, raw: &RawData) -> bool {
        let text = raw.get();
        may_hold_escape_url_or_secret_name(text) || self.secrets.iter().any(|s| text.contains(s.as_str()))
    }

    /// Whether the event's name, step or file has anything to hide.
    fn names_need(&self, event: &Event) -> bool {
        [Some(&event.event), event.step.as_ref(), event.file.as_ref()]
            .into_iter()
            .flatten()
            .any(|t| self.str_needs(t))
    }

    /// A redacted copy of `event`, or `None` when it has nothing to hide.
    /// Data kept as JSON text is parsed only when it may need it, and then
    /// redacted as parsed data is.
    pub fn redact_event(&self, event: &Event) -> Option<Event> {
        if let Some(raw) = &event.raw_data {
            if !self.raw_may_need(raw) && !self.names_need(event) {
                return None;
            }
            let parsed = event.with_parsed_data().into_owned();
            return Some(self.redact_event(&parsed).unwrap_or(parsed));
        }
        if !self.value_needs(&event.data) && !self.names_need(event) {
            return None;
        }
        let mut copy = event.clone();
        let mut changed = self.redact_value(&mut copy.data);
        for text in [Some(&mut copy.event), copy.step.as_mut(), copy.file.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Cow::Owned(redacted) = self.redact_str(text) {
                *text = redacted;
                changed = true;
            }
        }
        changed.then_some(copy)
    }
}

/// Whether the field `name` holding `value` is hidden whole: a
/// secret-looking name over a scalar that is not null and not hidden yet
/// (objects and arrays under such a name are searched instead).
fn hides_field(name: &str, value: &Value) -> bool {
    is_secret_field(name)
        && !value.is_null()
        && !value.is_object()
        && !value.is_array()
        && *value != Value::String(REDACTED.into())
}

/// `text` with the user and password of every URL replaced, or `None`
/// when it has none.
fn strip_url_credentials(text: &str) -> Option<String> {
    if !has_scheme_separator(text) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(user_end) if !after[..user_end].starts_with(REDACTED) => {
                out.push_str(REDACTED);
                rest = &after[user_end..];
                changed = true;
            }
            _ => rest = after,
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Whether `text` holds `://`: a search for its colons, which costs a
/// short text (an event's name) less than setting up a substring search.
fn has_scheme_separator(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b':', bytes).any(|at| bytes[at + 1..].starts_with(b"//"))
}

/// An [`EventSink`] that redacts every event before passing it on.
pub struct RedactingSink<S> {
    inner: S,
    redactor: Arc<Redactor>,
}

impl<S: EventSink> RedactingSink<S> {
    pub fn new(inner: S, redactor: Arc<Redactor>) -> Self {
        Self { inner, redactor }
    }
}

impl<S: EventSink> EventSink for RedactingSink<S> {
    fn start(&self, run: &RunInfo) {
        self.inner.start(run)
    }

    fn emit(&self, run: &RunInfo, event: &Event) {
        match self.redactor.redact_event(event) {
            Some(redacted) => self.inner.emit(run, &redacted),
            None => self.inner.emit(run, event),
        }
    }

    fn finish(&self, run: &RunInfo) {
        self.inner.finish(run)
    }

    fn flush(&self) {
        self.inner.flush()
    }
    /// Raw data goes on raw when it has nothing to hide.
    fn takes_raw_data(&self) -> bool {
        self.inner.takes_raw_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_field_parts_are_found_in_any_case_in_one_pass() {
        for part in SECRET_FIELD_PARTS {
            assert!(
                matches!(
                    &part.as_bytes()[..2],
                    b"to" | b"se" | b"pa" | b"ap" | b"ac" | b"au" | b"cr"
                ),
                "{part} starts with two letters the pass looks for"
            );
            assert!(
                contains_secret_field_part(&format!("x_{}_y", part.to_ascii_uppercase())),
                "{part}"
            );
        }
        for clean in ["", "loss", "{\"i\":1,\"loss\":0.25}", "tok", "passw", "ünïcode"] {
            assert!(!contains_secret_field_part(clean), "{clean}");
        }
        assert!(contains_secret_field_part("ünï_Api_Key"));
    }

    #[test]
    fn the_one_pass_over_raw_data_finds_escapes_urls_and_secret_names() {
        for text in [
            r#"{"a":"x\u0074oken"}"#,
            r#"{"u":"https://h/x"}"#,
            r#"{"PassWord":1}"#,
            r#"{"x":"my_access_key"}"#,
            "credential",
        ] {
            assert!(may_hold_escape_url_or_secret_name(text), "{text}");
        }
        for text in [
            "",
            r#"{"i":0,"loss":0.25}"#,
            r#"{"t":"a:/b","p":"pass","c":":"}"#,
            "ünï:/",
        ] {
            assert!(!may_hold_escape_url_or_secret_name(text), "{text}");
        }
    }
    use crate::events::{EventKind, Level, MemorySink};
    use serde_json::json;

    fn redactor() -> Redactor {
        let vars = [
            ("SYNAPSE_ACCESS_TOKEN", "tok-12345"),
            ("DB_PASSWORD", "hunter22"),
            ("MY_PLAIN", "visible-value"),
            ("SHORT_KEY", "ab"),
            ("CUSTOM", "custom-secret-value"),
        ];
        Redactor::from_vars(vars, &["CUSTOM".to_owned()])
    }

    #[test]
    fn secrets_are_replaced_wherever_they_appear() {
        let r = redactor();
        assert_eq!(r.redact_str("token tok-12345 here"), "token [REDACTED] here");
        assert_eq!(r.redact_str("visible-value"), "visible-value");
        assert_eq!(r.redact_str("ab cd"), "ab cd", "too short to be treated as a secret");
        assert_eq!(r.redact_str("x custom-secret-value"), "x [REDACTED]");
        assert_eq!(
            r.redact_str("see https://bob:pw@db.example/x and http://h/ok"),
            "see https://[REDACTED]@db.example/x and http://h/ok"
        );
    }

    #[test]
    fn events_are_redacted_in_data_names_and_fields() {
        let r = Arc::new(redactor());
        let memory = Arc::new(MemorySink::default());
        let sink = RedactingSink::new(memory.clone(), r);
        let run = RunInfo::new("p", "a");
        let event = Event::new(
            EventKind::Event,
            "leak",
            Level::Info,
            json!({"msg": ["hunter22"], "password": "anything", "nested": {"api_key": 42}, "fine": 1}),
        )
        .with_file("/tmp/tok-12345.txt");
        sink.emit(&run, &event);
        sink.emit(&run, &Event::message(Level::Info, "nothing secret"));
        let events = memory.events();
        assert_eq!(
            events[0].data,
            json!({"msg": ["[REDACTED]"], "password": "[REDACTED]", "nested": {"api_key": "[REDACTED]"}, "fine": 1})
        );
        assert_eq!(events[0].file.as_deref(), Some("/tmp/[REDACTED].txt"));
        assert_eq!(events[1].data, json!({"content": "nothing secret"}));
    }

    #[test]
    fn secret_names_follow_the_rule() {
        for name in [
            "SYNAPSE_ACCESS_TOKEN",
            "aws_secret_access_key",
            "DB_PASSWORD",
            "API_KEY",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["SYNAPSE_HOST", "EPOCHS", "PATH"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
