//! Churn end to end: viewers leave and come back every fraction of a second, resuming from the
//! last seq they received (SSE Last-Event-ID, WebSocket and poll `?after=`). Every transport
//! must still deliver every line exactly once.

mod common;

use pushbench::results::RunStatus;

#[test]
fn churning_clients_resume_without_loss_or_duplicates() {
    let server = common::feed_server();
    let dir = common::temp_dir("churn");
    let scenario = dir.join("churn.toml");
    std::fs::write(
        &scenario,
        r#"name = "churn"
transports = ["sse", "ws", "poll", "long-poll"]
duration = "3s"
warmup = "500ms"
drain = "5s"

[clients]
count = 30
ramp_up = "300ms"

[feed]
topics = 3
lines_per_sec = 50.0
line_bytes = { min = 40, max = 120 }

[poll]
interval = "200ms"
wait = "5s"

[churn]
session = "600ms"
pause = "200ms"
"#,
    )
    .unwrap();
    let server_arg = server.to_string_lossy();
    let run_dir = common::run_pushbench(
        &scenario,
        &dir.join("results"),
        "churn",
        &["--server-binary", &server_arg],
    );
    let summary = common::summary(&run_dir);
    assert_eq!(summary.runs.len(), 4);
    for r in &summary.runs {
        let t = &r.transport;
        assert_eq!(r.status, RunStatus::Ok, "{t}: {:?}", r.problems);
        // Each client left and came back several times.
        assert!(
            r.connections.connects_ok >= 2 * u64::from(r.connections.clients),
            "{t}: only {} connects for {} clients",
            r.connections.connects_ok,
            r.connections.clients
        );
        assert!(r.events.expected > 0, "{t}");
        assert_eq!(r.events.lost, 0, "{t}");
        assert_eq!(r.events.duplicated, 0, "{t}");
        assert_eq!(r.events.out_of_order, 0, "{t}");
        assert_eq!(r.events.delivered, r.events.expected, "{t}");
        // Resumed lines arrive as catch-up, outside the latency histogram.
        assert!(r.events.catch_up > 0, "{t}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
