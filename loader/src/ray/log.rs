//! A Ray job's log read as it grows, in whole lines: from its live stream
//! ([`tail`](super::tail)), each byte once; or, where there is no stream
//! (an `https` address, a cluster without it) or it broke off, by fetching
//! the whole log (`/logs`) each turn and taking what is new.

use std::time::{Duration, Instant};

use super::api::{JobsApi, RayError};
use super::tail::{LogTail, TailRead};

/// How long, once the job has ended, its log stream may stay silent before
/// the rest of the log is fetched whole instead: the cluster looks for more
/// of the log every second, and closes the stream once the job is over and
/// everything is sent.
const STREAM_END_SILENCE: Duration = Duration::from_millis(2500);

/// Splits a growing log into whole lines, keeping a partial last line
/// until the rest of it arrives.
#[derive(Debug, Default)]
pub struct LogLines {
    seen: usize,
    partial: String,
}

impl LogLines {
    /// The whole lines `log` (everything so far) adds since the last call.
    pub fn advance(&mut self, log: &str) -> Vec<String> {
        if log.len() < self.seen || !log.is_char_boundary(self.seen) {
            self.seen = 0;
            self.partial.clear();
        }
        self.partial.push_str(&log[self.seen..]);
        self.seen = log.len();
        self.complete_lines()
    }

    /// The whole lines `piece` completes, the pieces coming in order from
    /// the log's first byte (its live stream); [`advance`](Self::advance)
    /// can take over where the pieces end.
    pub fn push(&mut self, piece: &str) -> Vec<String> {
        self.seen += piece.len();
        self.partial.push_str(piece);
        self.complete_lines()
    }

    fn complete_lines(&mut self) -> Vec<String> {
        let Some(end) = self.partial.rfind('\n') else {
            return Vec::new();
        };
        let complete: String = self.partial.drain(..=end).collect();
        complete.lines().map(str::to_owned).collect()
    }

    /// The partial last line, once the log is known to be complete.
    pub fn rest(&mut self) -> Option<String> {
        Some(std::mem::take(&mut self.partial)).filter(|l| !l.trim().is_empty())
    }
}

/// Where the log is read from.
enum Source {
    /// Its live stream, while that is open.
    Stream(LogTail),
    /// The stream closed: the whole log has been read.
    Whole,
    /// The whole log fetched each turn.
    Polling,
}

/// The log of one job, read as it grows.
pub struct JobLog<'a> {
    api: &'a JobsApi,
    id: &'a str,
    source: Source,
    lines: LogLines,
}

impl<'a> JobLog<'a> {
    /// Opens the log of job `id`: its stream when the cluster has one for
    /// it, or else the whole log, fetched each turn.
    pub fn open(api: &'a JobsApi, id: &'a str) -> Self {
        let source = match api.log_stream(id) {
            Ok(tail) => {
                tracing::debug!("ray job {id}: following its log stream");
                Source::Stream(tail)
            }
            Err(reason) => {
                tracing::debug!("ray job {id}: polling its log ({reason})");
                Source::Polling
            }
        };
        JobLog {
            api,
            id,
            source,
            lines: LogLines::default(),
        }
    }

    /// Whether the log is read from its stream (true until the stream
    /// ends or breaks off).
    pub fn is_streamed(&self) -> bool {
        matches!(self.source, Source::Stream(_))
    }

    /// Hands `take` each whole line the job prints until `until`: from the
    /// stream as it comes, or from one fetch of the whole log.
    pub fn read_until(&mut self, until: Instant, take: &mut dyn FnMut(String)) -> Result<(), RayError> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match &mut self.source {
                Source::Stream(tail) => match tail.next_within(left) {
                    TailRead::Text(piece) => self.lines.push(&piece).into_iter().for_each(&mut *take),
                    TailRead::Quiet => {}
                    TailRead::Closed => self.source = Source::Whole,
                    TailRead::Broken(reason) => {
                        tracing::debug!("ray job {}: its log stream broke off ({reason}); polling the rest", self.id);
                        self.source = Source::Polling;
                    }
                },
                Source::Whole => std::thread::sleep(left),
                Source::Polling => {
                    self.fetch(take)?;
                    std::thread::sleep(left);
                }
            }
            if Instant::now() >= until {
                return Ok(());
            }
        }
    }

    /// Once the job has ended: hands `take` the rest of the log, its
    /// partial last line included. With `enough` (what was read so far is
    /// all the caller needs), a stream is not waited for; otherwise it is
    /// read until the cluster closes it (a stream behind a burst of output
    /// catches up first), or until it stays silent for
    /// [`STREAM_END_SILENCE`]: then the rest is fetched with the whole log.
    pub fn read_rest(&mut self, enough: bool, take: &mut dyn FnMut(String)) -> Result<(), RayError> {
        if !(enough && self.is_streamed()) {
            let mut silent_since = Instant::now();
            while let Source::Stream(tail) = &mut self.source {
                let left = STREAM_END_SILENCE.saturating_sub(silent_since.elapsed());
                match tail.next_within(left) {
                    TailRead::Text(piece) => {
                        self.lines.push(&piece).into_iter().for_each(&mut *take);
                        silent_since = Instant::now();
                    }
                    TailRead::Quiet if !left.is_zero() => {}
                    TailRead::Quiet | TailRead::Broken(_) => self.source = Source::Polling,
                    TailRead::Closed => self.source = Source::Whole,
                }
            }
            if let Source::Polling = self.source {
                self.fetch(take)?;
            }
        }
        self.lines.rest().into_iter().for_each(take);
        Ok(())
    }

    /// Fetches the whole log and hands `take` the lines that are new.
    fn fetch(&mut self, take: &mut dyn FnMut(String)) -> Result<(), RayError> {
        let log = self.api.logs(self.id)?;
        self.lines.advance(&log).into_iter().for_each(take);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_come_out_whole_and_once() {
        let mut lines = LogLines::default();
        assert!(lines.advance("Running entrypoint\n{\"a\"").len() == 1);
        assert_eq!(lines.advance("Running entrypoint\n{\"a\":1}\nnext"), ["{\"a\":1}"]);
        assert_eq!(lines.advance("Running entrypoint\n{\"a\":1}\nnext line\n"), ["next line"]);
        assert!(lines.advance("Running entrypoint\n{\"a\":1}\nnext line\n").is_empty());
        assert_eq!(lines.advance("Running entrypoint\n{\"a\":1}\nnext line\ntail").len(), 0);
        assert_eq!(lines.rest().as_deref(), Some("tail"));
    }

    #[test]
    fn streamed_pieces_split_anywhere_give_whole_lines_and_polling_takes_over_where_they_end() {
        let log = "Running entrypoint\n{\"a\":1}\n{\"ü\":\"long line\"}\nlast";
        let mut lines = LogLines::default();
        let mut got = Vec::new();
        for piece in ["Runn", "ing entrypoint\n{\"a\"", ":1}\n{\"ü\":\"long"] {
            got.extend(lines.push(piece));
        }
        assert_eq!(got, ["Running entrypoint", "{\"a\":1}"]);
        got.extend(lines.advance(log));
        assert_eq!(got, ["Running entrypoint", "{\"a\":1}", "{\"ü\":\"long line\"}"]);
        assert_eq!(lines.rest().as_deref(), Some("last"));
    }
}
