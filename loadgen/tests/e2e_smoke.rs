//! End to end: `pushbench run scenarios/smoke.toml` against the real `feed-server`, every
//! transport, checked for zero loss and consistent figures.
//!
//! Needs the `feed-server` binary built beside `pushbench` (scripts/test.sh builds all binaries
//! before testing); the test fails, rather than skips, when it is missing.

mod common;

use pushbench::results::RunStatus;

use std::path::{Path, PathBuf};
use std::process::Command;

use pushbench::results::{decode_histogram, SCHEMA_VERSION};

#[test]
fn smoke_run_delivers_everything_on_every_transport() {
    let pushbench = PathBuf::from(env!("CARGO_BIN_EXE_pushbench"));
    let server = common::feed_server();
    let out = common::temp_dir("e2e");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml");
    let server_arg = server.to_string_lossy();
    let run_dir =
        common::run_pushbench(&scenario, &out, "smoke", &["--server-binary", &server_arg]);
    let summary = common::summary(&run_dir);
    assert_eq!(summary.schema_version, SCHEMA_VERSION);
    assert!(run_dir.join("scenario.toml").exists());
    assert!(run_dir.join("environment.json").exists());
    assert!(!summary.interrupted);
    let transports: Vec<&str> = summary.runs.iter().map(|r| r.transport.as_str()).collect();
    assert_eq!(transports, ["sse", "ws", "poll", "long-poll"]);

    for r in &summary.runs {
        let t = &r.transport;
        assert_eq!(r.status, RunStatus::Ok, "{t}: {:?}", r.problems);
        let e = &r.events;
        assert!(e.expected > 0, "{t}: nothing expected");
        assert_eq!(e.lost, 0, "{t}: lost events");
        assert_eq!(e.duplicated, 0, "{t}: duplicates");
        assert_eq!(e.out_of_order, 0, "{t}: out of order");
        assert_eq!(e.delivered, e.expected, "{t}: delivered != expected");
        assert!(r.latency_us.count > 0, "{t}: no latency samples");
        assert!(r.latency_us.p50 <= r.latency_us.p99 && r.latency_us.p99 <= r.latency_us.max);
        assert_eq!(
            r.connections.connects_ok,
            u64::from(r.connections.clients),
            "{t}: every client connects once"
        );
        // Wire bytes: counted at the socket, within 2% of the kernel's TCP_INFO counters.
        let w = &r.wire;
        assert!(w.bytes_down > 0 && w.bytes_up > 0, "{t}: no bytes counted");
        assert_eq!(w.tcp_info_errors, 0, "{t}: TCP_INFO unreadable");
        assert!(
            w.kernel_diff_down_pct.abs() <= 2.0,
            "{t}: down differs from kernel by {}%",
            w.kernel_diff_down_pct
        );
        assert!(
            w.kernel_diff_up_pct.abs() <= 2.0,
            "{t}: up differs from kernel by {}%",
            w.kernel_diff_up_pct
        );
        // Every event carries at least its JSON payload (~70 bytes + line).
        let down = w.bytes_down_per_event.expect("bytes per event measured");
        assert!(down > 60.0, "{t}: {down} B/event is below the payload size");
        assert!(
            r.server.rss_connected_bytes > 0 && r.server.cpu_us > 0,
            "{t}: server not sampled"
        );
        assert!(
            r.server.exit.contains("exit status: 0") || r.server.exit.contains("exit code: 0"),
            "{t}: server exit {}",
            r.server.exit
        );
        // Histograms embedded in the summary decode to the same counts.
        let h = decode_histogram(&r.histograms["latency_us"]).expect("latency histogram");
        assert_eq!(h.len(), r.latency_us.count);
        for f in r.files.values() {
            assert!(run_dir.join(f).exists(), "{t}: {f} listed but missing");
        }
        assert!(run_dir.join(&r.files["latency_hgrm"]).exists());
        if t.contains("poll") {
            let p = r.poll.as_ref().expect("poll stats");
            assert!(p.requests > 0);
            assert!(p.requests < p.requests_total, "{t}: {p:?}");
        }
        if t == "poll" {
            // 50 clients polling every 250 ms: 200 requests/s over the measured phase (ramp-up,
            // warm-up and drain polls left out), give or take the phase's edges and a slow
            // machine's late polls.
            let p = r.poll.as_ref().expect("poll stats");
            assert!(
                (140.0..=230.0).contains(&p.requests_per_sec),
                "{} poll requests/s, expected about 200",
                p.requests_per_sec
            );
        }
    }
    // Polling pays headers on every request: more bytes up per event than a stream.
    let up = |t: &str| {
        summary
            .runs
            .iter()
            .find(|r| r.transport == t)
            .unwrap()
            .wire
            .bytes_up_per_event
            .expect("bytes per event measured")
    };
    assert!(
        up("poll") > up("sse"),
        "poll {} vs sse {}",
        up("poll"),
        up("sse")
    );

    // `pushbench report` reads the saved data back.
    let report = Command::new(&pushbench)
        .arg("report")
        .arg(&run_dir)
        .output()
        .expect("run pushbench report");
    assert!(report.status.success());
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains("long-poll") && text.contains("smoke"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
