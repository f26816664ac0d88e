//! The page of one run: what ran with which params, when and how it ended
//! (the error and its kind if it failed), a chart of each step's progress
//! over time, a chart per step of each numeric metric over its updates with
//! every key's final value, the workflow steps' times, and the logs and
//! messages with their levels, filterable by level and text.

use std::fmt::Write as _;

use serde_json::Value;

use super::chart::{self, Chart, Series};
use super::html::{escape, foot, head, pretty_json, seconds, time};
use super::trace::{LogRow, Outcome, RunTrace, StepMetrics, MAX_LOG_ROWS};
use crate::events::Level;

/// Metric charts per step at most (the final values table lists more).
const MAX_CHARTS_PER_STEP: usize = 48;
/// Rows of a step's final metrics table at most.
const MAX_FINAL_ROWS: usize = 200;

/// The whole page of `trace`, read from the file named `source`.
pub fn render(trace: &RunTrace, source: &str) -> String {
    let plugin = trace.plugin.as_deref().unwrap_or("unknown plugin");
    let action = trace.action.as_deref().unwrap_or("unknown action");
    let mut page = String::with_capacity(64 * 1024);
    head(&mut page, &format!("{plugin} {action}: run report"));
    let (badge, class) = match trace.outcome() {
        Outcome::Succeeded { .. } => ("succeeded".to_owned(), "ok"),
        Outcome::Failed { kind, .. } => (format!("failed: {kind}"), "failed"),
        Outcome::Unfinished => ("no outcome in the file".to_owned(), "unfinished"),
    };
    let _ = writeln!(
        page,
        "<header><h1>{} · {}</h1><span class=\"badge {class}\" id=\"outcome\">{}</span></header>",
        escape(plugin),
        escape(action),
        escape(&badge)
    );
    warnings(&mut page, trace);
    facts(&mut page, trace);
    params(&mut page, trace);
    outcome(&mut page, trace);
    progress(&mut page, trace);
    metrics(&mut page, trace);
    steps(&mut page, trace);
    logs(&mut page, trace);
    foot(&mut page, source, Some(LOG_FILTER_SCRIPT));
    page
}

fn warnings(page: &mut String, trace: &RunTrace) {
    if trace.outcomes_seen > 1 {
        let _ = writeln!(
            page,
            "<p class=\"error\">This file holds {} outcomes: more than one run wrote to it (an events file belongs to one run). They are shown together; the outcome is the last.</p>",
            trace.outcomes_seen
        );
    }
    if trace.unreadable_lines > 0 {
        let named: Vec<String> = trace
            .unreadable
            .iter()
            .map(|u| format!("line {}: {}", u.line, escape(&u.reason)))
            .collect();
        let _ = writeln!(
            page,
            "<p class=\"error\">{} lines of the file are not events and were skipped ({}).</p>",
            trace.unreadable_lines,
            named.join("; ")
        );
    }
}

fn facts(page: &mut String, trace: &RunTrace) {
    page.push_str("<section id=\"run\"><table class=\"facts\">");
    let mut row = |name: &str, value: String| {
        let _ = write!(page, "<tr><th>{name}</th><td>{value}</td></tr>");
    };
    let start = trace.start.as_ref();
    let version = |v: Option<&String>| v.map_or_else(|| "—".to_owned(), |v| escape(v).into_owned());
    row(
        "plugin",
        format!(
            "{} {}",
            escape(trace.plugin.as_deref().unwrap_or("—")),
            version(start.and_then(|s| s.plugin_version.as_ref()))
        ),
    );
    row("action", escape(trace.action.as_deref().unwrap_or("—")).into_owned());
    row("job id", escape(trace.job_id.as_deref().unwrap_or("—")).into_owned());
    row("started", trace.first_time.map_or_else(|| "—".to_owned(), time));
    row("last event", trace.last_time.map_or_else(|| "—".to_owned(), time));
    row("duration", trace.duration().map_or_else(|| "—".to_owned(), seconds));
    row("events", trace.events.to_string());
    if let Some(dropped) = trace.dropped_late_calls.filter(|d| *d > 0) {
        row(
            "late calls dropped",
            format!("{dropped} (from threads the action left running)"),
        );
    }
    row(
        "versions",
        format!(
            "plugin-api {}, loader {}",
            version(start.and_then(|s| s.plugin_api.as_ref())),
            version(start.and_then(|s| s.loader_version.as_ref()))
        ),
    );
    page.push_str("</table></section>\n");
}

fn params(page: &mut String, trace: &RunTrace) {
    page.push_str("<section id=\"params\"><h2>Params</h2>");
    match &trace.start {
        Some(start) => match (&start.params, start.params_bytes) {
            (Some(params), _) => {
                let _ = write!(page, "<pre>{}</pre>", pretty_json(params));
            }
            (None, Some(bytes)) => {
                let _ = write!(
                    page,
                    "<p class=\"note\">{bytes} bytes of params: too long to be recorded in the events file.</p>"
                );
            }
            (None, None) => page.push_str("<p class=\"note\">None recorded.</p>"),
        },
        None => page.push_str(
            "<p class=\"note\">Not recorded: the file has no <code>run_start</code> event (an older loader wrote it, or the plugin could not be loaded).</p>",
        ),
    }
    page.push_str("</section>\n");
}

fn outcome(page: &mut String, trace: &RunTrace) {
    page.push_str("<section id=\"result\">");
    match trace.outcome() {
        Outcome::Succeeded { result } => {
            let _ = write!(page, "<h2>Result</h2><pre>{}</pre>", pretty_json(result));
        }
        Outcome::Failed {
            message,
            kind,
            details,
        } => {
            let _ = write!(
                page,
                "<h2>Error</h2><div class=\"error\" id=\"error\"><p><b>{}</b> <span class=\"badge failed\">{}</span></p>",
                escape(message),
                escape(kind)
            );
            if !details.is_null() {
                let _ = write!(page, "<pre>{}</pre>", pretty_json(details));
            }
            page.push_str("</div>");
        }
        Outcome::Unfinished => page.push_str(
            "<h2>Outcome</h2><p class=\"error\">The file ends without a result or an error: the run was still going when it was read, or the loader was killed.</p>",
        ),
    }
    page.push_str("</section>\n");
}

fn progress(page: &mut String, trace: &RunTrace) {
    if trace.progress.is_empty() {
        return;
    }
    let series: Vec<Series> = trace
        .progress
        .iter()
        .map(|p| Series {
            name: p.step.clone().unwrap_or_else(|| "overall".to_owned()),
            points: p.points.clone(),
        })
        .collect();
    let chart = Chart {
        label: "progress per step".to_owned(),
        x_label: "seconds since the run started".to_owned(),
        series,
        y_range: Some((0.0, 100.0)),
        x_from_zero: true,
        wide: true,
    };
    let states: Vec<String> = trace
        .progress
        .iter()
        .map(|p| {
            let name = escape(p.step.as_deref().unwrap_or("overall")).into_owned();
            match &p.last {
                Some((current, total, status)) => format!("{name} {current}/{total} {}", escape(status)),
                None => name,
            }
        })
        .collect();
    let _ = writeln!(
        page,
        "<section id=\"progress\"><h2>Progress</h2><figure><figcaption>percent per step · last: {}</figcaption>{}</figure></section>",
        states.join(", "),
        chart::render(&chart)
    );
}

fn metrics(page: &mut String, trace: &RunTrace) {
    if trace.metrics.is_empty() {
        return;
    }
    page.push_str("<section id=\"metrics\"><h2>Metrics</h2>");
    for step in &trace.metrics {
        step_metrics(page, step);
    }
    page.push_str("</section>\n");
}

fn step_metrics(page: &mut String, step: &StepMetrics) {
    let name = step.step.as_deref().unwrap_or("(no step)");
    let _ = write!(
        page,
        "<h3>{} <span class=\"note\">{} updates</span></h3><div class=\"grid\">",
        escape(name),
        step.updates
    );
    for series in step.series.iter().take(MAX_CHARTS_PER_STEP) {
        let last = series.points.last().map_or(0.0, |p| p.1);
        let chart = Chart {
            label: format!("{name} {}", series.key),
            x_label: format!("update of step {name}"),
            series: vec![Series {
                name: series.key.clone(),
                points: series.points.clone(),
            }],
            y_range: None,
            x_from_zero: false,
            wide: false,
        };
        let _ = write!(
            page,
            "<figure class=\"metric\" data-step=\"{}\" data-key=\"{}\"><figcaption><b>{}</b> last {} · {} points</figcaption>{}</figure>",
            escape(name),
            escape(&series.key),
            escape(&series.key),
            escape(&chart::exact(last)),
            series.points.len(),
            chart::render(&chart)
        );
    }
    page.push_str("</div>");
    if step.series.len() > MAX_CHARTS_PER_STEP {
        let _ = write!(
            page,
            "<p class=\"note\">{} more numeric keys are not charted; their final values are below.</p>",
            step.series.len() - MAX_CHARTS_PER_STEP
        );
    }
    page.push_str("<details><summary>final values</summary><table><tr><th>key</th><th>value</th></tr>");
    for (key, value) in step.last.iter().take(MAX_FINAL_ROWS) {
        let shown = match value {
            Value::String(s) => escape(s).into_owned(),
            other => escape(&other.to_string()).into_owned(),
        };
        let _ = write!(page, "<tr><td>{}</td><td>{shown}</td></tr>", escape(key));
    }
    page.push_str("</table>");
    if step.last.len() > MAX_FINAL_ROWS {
        let _ = write!(
            page,
            "<p class=\"note\">… and {} more keys (the events file has them).</p>",
            step.last.len() - MAX_FINAL_ROWS
        );
    }
    page.push_str("</details>");
}

fn steps(page: &mut String, trace: &RunTrace) {
    if trace.steps.is_empty() {
        return;
    }
    page.push_str(
        "<section id=\"steps\"><h2>Workflow steps</h2><table><tr><th>step</th><th>outcome</th><th>time</th></tr>",
    );
    for step in &trace.steps {
        let outcome = match (step.skipped, step.success) {
            (true, _) => "skipped",
            (false, Some(true)) => "succeeded",
            (false, Some(false)) => "failed",
            (false, None) => "—",
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{outcome}</td><td class=\"num\">{}</td></tr>",
            escape(&step.step),
            step.elapsed.map_or_else(|| "—".to_owned(), seconds)
        );
    }
    page.push_str("</table></section>\n");
}

fn logs(page: &mut String, trace: &RunTrace) {
    let total: u64 = trace.log_counts.iter().sum();
    let _ = write!(
        page,
        "<section id=\"logs\"><h2>Logs and messages <span class=\"note\">{total} entries</span></h2>"
    );
    if total == 0 {
        page.push_str("<p class=\"note\">None.</p></section>\n");
        return;
    }
    page.push_str("<div class=\"filters\">");
    for (level, count) in Level::ALL.iter().zip(trace.log_counts) {
        if count == 0 {
            continue;
        }
        let checked = if *level == Level::Debug { "" } else { " checked" };
        let _ = write!(
            page,
            "<label><input type=\"checkbox\" value=\"{level}\"{checked}> {level} ({count})</label>"
        );
    }
    page.push_str(
        "<input type=\"search\" id=\"log-search\" placeholder=\"filter text\"> <span class=\"note\"><span id=\"log-shown\"></span> shown</span></div>",
    );
    if trace.logs_omitted > 0 {
        let _ = write!(
            page,
            "<p class=\"note\">Listed: the first and last entries and every warning or worse between, up to {MAX_LOG_ROWS}; {} entries are not listed (the events file has them all).</p>",
            trace.logs_omitted
        );
    }
    page.push_str(
        "<table id=\"log-table\"><thead><tr><th>time</th><th>level</th><th>step</th><th>event</th><th>text</th></tr></thead><tbody>",
    );
    for row in &trace.logs {
        log_row(page, row);
    }
    page.push_str("</tbody></table></section>\n");
}

fn log_row(page: &mut String, row: &LogRow) {
    let event = if row.kind == "message" {
        String::new()
    } else {
        escape(&row.event).into_owned()
    };
    let file = row
        .file
        .as_deref()
        .map(|f| format!(" (file: {})", escape(f)))
        .unwrap_or_default();
    let _ = write!(
        page,
        "<tr class=\"{level}\" data-level=\"{level}\"><td class=\"num\">+{:.3} s</td><td class=\"level\">{level}</td><td>{}</td><td>{event}</td><td class=\"text\">{}{file}</td></tr>",
        row.at,
        escape(row.step.as_deref().unwrap_or("")),
        escape(&row.text),
        level = row.level,
    );
}

/// Shows the log rows whose level is ticked and whose text holds the
/// search words.
const LOG_FILTER_SCRIPT: &str = "(function(){\
var boxes=document.querySelectorAll('#logs .filters input[type=checkbox]');\
var search=document.getElementById('log-search');\
var rows=document.querySelectorAll('#log-table tbody tr');\
var shown=document.getElementById('log-shown');\
if(!search){return;}\
function apply(){var on={};boxes.forEach(function(b){on[b.value]=b.checked;});\
var q=search.value.toLowerCase();var n=0;\
rows.forEach(function(r){var ok=on[r.dataset.level]&&(!q||r.textContent.toLowerCase().indexOf(q)>=0);r.hidden=!ok;if(ok){n++;}});\
shown.textContent=n;}\
boxes.forEach(function(b){b.addEventListener('change',apply);});\
search.addEventListener('input',apply);apply();})();";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::trace::{MetricSeries, ProgressSeries, RunStart};
    use serde_json::json;

    fn trace() -> RunTrace {
        let mut train = StepMetrics {
            step: Some("train".into()),
            updates: 3,
            series: vec![MetricSeries {
                key: "loss".into(),
                points: vec![(1.0, 0.9), (2.0, 0.5), (3.0, 0.25)],
            }],
            ..StepMetrics::default()
        };
        train.last.insert("loss".into(), json!(0.25));
        train.last.insert("note".into(), json!("<b>"));
        RunTrace {
            plugin: Some("demo".into()),
            action: Some("train".into()),
            start: Some(RunStart {
                params: Some(json!({"epochs": 3})),
                ..RunStart::default()
            }),
            first_time: Some(100.0),
            last_time: Some(102.5),
            outcome: Some(Outcome::Failed {
                message: "diverged <nan>".into(),
                kind: "failed".into(),
                details: json!({"epoch": 3}),
            }),
            outcomes_seen: 1,
            progress: vec![ProgressSeries {
                step: Some("train".into()),
                points: vec![(0.5, 33.3), (2.0, 100.0)],
                last: Some((3, 3, "completed".into())),
            }],
            metrics: vec![train],
            logs: vec![LogRow {
                seq: 1,
                at: 0.25,
                level: Level::Warning,
                kind: "message".into(),
                event: "message".into(),
                step: Some("train".into()),
                file: None,
                text: "low <memory>".into(),
            }],
            log_counts: [0, 0, 0, 1, 0, 0, 0],
            events: 9,
            ..RunTrace::default()
        }
    }

    #[test]
    fn the_page_has_every_part_and_escapes_the_plugins_text() {
        let page = render(&trace(), "run<1>.jsonl");
        for part in [
            "<h1>demo · train</h1>",
            "failed: failed",
            "&quot;epochs&quot;: 3",
            "<b>diverged &lt;nan&gt;</b>",
            "id=\"progress\"",
            "data-key=\"loss\"",
            "<td>note</td><td>&lt;b&gt;</td>",
            "low &lt;memory&gt;",
            "data-level=\"warning\"",
            "2.50 s",
            "run&lt;1&gt;.jsonl",
            "default-src 'none'",
        ] {
            assert!(page.contains(part), "{part} missing");
        }
        assert_eq!(
            page.matches("<svg class=\"chart\"").count(),
            2,
            "progress and one metric"
        );
        assert!(!page.contains("<memory>") && !page.contains("<nan>"));
        assert!(
            !page.contains("http://")
                || page.matches("http://").count() == page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
        );
    }
}
