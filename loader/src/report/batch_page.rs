//! The page of a batch: how many lines succeeded, failed or were skipped,
//! how long they took (median, 90th percentile, longest), a chart of each
//! line's time, and a table of the lines with status, attempts, time and
//! outcome.

use std::fmt::Write as _;

use super::batch_results::{BatchResults, BatchRow};
use super::chart::{self, Chart, Series};
use super::html::{escape, foot, head, seconds};

/// Rows listed at most: failed lines first, then the rest in line order.
const MAX_ROWS: usize = 5000;

/// The whole page of `results`, read from the file named `source`.
pub fn render(results: &BatchResults, source: &str) -> String {
    let mut page = String::with_capacity(32 * 1024);
    head(&mut page, "batch report");
    let failed = results.count("failed");
    let (badge, class) = if failed == 0 {
        ("every line succeeded".to_owned(), "ok")
    } else {
        (format!("{failed} failed"), "failed")
    };
    let _ = writeln!(
        page,
        "<header><h1>Batch · {} lines</h1><span class=\"badge {class}\" id=\"outcome\">{badge}</span></header>",
        results.rows.len()
    );
    if let Some((line, reason)) = &results.first_unreadable {
        let _ = writeln!(
            page,
            "<p class=\"error\">{} lines of the file are not batch outcomes and were skipped (line {line}: {}).</p>",
            results.unreadable_lines,
            escape(reason)
        );
    }
    summary(&mut page, results);
    durations_chart(&mut page, results);
    table(&mut page, results);
    foot(&mut page, source, None);
    page
}

fn summary(page: &mut String, results: &BatchResults) {
    let durations = results.sorted_durations();
    let at = |share: f64| -> String {
        if durations.is_empty() {
            return "—".to_owned();
        }
        // Nearest rank: the smallest time at least `share` of the lines take.
        let rank = (durations.len() as f64 * share).ceil() as usize;
        seconds(durations[rank.clamp(1, durations.len()) - 1])
    };
    let attempts: u64 = results.rows.iter().map(|r| r.attempts).sum();
    let _ = write!(
        page,
        "<section id=\"summary\"><table class=\"facts\">\
         <tr><th>succeeded</th><td>{}</td></tr><tr><th>failed</th><td>{}</td></tr><tr><th>skipped</th><td>{}</td></tr>\
         <tr><th>attempts</th><td>{attempts}</td></tr>\
         <tr><th>time per line</th><td>median {}, 90% within {}, longest {}</td></tr>\
         <tr><th>time of all lines</th><td>{}</td></tr></table>",
        results.count("succeeded"),
        results.count("failed"),
        results.count("skipped"),
        at(0.5),
        at(0.9),
        at(1.0),
        seconds(durations.iter().sum()),
    );
    if durations.len() < results.rows.len() - results.count("skipped") {
        page.push_str(
            "<p class=\"note\">Some lines have no time: the loader that wrote the file did not record it.</p>",
        );
    }
    page.push_str("</section>\n");
}

fn durations_chart(page: &mut String, results: &BatchResults) {
    let points: Vec<(f64, f64)> = results
        .rows
        .iter()
        .filter_map(|r| Some((r.line as f64, r.elapsed?)))
        .collect();
    if points.is_empty() {
        return;
    }
    let chart = Chart {
        label: "time per line".to_owned(),
        x_label: "line of the params file".to_owned(),
        series: vec![Series {
            name: "seconds".to_owned(),
            points,
        }],
        y_range: None,
        x_from_zero: false,
        wide: true,
    };
    let _ = writeln!(
        page,
        "<section id=\"durations\"><h2>Time per line</h2><figure><figcaption>seconds from a line's first attempt to its outcome</figcaption>{}</figure></section>",
        chart::render(&chart)
    );
}

fn table(page: &mut String, results: &BatchResults) {
    let mut listed: Vec<&BatchRow> = results.rows.iter().filter(|r| r.status == "failed").collect();
    listed.extend(results.rows.iter().filter(|r| r.status != "failed"));
    listed.truncate(MAX_ROWS);
    listed.sort_by_key(|r| r.line);
    page.push_str("<section id=\"lines\"><h2>Lines</h2>");
    if results.rows.len() > MAX_ROWS {
        let _ = write!(
            page,
            "<p class=\"note\">{MAX_ROWS} of {} lines are listed (every failed line first); the file has them all.</p>",
            results.rows.len()
        );
    }
    page.push_str(
        "<table id=\"batch-table\"><thead><tr><th>line</th><th>status</th><th>attempts</th><th>time</th><th>submission id</th><th>outcome</th></tr></thead><tbody>",
    );
    for row in listed {
        let class = match row.status.as_str() {
            "succeeded" => "ok",
            "failed" => "failed",
            _ => "skipped",
        };
        let outcome = match &row.error_kind {
            Some(kind) => format!("<b>{}</b>: {}", escape(kind), escape(&row.outcome)),
            None => escape(&row.outcome).into_owned(),
        };
        let _ = write!(
            page,
            "<tr data-status=\"{status}\"><td class=\"num\">{}</td><td><span class=\"badge {class}\">{status}</span></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><code>{}</code></td><td>{outcome}</td></tr>",
            row.line,
            row.attempts,
            row.elapsed.map_or_else(|| "—".to_owned(), seconds),
            escape(&row.submission_id),
            status = escape(&row.status),
        );
    }
    page.push_str("</tbody></table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u64, status: &str, elapsed: Option<f64>) -> BatchRow {
        BatchRow {
            line,
            submission_id: format!("b-{line}-1"),
            status: status.into(),
            attempts: if status == "failed" { 3 } else { 1 },
            elapsed,
            started_at: None,
            error_kind: (status == "failed").then(|| "panicked".to_owned()),
            outcome: if status == "failed" {
                "<boom>".into()
            } else {
                "{\"ok\":true}".into()
            },
        }
    }

    #[test]
    fn the_page_lists_every_line_with_its_time() {
        let results = BatchResults {
            rows: vec![
                row(1, "succeeded", Some(0.5)),
                row(2, "failed", Some(1.5)),
                row(3, "skipped", None),
            ],
            ..BatchResults::default()
        };
        let page = render(&results, "results.jsonl");
        assert!(page.contains("1 failed"));
        assert!(page.contains("<b>panicked</b>: &lt;boom&gt;"));
        assert_eq!(page.matches("<tr data-status=").count(), 3);
        assert!(
            page.contains("median 500 ms, 90% within 1.50 s, longest 1.50 s"),
            "{page}"
        );
        assert_eq!(page.matches("<svg class=\"chart\"").count(), 1);
    }
}
