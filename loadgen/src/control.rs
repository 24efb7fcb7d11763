//! What the orchestrating thread tells the workers while a run goes on: the measurement
//! window, the faults' schedule, each topic's final seq once its step is finished, and the
//! stop signal.

use crate::faults::PortMarks;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use pushbench_protocol::TopicId;
use tokio::sync::watch;

/// Shared by the orchestrator and every worker thread.
pub struct RunControl {
    /// Lines scheduled in `[measure_start_ns, measure_end_ns]` (Unix ns) enter the latency
    /// histograms; earlier ones are warm-up.
    measure_start_ns: u64,
    measure_end_ns: u64,
    final_seqs: RwLock<HashMap<TopicId, u64>>,
    /// Per topic, the seqs the load generator's publisher never published (sorted): a client
    /// that misses them lost nothing of the target's.
    unpublished: RwLock<HashMap<TopicId, Vec<u64>>>,
    /// Bumped whenever final seqs are recorded, so a client that already has everything
    /// notices at once, not only when the server next sends something (a foreign server
    /// sends nothing after its last line: no end event, maybe no keep-alive).
    finals: watch::Sender<u64>,
    /// How many times final seqs were recorded: a client re-reads the map (and takes its
    /// lock) only when this moved, never per received message.
    finals_generation: AtomicU64,
    stop: watch::Sender<bool>,
    /// The scenario's faults on the run's clock, in order (empty on a happy path).
    faults: Vec<FaultWindow>,
    /// The proxy's marks of the connections its latest fault affected, when the run has a
    /// proxy: a client whose port is marked is not an untouched bystander.
    proxy_marks: Option<PortMarks>,
}

/// A scheduled fault as the clients see it, on the Unix clock their receipt times use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultWindow {
    pub start_ns: u64,
    /// `start_ns` for the one-shot kinds; for a restart, when the server is due back.
    pub end_ns: u64,
    /// Happens at once (drop, reset, cut, restart): a client it hit was hit at `start_ns`.
    /// Otherwise (idle cut, blackhole, ...) a client is hit when its session breaks.
    pub one_shot: bool,
    /// The server restarts: lines a client finds gone afterwards are lost by the restart.
    pub restart: bool,
}

impl RunControl {
    pub fn new(measure_start_ns: u64, measure_end_ns: u64) -> Self {
        RunControl {
            measure_start_ns,
            measure_end_ns,
            final_seqs: RwLock::new(HashMap::new()),
            unpublished: RwLock::new(HashMap::new()),
            finals: watch::Sender::new(0),
            finals_generation: AtomicU64::new(0),
            stop: watch::Sender::new(false),
            faults: Vec::new(),
            proxy_marks: None,
        }
    }

    /// The same control with the run's faults scheduled (in order, not overlapping).
    pub fn with_faults(mut self, faults: Vec<FaultWindow>) -> Self {
        self.faults = faults;
        self
    }

    /// Clients learn from `marks` which of them the proxy's faults touched.
    pub fn with_proxy_marks(mut self, marks: PortMarks) -> Self {
        self.proxy_marks = Some(marks);
        self
    }

    /// Whether the proxy's latest fault affected the connection from `local_port`.
    pub fn touched_by_proxy(&self, local_port: u16) -> bool {
        self.proxy_marks
            .as_ref()
            .is_some_and(|m| m.is_marked(local_port))
    }

    /// The fault that owns `now_ns`: the last one started at or before it (a fault owns the
    /// time until the next one starts), with its index. `None` before the first fault.
    pub fn fault_at(&self, now_ns: u64) -> Option<(usize, FaultWindow)> {
        let started = self.faults.partition_point(|f| f.start_ns <= now_ns);
        started.checked_sub(1).map(|i| (i, self.faults[i]))
    }

    /// Whether the run has faults at all (the hot path skips the fault lookups without).
    pub fn has_faults(&self) -> bool {
        !self.faults.is_empty()
    }

    /// How many faults the run schedules.
    pub fn fault_count(&self) -> usize {
        self.faults.len()
    }

    pub fn in_measure_window(&self, ts_ns: u64) -> bool {
        (self.measure_start_ns..=self.measure_end_ns).contains(&ts_ns)
    }

    pub fn measure_window_ns(&self) -> (u64, u64) {
        (self.measure_start_ns, self.measure_end_ns)
    }

    /// Records the last seq of a finished step: what every client of it must end up with.
    pub fn set_final_seq(&self, topic: TopicId, seq: u64) {
        self.final_seqs
            .write()
            .expect("final seqs lock")
            .insert(topic, seq);
        self.finals_generation.fetch_add(1, Ordering::Release);
        self.finals.send_modify(|n| *n += 1);
    }

    /// Completes each time final seqs have been recorded since the last call (never, if the
    /// control is gone).
    pub async fn finals_recorded(rx: &mut watch::Receiver<u64>) {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// A receiver for [`Self::finals_recorded`].
    pub fn finals_signal(&self) -> watch::Receiver<u64> {
        self.finals.subscribe()
    }

    /// Moves each time final seqs are recorded (see [`Self::final_seq`]).
    pub fn finals_generation(&self) -> u64 {
        self.finals_generation.load(Ordering::Acquire)
    }

    /// A topic's final seq, once its step is finished. Takes a lock: read it when
    /// [`Self::finals_generation`] moved, not per message.
    pub fn final_seq(&self, topic: &TopicId) -> Option<u64> {
        self.final_seqs
            .read()
            .expect("final seqs lock")
            .get(topic)
            .copied()
    }

    /// Records the seqs of a topic that were never published (read once per client, when it
    /// settles its account; not on the hot path).
    pub fn set_unpublished(&self, topic: TopicId, mut seqs: Vec<u64>) {
        if seqs.is_empty() {
            return;
        }
        seqs.sort_unstable();
        self.unpublished
            .write()
            .expect("unpublished lock")
            .insert(topic, seqs);
    }

    /// The topic's unpublished seqs, sorted (empty for most topics).
    pub fn unpublished(&self, topic: &TopicId) -> Vec<u64> {
        self.unpublished
            .read()
            .expect("unpublished lock")
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    /// Ends the run: every client stops at once.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// A receiver that changes when the run stops.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_owns_the_time_until_the_next_one() {
        let w = |start_ns, one_shot| FaultWindow {
            start_ns,
            end_ns: start_ns + 5,
            one_shot,
            restart: false,
        };
        let c = RunControl::new(0, 100).with_faults(vec![w(10, true), w(50, false)]);
        assert_eq!(c.fault_at(9), None);
        assert_eq!(c.fault_at(10).map(|f| f.0), Some(0));
        assert_eq!(c.fault_at(49).map(|f| f.0), Some(0));
        assert_eq!(c.fault_at(1_000).map(|f| f.0), Some(1));
        assert!(!RunControl::new(0, 1).has_faults());
    }
}
