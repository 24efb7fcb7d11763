//! The worked example of `docs/external-targets.md`, run: nchan (nginx's pub/sub module)
//! started by `scripts/nchan.sh` and measured with the shipped `scenarios/external-nchan.toml`
//! over SSE, WebSocket and long-poll, then feed-server with `scenarios/external-feed-server.toml`,
//! then `pushbench compare` of the two. The scenarios are shrunk (fewer clients, seconds not
//! tens of seconds) and pointed at the test's ports and pids; their URLs and cursors are
//! tested as shipped. scripts/test.sh installs nginx and libnginx-mod-nchan: a missing one
//! fails this test, it is not skipped. Zero loss, and each server's memory and CPU sampled.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use pushbench::results::{RunStatus, Summary};

fn nchan_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/nchan.sh")
}

/// nginx with nchan in a scratch folder, stopped when dropped.
struct Nchan {
    dir: PathBuf,
    env: String,
}

impl Nchan {
    fn start(dir: &Path) -> Self {
        let out = Command::new("bash")
            .arg(nchan_script())
            .arg("start")
            .arg(dir)
            .output()
            .expect("run scripts/nchan.sh");
        assert!(
            out.status.success(),
            "scripts/nchan.sh start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(dir.join("nchan.env")).expect("nchan.env");
        Nchan {
            dir: dir.to_path_buf(),
            env,
        }
    }

    fn var(&self, name: &str) -> String {
        self.env
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} missing from nchan.env:\n{}", self.env))
            .trim_matches('"')
            .to_string()
    }
}

impl Drop for Nchan {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(nchan_script())
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

/// The shipped scenario's workload, shrunk to a few seconds and 30 clients, its server
/// sampled by pid (not by process name: a developer's other nginx must not count).
fn shrunk(name: &str, from: &str, to: &str, server_pid: u32) -> String {
    use toml::Value;
    let s = |v: &str| Some(Value::String(v.to_string()));
    common::shipped_scenario(
        name,
        &[(from, to)],
        &[
            ("duration", s("2s")),
            ("warmup", s("500ms")),
            ("drain", s("3s")),
            ("clients.count", Some(Value::Integer(30))),
            ("clients.ramp_up", s("300ms")),
            ("feed.topics", Some(Value::Integer(3))),
            ("feed.lines_per_sec", Some(Value::Float(20.0))),
            ("target.server_process", None),
            ("target.server_pid", Some(Value::Integer(server_pid.into()))),
        ],
    )
}

/// What both servers must show: every line delivered once, in order, nothing failed to
/// publish, the server's own cost measured, wire bytes matching the kernel's count.
fn check_loses_nothing(server: &str, summary: &Summary, min_pids: usize) {
    assert_eq!(summary.runs.len(), 3, "{server}");
    for r in &summary.runs {
        let t = format!("{server} {}", r.transport);
        assert_eq!(r.status, RunStatus::Ok, "{t}: {:?}", r.problems);
        let e = &r.events;
        // 3 topics × 20 lines/s × ~2 s, 10 clients each.
        assert!(e.expected > 30 * 35, "{t}: expected {}", e.expected);
        assert_eq!(
            (e.lost, e.duplicated, e.out_of_order, e.excused),
            (0, 0, 0, 0),
            "{t}"
        );
        assert_eq!(e.delivered, e.expected, "{t}");
        // Every viewer connected at once: nchan creates a channel on subscribe, feed-server
        // had every step's first line before its viewers came (publish_first).
        let c = &r.connections;
        assert_eq!((c.connects_ok, c.connect_errors), (30, 0), "{t}: {c:?}");
        let p = r.publisher.as_ref().expect("publisher figures");
        assert_eq!((p.failed_attempts, p.unpublished), (0, 0), "{t}: {p:?}");
        assert!(p.lag_us.count > 0, "{t}: publisher lag not recorded");
        assert!(r.latency_us.count > 0, "{t}");
        assert!(r.server.measured, "{t}");
        assert!(r.server.pids.len() >= min_pids, "{t}: {:?}", r.server.pids);
        assert!(r.server.cpu_us > 0, "{t}: no CPU sampled");
        assert!(r.server.rss_connected_bytes > 0, "{t}");
        let down = r.wire.bytes_down_per_event.expect("bytes per event");
        assert!(down > 120.0, "{t}: {down} B/event below the line's size");
        assert!(r.wire.kernel_diff_down_pct.abs() < 2.0, "{t}: {:?}", r.wire);
    }
}

#[test]
fn worked_example_nchan_beside_feed_server() {
    let dir = common::temp_dir("nchan");
    let nchan = Nchan::start(&dir.join("nginx"));
    let base = nchan.var("BASE_URL");
    let host = base.strip_prefix("http://").expect("http base url");
    let master: u32 = nchan.var("NCHAN_MASTER_PID").parse().expect("a pid");
    let scenario = dir.join("external-nchan.toml");
    let text = shrunk("external-nchan.toml", "127.0.0.1:9180", host, master);
    std::fs::write(&scenario, text).unwrap();
    let results = dir.join("results");
    let nchan_run = common::run_pushbench(&scenario, &results, "external-nchan", &["--no-pin"]);
    // nginx's master and its worker.
    check_loses_nothing("nchan", &common::summary(&nchan_run), 2);
    drop(nchan);

    let server = common::ExternalFeedServer::start(&["--gen-topics", "0", "--workers", "1"]);
    let scenario = dir.join("external-feed-server.toml");
    let text = shrunk(
        "external-feed-server.toml",
        "127.0.0.1:9190",
        &server.addr,
        server.pid(),
    );
    std::fs::write(&scenario, text).unwrap();
    let feed_run =
        common::run_pushbench(&scenario, &results, "external-feed-server", &["--no-pin"]);
    check_loses_nothing("feed-server", &common::summary(&feed_run), 1);
    drop(server);

    // One report of the two, as scripts/external-compare.sh makes it.
    let compare_dir = dir.join("compare");
    let out = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .arg("compare")
        .arg(&feed_run)
        .arg(&nchan_run)
        .arg("--out")
        .arg(&compare_dir)
        .output()
        .expect("run pushbench compare");
    assert!(
        out.status.success(),
        "pushbench compare failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(compare_dir.join("compare.md")).expect("compare.md");
    for needle in [
        "external-feed-server",
        "external-nchan",
        "sse",
        "ws",
        "long-poll",
    ] {
        assert!(
            report.contains(needle),
            "compare.md lacks {needle}:\n{report}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
