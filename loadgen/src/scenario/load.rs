//! Loading: reading a file, then resolving it and its sweep.

use std::path::Path;

use super::error::{to_error, Diag};
use super::raw::RawScenario;
use super::resolve::resolve;
use super::sweep::expand_raw_sweep;
use super::{Scenario, ScenarioError};

/// Reads and validates a scenario file; the default name is the file's stem.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Validates a scenario's text. `origin` names it in messages (usually its path) and its file
/// stem is the default scenario name.
pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        to_error(
            text,
            origin,
            vec![Diag {
                span,
                message: e.message().to_string(),
            }],
        )
    })?;
    let default_name = Path::new(origin)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();

    let base = resolve(&raw, &default_name);
    let mut diags = match &base {
        Ok(_) => Vec::new(),
        Err(d) => d.clone(),
    };
    let (mut variants, sweep) = match &raw.sweep {
        Some(sweep) => expand_raw_sweep(&raw, sweep, &default_name, &mut diags),
        None => (Vec::new(), None),
    };
    match base {
        Ok(mut sc) if diags.is_empty() => {
            for (_, v) in &mut variants {
                v.source = text.to_string();
            }
            sc.source = text.to_string();
            sc.sweep = sweep;
            sc.variants = variants;
            Ok(sc)
        }
        _ => Err(to_error(text, origin, diags)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::test_util::*;

    #[test]
    fn unreadable_file_names_the_path() {
        let e = load(Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/x.toml: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn syntax_error_has_a_position() {
        let msg = err("transports = [\"sse\"\nduration = \"1s\"\n");
        assert!(msg.starts_with(&format!("{ORIGIN}:")), "{msg}");
    }
}
