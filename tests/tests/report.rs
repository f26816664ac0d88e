//! `loader report` end to end: a sample training run's events file becomes
//! one self-contained HTML page with its params, outcome, loss and accuracy
//! curves and logs; headless Chromium renders it (the charts are in the DOM,
//! the screenshot is not blank, the page's script ran); a failed run shows
//! its error and kind; a long run's charts are thinned but end on its last
//! value; a batch's results file becomes a table of lines; `--open` starts
//! the browser named by $BROWSER.

use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::{json, Value};

/// Runs `PLUGIN ACTION --params PARAMS --events EVENTS` from `dir`; returns
/// the events file.
fn run_with_events(dir: &Path, work: &Path, action: [&str; 2], params: &Value) -> PathBuf {
    let events = work.join("run.jsonl");
    let params = params.to_string();
    let output = loader(
        dir,
        &[
            "run",
            action[0],
            action[1],
            "--params",
            &params,
            "--events",
            events.to_str().unwrap(),
            "-q",
        ],
        &[],
    );
    assert!(events.is_file(), "{}", stderr(&output));
    events
}

/// `loader report INPUT -o PAGE`; returns the page's text and stderr.
fn report(input: &Path, page: &Path, env: &[(&str, &str)], extra: &[&str]) -> (String, String) {
    let mut args = vec!["report", input.to_str().unwrap(), "-o", page.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = loader(Path::new("."), &args, env);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    (std::fs::read_to_string(page).unwrap(), stderr(&output))
}

/// The `<figure class="metric">` of `key`, with its chart.
fn metric_figure<'a>(page: &'a str, key: &str) -> &'a str {
    let start = page
        .find(&format!("data-key=\"{key}\""))
        .unwrap_or_else(|| panic!("no chart of {key}"));
    let rest = &page[start..];
    &rest[..rest.find("</figure>").unwrap()]
}

/// The number in `data-points="N"` of a chart.
fn points_drawn(figure: &str) -> usize {
    let at = figure.find("data-points=\"").unwrap() + "data-points=\"".len();
    figure[at..].split('"').next().unwrap().parse().unwrap()
}

#[test]
fn a_training_run_becomes_a_page_with_its_params_outcome_and_curves() {
    let dir = samples_dir();
    let work = tempfile::tempdir().unwrap();
    let events = run_with_events(
        dir.path(),
        work.path(),
        ["tabular-trainer", "train"],
        &json!({"epochs": 6, "seed": 3}),
    );
    let page_path = work.path().join("report.html");
    let (page, said) = report(&events, &page_path, &[], &[]);
    assert!(said.starts_with(&format!("wrote {}", page_path.display())), "{said}");
    assert!(page.contains("<h1>tabular-trainer · train</h1>"), "{page}");
    assert!(page.contains(">succeeded</span>"));
    assert!(
        page.contains("&quot;epochs&quot;: 6") && page.contains("&quot;seed&quot;: 3"),
        "the params"
    );
    assert!(page.contains("<h2>Result</h2>") && page.contains("&quot;val_accuracy&quot;"));
    for key in ["loss", "accuracy", "val_accuracy", "epoch"] {
        let figure = metric_figure(&page, key);
        assert!(figure.contains("6 points"), "{key}: {figure}");
        assert!(figure.contains("<polyline"), "{key}");
    }
    let loss = metric_figure(&page, "loss");
    let last_loss = jsonl(&std::fs::read_to_string(&events).unwrap())
        .into_iter()
        .filter(|e| e["event"] == "metrics")
        .filter_map(|e| e["data"]["loss"].as_f64())
        .next_back()
        .unwrap();
    assert!(
        loss.contains(&format!(
            "<title>loss: {} at 6</title>",
            serde_json::Number::from_f64(last_loss).unwrap()
        )),
        "the last point carries the exact last value: {loss}"
    );
    assert!(page.contains("id=\"progress\""), "a progress chart");
    assert!(page.contains("Training completed"), "the logs");
    let outside: Vec<&str> = ["http://", "https://", " src=", " href=", "url("]
        .iter()
        .flat_map(|pattern| page.match_indices(pattern))
        .map(|(at, _)| &page[at..(at + 40).min(page.len())])
        .filter(|link| !link.starts_with("http://www.w3.org/2000/svg"))
        .collect();
    assert!(outside.is_empty(), "the page refers to the network: {outside:?}");
    assert!(page.contains("default-src 'none'"), "and forbids it");
}

#[test]
fn chromium_renders_the_charts() {
    let Some(chromium) = browser::chromium_or_skip("chromium_renders_the_charts") else {
        return;
    };
    let dir = samples_dir();
    let work = tempfile::tempdir().unwrap();
    let events = run_with_events(
        dir.path(),
        work.path(),
        ["tabular-trainer", "train"],
        &json!({"epochs": 5}),
    );
    let page = work.path().join("report.html");
    report(&events, &page, &[], &[]);

    let dom = browser::dom(&chromium, &page, work.path());
    assert!(
        dom.matches("<svg class=\"chart\"").count() >= 5,
        "progress and four metrics: {dom}"
    );
    assert!(dom.matches("<polyline class=\"series\"").count() >= 5, "{dom}");
    for key in ["loss", "accuracy"] {
        assert!(dom.contains(&format!("data-key=\"{key}\"")), "{key} chart in the DOM");
    }
    let shown = dom
        .split("<span id=\"log-shown\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next());
    assert!(
        shown.is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0)),
        "the page's log filter ran and counted the rows shown: {shown:?}"
    );

    let png = browser::screenshot(&chromium, &page, work.path(), 1200, 2400);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    let pixels = &pixels[..frame.buffer_size()];
    let near = |pixel: &[u8], rgb: [u8; 3]| pixel.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) < 40);
    let (mut inked, mut blue, mut red) = (0usize, 0usize, 0usize);
    for pixel in pixels.chunks(channels) {
        if !pixel[..3].iter().all(|c| *c >= 245) {
            inked += 1;
        }
        if near(&pixel[..3], [31, 119, 180]) {
            blue += 1;
        }
        if near(&pixel[..3], [214, 39, 40]) {
            red += 1;
        }
    }
    let total = pixels.len() / channels;
    assert!(
        inked * 50 > total,
        "the screenshot is blank: {inked} of {total} pixels inked"
    );
    assert!(blue > 500, "the curves (blue) are drawn: {blue} pixels");
    assert!(red > 100, "the second progress series (red) is drawn: {red} pixels");
}

#[test]
fn a_failed_run_shows_its_error_and_kind() {
    let dir = plugin_dir(&[fixture_library("probe", "probe-plugin")]);
    let work = tempfile::tempdir().unwrap();
    let events = run_with_events(dir.path(), work.path(), ["probe", "fail"], &json!({}));
    let (page, _) = report(&events, &work.path().join("failed.html"), &[], &[]);
    assert!(page.contains("failed: failed</span>"), "{page}");
    assert!(page.contains("<b>probe failed on purpose</b>"), "{page}");
    assert!(
        page.contains("&quot;reason&quot;: &quot;requested&quot;"),
        "the details"
    );
    assert!(page.contains("about to fail"), "the logs before the failure");
}

#[test]
fn a_long_runs_charts_are_thinned_and_end_on_the_last_value() {
    let dir = plugin_dir(&[fixture_library("flood", "flood-plugin")]);
    let work = tempfile::tempdir().unwrap();
    let events = run_with_events(
        dir.path(),
        work.path(),
        ["flood", "training"],
        &json!({"updates": 20_000}),
    );
    let (page, _) = report(&events, &work.path().join("long.html"), &[], &[]);
    let loss = metric_figure(&page, "loss");
    assert!(loss.contains("20000 points"), "{loss}");
    assert!(points_drawn(loss) <= 1000, "thinned: {}", points_drawn(loss));
    let last = jsonl(&std::fs::read_to_string(&events).unwrap())
        .into_iter()
        .filter(|e| e["event"] == "metrics")
        .filter_map(|e| e["data"]["loss"].as_f64())
        .next_back()
        .unwrap();
    let title = format!(
        "<title>loss: {} at 20000</title>",
        serde_json::Number::from_f64(last).unwrap()
    );
    assert!(loss.contains(&title), "{title} in {loss}");
    assert!(page.len() < 1_500_000, "{} bytes", page.len());
}

#[test]
fn a_batch_results_file_becomes_a_table_of_lines() {
    let dir = plugin_dir(&[fixture_library("probe", "batch-plugin")]);
    let work = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (1..=6)
        .map(|i| match i {
            4 => json!({"value": i, "fail": true}).to_string(),
            _ => json!({"value": i}).to_string(),
        })
        .collect();
    let params = work.path().join("batch.jsonl");
    std::fs::write(&params, lines.join("\n") + "\n").unwrap();
    let results = work.path().join("results.jsonl");
    let output = loader(
        dir.path(),
        &[
            "run",
            "batch-probe",
            "square",
            "--params-each",
            params.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--parallel",
            "2",
            "--retries",
            "1",
        ],
        &[],
    );
    assert_eq!(exit_code(&output), 1, "{}", stderr(&output));
    let (page, said) = report(&results, &work.path().join("batch.html"), &[], &[]);
    assert!(said.contains("batch of 6 lines"), "{said}");
    assert!(page.contains(">1 failed</span>"), "{page}");
    assert_eq!(page.matches("<tr data-status=").count(), 6);
    assert_eq!(page.matches("<tr data-status=\"failed\">").count(), 1);
    let failed = page.split("<tr data-status=\"failed\">").nth(1).unwrap();
    let failed = &failed[..failed.find("</tr>").unwrap()];
    assert!(failed.contains("<td class=\"num\">4</td>"), "line 4 failed: {failed}");
    assert!(
        failed.contains("<td class=\"num\">2</td>"),
        "after 2 attempts: {failed}"
    );
    assert!(
        failed.contains(" ms</td>") || failed.contains(" s</td>"),
        "with its time: {failed}"
    );
    assert!(page.contains("id=\"durations\""), "a chart of the times");
}

#[test]
fn open_starts_the_browser_named_by_browser() {
    let dir = samples_dir();
    let work = tempfile::tempdir().unwrap();
    let events = run_with_events(
        dir.path(),
        work.path(),
        ["tabular-trainer", "train"],
        &json!({"epochs": 1}),
    );
    let opened = work.path().join("opened.txt");
    let script = work.path().join("browser.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > {}\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let page = work.path().join("open.html");
    report(&events, &page, &[("BROWSER", script.to_str().unwrap())], &["--open"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !opened.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let target = std::fs::read_to_string(&opened).expect("the browser was started");
    assert_eq!(Path::new(&target), page.canonicalize().unwrap());
}

#[test]
fn input_that_is_not_a_run_or_batch_is_refused_by_name() {
    let work = tempfile::tempdir().unwrap();
    let text = work.path().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let output = loader(Path::new("."), &["report", text.to_str().unwrap()], &[]);
    assert_eq!(exit_code(&output), 2);
    let err = stderr(&output);
    assert!(
        err.contains("notes.txt is neither an events file nor a batch's results file: line 1 is not JSON"),
        "{err}"
    );
    assert!(err.contains("help: write one with `loader run"), "{err}");
    let missing = loader(Path::new("."), &["report", "/nonexistent/run.jsonl"], &[]);
    assert_eq!(exit_code(&missing), 2);
    assert!(
        stderr(&missing).contains("cannot read /nonexistent/run.jsonl"),
        "{}",
        stderr(&missing)
    );
}
