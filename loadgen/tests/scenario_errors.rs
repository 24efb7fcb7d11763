//! Scenario files: every shipped file validates, and bad input is an error that names the
//! file, line and column and what was expected — all problems at once.

use std::time::Duration;

use pushbench::scenario::{self, TopicChoice, Transport};

const VALID: &str = r#"
name = "t"
transports = ["sse", "long-poll"]
duration = "10s"

[clients]
count = 100
topics = "zipf"
zipf_exponent = 1.5

[feed]
topics = 4
lines_per_sec = 10.0
line_bytes = 80
"#;

fn err(text: &str) -> String {
    match scenario::parse(text, "x.toml") {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 2, "smoke and reference at least");
}

#[test]
fn a_valid_file_resolves_with_defaults() {
    let sc = scenario::parse(VALID, "x.toml").unwrap();
    assert_eq!(sc.transports, vec![Transport::Sse, Transport::LongPoll]);
    assert_eq!(sc.duration, Duration::from_secs(10));
    assert_eq!(sc.warmup, Duration::ZERO);
    assert_eq!(sc.clients.count, 100);
    assert_eq!(sc.clients.topics, TopicChoice::Zipf(1.5));
    assert_eq!((sc.feed.line_bytes.min, sc.feed.line_bytes.max), (80, 80));
    assert_eq!(sc.poll.interval, Duration::from_secs(1));
    assert_eq!(sc.poll.wait, Duration::from_secs(30));
    assert_eq!(sc.feed.history, 10_000);
    assert!(sc.server.pin);
    assert_eq!(sc.expand_sweep().len(), 1);
}

#[test]
fn unknown_fields_are_named_with_their_position() {
    let e = err(&VALID.replace("count = 100", "count = 100\ncleints = 3"));
    assert!(e.starts_with("x.toml:8:1:"), "{e}");
    assert!(
        e.contains("unknown field `cleints`") && e.contains("`count`"),
        "{e}"
    );
    let e = err(&format!("{VALID}\nspeed = 3\n"));
    assert!(e.contains("unknown field `speed`"), "{e}");
}

#[test]
fn wrong_types_and_bad_durations() {
    let e = err(&VALID.replace("count = 100", "count = \"many\""));
    assert!(e.contains("x.toml:7:"), "{e}");
    let e = err(&VALID.replace("duration = \"10s\"", "duration = \"soon\""));
    assert!(e.contains("x.toml:4:") && e.contains("duration"), "{e}");
}

#[test]
fn all_semantic_problems_are_reported_at_once() {
    let text = VALID
        .replace("count = 100", "count = 0")
        .replace("line_bytes = 80", "line_bytes = { min = 9, max = 3 }")
        .replace(
            "transports = [\"sse\", \"long-poll\"]",
            "transports = [\"sse\", \"sse\", \"pigeon\"]",
        );
    let e = err(&text);
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines.len() >= 3, "{e}");
    assert!(lines.iter().all(|l| l.starts_with("x.toml:")), "{e}");
    assert!(e.contains("clients.count"), "{e}");
    assert!(e.contains("min (9) is greater than max (3)"), "{e}");
    assert!(e.contains("pigeon"), "{e}");
    assert!(
        e.to_lowercase().contains("sse") && e.contains("x.toml:3:"),
        "{e}"
    );
}

#[test]
fn zipf_exponent_needs_zipf_and_targets_need_urls() {
    let e = err(&VALID.replace("topics = \"zipf\"", "topics = \"uniform\""));
    assert!(e.contains("zipf_exponent"), "{e}");
    let e = err(&format!(
        "{VALID}\n[target]\nsse_url = \"http://127.0.0.1:9/{{topic}}/events\"\n"
    ));
    assert!(e.contains("poll_url") && e.contains("long-poll"), "{e}");
}

#[test]
fn sweeps_expand_and_reject_bad_fields() {
    let sc = scenario::parse(
        &format!("{VALID}\n[sweep]\nfield = \"clients.count\"\nvalues = [10, 20]\n"),
        "x.toml",
    )
    .unwrap();
    let runs = sc.expand_sweep();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].0.as_deref(), Some("clients.count=20"));
    assert_eq!(runs[1].1.clients.count, 20);
    let e = err(&format!(
        "{VALID}\n[sweep]\nfield = \"clients.colour\"\nvalues = [1]\n"
    ));
    assert!(e.contains("clients.colour"), "{e}");
    let e = err(&format!(
        "{VALID}\n[sweep]\nfield = \"clients.count\"\nvalues = [\"5s\"]\n"
    ));
    assert!(e.contains("clients.count"), "{e}");
}
