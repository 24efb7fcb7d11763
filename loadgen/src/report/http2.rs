//! HTTP/2 beside HTTP/1.1: what sharing connections changes, transport by transport, and
//! whether SSE over HTTP/2 beats WebSocket where SSE over HTTP/1.1 lost to it. A pure function
//! of a [`Summary`] and its [`Verdict`], like the verdict itself.
//!
//! # Pairs
//! Each HTTP/2 transport is paired with the HTTP/1.1 one it rides over (`sse-h2` with `sse`,
//! `poll-h2` with `poll`, `long-poll-h2` with `long-poll`). Per transport, over its
//! repetitions (medians):
//! - *TCP connections held*: the most open at once (the load generator's count), and streams
//!   (clients) per connection;
//! - *server RSS per stream*: the verdict's "RSS per connection" (RSS with every client
//!   connected minus before, divided by clients), which over HTTP/2 is per stream;
//! - *server RSS per TCP connection*: the same RSS increase divided by the TCP connections
//!   held: what one connection of the transport costs, streams included;
//! - bytes per event (down, up), server CPU per event, latency p50 / p99 and connect time p50
//!   are the verdict's figures (the same medians and ranks). Over HTTP/2 connect time is
//!   sampled once per TCP connection, by the client that opened it.
//!
//! # SSE over HTTP/2 against WebSocket
//! For every metric of the verdict where `sse` ranked behind `ws`, the same row's ranks say
//! whether `sse-h2` ranks ahead of `ws` (beats it), with it (ties: the verdict's tie rule,
//! intervals included), or still behind. HTTP/2 transports take no part in the claim's
//! classes: the claim "SSE > WebSocket > polling" stays the HTTP/1.1 claim it always was.

use crate::results::{Summary, TransportResult};

use super::data;
use super::doc::Doc;
use super::spread::Spread;
use super::verdict::{fmt_bytes, fmt_sig, Metric, Verdict, VerdictGroup};

/// The HTTP/1.1 transport an HTTP/2 one rides over, or `None` for an HTTP/1.1 transport.
pub fn over_http1(transport: &str) -> Option<&str> {
    transport.strip_suffix("-h2")
}

/// Whether a transport name is an HTTP/2 one.
pub fn is_http2(transport: &str) -> bool {
    over_http1(transport).is_some()
}

/// One transport's connection figures (medians over its repetitions); the rest of its
/// figures are the verdict's.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionFigures {
    pub transport: String,
    pub repetitions: usize,
    pub clients: f64,
    /// Most TCP connections open at once; `None` when the run counted none.
    pub tcp_connections: Option<f64>,
    pub streams_per_connection: Option<f64>,
    /// Server RSS increase per client (per stream over HTTP/2); `None` without a sampled
    /// server process.
    pub rss_per_stream: Option<f64>,
    /// Server RSS increase per TCP connection held.
    pub rss_per_tcp_connection: Option<f64>,
}

/// An HTTP/1.1 transport and its HTTP/2 counterpart; either may be missing from a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    /// The HTTP/1.1 transport's name (`sse`, `poll`, `long-poll`).
    pub base: String,
    pub http1: Option<ConnectionFigures>,
    pub http2: Option<ConnectionFigures>,
}

/// Where SSE over HTTP/2 stands against WebSocket on a metric SSE over HTTP/1.1 lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgainstWs {
    Beats,
    Ties,
    StillLoses,
    /// `sse-h2` has no figure for the metric.
    Unmeasured,
}

impl AgainstWs {
    pub fn label(self) -> &'static str {
        match self {
            AgainstWs::Beats => "SSE over HTTP/2 beats WebSocket",
            AgainstWs::Ties => "SSE over HTTP/2 ties with WebSocket",
            AgainstWs::StillLoses => "SSE over HTTP/2 still loses to WebSocket",
            AgainstWs::Unmeasured => "SSE over HTTP/2 has no figure",
        }
    }
}

/// One metric where `sse` ranked behind `ws`.
#[derive(Clone, Debug, PartialEq)]
pub struct SseLoss {
    pub metric: Metric,
    pub sse: Option<f64>,
    pub sse_h2: Option<f64>,
    pub ws: Option<f64>,
    pub outcome: AgainstWs,
}

/// The HTTP/2 comparison of one verdict group.
#[derive(Clone, Debug, PartialEq)]
pub struct Http2Comparison {
    pub sweep: Option<String>,
    pub pairs: Vec<Pair>,
    /// The HTTP/1.1-only transports of the group (WebSocket), for their row beside the pairs.
    pub others: Vec<ConnectionFigures>,
    /// `None` when the group lacks sse, sse-h2 or ws; otherwise every metric SSE over
    /// HTTP/1.1 lost to WebSocket (empty: it lost none).
    pub sse_losses: Option<Vec<SseLoss>>,
}

/// The comparison for every verdict group that ran an HTTP/2 transport; empty without any.
pub fn compare(summary: &Summary, verdict: &Verdict) -> Vec<Http2Comparison> {
    let groups = data::groups(summary);
    verdict
        .groups
        .iter()
        .filter(|g| g.transports.iter().any(|t| is_http2(t)))
        .map(|g| {
            let runs: Vec<&TransportResult> = groups
                .iter()
                .filter(|d| d.sweep == g.sweep)
                .flat_map(|d| d.runs.iter().copied())
                .filter(|r| r.status.is_measured())
                .collect();
            compare_group(g, &runs)
        })
        .collect()
}

/// The HTTP/1.1 transports the group's HTTP/2 transports ride over.
fn bases_of(group: &VerdictGroup) -> Vec<String> {
    let mut bases: Vec<String> = Vec::new();
    for t in &group.transports {
        if let Some(base) = over_http1(t) {
            if !bases.iter().any(|b| b == base) {
                bases.push(base.to_string());
            }
        }
    }
    bases
}

fn compare_group(group: &VerdictGroup, runs: &[&TransportResult]) -> Http2Comparison {
    let bases = bases_of(group);
    let figures = |name: &str| connection_figures(name, runs);
    let pairs = bases
        .into_iter()
        .map(|base| Pair {
            http1: figures(&base),
            http2: figures(&format!("{base}-h2")),
            base,
        })
        .collect();
    let others = group
        .transports
        .iter()
        .filter(|t| !is_http2(t) && !bases_of(group).iter().any(|b| b == *t))
        .filter_map(|t| connection_figures(t, runs))
        .collect();
    Http2Comparison {
        sweep: group.sweep.clone(),
        pairs,
        others,
        sse_losses: sse_losses(group),
    }
}

fn connection_figures(transport: &str, runs: &[&TransportResult]) -> Option<ConnectionFigures> {
    let reps: Vec<&TransportResult> = runs
        .iter()
        .copied()
        .filter(|r| r.transport == transport)
        .collect();
    if reps.is_empty() {
        return None;
    }
    let median = |f: &dyn Fn(&TransportResult) -> Option<f64>| -> Option<f64> {
        let values: Vec<f64> = reps
            .iter()
            .filter_map(|r| f(r))
            .filter(|v| v.is_finite())
            .collect();
        Spread::of(&values).map(|s| s.median)
    };
    let tcp = |r: &TransportResult| {
        let peak = r.connections.tcp_connections_peak;
        (peak > 0).then_some(peak as f64)
    };
    let rss_rise = |r: &TransportResult| {
        r.server
            .measured
            .then_some(r.server.rss_connected_bytes as f64 - r.server.rss_baseline_bytes as f64)
    };
    Some(ConnectionFigures {
        transport: transport.to_string(),
        repetitions: reps.len(),
        clients: median(&|r| Some(f64::from(r.connections.clients))).unwrap_or(0.0),
        tcp_connections: median(&tcp),
        streams_per_connection: median(&|r| {
            tcp(r).map(|held| f64::from(r.connections.clients) / held)
        }),
        rss_per_stream: median(&|r| Metric::RssPerConnection.value(r)),
        rss_per_tcp_connection: median(&|r| Some(rss_rise(r)? / tcp(r)?)),
    })
}

/// The metrics where `sse` ranked behind `ws`, and where `sse-h2` stands on each.
fn sse_losses(group: &VerdictGroup) -> Option<Vec<SseLoss>> {
    let present = |t: &str| group.transports.iter().any(|x| x == t);
    if !(present("sse") && present("sse-h2") && present("ws")) {
        return None;
    }
    let mut losses = Vec::new();
    for row in &group.rows {
        let (Some(sse), Some(ws)) = (row.figure("sse"), row.figure("ws")) else {
            continue;
        };
        let (Some(sse_rank), Some(ws_rank)) = (sse.rank, ws.rank) else {
            continue;
        };
        if sse_rank <= ws_rank {
            continue;
        }
        let h2 = row.figure("sse-h2");
        let outcome = match h2.and_then(|f| f.rank) {
            None => AgainstWs::Unmeasured,
            Some(r) if r < ws_rank => AgainstWs::Beats,
            Some(r) if r == ws_rank => AgainstWs::Ties,
            Some(_) => AgainstWs::StillLoses,
        };
        losses.push(SseLoss {
            metric: row.metric,
            sse: sse.value,
            sse_h2: h2.and_then(|f| f.value),
            ws: ws.value,
            outcome,
        });
    }
    Some(losses)
}

/// The report's "HTTP/2 beside HTTP/1.1" section; nothing without an HTTP/2 run.
pub fn section(doc: &mut Doc, comparisons: &[Http2Comparison], verdict: &Verdict) {
    if comparisons.is_empty() {
        return;
    }
    doc.heading(2, "HTTP/2 beside HTTP/1.1");
    doc.para(
        "Each HTTP/2 transport beside the HTTP/1.1 one it rides over: the same clients, feed and \
         server, the viewers sharing TCP connections (streams per connection as the scenario's \
         [http2] says). RSS per stream is the server's RSS increase with every client connected \
         divided by clients (the verdict's \"RSS/connection\", per stream over HTTP/2); RSS per \
         TCP connection divides the same increase by the TCP connections held. Bytes per event \
         are counted at each TCP socket and divided by the events delivered over it, so HTTP/2 \
         framing, HPACK-compressed headers and the connection's own frames (SETTINGS, \
         WINDOW_UPDATE, PING) are in them. Over HTTP/2, connect time is sampled once per TCP \
         connection, by the client that opened it (TCP, TLS if any, h2 handshake, first answer): \
         clients joining an open connection make no handshake. WebSocket stays on HTTP/1.1. Medians \
         over repetitions; — means not measured.",
    );
    for c in comparisons {
        let Some(group) = verdict.group(c.sweep.as_deref()) else {
            continue;
        };
        if let Some(sweep) = &c.sweep {
            doc.heading(3, format!("at {sweep}"));
        }
        let header = [
            "transport",
            "TCP connections held",
            "streams/connection",
            "server RSS/stream",
            "server RSS/TCP connection",
            "bytes/event down",
            "bytes/event up",
            "server CPU/event",
            "latency p50",
            "latency p99",
            "connect p50",
        ]
        .map(String::from)
        .to_vec();
        let figure = |t: &str, m: Metric| {
            group
                .row(m)
                .and_then(|row| row.figure(t))
                .and_then(|f| f.value)
                .map_or("—".to_string(), |v| m.format(v))
        };
        let opt = |v: Option<f64>, f: fn(f64) -> String| v.map_or("—".to_string(), f);
        let mut rows = Vec::new();
        let mut listed: Vec<&ConnectionFigures> = Vec::new();
        for p in &c.pairs {
            listed.extend(p.http1.iter().chain(p.http2.iter()));
        }
        for f in listed.into_iter().chain(c.others.iter()) {
            let t = f.transport.as_str();
            rows.push(vec![
                t.to_string(),
                opt(f.tcp_connections, |v| format!("{v:.0}")),
                opt(f.streams_per_connection, fmt_sig),
                opt(f.rss_per_stream, fmt_bytes),
                opt(f.rss_per_tcp_connection, fmt_bytes),
                figure(t, Metric::BytesDownPerEvent),
                figure(t, Metric::BytesUpPerEvent),
                figure(t, Metric::CpuPerEvent),
                figure(t, Metric::LatencyP50),
                figure(t, Metric::LatencyP99),
                figure(t, Metric::ConnectP50),
            ]);
        }
        doc.table(header, rows);
        match &c.sse_losses {
            None => doc.para(
                "SSE over HTTP/2 against WebSocket: not compared (the run lacks sse, sse-h2 or ws).",
            ),
            Some(losses) if losses.is_empty() => doc.para(
                "SSE over HTTP/1.1 ranked behind WebSocket on no metric, so there was nothing for \
                 HTTP/2 to win back.",
            ),
            Some(losses) => {
                doc.para(format!(
                    "Where SSE over HTTP/1.1 ranked behind WebSocket ({} metric{}), SSE over \
                     HTTP/2 (ranked in the same verdict row, same tie rule):",
                    losses.len(),
                    if losses.len() == 1 { "" } else { "s" }
                ));
                let show = |m: Metric, v: Option<f64>| v.map_or("—".to_string(), |v| m.format(v));
                doc.list(losses.iter().map(|l| {
                    format!(
                        "{}: sse {}, ws {}, sse-h2 {}: {}",
                        l.metric.label(),
                        show(l.metric, l.sse),
                        show(l.metric, l.ws),
                        show(l.metric, l.sse_h2),
                        l.outcome.label()
                    )
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::verdict::verdict;
    use crate::results::{Summary, TransportResult};

    fn run(transport: &str, clients: u32, tcp: u64, rss_rise: u64, p99_us: u64) -> TransportResult {
        let mut r = TransportResult {
            transport: transport.into(),
            ..TransportResult::default()
        };
        r.connections.clients = clients;
        r.connections.tcp_connections_peak = tcp;
        r.server.measured = true;
        r.server.rss_baseline_bytes = 10_000_000;
        r.server.rss_connected_bytes = 10_000_000 + rss_rise;
        r.server.rss_per_connection_bytes = rss_rise as f64 / f64::from(clients);
        r.events.delivered = 100_000;
        r.latency_us.count = 100_000;
        r.latency_us.p50 = p99_us / 2;
        r.latency_us.p99 = p99_us;
        r.latency_us.p99_9 = p99_us * 2;
        r
    }

    fn summary(runs: Vec<TransportResult>) -> Summary {
        Summary {
            schema: "pushbench.summary".into(),
            schema_version: 2,
            scenario: "crafted".into(),
            run_id: "test".into(),
            started_at: "2026-12-03T00:00:00Z".into(),
            finished_at: None,
            interrupted: false,
            environment: Default::default(),
            repeat: 0,
            order: Vec::new(),
            runs,
            aggregates: Vec::new(),
            shard: None,
            shards: Vec::new(),
        }
    }

    #[test]
    fn pairs_carry_connections_held_and_memory_per_stream_and_per_connection() {
        let s = summary(vec![
            run("sse", 1000, 1000, 8_000_000, 2000),
            run("sse-h2", 1000, 100, 3_000_000, 2000),
            run("ws", 1000, 1000, 7_000_000, 2000),
        ]);
        let v = verdict(&s);
        let c = compare(&s, &v);
        assert_eq!(c.len(), 1);
        let pair = &c[0].pairs[0];
        assert_eq!(pair.base, "sse");
        let (h1, h2) = (pair.http1.as_ref().unwrap(), pair.http2.as_ref().unwrap());
        assert_eq!(h1.tcp_connections, Some(1000.0));
        assert_eq!(h2.tcp_connections, Some(100.0));
        assert_eq!(h2.streams_per_connection, Some(10.0));
        assert_eq!(h1.rss_per_stream, Some(8000.0));
        assert_eq!(h2.rss_per_stream, Some(3000.0));
        assert_eq!(h2.rss_per_tcp_connection, Some(30_000.0));
        // sse lost memory to ws (8,000 vs 7,000 B per connection); sse-h2 beats it.
        let losses = c[0].sse_losses.as_ref().unwrap();
        let memory = losses
            .iter()
            .find(|l| l.metric == Metric::RssPerConnection)
            .expect("sse lost on memory");
        assert_eq!(memory.outcome, AgainstWs::Beats);
        // Latency was a tie for all three: no loss to report there.
        assert!(losses.iter().all(|l| l.metric != Metric::LatencyP99));
    }

    #[test]
    fn without_an_http2_run_there_is_no_comparison_and_missing_counts_stay_missing() {
        let s = summary(vec![
            run("sse", 100, 100, 800_000, 2000),
            run("ws", 100, 100, 700_000, 2000),
        ]);
        assert!(compare(&s, &verdict(&s)).is_empty());
        // A poll-h2 run that counted no TCP connection has no per-connection figure, not 0.
        let mut unmeasured = run("poll-h2", 100, 0, 500_000, 3000);
        unmeasured.server.measured = false;
        let s = summary(vec![run("poll", 100, 100, 900_000, 3000), unmeasured]);
        let c = compare(&s, &verdict(&s));
        let h2 = c[0].pairs[0].http2.as_ref().unwrap();
        assert_eq!(h2.tcp_connections, None);
        assert_eq!(h2.rss_per_tcp_connection, None);
        assert_eq!(h2.rss_per_stream, None);
        assert_eq!(c[0].sse_losses, None, "no sse, sse-h2 and ws to compare");
    }

    #[test]
    fn an_sse_h2_still_behind_websocket_says_so() {
        let s = summary(vec![
            run("sse", 1000, 1000, 8_000_000, 2000),
            run("sse-h2", 1000, 100, 9_000_000, 2000),
            run("ws", 1000, 1000, 7_000_000, 2000),
        ]);
        let c = compare(&s, &verdict(&s));
        let losses = c[0].sse_losses.as_ref().unwrap();
        let memory = losses
            .iter()
            .find(|l| l.metric == Metric::RssPerConnection)
            .unwrap();
        assert_eq!(memory.outcome, AgainstWs::StillLoses);
        assert_eq!(memory.sse_h2, Some(9000.0));
    }

    #[test]
    fn the_section_shows_each_pair_and_what_http2_won_back() {
        let s = summary(vec![
            run("sse", 1000, 1000, 8_000_000, 2000),
            run("sse-h2", 1000, 100, 3_000_000, 2000),
            run("ws", 1000, 1000, 7_000_000, 2000),
        ]);
        let v = verdict(&s);
        let mut doc = Doc::new("t");
        section(&mut doc, &compare(&s, &v), &v);
        let md = doc.to_markdown();
        assert!(md.contains("HTTP/2 beside HTTP/1.1"), "{md}");
        for t in ["| sse |", "| sse-h2 |", "| ws |"] {
            assert!(md.contains(t), "{t} row: {md}");
        }
        assert!(md.contains("| 100 |"), "sse-h2 holds 100 connections: {md}");
        assert!(
            md.contains("server RSS/connection: sse 7.81 KiB, ws 6.84 KiB, sse-h2 2.93 KiB: SSE over HTTP/2 beats WebSocket"),
            "{md}"
        );
        // Without an HTTP/2 run, no section at all.
        let plain = summary(vec![run("sse", 10, 10, 80_000, 2000)]);
        let v = verdict(&plain);
        let mut doc = Doc::new("t");
        section(&mut doc, &compare(&plain, &v), &v);
        assert!(!doc.to_markdown().contains("HTTP/2"));
    }

    #[test]
    fn names_pair_by_suffix() {
        assert_eq!(over_http1("sse-h2"), Some("sse"));
        assert_eq!(over_http1("long-poll-h2"), Some("long-poll"));
        assert_eq!(over_http1("ws"), None);
        assert!(!is_http2("long-poll"));
    }
}
