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

/// Runs `scenario_text` (saved as `NAME.toml` in a fresh temp folder) against the built
/// feed-server and returns its summary; the folder is removed afterwards.
pub fn run_scenario_text(name: &str, scenario_text: &str) -> Summary {
    let server = feed_server();
    let dir = temp_dir(name);
    let scenario = dir.join(format!("{name}.toml"));
    std::fs::write(&scenario, scenario_text).unwrap();
    let server_arg = server.to_string_lossy();
    let run_dir = run_pushbench(
        &scenario,
        &dir.join("results"),
        name,
        &["--server-binary", &server_arg],
    );
    let result = summary(&run_dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The run's summary.json as plain JSON, for fields [`Summary`] may not have (yet).
pub fn summary_json(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(run_dir.join("summary.json")).expect("summary.json"),
    )
    .expect("summary.json parses")
}

/// A `feed-server` the test started itself (an external target, not pushbench's own), killed
/// when dropped, pass or fail.
pub struct ExternalFeedServer {
    child: std::process::Child,
    /// `HOST:PORT` it listens on.
    pub addr: String,
}

impl ExternalFeedServer {
    /// `feed-server --listen 127.0.0.1:0 ARGS…`, once it printed `listening on http://ADDR`.
    pub fn start(args: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(feed_server())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start feed-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read the listening line");
        let addr = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        ExternalFeedServer { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ExternalFeedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shipped scenario file (`scenarios/NAME`) made fit for a test: every `from` in it
/// replaced by `to` (the fixed port the file names → the test's own), then each `(path, value)`
/// override set (`None`: the key removed), `path` a dotted key such as `clients.count`. The file's other settings (URLs,
/// cursors, transports) are tested as shipped.
pub fn shipped_scenario(
    name: &str,
    replace: &[(&str, &str)],
    overrides: &[(&str, Option<toml::Value>)],
) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (from, to) in replace {
        assert!(text.contains(from), "{name} does not mention {from}");
        text = text.replace(from, to);
    }
    let mut doc: toml::Table = toml::from_str(&text).expect("shipped scenario parses");
    for (key, value) in overrides {
        let mut table = &mut doc;
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().expect("a key");
        for part in parts {
            table = table
                .entry(part)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap_or_else(|| panic!("{key}: {part} is not a table"));
        }
        match value {
            Some(value) => table.insert(last.to_string(), value.clone()),
            None => table.remove(last),
        };
    }
    toml::to_string(&doc).expect("scenario serialises")
}

/// The files of `tests/corpus/NAME` ending in `.EXT`, sorted; at least five, since an empty
/// corpus would replay vacuously.
pub fn corpus_files(name: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "only {} files in {}",
        files.len(),
        dir.display()
    );
    files
}
