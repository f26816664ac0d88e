//! One batch of queued log entries, as the caller's thread leaves them:
//! each entry's strings and its data's JSON text (written on the caller's
//! thread, where the data was built, so that no allocation is freed by
//! another thread: that costs the allocator several times the writing)
//! copied into one text buffer, with the tick count of the call. The log
//! thread writes each entry's JSON text from its parts. The buffers are
//! reused from batch to batch.

use serde_json::value::RawValue;

use crate::log_entry::{write_event_entry_with_data_text, BorrowedEntry};

/// Entries in a batch beyond which a caller waits for the log thread: a
/// loop of 100 k calls fits without waiting.
pub(crate) const MAX_ENTRIES: usize = 128 * 1024;
/// Text in a batch beyond which a caller waits for the log thread.
pub(crate) const MAX_TEXT: usize = 8 * 1024 * 1024;

/// Where a string lies in the batch's text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

/// What an entry is, its strings in the batch's text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum What {
    /// `log`: the data is the JSON text of an object.
    Event {
        event: Span,
        data: Span,
        file: Option<Span>,
        level: Option<&'static str>,
    },
    /// `log_message`.
    Message { message: Span, level: &'static str },
    /// `log_dev_event`: the data, if any, as JSON text.
    DevEvent { message: Span, data: Option<Span> },
    /// `set_progress_failed`.
    ProgressFailed,
    /// A `set_progress` made while entries of the caller were still queued,
    /// queued behind them so that it does not overtake them.
    Progress { current: u64, total: u64 },
    /// `set_metrics`: the JSON object text, for the entry's step.
    Metrics(Span),
}

/// One queued entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    /// [`crate::ffi::clock::ticks`] at the call.
    pub at: u64,
    pub step: Option<Span>,
    pub what: What,
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
    /// Metrics (JSON object text) for a step.
    Metrics { json: &'a str, step: &'a str },
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
    /// oldest first, writing log entries' text in `out`; empties the batch
    /// (keeping its buffers).
    pub fn drain(&mut self, out: &mut Vec<u8>, mut f: impl FnMut(u64, Handed<'_>)) {
        for entry in &self.entries {
            let step = entry.step.map(|s| self.get(s));
            let handed = match entry.what {
                What::Progress { current, total } => Handed::Progress { current, total, step },
                What::Metrics(json) => Handed::Metrics {
                    json: self.get(json),
                    step: step.expect("metrics are queued with their step"),
                },
                what => {
                    out.clear();
                    self.write(what, step, out);
                    Handed::Entry(std::str::from_utf8(out).expect("entries are written as UTF-8"))
                }
            };
            f(entry.at, handed);
        }
        self.entries.clear();
        self.text.clear();
    }

    /// Writes a log entry's JSON text from its parts.
    fn write(&self, what: What, step: Option<&str>, out: &mut Vec<u8>) {
        match what {
            What::Event {
                event,
                data,
                file,
                level,
            } => write_event_entry_with_data_text(
                out,
                self.get(event),
                self.get(data),
                file.map(|s| self.get(s)),
                step,
                level,
            ),
            What::Message { message, level } => BorrowedEntry::Message {
                message: self.get(message),
                level,
                step,
            }
            .write(out),
            What::DevEvent { message, data } => {
                let data: Option<&RawValue> =
                    data.map(|d| serde_json::from_str(self.get(d)).expect("serde_json wrote this text at the call"));
                BorrowedEntry::DevEventText {
                    message: self.get(message),
                    data,
                    step,
                }
                .write(out)
            }
            What::ProgressFailed => BorrowedEntry::ProgressFailed { step }.write(out),
            What::Progress { .. } | What::Metrics(_) => unreachable!("handed over as they are"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_entry::LogEntry;
    use serde_json::json;

    #[test]
    fn entries_come_out_in_order_as_the_text_of_their_log_entry() {
        let mut batch = Batch::default();
        let step = Some(batch.add_text("train"));
        let what = What::Event {
            event: batch.add_text("tick"),
            data: batch.add_text(r#"{"i":1}"#),
            file: Some(batch.add_text("/f")),
            level: Some("debug"),
        };
        batch.push(Pending { at: 7, step, what });
        let what = What::Message {
            message: batch.add_text("hi"),
            level: "warning",
        };
        batch.push(Pending {
            at: 8,
            step: None,
            what,
        });
        let what = What::DevEvent {
            message: batch.add_text("shapes"),
            data: Some(batch.add_text("[1]")),
        };
        batch.push(Pending { at: 9, step, what });
        batch.push(Pending {
            at: 10,
            step,
            what: What::ProgressFailed,
        });
        batch.push(Pending {
            at: 11,
            step,
            what: What::Progress { current: 1, total: 2 },
        });
        let what = What::Metrics(batch.add_text(r#"{"loss":1}"#));
        batch.push(Pending { at: 12, step, what });
        let mut seen = Vec::new();
        batch.drain(&mut Vec::new(), |at, handed| {
            seen.push(match handed {
                Handed::Entry(text) => format!("{at} {:?}", LogEntry::from_json(text).unwrap()),
                Handed::Progress { current, total, step } => format!("{at} progress {current}/{total} {step:?}"),
                Handed::Metrics { json, step } => format!("{at} metrics {json} {step}"),
            })
        });
        let entries = [
            LogEntry::Event {
                event: "tick".into(),
                data: json!({"i": 1}).as_object().unwrap().clone(),
                file: Some("/f".into()),
                step: Some("train".into()),
                level: Some("debug".into()),
            },
            LogEntry::Message {
                message: "hi".into(),
                level: "warning".into(),
                step: None,
            },
            LogEntry::DevEvent {
                message: "shapes".into(),
                data: Some(json!([1])),
                step: Some("train".into()),
            },
            LogEntry::ProgressFailed {
                step: Some("train".into()),
            },
        ];
        let mut expected: Vec<String> = entries
            .iter()
            .zip(7..)
            .map(|(entry, at)| format!("{at} {entry:?}"))
            .collect();
        expected.push(r#"11 progress 1/2 Some("train")"#.into());
        expected.push(r#"12 metrics {"loss":1} train"#.into());
        assert_eq!(seen, expected);
        assert!(batch.is_empty() && batch.text.is_empty());
    }
}
