//! Sharded load generation end to end: two `pushbench run --shard I/2` processes against
//! one feed-server the test started, `pushbench merge`, and an unsharded run of the same
//! scenario beside them; then every way a merge must refuse.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use pushbench::results::{decode_histogram, Percentiles, Summary, TransportResult};

const SCENARIO: &str = r#"name = "shards"
transports = ["sse", "long-poll"]
duration = "2s"
warmup = "500ms"
drain = "3s"

[clients]
count = 13
ramp_up = "300ms"
topics = "zipf"

[feed]
topics = 3
lines_per_sec = 40.0
line_bytes = 100

[poll]
wait = "10s"
"#;

fn pushbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .args(args)
        .output()
        .expect("run pushbench")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "pushbench failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The single run folder under `out/NAME`.
fn run_dir(out: &Path) -> PathBuf {
    std::fs::read_dir(out.join("shards"))
        .expect("results/shards")
        .next()
        .expect("a run folder")
        .expect("readable")
        .path()
}

/// Unix seconds `ahead` from now, as `--start-at` takes them.
fn start_in(ahead_s: f64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{:.3}", now.as_secs_f64() + ahead_s)
}

fn run_of<'a>(s: &'a Summary, transport: &str) -> &'a TransportResult {
    s.runs
        .iter()
        .find(|r| r.transport == transport)
        .unwrap_or_else(|| panic!("no {transport} run"))
}

fn histogram(r: &TransportResult, name: &str) -> Histogram<u64> {
    decode_histogram(&r.histograms[name]).expect("histogram decodes")
}

/// Starts `pushbench run` for each argument list at once and waits for all of them.
fn run_together(runs: Vec<Vec<String>>) -> Vec<Output> {
    let children: Vec<_> = runs
        .into_iter()
        .map(|args| {
            Command::new(env!("CARGO_BIN_EXE_pushbench"))
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start pushbench")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait for pushbench"))
        .collect()
}

fn shard_args(scenario: &Path, out: &Path, target: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        &scenario.display().to_string(),
        "--quiet",
        "--no-pin",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--out".into(), out.display().to_string()]);
    args.extend(["--target".into(), target.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn two_shards_merge_into_the_unsharded_run() {
    let server = common::ExternalFeedServer::start(&["--gen-topics", "0"]);
    let target = format!("http://{}", server.addr);
    let dir = common::temp_dir("shards");
    let scenario = dir.join("shards.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();

    let start = start_in(4.0);
    let (out1, out2) = (dir.join("shard-1"), dir.join("shard-2"));
    let outputs = run_together(vec![
        shard_args(
            &scenario,
            &out1,
            &target,
            &["--shard", "1/2", "--start-at", &start],
        ),
        shard_args(
            &scenario,
            &out2,
            &target,
            &["--shard", "2/2", "--start-at", &start],
        ),
    ]);
    for o in &outputs {
        ok(o);
    }
    let merged_dir = dir.join("merged");
    let merged_arg = merged_dir.display().to_string();
    let merge = pushbench(&[
        "merge",
        &merged_arg,
        &out1.display().to_string(),
        &out2.display().to_string(),
    ]);
    ok(&merge);
    assert!(
        merged_dir.join("report.md").exists(),
        "merge draws the report"
    );
    let merged = common::summary(&merged_dir);
    let (s1, s2) = (
        common::summary(&run_dir(&out1)),
        common::summary(&run_dir(&out2)),
    );
    assert_eq!(merged.shards.len(), 2);
    assert_eq!(s1.shard.as_ref().and_then(|s| s.index), Some(1));
    assert_eq!(s2.shard.as_ref().and_then(|s| s.index), Some(2));

    // The unsharded run of the same scenario against the same server.
    let whole_out = dir.join("whole");
    ok(&pushbench(
        &shard_args(&scenario, &whole_out, &target, &[])[..]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));
    let whole = common::summary(&run_dir(&whole_out));
    assert!(whole.shard.is_none());

    for transport in ["sse", "long-poll"] {
        let (m, a, b, w) = (
            run_of(&merged, transport),
            run_of(&s1, transport),
            run_of(&s2, transport),
            run_of(&whole, transport),
        );
        // Client split: 13 = 7 + 6, by index.
        assert_eq!(a.connections.clients, 7, "{transport}");
        assert_eq!(b.connections.clients, 6, "{transport}");
        assert_eq!(m.connections.clients, 13, "{transport}");
        // Counters are the shards' sums; nothing lost, duplicated or out of order.
        let e = |r: &TransportResult| r.events.clone();
        assert_eq!(
            m.events.expected,
            e(a).expected + e(b).expected,
            "{transport}"
        );
        assert_eq!(
            m.events.delivered,
            e(a).delivered + e(b).delivered,
            "{transport}"
        );
        assert_eq!(m.events.lost, e(a).lost + e(b).lost, "{transport}");
        assert!(m.events.expected > 500, "{transport}: {:?}", m.events);
        assert_eq!(m.events.lost, 0, "{transport}: {:?}", m.events);
        assert_eq!(
            m.events.duplicated + m.events.out_of_order,
            0,
            "{transport}"
        );
        assert_eq!(m.wire.bytes_down, a.wire.bytes_down + b.wire.bytes_down);
        // Exactly one shard published.
        assert!(
            a.publisher.is_some() && b.publisher.is_none(),
            "{transport}"
        );
        assert!(m.publisher.is_some(), "{transport}");
        // Percentiles of the merged run are those of the two histograms added.
        let mut added = histogram(a, "latency_us");
        added.add(histogram(b, "latency_us")).unwrap();
        let expect = Percentiles::of(&added);
        assert_eq!(m.latency_us.count, expect.count, "{transport}");
        assert_eq!(
            (m.latency_us.p50, m.latency_us.p99, m.latency_us.p99_9),
            (expect.p50, expect.p99, expect.p99_9),
            "{transport}"
        );
        assert_eq!(histogram(m, "latency_us"), added, "{transport}");
        // The unsharded run: the same totals, exactly.
        assert_eq!(
            (w.events.expected, w.events.delivered, w.events.lost),
            (m.events.expected, m.events.delivered, m.events.lost),
            "{transport}: whole {:?} merged {:?}",
            w.events,
            m.events
        );
        assert_eq!(w.connections.clients, m.connections.clients);
        // Each shard measured its clock against the server: on one host the offset is 0
        // within the exchange's uncertainty.
        assert_eq!(m.shards.len(), 2, "{transport}");
        for f in &m.shards {
            let c = f
                .clock
                .as_ref()
                .unwrap_or_else(|| panic!("{}: no clock offset: {:?}", f.shard, f.clock_missing));
            assert!(
                c.offset_ns.unsigned_abs() <= c.uncertainty_ns + 1_000_000,
                "{}: offset {} ns ± {} ns on one host",
                f.shard,
                c.offset_ns,
                c.uncertainty_ns
            );
        }
        // The merged time series sums the shards' deliveries by tick.
        let series = |d: &Path, f: &str| -> u64 {
            std::fs::read_to_string(d.join(f))
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["deliveries"]
                        .as_u64()
                        .unwrap()
                })
                .sum()
        };
        let file = &m.files["timeseries"];
        assert_eq!(
            series(&merged_dir, file),
            series(&run_dir(&out1), &a.files["timeseries"])
                + series(&run_dir(&out2), &b.files["timeseries"]),
            "{transport}"
        );
    }
    let report = std::fs::read_to_string(merged_dir.join("report.md")).unwrap();
    assert!(
        report.contains("shard 1/2") && report.contains("shard 2/2"),
        "the report names its shards"
    );

    // Refusals, each naming the problem.
    let (r1, r2) = (run_dir(&out1), run_dir(&out2));
    let refused = |args: &[&Path], expect: &str| {
        let to = dir.join(format!("refused-{}", expect.len()));
        let mut a = vec!["merge".to_string(), to.display().to_string()];
        a.extend(args.iter().map(|p| p.display().to_string()));
        let out = pushbench(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!out.status.success(), "merge of {args:?} must be refused");
        assert!(
            stderr(&out).contains(expect),
            "expected {expect:?} in: {}",
            stderr(&out)
        );
    };
    refused(&[&r1, &r1], "appears twice");
    refused(&[&r1], "missing");
    refused(&[&r1, &run_dir(&whole_out)], "not a shard's run");
    let other = dir.join("other");
    copy_dir(&r2, &other);
    let text = std::fs::read_to_string(other.join("scenario.toml")).unwrap();
    std::fs::write(
        other.join("scenario.toml"),
        text.replace("count = 13", "count = 14"),
    )
    .unwrap();
    refused(&[&r1, &other], "different scenarios");
    let again = pushbench(&[
        "merge",
        &merged_arg,
        &r1.display().to_string(),
        &r2.display().to_string(),
    ]);
    assert!(!again.status.success() && stderr(&again).contains("already holds a run"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_publisher_only_process_feeds_shards_that_do_not_publish() {
    let server = common::ExternalFeedServer::start(&["--gen-topics", "0"]);
    let target = format!("http://{}", server.addr);
    let dir = common::temp_dir("shards-pub");
    let scenario = dir.join("shards.toml");
    std::fs::write(
        &scenario,
        SCENARIO.replace(r#"["sse", "long-poll"]"#, r#"["ws"]"#),
    )
    .unwrap();
    let start = start_in(4.0);
    let outs: Vec<PathBuf> = ["p", "1", "2"].iter().map(|n| dir.join(n)).collect();
    let outputs = run_together(vec![
        shard_args(
            &scenario,
            &outs[0],
            &target,
            &["--publisher-only", "--start-at", &start],
        ),
        shard_args(
            &scenario,
            &outs[1],
            &target,
            &["--shard", "1/2", "--no-publish", "--start-at", &start],
        ),
        shard_args(
            &scenario,
            &outs[2],
            &target,
            &["--shard", "2/2", "--start-at", &start],
        ),
    ]);
    for o in &outputs {
        ok(o);
    }
    let merged_dir = dir.join("merged");
    ok(&pushbench(&[
        "merge",
        &merged_dir.display().to_string(),
        &dir.display().to_string(),
    ]));
    let merged = common::summary(&merged_dir);
    assert_eq!(merged.shards.len(), 3);
    let m = run_of(&merged, "ws");
    assert_eq!(m.connections.clients, 13);
    assert!(m.publisher.is_some(), "the publisher's report is kept");
    assert!(
        m.events.expected > 500 && m.events.lost == 0,
        "{:?}",
        m.events
    );
    let publisher = common::summary(&run_dir(&outs[0]));
    assert_eq!(run_of(&publisher, "ws").connections.clients, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sharding_flags_are_checked_before_anything_runs() {
    let dir = common::temp_dir("shards-flags");
    let scenario = dir.join("shards.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let sc = scenario.display().to_string();
    let refused = |args: &[&str], expect: &str| {
        let mut a = vec!["run", sc.as_str(), "--quiet", "--out", "/nonexistent/never"];
        a.extend(args);
        let out = pushbench(&a);
        assert!(!out.status.success(), "{args:?} must be refused");
        assert!(
            stderr(&out).contains(expect),
            "expected {expect:?} in: {}",
            stderr(&out)
        );
    };
    refused(&["--shard", "1/2"], "does not start");
    refused(
        &["--shard", "2/2", "--target", "http://127.0.0.1:1"],
        "--start-at",
    );
    refused(
        &["--shard", "3/2", "--target", "http://127.0.0.1:1"],
        "between 1 and N",
    );
    refused(&["--target", "127.0.0.1:1"], "must start with http://");
    refused(
        &["--start-at", "soon", "--target", "http://127.0.0.1:1"],
        "--start-at \"soon\"",
    );
    refused(
        &["--publisher-only", "--shard", "1/2"],
        "cannot be used with",
    );
    // A start instant already past: refused, not run out of step.
    let server = common::ExternalFeedServer::start(&["--gen-topics", "0"]);
    let target = format!("http://{}", server.addr);
    let late = dir.join("late").display().to_string();
    let out = pushbench(&[
        "run",
        &sc,
        "--quiet",
        "--no-pin",
        "--out",
        &late,
        "--target",
        &target,
        "--shard",
        "1/2",
        "--start-at",
        "1000000000",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("in the past"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}
