//! Rendering: the one generic drawing function behind every chart and both backends
//! (PNG and SVG), and the drawing helpers it uses.

use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::ReportError;

use super::spec::{Axis, BarPanel, ChartSpec, LegendEntry, LinePanel, Panel};
use super::{ChartFile, FONT};

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
    let err = |source: DrawError| ReportError::Draw {
        chart: spec.name.clone(),
        source,
    };
    {
        let root = BitMapBackend::new(&png, spec.size).into_drawing_area();
        draw_chart(&root, spec).map_err(err)?;
        root.present().msg().map_err(err)?;
    }
    {
        let root = SVGBackend::new(&svg, spec.size).into_drawing_area();
        draw_chart(&root, spec).map_err(err)?;
        root.present().msg().map_err(err)?;
    }
    Ok(ChartFile {
        name: spec.name.clone(),
        title: spec.title.clone(),
        png,
        svg,
    })
}

/// A drawing error. plotters' errors are generic over the backend (PNG, SVG); their
/// message is all a report needs, so it is kept as text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DrawError(String);

trait OrMsg<T> {
    fn msg(self) -> Result<T, DrawError>;
}

impl<T, E: std::fmt::Display> OrMsg<T> for Result<T, E> {
    fn msg(self) -> Result<T, DrawError> {
        self.map_err(|e| DrawError(e.to_string()))
    }
}

fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
}

/// The one drawing function behind every chart and both backends.
pub fn draw_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &ChartSpec,
) -> Result<(), DrawError> {
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
) -> Result<(), DrawError> {
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
) -> Result<(), DrawError> {
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
) -> Result<(), DrawError> {
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
) -> Result<(), DrawError> {
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
