//! The charts of a run: which charts a run gets, and drawing them.

use std::path::Path;

use crate::report::data::{self, Group};
use crate::report::verdict::Metric;
use crate::report::ReportError;
use crate::results::{Summary, TransportResult};

use super::bars::bars_chart;
use super::deployment::deployment_chart;
use super::draw::{probe_fonts, render};
use super::faults::faults_chart;
use super::http2::http2_chart;
use super::spectrum::{spectrum_chart, spectrum_lines};
use super::sweep::sweep_chart;
use super::timeseries::timeseries_chart;
use super::ChartFile;

/// Draws every chart of a run into `charts_dir`. For a sweep, the per-run charts show the
/// largest swept value and the sweep chart shows them all.
pub fn render_run_charts(
    summary: &Summary,
    run_dir: &Path,
    charts_dir: &Path,
) -> Result<Vec<ChartFile>, ReportError> {
    probe_fonts()?;
    let groups = data::groups(summary);
    let headline = groups.last().cloned().unwrap_or(Group {
        sweep: None,
        point: None,
        runs: Vec::new(),
    });
    let measured: Vec<&TransportResult> = headline
        .runs
        .iter()
        .copied()
        .filter(|r| r.status.is_measured())
        .collect();
    // One line or bar per transport: repetitions merged (histograms added, not averaged).
    let merged = data::merge_repetitions(&measured);
    let runs: Vec<&TransportResult> = merged.iter().collect();
    let at = headline.suffix();
    let name = &summary.scenario;

    let mut specs = vec![
        spectrum_chart(
            "latency_spectrum",
            &format!("Delivery latency by percentile — {name}{at}"),
            &spectrum_lines(&runs, false)?,
            None,
        ),
        bars_chart(
            "wire_bytes",
            &format!("Wire bytes per delivered event — {name}{at}"),
            &[
                (
                    "Downstream (server → client)",
                    "bytes per event",
                    Metric::BytesDownPerEvent,
                ),
                (
                    "Upstream (client → server)",
                    "bytes per event",
                    Metric::BytesUpPerEvent,
                ),
            ],
            &[&runs],
            None,
        ),
        bars_chart(
            "server_cost",
            &format!("Server cost per connection and per event — {name}{at}"),
            &[
                (
                    "Memory per connection",
                    "RSS per connection (KiB)",
                    Metric::RssPerConnection,
                ),
                (
                    "CPU per delivered event",
                    "server CPU per event (µs)",
                    Metric::CpuPerEvent,
                ),
            ],
            &[&runs],
            None,
        ),
    ];
    if let Some(spec) = timeseries_chart(summary, run_dir, &runs, &at) {
        specs.push(spec);
    }
    if let Some(spec) = faults_chart(name, &runs, &at) {
        specs.push(spec);
    }
    if data::is_sweep(summary) {
        specs.push(sweep_chart(summary, &groups));
    }
    if let Some(spec) = http2_chart(summary) {
        specs.push(spec);
    }
    if let Some(spec) = deployment_chart(summary) {
        specs.push(spec);
    }
    specs.iter().map(|s| render(charts_dir, s)).collect()
}
