//! One batch of queued log entries, as the caller's thread leaves them:
//! each entry's strings copied into one text buffer (no allocation per
//! entry), its data kept as the `Value` the caller built (moved, not
//! copied) or as the JSON text of any other `Serialize` type, and the tick
//! count of the call. The log thread writes each entry's JSON text from it.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::log_entry::{write_event_entry, LogEntry};

/// Entries in a batch beyond which a caller waits for the log thread.
pub(crate) const MAX_ENTRIES: usize = 8 * 1024;
/// Text in a batch beyond which a caller waits for the log thread.
pub(crate) const MAX_TEXT: usize = 1024 * 1024;

/// Where a string lies in the batch's text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

/// The data of an event or developer event.
pub(crate) enum Data {
    /// The caller's value, moved in.
    Value(Value),
    /// JSON text the caller's data serialised to, in the batch's text.
    Text(Span),
}

/// What an entry is, its strings in the batch's text.
pub(crate) enum What {
    Event {
        event: Span,
        data: Data,
        file: Option<Span>,
        level: Option<&'static str>,
    },
    Message {
        message: Span,
        level: &'static str,
    },
    DevEvent {
        message: Span,
        data: Option<Data>,
    },
    ProgressFailed,
    /// A `set_progress` made while entries of the caller were still queued,
    /// queued behind them so that it does not overtake them.
    Progress {
        current: u64,
        total: u64,
    },
    /// `set_metrics`: the object for the entry's step.
    Metrics {
        value: Map<String, Value>,
    },
}

/// What the log thread hands the host for one queued entry.
pub(crate) enum Handed<'a> {
    /// A log entry's JSON text (the text `LogEntry::to_json` gives).
    Entry(&'a str),
    /// A progress update.
    Progress {
        current: u64,
        total: u64,
        step: Option<&'a str>,
    },
    /// Metrics for a step.
    Metrics {
        value: Map<String, Value>,
        step: &'a str,
    },
}

/// One queued entry.
pub(crate) struct Pending {
    /// [`crate::ffi::clock::ticks`] at the call.
    pub at: u64,
    pub step: Option<Span>,
    pub what: What,
}

/// Queued entries and the text their strings live in.
#[derive(Default)]
pub(crate) struct Batch {
    entries: Vec<Pending>,
    text: String,
}

impl Batch {
    /// Copies `s` into the batch's text.
    pub fn add_text(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }

    pub fn push(&mut self, entry: Pending) {
        self.entries.push(entry);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a caller should wait for the log thread before adding more.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= MAX_ENTRIES || self.text.len() >= MAX_TEXT
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&self, span: Span) -> &str {
        &self.text[span.start as usize..(span.start + span.len) as usize]
    }

    /// Calls `f` with each entry's tick count and what to hand the host,
    /// oldest first, and empties the batch (the entries' values are
    /// dropped here, not on the caller's thread).
    pub fn drain(&mut self, out: &mut Vec<u8>, mut f: impl FnMut(u64, Handed<'_>)) {
        let mut entries = std::mem::take(&mut self.entries);
        for entry in entries.drain(..) {
            let at = entry.at;
            let step = entry.step.map(|s| self.get(s));
            match entry.what {
                What::Progress { current, total } => {
                    f(at, Handed::Progress { current, total, step });
                    continue;
                }
                What::Metrics { value } => {
                    let step = step.expect("metrics are queued with their step");
                    f(at, Handed::Metrics { value, step });
                    continue;
                }
                _ => {}
            }
            out.clear();
            self.write(entry, out);
            f(at, Handed::Entry(std::str::from_utf8(out).expect("serde_json writes UTF-8")));
        }
        self.entries = entries;
        self.text.clear();
    }

    /// Writes one log entry's JSON text. Its data was checked to be a JSON
    /// object at the call, so writing it cannot fail.
    fn write(&self, entry: Pending, out: &mut Vec<u8>) {
        let step = entry.step.map(|s| self.get(s));
        match entry.what {
            What::Progress { .. } | What::Metrics { .. } => unreachable!("handed over as they are"),
            What::Event {
                event,
                data,
                file,
                level,
            } => {
                let (event, file) = (self.get(event), file.map(|s| self.get(s)));
                let written = match &data {
                    Data::Value(value) => write_event_entry(out, event, value, file, step, level),
                    Data::Text(text) => {
                        let raw: &RawValue =
                            serde_json::from_str(self.get(*text)).expect("serde_json wrote this text at the call");
                        write_event_entry(out, event, raw, file, step, level)
                    }
                };
                written.expect("the data was checked to be an object at the call");
            }
            What::Message { message, level } => {
                let entry = LogEntry::Message {
                    message: self.get(message).to_owned(),
                    level: level.to_owned(),
                    step: step.map(str::to_owned),
                };
                serde_json::to_writer(out, &entry).expect("an entry serialises");
            }
            What::DevEvent { message, data } => {
                let data = data.map(|data| match data {
                    Data::Value(value) => value,
                    Data::Text(text) => serde_json::from_str(self.get(text)).expect("serde_json wrote this text"),
                });
                let entry = LogEntry::DevEvent {
                    message: self.get(message).to_owned(),
                    data,
                    step: step.map(str::to_owned),
                };
                serde_json::to_writer(out, &entry).expect("an entry serialises");
            }
            What::ProgressFailed => {
                let entry = LogEntry::ProgressFailed {
                    step: step.map(str::to_owned),
                };
                serde_json::to_writer(out, &entry).expect("an entry serialises");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_come_out_as_the_json_text_of_their_log_entry_in_order() {
        let mut batch = Batch::default();
        let step = Some(batch.add_text("train"));
        let what = What::Event {
            event: batch.add_text("tick"),
            data: Data::Value(json!({"i": 1})),
            file: None,
            level: Some("debug"),
        };
        batch.push(Pending { at: 7, step, what });
        let what = What::Event {
            event: batch.add_text("rows"),
            data: Data::Text(batch.add_text(r#"{"n":2}"#)),
            file: Some(batch.add_text("/f")),
            level: None,
        };
        batch.push(Pending { at: 8, step: None, what });
        let what = What::Message {
            message: batch.add_text("hi"),
            level: "warning",
        };
        batch.push(Pending { at: 9, step, what });
        let what = What::DevEvent {
            message: batch.add_text("shapes"),
            data: Some(Data::Value(json!([1]))),
        };
        batch.push(Pending { at: 10, step: None, what });
        batch.push(Pending {
            at: 11,
            step,
            what: What::ProgressFailed,
        });
        let mut seen = Vec::new();
        batch.drain(&mut Vec::new(), |at, handed| match handed {
            Handed::Entry(text) => seen.push((at, LogEntry::from_json(text).unwrap())),
            Handed::Progress { .. } | Handed::Metrics { .. } => panic!("only entries were queued"),
        });
        let expected = [
            LogEntry::Event {
                event: "tick".into(),
                data: json!({"i": 1}).as_object().unwrap().clone(),
                file: None,
                step: Some("train".into()),
                level: Some("debug".into()),
            },
            LogEntry::Event {
                event: "rows".into(),
                data: json!({"n": 2}).as_object().unwrap().clone(),
                file: Some("/f".into()),
                step: None,
                level: None,
            },
            LogEntry::Message {
                message: "hi".into(),
                level: "warning".into(),
                step: Some("train".into()),
            },
            LogEntry::DevEvent {
                message: "shapes".into(),
                data: Some(json!([1])),
                step: None,
            },
            LogEntry::ProgressFailed {
                step: Some("train".into()),
            },
        ];
        let ats: Vec<u64> = seen.iter().map(|(at, _)| *at).collect();
        assert_eq!(ats, [7, 8, 9, 10, 11]);
        let entries: Vec<LogEntry> = seen.into_iter().map(|(_, e)| e).collect();
        assert_eq!(entries, expected);
        assert!(batch.is_empty() && batch.text.is_empty());
    }
}
