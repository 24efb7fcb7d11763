//! nchan (nginx's pub/sub module) measured as an external target, as
//! `docs/external-targets.md` describes: SSE, WebSocket and long-poll against a real nginx
//! started by `scripts/nchan.sh` (scripts/test.sh installs nginx and libnginx-mod-nchan; a
//! missing one fails this test, it is not skipped). Zero loss, and nchan's memory and CPU
//! sampled from its master and worker processes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use pushbench::results::RunStatus;

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

#[test]
fn nchan_over_sse_websocket_and_long_poll_loses_nothing() {
    let dir = common::temp_dir("nchan");
    let nchan = Nchan::start(&dir.join("nginx"));
    let base = nchan.var("BASE_URL");
    let host = base.strip_prefix("http://").expect("http base url");
    let master: u32 = nchan.var("NCHAN_MASTER_PID").parse().expect("a pid");
    let scenario = dir.join("nchan.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"name = "nchan"
transports = ["sse", "ws", "long-poll"]
duration = "2s"
warmup = "500ms"
drain = "3s"

[clients]
count = 30
ramp_up = "300ms"

[feed]
topics = 3
lines_per_sec = 20.0
line_bytes = 80

[target]
publish_url = "{base}/pub/{{topic}}"
sse_url = "{base}/sub/{{topic}}"
ws_url = "ws://{host}/sub/{{topic}}"
poll_url = "{base}/lp/{{topic}}"
poll_cursor = "last-modified"
server_pid = {master}
"#
        ),
    )
    .unwrap();
    let run_dir = common::run_pushbench(&scenario, &dir.join("results"), "nchan", &["--no-pin"]);
    let summary = common::summary(&run_dir);
    assert_eq!(summary.runs.len(), 3);
    for r in &summary.runs {
        let t = &r.transport;
        assert_eq!(r.status, RunStatus::Ok, "{t}: {:?}", r.problems);
        let e = &r.events;
        // 3 topics × 20 lines/s × ~2.3 s, 10 clients each.
        assert!(e.expected > 30 * 35, "{t}: expected {}", e.expected);
        assert_eq!(
            (e.lost, e.duplicated, e.out_of_order, e.excused),
            (0, 0, 0, 0),
            "{t}"
        );
        assert_eq!(e.delivered, e.expected, "{t}");
        let p = r.publisher.as_ref().expect("publisher figures");
        assert_eq!((p.failed_attempts, p.unpublished), (0, 0), "{t}: {p:?}");
        assert!(r.latency_us.count > 0, "{t}");
        // nchan's own cost, from /proc: master and worker.
        assert!(r.server.measured, "{t}");
        assert!(r.server.pids.len() >= 2, "{t}: {:?}", r.server.pids);
        assert!(r.server.cpu_us > 0, "{t}: no CPU sampled");
        assert!(r.server.rss_connected_bytes > 0, "{t}");
        let down = r.wire.bytes_down_per_event.expect("bytes per event");
        assert!(down > 80.0, "{t}: {down} B/event below the line's size");
        assert!(r.wire.kernel_diff_down_pct.abs() < 2.0, "{t}: {:?}", r.wire);
    }
    drop(nchan);
    let _ = std::fs::remove_dir_all(&dir);
}
