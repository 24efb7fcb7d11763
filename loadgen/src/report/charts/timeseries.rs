//! The time series chart: latency p99, deliveries/s and server RSS over the run.

use std::path::Path;

use crate::report::data;
use crate::results::{Summary, TransportResult};

use super::spec::{line_legend, Axis, ChartSpec, Line, LinePanel, Panel};
use super::transport_color;

/// Turns a run's time series into the points of one panel.
type SeriesPick = dyn Fn(&[data::SeriesRow]) -> Vec<(f64, f64)>;

pub(super) fn timeseries_chart(
    summary: &Summary,
    run_dir: &Path,
    runs: &[&TransportResult],
    at: &str,
) -> Option<ChartSpec> {
    let series: Vec<(&TransportResult, Vec<data::SeriesRow>)> = runs
        .iter()
        .filter_map(|r| data::load_timeseries(run_dir, r).map(|rows| (*r, rows)))
        .collect();
    if series.is_empty() {
        return None;
    }
    let t_max = series
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| r.t_s))
        .fold(1.0, f64::max);
    let x = || Axis::linear("time since the transport's run started (s)", 0.0, t_max);
    // Latency differs by orders of magnitude between transports: log beyond one decade.
    let panel = |title: &str, y_desc: &str, log_beyond: f64, pick: &SeriesPick| {
        let lines: Vec<Line> = series
            .iter()
            .map(|(r, rows)| Line {
                color: transport_color(&r.transport),
                dashed: false,
                markers: false,
                points: pick(rows),
            })
            .collect();
        let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
        let lo = ys
            .clone()
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let hi = ys.fold(0.0, f64::max);
        let y = if lo.is_finite() {
            Axis::auto_beyond(y_desc, lo, hi, log_beyond)
        } else {
            Axis::linear(y_desc, 0.0, 1.0)
        };
        Panel::Lines(LinePanel {
            title: title.into(),
            x: x(),
            y,
            lines,
        })
    };
    let panels = vec![
        panel(
            "Delivery latency p99, per second",
            "latency p99 (ms)",
            10.0,
            &|rows| {
                // Seconds without deliveries have no latency; a 0 would read as "instant".
                rows.iter()
                    .filter(|r| r.deliveries > 0)
                    .map(|r| (r.t_s, r.latency_p99_us as f64 / 1000.0))
                    .collect()
            },
        ),
        panel(
            "Deliveries per second",
            "events per second",
            100.0,
            &|rows| data::deliveries_per_second(rows),
        ),
        panel("Server memory (RSS)", "server RSS (MiB)", 100.0, &|rows| {
            rows.iter()
                .map(|r| (r.t_s, r.server_rss_bytes as f64 / 1_048_576.0))
                .collect()
        }),
    ];
    let transports: Vec<String> = series.iter().map(|(r, _)| r.transport.clone()).collect();
    Some(ChartSpec {
        name: "timeseries".into(),
        title: format!("Over the run — {}{at}", summary.scenario),
        size: (1100, 1100),
        cols: 1,
        legend: line_legend(&transports),
        panels,
        footnote: None,
    })
}
