//! Charts and reports render from a fixture run.
//!
//! `tests/fixtures/report_run/summary.json` holds a crafted four-transport run without its
//! histograms; each test copies it into a fresh folder and adds real HdrHistograms (made here
//! from a seeded distribution, encoded with `results::encode_histogram`) and time series, so
//! the repository carries no large base64 blobs.

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use pushbench::report::{self, ReportError};
use pushbench::results::{
    encode_histogram, Environment, Percentiles, ReadSummaryError, SchemaError, Summary,
    TransportResult, SCHEMA_VERSION,
};
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/report_run/summary.json"
);

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report_render")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deterministic pseudo-random numbers in [0, 1) (xorshift64*), so charts are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly log-normal around `median`, with a heavier tail for a realistic spectrum.
    fn latency(&mut self, median: f64) -> u64 {
        let z: f64 = (0..12).map(|_| self.next()).sum::<f64>() - 6.0;
        let tail = if self.next() < 0.01 {
            4.0 + 20.0 * self.next()
        } else {
            1.0
        };
        (median * (0.45 * z).exp() * tail).max(1.0) as u64
    }
}

fn histogram(rng: &mut Rng, median_us: f64, n: usize) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for _ in 0..n {
        h.record(rng.latency(median_us)).unwrap();
    }
    h
}

/// The fixture laid over default values, so fields added to the schema later do not break
/// these tests (the report only reads what it knows).
fn load_fixture() -> Summary {
    fn overlay(base: &mut Value, top: Value) {
        match (base, top) {
            (Value::Object(b), Value::Object(t)) => {
                for (k, v) in t {
                    match b.get_mut(&k) {
                        Some(slot) => overlay(slot, v),
                        None => {
                            b.insert(k, v);
                        }
                    }
                }
            }
            (slot, v) => *slot = v,
        }
    }
    let mut fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let runs = fixture["runs"].take();
    let mut env = serde_json::to_value(Environment::default()).unwrap();
    overlay(&mut env, fixture["environment"].take());
    fixture["environment"] = env;
    fixture["runs"] = Value::Array(
        runs.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut base = serde_json::to_value(TransportResult::default()).unwrap();
                overlay(&mut base, r.clone());
                base
            })
            .collect(),
    );
    serde_json::from_value(fixture).unwrap()
}

/// Fills in histograms and writes the time series of every run, then the summary.
fn complete(mut s: Summary, dir: &Path, seed: u64, slowdown: f64) -> Summary {
    let mut rng = Rng(seed);
    for r in &mut s.runs {
        let median = slowdown
            * match r.transport.as_str() {
                "sse" => 1_900.0,
                "ws" => 1_700.0,
                "poll" => 48_000.0,
                _ => 3_400.0,
            };
        let latency = histogram(&mut rng, median, 20_000);
        let connect = histogram(&mut rng, r.connect_us.p50 as f64, 1_000);
        r.latency_us = Percentiles::of(&latency);
        r.connect_us = Percentiles::of(&connect);
        r.histograms
            .insert("latency_us".into(), encode_histogram(&latency));
        r.histograms
            .insert("connect_us".into(), encode_histogram(&connect));

        let Some(rel) = r.files.get("timeseries") else {
            continue;
        };
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let rss0 = r.server.rss_baseline_bytes as f64;
        let rows: Vec<String> = (1..=70)
            .map(|t| {
                let connected = (t as f64 / 5.0).min(1.0);
                let deliveries = if t > 5 { 10_000 + (rng.next() * 400.0) as u64 } else { 0 };
                format!(
                    "{{\"t_s\":{t}.0,\"deliveries\":{deliveries},\"latency_p50_us\":{},\"latency_p99_us\":{},\
                     \"connections\":{},\"clients_done\":0,\"server_rss_bytes\":{},\"server_cpu_cores\":0.3,\
                     \"loadgen_cpu_cores\":0.4}}",
                    (median * (0.9 + 0.2 * rng.next())) as u64,
                    (median * (3.0 + 2.0 * rng.next())) as u64,
                    (1000.0 * connected) as u64,
                    (rss0 + connected * r.server.rss_per_connection_bytes * 1000.0) as u64,
                )
            })
            .collect();
        std::fs::write(&path, rows.join("\n") + "\n").unwrap();
    }
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&s).unwrap(),
    )
    .unwrap();
    s
}

fn fixture_run(name: &str) -> PathBuf {
    let dir = scratch(name);
    complete(load_fixture(), &dir, 7, 1.0);
    dir
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(
        bytes.len() > 10_000,
        "{} is suspiciously small",
        path.display()
    );
}

/// The text content of an SVG's `<text>` elements (plotters puts it on its own line).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let start = t.find('>')? + 1;
            let end = t.find("</text>")?;
            Some(t[start..end].trim().to_string())
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn charts_and_both_reports_render_from_a_fixture_run() {
    let dir = fixture_run("run");
    let files = report::write_report(&dir).unwrap();

    let names: Vec<&str> = files.charts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "latency_spectrum",
            "wire_bytes",
            "server_cost",
            "timeseries"
        ]
    );
    for chart in &files.charts {
        assert_png(&chart.png);
        let svg = read(&chart.svg);
        assert!(svg.contains("<svg"), "{}", chart.svg.display());
        let texts = svg_texts(&svg);
        for t in ["sse", "ws", "poll", "long-poll"] {
            assert!(
                texts.iter().any(|x| x == t),
                "{} lacks {t}: {texts:?}",
                chart.svg.display()
            );
        }
    }

    let md = read(&files.markdown);
    assert!(
        md.contains("| metric | sse | ws | poll | long-poll | claim | why |"),
        "{md}"
    );
    assert!(md.contains("![Delivery latency by percentile"));
    assert!(md.contains("(charts/latency_spectrum.png)"));
    assert!(md.contains("Intel(R) Xeon(R) CPU @ 2.20GHz (2 cores)"));
    assert!(md.contains("3f2a9c1d0e7b"));
    // The fixture's WebSocket frames are smaller than SSE's: that metric must not hold.
    assert!(md.contains("bytes/event down") && md.contains("✘ not held"));

    let html = read(&files.html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<th>metric</th><th class=\"num\">sse</th>"));
    assert!(html.contains("class=\"notheld\""));
    assert_eq!(html.matches("src=\"data:image/svg+xml;base64,").count(), 4);
    for external in ["src=\"http", "href=\"http", "src='http", "<link", "<script"] {
        assert!(
            !html.contains(external),
            "report.html refers to an outside asset: {external}"
        );
    }
    assert!(!html.contains("src=\"charts/"));
}

#[test]
fn sweep_runs_get_a_sweep_chart() {
    let dir = scratch("sweep");
    let base = load_fixture();
    let mut s = base.clone();
    s.runs.clear();
    for (count, grow) in [(100u32, 1.0), (1_000, 1.3), (10_000, 2.2)] {
        for r in &base.runs {
            let mut r = r.clone();
            let label = format!("clients.count={count}");
            r.files.insert(
                "timeseries".into(),
                format!("{}-clients.count_{count}/timeseries.jsonl", r.transport),
            );
            r.sweep = Some(label);
            r.connections.clients = count;
            r.server.rss_per_connection_bytes *= grow;
            r.server.cpu_us_per_event *= grow;
            s.runs.push(r);
        }
    }
    complete(s, &dir, 11, 1.0);
    let files = report::write_report(&dir).unwrap();
    let sweep = files
        .charts
        .iter()
        .find(|c| c.name == "sweep")
        .expect("a sweep chart");
    assert_png(&sweep.png);
    let texts = svg_texts(&read(&sweep.svg));
    assert!(
        texts.iter().any(|t| t.starts_with("clients.count")),
        "{texts:?}"
    );
    // The swept values label the x axis as the scenario wrote them.
    for n in ["100", "1000", "10000"] {
        assert!(texts.iter().any(|t| t == n), "{texts:?}");
    }
    // The per-run charts show the largest swept value.
    let spectrum = files
        .charts
        .iter()
        .find(|c| c.name == "latency_spectrum")
        .unwrap();
    assert!(
        spectrum.title.ends_with("at clients.count=10000"),
        "{}",
        spectrum.title
    );
    let md = read(&files.markdown);
    for n in ["100", "1000", "10000"] {
        assert!(
            md.contains(&format!("### clients.count={n}: held on")),
            "{md}"
        );
    }
}

#[test]
fn compare_prints_and_charts_differences() {
    let a = fixture_run("compare_a");
    let b = scratch("compare_b");
    let mut sb = load_fixture();
    sb.run_id = "20261130T031500Z".into();
    for r in &mut sb.runs {
        r.wire.bytes_down_per_event = r.wire.bytes_down_per_event.map(|b| b * 0.8);
    }
    complete(sb, &b, 99, 1.5);
    let out = scratch("compare_out");
    let table = report::compare(&a, &b, &out).unwrap();
    assert!(table.contains("ci-logs-1k/20261129T031500Z"));
    assert!(table.contains("ci-logs-1k/20261130T031500Z"));
    let line = table
        .lines()
        .find(|l| l.starts_with("sse") && l.contains("bytes/event down"))
        .expect("a bytes/event down row for sse");
    assert!(line.contains("-20.0%") && line.contains("better"), "{line}");
    assert!(
        table.contains("worse"),
        "latency got 1.5 times slower in B:\n{table}"
    );

    let md = read(&out.join("compare.md"));
    assert!(md.contains("| run | metric | A | B | B vs A |"));
    for name in ["compare_latency_spectrum", "compare_metrics"] {
        assert_png(&out.join("charts").join(format!("{name}.png")));
        assert!(md.contains(&format!("(charts/{name}.png)")));
        let texts = svg_texts(&read(&out.join("charts").join(format!("{name}.svg"))));
        assert!(texts.iter().any(|t| t.starts_with("sse")), "{texts:?}");
    }
}

#[test]
fn failed_and_empty_runs_still_report() {
    let dir = scratch("failed");
    let mut s = load_fixture();
    s.runs[1].add_problem(
        pushbench::results::ProblemKind::ServerDied,
        "server exited with status 101",
    );
    // A run that never delivered: no latency samples, no time series.
    s.runs[3].files.clear();
    let mut s = complete(s, &dir, 3, 1.0);
    s.runs[3].histograms.clear();
    s.runs[3].latency_us = Percentiles::default();
    std::fs::write(dir.join("summary.json"), serde_json::to_string(&s).unwrap()).unwrap();

    let files = report::write_report(&dir).unwrap();
    let md = read(&files.markdown);
    assert!(
        md.contains("ws failed (server exited with status 101): excluded"),
        "{md}"
    );
    assert!(md.contains("long-poll: only 0 latency samples"), "{md}");
    assert!(
        md.contains("| metric | sse | poll | long-poll | claim | why |"),
        "{md}"
    );
    let spectrum = files
        .charts
        .iter()
        .find(|c| c.name == "latency_spectrum")
        .unwrap();
    let texts = svg_texts(&read(&spectrum.svg));
    assert!(
        !texts.iter().any(|t| t == "ws" || t == "long-poll"),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t == "sse"));
}

#[test]
fn a_folder_without_summary_is_a_clear_error() {
    let dir = scratch("empty");
    let err = report::write_report(&dir).unwrap_err();
    assert!(
        matches!(err, ReportError::Summary(ReadSummaryError::Io { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("summary.json"), "{err}");

    std::fs::write(dir.join("summary.json"), "{\"schema\": \"something else\"}").unwrap();
    let err = report::write_report(&dir).unwrap_err();
    assert!(
        matches!(err, ReportError::Summary(ReadSummaryError::Parse { .. })),
        "{err:?}"
    );
    // A summary of a version this build does not read is refused, not drawn.
    let mut future = load_fixture();
    future.schema_version = SCHEMA_VERSION + 1;
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string(&future).unwrap(),
    )
    .unwrap();
    let err = report::write_report(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            ReportError::Summary(ReadSummaryError::Schema {
                source: SchemaError::Unsupported { .. },
                ..
            })
        ),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Faults: `tests/fixtures/faults_run` is a real faults-smoke run (debug build, every fault
// kind, four transports, 40 clients), trimmed to what the report reads: summary.json (with
// its histograms), scenario.toml and the time series. Expected figures are read from its
// summary.json, not copied into the tests.
// ---------------------------------------------------------------------------------------

const FAULTS_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/faults_run");

/// The happy-path fixture's report.md as the report module wrote it before faults existed.
const HAPPY_REPORT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/report_run/report.expected.md"
);

/// A copy of the faults run in a fresh folder, its summary changed by `edit` first; returns
/// the folder and the summary as written.
fn faults_run(name: &str, edit: impl FnOnce(&mut Value)) -> (PathBuf, Value) {
    let dir = scratch(name);
    let src = Path::new(FAULTS_FIXTURE);
    let mut summary: Value = serde_json::from_str(&read(&src.join("summary.json"))).unwrap();
    edit(&mut summary);
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    std::fs::copy(src.join("scenario.toml"), dir.join("scenario.toml")).unwrap();
    for run in summary["runs"].as_array().unwrap() {
        let rel = run["files"]["timeseries"].as_str().unwrap();
        std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(src.join(rel), dir.join(rel)).unwrap();
    }
    (dir, summary)
}

/// The first Markdown table after the line `anchor` (a heading or a paragraph): its header,
/// then its rows, cells trimmed.
fn table_after(md: &str, anchor: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = md.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == anchor || l.starts_with(anchor))
        .unwrap_or_else(|| panic!("no {anchor:?} in\n{md}"));
    let table: Vec<Vec<String>> = lines[start + 1..]
        .iter()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert!(table.len() > 2, "no table after {anchor:?}");
    // The second line is the alignment rule.
    let mut out = vec![table[0].clone()];
    out.extend(table[2..].iter().cloned());
    out
}

/// The row of a table whose first cell is `name`.
fn row<'a>(table: &'a [Vec<String>], name: &str) -> &'a [String] {
    table
        .iter()
        .find(|r| r[0] == name)
        .unwrap_or_else(|| panic!("no row {name:?} in {table:?}"))
}

fn fault_heading(f: &Value) -> String {
    format!(
        "### {}, injected by the {}",
        f["label"].as_str().unwrap(),
        f["injector"].as_str().unwrap()
    )
}

fn us(v: &Value) -> String {
    report::verdict::fmt_us(v.as_u64().unwrap() as f64)
}

#[test]
fn the_faults_section_shows_each_fault_with_a_column_per_transport() {
    let (dir, s) = faults_run("faults", |_| {});
    let files = report::write_report(&dir).unwrap();
    let md = read(&files.markdown);
    let runs = s["runs"].as_array().unwrap();
    let transports: Vec<&str> = runs
        .iter()
        .map(|r| r["transport"].as_str().unwrap())
        .collect();
    assert_eq!(transports, ["sse", "ws", "poll", "long-poll"]);

    for (i, f0) in runs[0]["faults"].as_array().unwrap().iter().enumerate() {
        let table = table_after(&md, &fault_heading(f0));
        assert_eq!(table[0][1..], transports, "{:?}", f0["label"]);
        for (j, run) in runs.iter().enumerate() {
            let f = &run["faults"][i];
            let cell = |name: &str| row(&table, name)[j + 1].clone();
            for (name, key) in [
                ("sessions broken", "sessions_broken"),
                ("reconnects", "reconnects"),
                ("connect errors", "connect_errors"),
                ("caught up", "caught_up"),
                ("lost by restart", "lost_by_restart"),
                ("lost to lag", "lost_to_lag"),
                ("duplicated", "duplicated"),
                ("gaps detected", "gaps_detected"),
            ] {
                assert_eq!(cell(name), f[key].to_string(), "{name} of {}", f["label"]);
            }
            // null: missing, with the reason, never 0.
            match f["connections_hit"].as_u64() {
                Some(n) => assert_eq!(cell("connections hit"), n.to_string()),
                None => assert_eq!(cell("connections hit"), "— (not reported by its injector)"),
            }
            let recovered = f["recovery_us"]["count"].as_u64().unwrap();
            if recovered > 0 {
                assert_eq!(cell("recovery p50"), us(&f["recovery_us"]["p50"]));
                assert_eq!(
                    cell("recovery p99"),
                    format!("{} ({recovered} recovered)", us(&f["recovery_us"]["p99"]))
                );
            } else {
                assert_eq!(f["sessions_broken"], 0);
                assert_eq!(cell("recovery p99"), "— (no session broken)");
            }
            let bystander = cell("bystander p99 vs calm p99");
            assert!(
                bystander.starts_with(&format!(
                    "{} vs {} calm",
                    us(&f["bystander_latency_us"]["p99"]),
                    us(&run["calm_latency_us"]["p99"])
                )),
                "{bystander}"
            );
        }
    }
    // Notes under the table, said once when every transport has them.
    assert!(md.contains("- every run: reset needs the proxy, which is not wired yet"));
    assert!(md.contains("- every run: server killed (SIGKILL)"));

    // Totals: every cause of loss, per transport.
    let totals = table_after(&md, "Over the whole run");
    for (j, run) in runs.iter().enumerate() {
        let r = &totals[j + 1];
        assert_eq!(r[0], transports[j]);
        assert_eq!(r[1], run["connections"]["reconnects"].to_string());
        assert_eq!(r[2], run["events"]["lost"].to_string());
        assert_eq!(r[3], run["events"]["lost_by_restart"].to_string());
        assert_eq!(r[4], run["events"]["lost_to_lag"].to_string());
        assert_eq!(r[5], run["events"]["duplicated"].to_string());
    }
    assert!(
        !md.contains("LOSS UNDER FAULTS"),
        "the fixture lost nothing"
    );

    // The restart's storm: the reconnect rate second by second, and the server's peak CPU.
    let restart = runs[0]["faults"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["kind"] == "restart")
        .unwrap();
    let storm = table_after(
        &md,
        &format!(
            "### Reconnect storm after {}",
            runs[0]["faults"][restart]["label"].as_str().unwrap()
        ),
    );
    for (j, run) in runs.iter().enumerate() {
        let rates: Vec<String> = run["faults"][restart]["reconnects_per_sec"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(storm[j + 1][1], rates.join(", "));
        let cpu = run["faults"][restart]["server_peak_cpu_cores"]
            .as_f64()
            .unwrap();
        assert_eq!(storm[j + 1][4], format!("{cpu:.2} cores"));
    }

    // Keep-alive against idle_cut: the scenario's `[sse] keep_alive = "1s"` costs
    // 8 B × 3600 / 1 s = 28800 B = 28.1 KiB per connection-hour; ws pings every 30 s (default).
    let keep = table_after(&md, "### Keep-alive against idle_cut");
    assert_eq!(row(&keep, "sse")[2], "yes: nothing should be cut");
    assert!(row(&keep, "sse")[3].starts_with("28.1 KiB"), "{keep:?}");
    assert_eq!(row(&keep, "ws")[1], "WebSocket ping every 30s");
    assert_eq!(row(&keep, "ws")[2], "no: a quiet connection is cut");

    // Slow consumers: the fast clients' p99 beside the calm one.
    let slow = runs[0]["faults"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["kind"] == "slow_consumers")
        .unwrap();
    let isolation = table_after(&md, "### Isolation from slow_consumers");
    for (j, run) in runs.iter().enumerate() {
        let f = &run["faults"][slow];
        assert_eq!(isolation[j + 1][1], f["connections_hit"].to_string());
        assert_eq!(isolation[j + 1][2], f["lost_to_lag"].to_string());
        assert_eq!(isolation[j + 1][4], us(&f["bystander_latency_us"]["p99"]));
        assert_eq!(isolation[j + 1][5], us(&run["calm_latency_us"]["p99"]));
    }

    // The verdict's faults table, and the proxy faults named as without effect.
    let verdict = table_after(&md, "### Faults: who recovered fastest, who lost least");
    let drop = runs[0]["faults"][0]["label"].as_str().unwrap();
    assert_eq!(row(&verdict, &format!("recovery p99: {drop}"))[5], "ws");
    assert_eq!(
        row(&verdict, &format!("recovery p99: {drop}"))[3],
        "— (no session broken)"
    );
    assert!(md.contains("(reset needs the proxy, which is not wired yet)"));

    // The chart, after the others, with every transport.
    let names: Vec<&str> = files.charts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "latency_spectrum",
            "wire_bytes",
            "server_cost",
            "timeseries",
            "faults"
        ]
    );
    let chart = files.charts.last().unwrap();
    assert_png(&chart.png);
    let texts = svg_texts(&read(&chart.svg));
    for t in transports.iter().copied().chain([
        "Time to recover, p50",
        "Time to recover, p99",
        "drop at 500ms",
        "restart at 9s",
        "seconds since the restart",
    ]) {
        assert!(
            texts.iter().any(|x| x == t),
            "faults.svg lacks {t}: {texts:?}"
        );
    }
    assert!(md.contains("(charts/faults.png)"));
    let html = read(&files.html);
    assert_eq!(html.matches("src=\"data:image/svg+xml;base64,").count(), 5);
    assert!(html.contains("<h2>Faults</h2>"), "html has the section");
}

#[test]
fn missing_fault_figures_render_as_missing_with_their_reason() {
    let (dir, _) = faults_run("faults_missing", |s| {
        let sse_drop = &mut s["runs"][0]["faults"][0];
        // Sessions broke but none came back; the server was not sampled.
        sse_drop["recovery_us"]["count"] = 0.into();
        sse_drop["server_peak_cpu_cores"] = Value::Null;
        // No calm before the first fault for ws; duplicates after its restart.
        s["runs"][1]["calm_latency_us"] = Value::Null;
        s["runs"][1]["faults"][4]["duplicated"] = 3.into();
        s["runs"][1]["events"]["duplicated"] = 3.into();
    });
    let md = read(&report::write_report(&dir).unwrap().markdown);
    let runs_drop = table_after(&md, "### drop at 500ms, 50%, injected by the server");
    assert_eq!(
        row(&runs_drop, "recovery p99")[1],
        "— (none of 40 broken sessions recovered)"
    );
    assert_eq!(
        row(&runs_drop, "server peak CPU")[1],
        "— (server not sampled)"
    );
    assert!(
        row(&runs_drop, "bystander p99 vs calm p99")[2]
            .ends_with("vs — (no calm latency before the first fault)"),
        "{runs_drop:?}"
    );
    let totals = table_after(&md, "Over the whole run");
    assert_eq!(row(&totals, "ws")[8], "— (no line before the first fault)");
    // Loss and duplicates are said loudly, first in the section and in the caveats.
    assert!(md.contains("**LOSS UNDER FAULTS:"), "{md}");
    assert!(md.contains("ws: 0 lines lost, 3 duplicated"));
    assert!(md.contains("3 lines DUPLICATED after restart(down 500ms) at 9s, 100%"));
    assert!(md.contains("only 0 of 40 broken sessions received a line again"));
    let restart = table_after(
        &md,
        "### restart(down 500ms) at 9s, 100%, injected by the orchestrator",
    );
    assert_eq!(row(&restart, "duplicated")[2], "3 DUPLICATED");
    // The verdict: sse has no recovery figure for the drop, and ws duplicated so it cannot
    // have lost least.
    let verdict = table_after(&md, "### Faults: who recovered fastest, who lost least");
    let drop = row(&verdict, "recovery p99: drop at 500ms, 50%");
    assert_eq!(drop[1], "— (none of 40 broken sessions recovered)");
    assert_eq!(drop[5], "ws");
    let loss = row(&verdict, "lines lost (lost + by restart + to lag)");
    assert!(
        loss[2].ends_with("3 DUPLICATED") && loss[2].contains("#4"),
        "{loss:?}"
    );
    assert_eq!(loss[5], "sse, long-poll (tie)");
}

#[test]
fn a_happy_path_report_is_byte_for_byte_what_it_was() {
    let dir = fixture_run("happy");
    let files = report::write_report(&dir).unwrap();
    // The happy-path fixture run (same seed as `fixture_run`) as the report module wrote it
    // before faults were reported: nothing of faults may leak into a run without them.
    assert_eq!(read(&files.markdown), read(Path::new(HAPPY_REPORT)));
    assert!(files.charts.iter().all(|c| c.name != "faults"));
    assert!(!dir.join("charts/faults.png").exists());
}
