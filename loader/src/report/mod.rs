//! `loader report`: one self-contained HTML page from a run's events file
//! (`--events PATH`) or a batch's results file (`--params-each ...
//! --results PATH`), which it tells apart by the first line.
//!
//! A run's page (`run_page`) shows what ran with which params, its
//! timing and outcome, progress and metrics charts and the logs; a batch's
//! (`batch_page`) a table of its lines. Charts are inline SVG drawn here
//! ([`chart`]), thinned to a bounded number of points ([`thin`]), so the page
//! needs no network, script library or font, and opens quickly for a run
//! of millions of events.

mod batch_page;
pub mod batch_results;
pub mod chart;
mod html;
mod run_page;
pub mod thin;
pub mod trace;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use batch_results::{read_batch, BatchResults};
pub use trace::{read_trace, RunTrace, TraceError};

/// What a report is drawn from.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A run's events file.
    Run(Box<RunTrace>),
    /// A batch's results file.
    Batch(BatchResults),
}

impl Input {
    /// The page for this input, naming `source` as where it came from.
    pub fn render(&self, source: &str) -> String {
        match self {
            Input::Run(trace) => run_page::render(trace, source),
            Input::Batch(results) => batch_page::render(results, source),
        }
    }
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not a regular file (a report reads a file written by `loader run --events PATH` or `--results PATH`)", path.display())]
    NotAFile { path: PathBuf },
    #[error("{} is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{} is neither an events file nor a batch's results file: line {line} {reason}", path.display())]
    NotRecognised { path: PathBuf, line: u64, reason: String },
    #[error("{}: {source}", path.display())]
    Trace { path: PathBuf, source: TraceError },
    #[error("cannot write the report {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// What the first line of a file says it is.
enum Kind {
    Events,
    Batch,
}

/// Reads `path` as an events file or a batch's results file.
pub fn read(path: &Path) -> Result<Input, ReportError> {
    let read_error = |source| ReportError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    if !file.metadata().map_err(read_error)?.is_file() {
        return Err(ReportError::NotAFile { path: path.to_owned() });
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let kind = detect(&mut reader, path)?;
    reader.rewind().map_err(read_error)?;
    match kind {
        Kind::Events => read_trace(reader)
            .map(|trace| Input::Run(Box::new(trace)))
            .map_err(|source| match source {
                TraceError::Io(source) => read_error(source),
                source => ReportError::Trace {
                    path: path.to_owned(),
                    source,
                },
            }),
        Kind::Batch => read_batch(reader).map(Input::Batch).map_err(read_error),
    }
}

/// Classifies the file by its first line that is not blank.
fn detect(reader: &mut impl BufRead, path: &Path) -> Result<Kind, ReportError> {
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| ReportError::Read {
                path: path.to_owned(),
                source,
            })?;
        number += 1;
        let text = &line[..memchr::memchr(0, &line).unwrap_or(line.len())];
        if read == 0 || (text.len() < line.len() && text.iter().all(u8::is_ascii_whitespace)) {
            return Err(ReportError::Empty { path: path.to_owned() });
        }
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let not_recognised = |reason: String| ReportError::NotRecognised {
            path: path.to_owned(),
            line: number,
            reason,
        };
        let value: Value = serde_json::from_slice(text).map_err(|e| not_recognised(format!("is not JSON: {e}")))?;
        return if value.get("kind").is_some_and(Value::is_string) && value.get("event").is_some() {
            Ok(Kind::Events)
        } else if batch_results::is_batch_line(&value) {
            Ok(Kind::Batch)
        } else {
            Err(not_recognised(
                "has neither an event's `kind` and `event` nor a batch outcome's `line`, `status` and `attempts`"
                    .to_owned(),
            ))
        };
    }
}

/// Writes `html` to `path` whole or not at all (a temporary file beside it,
/// renamed into place).
pub fn write(path: &Path, html: &str) -> Result<(), ReportError> {
    let write_error = |source| ReportError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = File::create(&temporary)
        .and_then(|mut file| file.write_all(html.as_bytes()).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn events_and_batch_results_are_told_apart() {
        let events = file(
            "\n{\"timestamp\":1.0,\"kind\":\"result\",\"event\":\"result\",\"plugin\":\"p\",\"action\":\"a\",\"data\":{\"ok\":true}}\n",
        );
        assert!(matches!(read(events.path()).unwrap(), Input::Run(_)));
        let batch = file("{\"line\":1,\"submission_id\":\"b-1-1\",\"status\":\"succeeded\",\"attempts\":1,\"result\":{},\"error\":null}\n");
        assert!(matches!(read(batch.path()).unwrap(), Input::Batch(_)));
    }

    #[test]
    fn other_files_are_refused_with_the_reason() {
        let empty = file("\n\0\0\0");
        assert!(matches!(read(empty.path()), Err(ReportError::Empty { .. })));
        let text = file("hello\n");
        let error = read(text.path()).unwrap_err().to_string();
        assert!(
            error.contains("is neither an events file nor a batch's results file: line 1 is not JSON"),
            "{error}"
        );
        let other = file("{\"a\": 1}\n");
        let error = read(other.path()).unwrap_err().to_string();
        assert!(error.contains("line 1 has neither an event's `kind`"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read(dir.path()), Err(ReportError::NotAFile { .. })));
        let missing = read(&dir.path().join("missing.jsonl")).unwrap_err().to_string();
        assert!(missing.starts_with("cannot read "), "{missing}");
    }

    #[test]
    fn a_report_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        write(&path, "<html></html>").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<html></html>");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        let error = write(&dir.path().join("missing/report.html"), "x").unwrap_err();
        assert!(error.to_string().starts_with("cannot write the report "), "{error}");
    }
}
