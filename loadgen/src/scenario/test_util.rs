//! What the unit tests of the scenario modules share: the files they start from and helpers.

use super::*;

pub(super) const ORIGIN: &str = "scenarios/x.toml";

/// The smallest valid file; tests append to it or replace lines in it. Lines:
/// 1 transports, 2 duration, 3 [clients], 4 count, 5 [feed], 6 topics, 7 lines_per_sec,
/// 8 line_bytes.
pub(super) const MINIMAL: &str = "transports = [\"sse\"]\n\
                       duration = \"1s\"\n\
                       [clients]\n\
                       count = 10\n\
                       [feed]\n\
                       topics = 2\n\
                       lines_per_sec = 5.0\n\
                       line_bytes = 80\n";

pub(super) const FULL: &str = r#"
name = "full_test-1"
description = "every field"
transports = ["sse", "ws", "poll", "long-poll", "sse-h2", "poll-h2", "long-poll-h2"]
duration = "5s"
warmup = "1s"
drain = "2s"

[clients]
count = 50
ramp_up = "1s 500ms"
topics = "zipf"
zipf_exponent = 1.1
workers = 2

[feed]
topics = 5
lines_per_sec = 10
line_bytes = { min = 40, max = 120 }
history = 20000

[feed.burst]
every = "10s"
lines = 2000
lines_per_sec = 20000.0

[poll]
interval = "250ms"
wait = "5s"
limit = 500

[sse]
keep_alive = "10s"

[http2]
streams_per_connection = 50
tls = true

[churn]
session = "10s"
pause = "2s"

[server]
binary = "target/release/feed-server"
workers = 2
pin = false
max_connections = 1000

[sweep]
field = "clients.count"
values = [10, 100]
"#;

pub(super) fn ok(text: &str) -> Scenario {
    match parse(text, ORIGIN) {
        Ok(sc) => sc,
        Err(e) => panic!("expected a valid scenario, got:\n{e}"),
    }
}

pub(super) fn err(text: &str) -> String {
    match parse(text, ORIGIN) {
        Ok(sc) => panic!("expected an error, got {sc:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that some line of the error is at `line:col` and contains every fragment.
#[track_caller]
pub(super) fn assert_diag(msg: &str, line: usize, col: usize, fragments: &[&str]) {
    let prefix = format!("{ORIGIN}:{line}:{col}: ");
    let found = msg
        .lines()
        .any(|l| l.starts_with(&prefix) && fragments.iter().all(|f| l.contains(f)));
    assert!(found, "no line `{prefix}…{fragments:?}` in:\n{msg}");
}
