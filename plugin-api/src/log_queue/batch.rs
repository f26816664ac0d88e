//! One batch of queued log entries, as the caller's thread leaves them:
//! each entry's JSON text (written on the caller's thread, where its data
//! was built, so that no allocation is freed by another thread: that
//! costs the allocator several times the writing) copied into one text
//! buffer, with the tick count of the call; a progress update or metrics
//! with their step. The buffers are reused from batch to batch.

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
    /// A log entry: the JSON text of a `LogEntry`.
    Entry(Span),
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
    /// oldest first, and empties the batch (keeping its buffers).
    pub fn drain(&mut self, mut f: impl FnMut(u64, Handed<'_>)) {
        for entry in &self.entries {
            let step = entry.step.map(|s| self.get(s));
            let handed = match entry.what {
                What::Entry(text) => Handed::Entry(self.get(text)),
                What::Progress { current, total } => Handed::Progress { current, total, step },
                What::Metrics(json) => Handed::Metrics {
                    json: self.get(json),
                    step: step.expect("metrics are queued with their step"),
                },
            };
            f(entry.at, handed);
        }
        self.entries.clear();
        self.text.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_in_order_with_their_texts_and_ticks_and_the_batch_is_emptied() {
        let mut batch = Batch::default();
        let what = What::Entry(batch.add_text(r#"{"kind":"message"}"#));
        batch.push(Pending { at: 7, step: None, what });
        let step = Some(batch.add_text("train"));
        batch.push(Pending {
            at: 8,
            step,
            what: What::Progress { current: 1, total: 2 },
        });
        let what = What::Metrics(batch.add_text(r#"{"loss":1}"#));
        batch.push(Pending { at: 9, step, what });
        let mut seen = Vec::new();
        batch.drain(|at, handed| {
            seen.push(match handed {
                Handed::Entry(text) => format!("{at} entry {text}"),
                Handed::Progress { current, total, step } => format!("{at} progress {current}/{total} {step:?}"),
                Handed::Metrics { json, step } => format!("{at} metrics {json} {step}"),
            })
        });
        assert_eq!(
            seen,
            [
                r#"7 entry {"kind":"message"}"#,
                r#"8 progress 1/2 Some("train")"#,
                r#"9 metrics {"loss":1} train"#,
            ]
        );
        assert!(batch.is_empty() && batch.text.is_empty());
    }
}
