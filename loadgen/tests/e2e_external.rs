//! External-target mode end to end: a `feed-server` started by the test (not by pushbench),
//! with no generator, fed by pushbench's own open-loop publisher through `publish_url`; clients
//! take seq and scheduled time from the publisher's `pb:SEQ:TS` markers.

mod common;

use pushbench::results::RunStatus;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Kills the server when the test ends, pass or fail.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn external_target_with_publisher_delivers_everything() {
    let server_bin = common::feed_server();
    let mut child = Command::new(&server_bin)
        .args(["--listen", "127.0.0.1:0", "--gen-topics", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start feed-server");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("read the listening line");
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();

    let dir = common::temp_dir("ext");
    let scenario = dir.join("external.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"name = "external"
transports = ["sse", "ws", "poll"]
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
base_url = "http://{addr}"
publish_url = "http://{addr}/{{topic}}/logs"
"#
        ),
    )
    .unwrap();
    let run_dir = common::run_pushbench(&scenario, &dir.join("results"), "external", &["--no-pin"]);
    let summary = common::summary(&run_dir);
    assert_eq!(summary.runs.len(), 3);
    for r in &summary.runs {
        let t = &r.transport;
        assert_eq!(r.status, RunStatus::Ok, "{t}: {:?}", r.problems);
        // 3 topics × 20 lines/s × ~2.8 s, 4 clients each.
        assert!(
            r.events.expected > 12 * 30,
            "{t}: expected {}",
            r.events.expected
        );
        assert_eq!(r.events.lost, 0, "{t}");
        assert_eq!(r.events.duplicated, 0, "{t}");
        assert_eq!(r.events.delivered, r.events.expected, "{t}");
        assert!(r.latency_us.count > 0, "{t}");
        assert!(
            r.warnings.iter().any(|w| w.contains("external target")),
            "{t}: {:?}",
            r.warnings
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
