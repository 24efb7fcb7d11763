//! The latency spectrum: delivery latency by percentile, x in "nines".

use hdrhistogram::Histogram;

use crate::report::data;
use crate::report::ReportError;
use crate::results::TransportResult;

use super::spec::{Axis, ChartSpec, LegendEntry, Line, LinePanel, Panel};
use super::transport_color;

/// One spectrum line per run: (label, colour, points in (nines, ms)).
pub(super) struct SpectrumLine {
    pub(super) transport: String,
    pub(super) dashed: bool,
    points: Vec<(f64, f64)>,
    count: u64,
}

pub(super) fn spectrum_lines(
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

pub(super) fn spectrum_chart(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_labels() {
        assert_eq!(percent_label(0.0), "0%");
        assert_eq!(percent_label(2f64.log10()), "50%");
        assert_eq!(percent_label(1.0), "90%");
        assert_eq!(percent_label(2.0), "99%");
        assert_eq!(percent_label(4.0), "99.99%");
    }
}
