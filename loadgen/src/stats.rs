//! One worker's measurements: the [`Recorder`] (histograms and counters) plus what the
//! clients report as they go. Clients of a worker share it through `Rc<RefCell<_>>`: a worker
//! is one thread, so no locking, and no histogram per connection (each costs ~190 KB:
//! 23,552 eight-byte counts with the bounds of [`crate::record::new_histogram_us`]).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::clients::failure::{FailureReason, SessionError};
use crate::clients::SessionEnd;
use crate::record::{ClientSeqTracker, IntervalRecorder, Recorder, SeqOutcome};
use crate::wire::TcpInfoBytes;

/// A worker's measurements.
pub struct Stats {
    pub recorder: Recorder,
    /// The current one-second interval, taken by the worker's ticker.
    pub interval: IntervalRecorder,
    /// Sessions connected now (for HTTP/2, streams: clients connected).
    pub open_connections: u64,
    /// TCP connections open now (counted sockets).
    pub tcp_open: u64,
    /// Lines that were delivered as catch-up (scheduled before their session connected):
    /// counted for loss, kept out of the latency histogram.
    pub catch_up: u64,
    /// Kernel's TCP_INFO totals of closed sockets, to cross-check the counted bytes.
    pub kernel_bytes_down: u64,
    pub kernel_bytes_up: u64,
    /// Sockets whose TCP_INFO could not be read.
    pub tcp_info_errors: u64,
    /// Why sessions failed, counted by kind.
    pub failure_reasons: BTreeMap<FailureReason, u64>,
    /// The first failure of each kind in full, for a person.
    pub failure_examples: BTreeMap<FailureReason, String>,
    pub clients_done: u32,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            recorder: Recorder::new(),
            interval: IntervalRecorder::new(),
            open_connections: 0,
            tcp_open: 0,
            catch_up: 0,
            kernel_bytes_down: 0,
            kernel_bytes_up: 0,
            tcp_info_errors: 0,
            failure_reasons: BTreeMap::new(),
            failure_examples: BTreeMap::new(),
            clients_done: 0,
        }
    }

    /// Counts an established session; `d` its connect time, `None` for a session that joined
    /// an HTTP/2 connection already open (no handshake: see `clients::ConnectStart`).
    pub fn record_connect(&mut self, d: Option<Duration>) {
        self.recorder.counters_mut().connects_ok += 1;
        if let Some(d) = d {
            self.recorder.record_connect_us(d.as_micros() as u64);
        }
    }

    pub fn record_first_event(&mut self, d: Duration) {
        self.recorder.record_first_event_us(d.as_micros() as u64);
    }

    /// Counts a received line; `latency_ns` is `None` for lines kept out of the latency
    /// histogram (warm-up, catch-up).
    pub fn count_line(&mut self, outcome: SeqOutcome, latency_ns: Option<u64>) {
        self.recorder.counters_mut().record_outcome(outcome);
        match latency_ns {
            Some(ns) => {
                // Round up: a sub-microsecond delivery still took time.
                let us = ns.div_ceil(1000).max(1);
                self.recorder.record_latency_us(us);
                self.interval.record_latency_us(us);
            }
            None if outcome != SeqOutcome::Duplicate => self.interval.record_delivery(),
            None => {}
        }
    }

    pub fn count_catch_up(&mut self) {
        self.catch_up += 1;
    }

    /// Counts one answered poll; `measured` when its answer was read inside the measured
    /// phase (the requests/s a run reports counts only those).
    pub fn count_poll(&mut self, empty: bool, measured: bool) {
        let c = self.recorder.counters_mut();
        c.polls += 1;
        c.polls_empty += u64::from(empty);
        if measured {
            c.polls_measured += 1;
            c.polls_empty_measured += u64::from(empty);
        }
    }

    fn reason(&mut self, error: &SessionError) {
        let reason = error.reason();
        *self.failure_reasons.entry(reason).or_default() += 1;
        self.failure_examples
            .entry(reason)
            .or_insert_with(|| crate::error::chain(error));
    }

    /// A connection could not be made; the client retries.
    pub fn connect_failed(&mut self, error: SessionError) -> SessionEnd {
        self.recorder.counters_mut().connect_errors += 1;
        self.reason(&error);
        SessionEnd::ConnectFailed
    }

    /// A session that was connected failed; the client reconnects.
    pub fn count_disconnect(&mut self, error: &SessionError) {
        self.recorder.counters_mut().disconnects += 1;
        self.reason(error);
    }

    pub fn connection_opened(&mut self) {
        self.open_connections += 1;
    }

    pub fn connection_closed(&mut self) {
        self.open_connections = self.open_connections.saturating_sub(1);
    }

    /// A counted socket was connected.
    pub fn tcp_opened(&mut self) {
        self.tcp_open += 1;
        let c = self.recorder.counters_mut();
        c.tcp_connections_opened += 1;
        c.tcp_connections_peak = c.tcp_connections_peak.max(self.tcp_open);
    }

    /// Adds a socket's counted bytes and the kernel's view of them (read just before it
    /// closed); called by [`crate::clients::socket::MeasuredSocket`] when it is dropped.
    pub fn socket_closed(
        &mut self,
        bytes_down: u64,
        bytes_up: u64,
        kernel: std::io::Result<TcpInfoBytes>,
    ) {
        self.tcp_open = self.tcp_open.saturating_sub(1);
        let c = self.recorder.counters_mut();
        c.bytes_down += bytes_down;
        c.bytes_up += bytes_up;
        match kernel {
            Ok(k) => {
                self.kernel_bytes_down += k.bytes_received;
                self.kernel_bytes_up += k.bytes_up();
            }
            Err(_) => self.tcp_info_errors += 1,
        }
    }

    /// Settles a client's account: what it should have received and what it missed.
    pub fn finish_client(
        &mut self,
        tracker: &mut ClientSeqTracker,
        final_seq: Option<u64>,
        unpublished: &[u64],
    ) {
        // Without a final seq the run stopped before the step finished: only gaps count.
        if let Some(f) = final_seq {
            tracker.finish(f);
        }
        let excused = tracker.excuse(unpublished);
        self.recorder
            .counters_mut()
            .account_tracker(tracker, excused);
        self.clients_done += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_count_in_the_run_and_in_the_measured_phase() {
        let mut st = Stats::new();
        st.count_poll(false, false);
        st.count_poll(true, true);
        st.count_poll(false, true);
        let c = st.recorder.counters();
        assert_eq!((c.polls, c.polls_empty), (3, 1));
        assert_eq!((c.polls_measured, c.polls_empty_measured), (2, 1));
    }
}
