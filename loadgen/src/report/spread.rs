//! How much a figure moved between repetitions: the median and a 95 % confidence interval
//! for it, by bootstrap over the repetitions (as criterion does for its estimates).
//!
//! The bootstrap resamples the repetitions with replacement [`RESAMPLES`] times and takes
//! the 2.5th and 97.5th percentiles of the resampled medians. It assumes nothing about the
//! figures' distribution, which for tail latencies on a shared machine is anything but
//! normal. The random generator is seeded, so a report redrawn from the same summary says
//! the same thing.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 2_000;
/// The interval's coverage.
pub const CONFIDENCE: f64 = 0.95;

/// One figure over `n` repetitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// The 95 % confidence interval of the median; a single repetition's is its value.
    pub low: f64,
    pub high: f64,
}

impl Spread {
    /// The spread of `values` (one per repetition); `None` without any.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = median_of_sorted(&sorted);
        let (low, high) = if n == 1 {
            (median, median)
        } else {
            let mut rng = SmallRng::seed_from_u64(0x5eed ^ n as u64);
            let mut medians = Vec::with_capacity(RESAMPLES);
            let mut sample = vec![0.0; n];
            for _ in 0..RESAMPLES {
                for s in sample.iter_mut() {
                    *s = sorted[rng.random_range(0..n)];
                }
                sample.sort_by(f64::total_cmp);
                medians.push(median_of_sorted(&sample));
            }
            medians.sort_by(f64::total_cmp);
            let tail = (1.0 - CONFIDENCE) / 2.0;
            let at = |q: f64| {
                medians[((q * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)]
            };
            (at(tail), at(1.0 - tail))
        };
        Some(Spread {
            n,
            median,
            min: sorted[0],
            max: sorted[n - 1],
            low,
            high,
        })
    }

    /// Whether the two intervals share no value: only then do the medians differ for sure.
    pub fn separated_from(&self, other: &Spread) -> bool {
        self.high < other.low || other.high < self.low
    }

    /// (max − min) / median: how far repetitions strayed, relative to the figure.
    pub fn relative_range(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median.abs()
        }
    }

    /// Repetitions that would likely separate `self` from `other`, from how the interval
    /// narrows (as 1/√n): `None` when they already are, the medians are equal, or there are
    /// too few repetitions (< 3) to judge the width.
    pub fn repetitions_to_separate(&self, other: &Spread) -> Option<usize> {
        if self.separated_from(other) || self.n.min(other.n) < 3 {
            return None;
        }
        let gap = (self.median - other.median).abs();
        if gap == 0.0 {
            return None;
        }
        let half = |s: &Spread| (s.high - s.low) / 2.0;
        let n = self.n.min(other.n) as f64;
        let needed = n * ((half(self) + half(other)) / gap).powi(2);
        Some(needed.ceil() as usize)
    }
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_repetition_is_its_own_interval() {
        let s = Spread::of(&[396.0]).unwrap();
        assert_eq!((s.n, s.median, s.low, s.high), (1, 396.0, 396.0, 396.0));
        assert!(Spread::of(&[]).is_none());
        assert!(Spread::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn the_interval_holds_the_median_and_stays_within_the_values() {
        let s = Spread::of(&[400.0, 390.0, 410.0, 405.0, 395.0]).unwrap();
        assert_eq!(s.median, 400.0);
        assert_eq!((s.min, s.max), (390.0, 410.0));
        assert!(s.low <= s.median && s.median <= s.high, "{s:?}");
        assert!(s.low >= 390.0 && s.high <= 410.0, "{s:?}");
        assert!((s.relative_range() - 0.05).abs() < 1e-9);
        // Seeded: the same values give the same interval.
        assert_eq!(Spread::of(&[400.0, 390.0, 410.0, 405.0, 395.0]), Some(s));
    }

    #[test]
    fn a_noisy_repetition_widens_the_interval() {
        let quiet = Spread::of(&[400.0, 401.0, 399.0, 400.5, 399.5]).unwrap();
        let noisy = Spread::of(&[400.0, 401.0, 399.0, 400.5, 900.0]).unwrap();
        assert!(
            noisy.high - noisy.low > quiet.high - quiet.low,
            "{quiet:?} {noisy:?}"
        );
        assert!(noisy.relative_range() > 1.0);
    }

    #[test]
    fn separation_and_the_repetitions_it_would_take() {
        let a = Spread::of(&[100.0, 101.0, 99.0, 100.0, 100.5]).unwrap();
        let b = Spread::of(&[200.0, 201.0, 199.0, 200.0, 200.5]).unwrap();
        assert!(a.separated_from(&b) && b.separated_from(&a));
        assert_eq!(a.repetitions_to_separate(&b), None);
        let c = Spread::of(&[100.0, 110.0, 90.0, 105.0, 95.0]).unwrap();
        let d = Spread::of(&[104.0, 114.0, 94.0, 109.0, 99.0]).unwrap();
        assert!(!c.separated_from(&d));
        let needed = c.repetitions_to_separate(&d).expect("an estimate");
        assert!(needed > 5, "{needed}");
        // Two repetitions are too few to judge the width.
        let e = Spread::of(&[1.0, 2.0]).unwrap();
        assert_eq!(
            e.repetitions_to_separate(&Spread::of(&[1.5, 2.5]).unwrap()),
            None
        );
    }
}
