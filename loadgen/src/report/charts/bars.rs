//! Bar charts: one panel per metric, one bar per transport and run set.

use plotters::prelude::*;

use crate::report::data;
use crate::report::verdict::{fmt_sig, Metric};
use crate::results::TransportResult;

use super::spec::{Bar, BarGroup, BarPanel, ChartSpec, LegendEntry, Panel};
use super::transport_color;

/// Bar panels, one per metric; one bar per run set (one set: a run; two: A and B).
pub(super) fn bars_chart(
    name: &str,
    title: &str,
    panels: &[(&str, &str, Metric)],
    sets: &[&[&TransportResult]],
    footnote: Option<String>,
) -> ChartSpec {
    let mut transports: Vec<String> = Vec::new();
    for set in sets {
        for r in set.iter() {
            if !transports.contains(&r.transport) {
                transports.push(r.transport.clone());
            }
        }
    }
    transports.sort_by_key(|t| data::transport_order(t));
    let panels: Vec<Panel> = panels
        .iter()
        .map(|&(title, y_desc, metric)| {
            let groups = transports
                .iter()
                .map(|t| BarGroup {
                    label: t.clone(),
                    bars: sets
                        .iter()
                        .enumerate()
                        .map(|(i, set)| Bar {
                            value: set
                                .iter()
                                .find(|r| &r.transport == t)
                                .and_then(|r| metric.value(r))
                                .map(|v| chart_unit(metric, v)),
                            color: transport_color(t),
                            light: i > 0,
                        })
                        .collect(),
                })
                .collect();
            Panel::Bars(BarPanel {
                title: title.into(),
                y_desc: y_desc.into(),
                groups,
                fmt: fmt_sig,
            })
        })
        .collect();
    let n = panels.len();
    let cols = if n == 4 { 2 } else { n };
    let legend = if sets.len() > 1 {
        vec![
            LegendEntry {
                label: "A (solid)".into(),
                color: RGBColor(90, 100, 115),
                dashed: false,
                swatch: true,
                light: false,
            },
            LegendEntry {
                label: "B (light)".into(),
                color: RGBColor(90, 100, 115),
                dashed: false,
                swatch: true,
                light: true,
            },
        ]
    } else {
        Vec::new()
    };
    ChartSpec {
        name: name.into(),
        title: title.into(),
        size: if n == 4 { (1200, 860) } else { (1200, 560) },
        cols,
        legend,
        panels,
        footnote,
    }
}

/// Converts a metric's figure into the unit its chart axis shows.
pub(super) fn chart_unit(metric: Metric, v: f64) -> f64 {
    match metric {
        Metric::LatencyP50 | Metric::LatencyP99 | Metric::LatencyP999 | Metric::ConnectP50 => {
            v / 1000.0
        }
        Metric::RssPerConnection => v / 1024.0,
        _ => v,
    }
}
