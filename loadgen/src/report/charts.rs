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

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::{self, Group};
use super::verdict::{fmt_sig, Metric};
use super::ReportError;
use crate::results::{Summary, TransportResult};

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

// ---------------------------------------------------------------------------------------
// Chart descriptions
// ---------------------------------------------------------------------------------------

/// One axis: what it shows, its range in data units, scale and ticks.
#[derive(Clone, Debug)]
pub struct Axis {
    pub desc: String,
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    /// Tick positions in data units and their labels.
    pub ticks: Vec<(f64, String)>,
    /// Light grid lines, data units.
    pub minor: Vec<f64>,
}

impl Axis {
    /// A linear axis from `lo` to `hi` with about six round ticks.
    pub fn linear(desc: impl Into<String>, lo: f64, hi: f64) -> Axis {
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let step = nice_step(hi - lo, 6);
        let mut values = Vec::new();
        let mut v = (lo / step).ceil() * step;
        while v <= hi + step * 1e-9 {
            // Snap values like 0.30000000000000004 before labelling.
            values.push((v / step).round() * step);
            v += step;
        }
        let ticks = label_ticks(&values);
        Axis {
            desc: desc.into(),
            lo,
            hi,
            log: false,
            ticks,
            minor: Vec::new(),
        }
    }

    /// A log10 axis; `lo` must be positive. Ticks at powers of ten, plus 2× and 5× when the
    /// range spans few decades (otherwise there would be one or two labels).
    pub fn log(desc: impl Into<String>, lo: f64, hi: f64) -> Axis {
        let lo = lo.max(f64::MIN_POSITIVE);
        let hi = if hi > lo { hi } else { lo * 10.0 };
        let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        let within = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
        let mults: &[f64] = if (hi / lo).log10() <= 3.0 {
            &[1.0, 2.0, 5.0]
        } else {
            &[1.0]
        };
        let mut values = Vec::new();
        let mut minor = Vec::new();
        for d in d0..=d1 {
            let p = 10f64.powi(d);
            for m in 1..10 {
                let v = p * f64::from(m);
                if !within(v) {
                    continue;
                }
                if mults.contains(&f64::from(m)) {
                    values.push(v);
                } else {
                    minor.push(v);
                }
            }
        }
        let ticks = label_ticks(&values);
        Axis {
            desc: format!("{}, log scale", desc.into()),
            lo,
            hi,
            log: true,
            ticks,
            minor,
        }
    }

    /// Log scale when the data spans more than two decades, else linear from zero.
    pub fn auto(desc: impl Into<String>, data_lo: f64, data_hi: f64) -> Axis {
        Axis::auto_beyond(desc, data_lo, data_hi, 100.0)
    }

    /// Log scale when highest / lowest exceeds `ratio`, else linear from zero.
    pub fn auto_beyond(desc: impl Into<String>, data_lo: f64, data_hi: f64, ratio: f64) -> Axis {
        if data_lo > 0.0 && data_hi / data_lo > ratio {
            Axis::log(desc, data_lo / 1.4, data_hi * 1.4)
        } else {
            Axis::linear(desc, data_lo.min(0.0) * 1.1, data_hi.max(0.0) * 1.1)
        }
    }

    /// Maps a data value to plotting space.
    fn t(&self, v: f64) -> f64 {
        if self.log {
            v.log10()
        } else {
            v
        }
    }

    fn accepts(&self, v: f64) -> bool {
        v.is_finite() && (!self.log || v > 0.0)
    }

    fn label_at(&self, plotted: f64) -> String {
        self.ticks
            .iter()
            .find(|(v, _)| (self.t(*v) - plotted).abs() <= 1e-9 * plotted.abs().max(1.0))
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| {
                fmt_tick(if self.log {
                    10f64.powf(plotted)
                } else {
                    plotted
                })
            })
    }
}

/// A linear coordinate with exactly the given tick positions (plotting space).
///
/// plotters' own `with_key_points` wrapper loses the f64 value formatter, and the mesh needs
/// one; this type is the same idea with a formatter, which our label closures override.
struct Ticked {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ticked {
    fn of(a: &Axis) -> Ticked {
        Ticked {
            lo: a.t(a.lo),
            hi: a.t(a.hi),
            bold: a.ticks.iter().map(|(v, _)| a.t(*v)).collect(),
            light: a.minor.iter().map(|v| a.t(*v)).collect(),
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        if self.hi == self.lo {
            return (limit.0 + limit.1) / 2;
        }
        let share = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let points = if hint.weight().allow_light_points() {
            &self.light
        } else {
            &self.bold
        };
        points
            .iter()
            .copied()
            .filter(|v| *v >= self.lo && *v <= self.hi)
            .collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// A line of a line panel.
#[derive(Clone, Debug)]
pub struct Line {
    pub color: RGBColor,
    pub dashed: bool,
    /// Draw a dot at every point (few points, e.g. a sweep).
    pub markers: bool,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug)]
pub struct LinePanel {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub lines: Vec<Line>,
}

#[derive(Clone, Debug)]
pub struct Bar {
    pub value: Option<f64>,
    pub color: RGBColor,
    /// Pale fill with a solid border: the second run of a comparison.
    pub light: bool,
}

/// Bars side by side under one category label.
#[derive(Clone, Debug)]
pub struct BarGroup {
    pub label: String,
    pub bars: Vec<Bar>,
}

#[derive(Clone, Debug)]
pub struct BarPanel {
    pub title: String,
    pub y_desc: String,
    pub groups: Vec<BarGroup>,
    /// Formats the value printed above each bar.
    pub fmt: fn(f64) -> String,
}

#[derive(Clone, Debug)]
pub enum Panel {
    Lines(LinePanel),
    Bars(BarPanel),
    /// Nothing to draw, and why.
    Empty {
        title: String,
        message: String,
    },
}

/// One legend entry of the strip under the title.
#[derive(Clone, Debug)]
pub struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
    pub dashed: bool,
    /// A filled square (bars) rather than a line.
    pub swatch: bool,
    pub light: bool,
}

/// A whole chart: drawn identically to PNG and SVG.
#[derive(Clone, Debug)]
pub struct ChartSpec {
    pub name: String,
    pub title: String,
    pub size: (u32, u32),
    pub cols: usize,
    pub legend: Vec<LegendEntry>,
    pub panels: Vec<Panel>,
    /// A line of small print at the bottom (what A and B are, data caveats).
    pub footnote: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------

/// Checks that text can be measured and rasterised, so a machine without fonts gets one
/// clear error instead of a failure deep inside a chart.
pub fn probe_fonts() -> Result<(), ReportError> {
    let style = TextStyle::from((FONT, 16).into_font());
    let mut buf = vec![255u8; 160 * 40 * 3];
    let root = BitMapBackend::with_buffer(&mut buf, (160, 40)).into_drawing_area();
    root.estimate_text_size("p99.9 latency µs", &style)
        .map_err(|e| ReportError::Fonts(e.to_string()))?;
    root.draw_text("p99.9 latency µs", &style, (2, 2))
        .map_err(|e| ReportError::Fonts(e.to_string()))?;
    Ok(())
}

/// Draws `spec` to `dir/NAME.png` and `dir/NAME.svg`.
pub fn render(dir: &Path, spec: &ChartSpec) -> Result<ChartFile, ReportError> {
    let png = dir.join(format!("{}.png", spec.name));
    let svg = dir.join(format!("{}.svg", spec.name));
    let err = |message: String| ReportError::Draw {
        chart: spec.name.clone(),
        message,
    };
    {
        let root = BitMapBackend::new(&png, spec.size).into_drawing_area();
        draw_chart(&root, spec).map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    {
        let root = SVGBackend::new(&svg, spec.size).into_drawing_area();
        draw_chart(&root, spec).map_err(err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(ChartFile {
        name: spec.name.clone(),
        title: spec.title.clone(),
        png,
        svg,
    })
}

/// plotters' errors are generic over the backend; a message is all a report needs.
trait OrMsg<T> {
    fn msg(self) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> OrMsg<T> for Result<T, E> {
    fn msg(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
}

/// The one drawing function behind every chart and both backends.
pub fn draw_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &ChartSpec,
) -> Result<(), String> {
    root.fill(&WHITE).msg()?;
    let body = root
        .titled(&spec.title, font(26).color(&RGBColor(29, 36, 48)))
        .msg()?;
    let body = if spec.legend.is_empty() {
        body
    } else {
        let (strip, rest) = body.split_vertically(34);
        draw_legend(&strip, &spec.legend)?;
        rest
    };
    let body = match &spec.footnote {
        Some(note) => {
            let h = body.dim_in_pixel().1 as i32;
            let (main, foot) = body.split_vertically(h - 26);
            foot.draw_text(note, &font(14).color(&RGBColor(90, 100, 115)), (14, 4))
                .msg()?;
            main
        }
        None => body,
    };
    let cols = spec.cols.max(1);
    let rows = spec.panels.len().div_ceil(cols).max(1);
    let areas = body.split_evenly((rows, cols));
    for (area, panel) in areas.iter().zip(&spec.panels) {
        match panel {
            Panel::Lines(p) => draw_lines(area, p)?,
            Panel::Bars(p) => draw_bars(area, p)?,
            Panel::Empty { title, message } => draw_empty(area, title, message)?,
        }
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> Result<(), String> {
    let style = font(17);
    let widths: Vec<i32> = entries
        .iter()
        .map(|e| {
            area.estimate_text_size(&e.label, &style)
                .map(|(w, _)| w as i32)
        })
        .collect::<Result<_, _>>()
        .msg()?;
    let (key, gap, space) = (30, 8, 28);
    let total: i32 =
        widths.iter().map(|w| key + gap + w).sum::<i32>() + space * (entries.len() as i32 - 1);
    let mut x = ((area.dim_in_pixel().0 as i32 - total) / 2).max(8);
    let y = 16;
    for (e, w) in entries.iter().zip(widths) {
        let stroke = ShapeStyle::from(e.color).stroke_width(4);
        if e.swatch {
            let fill = if e.light {
                e.color.mix(0.35).filled()
            } else {
                e.color.filled()
            };
            area.draw(&Rectangle::new([(x + 6, y - 8), (x + 24, y + 8)], fill))
                .msg()?;
            area.draw(&Rectangle::new(
                [(x + 6, y - 8), (x + 24, y + 8)],
                ShapeStyle::from(e.color).stroke_width(2),
            ))
            .msg()?;
        } else if e.dashed {
            for (a, b) in [(0, 8), (11, 19), (22, 30)] {
                area.draw(&PathElement::new(vec![(x + a, y), (x + b, y)], stroke))
                    .msg()?;
            }
        } else {
            area.draw(&PathElement::new(vec![(x, y), (x + key, y)], stroke))
                .msg()?;
        }
        area.draw_text(
            &e.label,
            &style.pos(Pos::new(HPos::Left, VPos::Center)),
            (x + key + gap, y),
        )
        .msg()?;
        x += key + gap + w + space;
    }
    Ok(())
}

fn draw_empty<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    message: &str,
) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    area.draw_text(
        title,
        &font(19).pos(Pos::new(HPos::Center, VPos::Top)),
        (w as i32 / 2, 8),
    )
    .msg()?;
    area.draw_text(
        message,
        &font(16)
            .color(&RGBColor(120, 120, 120))
            .pos(Pos::new(HPos::Center, VPos::Center)),
        (w as i32 / 2, h as i32 / 2),
    )
    .msg()
}

fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &LinePanel,
) -> Result<(), String> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(10)
        .margin_right(28)
        .x_label_area_size(54)
        .y_label_area_size(80);
    if !p.title.is_empty() {
        builder.caption(&p.title, font(19));
    }
    let mut chart = builder
        .build_cartesian_2d(Ticked::of(&p.x), Ticked::of(&p.y))
        .msg()?;
    let xf = |v: &f64| p.x.label_at(*v);
    let yf = |v: &f64| p.y.label_at(*v);
    chart
        .configure_mesh()
        .x_desc(p.x.desc.as_str())
        .y_desc(p.y.desc.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(font(15))
        .axis_desc_style(font(16))
        .bold_line_style(BLACK.mix(0.14))
        .light_line_style(BLACK.mix(0.05))
        .draw()
        .msg()?;
    for line in &p.lines {
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .filter(|(x, y)| p.x.accepts(*x) && p.y.accepts(*y))
            .map(|&(x, y)| (p.x.t(x), p.y.t(y)))
            .collect();
        let style = ShapeStyle::from(line.color).stroke_width(3);
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 10, 7, style))
                .msg()?;
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .msg()?;
        }
        // A single point draws no line: always mark it so it is not lost.
        if line.markers || pts.len() == 1 {
            let dot = if line.dashed {
                ShapeStyle::from(line.color).stroke_width(2)
            } else {
                line.color.filled()
            };
            chart
                .draw_series(pts.iter().map(|&pt| Circle::new(pt, 5, dot)))
                .msg()?;
        }
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &BarPanel,
) -> Result<(), String> {
    let values: Vec<f64> = p
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().filter_map(|b| b.value))
        .filter(|v| v.is_finite())
        .collect();
    let max = values.iter().copied().fold(0.0, f64::max);
    let min = values.iter().copied().fold(0.0, f64::min);
    // Headroom above the tallest bar for its value label.
    let y = Axis::linear(
        p.y_desc.clone(),
        if min < 0.0 { min * 1.2 } else { 0.0 },
        if max > 0.0 { max * 1.2 } else { 1.0 },
    );
    let n = p.groups.len().max(1);
    let x = Ticked {
        lo: 0.0,
        hi: n as f64,
        bold: (0..n).map(|i| i as f64 + 0.5).collect(),
        light: Vec::new(),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, font(19))
        .margin(10)
        .margin_right(20)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x, Ticked::of(&y))
        .msg()?;
    let xf = |v: &f64| {
        let i = (v - 0.5).round().max(0.0) as usize;
        p.groups.get(i).map(|g| g.label.clone()).unwrap_or_default()
    };
    let yf = |v: &f64| y.label_at(*v);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(p.y_desc.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(font(16))
        .axis_desc_style(font(16))
        .bold_line_style(BLACK.mix(0.14))
        .draw()
        .msg()?;
    let value_style = font(14).pos(Pos::new(HPos::Center, VPos::Bottom));
    let below_style = font(14).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, g) in p.groups.iter().enumerate() {
        let k = g.bars.len().max(1) as f64;
        let width = 0.7 / k;
        for (j, b) in g.bars.iter().enumerate() {
            let x0 = i as f64 + 0.15 + j as f64 * width;
            let (x1, mid) = (x0 + width * 0.9, x0 + width * 0.45);
            match b.value.filter(|v| v.is_finite()) {
                Some(v) => {
                    let fill = if b.light {
                        b.color.mix(0.35).filled()
                    } else {
                        b.color.filled()
                    };
                    chart
                        .draw_series(std::iter::once(Rectangle::new([(x0, 0.0), (x1, v)], fill)))
                        .msg()?;
                    if b.light {
                        let border = ShapeStyle::from(b.color).stroke_width(2);
                        chart
                            .draw_series(std::iter::once(Rectangle::new(
                                [(x0, 0.0), (x1, v)],
                                border,
                            )))
                            .msg()?;
                    }
                    let style = if v >= 0.0 { &value_style } else { &below_style };
                    chart
                        .draw_series(std::iter::once(Text::new(
                            (p.fmt)(v),
                            (mid, v),
                            style.clone(),
                        )))
                        .msg()?;
                }
                None => {
                    chart
                        .draw_series(std::iter::once(Text::new(
                            "n/a".to_string(),
                            (mid, 0.0),
                            value_style.clone(),
                        )))
                        .msg()?;
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The charts of a run
// ---------------------------------------------------------------------------------------

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
    let runs: Vec<&TransportResult> = headline
        .runs
        .iter()
        .copied()
        .filter(|r| r.status.is_measured())
        .collect();
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
    if data::is_sweep(summary) {
        specs.push(sweep_chart(summary, &groups));
    }
    specs.iter().map(|s| render(charts_dir, s)).collect()
}

/// One spectrum line per run: (label, colour, points in (nines, ms)).
struct SpectrumLine {
    transport: String,
    dashed: bool,
    points: Vec<(f64, f64)>,
    count: u64,
}

fn spectrum_lines(
    runs: &[&TransportResult],
    dashed: bool,
) -> Result<Vec<SpectrumLine>, ReportError> {
    let mut out = Vec::new();
    for r in runs {
        if let Some(h) = data::histogram(r, "latency")? {
            if !h.is_empty() {
                out.push(SpectrumLine {
                    transport: r.transport.clone(),
                    dashed,
                    points: Vec::new(),
                    count: h.len(),
                });
                let last = out.len() - 1;
                out[last].points = spectrum_points(&h, nines_for(h.len()));
            }
        }
    }
    Ok(out)
}

/// How many nines the x axis reaches: 99.99%, or 99.999% when there are enough samples
/// for that percentile to be more than the maximum.
fn nines_for(count: u64) -> f64 {
    if count >= 1_000_000 {
        5.0
    } else {
        4.0
    }
}

/// The full percentile spectrum of a histogram: x = −log10(1 − p), y = latency in ms.
pub fn spectrum_points(h: &Histogram<u64>, x_max: f64) -> Vec<(f64, f64)> {
    const STEPS: u32 = 400;
    (0..=STEPS)
        .map(|i| {
            let x = x_max * f64::from(i) / f64::from(STEPS);
            let q = (1.0 - 10f64.powf(-x)).clamp(0.0, 1.0);
            (x, h.value_at_quantile(q) as f64 / 1000.0)
        })
        .collect()
}

fn percent_label(nines: f64) -> String {
    match nines {
        n if n <= 0.0 => "0%".into(),
        n if (n - 2f64.log10()).abs() < 1e-9 => "50%".into(),
        n => {
            let d = n.round() as usize;
            if d <= 1 {
                "90%".into()
            } else {
                format!("99.{}%", "9".repeat(d - 2)).replace(".%", "%")
            }
        }
    }
}

fn spectrum_chart(
    name: &str,
    title: &str,
    lines: &[SpectrumLine],
    footnote: Option<String>,
) -> ChartSpec {
    let panel = if lines.is_empty() {
        Panel::Empty {
            title: String::new(),
            message: "no latency samples recorded".into(),
        }
    } else {
        let x_max = lines.iter().map(|l| nines_for(l.count)).fold(4.0, f64::max);
        let mut ticks = vec![(0.0, "0%".to_string()), (2f64.log10(), "50%".to_string())];
        let mut d = 1.0;
        while d <= x_max {
            ticks.push((d, percent_label(d)));
            d += 1.0;
        }
        let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
        let lo = ys
            .clone()
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let hi = ys.fold(0.0, f64::max);
        let y = if lo.is_finite() {
            Axis::auto("delivery latency (ms)", lo, hi)
        } else {
            Axis::linear("delivery latency (ms)", 0.0, hi * 1.1)
        };
        Panel::Lines(LinePanel {
            title: String::new(),
            x: Axis {
                desc: "percentile (log scale of nines: 90%, 99%, 99.9% …)".into(),
                lo: 0.0,
                hi: x_max,
                log: false,
                ticks,
                minor: Vec::new(),
            },
            y,
            lines: lines
                .iter()
                .map(|l| Line {
                    color: transport_color(&l.transport),
                    dashed: l.dashed,
                    markers: false,
                    points: l.points.clone(),
                })
                .collect(),
        })
    };
    let mut seen = Vec::new();
    let legend = lines
        .iter()
        .filter(|l| {
            let key = (l.transport.clone(), l.dashed);
            let fresh = !seen.contains(&key);
            seen.push(key);
            fresh
        })
        .map(|l| LegendEntry {
            label: l.transport.clone()
                + if footnote.is_some() {
                    if l.dashed {
                        " B"
                    } else {
                        " A"
                    }
                } else {
                    ""
                },
            color: transport_color(&l.transport),
            dashed: l.dashed,
            swatch: false,
            light: false,
        })
        .collect();
    ChartSpec {
        name: name.into(),
        title: title.into(),
        size: (1100, 680),
        cols: 1,
        legend,
        panels: vec![panel],
        footnote,
    }
}

/// Bar panels, one per metric; one bar per run set (one set: a run; two: A and B).
fn bars_chart(
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
fn chart_unit(metric: Metric, v: f64) -> f64 {
    match metric {
        Metric::LatencyP50 | Metric::LatencyP99 | Metric::LatencyP999 | Metric::ConnectP50 => {
            v / 1000.0
        }
        Metric::RssPerConnection => v / 1024.0,
        _ => v,
    }
}

fn line_legend(transports: &[String]) -> Vec<LegendEntry> {
    transports
        .iter()
        .map(|t| LegendEntry {
            label: t.clone(),
            color: transport_color(t),
            dashed: false,
            swatch: false,
            light: false,
        })
        .collect()
}

/// Turns a run's time series into the points of one panel.
type SeriesPick = dyn Fn(&[data::SeriesRow]) -> Vec<(f64, f64)>;

fn timeseries_chart(
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

/// Each key metric against the swept value, one line per transport.
fn sweep_chart(summary: &Summary, groups: &[Group<'_>]) -> ChartSpec {
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
                            let r = g
                                .runs
                                .iter()
                                .find(|r| &r.transport == t && r.status.is_measured())?;
                            metric.value(r).map(|v| (x, chart_unit(metric, v)))
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

// ---------------------------------------------------------------------------------------
// Comparison charts
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------

/// A round step (1, 2, 2.5 or 5 × 10^k) giving about `target` intervals over `range`.
fn nice_step(range: f64, target: usize) -> f64 {
    let raw = (range / target.max(1) as f64).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let m = match raw / mag {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 2.5 => 2.5,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    };
    m * mag
}

/// Labels an axis's ticks with one multiplier for all of them (20k, 40k, not 8000, 10k).
fn label_ticks(values: &[f64]) -> Vec<(f64, String)> {
    let top = values.iter().fold(0.0, |m: f64, v| m.max(v.abs()));
    let (scale, suffix) = if top >= 1e6 {
        (1e6, "M")
    } else if top >= 1e4 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    values
        .iter()
        .map(|&v| {
            let label = if v.abs() < 1e-12 {
                "0".to_string()
            } else {
                format!("{}{suffix}", fmt_plain(v / scale))
            };
            (v, label)
        })
        .collect()
}

/// A tick label: 3 significant digits, k/M for large values, no trailing zeros.
pub fn fmt_tick(v: f64) -> String {
    label_ticks(&[v]).remove(0).1
}

/// About three significant digits, without trailing zeros.
fn fmt_plain(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    let decimals = (2 - a.log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(fmt_tick(0.0), "0");
        assert_eq!(fmt_tick(2.5), "2.5");
        assert_eq!(fmt_tick(250.0), "250");
        assert_eq!(fmt_tick(0.0005), "0.0005");
        assert_eq!(fmt_tick(20_000.0), "20k");
        assert_eq!(fmt_tick(1_500_000.0), "1.5M");
        let labels: Vec<String> = label_ticks(&[0.0, 5_000.0, 10_000.0])
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(labels, ["0", "5k", "10k"]);
    }

    #[test]
    fn percentile_labels() {
        assert_eq!(percent_label(0.0), "0%");
        assert_eq!(percent_label(2f64.log10()), "50%");
        assert_eq!(percent_label(1.0), "90%");
        assert_eq!(percent_label(2.0), "99%");
        assert_eq!(percent_label(4.0), "99.99%");
    }

    #[test]
    fn log_axis_ticks() {
        let a = Axis::log("x", 0.5, 300.0);
        let labels: Vec<&str> = a.ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            labels,
            ["0.5", "1", "2", "5", "10", "20", "50", "100", "200"]
        );
        let lin = Axis::linear("x", 0.0, 10.0);
        assert_eq!(lin.ticks.first().map(|t| t.1.as_str()), Some("0"));
    }
}
