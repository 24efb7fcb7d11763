//! The HTTP routes of a feed server.
//!
//! Every step's log lives under `/{org}/{repo}/builds/{build}/steps/{step}/logs`:
//!
//! | route | method | what |
//! |---|---|---|
//! | [`Route::Logs`] `…/logs` | GET | poll / long-poll |
//! | [`Route::Logs`] `…/logs` | POST | append lines (`text/plain`, one per line) |
//! | [`Route::Events`] `…/logs/events` | GET | SSE |
//! | [`Route::Ws`] `…/logs/ws` | GET | WebSocket |
//! | [`Route::Finish`] `…/logs/finish` | POST | end the step |
//!
//! plus [`HEALTHZ`], [`METRICS`] and [`TIME`] at the root.

use std::fmt;

use crate::topic::TopicId;
use crate::transport::Transport;

/// The topic part of a route pattern, each segment a named parameter (axum / matchit syntax).
pub const TOPIC_PATTERN: &str = "{org}/{repo}/builds/{build}/steps/{step}";
/// Liveness: `GET /healthz` answers `200 ok`.
pub const HEALTHZ: &str = "/healthz";
/// Prometheus text.
pub const METRICS: &str = "/metrics";
/// The server's wall clock, `{"unix_ns":N}` ([`crate::time::ServerTime`]), for load
/// generators on other machines to measure their clock offset to it. Under `/_pushbench/` so
/// that it cannot collide with a foreign server's own routes: a target without it answers
/// 404, which the load generator reports as such.
pub const TIME: &str = "/_pushbench/time";

/// The segment every topic's routes start with, after the topic.
const LOGS: &str = "/logs";

/// One of a topic's log resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `…/logs`: poll (GET) and publish (POST).
    Logs,
    /// `…/logs/events`: the SSE stream.
    Events,
    /// `…/logs/ws`: the WebSocket.
    Ws,
    /// `…/logs/finish`: end the step (POST).
    Finish,
}

impl Route {
    /// What follows `/logs`: `""`, `"/events"`, `"/ws"` or `"/finish"`.
    pub fn suffix(self) -> &'static str {
        match self {
            Route::Logs => "",
            Route::Events => "/events",
            Route::Ws => "/ws",
            Route::Finish => "/finish",
        }
    }

    /// `/{topic}/logs{suffix}`. `topic` is a [`TopicId`], or any text standing for one (a URL
    /// template's `{topic}` placeholder, a route pattern).
    pub fn path(self, topic: impl fmt::Display) -> String {
        format!("/{topic}{LOGS}{}", self.suffix())
    }

    /// The route pattern for a router: `/{org}/{repo}/builds/{build}/steps/{step}/logs{suffix}`.
    pub fn pattern(self) -> String {
        self.path(TOPIC_PATTERN)
    }

    /// The topic of a request path (without its query) if the path is this route of a valid
    /// topic, for servers that read request lines themselves.
    pub fn topic_of(self, path: &str) -> Option<TopicId> {
        let topic = path.strip_suffix(self.suffix())?.strip_suffix(LOGS)?;
        TopicId::parse(topic).ok()
    }
}

impl Transport {
    /// The route a transport reads from.
    pub fn route(self) -> Route {
        match self {
            Transport::Sse => Route::Events,
            Transport::Ws => Route::Ws,
            Transport::Poll => Route::Logs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_the_documented_paths() {
        let t = TopicId::new("a", "b", "1", "2").unwrap();
        assert_eq!(Route::Logs.path(&t), "/a/b/builds/1/steps/2/logs");
        assert_eq!(Route::Events.path(&t), "/a/b/builds/1/steps/2/logs/events");
        assert_eq!(Route::Ws.path(&t), "/a/b/builds/1/steps/2/logs/ws");
        assert_eq!(Route::Finish.path(&t), "/a/b/builds/1/steps/2/logs/finish");
        assert_eq!(
            Transport::Sse.route().path("{topic}"),
            "/{topic}/logs/events"
        );
        assert_eq!(Transport::Ws.route(), Route::Ws);
        assert_eq!(Transport::Poll.route(), Route::Logs);
        assert_eq!(
            Route::Logs.pattern(),
            "/{org}/{repo}/builds/{build}/steps/{step}/logs"
        );
        assert_eq!(
            Route::Events.pattern(),
            "/{org}/{repo}/builds/{build}/steps/{step}/logs/events"
        );
        assert_eq!(
            (HEALTHZ, METRICS, TIME),
            ("/healthz", "/metrics", "/_pushbench/time")
        );
    }

    #[test]
    fn topics_are_read_back_from_paths() {
        let t = TopicId::new("a", "b", "1", "2").unwrap();
        for r in [Route::Logs, Route::Events, Route::Ws, Route::Finish] {
            assert_eq!(r.topic_of(&r.path(&t)), Some(t.clone()), "{r:?}");
        }
        assert_eq!(Route::Events.topic_of(&Route::Ws.path(&t)), None);
        assert_eq!(Route::Finish.topic_of("/a/b/builds/1/logs/finish"), None);
        assert_eq!(Route::Events.topic_of("/healthz"), None);
    }
}
