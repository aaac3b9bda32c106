//! `--plot FILE.svg`: throughput (MiB/s, or ops/s when no bytes move) and latency (p50 and p99)
//! per operation over the run's seconds, drawn with plotters' SVG backend (no system fonts
//! needed: text stays SVG text).
//!
//! Invariant: the chart shows the per-second series exactly as the report holds it; trimmed
//! (warm-up) seconds are drawn too, with the statistics window shaded.

use super::run_report::RunReport;
use plotters::prelude::*;
use std::path::Path;

/// Chart size in pixels.
const PLOT_WIDTH_PX: u32 = 1000;
const PLOT_HEIGHT_PX: u32 = 700;
const MIB: f64 = 1024.0 * 1024.0;

fn color(i: usize) -> RGBColor {
    [RED, BLUE, GREEN, MAGENTA][i % 4]
}

/// Draws `r` into `path`.
pub(crate) fn draw(r: &RunReport, path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("--plot {}: {e}", path.display());
    let root = SVGBackend::new(path, (PLOT_WIDTH_PX, PLOT_HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(PLOT_HEIGHT_PX / 2);
    let by_bytes = r.series.iter().any(|s| s.bytes > 0);
    let (unit, throughput): Metric = match by_bytes {
        true => ("MiB/s", |s| s.bytes as f64 / MIB),
        false => ("ops/s", |s| s.ops as f64),
    };
    let title = format!(
        "{} on {} connections: {unit} per second",
        r.params.workload, r.params.concurrency
    );
    panel(&top, r, &title, unit, &[("", throughput)]).map_err(|e| err(&e))?;
    let p50 = |s: &super::stats::SecondRow| s.p50_ms;
    let p99 = |s: &super::stats::SecondRow| s.p99_ms;
    panel(
        &bottom,
        r,
        "latency per second (ms)",
        "ms",
        &[(" p50", p50), (" p99", p99)],
    )
    .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

type Metric<'a> = (&'a str, fn(&super::stats::SecondRow) -> f64);

/// One chart: for every operation and metric, a line over the seconds.
fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    r: &RunReport,
    title: &str,
    y_desc: &str,
    metrics: &[Metric],
) -> Result<(), Box<dyn std::error::Error>> {
    let x_max = r.series.iter().map(|s| s.second + 1).max().unwrap_or(1) as f64;
    let y_max = r
        .series
        .iter()
        .flat_map(|s| metrics.iter().map(move |(_, f)| f(s)))
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("second")
        .y_desc(y_desc)
        .draw()?;
    let (from, to) = (f64::from(r.window.from), f64::from(r.window.to));
    chart.draw_series(std::iter::once(Rectangle::new(
        [(from, 0.0), (to, y_max)],
        RGBColor(0, 0, 0).mix(0.05).filled(),
    )))?;
    let mut i = 0;
    for op in r.operations.iter().map(|o| o.op.as_str()) {
        for (suffix, f) in metrics {
            let c = color(i);
            i += 1;
            let points = r
                .series
                .iter()
                .filter(|s| s.op == op)
                .map(|s| (f64::from(s.second) + 0.5, f(s)));
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))?
                .label(format!("{op}{suffix}"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
