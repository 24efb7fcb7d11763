//! What the end-to-end tests share: finding the built binaries, running `pushbench run` and
//! reading back the summary it wrote.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

use pushbench::results::Summary;

/// `target/debug` (or `release`), where cargo put `pushbench` and `feed-server`.
pub fn target_dir() -> PathBuf {
    // .../target/debug/deps/TEST-HASH → .../target/debug
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The `feed-server` binary; fails (does not skip) when it was not built.
pub fn feed_server() -> PathBuf {
    let server = target_dir().join("feed-server");
    assert!(
        server.exists(),
        "{} is missing: build it first (cargo build --workspace --bins)",
        server.display()
    );
    server
}

/// A fresh, empty temporary folder for one test.
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pushbench-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs `pushbench run SCENARIO --quiet --out OUT ARGS…`, asserts it succeeded and returns
/// the run folder `OUT/NAME/RUN_ID`.
pub fn run_pushbench(scenario: &Path, out: &Path, name: &str, args: &[&str]) -> PathBuf {
    let status = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .arg("run")
        .arg(scenario)
        .arg("--quiet")
        .arg("--out")
        .arg(out)
        .args(args)
        .status()
        .expect("run pushbench");
    assert!(status.success(), "pushbench run failed: {status}");
    std::fs::read_dir(out.join(name))
        .expect("results/NAME exists")
        .next()
        .expect("one run folder")
        .expect("readable")
        .path()
}

/// The run's summary.json.
pub fn summary(run_dir: &Path) -> Summary {
    serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("summary.json")).expect("summary.json"),
    )
    .expect("summary.json parses")
}

/// The run's summary.json as plain JSON, for fields [`Summary`] may not have (yet).
pub fn summary_json(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("summary.json")).expect("summary.json"),
    )
    .expect("summary.json parses")
}
