//! How errors become text. Every error type here says *what* failed in its `Display` and
//! leaves *why* to its `source()`, never both, so each cause is printed once: `main` prints
//! the chain with anyhow's `{:#}`, and text that lands in `summary.json` (a run's problems,
//! its failure examples) comes from [`chain`].

use std::error::Error;

/// `what: why: why…`, the error and its sources on one line; a cause that repeats the one
/// before it word for word (hyper and reqwest do) is printed once.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    chain_with(error, |text| text)
}

/// [`chain`] with each part rewritten by `part` first (e.g. to drop what differs between
/// otherwise equal failures, so they count together).
pub fn chain_with(error: &(dyn Error + 'static), part: impl Fn(String) -> String) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = part(e.to_string());
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
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

    #[test]
    fn a_cause_repeated_by_the_next_layer_is_printed_once() {
        let inner = Create {
            path: "denied".into(),
            source: std::io::Error::other("x"),
        };
        // io::Error::other(inner) displays as inner does: the repeat is dropped.
        let e = Create {
            path: "y".into(),
            source: std::io::Error::other(inner),
        };
        assert_eq!(chain(&e), "creating y: creating denied: x");
        assert_eq!(
            chain_with(&e, |t| t.replace("denied", "y")),
            "creating y: x"
        );
    }
}
