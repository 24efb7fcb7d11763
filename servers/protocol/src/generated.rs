//! How a feed server's built-in generator names its topics.
//!
//! `feed-server --gen-topics N` writes `{org}/{repo}/builds/{build}/steps/1` …
//! `/steps/N`, by default under `acme/app/builds/1` (`--gen-org`, `--gen-repo`,
//! `--gen-build`). The generator and the load generator (which must know which topics the
//! server it started writes) both call [`topics`].

use crate::topic::{TopicError, TopicId};

/// Organisation of generated topics by default.
pub const ORG: &str = "acme";
/// Repository of generated topics by default.
pub const REPO: &str = "app";
/// Build of generated topics by default.
pub const BUILD: &str = "1";

/// `{org}/{repo}/builds/{build}/steps/1..=count`, in step order.
pub fn topics(org: &str, repo: &str, build: &str, count: u32) -> Result<Vec<TopicId>, TopicError> {
    (1..=count)
        .map(|step| TopicId::new(org, repo, build, step.to_string()))
        .collect()
}

/// [`topics`] under the default organisation and repository, for build `build`.
pub fn topics_of_build(build: &str, count: u32) -> Result<Vec<TopicId>, TopicError> {
    topics(ORG, REPO, build, count)
}

/// What a server started with its generator defaults writes (`--gen-topics count`).
pub fn default_topics(count: u32) -> Vec<TopicId> {
    topics_of_build(BUILD, count).expect("the default generated names are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_the_documented_ones() {
        let names: Vec<String> = default_topics(3).iter().map(|t| t.to_string()).collect();
        assert_eq!(
            names,
            [
                "acme/app/builds/1/steps/1",
                "acme/app/builds/1/steps/2",
                "acme/app/builds/1/steps/3"
            ]
        );
        assert!(default_topics(0).is_empty());
        assert_eq!(
            topics_of_build("pb7", 1).unwrap()[0].to_string(),
            "acme/app/builds/pb7/steps/1"
        );
        assert!(topics("a b", "r", "1", 1).is_err());
    }
}
