//! How errors become text. Every error type here says *what* failed in its `Display` and
//! leaves *why* to its `source()`, never both, so each cause is printed once: `main` prints
//! the chain with anyhow's `{:#}`, and text that lands in `summary.json` (a run's problems,
//! its failure examples) comes from [`chain`].

use std::error::Error;

/// `what: why: why…`, the error and its sources on one line.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("creating {path}")]
    struct Create {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_printed_once() {
        let e = Create {
            path: "out/x".into(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        };
        assert_eq!(chain(&e), "creating out/x: denied");
        assert_eq!(
            format!("{:#}", anyhow::Error::new(e)),
            "creating out/x: denied"
        );
    }
}
