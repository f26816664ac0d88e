//! The HTML around a report's content: escaping, the page's head (styles,
//! and a content security policy that forbids every network request), its
//! foot, and small formatting helpers shared by the run and batch pages.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::events::time::Rfc3339;

/// JSON shown in a page is cut to this many characters.
const MAX_JSON_CHARS: usize = 20_000;

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for element content and
/// attribute values alike.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `value` as indented JSON, cut to 20,000 characters, escaped.
pub fn pretty_json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    if let Some((cut, _)) = text.char_indices().nth(MAX_JSON_CHARS) {
        text.truncate(cut);
        text.push_str("\n… (cut; the file has it whole)");
    }
    escape(&text).into_owned()
}

/// Seconds for people: `1.6 ms`, `349 ms`, `2.35 s`, `12.4 s`, `2 min 05 s`,
/// `1 h 02 min`.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "—".to_owned();
    }
    match s {
        s if s < 0.01 => format!("{:.1} ms", s * 1000.0),
        s if s < 1.0 => format!("{:.0} ms", s * 1000.0),
        s if s < 10.0 => format!("{s:.2} s"),
        s if s < 60.0 => format!("{s:.1} s"),
        s if s < 3600.0 => format!("{} min {:02} s", (s / 60.0) as u64, (s % 60.0) as u64),
        s => format!("{} h {:02} min", (s / 3600.0) as u64, (s / 60.0 % 60.0) as u64),
    }
}

/// Unix seconds as an RFC 3339 time.
pub fn time(unix_seconds: f64) -> String {
    if !unix_seconds.is_finite() || unix_seconds < 0.0 {
        return "—".to_owned();
    }
    let at = UNIX_EPOCH + Duration::from_secs_f64(unix_seconds);
    Rfc3339::new(at.min(SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799)))
        .as_str()
        .to_owned()
}

/// The page's start: doctype, head with title and styles, and `<body>`.
pub fn head(page: &mut String, title: &str) {
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n",
        escape(title)
    );
}

/// The page's end: a footer naming the source, the script if any, and the
/// closing tags.
pub fn foot(page: &mut String, source: &str, script: Option<&str>) {
    let _ = writeln!(
        page,
        "<footer>Made by <code>loader report</code> {} from <code>{}</code>. Self-contained: it loads nothing from the network.</footer>",
        env!("CARGO_PKG_VERSION"),
        escape(source)
    );
    if let Some(script) = script {
        let _ = writeln!(page, "<script>{script}</script>");
    }
    page.push_str("</body></html>\n");
}

const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;margin:0 auto;max-width:1200px;padding:16px 24px;background:#fafafa}\
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}\
header{display:flex;align-items:center;gap:12px;flex-wrap:wrap}\
.badge{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;font-size:13px;color:#fff;background:#777}\
.ok{background:#2e7d32}.failed{background:#c62828}.unfinished{background:#ef6c00}.skipped{background:#777}\
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #e2e2e2;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f0f0f0}\
table.facts th{width:150px}\
pre{background:#fff;border:1px solid #e2e2e2;padding:8px;overflow:auto;max-height:360px;margin:4px 0}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px}\
figure{margin:0;background:#fff;border:1px solid #e2e2e2;padding:6px}figcaption{font-size:13px;margin:0 0 4px 4px}\
svg.chart{width:100%;height:auto;display:block;max-width:1000px}\
.error{border-left:4px solid #c62828;background:#fff;padding:8px 12px}\
.note{color:#666;font-size:13px}\
.filters{display:flex;gap:14px;flex-wrap:wrap;align-items:center;margin:6px 0}\
.filters input[type=search]{padding:3px 6px;min-width:240px}\
#log-table td.text{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word}\
tr.debug td{color:#888}tr.success td.level{color:#2e7d32}tr.warning td.level{color:#b26a00}\
tr.danger td.level,tr.error td.level,tr.critical td.level{color:#c62828;font-weight:600}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
footer{margin:32px 0 8px;color:#777;font-size:12px}";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(escape("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            pretty_json(&json!({"k": "</pre>"})),
            "{\n  &quot;k&quot;: &quot;&lt;/pre&gt;&quot;\n}"
        );
    }

    #[test]
    fn times_read_naturally() {
        assert_eq!(seconds(0.0016), "1.6 ms");
        assert_eq!(seconds(0.349), "349 ms");
        assert_eq!(seconds(2.349), "2.35 s");
        assert_eq!(seconds(12.44), "12.4 s");
        assert_eq!(seconds(125.0), "2 min 05 s");
        assert_eq!(seconds(3720.0), "1 h 02 min");
        assert_eq!(time(0.0), "1970-01-01T00:00:00.000000Z");
    }
}
