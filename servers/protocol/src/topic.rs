//! Topic names: the CI build step a log belongs to.

use std::fmt;

use crate::route::Route;

/// Longest accepted path segment. Keeps topic keys (and metrics labels) bounded.
pub const MAX_SEGMENT_LEN: usize = 100;

/// One build step's log: `{org}/{repo}/builds/{build}/steps/{step}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicId {
    pub org: String,
    pub repo: String,
    pub build: String,
    pub step: String,
}

/// Why a name is not a topic.
#[derive(Debug, PartialEq, Eq)]
pub enum TopicError {
    Empty {
        which: &'static str,
    },
    TooLong {
        which: &'static str,
    },
    BadChar {
        which: &'static str,
        value: String,
        bad: char,
    },
    DotSegment {
        which: &'static str,
    },
    Shape(String),
}

impl fmt::Display for TopicError {
    // These messages reach clients in error answers (`bad topic path: ...`): keep them stable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Empty { which } => write!(f, "{which} is empty"),
            TopicError::TooLong { which } => {
                write!(f, "{which} is longer than {MAX_SEGMENT_LEN} bytes")
            }
            TopicError::BadChar { which, value, bad } => write!(
                f,
                "{which} {value:?} contains {bad:?}; allowed are ASCII letters, digits, '.', '_' and '-'"
            ),
            TopicError::DotSegment { which } => write!(f, "{which} may not be \".\" or \"..\""),
            TopicError::Shape(path) => write!(
                f,
                "topic {path:?} does not have the shape ORG/REPO/builds/BUILD/steps/STEP"
            ),
        }
    }
}

impl std::error::Error for TopicError {}

impl TopicId {
    /// Builds a topic from its four segments, validating each.
    pub fn new(
        org: impl Into<String>,
        repo: impl Into<String>,
        build: impl Into<String>,
        step: impl Into<String>,
    ) -> Result<Self, TopicError> {
        let id = TopicId {
            org: org.into(),
            repo: repo.into(),
            build: build.into(),
            step: step.into(),
        };
        check_segment("org", &id.org)?;
        check_segment("repo", &id.repo)?;
        check_segment("build", &id.build)?;
        check_segment("step", &id.step)?;
        Ok(id)
    }

    /// Parses `org/repo/builds/build/steps/step` (no leading slash, no `/logs`).
    pub fn parse(path: &str) -> Result<Self, TopicError> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            [org, repo, "builds", build, "steps", step] => TopicId::new(*org, *repo, *build, *step),
            _ => Err(TopicError::Shape(path.to_string())),
        }
    }

    /// The URL path of this topic's log resource, `/{org}/{repo}/builds/{build}/steps/{step}/logs`
    /// (the poll and publish route, [`Route::Logs`]).
    pub fn logs_path(&self) -> String {
        Route::Logs.path(self)
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/builds/{}/steps/{}",
            self.org, self.repo, self.build, self.step
        )
    }
}

fn check_segment(which: &'static str, value: &str) -> Result<(), TopicError> {
    if value.is_empty() {
        return Err(TopicError::Empty { which });
    }
    if value.len() > MAX_SEGMENT_LEN {
        return Err(TopicError::TooLong { which });
    }
    if value == "." || value == ".." {
        return Err(TopicError::DotSegment { which });
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(TopicError::BadChar {
            which,
            value: value.to_string(),
            bad,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_round_trip() {
        let t = TopicId::parse("acme/app/builds/42/steps/test-unit").unwrap();
        assert_eq!(t.step, "test-unit");
        assert_eq!(t.to_string(), "acme/app/builds/42/steps/test-unit");
        assert_eq!(t.logs_path(), "/acme/app/builds/42/steps/test-unit/logs");
    }

    #[test]
    fn rejects_bad_segments() {
        assert!(matches!(
            TopicId::parse("acme/app/build/42/steps/1"),
            Err(TopicError::Shape(_))
        ));
        assert!(matches!(
            TopicId::new("a b", "r", "1", "1"),
            Err(TopicError::BadChar { bad: ' ', .. })
        ));
        assert!(matches!(
            TopicId::new("a", "..", "1", "1"),
            Err(TopicError::DotSegment { .. })
        ));
        assert!(matches!(
            TopicId::new("a", "r", "", "1"),
            Err(TopicError::Empty { which: "build" })
        ));
        assert!(matches!(
            TopicId::new("a".repeat(101), "r", "1", "1"),
            Err(TopicError::TooLong { .. })
        ));
    }

    #[test]
    fn error_messages_are_the_ones_clients_see() {
        let msg = |r: Result<TopicId, TopicError>| r.unwrap_err().to_string();
        assert_eq!(msg(TopicId::new("a", "r", "", "1")), "build is empty");
        assert_eq!(
            msg(TopicId::new("a".repeat(101), "r", "1", "1")),
            "org is longer than 100 bytes"
        );
        assert_eq!(
            msg(TopicId::new("a b", "r", "1", "1")),
            r#"org "a b" contains ' '; allowed are ASCII letters, digits, '.', '_' and '-'"#
        );
        assert_eq!(
            msg(TopicId::new("a", "..", "1", "1")),
            r#"repo may not be "." or "..""#
        );
        assert_eq!(
            msg(TopicId::parse("a/b")),
            r#"topic "a/b" does not have the shape ORG/REPO/builds/BUILD/steps/STEP"#
        );
    }
}
