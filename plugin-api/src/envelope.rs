//! How a log entry's step and level cross the boundary without a new
//! field in the FFI layout.
//!
//! The 1.x vtable's `log(event, data, file)` and `log_dev_event(message,
//! data)` have no step or level, and `log_message(message, level)` no step.
//! A plugin attributes an entry to a step (or gives a `log` entry a level)
//! by wrapping the data JSON in a reserved envelope the host unwraps:
//!
//! ```json
//! {"$synapse_entry": 1, "step": "train", "level": "debug", "data": {...}}
//! ```
//!
//! (`step` and `level` are optional; `"progress": "failed"` on a
//! `progress_failed` entry asks the host to mark that step's progress as
//! failed, the Python `set_progress_failed`), and a message's step rides on its level
//! string as `level@step` (level names never contain `@`). The data of an
//! entry is kept exactly as the plugin gave it. A host that predates the
//! envelope shows it as the data and reads an unknown level as `info`; it
//! never fails.

use serde_json::Value;

/// The reserved key that marks an envelope.
pub const ENVELOPE_KEY: &str = "$synapse_entry";

/// What an envelope says about its entry besides the data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryAttributes {
    /// The step the entry is attributed to (`step`).
    pub step: Option<String>,
    /// The entry's level name (`level`), for a `log` entry that is not `info`.
    pub level: Option<String>,
    /// `failed` marks the step's progress as failed.
    pub progress: Option<String>,
}

impl EntryAttributes {
    /// Whether there is nothing to say besides the data (then no envelope is written).
    pub fn is_empty(&self) -> bool {
        self.step.is_none() && self.level.is_none() && self.progress.is_none()
    }
}

/// Wraps `data_json` (valid JSON text) with `attributes`; returns it
/// unchanged when there is nothing to add, so step-less entries look as they
/// always did. The data is copied as text, never re-parsed.
pub fn wrap(data_json: &str, attributes: &EntryAttributes) -> String {
    if attributes.is_empty() {
        return data_json.to_owned();
    }
    let mut envelope = String::with_capacity(data_json.len() + 64);
    envelope.push_str("{\"");
    envelope.push_str(ENVELOPE_KEY);
    envelope.push_str("\":1");
    for (key, value) in [
        ("step", &attributes.step),
        ("level", &attributes.level),
        ("progress", &attributes.progress),
    ] {
        if let Some(value) = value {
            envelope.push_str(",\"");
            envelope.push_str(key);
            envelope.push_str("\":");
            envelope.push_str(&Value::String(value.clone()).to_string());
        }
    }
    envelope.push_str(",\"data\":");
    envelope.push_str(data_json);
    envelope.push('}');
    envelope
}

/// Splits a parsed data value into its attributes and the data as given.
/// A value that is not an envelope is returned as is, with no attributes.
pub fn unwrap(value: Value) -> (EntryAttributes, Value) {
    match value {
        Value::Object(mut map) if map.contains_key(ENVELOPE_KEY) => {
            let text = |v: Option<Value>| match v {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
            let attributes = EntryAttributes {
                step: text(map.remove("step")),
                level: text(map.remove("level")),
                progress: text(map.remove("progress")),
            };
            (attributes, map.remove("data").unwrap_or(Value::Null))
        }
        other => (EntryAttributes::default(), other),
    }
}

/// The level string of a message attributed to `step`.
pub fn message_level(level: &str, step: Option<&str>) -> String {
    match step {
        Some(step) => format!("{level}@{step}"),
        None => level.to_owned(),
    }
}

/// Splits a message's level string into the level and the step, if any.
pub fn split_message_level(level: &str) -> (&str, Option<&str>) {
    match level.split_once('@') {
        Some((level, step)) => (level, Some(step)),
        None => (level, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_round_trips_unchanged_with_its_step_and_level() {
        let attributes = EntryAttributes {
            step: Some("train".into()),
            level: Some("debug".into()),
            progress: None,
        };
        let wrapped = wrap(r#"{"step":"mine","n":[1,2]}"#, &attributes);
        let (found, data) = unwrap(serde_json::from_str(&wrapped).unwrap());
        assert_eq!(found, attributes);
        assert_eq!(
            data,
            json!({"step": "mine", "n": [1, 2]}),
            "the data keeps its own keys"
        );
    }

    #[test]
    fn names_with_quotes_are_escaped() {
        let attributes = EntryAttributes {
            step: Some("a \"quoted\" step".into()),
            ..Default::default()
        };
        let (found, data) = unwrap(serde_json::from_str(&wrap("null", &attributes)).unwrap());
        assert_eq!(found.step.as_deref(), Some("a \"quoted\" step"));
        assert_eq!(data, Value::Null);
    }

    #[test]
    fn without_attributes_the_data_is_sent_as_is() {
        assert_eq!(wrap(r#"{"a":1}"#, &EntryAttributes::default()), r#"{"a":1}"#);
        let (found, data) = unwrap(json!({"step": "old-style"}));
        assert!(found.is_empty());
        assert_eq!(data, json!({"step": "old-style"}));
    }

    #[test]
    fn message_levels_carry_the_step_after_an_at_sign() {
        assert_eq!(message_level("warning", Some("a@b")), "warning@a@b");
        assert_eq!(split_message_level("warning@a@b"), ("warning", Some("a@b")));
        assert_eq!(split_message_level("info"), ("info", None));
    }
}
