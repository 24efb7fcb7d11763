//! Histograms of microseconds: bounds, creation, clamping, merging and percentiles.

use hdrhistogram::Histogram;

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

/// A new, empty histogram of timer lateness (µs, up to a minute): how late the load
/// generator's own timers fired.
pub fn new_lag_histogram_us() -> Histogram<u64> {
    Histogram::new_with_bounds(HISTOGRAM_LOWEST_US, 60_000_000, HISTOGRAM_SIGFIG)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Percentiles;

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
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 10_000);
        assert_eq!(p.min, 1);
        assert_eq!(p.p50, 5_003); // top of the 5000 bucket (width 4 at this magnitude)
        assert_eq!(p.p90, 9_007); // top of the 9000 bucket (width 8 at this magnitude)
        assert!(p.p99 >= 9_900 && p.p99 <= 9_910, "{}", p.p99);
        assert!(p.p99_9 >= 9_990 && p.p99_9 <= 10_000);
        assert_eq!(p.max, h.max());
        assert!((p.mean - 5_000.5).abs() < 5.0);
        assert_eq!(Percentiles::of(&new_histogram_us()).count, 0);
    }
}
