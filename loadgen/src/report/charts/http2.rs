//! HTTP/2 beside HTTP/1.1: one group of bars per HTTP/1.1 transport that has an HTTP/2
//! counterpart (and WebSocket, which stays on HTTP/1.1), a solid bar for HTTP/1.1 and a light
//! one for HTTP/2, for the figures sharing connections changes: TCP connections held, server
//! RSS per stream and per TCP connection, and wire bytes per event. Drawn when the headline
//! group (the largest swept value, or the run) has an HTTP/2 transport. The figures are those
//! of the report's HTTP/2 section ([`crate::report::http2`]), medians over repetitions.

use plotters::prelude::*;

use crate::report::http2::{compare, ConnectionFigures, Http2Comparison};
use crate::report::verdict::{fmt_sig, verdict, Metric, VerdictGroup};
use crate::results::Summary;

use super::spec::{Bar, BarGroup, BarPanel, ChartSpec, LegendEntry, Panel};
use super::transport_color;

/// A figure of one transport in the panel's unit.
type Figure = fn(&ConnectionFigures, &VerdictGroup) -> Option<f64>;

const PANELS: [(&str, &str, Figure); 4] = [
    ("TCP connections held", "connections (peak)", |f, _| {
        f.tcp_connections
    }),
    (
        "Server memory per stream",
        "RSS per client (KiB)",
        |f, _| f.rss_per_stream.map(|b| b / 1024.0),
    ),
    (
        "Server memory per TCP connection",
        "RSS per connection held (KiB)",
        |f, _| f.rss_per_tcp_connection.map(|b| b / 1024.0),
    ),
    (
        "Wire bytes per event, downstream",
        "bytes per event",
        |f, g| {
            g.row(Metric::BytesDownPerEvent)
                .and_then(|row| row.figure(&f.transport))
                .and_then(|fig| fig.value)
        },
    ),
];

/// The chart, or `None` when the headline group ran no HTTP/2 transport.
pub(super) fn http2_chart(summary: &Summary) -> Option<ChartSpec> {
    let v = verdict(summary);
    let comparisons = compare(summary, &v);
    // The headline group: the last, as the other per-run charts show.
    let c: &Http2Comparison = comparisons.last()?;
    let group = v.group(c.sweep.as_deref())?;
    let mut groups: Vec<(String, Vec<&ConnectionFigures>)> = c
        .pairs
        .iter()
        .map(|p| {
            let bars = p.http1.iter().chain(p.http2.iter()).collect();
            (p.base.clone(), bars)
        })
        .collect();
    groups.extend(c.others.iter().map(|f| (f.transport.clone(), vec![f])));
    let panels = PANELS
        .iter()
        .map(|&(title, y_desc, figure)| {
            Panel::Bars(BarPanel {
                title: title.into(),
                y_desc: y_desc.into(),
                groups: groups
                    .iter()
                    .map(|(base, figures)| BarGroup {
                        label: base.clone(),
                        bars: figures
                            .iter()
                            .map(|f| Bar {
                                value: figure(f, group),
                                color: transport_color(base),
                                light: f.transport != *base,
                            })
                            .collect(),
                    })
                    .collect(),
                fmt: fmt_sig,
            })
        })
        .collect();
    let grey = RGBColor(90, 100, 115);
    let at = c
        .sweep
        .as_deref()
        .map(|s| format!(" at {s}"))
        .unwrap_or_default();
    Some(ChartSpec {
        name: "http2".into(),
        title: format!("HTTP/2 beside HTTP/1.1 — {}{at}", summary.scenario),
        size: (1200, 860),
        cols: 2,
        legend: vec![
            LegendEntry {
                label: "HTTP/1.1 (solid)".into(),
                color: grey,
                dashed: false,
                swatch: true,
                light: false,
            },
            LegendEntry {
                label: "HTTP/2 (light)".into(),
                color: grey,
                dashed: false,
                swatch: true,
                light: true,
            },
        ],
        panels,
        footnote: Some(
            "Medians over repetitions. WebSocket stays on HTTP/1.1. RSS per stream: the server's \
             RSS increase divided by clients; per TCP connection: divided by connections held."
                .into(),
        ),
    })
}
