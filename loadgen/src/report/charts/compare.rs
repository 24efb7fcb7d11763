//! Comparison charts: run A against run B.

use std::path::Path;

use crate::report::data;
use crate::report::verdict::Metric;
use crate::report::ReportError;
use crate::results::{Summary, TransportResult};

use super::bars::bars_chart;
use super::draw::{probe_fonts, render};
use super::spectrum::{spectrum_chart, spectrum_lines};
use super::ChartFile;

/// The successful runs of a summary's last group (a sweep's largest value).
pub fn headline_runs(summary: &Summary) -> Vec<&TransportResult> {
    data::groups(summary)
        .last()
        .map(|g| {
            g.runs
                .iter()
                .copied()
                .filter(|r| r.status.is_measured())
                .collect()
        })
        .unwrap_or_default()
}

/// Run A's and run B's spectra overlaid (A solid, B dashed) and their key figures side by side.
pub fn render_compare_charts(
    a: &Summary,
    b: &Summary,
    charts_dir: &Path,
) -> Result<Vec<ChartFile>, ReportError> {
    probe_fonts()?;
    let (ra, rb) = (headline_runs(a), headline_runs(b));
    let who = format!(
        "A = {}/{}, B = {}/{}",
        a.scenario, a.run_id, b.scenario, b.run_id
    );
    let mut lines = spectrum_lines(&ra, false)?;
    lines.extend(spectrum_lines(&rb, true)?);
    lines.sort_by_key(|l| (data::transport_order(&l.transport), l.dashed));
    let specs = [
        spectrum_chart(
            "compare_latency_spectrum",
            "Delivery latency by percentile: A (solid) vs B (dashed)",
            &lines,
            Some(who.clone()),
        ),
        bars_chart(
            "compare_metrics",
            "Key figures: A (solid) vs B (light)",
            &[
                (
                    "Delivery latency p99",
                    "latency p99 (ms)",
                    Metric::LatencyP99,
                ),
                (
                    "Wire bytes per event, down",
                    "bytes per event",
                    Metric::BytesDownPerEvent,
                ),
                (
                    "Server memory per connection",
                    "RSS per connection (KiB)",
                    Metric::RssPerConnection,
                ),
                (
                    "Server CPU per delivered event",
                    "CPU per event (µs)",
                    Metric::CpuPerEvent,
                ),
            ],
            &[&ra, &rb],
            Some(who),
        ),
    ];
    specs.iter().map(|s| render(charts_dir, s)).collect()
}
