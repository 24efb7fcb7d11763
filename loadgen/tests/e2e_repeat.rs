//! End to end: the smoke scenario with `--repeat 2`. Both repetitions of every transport are
//! kept, in interleaved order, each in its own folder; merged counts are the sums of the
//! repetitions'; the verdict and the report speak of medians and spread.

mod common;

use std::path::Path;

use pushbench::report::data::merge_repetitions;
use pushbench::report::verdict;
use pushbench::results::{RunStatus, TransportResult};

#[test]
fn repetitions_are_interleaved_kept_and_merged_by_summing() {
    let server = common::feed_server();
    let out = common::temp_dir("repeat");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml");
    let server_arg = server.to_string_lossy();
    let run_dir = common::run_pushbench(
        &scenario,
        &out,
        "smoke",
        &["--server-binary", &server_arg, "--repeat", "2"],
    );
    let summary = common::summary(&run_dir);
    assert_eq!(summary.repeat, 2);
    assert_eq!(
        summary.order,
        [
            "sse r1",
            "ws r1",
            "poll r1",
            "long-poll r1",
            "sse r2",
            "ws r2",
            "poll r2",
            "long-poll r2"
        ]
    );
    assert_eq!(summary.runs.len(), 8);
    for r in &summary.runs {
        assert_eq!(r.status, RunStatus::Ok, "{}: {:?}", r.label(), r.problems);
        assert_eq!(r.events.lost, 0, "{}", r.label());
        let folder = format!("{}-r{}", r.transport, r.repetition);
        assert!(
            run_dir.join(&folder).join("latency.hgrm").exists(),
            "{folder}"
        );
    }

    let runs: Vec<&TransportResult> = summary.runs.iter().collect();
    let merged = merge_repetitions(&runs);
    assert_eq!(merged.len(), 4);
    for m in &merged {
        let reps: Vec<&TransportResult> = runs
            .iter()
            .copied()
            .filter(|r| r.transport == m.transport)
            .collect();
        assert_eq!(reps.len(), 2);
        let sum = |f: fn(&TransportResult) -> u64| reps.iter().map(|r| f(r)).sum::<u64>();
        let t = &m.transport;
        assert_eq!(m.events.expected, sum(|r| r.events.expected), "{t}");
        assert_eq!(m.events.delivered, sum(|r| r.events.delivered), "{t}");
        assert_eq!(m.latency_us.count, sum(|r| r.latency_us.count), "{t}");
        assert_eq!(m.connect_us.count, sum(|r| r.connect_us.count), "{t}");
        assert_eq!(m.wire.bytes_down, sum(|r| r.wire.bytes_down), "{t}");
        assert_eq!(m.repetition, 0);
    }

    let v = verdict(&summary);
    assert_eq!(v.repetitions(), 2);
    assert!(
        v.headline()
            .contains("Medians of 2 interleaved repetitions"),
        "{}",
        v.headline()
    );
    let f = v.row(pushbench::report::Metric::LatencyP50).unwrap();
    assert!(
        f.figures.iter().all(|f| f.spread.map(|s| s.n) == Some(2)),
        "{f:?}"
    );
    let report = std::fs::read_to_string(run_dir.join("report.md")).expect("report.md");
    assert!(
        report.contains("Run-to-run stability over 2 repetitions"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
