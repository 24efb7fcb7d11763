//! Histograms of microseconds: bounds, creation, clamping, merging and percentiles.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Lowest value the histograms discern: 1 µs.
pub const HISTOGRAM_LOWEST_US: u64 = 1;
/// Highest value the histograms track: one hour in µs. Larger values are clamped to it.
pub const HISTOGRAM_HIGHEST_US: u64 = 3_600 * 1_000_000;
/// Significant decimal digits kept: values are exact to 0.1 %.
pub const HISTOGRAM_SIGFIG: u8 = 3;

/// A new, empty histogram of microseconds with the project's bounds and precision.
pub fn new_histogram_us() -> Histogram<u64> {
    // The bounds are constants that satisfy the crate's rules (low >= 1, high >= 2 * low,
    // sigfig <= 5); a unit test constructs one, so this cannot fail at run time.
    Histogram::new_with_bounds(HISTOGRAM_LOWEST_US, HISTOGRAM_HIGHEST_US, HISTOGRAM_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Records `value_us`, clamping it into the histogram's range. Returns whether it was clamped.
pub(super) fn record_clamped(h: &mut Histogram<u64>, value_us: u64) -> bool {
    h.saturating_record(value_us);
    value_us > h.high()
}

/// Adds `src` into `dst`; returns how many samples had to be clamped to fit `dst`'s range.
///
/// Histograms made by [`new_histogram_us`] always share a range and merge exactly. A histogram
/// from elsewhere (another tool, a wider range) is added value by value with clamping instead
/// of failing, so one odd input cannot lose a whole merge.
pub fn merge_histogram(dst: &mut Histogram<u64>, src: &Histogram<u64>) -> u64 {
    if dst.add(src).is_ok() {
        return 0;
    }
    // `add` checks the range before touching `dst`, so nothing was added yet.
    let mut clamped = 0;
    for v in src.iter_recorded() {
        let value = v.value_iterated_to();
        let count = v.count_at_value();
        dst.saturating_record_n(value, count);
        if value > dst.high() {
            clamped += count;
        }
    }
    clamped
}

/// Summary statistics of a histogram of microseconds, for `summary.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PercentilesUs {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample (0 if none).
    pub min_us: u64,
    /// Arithmetic mean (0 if none).
    pub mean_us: f64,
    /// Standard deviation (0 if none).
    pub stdev_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p99_9_us: u64,
    /// 99.99th percentile.
    pub p99_99_us: u64,
    /// Largest sample (0 if none).
    pub max_us: u64,
}

/// Reads the summary percentiles from `h` (µs). Each value is the highest value equivalent to
/// the quantile's bucket, as HdrHistogram reports it, so it is exact to the histogram's 0.1 %.
pub fn percentiles_us(h: &Histogram<u64>) -> PercentilesUs {
    if h.is_empty() {
        return PercentilesUs {
            count: 0,
            min_us: 0,
            mean_us: 0.0,
            stdev_us: 0.0,
            p50_us: 0,
            p90_us: 0,
            p99_us: 0,
            p99_9_us: 0,
            p99_99_us: 0,
            max_us: 0,
        };
    }
    PercentilesUs {
        count: h.len(),
        min_us: h.min(),
        mean_us: h.mean(),
        stdev_us: h.stdev(),
        p50_us: h.value_at_quantile(0.5),
        p90_us: h.value_at_quantile(0.9),
        p99_us: h.value_at_quantile(0.99),
        p99_9_us: h.value_at_quantile(0.999),
        p99_99_us: h.value_at_quantile(0.9999),
        max_us: h.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bounds_are_valid() {
        let h = new_histogram_us();
        assert_eq!(h.high(), HISTOGRAM_HIGHEST_US);
        assert!(!h.is_auto_resize());
    }

    #[test]
    fn percentiles_of_known_histogram() {
        let mut h = new_histogram_us();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let p = percentiles_us(&h);
        assert_eq!(p.count, 10_000);
        assert_eq!(p.min_us, 1);
        assert_eq!(p.p50_us, 5_003); // top of the 5000 bucket (width 4 at this magnitude)
        assert_eq!(p.p90_us, 9_007); // top of the 9000 bucket (width 8 at this magnitude)
        assert!(p.p99_us >= 9_900 && p.p99_us <= 9_910, "{}", p.p99_us);
        assert!(p.p99_9_us >= 9_990 && p.p99_9_us <= 10_000);
        assert_eq!(p.max_us, h.max());
        assert!((p.mean_us - 5_000.5).abs() < 5.0);
        let json = serde_json::to_value(p).unwrap();
        assert!(json.get("p99_9_us").is_some());
        assert_eq!(percentiles_us(&new_histogram_us()).count, 0);
    }
}
