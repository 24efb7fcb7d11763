//! Chart descriptions: a [`ChartSpec`] of panels of lines or bars, and axes that carry
//! their own ticks ([`Axis`]).

use plotters::prelude::*;

use super::numbers::{fmt_tick, label_ticks, nice_step};
use super::transport_color;

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
    pub(super) fn t(&self, v: f64) -> f64 {
        if self.log {
            v.log10()
        } else {
            v
        }
    }

    pub(super) fn accepts(&self, v: f64) -> bool {
        v.is_finite() && (!self.log || v > 0.0)
    }

    pub(super) fn label_at(&self, plotted: f64) -> String {
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

pub(super) fn line_legend(transports: &[String]) -> Vec<LegendEntry> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
