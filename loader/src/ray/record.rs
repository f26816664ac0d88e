//! The driver's own lines (`driver.py`): one JSON object a line with the
//! key `loader_ray` naming what it says, written among the events of the
//! run it drives.
//!
//! | `loader_ray` | fields | says |
//! |---|---|---|
//! | `started` | `line`, `attempt` | a batch line was handed to the cluster |
//! | `outcome` | a batch outcome line, with `node` | a batch line's final outcome |
//! | `lost` | `line`, `attempt`, `message` (one run: `message`) | the worker or node running it died; a batch line runs again |
//! | `notice` | `level`, `message` | something the user should know (no node has the resources asked for) |
//! | `end` | `exit`, `stderr`, `node` (one run); nothing (batch) | the run's loader, or the whole batch, ended |
//! | `stopped` | `running` | the batch was stopped (`jobs stop`, Ctrl-C) |
//! | `fatal` | `message` | the driver could not go on |

use serde_json::Value;

use crate::events::{jsonl, Event};

/// The key that marks a driver record.
pub const KEY: &str = "loader_ray";

/// One record of the driver.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// What it says (`outcome`, `lost`, …).
    pub kind: String,
    /// The whole object.
    pub fields: Value,
}

impl Record {
    /// The record a log line holds, if it is one.
    pub fn parse(line: &str) -> Option<Record> {
        let line = line.trim();
        if !line.starts_with("{\"loader_ray\"") {
            return None;
        }
        let fields: Value = serde_json::from_str(line).ok()?;
        let kind = fields.get(KEY)?.as_str()?.to_owned();
        Some(Record { kind, fields })
    }

    /// A field as text ("" when absent).
    pub fn text(&self, name: &str) -> &str {
        self.fields[name].as_str().unwrap_or_default()
    }

    /// A field as a number.
    pub fn number(&self, name: &str) -> Option<u64> {
        self.fields[name].as_u64()
    }
}

/// A line of a single run's driver output: an event of the loader it
/// runs, or a record of the driver.
#[derive(Debug)]
pub enum RunItem {
    Event(Box<Event>),
    Record(Record),
}

impl RunItem {
    pub fn parse(line: &str) -> Option<RunItem> {
        if let Some(record) = Record::parse(line) {
            return Some(RunItem::Record(record));
        }
        event_of(line).map(|event| RunItem::Event(Box::new(event)))
    }
}

/// An event line of the loader inside the job, or `None` for anything
/// else (Ray's own lines, the inner loader's warnings).
pub fn event_of(line: &str) -> Option<Event> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    jsonl::parse_line(line).ok().map(|(_, event)| event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_told_from_events_and_other_lines() {
        let record =
            Record::parse(r#"{"loader_ray":"lost","line":7,"attempt":1,"message":"NodeDiedError: x"}"#).unwrap();
        assert_eq!(record.kind, "lost");
        assert_eq!(record.number("line"), Some(7));
        assert_eq!(record.text("message"), "NodeDiedError: x");
        assert!(
            Record::parse(r#"{"kind":"result","loader_ray":"outcome"}"#).is_none(),
            "the key comes first"
        );
        assert!(Record::parse("2026-01-01 INFO job_manager.py: Runtime env is setting up.").is_none());
        assert!(matches!(
            RunItem::parse(r#"{"loader_ray":"end","exit":0}"#),
            Some(RunItem::Record(_))
        ));
        assert!(RunItem::parse("{\"other\": 1}").is_none());
    }
}
