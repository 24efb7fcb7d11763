//! The closed-loop poll mode (`poll.interval = "0s"`, the throughput probe scripts/bench-wrk.sh
//! compares with wrk): each client polls again as soon as its answer is read, still losing
//! nothing, and requests/s counts only answers read inside the measured phase.

mod common;

use pushbench::results::RunStatus;

#[test]
fn closed_loop_polling_counts_the_measured_phase() {
    let server = common::feed_server();
    let dir = common::temp_dir("closed-loop");
    let scenario = dir.join("closed-loop.toml");
    std::fs::write(
        &scenario,
        r#"name = "closed-loop"
transports = ["poll"]
duration = "1s"
warmup = "300ms"
drain = "5s"

[clients]
count = 10

[feed]
topics = 1
lines_per_sec = 20.0
line_bytes = 60

[poll]
interval = "0s"
"#,
    )
    .unwrap();
    let server_arg = server.to_string_lossy();
    let run_dir = common::run_pushbench(
        &scenario,
        &dir.join("results"),
        "closed-loop",
        &["--server-binary", &server_arg],
    );
    let r = &common::summary(&run_dir).runs[0];
    assert_eq!(r.status, RunStatus::Ok);
    assert!(r.events.expected > 0);
    assert_eq!(r.events.lost, 0);
    assert_eq!(r.events.duplicated, 0);
    assert_eq!(r.events.delivered, r.events.expected);
    // Latency is still receipt minus scheduled publish time, for lines of the measured phase.
    assert!(r.latency_us.count > 0);
    let p = r.poll.as_ref().expect("poll stats");
    // Back to back: far more polls than a 1 s interval's one per client per second.
    assert!(p.requests > 50 * 10, "{} requests", p.requests);
    // Ramp-up, warm-up and drain polls are in the total only; the rate is over the 1 s phase.
    assert!(p.requests < p.requests_total, "{p:?}");
    let rate = p.requests as f64 / 1.0;
    assert!(
        (p.requests_per_sec - rate).abs() <= rate * 0.01,
        "{} req/s for {} requests in 1 s",
        p.requests_per_sec,
        p.requests
    );
    // Nearly every poll finds nothing new.
    assert!(p.empty_share > 0.5, "{p:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
