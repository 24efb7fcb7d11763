//! Every scenario shipped in `scenarios/` must load and validate, sweeps included, so that a
//! schema change cannot silently break one.

use std::path::PathBuf;

use pushbench::scenario;

/// The `.toml` files of a folder of the repository, sorted.
fn tomls(folder: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn shipped_scenarios_validate() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut paths = tomls("../scenarios");
    // The benchmark scripts' own scenarios too.
    let bench = tomls("../scripts/bench");
    assert!(
        bench.iter().any(|p| p.ends_with("wrk-poll-c100.toml")),
        "no scripts/bench/wrk-poll-c100.toml"
    );
    paths.extend(bench);
    // smoke.toml at least: an empty list would make this test pass vacuously.
    assert!(
        paths.iter().any(|p| p.ends_with("smoke.toml")),
        "no smoke.toml in {}",
        dir.display()
    );
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| match scenario::load(p) {
            Ok(sc) => {
                // The name (default: the file stem) names the results folder: keep them aligned.
                let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
                (Some(sc.name.as_str()) != stem.as_deref()).then(|| {
                    format!(
                        "{}: name {:?} differs from the file name",
                        p.display(),
                        sc.name
                    )
                })
            }
            Err(e) => Some(e.to_string()),
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn smoke_is_short_and_covers_every_http1_transport() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml");
    let sc = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    // The HTTP/2 transports have their own end-to-end test (tests/e2e_h2.rs).
    let http1: Vec<_> = scenario::Transport::ALL
        .into_iter()
        .filter(|t| !t.http2())
        .collect();
    assert_eq!(sc.transports, http1);
    assert_eq!(sc.expand_sweep().len(), 1);
    assert!(sc.duration.as_secs() <= 5);
}
