//! One worker's recording: histograms and counters, and merging recorders.

use hdrhistogram::Histogram;

use super::counters::Counters;
use super::faults::FaultRecord;
use super::histogram::{merge_histogram, new_histogram_us, record_clamped};

/// One worker's recording: histograms in microseconds and counters.
#[derive(Debug, Clone)]
pub struct Recorder {
    latency_us: Histogram<u64>,
    connect_us: Histogram<u64>,
    first_event_us: Histogram<u64>,
    counters: Counters,
    /// One per scheduled fault, in the scenario's order (empty on a happy path).
    faults: Vec<FaultRecord>,
    /// In a run with faults: delivery latency in the measured phase before the first fault,
    /// the calm the faults' bystander latencies are compared with. Allocated only then.
    calm_latency_us: Option<Histogram<u64>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder (allocates three histograms, ~190 KB each).
    pub fn new() -> Self {
        Self {
            latency_us: new_histogram_us(),
            connect_us: new_histogram_us(),
            first_event_us: new_histogram_us(),
            counters: Counters::default(),
            faults: Vec::new(),
            calm_latency_us: None,
        }
    }

    /// A recorder from its histograms and counters, as a shard's record holds them (a run
    /// without faults: sharded runs refuse them).
    pub fn from_parts(
        latency_us: Histogram<u64>,
        connect_us: Histogram<u64>,
        first_event_us: Histogram<u64>,
        counters: Counters,
    ) -> Self {
        Self {
            latency_us,
            connect_us,
            first_event_us,
            counters,
            faults: Vec::new(),
            calm_latency_us: None,
        }
    }

    /// Makes room for `n` faults' records (a recorder of a run with faults).
    pub fn with_faults(mut self, n: usize) -> Self {
        self.faults.resize_with(n, FaultRecord::default);
        if n > 0 {
            self.calm_latency_us.get_or_insert_with(new_histogram_us);
        }
        self
    }

    /// A delivery before the first fault (runs with faults only).
    pub fn record_calm_latency_us(&mut self, us: u64) {
        if let Some(h) = &mut self.calm_latency_us {
            if record_clamped(h, us) {
                self.counters.clamped_samples += 1;
            }
        }
    }

    /// Latencies before the first fault; `None` in a run without faults.
    pub fn calm_latency_us(&self) -> Option<&Histogram<u64>> {
        self.calm_latency_us.as_ref()
    }

    /// The record of fault `i`; `None` beyond the scenario's faults.
    pub fn fault_mut(&mut self, i: usize) -> Option<&mut FaultRecord> {
        self.faults.get_mut(i)
    }

    /// Each fault's record, in the scenario's order.
    pub fn faults(&self) -> &[FaultRecord] {
        &self.faults
    }

    /// Records one delivery latency: publish time (as stamped in the event) to receipt.
    pub fn record_latency_us(&mut self, latency_us: u64) {
        if record_clamped(&mut self.latency_us, latency_us) {
            self.counters.clamped_samples += 1;
        }
    }

    /// Records one connect time: TCP connect start until the HTTP or WebSocket handshake's
    /// response headers arrived.
    pub fn record_connect_us(&mut self, connect_us: u64) {
        if record_clamped(&mut self.connect_us, connect_us) {
            self.counters.clamped_samples += 1;
        }
    }

    /// Records one time to first event: connect start until the first event arrived.
    pub fn record_first_event_us(&mut self, first_event_us: u64) {
        if record_clamped(&mut self.first_event_us, first_event_us) {
            self.counters.clamped_samples += 1;
        }
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The counters, for updating.
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Delivery latencies (µs).
    pub fn latency_us(&self) -> &Histogram<u64> {
        &self.latency_us
    }

    /// Connect times (µs).
    pub fn connect_us(&self) -> &Histogram<u64> {
        &self.connect_us
    }

    /// Times to first event (µs).
    pub fn first_event_us(&self) -> &Histogram<u64> {
        &self.first_event_us
    }

    /// Adds `other`'s histograms and counters to this recorder.
    pub fn merge(&mut self, other: &Recorder) {
        self.counters.merge(&other.counters);
        let clamped = merge_histogram(&mut self.latency_us, &other.latency_us)
            + merge_histogram(&mut self.connect_us, &other.connect_us)
            + merge_histogram(&mut self.first_event_us, &other.first_event_us);
        self.counters.clamped_samples += clamped;
        if self.faults.len() < other.faults.len() {
            self.faults
                .resize_with(other.faults.len(), FaultRecord::default);
        }
        for (mine, theirs) in self.faults.iter_mut().zip(&other.faults) {
            mine.merge(theirs);
        }
        if let Some(theirs) = &other.calm_latency_us {
            let mine = self.calm_latency_us.get_or_insert_with(new_histogram_us);
            self.counters.clamped_samples += merge_histogram(mine, theirs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::HISTOGRAM_HIGHEST_US;
    use crate::results::Percentiles;

    #[test]
    fn recorder_merge_equals_recording_into_one() {
        let mut workers = [Recorder::new(), Recorder::new(), Recorder::new()];
        let mut single = Recorder::new();
        let mut state = 7u64;
        for i in 0..30_000u64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let value = (state >> 33) % 5_000_000;
            let w = &mut workers[(i % 3) as usize];
            w.record_latency_us(value);
            w.record_connect_us(value / 7);
            w.record_first_event_us(value / 3 + 1);
            w.counters_mut().delivered += 1;
            single.record_latency_us(value);
            single.record_connect_us(value / 7);
            single.record_first_event_us(value / 3 + 1);
            single.counters_mut().delivered += 1;
        }
        let mut merged = Recorder::new();
        for w in &workers {
            merged.merge(w);
        }
        assert_eq!(merged.counters(), single.counters());
        for (m, s) in [
            (merged.latency_us(), single.latency_us()),
            (merged.connect_us(), single.connect_us()),
            (merged.first_event_us(), single.first_event_us()),
        ] {
            assert_eq!(m, s);
            assert_eq!(Percentiles::of(m), Percentiles::of(s));
        }
        assert_eq!(merged.latency_us().len(), 30_000);
    }

    #[test]
    fn huge_values_are_clamped_and_counted() {
        let mut r = Recorder::new();
        r.record_latency_us(u64::MAX);
        r.record_connect_us(HISTOGRAM_HIGHEST_US + 1);
        r.record_first_event_us(HISTOGRAM_HIGHEST_US);
        r.record_latency_us(0);
        assert_eq!(r.counters().clamped_samples, 2);
        assert_eq!(r.latency_us().len(), 2);
        assert!(r.latency_us().max() >= HISTOGRAM_HIGHEST_US);
        let mut merged = Recorder::new();
        merged.merge(&r);
        assert_eq!(merged.counters().clamped_samples, 2);

        // A foreign histogram with a wider range merges with clamping instead of failing.
        let mut wide = Histogram::<u64>::new_with_bounds(1, u64::MAX / 4, 3).unwrap();
        wide.record(10).unwrap();
        wide.record_n(HISTOGRAM_HIGHEST_US * 100, 3).unwrap();
        let mut dst = new_histogram_us();
        assert_eq!(merge_histogram(&mut dst, &wide), 3);
        assert_eq!(dst.len(), 4);
    }
}
