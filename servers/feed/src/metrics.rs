//! Server-side counters, rendered in the Prometheus text format, and the connection limit.
//!
//! A handful of atomics written by hand rather than a metrics framework: the hot path (one
//! `fetch_add` per delivered batch) stays visible and cheap, and the output is a dozen lines.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The transports a server offers (their names are the metrics' `transport` label).
pub use pushbench_protocol::Transport;

/// A transport's slot in the per-transport counters.
fn index(t: Transport) -> usize {
    t as usize
}

#[derive(Default)]
struct TransportCounters {
    open: AtomicU64,
    opened_total: AtomicU64,
    rejected_total: AtomicU64,
    events_sent: AtomicU64,
    body_bytes_sent: AtomicU64,
    lag_drops: AtomicU64,
}

/// One per-transport metric family: name, type, help and the counter it reads.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TransportCounters) -> &AtomicU64,
);

/// Counters of one server process.
pub struct Metrics {
    max_connections: u64,
    per_transport: [TransportCounters; Transport::ALL.len()],
    open_total: AtomicU64,
    lines_appended: AtomicU64,
    polls_not_modified: AtomicU64,
}

impl Metrics {
    /// `max_connections` bounds open streams and in-flight requests over all transports.
    pub fn new(max_connections: u64) -> Arc<Self> {
        Arc::new(Metrics {
            max_connections,
            per_transport: Default::default(),
            open_total: AtomicU64::new(0),
            lines_appended: AtomicU64::new(0),
            polls_not_modified: AtomicU64::new(0),
        })
    }

    fn of(&self, t: Transport) -> &TransportCounters {
        &self.per_transport[index(t)]
    }

    /// Counts a connection as open, or refuses it when the limit is reached (the caller answers
    /// 503 with `Retry-After`). The guard closes it when dropped.
    pub fn try_open(self: &Arc<Self>, t: Transport) -> Option<ConnectionGuard> {
        let prev = self.open_total.fetch_add(1, Relaxed);
        if prev >= self.max_connections {
            self.open_total.fetch_sub(1, Relaxed);
            self.of(t).rejected_total.fetch_add(1, Relaxed);
            return None;
        }
        let c = self.of(t);
        c.open.fetch_add(1, Relaxed);
        c.opened_total.fetch_add(1, Relaxed);
        Some(ConnectionGuard {
            metrics: self.clone(),
            transport: t,
        })
    }

    pub fn sent(&self, t: Transport, events: u64, body_bytes: u64) {
        let c = self.of(t);
        c.events_sent.fetch_add(events, Relaxed);
        c.body_bytes_sent.fetch_add(body_bytes, Relaxed);
    }

    pub fn lag_drop(&self, t: Transport) {
        self.of(t).lag_drops.fetch_add(1, Relaxed);
    }

    pub fn appended(&self, lines: u64) {
        self.lines_appended.fetch_add(lines, Relaxed);
    }

    pub fn poll_not_modified(&self) {
        self.polls_not_modified.fetch_add(1, Relaxed);
    }

    pub fn open(&self, t: Transport) -> u64 {
        self.of(t).open.load(Relaxed)
    }

    pub fn events_sent(&self, t: Transport) -> u64 {
        self.of(t).events_sent.load(Relaxed)
    }

    pub fn lag_drops(&self, t: Transport) -> u64 {
        self.of(t).lag_drops.load(Relaxed)
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let families: [Family; 6] = [
            (
                "pushbench_open_connections",
                "gauge",
                "Open streams and in-flight requests.",
                |c| &c.open,
            ),
            (
                "pushbench_connections_total",
                "counter",
                "Streams and requests accepted.",
                |c| &c.opened_total,
            ),
            (
                "pushbench_connections_rejected_total",
                "counter",
                "Connections refused with 503 at the connection limit.",
                |c| &c.rejected_total,
            ),
            (
                "pushbench_events_sent_total",
                "counter",
                "Log lines handed to the transport.",
                |c| &c.events_sent,
            ),
            (
                "pushbench_body_bytes_sent_total",
                "counter",
                "Response body bytes produced (framing included, HTTP headers and WebSocket frame headers not).",
                |c| &c.body_bytes_sent,
            ),
            (
                "pushbench_lag_drops_total",
                "counter",
                "Subscribers closed because they fell behind the history ring.",
                |c| &c.lag_drops,
            ),
        ];
        for (name, kind, help, field) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for t in Transport::ALL {
                let v = field(self.of(t)).load(Relaxed);
                let _ = writeln!(out, "{name}{{transport=\"{}\"}} {v}", t.as_str());
            }
        }
        let _ = writeln!(
            out,
            "# HELP pushbench_lines_appended_total Lines appended to the feed.\n# TYPE pushbench_lines_appended_total counter\npushbench_lines_appended_total {}",
            self.lines_appended.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP pushbench_polls_not_modified_total Polls answered 304 Not Modified.\n# TYPE pushbench_polls_not_modified_total counter\npushbench_polls_not_modified_total {}",
            self.polls_not_modified.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP pushbench_max_connections The connection limit.\n# TYPE pushbench_max_connections gauge\npushbench_max_connections {}",
            self.max_connections
        );
        out
    }
}

/// An open connection; closes its count when dropped.
pub struct ConnectionGuard {
    metrics: Arc<Metrics>,
    transport: Transport,
}

impl ConnectionGuard {
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics.of(self.transport).open.fetch_sub(1, Relaxed);
        self.metrics.open_total.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_counts_all_transports_and_guards_release() {
        let m = Metrics::new(2);
        let a = m.try_open(Transport::Sse).unwrap();
        let _b = m.try_open(Transport::Ws).unwrap();
        assert!(m.try_open(Transport::Poll).is_none());
        drop(a);
        let _c = m.try_open(Transport::Poll).unwrap();
        assert_eq!(m.open(Transport::Sse), 0);
        m.sent(Transport::Ws, 3, 300);
        let text = m.render();
        assert!(text.contains("pushbench_open_connections{transport=\"ws\"} 1"));
        assert!(text.contains("pushbench_events_sent_total{transport=\"ws\"} 3"));
        assert!(text.contains("pushbench_connections_rejected_total{transport=\"poll\"} 1"));
    }
}
