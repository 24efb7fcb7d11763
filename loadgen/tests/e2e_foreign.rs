//! External-target mode against a server that is not ours and knows none of our conventions
//! (see [`foreign`]): no end events, its own cursors (query, ETag), awkward event-stream
//! framing, a publish endpoint that closes every connection and, in one test, sheds every
//! 10th POST with a 503. pushbench must still count every line exactly, from its markers
//! alone, and say so in `summary.json` — read here as plain JSON, because the fields checked
//! (`publisher`, `problems`, a nullable `bytes_down_per_event`) are newer than
//! `pushbench::results::Summary` may be.

mod common;
mod foreign;

use std::path::Path;

use foreign::{ForeignServer, Options, PostCounts};
use serde_json::Value;

/// 3 topics × 20 lines/s over ramp-up, warm-up and the measured phase, 12 clients.
fn scenario(name: &str, transports: &[&str], target: &str) -> String {
    let transports = transports
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"name = "{name}"
transports = [{transports}]
duration = "2s"
warmup = "500ms"
drain = "3s"

[clients]
count = 12
ramp_up = "300ms"

[feed]
topics = 3
lines_per_sec = 20.0
line_bytes = 60

[poll]
interval = "200ms"

[target]
{target}"#
    )
}

/// The `[target]` lines every test shares: publishing, the event stream and the WebSocket.
fn push_urls(server: &ForeignServer, sse_query: &str) -> String {
    let addr = server.addr();
    format!(
        "publish_url = \"http://{addr}/pub/{{topic}}\"\n\
         sse_url = \"http://{addr}/sub/{{topic}}/sse{sse_query}\"\n\
         ws_url = \"ws://{addr}/sub/{{topic}}/ws\"\n"
    )
}

/// One run of pushbench (every transport listed), and the server's POST counts for each run:
/// each run publishes to a fresh build, and builds are listed in the order they appeared.
fn run(
    server: &ForeignServer,
    dir: &Path,
    name: &str,
    transports: &[&str],
    target: &str,
) -> Vec<(Value, PostCounts)> {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, scenario(name, transports, target)).unwrap();
    let builds_before = server.posts_by_build().len();
    let run_dir = common::run_pushbench(&file, &dir.join("results"), name, &["--no-pin"]);
    let summary = common::summary_json(&run_dir);
    let runs = summary["runs"].as_array().expect("runs").clone();
    let builds = server.posts_by_build().split_off(builds_before);
    assert_eq!(
        runs.len(),
        transports.len(),
        "{name}: one run per transport"
    );
    assert_eq!(
        builds.len(),
        runs.len(),
        "{name}: each run publishes to a build of its own: {builds:?}"
    );
    runs.into_iter()
        .zip(builds.into_iter().map(|(_, counts)| counts))
        .collect()
}

fn label(run: &Value) -> String {
    run["transport"].as_str().unwrap_or("?").to_string()
}

fn field<'a>(run: &'a Value, pointer: &str) -> &'a Value {
    run.pointer(pointer)
        .unwrap_or_else(|| panic!("{}: summary has no {pointer}", label(run)))
}

fn count(run: &Value, pointer: &str) -> u64 {
    field(run, pointer)
        .as_u64()
        .unwrap_or_else(|| panic!("{}: {pointer} is not a count", label(run)))
}

fn number(run: &Value, pointer: &str) -> f64 {
    field(run, pointer)
        .as_f64()
        .unwrap_or_else(|| panic!("{}: {pointer} is not a number", label(run)))
}

/// Nothing lost, duplicated or missing, whatever the server did.
fn assert_every_line_delivered(run: &Value) {
    let t = label(run);
    let expected = count(run, "/events/expected");
    // 3 topics × 20 lines/s × ~2.8 s, 4 clients per topic.
    assert!(expected > 12 * 30, "{t}: expected {expected}");
    assert_eq!(count(run, "/events/lost"), 0, "{t}");
    assert_eq!(count(run, "/events/duplicated"), 0, "{t}");
    assert_eq!(count(run, "/events/delivered"), expected, "{t}");
}

/// What a clean run against the server must report.
fn assert_measured_exactly(run: &Value, posts: &PostCounts) {
    let t = label(run);
    assert_eq!(
        run["status"], "ok",
        "{t}: problems {} warnings {}",
        run["problems"], run["warnings"]
    );
    assert_every_line_delivered(run);
    let per_event = number(run, "/wire/bytes_down_per_event");
    assert!(per_event > 20.0, "{t}: {per_event} bytes down per event");
    let diff = number(run, "/wire/kernel_diff_down_pct");
    assert!(
        diff.abs() < 2.0,
        "{t}: counted vs kernel bytes down {diff}%"
    );
    assert_eq!(count(run, "/publisher/failed_attempts"), 0, "{t}");
    assert_eq!(count(run, "/publisher/unpublished"), 0, "{t}");
    assert_eq!(count(run, "/publisher/retries"), 0, "{t}");
    number(run, "/publisher/lag_us/p99");
    // No retries: one POST per line published, each one appended.
    let published = count(run, "/publisher/published");
    assert_eq!(posts.unavailable, 0, "{t}");
    assert_eq!(posts.received, published, "{t}: POSTs the server read");
    assert_eq!(posts.appended, published, "{t}: lines the server kept");
}

#[test]
fn foreign_server_without_end_events_is_measured_exactly() {
    let server = ForeignServer::start(Options::default());
    let dir = common::temp_dir("foreign-query");
    let addr = server.addr();
    let poll = format!("http://{addr}/sub/{{topic}}/poll?since={{after}}");
    let push = push_urls(&server, "");
    let mut runs = run(
        &server,
        &dir,
        "foreign-query",
        &["sse", "ws", "poll"],
        &format!("{push}poll_url = \"{poll}\"\npoll_cursor = \"query\"\n"),
    );
    // The server holds a long poll for as long as its URL says.
    runs.extend(run(
        &server,
        &dir,
        "foreign-query-long",
        &["long-poll"],
        &format!("{push}poll_url = \"{poll}&wait=1000\"\npoll_cursor = \"query\"\n"),
    ));
    for (r, posts) in &runs {
        assert_measured_exactly(r, posts);
    }
    let published: u64 = runs
        .iter()
        .map(|(r, _)| count(r, "/publisher/published"))
        .sum();
    assert_eq!(server.posts().received, published, "POSTs over all runs");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn foreign_server_with_etag_cursors_is_measured_exactly() {
    let server = ForeignServer::start(Options::default());
    let dir = common::temp_dir("foreign-etag");
    let addr = server.addr();
    let poll = format!("http://{addr}/sub/{{topic}}/poll");
    // The chunked variant of the event stream: one-byte chunks included.
    let push = push_urls(&server, "?chunked=1");
    let mut runs = run(
        &server,
        &dir,
        "foreign-etag",
        &["sse", "poll"],
        &format!("{push}poll_url = \"{poll}\"\npoll_cursor = \"etag\"\n"),
    );
    runs.extend(run(
        &server,
        &dir,
        "foreign-etag-long",
        &["long-poll"],
        &format!("{push}poll_url = \"{poll}?wait=1000\"\npoll_cursor = \"etag\"\n"),
    ));
    for (r, posts) in &runs {
        assert_measured_exactly(r, posts);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_publishes_are_counted_and_the_run_is_not_ok() {
    let server = ForeignServer::start(Options {
        fail_every: Some(10),
    });
    let dir = common::temp_dir("foreign-failing");
    let runs = run(
        &server,
        &dir,
        "foreign-failing",
        &["sse", "ws"],
        &push_urls(&server, ""),
    );
    for (r, posts) in &runs {
        let t = label(r);
        // ~170 POSTs per run: the server did shed some in this one.
        assert!(posts.unavailable > 0, "{t}: {posts:?}");
        let failed = count(r, "/publisher/failed_attempts");
        assert_eq!(
            failed, posts.unavailable,
            "{t}: failed attempts vs 503s sent"
        );
        let published = count(r, "/publisher/published");
        assert_eq!(posts.appended, published, "{t}: lines the server kept");
        assert_eq!(
            posts.received,
            published + failed,
            "{t}: every POST is a success or a failed attempt"
        );
        assert_eq!(
            published + count(r, "/publisher/unpublished"),
            count(r, "/publisher/scheduled"),
            "{t}: every scheduled line is published or unpublished"
        );
        assert_eq!(r["status"], "degraded", "{t}: problems {}", r["problems"]);
        // Retried lines arrive; lines given up on are not expected.
        assert_every_line_delivered(r);
        let problems = field(r, "/problems")
            .as_array()
            .unwrap_or_else(|| panic!("{t}: problems is not an array"));
        for p in problems {
            assert!(
                p["kind"].is_string() && p["message"].is_string(),
                "{t}: problem {p}"
            );
        }
        assert!(
            problems.iter().any(|p| p["kind"] == "publish-failures"),
            "{t}: {problems:?}"
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
