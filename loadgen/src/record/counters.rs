//! Event and connection counts, summed across clients and workers.

use serde::{Deserialize, Serialize};

use super::seq::{ClientSeqTracker, SeqOutcome};

/// Event and connection counts. Summed across clients and workers with [`Counters::merge`].
// Not `Copy`: callers copy it with an explicit `clone()`, and a growing struct of counters is
// better passed by reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Events the clients should have received (see [`ClientSeqTracker::expected`]).
    pub expected: u64,
    /// Distinct events received.
    pub delivered: u64,
    /// Events never received (not counting those below, which are told apart).
    pub lost: u64,
    /// Events the server no longer had when the client came back after a restart of a server
    /// with in-memory history (its `410` named the oldest seq it held): part of `expected`,
    /// not of `lost`.
    #[serde(default)]
    pub lost_by_restart: u64,
    /// Events a slow client missed because the server's lag policy dropped it and its history
    /// had moved on: part of `expected`, not of `lost`.
    #[serde(default)]
    pub lost_to_lag: u64,
    /// Events received again.
    pub duplicated: u64,
    /// Events received after a later one (late gap fills).
    pub out_of_order: u64,
    /// Connections (or reconnections) established.
    pub connects_ok: u64,
    /// Connection attempts that failed (refused, timed out, bad handshake).
    pub connect_errors: u64,
    /// TCP connections opened (each counted socket): one per session over HTTP/1.1 and
    /// WebSocket, one per connection group's connection over HTTP/2.
    #[serde(default)]
    pub tcp_connections_opened: u64,
    /// The most TCP connections open at once, summed over workers (each worker's own peak;
    /// equal to the run's peak when the workers' connections were all held at once).
    #[serde(default)]
    pub tcp_connections_peak: u64,
    /// Established connections that ended before the client closed them.
    pub disconnects: u64,
    /// Sessions established again after a client's earlier session broke.
    #[serde(default)]
    pub reconnects: u64,
    /// Bytes received from the server.
    pub bytes_down: u64,
    /// Bytes sent to the server.
    pub bytes_up: u64,
    /// Poll requests answered, over the whole run (ramp-up, warm-up and drain included).
    pub polls: u64,
    /// Poll answers with nothing new (304 or empty), over the whole run.
    pub polls_empty: u64,
    /// Poll answers read inside the measured phase (what requests/s is computed from).
    pub polls_measured: u64,
    /// Of those, answers with nothing new.
    pub polls_empty_measured: u64,
    /// Histogram samples clamped into range (above one hour). Non-zero means the histograms'
    /// maxima understate the truth.
    pub clamped_samples: u64,
    /// Clients none of whose sessions ever connected.
    pub clients_never_connected: u64,
    /// Lines the load generator's publisher never published that a client did not receive:
    /// left out of `expected` and `lost` (see [`ClientSeqTracker::excuse`]).
    pub excused: u64,
}

impl Counters {
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Counters) {
        // Destructured so that a new field cannot be forgotten here.
        let Counters {
            expected,
            delivered,
            lost,
            lost_by_restart,
            lost_to_lag,
            duplicated,
            out_of_order,
            connects_ok,
            connect_errors,
            tcp_connections_opened,
            tcp_connections_peak,
            disconnects,
            reconnects,
            bytes_down,
            bytes_up,
            polls,
            polls_empty,
            polls_measured,
            polls_empty_measured,
            clamped_samples,
            clients_never_connected,
            excused,
        } = other;
        let add = |into: &mut u64, n: &u64| *into = into.saturating_add(*n);
        add(&mut self.expected, expected);
        add(&mut self.delivered, delivered);
        add(&mut self.lost, lost);
        add(&mut self.lost_by_restart, lost_by_restart);
        add(&mut self.lost_to_lag, lost_to_lag);
        add(&mut self.reconnects, reconnects);
        add(&mut self.duplicated, duplicated);
        add(&mut self.out_of_order, out_of_order);
        add(&mut self.connects_ok, connects_ok);
        add(&mut self.connect_errors, connect_errors);
        add(&mut self.tcp_connections_opened, tcp_connections_opened);
        add(&mut self.tcp_connections_peak, tcp_connections_peak);
        add(&mut self.disconnects, disconnects);
        add(&mut self.bytes_down, bytes_down);
        add(&mut self.bytes_up, bytes_up);
        add(&mut self.excused, excused);
        add(&mut self.clients_never_connected, clients_never_connected);
        add(&mut self.polls, polls);
        add(&mut self.polls_empty, polls_empty);
        add(&mut self.polls_measured, polls_measured);
        add(&mut self.polls_empty_measured, polls_empty_measured);
        add(&mut self.clamped_samples, clamped_samples);
    }

    /// Counts one received event by its [`SeqOutcome`]. Losses are not counted here, because a
    /// gap may still fill: add them with [`Self::account_tracker`] once the client is done.
    pub fn record_outcome(&mut self, outcome: SeqOutcome) {
        match outcome {
            SeqOutcome::InOrder | SeqOutcome::Gap { .. } => self.delivered += 1,
            SeqOutcome::FilledGap => {
                self.delivered += 1;
                self.out_of_order += 1;
            }
            SeqOutcome::Duplicate => self.duplicated += 1,
        }
    }

    /// Adds a finished client's expected and lost counts (call [`ClientSeqTracker::finish`]
    /// first so the tail is accounted for).
    /// Adds a settled client: what it was expected to receive, less the `excused` numbers
    /// ([`ClientSeqTracker::excuse`]), and what it lost.
    pub fn account_tracker(&mut self, tracker: &ClientSeqTracker, excused: u64) {
        self.expected = self
            .expected
            .saturating_add(tracker.expected().saturating_sub(excused));
        self.lost = self.lost.saturating_add(tracker.missing());
        self.excused = self.excused.saturating_add(excused);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_merge_and_serde() {
        let mut a = Counters {
            expected: 10,
            delivered: 9,
            lost: 1,
            bytes_down: 100,
            polls_empty: 2,
            polls_measured: 4,
            ..Counters::default()
        };
        let b = Counters {
            expected: 5,
            delivered: 5,
            duplicated: 1,
            connects_ok: 3,
            bytes_down: u64::MAX,
            polls_measured: 1,
            polls_empty_measured: 1,
            ..Counters::default()
        };
        a.merge(&b);
        assert_eq!(a.expected, 15);
        assert_eq!(a.delivered, 14);
        assert_eq!(a.duplicated, 1);
        assert_eq!(a.connects_ok, 3);
        assert_eq!(a.bytes_down, u64::MAX, "saturates");
        assert_eq!(a.polls_empty, 2);
        assert_eq!((a.polls_measured, a.polls_empty_measured), (5, 1));
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("\"out_of_order\":0"));
        assert_eq!(serde_json::from_str::<Counters>(&json).unwrap(), a);
    }
}
