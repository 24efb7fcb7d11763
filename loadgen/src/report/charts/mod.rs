//! The charts, drawn with plotters to PNG and SVG.
//!
//! A chart is first described as data — a [`ChartSpec`]: a title, a legend strip and panels
//! of lines or bars — and then drawn by one generic function, once per backend. The PNG and
//! the SVG of a chart therefore come from the same drawing code and cannot differ.
//!
//! Axes carry their own ticks ([`Axis`]): logarithmic axes are drawn in log10 space with
//! ticks labelled in data units, and the latency spectrum's x axis is in "nines"
//! (x = −log10(1 − p)), so one key-point coordinate type serves every chart.
//!
//! Each transport has one colour on every chart ([`transport_color`], the Okabe–Ito
//! colour-blind-safe palette).
//!
//! # Layout
//! - this module: [`ChartFile`] and the transport colours ([`transport_color`]).
//! - `spec`: the description of a chart ([`ChartSpec`], [`Panel`], [`Axis`], ...).
//! - `draw`: drawing a description to PNG and SVG ([`render`], [`draw_chart`]).
//! - `numbers`: tick steps and labels ([`fmt_tick`]).
//! - one module per chart family: `spectrum` (latency by percentile), `bars` (wire bytes,
//!   server cost, comparison figures), `timeseries`, `faults` (recovery and reconnect
//!   storms), `sweep`, `deployment` (the cost of a deployment beside the backend), `http2`
//!   (HTTP/2 transports beside the HTTP/1.1 ones they ride over).
//! - `run` and `compare`: the charts of a run ([`render_run_charts`]) and of a comparison
//!   ([`render_compare_charts`]).

use std::path::PathBuf;

use plotters::prelude::*;

mod bars;
mod compare;
mod deployment;
mod draw;
mod faults;
mod http2;
mod numbers;
mod run;
mod spec;
mod spectrum;
mod sweep;
mod timeseries;

pub use compare::{headline_runs, render_compare_charts};
pub use draw::{draw_chart, probe_fonts, render, DrawError};
pub use numbers::fmt_tick;
pub use run::render_run_charts;
pub use spec::{Axis, Bar, BarGroup, BarPanel, ChartSpec, LegendEntry, Line, LinePanel, Panel};
pub use spectrum::spectrum_points;

const FONT: &str = "sans-serif";

/// The files of one chart.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartFile {
    /// File stem, e.g. `latency_spectrum`.
    pub name: String,
    pub title: String,
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// The colour of a transport, the same on every chart.
pub fn transport_color(transport: &str) -> RGBColor {
    match transport {
        "sse" => RGBColor(0, 114, 178),         // blue
        "ws" => RGBColor(230, 159, 0),          // orange
        "poll" => RGBColor(0, 158, 115),        // bluish green
        "long-poll" => RGBColor(204, 121, 167), // reddish purple
        // HTTP/2 variants: the rest of the palette, a lighter or nearby hue of their base.
        "sse-h2" => RGBColor(86, 180, 233),     // sky blue
        "poll-h2" => RGBColor(0, 0, 0),         // black
        "long-poll-h2" => RGBColor(213, 94, 0), // vermillion
        other => {
            // Unknown transports still get a stable colour, derived from the name.
            const MORE: [RGBColor; 4] = [
                RGBColor(213, 94, 0),
                RGBColor(86, 180, 233),
                RGBColor(120, 120, 120),
                RGBColor(0, 0, 0),
            ];
            let h = other.bytes().fold(0usize, |h, b| {
                h.wrapping_mul(31).wrapping_add(usize::from(b))
            });
            MORE[h % MORE.len()]
        }
    }
}
