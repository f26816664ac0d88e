//! A batch as a report shows it, read from its results file (`--results
//! PATH`, or the batch's stdout): one row per params line with its status,
//! attempts, time and outcome, and the counts and durations over all lines.

use std::io::BufRead;

use serde_json::Value;

/// A row's result or error text is cut to this many characters.
const MAX_OUTCOME_CHARS: usize = 300;

/// One line's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub line: u64,
    pub submission_id: String,
    pub status: String,
    pub attempts: u64,
    /// Seconds from the first attempt's start to the outcome (results files
    /// written before loaders recorded it have none).
    pub elapsed: Option<f64>,
    pub started_at: Option<String>,
    /// The error's kind, for a failed line.
    pub error_kind: Option<String>,
    /// The error's message, or the result as compact JSON; cut.
    pub outcome: String,
}

/// A batch's results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResults {
    /// In line order.
    pub rows: Vec<BatchRow>,
    pub unreadable_lines: u64,
    /// The first unreadable line's number and why.
    pub first_unreadable: Option<(u64, String)>,
}

impl BatchResults {
    /// How many rows have `status`.
    pub fn count(&self, status: &str) -> usize {
        self.rows.iter().filter(|r| r.status == status).count()
    }

    /// The recorded durations, sorted.
    pub fn sorted_durations(&self) -> Vec<f64> {
        let mut durations: Vec<f64> = self.rows.iter().filter_map(|r| r.elapsed).collect();
        durations.sort_by(f64::total_cmp);
        durations
    }
}

/// Whether a parsed JSON line looks like a batch outcome rather than an event.
pub fn is_batch_line(value: &Value) -> bool {
    value.get("kind").is_none()
        && value.get("line").is_some_and(Value::is_u64)
        && value.get("status").is_some_and(Value::is_string)
        && value.get("attempts").is_some()
}

/// Reads a results file; lines that are not outcomes are counted.
pub fn read_batch(input: impl BufRead) -> std::io::Result<BatchResults> {
    let mut results = BatchResults::default();
    for (index, text) in input.lines().enumerate() {
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let number = index as u64 + 1;
        match serde_json::from_str::<Value>(&text) {
            Ok(value) if is_batch_line(&value) => results.rows.push(row(&value)),
            Ok(_) => note_unreadable(&mut results, number, "not a batch outcome".to_owned()),
            Err(e) => note_unreadable(&mut results, number, e.to_string()),
        }
    }
    results.rows.sort_by_key(|r| r.line);
    Ok(results)
}

fn note_unreadable(results: &mut BatchResults, line: u64, reason: String) {
    results.unreadable_lines += 1;
    results.first_unreadable.get_or_insert((line, reason));
}

fn row(value: &Value) -> BatchRow {
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let error = value.get("error").filter(|e| !e.is_null());
    let mut outcome = match error {
        Some(error) => error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned),
        None => value.get("result").map(Value::to_string).unwrap_or_default(),
    };
    if let Some((cut, _)) = outcome.char_indices().nth(MAX_OUTCOME_CHARS) {
        outcome.truncate(cut);
        outcome.push('…');
    }
    BatchRow {
        line: value["line"].as_u64().unwrap_or(0),
        submission_id: text("submission_id"),
        status: text("status"),
        attempts: value.get("attempts").and_then(Value::as_u64).unwrap_or(0),
        elapsed: value.get("elapsed").and_then(Value::as_f64),
        started_at: value.get("started_at").and_then(Value::as_str).map(str::to_owned),
        error_kind: error
            .and_then(|e| e.get("kind"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_read_in_line_order() {
        let text = concat!(
            r#"{"line":3,"submission_id":"b-3-1","status":"succeeded","attempts":1,"result":{"square":9},"error":null,"started_at":"2026-01-01T00:00:00Z","elapsed":0.25}"#,
            "\n",
            r#"{"line":1,"submission_id":"b-1-2","status":"failed","attempts":2,"result":null,"error":{"message":"boom","kind":"failed","details":null}}"#,
            "\n\nnot json\n",
        );
        let results = read_batch(std::io::Cursor::new(text)).unwrap();
        assert_eq!(results.rows.len(), 2);
        assert_eq!(results.rows[0].line, 1);
        assert_eq!(results.rows[0].outcome, "boom");
        assert_eq!(results.rows[0].error_kind.as_deref(), Some("failed"));
        assert_eq!(results.rows[0].elapsed, None, "older results files have no time");
        assert_eq!(results.rows[1].outcome, r#"{"square":9}"#);
        assert_eq!(results.rows[1].elapsed, Some(0.25));
        assert_eq!((results.count("failed"), results.count("succeeded")), (1, 1));
        assert_eq!(results.unreadable_lines, 1);
        assert_eq!(results.first_unreadable.as_ref().unwrap().0, 4);
    }
}
