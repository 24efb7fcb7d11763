//! External-target mode end to end: a `feed-server` started by the test (not by pushbench),
//! with no generator, fed by pushbench's own open-loop publisher through `publish_url`; clients
//! take seq and scheduled time from the publisher's `pb:SEQ:TS` markers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pushbench::results::Summary;

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

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
    let server_bin = target_dir().join("feed-server");
    assert!(
        server_bin.exists(),
        "{} is missing: build it first (cargo build --workspace --bins)",
        server_bin.display()
    );
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

    let dir = std::env::temp_dir().join(format!("pushbench-ext-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
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
    let status = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--no-pin", "--out"])
        .arg(dir.join("results"))
        .status()
        .expect("run pushbench");
    assert!(status.success(), "pushbench run failed: {status}");
    let run_dir = std::fs::read_dir(dir.join("results/external"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary.runs.len(), 3);
    for r in &summary.runs {
        let t = &r.transport;
        assert_eq!(r.status, "ok", "{t}");
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
