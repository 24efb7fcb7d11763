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
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
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
                message: d.message,
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
