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

#[test]
fn an_unreachable_target_fails_at_once_with_the_reason() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = common::temp_dir("ext-unreachable");
    let scenario = dir.join("unreachable.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"name = "unreachable"
transports = ["sse"]
duration = "2s"

[clients]
count = 2

[feed]
topics = 1
lines_per_sec = 10.0
line_bytes = 60

[target]
base_url = "http://127.0.0.1:{port}"
publish_url = "http://127.0.0.1:{port}/{{topic}}/logs"
"#
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--no-pin", "--out"])
        .arg(dir.join("results"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run pushbench");
    assert!(!status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    let run_dir = std::fs::read_dir(dir.join("results/unreachable"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let r = &common::summary(&run_dir).runs[0];
    assert_eq!(r.status, RunStatus::Failed);
    assert!(
        r.problems
            .iter()
            .any(|p| p.message.contains("not reachable")),
        "{:?}",
        r.problems
    );
    let _ = std::fs::remove_dir_all(&dir);
}
