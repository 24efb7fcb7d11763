//! Churn end to end: viewers leave and come back every fraction of a second, resuming from the
//! last seq they received (SSE Last-Event-ID, WebSocket and poll `?after=`). Every transport
//! must still deliver every line exactly once.

use std::path::{Path, PathBuf};
use std::process::Command;

use pushbench::results::Summary;

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

#[test]
fn churning_clients_resume_without_loss_or_duplicates() {
    let server = target_dir().join("feed-server");
    assert!(
        server.exists(),
        "{} is missing: build it first",
        server.display()
    );
    let dir = std::env::temp_dir().join(format!("pushbench-churn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
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
    let status = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--out"])
        .arg(dir.join("results"))
        .arg("--server-binary")
        .arg(&server)
        .status()
        .expect("run pushbench");
    assert!(status.success(), "pushbench run failed: {status}");
    let run_dir = std::fs::read_dir(dir.join("results/churn"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: Summary =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary.runs.len(), 4);
    for r in &summary.runs {
        let t = &r.transport;
        assert_eq!(r.status, "ok", "{t}");
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
