//! What each fault did to the clients: one [`FaultRecord`] per scheduled fault, per worker,
//! merged like every other recording.
//!
//! A fault "owns" what happens from its start until the next fault starts (or the run ends):
//! faults run one at a time, so every broken session, reconnect and recovery belongs to one.
//! Time to recover is measured per client from the moment the fault hit it (the fault's
//! start for the one-shot kinds, the moment its session broke for the kinds that last, such
//! as an idle cut) to the first line it received again.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::histogram::{merge_histogram, new_histogram_us, record_clamped};

/// Counts of one fault, summed over clients and workers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// Sessions that were connected and broke (the server or the network ended them).
    pub sessions_broken: u64,
    /// Connection attempts that failed while clients tried to come back.
    pub connect_errors: u64,
    /// Sessions established again after one broke.
    pub reconnects: u64,
    /// Clients that received a line again after their session broke (one time-to-recover
    /// sample each).
    pub recoveries: u64,
    /// Lines that arrived as catch-up (scheduled before their session connected): what a
    /// resume brought back.
    pub caught_up: u64,
    /// Lines received twice.
    pub duplicated: u64,
    /// Lines a client skipped past (a gap it noticed when a later line came first).
    pub gaps_detected: u64,
    /// Lines the server no longer had after a restart wiped its in-memory history: told to
    /// the client by a `410` naming the oldest seq held, counted here, not as loss.
    pub lost_by_restart: u64,
    /// Lines a client was too slow to receive before they left the server's history (the
    /// lag policy dropped it and it resumed at the oldest seq held).
    pub lost_to_lag: u64,
}

impl FaultCounts {
    pub fn merge(&mut self, other: &FaultCounts) {
        // Destructured so that a new field cannot be forgotten here.
        let FaultCounts {
            sessions_broken,
            connect_errors,
            reconnects,
            recoveries,
            caught_up,
            duplicated,
            gaps_detected,
            lost_by_restart,
            lost_to_lag,
        } = other;
        let add = |into: &mut u64, n: &u64| *into = into.saturating_add(*n);
        add(&mut self.sessions_broken, sessions_broken);
        add(&mut self.connect_errors, connect_errors);
        add(&mut self.reconnects, reconnects);
        add(&mut self.recoveries, recoveries);
        add(&mut self.caught_up, caught_up);
        add(&mut self.duplicated, duplicated);
        add(&mut self.gaps_detected, gaps_detected);
        add(&mut self.lost_by_restart, lost_by_restart);
        add(&mut self.lost_to_lag, lost_to_lag);
    }
}

/// One fault's counts and its time-to-recover histogram (µs).
#[derive(Clone, Debug)]
pub struct FaultRecord {
    pub counts: FaultCounts,
    recovery_us: Histogram<u64>,
    /// Delivery latency of the clients this fault did not touch (not slowed, session not
    /// broken) while it owned the time: isolation measured, not assumed.
    bystander_latency_us: Histogram<u64>,
    /// Recovery samples clamped into range (above one hour).
    pub clamped: u64,
}

impl Default for FaultRecord {
    fn default() -> Self {
        FaultRecord {
            counts: FaultCounts::default(),
            recovery_us: new_histogram_us(),
            bystander_latency_us: new_histogram_us(),
            clamped: 0,
        }
    }
}

impl FaultRecord {
    /// A client received its first line again `us` after the fault hit it.
    pub fn record_recovery_us(&mut self, us: u64) {
        self.counts.recoveries += 1;
        if record_clamped(&mut self.recovery_us, us.max(1)) {
            self.clamped += 1;
        }
    }

    /// A delivery to a client the fault did not touch.
    pub fn record_bystander_latency_us(&mut self, us: u64) {
        if record_clamped(&mut self.bystander_latency_us, us) {
            self.clamped += 1;
        }
    }

    /// Latencies (µs) of the clients the fault did not touch.
    pub fn bystander_latency_us(&self) -> &Histogram<u64> {
        &self.bystander_latency_us
    }

    /// Times to recover (µs), one sample per recovered client session.
    pub fn recovery_us(&self) -> &Histogram<u64> {
        &self.recovery_us
    }

    pub fn merge(&mut self, other: &FaultRecord) {
        self.counts.merge(&other.counts);
        self.clamped += other.clamped
            + merge_histogram(&mut self.recovery_us, &other.recovery_us)
            + merge_histogram(&mut self.bystander_latency_us, &other.bystander_latency_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_records_merge_counts_and_histograms() {
        let mut a = FaultRecord::default();
        a.record_recovery_us(1_000);
        a.counts.reconnects = 2;
        let mut b = FaultRecord::default();
        b.record_recovery_us(3_000);
        b.counts.lost_by_restart = 5;
        a.merge(&b);
        assert_eq!(a.counts.recoveries, 2);
        assert_eq!((a.counts.reconnects, a.counts.lost_by_restart), (2, 5));
        assert_eq!(a.recovery_us().len(), 2);
        assert!(a.recovery_us().max() >= 2_990);
    }
}
