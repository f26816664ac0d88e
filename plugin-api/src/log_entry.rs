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

use serde::{Deserialize, Serialize};
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
