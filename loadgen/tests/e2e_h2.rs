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
drain = "4s"

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
        assert_eq!(r.connections.connect_time, ConnectTime::ConnectionOrStream);
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
    let h2c = common::run_scenario_text("h2c", &scenario("h2c", ""));
    assert_every_line_once(&h2c, "h2c");
    assert_connections_held(&h2c, "h2c");
    let tls = common::run_scenario_text("h2tls", &scenario("h2tls", "tls = true"));
    assert_every_line_once(&tls, "tls");
    assert_connections_held(&tls, "tls");
    // The TLS handshake is in the openers' connect time and its records in the wire bytes.
    let sse = |s: &Summary| s.runs[0].wire.bytes_down;
    assert!(sse(&tls) > sse(&h2c), "TLS adds bytes");
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
