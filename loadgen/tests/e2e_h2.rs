//! The HTTP/2 transports end to end against the real `feed-server`: `sse-h2`, `poll-h2` and
//! `long-poll-h2` over h2c (prior knowledge) and over TLS (`[http2] tls = true`: the server's
//! self-signed certificate, ALPN h2), then resuming with Last-Event-ID over h2 while clients
//! churn. Every line must arrive exactly once, and the clients must hold
//! `ceil(clients / streams_per_connection)` TCP connections.
//!
//! Needs the debug `feed-server` built beside `pushbench` (`cargo build -p feed-server`); the
//! test fails, rather than skips, when it is missing.

mod common;

use pushbench::results::{ConnectTime, RunStatus, Summary};

/// 23 clients, 10 streams a connection: three connections per transport.
const CLIENTS: u64 = 23;
const STREAMS_PER_CONNECTION: u64 = 10;

fn scenario(name: &str, extra: &str) -> String {
    format!(
        r#"name = "{name}"
transports = ["sse-h2", "poll-h2", "long-poll-h2"]
duration = "2s"
warmup = "500ms"
drain = "3s"

[clients]
count = {CLIENTS}
ramp_up = "300ms"
workers = 2

[feed]
topics = 3
lines_per_sec = 20.0
line_bytes = {{ min = 40, max = 120 }}

[poll]
interval = "250ms"
wait = "5s"

[http2]
streams_per_connection = {STREAMS_PER_CONNECTION}
{extra}
"#
    )
}

fn assert_every_line_once(summary: &Summary, what: &str) {
    let transports: Vec<&str> = summary.runs.iter().map(|r| r.transport.as_str()).collect();
    assert_eq!(transports, ["sse-h2", "poll-h2", "long-poll-h2"], "{what}");
    for r in &summary.runs {
        let t = format!("{what} {}", r.transport);
        assert_eq!(r.status, RunStatus::Ok, "{t}: {:?}", r.problems);
        let e = &r.events;
        assert!(e.expected > 0, "{t}: nothing expected");
        assert_eq!(e.delivered, e.expected, "{t}: delivered != expected");
        assert_eq!((e.lost, e.duplicated), (0, 0), "{t}: lost, duplicated");
        assert!(r.latency_us.count > 0, "{t}: no latency samples");
        let down = r
            .wire
            .bytes_down_per_event
            .expect("bytes per event measured");
        assert!(down > 0.0, "{t}: {down} B/event");
        assert_eq!(r.wire.tcp_info_errors, 0, "{t}: TCP_INFO unreadable");
        assert_eq!(r.connections.connect_time, ConnectTime::OpenedConnections);
        // One connect-time sample per TCP connection opened: joining streams have none.
        assert_eq!(
            r.connect_us.count, r.connections.tcp_connections_opened,
            "{t}: connect samples are the connections' handshakes"
        );
    }
}

fn assert_connections_held(summary: &Summary, what: &str) {
    for r in &summary.runs {
        let t = format!("{what} {}", r.transport);
        let c = &r.connections;
        assert_eq!(
            c.tcp_connections_opened,
            CLIENTS.div_ceil(STREAMS_PER_CONNECTION),
            "{t}: TCP connections for {CLIENTS} clients at {STREAMS_PER_CONNECTION} streams each ({c:?})"
        );
        assert!(c.connects_ok >= CLIENTS, "{t}: every client connected");
        assert!(
            c.streams_per_tcp_connection >= (CLIENTS as f64 / 3.0).floor(),
            "{t}: {} streams per connection",
            c.streams_per_tcp_connection
        );
    }
}

#[test]
fn h2c_and_tls_streams_deliver_every_line_once_on_shared_connections() {
    // The two runs side by side: each is a feed-server of its own on port 0.
    let (h2c, tls) = std::thread::scope(|s| {
        let h2c = s.spawn(|| common::run_scenario_text("h2c", &scenario("h2c", "")));
        let tls = common::run_scenario_text("h2tls", &scenario("h2tls", "tls = true"));
        (h2c.join().expect("the h2c run"), tls)
    });
    assert_every_line_once(&h2c, "h2c");
    assert_connections_held(&h2c, "h2c");
    assert_every_line_once(&tls, "tls");
    assert_connections_held(&tls, "tls");
    // Bytes are counted below TLS: its records make each event dearer than over h2c.
    let per_event = |s: &Summary| s.runs[0].wire.bytes_down_per_event.unwrap_or(0.0);
    assert!(
        per_event(&tls) > per_event(&h2c) + 10.0,
        "sse-h2 bytes down per event: TLS {} vs h2c {}",
        per_event(&tls),
        per_event(&h2c)
    );
}

#[test]
fn churning_h2_clients_resume_with_last_event_id_once() {
    let text = scenario(
        "h2churn",
        "\n[churn]\nsession = \"500ms\"\npause = \"100ms\"\n",
    );
    let summary = common::run_scenario_text("h2churn", &text);
    assert_every_line_once(&summary, "churn");
    for r in &summary.runs {
        let c = &r.connections;
        assert!(
            c.connects_ok > CLIENTS,
            "{}: clients left and came back ({c:?})",
            r.transport
        );
        // A leaving client resets its stream; its group's connection stays for the others.
        assert!(
            c.tcp_connections_opened < c.connects_ok,
            "{}: streams reuse connections ({c:?})",
            r.transport
        );
    }
}

#[test]
fn dropped_streams_and_reset_connections_resume_once() {
    // The server ends half the streams (the connection stays), then the proxy resets half
    // the TCP connections: every stream on a reset connection breaks, and its clients open a
    // new connection and resume.
    let text = format!(
        r#"name = "h2faults"
transports = ["sse-h2", "long-poll-h2"]
duration = "3s"
warmup = "500ms"
drain = "3s"

[clients]
count = {CLIENTS}
ramp_up = "300ms"

[feed]
topics = 3
lines_per_sec = 20.0
line_bytes = 80

[poll]
wait = "5s"

[http2]
streams_per_connection = {STREAMS_PER_CONNECTION}

[[faults]]
kind = "drop"
at = "500ms"
fraction = 0.5

[[faults]]
kind = "reset"
at = "1500ms"
fraction = 0.5
"#
    );
    let summary = common::run_scenario_text("h2faults", &text);
    for r in &summary.runs {
        let t = &r.transport;
        let e = &r.events;
        assert!(e.expected > 0, "{t}: nothing expected");
        assert_eq!(e.delivered, e.expected, "{t}: delivered != expected");
        assert_eq!((e.lost, e.duplicated), (0, 0), "{t}: lost, duplicated");
        let c = &r.connections;
        assert!(c.disconnects > 0, "{t}: the faults broke sessions ({c:?})");
        assert!(
            c.tcp_connections_opened > CLIENTS.div_ceil(STREAMS_PER_CONNECTION),
            "{t}: reset connections were opened again ({c:?})"
        );
        assert!(
            c.tcp_connections_opened < c.connects_ok,
            "{t}: one new connection per group, not per client ({c:?})"
        );
    }
}
