//! Bar charts drawn as SVG on the server (no charting script, nothing from a CDN): one bar
//! per run, oldest on the left, each with a `<title>` that says its value, and the chart
//! with a text alternative for screen readers.

use maud::{Markup, html};

/// One bar: its label (shown on hover and read by screen readers) and its value.
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// A CSS-free colour class: `ok`, `held` or `failed`.
    pub tone: &'static str,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 160.0;
const AXIS: f64 = 44.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 8.0;

fn colour(tone: &str) -> &'static str {
    match tone {
        "held" => "#9a6700",
        "failed" => "#cf222e",
        _ => "#0b5cad",
    }
}

/// A rounded axis maximum at or above `max`: 1, 2 or 5 times a power of ten.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|step| step * power)
        .find(|candidate| *candidate >= max)
        .unwrap_or(10.0 * power)
}

fn number(value: f64, unit: &str) -> String {
    if value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}{unit}")
    } else if value >= 1.0 {
        format!("{value:.1}{unit}")
    } else {
        format!("{value:.2}{unit}")
    }
}

/// A bar chart titled `title` of `bars` in `unit` (`" s"`, `""`).
pub fn bars(title: &str, unit: &str, bars: &[Bar]) -> Markup {
    let max = nice_max(bars.iter().map(|b| b.value).fold(0.0, f64::max));
    let plot_width = WIDTH - AXIS;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let slot = plot_width / bars.len().max(1) as f64;
    let bar_width = (slot * 0.7).max(1.0);
    let summary = match (bars.first(), bars.last()) {
        (Some(first), Some(last)) => format!(
            "{title}: {} runs, from {} to {}; the largest {}",
            bars.len(),
            first.label,
            last.label,
            number(bars.iter().map(|b| b.value).fold(0.0, f64::max), unit)
        ),
        _ => format!("{title}: no runs yet"),
    };
    html! {
        figure.chart {
            figcaption { (title) }
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
                role="img" aria-label=(summary) width="100%" preserveAspectRatio="xMinYMin meet" {
                @for fraction in [0.0, 0.5, 1.0] {
                    @let y = TOP + plot_height * (1.0 - fraction);
                    line x1=(AXIS) x2=(WIDTH) y1=(y) y2=(y) stroke="#d1d9e0" stroke-width="1" {}
                    text x=(AXIS - 6.0) y=(y + 4.0) text-anchor="end" font-size="11" fill="#59636e" {
                        (number(max * fraction, unit))
                    }
                }
                @for (i, bar) in bars.iter().enumerate() {
                    @let height = (bar.value / max * plot_height).max(if bar.value > 0.0 { 1.0 } else { 0.0 });
                    @let x = AXIS + slot * i as f64 + (slot - bar_width) / 2.0;
                    rect x=(format!("{x:.1}")) y=(format!("{:.1}", TOP + plot_height - height))
                        width=(format!("{bar_width:.1}")) height=(format!("{height:.1}")) fill=(colour(bar.tone)) {
                        title { (bar.label) ": " (number(bar.value, unit)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(0.7), 1.0);
        assert_eq!(nice_max(3.2), 5.0);
        assert_eq!(nice_max(12.0), 20.0);
        assert_eq!(nice_max(5000.0), 5000.0);
        assert_eq!(number(0.05, " s"), "0.05 s", "small axis steps stay apart");
        assert_eq!(number(2.5, ""), "2.5");
    }

    #[test]
    fn each_run_is_a_bar_with_its_value_in_words() {
        let svg = bars(
            "Duration",
            " s",
            &[
                Bar {
                    label: "run 1".into(),
                    value: 2.0,
                    tone: "ok",
                },
                Bar {
                    label: "run 2 <held>".into(),
                    value: 4.0,
                    tone: "held",
                },
            ],
        )
        .into_string();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(
            svg.contains("<title>run 2 &lt;held&gt;: 4 s</title>"),
            "{svg}"
        );
        assert!(svg.contains(r#"aria-label="Duration: 2 runs, from run 1 to run 2 &lt;held&gt;; the largest 4 s""#), "{svg}");
        assert!(svg.contains("#9a6700"), "held runs stand out");
        let empty = bars("Changes", "", &[]).into_string();
        assert!(empty.contains("no runs yet"));
    }
}
