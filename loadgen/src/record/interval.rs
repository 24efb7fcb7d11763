//! The per-interval (normally per-second) time series of delivery latencies.

use hdrhistogram::Histogram;

use super::histogram::{merge_histogram, new_histogram_us, record_clamped};

/// One worker's current interval (normally one second) of delivery latencies, for the time
/// series. Keeping one histogram per interval for a whole run would cost ~190 KB per second per
/// worker, so the collector takes a snapshot every interval, merges the workers' snapshots and
/// writes the result to an [`IntervalLog`](super::IntervalLog).
#[derive(Debug, Clone)]
pub struct IntervalRecorder {
    current: IntervalSnapshot,
}

/// What one or more workers recorded during one interval.
#[derive(Debug, Clone)]
pub struct IntervalSnapshot {
    /// Delivery latencies in the interval (µs).
    pub latency_us: Histogram<u64>,
    /// Events delivered in the interval.
    pub deliveries: u64,
    /// Latency samples clamped into range in the interval.
    pub clamped_samples: u64,
    /// Sessions established again after a break, in the interval (a reconnect storm's shape).
    pub reconnects: u64,
}

impl Default for IntervalSnapshot {
    fn default() -> Self {
        Self::new()
    }
}

impl IntervalSnapshot {
    /// An empty snapshot, to merge workers' snapshots into.
    pub fn new() -> Self {
        Self {
            latency_us: new_histogram_us(),
            deliveries: 0,
            clamped_samples: 0,
            reconnects: 0,
        }
    }

    /// Adds `other` to this snapshot.
    pub fn merge(&mut self, other: &IntervalSnapshot) {
        let clamped = merge_histogram(&mut self.latency_us, &other.latency_us);
        self.deliveries = self.deliveries.saturating_add(other.deliveries);
        self.reconnects = self.reconnects.saturating_add(other.reconnects);
        self.clamped_samples = self
            .clamped_samples
            .saturating_add(other.clamped_samples)
            .saturating_add(clamped);
    }

    /// Empties the snapshot, keeping its histogram's allocation.
    fn reset(&mut self) {
        self.latency_us.reset();
        self.deliveries = 0;
        self.clamped_samples = 0;
        self.reconnects = 0;
    }
}

impl Default for IntervalRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl IntervalRecorder {
    /// An empty interval recorder.
    pub fn new() -> Self {
        Self {
            current: IntervalSnapshot::new(),
        }
    }

    /// Counts one reconnect in the current interval.
    pub fn record_reconnect(&mut self) {
        self.current.reconnects += 1;
    }

    /// Records one delivery and its latency in the current interval.
    pub fn record_latency_us(&mut self, latency_us: u64) {
        self.current.deliveries += 1;
        if record_clamped(&mut self.current.latency_us, latency_us) {
            self.current.clamped_samples += 1;
        }
    }

    /// Records a delivery kept out of the latency histogram (e.g. warm-up or catch-up events).
    pub fn record_delivery(&mut self) {
        self.current.deliveries += 1;
    }

    /// What was recorded since the last call (or since creation); starts a new interval.
    pub fn take(&mut self) -> IntervalSnapshot {
        let snapshot = self.current.clone();
        self.current.reset();
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_take_resets() {
        let mut ir = IntervalRecorder::new();
        ir.record_latency_us(100);
        ir.record_latency_us(200);
        ir.record_delivery();
        let snap = ir.take();
        assert_eq!(snap.deliveries, 3);
        assert_eq!(snap.latency_us.len(), 2);
        assert_eq!(snap.latency_us.max(), 200);
        let empty = ir.take();
        assert_eq!(empty.deliveries, 0);
        assert!(empty.latency_us.is_empty());
        assert_eq!(empty.latency_us.max(), 0, "max reset too");

        ir.record_latency_us(5);
        let later = ir.take();
        assert_eq!((later.deliveries, later.latency_us.len()), (1, 1));
        assert_eq!(ir.take().deliveries, 0);

        // Merging the workers' snapshots of one interval, as the collector does.
        let mut total = IntervalSnapshot::new();
        for snapshot in [&snap, &empty, &later] {
            total.merge(snapshot);
        }
        assert_eq!(total.deliveries, 4);
        assert_eq!(total.latency_us.len(), 3);
        assert_eq!(total.latency_us.max(), 200);
    }
}
