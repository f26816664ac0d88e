//! The job reporter's write-ahead journal: every request for the backend is
//! written to a file before it is sent, and the file is the queue the
//! sender reads from. The sender holds at most one batch in memory, so
//! memory stays bounded however long the backend is down, and a loader that
//! is killed leaves a journal that a later `loader flush` (or the next run)
//! delivers.
//!
//! A journal is `<spool dir>/<run>.jsonl`, one JSON object a line:
//!
//! - first a header `{"journal": 1, "backend": URL, "job_id": ID, "run": RUN}`;
//! - `{"entry": {...}}`: a log entry, waiting for its batch;
//! - `{"seal": {"count": N, "key": K}}`: the last N unsealed entries are one
//!   `POST logs/` request with idempotency key K;
//! - `{"request": {"method", "path", "body", "key"}}`: any other request
//!   (job status and progress/metrics snapshots).
//!
//! Seals and requests are *units*, delivered in file order. Beside the
//! journal, `<run>.ack` holds how many units the backend has taken. A unit
//! keeps its key across retries and invocations, so a unit that reached the
//! backend but whose answer was lost is not applied twice. Entries after the
//! last seal were never sent: a later delivery batches them with new keys.
//! The writer holds an exclusive lock on the journal, so `loader flush`
//! skips journals whose run is still alive.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The header line of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub journal: u32,
    pub backend: String,
    pub job_id: String,
    pub run: String,
}

/// One request to deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub key: String,
    /// How many log entries it carries (0 for snapshots and status).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub entries: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Entry(Value),
    Seal { count: usize, key: String },
    Request(Unit),
}

/// The path of the acknowledgement file beside a journal.
pub fn ack_path(journal: &Path) -> PathBuf {
    journal.with_extension("ack")
}

/// How many units of `journal` were delivered.
pub fn read_ack(journal: &Path) -> u64 {
    fs::read_to_string(ack_path(journal))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Records that `count` units of `journal` were delivered (write, then
/// rename, so the file is never half-written).
pub fn write_ack(journal: &Path, count: u64) -> io::Result<()> {
    let path = ack_path(journal);
    let temporary = path.with_extension("ack.tmp");
    fs::write(&temporary, count.to_string())?;
    fs::rename(temporary, path)
}

/// Removes a fully delivered journal and its acknowledgement file.
pub fn remove(journal: &Path) -> io::Result<()> {
    let _ = fs::remove_file(ack_path(journal));
    fs::remove_file(journal)
}

/// Appends to a new journal; holds its lock while alive.
pub struct JournalWriter {
    path: PathBuf,
    out: BufWriter<File>,
    run: String,
    unsealed: usize,
    units: u64,
}

impl JournalWriter {
    /// Creates `<dir>/<run>.jsonl` with its header, locked.
    pub fn create(dir: &Path, header: &Header) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.jsonl", header.run));
        let file = OpenOptions::new().create_new(true).append(true).open(&path)?;
        file.try_lock().map_err(io::Error::other)?;
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(Self {
            path,
            out,
            run: header.run.clone(),
            unsealed: 0,
            units: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Log entries written since the last seal.
    pub fn unsealed(&self) -> usize {
        self.unsealed
    }

    /// Units written so far.
    pub fn units(&self) -> u64 {
        self.units
    }

    fn next_key(&mut self) -> String {
        self.units += 1;
        format!("{}-{}", self.run, self.units)
    }

    /// Adds a log entry (buffered: visible to the sender at the next seal).
    pub fn entry(&mut self, entry: &Value) -> io::Result<()> {
        self.out.write_all(b"{\"entry\":")?;
        serde_json::to_writer(&mut self.out, entry)?;
        self.out.write_all(b"}\n")?;
        self.unsealed += 1;
        Ok(())
    }

    /// Makes the unsealed entries one `POST logs/` unit, and flushes.
    pub fn seal(&mut self) -> io::Result<()> {
        if self.unsealed == 0 {
            return Ok(());
        }
        let key = self.next_key();
        let line = Line::Seal {
            count: self.unsealed,
            key,
        };
        self.write_line(&line)?;
        self.unsealed = 0;
        self.out.flush()
    }

    /// Adds a request unit (after sealing pending entries, so the order of
    /// the file is the order of events), and flushes.
    pub fn request(&mut self, method: &str, path: &str, body: Value) -> io::Result<()> {
        self.seal()?;
        let key = self.next_key();
        let unit = Unit {
            method: method.to_owned(),
            path: path.to_owned(),
            body,
            key,
            entries: 0,
        };
        self.write_line(&Line::Request(unit))?;
        self.out.flush()
    }

    fn write_line(&mut self, line: &Line) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, line)?;
        self.out.write_all(b"\n")
    }

    /// Writes everything buffered through to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads the units of a journal in order, as they become complete.
pub struct JournalReader {
    input: BufReader<File>,
    offset: u64,
    pending: Vec<Value>,
    header: Header,
    line: String,
    /// For journals left by an earlier run: batch trailing unsealed entries.
    tail_key: Option<String>,
    tail_batches: u64,
    batch_size: usize,
}

impl JournalReader {
    /// Opens a journal and reads its header.
    pub fn open(path: &Path, batch_size: usize) -> io::Result<Self> {
        let mut input = BufReader::new(File::open(path)?);
        let mut first = String::new();
        let read = input.read_line(&mut first)?;
        let header: Header = serde_json::from_str(first.trim_end())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not a journal header: {e}")))?;
        Ok(Self {
            input,
            offset: read as u64,
            pending: Vec::new(),
            header,
            line: String::new(),
            tail_key: None,
            tail_batches: 0,
            batch_size: batch_size.max(1),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// After this, entries that no seal covers are delivered too, in
    /// batches with keys of their own (for a journal whose writer is gone).
    pub fn batch_unsealed_tail(&mut self, key_prefix: String) {
        self.tail_key = Some(key_prefix);
    }

    /// The next complete unit, or `None` when the file has no more yet.
    pub fn next_unit(&mut self) -> io::Result<Option<Unit>> {
        loop {
            self.line.clear();
            let read = self.input.read_line(&mut self.line)?;
            if read == 0 || !self.line.ends_with('\n') {
                self.input.seek(SeekFrom::Start(self.offset))?;
                return Ok(self.unsealed_tail());
            }
            self.offset += read as u64;
            let line: Line = serde_json::from_str(self.line.trim_end()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("journal line at byte {} is damaged: {e}", self.offset - read as u64),
                )
            })?;
            match line {
                Line::Entry(entry) => self.pending.push(entry),
                Line::Seal { count, key } => {
                    let take = count.min(self.pending.len());
                    let entries: Vec<Value> = self.pending.drain(self.pending.len() - take..).collect();
                    return Ok(Some(logs_unit(entries, key)));
                }
                Line::Request(unit) => return Ok(Some(unit)),
            }
        }
    }

    fn unsealed_tail(&mut self) -> Option<Unit> {
        let prefix = self.tail_key.as_ref()?;
        if self.pending.is_empty() {
            return None;
        }
        self.tail_batches += 1;
        let key = format!("{prefix}-tail-{}", self.tail_batches);
        let take = self.pending.len().min(self.batch_size);
        let entries: Vec<Value> = self.pending.drain(..take).collect();
        Some(logs_unit(entries, key))
    }

    /// Log entries read but not in a unit yet.
    pub fn pending_entries(&self) -> usize {
        self.pending.len()
    }
}

fn logs_unit(entries: Vec<Value>, key: String) -> Unit {
    Unit {
        method: "POST".to_owned(),
        path: "logs/".to_owned(),
        entries: entries.len(),
        body: Value::Array(entries),
        key,
    }
}

/// The journals in `dir`, oldest name first.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(run: &str) -> Header {
        Header {
            journal: 1,
            backend: "http://127.0.0.1:1/".into(),
            job_id: "J".into(),
            run: run.into(),
        }
    }

    #[test]
    fn units_come_back_in_order_with_their_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = JournalWriter::create(dir.path(), &header("r1")).unwrap();
        writer
            .request("PATCH", "jobs/J/", json!({"status": "RUNNING"}))
            .unwrap();
        writer.entry(&json!({"event": "a"})).unwrap();
        writer.entry(&json!({"event": "b"})).unwrap();
        let mut reader = JournalReader::open(writer.path(), 200).unwrap();
        assert_eq!(reader.next_unit().unwrap().unwrap().body, json!({"status": "RUNNING"}));
        assert_eq!(reader.next_unit().unwrap(), None, "unsealed entries are not a unit yet");
        writer
            .request("PATCH", "jobs/J/", json!({"status": "SUCCEEDED"}))
            .unwrap();
        let logs = reader.next_unit().unwrap().unwrap();
        assert_eq!(
            (logs.path.as_str(), logs.entries, logs.key.as_str()),
            ("logs/", 2, "r1-2")
        );
        assert_eq!(logs.body, json!([{"event": "a"}, {"event": "b"}]));
        assert_eq!(reader.next_unit().unwrap().unwrap().key, "r1-3");
    }

    #[test]
    fn a_live_journal_is_locked_and_a_dead_ones_tail_is_batched() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = JournalWriter::create(dir.path(), &header("r2")).unwrap();
        for i in 0..5 {
            writer.entry(&json!({ "i": i })).unwrap();
        }
        writer.flush().unwrap();
        let path = writer.path().to_owned();
        assert!(
            File::open(&path).unwrap().try_lock().is_err(),
            "the writer holds the lock"
        );
        drop(writer);
        assert!(File::open(&path).unwrap().try_lock().is_ok());
        let mut reader = JournalReader::open(&path, 2).unwrap();
        reader.batch_unsealed_tail("r2-later".into());
        let sizes: Vec<usize> = std::iter::from_fn(|| reader.next_unit().unwrap())
            .map(|u| u.entries)
            .collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert_eq!(list(dir.path()), vec![path.clone()]);
        write_ack(&path, 3).unwrap();
        assert_eq!(read_ack(&path), 3);
        remove(&path).unwrap();
        assert!(list(dir.path()).is_empty());
    }
}
