//! Errors: what a failed load returns, and how byte spans become lines and columns.

use std::fmt;
use std::ops::Range;

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read the scenario")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// One line per problem, in file order.
    #[error("{}", render_diagnostics(.diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
}

/// One problem in a scenario file, at a 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.column, self.message
        )
    }
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(Diagnostic::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A problem at a byte span of the text, before it is placed at a line and column.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Diag {
    pub(super) span: Range<usize>,
    pub(super) message: String,
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    // Spans from toml are on character boundaries; this only guards against a bad one.
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    // A leading byte order mark (which toml accepts) is invisible in an editor: not a column.
    let line_start = match before.rfind('\n') {
        Some(i) => i + 1,
        None if before.starts_with('\u{FEFF}') => '\u{FEFF}'.len_utf8(),
        None => 0,
    };
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// `message` with line breaks and other control characters escaped as TOML writes them.
/// Messages quote values from the file (a transport name, a sweep value), and a string value
/// may hold a newline: printed raw, it would break the one-line-per-problem rendering with a
/// line that names no position, and an escape sequence could restyle the terminal.
fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn to_error(text: &str, origin: &str, mut diags: Vec<Diag>) -> ScenarioError {
    diags.sort_by_key(|d| d.span.start);
    let diagnostics = diags
        .into_iter()
        .map(|d| {
            let (line, column) = line_column(text, d.span.start);
            Diagnostic {
                origin: origin.to_string(),
                line,
                column,
                message: one_line(&d.message),
            }
        })
        .collect();
    ScenarioError::Invalid { diagnostics }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_util::*;

    #[test]
    fn line_column_counts_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(
            line_column(text, text.find('=').map(|_| 10).unwrap()),
            (2, 4)
        );
        assert_eq!(line_column(text, 10_000), (3, 1));
    }

    /// Found by loadgen/tests/prop_scenario.rs: a value quoted in a message could break the
    /// one-line-per-problem rendering (here `unknown transport `a` on one line, `b`` on the
    /// next, which names no position).
    #[test]
    fn values_with_line_breaks_stay_on_their_problem_line() {
        let msg = err(&MINIMAL.replace("[\"sse\"]", "[\"a\\nb\\r\\u001b[31m\"]"));
        assert_eq!(msg.lines().count(), 1, "{msg}");
        assert_diag(&msg, 1, 15, &["unknown transport `a\\nb\\r\\u{1b}[31m`"]);
        // Tabs are harmless and kept.
        let msg = err(&MINIMAL.replace("[\"sse\"]", "[\"a\\tb\"]"));
        assert_diag(&msg, 1, 15, &["unknown transport `a\tb`"]);
    }

    /// An editor does not show a byte order mark, so it does not count as a column.
    #[test]
    fn a_leading_bom_is_not_a_column() {
        let msg = err(&format!(
            "\u{FEFF}{}",
            MINIMAL.replace("[\"sse\"]", "[\"x\"]")
        ));
        assert_diag(&msg, 1, 15, &["unknown transport `x`"]);
    }

    #[test]
    fn all_semantic_errors_are_collected_in_file_order() {
        let text = MINIMAL
            .replace("count = 10", "count = 0")
            .replace("topics = 2", "topics = 0")
            .replace("duration = \"1s\"", "duration = \"soon\"");
        let msg = err(&text);
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 3, "{msg}");
        assert!(lines[0].starts_with(&format!("{ORIGIN}:2:")), "{msg}");
        assert!(lines[1].starts_with(&format!("{ORIGIN}:4:")), "{msg}");
        assert!(lines[2].starts_with(&format!("{ORIGIN}:6:")), "{msg}");
    }
}
