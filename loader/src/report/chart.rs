//! Line charts as inline SVG, written by hand so that a report needs no
//! script, font or library to draw: axes with round ticks, one polyline per
//! series (thinned to [`MAX_POINTS`] with [`super::thin`]), the last point
//! of each series marked with its exact value, and a legend when there is
//! more than one series.

use std::fmt::Write as _;

use super::html::escape;
use super::thin::thin;

/// Points drawn per series at most.
pub const MAX_POINTS: usize = 1000;

/// The colours series take in turn.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2",
];

/// The width of a chart, and of a wide one (a whole row of the page).
const WIDTH: f64 = 560.0;
const WIDE: f64 = 1000.0;
const HEIGHT: f64 = 250.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A chart: its series, what its x axis counts, and, for percentages, a
/// fixed y range.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Names the chart for people using screen readers and for tests.
    pub label: String,
    pub x_label: String,
    pub series: Vec<Series>,
    pub y_range: Option<(f64, f64)>,
    /// The x axis starts at 0 rather than at the first point (a time axis).
    pub x_from_zero: bool,
    /// A whole row of the page wide.
    pub wide: bool,
}

/// The chart as an `<svg class="chart">` element.
pub fn render(chart: &Chart) -> String {
    let drawn: Vec<Vec<(f64, f64)>> = chart.series.iter().map(|s| thin(&s.points, MAX_POINTS)).collect();
    let all = || drawn.iter().flatten();
    let (x_min, x_max) = span(all().map(|p| p.0)).unwrap_or((0.0, 1.0));
    let x_min = if chart.x_from_zero { x_min.min(0.0) } else { x_min };
    let (x_min, x_max) = widen(x_min, x_max, false);
    let width = if chart.wide { WIDE } else { WIDTH };
    let (y_min, y_max) = match chart.y_range {
        Some(range) => range,
        None => {
            let (low, high) = span(all().map(|p| p.1)).unwrap_or((0.0, 1.0));
            widen(low, high, true)
        }
    };
    let plot_w = width - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |x: f64| LEFT + (x - x_min) / (x_max - x_min) * plot_w;
    let py = |y: f64| TOP + plot_h - (y - y_min) / (y_max - y_min) * plot_h;

    let mut svg = String::with_capacity(4096 + drawn.iter().map(|d| d.len() * 14).sum::<usize>());
    let points_drawn: usize = drawn.iter().map(Vec::len).sum();
    let _ = write!(
        svg,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{}" data-series="{}" data-points="{points_drawn}">"#,
        escape(&chart.label),
        chart.series.len()
    );
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#ccc"/>"##
    );
    svg.push_str(r##"<g font-size="11" fill="#555">"##);
    for tick in ticks(y_min, y_max, false) {
        let y = py(tick.value);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            tick.label
        );
    }
    let x_whole = all().all(|p| p.0.fract() == 0.0);
    for tick in ticks(x_min, x_max, x_whole) {
        let x = px(tick.value);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 15.0,
            tick.label
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0,
        escape(&chart.x_label)
    );
    for (i, (series, points)) in chart.series.iter().zip(&drawn).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let name = escape(&series.name);
        if points.len() > 1 {
            let _ = write!(
                svg,
                r#"<polyline class="series" data-name="{name}" fill="none" stroke="{color}" stroke-width="1.6" stroke-linejoin="round" points=""#
            );
            for (n, (x, y)) in points.iter().enumerate() {
                if n > 0 {
                    svg.push(' ');
                }
                let _ = write!(svg, "{:.1},{:.1}", px(*x), py(*y));
            }
            svg.push_str(r#""/>"#);
        }
        if let Some(&(x, y)) = series.points.last() {
            let _ = write!(
                svg,
                r#"<circle class="last" data-name="{name}" cx="{:.1}" cy="{:.1}" r="3.2" fill="{color}"><title>{name}: {} at {}</title></circle>"#,
                px(x),
                py(y),
                exact(y),
                exact(x)
            );
        }
    }
    if chart.series.len() > 1 {
        let mut x = LEFT;
        for (i, series) in chart.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="9" width="10" height="10" fill="{color}"/><text x="{:.1}" y="18" font-size="11" fill="#333">{}</text>"##,
                x + 14.0,
                escape(&series.name)
            );
            x += 24.0 + 6.5 * series.name.chars().count().min(24) as f64;
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The lowest and highest of `values`, if any.
fn span(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((low, high)) => Some((low.min(v), high.max(v))),
    })
}

/// A range with room: a flat range is opened around its value, and with
/// `pad` a little space is left above and below.
fn widen(low: f64, high: f64, pad: bool) -> (f64, f64) {
    if high - low <= f64::EPSILON * high.abs().max(1.0) {
        let room = (low.abs() * 0.1).max(1.0);
        return (low - room, high + room);
    }
    if pad {
        let room = (high - low) * 0.05;
        (low - room, high + room)
    } else {
        (low, high)
    }
}

struct Tick {
    value: f64,
    label: String,
}

/// About five round ticks between `low` and `high` (whole numbers only
/// when `whole`).
fn ticks(low: f64, high: f64, whole: bool) -> Vec<Tick> {
    let raw = (high - low) / 5.0;
    if raw <= 0.0 || !raw.is_finite() {
        return Vec::new();
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = magnitude
        * match raw / magnitude {
            n if n < 1.5 => 1.0,
            n if n < 3.0 => 2.0,
            n if n < 7.0 => 5.0,
            _ => 10.0,
        };
    let step = if whole { step.max(1.0) } else { step };
    let decimals = (-step.log10().floor()).clamp(0.0, 9.0) as usize;
    let scientific = high.abs().max(low.abs()) >= 1e7 || step < 1e-6;
    let mut value = (low / step).ceil() * step;
    let mut ticks = Vec::new();
    while value <= high + step * 1e-9 && ticks.len() < 12 {
        let shown = if value.abs() < step * 1e-9 { 0.0 } else { value };
        let label = if scientific {
            format!("{shown:.2e}")
        } else if step >= 1000.0 && shown.abs() >= 10_000.0 {
            thousands(shown)
        } else {
            format!("{shown:.decimals$}")
        };
        ticks.push(Tick { value, label });
        value += step;
    }
    ticks
}

/// A large round number as `250k` or `1.5M`.
fn thousands(value: f64) -> String {
    let (scaled, unit) = if value.abs() >= 1e6 {
        (value / 1e6, "M")
    } else {
        (value / 1e3, "k")
    };
    let text = format!("{scaled:.2}");
    format!("{}{unit}", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A value in the shortest text that reads back the same (whole numbers
/// without a fraction).
pub fn exact(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        return format!("{x:.0}");
    }
    serde_json::Number::from_f64(x).map_or_else(|| x.to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Series>) -> Chart {
        Chart {
            label: "loss <train>".into(),
            x_label: "update".into(),
            series,
            y_range: None,
            x_from_zero: false,
            wide: false,
        }
    }

    #[test]
    fn a_chart_draws_each_series_and_marks_its_last_point() {
        let svg = render(&chart(vec![
            Series {
                name: "loss".into(),
                points: vec![(1.0, 0.9), (2.0, 0.5), (3.0, 0.25)],
            },
            Series {
                name: "val_loss".into(),
                points: vec![(1.0, 1.0)],
            },
        ]));
        assert!(svg.starts_with(r#"<svg class="chart""#), "{svg}");
        assert!(svg.contains(r#"aria-label="loss &lt;train&gt;""#), "{svg}");
        assert_eq!(
            svg.matches("<polyline").count(),
            1,
            "a single point is a dot, not a line"
        );
        assert_eq!(svg.matches(r#"class="last""#).count(), 2);
        assert!(svg.contains("<title>loss: 0.25 at 3</title>"), "{svg}");
        assert!(svg.contains(r#"data-series="2""#));
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn a_long_series_is_thinned_and_keeps_its_last_value() {
        let points: Vec<(f64, f64)> = (1..=1_000_000).map(|i| (f64::from(i), 1.0 / f64::from(i))).collect();
        let svg = render(&chart(vec![Series {
            name: "loss".into(),
            points,
        }]));
        let drawn: usize = svg
            .split(r#"data-points=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(drawn <= MAX_POINTS, "{drawn}");
        assert!(
            svg.contains("<title>loss: 1e-6 at 1000000</title>"),
            "{}",
            &svg[svg.len() - 300..]
        );
        assert!(svg.len() < 40_000, "{} bytes", svg.len());
    }

    #[test]
    fn ticks_are_round() {
        let labels: Vec<String> = ticks(0.0, 100.0, false).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0", "20", "40", "60", "80", "100"]);
        let labels: Vec<String> = ticks(0.1536, 0.2377, false).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0.16", "0.18", "0.20", "0.22"]);
        assert!(ticks(1.0, 1.0, false).is_empty());
        let labels: Vec<String> = ticks(1.0, 3.0, true).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["1", "2", "3"], "update numbers are whole");
        let labels: Vec<String> = ticks(1.0, 1_000_000.0, true).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["200k", "400k", "600k", "800k", "1M"]);
    }
}
