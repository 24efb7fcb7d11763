//! The sweep chart: each key metric against the swept value, one line per transport.

use crate::report::data::{self, Group};
use crate::report::verdict::Metric;
use crate::results::Summary;

use super::bars::chart_unit;
use super::spec::{line_legend, Axis, ChartSpec, Line, LinePanel, Panel};
use super::transport_color;

/// Each key metric against the swept value, one line per transport.
pub(super) fn sweep_chart(summary: &Summary, groups: &[Group<'_>]) -> ChartSpec {
    let points: Vec<&Group<'_>> = groups.iter().filter(|g| g.point.is_some()).collect();
    let key = points
        .first()
        .and_then(|g| g.point.as_ref())
        .map(|p| p.key.clone())
        .unwrap_or_else(|| "swept value".into());
    let numeric = points
        .iter()
        .all(|g| g.point.as_ref().and_then(|p| p.value).is_some());
    let duration = points
        .iter()
        .any(|g| g.point.as_ref().is_some_and(|p| p.is_duration));
    // x position of each swept value: the value itself, or its index when not numeric.
    let xs: Vec<f64> = points
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if numeric {
                g.point.as_ref().and_then(|p| p.value).unwrap_or(0.0)
            } else {
                i as f64
            }
        })
        .collect();
    let labels: Vec<String> = points
        .iter()
        .map(|g| g.point.as_ref().map(|p| p.raw.clone()).unwrap_or_default())
        .collect();
    let desc = if duration {
        format!("{key} (s)")
    } else {
        key.clone()
    };
    let x_axis = {
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut axis = if numeric && lo > 0.0 && hi / lo >= 10.0 {
            Axis::log(&desc, lo / 1.3, hi * 1.3)
        } else if numeric {
            let pad = ((hi - lo) * 0.06).max(hi.abs() * 0.05).max(1e-9);
            Axis::linear(&desc, lo - pad, hi + pad)
        } else {
            Axis::linear(&desc, -0.3, xs.len().saturating_sub(1) as f64 + 0.3)
        };
        // The swept values themselves make the clearest ticks, written as in the scenario.
        if xs.len() <= 12 {
            axis.ticks = xs.iter().copied().zip(labels.iter().cloned()).collect();
            if !axis.log {
                axis.minor.clear();
            }
        }
        axis
    };
    let mut transports: Vec<String> = Vec::new();
    for g in &points {
        for r in g.runs.iter().filter(|r| r.status.is_measured()) {
            if !transports.contains(&r.transport) {
                transports.push(r.transport.clone());
            }
        }
    }
    transports.sort_by_key(|t| data::transport_order(t));
    let metrics = [
        (
            Metric::LatencyP99,
            "Delivery latency p99",
            "latency p99 (ms)",
        ),
        (
            Metric::BytesDownPerEvent,
            "Wire bytes per event, down",
            "bytes per event",
        ),
        (
            Metric::RssPerConnection,
            "Server memory per connection",
            "RSS per connection (KiB)",
        ),
        (
            Metric::CpuPerEvent,
            "Server CPU per delivered event",
            "CPU per event (µs)",
        ),
    ];
    let panels = metrics
        .iter()
        .map(|&(metric, title, y_desc)| {
            let lines: Vec<Line> = transports
                .iter()
                .map(|t| Line {
                    color: transport_color(t),
                    dashed: false,
                    markers: true,
                    points: points
                        .iter()
                        .zip(&xs)
                        .filter_map(|(g, &x)| {
                            // The median over the value's repetitions (one run: its figure).
                            let values: Vec<f64> = g
                                .runs
                                .iter()
                                .filter(|r| &r.transport == t && r.status.is_measured())
                                .filter_map(|r| metric.value(r))
                                .collect();
                            let median = crate::report::spread::Spread::of(&values)?.median;
                            Some((x, chart_unit(metric, median)))
                        })
                        .collect(),
                })
                .collect();
            let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
            let lo = ys
                .clone()
                .filter(|v| *v > 0.0)
                .fold(f64::INFINITY, f64::min);
            let hi = ys.fold(0.0, f64::max);
            if !hi.is_finite() || lines.iter().all(|l| l.points.is_empty()) {
                return Panel::Empty {
                    title: title.into(),
                    message: "no figures".into(),
                };
            }
            let log_beyond = if metric == Metric::LatencyP99 {
                10.0
            } else {
                100.0
            };
            let y = if lo.is_finite() {
                Axis::auto_beyond(y_desc, lo, hi, log_beyond)
            } else {
                Axis::linear(y_desc, 0.0, hi.max(1.0))
            };
            Panel::Lines(LinePanel {
                title: title.into(),
                x: x_axis.clone(),
                y,
                lines,
            })
        })
        .collect();
    ChartSpec {
        name: "sweep".into(),
        title: format!(
            "How each transport's cost grows with {key} — {}",
            summary.scenario
        ),
        size: (1300, 980),
        cols: 2,
        legend: line_legend(&transports),
        panels,
        footnote: None,
    }
}
