//! The raw fan-out baseline (`raw-fanout`) runs under pushbench exactly like `feed-server`'s
//! SSE transport: same orchestration, same client, zero loss.

mod common;

use pushbench::results::RunStatus;

#[test]
fn raw_fanout_baseline_is_measured_like_an_sse_server() {
    let binary = common::target_dir().join("raw-fanout");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build --workspace --bins)",
        binary.display()
    );
    let dir = common::temp_dir("raw");
    let scenario = dir.join("raw.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"name = "raw"
transports = ["sse"]
duration = "2s"
warmup = "500ms"

[clients]
count = 40
ramp_up = "300ms"

[feed]
topics = 4
lines_per_sec = 50.0
line_bytes = {{ min = 40, max = 120 }}

[server]
binary = "{}"
"#,
            binary.display()
        ),
    )
    .unwrap();
    let run_dir = common::run_pushbench(&scenario, &dir.join("results"), "raw", &[]);
    let summary = common::summary(&run_dir);
    let r = &summary.runs[0];
    assert_eq!(r.status, RunStatus::Ok);
    assert!(r.events.expected > 40 * 50, "{}", r.events.expected);
    assert_eq!(r.events.lost, 0);
    assert_eq!(r.events.delivered, r.events.expected);
    assert!(r.latency_us.count > 0);
    assert!(r.wire.kernel_diff_down_pct.abs() <= 2.0);
    let _ = std::fs::remove_dir_all(&dir);
}
