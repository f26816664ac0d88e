//! A Ray job's log read as it grows, in whole lines: from its live stream
//! ([`tail`](super::tail)), each byte once; or, where there is no stream
//! (an `https` address, a cluster without it) or it broke off, by fetching
//! the whole log (`/logs`) each turn and taking what is new.

use std::time::{Duration, Instant};

use super::api::{JobsApi, RayError};
use super::tail::{LogTail, TailRead};

/// How much of the log the stream may have brought, once the job has ended,
/// for the rest to be taken from one fetch of the whole log rather than
/// waited for on the stream: the fetch ends the run sooner. (A stream far
/// behind a burst of output can leave a larger log to fetch: once, where
/// polling fetches it every turn.)
const WHOLE_FETCH_LIMIT: usize = 16 << 20;

/// How long, once the job has ended, its log stream may stay silent before
/// the rest of the log is fetched whole instead. A stream that has caught
/// up is silent for about two seconds at a time (the cluster looks for more
/// of the log after a second, and whether the job has ended after another),
/// and it is closed once the job is over and everything is sent.
const STREAM_END_SILENCE: Duration = Duration::from_secs(6);

/// Splits a growing log into whole lines, keeping a partial last line
/// until the rest of it arrives.
#[derive(Debug, Default)]
pub struct LogLines {
    seen: usize,
    partial: String,
}

impl LogLines {
    /// The whole lines `log` (everything so far) adds since the last call.
    /// A log shorter than what was read already (a fetch behind the stream,
    /// say), or cut inside a character where the reading stopped, adds
    /// nothing: taking it whole again would repeat every line.
    pub fn advance(&mut self, log: &str) -> Vec<String> {
        let Some(new) = log.get(self.seen..) else {
            return Vec::new();
        };
        self.seen = log.len();
        self.take_text(new)
    }

    /// The whole lines `piece` completes, the pieces coming in order from
    /// the log's first byte (its live stream); [`advance`](Self::advance)
    /// can take over where the pieces end.
    pub fn push(&mut self, piece: &str) -> Vec<String> {
        self.seen += piece.len();
        self.take_text(piece)
    }

    /// Appends `new` to the partial line; the lines it completes.
    fn take_text(&mut self, new: &str) -> Vec<String> {
        let ends_lines = memchr::memchr(b'\n', new.as_bytes()).is_some();
        self.partial.push_str(new);
        if !ends_lines {
            return Vec::new();
        }
        let end = self.partial.rfind('\n').expect("`new` holds a line break");
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
    Stream(Box<LogTail>),
    /// The stream closed normally: the whole log has been read, unless the
    /// close was the cluster's proxy giving up (it closes normally whatever
    /// stopped the stream behind it), which the job's state or the
    /// caller's missing outcome reveals.
    Whole,
    /// The whole log fetched each turn.
    Polling,
}

/// What one read of the stream gave.
enum StreamRead {
    /// A piece, with whether `take` said of one of its lines that it was
    /// enough.
    Piece { enough: bool },
    /// Nothing within the wait.
    Nothing,
    /// The stream is over: closed, or broken off.
    Ended,
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
                Source::Stream(Box::new(tail))
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
    fn is_streamed(&self) -> bool {
        matches!(self.source, Source::Stream(_))
    }

    /// Hands `take` each whole line the job prints until `until`: from the
    /// stream as it comes, or from one fetch of the whole log.
    pub fn read_until(&mut self, until: Instant, take: &mut Take<'_>) -> Result<(), RayError> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match &mut self.source {
                Source::Stream(_) => {
                    self.read_stream(left, take);
                }
                Source::Whole => std::thread::sleep(left),
                Source::Polling => {
                    self.fetch(take)?;
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                }
            }
            if Instant::now() >= until {
                return Ok(());
            }
        }
    }

    /// Tells the log that the job still runs: a stream that has closed
    /// meanwhile closed early (the cluster closes it only once the job is
    /// over), so the rest is polled.
    pub fn job_is_running(&mut self) {
        if let Source::Whole = self.source {
            tracing::debug!(
                "ray job {}: its log stream closed while the job runs; polling the rest",
                self.id
            );
            self.source = Source::Polling;
        }
    }

    /// Once the job has ended: hands `take` the rest of the log, or as much
    /// of it as the caller needs (`enough`: it has all it needs already; or
    /// `take` says so of a line).
    ///
    /// While the stream has brought less than 16 MiB (`WHOLE_FETCH_LIMIT`),
    /// the rest comes from one fetch of the whole log: the stream can be
    /// two seconds behind (the cluster looks for more of the log, and then
    /// whether the job has ended, once a second each). Past that, the
    /// stream is read until the caller has enough or the cluster closes it
    /// (a stream behind a burst of output catches up first), or until it
    /// stays silent for 6 s (`STREAM_END_SILENCE`). A caller still short of
    /// what it needs then gets the rest from one fetch of the whole log,
    /// whatever the stream did: a normal close is no proof that everything
    /// was sent. The partial last line comes last, once the log is whole.
    pub fn read_rest(&mut self, mut enough: bool, take: &mut Take<'_>) -> Result<(), RayError> {
        if !enough && self.is_streamed() && self.lines.seen < WHOLE_FETCH_LIMIT {
            tracing::debug!(
                "ray job {}: ended; the rest of its log is fetched whole (the stream brought {} bytes)",
                self.id,
                self.lines.seen
            );
            self.source = Source::Polling;
        }
        let mut silent_since = Instant::now();
        while !enough && self.is_streamed() {
            let left = STREAM_END_SILENCE.saturating_sub(silent_since.elapsed());
            match self.read_stream(left, take) {
                StreamRead::Piece { enough: said } => {
                    enough = said;
                    silent_since = Instant::now();
                }
                StreamRead::Nothing if !left.is_zero() => {}
                StreamRead::Nothing => {
                    tracing::debug!(
                        "ray job {}: ended, its log stream did not close; fetching the rest",
                        self.id
                    );
                    self.source = Source::Polling;
                }
                StreamRead::Ended => {}
            }
        }
        if enough {
            return Ok(());
        }
        self.fetch(take)?;
        hand_over(self.lines.rest(), take);
        Ok(())
    }

    /// Reads the stream once, waiting at most `wait`: hands `take` the
    /// lines a piece completes; a close leaves the log `Whole`, a break
    /// leaves it to polling.
    fn read_stream(&mut self, wait: Duration, take: &mut Take<'_>) -> StreamRead {
        let Source::Stream(tail) = &mut self.source else {
            return StreamRead::Ended;
        };
        match tail.next_within(wait) {
            TailRead::Text(piece) => {
                let mut enough = false;
                for line in self.lines.push(&piece) {
                    enough |= take(line);
                }
                StreamRead::Piece { enough }
            }
            TailRead::Quiet => StreamRead::Nothing,
            TailRead::Closed => {
                self.source = Source::Whole;
                StreamRead::Ended
            }
            TailRead::Broken(reason) => {
                tracing::debug!(
                    "ray job {}: its log stream broke off ({reason}); polling the rest",
                    self.id
                );
                self.source = Source::Polling;
                StreamRead::Ended
            }
        }
    }

    /// Fetches the whole log and hands `take` the lines that are new.
    fn fetch(&mut self, take: &mut Take<'_>) -> Result<(), RayError> {
        let log = self.api.logs(self.id)?;
        hand_over(self.lines.advance(&log), take);
        Ok(())
    }
}

/// What reads a job's log: called with each whole line, in order; returns
/// whether the caller now has all it needs from the log (a follower: the
/// inner loader's outcome, its last event).
pub type Take<'t> = dyn FnMut(String) -> bool + 't;

fn hand_over(lines: impl IntoIterator<Item = String>, take: &mut Take<'_>) {
    for line in lines {
        take(line);
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
        assert_eq!(
            lines.advance("Running entrypoint\n{\"a\":1}\nnext line\n"),
            ["next line"]
        );
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

    #[test]
    fn a_fetched_log_shorter_than_what_was_read_repeats_nothing() {
        let mut lines = LogLines::default();
        assert_eq!(lines.push("one\ntwo\nthr"), ["one", "two"]);
        assert!(lines.advance("one\ntwo\n").is_empty(), "a fetch behind the stream");
        assert!(lines.advance("[CUT]\n").is_empty(), "a shorter, other text");
        assert_eq!(lines.push("ee\n"), ["three"]);
        assert_eq!(lines.advance("one\ntwo\nthree\nfour\n"), ["four"]);
    }
}
