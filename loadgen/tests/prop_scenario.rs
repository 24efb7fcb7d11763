//! Property tests of the scenario loader (`pushbench::scenario::{parse, load}`), issue 13.
//!
//! A scenario file is the one input a person writes by hand, so whatever they write must come
//! back as a message they can act on, never as a panic. The properties, for any text:
//!
//! - `parse` and `load` never panic; a scenario that loads also expands its sweep;
//! - every error is one line per problem, each `ORIGIN:LINE:COL: message` with the origin as
//!   given, a line and column inside the text (1-based, columns in characters) and a
//!   non-empty message without line breaks (a raw newline from a value would start a line
//!   that names no position);
//! - a problem with no place of its own in the file (a missing key, the default name from the
//!   file stem, a section that a sweep adds) sits at 1:1 and names the key in backticks;
//! - `load` of a file agrees with `parse` of its text, and a file that is not UTF-8 is a read
//!   error naming the path.
//!
//! The texts come from three sources: arbitrary strings; TOML-ish texts built from the schema's
//! own sections and keys with values of the wrong type, out of range, huge, negative, NaN,
//! infinite, empty or unicode; and mutations (deleted, duplicated or replaced bytes and
//! lines, swapped values) of every committed scenario (`scenarios/*.toml`,
//! `scripts/bench/*.toml`). `tests/corpus/scenario/*.toml` replays inputs that once failed or
//! pin an edge case, through `load`.
//!
//! CI runs 256 cases per property. To search harder:
//! `PROPTEST_CASES=100000 cargo test -p pushbench --test prop_scenario`. A failure is shrunk
//! and its seed saved under `loadgen/tests/`; commit that file, and add the shrunk text to the
//! corpus.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::{select, Index};
use pushbench::scenario::{self, ScenarioError};

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config
}

const ORIGINS: &[&str] = &[
    "scenarios/x.toml",
    // A stem that is not a valid name: the default-name check must still place its problem.
    "scenarios/My Run.toml",
    "dir with spaces/é-ü.toml",
    "",
];

/// Checks everything the module docs promise about the result of parsing `text`.
fn check_result(
    text: &str,
    origin: &str,
    result: Result<scenario::Scenario, ScenarioError>,
) -> Result<(), TestCaseError> {
    let diagnostics = match result {
        Ok(sc) => {
            // Runs use the expanded variants; expanding must not fail either.
            prop_assert!(!sc.expand_sweep().is_empty());
            return Ok(());
        }
        Err(ScenarioError::Read { path, .. }) => {
            return Err(TestCaseError::fail(format!(
                "a read error ({path}) for text already read"
            )));
        }
        Err(e @ ScenarioError::Invalid { .. }) => {
            let rendered = e.to_string();
            let ScenarioError::Invalid { diagnostics } = e else {
                unreachable!()
            };
            prop_assert!(!diagnostics.is_empty(), "an error with no problem in it");
            let lines: Vec<&str> = rendered.split('\n').collect();
            prop_assert_eq!(
                lines.len(),
                diagnostics.len(),
                "one line per problem:\n{}",
                rendered
            );
            for (line, d) in lines.iter().zip(&diagnostics) {
                let head = format!("{origin}:{}:{}: ", d.line, d.column);
                prop_assert!(line.starts_with(&head), "{:?} lacks {:?}", line, head);
            }
            diagnostics
        }
    };
    let text_lines: Vec<&str> = text.split('\n').collect();
    for d in &diagnostics {
        prop_assert_eq!(&d.origin, origin);
        prop_assert!(
            (1..=text_lines.len()).contains(&d.line),
            "line {} outside the text's {} lines: {}",
            d.line,
            text_lines.len(),
            d
        );
        let chars = text_lines[d.line - 1].chars().count();
        prop_assert!(
            (1..=chars + 1).contains(&d.column),
            "column {} outside line {} ({} characters): {}",
            d.column,
            d.line,
            chars,
            d
        );
        prop_assert!(!d.message.trim().is_empty(), "empty message: {}", d);
        prop_assert!(
            !d.message.contains(['\n', '\r']),
            "a line break in the message: {:?}",
            d.message
        );
        if d.line == 1 && d.column == 1 && !starts_with_token(text) {
            // Nothing in the file is at 1:1, so this problem has no place of its own: it must
            // say which key it is about.
            prop_assert!(d.message.contains('`'), "names no key: {}", d);
        }
    }
    Ok(())
}

/// Whether the text has something at line 1, column 1 that a problem could point at.
fn starts_with_token(text: &str) -> bool {
    text.chars()
        .next()
        .is_some_and(|c| !c.is_whitespace() && c != '#')
}

// ---- generated texts ----

const SECTIONS: &[&str] = &[
    "",
    "clients",
    "feed",
    "feed.burst",
    "poll",
    "sse",
    "churn",
    "server",
    "target",
    "sweep",
    "feed.line_bytes",
    "nope",
    "clients.count",
];

const KEYS: &[&str] = &[
    "name",
    "description",
    "transports",
    "duration",
    "warmup",
    "drain",
    "repeat",
    "count",
    "ramp_up",
    "topics",
    "zipf_exponent",
    "workers",
    "lines_per_sec",
    "line_bytes",
    "history",
    "every",
    "lines",
    "interval",
    "wait",
    "limit",
    "keep_alive",
    "session",
    "pause",
    "binary",
    "pin",
    "max_connections",
    "base_url",
    "sse_url",
    "ws_url",
    "poll_url",
    "publish_url",
    "poll_cursor",
    "server_pid",
    "server_process",
    "insecure",
    "publish_first",
    "field",
    "values",
    "kind",
    "at",
    "fraction",
    "after",
    "delay",
    "jitter",
    "bytes_per_sec",
    "down",
    "min",
    "max",
    "é",
    "\"quoted key\"",
];

/// Values of every type and edge a field may be given by mistake.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "10",
    "200001",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "1.5",
    "-0.0",
    "1e308",
    "1e-320",
    "nan",
    "+inf",
    "-inf",
    "true",
    "false",
    "\"\"",
    "\" \"",
    "\"1s\"",
    "\"0s\"",
    "\"-1s\"",
    "\"1ns\"",
    "\"500ms\"",
    "\"7days\"",
    "\"8days\"",
    "\"18446744073709551615s\"",
    "\"99999999999999999999999s\"",
    "\"1s 1ns\"",
    "\"2m\"",
    "\"zipf\"",
    "\"uniform\"",
    "\"sse\"",
    "\"long-poll\"",
    "\"clients.count\"",
    "\"feed.burst.every\"",
    "\"churn.pause\"",
    "\"drop\"",
    "\"restart\"",
    "\"latency\"",
    "\"bandwidth\"",
    "\"idle_cut\"",
    "\"slow_consumers\"",
    "\"http://127.0.0.1:1/{topic}\"",
    "\"ws://[::1]:80/{topic}/ws\"",
    "\"{topic}{after}{nope}\"",
    "\"not a url\"",
    "\"feed-server\"",
    "\"last-modified\"",
    "\"a\\nb\"",
    "\"tab\\there\"",
    "\"\\u0000\"",
    "\"é😀\u{202E}\"",
    "'literal'",
    "[]",
    "[1, 2, 2]",
    "[\"1s\", \"1s\"]",
    "[\"a\\nb\", \"a\\nb\"]",
    "[\"sse\", \"ws\", \"poll\", \"long-poll\"]",
    "[\"sse\", \"sse\"]",
    "[1, \"1s\", true]",
    "[[]]",
    "[\"\"]",
    "[nan, inf]",
    "{}",
    "{ min = 5, max = 1 }",
    "{ min = -1, max = 9223372036854775807 }",
    "{ min = 1 }",
    "{ min = 1, max = 2, mx = 3 }",
    "{ min = \"1\", max = 2 }",
    "1979-05-27T07:32:00Z",
];

/// One line of a TOML-ish text.
fn toml_line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (select(KEYS), select(VALUES)).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => select(SECTIONS).prop_map(|s| format!("[{s}]")),
        1 => Just("[[faults]]".to_owned()),
        1 => Just("[[clients]]".to_owned()),
        1 => (select(SECTIONS), select(KEYS), select(VALUES))
            .prop_map(|(s, k, v)| format!("{s}.{k} = {v}")),
        1 => "[ -~é\t]{0,20}",
        1 => Just(String::new()),
    ]
}

fn toml_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(toml_line(), 0..24),
        select(&["\n", "\r\n"][..]),
    )
        .prop_map(|(lines, end)| lines.join(end))
}

/// The committed scenarios, read once.
fn shipped() -> &'static [(String, String)] {
    static SHIPPED: OnceLock<Vec<(String, String)>> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["scenarios", "scripts/bench"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "toml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    files.push((
                        format!("{dir}/{}", path.file_name().unwrap().to_string_lossy()),
                        text,
                    ));
                }
            }
        }
        files.sort();
        assert!(files.len() >= 10, "found only {} scenarios", files.len());
        files
    })
}

/// An edit of a text; indices pick positions, so they shrink with the text.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteBytes(Index, usize),
    DuplicateLine(Index),
    DeleteLine(Index),
    ReplaceChar(Index, char),
    InsertLine(Index, String),
    /// Replaces the value of a `key = value` line.
    SwapValue(Index, &'static str),
    /// Replaces one line with an arbitrary one.
    ReplaceLine(Index, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 1usize..8).prop_map(|(i, n)| Mutation::DeleteBytes(i, n)),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => (any::<Index>(), any::<char>()).prop_map(|(i, c)| Mutation::ReplaceChar(i, c)),
        1 => (any::<Index>(), toml_line()).prop_map(|(i, l)| Mutation::InsertLine(i, l)),
        4 => (any::<Index>(), select(VALUES)).prop_map(|(i, v)| Mutation::SwapValue(i, v)),
        1 => (any::<Index>(), toml_line()).prop_map(|(i, l)| Mutation::ReplaceLine(i, l)),
    ]
}

/// The largest char boundary at or below `at`.
fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, m: &Mutation) {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    match m {
        Mutation::DeleteBytes(i, n) => {
            let start = floor_boundary(text, i.index(text.len() + 1));
            let end = floor_boundary(text, start + n);
            text.replace_range(start..end, "");
            return;
        }
        Mutation::ReplaceChar(i, c) => {
            let start = floor_boundary(text, i.index(text.len() + 1));
            let end = text[start..]
                .chars()
                .next()
                .map_or(start, |ch| start + ch.len_utf8());
            text.replace_range(start..end, c.encode_utf8(&mut [0; 4]));
            return;
        }
        Mutation::DuplicateLine(i) => {
            let at = i.index(lines.len());
            let line = lines[at].clone();
            lines.insert(at, line);
        }
        Mutation::DeleteLine(i) => {
            lines.remove(i.index(lines.len()));
        }
        Mutation::InsertLine(i, line) => lines.insert(i.index(lines.len() + 1), line.clone()),
        Mutation::ReplaceLine(i, line) => {
            let at = i.index(lines.len());
            lines[at].clone_from(line);
        }
        Mutation::SwapValue(i, value) => {
            let assignments: Vec<usize> = (0..lines.len())
                .filter(|&n| lines[n].contains(" = ") && !lines[n].trim_start().starts_with('#'))
                .collect();
            if let Some(&n) = assignments.get(i.index(assignments.len().max(1))) {
                let key = lines[n].split(" = ").next().unwrap_or("").to_owned();
                lines[n] = format!("{key} = {value}");
            }
        }
    }
    *text = lines.join("\n");
}

fn mutated_scenario() -> impl Strategy<Value = (String, String)> {
    (any::<Index>(), prop::collection::vec(mutation(), 1..6)).prop_map(|(file, mutations)| {
        let (name, text) = &shipped()[file.index(shipped().len())];
        let mut text = text.clone();
        for m in &mutations {
            apply(&mut text, m);
        }
        (name.clone(), text)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_panics_and_errors_have_positions(
        text in any::<String>(),
        origin in select(ORIGINS),
    ) {
        check_result(&text, origin, scenario::parse(&text, origin))?;
    }

    #[test]
    fn toml_ish_text_never_panics_and_errors_have_positions(
        text in toml_text(),
        origin in select(ORIGINS),
    ) {
        check_result(&text, origin, scenario::parse(&text, origin))?;
    }

    #[test]
    fn mutated_shipped_scenarios_never_panic_and_errors_have_positions(
        (name, text) in mutated_scenario(),
    ) {
        check_result(&text, &name, scenario::parse(&text, &name))?;
    }

    /// Files: the same verdict as `parse`, or a read error naming the path when not UTF-8.
    #[test]
    fn load_agrees_with_parse(
        (_, text) in mutated_scenario(),
        garbage in prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 0..4)),
    ) {
        let mut bytes = text.clone().into_bytes();
        if let Some(garbage) = &garbage {
            bytes.extend_from_slice(garbage);
        }
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("prop_scenario_load.toml");
        std::fs::write(&path, &bytes).unwrap();
        let origin = path.display().to_string();
        let loaded = scenario::load(&path);
        match std::str::from_utf8(&bytes) {
            Ok(text) => {
                let parsed = scenario::parse(text, &origin);
                prop_assert_eq!(
                    loaded.as_ref().map(|_| ()).map_err(ToString::to_string),
                    parsed.as_ref().map(|_| ()).map_err(ToString::to_string)
                );
                check_result(text, &origin, loaded)?;
            }
            Err(_) => {
                let err = loaded.err().map(|e| e.to_string()).unwrap_or_default();
                prop_assert!(err.starts_with(&format!("{origin}: cannot read")), "{}", err);
            }
        }
    }
}

/// Replays `tests/corpus/scenario/*.toml` through `load`: none may panic, and each error must
/// be well placed. A file whose name starts with `ok-` must load.
#[test]
fn corpus_loads_or_fails_with_positions() {
    let files = common::corpus_files("scenario", "toml");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let origin = path.display().to_string();
        let result = scenario::load(&path);
        let must_load = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ok-"));
        if must_load {
            if let Err(e) = &result {
                panic!("{e}");
            }
        } else if result.is_ok() {
            panic!("{origin} loaded; name it ok-*.toml if it should");
        }
        if let Err(e) = check_result(&text, &origin, result) {
            panic!("{origin}: {e}");
        }
    }
}
