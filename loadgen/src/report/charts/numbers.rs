//! Numbers: round tick steps and short tick labels.

/// A round step (1, 2, 2.5 or 5 × 10^k) giving about `target` intervals over `range`.
pub(super) fn nice_step(range: f64, target: usize) -> f64 {
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
pub(super) fn label_ticks(values: &[f64]) -> Vec<(f64, String)> {
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
}
