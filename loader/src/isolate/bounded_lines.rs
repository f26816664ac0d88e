//! Splits a byte stream from a child (its event channel, its stdout or
//! stderr) into lines without ever holding more than a fixed number of
//! bytes: a line longer than the cap comes out in pieces, and the reader
//! says when it has used up what it has read, so that a caller can pass on
//! what it collected before it blocks for more.

use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A stream that can tell whether more bytes come within a moment.
pub trait Arrival {
    /// Whether bytes (or the stream's end) can be read within `timeout`.
    fn arrives_within(&self, timeout: Duration) -> bool;
}

impl Arrival for UnixStream {
    fn arrives_within(&self, timeout: Duration) -> bool {
        crate::sys::readable_within(self, timeout)
    }
}

/// Bytes in memory (the tests' streams): the rest, or the end, is there
/// at once.
#[cfg(test)]
impl Arrival for &[u8] {
    fn arrives_within(&self, _: Duration) -> bool {
        true
    }
}

/// What the next call of [`Lines::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// The end of a line (without its `\n`); any earlier [`Piece::Part`]s
    /// were its beginning.
    Line(&'a [u8]),
    /// The first bytes of a line longer than the cap (or, at the end of the
    /// stream, of a line with no `\n`); more of the line follows.
    Part(&'a [u8]),
    /// Everything read so far has been handed out; the next call blocks
    /// until the child writes more (a good moment to pass batches on).
    Idle,
    /// The stream ended (a last line without `\n` came out as a `Line`).
    End,
}

/// A line splitter over `R` holding at most the read buffer plus `cap`.
pub struct Lines<R> {
    reader: BufReader<R>,
    pending: Vec<u8>,
    cap: usize,
    consume: usize,
    clear_pending: bool,
    idle_reported: bool,
    ended: bool,
}

/// The read buffer's size.
const READ_BUFFER: usize = 64 * 1024;

impl<R: Read> Lines<R> {
    /// Splits `reader`'s bytes into lines of at most `cap` bytes (at least 1).
    pub fn new(reader: R, cap: usize) -> Self {
        Lines {
            reader: BufReader::with_capacity(READ_BUFFER, reader),
            pending: Vec::new(),
            cap: cap.max(1),
            consume: 0,
            clear_pending: false,
            idle_reported: false,
            ended: false,
        }
    }

    /// The next piece of the stream. Read errors other than an interrupted
    /// read end the stream.
    pub fn next(&mut self) -> io::Result<Piece<'_>> {
        self.reader.consume(std::mem::take(&mut self.consume));
        if std::mem::take(&mut self.clear_pending) {
            self.pending.clear();
        }
        loop {
            if self.ended {
                return Ok(Piece::End);
            }
            if self.reader.buffer().is_empty() && !self.idle_reported {
                self.idle_reported = true;
                return Ok(Piece::Idle);
            }
            let buffer = match self.reader.fill_buf() {
                Ok(buffer) => buffer,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.idle_reported = false;
            if buffer.is_empty() {
                self.ended = true;
                if self.pending.is_empty() {
                    return Ok(Piece::End);
                }
                self.clear_pending = true;
                return Ok(Piece::Line(&self.pending));
            }
            let room = self.cap - self.pending.len();
            match memchr::memchr(b'\n', buffer) {
                Some(end) if end <= room => {
                    self.consume = end + 1;
                    if self.pending.is_empty() {
                        return Ok(Piece::Line(&self.reader.buffer()[..end]));
                    }
                    self.pending.extend_from_slice(&buffer[..end]);
                    self.clear_pending = true;
                    return Ok(Piece::Line(&self.pending));
                }
                _ => {
                    let take = room.min(buffer.len());
                    self.pending.extend_from_slice(&buffer[..take]);
                    self.reader.consume(take);
                    if self.pending.len() == self.cap {
                        self.clear_pending = true;
                        return Ok(Piece::Part(&self.pending));
                    }
                }
            }
        }
    }

    /// Whether more of the stream can be read within `timeout` (waiting
    /// at most that long): at once when some is read and not handed out.
    pub fn more_within(&self, timeout: Duration) -> bool
    where
        R: Arrival,
    {
        !self.reader.buffer().is_empty() || self.reader.get_ref().arrives_within(timeout)
    }

    /// Takes the beginning of a line read so far (for output shown while
    /// its line is still being written).
    pub fn take_pending(&mut self) -> Option<Vec<u8>> {
        if self.clear_pending || self.pending.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every piece of `input` split at `cap`, idle markers left out.
    fn pieces(input: &[u8], cap: usize) -> Vec<(bool, String)> {
        let mut lines = Lines::new(input, cap);
        let mut out = Vec::new();
        loop {
            match lines.next().unwrap() {
                Piece::Line(l) => out.push((true, String::from_utf8_lossy(l).into_owned())),
                Piece::Part(p) => out.push((false, String::from_utf8_lossy(p).into_owned())),
                Piece::Idle => {}
                Piece::End => return out,
            }
        }
    }

    #[test]
    fn lines_come_out_without_their_newline_and_a_last_line_without_one_too() {
        assert_eq!(
            pieces(b"one\ntwo\n\r50%", 100),
            [(true, "one".into()), (true, "two".into()), (true, "\r50%".into())]
        );
        assert_eq!(pieces(b"", 100), []);
    }

    #[test]
    fn long_lines_are_split_at_the_cap() {
        assert_eq!(
            pieces(b"abcdefg\nhi\n", 3),
            [
                (false, "abc".into()),
                (false, "def".into()),
                (true, "g".into()),
                (true, "hi".into())
            ]
        );
        assert_eq!(pieces(b"abc\n", 3), [(true, "abc".into())]);
    }

    /// A reader that hands out its chunks one read at a time.
    struct Chunks(Vec<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let chunk = self.0.remove(0);
            buf[..chunk.len()].copy_from_slice(&chunk);
            Ok(chunk.len())
        }
    }

    #[test]
    fn lines_spanning_reads_are_joined_and_idle_is_said_between_reads() {
        let mut lines = Lines::new(Chunks(vec![b"ab".to_vec(), b"c\nd".to_vec()]), 100);
        assert_eq!(lines.next().unwrap(), Piece::Idle);
        assert_eq!(lines.next().unwrap(), Piece::Idle);
        assert_eq!(lines.take_pending(), Some(b"ab".to_vec()));
        assert_eq!(lines.next().unwrap(), Piece::Line(b"c"));
        assert_eq!(lines.next().unwrap(), Piece::Idle);
        assert_eq!(lines.next().unwrap(), Piece::Line(b"d"));
        assert_eq!(lines.next().unwrap(), Piece::End);
    }

    #[test]
    fn memory_stays_bounded_for_a_stream_without_newlines() {
        let input = vec![b'x'; 1 << 20];
        let mut lines = Lines::new(&input[..], 1000);
        let mut parts = 0;
        loop {
            match lines.next().unwrap() {
                Piece::Part(p) | Piece::Line(p) => {
                    assert!(p.len() <= 1000);
                    parts += 1;
                }
                Piece::Idle => {}
                Piece::End => break,
            }
        }
        assert!(lines.pending.capacity() <= 2000);
        assert!(parts >= (1 << 20) / 1000);
    }
}
