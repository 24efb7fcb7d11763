//! A server that dies mid-run fails the run: SIGKILL of the spawned feed-server while clients
//! stream must give status `failed` with a `server-died` problem, never `ok`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use pushbench::results::{ProblemKind, RunStatus};

/// The pids of `parent`'s children named `name`.
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid: Option<u32> = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok());
        if &stat[open + 1..close] == name && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn a_server_killed_mid_run_fails_the_run() {
    common::feed_server();
    let dir = common::temp_dir("death");
    let scenario = dir.join("death.toml");
    std::fs::write(
        &scenario,
        r#"name = "death"
transports = ["sse"]
duration = "6s"
warmup = "500ms"
drain = "2s"

[clients]
count = 20
ramp_up = "200ms"

[feed]
topics = 2
lines_per_sec = 20.0
line_bytes = 60
"#,
    )
    .unwrap();
    let mut run = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--no-pin", "--out"])
        .arg(dir.join("results"))
        .spawn()
        .expect("start pushbench");
    // Wait until the server runs and clients stream, then kill it without warning.
    let started = Instant::now();
    let server = loop {
        if let Some(pid) = children_named(run.id(), "feed-server").first() {
            break *pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "feed-server never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_secs(3));
    nix_kill(server);
    let status = run.wait().expect("pushbench ends");
    assert!(!status.success(), "a run whose server died must not exit 0");

    let run_dir = std::fs::read_dir(dir.join("results/death"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary = common::summary(&run_dir);
    let r = &summary.runs[0];
    assert_eq!(r.status, RunStatus::Failed, "{:?}", r.problems);
    assert!(
        r.problems.iter().any(|p| p.kind == ProblemKind::ServerDied),
        "{:?}",
        r.problems
    );
    // It was noticed within the second it happened, not at the end of the run.
    assert!(
        r.problems
            .iter()
            .any(|p| p.message.contains("s into the run")),
        "{:?}",
        r.problems
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn nix_kill(pid: u32) {
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
}
