//! Delivers journals left by earlier runs (killed, or ended while the
//! backend was down): `loader flush`, and the start of every run that has a
//! backend. Journals go only to the backend given (with the credentials
//! configured for it), and only those recorded for that backend: the
//! address in a journal is never where anything is sent (a journal is a
//! file anyone able to write the state folder could forge), so a journal
//! recorded for another backend is left where it is and reported. Units
//! already acknowledged are skipped and the rest keep their idempotency
//! keys, so nothing arrives twice. A journal whose run is still alive
//! (locked) is left alone.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::http::{Endpoint, HttpClient, RequestError, RetryPolicy};
use super::journal::{self, JournalReader};

/// What became of one journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushOutcome {
    pub journal: PathBuf,
    pub job_id: String,
    pub delivered_requests: u64,
    pub delivered_entries: u64,
    /// Requests and entries still in the journal (0 when it was removed).
    pub remaining_requests: u64,
    pub remaining_entries: u64,
    pub error: Option<String>,
    /// The backend the journal was recorded for, when it is not the one
    /// given: nothing of it was sent, and it is left in the spool.
    pub other_backend: Option<String>,
}

/// Delivers to `endpoint` every journal in `spool_dir` recorded for it
/// (its URL); the others are reported with their backend, untouched. Each
/// journal gets at most `time_limit`.
pub fn flush_spool(
    spool_dir: &Path,
    endpoint: &Endpoint,
    timeout: Duration,
    time_limit: Duration,
    batch_size: usize,
) -> Vec<FlushOutcome> {
    let mut outcomes = Vec::new();
    for path in journal::list(spool_dir) {
        let Ok(lock) = File::open(&path) else { continue };
        if lock.try_lock().is_err() {
            continue;
        }
        let mut reader = match JournalReader::open(&path, batch_size) {
            Ok(reader) => reader,
            Err(e) => {
                outcomes.push(FlushOutcome {
                    journal: path.clone(),
                    job_id: String::new(),
                    delivered_requests: 0,
                    delivered_entries: 0,
                    remaining_requests: 0,
                    remaining_entries: 0,
                    error: Some(format!("unreadable journal: {e}")),
                    other_backend: None,
                });
                continue;
            }
        };
        if reader.header().backend != endpoint.url {
            outcomes.push(FlushOutcome {
                journal: path.clone(),
                job_id: reader.header().job_id.clone(),
                delivered_requests: 0,
                delivered_entries: 0,
                remaining_requests: 0,
                remaining_entries: 0,
                error: None,
                other_backend: Some(reader.header().backend.clone()),
            });
            continue;
        }
        let client = HttpClient::new(endpoint.clone(), timeout, RetryPolicy::default());
        outcomes.push(flush_one(&path, &mut reader, &client, time_limit));
        drop(lock);
    }
    outcomes
}

fn flush_one(path: &Path, reader: &mut JournalReader, client: &HttpClient, time_limit: Duration) -> FlushOutcome {
    let started = Instant::now();
    let acknowledged = journal::read_ack(path);
    reader.batch_unsealed_tail(format!("{}-tail", reader.header().run));
    let mut outcome = FlushOutcome {
        journal: path.to_owned(),
        job_id: reader.header().job_id.clone(),
        delivered_requests: 0,
        delivered_entries: 0,
        remaining_requests: 0,
        remaining_entries: 0,
        error: None,
        other_backend: None,
    };
    let mut position = 0u64;
    let mut stopped = false;
    loop {
        let unit = match reader.next_unit() {
            Ok(Some(unit)) => unit,
            Ok(None) => break,
            Err(e) => {
                outcome.error = Some(e.to_string());
                return outcome;
            }
        };
        position += 1;
        if position <= acknowledged {
            continue;
        }
        if stopped {
            outcome.remaining_requests += 1;
            outcome.remaining_entries += unit.entries as u64;
            continue;
        }
        let sent = client.request_with_key(&unit.method, &unit.path, Some(&unit.body), Some(&unit.key));
        match sent {
            Ok(_) => {
                outcome.delivered_requests += 1;
                outcome.delivered_entries += unit.entries as u64;
            }
            Err(error @ RequestError::Status { .. }) if !error.is_retryable() => {
                outcome.error = Some(format!("refused for good, skipped: {error}"));
            }
            Err(error) => {
                outcome.error = Some(error.to_string());
                outcome.remaining_requests += 1;
                outcome.remaining_entries += unit.entries as u64;
                stopped = true;
                continue;
            }
        }
        if let Err(e) = journal::write_ack(path, position) {
            outcome.error = Some(format!("cannot record delivery progress: {e}"));
        }
        if started.elapsed() > time_limit {
            stopped = true;
        }
    }
    if outcome.remaining_requests == 0 && outcome.error.is_none() {
        if let Err(e) = journal::remove(path) {
            outcome.error = Some(format!("delivered, but cannot remove the journal: {e}"));
        }
    }
    outcome
}
