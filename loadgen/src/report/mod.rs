//! Charts, the verdict and the human-readable reports of a run.
//!
//! `pushbench report DIR` calls [`write_report`]; `pushbench compare A B` calls [`compare`].
//! Everything is regenerated from what a run saved (`summary.json`, the embedded histograms,
//! `TRANSPORT/timeseries.jsonl`), so a report can be redrawn at any time without re-running.
//!
//! # Layout
//! - [`data`]: reading a run back — `summary.json`, time series, sweep labels, and grouping
//!   the runs of a sweep by swept value.
//! - [`verdict`](mod@verdict): the verdict on "SSE > WebSocket > polling", a pure function of a
//!   [`Summary`]; its module doc states the ranking and tie rules.
//! - [`faults`]: a run's faults read back: each fault across transports, the keep-alive
//!   each transport had against `idle_cut`, missing figures with their reasons.
//! - [`http2`]: HTTP/2 transports beside the HTTP/1.1 ones they ride over (connections
//!   held, server memory per stream and per TCP connection), and whether SSE over HTTP/2
//!   beats WebSocket where SSE over HTTP/1.1 lost to it.
//! - [`spread`]: a figure over repetitions: median, range and a bootstrap 95% interval.
//! - [`charts`]: the charts, described as data (panels of lines or bars) and drawn by one
//!   generic function, once per backend (PNG and SVG), so both files always agree.
//!   A folder: `spec`, `draw`, `numbers`, one module per chart family, `run`, `compare`.
//! - [`doc`]: a tiny document model rendered to Markdown and to self-contained HTML, so
//!   `report.md` and `report.html` never disagree.
//! - [`render`]: what goes into the reports (the document for a run and for a comparison).
//!
//! # Files written
//! ```text
//! RUN_DIR/report.md, RUN_DIR/report.html
//! RUN_DIR/charts/latency_spectrum.{png,svg}   delivery latency by percentile
//! RUN_DIR/charts/wire_bytes.{png,svg}         bytes per delivered event, down and up
//! RUN_DIR/charts/server_cost.{png,svg}        server memory per connection, CPU per event
//! RUN_DIR/charts/timeseries.{png,svg}         latency p99, deliveries/s, server RSS over time
//! RUN_DIR/charts/faults.{png,svg}             runs with faults only: recovery p50/p99 per
//!                                             fault, reconnects per second after each restart
//! RUN_DIR/charts/sweep.{png,svg}              sweeps only: each metric against the swept value
//! RUN_DIR/charts/http2.{png,svg}              runs with HTTP/2 transports: connections held,
//!                                             server RSS per stream and per connection
//! RUN_DIR/charts/deployment.{png,svg}         runs on Redis or behind nginx: latency, CPU
//!                                             per event, Redis memory per line, by deployment
//! OUT_DIR/compare.md, OUT_DIR/charts/compare_*.{png,svg}
//! ```
//! For a sweep, the per-run charts show the largest swept value (the heaviest load); the
//! sweep chart shows every value.

pub mod charts;
pub mod data;
pub mod doc;
pub mod faults;
pub mod http2;
pub mod render;
pub mod spread;
pub mod verdict;

use std::path::{Path, PathBuf};

pub use charts::{transport_color, ChartFile};
pub use verdict::{
    aggregates, verdict, Caveat, CaveatKind, Claim, FaultsVerdict, Figure, LossRow, Metric,
    MetricRow, RecoveryRow, Verdict, VerdictGroup,
};

use crate::results::Summary;

/// Folder, inside a run (or compare) folder, that holds the charts.
const CHARTS_DIR: &str = "charts";

/// What went wrong while reporting. Messages name the file or chart involved.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Summary(#[from] crate::results::ReadSummaryError),
    #[error("{path} has no transport runs to report")]
    NoRuns { path: PathBuf },
    #[error("{transport}: histogram {name:?} in summary.json is unreadable")]
    Histogram {
        transport: String,
        name: String,
        source: crate::results::DecodeHistogramError,
    },
    #[error("no usable font to draw chart text ({0}); install fontconfig and a TrueType font such as DejaVu (fonts-dejavu-core)")]
    Fonts(String),
    #[error("drawing chart {chart}")]
    Draw {
        chart: String,
        source: charts::DrawError,
    },
}

impl ReportError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What [`write_report`] wrote.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub charts: Vec<ChartFile>,
}

/// Reads `run_dir/summary.json` (and the time series it names) and writes the charts,
/// `report.md` and `report.html` into `run_dir`.
pub fn write_report(run_dir: &Path) -> Result<ReportFiles, ReportError> {
    let summary = data::load_summary(run_dir)?;
    let verdict = verdict(&summary);
    let charts_dir = run_dir.join(CHARTS_DIR);
    std::fs::create_dir_all(&charts_dir).map_err(|e| ReportError::io(&charts_dir, e))?;
    let charts = charts::render_run_charts(&summary, run_dir, &charts_dir)?;
    let doc = render::run_report(&summary, &verdict, &charts, run_dir);

    let markdown = run_dir.join("report.md");
    write_text(&markdown, &doc.to_markdown())?;
    let html = run_dir.join("report.html");
    write_text(&html, &doc.to_html(run_dir)?)?;
    Ok(ReportFiles {
        markdown,
        html,
        charts,
    })
}

/// Compares two runs: returns the text table (for the terminal) and writes the comparison
/// charts and `compare.md` into `out_dir`.
pub fn compare(dir_a: &Path, dir_b: &Path, out_dir: &Path) -> Result<String, ReportError> {
    let a = data::load_summary(dir_a)?;
    let b = data::load_summary(dir_b)?;
    let charts_dir = out_dir.join(CHARTS_DIR);
    std::fs::create_dir_all(&charts_dir).map_err(|e| ReportError::io(&charts_dir, e))?;
    let charts = charts::render_compare_charts(&a, &b, &charts_dir)?;
    let cmp = render::Comparison::new(&a, dir_a, &b, dir_b);
    let doc = cmp.document(&charts, out_dir);
    write_text(&out_dir.join("compare.md"), &doc.to_markdown())?;
    Ok(cmp.text_table())
}

fn write_text(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|e| ReportError::io(path, e))
}

/// The runs of a summary that measured something (ok or degraded), for code that must skip
/// failed ones.
pub(crate) fn ok_runs(summary: &Summary) -> impl Iterator<Item = &crate::results::TransportResult> {
    summary.runs.iter().filter(|r| r.status.is_measured())
}
